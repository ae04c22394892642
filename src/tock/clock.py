"""Time for Tock: one clock object that tests replace.

Stored times are UTC. Leases, heartbeats and backoffs are computed by the store as the
database's ``now`` plus a duration; ``db_now()`` is what callers pass as that ``now``:
``None`` in production (the database's own clock decides) and the fake time in tests.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC (for display and absolute times)."""
        ...

    def db_now(self) -> datetime | None:
        """What the store should take as ``now``: ``None`` means the database's clock."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start; for waiting, never stored."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock. The store asks the database for ``now``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def db_now(self) -> datetime | None:
        return None

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to; the store receives its time as ``now``.

    ``monotonic`` and ``sleep`` stay real: tests with threads wait in real time but see
    fake wall-clock time in every stored value.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError(
                "FakeClock needs an aware datetime, e.g. datetime(2030, 1, 1, tzinfo=UTC)"
            )
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def db_now(self) -> datetime | None:
        return self.now()

    def advance(self, delta: timedelta | None = None, /, *, seconds: float = 0.0) -> datetime:
        step = (delta or timedelta()) + timedelta(seconds=seconds)
        if step < timedelta():
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FakeClock.set needs an aware datetime")
        with self._lock:
            self._now = when.astimezone(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
