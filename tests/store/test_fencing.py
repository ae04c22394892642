"""Fencing on both stores (docs/design.md: Leader): every write a duty makes as leader
checks its term in its own transaction; once the term is over (a newer one elected, or
the leader resigned) the store refuses it with StaleTerm and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from tock import FakeClock, JobStatus, Tock
from tock.duties import Pruner, Rescuer, Scheduler
from tock.errors import StaleTerm
from tock.store import Lease, Store

TTL = 10.0


def noop() -> None:
    pass


def lead(store: Store, clock: FakeClock, worker: str, *, takeover: bool = False) -> Lease:
    seen = store.leader_get(now=clock.db_now())
    lease = store.leader_elect(
        worker_id=worker, term=seen.term, ttl=TTL, now=clock.db_now(), takeover=takeover
    )
    assert lease is not None
    return lease


@pytest.fixture
def stale(store: Store, clock: FakeClock) -> Lease:
    """The lease of "old", whose term is over: "new" took over."""
    old = lead(store, clock, "old")
    lead(store, clock, "new", takeover=True)
    return old


def test_the_scheduler_of_a_stale_leader_fires_nothing(
    app: Tock, store: Store, clock: FakeClock, stale: Lease
) -> None:
    app.task(name="tests.noop")(noop)
    app.schedule("s", task="tests.noop", every=timedelta(minutes=1))
    before = store.schedule_get("s")
    clock.advance(seconds=60)
    scheduler = Scheduler(store, clock, app.tasks)
    scheduler.leader = lambda: stale
    with pytest.raises(StaleTerm, match=f"leader of term {stale.term}: that term is over"):
        scheduler.run_once()
    assert store.schedule_get("s").next_fire_at == before.next_fire_at
    assert app.list_jobs().jobs == [] and store.fire_list("s", limit=10) == []
    # The current leader's scheduler fires it.
    current = store.leader_get(now=clock.db_now())
    scheduler.leader = lambda: current
    assert len(scheduler.run_once().jobs) == 1


def test_the_rescuer_of_a_stale_leader_rescues_nothing(
    store: Store, clock: FakeClock, make_worker, make_job, stale: Lease
) -> None:
    make_worker("dead")
    job = make_job(status="running", worker="dead")
    clock.advance(seconds=30)
    rescuer = Rescuer(store, clock)
    rescuer.leader = lambda: stale
    with pytest.raises(StaleTerm):
        rescuer.run_once()
    assert store.job_get(job.id).status is JobStatus.RUNNING
    assert [w.id for w in store.worker_list()] == ["dead"]


def test_the_pruner_of_a_stale_leader_deletes_nothing(
    app: Tock, store: Store, clock: FakeClock, stale: Lease
) -> None:
    app.task(name="tests.noop")(noop)
    job = app.tasks["tests.noop"].enqueue()
    app.cancel_job(job.id)
    clock.advance(timedelta(days=2))
    pruner = Pruner(store, clock)
    pruner.leader = lambda: stale
    with pytest.raises(StaleTerm):
        pruner.run_once()
    assert app.get_job(job.id).status is JobStatus.CANCELED
    current = store.leader_get(now=clock.db_now())
    pruner.leader = lambda: current
    assert pruner.run_once() == 1


def test_a_resigned_leader_s_writes_are_refused(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    lease = lead(store, clock, "a")
    make_worker("dead")
    job = make_job(status="running", worker="dead")
    clock.advance(seconds=30)
    store.leader_resign(lease, now=clock.db_now())
    with pytest.raises(StaleTerm):
        store.fire_prune(older_than=0, batch_size=10, now=clock.db_now(), lease=lease)
    with pytest.raises(StaleTerm):
        store.worker_rescue(rescue_after=10, token_after=4, now=clock.db_now(), lease=lease)
    assert store.job_get(job.id).status is JobStatus.RUNNING


@pytest.mark.parametrize("lease_of", [lambda: None])
def test_a_leader_s_duty_without_a_lease_writes_nothing(
    store: Store, clock: FakeClock, make_worker, make_job, lease_of: Callable[[], None]
) -> None:
    """A duty of a worker that has no lease to give (never led) is refused, never
    unfenced."""
    make_worker("dead")
    job = make_job(status="running", worker="dead")
    clock.advance(seconds=30)
    rescuer = Rescuer(store, clock)
    rescuer.leader = lease_of
    with pytest.raises(StaleTerm, match="term -1"):
        rescuer.run_once()
    assert store.job_get(job.id).status is JobStatus.RUNNING


def test_the_current_leader_s_writes_go_through(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    lease = lead(store, clock, "a")
    make_worker("dead")
    job = make_job(status="running", worker="dead")
    clock.advance(seconds=5)
    lease = store.leader_renew(lease, ttl=TTL, now=clock.db_now()) or lease
    clock.advance(seconds=6)
    rescuer = Rescuer(store, clock)
    rescuer.leader = lambda: lease
    assert rescuer.run_once().dead_workers == ["dead"]
    assert store.job_get(job.id).status is JobStatus.PENDING


def test_a_leader_stuck_inside_a_fenced_write_does_not_block_elections(
    store: Store, clock: FakeClock, other_app: Tock, store_kind: str
) -> None:
    """PostgreSQL: the fence holds the lease row FOR SHARE until the write ends; a leader
    paused inside it would block every election. The server ends its session after 2 s
    idle in the transaction: the election goes through and the stuck write never
    commits. (On SQLite a paused writer holds the one write lock: docs/leader.md.)"""
    if store_kind != "postgres":
        pytest.skip("SQLite's writers wait for the one write lock: no row lock to time out")
    import contextlib
    import threading

    import psycopg

    from tock.store.postgres.store import PostgresStore

    assert isinstance(store, PostgresStore)
    lease = lead(store, clock, "stuck")
    conn = psycopg.connect(store._db.conninfo)  # a transaction, as _write() opens one
    try:
        store._fence(conn, lease)  # the fence taken; the leader pauses here
        elected: list[Lease | None] = []
        candidate = threading.Thread(
            target=lambda: elected.append(
                other_app.store.leader_elect(
                    worker_id="next", term=lease.term, ttl=TTL, now=clock.db_now(), takeover=True
                )
            )
        )
        candidate.start()
        candidate.join(timeout=60)
        assert not candidate.is_alive() and elected and elected[0] is not None
        assert elected[0].worker_id == "next" and elected[0].term == lease.term + 1
        # Its session was ended and its write never commits. Going on with the write (the
        # scheduler enqueues a fire's job on it) raises what a lost session raises, not
        # a complaint about the connection given.
        from tock.jobs import NewJob

        job = NewJob(task="tests.noop", args="[]", kwargs="{}")
        with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
            store.job_enqueue_many([job], now=clock.db_now(), connection=conn)
        assert conn.broken
    finally:
        with contextlib.suppress(psycopg.Error):
            conn.close()
