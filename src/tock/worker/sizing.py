"""How many jobs a worker claims beyond its slots: sized from what it measures.

The rule (docs/design.md: "Claims size themselves"): a worker whose slots each take
``W`` seconds a job runs ``concurrency / W`` jobs a second when its slots are full
(Little's law). Beyond its slots it holds at most ``HOARD`` seconds of that work,
``concurrency * HOARD / W`` jobs, and never more than ``MAX_PREFETCH``: a worker of no-op
jobs claims in batches of thousands, one of 200 ms jobs holds five beyond ten slots, one
of jobs of a second or more holds none, and another worker or a job of higher priority
never waits behind one worker's hoard for much more than ``HOARD``. Until a job has
ended nothing is known, and nothing is held beyond the slots.

The claimer claims again once a slot has no job to take or the jobs waiting fall to the
refill mark: half the prefetch, or what the slots run during two claim round trips if that
is more, so that slots do not run dry while a claim is on its way. ``--prefetch N`` fixes
the prefetch; the refill mark still follows the rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: seconds of expected work a worker holds beyond its slots, at most
HOARD = 0.1
#: jobs a worker holds beyond its slots, at most (a claim's batch stays a few thousand
#: rows: one transaction of a few milliseconds, never one that holds a writer for long)
MAX_PREFETCH = 4000
#: the weight of each measured job in the running mean of slot times: a batch of ``n``
#: jobs moves the mean by ``1 - (1 - RUN_WEIGHT) ** n`` of the way to its own mean
RUN_WEIGHT = 0.05
#: the weight of each claim's round trip in its running mean
TRIP_WEIGHT = 0.2


class ClaimSizer:
    """The prefetch and refill mark of one worker, from its measured slot times and claim
    round trips (``prefetch``: a fixed prefetch, ``--prefetch``; None sizes it)."""

    def __init__(self, concurrency: int, prefetch: int | None = None) -> None:
        self.concurrency = concurrency
        self.fixed = prefetch
        self.slot_time: float | None = None  #: running mean, seconds a job holds a slot
        self.round_trip = 0.0  #: running mean, seconds a claim takes

    def ran(self, times: Sequence[float]) -> None:
        """Jobs ended, each having held its slot for these many seconds."""
        n = len(times)
        if not n:
            return
        mean = max(sum(times) / n, 1e-7)
        if self.slot_time is None:
            self.slot_time = mean
        else:
            moved = 1.0 - (1.0 - RUN_WEIGHT) ** n
            self.slot_time += (mean - self.slot_time) * moved

    def claimed(self, seconds: float) -> None:
        """A claim took this long, from sending it to its answer."""
        self.round_trip += (max(seconds, 0.0) - self.round_trip) * TRIP_WEIGHT

    @property
    def rate(self) -> float | None:
        """Jobs a second the slots run when full; None until a job has ended."""
        if self.slot_time is None:
            return None
        return self.concurrency / self.slot_time

    @property
    def prefetch(self) -> int:
        """Jobs to hold beyond the slots."""
        if self.fixed is not None:
            return self.fixed
        rate = self.rate
        if rate is None:
            return 0
        return min(MAX_PREFETCH, int(rate * HOARD + 1e-6))  # 1e-6: not 999.99 for 1,000

    @property
    def refill_at(self) -> int:
        """Claim again once no more than this many jobs wait for a slot."""
        prefetch = self.prefetch
        rate = self.rate
        trips = 0 if rate is None else math.ceil(rate * 2 * self.round_trip)
        return min(prefetch, max(prefetch // 2, trips))
