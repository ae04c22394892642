"""`tock jobs retry` and `tock jobs cancel` through the store: which states, what changes."""

from __future__ import annotations

import json

import pytest
from conftest import ensure_worker

from tock import FakeClock, JobNotFound, JobStatus, TockError
from tock.duties import Rescuer
from tock.jobs import JobRecord, Outcome, OutcomeKind
from tock.store import Store
from tock.store._lists import cancel_one, retry_one

ERROR = json.dumps({"type": "builtins.ValueError", "message": "boom", "traceback": "tb"})


def complete(store: Store, clock: FakeClock, job: JobRecord, kind: OutcomeKind) -> JobRecord:
    assert job.claim_token is not None
    outcome = Outcome(job.id, job.claim_token, kind, result="1", error=ERROR)
    assert store.job_complete_batch([outcome], now=clock.db_now()) == 1
    return store.job_get(job.id)


@pytest.fixture
def failed(store: Store, clock: FakeClock, make_job):
    def make(**fields) -> JobRecord:
        job = make_job(status="running", **fields)
        return complete(store, clock, job, OutcomeKind.FAILED)

    return make


def test_retry_failed_job(store: Store, clock: FakeClock, failed) -> None:
    job = failed(retries=2)
    assert job.attempts == 1
    clock.advance(seconds=100)
    again = retry_one(store, job.id, now=clock.db_now())
    assert again.id == job.id
    assert again.status is JobStatus.PENDING
    assert again.attempts == 0
    assert again.rescues == 0
    assert again.run_at == clock.now()
    assert again.worker_id is None and again.claim_token is None
    assert again.finished_at is None
    assert again.retries == 2
    assert store.job_get(job.id) == again
    ensure_worker(store, "w", clock.db_now())
    (claimed,) = store.job_claim_batch(
        worker_id="w", queues=["default"], limit=1, free=1, now=clock.db_now()
    )
    assert claimed.id == job.id
    assert claimed.attempts == 1


def test_retry_lost_job(store: Store, clock: FakeClock, make_job, make_worker) -> None:
    make_worker("w1")
    job = make_job(status="running", at_most_once=True)
    clock.advance(seconds=11)
    assert Rescuer(store, clock).run_once().lost == [job.id]
    assert store.job_get(job.id).status is JobStatus.LOST
    again = retry_one(store, job.id, now=clock.db_now())
    assert again.status is JobStatus.PENDING
    assert again.attempts == 0


def test_retry_canceled_job(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job()
    assert cancel_one(store, job.id, now=clock.db_now()).status is JobStatus.CANCELED
    again = retry_one(store, job.id, now=clock.db_now())
    assert (again.id, again.status) == (job.id, JobStatus.PENDING)


def test_retry_refuses_pending_and_running(store: Store, clock: FakeClock, make_job) -> None:
    running = make_job(status="running")
    pending = make_job()
    with pytest.raises(TockError, match="pending"):
        retry_one(store, pending.id, now=clock.db_now())
    with pytest.raises(TockError, match="running"):
        retry_one(store, running.id, now=clock.db_now())
    assert store.job_get(pending.id) == pending
    assert store.job_get(running.id) == running


def test_retry_refuses_succeeded(store: Store, clock: FakeClock, make_job) -> None:
    done = complete(store, clock, make_job(status="running"), OutcomeKind.SUCCEEDED)
    with pytest.raises(TockError, match="succeeded"):
        retry_one(store, done.id, now=clock.db_now())
    assert store.job_get(done.id) == done


def test_retry_and_cancel_unknown_job(store: Store, clock: FakeClock) -> None:
    with pytest.raises(JobNotFound):
        retry_one(store, 12345, now=clock.db_now())
    with pytest.raises(JobNotFound):
        cancel_one(store, 12345, now=clock.db_now())


def test_retry_while_a_live_job_holds_the_unique_key(
    store: Store, clock: FakeClock, failed, make_job
) -> None:
    job = failed(unique_key="k")
    holder = make_job(unique_key="k")
    assert holder.id != job.id
    with pytest.raises(TockError, match="unique key"):
        retry_one(store, job.id, now=clock.db_now())
    assert store.job_get(job.id).status is JobStatus.FAILED
    assert store.job_get(holder.id).status is JobStatus.PENDING
    cancel_one(store, holder.id, now=clock.db_now())
    assert retry_one(store, job.id, now=clock.db_now()).status is JobStatus.PENDING


def test_cancel_pending_job(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job(run_after=3600.0)
    clock.advance(seconds=5)
    canceled = cancel_one(store, job.id, now=clock.db_now())
    assert canceled.id == job.id
    assert canceled.status is JobStatus.CANCELED
    assert canceled.finished_at == clock.now()
    assert store.job_get(job.id) == canceled
    clock.advance(seconds=3600)
    ensure_worker(store, "w", clock.db_now())
    assert (
        store.job_claim_batch(
            worker_id="w", queues=["default"], limit=5, free=5, now=clock.db_now()
        )
        == []
    )


def test_cancel_refuses_other_states(store: Store, clock: FakeClock, make_job, failed) -> None:
    running = make_job(status="running")
    with pytest.raises(TockError, match="running"):
        cancel_one(store, running.id, now=clock.db_now())
    assert store.job_get(running.id).status is JobStatus.RUNNING
    done = failed()
    with pytest.raises(TockError, match="failed"):
        cancel_one(store, done.id, now=clock.db_now())
    canceled = make_job()
    cancel_one(store, canceled.id, now=clock.db_now())
    with pytest.raises(TockError, match="canceled"):
        cancel_one(store, canceled.id, now=clock.db_now())
    ok = complete(store, clock, make_job(status="running"), OutcomeKind.SUCCEEDED)
    with pytest.raises(TockError, match="succeeded"):
        cancel_one(store, ok.id, now=clock.db_now())
    assert store.job_get(ok.id) == ok


def test_canceled_job_frees_its_unique_key(store: Store, clock: FakeClock, make_job) -> None:
    first = make_job(unique_key="k")
    cancel_one(store, first.id, now=clock.db_now())
    second = make_job(unique_key="k")
    assert second.id > first.id
