"""The worker in-process, on the real clock: wait on events and results, never on sleeps,
and never assert durations."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from tock import ConfigurationError, Context, FakeClock, JobFailed, JobStatus, Tock
from tock.jobs import NewJob
from tock.worker.claimer import Claimer
from tock.worker.completer import Completions
from tock.worker.executor import Executor
from tock.worker.worker import Worker, WorkerConfig

WAIT = 30.0  # generous upper bound for a wait; never an expectation


@contextmanager
def running_worker(app: Tock, **config: Any) -> Iterator[Worker]:
    config.setdefault("duties", False)
    worker = Worker(app, WorkerConfig(**config))
    thread = threading.Thread(
        target=worker.run, kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(WAIT)
        assert not thread.is_alive(), "the worker did not stop"


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    event = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if predicate():
            return
        event.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# -- tasks (registered per test on a fresh app) -----------------------------------------


def noop() -> None:
    return None


def add(x: int, y: int) -> int:
    return x + y


async def async_add(x: int, y: int) -> int:
    await asyncio.sleep(0)
    return x + y


def whoami(ctx: Context, tag: str) -> dict[str, Any]:
    return {
        "job_id": ctx.job_id,
        "attempt": ctx.attempt,
        "task": ctx.task,
        "queue": ctx.queue,
        "tag": tag,
    }


async def async_whoami(ctx: Context) -> list[int]:
    return [ctx.job_id, ctx.attempt]


class Flaky(Exception):
    pass


def flaky(ctx: Context, fail_times: int) -> int:
    if ctx.attempt <= fail_times:
        raise Flaky(f"attempt {ctx.attempt}")
    return ctx.attempt


class Fatal(BaseException):
    pass


def test_sync_and_async_tasks(real_app: Tock) -> None:
    s = real_app.task(name="w.add")(add)
    a = real_app.task(name="w.async_add")(async_add)
    with running_worker(real_app, concurrency=4):
        jobs = [s.enqueue(1, 2), a.enqueue(3, 4), s.enqueue(x=5, y=6), a.enqueue(x=7, y=8)]
        assert [j.result(timeout=WAIT) for j in jobs] == [3, 7, 11, 15]
    record = real_app.store.job_get(jobs[1].id)
    assert record.status is JobStatus.SUCCEEDED
    assert record.attempts == 1
    assert record.started_at is not None and record.finished_at is not None


def test_worker_serves_its_queues_only(real_app: Tock) -> None:
    t = real_app.task(name="w.add")(add)
    with running_worker(real_app, queues=("a", "b")):
        a = t.using(queue="a").enqueue(1, 1)
        b = t.using(queue="b").enqueue(2, 2)
        other = t.enqueue(3, 3)
        assert a.result(timeout=WAIT) == 2
        assert b.result(timeout=WAIT) == 4
        assert other.refresh().status is JobStatus.PENDING
    assert other.refresh().status is JobStatus.PENDING


def test_takes_context(real_app: Tock) -> None:
    s = real_app.task(name="w.whoami", takes_context=True, queue="ctx")(whoami)
    a = real_app.task(name="w.async_whoami", takes_context=True, queue="ctx")(async_whoami)
    with running_worker(real_app, queues=("ctx",)):
        job = s.enqueue("t1")
        ajob = a.enqueue()
        assert job.result(timeout=WAIT) == {
            "job_id": job.id,
            "attempt": 1,
            "task": "w.whoami",
            "queue": "ctx",
            "tag": "t1",
        }
        assert ajob.result(timeout=WAIT) == [ajob.id, 1]


def test_retries_until_success(real_app: Tock) -> None:
    t = real_app.task(name="w.flaky", takes_context=True, retries=3, retry_backoff=0.01)(flaky)
    with running_worker(real_app):
        job = t.enqueue(2)
        assert job.result(timeout=WAIT) == 3
    record = real_app.store.job_get(job.id)
    assert record.attempts == 3
    # A job that succeeded after retries keeps its last error for the record.
    assert record.error is not None
    assert record.error["message"] == "attempt 2"


def test_retries_run_out(real_app: Tock) -> None:
    t = real_app.task(name="w.flaky", takes_context=True, retries=1, retry_backoff=0.01)(flaky)
    with running_worker(real_app):
        job = t.enqueue(5)
        with pytest.raises(JobFailed) as info:
            job.result(timeout=WAIT)
    assert info.value.type == f"{__name__}.Flaky"
    assert info.value.message == "attempt 2"
    assert "Flaky" in info.value.traceback
    assert real_app.store.job_get(job.id).attempts == 2


def test_error_not_in_retry_on_fails_at_once(real_app: Tock) -> None:
    t = real_app.task(
        name="w.flaky", takes_context=True, retries=5, retry_backoff=0.01, retry_on=OSError
    )(flaky)
    with running_worker(real_app):
        job = t.enqueue(1)
        with pytest.raises(JobFailed):
            job.result(timeout=WAIT)
    assert real_app.store.job_get(job.id).attempts == 1


def test_async_timeout(real_app: Tock) -> None:
    seen: dict[str, bool] = {}

    async def slow(ctx: Context) -> None:
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            # the event loop's clock is the deadline's
            seen["past_deadline"] = asyncio.get_running_loop().time() >= ctx.deadline
            raise

    t = real_app.task(name="w.async_slow", takes_context=True, timeout=0.1)(slow)
    with running_worker(real_app):
        job = t.enqueue()
        with pytest.raises(JobFailed) as info:
            job.result(timeout=WAIT)
    assert info.value.type == "tock.JobTimeout"
    assert seen == {"cancelled": True, "past_deadline": True}


def test_sync_timeout_sets_canceled(real_app: Tock) -> None:
    seen: dict[str, bool] = {}

    def slow(ctx: Context) -> str:
        seen["deadline"] = ctx.deadline is not None and not ctx.timed_out
        seen["canceled"] = ctx.canceled.wait(WAIT)
        seen["timed_out"] = ctx.timed_out  # set with canceled, so not a shutdown
        return "returned anyway"

    t = real_app.task(name="w.sync_slow", takes_context=True, timeout=0.1)(slow)
    with running_worker(real_app):
        job = t.enqueue()
        with pytest.raises(JobFailed) as info:
            job.result(timeout=WAIT)
    assert info.value.type == "tock.JobTimeout"
    assert seen == {"deadline": True, "canceled": True, "timed_out": True}


def test_sync_timeout_without_context(real_app: Tock) -> None:
    release = threading.Event()

    def slow() -> int:
        release.wait(WAIT)
        return 1

    t = real_app.task(name="w.sync_slow_plain", timeout=0.05)(slow)
    with running_worker(real_app):
        job = t.enqueue()
        wait_for(lambda: job.refresh().status is JobStatus.RUNNING, "the job to start")
        threading.Timer(0.3, release.set).start()
        with pytest.raises(JobFailed) as info:
            job.result(timeout=WAIT)
    assert info.value.type == "tock.JobTimeout"


def test_timeout_is_retried_like_an_error(real_app: Tock) -> None:
    def slow(ctx: Context) -> int:
        if ctx.attempt == 1:
            ctx.canceled.wait(WAIT)
        return ctx.attempt

    t = real_app.task(
        name="w.slow_once", takes_context=True, timeout=0.1, retries=1, retry_backoff=0.01
    )(slow)
    with running_worker(real_app):
        assert t.enqueue().result(timeout=WAIT) == 2


def test_unknown_task_fails_the_job_and_the_worker_goes_on(real_app: Tock) -> None:
    t = real_app.task(name="w.add")(add)
    store = real_app.store
    (ghost_id,) = store.job_enqueue_many(
        [NewJob(task="no.such.task", args="[]", kwargs="{}")], now=None
    )
    with running_worker(real_app):
        with pytest.raises(JobFailed) as info:
            real_app.job(ghost_id).result(timeout=WAIT)
        assert "no.such.task" in info.value.message
        assert t.enqueue(1, 2).result(timeout=WAIT) == 3


@pytest.mark.parametrize(
    ("exc", "type_name"),
    [
        (SystemExit(3), "builtins.SystemExit"),
        (KeyboardInterrupt(), "builtins.KeyboardInterrupt"),
        (Fatal("fatal"), f"{__name__}.Fatal"),
    ],
)
def test_base_exceptions_fail_the_job_and_the_worker_survives(
    real_app: Tock, exc: BaseException, type_name: str
) -> None:
    def sync_raiser() -> None:
        raise exc

    async def async_raiser() -> None:
        raise exc

    s = real_app.task(name="w.sync_raiser", retries=3, retry_backoff=0.01, retry_on=Exception)(
        sync_raiser
    )
    a = real_app.task(name="w.async_raiser", retries=3, retry_backoff=0.01)(async_raiser)
    t = real_app.task(name="w.add")(add)
    with running_worker(real_app, concurrency=2):
        for job in (s.enqueue(), a.enqueue()):
            with pytest.raises(JobFailed) as info:
                job.result(timeout=WAIT)
            assert info.value.type == type_name
            assert job.refresh().record.attempts == 1
        assert t.enqueue(2, 2).result(timeout=WAIT) == 4


def test_result_that_is_not_json_fails_the_job(real_app: Tock) -> None:
    def bad_result() -> object:
        return {"ok": {1, 2}}

    async def async_bad_result() -> float:
        return float("nan")

    s = real_app.task(name="w.bad_result", retries=2, retry_backoff=0.01)(bad_result)
    a = real_app.task(name="w.async_bad_result")(async_bad_result)
    with running_worker(real_app):
        for job in (s.enqueue(), a.enqueue()):
            with pytest.raises(JobFailed) as info:
                job.result(timeout=WAIT)
            assert info.value.type == "builtins.TypeError"
            assert "return value" in info.value.message
            assert job.refresh().record.attempts == 1  # not retried: the task did not raise


def test_concurrency_cap_counts_sync_and_async_together(real_app: Tock) -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def enter() -> None:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])

    def leave() -> None:
        with lock:
            state["now"] -= 1

    def sync_job(i: int) -> int:
        enter()
        try:
            threading.Event().wait(0.02)
        finally:
            leave()
        return i

    async def async_job(i: int) -> int:
        enter()
        try:
            await asyncio.sleep(0.02)
        finally:
            leave()
        return i

    s = real_app.task(name="w.cap_sync")(sync_job)
    a = real_app.task(name="w.cap_async")(async_job)
    jobs = []
    for i in range(12):
        jobs.append((s if i % 2 else a).enqueue(i))
    with running_worker(real_app, concurrency=3, prefetch=4):
        assert [j.result(timeout=WAIT) for j in jobs] == list(range(12))
    assert 1 <= state["max"] <= 3


def test_at_most_once_jobs_start_in_claim_order_behind_a_prefetch(real_app: Tock) -> None:
    """One slot and a prefetch: at-most-once jobs are claimed only into a free slot, and
    the prefetch never passes one, so every job starts in the order it was enqueued."""
    lock = threading.Lock()
    started: list[str] = []

    def record(tag: str) -> str:
        with lock:
            started.append(tag)
        return tag

    plain = real_app.task(name="w.plain")(record)
    once = real_app.task(name="w.once", at_most_once=True)(record)
    tags = [f"{kind}{i}" for i in range(8) for kind in ("a", "b", "o")]  # o: at-most-once
    jobs = [(once if tag.startswith("o") else plain).enqueue(tag) for tag in tags]
    with running_worker(real_app, concurrency=1, prefetch=5):
        assert [j.result(timeout=WAIT) for j in jobs] == tags
    assert started == tags


def test_a_worker_of_long_jobs_holds_few_beyond_its_slots(real_app: Tock) -> None:
    """Claims size themselves (docs/design.md): four slots of ~200 ms jobs hold at most
    100 ms of their work beyond the slots, two jobs, never a fixed prefetch's worth."""
    lock = threading.Lock()
    held: list[int] = []
    holder: list[Worker] = []
    pace = threading.Event()  # never set: each job takes its 200 ms

    def slow(i: int) -> int:
        with lock:
            if holder:
                held.append(holder[0].executor.held)
        pace.wait(0.2)
        return i

    t = real_app.task(name="w.slow")(slow)
    jobs = t.enqueue_many([(i,) for i in range(24)])
    with running_worker(real_app, concurrency=4) as worker:
        holder.append(worker)
        assert [j.result(timeout=WAIT) for j in jobs] == list(range(24))
        assert worker.claimer.sizer.prefetch <= 2
    assert held and max(held) <= 4 + 2


def test_a_worker_of_no_op_jobs_claims_large_batches(real_app: Tock) -> None:
    """The same rule, short jobs: the worker holds hundreds beyond its ten slots, so a
    claim (one transaction) brings hundreds of jobs, not ten."""
    held: list[int] = []
    holder: list[Worker] = []

    def noop(i: int) -> None:
        if holder:
            held.append(holder[0].executor.held)

    t = real_app.task(name="w.noop")(noop)
    jobs = t.enqueue_many([(i,) for i in range(5_000)])
    with running_worker(real_app) as worker:
        holder.append(worker)
        wait_for(lambda: jobs[-1].refresh().status is JobStatus.SUCCEEDED, "the last job")
    assert max(held) > 200


def test_a_worker_whose_slots_stay_full_still_records_its_finished_jobs(
    real_app: Tock,
) -> None:
    """Outcomes are written within a bounded time of their end, not at the next claim:
    one slot, a job of 50 ms, then a job that holds the slot, with three more waiting
    (above the refill mark: no claim is due). The first job's outcome is in the store
    while the second still runs."""
    started = threading.Event()
    release = threading.Event()

    def paced() -> str:
        release.wait(0.05)
        return "paced"

    def blocker() -> str:
        started.set()
        release.wait(WAIT)
        return "blocked"

    first = real_app.task(name="w.paced")(paced).enqueue()
    held = real_app.task(name="w.blocker")(blocker).enqueue()
    rest = real_app.task(name="w.add")(add).enqueue_many([(i, i) for i in range(3)])
    store = real_app.store
    try:
        with running_worker(real_app, concurrency=1, prefetch=4) as worker:
            assert started.wait(WAIT)
            wait_for(
                lambda: store.job_get(first.id).status is JobStatus.SUCCEEDED,
                "the first job's outcome to be written",
            )
            assert not release.is_set()
            assert store.job_get(held.id).status is JobStatus.RUNNING
            assert worker.executor.held == 4  # the blocker and the three waiting
            release.set()
            assert [j.result(timeout=WAIT) for j in rest] == [0, 2, 4]
    finally:
        release.set()
    assert first.result() == "paced"


def test_two_claimers_run_each_job_once_and_hold_no_more_than_allowed(real_app: Tock) -> None:
    lock = threading.Lock()
    seen: list[int] = []
    held: list[int] = []
    holder: list[Worker] = []

    def record(i: int) -> int:
        with lock:
            seen.append(i)
            if holder:
                held.append(holder[0].executor.held)
        return i

    t = real_app.task(name="w.record")(record)
    jobs = t.enqueue_many([(i,) for i in range(2_000)])
    with running_worker(real_app, concurrency=3, prefetch=40, claimers=2) as worker:
        holder.append(worker)
        wait_for(lambda: len(seen) == len(jobs), "every job to run")
        wait_for(
            lambda: all(j.refresh().status is JobStatus.SUCCEEDED for j in jobs[-50:]),
            "the last outcomes to be written",
        )
    assert sorted(seen) == list(range(2_000))  # each once
    assert max(held) <= 3 + 40  # the two claimers share concurrency + prefetch
    assert [j.refresh().result() for j in jobs[::97]] == list(range(0, 2_000, 97))


def test_a_second_claimer_never_claims_for_an_idle_worker(real_app: Tock) -> None:
    """An idle worker wakes, claims and writes with its first lane alone, which asks for
    the whole room; a backlog then drains with both lanes allowed."""
    lock = threading.Lock()
    lanes: list[tuple[str, int]] = []  # (thread, limit)
    store = real_app.store
    claim = store.job_claim_batch

    def watched(**kwargs: Any) -> Any:
        with lock:
            lanes.append((threading.current_thread().name, kwargs["limit"]))
        return claim(**kwargs)

    t = real_app.task(name="w.lanes")(add)
    with running_worker(real_app, concurrency=4, prefetch=200, claimers=2):
        store.job_claim_batch = watched  # type: ignore[method-assign]
        try:
            for i in range(5):  # one job at a time on an idle worker
                assert t.enqueue(i, 1).result(timeout=WAIT) == i + 1
            with lock:
                idle = list(lanes)
            backlog = t.enqueue_many([(i, 0) for i in range(3_000)])
            assert [j.result(timeout=WAIT) for j in [*backlog[::301], backlog[-1]]] == [
                *range(0, 3_000, 301),
                2_999,
            ]
        finally:
            del store.job_claim_batch
    assert idle, "no claim was seen"
    assert {name for name, _ in idle} == {"tock-claimer-0"}
    assert max(limit for _, limit in idle) > (4 + 200) // 2  # the whole room, not half


def test_the_claim_lanes_share_the_room_only_while_claims_come_back_full(
    app: Tock, clock: FakeClock, make_worker: Callable[..., str]
) -> None:
    app.task(name="w.noop")(noop)
    make_worker("w1")
    app.tasks["w.noop"].enqueue_many([() for _ in range(14)])
    completions = Completions(on_add=lambda: None)
    executor = Executor(dict(app.tasks), 2, completions, lambda: None)
    claimer = Claimer(
        app.store, clock, executor, completions, worker_id="w1", queues=["default"],
        prefetch=6, lanes=2,
    )  # fmt: skip
    limits: list[int] = []
    claim = app.store.job_claim_batch

    def watched(**kwargs: Any) -> Any:
        limits.append(kwargs["limit"])
        return claim(**kwargs)

    app.store.job_claim_batch = watched  # type: ignore[method-assign]
    try:
        claimer._turn()  # no backlog known: the first lane asks for the whole room
        assert limits == [8] and claimer._backlog.is_set()  # 8 of 14: full
        executor.void()  # as if they ran: room again
        claimer._turn()  # a backlog: each lane asks for its half
        assert limits[-1] == 4 and claimer._backlog.is_set()
        executor.void()
        claimer._turn()  # the last 2 of 4: short, the second lane sleeps again
        assert limits[-1] == 4 and not claimer._backlog.is_set()
        executor.void()
        claimer._turn()
        assert limits[-1] == 8  # alone again: the whole room
    finally:
        del app.store.job_claim_batch


def test_the_store_chooses_the_claim_lanes_unless_told(real_app: Tock) -> None:
    expected = 2 if real_app.store.supports_listen_notify else 1  # PostgreSQL: 2
    assert Worker(real_app, WorkerConfig(duties=False)).claimer.lanes == expected
    assert Worker(real_app, WorkerConfig(claimers=1, duties=False)).claimer.lanes == 1


@pytest.mark.parametrize("claimers", [0, 5, True, "2", 1.5])
def test_bad_claimers_are_refused(claimers: Any) -> None:
    with pytest.raises(ConfigurationError, match="claimers must be a whole number from 1 to 4"):
        WorkerConfig(claimers=claimers)


def test_graceful_stop_hands_back_unstarted_jobs(real_app: Tock) -> None:
    started = threading.Event()
    release = threading.Event()

    def blocker() -> str:
        started.set()
        release.wait(WAIT)
        return "done"

    b = real_app.task(name="w.blocker")(blocker)
    t = real_app.task(name="w.add")(add)
    first = b.enqueue()
    waiting = t.enqueue_many([(1, 1), (2, 2), (3, 3)])
    store = real_app.store
    worker = Worker(real_app, WorkerConfig(concurrency=1, prefetch=5, duties=False))
    thread = threading.Thread(
        target=worker.run, kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()
    try:
        assert started.wait(WAIT)
        wait_for(
            lambda: all(store.job_get(j.id).status is JobStatus.RUNNING for j in waiting),
            "the prefetched jobs to be claimed",
        )
        worker.stop()
        wait_for(
            lambda: all(store.job_get(j.id).status is JobStatus.PENDING for j in waiting),
            "the unstarted jobs to be handed back",
        )
        release.set()
        thread.join(WAIT)
        assert not thread.is_alive()
    finally:
        release.set()
        worker.stop(now=True)
        thread.join(WAIT)
    assert first.result(timeout=WAIT) == "done"
    for job in waiting:
        record = store.job_get(job.id)
        assert record.status is JobStatus.PENDING
        assert record.attempts == 0
        assert record.worker_id is None
    assert store.worker_list() == []


def test_worker_registers_and_unregisters(real_app: Tock) -> None:
    real_app.task(name="w.add")(add)
    with running_worker(real_app, queues=("default", "x"), concurrency=2) as worker:
        wait_for(
            lambda: any(w.id == worker.id for w in real_app.store.worker_list()), "registration"
        )
        (row,) = real_app.store.worker_list()
        assert (row.queues, row.concurrency) == (("default", "x"), 2)
    assert real_app.store.worker_list() == []


def test_completion_written_as_json(real_app: Tock) -> None:
    def nested() -> dict[str, Any]:
        return {"a": [1, 2.5, None, True, "é"], "b": {"c": (1, 2)}}

    t = real_app.task(name="w.nested")(nested)
    with running_worker(real_app):
        assert t.enqueue().result(timeout=WAIT) == json.loads(json.dumps(nested()))


def test_worker_with_duties_runs_and_stops(real_app: Tock) -> None:
    t = real_app.task(name="w.add")(add)
    with running_worker(real_app, duties=True):
        assert t.enqueue(20, 22).result(timeout=WAIT) == 42
    assert real_app.store.worker_list() == []


def test_a_fire_of_this_workers_scheduler_wakes_its_claimer_for_its_queues(app: Tock) -> None:
    # The store's watch would notice the job too, but SQLite's only every ~20 ms.
    worker = Worker(app, WorkerConfig(queues=("default", "mail")))
    wake = worker.claimer.wake
    due = app.clock.now() + timedelta(seconds=0.3)
    worker._fired({"reports"}, due)
    assert not wake.is_set() and worker.claimer._due is None
    worker._fired({"reports", "mail"}, due)
    assert wake.is_set()
    assert worker.claimer._due == due  # the claimer then sleeps until the job is due


def test_prefetched_jobs_are_claimed_until_they_start(real_app: Tock) -> None:
    """A --concurrency 1 worker runs one job and holds the others: they are claimed (a
    view of running), with no attempt used, until each starts."""
    release = threading.Event()
    attempts: list[int] = []

    def blocker(ctx: Context) -> None:
        attempts.append(ctx.attempt)
        release.wait(WAIT)

    task = real_app.task(name="w.blocker", takes_context=True)(blocker)
    jobs = task.enqueue_many([(), (), (), ()])
    store = real_app.store
    with running_worker(real_app, concurrency=1, prefetch=3):
        try:
            # The start is recorded with the worker's next batch (within about a second).
            wait_for(
                lambda: [(w.running, w.claimed) for w in store.worker_list()] == [(1, 3)],
                "one job running and three claimed",
            )
            records = [j.refresh().record for j in jobs]
            assert all(r.status is JobStatus.RUNNING for r in records)
            assert sorted((r.claimed, r.attempts) for r in records) == [
                (False, 1),
                (True, 0),
                (True, 0),
                (True, 0),
            ]
            default = real_app.health()["queues"]["default"]
            assert (default["running"], default["claimed"]) == (1, 3)
            claimed = store.job_list(statuses=[JobStatus.RUNNING], started=False)
            assert sorted(j.id for j in claimed) == sorted(r.id for r in records if r.claimed)
        finally:
            release.set()
        for job in jobs:
            job.result(timeout=WAIT)
    assert attempts == [1, 1, 1, 1]
    assert [store.job_get(j.id).attempts for j in jobs] == [1, 1, 1, 1]
