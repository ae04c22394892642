"""Enqueueing through the caller's own connection, on both stores, in each transaction
mode a caller (Django's connection among them) has: autocommit outside a transaction,
inside a transaction, and a driver that opens one implicitly. Also ``Tock(store=)``."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import store_url

from tock import ConfigurationError, JobNotFound, SchemaError, Tock
from tock.jobs import NewJob
from tock.store import Store, open_store

WAIT = 30.0


def add(x: int, y: int) -> int:
    return x + y


def connect(app: Tock, kind: str, *, autocommit: bool) -> Any:
    """A plain driver connection to the app's database."""
    if kind == "sqlite":
        # The store's own busy timeout: SQLite's lock is not fair, and a connection with
        # the default 5 s can starve behind another writer that never pauses.
        return sqlite3.connect(
            app.store.path,  # type: ignore[attr-defined]
            isolation_level=None if autocommit else "",
            timeout=60,
        )
    import psycopg

    return psycopg.connect(app.store._conninfo, autocommit=autocommit)  # type: ignore[attr-defined]


def in_transaction(conn: Any) -> bool:
    if isinstance(conn, sqlite3.Connection):
        return conn.in_transaction
    import psycopg

    return conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def begin(conn: Any) -> None:
    if isinstance(conn, sqlite3.Connection):
        conn.execute("BEGIN")
    else:
        conn.execute("BEGIN")


@pytest.fixture
def task(app: Tock):
    return app.task(name="tests.add")(add)


def exists(app: Tock, job_id: int) -> bool:
    try:
        app.store.job_get(job_id)
    except JobNotFound:
        return False
    return True


def test_autocommit_connection_outside_a_transaction(app: Tock, store_kind: str, task) -> None:
    # Django's connection outside atomic(): the store opens a transaction for the batch
    # and commits it itself; the caller is left with none.
    conn = connect(app, store_kind, autocommit=True)
    try:
        job = task.using(connection=conn).enqueue(1, 2)
        jobs = task.using(connection=conn).enqueue_many([(3, 4), {"x": 5, "y": 6}])
        assert not in_transaction(conn)
    finally:
        conn.close()
    assert app.store.job_get(job.id).args == [1, 2]
    assert [app.store.job_get(j.id).args for j in jobs] == [[3, 4], []]
    assert app.store.job_get(jobs[1].id).kwargs == {"x": 5, "y": 6}


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_inside_the_callers_transaction(app: Tock, store_kind: str, task, ending: str) -> None:
    # Django's connection inside atomic(): the job exists if and only if it commits.
    conn = connect(app, store_kind, autocommit=True)
    try:
        begin(conn)
        jobs = task.using(connection=conn).enqueue_many([(1, 2), (3, 4)])
        assert in_transaction(conn)
        assert not exists(app, jobs[0].id)  # not before the caller commits
        conn.execute(ending.upper())
    finally:
        conn.close()
    assert [exists(app, j.id) for j in jobs] == [ending == "commit"] * 2


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_a_driver_that_opens_the_transaction_itself(
    app: Tock, store_kind: str, task, ending: str
) -> None:
    # sqlite3's default mode and psycopg's autocommit=False: a transaction is opened and
    # left to the caller, as any other statement of theirs would be.
    conn = connect(app, store_kind, autocommit=False)
    try:
        job = task.using(connection=conn).enqueue(1, 2)
        assert in_transaction(conn)
        assert not exists(app, job.id)
        getattr(conn, ending)()
    finally:
        conn.close()
    assert exists(app, job.id) == (ending == "commit")


def test_ids_are_right_beside_a_concurrent_writer(app: Tock, store_kind: str) -> None:
    # Each batch is several INSERT statements (two tasks alternate: two runs of options
    # each time); another writer enqueues all along. Every id returned is its own job's.
    other = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            n = 0
            while not other.is_set():
                app.store.job_enqueue_many(
                    [NewJob("tests.other", f"[{n}, {i}]", "{}") for i in range(7)], now=None
                )
                n += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    conn = connect(app, store_kind, autocommit=True)
    try:
        for batch in range(30):
            jobs = [
                NewJob("tests.a" if i % 4 < 2 else "tests.b", json.dumps([batch, i]), "{}")
                for i in range(12)
            ]
            ids = app.store.job_enqueue_many(jobs, now=None, connection=conn)
            for i, job_id in enumerate(ids):
                record = app.store.job_get(job_id)
                assert (record.task, record.args) == (jobs[i].task, [batch, i])
    finally:
        other.set()
        thread.join(WAIT)
        conn.close()
    assert not errors


def test_a_connection_to_another_database(app: Tock, store_kind: str, task, tmp_path) -> None:
    if store_kind == "sqlite":
        conn: Any = sqlite3.connect(tmp_path / "elsewhere.db", isolation_level=None)
        match = "elsewhere.db"
    else:
        import psycopg

        conn = psycopg.connect(
            app.store._conninfo.replace("dbname=test", "dbname=postgres"),  # type: ignore[attr-defined]
            autocommit=True,
        )
        match = "database 'postgres'"
    try:
        with pytest.raises(ConfigurationError, match=match):
            task.using(connection=conn).enqueue(1, 2)
    finally:
        conn.close()
    assert app.store.job_list() == []


def test_a_schema_not_migrated(store_kind: str, tmp_path, clock) -> None:
    # The store's database, but no Tock schema in it yet: `tock migrate` first.
    if store_kind == "sqlite":
        path = tmp_path / "fresh.db"
        sqlite3.connect(path).close()
        fresh = Tock(f"sqlite:///{path}", clock=clock)
        conn: Any = sqlite3.connect(path, isolation_level=None)
    else:
        fresh = Tock(store_url(store_kind, tmp_path / "unmigrated"), clock=clock)
        conn = connect(fresh, store_kind, autocommit=True)
    t = fresh.task(name="tests.add")(add)
    try:
        with pytest.raises(SchemaError, match="tock migrate"):
            t.using(connection=conn).enqueue(1, 2)
    finally:
        conn.close()
        fresh.close()


def test_a_closed_or_foreign_connection(app: Tock, store_kind: str, task) -> None:
    conn = connect(app, store_kind, autocommit=True)
    conn.close()
    with pytest.raises(ConfigurationError):
        task.using(connection=conn).enqueue(1, 2)
    for foreign in (object(), "postgresql://elsewhere", 42):
        with pytest.raises(ConfigurationError, match="connection= must be"):
            task.using(connection=foreign).enqueue(1, 2)
    assert app.store.job_list() == []


def test_a_failed_transaction_is_refused(app: Tock, store_kind: str, task) -> None:
    if store_kind == "sqlite":
        pytest.skip("SQLite has no failed-transaction state: an error leaves it usable")
    import psycopg

    conn = connect(app, store_kind, autocommit=False)
    try:
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
        with pytest.raises(ConfigurationError, match="failed transaction"):
            task.using(connection=conn).enqueue(1, 2)
    finally:
        conn.close()


# -- Tock(store=) -----------------------------------------------------------------------


@pytest.fixture
def own_store(store_kind: str, tmp_path, app: Tock) -> Iterator[Store]:
    store = open_store(store_url(store_kind, tmp_path))  # the app's database, migrated
    yield store
    store.close()


def test_an_app_on_a_given_store(own_store: Store, clock) -> None:
    app = Tock(store=own_store, clock=clock)
    assert app.store is own_store
    assert app.url == own_store.url
    t = app.task(name="tests.add")(add)
    job = t.enqueue(2, 3)
    assert app.get_job(job.id).record.args == [2, 3]
    app.close()
    assert app.store is own_store  # the caller's to close: still usable
    assert own_store.job_get(job.id).args == [2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "sqlite:///x.db", "store": "own"}, "not both"),
        ({"store": object()}, "store= takes a Tock store"),
        ({"store": "sqlite:///x.db"}, "store= takes a Tock store"),
    ],
)
def test_bad_store_arguments(own_store: Store, kwargs: dict[str, Any], message: str) -> None:
    if kwargs.get("store") == "own":
        kwargs["store"] = own_store
    with pytest.raises(ConfigurationError, match=message):
        Tock(**kwargs)


def test_a_failed_batch_leaves_nothing_in_the_callers_transaction(
    app: Tock, store_kind: str
) -> None:
    if store_kind == "postgres":
        pytest.skip("PostgreSQL fails the caller's whole transaction on an error")
    conn = connect(app, store_kind, autocommit=True)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (item TEXT)")
        begin(conn)
        conn.execute("INSERT INTO orders VALUES ('book')")
        # Two statements: the first inserts its run, the second fails on its text.
        batch = [NewJob("tests.a", "[1]", "{}"), NewJob("tests.b", "[not json", "{}")]
        with pytest.raises(sqlite3.Error):
            app.store.job_enqueue_many(batch, now=None, connection=conn)
        assert conn.in_transaction  # the caller's transaction goes on
        conn.execute("COMMIT")
        assert conn.execute("SELECT item FROM orders").fetchall() == [("book",)]
    finally:
        conn.close()
    assert app.store.job_list() == []


# -- the schema through a caller's connection (Django's migrations) ---------------------


@pytest.fixture
def fresh_app(store_kind: str, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[Tock]:
    """An app on a store nobody has migrated."""
    from conftest import _drop_pg_schema

    where = tmp_path / "fresh"
    where.mkdir()
    tock = Tock(store_url(store_kind, where))
    yield tock
    tock.close()
    if store_kind == "postgres":
        _drop_pg_schema(request.getfixturevalue("pg_admin"), where)


def test_migrate_up_to_a_version(fresh_app: Tock) -> None:
    store = fresh_app.store
    latest: int = store.LATEST  # type: ignore[attr-defined]
    for bad in (0, latest + 1):
        with pytest.raises(ConfigurationError, match="upto"):
            store.migrate(upto=bad)
    assert store.migrate(upto=1) == ["0001_initial"]
    assert store.schema_version() == (1, latest)
    assert store.migrate(upto=1) == []
    assert len(store.migrate()) == latest - 1
    assert store.schema_version() == (latest, latest)


def test_migrate_through_a_caller_transaction_rolls_back_with_it(
    fresh_app: Tock, store_kind: str
) -> None:
    store = fresh_app.store
    latest: int = store.LATEST  # type: ignore[attr-defined]
    conn = connect(fresh_app, store_kind, autocommit=True)
    try:
        begin(conn)
        assert len(store.migrate(connection=conn)) == latest
        conn.execute("ROLLBACK")
        assert store.schema_version() == (0, latest)
        begin(conn)
        store.migrate(connection=conn, upto=2)
        conn.execute("COMMIT")
        assert store.schema_version() == (2, latest)
        store.migrate(connection=conn)  # autocommit: a transaction of its own, committed
        assert not in_transaction(conn)
    finally:
        conn.close()
    assert store.schema_version() == (latest, latest)
    task = fresh_app.task(name="tests.add")(add)
    assert fresh_app.get_job(task.enqueue(1, 2).id).record.args == [1, 2]
