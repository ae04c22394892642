"""Triggers, next fire times across DST, misfire policies (src/tock/schedules.py).

The property tests compare ``next_fire`` with a brute-force scan over every real minute
(or second) that applies the DST rule of docs/design.md on its own terms: a wildcard
expression fires at each instant whose local wall time matches; a fixed-time one fires at the first
instant a matching wall time is seen, and at the first instant after a gap that swallowed
a matching wall time. It never looks at ``fold`` or at the implementation's parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tock.errors import ConfigurationError
from tock.schedules import (
    COALESCED,
    MAX_FIRES_PER_PASS,
    MISSED,
    At,
    Cron,
    Drop,
    Every,
    FirePlan,
    Trigger,
    check_grace,
    check_misfire,
    check_policy,
    describe_trigger,
    first_fire,
    make_trigger,
    next_fire,
    plan_fires,
    trigger_from_json,
    trigger_to_json,
)

BERLIN = "Europe/Berlin"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(trigger, after: datetime, until: datetime) -> list[datetime]:
    out = []
    when = next_fire(trigger, after)
    while when is not None and when <= until:
        out.append(when)
        when = next_fire(trigger, when)
    return out


def local(times: list[datetime], zone: str) -> list[str]:
    return [t.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M:%S%z") for t in times]


# ---------------------------------------------------------------------------------------
# DST examples (docs/design.md: "Schedules").


def test_fixed_time_in_a_skipped_hour_runs_once_at_the_first_instant_after_the_gap():
    # 2024-03-31 Berlin: 02:00 CET -> 03:00 CEST; 02:30 does not exist.
    got = fires(Cron("30 2 * * *", BERLIN), utc(2024, 3, 30, 12), utc(2024, 4, 1, 12))
    assert local(got, BERLIN) == ["03-31 03:00:00+0200", "04-01 02:30:00+0200"]
    assert got[0] == utc(2024, 3, 31, 1)


def test_fixed_time_in_a_repeated_hour_runs_once_at_its_first_occurrence():
    # 2024-10-27 Berlin: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    cron = Cron("30 2 * * *", BERLIN)
    got = fires(cron, utc(2024, 10, 26, 12), utc(2024, 10, 28, 12))
    assert local(got, BERLIN) == ["10-27 02:30:00+0200", "10-28 02:30:00+0100"]
    # Asked from inside the repeated hour, in either pass, it does not fire again.
    assert next_fire(cron, utc(2024, 10, 27, 0, 45)) == utc(2024, 10, 28, 1, 30)
    assert next_fire(cron, utc(2024, 10, 27, 1, 15)) == utc(2024, 10, 28, 1, 30)
    assert next_fire(cron, utc(2024, 10, 27, 0, 15)) == utc(2024, 10, 27, 0, 30)


def test_several_skipped_times_of_a_fixed_schedule_make_one_fire():
    got = fires(Cron("0,30 2,3 * * *", BERLIN), utc(2024, 3, 31, 0), utc(2024, 3, 31, 4))
    assert local(got, BERLIN) == ["03-31 03:00:00+0200", "03-31 03:30:00+0200"]


def test_step_expression_fires_at_both_occurrences_of_a_repeated_hour():
    got = fires(Cron("*/15 * * * *", BERLIN), utc(2024, 10, 26, 23, 50), utc(2024, 10, 27, 2))
    assert local(got, BERLIN) == [
        "10-27 02:00:00+0200",
        "10-27 02:15:00+0200",
        "10-27 02:30:00+0200",
        "10-27 02:45:00+0200",
        "10-27 02:00:00+0100",
        "10-27 02:15:00+0100",
        "10-27 02:30:00+0100",
        "10-27 02:45:00+0100",
        "10-27 03:00:00+0100",
    ]
    assert got == [utc(2024, 10, 27, 0) + timedelta(minutes=15 * i) for i in range(9)]


def test_hourly_fires_at_both_occurrences_of_a_repeated_hour():
    got = fires(Cron("@hourly", BERLIN), utc(2024, 10, 26, 23, 30), utc(2024, 10, 27, 2, 30))
    assert local(got, BERLIN) == [
        "10-27 02:00:00+0200",
        "10-27 02:00:00+0100",
        "10-27 03:00:00+0100",
    ]


def test_wildcard_expressions_fire_nothing_for_skipped_times():
    got = fires(Cron("*/15 * * * *", BERLIN), utc(2024, 3, 31, 0, 40), utc(2024, 3, 31, 1, 20))
    assert local(got, BERLIN) == [
        "03-31 01:45:00+0100",
        "03-31 03:00:00+0200",
        "03-31 03:15:00+0200",
    ]
    assert next_fire(Cron("30 * * * *", BERLIN), utc(2024, 3, 31, 0, 40)) == utc(2024, 3, 31, 1, 30)


def test_midnight_transition_runs_a_daily_schedule_at_one_am():
    # 2018-11-04 Sao Paulo: 00:00 -> 01:00; midnight does not exist that day.
    cron = Cron("@daily", "America/Sao_Paulo")
    got = fires(cron, utc(2018, 11, 3, 12), utc(2018, 11, 5, 12))
    assert local(got, "America/Sao_Paulo") == ["11-04 01:00:00-0200", "11-05 00:00:00-0200"]


def test_lord_howe_half_hour_fall_back_repeats_half_an_hour():
    # 2024-04-07 Lord Howe: 02:00 +11 -> 01:30 +10:30.
    wild = fires(
        Cron("*/30 * * * *", "Australia/Lord_Howe"), utc(2024, 4, 6, 13, 59), utc(2024, 4, 6, 16)
    )
    assert local(wild, "Australia/Lord_Howe") == [
        "04-07 01:00:00+1100",
        "04-07 01:30:00+1100",
        "04-07 01:30:00+1030",
        "04-07 02:00:00+1030",
        "04-07 02:30:00+1030",
    ]
    fixed = fires(Cron("45 1 * * *", "Australia/Lord_Howe"), utc(2024, 4, 6), utc(2024, 4, 7, 18))
    assert local(fixed, "Australia/Lord_Howe") == ["04-07 01:45:00+1100", "04-08 01:45:00+1030"]


def test_six_fields_take_the_seconds_last_and_follow_the_same_rules():
    every_ten = Cron("* * * * * */10")
    assert fires(every_ten, utc(2030, 1, 1), utc(2030, 1, 1, 0, 0, 30)) == [
        utc(2030, 1, 1, 0, 0, 10),
        utc(2030, 1, 1, 0, 0, 20),
        utc(2030, 1, 1, 0, 0, 30),
    ]
    fixed = Cron("30 2 * * * 15,45", BERLIN)
    got = fires(fixed, utc(2024, 3, 30, 12), utc(2024, 4, 1, 12))
    assert local(got, BERLIN) == [
        "03-31 03:00:00+0200",
        "04-01 02:30:15+0200",
        "04-01 02:30:45+0200",
    ]
    repeated = fires(fixed, utc(2024, 10, 26, 12), utc(2024, 10, 27, 12))
    assert local(repeated, BERLIN) == ["10-27 02:30:15+0200", "10-27 02:30:45+0200"]


def test_fixed_time_classification():
    assert Cron("30 2 * * *").fixed_time
    assert Cron("0 9-17 * * 1-5").fixed_time
    assert Cron("@daily").fixed_time
    assert Cron("0 0 * * * */5").fixed_time  # the seconds field does not count
    assert not Cron("*/15 * * * *").fixed_time
    assert not Cron("0 */2 * * *").fixed_time
    assert not Cron("0 1-5/2 * * *").fixed_time
    assert not Cron("@hourly").fixed_time


def test_cron_syntax():
    start = utc(2030, 1, 1)  # a Tuesday
    assert next_fire(Cron("0 0 * * sun"), start) == utc(2030, 1, 6)
    assert next_fire(Cron("0 0 * * 7"), start) == utc(2030, 1, 6)
    assert next_fire(Cron("0 0 1 MAR *"), start) == utc(2030, 3, 1)
    assert next_fire(Cron("50/5 * * * *"), start) == utc(2030, 1, 1, 0, 50)
    assert next_fire(Cron("0 0 13 * 5"), start) == utc(2030, 1, 4)  # a Friday, or the 13th
    assert next_fire(Cron("@weekly"), start) == utc(2030, 1, 6)
    assert next_fire(Cron("@monthly"), start) == utc(2030, 2, 1)
    assert next_fire(Cron("@yearly"), start) == utc(2031, 1, 1)
    assert next_fire(Cron("@ANNUALLY"), start) == utc(2031, 1, 1)
    assert next_fire(Cron("@midnight"), start) == utc(2030, 1, 2)
    assert next_fire(Cron("0 0 29 2 *"), start) == utc(2032, 2, 29)
    assert next_fire(Cron("0 12 * * *", "America/New_York"), start) == utc(2030, 1, 1, 17)


def test_next_fire_is_strictly_after_and_returns_utc():
    cron = Cron("0 * * * *", BERLIN)
    assert next_fire(cron, utc(2030, 1, 1, 5)) == utc(2030, 1, 1, 6)
    got = next_fire(cron, datetime(2030, 1, 1, 6, 0, 0, 1, tzinfo=ZoneInfo(BERLIN)))
    assert got == utc(2030, 1, 1, 6)
    assert got is not None and got.tzinfo is UTC
    with pytest.raises(ValueError, match="aware"):
        next_fire(cron, datetime(2030, 1, 1))


def test_every_is_anchored_to_the_epoch_by_default():
    ten = Every(timedelta(minutes=10))
    assert ten.anchor == utc(1970, 1, 1)
    assert fires(ten, utc(2030, 1, 1, 0, 3), utc(2030, 1, 1, 0, 30)) == [
        utc(2030, 1, 1, 0, 10),
        utc(2030, 1, 1, 0, 20),
        utc(2030, 1, 1, 0, 30),
    ]
    assert Every(600) == ten
    assert next_fire(Every(1.5), utc(2030, 1, 1)) == utc(2030, 1, 1) + timedelta(seconds=1.5)


def test_every_with_an_anchor_fires_at_anchor_plus_k_intervals():
    anchor = datetime(2030, 1, 1, 9, 5, tzinfo=ZoneInfo(BERLIN))
    hourly = Every(timedelta(hours=1), anchor=anchor)
    assert hourly.anchor == utc(2030, 1, 1, 8, 5) and hourly.anchor.tzinfo is UTC
    assert next_fire(hourly, utc(2029, 6, 1)) == utc(2030, 1, 1, 8, 5)  # the first fire
    assert next_fire(hourly, utc(2030, 1, 1, 8, 5)) == utc(2030, 1, 1, 9, 5)
    assert next_fire(hourly, utc(2030, 3, 31, 12)) == utc(2030, 3, 31, 12, 5)  # DST: real hours


def test_at_fires_once():
    once = At(datetime(2030, 1, 1, 1, tzinfo=ZoneInfo(BERLIN)))
    assert once.when == utc(2030, 1, 1)
    assert next_fire(once, utc(2029, 1, 1)) == utc(2030, 1, 1)
    assert next_fire(once, utc(2030, 1, 1)) is None
    assert fires(once, utc(2020, 1, 1), utc(2040, 1, 1)) == [utc(2030, 1, 1)]


def test_make_trigger():
    assert make_trigger(cron="0 2 * * *", timezone=BERLIN) == Cron("0 2 * * *", BERLIN)
    assert make_trigger(cron="0 2 * * *").timezone == "UTC"  # type: ignore[union-attr]
    assert make_trigger(every=10) == Every(10)
    assert make_trigger(at=utc(2030, 1, 1)) == At(utc(2030, 1, 1))


# ---------------------------------------------------------------------------------------
# Bad input is refused where it enters, naming the problem.


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 25 * * *", r"cron field 2 \(hour\) '25' is out of range 0-23"),
        ("60 * * * *", r"cron field 1 \(minute\) '60' is out of range 0-59"),
        ("0 0 0 * *", r"cron field 3 \(day of month\) '0' is out of range 1-31"),
        ("0 0 * 13 *", r"cron field 4 \(month\) '13' is out of range 1-12"),
        ("0 0 * * 8", r"cron field 5 \(day of week\) '8' is out of range 0-7"),
        ("* * * * * 61", r"cron field 6 \(second\) '61' is out of range 0-59"),
        ("0 20-25 * * *", r"cron field 2 \(hour\) '25' in '20-25' is out of range 0-23"),
        ("0 5-2 * * *", r"cron field 2 \(hour\) '5-2' is a range that goes backwards"),
        ("*/0 * * * *", r"cron field 1 \(minute\) '\*/0' has a bad step '0'"),
        ("*/x * * * *", r"cron field 1 \(minute\) '\*/x' has a bad step 'x'"),
        ("x * * * *", r"cron field 1 \(minute\) 'x' is not a number"),
        ("0 0 * foo *", r"cron field 4 \(month\) 'foo' is not a number or a name \(jan"),
        ("0 0 L * *", r"cron field 3 \(day of month\) 'L' is not a number"),
        ("0 0 * * mon#2", r"cron field 5 \(day of week\) 'mon#2' is not a number"),
        ("0 0 1,,2 * *", r"cron field 3 \(day of month\) '' is not a value"),
        ("0 0 * * *\n0", r"cron field 5 \(day of week\) '\*\\n0' is not"),
        ("* * * *", "it has 4 fields: use 5"),
        ("* * * * * * *", "it has 7 fields"),
        ("", "it has 0 fields"),
        ("@reboot", "unknown shortcut '@reboot'"),
        ("0 0 31 2 *", "it never fires: no day 31 in month 2"),
        ("0 0 30,31 2 *", "it never fires: no day 30,31 in month 2"),
    ],
)
def test_bad_cron_expression_names_the_problem(expression, message):
    with pytest.raises(ConfigurationError, match=message) as info:
        Cron(expression)
    assert str(info.value).startswith(f"invalid cron expression {expression.strip()!r}"[:20])


def test_day_31_in_february_is_fine_when_a_weekday_can_match():
    assert next_fire(Cron("0 0 31 2 mon"), utc(2030, 1, 1)) == utc(2030, 2, 4)


def _days(expression: str, count: int) -> list[str]:
    """The next ``count`` fire days after Tuesday 2030-01-01, as "MM-DD"."""
    cron, at, days = Cron(expression), utc(2030, 1, 1), []
    for _ in range(count):
        nxt = next_fire(cron, at)
        assert nxt is not None
        days.append(nxt.strftime("%m-%d"))
        at = nxt
    return days


# Debian's cron: a day field that starts with "*" makes both fields apply; with neither
# starting with "*", a day matching either fires. 2030-01-07 is a Monday.
@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 0 2 * mon", ["01-02", "01-07", "01-14", "01-21", "01-28", "02-02"]),  # either
        ("0 0 */2 * mon", ["01-07", "01-21", "02-11", "02-25", "03-11", "03-25"]),  # both
        ("0 0 1-31/2 * mon", ["01-03", "01-05", "01-07", "01-09", "01-11", "01-13"]),
        ("0 0 1-31 * mon", ["01-02", "01-03", "01-04", "01-05", "01-06", "01-07"]),
        ("0 0 31 2 0-6", ["02-01", "02-02", "02-03", "02-04", "02-05", "02-06"]),
        ("0 0 31 2 mon", ["02-04", "02-11", "02-18", "02-25", "02-03", "02-10"]),
        ("0 0 30,31 2,3 mon", ["02-04", "02-11", "02-18", "02-25", "03-04", "03-11"]),
        ("0 0 */10 * 1-5", ["01-11", "01-21", "01-31", "02-01", "02-11", "02-21"]),
    ],
)
def test_day_fields_follow_debian_cron(expression, days):
    # The answer is Tock's, whatever croniter's version (6.2 and 7.0 differ on "31 2 mon").
    assert _days(expression, len(days)) == days


def test_impossible_day_with_a_starred_weekday_never_fires():
    with pytest.raises(ConfigurationError, match="it never fires: no day 31 in month 2"):
        Cron("0 0 31 2 */2")


@pytest.mark.parametrize("zone", ["Europe/Berln", "", "../etc/passwd", "/etc/localtime", 5])
def test_unknown_time_zone_is_named(zone):
    with pytest.raises(ConfigurationError, match="time zone"):
        Cron("* * * * *", zone)


def test_cron_expression_must_be_a_string():
    with pytest.raises(ConfigurationError, match="a cron expression is a string"):
        Cron(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        (0, "at least 1 second"),
        (0.5, "at least 1 second"),
        (-10, "at least 1 second"),
        (timedelta(milliseconds=999), "at least 1 second"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("10", "timedelta or a number of seconds"),
        (True, "timedelta or a number of seconds"),
        (None, "timedelta or a number of seconds"),
    ],
)
def test_bad_interval(interval, message):
    with pytest.raises(ConfigurationError, match=message):
        Every(interval)


def test_naive_times_are_refused():
    with pytest.raises(ConfigurationError, match="at= must be an aware datetime"):
        At(datetime(2030, 1, 1))
    with pytest.raises(ConfigurationError, match="anchor must be an aware datetime"):
        Every(10, anchor=datetime(2030, 1, 1))
    with pytest.raises(ConfigurationError, match="at= must be a datetime"):
        At("2030-01-01")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of cron=, every= or at=, not none"),
        ({"cron": "* * * * *", "every": 10}, "not cron= and every="),
        ({"cron": ""}, "invalid cron expression '': it has 0 fields"),
        ({"every": 0}, "at least 1 second"),
        ({"every": 10, "timezone": BERLIN}, "timezone= applies to cron= schedules only"),
        ({"at": datetime(2030, 1, 1, tzinfo=UTC), "anchor": None, "timezone": "UTC"}, "timezone"),
        ({"cron": "* * * * *", "anchor": datetime(2030, 1, 1, tzinfo=UTC)}, "anchor= applies"),
    ],
)
def test_make_trigger_refuses(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        make_trigger(**kwargs)


def test_misfire_and_grace_checks():
    assert check_misfire("skip") == "skip"
    assert check_grace(30) == timedelta(seconds=30)
    assert check_grace(timedelta(minutes=2)) == timedelta(minutes=2)
    with pytest.raises(ConfigurationError, match="misfire must be one of 'coalesce', 'skip'"):
        check_misfire("latest")
    for bad in (-1, timedelta(seconds=-1), float("nan"), "60", True):
        with pytest.raises(ConfigurationError, match="grace must be"):
            check_grace(bad)
    with pytest.raises(ConfigurationError, match=r"zero or a positive duration, not -0\.5"):
        check_grace(-0.5)


@pytest.mark.parametrize("zero", [0, 0.0, timedelta(0)])
def test_no_grace_is_a_choice(zero):
    # Every late fire follows the misfire policy: 5 ms late is missed, and coalesce runs it.
    assert check_grace(zero) == timedelta(0)
    every = Every(timedelta(minutes=10))
    late = utc(2030, 1, 1, 0, 10) + timedelta(milliseconds=5)
    coalesce = plan_fires(every, utc(2030, 1, 1, 0, 10), late, misfire="coalesce", grace=zero)
    assert coalesce.run == (utc(2030, 1, 1, 0, 10),)
    assert coalesce.dropped == ()
    assert plan_fires(every, utc(2030, 1, 1, 0, 10), late, misfire="all", grace=zero).run == (
        utc(2030, 1, 1, 0, 10),
    )


def test_skip_without_grace_is_refused():
    with pytest.raises(ConfigurationError, match="misfire='skip' with grace=0 would drop every"):
        check_policy("skip", 0)
    assert check_policy("skip", 1) == ("skip", timedelta(seconds=1))
    assert check_policy("coalesce", timedelta(0)) == ("coalesce", timedelta(0))


# ---------------------------------------------------------------------------------------
# Misfire policies (docs/design.md "Options and defaults"; API "Schedules"; issue 4, point 5).

TEN_MINUTES = [Every(timedelta(minutes=10)), Cron("*/10 * * * *")]


@pytest.mark.parametrize("trigger", TEN_MINUTES, ids=["every", "cron"])
def test_the_issue_example(trigger):
    # Passes at 00:00:00 and 03:05:00; the fires 00:10 ... 03:00 (18) were missed.
    first_pass = plan_fires(trigger, utc(2030, 1, 1), utc(2030, 1, 1))
    assert first_pass == FirePlan((utc(2030, 1, 1),), (), utc(2030, 1, 1, 0, 10))
    nf, now = first_pass.next_fire, utc(2030, 1, 1, 3, 5)
    missed = [utc(2030, 1, 1, 0, 10) + timedelta(minutes=10 * i) for i in range(18)]
    assert missed[-1] == utc(2030, 1, 1, 3)

    coalesce = plan_fires(trigger, nf, now, misfire="coalesce", grace=timedelta(seconds=60))
    assert coalesce.run == (utc(2030, 1, 1, 3),)
    assert coalesce.dropped == (Drop(missed[0], missed[-2], 17, COALESCED),)

    skip = plan_fires(trigger, nf, now, misfire="skip", grace=60)
    assert skip.run == ()
    assert skip.dropped == (Drop(missed[0], missed[-1], 18, MISSED),)

    all_ = plan_fires(trigger, nf, now, misfire="all", grace=60)
    assert all_.run == tuple(missed)
    assert all_.dropped == ()

    for plan in (coalesce, skip, all_):
        assert plan.next_fire == utc(2030, 1, 1, 3, 10)
        assert not plan.capped


@pytest.mark.parametrize("trigger", TEN_MINUTES, ids=["every", "cron"])
def test_a_fire_late_by_less_than_grace_always_runs(trigger):
    nf, now = utc(2030, 1, 1, 0, 10), utc(2030, 1, 1, 3, 0, 59)
    for misfire in ("coalesce", "skip", "all"):
        plan = plan_fires(trigger, nf, now, misfire=misfire)
        assert plan.run[-1] == utc(2030, 1, 1, 3)
        assert plan.next_fire == utc(2030, 1, 1, 3, 10)
    # The on-time fire stands for the missed ones: coalesce runs one job, not two.
    coalesce = plan_fires(trigger, nf, now, misfire="coalesce")
    assert coalesce.run == (utc(2030, 1, 1, 3),)
    assert coalesce.dropped == (Drop(nf, utc(2030, 1, 1, 2, 50), 17, COALESCED),)
    skip = plan_fires(trigger, nf, now, misfire="skip")
    assert skip.dropped == (Drop(nf, utc(2030, 1, 1, 2, 50), 17, MISSED),)
    assert len(plan_fires(trigger, nf, now, misfire="all").run) == 18
    # Exactly grace late is missed.
    late = plan_fires(trigger, utc(2030, 1, 1, 3), utc(2030, 1, 1, 3, 1), misfire="skip")
    assert late.run == () and late.dropped[0].count == 1


def test_several_on_time_fires_all_run_even_when_coalescing():
    plan = plan_fires(Every(10), utc(2030, 1, 1), utc(2030, 1, 1, 0, 0, 35), misfire="coalesce")
    assert len(plan.run) == 4 and plan.dropped == ()


def test_nothing_due_changes_nothing():
    assert plan_fires(Every(10), utc(2030, 1, 2), utc(2030, 1, 1)) == FirePlan(
        (), (), utc(2030, 1, 2)
    )
    assert plan_fires(Every(10), None, utc(2030, 1, 1)) == FirePlan((), (), None)


def test_a_single_missed_fire_under_coalesce_runs_without_a_drop():
    plan = plan_fires(Every(600), utc(2030, 1, 1), utc(2030, 1, 1, 0, 5))
    assert plan == FirePlan((utc(2030, 1, 1),), (), utc(2030, 1, 1, 0, 10))
    plan = plan_fires(Every(600), utc(2030, 1, 1), utc(2030, 1, 1, 0, 15))  # two missed
    assert plan.run == (utc(2030, 1, 1, 0, 10),)
    assert plan.dropped == (Drop(utc(2030, 1, 1), utc(2030, 1, 1), 1, COALESCED),)


def test_at_runs_once_then_the_schedule_is_done():
    once = At(utc(2030, 1, 1))
    assert plan_fires(once, once.when, utc(2030, 1, 1, 0, 0, 5)) == FirePlan((once.when,), (), None)
    late = plan_fires(once, once.when, utc(2030, 1, 2), misfire="skip")
    assert late == FirePlan((), (Drop(once.when, once.when, 1, MISSED),), None)
    assert plan_fires(once, once.when, utc(2030, 1, 2)).run == (once.when,)


def test_every_skips_a_year_of_missed_fires_in_one_pass():
    nf, now = utc(2030, 1, 1), utc(2031, 1, 1, 0, 0, 0, 500)
    plan = plan_fires(Every(1), nf, now, misfire="skip")
    year = 365 * 24 * 3600
    assert plan.dropped == (Drop(nf, utc(2030, 12, 31, 23, 59), year - 59, MISSED),)
    assert len(plan.run) == 60 and plan.next_fire == utc(2031, 1, 1, 0, 0, 1)
    coalesce = plan_fires(Every(1), nf, now, misfire="coalesce")
    assert coalesce.dropped[0].count == year - 59 and len(coalesce.run) == 60


def test_all_is_capped_per_pass_and_catches_up_over_several_passes():
    nf, now = utc(2030, 1, 1), utc(2030, 1, 1, 1)
    plan = plan_fires(Every(1), nf, now, misfire="all")
    assert len(plan.run) == MAX_FIRES_PER_PASS and plan.capped
    assert plan.next_fire == nf + timedelta(seconds=MAX_FIRES_PER_PASS)

    cron, passes, ran = Cron("* * * * *"), 0, []
    nf, now = utc(2030, 1, 1), utc(2030, 1, 2)
    while nf is not None and nf <= now:
        plan = plan_fires(cron, nf, now, misfire="all", max_fires=100)
        assert len(plan.run) <= 100
        ran += plan.run
        nf, passes = plan.next_fire, passes + 1
    assert ran == [utc(2030, 1, 1) + timedelta(minutes=i) for i in range(24 * 60 + 1)]
    assert passes == 15 and nf == utc(2030, 1, 2, 0, 1)


@pytest.mark.parametrize("misfire", ["coalesce", "skip"])
def test_capped_cron_passes_drop_and_run_once_at_the_end(misfire):
    cron, nf, now = Cron("* * * * *"), utc(2030, 1, 1), utc(2030, 1, 2, 0, 0, 30)
    runs, drops, capped = [], [], []
    while nf is not None and nf <= now:
        plan = plan_fires(cron, nf, now, misfire=misfire, max_fires=500)
        runs += plan.run
        drops += plan.dropped
        capped.append(plan.capped)
        nf = plan.next_fire
    assert capped == [True, True, False]
    # 00:00 on the 2nd is on time (30 s late): it runs and stands for the missed ones.
    assert runs == [utc(2030, 1, 2)]
    assert sum(d.count for d in drops) == 24 * 60
    assert {d.reason for d in drops} == {COALESCED if misfire == "coalesce" else MISSED}
    assert drops[0].first == utc(2030, 1, 1) and drops[-1].last == utc(2030, 1, 1, 23, 59)
    assert nf == utc(2030, 1, 2, 0, 1)


def test_plan_checks_its_input():
    with pytest.raises(ConfigurationError, match="misfire"):
        plan_fires(Every(1), utc(2030, 1, 1), utc(2030, 1, 1), misfire="never")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="now must be an aware"):
        plan_fires(Every(1), utc(2030, 1, 1), datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="max_fires"):
        plan_fires(Every(1), utc(2030, 1, 1), utc(2030, 1, 1), max_fires=0)


@settings(deadline=None, max_examples=150)
@given(
    interval=st.integers(1, 5000),
    start=st.integers(0, 20_000),
    lag=st.integers(0, 50_000),
    grace=st.integers(1, 3000),
    misfire=st.sampled_from(["coalesce", "skip", "all"]),
    use_cron=st.booleans(),
)
def test_plan_accounts_for_every_due_fire(interval, start, lag, grace, misfire, use_cron):
    trigger = Cron("* * * * * */5") if use_cron else Every(interval)
    nf = next_fire(trigger, utc(2030, 1, 1) + timedelta(seconds=start))
    assert nf is not None
    now = nf + timedelta(seconds=lag)
    plan = plan_fires(trigger, nf, now, misfire=misfire, grace=grace)
    handled = fires(
        trigger, nf - timedelta(microseconds=1), plan.next_fire - timedelta(microseconds=1)
    )
    assert sum(d.count for d in plan.dropped) + len(plan.run) == len(handled)
    assert set(plan.run) <= set(handled) and list(plan.run) == sorted(plan.run)
    on_time = [f for f in handled if now - f < timedelta(seconds=grace)]
    assert set(on_time) <= set(plan.run)
    if misfire == "all":
        assert list(plan.run) == handled
    if not plan.capped:
        assert plan.next_fire == next_fire(trigger, now)
        if misfire == "coalesce":
            assert len(plan.run) == max(len(on_time), 1)


# ---------------------------------------------------------------------------------------
# Property tests: next_fire against a brute-force scan across DST changes.

ZONES = {
    "Europe/Berlin": (2023, 2025),
    "America/New_York": (2023, 2025),
    "Australia/Lord_Howe": (2023, 2025),  # 30-minute shifts
    "America/Sao_Paulo": (2017, 2019),  # transitions at midnight (DST ended in 2019)
    "UTC": (2024, 2025),
}


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """The zone's offset changes between its years, found by day and refined to seconds."""
    tz = ZoneInfo(zone)
    first, last = ZONES[zone]
    found = []
    day = int(utc(first, 1, 1).timestamp())
    while datetime.fromtimestamp(day, UTC).year < last:
        lo, hi = day, day + 86400
        if datetime.fromtimestamp(lo, tz).utcoffset() != datetime.fromtimestamp(hi, tz).utcoffset():
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if (
                    datetime.fromtimestamp(mid, tz).utcoffset()
                    == datetime.fromtimestamp(lo, tz).utcoffset()
                ):
                    lo = mid
                else:
                    hi = mid
            found.append(datetime.fromtimestamp(hi, UTC))
        day += 86400
    return tuple(found) or (utc(first, 6, 15, 12),)


@dataclass(frozen=True)
class Expression:
    text: str
    sets: tuple[frozenset[int], ...]  # minute, hour, weekday (cron numbering)[, second]
    fixed: bool


def field(values: range, near: list[int], *, wild: bool):
    """A cron field as (text, set of values): a ``*`` or a step when ``wild``, else a list
    or a range, drawn mostly from ``near`` (the hours and minutes where clocks change)."""
    lo, hi = values.start, values.stop - 1
    if wild:
        return st.one_of(
            st.just(("*", frozenset(values))),
            st.integers(2, 30).map(lambda n: (f"*/{n}", frozenset(values[::n]))),
            st.tuples(st.sampled_from(near), st.integers(2, 20)).map(
                lambda p: (f"{p[0]}/{p[1]}", frozenset(values[p[0] :: p[1]]))
            ),
        )
    pick = st.one_of(*[st.sampled_from(near)] * 3, st.integers(lo, hi))
    single = st.lists(pick, min_size=1, max_size=3, unique=True).map(
        lambda vs: (",".join(map(str, vs)), frozenset(vs))
    )
    ranged = st.tuples(pick, st.integers(0, 3)).map(
        lambda p: (
            f"{p[0]}-{min(p[0] + p[1], hi)}",
            frozenset(range(p[0], min(p[0] + p[1], hi) + 1)),
        )
    )
    return st.one_of(single, ranged)


@st.composite
def expressions(
    draw, seconds: bool = False, hours: tuple[int, ...] = (0, 1, 2, 3, 23)
) -> Expression:
    fixed = draw(st.booleans())
    wild_minute, wild_hour = (
        (False, False)
        if fixed
        else draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    )
    minute = draw(field(range(60), [0, 15, 29, 30, 31, 45, 59], wild=wild_minute))
    hour = draw(field(range(24), list(hours), wild=wild_hour))
    weekday = draw(
        st.one_of(
            st.just(("*", frozenset(range(7)))),
            st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True).map(
                lambda vs: (",".join(map(str, vs)), frozenset(vs))
            ),
        )
        if draw(st.integers(0, 3)) == 0
        else st.just(("*", frozenset(range(7))))
    )
    parts = [minute[0], hour[0], "*", "*", weekday[0]]
    sets = [minute[1], hour[1], weekday[1]]
    if seconds:
        second = draw(
            st.one_of(
                st.integers(10, 30).map(lambda n: (f"*/{n}", frozenset(range(0, 60, n)))),
                st.lists(st.integers(0, 59), min_size=1, max_size=2, unique=True).map(
                    lambda vs: (",".join(map(str, vs)), frozenset(vs))
                ),
            )
        )
        parts.append(second[0])
        sets.append(second[1])
    return Expression(" ".join(parts), tuple(sets), fixed=fixed)


def matches(expr: Expression, wall: datetime) -> bool:
    ok = (
        wall.minute in expr.sets[0]
        and wall.hour in expr.sets[1]
        and (wall.weekday() + 1) % 7 in expr.sets[2]
    )
    if len(expr.sets) == 4:
        return ok and wall.second in expr.sets[3]
    return ok and wall.second == 0


def brute_force(expr: Expression, zone: str, start: datetime, end: datetime, step: timedelta):
    """Fires in (start, end] by the rule of docs/design.md, scanning every real instant at
    ``step``."""
    tz = ZoneInfo(zone)
    seen: set[datetime] = set()  # wall times already lived through (first occurrences)
    out: list[datetime] = []
    t = start - timedelta(hours=3)  # longer than any repeated hour: fills ``seen``
    previous: datetime | None = None
    while t <= end:
        wall = t.astimezone(tz).replace(tzinfo=None)
        fire = matches(expr, wall) and (not expr.fixed or wall not in seen)
        if expr.fixed and previous is not None and wall - previous > step:
            # A gap: wall times in (previous, wall) never happened.
            skipped = previous + step
            while skipped < wall and not fire:
                fire = matches(expr, skipped)
                skipped += step
        if fire and t > start:
            out.append(t)
        seen.add(wall)
        previous = wall
        t += step
    return out


_SEC, _ZERO = timedelta(seconds=1), timedelta()


@st.composite
def cases(draw, length: timedelta, seconds: bool = False):
    """(expression, zone, start, end): a window that holds a change of the zone's clocks
    (or starts just after one) and an expression aimed at the hours it changes."""
    zone = draw(st.sampled_from(sorted(ZONES)))
    change = draw(st.sampled_from(transitions(zone)))
    tz = ZoneInfo(zone)
    # The hours of the local times skipped or repeated, and their neighbours.
    walls = sorted((change + d).astimezone(tz).replace(tzinfo=None) for d in (-_SEC, _ZERO))
    hours = {walls[0].hour, walls[1].hour, (walls[0] + timedelta(hours=1)).hour}
    expr = draw(expressions(seconds, tuple(sorted(hours))))
    # Centred on the change (hypothesis favours small numbers); at most an hour after it.
    half = int(length.total_seconds()) // 2
    start = change - timedelta(seconds=half + draw(st.integers(-half - 3600, half - 60)))
    start = start.replace(microsecond=0) if seconds else start.replace(second=0, microsecond=0)
    return expr, zone, start, start + length


@settings(deadline=None, max_examples=120)
@given(case=cases(timedelta(hours=30)))
def test_next_fire_matches_a_minute_scan_across_dst(case):
    expr, zone, start, end = case
    expected = brute_force(expr, zone, start, end, timedelta(minutes=1))
    assert fires(Cron(expr.text, zone), start, end) == expected


@settings(deadline=None, max_examples=40)
@given(case=cases(timedelta(hours=3), seconds=True))
def test_next_fire_matches_a_second_scan_across_dst(case):
    expr, zone, start, end = case
    expected = brute_force(expr, zone, start, end, timedelta(seconds=1))
    assert fires(Cron(expr.text, zone), start, end) == expected


def test_brute_force_agrees_with_the_worked_examples():
    # The brute force itself, on the cases docs/design.md names (so a bug there cannot hide one).
    daily = Expression("30 2 * * *", (frozenset({30}), frozenset({2}), frozenset(range(7))), True)
    got = brute_force(
        daily, BERLIN, utc(2024, 3, 30, 12), utc(2024, 3, 31, 12), timedelta(minutes=1)
    )
    assert got == [utc(2024, 3, 31, 1)]
    got = brute_force(
        daily, BERLIN, utc(2024, 10, 26, 12), utc(2024, 10, 27, 12), timedelta(minutes=1)
    )
    assert got == [utc(2024, 10, 27, 0, 30)]
    hourly = Expression(
        "0 * * * *", (frozenset({0}), frozenset(range(24)), frozenset(range(7))), False
    )
    got = brute_force(
        hourly, BERLIN, utc(2024, 10, 26, 23, 30), utc(2024, 10, 27, 1, 30), timedelta(minutes=1)
    )
    assert got == [utc(2024, 10, 27, 0), utc(2024, 10, 27, 1)]


# -- the stored form of a trigger, its human form, the first fire ------------------------


@pytest.mark.parametrize(
    "trigger",
    [
        Cron("0 2 * * *", "Europe/Berlin"),
        Cron("* * * * * */10"),
        Every(timedelta(minutes=10)),
        Every(90, datetime(2030, 1, 1, 0, 0, 7, tzinfo=UTC)),
        At(datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
    ],
)
def test_trigger_json_round_trip(trigger: Trigger) -> None:
    text = trigger_to_json(trigger)
    assert trigger_from_json(text) == trigger
    assert trigger_to_json(trigger_from_json(text)) == text  # stable: upserts compare it


@pytest.mark.parametrize(
    "text", ["", "[]", '{"cron": "61 * * * *"}', '{"every": "x"}', '{"at": 5}', '{"x": 1}']
)
def test_unreadable_stored_triggers_say_so(text: str) -> None:
    with pytest.raises(ConfigurationError, match="unreadable stored trigger"):
        trigger_from_json(text)


def test_describe_trigger() -> None:
    assert describe_trigger(Cron("0 2 * * *", "Europe/Berlin")) == "cron 0 2 * * * (Europe/Berlin)"
    assert describe_trigger(Cron("@hourly")) == "cron @hourly"
    assert describe_trigger(Every(10)) == "every 10s"
    assert describe_trigger(Every(timedelta(hours=2))) == "every 2h"
    assert describe_trigger(Every(1.5)) == "every 1.5s"
    anchored = Every(60, datetime(2030, 1, 1, tzinfo=UTC))
    assert describe_trigger(anchored) == "every 1m from 2030-01-01T00:00:00+00:00"
    assert describe_trigger(At(datetime(2030, 1, 1, tzinfo=UTC))) == "at 2030-01-01T00:00:00+00:00"


def test_first_fire_is_at_or_after_now() -> None:
    now = datetime(2030, 1, 1, 0, 10, tzinfo=UTC)
    assert first_fire(Every(600), now) == now  # a fire exactly now is not skipped
    assert first_fire(Every(600), now + timedelta(seconds=1)) == now + timedelta(minutes=10)
    assert first_fire(Cron("0 * * * *"), now) == datetime(2030, 1, 1, 1, tzinfo=UTC)
    past = now - timedelta(days=1)
    assert first_fire(At(past), now) == past  # the misfire policy decides


def test_a_paced_service_sleeps_as_long_as_its_pass_says() -> None:
    import threading

    from tock._service import Periodic

    passes: list[float] = []
    done = threading.Event()

    def run() -> float:
        passes.append(0.0)
        if len(passes) == 3:
            done.set()
        return 0.0  # "run again at once": three passes long before the 60 s interval

    service = Periodic("test", 60.0, run, first_delay=0.0, paced=True)
    service.start()
    try:
        assert done.wait(30), "a paced service waited its whole interval"
    finally:
        service.stop()
