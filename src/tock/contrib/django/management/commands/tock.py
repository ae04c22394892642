"""``manage.py tock …``: Tock's command line with Django set up and the project's app
(``manage.py tock worker``, ``status``, ``jobs``, ``schedules``, ``migrate``).

The commands are the ``tock`` command's own (click), without ``--app``: the app is the
project's (``tock.contrib.django:app``). Django's own options (``--settings``,
``--pythonpath``), which Django has applied before this runs, are taken out of the rest.
``call_command("tock", "status", stdout=out)`` works too: output goes to the streams
given, an exit status other than 0 and a usage error become ``CommandError``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

import click
from django.core.management.base import BaseCommand, CommandError, CommandParser

import tock
from tock.cli._common import PROG, AppRef
from tock.cli.main import TockGroup, cli

APP = "tock.contrib.django:app"

#: Django's options that take a value, handled by Django before this command runs
DJANGO_OPTIONS = ("--settings", "--pythonpath")


@click.group(
    cls=TockGroup,
    name="tock",
    commands=cli.commands,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(tock.__version__, prog_name="tock")
@click.pass_context
def django_cli(ctx: click.Context) -> None:
    """Tock's command line for this Django project: its database, its tasks (each
    installed app's tasks.py) and its settings.

    \b
    Start here:
      manage.py migrate                  create Tock's tables (or: manage.py tock migrate)
      manage.py tock worker              run jobs from the default queue
      manage.py tock status              workers and queues at a glance
      manage.py tock jobs list           recent jobs (--state failed for the dead letters)
      manage.py tock schedules list      schedules, their next and last fire
    """
    ctx.obj = AppRef(APP)
    ctx.meta[PROG] = ctx.info_name  # hints say `manage.py tock worker`


def without_django_options(args: list[str]) -> list[str]:
    """``args`` without ``--settings``/``--pythonpath`` and their values (up to ``--``)."""
    kept: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            kept.append(arg)
            kept.extend(rest)
            break
        if arg in DJANGO_OPTIONS:
            next(rest, None)
        elif not arg.startswith(tuple(f"{option}=" for option in DJANGO_OPTIONS)):
            kept.append(arg)
    return kept


class Command(BaseCommand):  # type: ignore[misc]
    help = "Tock's command line (worker, status, jobs, schedules, migrate) for this project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help="tock's own arguments")

    def run_from_argv(self, argv: list[str]) -> None:
        # Everything after "tock" is Tock's command line, parsed by click, not argparse.
        django_cli.main(
            args=without_django_options(argv[2:]),
            prog_name=f"{argv[0].rsplit('/', 1)[-1]} tock",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command("tock", "jobs", "list", stdout=…, stderr=…)``."""
        stdout = options.get("stdout") or sys.stdout
        stderr = options.get("stderr") or sys.stderr
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = django_cli.main(
                    args=without_django_options(list(args)),
                    prog_name="manage.py tock",
                    standalone_mode=False,
                )
            except click.ClickException as exc:
                raise CommandError(exc.format_message(), returncode=exc.exit_code) from None
            except click.Abort:
                raise CommandError("aborted") from None
            except SystemExit as exc:  # a command's own exit status (status --check)
                code = exc.code
        if isinstance(code, int) and code != 0:
            raise CommandError(f"tock {' '.join(args)} exited with status {code}", returncode=code)
