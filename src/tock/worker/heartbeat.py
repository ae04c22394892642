"""The heartbeat: one row per worker process, its time written every ~2 s.

If the row is gone, this worker was declared dead (a pause longer than ``rescue_after``)
and its jobs were rescued: it registers again and goes on; completions of jobs it held
before carry stale claim tokens and change nothing.
"""

from __future__ import annotations

import logging

from tock._service import Periodic
from tock.clock import Clock
from tock.store import Store, WorkerInfo

log = logging.getLogger("tock.worker")


class Heartbeat:
    def __init__(self, store: Store, clock: Clock, info: WorkerInfo, interval: float = 2.0) -> None:
        self.store = store
        self.clock = clock
        self.info = info
        # A failed beat is tried again soon (0.1 s, doubling): after a lost connection
        # the token must be taken again well before two intervals have passed.
        self._service = Periodic("heartbeat", interval, self.beat, retry=min(0.1, interval))

    def beat(self) -> None:
        if not self.store.worker_heartbeat(self.info.id, now=self.clock.db_now()):
            log.warning(
                "worker %s was declared dead by the rescuer (heartbeat too old); registering again",
                self.info.id,
            )
            self.store.worker_register(self.info, now=self.clock.db_now())

    def start(self) -> None:
        self._service.start()

    def stop(self) -> None:
        self._service.stop()
