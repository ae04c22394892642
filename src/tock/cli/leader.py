"""``tock leader``: the cluster's leader (docs/design.md: Leader)."""

from __future__ import annotations

import click

from tock.cli._common import fail, get_app


@click.group()
def leader() -> None:
    """The leader: the worker that fires schedules, rescues the jobs of dead workers and
    prunes old jobs. `tock status` shows which one it is."""


@leader.command()
def resign() -> None:
    """Make the leader step down so that another worker leads.

    The lease is cleared at once; the leader finds out within 50 ms, stops, and a
    follower is elected (the old leader's writes are refused meanwhile). Exits 1 when no
    worker leads.
    """
    was = get_app().transfer_leadership()
    if was is None:
        fail("no worker leads: nothing to resign")
    click.echo(f"Worker {was} was asked to step down; another worker leads shortly.")
