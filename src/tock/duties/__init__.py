"""Cluster duties: rescuing the jobs of dead workers and pruning finished jobs.

Until leader election lands every worker runs them; each pass is race-free in the store.
"""

from tock.duties.pruner import Pruner, PrunerConfig
from tock.duties.rescuer import Rescuer, RescuerConfig

__all__ = ["Pruner", "PrunerConfig", "Rescuer", "RescuerConfig"]
