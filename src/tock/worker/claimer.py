"""The claimer: one thread that moves jobs between the store and the executor.

Each turn writes the outcomes finished since the last turn and claims new jobs into the
free slots plus the prefetch, in one transaction (DESIGN: the hot path touches the
database once per batch). When there is nothing to do it sleeps until woken: by a slot
freeing, by the store's watch (SQLite: ``PRAGMA data_version`` every ~20 ms), or by the
next delayed job coming due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import timedelta

from tock.clock import Clock
from tock.store import Store
from tock.worker import completer
from tock.worker.executor import Executor

log = logging.getLogger("tock.worker")

IDLE_POLL = 1.0  # the longest sleep without a wake-up: a safety net, not the mechanism


class Claimer:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        executor: Executor,
        completions: completer.Completions,
        *,
        worker_id: str,
        queues: Sequence[str],
        prefetch: int,
        burst: bool = False,
    ) -> None:
        self.store = store
        self.clock = clock
        self.executor = executor
        self.completions = completions
        self.worker_id = worker_id
        self.queues = list(queues)
        self.prefetch = prefetch
        self.burst = burst
        self.wake = threading.Event()
        self._claiming = True
        self._stopped = threading.Event()
        self._drained = threading.Event()  # burst mode: nothing due and nothing held
        self._thread: threading.Thread | None = None
        self._failing = False
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tock-claimer", daemon=True)
        self._thread.start()

    def stop_claiming(self) -> None:
        self._claiming = False
        self.wake.set()

    def stop(self, give_up: threading.Event | None = None) -> bool:
        """Write what is buffered, then end the thread; False if ``give_up`` was set
        first (the store does not answer and someone asked to stop at once)."""
        self._claiming = False
        self._stopped.set()
        self.wake.set()
        thread = self._thread
        while thread is not None and thread.is_alive():
            thread.join(0.1)
            if give_up is not None and give_up.is_set() and thread.is_alive():
                thread.join(1.0)  # one last chance to write
                return not thread.is_alive()
        return True

    def wait_drained(self, timeout: float | None = None) -> bool:
        return self._drained.wait(timeout)

    def _run(self) -> None:
        watch = self.store.job_watch(self.wake.set)
        try:
            while True:
                stopping = self._stopped.is_set()
                self.wake.clear()
                try:
                    busy = self._turn()
                except Exception as exc:  # the database went away: keep outcomes, retry
                    if not self._failing:
                        log.warning("cannot reach the store (%s); will keep retrying", exc)
                    self._failing = True
                    self.wake.wait(0.5)
                    continue
                if self._failing:
                    log.info("the store answers again")
                    self._failing = False
                if stopping and not len(self.completions):
                    return
                if not busy:
                    self.wake.wait(self._idle_timeout())
        finally:
            watch.close()

    def _turn(self) -> bool:
        """One transaction at most; True if there may be more to do right away."""
        outcomes = self.completions.drain()
        executor = self.executor
        want = executor.concurrency + self.prefetch - executor.held
        claimed = []
        try:
            if self._claiming and want > 0:
                claimed = self.store.job_claim_batch(
                    worker_id=self.worker_id,
                    queues=self.queues,
                    limit=want,
                    free=executor.free,
                    now=self.clock.db_now(),
                    completed=outcomes,
                )
            elif outcomes:
                self.store.job_complete_batch(outcomes, now=self.clock.db_now())
        except BaseException:
            # Nothing was written: keep the outcomes for the next turn (their tokens
            # still decide whether they apply).
            for outcome in outcomes:
                self.completions.add(outcome)
            raise
        if claimed:
            executor.submit(claimed)
            self._drained.clear()
            return len(claimed) == want
        if self.burst and executor.held == 0 and not len(self.completions):
            self._drained.set()
        return False

    def _idle_timeout(self) -> float:
        if not self._claiming:
            return 0.05
        if self.executor.held:
            return IDLE_POLL
        try:
            due = self.store.job_next_due(queues=self.queues)
        except Exception:
            return IDLE_POLL
        if due is None:
            return IDLE_POLL
        left = (due - self.clock.now()) / timedelta(seconds=1)
        return min(IDLE_POLL, max(0.001, left))
