"""Schedules, the pure part: triggers, next fire times and misfire policies.

No database, no threads, no clock: every function takes the times it needs. The scheduler
duty (``duties/scheduler.py``) asks :func:`plan_fires` what one pass must do and writes the
answer to the store; the store's unique key on (schedule, fire time) and its compare-and-set
on the next fire time make the answer happen at most once.

Triggers
========
``Cron(expression, timezone)``
    5 fields (minute hour day-of-month month day-of-week) or 6 with the SECONDS LAST
    (``"* * * * * */10"``, as croniter and Pyncette write them), or one of ``@hourly``,
    ``@daily``/``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``. A field is
    a comma list of ``*``, ``N``, ``A-B``, each with an optional ``/STEP``, or ``N/STEP``
    (from N to the end); months and weekdays also take English names (``jan``, ``mon``);
    weekday 7 is Sunday, like 0. The day fields combine as in Debian's cron: when neither
    starts with ``*`` a day matching either fires, otherwise a day must match both.
    Parsing and validation are Tock's own (the messages name the bad field); croniter,
    the maintained parser, walks the matching local wall-clock times; the mapping of
    those wall-clock times to real instants (the DST rule below) is Tock's own code.
``Every(interval, anchor)``
    fires at ``anchor + k * interval`` for k = 0, 1, 2 ... (docs/design.md: "Schedules"); the
    default anchor is the epoch in UTC, so every 10 minutes fires at :00, :10, ... An
    interval is a real duration: DST does not move these fires. The minimum is 1 second.
``At(when)``
    fires once, at an aware datetime.

DST (docs/design.md: "Schedules"), for cron expressions evaluated in their time zone
=============================================================================
*Fixed-time* expressions are those whose minute and hour fields hold no ``*`` and no
``/step`` (``30 2 * * *``, ``0 9-17 * * 1-5``, ``@daily``); the seconds field of a 6-field
expression does not change the class. For them, as Debian's cron does:

- a local time skipped by a spring-forward gap fires once, at the first instant after the
  gap (the transition itself: 03:00 CEST for ``30 2 * * *`` in Europe/Berlin); several
  skipped local times of one schedule make that one fire;
- a local time repeated by a fall-back fires once, at its first occurrence.

*Wildcard* expressions (``*`` or a step in the minute or the hour field, so ``@hourly``
too) fire at every real instant whose local time matches: both occurrences of a repeated
hour, and nothing for local times that do not exist.

Misfire (docs/design.md: "Options and defaults"; API: "Schedules")
==========================================================
A fire late by less than ``grace`` (default 60 s) always runs. Fires late by ``grace`` or
more are *missed*: ``"coalesce"`` (the default) runs one job for them, the latest missed
fire, unless a fire of the same pass runs on time, which then stands for them; the others
are dropped as ``"coalesced"``. ``"skip"`` drops them as ``"missed"``; ``"all"`` runs each.
One pass looks at :data:`MAX_FIRES_PER_PASS` fires one by one at most; when more are due,
it stops there and returns the first fire it did not handle as the next fire time (already
due: ``FirePlan.capped`` is true), so a schedule stopped for a year is caught up by a series
of bounded passes, never by one that runs forever. ``Every`` skips or coalesces any number
of missed fires by arithmetic, at no cost.

Ahead (docs/design.md: "Fires made ahead")
==========================================
``ahead`` adds the fires of the next moments, after ``now`` and up to ``now + ahead``, to
those that run: the scheduler makes their jobs before their time (due at the fire time), so
a worker starts them at it. They are on time by definition: the misfire policy and
``grace`` look at ``now`` alone, and a future fire never stands for missed ones.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, TypedDict, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    # Imported where a cron expression is first walked: a worker whose app has no cron
    # schedule does not pay for it at start-up.
    from croniter import croniter  # type: ignore[import-untyped]  # no stubs in the package

from tock._validate import NAME_RE as _NAME_RE
from tock._validate import checked_options
from tock.errors import ConfigurationError

__all__ = [
    "DEFAULT_DEPENDS_ON_OUTCOME",
    "DEFAULT_GRACE",
    "DEFAULT_MISFIRE",
    "EPOCH",
    "MAX_FIRES_PER_PASS",
    "MIN_INTERVAL",
    "At",
    "Cron",
    "DependsOnOutcome",
    "Drop",
    "Every",
    "FirePlan",
    "Misfire",
    "Schedule",
    "ScheduleOptionArgs",
    "ScheduleOptions",
    "Trigger",
    "check_dependencies",
    "check_depends_on",
    "check_depends_on_outcome",
    "check_grace",
    "check_misfire",
    "check_policy",
    "describe_trigger",
    "find_cycle",
    "first_fire",
    "make_trigger",
    "next_fire",
    "plan_fires",
    "trigger_from_json",
    "trigger_to_json",
]

Misfire: TypeAlias = Literal["coalesce", "skip", "all"]
DEFAULT_MISFIRE: Final[Misfire] = "coalesce"
DEFAULT_GRACE: Final = timedelta(seconds=60)
DependsOnOutcome: TypeAlias = Literal["succeeded", "any"]
DEFAULT_DEPENDS_ON_OUTCOME: Final[DependsOnOutcome] = "succeeded"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MIN_INTERVAL: Final = timedelta(seconds=1)
#: Fires one pass of :func:`plan_fires` handles one by one, at most (see the module doc).
MAX_FIRES_PER_PASS: Final = 1000

COALESCED: Final = "coalesced"  #: a missed fire folded into the one job ``coalesce`` runs
MISSED: Final = "missed"  #: a missed fire dropped by ``skip``

_SECOND: Final = timedelta(seconds=1)
# Candidate wall-clock times one next_fire call may step over (each gap of a wildcard
# expression costs one); past this the schedule is taken to fire no more.
_MAX_STEPS: Final = 1000

# ---------------------------------------------------------------------------------------
# Cron expressions: Tock's own parser and messages; croniter walks the matches.


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS: Final = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, {n: i + 1 for i, n in enumerate(_MONTHS)}),
    _Field("day of week", 0, 7, {n: i for i, n in enumerate(_DAYS)}),
    _Field("second", 0, 59, {}),
)
_ALIASES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: leap years
_ITEM_RE = re.compile(r"(?P<base>[^/]+)(?:/(?P<step>[^/]*))?")


class _CronError(Exception):
    pass


def _value(spec: _Field, text: str, text_in: str) -> int:
    where = f"{text!r}" if text == text_in else f"{text!r} in {text_in!r}"
    if not text:
        raise _CronError(f"{text_in!r} is missing a value")
    lowered = text.lower()
    if lowered in spec.names:
        return spec.names[lowered]
    if not (text.isascii() and text.isdigit()):
        hint = f" or a name ({', '.join(spec.names)})" if spec.names else ""
        raise _CronError(f"{where} is not a number{hint}")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise _CronError(f"{where} is out of range {spec.low}-{spec.high}")
    return value


def _parse_field(spec: _Field, text: str) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether it is a wildcard (holds ``*`` or a step)."""
    values: set[int] = set()
    wildcard = False
    for item in text.split(","):
        match = _ITEM_RE.fullmatch(item)
        if match is None:
            raise _CronError(f"{item!r} is not a value, range or step")
        base, step_text = match["base"], match["step"]
        step = 1
        if step_text is not None:
            wildcard = True
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise _CronError(f"{item!r} has a bad step {step_text!r}: use a number >= 1")
            step = int(step_text)
        if base == "*":
            wildcard = True
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(spec, first, item), _value(spec, last, item)
            if low > high:
                raise _CronError(f"{item!r} is a range that goes backwards")
        else:
            low = _value(spec, base, item)
            high = spec.high if step_text is not None else low
        values.update(range(low, high + 1, step))
    if spec.name == "day of week" and 7 in values:  # 7 is Sunday, like 0
        values = (values - {7}) | {0}
    return frozenset(values), wildcard


def _canonical(spec: _Field, values: frozenset[int]) -> str:
    full = spec.high - spec.low + 1 - (1 if spec.name == "day of week" else 0)
    return "*" if len(values) == full else ",".join(map(str, sorted(values)))


@dataclass(frozen=True)
class _Parsed:
    fields: tuple[frozenset[int], ...]  # minute, hour, dom, month, dow[, second]
    fixed: bool  # minute and hour fields hold no "*" and no step
    canonical: str  # what croniter is given: "*" or explicit lists
    day_or: bool  # a day matching either day field fires (else: both must match)


def _parse_cron(expression: str) -> _Parsed:
    text = _ALIASES.get(expression.strip().lower(), expression.strip())
    if text.startswith("@"):
        raise _CronError(f"unknown shortcut {text!r}: use one of {', '.join(_ALIASES)}")
    parts = re.split(r"[ \t]+", text) if text else []
    if len(parts) not in (5, 6):
        raise _CronError(
            f"it has {len(parts)} field{'s' * (len(parts) != 1)}: use 5 (minute hour "
            "day-of-month month day-of-week) or 6 with the seconds last"
        )
    fields: list[frozenset[int]] = []
    wild: list[bool] = []
    for number, (spec, part) in enumerate(zip(_FIELDS, parts, strict=False), start=1):
        try:
            values, wildcard = _parse_field(spec, part)
        except _CronError as exc:
            raise _CronError(f"cron field {number} ({spec.name}) {exc}") from None
        fields.append(values)
        wild.append(wildcard)
    days, months = fields[2], fields[3]
    no_such_day = all(d > _DAYS_IN_MONTH[m - 1] for d in days for m in months)
    # Debian's (Vixie) cron: when either day field starts with "*" (a star or a step over
    # the whole range), a day must match both; otherwise a day matching either fires.
    day_or = not (parts[2].startswith("*") or parts[4].startswith("*"))
    if no_such_day and not day_or:
        raise _CronError(
            f"it never fires: no day {','.join(map(str, sorted(days)))} "
            f"in month {','.join(map(str, sorted(months)))}"
        )
    texts = [_canonical(s, v) for s, v in zip(_FIELDS, fields, strict=False)]
    # What croniter is given says the rule in its own terms, so that its answer does not
    # depend on its version: "either" with a day field that allows every day is every day;
    # "either" with days that no month holds is the weekdays alone (croniter 6 finds no
    # date for "31 2 mon" with day_or, croniter 7 finds the Mondays).
    if day_or and "*" in (texts[2], texts[4]):
        texts[2] = texts[4] = "*"
    elif day_or and no_such_day:
        texts[2], day_or = "*", False
    return _Parsed(
        tuple(fields), fixed=not (wild[0] or wild[1]), canonical=" ".join(texts), day_or=day_or
    )


def _zone(timezone: object) -> ZoneInfo:
    if isinstance(timezone, ZoneInfo):
        return timezone
    if not isinstance(timezone, str) or not timezone:
        raise ConfigurationError(f"a time zone is a name like 'Europe/Berlin', not {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigurationError(
            f"unknown time zone {timezone!r}: use an IANA name like 'Europe/Berlin' or 'UTC'"
        ) from None


def _aware_utc(what: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise ConfigurationError(f"{what} must be a datetime, not {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConfigurationError(
            f"{what} must be an aware datetime (e.g. datetime(2030, 1, 1, tzinfo=UTC)), "
            f"not the naive {value!r}"
        )
    return value.astimezone(UTC)


@dataclass(frozen=True, init=False)
class Cron:
    """A cron expression evaluated in an IANA time zone (default UTC)."""

    expression: str
    timezone: str
    _parsed: _Parsed = field(repr=False, compare=False)
    _zoneinfo: ZoneInfo = field(repr=False, compare=False)
    _walker: croniter = field(repr=False, compare=False)
    _lock: threading.Lock = field(repr=False, compare=False)

    def __init__(self, expression: str, timezone: str | ZoneInfo = "UTC") -> None:
        if not isinstance(expression, str):
            raise ConfigurationError(f"a cron expression is a string, not {expression!r}")
        try:
            parsed = _parse_cron(expression)
        except _CronError as exc:
            raise ConfigurationError(f"invalid cron expression {expression!r}: {exc}") from None
        zone = _zone(timezone)
        setattr_ = object.__setattr__
        setattr_(self, "expression", expression.strip())
        setattr_(self, "timezone", zone.key)
        setattr_(self, "_parsed", parsed)
        setattr_(self, "_zoneinfo", zone)
        from croniter import croniter  # here, not at start-up (see the import above)

        # Naive datetimes: croniter walks local wall-clock time only; DST is ours.
        walker = croniter(parsed.canonical, datetime(2000, 1, 1), day_or=parsed.day_or)
        setattr_(self, "_walker", walker)
        setattr_(self, "_lock", threading.Lock())

    @property
    def fixed_time(self) -> bool:
        """True when the minute and hour fields hold no ``*`` and no step (the DST rule)."""
        return self._parsed.fixed

    @property
    def zone(self) -> ZoneInfo:
        return self._zoneinfo

    def _next_wall(self, wall: datetime) -> datetime | None:
        """The first matching local wall-clock time strictly after ``wall`` (naive)."""
        # Matches are whole seconds, so "after wall" is "after wall without its fraction".
        from croniter import CroniterBadDateError

        start = wall.replace(microsecond=0)
        with self._lock:  # a croniter carries its position: one caller at a time
            try:
                result: datetime = self._walker.get_next(datetime, start_time=start)
            except CroniterBadDateError:  # nothing within croniter's 50-year horizon
                return None
        return result


@dataclass(frozen=True, init=False)
class Every:
    """Fires at ``anchor + k * interval``, k = 0, 1, 2 ... (default anchor: the epoch, UTC)."""

    interval: timedelta
    anchor: datetime

    def __init__(self, interval: timedelta | float, anchor: datetime | None = None) -> None:
        if isinstance(interval, timedelta):
            delta = interval
        elif isinstance(interval, (int, float)) and not isinstance(interval, bool):
            if not math.isfinite(interval):
                raise ConfigurationError(f"every= must be a finite duration, not {interval!r}")
            delta = timedelta(seconds=interval)
        else:
            raise ConfigurationError(
                f"every= must be a timedelta or a number of seconds, not {interval!r}"
            )
        if delta < MIN_INTERVAL:
            raise ConfigurationError(f"every= must be at least 1 second, not {interval!r}")
        object.__setattr__(self, "interval", delta)
        object.__setattr__(
            self, "anchor", EPOCH if anchor is None else _aware_utc("the anchor", anchor)
        )


@dataclass(frozen=True, init=False)
class At:
    """Fires once, at ``when`` (stored in UTC)."""

    when: datetime

    def __init__(self, when: datetime) -> None:
        object.__setattr__(self, "when", _aware_utc("at=", when))


Trigger: TypeAlias = Cron | Every | At


def make_trigger(
    *,
    cron: str | None = None,
    every: timedelta | float | None = None,
    at: datetime | None = None,
    timezone: str | None = None,
    anchor: datetime | None = None,
) -> Trigger:
    """The trigger for ``cron=``, ``every=`` or ``at=`` (exactly one), as the API takes them."""
    chosen = (("cron", cron), ("every", every), ("at", at))
    given = [name for name, value in chosen if value is not None]
    if len(given) != 1:
        raise ConfigurationError(
            "a schedule needs exactly one of cron=, every= or at=, "
            f"not {' and '.join(n + '=' for n in given) or 'none'}"
        )
    if timezone is not None and cron is None:
        raise ConfigurationError("timezone= applies to cron= schedules only")
    if anchor is not None and every is None:
        raise ConfigurationError("anchor= applies to every= schedules only")
    if cron is not None:
        return Cron(cron, "UTC" if timezone is None else timezone)
    if every is not None:
        return Every(every, anchor)
    assert at is not None
    return At(at)


@dataclass(frozen=True)
class Schedule:
    """A schedule as stored, for people and programs (``app.get_schedule``, the CLI)."""

    name: str
    task: str
    trigger: Trigger
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str | None  #: None: the task's queue
    priority: int | None  #: None: the task's priority
    misfire: Misfire
    grace: timedelta
    overlap: bool
    enabled: bool
    paused: bool
    source: str  #: "code" (``@app.periodic``) or "dynamic" (``app.schedule``)
    next_fire_at: datetime | None  #: None: it fires no more
    last_fire_at: datetime | None  #: the latest fire that created a job
    last_job_id: int | None
    last_status: str | None  #: that job's status; None once it is pruned, or no job yet
    created_at: datetime | None = None  #: when the store first held it
    updated_at: datetime | None = None  #: when it last changed
    #: the schedules whose runs a fire waits on (docs/schedules.md: Schedules that wait
    #: on schedules), with ``future_depends`` and ``depends_on_outcome``
    depends_on: tuple[str, ...] = ()
    future_depends: bool = False
    depends_on_outcome: str = DEFAULT_DEPENDS_ON_OUTCOME

    @property
    def expression(self) -> str:
        return describe_trigger(self.trigger)


def trigger_to_json(trigger: Trigger) -> str:
    """The stored text of a trigger (``ScheduleRecord.trigger``): the same trigger always
    gives the same text, so an upsert can tell whether the trigger changed."""
    if isinstance(trigger, Cron):
        return json.dumps({"cron": trigger.expression, "timezone": trigger.timezone})
    if isinstance(trigger, Every):
        return json.dumps(
            {"every": trigger.interval.total_seconds(), "anchor": trigger.anchor.isoformat()}
        )
    if isinstance(trigger, At):
        return json.dumps({"at": trigger.when.isoformat()})
    raise TypeError(f"not a trigger: {trigger!r}")


@functools.lru_cache(maxsize=1024)
def trigger_from_json(text: str) -> Trigger:
    """The trigger stored as ``text``; cached, since a scheduler reads the same ones on
    every pass (triggers are immutable, and Cron serialises its own walker)."""
    try:
        data = json.loads(text)
        if "cron" in data:
            return Cron(data["cron"], data.get("timezone", "UTC"))
        if "every" in data:
            return Every(float(data["every"]), datetime.fromisoformat(data["anchor"]))
        if "at" in data:
            return At(datetime.fromisoformat(data["at"]))
    except (ValueError, TypeError, KeyError, ConfigurationError) as exc:
        raise ConfigurationError(f"unreadable stored trigger {text!r}: {exc}") from None
    raise ConfigurationError(f"unreadable stored trigger {text!r}: no cron, every or at")


def describe_trigger(trigger: Trigger) -> str:
    """A short human form: ``cron 0 2 * * * (Europe/Berlin)``, ``every 10s``, ``at …``."""
    if isinstance(trigger, Cron):
        zone = "" if trigger.timezone == "UTC" else f" ({trigger.timezone})"
        return f"cron {trigger.expression}{zone}"
    if isinstance(trigger, Every):
        text = f"every {_duration(trigger.interval)}"
        return text if trigger.anchor == EPOCH else f"{text} from {trigger.anchor.isoformat()}"
    if isinstance(trigger, At):
        return f"at {trigger.when.isoformat()}"
    raise TypeError(f"not a trigger: {trigger!r}")


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def first_fire(trigger: Trigger, now: datetime) -> datetime | None:
    """The next fire time of a schedule defined (or whose trigger changed) at ``now``: the
    first fire at or after ``now``. An ``at=`` time already past is kept as it is: the
    misfire policy decides whether it still runs (within grace it always does)."""
    if isinstance(trigger, At):
        return trigger.when
    return next_fire(trigger, now - timedelta(microseconds=1))


# ---------------------------------------------------------------------------------------
# Next fire times.


def _offsets(zone: ZoneInfo, wall: datetime) -> tuple[timedelta, timedelta]:
    """UTC offsets of a naive wall time read with fold=0 and fold=1 (PEP 495): equal for
    an ordinary time, larger first in a repeated hour, smaller first in a gap."""
    a = wall.replace(tzinfo=zone, fold=0).utcoffset()
    b = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert a is not None and b is not None
    return a, b


def _transition(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The instant in (low, high] where the zone's offset changes (exactly one does).

    tzdata moves offsets at whole seconds, so a bisection over seconds is exact.
    """
    lo, hi = math.floor(low.timestamp()), math.ceil(high.timestamp())
    before = datetime.fromtimestamp(lo, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _utc(wall: datetime, offset: timedelta) -> datetime:
    return (wall - offset).replace(tzinfo=UTC)


def _cron_next(cron: Cron, after: datetime) -> datetime | None:
    zone, fixed = cron.zone, cron.fixed_time
    local = after.astimezone(zone)
    wall = local.replace(tzinfo=None, fold=0)
    first, second = _offsets(zone, wall)
    if first > second:
        # ``after`` lies in a repeated hour, walls [start, end) seen twice around the
        # transition: finish the pass it is in, then (wildcards only) the second pass.
        change = _transition(zone, _utc(wall, first), _utc(wall, second))
        start = change.replace(tzinfo=None) + second
        end = change.replace(tzinfo=None) + first
        if local.fold == 0:
            match = cron._next_wall(wall)
            if match is not None and match < end:
                return _utc(match, first)
        if not fixed:  # fixed-time expressions fire at the first occurrence only
            match = cron._next_wall(wall if local.fold == 1 else start - _SECOND)
            if match is not None and match < end:
                return _utc(match, second)
        wall = end - _SECOND
    # From here on, local time only moves forward until the next match: no wall time
    # between ``wall`` and that match matches, and any repeated hour before it lies
    # wholly after ``wall``.
    for _ in range(_MAX_STEPS):
        match = cron._next_wall(wall)
        if match is None:
            return None
        first, second = _offsets(zone, match)
        if first >= second:  # an ordinary time, or the first occurrence of a repeated one
            return _utc(match, first)
        # ``match`` does not exist: it lies in the gap [start, end) of a spring-forward.
        change = _transition(zone, _utc(match, second), _utc(match, first))
        if fixed:  # once, at the first instant after the gap
            return change
        wall = change.replace(tzinfo=None) + second - _SECOND  # next match >= end
    return None


def next_fire(trigger: Trigger, after: datetime) -> datetime | None:
    """The trigger's first fire strictly after ``after`` (aware), in UTC; None: no more."""
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"next_fire needs an aware datetime, not {after!r}")
    after = after.astimezone(UTC)
    if isinstance(trigger, Cron):
        return _cron_next(trigger, after)
    if isinstance(trigger, Every):
        if after < trigger.anchor:
            return trigger.anchor
        steps = (after - trigger.anchor) // trigger.interval + 1
        return trigger.anchor + steps * trigger.interval
    if isinstance(trigger, At):
        return trigger.when if trigger.when > after else None
    raise TypeError(f"not a trigger: {trigger!r}")


# ---------------------------------------------------------------------------------------
# Misfire policies.


def check_misfire(value: object) -> Misfire:
    if value == "coalesce":
        return "coalesce"
    if value == "skip":
        return "skip"
    if value == "all":
        return "all"
    raise ConfigurationError(
        f"misfire must be one of {', '.join(map(repr, get_args(Misfire)))}, not {value!r}"
    )


def check_grace(value: object) -> timedelta:
    """``grace=``: a ``timedelta`` or number of seconds, zero or more. Zero is no grace:
    every late fire follows the misfire policy."""
    if isinstance(value, timedelta):
        grace = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        grace = timedelta(seconds=value)
    else:
        raise ConfigurationError(f"grace must be a timedelta or a number of seconds, not {value!r}")
    if grace < timedelta():
        raise ConfigurationError(f"grace must be zero or a positive duration, not {value!r}")
    return grace


def check_policy(misfire: object, grace: object) -> tuple[Misfire, timedelta]:
    """``misfire=`` and ``grace=`` together: both checked, and a pair that would drop every
    fire refused (a pass always comes a little after a fire's time, so with no grace
    every fire is late, and ``"skip"`` drops each one)."""
    policy, span = check_misfire(misfire), check_grace(grace)
    if policy == "skip" and not span:
        raise ConfigurationError(
            "misfire='skip' with grace=0 would drop every fire (each is handled a little "
            "after its time): give a grace, e.g. grace=1, or use 'coalesce' or 'all'"
        )
    return policy, span


def _flag(name: str) -> Any:
    def check(value: object) -> bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name} must be True or False, not {value!r}")
        return value

    return check


def _args(value: object) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigurationError(f"args= takes a list or tuple, not {value!r}")
    return tuple(value)


def _kwargs(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"kwargs= takes a dict, not {value!r}")
    return dict(value)


def check_depends_on(value: object) -> tuple[str, ...]:
    """``depends_on=``: a list (or tuple) of schedule names, each once; ``None`` or an
    empty list: none. Whether each exists is not checked: a dependency may be defined
    later, and until then a fire waits (docs/schedules.md: Schedules that wait on
    schedules)."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigurationError(
            f"depends_on= takes a list of schedule names, like ['extract'], not {value!r}"
        )
    names: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _NAME_RE.fullmatch(item):
            raise ConfigurationError(
                f"depends_on= holds {item!r}, which is not a schedule name: use 1 to 200 "
                "characters from A-Z a-z 0-9 _ . : -"
            )
        if item in names:
            raise ConfigurationError(f"depends_on= names {item!r} twice")
        names.append(item)
    return tuple(names)


def check_depends_on_outcome(value: object) -> DependsOnOutcome:
    if value == "succeeded":
        return "succeeded"
    if value == "any":
        return "any"
    raise ConfigurationError(f"depends_on_outcome must be 'succeeded' or 'any', not {value!r}")


def check_dependencies(
    name: str, depends_on: Sequence[str], graph: Mapping[str, Sequence[str]]
) -> None:
    """Refuse a schedule ``name`` depending on ``depends_on`` when it depends on itself
    or closes a cycle among the schedules of ``graph`` (name -> the names it depends
    on; ``name``'s own entry is replaced). The message names the cycle: ``a -> b -> a``."""
    if name in depends_on:
        raise ConfigurationError(f"schedule {name!r} cannot depend on itself")
    edges = {**graph, name: tuple(depends_on)}
    cycle = find_cycle(edges, start=name)
    if cycle:
        raise ConfigurationError(f"schedule dependencies form a cycle: {' -> '.join(cycle)}")


def find_cycle(edges: Mapping[str, Sequence[str]], start: str | None = None) -> list[str]:
    """A cycle of ``edges`` (name -> the names it depends on) as a path that ends where
    it starts (``["a", "b", "a"]``), through ``start`` when given; ``[]`` when there is
    none. A name without an entry depends on nothing."""
    roots = [start] if start is not None else sorted(edges)
    done: set[str] = set()
    for root in roots:
        path: list[str] = []
        on_path: set[str] = set()
        # Iterative depth-first search: a long chain of schedules is no recursion limit.
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                if node in on_path:
                    return [*path[path.index(node) :], node]
                if node in done:
                    continue
                path.append(node)
                on_path.add(node)
            deps = edges.get(node, ())
            if index < len(deps):
                stack.append((node, index + 1))
                stack.append((deps[index], 0))
            else:
                path.pop()
                on_path.discard(node)
                done.add(node)
    return []


@dataclass(frozen=True)
class ScheduleOptions:
    """A schedule's options besides its trigger kind and task: the one definition of
    them (docs/design.md: options are defined once). ``app.schedule``, ``schedule_many``
    and ``@app.periodic`` take them by these names (``ScheduleOptionArgs`` types them; a
    test holds the two alike). ``timezone`` and ``anchor`` are checked with the trigger
    they belong to, ``args`` and ``kwargs`` against the task's signature."""

    timezone: str | None = field(default=None, metadata={"check": lambda value: value})
    anchor: datetime | None = field(default=None, metadata={"check": lambda value: value})
    args: tuple[Any, ...] = field(default=(), metadata={"check": _args})
    kwargs: dict[str, Any] = field(default_factory=dict, metadata={"check": _kwargs})
    misfire: Misfire = field(default=DEFAULT_MISFIRE, metadata={"check": check_misfire})
    grace: timedelta = field(default=DEFAULT_GRACE, metadata={"check": check_grace})
    overlap: bool = field(default=True, metadata={"check": _flag("overlap")})
    enabled: bool = field(default=True, metadata={"check": _flag("enabled")})
    #: the schedules whose runs a fire waits on (docs/schedules.md: Schedules that wait
    #: on schedules)
    depends_on: tuple[str, ...] = field(default=(), metadata={"check": check_depends_on})
    future_depends: bool = field(default=False, metadata={"check": _flag("future_depends")})
    depends_on_outcome: DependsOnOutcome = field(
        default=DEFAULT_DEPENDS_ON_OUTCOME, metadata={"check": check_depends_on_outcome}
    )

    @classmethod
    def build(cls, **given: Any) -> ScheduleOptions:
        """The options from what a user gave, each checked where it enters."""
        options = cls(**checked_options("schedule", cls, given))
        check_policy(options.misfire, options.grace)  # a pair that would drop every fire
        return options


class ScheduleOptionArgs(TypedDict, total=False):
    """``ScheduleOptions`` as users give them (tests/unit/test_options.py holds them alike)."""

    timezone: str | None
    anchor: datetime | None
    args: Sequence[Any]
    kwargs: Mapping[str, Any] | None
    misfire: str
    grace: timedelta | float
    overlap: bool
    enabled: bool
    depends_on: Sequence[str] | None
    future_depends: bool
    depends_on_outcome: str


@dataclass(frozen=True)
class Drop:
    """Consecutive fires dropped for one reason, recorded by the scheduler as one row."""

    first: datetime
    last: datetime
    count: int
    reason: str  #: COALESCED or MISSED here; the scheduler adds its own (overlap, paused)


@dataclass(frozen=True)
class FirePlan:
    """What one scheduler pass does for one schedule."""

    run: tuple[datetime, ...]  #: fire times that each become one job, oldest first
    dropped: tuple[Drop, ...]  #: fire times that become no job, with the reason
    next_fire: datetime | None  #: the new next fire time (None: the schedule is done)
    #: True when the pass stopped at its limit: ``next_fire`` is already due.
    capped: bool = False


def _scan(
    trigger: Trigger, start: datetime | None, until: datetime, limit: int
) -> tuple[list[datetime], datetime | None]:
    """Up to ``limit`` fires from ``start`` (a fire) to ``until``, and the fire after them."""
    fires: list[datetime] = []
    while start is not None and start <= until and len(fires) < limit:
        fires.append(start)
        start = next_fire(trigger, start)
    return fires, start


def plan_fires(
    trigger: Trigger,
    next_fire_at: datetime | None,
    now: datetime,
    *,
    misfire: Misfire = DEFAULT_MISFIRE,
    grace: timedelta = DEFAULT_GRACE,
    max_fires: int = MAX_FIRES_PER_PASS,
    ahead: timedelta = timedelta(0),
) -> FirePlan:
    """One scheduler pass: which due fires (``next_fire_at`` and later ones up to ``now``)
    run, which are dropped and why, and the new next fire time; with ``ahead``, the fires
    after ``now`` and up to ``now + ahead`` run too, after the due ones. See the module
    doc."""
    misfire = check_misfire(misfire)
    if ahead < timedelta(0):
        raise ValueError(f"ahead must be zero or more, not {ahead}")
    grace = check_grace(grace)
    if max_fires < 1:
        raise ValueError(f"max_fires must be at least 1, not {max_fires}")
    now = _aware_utc("now", now)
    if next_fire_at is None:
        return FirePlan((), (), None)
    cursor: datetime | None = _aware_utc("the next fire time", next_fire_at)
    if cursor is None or cursor > now + ahead:
        return FirePlan((), (), cursor)
    cutoff = now - grace  # a fire at or before the cutoff is missed
    run: list[datetime] = []
    missed: _Span | None = None  # the missed fires not run (yet)
    budget = max_fires

    if cursor <= cutoff:
        if misfire == "all":
            run, cursor = _scan(trigger, cursor, cutoff, budget)
            budget -= len(run)
        elif isinstance(trigger, Every):
            missed = _every_span(trigger, cursor, cutoff)
            cursor = next_fire(trigger, missed.last)
        else:
            fires, cursor = _scan(trigger, cursor, cutoff, budget)
            budget -= len(fires)
            missed = _Span(len(fires), fires[0], fires[-2] if len(fires) > 1 else None, fires[-1])

    on_time: list[datetime] = []
    if cursor is not None and cutoff < cursor <= now and budget > 0:
        on_time, cursor = _scan(trigger, cursor, now, budget)
    capped = cursor is not None and cursor <= now

    dropped: list[Drop] = []
    if missed is not None:
        reason = COALESCED if misfire == "coalesce" else MISSED
        if misfire == "coalesce" and not on_time and not capped:
            run.append(missed.last)  # coalesce records the latest missed fire (docs/design.md)
            if missed.penultimate is not None:
                dropped.append(Drop(missed.first, missed.penultimate, missed.count - 1, reason))
        else:
            dropped.append(Drop(missed.first, missed.last, missed.count, reason))
    run.extend(on_time)
    budget -= len(on_time)
    if ahead and not capped and cursor is not None and budget > 0:
        upcoming, cursor = _scan(trigger, cursor, now + ahead, budget)
        run.extend(upcoming)
    return FirePlan(tuple(run), tuple(dropped), cursor, capped)


@dataclass(frozen=True)
class _Span:
    """Consecutive fires: how many, the first, the one before the last, and the last."""

    count: int
    first: datetime
    penultimate: datetime | None
    last: datetime


def _every_span(every: Every, first: datetime, until: datetime) -> _Span:
    """The fires ``first`` (a fire, <= until) and the grid's fires in (first, until], by
    arithmetic: an interval schedule stopped for a year costs nothing to skip."""

    def fires_up_to(moment: datetime) -> int:  # grid fires <= moment
        if moment < every.anchor:
            return 0
        return (moment - every.anchor) // every.interval + 1

    more = fires_up_to(until) - fires_up_to(first)
    if more <= 0:
        return _Span(1, first, None, first)
    last = every.anchor + (fires_up_to(until) - 1) * every.interval
    penultimate = first if more == 1 else last - every.interval
    return _Span(1 + more, first, penultimate, last)
