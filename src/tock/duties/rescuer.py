"""The rescuer: returns jobs of dead workers to pending (lost, for at-most-once tasks).

A worker is dead when its liveness token (a lock the operating system or the database
server releases when the process dies) stays free over ``token_grace``, or when its
heartbeat is older than ``rescue_after`` (docs/design.md: Death and rescue). Between full
passes (every ``interval``) the rescuer looks at every token each ``watch_interval``: a
token seen free at two looks ``token_grace`` apart starts a pass at once, so a killed
worker's jobs are back within about half a second. The grace lets a live worker whose
session alone was ended (an administrator, a proxy) take its token again first; a store
whose tokens are not sessions (``token_sessions``: SQLite's file locks) needs none. The store
reports no free token for a while after a server restart or a lost connection of this
process's own (``worker_tokens_free``). A free token with a heartbeat older than two
heartbeat intervals also counts, in every full pass. A rescue uses up no retry; past a
job's ``max_rescues`` it ends ``failed`` ("worker died").

An old heartbeat is evidence only while the store keeps pace: a writer that holds the
database's write lock for long (a paused process, a stuck disk) stalls every heartbeat
alike. So a pass that waited long for the lock, or that finds its own worker's heartbeat
old, trusts only released tokens, and so does the pass after it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from tock._service import Duty
from tock.clock import Clock
from tock.logs import job_settled
from tock.store import RescueReport, Store

log = logging.getLogger("tock.rescuer")


@dataclass(frozen=True)
class RescuerConfig:
    interval: float = 2.0  #: a full pass
    rescue_after: float = 10.0  #: a heartbeat older than this = dead
    heartbeat_interval: float = 2.0  #: a released token + two missed heartbeats = dead
    watch_interval: float = 0.1  #: a look at every liveness token
    token_grace: float = 0.3  #: a token free this long = dead

    def __post_init__(self) -> None:
        for name in ("interval", "rescue_after", "heartbeat_interval", "watch_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RescuerConfig.{name} must be positive")
        if not self.token_grace >= 0:
            raise ValueError("RescuerConfig.token_grace must be zero or more")


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
        self._free_since: dict[str, float] = {}  #: worker -> when its token was seen free
        #: monotonic time of the next full pass
        self._next_pass = clock.monotonic() + self.config.interval
        self._periodic(lambda: self.tick(), interval=self.config.watch_interval)

    def start(self) -> None:
        # The first full pass an interval after the start, as before the watch: a
        # freshly elected leader's first look at heartbeats is not its first instant.
        if not self.running:
            self._next_pass = self.clock.monotonic() + self.config.interval
        super().start()

    def tick(self) -> RescueReport | None:
        """One look at the tokens; a pass when one was free over the grace, or when the
        full pass is due. None when nothing ran."""
        now = self.clock.monotonic()
        free = self.store.worker_tokens_free(
            exclude=self.worker_id, settle=2 * self.config.heartbeat_interval
        )
        self._free_since = {w: self._free_since.get(w, now) for w in free}
        grace = self.config.token_grace if self.store.token_sessions else 0.0
        ripe = [w for w, since in self._free_since.items() if now - since >= grace]
        full = now >= self._next_pass
        if not ripe and not full:
            return None
        report = self.run_once(released=ripe, heartbeats=full)
        for worker_id in report.dead_workers:
            self._free_since.pop(worker_id, None)
        return report

    def run_once(self, *, released: Sequence[str] = (), heartbeats: bool = True) -> RescueReport:
        """One pass; ``released``: workers whose token was seen free over the grace.
        Without ``heartbeats`` (a pass the watch started between full ones) no heartbeat's
        age counts and the full passes' rhythm is kept."""
        if heartbeats:
            self._next_pass = self.clock.monotonic() + self.config.interval
        # After a pass in which heartbeats could not be trusted (the store stalled, or
        # this process was paused), the next full pass does not trust them either: by
        # the one after, every live worker has had a full interval to write its heartbeat.
        report = self.store.worker_rescue(
            rescue_after=self.config.rescue_after,
            token_after=2 * self.config.heartbeat_interval,
            now=self.clock.db_now(),
            heartbeat_deaths=self._trusted and heartbeats,
            exclude=self.worker_id,
            lease=self.pass_lease(),
            released=released,
        )
        if heartbeats:
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
    if not (report.rescued or report.lost or report.failed or report.canceled):
        if report.dead_workers and say_none:
            log.info(what + ": they held no jobs", workers)
        return
    stopped = f", {len(report.canceled)} canceled (a stop was asked)" if report.canceled else ""
    log.warning(
        what + ": %d back to pending, %d lost, %d failed%s",
        workers,
        len(report.rescued),
        len(report.lost),
        len(report.failed),
        stopped,
    )
    ended = [*report.lost, *report.failed]
    records = []
    for job_id in ended[:LOG_EACH_MAX]:
        try:
            records.append(store.job_get(job_id))
        except Exception:  # pruned meanwhile, or the store went away: the count was said
            continue
    job_settled(records)
