"""Cluster duties: firing schedules, rescuing the jobs of dead workers, pruning finished
jobs, keeping the live table small.

The leader runs them (docs/design.md: Leader), and each pass is race-free in the store.
Each is a ``Duty``: a config, ``run_once()``, and ``start()``/``stop()``, startable again.
"""

from tock._service import Duty
from tock.duties.pruner import Pruner, PrunerConfig
from tock.duties.rescuer import Rescuer, RescuerConfig
from tock.duties.scheduler import Scheduler, SchedulerConfig, SchedulerReport
from tock.duties.vacuumer import Vacuumer, VacuumerConfig

__all__ = [
    "Duty",
    "Pruner",
    "PrunerConfig",
    "Rescuer",
    "RescuerConfig",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerReport",
    "Vacuumer",
    "VacuumerConfig",
]
