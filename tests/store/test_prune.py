"""The pruner: retention of finished jobs, deleted in batches."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tock import FakeClock, JobNotFound, JobStatus, Tock
from tock.duties import Pruner, PrunerConfig, Rescuer
from tock.jobs import JobRecord, NewJob, Outcome, OutcomeKind
from tock.store import Fire, ScheduleRecord, Store
from tock.store._lists import cancel_one

DAY = timedelta(days=1)
ERROR = json.dumps({"type": "builtins.ValueError", "message": "boom", "traceback": ""})


@pytest.fixture
def finished(store: Store, clock: FakeClock, make_job):
    def make(kind: OutcomeKind) -> JobRecord:
        job = make_job(status="running")
        outcome = Outcome(job.id, job.claim_token, kind, result="1", error=ERROR)
        assert store.job_complete_batch([outcome], now=clock.db_now()) == 1
        return store.job_get(job.id)

    return make


def test_prunes_succeeded_and_canceled_after_a_day(
    app: Tock, store: Store, clock: FakeClock, finished, make_job
) -> None:
    ok = finished(OutcomeKind.SUCCEEDED)
    canceled = cancel_one(store, make_job().id, now=clock.db_now())
    failed = finished(OutcomeKind.FAILED)
    clock.advance(DAY - timedelta(seconds=1))
    assert Pruner(store, clock).run_once() == 0
    assert store.job_get(ok.id).status is JobStatus.SUCCEEDED
    clock.advance(seconds=2)
    assert Pruner(store, clock).run_once() == 2
    for job_id in (ok.id, canceled.id):
        with pytest.raises(JobNotFound):
            store.job_get(job_id)
        with pytest.raises(JobNotFound):
            app.job(job_id)
    assert store.job_get(failed.id).status is JobStatus.FAILED


def test_failed_and_lost_are_kept(
    store: Store, clock: FakeClock, finished, make_worker, make_job
) -> None:
    failed = finished(OutcomeKind.FAILED)
    make_worker("dead")
    lost = make_job(status="running", worker="dead", at_most_once=True)
    clock.advance(seconds=11)
    Rescuer(store, clock).run_once()
    clock.advance(timedelta(days=365))
    assert Pruner(store, clock).run_once() == 0
    assert store.job_get(failed.id).status is JobStatus.FAILED
    assert store.job_get(lost.id).status is JobStatus.LOST


def test_live_jobs_are_never_pruned(store: Store, clock: FakeClock, make_job) -> None:
    running = make_job(status="running")
    pending = make_job()
    clock.advance(timedelta(days=30))
    assert Pruner(store, clock).run_once() == 0
    assert store.job_get(pending.id).status is JobStatus.PENDING
    assert store.job_get(running.id).status is JobStatus.RUNNING


def test_prunes_in_batches(store: Store, clock: FakeClock, finished) -> None:
    jobs = [finished(OutcomeKind.SUCCEEDED) for _ in range(7)]
    clock.advance(DAY + timedelta(seconds=1))
    assert Pruner(store, clock, PrunerConfig(batch_size=2)).run_once() == 7
    for job in jobs:
        with pytest.raises(JobNotFound):
            store.job_get(job.id)
    assert store.job_list() == []


def test_batch_size_bounds_each_delete(store: Store, clock: FakeClock, finished) -> None:
    for _ in range(5):
        finished(OutcomeKind.SUCCEEDED)
    clock.advance(DAY + timedelta(seconds=1))
    deleted = store.job_prune(
        retention={JobStatus.SUCCEEDED: DAY.total_seconds()}, batch_size=5, now=clock.db_now()
    )
    assert deleted == 5


def test_retention_counts_from_the_finish(store: Store, clock: FakeClock, finished) -> None:
    early = finished(OutcomeKind.SUCCEEDED)
    clock.advance(timedelta(hours=12))
    late = finished(OutcomeKind.SUCCEEDED)
    clock.advance(timedelta(hours=12), seconds=1)
    assert Pruner(store, clock).run_once() == 1
    with pytest.raises(JobNotFound):
        store.job_get(early.id)
    assert store.job_get(late.id).status is JobStatus.SUCCEEDED


def test_custom_retention(store: Store, clock: FakeClock, finished) -> None:
    failed = finished(OutcomeKind.FAILED)
    clock.advance(seconds=61)
    config = PrunerConfig(retention={JobStatus.FAILED: 60.0})
    assert Pruner(store, clock, config).run_once() == 1
    with pytest.raises(JobNotFound):
        store.job_get(failed.id)


def test_vacuum_below_the_threshold_does_nothing(store: Store) -> None:
    # On SQLite it never has anything to do; on PostgreSQL a fresh table has no dead rows.
    assert store.job_vacuum(min_dead_rows=10**9) is False


# -- fire rows (docs/design.md: "Fire rows are pruned with their job's retention") ---------------


def _schedule(store: Store, clock: FakeClock, name: str = "s1") -> None:
    trigger = json.dumps({"every": 600, "anchor": "1970-01-01T00:00:00+00:00"})
    store.schedule_upsert(
        ScheduleRecord(name=name, task="tests.noop", trigger=trigger, next_fire_at=clock.db_now()),
        now=clock.db_now(),
    )


def _fire(store: Store, clock: FakeClock, *fires: Fire, name: str = "s1") -> list[int]:
    expected = store.schedule_get(name).next_fire_at
    ids = store.schedule_fire(
        name,
        expected_next=expected,
        new_next=(expected or clock.db_now()) + timedelta(minutes=10),
        fires=fires,
        now=clock.db_now(),
    )
    assert ids is not None
    return ids


def _new_job() -> NewJob:
    return NewJob(task="tests.noop", args="[]", kwargs="{}")


def test_job_prune_takes_the_fire_rows_of_its_jobs(
    store: Store, clock: FakeClock, make_worker
) -> None:
    _schedule(store, clock)
    t0 = clock.db_now()
    t1 = t0 + timedelta(minutes=10)
    done, kept = _fire(
        store,
        clock,
        Fire(t0, "enqueued", job=_new_job()),
        Fire(t1, "enqueued", job=_new_job()),
    )
    manual = store.schedule_trigger("s1", _new_job(), now=clock.db_now())
    _fire(store, clock, Fire(t1 + timedelta(minutes=10), "missed"))
    worker = make_worker()
    claimed = store.job_claim_batch(
        worker_id=worker, queues=["default"], limit=10, free=10, now=clock.db_now()
    )
    outcomes = [
        Outcome(j.id, j.claim_token or 0, OutcomeKind.SUCCEEDED, result="null")
        for j in claimed
        if j.id in (done, manual)
    ]
    assert store.job_complete_batch(outcomes, now=clock.db_now()) == 2
    clock.advance(DAY + timedelta(seconds=1))
    assert Pruner(store, clock).run_once() == 2
    left = store.fire_list("s1")
    assert [(f.outcome, f.job_id) for f in left] == [("missed", None), ("enqueued", kept)]
    # The compare-and-set, not the pruned key, keeps the pruned fire from firing again.
    assert (
        store.schedule_fire(
            "s1",
            expected_next=t0,
            new_next=t1,
            fires=[Fire(t0, "enqueued", job=_new_job())],
            now=clock.db_now(),
        )
        is None
    )


def test_fire_prune_deletes_old_runs_of_drops_in_batches(store: Store, clock: FakeClock) -> None:
    start = clock.db_now()
    for name in ("a", "b", "c"):
        _schedule(store, clock, name)
        _fire(store, clock, Fire(start, "missed"), name=name)
    _fire(store, clock, Fire(start + timedelta(minutes=10), "enqueued", job=_new_job()), name="a")
    store.schedule_trigger("a", _new_job(), now=start)
    clock.advance(timedelta(hours=2))
    # A run that goes on stays: its last fire is recent.
    late = start + timedelta(minutes=10)
    _fire(store, clock, Fire(late, "missed", last=clock.db_now(), count=12), name="c")
    older_than = timedelta(hours=1).total_seconds()
    assert store.fire_prune(older_than=older_than, batch_size=1, now=clock.db_now()) == 2
    assert store.fire_list("b") == []
    assert [f.outcome for f in store.fire_list("a")] == ["enqueued", "triggered"]
    (run,) = store.fire_list("c")
    assert (run.at, run.last, run.count) == (start, clock.db_now(), 13)
    assert store.fire_prune(older_than=older_than, batch_size=10, now=clock.db_now()) == 0
