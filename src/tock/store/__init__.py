"""The store: Tock's persistence and coordination layer behind one protocol.

Only modules under ``tock.store`` speak SQL. Every method that depends on the current
time takes ``now``: ``None`` in production (the database's clock decides) and the fake
time in tests. Methods that write accept ``connection=`` where a caller may want the
write inside its own transaction.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from tock.errors import ConfigurationError, SchemaError, StoreError
from tock.jobs import JobId, JobRecord, JobStatus, NewJob, Outcome, Start

if TYPE_CHECKING:
    from tock.store._lists import JobFilter

__all__ = [
    "DEPENDS_ON_OUTCOMES",
    "FIRE_OUTCOMES",
    "Dependencies",
    "Fire",
    "FireRecord",
    "FireRelease",
    "JobCounts",
    "Lease",
    "QueueRecord",
    "QueueStats",
    "RescueReport",
    "ScheduleRecord",
    "Store",
    "Watch",
    "WorkerCommands",
    "WorkerInfo",
    "WorkerRecord",
    "WorkflowRecord",
    "is_outage",
    "open_store",
    "redact_url",
]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    running: int  #: jobs it holds whose attempt has started
    claimed: int = 0  #: jobs it holds (its prefetch) whose attempt has not started


@dataclass(frozen=True, slots=True)
class Lease:
    """The leader's lease as stored (docs/design.md: Leader). ``worker_id`` None: nobody
    leads (never elected, or resigned); ``term`` only grows."""

    worker_id: str | None
    term: int
    elected_at: datetime | None
    expires_at: datetime | None
    expired: bool  #: by the database's clock when it was read: no one holds it now

    @property
    def held(self) -> bool:
        """A leader holds it: named, and not expired when read."""
        return self.worker_id is not None and not self.expired


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    counts: Mapping[JobStatus, int]
    ready: int  #: pending jobs whose run_at has come
    oldest_ready_at: datetime | None
    claimed: int = 0  #: running jobs whose attempt has not started (of counts[RUNNING])


@dataclass(frozen=True, slots=True)
class JobCounts:
    """``Store.job_count``: the jobs of each queue in the admin's groups, bounded
    (docs/design.md: counting jobs).

    ``live``: queue -> group (``blocked``, ``scheduled``, ``ready``, ``claimed``,
    ``started``) -> the count: exact for the running ones (claimed, started); among a
    queue's first ``scan`` pending jobs in claim order for scheduled and ready; among
    the first ``scan`` blocked jobs for blocked. ``finished``: queue -> state
    (``succeeded``, ``failed``, ``canceled``, ``lost``) -> the count among the newest
    ``scan`` jobs of that state. ``cut``: the states (finished ones, and ``blocked``)
    that hold more than ``scan`` jobs, whose counts are therefore lower bounds;
    ``live_cut``: the (queue, group) pairs of a queue holding more than ``scan``
    pending jobs (its scheduled and ready counts are lower bounds)."""

    live: Mapping[str, Mapping[str, int]]
    finished: Mapping[str, Mapping[str, int]]
    cut: frozenset[str]
    live_cut: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True, slots=True)
class QueueRecord:
    """A queue's row in ``tock_queues`` (docs/design.md: Commands): only queues someone
    paused have one. ``paused_at``: since when, while paused."""

    name: str
    paused: bool
    paused_at: datetime | None


@dataclass(frozen=True, slots=True)
class WorkerCommands:
    """What a worker is asked to do through the store (docs/design.md: Commands)."""

    stop: bool = False  #: shut down gracefully, as on SIGTERM
    stop_jobs: frozenset[JobId] = frozenset()  #: its running jobs to stop (end canceled)


@dataclass(slots=True)
class RescueReport:
    dead_workers: list[str] = field(default_factory=list)
    rescued: list[JobId] = field(default_factory=list)  #: back to pending
    lost: list[JobId] = field(default_factory=list)  #: at-most-once jobs
    failed: list[JobId] = field(default_factory=list)  #: past max_rescues
    canceled: list[JobId] = field(default_factory=list)  #: their stop was asked for
    #: whether the store kept pace in this pass: the write lock came quickly and the
    #: rescuer's own heartbeat was fresh (see worker_rescue)
    kept_pace: bool = True

    def __bool__(self) -> bool:
        return bool(self.dead_workers or self.rescued or self.lost or self.failed or self.canceled)


#: why a fire row exists: a job ("enqueued", "triggered" by hand), a drop, or a fire
#: "waiting" on its schedule's dependencies (no job yet; "dependencies": dropped while it
#: waited, docs/design.md: "Schedules that wait on schedules")
FIRE_OUTCOMES = (
    "enqueued",
    "coalesced",
    "missed",
    "overlap",
    "paused",
    "triggered",
    "waiting",
    "dependencies",
)
#: what a dependency's run must end in to count: "succeeded", or "any" finished state
DEPENDS_ON_OUTCOMES = ("succeeded", "any")
#: the longest a scheduler makes a fire's job ahead of its time (``SchedulerConfig.lead``):
#: an upsert compares the old values of the schedules whose next fire is within it
MAX_LEAD = timedelta(seconds=60)
#: the most a claim may look ahead of now (``job_claim_batch(ahead=)``): a worker that
#: woke just before a job's time claims it early and starts it at its time
MAX_CLAIM_AHEAD = 0.05


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """One schedule as the store holds it (a row of ``tock_schedules``).

    ``trigger`` is the JSON text of the trigger: ``{"cron": expr, "timezone": tz}``,
    ``{"every": seconds, "anchor": iso8601}`` or ``{"at": iso8601}``; ``args`` and
    ``kwargs`` are JSON texts. ``queue``/``priority`` ``None``: the task's.
    ``next_fire_at`` ``None``: never fires again. ``last_fire_at``/``last_job_id``: the
    latest fire that created a job (scheduled or triggered by hand); ``last_status``: the
    status of that job while the store still holds it (``None`` once pruned, or never
    fired). ``last_*``, ``created_at`` and ``updated_at`` are set by the store (ignored by
    ``schedule_upsert``). ``depends_on`` is the JSON text of the list of schedule names
    whose runs a fire waits on (docs/design.md: "Schedules that wait on schedules"),
    with ``future_depends`` and ``depends_on_outcome`` (one of DEPENDS_ON_OUTCOMES).
    """

    name: str
    task: str
    trigger: str
    args: str = "[]"
    kwargs: str = "{}"
    queue: str | None = None
    priority: int | None = None
    misfire: str = "coalesce"
    grace: float = 60.0
    overlap: bool = True
    enabled: bool = True
    paused: bool = False
    source: str = "dynamic"  #: "code" or "dynamic"
    next_fire_at: datetime | None = None
    last_fire_at: datetime | None = None
    last_job_id: JobId | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_status: JobStatus | None = None
    depends_on: str = "[]"
    future_depends: bool = False
    depends_on_outcome: str = "succeeded"


@dataclass(frozen=True, slots=True)
class Fire:
    """One fire for ``schedule_fire``: a job to create, or a drop (``job`` None).

    A drop may stand for a run of consecutive dropped fires: ``at`` the first,
    ``last`` the last (``None``: the same as ``at``), ``count`` how many. ``last`` and
    ``count`` are ignored for a fire with a job. A "waiting" fire (no job) waits on
    the schedule's dependencies: ``schedule_fire`` keeps at most one a schedule.
    """

    at: datetime  #: the fire time (the first of a run of drops)
    outcome: str  #: one of FIRE_OUTCOMES
    job: NewJob | None = None  #: the job to create ("enqueued"); None for a drop
    last: datetime | None = None  #: a run of drops: its last fire time (None: ``at``)
    count: int = 1  #: a run of drops: how many fires


@dataclass(frozen=True, slots=True)
class Dependencies:
    """What a job waits on and what waits on it (docs/design.md: Dependencies). Each
    job comes with its state; None once it was pruned."""

    depends_on: tuple[tuple[JobId, JobStatus | None], ...] = ()  #: in their order
    dependents: tuple[tuple[JobId, JobStatus | None], ...] = ()
    waiting_on: int = 0  #: dependencies not met yet (0 once released or without any)
    on_failure: str | None = None  #: "cancel", "run" or "failure"; None without any
    pass_results: str | None = None  #: None, "one", "list" or "id"
    canceled_by: JobId | None = None  #: the dependency whose end canceled it


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A workflow as stored: its shape (the workflow module's JSON) and its jobs' ids in
    the order they were enqueued."""

    id: int
    spec: str
    job_ids: tuple[JobId, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FireRecord:
    """One row of ``tock_fires``: a fire that created a job, or a run of drops
    (``at`` .. ``last``, ``count`` fires, ``job_id`` None). ``manual``: triggered by
    hand (its own key, never a scheduled fire's)."""

    schedule: str
    at: datetime
    last: datetime
    count: int
    outcome: str  #: one of FIRE_OUTCOMES
    job_id: JobId | None
    manual: bool
    created_at: datetime
    #: a "waiting" fire: the dependencies not yet met when the scheduler last looked
    waiting_for: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FireRelease:
    """What ``fire_release`` did with a waiting fire."""

    job_id: JobId | None = None  #: the job made: the dependencies are met
    waiting_for: tuple[str, ...] = ()  #: still waiting, on these
    dropped: bool = False  #: dropped ("dependencies"): it waited past the grace
    gone: bool = False  #: no such waiting fire any more (released or changed meanwhile)


class Watch(Protocol):
    def close(self) -> None: ...


@runtime_checkable
class Store(Protocol):
    url: str  #: with any password removed
    supports_listen_notify: bool  #: a capability, not an isinstance() check
    #: a liveness token is a database session, which can end while its process lives
    #: (an administrator, a proxy): the rescuer gives a free token its grace
    token_sessions: bool
    clock_step: float  #: seconds: the finest difference two db_now() readings show
    #: the claim lanes of a worker that does not say (``WorkerConfig.claimers``)
    claim_lanes: int

    # schema
    def migrate(self, *, connection: object | None = None, upto: int | None = None) -> list[str]:
        """Create or upgrade the schema (to version ``upto``, else the newest); on the
        caller's ``connection``, inside its transaction if one is open."""
        ...

    def schema_version(self) -> tuple[int, int]:
        """(version in the database, newest this code knows)."""
        ...

    def close(self) -> None: ...
    def db_now(self, *, now: datetime | None) -> datetime: ...

    # jobs
    def job_enqueue_many(
        self, jobs: Sequence[NewJob], *, now: datetime | None, connection: object | None = None
    ) -> list[JobId]: ...
    def job_get(self, job_id: JobId) -> JobRecord: ...
    def job_list(
        self,
        *,
        statuses: Sequence[JobStatus] | None = None,
        queue: str | None = None,
        task: str | None = None,
        worker_id: str | None = None,
        limit: int = 50,
        started: bool | None = None,
    ) -> list[JobRecord]:
        """Newest first, from both tables; each filter narrows the list. ``started``
        narrows the running jobs alone: True, those whose attempt has started; False,
        those claimed and not started (``JobRecord.claimed``). (``job_page`` with a
        ``JobFilter`` says the same and more.)"""
        ...

    def job_page(
        self, f: JobFilter, *, before: JobId = ..., limit: int = 50, now: datetime | None
    ) -> list[JobRecord]:
        """The jobs ``f`` matches with ids below ``before``, newest first, at most
        ``limit``, from both tables; each part of the filter through an index in id
        order (docs/design.md: listing jobs)."""
        ...

    def job_ids(
        self, f: JobFilter, *, before: JobId = ..., limit: int, now: datetime | None
    ) -> list[JobId]:
        """``job_page``'s ids alone (what a bulk operation walks)."""
        ...

    def job_search(
        self,
        f: JobFilter,
        text: str,
        *,
        before: JobId = ...,
        limit: int,
        scan: int,
        now: datetime | None,
    ) -> tuple[list[JobRecord], JobId | None]:
        """The jobs ``f`` matches, below ``before``, whose id is ``text`` or whose task,
        queue, unique key or arguments (their JSON text) contain it, ignoring case:
        newest first, at most ``limit``, looking at no more than the ``scan`` newest
        jobs of each part of ``f`` (docs/design.md: searching jobs). Returns them and
        the id below which the search goes on (None: nothing is left below)."""
        ...

    def job_count(
        self, *, task: str | None, scan: int, now: datetime | None, live: bool = True
    ) -> JobCounts:
        """The jobs of each queue (of ``task``, or of every task) in the admin's groups:
        the live ones exactly, the finished ones among the newest ``scan`` of each
        state (docs/design.md: counting jobs). ``live=False`` leaves the live table
        unread (``JobCounts.live`` is then empty)."""
        ...

    def job_list_plans(self, f: JobFilter, *, now: datetime | None) -> list[str]:
        """The database's query plan of each part of ``f``'s list, for tests and for
        people who want to see which index serves a filter."""
        ...

    def job_retry_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]:
        """Back to pending, attempts reset, each of ``ids`` that is failed, lost or
        canceled and whose unique key no live job holds; returns those moved."""
        ...

    def job_cancel_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]:
        """Each of ``ids`` that is pending or blocked ends canceled; returns those."""
        ...

    def job_delete_many(self, ids: Sequence[JobId]) -> list[JobId]:
        """Delete each of ``ids`` that is finished, with its fire rows; returns those."""
        ...

    def job_run_now_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]:
        """Each of ``ids`` that is pending and due later becomes due now; returns those."""
        ...

    def job_claim_batch(
        self,
        *,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        free: int,
        now: datetime | None,
        completed: Sequence[Outcome] = (),
        started: Sequence[Start] = (),
        ahead: float = 0.0,
    ) -> list[JobRecord]:
        """Record ``started``, apply ``completed``, then claim up to ``limit`` due jobs,
        in one transaction (see ``job_complete_batch``). With ``ahead`` (seconds, at most
        ``MAX_CLAIM_AHEAD``), jobs due within that time count as due: the caller starts
        each at its ``run_at`` (docs/design.md: "Claimed early").

        Jobs come in claim order (priority, then run_at, then id); at-most-once jobs are
        claimed only among the first ``free`` (they must start at once), and the claim
        stops before the first at-most-once job it cannot take, so that none is passed
        over by the prefetch of busy workers. A claimed job is not started: its row has
        no ``started_at`` and its ``attempts`` are unchanged until its start is recorded;
        the records returned carry the attempt number each will run as (``attempts`` + 1).
        """
        ...

    def job_complete_batch(
        self, outcomes: Sequence[Outcome], *, now: datetime | None, started: Sequence[Start] = ()
    ) -> int:
        """Record ``started`` and apply ``outcomes``, in one transaction; each only where
        its claim token still holds.

        A start sets ``started_at`` (``now`` minus its ``ago``) and counts the attempt,
        once per claim. An outcome of a job whose start is not recorded yet records it
        itself (with the ``ago`` of its start among ``started``, if there; else ``now``):
        a job that starts and ends between two batches costs no statement of its own.
        A released job (never started) uses up no attempt.
        """
        ...

    def job_next_due(self, *, queues: Sequence[str]) -> datetime | None: ...
    def job_prune(
        self,
        *,
        retention: Mapping[JobStatus, float],
        batch_size: int,
        now: datetime | None,
        lease: Lease | None = None,
    ) -> int:
        """Delete finished jobs past their status's retention (seconds), in batches, with
        their fire rows (docs/design.md: fire rows are pruned with their job's retention);
        returns how many jobs."""
        ...

    def job_stats(self, *, now: datetime | None, finished: bool = True) -> list[QueueStats]:
        """Per queue: the count of each state, and the ready and claimed jobs.
        ``finished=False`` leaves the finished table unread (its states then have no
        count): ``app.health(finished_cap=)`` counts them with ``job_count``."""
        ...

    def job_vacuum(self, *, min_dead_rows: int) -> bool:
        """Reclaim the live table's dead rows if it holds at least ``min_dead_rows``;
        True if it did. A no-op where the database needs no help."""
        ...

    def job_watch(self, callback: Callable[[], None]) -> Watch:
        """Call ``callback`` (from another thread) when new work may have arrived."""
        ...

    def job_stop(self, job_id: JobId, *, now: datetime | None) -> JobRecord:
        """Stop a job (docs/design.md: Commands). A running job gets its stop asked for:
        its worker stops the attempt (``ctx.canceled`` for a sync task, the coroutine
        cancelled for an async one; a claimed job never starts) and the job ends
        canceled, never retried, also when its worker dies meanwhile. A pending or
        blocked job is canceled at once, as by ``job_cancel_many``. Returns the job as it
        is then. ``JobNotFound``; ``JobStateError`` for a finished job."""
        ...

    # dependencies and workflows (docs/design.md: Dependencies)
    def job_dependencies(self, job_id: JobId) -> Dependencies:
        """What ``job_id`` waits on and what waits on it (``JobNotFound`` if neither
        the job nor any edge of it is stored)."""
        ...

    def workflow_enqueue(
        self,
        jobs: Sequence[NewJob],
        spec: str,
        *,
        now: datetime | None,
        connection: object | None = None,
    ) -> tuple[int, list[JobId]]:
        """Insert ``jobs`` as ``job_enqueue_many`` does and a workflow row holding
        ``spec`` and their ids, in one transaction; (the workflow's id, the jobs' ids
        in batch order)."""
        ...

    def workflow_get(self, workflow_id: int) -> WorkflowRecord:
        """``WorkflowNotFound`` for an unknown id."""
        ...

    def workflow_prune(self, *, batch_size: int, lease: Lease | None = None) -> int:
        """Delete the workflows none of whose jobs is stored any more, in batches;
        returns how many."""
        ...

    # queues (docs/design.md: Commands)
    def queue_pause(self, name: str, *, now: datetime | None) -> QueueRecord:
        """No claim takes jobs of ``name`` until it is resumed (running jobs go on;
        enqueueing still works). Pausing a paused queue changes nothing."""
        ...

    def queue_resume(self, name: str, *, now: datetime | None) -> QueueRecord:
        """Claims take the queue's jobs again (idle workers are woken)."""
        ...

    def queue_list(self) -> list[QueueRecord]:
        """The queues ever paused (paused now or not), by name."""
        ...

    # workers and rescue
    def worker_stop_request(self, worker_id: str, *, now: datetime | None) -> None:
        """Ask a worker to shut down gracefully, as on SIGTERM; it finds out at its next
        look at its commands. ``WorkerNotFound`` when no such worker is registered."""
        ...

    def worker_commands(self, worker_id: str) -> WorkerCommands:
        """What the worker is asked to do now: stop, and which running jobs to stop."""
        ...

    def worker_command_watch(self, callback: Callable[[], None]) -> Watch | None:
        """Call ``callback`` (from another thread) when a command may have been given;
        None where the store has no such hint (workers poll ``worker_commands``)."""
        ...

    def worker_register(self, info: WorkerInfo, *, now: datetime | None) -> None: ...
    def worker_heartbeat(self, worker_id: str, *, now: datetime | None) -> bool:
        """False when the row is gone (this worker was declared dead)."""
        ...

    def worker_unregister(self, worker_id: str, *, now: datetime | None) -> RescueReport:
        """Remove the worker; jobs it still holds are treated as a dead worker's."""
        ...

    def worker_list(self) -> list[WorkerRecord]: ...
    def worker_tokens_free(self, *, exclude: str | None, settle: float) -> list[str]:
        """Registered workers (but ``exclude``) whose liveness token no process or
        session holds at this instant: one cheap look, taken often by the leader's
        rescuer (docs/design.md: Death and rescue). On a store whose tokens are sessions
        that a server restart or this process's own lost connection frees, none is
        reported until ``settle`` seconds after either: live workers take theirs again
        meanwhile."""
        ...

    def worker_rescue(
        self,
        *,
        rescue_after: float,
        token_after: float,
        now: datetime | None,
        heartbeat_deaths: bool = True,
        exclude: str | None = None,
        lease: Lease | None = None,
        released: Sequence[str] = (),
    ) -> RescueReport:
        """Bury dead workers: their jobs back to pending (lost, failed past max_rescues).
        With ``lease``, a write made as leader: refused (``StaleTerm``) once its term is
        over (docs/design.md: Leader, fencing); so are the prunes' and fires' below.

        An old heartbeat counts as a death only with ``heartbeat_deaths`` and when the
        store kept pace in this pass (``report.kept_pace``): the write lock came quickly
        and the heartbeat of ``exclude`` (the calling worker, never buried by its own
        rescuer) is fresh. Released liveness tokens always count: a worker named in
        ``released`` (seen with a free token over the rescuer's grace, see
        ``worker_tokens_free``) is dead if its token is still free, whatever its
        heartbeat's age; any other, when its heartbeat is also older than
        ``token_after``.
        """
        ...

    # the leader (docs/design.md: Leader)
    def leader_get(self, *, now: datetime | None) -> Lease:
        """The lease as it stands (``expired`` by the database's clock)."""
        ...

    def leader_elect(
        self, *, worker_id: str, term: int, ttl: float, now: datetime | None, takeover: bool = False
    ) -> Lease | None:
        """Term ``term + 1`` for ``worker_id``, its lease ``ttl`` seconds long, when the
        stored term is still ``term`` and nobody holds it (never elected, resigned,
        expired), or with ``takeover`` whatever its expiry (the candidate saw the leader
        of ``term`` die). None: another candidate was first, or the lease is held."""
        ...

    def leader_renew(self, lease: Lease, *, ttl: float, now: datetime | None) -> Lease | None:
        """The lease ``ttl`` seconds longer, from now; None when it is no longer this
        holder's (another term, or expired)."""
        ...

    def leader_resign(self, lease: Lease, *, now: datetime | None) -> bool:
        """Give the lease up at once (the term stays); False when it was not held."""
        ...

    def leader_depose(self, *, now: datetime | None) -> Lease | None:
        """Clear the lease whoever holds it (``tock leader resign``, from any process):
        the holder stops at its next renewal, a follower is elected meanwhile. Returns
        the lease as it was, or None when nobody led."""
        ...

    def leader_lock_take(self, term: int) -> bool:
        """Hold the leader's lock of ``term``, one the operating system or the server
        releases when this process dies; False when another holds it. A candidate takes
        the lock of the term it runs for before its election."""
        ...

    def leader_lock_release(self, term: int) -> None:
        """Release the lock of ``term`` (a leader stepping down, a candidate that lost)."""
        ...

    def leader_lock_held(self, term: int) -> bool:
        """Whether this process still holds the lock of ``term``."""
        ...

    def leader_lock_wait(self, term: int, timeout: float) -> bool:
        """True as soon as nobody holds the lock of ``term`` (its leader died or stepped
        down); False once ``timeout`` seconds have passed."""
        ...

    # schedules (docs/design.md: "Schedules")
    def schedule_upsert(self, schedule: ScheduleRecord, *, now: datetime | None) -> ScheduleRecord:
        """Insert or update by name; returns the stored row. An update never changes
        ``paused`` and keeps ``next_fire_at`` unless the trigger text changed (then it
        takes ``schedule.next_fire_at``); ``last_*`` and ``created_at`` are kept."""
        ...

    def schedule_upsert_many(
        self, schedules: Sequence[ScheduleRecord], *, now: datetime | None
    ) -> int:
        """``schedule_upsert`` for each, in one transaction; a name given twice: the last
        one wins. Returns the number of schedules written (distinct names). A schedule
        whose task, trigger, arguments, queue, priority, overlap or enabled changes has its
        fires made ahead withdrawn first, as a pause does; an unchanged one keeps them."""
        ...

    def schedule_get(self, name: str) -> ScheduleRecord:
        """Raises ScheduleNotFound (a LookupError) when there is no such schedule."""
        ...

    def schedule_list(self, *, limit: int | None = None) -> list[ScheduleRecord]:
        """Every schedule (the first ``limit``), ordered by name."""
        ...

    def schedule_delete(self, name: str, *, now: datetime | None) -> bool:
        """True if it existed. Its fire rows stay: a schedule created again under the
        same name still never fires twice at a recorded time. The fires made ahead
        (fire time after ``now``) whose job no worker took yet are withdrawn first: job
        and fire row deleted (docs/design.md: "Fires made ahead"). A fire waiting on
        its dependencies is recorded as dropped ("dependencies")."""
        ...

    def schedule_set_paused(
        self, name: str, paused: bool, *, now: datetime | None
    ) -> ScheduleRecord:
        """Set ``paused``; a pause withdraws the fires made ahead in the same
        transaction (their pending jobs and fire rows deleted, ``next_fire_at`` moved
        back to the first of them)."""
        ...

    def schedule_set_enabled(
        self, name: str, enabled: bool, *, now: datetime | None
    ) -> ScheduleRecord:
        """Set ``enabled``; a disable withdraws the fires made ahead, as a pause does."""
        ...

    def schedule_disable_code(self, keep: Sequence[str], *, now: datetime | None) -> list[str]:
        """Disable every enabled code schedule whose name is not in ``keep`` (`tock
        schedules prune`), withdrawing their fires made ahead; returns their names,
        sorted."""
        ...

    def schedule_due(
        self, *, now: datetime | None, limit: int, tasks: Sequence[str] | None = None
    ) -> list[ScheduleRecord]:
        """Enabled, not paused schedules with ``next_fire_at <= now``, earliest first;
        only those of ``tasks`` when given (the tasks the calling process knows)."""
        ...

    def schedule_next_due(
        self, *, tasks: Sequence[str] | None = None, after: datetime | None = None
    ) -> datetime | None:
        """The earliest ``next_fire_at`` of the enabled, not paused schedules (of
        ``tasks`` when given; later than ``after`` when given); None when none fires
        again. The scheduler sleeps until its lead before it."""
        ...

    def schedule_fire(
        self,
        name: str,
        *,
        expected_next: datetime | None,
        new_next: datetime | None,
        fires: Sequence[Fire],
        now: datetime | None,
        lease: Lease | None = None,
        expected_updated: datetime | None = None,
    ) -> list[JobId] | None:
        """Record one scheduler pass of a schedule, in one transaction.

        Compare-and-set: moves ``next_fire_at`` from ``expected_next`` (NULL-safe) to
        ``new_next``; if the schedule is not at ``expected_next`` (another node fired
        it, or it is gone) writes nothing and returns None. With ``expected_updated``
        (the ``updated_at`` the scheduler read), also nothing unless the row is
        unchanged since and active (enabled, not paused): a fire made ahead never
        follows a pause or an update it did not see. Otherwise records each fire
        in ``tock_fires``: a fire whose time is already recorded (a row's key, or inside
        a recorded run of drops) creates nothing; a drop extends the schedule's latest
        scheduled row when that row is a run of drops with the same outcome that ends
        before it (docs/design.md: consecutive drops are one row), else inserts a row; a new row
        with a job inserts that job (the ordinary insert path, in the same transaction)
        and records its id. Returns the ids of the jobs created, in fire order; sets
        ``last_fire_at``/``last_job_id`` to the latest of them. A "waiting" fire (no job)
        is recorded as waiting; when the schedule already has a waiting fire, a later one
        joins it (misfire coalesce or all: its last fire and count grow) or replaces it
        (skip: the older is recorded as "dependencies").
        """
        ...

    def schedule_trigger(self, name: str, job: NewJob, *, now: datetime | None) -> JobId:
        """Fire a schedule by hand, now: one job, recorded as a manual fire (its own key,
        at ``now`` or the next free microsecond), in one transaction. Sets
        ``last_fire_at``/``last_job_id``; never changes ``next_fire_at`` nor ``paused``.
        Raises ScheduleNotFound when there is no such schedule (nothing written)."""
        ...

    def schedule_graph(self) -> dict[str, tuple[str, ...]]:
        """Each schedule that depends on others, with the names it depends on (the
        cycle check at definition: docs/design.md, "Schedules that wait on
        schedules")."""
        ...

    def schedule_deps_unmet(self, name: str) -> list[str]:
        """The dependencies of ``name`` not met now, in the order given: those none of
        whose runs finished (succeeded, or in any finished state with
        ``depends_on_outcome="any"``) since the schedule's last run started. A
        schedule that never ran: any finished run counts, and with ``future_depends``
        none is unmet. A dependency that no schedule holds has no run: unmet."""
        ...

    # fires
    def fire_waiting(self, *, limit: int, tasks: Sequence[str] | None = None) -> list[FireRecord]:
        """The fires waiting on their schedule's dependencies (at most one a schedule),
        of active schedules (of ``tasks`` when given), oldest first, at most ``limit``."""
        ...

    def fire_release(
        self,
        name: str,
        *,
        at: datetime,
        job: NewJob,
        drop_before: datetime | None,
        now: datetime | None,
        lease: Lease | None = None,
    ) -> FireRelease:
        """Look at the waiting fire of ``name`` at ``at`` again, in one transaction (with
        ``lease``, fenced like ``schedule_fire``): nothing when the schedule is no longer
        active or the fire no longer waits (``gone``); dropped as "dependencies" when
        ``at <= drop_before``; else, its dependencies met, ``job`` made (due as it says)
        and recorded as the fire's, the schedule's ``last_*`` set to it; otherwise the
        unmet ones recorded as what it waits for."""
        ...

    def fire_list(
        self, name: str, *, limit: int = 20, before: tuple[datetime, bool] | None = None
    ) -> list[FireRecord]:
        """The schedule's fire rows, newest fire first (manual and scheduled together);
        with ``before`` (a row's ``(at, manual)``), those after it in that order."""
        ...

    def fire_prune(
        self,
        *,
        older_than: float,
        batch_size: int,
        now: datetime | None,
        lease: Lease | None = None,
    ) -> int:
        """Delete the runs of drops whose last fire is older than ``older_than`` seconds,
        in batches; returns how many rows. (Fires with a job go with their job, in
        ``job_prune``.)"""
        ...


def redact_url(url: str) -> str:
    """The URL without its password, for logs, errors and status output."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


# SQLite's primary result codes that mean "not now" rather than "wrong": busy or locked
# past the busy timeout, out of memory, an I/O error, a full disk, a file that cannot be
# opened, a WAL lock protocol race. https://www.sqlite.org/rescode.html
_SQLITE_OUTAGES = frozenset({5, 6, 7, 10, 13, 14, 15})


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or used for now (worth trying
    again: a lost connection, a busy or locked file, a full disk) rather than that
    something is wrong with what was asked (a bug to report: a wrong statement or
    parameter, a schema that does not match)."""
    if isinstance(exc, SchemaError):
        return False
    if isinstance(exc, StoreError | OSError):  # StoreError includes ConnectionLost
        return True
    # Neither driver is imported here: each is loaded only if its store is in use.
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_OUTAGES
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


DEFAULT_URL = "sqlite:///tock.db"


def resolve_url(url: str | None) -> str:
    """An explicit URL beats ``$TOCK_URL``; the default is ``./tock.db``."""
    if url is None:
        url = os.environ.get("TOCK_URL") or DEFAULT_URL
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"the store URL must be a non-empty string, not {url!r}")
    return url.strip()


def open_store(url: str | None = None) -> Store:
    """Open the store a URL names: ``sqlite:///relative.db``, ``sqlite:////abs.db``,
    ``postgresql://user@host/db?schema=tock`` (the ``postgres`` extra)."""
    url = resolve_url(url)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from tock.store.sqlite.store import SQLiteStore

        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        try:
            from tock.store.postgres.store import PostgresStore
        except ImportError as exc:
            if exc.name not in ("psycopg", "psycopg_pool"):
                raise
            raise ConfigurationError(
                f"{redact_url(url)}: the PostgreSQL store needs psycopg 3 and psycopg_pool: "
                "pip install 'tock[postgres]'"
            ) from None
        return PostgresStore(url)
    raise ConfigurationError(
        f"unsupported store URL {redact_url(url)!r}: use sqlite:///relative.db, "
        "sqlite:////absolute/path.db or postgresql://user@host/db?schema=tock"
    )
