"""The heartbeat: one row per worker process, its time written every ~2 s.

If the row is gone, this worker was declared dead (a pause longer than ``rescue_after``)
and its jobs were rescued: it says so (``on_declared_dead``: the worker then starts none
of the jobs it held unstarted), registers again and goes on; completions of jobs it held
before carry stale claim tokens and change nothing.

``last_ok`` is when the store last confirmed the row (monotonic): a worker about to start
a job after a long silence (a pause) calls ``beat()`` first, so that it learns of its
death before it starts anything it no longer holds (docs/design.md: Death and rescue).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tock._service import Periodic
from tock.clock import Clock
from tock.store import Store, WorkerInfo

log = logging.getLogger("tock.worker")


class Heartbeat:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        info: WorkerInfo,
        interval: float = 2.0,
        *,
        on_declared_dead: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.info = info
        self.interval = interval
        self._on_declared_dead = on_declared_dead
        self._lock = threading.Lock()  # one beat at a time: the thread, or a job's start
        self.last_ok = clock.monotonic()  #: when the store last confirmed this worker's row
        # A failed beat is tried again soon (0.1 s, doubling): after a lost connection
        # the token must be taken again well before two intervals have passed.
        self._service = Periodic("heartbeat", interval, self.beat, retry=min(0.1, interval))

    def registered(self) -> None:
        """The row was just written (``worker_register``)."""
        self.last_ok = self.clock.monotonic()

    def beat(self) -> None:
        with self._lock:
            sent = self.clock.monotonic()
            if not self.store.worker_heartbeat(self.info.id, now=self.clock.db_now()):
                log.warning(
                    "worker %s was declared dead by the rescuer (heartbeat too old): its "
                    "unstarted jobs are handed back; registering again",
                    self.info.id,
                )
                self._on_declared_dead()
                self.store.worker_register(self.info, now=self.clock.db_now())
            self.last_ok = sent

    def check(self, max_silence: float) -> None:
        """Beat now if the store has not confirmed the row for ``max_silence`` seconds
        (this process was paused, or the store was away): a death is learnt here. A
        store that does not answer is left to the periodic beat."""
        if self.clock.monotonic() - self.last_ok <= max_silence:
            return
        with self._lock:
            if self.clock.monotonic() - self.last_ok <= max_silence:
                return  # another thread beat meanwhile
        try:
            self.beat()
        except Exception as exc:
            log.debug("heartbeat before a job's start failed: %s", exc)

    def start(self) -> None:
        self._service.start()

    def stop(self) -> None:
        self._service.stop()
