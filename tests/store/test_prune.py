"""The pruner: retention of finished jobs, deleted in batches."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tock import FakeClock, JobNotFound, JobStatus, Tock
from tock.duties import Pruner, PrunerConfig, Rescuer
from tock.jobs import JobRecord, Outcome, OutcomeKind
from tock.store import Store

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
    canceled = store.job_cancel(make_job().id, now=clock.db_now())
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
