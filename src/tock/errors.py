"""The exceptions users catch."""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConnectionLost",
    "JobCanceled",
    "JobFailed",
    "JobLost",
    "JobNotFound",
    "JobStateError",
    "JobTimeout",
    "NoDatabase",
    "ScheduleNotFound",
    "SchemaError",
    "StaleTerm",
    "StoreError",
    "TockError",
    "WorkerNotFound",
    "WorkflowNotFound",
]


class TockError(Exception):
    """Base class of Tock's own errors."""


class ConfigurationError(TockError, ValueError):
    """A URL, name or option is not valid; raised where it enters."""


class StoreError(TockError):
    """The store cannot be opened or used (unreachable, read-only, ...)."""


class StaleTerm(StoreError):
    """A write made as leader was refused: the term it carried is no longer the leader's
    (a newer term was elected, or this leader resigned). Nothing was changed
    (docs/design.md: Leader, fencing)."""

    def __init__(self, worker_id: str | None, term: int) -> None:
        super().__init__(
            f"refused a write of worker {worker_id} as leader of term {term}: that term is over"
        )
        self.worker_id = worker_id
        self.term = term


class ConnectionLost(StoreError):
    """The store lost its connection to the database and is reconnecting; it said so
    once in its log, so a caller that just tries again later need not say it again."""


class SchemaError(StoreError):
    """The store's schema is not the one this version of Tock expects."""


class NoDatabase(StoreError):
    """No embedded database at the store's path: reads never create one; ``tock
    migrate``, ``tock worker`` and the app's first write do."""


class JobNotFound(TockError, LookupError):
    """No job with that id: it never existed or was pruned."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found (never enqueued, or pruned after its retention)")
        self.job_id = job_id


class JobStateError(TockError):
    """The job is not in a state the operation applies to (retry: failed, lost or
    canceled; cancel: pending or blocked; delete: finished), or, for a retry, a live job
    holds its unique key. ``state`` is the job's state when it was refused."""

    def __init__(self, job_id: int, state: str, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.state = state


class ScheduleNotFound(TockError, LookupError):
    """No schedule with that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"schedule {name!r} not found")
        self.name = name


class WorkflowNotFound(TockError, LookupError):
    """No workflow with that id: it never existed."""

    def __init__(self, workflow_id: int) -> None:
        super().__init__(f"workflow {workflow_id} not found")
        self.workflow_id = workflow_id


class WorkerNotFound(TockError, LookupError):
    """No registered worker with that id (it stopped, was declared dead, or never ran)."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(
            f"worker {worker_id!r} not found: no registered worker has that id "
            "(`tock workers list` shows them)"
        )
        self.worker_id = worker_id


class JobFailed(TockError):
    """The job ended ``failed``: every attempt raised (or its worker died too often)."""

    def __init__(self, job_id: int, type: str, message: str, traceback: str) -> None:
        super().__init__(f"job {job_id} failed: {type}: {message}")
        self.job_id = job_id
        self.type = type
        self.message = message
        self.traceback = traceback


class JobCanceled(TockError):
    """The job was canceled: before it ran, or stopped while it ran (``tock jobs stop``)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} was canceled")
        self.job_id = job_id


class JobLost(TockError):
    """An at-most-once job whose worker died: it is never started again by Tock."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} is lost: its worker died and the task runs at most once")
        self.job_id = job_id


class JobTimeout(TockError):
    """Recorded as a job's error when an attempt ran past its ``timeout``."""


# Recorded and shown under the names users import them by: "tock.JobTimeout", not
# "tock.errors.JobTimeout" (docs/design.md: a timeout is recorded as tock.JobTimeout).
for _name in __all__:  # one list: every error here is public, and named tock.X
    globals()[_name].__module__ = "tock"
del _name
