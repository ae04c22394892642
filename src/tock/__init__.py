"""Tock: a reliable task scheduler and job queue whose only moving part is the database."""

from tock import errors
from tock.app import FirePage, Tock
from tock.clock import Clock, FakeClock, SystemClock
from tock.errors import *  # noqa: F403  # every public error: the one list is errors.__all__
from tock.jobs import Job, JobPage, JobStatus
from tock.schedules import Schedule
from tock.tasks import Context, Task
from tock.workflows import Signature, Workflow, chain, chord, group

__version__ = "0.1.0.dev0"

__all__ = [
    "Clock",
    "Context",
    "FakeClock",
    "FirePage",
    "Job",
    "JobPage",
    "JobStatus",
    "Schedule",
    "Signature",
    "SystemClock",
    "Task",
    "Tock",
    "Workflow",
    "__version__",
    "chain",
    "chord",
    "group",
]
__all__ += errors.__all__
