"""The app's own calls after PostgreSQL ends its sessions (a server restart, or
``pg_terminate_backend``): a pooled connection whose session is gone is replaced before
a statement is sent on it, so the caller sees no error; a statement cut off while it
runs still raises ``ConnectionLost`` (whether it happened is unknown)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from tock import ConnectionLost, Job, Tock
from tock.store.postgres.store import PostgresStore

from .conftest import with_schema

WAIT = 10.0
HELD = 3  # pooled connections open when the sessions end
LOST = "lost the connection to PostgreSQL"


def add(x: int, y: int) -> int:
    return x + y


def sessions(admin: psycopg.Connection, name: str, **where: str) -> list[int]:
    extra = "".join(f" AND {column} = %s" for column in where)
    return [
        pid
        for (pid,) in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            f" AND pid <> pg_backend_pid(){extra}",
            [name, *where.values()],
        )
    ]


def wait_for(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def terminate_all(admin: psycopg.Connection, name: str) -> int:
    """Ends every session named ``name`` (this test's app alone), as a restart would,
    and waits until the server has ended them all."""
    pids = sessions(admin, name)
    for pid in pids:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_for("the sessions to end", lambda: not sessions(admin, name))
    return len(pids)


def hold_connections(app: Tock, n: int) -> None:
    """Opens ``n`` pooled connections at once, so that the pool keeps ``n``."""
    store = app.store
    assert isinstance(store, PostgresStore)
    pool = store._get_pool()
    conns = [pool.getconn() for _ in range(n)]
    for conn in conns:
        pool.putconn(conn)


CALLS: dict[str, Callable[[Tock, Job], object]] = {
    "job.refresh": lambda app, job: job.refresh(),
    "app.job": lambda app, job: app.job(job.id),
    "enqueue": lambda app, job: app.tasks["t.add"].enqueue(1, 2),
    "enqueue_many": lambda app, job: app.tasks["t.add"].enqueue_many([(1, 2), (3, 4)]),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_the_apps_calls_survive_the_end_of_every_session(
    make_app, new_schema, raw, call: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Every pooled session ends at once; the app's next calls (more of them than it had
    connections) all succeed, and the store says once that it lost the connection."""
    name = f"tock_t_{secrets.token_hex(4)}"
    app = make_app(f"{with_schema(new_schema())}&application_name={name}")
    app.migrate()
    app.task(name="t.add")(add)
    job = app.tasks["t.add"].enqueue(1, 2)
    hold_connections(app, HELD)
    admin = raw(autocommit=True)
    assert terminate_all(admin, name) >= HELD
    with caplog.at_level(logging.INFO, logger="tock.store"):
        for _ in range(HELD + 1):
            CALLS[call](app, job)
    assert app.job(job.id).id == job.id
    said = [r.getMessage() for r in caplog.records if r.name == "tock.store"]
    assert sum(LOST in m for m in said) == 1, said
    assert sum("reconnected to PostgreSQL" in m for m in said) == 1, said


def test_a_write_cut_off_while_it_runs_still_raises(make_app, new_schema, raw) -> None:
    """The enqueue waits on a lock when its session is terminated: the statement reached
    the server, so it is not run again behind the caller's back."""
    name = f"tock_t_{secrets.token_hex(4)}"
    schema = new_schema()
    app = make_app(f"{with_schema(schema)}&application_name={name}")
    app.migrate()
    task = app.task(name="t.add")(add)
    admin = raw(autocommit=True)
    locker = raw()  # a transaction: the lock is held until rollback
    locker.execute(
        psycopg.sql.SQL("LOCK TABLE {}.tock_jobs IN ACCESS EXCLUSIVE MODE").format(
            psycopg.sql.Identifier(schema)
        )
    )
    raised: list[BaseException] = []

    def enqueue() -> None:
        try:
            task.enqueue(1, 2)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=enqueue)
    thread.start()
    try:
        wait_for(
            "the enqueue to wait on the lock",
            lambda: bool(sessions(admin, name, wait_event_type="Lock")),
        )
        (pid,) = sessions(admin, name, wait_event_type="Lock")
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        thread.join(WAIT)
    finally:
        locker.rollback()
        thread.join(WAIT)
    assert len(raised) == 1 and isinstance(raised[0], ConnectionLost), raised
    assert app.tasks["t.add"].enqueue(3, 4).refresh().record.args == [3, 4]  # and it is back
