"""Tock: a reliable task scheduler and job queue whose only moving part is the database."""

from tock.app import Tock
from tock.clock import Clock, FakeClock, SystemClock
from tock.errors import (
    ConfigurationError,
    ConnectionLost,
    JobCanceled,
    JobFailed,
    JobLost,
    JobNotFound,
    JobStateError,
    JobTimeout,
    NoDatabase,
    ScheduleNotFound,
    SchemaError,
    StoreError,
    TockError,
)
from tock.jobs import Job, JobStatus
from tock.schedules import Schedule
from tock.tasks import Context, Task

__version__ = "0.1.0.dev0"

__all__ = [
    "Clock",
    "ConfigurationError",
    "ConnectionLost",
    "Context",
    "FakeClock",
    "Job",
    "JobCanceled",
    "JobFailed",
    "JobLost",
    "JobNotFound",
    "JobStateError",
    "JobStatus",
    "JobTimeout",
    "NoDatabase",
    "Schedule",
    "ScheduleNotFound",
    "SchemaError",
    "StoreError",
    "SystemClock",
    "Task",
    "Tock",
    "TockError",
    "__version__",
]
