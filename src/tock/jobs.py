"""Jobs: their states, the rows the store hands out, and the handle users hold."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from tock.errors import JobCanceled, JobFailed, JobLost

if TYPE_CHECKING:
    from tock.clock import Clock

__all__ = [
    "Job",
    "JobCount",
    "JobPage",
    "JobRecord",
    "JobSource",
    "JobStatus",
    "NewJob",
    "Outcome",
    "OutcomeKind",
    "Start",
]

JobId = int


class JobStatus(enum.StrEnum):
    BLOCKED = "blocked"  #: waits on its dependencies
    PENDING = "pending"  #: waiting for run_at and a free worker
    RUNNING = "running"  #: claimed by a worker; "claimed" (a view) until its attempt starts
    SUCCEEDED = "succeeded"  #: returned; kept one day
    FAILED = "failed"  #: raised on its last attempt (dead letter); kept until a human acts
    CANCELED = "canceled"  #: canceled before it ran; kept one day
    LOST = "lost"  #: at-most-once job whose worker died; kept until a human acts

    @property
    def finished(self) -> bool:
        return self in FINISHED


LIVE = frozenset({JobStatus.BLOCKED, JobStatus.PENDING, JobStatus.RUNNING})
FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.LOST})


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~1 µs a job in bulk enqueue
class NewJob:
    """A job to insert: arguments already checked and encoded as JSON text."""

    task: str
    args: str
    kwargs: str
    queue: str = "default"
    priority: int = 0
    retries: int = 0
    retry_backoff: float = 1.0
    retry_on: tuple[str, ...] = ("builtins.Exception",)
    timeout: float | None = None
    at_most_once: bool = False
    max_rescues: int = 5
    unique_key: str | None = None
    run_at: datetime | None = None  #: absolute due time (UTC); wins over run_after
    run_after: float = 0.0  #: seconds after the store's now
    # Dependencies (docs/design.md: Dependencies). A job with any is inserted blocked.
    depends_on: tuple[JobId, ...] = ()  #: jobs already stored that it waits on
    after: tuple[int, ...] = ()  #: positions in the same batch that it waits on
    #: when a dependency ends failed, lost or canceled: "cancel" this job, "run" it anyway,
    #: or "failure": run it only then (a workflow's link_error; it is dropped otherwise)
    on_dependency_failure: str = "cancel"
    #: what its dependencies hand it, as its first argument when it is released: None,
    #: "one" (the result of its only dependency), "list" (their results, ``after`` then
    #: ``depends_on`` order; None for one that did not succeed) or "id" (the id of the
    #: dependency that failed, for "failure")
    pass_results: str | None = None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~2 µs a job on the hot path
class JobRecord:
    """One job as the store holds it, live or finished (a snapshot: changing it changes
    nothing in the store)."""

    id: JobId
    task: str
    status: JobStatus
    queue: str
    priority: int
    args: list[Any]
    kwargs: dict[str, Any]
    run_at: datetime
    created_at: datetime
    attempts: int = 0
    rescues: int = 0
    retries: int = 0
    retry_backoff: float = 1.0
    retry_on: tuple[str, ...] = ("builtins.Exception",)
    timeout: float | None = None
    at_most_once: bool = False
    max_rescues: int = 5
    unique_key: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: str | None = None
    claim_token: int | None = None
    result: Any = None
    error: dict[str, str] | None = None

    @property
    def errors_so_far(self) -> int:
        """Attempts that ended in an error the task raised (rescues do not count)."""
        return self.attempts - self.rescues

    @property
    def claimed(self) -> bool:
        """Running but not started: a worker holds it (its prefetch) and has not begun the
        attempt, or began it so lately that the start is not recorded yet. A view of
        ``running``, as "scheduled" and "ready" are views of ``pending``."""
        return self.status is JobStatus.RUNNING and self.started_at is None


class OutcomeKind(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"  #: raised, attempts left: back to pending after ``delay``
    FAILED = "failed"
    RELEASED = "released"  #: claimed but never started: handed back, no attempt used
    CANCELED = "canceled"  #: stopped on request while it ran (docs/design.md: Commands)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a worker reports for one claimed job; applied only if ``token`` still holds."""

    job_id: JobId
    token: int
    kind: OutcomeKind
    result: str | None = None  #: JSON text
    error: str | None = None  #: JSON text: {"type", "message", "traceback"}
    delay: float = 0.0  #: seconds until the retry is due


class Start(NamedTuple):
    """An attempt that began ``ago`` seconds before the store's ``now``: a worker records
    its starts in batches, with its outcomes (docs/design.md: an attempt counts when it starts)."""

    job_id: JobId
    token: int  #: the claim's token: a start under a stale claim changes nothing
    ago: float = 0.0


class JobSource(Protocol):
    """Where a ``Job`` handle reads its job: the app (docs/design.md: the app is the one
    surface). The handle itself does no I/O of its own."""

    @property
    def clock(self) -> Clock: ...
    def job_record(self, job_id: JobId) -> JobRecord: ...


@dataclass(eq=False)
class Job:
    """A handle on one job. ``status`` is as last read; ``refresh()`` reads it again."""

    id: JobId
    _source: JobSource = field(repr=False)
    _record: JobRecord | None = field(default=None, repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def record(self) -> JobRecord:
        if self._record is None:
            self.refresh()
        assert self._record is not None
        return self._record

    @property
    def status(self) -> JobStatus:
        return self.record.status

    def refresh(self) -> Job:
        self._record = self._source.job_record(self.id)
        return self

    def result(self, timeout: float | None = None) -> Any:
        """Wait until the job finishes and return its value.

        Raises ``JobFailed``, ``JobCanceled`` or ``JobLost`` for those endings, and
        ``TimeoutError`` if ``timeout`` seconds pass first (the job is not touched).
        """
        clock = self._source.clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        pause = 0.002
        while True:
            record = self.refresh().record
            if record.status.finished:
                return _result_of(record)
            if deadline is not None:
                left = deadline - clock.monotonic()
                if left <= 0:
                    raise TimeoutError(f"job {self.id} is still {record.status} after {timeout} s")
                pause = min(pause, left)
            clock.sleep(pause)
            pause = min(pause * 2, 0.1)

    async def aresult(self, timeout: float | None = None) -> Any:
        import asyncio  # here: a worker without async tasks never loads it

        return await asyncio.to_thread(self.result, timeout)

    async def arefresh(self) -> Job:
        import asyncio

        return await asyncio.to_thread(self.refresh)


@dataclass(frozen=True)
class JobPage:
    """One page of ``app.list_jobs``: the jobs, newest first, and the cursor of the next
    page (pass it as ``after=``), or None when this is the last."""

    jobs: list[Job]
    next: JobId | None

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)


@dataclass(frozen=True, slots=True)
class JobCount:
    """A count of jobs that stops at a bound (``app.count_jobs``; docs/design.md:
    counting jobs): ``n`` jobs, or at least ``n`` when ``more``. ``str()`` shows it as
    "1,234" or "10,000+"."""

    n: int
    more: bool = False

    def __add__(self, other: JobCount) -> JobCount:
        return JobCount(self.n + other.n, self.more or other.more)

    def __str__(self) -> str:
        return f"{self.n:,}+" if self.more else f"{self.n:,}"


def _result_of(record: JobRecord) -> Any:
    if record.status is JobStatus.SUCCEEDED:
        return record.result
    if record.status is JobStatus.CANCELED:
        raise JobCanceled(record.id)
    if record.status is JobStatus.LOST:
        raise JobLost(record.id)
    error = record.error or {}
    raise JobFailed(
        record.id,
        error.get("type", "unknown"),
        error.get("message", ""),
        error.get("traceback", ""),
    )
