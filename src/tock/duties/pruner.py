"""The pruner: deletes finished jobs past their retention, in batches.

Succeeded and canceled jobs are kept one day; failed and lost ones until a human acts
(docs/design.md: retention). Asking for a pruned job raises ``JobNotFound``. A schedule's fire
rows go with their job (the store deletes both together); fire rows of dropped fires,
which have no job, are kept ``fire_retention`` after their last fire. A workflow's row
goes once none of its jobs is stored any more.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from tock._service import Duty
from tock.clock import Clock
from tock.jobs import JobStatus
from tock.store import Store

log = logging.getLogger("tock.pruner")

DAY = 86_400.0


@dataclass(frozen=True)
class PrunerConfig:
    interval: float = 60.0
    batch_size: int = 1_000
    retention: Mapping[JobStatus, float] = field(
        default_factory=lambda: {JobStatus.SUCCEEDED: DAY, JobStatus.CANCELED: DAY}
    )
    fire_retention: float = DAY  #: rows of dropped fires (no job) are kept this long


class Pruner(Duty):
    """Deletes finished jobs past their retention, one pass every ``interval``."""

    name = "pruner"

    def __init__(self, store: Store, clock: Clock, config: PrunerConfig | None = None) -> None:
        self.store = store
        self.clock = clock
        self.config = config or PrunerConfig()
        self._periodic()

    def run_once(self) -> int:
        lease = self.pass_lease()
        deleted = self.store.job_prune(
            retention=self.config.retention,
            batch_size=self.config.batch_size,
            now=self.clock.db_now(),
            lease=lease,
        )
        if deleted:
            log.info("pruned %d finished jobs past their retention", deleted)
        drops = self.store.fire_prune(
            older_than=self.config.fire_retention,
            batch_size=self.config.batch_size,
            now=self.clock.db_now(),
            lease=lease,
        )
        if drops:
            log.info("pruned %d rows of dropped schedule fires", drops)
        workflows = self.store.workflow_prune(batch_size=self.config.batch_size, lease=lease)
        if workflows:
            log.info("pruned %d workflows whose jobs were all pruned", workflows)
        return deleted
