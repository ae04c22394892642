"""The executor: runs claimed jobs in ``concurrency`` slots, sync and async together.

Sync tasks run on a pool of ``concurrency`` threads; ``async def`` tasks run on one
event-loop thread. A slot is held from a job's start until its attempt is recorded.
Claimed jobs that have no slot yet wait in ``ready`` (the prefetch) in claim order;
at shutdown they are handed back unstarted.

The executor measures how long each job holds its slot (``take_run_times``: the claimer
sizes its claims from it) and wakes the claimer only when it has something to do: a slot
with no job to take, or fewer jobs waiting than ``refill_at`` (docs/design.md: "Claims
size themselves"). A slot taken over by the next waiting job wakes nobody.

Timeouts (docs/design.md: options): an async task is cancelled at its deadline; a sync task
cannot be stopped from outside, so ``ctx.canceled`` is set and its attempt is recorded
as ``tock.JobTimeout`` when its thread returns (the thread keeps its slot until then).

Stops (``tock jobs stop``, docs/design.md: Commands): a stopped job waiting for a slot
is handed back unstarted (the store ends it canceled); a running one gets
``ctx.canceled`` (sync) or its coroutine cancelled (async), and its attempt is recorded
as canceled however it ends.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from tock.errors import JobTimeout
from tock.jobs import JobId, JobRecord, Outcome
from tock.logs import job_finished, job_started
from tock.tasks import Context, Task
from tock.worker import completer

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("tock.worker")


class _Running:
    __slots__ = ("ctx", "future", "timed_out")

    def __init__(self, ctx: Context | None) -> None:
        self.ctx = ctx
        self.timed_out = False
        self.future: asyncio.Future[Any] | None = None


class _Watchdog:
    """One thread for every sync deadline: sets ``timed_out`` and ``ctx.canceled``."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Running]] = []
        self._cond = threading.Condition(threading.Lock())
        self._seq = 0
        self._stopped = False
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float, running: _Running) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tock-watchdog", daemon=True)
                self._thread.start()
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, running))
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, _, running = self._heap[0]
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                running.timed_out = True
                if running.ctx is not None:
                    running.ctx.timed_out = True
                    running.ctx.canceled.set()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()


class Executor:
    def __init__(
        self,
        tasks: dict[str, Task[Any, Any]],
        concurrency: int,
        completions: completer.Completions,
        on_slot_free: Callable[[], None],
        before_start: Callable[[], None] | None = None,
    ) -> None:
        """``before_start``: called before each job starts; the worker checks there that
        it was not declared dead meanwhile (see ``void``)."""
        self.tasks = tasks
        self.concurrency = concurrency
        self.completions = completions
        self._on_slot_free = on_slot_free
        self._before_start = before_start
        self._ready: deque[JobRecord] = deque()
        #: the claimer's refill mark: a job that ends with no more than this many waiting
        #: wakes it (set by the claimer; read without a lock, a stale value only moves a
        #: wake-up by one job)
        self.refill_at = 0
        #: seconds each finished job held its slot, until the claimer takes them
        self._runs: deque[float] = deque()
        #: bumped by ``void``: a job submitted in an earlier epoch does not start
        self.epoch = 0
        self._epochs: dict[int, int] = {}  # job id -> the epoch it was submitted in
        self._running: dict[int, _Running] = {}
        #: jobs asked to stop: not started, or their attempt recorded as canceled
        self._stopped: set[JobId] = set()
        self._busy = 0  # slots held: sync and async together
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._rng = random.Random()
        self._watchdog = _Watchdog()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        for i in range(self.concurrency):
            t = threading.Thread(target=self._thread_main, name=f"tock-exec-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if any(t.is_async for t in self.tasks.values()):
            self._start_loop()

    def _start_loop(self) -> None:
        import asyncio  # only for async tasks: a worker without them never loads it

        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._loop_thread = threading.Thread(target=run, name="tock-asyncio", daemon=True)
        self._loop_thread.start()
        started.wait()

    @property
    def held(self) -> int:
        """Jobs this executor holds: running plus waiting for a slot."""
        return self._busy + len(self._ready)

    @property
    def free(self) -> int:
        """Slots a newly claimed job would start in at once."""
        return max(0, self.concurrency - self._busy - len(self._ready))

    @property
    def waiting(self) -> int:
        """Claimed jobs waiting for a slot (the prefetch held now)."""
        return len(self._ready)

    def take_run_times(self) -> list[float]:
        """The seconds each job finished since the last call held its slot (from taking
        the job to handing its outcome over: the task and the executor's own work)."""
        runs = self._runs
        taken = []
        for _ in range(len(runs)):
            try:
                taken.append(runs.popleft())
            except IndexError:
                break
        return taken

    def let_start(self, timeout: float) -> None:
        """Wait, ``timeout`` at most, until the slot threads took the jobs just handed
        to free slots: a thread that goes on with work of its own right after a submit
        holds the interpreter lock while they wait for it, and their jobs start later
        (about 0.2 ms later, for the claimer's read of the next due job)."""
        monotonic = time.monotonic
        deadline = monotonic() + timeout
        while self._ready and self._busy < self.concurrency and monotonic() < deadline:
            time.sleep(0.00005)

    def submit(self, jobs: list[JobRecord]) -> None:
        with self._cond:
            epoch = self.epoch
            for job in jobs:
                self._epochs[job.id] = epoch
            self._ready.extend(jobs)
            self._cond.notify(len(jobs))

    def void(self) -> list[JobRecord]:
        """The worker was declared dead (paused past ``rescue_after``): no job it held
        unstarted may start, since others may have run them. Returns those waiting for
        a slot; one a thread took but has not started is handed back by that thread."""
        with self._cond:
            self.epoch += 1
            return self._drain_ready()

    def _drain_ready(self) -> list[JobRecord]:
        """Every job waiting for a slot, taken out (the caller holds ``_cond``)."""
        jobs = []
        while self._ready:  # one at a time: threads pop without the lock
            try:
                jobs.append(self._ready.popleft())
            except IndexError:
                break
        for job in jobs:
            self._epochs.pop(job.id, None)
        return jobs

    def _admit(self, job: JobRecord) -> bool:
        """Whether ``job`` may start: not if it was submitted before the last ``void``
        (then it is handed back: a no-op if another worker took it, its claim token
        being stale)."""
        epoch = self._epochs.pop(job.id, self.epoch)
        if self._before_start is not None:
            self._before_start()  # may void (a worker that finds it was declared dead)
        if self._stopped and job.id in self._stopped:
            self.completions.add(completer.released(job))  # the store ends it canceled
            log.info("job %d not started: its stop was asked for", job.id)
            return False
        if epoch == self.epoch:
            return True
        self.completions.add(completer.released(job))
        log.info("job %d not started: this worker was declared dead since it claimed it", job.id)
        return False

    def take_unstarted(self) -> list[JobRecord]:
        """Stop starting jobs; return the claimed ones that never started."""
        with self._cond:
            self._stopping = True
            jobs = self._drain_ready()
            self._cond.notify_all()
        return jobs

    def cancel_running(self) -> None:
        """Hard stop: set every running job's ``canceled``, cancel async tasks."""
        with self._cond:
            running = list(self._running.values())
        for r in running:
            self._cancel(r)

    def stop_jobs(self, ids: Collection[JobId]) -> list[JobRecord]:
        """Stop these jobs (docs/design.md: Commands): those waiting for a slot are taken
        out and returned (the caller hands them back: they never start); running ones
        get ``ctx.canceled`` set or their coroutine cancelled, and end canceled. Ids of
        jobs this executor does not hold are remembered until ``forget_stops``."""
        with self._cond:
            self._stopped.update(ids)
            waiting = []
            while self._ready:  # one at a time: threads pop without the lock
                try:
                    waiting.append(self._ready.popleft())
                except IndexError:
                    break
            taken = [j for j in waiting if j.id in self._stopped]
            kept = [j for j in waiting if j.id not in self._stopped]
            self._ready.extendleft(reversed(kept))
            if kept:
                self._cond.notify(len(kept))
            for job in taken:
                self._epochs.pop(job.id, None)
                self._stopped.discard(job.id)
            running = [r for i, r in self._running.items() if i in self._stopped]
        for r in running:
            self._cancel(r)
        return taken

    def forget_stops(self, keep: Collection[JobId]) -> None:
        """Forget the stops of jobs not in ``keep`` (no longer running in this worker's
        name: their outcome is written)."""
        with self._cond:
            self._stopped.intersection_update(keep)

    def _cancel(self, r: _Running) -> None:
        if r.ctx is not None:
            r.ctx.canceled.set()
        if r.future is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(r.future.cancel)

    def _settle(self, job: JobRecord, outcome: Outcome) -> Outcome:
        """A stopped job's attempt ends canceled, however the task ended."""
        if self._stopped and job.id in self._stopped:
            return completer.canceled(job)
        return outcome

    def wait_idle(self, timeout: float | None, poll: float = 0.01) -> bool:
        """Wait until no job runs or waits; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._busy or self._ready:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._watchdog.stop()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread = self._loop_thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(1.0)  # the loop closes itself (its sockets) once stopped

    # -- running -----------------------------------------------------------------

    def _thread_main(self) -> None:
        ready = self._ready
        runs = self._runs
        note_start = self.completions.start  # an attempt counts from its start, not its claim
        monotonic = time.monotonic
        job = self._next()
        taken = monotonic()
        while job is not None:
            if not self._admit(job):
                job = self._give_up_slot_or_next()
                taken = monotonic()
                continue
            note_start(job)
            job_started(job)
            task = self.tasks.get(job.task)
            if task is None:
                outcome = completer.failed_plainly(
                    job,
                    "tock.UnknownTask",
                    f"no task named {job.task!r} is registered in this worker "
                    "(is the module that defines it imported by the --app?)",
                )
                self._finish(job, outcome)
                job_finished(job, outcome, 0.0)
                job = self._next()
                taken = monotonic()
            elif task.is_async:
                self._start_async(job, task)  # its slot is held on the event loop
                job = self._next()
                taken = monotonic()
            else:
                began = monotonic()
                outcome = self._run_sync(job, task)
                self.completions.add(outcome)
                ended = monotonic()
                job_finished(job, outcome, ended - began)
                runs.append(ended - taken)
                if self._running:
                    self._running.pop(job.id, None)
                # The usual case: the next ready job takes this slot over, without a
                # lock (deque.popleft is atomic), so threads running short jobs never
                # queue for one another.
                try:
                    job = None if self._stopping else ready.popleft()
                except IndexError:
                    job = None
                if job is None:
                    # The slot is given up before the claimer wakes, so that its turn
                    # counts it free: an at-most-once job is claimed only into a free
                    # slot, and a claim that saw none would sleep with the slot idle.
                    with self._cond:
                        self._busy -= 1
                    self._on_slot_free()
                    job = self._next()
                elif len(ready) <= self.refill_at:
                    self._on_slot_free()  # time to claim more; the outcome goes with it
                taken = monotonic()

    def _give_up_slot_or_next(self) -> JobRecord | None:
        """After a job that did not start: the next ready one in the same slot, or the
        slot given up and the next job waited for."""
        try:
            job = None if self._stopping else self._ready.popleft()
        except IndexError:
            job = None
        if job is not None:
            return job
        with self._cond:
            self._busy -= 1
        self._on_slot_free()
        return self._next()

    def _next(self) -> JobRecord | None:
        """Wait for a ready job and a free slot; None once the executor stops."""
        cond = self._cond
        ready = self._ready
        with cond:
            while not ready or self._busy >= self.concurrency:
                if self._stopping and not ready:
                    return None
                cond.wait()
            self._busy += 1
            return ready.popleft()

    def _context(self, job: JobRecord, task: Task[Any, Any]) -> Context | None:
        if not task.options.takes_context:
            return None
        return Context(
            job_id=job.id,
            attempt=job.attempts,
            task=job.task,
            queue=job.queue,
            worker_id=job.worker_id,
            deadline=None if job.timeout is None else time.monotonic() + job.timeout,
        )

    def _run_sync(self, job: JobRecord, task: Task[Any, Any]) -> Outcome:
        ctx = self._context(job, task)
        running = None
        if ctx is not None or job.timeout is not None:
            running = _Running(ctx)
            with self._cond:
                self._running[job.id] = running
                if job.id in self._stopped and ctx is not None:
                    ctx.canceled.set()  # stopped between its admission and now
            if job.timeout is not None:
                deadline = ctx.deadline if ctx is not None else None
                self._watchdog.watch(deadline or time.monotonic() + job.timeout, running)
        try:
            if ctx is not None:
                value = task.fn(ctx, *job.args, **job.kwargs)
            else:
                value = task.fn(*job.args, **job.kwargs)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: the worker survives
            if running is not None and running.timed_out:
                return self._settle(job, self._timed_out(job))
            return self._settle(job, completer.failed_with(job, exc, rng=self._rng))
        if running is not None and running.timed_out:
            return self._settle(job, self._timed_out(job))
        return self._settle(job, completer.succeeded(job, value))

    def _timed_out(self, job: JobRecord) -> Outcome:
        exc = JobTimeout(f"the attempt ran past its timeout of {job.timeout:g} s")
        return completer.failed_with(job, exc, "", rng=self._rng, type_name="tock.JobTimeout")

    def _start_async(self, job: JobRecord, task: Task[Any, Any]) -> None:
        import asyncio  # loaded once (_start_loop): a dictionary lookup from here on

        if self._loop is None:
            with self._cond:
                if self._loop is None:
                    self._start_loop()
        assert self._loop is not None
        running = _Running(self._context(job, task))
        with self._cond:
            self._running[job.id] = running
            future = asyncio.run_coroutine_threadsafe(
                self._run_async(job, task, running), self._loop
            )
            running.future = future  # type: ignore[assignment]
            if job.id in self._stopped:
                self._cancel(running)  # stopped between its admission and now

    async def _run_async(self, job: JobRecord, task: Task[Any, Any], running: _Running) -> None:
        import asyncio

        outcome: Outcome | None = None
        began = time.monotonic()
        try:
            ctx = running.ctx
            coro = (
                task.fn(ctx, *job.args, **job.kwargs)
                if ctx is not None
                else task.fn(*job.args, **job.kwargs)
            )
            if job.timeout is not None:
                # the event loop's clock is time.monotonic(): the context's deadline
                scope = (
                    asyncio.timeout_at(ctx.deadline)
                    if ctx is not None and ctx.deadline is not None
                    else asyncio.timeout(job.timeout)
                )
                try:
                    async with scope:
                        value = await coro
                except TimeoutError:
                    if not scope.expired():
                        raise
                    if ctx is not None:
                        ctx.timed_out = True
                        ctx.canceled.set()
                    outcome = self._timed_out(job)
                    return
            else:
                value = await coro
            outcome = completer.succeeded(job, value)
        except asyncio.CancelledError:
            # Cancelled by a hard stop: the attempt is settled by the store (rescued or
            # lost), not recorded as the task's own error; by a stop: canceled.
            outcome = None
        except BaseException as exc:
            outcome = completer.failed_with(job, exc, rng=self._rng)
        finally:
            if self._stopped and job.id in self._stopped:
                outcome = completer.canceled(job)
            self._finish(job, outcome, began)
            if outcome is not None:
                job_finished(job, outcome, time.monotonic() - began)

    def _finish(self, job: JobRecord, outcome: Outcome | None, began: float | None = None) -> None:
        """The end of a job that holds its slot outside a thread's loop (async, unknown
        task; ``began``: when an async job started): the slot goes to a waiting thread,
        or the claimer is told it may claim."""
        if outcome is not None:
            self.completions.add(outcome)
        if began is not None:
            self._runs.append(time.monotonic() - began)
        with self._cond:
            self._busy -= 1
            if self._running:
                self._running.pop(job.id, None)
            waiting = len(self._ready)
            if waiting:
                self._cond.notify()  # a thread may wait for this slot
        if waiting <= self.refill_at:
            self._on_slot_free()
