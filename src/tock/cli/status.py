"""``tock status``: the store, its schema, live workers and queue depths at a glance."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from tock.cli._common import (
    STATUS_STYLES,
    console,
    fmt_age,
    fmt_time,
    get_app,
    new_table,
    own_words,
)
from tock.jobs import JobStatus

CLAIMED = "claimed"

# A heartbeat comes every ~2 s; one this old means the worker may be dead (the rescuer
# declares it so after rescue_after, 10 s by default).
LATE_HEARTBEAT = 10.0
ALWAYS_SHOWN = frozenset(
    {JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED}
)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the facts as JSON (app.health()).")
@click.option(
    "--check",
    is_flag=True,
    help="A probe for scripts: print ok and exit 0, or each problem and exit 1.",
)
@click.option(
    "--max-lag",
    type=float,
    metavar="SECONDS",
    help="A queue whose oldest ready job has waited longer than this is a problem.",
)
def status(as_json: bool, check: bool, max_lag: float | None) -> None:
    """Workers and queues at a glance.

    Shows the store, its schema version, the leader (worker, term, since when), the live
    workers and, per queue, the jobs in each state, how many are ready, how long the
    oldest ready one has waited and whether a live worker serves it. Problems are listed
    last: no live worker, no leader, ready jobs in a queue no live worker serves, and
    with --max-lag a queue whose oldest ready job has waited longer.

    With --check it prints only "ok" (exit 0) or the problems on stderr (exit 1); with
    --json too, the JSON and the same exit code.
    """
    health = get_app().health(max_lag=max_lag)
    if as_json:
        click.echo(json.dumps(health, indent=2, default=str))
    elif check:
        if health["ok"]:
            click.echo("ok")
        for problem in health["problems"]:
            click.echo(f"unhealthy: {own_words(problem)}", err=True)
    else:
        render(health)
    if check and not health["ok"]:
        raise SystemExit(1)


def render(health: dict[str, Any]) -> None:
    out = console()
    version = health["schema"]["version"]
    latest = health["schema"]["latest"]
    if version == latest:
        schema = f"version {version} (up to date)"
    elif version < latest:
        schema = own_words(f"version {version}, this Tock needs {latest}: run `tock migrate`")
    else:
        schema = f"version {version}, newer than this Tock knows ({latest}): upgrade Tock"
    facts = Table.grid(padding=(0, 2))
    facts.add_row("Store", Text(str(health["store"])))
    facts.add_row("Schema", schema)
    now = datetime.fromisoformat(health["now"])
    facts.add_row("Time", f"{fmt_time(now)} UTC (the store's clock)")
    leader = health.get("leader")
    if leader:
        since = datetime.fromisoformat(leader["since"]) if leader["since"] else None
        facts.add_row(
            "Leader",
            Text(f"{leader['worker']}, term {leader['term']}, since {fmt_time(since)} UTC"),
        )
    else:
        facts.add_row("Leader", Text("none", style="red" if health["workers"] else ""))
    out.print(facts)
    out.print()
    out.print(render_workers(health["workers"]))
    out.print()
    out.print(_queues(health["queues"]))
    out.print()
    if health["problems"]:
        out.print(Text("Problems:", style="bold red"))
        for problem in health["problems"]:
            out.print(Text(f"  {own_words(problem)}", style="red"))
    else:
        out.print(Text("No problems found.", style="green"))


def render_workers(workers: list[dict[str, Any]]) -> Table | Text:
    if not workers:
        return Text(own_words("No live workers: start one with `tock worker`."))
    table = new_table(title=f"Workers ({len(workers)})", title_justify="left")
    table.add_column("ID", no_wrap=True)
    table.add_column("Leader")
    table.add_column("Host")
    table.add_column("PID", justify="right")
    table.add_column("Queues")
    table.add_column("Concurrency", justify="right")
    table.add_column("Running", justify="right")
    table.add_column("Claimed", justify="right")  # held, not started (its prefetch)
    table.add_column("Heartbeat", justify="right", no_wrap=True)
    for w in workers:
        age = float(w["heartbeat_age"])
        heartbeat = Text(f"{fmt_age(age)} ago")
        if age > LATE_HEARTBEAT:
            heartbeat = Text(f"{fmt_age(age)} ago (late)", style="red")
        table.add_row(
            Text(str(w["id"])),
            Text("leader", style="bold") if w.get("leader") else Text(""),
            Text(str(w["hostname"])),
            str(w["pid"]),
            Text(",".join(w["queues"])),
            str(w["concurrency"]),
            str(w["running"]),
            str(w.get("claimed", 0)),
            heartbeat,
        )
    return table


def _queues(queues: dict[str, dict[str, Any]]) -> Table | Text:
    if not queues:
        return Text("No jobs yet.")
    # The rarer states get a column only when some queue has such jobs.
    shown = [
        s for s in JobStatus if s in ALWAYS_SHOWN or any(q.get(s.value, 0) for q in queues.values())
    ]
    table = new_table(title="Queues", title_justify="left")
    table.add_column("Queue", overflow="fold")
    table.add_column("Ready", justify="right")
    table.add_column("Oldest ready", justify="right")
    # Claimed (a view of running: held by a worker, not started) comes before Running.
    columns = [
        name
        for s in shown
        for name in ((CLAIMED, s.value) if s is JobStatus.RUNNING else (s.value,))
    ]
    for name in columns:
        style = STATUS_STYLES[JobStatus.RUNNING.value if name == CLAIMED else name]
        table.add_column(name.capitalize(), justify="right", style=style)
    table.add_column("Served")
    for name, q in sorted(queues.items()):
        served = q.get("served", True)
        table.add_row(
            Text(f"{name} (paused)", style="yellow") if q.get("paused") else Text(name),
            str(q.get("ready", 0)),
            fmt_age(q.get("oldest_ready_age")),
            *(str(q.get(c, 0)) for c in columns),
            Text("yes") if served else Text("no live worker", style="red"),
        )
    return table
