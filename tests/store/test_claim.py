"""Claims and completions through the store protocol."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import ensure_worker

from tock import FakeClock, JobStatus
from tock.duties import Rescuer
from tock.jobs import JobRecord, Outcome, OutcomeKind, Start
from tock.store import Store

T0 = datetime(2030, 1, 1, tzinfo=UTC)
ERROR = json.dumps({"type": "builtins.ValueError", "message": "boom", "traceback": "tb"})


def claim(
    store: Store,
    clock: FakeClock,
    *,
    queues=("default",),
    limit: int = 100,
    free: int | None = None,
    worker: str = "w1",
) -> list[JobRecord]:
    ensure_worker(store, worker, clock.db_now())
    return store.job_claim_batch(
        worker_id=worker,
        queues=list(queues),
        limit=limit,
        free=limit if free is None else free,
        now=clock.db_now(),
    )


# -- order, due times and limits ------------------------------------------------------


def test_claim_order_priority_then_run_at_then_id_across_queues(
    store: Store, clock: FakeClock, make_job
) -> None:
    low = make_job(queue="a", priority=-5)
    late = make_job(queue="b", priority=3)  # same priority as `early`, later run_at
    high = make_job(queue="b", priority=50)
    early = make_job(queue="a", priority=3, run_at=T0 - timedelta(seconds=30))
    tie1 = make_job(queue="a")
    tie2 = make_job(queue="b")
    elsewhere = make_job(queue="c", priority=100)
    claimed = claim(store, clock, queues=("a", "b"))
    assert [j.id for j in claimed] == [high.id, early.id, late.id, tie1.id, tie2.id, low.id]
    assert store.job_get(elsewhere.id).status is JobStatus.PENDING


def test_claim_order_in_a_single_queue(store: Store, clock: FakeClock, make_job) -> None:
    a = make_job(priority=1)
    b = make_job(priority=2)
    c = make_job(priority=2, run_at=T0 - timedelta(seconds=1))
    d = make_job(priority=1)
    make_job(queue="other", priority=100)
    assert [j.id for j in claim(store, clock, limit=2)] == [c.id, b.id]
    assert [j.id for j in claim(store, clock, limit=10)] == [a.id, d.id]
    assert claim(store, clock) == []


def test_claim_respects_limit(store: Store, clock: FakeClock, make_job) -> None:
    jobs = [make_job() for _ in range(5)]
    first = claim(store, clock, limit=3)
    assert [j.id for j in first] == [j.id for j in jobs[:3]]
    second = claim(store, clock, limit=3)
    assert [j.id for j in second] == [j.id for j in jobs[3:]]
    assert claim(store, clock, limit=0) == []


def test_claim_with_no_queues_claims_nothing(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job()
    assert claim(store, clock, queues=()) == []
    assert store.job_get(job.id).status is JobStatus.PENDING


def test_future_job_not_claimed_until_due(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job(run_after=60.0)
    assert store.job_get(job.id).run_at == T0 + timedelta(seconds=60)
    assert claim(store, clock) == []
    assert store.job_next_due(queues=["default"]) == T0 + timedelta(seconds=60)
    clock.advance(seconds=59.999)
    assert claim(store, clock) == []
    clock.advance(seconds=0.001)
    assert [j.id for j in claim(store, clock)] == [job.id]


def test_job_next_due(store: Store, clock: FakeClock, make_job) -> None:
    assert store.job_next_due(queues=["default"]) is None
    make_job(run_after=30.0)
    make_job(run_after=10.0, queue="other")
    assert store.job_next_due(queues=["default"]) == T0 + timedelta(seconds=30)
    assert store.job_next_due(queues=["default", "other"]) == T0 + timedelta(seconds=10)


def test_free_limits_at_most_once_jobs(store: Store, clock: FakeClock, make_job) -> None:
    a = make_job(at_most_once=True, priority=4)
    b = make_job(priority=3)
    c = make_job(at_most_once=True, priority=2)
    d = make_job(priority=1)
    claimed = claim(store, clock, limit=4, free=1)
    # c does not fit the one free slot: the claim stops before it, and d stays behind it.
    assert [j.id for j in claimed] == [a.id, b.id]
    assert store.job_get(c.id).status is JobStatus.PENDING
    assert store.job_get(d.id).status is JobStatus.PENDING
    assert [j.id for j in claim(store, clock, limit=4, free=1)] == [c.id, d.id]


def test_no_free_slot_claims_nothing_behind_an_at_most_once_job(
    store: Store, clock: FakeClock, make_job
) -> None:
    amo = make_job(at_most_once=True)
    plain = make_job()
    assert claim(store, clock, limit=5, free=0) == []
    assert store.job_get(amo.id).status is JobStatus.PENDING
    assert store.job_get(plain.id).status is JobStatus.PENDING
    assert [j.id for j in claim(store, clock, limit=5, free=1)] == [amo.id, plain.id]


def test_prefetch_stops_before_an_at_most_once_job(
    store: Store, clock: FakeClock, make_job
) -> None:
    """A worker whose slots are all busy prefetches only the jobs ahead of the first
    at-most-once job, so a stream of other jobs behind it cannot starve it (the order
    is priority, run_at, id for every kind of job)."""
    ahead = [make_job() for _ in range(3)]
    amo = make_job(at_most_once=True)
    behind = [make_job() for _ in range(3)]
    assert [j.id for j in claim(store, clock, limit=10, free=0)] == [j.id for j in ahead]
    assert claim(store, clock, limit=10, free=0, worker="w2") == []
    # The first worker with a free slot takes it, and whatever follows it.
    claimed = claim(store, clock, limit=10, free=2, worker="w2")
    assert [j.id for j in claimed] == [amo.id, *(j.id for j in behind)]


def test_prefetch_stops_before_an_at_most_once_job_across_queues(
    store: Store, clock: FakeClock, make_job
) -> None:
    first = make_job(queue="a", priority=9)
    amo = make_job(queue="b", priority=5, at_most_once=True)
    later = [make_job(queue="a", priority=1), make_job(queue="b", priority=0)]
    assert [j.id for j in claim(store, clock, queues=("a", "b"), free=0)] == [first.id]
    claimed = claim(store, clock, queues=("a", "b"), free=1)
    assert [j.id for j in claimed] == [amo.id, *(j.id for j in later)]


def test_free_slots_take_several_at_most_once_jobs(
    store: Store, clock: FakeClock, make_job
) -> None:
    jobs = [make_job(at_most_once=n % 2 == 0) for n in range(6)]  # once, plain, once, ...
    claimed = claim(store, clock, limit=6, free=3)
    # Ranks 1-3 fit the free slots; rank 4 is plain; rank 5, at-most-once, does not fit.
    assert [j.id for j in claimed] == [j.id for j in jobs[:4]]
    assert [j.id for j in claim(store, clock, limit=6, free=0)] == []
    assert [j.id for j in claim(store, clock, limit=6, free=1)] == [j.id for j in jobs[4:]]


def test_claim_sets_running_attempts_token_worker(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job()
    clock.advance(seconds=5)
    (record,) = claim(store, clock, worker="w-claim")
    assert record.id == job.id
    assert record.status is JobStatus.RUNNING
    assert record.attempts == 1  # the attempt the worker will run it as
    assert record.claim_token is not None
    assert record.worker_id == "w-claim"
    assert record.started_at is None
    stored = store.job_get(job.id)
    assert stored.claimed  # claimed, not started: no attempt counted yet
    assert (stored.attempts, stored.started_at) == (0, None)
    assert stored.claim_token == record.claim_token and stored.worker_id == "w-claim"


def test_each_claim_has_its_own_token(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job()
    (first,) = claim(store, clock)
    assert (
        store.job_complete_batch(
            [Outcome(job.id, first.claim_token, OutcomeKind.RELEASED)], now=clock.db_now()
        )
        == 1
    )
    (second,) = claim(store, clock)
    assert second.claim_token != first.claim_token


# -- completions ----------------------------------------------------------------------------


def test_succeeded_moves_to_finished(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job(args=[1, 2])
    (record,) = claim(store, clock)
    clock.advance(seconds=2)
    n = store.job_complete_batch(
        [Outcome(job.id, record.claim_token, OutcomeKind.SUCCEEDED, result=json.dumps([3, "x"]))],
        now=clock.db_now(),
    )
    assert n == 1
    done = store.job_get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.result == [3, "x"]
    assert done.finished_at == T0 + timedelta(seconds=2)
    assert done.attempts == 1
    assert done.args == [1, 2]
    assert claim(store, clock) == []
    assert [r.id for r in store.job_list(statuses=[JobStatus.RUNNING, JobStatus.PENDING])] == []


def test_retry_sets_pending_later_and_keeps_error(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job(retries=3)
    (record,) = claim(store, clock)
    clock.advance(seconds=1)
    store.job_complete_batch(
        [Outcome(job.id, record.claim_token, OutcomeKind.RETRY, error=ERROR, delay=30.0)],
        now=clock.db_now(),
    )
    again = store.job_get(job.id)
    assert again.status is JobStatus.PENDING
    assert again.run_at == T0 + timedelta(seconds=31)
    assert again.error == json.loads(ERROR)
    assert again.attempts == 1
    assert again.worker_id is None
    assert again.claim_token is None
    clock.advance(seconds=29)
    assert claim(store, clock) == []
    clock.advance(seconds=1)
    (second,) = claim(store, clock)
    assert second.attempts == 2


def test_failed_keeps_error(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job()
    (record,) = claim(store, clock)
    store.job_complete_batch(
        [Outcome(job.id, record.claim_token, OutcomeKind.FAILED, error=ERROR)], now=clock.db_now()
    )
    failed = store.job_get(job.id)
    assert failed.status is JobStatus.FAILED
    assert failed.error == {"type": "builtins.ValueError", "message": "boom", "traceback": "tb"}
    assert failed.finished_at == T0
    assert failed.result is None


def test_released_hands_back_without_using_an_attempt(
    store: Store, clock: FakeClock, make_job
) -> None:
    job = make_job()
    (record,) = claim(store, clock)
    assert record.attempts == 1
    store.job_complete_batch(
        [Outcome(job.id, record.claim_token, OutcomeKind.RELEASED)], now=clock.db_now()
    )
    back = store.job_get(job.id)
    assert back.status is JobStatus.PENDING
    assert back.attempts == 0
    assert back.worker_id is None
    assert back.claim_token is None
    assert back.run_at == T0
    assert [j.id for j in claim(store, clock)] == [job.id]


def test_completed_with_a_claim_in_one_call(store: Store, clock: FakeClock, make_job) -> None:
    first = make_job()
    (record,) = claim(store, clock)
    second = make_job()
    claimed = store.job_claim_batch(
        worker_id="w1",
        queues=["default"],
        limit=5,
        free=5,
        now=clock.db_now(),
        completed=[Outcome(first.id, record.claim_token, OutcomeKind.SUCCEEDED, result="1")],
    )
    assert [j.id for j in claimed] == [second.id]
    assert store.job_get(first.id).status is JobStatus.SUCCEEDED


def test_completed_applied_even_when_nothing_to_claim(
    store: Store, clock: FakeClock, make_job
) -> None:
    job = make_job()
    (record,) = claim(store, clock)
    claimed = store.job_claim_batch(
        worker_id="w1",
        queues=["default"],
        limit=5,
        free=5,
        now=clock.db_now(),
        completed=[Outcome(job.id, record.claim_token, OutcomeKind.SUCCEEDED, result="1")],
    )
    assert claimed == []
    assert store.job_get(job.id).status is JobStatus.SUCCEEDED


def test_batch_of_mixed_outcomes(store: Store, clock: FakeClock, make_job) -> None:
    jobs = [make_job(retries=1) for _ in range(4)]
    records = claim(store, clock)
    kinds = [OutcomeKind.SUCCEEDED, OutcomeKind.RETRY, OutcomeKind.FAILED, OutcomeKind.RELEASED]
    outcomes = [
        Outcome(
            r.id,
            r.claim_token,
            k,
            result="0" if k is OutcomeKind.SUCCEEDED else None,
            error=ERROR if k in (OutcomeKind.RETRY, OutcomeKind.FAILED) else None,
            delay=5.0,
        )
        for r, k in zip(records, kinds, strict=True)
    ]
    assert store.job_complete_batch(outcomes, now=clock.db_now()) == 4
    assert [store.job_get(j.id).status for j in jobs] == [
        "succeeded",
        "pending",
        "failed",
        "pending",
    ]
    assert store.job_complete_batch([], now=clock.db_now()) == 0


@pytest.mark.parametrize("kind", list(OutcomeKind))
def test_stale_token_changes_nothing(
    store: Store, clock: FakeClock, make_job, make_worker, kind: OutcomeKind
) -> None:
    make_worker("w1")
    job = make_job(status="running", worker="w1")
    first_token = job.claim_token
    clock.advance(seconds=11)
    report = Rescuer(store, clock).run_once()
    assert report.rescued == [job.id]
    (second,) = claim(store, clock, worker="w2")
    assert second.claim_token != first_token
    stale = Outcome(job.id, first_token, kind, result="1", error=ERROR, delay=1.0)
    assert store.job_complete_batch([stale], now=clock.db_now()) == 0
    now = store.job_get(job.id)
    assert now.status is JobStatus.RUNNING
    assert now.worker_id == "w2"
    assert now.claim_token == second.claim_token
    assert now.attempts == second.attempts - 1  # claimed, not started
    assert now.started_at is None
    assert (
        store.job_complete_batch(
            [Outcome(job.id, second.claim_token, OutcomeKind.SUCCEEDED, result="2")],
            now=clock.db_now(),
        )
        == 1
    )
    assert store.job_get(job.id).result == 2


@pytest.mark.parametrize("back", ["released", "retry", "rescued"])
@pytest.mark.parametrize("kind", list(OutcomeKind))
def test_a_job_back_in_pending_holds_no_token(
    store: Store, clock: FakeClock, make_job, back: str, kind: OutcomeKind
) -> None:
    """Only a running job holds a claim token: finishing a batch matches rows by id and
    token alone (not by status), so an outcome with the token of a job that went back to
    pending, and was not claimed again, must change nothing."""
    job = make_job()
    (record,) = claim(store, clock)
    if back == "rescued":
        clock.advance(seconds=11)
        assert Rescuer(store, clock).run_once().rescued == [job.id]
    else:
        handed = OutcomeKind.RELEASED if back == "released" else OutcomeKind.RETRY
        outcome = Outcome(job.id, record.claim_token, handed, error=ERROR, delay=1.0)
        assert store.job_complete_batch([outcome], now=clock.db_now()) == 1
    pending = store.job_get(job.id)
    assert pending.status is JobStatus.PENDING
    assert pending.claim_token is None
    old = Outcome(job.id, record.claim_token, kind, result="1", error=ERROR, delay=1.0)
    assert store.job_complete_batch([old], now=clock.db_now()) == 0
    assert store.job_get(job.id) == pending


def test_outcome_for_a_finished_job_changes_nothing(
    store: Store, clock: FakeClock, make_job
) -> None:
    job = make_job()
    (record,) = claim(store, clock)
    ok = Outcome(job.id, record.claim_token, OutcomeKind.SUCCEEDED, result="1")
    assert store.job_complete_batch([ok], now=clock.db_now()) == 1
    assert store.job_complete_batch([ok], now=clock.db_now()) == 0
    again = Outcome(job.id, record.claim_token, OutcomeKind.FAILED, error=ERROR)
    assert store.job_complete_batch([again], now=clock.db_now()) == 0
    assert store.job_get(job.id).status is JobStatus.SUCCEEDED
    assert store.job_get(job.id).result == 1


# -- starts: an attempt counts when it starts, not when it is claimed -------------------


def start(store: Store, clock: FakeClock, *starts: Start) -> int:
    return store.job_complete_batch([], now=clock.db_now(), started=starts)


def test_claimed_job_is_running_with_no_attempt_until_it_starts(
    store: Store, clock: FakeClock, make_job
) -> None:
    job = make_job()
    (record,) = claim(store, clock)
    claimed = store.job_get(job.id)
    assert claimed.status is JobStatus.RUNNING and claimed.claimed
    assert (claimed.attempts, claimed.started_at) == (0, None)
    clock.advance(seconds=10)
    assert record.claim_token is not None
    assert start(store, clock, Start(job.id, record.claim_token, ago=2.5)) == 1
    running = store.job_get(job.id)
    assert running.status is JobStatus.RUNNING and not running.claimed
    assert running.attempts == 1
    assert running.started_at == T0 + timedelta(seconds=7.5)
    # Once per claim: a start sent again (a batch whose answer was lost) changes nothing.
    clock.advance(seconds=1)
    assert start(store, clock, Start(job.id, record.claim_token, ago=0.0)) == 0
    assert store.job_get(job.id) == running


def test_start_with_a_stale_token_changes_nothing(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job()
    (record,) = claim(store, clock)
    assert record.claim_token is not None
    assert start(store, clock, Start(job.id, record.claim_token + 1)) == 0
    assert store.job_get(job.id).claimed


def test_release_leaves_attempts_unchanged(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job(retries=1)
    (record,) = claim(store, clock)
    store.job_complete_batch(
        [Outcome(job.id, record.claim_token, OutcomeKind.RETRY, error=ERROR, delay=0.0)],
        now=clock.db_now(),
    )
    assert store.job_get(job.id).attempts == 1
    (record,) = claim(store, clock)
    assert record.attempts == 2
    assert store.job_get(job.id).attempts == 1
    store.job_complete_batch(
        [Outcome(job.id, record.claim_token, OutcomeKind.RELEASED)], now=clock.db_now()
    )
    back = store.job_get(job.id)
    assert back.status is JobStatus.PENDING
    assert back.attempts == 1


@pytest.mark.parametrize("kind", [OutcomeKind.SUCCEEDED, OutcomeKind.FAILED, OutcomeKind.RETRY])
def test_outcome_without_a_recorded_start_records_the_attempt(
    store: Store, clock: FakeClock, make_job, kind: OutcomeKind
) -> None:
    plain, timed = make_job(retries=1), make_job(retries=1)
    records = claim(store, clock)
    clock.advance(seconds=60)
    outcomes = [
        Outcome(r.id, r.claim_token, kind, result="1", error=ERROR, delay=30.0) for r in records
    ]
    # No start for the first at all; the second's start goes with its outcome.
    assert records[1].claim_token is not None
    store.job_complete_batch(
        outcomes, now=clock.db_now(), started=[Start(timed.id, records[1].claim_token, 4.0)]
    )
    first, second = store.job_get(plain.id), store.job_get(timed.id)
    assert first.attempts == second.attempts == 1
    assert first.started_at == T0 + timedelta(seconds=60)
    assert second.started_at == T0 + timedelta(seconds=56)
    if kind is OutcomeKind.RETRY:
        assert first.status is JobStatus.PENDING
        clock.advance(seconds=30)
        (again, _) = claim(store, clock)
        assert again.attempts == 2  # the next attempt; the row keeps 1 until it starts
        assert (store.job_get(again.id).attempts, store.job_get(again.id).started_at) == (1, None)
    else:
        assert first.finished_at == T0 + timedelta(seconds=60)


def test_outcome_after_a_recorded_start_counts_the_attempt_once(
    store: Store, clock: FakeClock, make_job
) -> None:
    job = make_job()
    (record,) = claim(store, clock)
    assert record.claim_token is not None
    start(store, clock, Start(job.id, record.claim_token, ago=1.0))
    clock.advance(seconds=5)
    store.job_complete_batch(
        [Outcome(job.id, record.claim_token, OutcomeKind.SUCCEEDED, result="1")],
        now=clock.db_now(),
        started=[Start(job.id, record.claim_token, ago=9.0)],  # recorded already: ignored
    )
    done = store.job_get(job.id)
    assert done.attempts == 1
    assert done.started_at == T0 - timedelta(seconds=1)


def test_starts_outcomes_and_a_claim_in_one_call(store: Store, clock: FakeClock, make_job) -> None:
    ended, retried, going = make_job(retries=1), make_job(retries=1), make_job()
    records = {r.id: r for r in claim(store, clock)}
    waiting = make_job()
    clock.advance(seconds=10)
    tokens = {i: r.claim_token for i, r in records.items()}
    for completed in (
        [Outcome(ended.id, tokens[ended.id], OutcomeKind.SUCCEEDED, result="1")],
        [  # with a retry: the stores take another path
            Outcome(ended.id, tokens[ended.id], OutcomeKind.SUCCEEDED, result="1"),
            Outcome(retried.id, tokens[retried.id], OutcomeKind.RETRY, error=ERROR, delay=99),
        ],
    ):
        claimed = store.job_claim_batch(
            worker_id="w1",
            queues=["default"],
            limit=5,
            free=5,
            now=clock.db_now(),
            completed=completed,
            started=[Start(i, t, ago=float(n)) for n, (i, t) in enumerate(tokens.items(), 1)],
        )
        if len(completed) == 1:
            assert [j.id for j in claimed] == [waiting.id]
            assert store.job_get(retried.id).started_at == T0 + timedelta(seconds=8)
            # The retried job's start is recorded: the next call's retry keeps it.
            store.job_complete_batch([], now=clock.db_now(), started=[])
        else:
            assert claimed == []
    done, back, running = (store.job_get(j.id) for j in (ended, retried, going))
    assert (done.status, done.attempts) == (JobStatus.SUCCEEDED, 1)
    assert done.started_at == T0 + timedelta(seconds=9)
    assert (back.status, back.attempts) == (JobStatus.PENDING, 1)
    assert back.started_at == T0 + timedelta(seconds=8)
    assert (running.status, running.attempts, running.claimed) == (JobStatus.RUNNING, 1, False)
    assert running.started_at == T0 + timedelta(seconds=7)
    assert store.job_get(waiting.id).claimed


def test_job_list_selects_claimed_and_started(store: Store, clock: FakeClock, make_job) -> None:
    first, second = make_job(), make_job()
    records = claim(store, clock)
    pending = make_job()
    assert records[0].claim_token is not None
    start(store, clock, Start(first.id, records[0].claim_token))

    def ids(statuses, started):
        return sorted(j.id for j in store.job_list(statuses=statuses, started=started))

    running = [JobStatus.RUNNING]
    assert ids(running, None) == [first.id, second.id]
    assert ids(running, True) == [first.id]
    assert ids(running, False) == [second.id]
    # The view narrows the running jobs alone.
    assert ids([JobStatus.RUNNING, JobStatus.PENDING], False) == [second.id, pending.id]
    assert ids(None, True) == [first.id, pending.id]
    (stats,) = store.job_stats(now=clock.db_now())
    assert stats.counts[JobStatus.RUNNING] == 2
    assert stats.claimed == 1


def test_claimed_jobs_of_a_dead_worker(
    store: Store, clock: FakeClock, make_worker, make_job
) -> None:
    """A claimed job of a dead worker counts the attempt (it may have started: its start
    waits for the next batch), so that attempts - rescues still counts the task's own
    errors; an at-most-once one ends lost, started or not (docs/design.md)."""
    make_worker("w1")
    begun, waiting = make_job(status="running"), make_job(status="running")
    once = make_job(status="running", at_most_once=True)
    assert begun.claim_token is not None
    start(store, clock, Start(begun.id, begun.claim_token))
    clock.advance(seconds=11)
    report = Rescuer(store, clock).run_once()
    assert sorted(report.rescued) == [begun.id, waiting.id]
    assert report.lost == [once.id]
    for j in (begun, waiting):
        record = store.job_get(j.id)
        assert (record.attempts, record.rescues, record.errors_so_far) == (1, 1, 0)
    lost = store.job_get(once.id)
    assert (lost.status, lost.attempts, lost.rescues) == (JobStatus.LOST, 1, 0)
