"""The clocks: FakeClock moves only when told, forward only, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tock import FakeClock, SystemClock

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_fake_clock_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2030, 1, 1))
    clock = FakeClock(T0)
    with pytest.raises(ValueError, match="aware"):
        clock.set(datetime(2031, 1, 1))
    assert clock.now() == T0


def test_fake_clock_does_not_go_backwards() -> None:
    clock = FakeClock(T0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(seconds=-1)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-0.001))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=5), seconds=-6)
    assert clock.now() == T0


def test_fake_clock_advances_and_is_utc() -> None:
    clock = FakeClock(datetime(2030, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == T0
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.db_now() == T0
    assert clock.advance(seconds=11) == T0 + timedelta(seconds=11)
    assert clock.advance(timedelta(minutes=1), seconds=1) == T0 + timedelta(seconds=72)
    assert clock.advance() == T0 + timedelta(seconds=72)
    clock.set(T0 + timedelta(days=1))
    assert clock.now() == T0 + timedelta(days=1)


def test_fake_clock_monotonic_is_real() -> None:
    clock = FakeClock(T0)
    a = clock.monotonic()
    clock.sleep(0.001)
    assert clock.monotonic() > a
    assert clock.now() == T0


def test_system_clock_leaves_now_to_the_database() -> None:
    clock = SystemClock()
    assert clock.db_now() is None
    assert clock.now().tzinfo is not None
    assert clock.now().utcoffset() == timedelta(0)
