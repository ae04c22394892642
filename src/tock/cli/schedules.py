"""``tock schedules``: list, show, pause, resume, trigger and prune schedules.

A schedule is *active*, *paused* (by people, never cleared by sync) or *disabled* (by its
definition or by ``prune``); ``pause`` and ``resume`` change ``paused`` only. A code
schedule (``@app.periodic``) that the loaded app no longer declares is shown as
``code (undeclared)``; ``prune`` disables those (docs/design.md: "Schedules"). Unknown or
invalid names and triggers the app cannot run are one-line errors (``TockGroup``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from tock.app import Tock
from tock.cli._common import (
    STATUS_STYLES,
    console,
    fail,
    fmt_time,
    get_app,
    new_table,
    own_words,
)
from tock.errors import ScheduleNotFound
from tock.schedules import Schedule, trigger_to_json
from tock.store import FireRecord

FIRES_SHOWN = 20
STATE_STYLES = {"active": "green", "paused": "yellow", "disabled": "dim"}
# Drops are fires that made no job: shown apart from the job statuses' colours.
OUTCOME_STYLES = {
    "enqueued": "cyan",
    "triggered": "cyan",
    "coalesced": "dim",
    "missed": "yellow",
    "overlap": "yellow",
    "paused": "yellow",
    "waiting": "magenta",
    "dependencies": "yellow",
}


@click.group()
def schedules() -> None:
    """List, show, pause, resume, trigger and prune schedules."""


@schedules.command("list")
@click.option("--limit", "-n", type=int, default=100, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list (keys as in show).")
def list_schedules(limit: int, as_json: bool) -> None:
    """List schedules by name, with their state, next fire and last fire."""
    if limit < 1:
        fail(f"--limit must be at least 1, not {limit}")
    app = get_app()
    # One more than shown tells whether the list was cut.
    found = app.list_schedules(limit=limit + 1)
    cut = len(found) > limit
    found = found[:limit]
    names = {s.name for s in found}
    if as_json:
        click.echo(json.dumps([schedule_json(s, app, names) for s in found], indent=2))
        return
    out = console()
    if not found:
        out.print("No schedules.")
        return
    table = new_table()
    table.add_column("Name", overflow="fold")
    table.add_column("Task", overflow="fold")
    table.add_column("Schedule", overflow="fold")
    table.add_column("State", no_wrap=True)
    table.add_column("Next fire", no_wrap=True)
    table.add_column("Last fire", no_wrap=True)
    table.add_column("Source", no_wrap=True)
    deps = any(s.depends_on for s in found)
    if deps:
        table.add_column("Depends on", overflow="fold")
    for s in found:
        state = state_of(s)
        table.add_row(
            Text(s.name),
            Text(s.task),
            Text(s.expression),
            Text(state, style=STATE_STYLES.get(state, "")),
            # A paused or disabled schedule does not fire at its stored time (resume
            # re-plans from now): `show` has the stored value.
            fmt_time(s.next_fire_at) if state == "active" else "-",
            last_fire(s),
            source_of(s, app),
            *([depends_on_text(s, app, names)] if deps else []),
        )
    out.print(table)
    if cut:
        out.print(f"The first {limit} schedules; --limit shows more.", style="dim")


@schedules.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The schedule and its fires as JSON.")
def show(name: str, as_json: bool) -> None:
    """Show every field of one schedule and its recent fires.

    \b
    JSON keys: name, task, schedule (the expression), trigger ({"cron", "timezone"},
    {"every", "anchor"} or {"at"}), state, source, args, kwargs, queue and priority
    (null: the task's), misfire, grace (seconds), overlap, enabled, paused,
    next_fire_at, last_fire_at, last_job_id, last_status, depends_on,
    depends_on_unknown (the dependencies no schedule holds), future_depends,
    depends_on_outcome, created_at, updated_at and fires (newest first: at, last,
    count, outcome, job_id, manual, created_at, waiting_for). A fire waiting on
    dependencies has the outcome "waiting" and names them. Times are ISO 8601, UTC.
    """
    app = get_app()
    schedule = app.get_schedule(name)
    fires = app.list_fires(name, limit=FIRES_SHOWN).fires
    if as_json:
        facts = schedule_json(schedule, app)
        facts["created_at"] = _iso(schedule.created_at)
        facts["updated_at"] = _iso(schedule.updated_at)
        facts["fires"] = [fire_json(f) for f in fires]
        click.echo(json.dumps(facts, indent=2))
        return
    for line in describe(schedule, app, schedule.created_at, schedule.updated_at, fires):
        click.echo(line)
    out = console()
    out.print()
    if not fires:
        out.print("No fires recorded yet.")
        return
    out.print(fires_table(fires))


@schedules.command()
@click.argument("name")
def pause(name: str) -> None:
    """Stop a schedule firing until it is resumed.

    Fires that come due meanwhile make no job; resume records them as one "paused" drop.
    """
    s = get_app().pause_schedule(name)
    undo = own_words(f"`tock schedules resume {s.name}`")
    click.echo(f"Schedule {s.name!r} is {state_of(s)}: {undo} undoes it.")


@schedules.command()
@click.argument("name")
def resume(name: str) -> None:
    """Let a paused schedule fire again, from now on.

    The fires that came due while it was paused are recorded as one "paused" drop.
    """
    s = get_app().resume_schedule(name)
    click.echo(f"Schedule {s.name!r} is {state_of(s)}; {next_fire_sentence(s)}.")


@schedules.command()
@click.argument("name")
def trigger(name: str) -> None:
    """Fire a schedule once, now; its next planned fire is kept.

    The job is made even when the schedule is paused or disabled.
    """
    app = get_app()
    job = app.trigger_schedule(name)
    s = app.get_schedule(name)
    click.echo(
        f"Schedule {s.name!r} fired: job {job.id} ({job.record.task}) on queue "
        f"{job.record.queue!r}. A manual fire has its own key: {next_fire_sentence(s)}."
    )


@schedules.command()
@click.option("--dry-run", is_flag=True, help="Only list the schedules prune would disable.")
def prune(dry_run: bool) -> None:
    """Disable the code schedules this app no longer declares.

    Only tock worker start-up writes code schedules, and it disables none: one that
    was renamed or deleted in the code stays until pruned. Dynamic schedules are left
    alone. Run it with the same app as your workers.
    """
    app = get_app()
    if dry_run:
        # The same rule as the store's schedule_disable_code, read-only.
        names = [
            s.name
            for s in app.list_schedules()
            if s.source == "code" and s.enabled and s.name not in app.code_schedules
        ]
        verb = "Would disable"
    else:
        names = app.prune_schedules()
        verb = "Disabled"
    if not names:
        click.echo("Nothing to prune: every code schedule is declared.")
        return
    click.echo(f"{verb} {len(names)} code schedule(s) this app does not declare:")
    for n in names:
        click.echo(f"  {n}")


# -- helpers -----------------------------------------------------------------------


def state_of(s: Schedule) -> str:
    """``active``, ``paused``, ``disabled`` or ``disabled, paused``."""
    states = [name for name, on in (("disabled", not s.enabled), ("paused", s.paused)) if on]
    return ", ".join(states) or "active"


def source_of(s: Schedule, app: Tock) -> str:
    # docs/design.md: a code schedule no process declares any more is shown as such.
    if s.source == "code" and s.name not in app.code_schedules:
        return "code (undeclared)"
    return s.source


def last_fire(s: Schedule) -> Text:
    if s.last_fire_at is None:
        return Text("-")
    text = Text(fmt_time(s.last_fire_at))
    if s.last_status is not None:
        text.append(" ")
        text.append(s.last_status, style=STATUS_STYLES.get(s.last_status, ""))
    return text


def next_fire_sentence(s: Schedule) -> str:
    if s.next_fire_at is None:
        return "it fires no more"
    when = f"{fmt_time(s.next_fire_at)} UTC"
    if s.enabled and not s.paused:
        return f"next fire {when}"
    return f"next planned fire {when} (not while {state_of(s)})"


def unknown_dependencies(s: Schedule, app: Tock, known: set[str] | None = None) -> list[str]:
    """The schedules ``s`` depends on that the store does not hold: its fires wait for
    them until they exist and run (docs/schedules.md: Schedules that wait on
    schedules). ``known``: names already read (the others are looked up)."""
    unknown = []
    for name in s.depends_on:
        if known is not None and name in known:
            continue
        try:
            app.get_schedule(name)
        except ScheduleNotFound:
            unknown.append(name)
    return unknown


def depends_on_text(s: Schedule, app: Tock, known: set[str] | None = None) -> str:
    """``a, b (unknown)``: the dependencies, those no schedule holds marked; ``-``."""
    if not s.depends_on:
        return "-"
    unknown = set(unknown_dependencies(s, app, known))
    return ", ".join(n + (" (unknown)" if n in unknown else "") for n in s.depends_on)


def waiting_text(f: FireRecord) -> str:
    """What a waiting fire waits for, as ``tock schedules show`` says it."""
    names = ", ".join(f.waiting_for) or "its dependencies (the scheduler looks again)"
    return f"fire {_time(f.at)} waits for {names}"


def describe(
    s: Schedule,
    app: Tock,
    created_at: datetime | None,
    updated_at: datetime | None,
    fires: list[FireRecord] | None = None,
) -> list[str]:
    """``name: value`` lines for every field of the schedule (and its waiting fire,
    among ``fires``)."""
    rows: list[tuple[str, str]] = [
        ("name", s.name),
        ("task", s.task + ("" if s.task in app.tasks else " (not registered in this app)")),
        ("schedule", s.expression),
        ("state", state_of(s)),
        ("source", source_of(s, app)),
        ("args", json.dumps(s.args, ensure_ascii=False)),
        ("kwargs", json.dumps(s.kwargs, ensure_ascii=False)),
        ("queue", "(the task's)" if s.queue is None else s.queue),
        ("priority", "(the task's)" if s.priority is None else str(s.priority)),
        ("misfire", s.misfire),
        ("grace", f"{s.grace.total_seconds():g} s"),
        ("overlap", "yes" if s.overlap else "no"),
        ("enabled", "yes" if s.enabled else "no"),
        ("paused", "yes" if s.paused else "no"),
        ("next_fire_at", _time(s.next_fire_at)),
        ("last_fire_at", _time(s.last_fire_at)),
        ("last_job_id", _value(s.last_job_id)),
        ("last_status", _value(s.last_status)),
        ("depends_on", depends_on_text(s, app)),
        ("future_depends", "yes" if s.future_depends else "no"),
        ("depends_on_outcome", s.depends_on_outcome),
        ("created_at", _time(created_at)),
        ("updated_at", _time(updated_at)),
    ]
    rows += [("waiting", waiting_text(f)) for f in fires or () if f.outcome == "waiting"]
    width = max(len(name) for name, _ in rows) + 1
    return [f"{name + ':':<{width}} {value}" for name, value in rows]


def schedule_json(s: Schedule, app: Tock, known: set[str] | None = None) -> dict[str, Any]:
    """A schedule for programs: every key always present, times in ISO 8601 (UTC).
    ``known``: schedule names already read (see ``unknown_dependencies``)."""
    return {
        "name": s.name,
        "task": s.task,
        "schedule": s.expression,
        "trigger": json.loads(trigger_to_json(s.trigger)),
        "state": state_of(s),
        "source": source_of(s, app),
        "args": s.args,
        "kwargs": s.kwargs,
        "queue": s.queue,
        "priority": s.priority,
        "misfire": s.misfire,
        "grace": s.grace.total_seconds(),
        "overlap": s.overlap,
        "enabled": s.enabled,
        "paused": s.paused,
        "next_fire_at": _iso(s.next_fire_at),
        "last_fire_at": _iso(s.last_fire_at),
        "last_job_id": s.last_job_id,
        "last_status": s.last_status,
        "depends_on": list(s.depends_on),
        "depends_on_unknown": unknown_dependencies(s, app, known),
        "future_depends": s.future_depends,
        "depends_on_outcome": s.depends_on_outcome,
    }


def fire_json(f: FireRecord) -> dict[str, Any]:
    return {
        "at": _iso(f.at),
        "last": _iso(f.last),
        "count": f.count,
        "outcome": f.outcome,
        "job_id": f.job_id,
        "manual": f.manual,
        "created_at": _iso(f.created_at),
        "waiting_for": list(f.waiting_for),
    }


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def fires_table(fires: list[FireRecord]) -> Table:
    table = new_table(title="Recent fires (newest first)", title_justify="left")
    table.add_column("Fire (UTC)", no_wrap=True)
    table.add_column("Outcome", no_wrap=True)
    table.add_column("Job", justify="right")
    table.add_column("Recorded", no_wrap=True)
    for f in fires:
        when = fmt_time(f.at)
        if f.count > 1 or f.last != f.at:
            # A run of drops is one row: first … last (how many).
            when = f"{when} … {fmt_time(f.last)} ({f.count})"
        outcome = f.outcome + (" (manual)" if f.manual and f.outcome != "triggered" else "")
        if f.outcome == "waiting" and f.waiting_for:
            outcome += f" for {', '.join(f.waiting_for)}"
        table.add_row(
            when,
            Text(outcome, style=OUTCOME_STYLES.get(f.outcome, "")),
            _value(f.job_id),
            fmt_time(f.created_at),
        )
    return table


def _time(when: datetime | None) -> str:
    return "-" if when is None else when.isoformat(sep=" ", timespec="microseconds")


def _value(value: Any) -> str:
    return "-" if value is None else str(value)
