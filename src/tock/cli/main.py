"""``tock``: run workers and look after jobs and schedules from the command line.

Every command but ``--help`` needs the app: ``--app module:attribute`` or ``$TOCK_APP``.
"""

from __future__ import annotations

import errno
import importlib
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import click

import tock
from tock.cli._common import AppRef, CLIError, gc_paused_while_loading
from tock.errors import TockError

__all__ = ["cli", "main"]

#: Each command's module, imported when the command runs or is listed (``--help``):
#: ``tock worker`` loads its own, not the others' nor what they draw tables with (rich).
COMMANDS = {
    "migrate": "tock.cli.migrate:migrate",
    "worker": "tock.cli.worker:worker",
    "status": "tock.cli.status:status",
    "jobs": "tock.cli.jobs:jobs",
    "schedules": "tock.cli.schedules:schedules",
    "leader": "tock.cli.leader:leader",
    "workers": "tock.cli.workers:workers",
    "queues": "tock.cli.queues:queues",
}


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name (``click.Group.commands``), each given as a command
    or as the ``module:attribute`` it is imported from at its first look-up."""

    def __init__(self, commands: Mapping[str, click.Command | str]) -> None:
        self._commands = dict(commands)

    def __getitem__(self, name: str) -> click.Command:
        command = self._commands[name]
        if isinstance(command, str):
            module, _, attr = command.partition(":")
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._commands[name]} is not a click command")
            self._commands[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._commands[name] = command

    def __delitem__(self, name: str) -> None:
        del self._commands[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._commands)

    def __len__(self) -> int:
        return len(self._commands)


class TockGroup(click.Group):
    """Shows Tock's own errors, and the database's and the operating system's (a locked
    database after the busy timeout, a full disk, a permission denied), as one line
    (``Error: ...``, exit 1), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TockError as exc:
            raise CLIError(str(exc)) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # output piped to a reader that left: click's
                raise
            raise CLIError(str(exc) or type(exc).__name__) from None
        except Exception as exc:
            # Each driver is loaded only if the app uses its store: a PostgreSQL worker
            # never loads sqlite3, nor a SQLite one psycopg.
            sqlite3 = sys.modules.get("sqlite3")
            if sqlite3 is not None and isinstance(exc, sqlite3.Error):
                raise CLIError(f"the SQLite database answered: {exc}{_hint(exc)}") from None
            psycopg = sys.modules.get("psycopg")
            if psycopg is not None and isinstance(exc, psycopg.Error):
                raise CLIError(f"PostgreSQL answered: {exc}") from None
            raise


def _hint(exc: Exception) -> str:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
        return " (another process held its write lock for longer than the busy timeout)"
    if code == 13:  # SQLITE_FULL
        return " (the disk is full)"
    return ""


@click.group(
    cls=TockGroup,
    commands=LazyCommands(COMMANDS),
    context_settings={"help_option_names": ["-h", "--help"]},
)
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


def main(argv: Sequence[str] | None = None) -> None:
    """The ``tock`` console script and ``python -m tock``."""
    with gc_paused_while_loading():
        cli.main(args=list(argv) if argv is not None else None, prog_name="tock")
