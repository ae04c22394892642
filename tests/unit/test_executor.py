"""The executor on its own, without a store: slots, hand-over between jobs, shutdown.

Threads hand a slot from one job to the next without a lock (the ready deque's
``popleft`` is atomic); these tests check what that must never break: each claimed job
starts once, at most ``concurrency`` run at once (async ones included), and jobs handed
back at shutdown are exactly the ones that never started. Real threads, so they wait on
events and never assert durations.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tock import Tock
from tock.jobs import JobRecord, JobStatus, OutcomeKind
from tock.worker.completer import Completions
from tock.worker.executor import Executor

T0 = datetime(2030, 1, 1, tzinfo=UTC)
WAIT = 30.0  # seconds: a safety net for a hung test, never a measurement


def record(job_id: int, task: str, *args: Any) -> JobRecord:
    return JobRecord(
        id=job_id,
        task=task,
        status=JobStatus.RUNNING,
        queue="default",
        priority=0,
        args=list(args),
        kwargs={},
        run_at=T0,
        created_at=T0,
        attempts=1,
        claim_token=7,
    )


class Harness:
    """An executor, the outcomes it reports and a count of slot wake-ups."""

    def __init__(self, app: Tock, concurrency: int) -> None:
        self.completions = Completions(on_add=lambda: None)
        self.wakes = 0
        self.executor = Executor(dict(app.tasks), concurrency, self.completions, self._woken)

    def _woken(self) -> None:
        self.wakes += 1

    def outcomes(self, n: int) -> list[Any]:
        """Wait until ``n`` outcomes are reported; return them."""
        got: list[Any] = []
        deadline = threading.Event()
        for _ in range(int(WAIT / 0.01)):
            got += self.completions.drain()
            if len(got) >= n:
                return got
            deadline.wait(0.01)
        raise AssertionError(f"only {len(got)} of {n} outcomes within {WAIT} s")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Tock]:
    app = Tock(f"sqlite:///{tmp_path / 'tock.db'}")
    yield app
    app.close()


@pytest.fixture
def harness(app: Tock) -> Iterator[Callable[[int], Harness]]:
    made: list[Harness] = []

    def make(concurrency: int) -> Harness:
        h = Harness(app, concurrency)
        made.append(h)
        h.executor.start()
        return h

    yield make
    for h in made:
        h.executor.take_unstarted()
        h.executor.stop()


def test_many_short_jobs_each_run_once_on_every_thread(
    app: Tock, harness: Callable[[int], Harness]
) -> None:
    ran: Counter[int] = Counter()
    threads: set[str] = set()

    @app.task(name="short")
    def short(i: int) -> int:
        ran[i] += 1
        threads.add(threading.current_thread().name)
        return i

    h = harness(4)
    n = 20_000
    for lo in range(0, n, 1_000):
        h.executor.submit([record(i, "short", i) for i in range(lo, lo + 1_000)])
    outcomes = h.outcomes(n)
    assert sorted(o.job_id for o in outcomes) == list(range(n))
    assert all(o.kind is OutcomeKind.SUCCEEDED for o in outcomes)
    assert set(ran.values()) == {1} and len(ran) == n
    assert h.executor.wait_idle(WAIT)
    assert h.executor.held == 0 and h.executor.free == 4
    assert h.wakes >= 1  # the claimer hears of freed slots


def test_sync_and_async_jobs_together_never_exceed_the_slots(
    app: Tock, harness: Callable[[int], Harness]
) -> None:
    lock = threading.Lock()
    running = 0
    most = 0
    release = threading.Event()

    def enter() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)

    def leave() -> None:
        nonlocal running
        with lock:
            running -= 1

    @app.task(name="blocking")
    def blocking() -> None:
        enter()
        release.wait(WAIT)
        leave()

    @app.task(name="waiting")
    async def waiting() -> None:
        enter()
        await asyncio.to_thread(release.wait, WAIT)
        leave()

    @app.task(name="quick")
    def quick() -> None:
        enter()
        leave()

    h = harness(3)
    jobs = []
    for i in range(60):
        task = ("blocking", "waiting", "quick")[i % 3]
        jobs.append(record(i, task))
    h.executor.submit(jobs)
    # Three slots fill with jobs that wait; the rest wait for a slot.
    for _ in range(int(WAIT / 0.01)):
        with lock:
            if running == 3:
                break
        release.wait(0.01)
    assert h.executor.free == 0
    assert h.executor.held + len(h.completions) == 60  # a quick job may have run first
    with lock:
        assert running == 3
    release.set()
    h.outcomes(60)
    assert most == 3


def test_jobs_handed_back_at_shutdown_are_exactly_those_that_never_started(
    app: Tock, harness: Callable[[int], Harness]
) -> None:
    started: Counter[int] = Counter()
    halfway = threading.Event()

    @app.task(name="count")
    def count(i: int) -> None:
        started[i] += 1
        if len(started) == 5_000:
            halfway.set()

    h = harness(4)
    n = 20_000
    h.executor.submit([record(i, "count", i) for i in range(n)])
    assert halfway.wait(WAIT)
    unstarted = h.executor.take_unstarted()  # while the threads are still taking jobs
    assert h.executor.wait_idle(WAIT)
    outcomes = h.completions.drain()
    ran = {o.job_id for o in outcomes}
    back = {j.id for j in unstarted}
    assert ran == set(started) and set(started.values()) == {1}
    assert not ran & back
    assert ran | back == set(range(n))
    assert h.executor.held == 0


def test_outcomes_drained_by_several_claimers_at_once_are_each_taken_once() -> None:
    """With ``--claimers`` > 1 every claim lane drains the outcomes buffer at the start of
    its turn, so two drains race: neither may fail on an item the other took (that failed
    the turn and dropped the outcomes it had taken, leaving those jobs running for good),
    and every outcome goes to exactly one of them."""
    import sys

    from tock.jobs import Outcome

    completions = Completions(on_add=lambda: None)
    n, writers, readers = 40_000, 4, 3
    drained: list[list[Outcome]] = [[] for _ in range(readers)]
    errors: list[BaseException] = []
    written = threading.Barrier(writers + 1)
    done = threading.Event()

    def write(w: int) -> None:
        for i in range(w, n, writers):
            completions.add(Outcome(i, 7, OutcomeKind.SUCCEEDED, result="null"))
        written.wait(WAIT)

    def read(r: int) -> None:
        try:
            while not done.is_set() or len(completions):
                drained[r].extend(completions.drain())
        except BaseException as exc:  # the race this test is about
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: make races likely
    try:
        threads = [threading.Thread(target=read, args=(r,)) for r in range(readers)]
        threads += [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        written.wait(WAIT)
        done.set()
        for t in threads:
            t.join(WAIT)
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    ids = Counter(o.job_id for batch in drained for o in batch)
    assert len(ids) == n and set(ids.values()) == {1}


# -- stops (docs/design.md: Commands) ------------------------------------------------


def test_stop_jobs_waiting_and_running(app: Tock, harness: Callable[[int], Harness]) -> None:
    """Concurrency 2: a sync job with a context sees ctx.canceled, one without runs to its
    end; both are recorded canceled though one raised. The job waiting for a slot is
    taken out unstarted; the other waiting job still runs."""
    from tock import Context

    gate = threading.Event()
    started: list[str] = []

    @app.task(name="watches", takes_context=True)
    def watches(ctx: Context) -> None:
        started.append("watches")
        assert ctx.canceled.wait(WAIT)
        raise RuntimeError("stopped")

    @app.task(name="blind")
    def blind(tag: str) -> str:
        started.append(tag)
        gate.wait(WAIT)
        return tag

    h = harness(2)
    h.executor.submit(
        [
            record(1, "watches"),
            record(2, "blind", "b"),
            record(3, "blind", "w"),
            record(4, "blind", "x"),
        ]
    )
    for _ in range(int(WAIT / 0.01)):
        if len(started) == 2:
            break
        threading.Event().wait(0.01)
    taken = h.executor.stop_jobs({1, 2, 3})
    assert [j.id for j in taken] == [3]  # waiting: out, never started
    gate.set()
    outcomes = {o.job_id: o.kind for o in h.outcomes(3)}
    assert outcomes == {1: OutcomeKind.CANCELED, 2: OutcomeKind.CANCELED, 4: OutcomeKind.SUCCEEDED}
    assert sorted(started) == ["b", "watches", "x"]


def test_stop_an_async_job_cancels_its_coroutine(
    app: Tock, harness: Callable[[int], Harness]
) -> None:
    began = threading.Event()
    cancelled = threading.Event()

    @app.task(name="sleeper")
    async def sleeper() -> None:
        began.set()
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    h = harness(1)
    h.executor.submit([record(1, "sleeper")])
    assert began.wait(WAIT)
    assert h.executor.stop_jobs({1}) == []
    (outcome,) = h.outcomes(1)
    assert outcome.kind is OutcomeKind.CANCELED and cancelled.is_set()


def test_a_stop_learnt_before_the_claim_arrives(
    app: Tock, harness: Callable[[int], Harness]
) -> None:
    """The worker's look at its commands may see a stop of a job its claimer has not
    handed to the executor yet: that job never starts."""
    ran: list[int] = []

    @app.task(name="quick")
    def quick(i: int) -> int:
        ran.append(i)
        return i

    h = harness(1)
    assert h.executor.stop_jobs({5}) == []
    h.executor.submit([record(5, "quick", 5), record(6, "quick", 6)])
    outcomes = {o.job_id: o.kind for o in h.outcomes(2)}
    assert outcomes == {5: OutcomeKind.RELEASED, 6: OutcomeKind.SUCCEEDED}
    assert ran == [6]
    h.executor.forget_stops(keep=())
    h.executor.submit([record(5, "quick", 5)])  # retried later: runs
    assert [o.kind for o in h.outcomes(1)] == [OutcomeKind.SUCCEEDED]
