"""The rescuer: returns jobs of dead workers to pending (lost, for at-most-once tasks).

A worker is dead when its heartbeat is older than ``rescue_after``, or when its liveness
token (a lock the operating system releases when the process dies) is free and its
heartbeat is older than two heartbeat intervals (DESIGN: death and rescue). A rescue uses
up no retry; past a job's ``max_rescues`` it ends ``failed`` ("worker died").

An old heartbeat is evidence only while the store keeps pace: a writer that holds the
database's write lock for long (a paused process, a stuck disk) stalls every heartbeat
alike. So a pass that waited long for the lock, or that finds its own worker's heartbeat
old, trusts only released tokens, and so does the pass after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tock._service import Periodic
from tock.clock import Clock
from tock.store import RescueReport, Store

log = logging.getLogger("tock.rescuer")


@dataclass(frozen=True)
class RescuerConfig:
    interval: float = 2.0
    rescue_after: float = 10.0  #: a heartbeat older than this = dead
    heartbeat_interval: float = 2.0  #: a released token + two missed heartbeats = dead


class Rescuer:
    """Finds dead workers and rescues their jobs, one pass every ``interval``."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        config: RescuerConfig | None = None,
        *,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.config = config or RescuerConfig()
        self.worker_id = worker_id  #: the worker this rescuer runs in, if any
        self._trusted = True
        self._service = Periodic("rescuer", self.config.interval, self.run_once)

    def run_once(self) -> RescueReport:
        # After a pass in which heartbeats could not be trusted (the store stalled, or
        # this process was paused), the next pass does not trust them either: by the one
        # after, every live worker has had a full interval to write its heartbeat.
        report = self.store.worker_rescue(
            rescue_after=self.config.rescue_after,
            token_after=2 * self.config.heartbeat_interval,
            now=self.clock.db_now(),
            heartbeat_deaths=self._trusted,
            exclude=self.worker_id,
        )
        self._trusted = report.kept_pace
        if report:
            log.warning(
                "rescued the jobs of dead worker(s) %s: %d back to pending, %d lost, %d failed",
                ", ".join(report.dead_workers),
                len(report.rescued),
                len(report.lost),
                len(report.failed),
            )
        return report

    def start(self) -> None:
        self._service.start()

    def stop(self) -> None:
        self._service.stop()
