"""Claims size themselves (docs/design.md: "Claims size themselves"): the rule on its own,
with made-up measures; the worker tests check it in a running worker."""

from __future__ import annotations

import pytest

from tock.worker.sizing import HOARD, MAX_PREFETCH, ClaimSizer


def test_nothing_is_held_beyond_the_slots_until_a_job_has_ended() -> None:
    sizer = ClaimSizer(concurrency=10)
    assert sizer.rate is None
    assert sizer.prefetch == 0
    assert sizer.refill_at == 0
    sizer.ran([])  # a turn with nothing ended changes nothing
    assert sizer.prefetch == 0


def test_short_jobs_fill_the_largest_batch() -> None:
    sizer = ClaimSizer(concurrency=10)
    sizer.ran([0.00005] * 500)  # 50 µs a job: 200,000 jobs a second on ten slots
    assert sizer.prefetch == MAX_PREFETCH
    assert sizer.refill_at == MAX_PREFETCH // 2


def test_long_jobs_hold_at_most_the_hoard_of_expected_work() -> None:
    sizer = ClaimSizer(concurrency=10)
    sizer.ran([0.2] * 10)  # ten slots of 200 ms jobs: 50 a second
    assert sizer.prefetch == 5  # 100 ms of their work
    assert sizer.prefetch * 0.2 / 10 <= HOARD
    sizer.ran([5.0] * 20)  # jobs of seconds: nothing held beyond the slots
    assert sizer.prefetch == 0


@pytest.mark.parametrize("concurrency", [1, 4, 10, 64])
@pytest.mark.parametrize("seconds", [1e-5, 1e-3, 0.01, 0.05, 0.3, 2.0])
def test_the_hoard_never_exceeds_its_bound(concurrency: int, seconds: float) -> None:
    sizer = ClaimSizer(concurrency=concurrency)
    sizer.ran([seconds] * 1000)
    assert 0 <= sizer.prefetch <= MAX_PREFETCH
    # the jobs held beyond the slots are worked off by the slots within HOARD
    assert sizer.prefetch * seconds / concurrency <= HOARD * 1.0001
    assert 0 <= sizer.refill_at <= sizer.prefetch


def test_the_mean_follows_the_jobs_as_they_change() -> None:
    sizer = ClaimSizer(concurrency=10)
    sizer.ran([0.2] * 10)
    assert sizer.prefetch == 5
    sizer.ran([0.0001] * 2000)  # a big batch of short ones moves it all the way
    assert sizer.prefetch == MAX_PREFETCH
    sizer.ran([0.5])  # one long job moves it a little
    assert 0 < sizer.prefetch < MAX_PREFETCH


def test_a_slow_claim_raises_the_refill_mark() -> None:
    """The jobs waiting when a claim is sent must last until its answer: the refill mark
    covers two round trips, within the prefetch."""
    sizer = ClaimSizer(concurrency=10)
    sizer.ran([0.001] * 1000)  # 10,000 jobs a second: prefetch 1,000
    assert sizer.prefetch == 1000
    assert sizer.refill_at == 500
    for _ in range(50):
        sizer.claimed(0.04)  # 40 ms claims: 800 jobs run during two
    assert sizer.refill_at == pytest.approx(800, abs=5)
    for _ in range(50):
        sizer.claimed(0.5)
    assert sizer.refill_at == 1000  # never more than the prefetch


def test_a_fixed_prefetch_overrides_the_measures() -> None:
    sizer = ClaimSizer(concurrency=4, prefetch=4000)
    assert sizer.prefetch == 4000
    assert sizer.refill_at == 2000
    sizer.ran([5.0] * 10)
    assert sizer.prefetch == 4000
    assert ClaimSizer(concurrency=4, prefetch=0).refill_at == 0
