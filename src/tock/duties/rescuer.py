"""The rescuer: returns jobs of dead workers to pending (lost, for at-most-once tasks).

A worker is dead when its heartbeat is older than ``rescue_after``, or when its liveness
token (a lock the operating system releases when the process dies) is free and its
heartbeat is older than two heartbeat intervals (docs/design.md: death and rescue). A rescue uses
up no retry; past a job's ``max_rescues`` it ends ``failed`` ("worker died").

An old heartbeat is evidence only while the store keeps pace: a writer that holds the
database's write lock for long (a paused process, a stuck disk) stalls every heartbeat
alike. So a pass that waited long for the lock, or that finds its own worker's heartbeat
old, trusts only released tokens, and so does the pass after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tock._service import Duty
from tock.clock import Clock
from tock.logs import job_settled
from tock.store import RescueReport, Store

log = logging.getLogger("tock.rescuer")


@dataclass(frozen=True)
class RescuerConfig:
    interval: float = 2.0
    rescue_after: float = 10.0  #: a heartbeat older than this = dead
    heartbeat_interval: float = 2.0  #: a released token + two missed heartbeats = dead


class Rescuer(Duty):
    """Finds dead workers and rescues their jobs, one pass every ``interval``."""

    name = "rescuer"

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
        self._periodic()

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
            lease=self.pass_lease(),
        )
        self._trusted = report.kept_pace
        log_rescue(self.store, report, "rescued the jobs of dead worker(s) %s")
        return report


#: lost and failed jobs a rescue logs one by one (each read back from the store); past
#: this, only their count
LOG_EACH_MAX = 100


def log_rescue(store: Store, report: RescueReport, what: str, *, say_none: bool = True) -> None:
    """Say what a rescue did: a WARNING when it settled jobs (and one per job that ended
    lost or failed, see ``tock.logs``); with ``say_none``, INFO when the dead workers held
    none."""
    workers = ", ".join(report.dead_workers) or "?"
    if not (report.rescued or report.lost or report.failed):
        if report.dead_workers and say_none:
            log.info(what + ": they held no jobs", workers)
        return
    log.warning(
        what + ": %d back to pending, %d lost, %d failed",
        workers,
        len(report.rescued),
        len(report.lost),
        len(report.failed),
    )
    ended = [*report.lost, *report.failed]
    records = []
    for job_id in ended[:LOG_EACH_MAX]:
        try:
            records.append(store.job_get(job_id))
        except Exception:  # pruned meanwhile, or the store went away: the count was said
            continue
    job_settled(records)
