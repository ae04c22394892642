"""``tock``: run workers and look after jobs and schedules from the command line.

Every command but ``--help`` needs the app: ``--app module:attribute`` or ``$TOCK_APP``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

import tock
from tock.cli._common import AppRef, CLIError
from tock.cli.jobs import jobs
from tock.cli.migrate import migrate
from tock.cli.schedules import schedules
from tock.cli.status import status
from tock.cli.worker import worker
from tock.errors import TockError

__all__ = ["cli", "main"]


class TockGroup(click.Group):
    """Shows Tock's own errors as one line (``Error: ...``, exit 1), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TockError as exc:
            raise CLIError(str(exc)) from None


@click.group(cls=TockGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--app",
    "app_spec",
    envvar="TOCK_APP",
    show_envvar=True,
    metavar="MODULE:ATTR",
    help="The Tock app object, e.g. myproject.tasks:app (imported from the current directory).",
)
@click.version_option(tock.__version__, prog_name="tock")
@click.pass_context
def cli(ctx: click.Context, app_spec: str | None) -> None:
    """Tock: a task queue whose only moving part is the database.

    \b
    Start here:
      tock --app myproject.tasks:app migrate     create or upgrade the schema
      tock --app myproject.tasks:app worker      run jobs from the default queue
      tock --app myproject.tasks:app status      workers and queues at a glance
      tock --app myproject.tasks:app jobs list   recent jobs (--state failed for the dead letters)
      tock --app myproject.tasks:app schedules list   schedules, their next and last fire
    """
    ctx.obj = AppRef(app_spec)


cli.add_command(migrate)
cli.add_command(worker)
cli.add_command(status)
cli.add_command(jobs)
cli.add_command(schedules)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``tock`` console script and ``python -m tock``."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="tock")
