"""SQLite only: URLs, opening, the schema and its migrations, queries.sql, and enqueue on
the caller's own sqlite3 connection."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest
from conftest import read_only

import tock.store.sqlite.store as sqlite_store
from tock import (
    ConfigurationError,
    FakeClock,
    JobNotFound,
    JobStatus,
    SchemaError,
    StoreError,
    Tock,
)
from tock.store import open_store, redact_url
from tock.store._sql import parse_queries
from tock.store.sqlite.store import SQLiteStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def add(x: int, y: int) -> int:
    return x + y


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tock.db"


@pytest.fixture
def make_app(clock: FakeClock) -> Iterator:
    apps: list[Tock] = []

    def make(url: str) -> Tock:
        app = Tock(url, clock=clock)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


_RAW: list[sqlite3.Connection] = []


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to look at the file; closed when the test ends."""
    conn = sqlite3.connect(path, isolation_level=None)
    _RAW.append(conn)
    return conn


@pytest.fixture(autouse=True)
def _close_raw_connections() -> Iterator[None]:
    # Closed by the test, not by the garbage collector: Python 3.13 warns (ResourceWarning)
    # about a connection collected open, in whichever test happens to run then.
    yield
    while _RAW:
        _RAW.pop().close()


# -- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///:memory:",
        "sqlite:///file.db?mode=memory",
        "sqlite://nohost",
        "sqlite://host/path.db",
        "sqlite:",
        "sqlite:///",
        "sqlite:///some/dir/",
        "mysql://x",
        "redis://localhost/0",
        "tock.db",
        "",
        "   ",
    ],
)
def test_bad_urls_refused(make_app, url: str) -> None:
    with pytest.raises(ConfigurationError):
        make_app(url).store  # noqa: B018 - opening is the point


def test_bad_urls_refused_where_they_enter() -> None:
    with pytest.raises(ConfigurationError, match="memory"):
        Tock("sqlite:///:memory:")
    with pytest.raises(ConfigurationError, match="sqlite:///"):
        Tock("sqlite://nohost")
    with pytest.raises(ConfigurationError):
        open_store("mysql://x")


@pytest.mark.parametrize(
    "url",
    ["mysql://u:secret@h/db", "oracle://u:secret@h:1521/db?schema=tock"],
)
def test_password_never_in_errors(make_app, url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(url).store  # noqa: B018
    assert "secret" not in str(info.value)
    assert "secret" not in repr(Tock(url))
    assert "secret" not in redact_url(url)


def test_password_not_in_a_sqlite_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        Tock("sqlite://u:secret@host/x.db")
    assert "secret" not in str(info.value)


def test_relative_and_absolute_paths(
    make_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rel = make_app("sqlite:///rel.db")
    rel.task(add).enqueue(1, 2)
    assert (tmp_path / "rel.db").exists()
    absolute = make_app(f"sqlite:///{tmp_path / 'abs.db'}")
    assert f"sqlite:////{str(tmp_path / 'abs.db').lstrip('/')}" == absolute.url
    absolute.task(add).enqueue(1, 2)
    assert (tmp_path / "abs.db").exists()


def test_url_from_environment_and_default(
    make_app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOCK_URL", "sqlite:///from_env.db")
    assert make_app(None).url == "sqlite:///from_env.db"
    assert make_app("sqlite:///explicit.db").url == "sqlite:///explicit.db"
    monkeypatch.delenv("TOCK_URL")
    app = make_app(None)
    assert app.url == "sqlite:///tock.db"
    app.migrate()
    assert (tmp_path / "tock.db").exists()


# -- opening -----------------------------------------------------------------------------


def test_missing_directory(make_app, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist") as info:
        make_app(f"sqlite:///{tmp_path / 'nope' / 'tock.db'}").store  # noqa: B018
    assert "nope" in str(info.value)
    assert not (tmp_path / "nope").exists()


def test_path_is_a_directory(make_app, tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="directory"):
        make_app(f"sqlite:///{tmp_path / 'dir.db'}").store  # noqa: B018


def test_read_only_database_file(make_app, db: Path) -> None:
    first = make_app(f"sqlite:///{db}")
    first.migrate()
    first.close()
    with read_only(db), pytest.raises(StoreError, match="read-only"):
        make_app(f"sqlite:///{db}").store  # noqa: B018


def test_read_only_directory(make_app, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    with read_only(ro), pytest.raises(StoreError, match="read-only"):
        make_app(f"sqlite:///{ro / 'tock.db'}").store  # noqa: B018


def test_not_a_database(make_app, db: Path) -> None:
    db.write_bytes(b"this is not a database file" * 100)
    app = make_app(f"sqlite:///{db}")
    with pytest.raises(StoreError):
        app.task(add).enqueue(1, 2)


# -- schema ------------------------------------------------------------------------------


def test_fresh_empty_database_migrates_itself(make_app, db: Path) -> None:
    app = make_app(f"sqlite:///{db}")
    job = app.task(add).enqueue(1, 2)
    assert app.store.job_get(job.id).status is JobStatus.PENDING
    rows = (
        raw(db)
        .execute("SELECT version, name, applied_at FROM tock_migrations ORDER BY version")
        .fetchall()
    )
    assert [(v, n) for v, n, _ in rows] == [(v, n) for v, n, _ in sqlite_store.MIGRATIONS]
    assert rows[0][:2] == (1, "initial")
    assert all(isinstance(at, int) and at > 0 for _, _, at in rows)
    assert app.store.schema_version() == (sqlite_store.LATEST, sqlite_store.LATEST)
    assert app.migrate() == []


def test_explicit_migrate_on_a_fresh_file(make_app, db: Path) -> None:
    app = make_app(f"sqlite:///{db}")
    assert app.migrate() == [f"{v:04d}_{n}" for v, n, _ in sqlite_store.MIGRATIONS]
    assert app.migrate() == []
    again = make_app(f"sqlite:///{db}")
    assert again.migrate() == []


def test_wal_mode_and_integer_microsecond_times(make_app, db: Path, clock: FakeClock) -> None:
    app = make_app(f"sqlite:///{db}")
    app.task(add).using(run_after=1.5).enqueue(1, 2)
    conn = raw(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = conn.execute(
        "SELECT typeof(run_at), run_at, typeof(created_at), created_at FROM tock_jobs"
    ).fetchone()
    epoch_us = int(T0.timestamp()) * 1_000_000
    assert row == ("integer", epoch_us + 1_500_000, "integer", epoch_us)


def test_other_tables_without_tock_schema(make_app, db: Path) -> None:
    conn = raw(db)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    conn.close()
    app = make_app(f"sqlite:///{db}")
    with pytest.raises(SchemaError, match="run `tock migrate`"):
        app.task(add).enqueue(1, 2)
    assert (
        raw(db).execute("SELECT name FROM sqlite_master WHERE name LIKE 'tock%'").fetchall() == []
    )
    assert app.migrate() != []
    assert app.task(add).enqueue(1, 2).status is JobStatus.PENDING


def test_newer_schema_refused(make_app, db: Path) -> None:
    make_app(f"sqlite:///{db}").migrate()
    newer = sqlite_store.LATEST + 1
    raw(db).execute("INSERT INTO tock_migrations VALUES (?, 'from_the_future', 0)", (newer,))
    app = make_app(f"sqlite:///{db}")
    with pytest.raises(SchemaError, match="newer") as info:
        app.task(add).enqueue(1, 2)
    assert str(newer) in str(info.value)
    with pytest.raises(SchemaError, match="newer"):
        make_app(f"sqlite:///{db}").migrate()


def test_older_schema_asks_for_migrate(make_app, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_app(f"sqlite:///{db}").migrate()
    extra = (sqlite_store.LATEST + 1, "extra", "CREATE TABLE tock_extra (x INTEGER);\n")
    monkeypatch.setattr(SQLiteStore, "MIGRATIONS", [*sqlite_store.MIGRATIONS, extra])
    monkeypatch.setattr(SQLiteStore, "LATEST", extra[0])
    app = make_app(f"sqlite:///{db}")
    with pytest.raises(SchemaError, match="run `tock migrate`"):
        app.task(add).enqueue(1, 2)
    assert app.migrate() == [f"{extra[0]:04d}_extra"]
    assert app.task(add).enqueue(1, 2).status is JobStatus.PENDING
    versions = [
        v for (v,) in raw(db).execute("SELECT version FROM tock_migrations ORDER BY version")
    ]
    assert versions == list(range(1, extra[0] + 1))


def test_lost_migration_rows_ask_for_migrate(make_app, db: Path) -> None:
    make_app(f"sqlite:///{db}").migrate()
    raw(db).execute("DELETE FROM tock_migrations")
    with pytest.raises(SchemaError, match="run `tock migrate`"):
        make_app(f"sqlite:///{db}").task(add).enqueue(1, 2)


# -- queries.sql -----------------------------------------------------------------------------


def queries_text() -> str:
    return resources.files("tock.store.sqlite").joinpath("queries.sql").read_text(encoding="utf-8")


def test_queries_parse() -> None:
    queries = parse_queries(queries_text())
    assert queries
    for name, sql in queries.items():
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name)
        assert sql.strip() or queries.flags(name), name  # a fragment may be all variants


def test_every_query_used_by_the_store_exists() -> None:
    source = Path(sqlite_store.__file__).read_text(encoding="utf-8")
    used = set(re.findall(r"""\bQ\[\s*["']([a-z0-9_]+)["']\s*\]""", source))
    assert used
    defined = set(parse_queries(queries_text()))
    assert used <= defined, used - defined
    assert used <= set(sqlite_store.Q)


def test_parse_queries_rules() -> None:
    text = "-- name: one\nSELECT {x};\n-- a comment\n-- name: two\nSELECT 2;\n"
    assert parse_queries(text, {"x": "1"}) == {"one": "SELECT 1;", "two": "SELECT 2;"}
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")


# -- enqueue on the caller's connection ---------------------------------------------------------


@pytest.fixture
def shop(make_app, db: Path) -> Tock:
    app = make_app(f"sqlite:///{db}")
    app.migrate()
    conn = raw(db)
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
    conn.close()
    return app


def test_transactional_enqueue_commit(shop: Tock, db: Path) -> None:
    t = shop.task(add)
    conn = sqlite3.connect(db)
    try:
        conn.execute("INSERT INTO orders (item) VALUES ('book')")
        job = t.using(connection=conn).enqueue(1, 2)
        with pytest.raises(JobNotFound):
            shop.store.job_get(job.id)  # not visible before the caller commits
        conn.commit()
    finally:
        conn.close()
    assert shop.store.job_get(job.id).args == [1, 2]
    assert shop.store.job_get(job.id).created_at == T0


def test_transactional_enqueue_rollback(shop: Tock, db: Path) -> None:
    t = shop.task(add)
    conn = sqlite3.connect(db)
    try:
        conn.execute("INSERT INTO orders (item) VALUES ('book')")
        jobs = t.using(connection=conn).enqueue_many([(1, 2), (3, 4)])
        conn.rollback()
    finally:
        conn.close()
    for job in jobs:
        with pytest.raises(JobNotFound):
            shop.store.job_get(job.id)
    assert shop.store.job_list() == []
    assert raw(db).execute("SELECT count(*) FROM orders").fetchone() == (0,)


def test_transactional_enqueue_with_explicit_begin(shop: Tock, db: Path) -> None:
    t = shop.task(add)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        job = t.using(connection=conn).enqueue(5, 6)
        conn.execute("COMMIT")
    finally:
        conn.close()
    assert shop.store.job_get(job.id).args == [5, 6]


def test_connection_to_another_file(shop: Tock, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "other.db")
    try:
        with pytest.raises(ConfigurationError, match=r"other\.db"):
            shop.task(add).using(connection=other).enqueue(1, 2)
    finally:
        other.close()
    assert shop.store.job_list() == []


@pytest.mark.parametrize("connection", [object(), "sqlite:///x.db", 42], ids=repr)
def test_connection_that_is_not_sqlite3(shop: Tock, connection: object) -> None:
    with pytest.raises(ConfigurationError, match=r"sqlite3\.Connection"):
        shop.task(add).using(connection=connection).enqueue(1, 2)
    assert shop.store.job_list() == []


def test_closed_connection(shop: Tock, db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.close()
    with pytest.raises(ConfigurationError):
        shop.task(add).using(connection=conn).enqueue(1, 2)


# -- liveness token ---------------------------------------------------------------------------


def test_worker_id_taken_twice_is_refused(make_app, db: Path, clock: FakeClock) -> None:
    from tock.store import WorkerInfo

    info = WorkerInfo(id="same", hostname="h", pid=1, queues=("default",), concurrency=1)
    first = make_app(f"sqlite:///{db}")
    first.store.worker_register(info, now=clock.db_now())
    second = make_app(f"sqlite:///{db}")
    with pytest.raises(StoreError, match="already held"):
        second.store.worker_register(info, now=clock.db_now())


def test_worker_row_without_lock_file_is_dead_after_two_intervals(
    make_app, db: Path, clock: FakeClock
) -> None:
    from tock.duties import Rescuer

    app = make_app(f"sqlite:///{db}")
    job = app.task(add).enqueue(1, 2)
    epoch_us = int(T0.timestamp()) * 1_000_000
    conn = raw(db)
    conn.execute(
        "INSERT INTO tock_workers"
        " (id, hostname, pid, queues, concurrency, started_at, heartbeat_at)"
        " VALUES ('fabricated', 'h', 1, '[\"default\"]', 1, ?, ?)",
        (epoch_us, epoch_us),
    )
    (claimed,) = app.store.job_claim_batch(
        worker_id="fabricated", queues=["default"], limit=1, free=1, now=clock.db_now()
    )
    assert claimed.id == job.id
    assert not (Path(f"{db}-workers") / "fabricated.lock").exists()
    clock.advance(seconds=3)
    assert not Rescuer(app.store, clock).run_once()
    clock.advance(seconds=1.5)
    report = Rescuer(app.store, clock).run_once()
    assert report.dead_workers == ["fabricated"]
    assert report.rescued == [job.id]
    assert conn.execute("SELECT count(*) FROM tock_workers").fetchone() == (0,)


def test_lock_file_beside_the_database(make_app, db: Path, clock: FakeClock) -> None:
    from tock.store import WorkerInfo

    app = make_app(f"sqlite:///{db}")
    info = WorkerInfo(id="w/1", hostname="h", pid=1, queues=("default",), concurrency=1)
    app.store.worker_register(info, now=clock.db_now())
    assert len(list(Path(f"{db}-workers").glob("*.lock"))) == 1
    app.store.worker_unregister("w/1", now=clock.db_now())
    assert list(Path(f"{db}-workers").glob("*.lock")) == []


def test_transactional_enqueue_on_an_untouched_app(make_app, db: Path) -> None:
    make_app(f"sqlite:///{db}").migrate()
    app = make_app(f"sqlite:///{db}")  # its store has not opened a connection yet
    conn = sqlite3.connect(db)
    try:
        job = app.task(add).using(connection=conn).enqueue(1, 2)
        conn.commit()
    finally:
        conn.close()
    assert app.store.job_get(job.id).args == [1, 2]


def test_transactional_enqueue_before_any_schema_asks_for_migrate(make_app, db: Path) -> None:
    app = make_app(f"sqlite:///{db}")
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")  # the caller's write
        with pytest.raises(SchemaError, match="run `tock migrate`"):
            app.task(add).using(connection=conn).enqueue(1, 2)
        conn.rollback()
    finally:
        conn.close()


def test_orphans_are_rescued(make_app, db: Path, clock: FakeClock) -> None:
    # Running jobs whose worker row is gone (removed by hand, say) count as a dead
    # worker's; the claim refuses unregistered workers, so only SQL makes such rows.
    from tock.duties import Rescuer
    from tock.store import WorkerInfo

    app = make_app(f"sqlite:///{db}")
    job = app.task(add).enqueue(1, 2)
    app.store.worker_register(
        WorkerInfo(id="ghost", hostname="h", pid=1, queues=("default",), concurrency=1),
        now=clock.db_now(),
    )
    (_claimed,) = app.store.job_claim_batch(
        worker_id="ghost", queues=["default"], limit=1, free=1, now=clock.db_now()
    )
    conn = raw(db)
    conn.execute("DELETE FROM tock_workers WHERE id = 'ghost'")
    conn.commit()
    conn.close()
    report = Rescuer(app.store, clock).run_once()
    assert report.dead_workers == ["ghost"]
    assert report.rescued == [job.id]
    record = app.store.job_get(job.id)
    assert record.status is JobStatus.PENDING
    assert record.rescues == 1


def test_due_schedules_read_the_partial_index(make_app, db: Path) -> None:
    """A scheduler pass costs with the due fires, not with the number of schedules."""
    app = make_app(f"sqlite:///{db}")
    app.migrate()
    plan = (
        raw(db)
        .execute(
            "EXPLAIN QUERY PLAN " + sqlite_store.Q["schedule_due"],
            {"now": 1, "limit": 5, "tasks": None},
        )
        .fetchall()
    )
    assert any("USING INDEX tock_schedules_due" in row[-1] for row in plan), plan


def test_claims_read_no_backlog(make_app, db: Path) -> None:
    """A claim reads the claim index in claim order, one queue at a time, and finds the
    jobs of a claim across queues by primary key: no plan scans the jobs table or sorts
    more than a batch (the window's sort is over the batch)."""
    make_app(f"sqlite:///{db}").migrate()
    values = {"queue": "q", "limit": 10, "free": 10, "now": 1, "worker_id": "w", "token": 1}
    values["ahead_us"] = 5000

    def plan(query: str) -> list[str]:
        sql = "EXPLAIN QUERY PLAN " + sqlite_store.Q[query]
        return [row[-1] for row in raw(db).execute(sql, {**values, "ids": "[1, 2]"})]

    candidates = plan("job_claim_candidates")
    # The paused-queue check (docs/design.md: Commands) is one probe of tock_queues'
    # primary key, a subquery evaluated once a statement.
    assert candidates == [
        "SEARCH tock_jobs USING INDEX tock_jobs_claim (queue=?)",
        "SCALAR SUBQUERY 1",
        "SEARCH tock_queues USING INDEX sqlite_autoindex_tock_queues_1 (name=?)",
    ], candidates
    one, several = plan("job_claim_batch"), plan("job_claim_batch_queues")
    assert "SEARCH tock_jobs USING INDEX tock_jobs_claim (queue=?)" in one, one
    assert "SEARCH tock_jobs USING INTEGER PRIMARY KEY (rowid=?)" in several, several
    for line in one + several:
        assert not line.startswith("SCAN tock_jobs"), (one, several)


def test_connections_opened_after_close_are_closed_with_the_store(make_app, db: Path) -> None:
    # A store used again after close() (here a Job handle's app reads again) opens a
    # connection: it is closed when the store object goes, not left open for the garbage
    # collector (Python 3.13 warns about those, in whichever test runs then).
    import gc

    app = make_app(f"sqlite:///{db}")
    job = app.task(add).enqueue(1, 2)
    store = app.store
    app.close()
    store.job_get(job.id)  # reopens a connection on the closed store
    (conn,) = store._all_conns
    del job, store
    app._store = None
    gc.collect()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")


def test_each_connection_waits_for_the_write_lock_and_commits_durably(make_app, db: Path) -> None:
    """docs/design.md: SQLite: a busy timeout (sqlite3.connect's timeout sets it) and
    synchronous=FULL on every connection the store opens."""
    app = make_app(f"sqlite:///{db}")
    app.migrate()
    conn = app.store._conn()
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == sqlite_store.BUSY_TIMEOUT_MS
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
