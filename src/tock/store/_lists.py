"""Listing jobs page by page, the same way on every store (docs/design.md: listing jobs).

A list is newest first (id descending) across the live and the finished table, read by
keyset: each page asks for ids below the last one seen, so a page costs the same on the
first and on the thousandth, and no query counts or offsets over a table.

A filter becomes a few *parts*, each one query on one table that an index serves in id
order with no sort: a state (or a view of one) per part, because an index on
``(status, id)`` gives one state's ids in order but not two states' merged. The store
runs the parts (each with ``LIMIT``) and merges their rows by id; the merge sorts at most
``limit`` rows per part, never a table.

Indexes (migration 0003): the live table is read in primary-key order with the filter
applied to each row (it holds only unfinished work, and an index more on it would cost
every enqueue and claim); the finished table has ``(status, id)``, and, for the jobs that
did not succeed (few, and the ones people look for), ``(queue, id)`` and ``(task, id)``;
succeeded jobs of a queue or task are found along ``(status, id)``. A unique key has an
index on both tables. The running jobs are found through the partial index of running
jobs by worker and sorted: at most the workers' concurrency together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from tock._validate import check_name
from tock.errors import ConfigurationError, JobStateError
from tock.jobs import FINISHED, LIVE, JobId, JobRecord, JobStatus
from tock.store._sql import variant

if TYPE_CHECKING:
    from tock.store import Store

__all__ = ["MAX_ID", "STATES", "VIEWS", "JobFilter", "Part", "merge_ids", "parts"]

MAX_ID: JobId = 2**63 - 1  #: ids are 64-bit integers (docs/design.md: Jobs and tables)

#: views of a state, as ``list_jobs(state=)`` takes them, and the state each is of (the
#: list queries' variant of the same name says what it selects)
VIEWS: Mapping[str, JobStatus] = {
    "scheduled": JobStatus.PENDING,  #: pending, not due yet
    "ready": JobStatus.PENDING,  #: pending and due
    "claimed": JobStatus.RUNNING,  #: held, not started yet
    "started": JobStatus.RUNNING,  #: running, attempt begun
}
#: every name ``state=`` takes: the states, then the views
STATES: tuple[str, ...] = (*(s.value for s in JobStatus), *VIEWS)

#: the groups of the live jobs that ``Store.job_count`` counts, in its queries' order
LIVE_GROUPS = ("blocked", "scheduled", "ready", "claimed", "started")

LIVE_TABLE = "live"
FINISHED_TABLE = "finished"


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a list or a bulk operation takes; each field narrows it.

    ``states``: names from ``STATES`` (a job in any of them matches); empty: every
    state. ``search``: the job whose id or unique key equals the text (both indexed on
    both tables).
    """

    states: frozenset[str] = frozenset()
    queue: str | None = None
    task: str | None = None
    worker_id: str | None = None
    search: str | None = None

    @classmethod
    def of(
        cls,
        state: str | JobStatus | Iterable[str | JobStatus] | None = None,
        *,
        queue: str | None = None,
        task: str | None = None,
        worker_id: str | None = None,
        search: str | None = None,
    ) -> JobFilter:
        """A filter from user input, each value checked: a wrong one raises
        ``ConfigurationError`` naming it."""
        if state is None:
            names: list[str] = []
        elif isinstance(state, str):  # JobStatus is a str too
            names = [str(state)]
        else:
            names = [str(s) for s in state]
        for name in names:
            if name not in STATES:
                raise ConfigurationError(
                    f"unknown job state {name!r}: use one of {', '.join(STATES)}"
                )
        for label, value in (("queue", queue), ("task", task)):
            if value is not None:
                check_name(label, value)
        if worker_id is not None and (not isinstance(worker_id, str) or not worker_id):
            raise ConfigurationError(f"worker_id= takes a non-empty string, not {worker_id!r}")
        if search is not None:
            if not isinstance(search, str):
                raise ConfigurationError(f"search= takes a string, not {search!r}")
            search = search.strip() or None
        return cls(frozenset(names), queue, task, worker_id, search)

    def narrowed(self, states: Iterable[str]) -> JobFilter | None:
        """This filter narrowed to the jobs in ``states`` (a bulk operation's), or None
        when it names only other states."""
        wanted = frozenset(states)
        if not self.states:
            return replace(self, states=wanted)
        kept = frozenset(s for s in self.states if _state_of(s).value in wanted)
        return replace(self, states=kept) if kept else None


@dataclass(frozen=True, slots=True)
class Part:
    """One query of a list: ``job_list`` in the variant of its table and ``flags`` (each
    dialect's ``queries.sql`` says what each flag selects)."""

    table: str  #: LIVE_TABLE or FINISHED_TABLE
    flags: tuple[str, ...]

    def query(self, *more: str) -> str:
        """The name of this part's query, with ``more`` flags ("ids", "plan")."""
        finished = ("finished",) if self.table == FINISHED_TABLE else ()
        return variant("job_list", *finished, *self.flags, *more)


def _state_of(name: str) -> JobStatus:
    return VIEWS[name] if name in VIEWS else JobStatus(name)


def _table(status: JobStatus) -> str:
    return LIVE_TABLE if status in LIVE else FINISHED_TABLE


def parts(f: JobFilter) -> list[Part]:
    """The queries a filter takes, each served in id order by an index (see above)."""
    narrow = [
        flag
        for flag, value in (("queue", f.queue), ("task", f.task), ("worker", f.worker_id))
        if value is not None
    ]
    base: list[Part] = []
    if f.states:
        for name in sorted(f.states):
            status = _state_of(name)
            flags = [status.value, name] if name in VIEWS else [status.value]
            base.append(Part(_table(status), tuple(flags)))
    else:
        base.append(Part(LIVE_TABLE, ()))
        if narrow:
            # The partial indexes on (queue, id) and (task, id) hold the jobs that did
            # not succeed; they are used when the query says so in these words.
            base.append(Part(FINISHED_TABLE, ("succeeded",)))
            base.append(Part(FINISHED_TABLE, ("unsucceeded",)))
        else:
            base.append(Part(FINISHED_TABLE, ()))
    if f.search is None:
        return [Part(p.table, (*p.flags, *narrow)) for p in base]
    found: list[Part] = []
    for p in base:
        if f.search.isdigit() and int(f.search) <= MAX_ID:
            found.append(Part(p.table, (*p.flags, *narrow, "by_id")))
        found.append(Part(p.table, (*p.flags, *narrow, "by_key")))
    return found


def params(f: JobFilter) -> dict[str, object]:
    """The values the conditions of ``parts(f)`` name (``now`` aside: the store's)."""
    values: dict[str, object] = {}
    if f.queue is not None:
        values["queue"] = f.queue
    if f.task is not None:
        values["task"] = f.task
    if f.worker_id is not None:
        values["worker_id"] = f.worker_id
    if f.search is not None:
        values["search"] = f.search
        if f.search.isdigit() and int(f.search) <= MAX_ID:
            values["search_id"] = int(f.search)
    return values


def like_pattern(text: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching any text that contains
    ``text``."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def merge_ids(pages: Iterable[Sequence[JobId]], limit: int) -> list[JobId]:
    """The ``limit`` highest ids of the parts' pages, once each (views overlap)."""
    return sorted({i for page in pages for i in page}, reverse=True)[:limit]


def check_page(before: object, limit: object) -> tuple[JobId, int]:
    """The keyset bounds: ids below ``before`` (None: from the newest), at most ``limit``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"limit must be a whole number >= 1, not {limit!r}")
    if before is None:
        return MAX_ID, limit
    if isinstance(before, bool) or not isinstance(before, int) or not 1 <= before <= MAX_ID:
        raise ConfigurationError(f"after= takes a cursor from a page's .next, not {before!r}")
    return before, limit


#: the states a bulk retry, cancel or delete applies to (docs/design.md: Job lifecycle)
RETRYABLE = frozenset({JobStatus.FAILED.value, JobStatus.LOST.value, JobStatus.CANCELED.value})
CANCELABLE = frozenset({JobStatus.PENDING.value, JobStatus.BLOCKED.value})
DELETABLE = frozenset(s.value for s in FINISHED)


def legacy_filter(
    statuses: Sequence[JobStatus] | None,
    queue: str | None,
    task: str | None,
    worker_id: str | None,
    started: bool | None,
) -> JobFilter:
    """The filter of ``Store.job_list``'s keywords: ``started`` narrows the running jobs
    alone (True: "started", False: "claimed")."""
    names = {JobStatus(s).value for s in statuses} if statuses else set()
    if started is not None:
        names = names or {s.value for s in JobStatus}
        if JobStatus.RUNNING.value in names:
            names.discard(JobStatus.RUNNING.value)
            names.add("started" if started else "claimed")
    return JobFilter(frozenset(names), queue, task, worker_id)


# One job at a time, through the bulk statements; refusals worded alike on every store.


def retry_one(store: Store, job_id: JobId, *, now: datetime | None) -> JobRecord:
    """Retry one failed, lost or canceled job: pending again, attempts reset."""
    if not store.job_retry_many([job_id], now=now):
        record = store.job_get(job_id)  # JobNotFound if there is none
        canceled_by = store.job_dependencies(job_id).canceled_by
        if record.status.value in RETRYABLE and canceled_by is not None:
            raise JobStateError(
                job_id,
                record.status.value,
                f"cannot retry job {job_id} by itself: it was canceled because its "
                f"dependency, job {canceled_by}, did not succeed; retry job {canceled_by} "
                "and it comes back with it",
            )
        if record.status.value in RETRYABLE:
            raise JobStateError(
                job_id,
                record.status.value,
                f"cannot retry job {job_id}: its unique key {record.unique_key!r} is held "
                "by another live job",
            )
        raise JobStateError(
            job_id,
            record.status.value,
            f"cannot retry job {job_id}: it is {record.status}; "
            "only failed, lost and canceled jobs can be retried",
        )
    return store.job_get(job_id)


def cancel_one(store: Store, job_id: JobId, *, now: datetime | None) -> JobRecord:
    """Cancel one pending or blocked job."""
    if not store.job_cancel_many([job_id], now=now):
        record = store.job_get(job_id)
        raise JobStateError(
            job_id,
            record.status.value,
            f"cannot cancel job {job_id}: it is {record.status}; "
            "only pending and blocked jobs can be canceled",
        )
    return store.job_get(job_id)


def delete_one(store: Store, job_id: JobId) -> None:
    """Delete one finished job (with its fire rows)."""
    if not store.job_delete_many([job_id]):
        record = store.job_get(job_id)
        raise JobStateError(
            job_id,
            record.status.value,
            f"cannot delete job {job_id}: it is {record.status}; only finished jobs "
            "(succeeded, failed, canceled, lost) can be deleted: cancel it first",
        )


def run_now_one(store: Store, job_id: JobId, *, now: datetime | None) -> JobRecord:
    """Make one scheduled job ready; a ready one stays as it is."""
    if not store.job_run_now_many([job_id], now=now):
        record = store.job_get(job_id)
        if record.status is not JobStatus.PENDING:
            raise JobStateError(
                job_id,
                record.status.value,
                f"cannot run job {job_id} now: it is {record.status}; "
                "only pending jobs wait for their time",
            )
        return record
    return store.job_get(job_id)
