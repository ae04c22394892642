"""Tock: a reliable task scheduler and job queue whose only moving part is the database.

The public names below the errors are imported when first used (``tock.Tock``, ``from
tock import Tock``): ``import tock`` alone loads only the errors, and a process loads the
modules it uses, not every one (a worker never loads ``tock.workflows`` unless its tasks
do).
"""

import importlib
import typing

from tock import errors
from tock.errors import *  # noqa: F403  # every public error: the one list is errors.__all__

if typing.TYPE_CHECKING:
    from tock.app import FirePage, Tock
    from tock.clock import Clock, FakeClock, SystemClock
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

#: the module each name imported on first use comes from (the same names as above)
_LAZY = {
    "FirePage": "tock.app",
    "Tock": "tock.app",
    "Clock": "tock.clock",
    "FakeClock": "tock.clock",
    "SystemClock": "tock.clock",
    "Job": "tock.jobs",
    "JobPage": "tock.jobs",
    "JobStatus": "tock.jobs",
    "Schedule": "tock.schedules",
    "Context": "tock.tasks",
    "Task": "tock.tasks",
    "Signature": "tock.workflows",
    "Workflow": "tock.workflows",
    "chain": "tock.workflows",
    "chord": "tock.workflows",
    "group": "tock.workflows",
}

if not typing.TYPE_CHECKING:
    # Hidden from type checkers, which see the imports above: a misspelt ``tock.Name``
    # stays an error for them instead of becoming ``Any``.

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # found without this function from now on
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})
