"""A worker process: claims jobs from its queues and runs them.

Threads: the claimer (claim + complete, one transaction a turn; with ``claimers`` > 1,
that many turns in flight at once), the executor's ``concurrency`` threads and its event
loop, the heartbeat, the commands (``tock workers stop``, ``tock jobs stop``: read from
the store, docs/design.md: Commands), the elector (every worker is a candidate for leader unless
``duties`` is off), and the duties (scheduler, rescuer, pruner, vacuumer), which run in
the leader only: started when it is elected, stopped when it stops leading. At start-up
the worker writes the app's code schedules (``@app.periodic``) to the store.

Shutdown (SIGTERM or SIGINT, or ``tock workers stop``): a leader resigns first (another
worker leads at once), then the worker stops claiming, hands back claimed jobs that never
started (no attempt used), lets running jobs finish within ``shutdown_grace``; a second signal,
or the end of the grace period, stops at once: running jobs are then settled by the
store as a dead worker's would be (rescued, or ``lost`` for at-most-once tasks).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

from tock import _validate as v
from tock._service import Duty
from tock.duties import (
    Pruner,
    PrunerConfig,
    Rescuer,
    RescuerConfig,
    Scheduler,
    SchedulerConfig,
    Vacuumer,
    VacuumerConfig,
)
from tock.duties.rescuer import log_rescue
from tock.errors import ConfigurationError, TockError
from tock.jobs import JobId
from tock.leader import Elector, ElectorConfig
from tock.store import Lease, RescueReport, WorkerInfo
from tock.worker import completer
from tock.worker.claimer import Claimer
from tock.worker.commands import Commands
from tock.worker.executor import Executor
from tock.worker.heartbeat import Heartbeat

if TYPE_CHECKING:
    from tock.app import Tock

log = logging.getLogger("tock.worker")


#: ``--burst``: the worker exits at the first moment it holds no job and nothing (a job, a
#: retry, a fire of its scheduler) is due within this many seconds
BURST_HORIZON = 0.5
BURST_POLL = 0.02  # seconds between two looks while something is due within the horizon
#: seconds a burst worker stays idle while something is due (a fire its scheduler cannot
#: make into a job, a job it cannot claim) before it exits all the same: what is due
#: within the horizon is claimed within about that horizon, or never
BURST_STUCK = 5.0

MAX_CLAIMERS = 4  # each holds a connection of the store's pool (10 on PostgreSQL)


@dataclass(frozen=True)
class WorkerConfig:
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 10  #: jobs running at once in this process, sync and async together
    #: claimed jobs that may wait for a slot; None (the default): sized from the run times
    #: the worker measures (docs/design.md: "Claims size themselves")
    prefetch: int | None = None
    #: claim transactions in flight at once, each on its own connection; None (the
    #: default): the store's choice, 2 on PostgreSQL and 1 on SQLite (docs/design.md:
    #: "Claimers")
    claimers: int | None = None
    shutdown_grace: float = 30.0
    heartbeat_interval: float = 2.0
    rescuer: RescuerConfig = field(default_factory=RescuerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    vacuumer: VacuumerConfig = field(default_factory=VacuumerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    #: a candidate for leader, running the scheduler, rescuer, pruner and vacuumer while
    #: it leads (``tock worker --no-leader``: never)
    duties: bool = True
    elector: ElectorConfig = field(default_factory=ElectorConfig)
    sync_schedules: bool = True  #: write the app's code schedules to the store at start-up
    burst: bool = False  #: exit once none is held and none is due within BURST_HORIZON

    def __post_init__(self) -> None:
        if not self.queues:
            raise ConfigurationError("a worker needs at least one queue")
        for q in self.queues:
            v.check_name("queue", q)
        if (
            isinstance(self.concurrency, bool)
            or not isinstance(self.concurrency, int)
            or self.concurrency < 1
        ):
            raise ConfigurationError(
                f"concurrency must be a whole number >= 1, not {self.concurrency!r}"
            )
        if self.prefetch is not None and (
            isinstance(self.prefetch, bool)
            or not isinstance(self.prefetch, int)
            or self.prefetch < 0
        ):
            raise ConfigurationError(
                f"prefetch must be a whole number >= 0 (or None: sized from what the worker "
                f"measures), not {self.prefetch!r}"
            )
        if self.claimers is not None and (
            isinstance(self.claimers, bool)
            or not isinstance(self.claimers, int)
            or not 1 <= self.claimers <= MAX_CLAIMERS
        ):
            raise ConfigurationError(
                f"claimers must be a whole number from 1 to {MAX_CLAIMERS} (or None: the "
                f"store's choice), not {self.claimers!r}"
            )
        v.seconds("shutdown_grace", self.shutdown_grace, allow_zero=True)


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self, app: Tock, config: WorkerConfig | None = None, *, worker_id: str | None = None
    ) -> None:
        self.app = app
        self.config = config or WorkerConfig()
        self.id = worker_id or new_worker_id()
        self.store = app.store
        self.clock = app.clock
        self._stop_requested = threading.Event()
        self._hard_stop = threading.Event()
        self._done = threading.Event()
        self.completions = completer.Completions(
            on_add=lambda: None, monotonic=self.clock.monotonic
        )
        self.executor = Executor(
            app.worker_tasks(),
            self.config.concurrency,
            self.completions,
            on_slot_free=self._wake_claimer,
            before_start=self._before_start,
        )
        self.claimer = Claimer(
            self.store,
            self.clock,
            self.executor,
            self.completions,
            worker_id=self.id,
            queues=self.config.queues,
            prefetch=self.config.prefetch,
            burst=self.config.burst,
            lanes=self.config.claimers or self.store.claim_lanes,
            on_error=self.stop,  # graceful: running jobs finish, their outcomes written
        )
        self.info = WorkerInfo(
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            queues=tuple(self.config.queues),
            concurrency=self.config.concurrency,
        )
        self.heartbeat = Heartbeat(
            self.store,
            self.clock,
            self.info,
            self.config.heartbeat_interval,
            on_declared_dead=self._declared_dead,
        )
        self.commands = Commands(
            self.store,
            self.id,
            on_stop=self._asked_to_stop,
            on_stop_jobs=self._stop_jobs,
            on_forget=self.executor.forget_stops,
        )
        rescuer_config = RescuerConfig(
            interval=self.config.rescuer.interval,
            rescue_after=self.config.rescuer.rescue_after,
            heartbeat_interval=self.config.heartbeat_interval,
        )
        self.scheduler = Scheduler(
            self.store,
            self.clock,
            app.tasks,
            self.config.scheduler,
            on_enqueued=self._fired,
        )
        self.rescuer = Rescuer(self.store, self.clock, rescuer_config, worker_id=self.id)
        self.pruner = Pruner(self.store, self.clock, self.config.pruner)
        self.vacuumer = Vacuumer(self.store, self.clock, self.config.vacuumer)
        #: the cluster duties, in the order they start and stop: the scheduler first
        self.duties: list[Duty] = [self.scheduler, self.rescuer, self.pruner, self.vacuumer]
        self.elector = Elector(
            self.store,
            self.clock,
            self.id,
            self.config.elector,
            on_elected=self._elected,
            on_lost=self._not_leading,
        )
        for duty in self.duties:  # their writes carry the lease: fencing
            duty.leader = lambda: self.elector.last_lease

    def _elected(self, lease: Lease) -> None:
        self.start_duties()

    def _not_leading(self) -> None:
        # Without waiting for a pass under way: fencing refuses its writes (a newer
        # term), and the elector must not stall behind a long pass.
        self.stop_duties(wait=False)

    def _before_start(self) -> None:
        """Before a job starts: after two heartbeat intervals without the store
        confirming this worker (a pause), ask it first; declared dead meanwhile, the
        worker hands back what it held unstarted (``_declared_dead``)."""
        self.heartbeat.check(2 * self.config.heartbeat_interval)

    def _declared_dead(self) -> None:
        """Others rescued and may already have run the jobs this worker held: none of
        those it had not started may start now. Each is handed back (a no-op where its
        claim token is stale)."""
        jobs = self.executor.void()
        for job in jobs:
            self.completions.add(completer.released(job))
        if jobs:
            log.warning(
                "worker %s hands back %d job(s) it had claimed but not started",
                self.id,
                len(jobs),
            )
        self._wake_claimer()

    def _asked_to_stop(self) -> None:
        """``tock workers stop``: the same graceful stop as SIGTERM (never a second
        signal's hard stop, though a signal came first)."""
        if self._stop_requested.is_set():
            return
        log.info("stopping: finishing running jobs (up to %g s)", self.config.shutdown_grace)
        self.stop()

    def _stop_jobs(self, ids: Collection[JobId]) -> None:
        """``tock jobs stop``: the jobs waiting for a slot are handed back unstarted (the
        store ends them canceled); running ones are stopped by the executor."""
        for job in self.executor.stop_jobs(ids):
            self.completions.add(completer.released(job))
        self._wake_claimer()

    def _fired(self, queues: set[str], due: datetime) -> None:
        """This worker's scheduler created jobs, the first due at ``due`` (made ahead of
        its fire): if they are ours, the claimer sleeps until then."""
        if not queues.isdisjoint(self.config.queues):
            self.claimer.expect(due)
            self._wake_claimer()

    def _wake_claimer(self) -> None:
        wake = self.claimer.wake
        if not wake.is_set():  # set() takes a lock: every finished job calls this
            wake.set()

    # -- running -----------------------------------------------------------------

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Run until stopped (a signal, ``stop()``, or in burst mode an empty queue)."""
        if install_signal_handlers:
            self._install_signal_handlers()
        self.start()
        try:
            idle_since: float | None = None  # burst: idle without a break since then
            while not self._stop_requested.is_set():
                if self.config.burst:
                    if not self.claimer.wait_drained(0.05):
                        idle_since = None
                        continue
                    if idle_since is None:
                        idle_since = self.clock.monotonic()
                    due = self._due_soon()
                    # Still idle after the look (a claim may have come meanwhile): done.
                    if due is None and self.claimer.wait_drained(0):
                        break
                    if self.clock.monotonic() - idle_since > BURST_STUCK:
                        log.warning(
                            "--burst: %s has stayed due for %g s without this worker "
                            "taking it; exiting all the same",
                            due,
                            BURST_STUCK,
                        )
                        break
                    self._stop_requested.wait(BURST_POLL)  # the claimer sleeps till then
                else:
                    # A timeout keeps the main thread where signal handlers can run.
                    self._stop_requested.wait(0.5)
        finally:
            self._shutdown()
        if self.claimer.error is not None:
            error = self.claimer.error
            raise TockError(
                f"the worker stopped after an unexpected error: {type(error).__name__}: "
                f"{error} (logged above with its traceback)"
            ) from error

    def _due_soon(self) -> str | None:
        """Burst mode: what is due within ``BURST_HORIZON`` (None: nothing): a fire of one
        of this worker's tasks' schedules, when it runs the scheduler, or a job of its
        queues (a retry, a delayed job). Fires are asked first: the scheduler makes a
        fire's job and moves the schedule on in one transaction, so a fire made between
        the two questions shows up as a job in the second."""
        until = self.clock.now() + timedelta(seconds=BURST_HORIZON)
        if self.scheduler.running:
            fire = self.store.schedule_next_due(tasks=list(self.app.tasks))
            if fire is not None and fire <= until:
                return f"a fire at {fire.isoformat()}"
        due = self.store.job_next_due(queues=self.config.queues)
        if due is not None and due <= until:
            return f"a job due at {due.isoformat()}"
        return None

    def start(self) -> None:
        if self.config.sync_schedules:
            synced = self.app.sync_schedules()
            if synced:
                log.info("code schedules written to the store: %s", ", ".join(synced))
        self.store.worker_register(self.info, now=self.clock.db_now())
        self.heartbeat.registered()
        log.info(
            "worker %s started: queues %s, concurrency %d, store %s",
            self.id,
            ",".join(self.config.queues),
            self.config.concurrency,
            self.store.url,
        )
        self.executor.start()
        self.claimer.start()
        self.heartbeat.start()
        self.commands.start()
        if self.config.duties:
            self.elector.start()  # a first turn at once: a lone worker leads from here

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    def start_duties(self) -> None:
        """Start every duty that is not running (when this worker is elected)."""
        for duty in self.duties:
            duty.start()

    def stop_duties(self, *, wait: bool = True) -> None:
        """Stop every running duty after its pass under way (a leader calls this when it
        loses); ``start_duties()`` starts them again. The scheduler stops first, so
        that a worker giving up its duties creates no more jobs."""
        for duty in self.duties:
            duty.stop(wait=wait)

    def stop(self, *, now: bool = False) -> None:
        """Ask for a graceful stop; ``now=True`` (or a second call) stops at once."""
        if self._stop_requested.is_set() or now:
            self._hard_stop.set()
        self._stop_requested.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self._stop_requested.is_set():
                log.warning("second signal: stopping at once")
            else:
                log.info(
                    "stopping: finishing running jobs (up to %g s; signal again to stop at once)",
                    self.config.shutdown_grace,
                )
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _shutdown(self) -> None:
        # Resign first: another worker leads at once, not after the shutdown grace.
        self.elector.stop(resign=True)
        self.claimer.stop_claiming()
        self.scheduler.stop()  # a stopping worker creates no more jobs
        for job in self.executor.take_unstarted():
            self.completions.add(completer.released(job))
        finished = self._wait_running()
        if not finished:
            self.executor.cancel_running()
        if not self.claimer.stop(give_up=self._hard_stop):  # writes every buffered outcome
            log.warning(
                "stopping without recording %d finished job(s): the store does not answer; "
                "they will be rescued and run again (lost, if at most once)",
                len(self.completions),
            )
        self.heartbeat.stop()
        self.commands.stop()
        self.stop_duties()  # whether started at start-up or since (a no-op if not)
        self.executor.stop()
        try:
            report = self.store.worker_unregister(self.id, now=self.clock.db_now())
        except Exception as exc:
            log.warning(
                "could not remove this worker's row (%s): the rescuer of another worker "
                "will settle its jobs",
                exc,
            )
            report = RescueReport()
        log_rescue(self.store, report, "worker %s stopped before its jobs finished", say_none=False)
        log.info("worker %s stopped", self.id)
        self._done.set()

    def _wait_running(self) -> bool:
        deadline = self.clock.monotonic() + self.config.shutdown_grace
        while not self._hard_stop.is_set():
            left = deadline - self.clock.monotonic()
            if self.executor.wait_idle(min(0.05, max(left, 0))):
                return True
            if left <= 0:
                log.warning(
                    "shutdown grace of %g s is over: stopping at once", self.config.shutdown_grace
                )
                return False
        return self.executor.wait_idle(0)


def run_worker(
    app: Tock,
    *,
    queues: Sequence[str] = ("default",),
    concurrency: int = 10,
    prefetch: int | None = None,
    claimers: int | None = None,
    burst: bool = False,
    shutdown_grace: float = 30.0,
) -> Worker:
    worker = Worker(
        app,
        WorkerConfig(
            queues=tuple(queues),
            concurrency=concurrency,
            prefetch=prefetch,
            claimers=claimers,
            burst=burst,
            shutdown_grace=shutdown_grace,
        ),
    )
    worker.run()
    return worker
