"""``tock workers``: list the registered workers, and stop one gracefully from anywhere
(docs/design.md: Commands)."""

from __future__ import annotations

import json

import click

from tock.cli._common import console, get_app
from tock.cli.status import render_workers


@click.group()
def workers() -> None:
    """The worker processes registered in the store."""


@workers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the workers as JSON.")
def list_(as_json: bool) -> None:
    """The registered workers: id, leader, host, pid, queues, concurrency, jobs running
    and claimed, and the age of the last heartbeat."""
    found = get_app().list_workers()
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    console().print(render_workers(found))


@workers.command()
@click.argument("worker_id")
def stop(worker_id: str) -> None:
    """Stop a worker gracefully, as SIGTERM would.

    The worker learns of it within a fraction of a second, stops claiming, hands back
    the jobs it has not started, lets running ones finish within its --shutdown-grace
    and exits (a leader resigns first). Exits 1 when no registered worker has that id.
    """
    get_app().stop_worker(worker_id)
    click.echo(f"Worker {worker_id} is asked to stop; it finishes its running jobs first.")
