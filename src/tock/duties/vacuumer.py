"""The vacuumer: keeps the live table small under churn.

Each job leaves dead row versions behind in a PostgreSQL table (enqueue, claim, finish);
claims slow down as they pile up. Autovacuum comes by once a minute at best and can be
switched off server-wide, so workers check the live table's dead rows every few seconds
and vacuum it past a threshold (the store skips the pass when another worker is at it).
On SQLite it does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tock._service import Duty
from tock.clock import Clock, SystemClock
from tock.store import Store

log = logging.getLogger("tock.vacuumer")


@dataclass(frozen=True)
class VacuumerConfig:
    interval: float = 2.0
    min_dead_rows: int = 10_000


class Vacuumer(Duty):
    """Vacuums the live table past ``min_dead_rows`` dead rows, a check every
    ``interval``."""

    name = "vacuumer"

    def __init__(
        self, store: Store, clock: Clock | None = None, config: VacuumerConfig | None = None
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()  # unused by its passes: the shape every duty has
        self.config = config or VacuumerConfig()
        self._periodic()

    def run_once(self) -> bool:
        vacuumed = self.store.job_vacuum(min_dead_rows=self.config.min_dead_rows)
        if vacuumed:
            log.debug("vacuumed the live jobs table")
        return vacuumed
