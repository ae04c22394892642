"""Shared fixtures. Every store runs the same suite (``store`` is parametrised by name);
time comes from a FakeClock passed to the app, which hands it to the store as ``now``."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tock import FakeClock, Tock
from tock.store import Store, redact_url

LOCAL_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
try:
    import psycopg  # noqa: F401
except ImportError:
    HAVE_PSYCOPG = False
else:
    HAVE_PSYCOPG = True


def _find_postgres() -> tuple[str | None, str]:
    """The server the ``[postgres]`` cases use, and how it was found (or why there is
    none): $TOCK_TEST_POSTGRES_URL, else a local server at ``LOCAL_PG_URL``; either must
    answer a connection within a couple of seconds."""
    given = os.environ.get("TOCK_TEST_POSTGRES_URL")
    url = given or LOCAL_PG_URL
    if not HAVE_PSYCOPG:
        return None, "psycopg is not installed (pip install -e '.[test]')"
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0].rpartition("failed: ")[2] or type(exc).__name__
        if given:
            return None, f"none answers at {redact_url(url)} (TOCK_TEST_POSTGRES_URL): {reason}"
        return None, f"none answers at {url} ({reason}); set TOCK_TEST_POSTGRES_URL"
    return url, "from TOCK_TEST_POSTGRES_URL" if given else "found locally"


PG_URL, PG_FOUND = _find_postgres()
STORES = ["sqlite", "postgres"]
# The modules of PostgreSQL's own cases import psycopg: without it they are not collected
# (the summary's header says why); the [postgres] cases of the others skip.
collect_ignore_glob = (
    []
    if HAVE_PSYCOPG
    else [
        "postgres/test_postgres.py",
        "postgres/test_server_restart.py",
        "crash/test_connection_loss.py",
    ]
)


def require_postgres() -> str:
    """The server of a ``[postgres]`` case: skips it when there is none, except in CI
    (``CI`` set), where a missing server is a failure."""
    if PG_URL is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {PG_FOUND}")
        pytest.skip(f"PostgreSQL not found: {PG_FOUND}")
    return PG_URL


def pytest_report_header(config: pytest.Config) -> str:
    if PG_URL is not None:
        return f"PostgreSQL: {redact_url(PG_URL)} ({PG_FOUND})"
    fate = "fail (CI is set)" if os.environ.get("CI") else "skip"
    return f"PostgreSQL: not found: [postgres] cases {fate}: {PG_FOUND}"


_PG_SCHEMAS: dict[Path, str] = {}  # one fresh schema per test (per tmp_path)


def store_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'tock.db'}"
    if kind == "postgres":
        url = require_postgres()
        schema = _PG_SCHEMAS.setdefault(tmp_path, f"t_{secrets.token_hex(6)}")
        return f"{url}{'&' if '?' in url else '?'}schema={schema}"
    raise AssertionError(kind)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[object]:
    """One connection for the whole session that drops the tests' schemas."""
    url = require_postgres()  # before anything else of a [postgres] case
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        yield conn


def _drop_pg_schema(admin: object, tmp_path: Path) -> None:
    from psycopg import Connection, sql

    schema = _PG_SCHEMAS.pop(tmp_path, None)
    if schema is not None and isinstance(admin, Connection):
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    kind: str = request.param
    if kind == "postgres":
        require_postgres()
        # Runs after the apps close (they depend on this fixture).
        admin = request.getfixturevalue("pg_admin")
        request.addfinalizer(lambda: _drop_pg_schema(admin, tmp_path))
    return kind


@pytest.fixture
def app(store_kind: str, tmp_path: Path, clock: FakeClock) -> Iterator[Tock]:
    """A Tock app on a fresh store of each kind, on the fake clock."""
    tock = Tock(store_url(store_kind, tmp_path), clock=clock)
    # As `tock migrate` (or a worker) leaves it: reads never create an embedded database,
    # and the SQLite store's self-migration on a first write has tests of its own.
    tock.migrate()
    yield tock
    tock.close()


@pytest.fixture
def store(app: Tock) -> Store:
    return app.store


# -- helpers for the store suite: fabricate the rows a worker or a crash leaves --------

from collections.abc import Callable, Sequence  # noqa: E402
from json import dumps as _json_dumps  # noqa: E402
from typing import Any  # noqa: E402

from tock import SystemClock  # noqa: E402
from tock.jobs import JobRecord, NewJob  # noqa: E402
from tock.store import WorkerInfo  # noqa: E402


@pytest.fixture
def make_worker(store: Store, clock: FakeClock) -> Callable[..., str]:
    """Register a worker row (heartbeat at the fake now) on ``store`` or ``on=``."""

    def make(
        worker_id: str = "w1",
        *,
        queues: Sequence[str] = ("default",),
        concurrency: int = 10,
        on: Store | None = None,
    ) -> str:
        (on or store).worker_register(
            WorkerInfo(
                id=worker_id,
                hostname="test-host",
                pid=os.getpid(),
                queues=tuple(queues),
                concurrency=concurrency,
            ),
            now=clock.db_now(),
        )
        return worker_id

    return make


def ensure_worker(store: Store, worker_id: str, now: datetime | None = None) -> None:
    """Register ``worker_id`` unless it is: only registered workers claim."""
    if worker_id not in {w.id for w in store.worker_list()}:
        store.worker_register(
            WorkerInfo(
                id=worker_id,
                hostname="test-host",
                pid=os.getpid(),
                queues=("default",),
                concurrency=10,
            ),
            now=now,
        )


@pytest.fixture
def make_job(store: Store, clock: FakeClock) -> Callable[..., JobRecord]:
    """Insert one job through the store protocol; ``status="running"`` also claims it
    for ``worker``, registering it first if it is not."""

    def make(
        task: str = "tests.noop",
        *,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        status: str = "pending",
        worker: str = "w1",
        queue: str = "default",
        **fields: Any,
    ) -> JobRecord:
        new = NewJob(
            task=task,
            args=_json_dumps(list(args)),
            kwargs=_json_dumps(kwargs or {}),
            queue=queue,
            **fields,
        )
        (job_id,) = store.job_enqueue_many([new], now=clock.db_now())
        if status == "running":
            ensure_worker(store, worker, clock.db_now())
            claimed = store.job_claim_batch(
                worker_id=worker, queues=[queue], limit=1, free=1, now=clock.db_now()
            )
            assert [j.id for j in claimed] == [job_id], "another due job was claimed first"
        else:
            assert status == "pending", status
        return store.job_get(job_id)

    return make


@pytest.fixture
def other_app(app: Tock, store_kind: str, tmp_path: Path, clock: FakeClock) -> Iterator[Tock]:
    """A second app on the same store, as another process would open it (its own
    connections and liveness tokens)."""
    app.store.db_now(now=None)  # the first app created the schema
    tock = Tock(store_url(store_kind, tmp_path), clock=clock)
    yield tock
    tock.close()


@pytest.fixture
def real_app(store_kind: str, tmp_path: Path) -> Iterator[Tock]:
    """A Tock app on a fresh store of each kind, on the real clock (worker tests)."""
    tock = Tock(store_url(store_kind, tmp_path), clock=SystemClock())
    tock.migrate()
    yield tock
    tock.close()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a file or directory read-only for this process, even as root (where chmod
    is not enough, the immutable attribute is); skip the test if neither works."""
    mode = path.stat().st_mode
    path.chmod(0o555 if path.is_dir() else 0o444)
    immutable = False
    try:
        if os.access(path, os.W_OK) and shutil.which("chattr"):
            immutable = subprocess.run(["chattr", "+i", str(path)], check=False).returncode == 0
        if os.access(path, os.W_OK):
            pytest.skip(f"cannot make {path} read-only here")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)


def wait_token_freed(store: Store, worker_id: str) -> None:
    """Wait until a closed app's liveness token of ``worker_id`` is free. SQLite's flock
    goes with the file's close; PostgreSQL frees a session's locks when its server
    process has ended, a moment after the client closed the connection."""
    from tock.store.postgres.store import PostgresStore

    if not isinstance(store, PostgresStore):
        return
    key = {"lock": store._lock_prefix + worker_id}
    deadline = time.monotonic() + 30
    with store._conn() as conn:
        while not conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtextextended(%(lock)s, 0))", key
        ).fetchone()[0]:
            assert time.monotonic() < deadline, f"the token of {worker_id} was never freed"
            time.sleep(0.005)
