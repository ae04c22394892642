"""``tock queues``: pause and resume claims from a queue, and list the queues
(docs/design.md: Commands)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from tock.cli._common import console, fmt_age, fmt_time, get_app, new_table


@click.group()
def queues() -> None:
    """Queues: the lanes jobs wait in. A paused queue keeps its jobs: no worker claims
    them until it is resumed."""


@queues.command()
@click.argument("name")
def pause(name: str) -> None:
    """Stop claims from queue NAME: its jobs wait (enqueueing still works), running ones
    go on. Every worker's next claim leaves it out."""
    get_app().pause_queue(name)
    click.echo(f"Queue {name!r} is paused: no worker claims its jobs until it is resumed.")


@queues.command()
@click.argument("name")
def resume(name: str) -> None:
    """Let workers claim from queue NAME again."""
    get_app().resume_queue(name)
    click.echo(f"Queue {name!r} is resumed.")


@queues.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the queues as JSON.")
def list_(as_json: bool) -> None:
    """Every queue that holds jobs or is paused: paused or not, ready, running and
    pending jobs, and whether a live worker serves it."""
    found = get_app().list_queues()
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    console().print(_table(found))


def _table(found: list[dict[str, Any]]) -> Table | Text:
    if not found:
        return Text("No queues yet: a queue appears with its first job, or when paused.")
    table = new_table(title="Queues", title_justify="left")
    table.add_column("Queue", overflow="fold")
    table.add_column("Paused")
    table.add_column("Ready", justify="right")
    table.add_column("Oldest ready", justify="right")
    table.add_column("Pending", justify="right")
    table.add_column("Running", justify="right")
    table.add_column("Served")
    for q in found:
        since = q.get("paused_at")
        paused = (
            Text(f"since {fmt_time(datetime.fromisoformat(since))} UTC", style="yellow")
            if q["paused"] and since
            else Text("yes" if q["paused"] else "no")
        )
        table.add_row(
            Text(q["name"]),
            paused,
            str(q["ready"]),
            fmt_age(q["oldest_ready_age"]),
            str(q["pending"]),
            str(q["running"] + q["claimed"]),
            Text("yes") if q["served"] else Text("no live worker", style="red"),
        )
    return table
