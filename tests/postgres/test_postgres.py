"""What only the PostgreSQL store does: schemas, the caller's transaction, concurrent
migrations, advisory-lock liveness, LISTEN/NOTIFY wake-ups, the claim plan."""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
from collections.abc import Callable

import psycopg
import pytest
from conftest import wait_token_freed
from psycopg import pq, sql

from tock import (
    ConfigurationError,
    FakeClock,
    JobNotFound,
    JobStatus,
    SchemaError,
    StoreError,
    Tock,
)
from tock.duties import Rescuer, RescuerConfig
from tock.jobs import NewJob
from tock.store import WorkerInfo
from tock.store.postgres.store import (
    LATEST,
    MIGRATIONS,
    PostgresStore,
    parse_postgres_url,
)

from .conftest import with_schema

ALL_MIGRATIONS = [f"{v:04d}_{n}" for v, n, _ in MIGRATIONS]

WAIT = 10.0


def add(x: int, y: int) -> int:
    return x + y


def new_job(n: int = 0, **fields: object) -> NewJob:
    return NewJob(task="t", args=json.dumps([n]), kwargs="{}", **fields)


def register(app: Tock, clock: FakeClock, worker_id: str) -> None:
    app.store.worker_register(
        WorkerInfo(id=worker_id, hostname="h", pid=1, queues=("default",), concurrency=1),
        now=clock.db_now(),
    )


def store_of(app: Tock) -> PostgresStore:
    store = app.store
    assert isinstance(store, PostgresStore)
    return store


# -- URLs and schemas -------------------------------------------------------------------


def test_schema_is_taken_out_of_the_url() -> None:
    url, schema = parse_postgres_url("postgresql://u:pw@h:5432/db?schema=jobs&sslmode=prefer")
    assert (url, schema) == ("postgresql://u:pw@h:5432/db?sslmode=prefer", "jobs")
    assert parse_postgres_url("postgres://h/db")[1] == "tock"
    with pytest.raises(ConfigurationError, match="schema"):
        parse_postgres_url("postgresql://h/db?schema=a;drop")


def test_a_space_in_a_parameter_stays_a_space_for_libpq() -> None:
    # libpq decodes percent escapes only: a "+" would reach the server as a "+".
    url, _ = parse_postgres_url("postgresql://h/db?options=-c%20work_mem%3D8MB&schema=s")
    assert url == "postgresql://h/db?options=-c%20work_mem%3D8MB"


def test_password_never_in_a_connection_error(clock: FakeClock) -> None:
    app = Tock("postgresql://u:secret@127.0.0.1:1/db?schema=x", clock=clock)
    assert "secret" not in repr(app)
    with pytest.raises(StoreError) as info:
        app.store.db_now(now=None)
    assert "secret" not in str(info.value)
    assert "***" in str(info.value)
    assert "secret" not in app.store.url
    app.close()


def test_missing_schema_says_run_tock_migrate(make_app, new_schema, clock: FakeClock) -> None:
    app = make_app(with_schema(new_schema()))
    with pytest.raises(SchemaError, match="run `tock migrate`"):
        app.task(add).enqueue(1, 2)
    assert app.store.schema_version() == (0, LATEST)
    assert app.migrate() == ALL_MIGRATIONS
    assert app.task(add).enqueue(1, 2).id == 1


def test_newer_schema_is_refused(make_app, raw) -> None:
    app = make_app()
    schema = store_of(app).schema
    conn = raw(autocommit=True)
    conn.execute(
        sql.SQL("INSERT INTO {}.tock_migrations VALUES (99, 'future', now())").format(
            sql.Identifier(schema)
        )
    )
    other = make_app(with_schema(schema))
    with pytest.raises(SchemaError, match="upgrade Tock"):
        other.store.db_now(now=None)
    with pytest.raises(SchemaError, match="upgrade Tock"):
        other.migrate()


def test_two_schemas_do_not_see_each_others_jobs(make_app, clock: FakeClock, raw) -> None:
    a, b = make_app(), make_app()
    job = a.task(add).enqueue(1, 2)
    assert b.store.job_list() == []
    with pytest.raises(JobNotFound):
        b.store.job_get(job.id)
    register(b, clock, "wb")
    assert (
        b.store.job_claim_batch(
            worker_id="wb", queues=["default"], limit=10, free=10, now=clock.db_now()
        )
        == []
    )
    assert b.task(add).enqueue(3, 4).id == job.id  # each schema has its own identity
    # Tables live in the URL's schema; nothing in public, search_path untouched.
    conn = raw(autocommit=True)
    (n,) = conn.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = 'tock_jobs' AND table_schema = ANY(%s)",
        [[store_of(a).schema, store_of(b).schema, "public"]],
    ).fetchone()
    assert n == 2


def test_migrations_at_once_from_two_threads(make_app, new_schema) -> None:
    url = with_schema(new_schema())
    apps = [make_app(url), make_app(url)]
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def migrate(app: Tock) -> None:
        barrier.wait()
        try:
            results.append(app.migrate())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(app,)) for app in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == [[], ALL_MIGRATIONS]
    assert apps[0].store.schema_version() == (LATEST, LATEST)


# -- the caller's transaction -----------------------------------------------------------


def test_enqueue_in_the_callers_transaction_commit(make_app, clock: FakeClock, raw) -> None:
    app = make_app()
    register(app, clock, "w")
    conn = raw()  # not autocommit: a transaction begins with the first statement
    conn.execute("SELECT 1")
    job = app.task(add).using(connection=conn).enqueue(1, 2)
    # Not committed: invisible to the store's own connections, and never claimed.
    with pytest.raises(JobNotFound):
        app.store.job_get(job.id)
    assert (
        app.store.job_claim_batch(
            worker_id="w", queues=["default"], limit=5, free=5, now=clock.db_now()
        )
        == []
    )
    conn.commit()
    assert app.store.job_get(job.id).status is JobStatus.PENDING
    (claimed,) = app.store.job_claim_batch(
        worker_id="w", queues=["default"], limit=5, free=5, now=clock.db_now()
    )
    assert claimed.id == job.id


def test_enqueue_in_the_callers_transaction_rollback(make_app, raw) -> None:
    app = make_app()
    conn = raw()
    jobs = app.task(add).using(connection=conn).enqueue_many([(1, 2), (3, 4)])
    conn.rollback()
    for job in jobs:
        with pytest.raises(JobNotFound):
            app.store.job_get(job.id)
    assert app.store.job_list() == []


def test_enqueue_in_a_transaction_block_of_an_autocommit_connection(make_app, raw) -> None:
    app = make_app()
    conn = raw(autocommit=True)
    with pytest.raises(RuntimeError), conn.transaction():
        doomed = app.task(add).using(connection=conn).enqueue(1, 2)
        raise RuntimeError("the caller's transaction fails")
    with pytest.raises(JobNotFound):
        app.store.job_get(doomed.id)
    with conn.transaction():
        kept = app.task(add).using(connection=conn).enqueue(1, 2)
    assert app.store.job_get(kept.id).args == [1, 2]
    # Outside any block, the enqueue is its own transaction.
    alone = app.task(add).using(connection=conn).enqueue(5, 6)
    assert app.store.job_get(alone.id).args == [5, 6]


def test_connection_must_be_a_psycopg_connection(make_app, tmp_path) -> None:
    import sqlite3

    app = make_app()
    other = sqlite3.connect(tmp_path / "x.db")
    with pytest.raises(ConfigurationError, match="psycopg"):
        app.task(add).using(connection=other).enqueue(1, 2)
    other.close()


# -- liveness tokens ------------------------------------------------------------------


def backend_pids(raw, application_name: str, query: str = "%") -> list[int]:
    conn = raw(autocommit=True)
    return [
        pid
        for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> "
            "pg_backend_pid() AND query LIKE %s",
            [application_name, query],
        )
    ]


def test_a_terminated_token_session_is_taken_again_at_once_and_a_closed_one_is_dead(
    make_app, clock: FakeClock, raw
) -> None:
    """The server ends a live worker's token session alone (an administrator, a proxy):
    its store hears it and takes the token again by itself, before any heartbeat, so no
    rescuer declares it dead. Its process gone (the app closed), the token stays free:
    dead once its heartbeat is past token_after."""
    app = make_app()
    other = make_app(app.url)  # a second process on the same schema
    register(other, clock, "gone")
    job = app.store.job_enqueue_many([new_job()], now=clock.db_now())[0]
    other.store.job_claim_batch(
        worker_id="gone", queues=["default"], limit=1, free=1, now=clock.db_now()
    )
    first = store_of(other)._tokens["gone"]
    assert first is not None
    rescuer = Rescuer(app.store, clock, RescuerConfig(heartbeat_interval=2.0))
    clock.advance(seconds=5)
    assert not rescuer.run_once()  # the token is held: alive, however quiet
    raw(autocommit=True).execute("SELECT pg_terminate_backend(%s)", [first.info.backend_pid])

    def taken_again() -> bool:
        conn = store_of(other)._tokens.get("gone")
        return conn is not None and conn is not first and not conn.closed

    deadline = time.monotonic() + 30
    while not taken_again():
        assert time.monotonic() < deadline, "the token was never taken again"
        time.sleep(0.005)
    assert app.store.worker_tokens_free(exclude=None, settle=4.0) == []
    assert not rescuer.run_once()  # heartbeat 5 s old, token held again: alive
    other.close()  # its process ends: the server frees the token with the session
    wait_token_freed(app.store, "gone")
    report = rescuer.run_once()  # heartbeat 5 s old and its token free: dead
    assert report.dead_workers == ["gone"]
    assert report.rescued == [job]


def test_the_token_watch_outlives_a_session_closed_while_it_looks(
    make_app, clock: FakeClock, raw, monkeypatch
) -> None:
    """A token session closed by another thread between the watch's reading of the
    sessions and its wait on them (a heartbeat replacing a lost session) must not end the
    watch: it looks again, and still takes a terminated token again by itself."""
    import selectors

    from tock.store.postgres import store as pg_store

    failures = []

    class ClosedMeanwhile(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
        def register(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
            if len(failures) < 3:
                failures.append(fileobj)
                raise OSError(9, "Bad file descriptor")
            return super().register(fileobj, events, data)

    monkeypatch.setattr(pg_store.selectors, "DefaultSelector", ClosedMeanwhile)
    app = make_app()
    other = make_app(app.url)
    register(other, clock, "watched")
    first = store_of(other)._tokens["watched"]
    assert first is not None
    deadline = time.monotonic() + WAIT
    while len(failures) < 3:
        assert time.monotonic() < deadline, "the watch never looked"
        time.sleep(0.005)
    watch = store_of(other)._token_watch
    assert watch is not None and watch.is_alive()
    raw(autocommit=True).execute("SELECT pg_terminate_backend(%s)", [first.info.backend_pid])
    while (conn := store_of(other)._tokens.get("watched")) is None or conn is first:
        assert time.monotonic() < deadline, "the token was never taken again"
        time.sleep(0.005)
    assert watch.is_alive()


def test_a_session_lost_as_a_granted_leader_wait_gives_its_lock_back_is_a_lost_connection(
    make_app,
) -> None:
    """The follower's wait is granted (the leader's session ended in an outage) and the
    follower's own session goes in the same outage before it gives the lock back: the
    turn sees a lost connection (ConnectionLost, which the elector rides out quietly),
    not a driver error logged with a traceback; the next wait reconnects."""
    from tock.errors import ConnectionLost

    app = make_app()
    store = store_of(app)
    # The give-back statement ends its own session, as an outage would at that moment.
    original = store.Q
    store.Q = {**original, "leader_lock_unwait": "SELECT pg_terminate_backend(pg_backend_pid())"}
    with pytest.raises(ConnectionLost, match="lost the connection"):
        store.leader_lock_wait(11, timeout=5)
    store.Q = original
    assert store.leader_lock_wait(11, timeout=5)


def test_a_reconnecting_worker_takes_its_token_again(make_app, clock: FakeClock, raw) -> None:
    app = make_app()
    other = make_app(app.url)
    register(other, clock, "back")
    first = store_of(other)._tokens["back"].info.backend_pid
    raw(autocommit=True).execute("SELECT pg_terminate_backend(%s)", [first])
    clock.advance(seconds=3)
    # The next heartbeat finds its session gone: it takes the token again first.
    assert other.store.worker_heartbeat("back", now=clock.db_now()) is True
    assert store_of(other)._tokens["back"].info.backend_pid != first
    clock.advance(seconds=5)  # heartbeat 5 s old, but the token is held again
    assert not Rescuer(app.store, clock).run_once()


def test_a_worker_id_is_held_by_one_process(make_app, clock: FakeClock) -> None:
    app = make_app()
    other = make_app(app.url)
    register(app, clock, "solo")
    with pytest.raises(StoreError, match="already held"):
        register(other, clock, "solo")


# -- LISTEN/NOTIFY ----------------------------------------------------------------------


def test_watch_wakes_up_on_an_enqueue_from_another_connection(make_app, clock) -> None:
    app = make_app()
    other = make_app(app.url)
    woke = threading.Event()
    watch = app.store.job_watch(woke.set)
    try:
        # LISTEN is in place once the watch has its connection; enqueue until it wakes
        # (a hint sent before the LISTEN started is not delivered).
        for _ in range(100):
            other.task(add).enqueue(1, 2)
            if woke.wait(0.1):
                break
        assert woke.is_set()
    finally:
        watch.close()


def test_enqueue_sends_a_hint_naming_the_queue(make_app, raw) -> None:
    app = make_app()
    listener = raw(autocommit=True)
    listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(store_of(app).channel)))
    t = app.task(add)
    for i in range(20):
        t.enqueue(i, i)
    got = list(listener.notifies(timeout=0.3))
    assert 1 <= len(got) <= 20
    assert {n.payload for n in got} == {"default"}


def round_trips(conn: psycopg.Connection, action: Callable[[], object]) -> int:
    """How many times ``action`` waited for the server on ``conn``: libpq's trace shows
    one ReadyForQuery per round trip."""
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            action()
        finally:
            conn.pgconn.untrace()
        trace.seek(0)
        return sum("\tReadyForQuery" in line for line in trace)


def test_a_few_jobs_are_enqueued_in_one_round_trip_with_their_hint(make_app, raw) -> None:
    app = make_app()
    listener = raw(autocommit=True)
    listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(store_of(app).channel)))
    conn = raw(autocommit=True)
    t = app.task(add).using(connection=conn)
    store_of(app)._caller_connection(conn)  # its first use checks it, once: done here
    got: list[object] = []
    assert round_trips(conn, lambda: got.append(t.enqueue(1, 2))) == 1
    # Its hint came with it: nothing was held back by the throttle, so no later one.
    assert [n.payload for n in listener.notifies(timeout=WAIT, stop_after=1)] == ["default"]
    assert round_trips(conn, lambda: got.extend(t.enqueue_many([(3, 4), (5, 6)]))) == 1
    # Each was its own transaction: committed.
    assert [app.store.job_get(j.id).args for j in got] == [[1, 2], [3, 4], [5, 6]]  # type: ignore[attr-defined]


def test_the_pools_enqueue_of_one_job_is_one_round_trip(make_app) -> None:
    app = make_app()
    t = app.task(add)
    t.enqueue(0, 0)  # the pool is open and the schema checked
    pool = store_of(app)._get_pool()
    # Every connection the pool holds: the enqueue takes one of them.
    conns = [pool.getconn() for _ in range(pool.get_stats()["pool_size"])]
    with tempfile.TemporaryFile("w+") as trace:
        for conn in conns:
            conn.pgconn.trace(trace.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            pool.putconn(conn)
        job = t.enqueue(1, 2)
        for conn in conns:
            conn.pgconn.untrace()
        trace.seek(0)
        lines = trace.readlines()
    # One round trip for the enqueue. A checkout that found a pooled connection's socket
    # readable settles it with an empty statement first (connections.py: the server
    # spoke): that round trip is not the enqueue's.
    ready = sum("\tReadyForQuery" in line for line in lines)
    probes = sum("\tEmptyQueryResponse" in line for line in lines)
    assert ready - probes == 1, "".join(lines)
    assert app.store.job_get(job.id).status is JobStatus.PENDING


def test_an_enqueue_with_a_unique_key_stays_one_transaction(make_app, raw) -> None:
    # A held key takes a second statement (the holder's id), so BEGIN and COMMIT stay.
    app = make_app()
    held = app.task(add).using(unique_key="k").enqueue(1, 2)
    conn = raw(autocommit=True)
    store_of(app)._caller_connection(conn)  # its first use checks it, once: done here
    t = app.task(add).using(connection=conn, unique_key="k")
    got: list[object] = []
    assert round_trips(conn, lambda: got.append(t.enqueue(3, 4))) == 4
    assert got[0].id == held.id  # type: ignore[attr-defined]


def test_notify_is_throttled_not_one_per_job() -> None:
    # One hint at the start of a window per queue, one trailing hint at its end if any
    # was suppressed; the window's clock is a fake, the trailing timer real.
    from tock.store.postgres.notify import Notifier as _Notifier

    sent: list[list[str]] = []
    trailing = threading.Event()

    class Sink:
        def _notify(self, queues: list[str]) -> None:
            sent.append(queues)
            trailing.set()

    now = [100.0]
    notifier = _Notifier(Sink(), monotonic=lambda: now[0])  # type: ignore[arg-type]
    assert notifier.due({"default"}) == ["default"]
    assert all(notifier.due({"default"}) == [] for _ in range(200))
    assert notifier.due({"emails", "default"}) == ["emails"]  # per queue
    assert trailing.wait(10)
    assert sent[0] == ["default"]
    now[0] += 1.0  # a later window starts with a hint again
    assert notifier.due({"default"}) == ["default"]


def test_the_listen_loop_sleeps_in_poll_and_asks_psycopg_only_for_what_is_there() -> None:
    """The LISTEN thread waits in poll() on its session's socket (psycopg's own timed
    wait costs about 1 ms of CPU a call), asks psycopg without waiting once the socket
    has something, and at once for the hints psycopg kept while LISTEN ran."""
    from tock.store.postgres import notify

    class Conn:
        def __init__(self) -> None:
            self.asked: list[float] = []

        def notifies(self, *, timeout: float) -> list[str]:
            self.asked.append(timeout)
            return ["hint"]

    class Poller:
        def __init__(self, ready: list[tuple[int, int]]) -> None:
            self.ready = ready
            self.waits: list[float] = []

        def poll(self, ms: float) -> list[tuple[int, int]]:
            self.waits.append(ms)
            return self.ready

    conn, quiet, spoke = Conn(), Poller([]), Poller([(5, 1)])
    assert list(notify._notifies(conn, quiet, False)) == []  # type: ignore[arg-type]
    assert quiet.waits == [notify.LISTEN_TIMEOUT * 1000]
    assert conn.asked == []
    assert list(notify._notifies(conn, spoke, False)) == ["hint"]  # type: ignore[arg-type]
    assert conn.asked == [0]
    assert list(notify._notifies(conn, quiet, True)) == ["hint"]  # type: ignore[arg-type]
    assert quiet.waits == [notify.LISTEN_TIMEOUT * 1000]  # kept ones: no wait
    assert conn.asked == [0, 0]
    assert list(notify._notifies(conn, None, False)) == ["hint"]  # type: ignore[arg-type]
    assert conn.asked[-1] == notify.LISTEN_TIMEOUT  # no poll(): psycopg's wait


def test_watch_reconnects_and_polls_once(make_app, new_schema, raw) -> None:
    # An application name of this test's own: terminate its LISTEN session and no other
    # on the server (a benchmark or another suite may be listening there too).
    name = f"tock_t_{secrets.token_hex(4)}"
    app = make_app(f"{with_schema(new_schema())}&application_name={name}")
    app.migrate()
    calls = threading.Semaphore(0)
    watch = app.store.job_watch(calls.release)
    admin = raw(autocommit=True)
    try:
        for _ in range(100):  # wait for the LISTEN session to have LISTENed (ended
            # before that, it would come back without the one poll of a reconnection)
            pids = backend_pids(raw, f"{name}-listen", query="LISTEN %")
            if pids:
                break
            threading.Event().wait(0.05)
        assert pids
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert calls.acquire(timeout=WAIT)  # one poll after reconnecting
        app.task(add).enqueue(1, 2)
        assert calls.acquire(timeout=WAIT)  # and hints arrive again
    finally:
        watch.close()


# -- claims -----------------------------------------------------------------------------


def test_concurrent_claimers_never_share_a_job(make_app, clock: FakeClock) -> None:
    app = make_app()
    ids = app.store.job_enqueue_many([new_job(i) for i in range(400)], now=clock.db_now())
    apps = [make_app(app.url) for _ in range(4)]
    for n, a in enumerate(apps):
        register(a, clock, f"w{n}")
    got: list[list[int]] = [[] for _ in apps]
    now = clock.db_now()
    barrier = threading.Barrier(len(apps))

    def claim(n: int) -> None:
        barrier.wait()
        while True:
            batch = apps[n].store.job_claim_batch(
                worker_id=f"w{n}", queues=["default", "other"], limit=7, free=7, now=now
            )
            if not batch:
                return
            got[n].extend(j.id for j in batch)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(apps))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for g in got for i in g]
    assert sorted(claimed) == ids


@pytest.mark.parametrize("queues", [["default"], ["default", "b", "c"]])
def test_claim_reads_the_claim_index_and_locks_only_the_batch(
    make_app, clock: FakeClock, raw, queues
) -> None:
    app = make_app()
    store = store_of(app)
    store.job_enqueue_many(
        [new_job(i, queue=q, priority=i % 3) for i in range(2000) for q in ("default", "b")],
        now=clock.db_now(),
    )
    register(app, clock, "w")
    conn = raw(autocommit=True)
    conn.execute(sql.SQL("ANALYZE {}.tock_jobs").format(sql.Identifier(store.schema)))
    query = store.Q["job_claim_batch" if len(queues) == 1 else "job_claim_batch_queues"]
    params = {"worker_id": "w", "token": 1, "limit": 10, "free": 10, "now": clock.db_now()}
    params["ahead_us"] = 5000
    params.update(queue=queues[0], queues=queues)
    with conn.transaction(force_rollback=True):
        plan = "\n".join(
            row[0] for row in conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + query, params)
        )
    assert (
        "Index Scan using tock_jobs_claim" in plan
        or "Index Only Scan using tock_jobs_claim" in plan
    ), plan
    assert "Seq Scan" not in plan, plan
    locks = [line for line in plan.splitlines() if "LockRows" in line]
    assert all("rows=10 " in line for line in locks[1:]), plan  # [0]: the worker's row
    if len(queues) > 1:
        # Each queue's candidates through the claim index, then the batch by primary key.
        assert plan.count("Index Only Scan using tock_jobs_claim") == 1, plan  # in a loop
        assert "Index Scan using tock_jobs_pkey" in plan, plan


def test_a_big_claim_across_queues_looks_its_batch_up_by_primary_key(
    make_app, clock: FakeClock, raw
) -> None:
    """Never analyzed, a big backlog across several queues, a big batch (a worker with a
    large prefetch): the candidates are still locked through the primary key, not by
    scanning every pending job of the claim index and comparing it with the whole array
    of candidates (150 ms a claim of 1,000 among 20,000 pending jobs)."""
    app = make_app()
    store = store_of(app)
    queues = [f"q{i}" for i in range(6)]
    store.job_enqueue_many(
        [new_job(i, queue=queues[i % 6]) for i in range(12_000)], now=clock.db_now()
    )
    register(app, clock, "w")
    params = {"worker_id": "w", "token": 1, "limit": 1000, "free": 1000, "now": clock.db_now()}
    params.update(ahead_us=5000, queues=queues)
    conn = raw(autocommit=True)
    with conn.transaction(force_rollback=True):
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN (ANALYZE, COSTS OFF) " + store.Q["job_claim_batch_queues"], params
            )
        )
    assert "tock_jobs_pkey" in plan, plan
    assert "Filter: (id = ANY" not in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize("queues", [["default"], ["default", "b"]])
@pytest.mark.parametrize(
    ("jobs", "setting"),
    [
        ([False, False], "off"),  # a claim of at-least-once jobs: a lease, commits lazily
        ([True, False], "on"),  # an at-most-once job in the batch: waits for the flush
        ([], "off"),  # nothing to claim
    ],
)
def test_a_claim_commits_lazily_unless_it_takes_an_at_most_once_job(
    make_app, clock: FakeClock, raw, queues: list[str], jobs: list[bool], setting: str
) -> None:
    """The "lazy" claim sets synchronous_commit for its own transaction alone: off, but
    left as it was when the batch holds an at-most-once job (queries.sql: claim_lazy)."""
    app = make_app()
    store = store_of(app)
    store.job_enqueue_many(
        [new_job(i, at_most_once=amo) for i, amo in enumerate(jobs)], now=clock.db_now()
    )
    register(app, clock, "w")
    name = "job_claim_batch" if len(queues) == 1 else "job_claim_batch_queues"
    params = {"worker_id": "w", "token": 1, "limit": 10, "free": 10, "now": clock.db_now()}
    params.update(ahead_us=0, queue=queues[0], queues=queues)
    conn = raw(autocommit=True)
    with conn.transaction(force_rollback=True):
        rows = conn.execute(store.Q[name + "+lazy"], params).fetchall()
        assert len([r for r in rows if r[0] is not None]) == len(jobs)
        assert conn.execute("SHOW synchronous_commit").fetchone() == (setting,)
    assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)  # this one alone


def test_a_claim_that_records_outcomes_waits_for_the_flush(make_app, clock) -> None:
    """Only a claim without outcomes takes the lazy variant: a lost outcome would leave
    its job running for a live worker."""
    from tock.jobs import Outcome, OutcomeKind

    app = make_app()
    store = store_of(app)
    register(app, clock, "w")
    store.job_enqueue_many([new_job(i) for i in range(3)], now=clock.db_now())
    asked: list[tuple[str, ...]] = []
    query = store._claim_query

    def spy(queues: list[str], *flags: str) -> str:
        asked.append(tuple(sorted(flags)))
        return query(queues, *flags)

    store._claim_query = spy  # type: ignore[method-assign]
    batch = store.job_claim_batch(
        worker_id="w", queues=["default"], limit=2, free=2, now=clock.db_now()
    )
    done = [Outcome(j.id, j.claim_token or 0, OutcomeKind.SUCCEEDED, result="1") for j in batch]
    store.job_claim_batch(
        worker_id="w", queues=["default"], limit=5, free=5, now=clock.db_now(), completed=done
    )
    assert asked == [("lazy",), ("finish",)]


def test_completions_and_claims_in_one_call_with_unknown_outcomes(make_app, clock) -> None:
    from tock.jobs import Outcome, OutcomeKind

    app = make_app()
    register(app, clock, "w")
    ids = app.store.job_enqueue_many([new_job(i) for i in range(3)], now=clock.db_now())
    batch = app.store.job_claim_batch(
        worker_id="w", queues=["default"], limit=2, free=2, now=clock.db_now()
    )
    done = [Outcome(j.id, j.claim_token or 0, OutcomeKind.SUCCEEDED, result="1") for j in batch]
    done.append(Outcome(99999, 1, OutcomeKind.SUCCEEDED, result="1"))  # no such job
    (last,) = app.store.job_claim_batch(
        worker_id="w", queues=["default"], limit=5, free=5, now=clock.db_now(), completed=done
    )
    assert last.id == ids[2]
    assert [app.store.job_get(i).status for i in ids[:2]] == [JobStatus.SUCCEEDED] * 2


@pytest.mark.parametrize("queues", [["default"], ["default", "b"]])
def test_a_claim_that_finishes_a_batch_waits_for_its_rows_before_it_locks_a_job(
    make_app, clock: FakeClock, raw, queues: list[str]
) -> None:
    """A claim that also records a batch's outcomes (the "finish" variant) may wait for a
    finished job's row; it must not hold any pending job's lock meanwhile. A claim that
    locks a row another claimer took a moment ago keeps that lock although the row
    fails its re-check, so a claim that locked first and waited after could deadlock
    with that claimer's own finish of the row (seen after a server outage)."""
    from tock.jobs import Outcome, OutcomeKind

    app = make_app()
    register(app, clock, "w")
    finished_id, pending_id = app.store.job_enqueue_many(
        [new_job(1), new_job(2)], now=clock.db_now()
    )
    (job,) = app.store.job_claim_batch(
        worker_id="w", queues=queues, limit=1, free=1, now=clock.db_now()
    )
    assert job.id == finished_id and job.claim_token is not None
    table = f"{store_of(app).schema}.tock_jobs"
    holder = raw()
    holder.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", (finished_id,))
    got: list[list[int]] = []
    claim = threading.Thread(
        target=lambda: got.append(
            [
                j.id
                for j in app.store.job_claim_batch(
                    worker_id="w",
                    queues=queues,
                    limit=1,
                    free=1,
                    now=clock.db_now(),
                    completed=[Outcome(job.id, job.claim_token, OutcomeKind.SUCCEEDED, "1")],
                )
            ]
        )
    )
    claim.start()
    try:
        deadline = time.monotonic() + WAIT
        while not holder.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()"
            " AND locktype = 'transactionid'"
        ).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, "the claim never waited for the row"
            time.sleep(0.01)
        other = raw()
        # Before its finish is written, the claim holds no lock on the job it will take.
        other.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT", (pending_id,))
        other.rollback()
    finally:
        holder.rollback()
        claim.join(WAIT)
    assert got == [[pending_id]]
    assert app.store.job_get(finished_id).status is JobStatus.SUCCEEDED


# -- big batches (COPY) ---------------------------------------------------------------


@pytest.mark.parametrize("n", [10, 1200])
def test_big_batches_keep_input_order_and_unique_keys(make_app, clock: FakeClock, n) -> None:
    app = make_app()
    (held,) = app.store.job_enqueue_many([new_job(-1, unique_key="held")], now=clock.db_now())

    def key(i: int) -> str | None:
        return "held" if i == 5 else f"k{i % 7}" if i % 3 == 0 else None

    jobs = [new_job(i, unique_key=key(i), priority=i % 5) for i in range(n)]
    ids = app.store.job_enqueue_many(jobs, now=clock.db_now())
    assert len(ids) == n
    assert ids[5] == held
    first: dict[str, int] = {}
    for i, job_id in enumerate(ids):
        k = key(i)
        if k is None:
            assert app.store.job_get(job_id).args == [i]
        elif k != "held":
            first.setdefault(k, i)
            assert app.store.job_get(job_id).args == [first[k]]
    fresh = [job_id for i, job_id in enumerate(ids) if key(i) is None or first.get(key(i)) == i]
    assert fresh == sorted(fresh) and len(set(fresh)) == len(fresh)


def test_big_batch_in_the_callers_transaction(make_app, clock: FakeClock, raw) -> None:
    app = make_app()
    conn = raw()
    ids = app.store.job_enqueue_many(
        [new_job(i) for i in range(1000)], now=clock.db_now(), connection=conn
    )
    conn.rollback()
    assert app.store.job_list() == []
    again = app.store.job_enqueue_many(
        [new_job(i) for i in range(1000)], now=clock.db_now(), connection=conn
    )
    conn.commit()
    assert again[0] > ids[-1]
    assert [app.store.job_get(i).args for i in again[:3]] == [[0], [1], [2]]


@pytest.mark.parametrize("keyed", [False, True])
def test_two_big_batches_in_one_callers_transaction(
    make_app, clock: FakeClock, raw, keyed: bool
) -> None:
    # The staging table lives until the commit: a second batch in the same transaction
    # once found the first batch's rows there (more rows inserted than ids returned, or
    # the first batch's arguments given to the second's jobs).
    app = make_app()
    conn = raw()

    def batch(offset: int) -> list[NewJob]:
        return [
            new_job(offset + i, unique_key=f"k{offset + i}" if keyed else None) for i in range(600)
        ]

    first = app.store.job_enqueue_many(batch(0), now=clock.db_now(), connection=conn)
    second = app.store.job_enqueue_many(batch(10_000), now=clock.db_now(), connection=conn)
    conn.commit()
    assert len(set(first + second)) == 1200
    assert len(app.store.job_list(limit=10_000)) == 1200
    assert app.store.job_get(second[0]).args == [10_000]
    assert app.store.job_get(second[-1]).args == [10_599]


def test_copy_and_array_paths_store_the_same_job(make_app, clock: FakeClock) -> None:
    # Big keyless batches are COPYed straight into the table (ids taken first); small
    # ones go through arrays: every field must come out the same.
    app = make_app()
    job = NewJob(
        task="tests.add",
        args=json.dumps(["é ü ✓", 1.5, None, {"k": [1, 2]}]),
        kwargs=json.dumps({"y": "tab\tnew\nline"}),
        queue="q1",
        priority=-7,
        retries=3,
        retry_backoff=2.5,
        retry_on=("builtins.ValueError", "tock.JobTimeout"),
        timeout=12.25,
        at_most_once=True,
        max_rescues=2,
        run_after=1.000001,
    )
    (small,) = app.store.job_enqueue_many([job], now=clock.db_now())
    big = app.store.job_enqueue_many([job] * 300, now=clock.db_now())
    expected = app.store.job_get(small)
    for job_id in (big[0], big[-1]):
        got = app.store.job_get(job_id)
        assert got.id == job_id
        got.id = expected.id
        assert got == expected
    assert big == sorted(big) and big[0] > small


def test_the_live_table_is_vacuumed_once_it_holds_enough_dead_rows(
    make_app, raw, clock: FakeClock
) -> None:
    # Churn leaves dead row versions; the vacuumer reclaims them without autovacuum
    # (which may be off on the server: table settings cannot turn it back on).
    from tock.duties import Vacuumer, VacuumerConfig
    from tock.jobs import Outcome, OutcomeKind

    app = make_app()
    store = store_of(app)
    store.worker_register(WorkerInfo("w", "h", 1, ("default",), 10), now=clock.db_now())
    app.task(add).enqueue_many([(i, i) for i in range(600)])
    claimed = store.job_claim_batch(
        worker_id="w", queues=["default"], limit=600, free=600, now=clock.db_now()
    )
    assert len(claimed) == 600
    done = [Outcome(j.id, j.claim_token or 0, OutcomeKind.SUCCEEDED, result="0") for j in claimed]
    assert store.job_complete_batch(done, now=clock.db_now()) == 600
    vacuumer = Vacuumer(store, clock, VacuumerConfig(min_dead_rows=500))
    assert not Vacuumer(store, clock, VacuumerConfig(min_dead_rows=10**9)).run_once()
    # PostgreSQL publishes a busy backend's row counts within a second, an idle one's
    # within ten: poll.
    deadline = threading.Event()
    for _ in range(600):
        if vacuumer.run_once():
            break
        deadline.wait(0.05)
    else:
        pytest.fail("the vacuumer never saw the dead rows")
    conn = raw(autocommit=True)
    for _ in range(200):
        (dead,) = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_all_tables WHERE relid = to_regclass(%s)",
            (f'"{store.schema}".tock_jobs',),
        ).fetchone()
        if dead < 500:
            break
        deadline.wait(0.05)
    assert dead < 500


def test_a_bad_item_in_a_big_batch_on_the_callers_connection_leaves_its_work_alone(
    make_app, raw
) -> None:
    # A bad item is refused before the caller's transaction is touched: its own work
    # stays, and a later enqueue in the same transaction commits with it.
    app = make_app()
    t = app.task(add)
    conn = raw()
    conn.execute("CREATE TEMP TABLE orders (id int)")
    conn.execute("INSERT INTO orders VALUES (1)")
    items: list[object] = [(i, i) for i in range(6_000)]
    items[5_000] = "nope"
    with pytest.raises(TypeError, match="item 5000"):
        t.using(connection=conn).enqueue_many(items)  # type: ignore[arg-type]
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (1,)
    kept = t.using(connection=conn).enqueue_many([(1, 1), (2, 2)])
    conn.commit()
    assert [j.id for j in app.store.job_list(limit=10)] == [kept[1].id, kept[0].id]
