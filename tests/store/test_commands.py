"""Commands through the store (docs/design.md: Commands): pausing queues, stopping a
worker, stopping jobs; on both stores, on the fake clock."""

from __future__ import annotations

import json

import pytest

from tock import ConfigurationError, FakeClock, JobNotFound, JobStateError, JobStatus
from tock.errors import WorkerNotFound
from tock.jobs import JobRecord, Outcome, OutcomeKind
from tock.store import Store, WorkerCommands

ERROR = json.dumps({"type": "builtins.ValueError", "message": "boom", "traceback": "tb"})


def claim(store: Store, clock: FakeClock, worker: str = "w1", queues=("default",), limit=10):
    return store.job_claim_batch(
        worker_id=worker, queues=list(queues), limit=limit, free=limit, now=clock.db_now()
    )


def outcome(job: JobRecord, kind: OutcomeKind, **fields) -> Outcome:
    assert job.claim_token is not None
    return Outcome(job.id, job.claim_token, kind, **fields)


# -- queues ------------------------------------------------------------------------


def test_pause_and_resume_a_queue(store: Store, clock: FakeClock, make_job, make_worker) -> None:
    make_worker("w1", queues=("default", "emails"))
    job = make_job(queue="emails")
    record = store.queue_pause("emails", now=clock.db_now())
    assert (record.name, record.paused, record.paused_at) == ("emails", True, clock.now())
    assert store.queue_list() == [record]
    assert claim(store, clock, queues=["emails"]) == []
    assert store.job_next_due(queues=["emails"]) is None  # idle workers do not spin on it
    assert store.job_get(job.id).status is JobStatus.PENDING
    # Enqueueing into a paused queue works; the job waits.
    waiting = make_job(queue="emails")
    clock.advance(seconds=5)
    resumed = store.queue_resume("emails", now=clock.db_now())
    assert (resumed.paused, resumed.paused_at) == (False, None)
    assert store.queue_list() == [resumed]
    assert {j.id for j in claim(store, clock, queues=["emails"])} == {job.id, waiting.id}


def test_pausing_twice_keeps_the_first_time(store: Store, clock: FakeClock) -> None:
    first = store.queue_pause("emails", now=clock.db_now())
    clock.advance(seconds=30)
    again = store.queue_pause("emails", now=clock.db_now())
    assert again == first
    store.queue_resume("emails", now=clock.db_now())
    clock.advance(seconds=30)
    assert store.queue_pause("emails", now=clock.db_now()).paused_at == clock.now()


def test_resume_of_a_queue_never_paused(store: Store, clock: FakeClock) -> None:
    record = store.queue_resume("fresh", now=clock.db_now())
    assert (record.name, record.paused, record.paused_at) == ("fresh", False, None)


def test_paused_queue_is_left_out_of_a_claim_across_queues(
    store: Store, clock: FakeClock, make_job, make_worker
) -> None:
    make_worker("w1", queues=("a", "b"))
    in_a = make_job(queue="a", priority=50)  # first in claim order, but paused
    in_b = make_job(queue="b")
    store.queue_pause("a", now=clock.db_now())
    assert [j.id for j in claim(store, clock, queues=["a", "b"])] == [in_b.id]
    assert store.job_next_due(queues=["a", "b"]) is None
    store.queue_resume("a", now=clock.db_now())
    assert [j.id for j in claim(store, clock, queues=["a", "b"])] == [in_a.id]


def test_running_jobs_of_a_paused_queue_complete(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job(status="running")
    store.queue_pause("default", now=clock.db_now())
    assert store.job_complete_batch([outcome(job, OutcomeKind.SUCCEEDED, result="1")], now=None)
    assert store.job_get(job.id).status is JobStatus.SUCCEEDED


@pytest.mark.parametrize("name", ["", "bad name", "x" * 201, "a/b", "new\nline", None, 3])
def test_bad_queue_names_are_refused(store: Store, clock: FakeClock, name) -> None:
    for verb in (store.queue_pause, store.queue_resume):
        with pytest.raises(ConfigurationError, match="invalid queue name"):
            verb(name, now=clock.db_now())
    assert store.queue_list() == []


# -- workers -----------------------------------------------------------------------


def test_stop_a_worker(store: Store, clock: FakeClock, make_worker) -> None:
    make_worker("w1")
    make_worker("w2")
    assert store.worker_commands("w1") == WorkerCommands()
    store.worker_stop_request("w1", now=clock.db_now())
    store.worker_stop_request("w1", now=clock.db_now())  # again: the same
    assert store.worker_commands("w1") == WorkerCommands(stop=True)
    assert store.worker_commands("w2") == WorkerCommands()
    # Registering again (after being declared dead) keeps the request.
    make_worker("w1")
    assert store.worker_commands("w1").stop


def test_stop_an_unknown_worker(store: Store, clock: FakeClock, make_worker) -> None:
    make_worker("w1")
    with pytest.raises(WorkerNotFound, match="'nobody'") as caught:
        store.worker_stop_request("nobody", now=clock.db_now())
    assert caught.value.worker_id == "nobody"
    assert store.worker_commands("w1") == WorkerCommands()
    assert store.worker_commands("nobody") == WorkerCommands()


# -- jobs --------------------------------------------------------------------------


def test_stop_a_running_job(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job(status="running", retries=3)
    other = make_job(status="running")
    record = store.job_stop(job.id, now=clock.db_now())
    assert record.status is JobStatus.RUNNING and record.worker_id == "w1"
    assert store.worker_commands("w1") == WorkerCommands(stop_jobs=frozenset({job.id}))
    # The worker stops the attempt and says so: the job ends canceled.
    done = store.job_complete_batch(
        [outcome(job, OutcomeKind.CANCELED), outcome(other, OutcomeKind.SUCCEEDED, result="1")],
        now=clock.db_now(),
    )
    assert done == 2
    finished = store.job_get(job.id)
    assert finished.status is JobStatus.CANCELED
    assert finished.attempts == 1 and finished.finished_at == clock.now()
    assert store.worker_commands("w1") == WorkerCommands()


def test_a_stopped_job_that_raises_is_not_retried(store: Store, clock: FakeClock, make_job) -> None:
    # The task raised before its worker learnt of the stop: a retry outcome.
    job = make_job(status="running", retries=3)
    store.job_stop(job.id, now=clock.db_now())
    retry = outcome(job, OutcomeKind.RETRY, error=ERROR, delay=0.0)
    store.job_complete_batch([retry], now=clock.db_now())
    record = store.job_get(job.id)
    assert record.status is JobStatus.CANCELED
    assert record.error is not None and record.error["message"] == "boom"
    assert claim(store, clock) == []


def test_a_stopped_job_handed_back_unstarted_ends_canceled(
    store: Store, clock: FakeClock, make_job
) -> None:
    job = make_job(status="running")
    unstopped = make_job(status="running")
    store.job_stop(job.id, now=clock.db_now())
    store.job_complete_batch(
        [outcome(job, OutcomeKind.RELEASED), outcome(unstopped, OutcomeKind.RELEASED)],
        now=clock.db_now(),
    )
    record = store.job_get(job.id)
    assert record.status is JobStatus.CANCELED
    assert record.attempts == 0 and record.started_at is None  # it never started
    assert store.job_get(unstopped.id).status is JobStatus.PENDING


def test_a_stopped_job_of_a_dead_worker_ends_canceled(
    store: Store, clock: FakeClock, make_job, make_worker
) -> None:
    make_worker("w1")
    job = make_job(status="running", retries=3)
    rescued = make_job(status="running")
    store.job_stop(job.id, now=clock.db_now())
    clock.advance(seconds=11)
    report = store.worker_rescue(rescue_after=10, token_after=4, now=clock.db_now())
    assert report.dead_workers == ["w1"]
    assert report.canceled == [job.id] and report.rescued == [rescued.id]
    assert store.job_get(job.id).status is JobStatus.CANCELED
    assert store.job_get(rescued.id).status is JobStatus.PENDING


def test_a_stopped_job_of_a_worker_that_unregisters_ends_canceled(
    store: Store, clock: FakeClock, make_job
) -> None:
    job = make_job(status="running")
    store.job_stop(job.id, now=clock.db_now())
    report = store.worker_unregister("w1", now=clock.db_now())
    assert report.canceled == [job.id]
    assert store.job_get(job.id).status is JobStatus.CANCELED


def test_stop_a_pending_job_cancels_it(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job()
    later = make_job(run_after=3600.0)
    for j in (job, later):
        record = store.job_stop(j.id, now=clock.db_now())
        assert record.status is JobStatus.CANCELED
        assert record.attempts == 0 and record.started_at is None
    assert claim(store, clock) == []


@pytest.mark.parametrize("kind", [OutcomeKind.SUCCEEDED, OutcomeKind.FAILED])
def test_stop_a_finished_job_is_refused(store: Store, clock: FakeClock, make_job, kind) -> None:
    job = make_job(status="running")
    store.job_complete_batch([outcome(job, kind, result="1", error=ERROR)], now=clock.db_now())
    before = store.job_get(job.id)
    with pytest.raises(JobStateError, match=f"cannot stop job {job.id}: it is {kind.value}") as e:
        store.job_stop(job.id, now=clock.db_now())
    assert (e.value.job_id, e.value.state) == (job.id, kind.value)
    assert store.job_get(job.id) == before


def test_stop_a_canceled_job_is_refused(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job()
    store.job_stop(job.id, now=clock.db_now())
    with pytest.raises(JobStateError, match="it is canceled already"):
        store.job_stop(job.id, now=clock.db_now())


def test_stop_an_unknown_job(store: Store, clock: FakeClock) -> None:
    with pytest.raises(JobNotFound, match="job 12345 not found"):
        store.job_stop(12345, now=clock.db_now())


def test_retry_of_a_stopped_job_runs_it_again(store: Store, clock: FakeClock, make_job) -> None:
    job = make_job(status="running")
    store.job_stop(job.id, now=clock.db_now())
    store.job_complete_batch([outcome(job, OutcomeKind.CANCELED)], now=clock.db_now())
    assert store.job_retry_many([job.id], now=clock.db_now()) == [job.id]
    (again,) = claim(store, clock)
    assert again.id == job.id
    # The old request does not follow it: no command for the new attempt.
    assert store.worker_commands("w1") == WorkerCommands()


# -- the worker's look at its commands (tock.worker.commands) ------------------------


def test_commands_poll_passes_each_command_on_once(
    store: Store, clock: FakeClock, make_job
) -> None:
    from tock.worker.commands import Commands

    stops: list[str] = []
    job_stops: list[set[int]] = []
    kept: list[set[int]] = []
    commands = Commands(
        store,
        "w1",
        on_stop=lambda: stops.append("stop"),
        on_stop_jobs=lambda ids: job_stops.append(set(ids)),
        on_forget=lambda keep: kept.append(set(keep)),
    )
    job = make_job(status="running")
    commands.poll()
    assert (stops, job_stops) == ([], [])
    store.job_stop(job.id, now=clock.db_now())
    commands.poll()
    commands.poll()  # the same request again: not passed on twice
    assert job_stops == [{job.id}] and kept[-1] == {job.id}
    store.job_complete_batch([outcome(job, OutcomeKind.CANCELED)], now=clock.db_now())
    commands.poll()
    assert kept[-1] == set()  # its outcome is written: the executor may forget it
    store.worker_stop_request("w1", now=clock.db_now())
    commands.poll()
    commands.poll()
    assert stops == ["stop"]


def test_a_stop_request_after_a_signal_stays_graceful(app) -> None:
    from tock.worker.worker import Worker

    worker = Worker(app)
    worker.stop()  # SIGTERM
    worker._asked_to_stop()  # then `tock workers stop`: not a second signal
    assert worker._stop_requested.is_set() and not worker._hard_stop.is_set()


def test_a_command_wakes_the_watch_where_the_store_has_hints(
    store: Store, other_app, clock: FakeClock, make_worker
) -> None:
    """PostgreSQL: a NOTIFY on the commands channel, on the same LISTEN session as the
    wake-ups; SQLite: no hint, workers poll."""
    import threading

    woke, work = threading.Event(), threading.Event()
    watch = store.worker_command_watch(woke.set)
    if not store.supports_listen_notify:
        assert watch is None
        return
    assert watch is not None
    jobs = store.job_watch(work.set)
    try:
        make_worker("w1")
        # LISTEN starts with the watch's session: ask until a hint arrives (one sent
        # before then is not delivered).
        for _ in range(100):
            other_app.store.worker_stop_request("w1", now=clock.db_now())
            if woke.wait(0.1):
                break
        assert woke.is_set()
        assert not work.is_set()  # a command wakes no claimer
        woke.clear()
        other_app.store.queue_resume("default", now=clock.db_now())
        assert work.wait(30)  # a resume wakes idle workers of the queue
    finally:
        watch.close()
        jobs.close()
