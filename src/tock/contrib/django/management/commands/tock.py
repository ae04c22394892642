"""``manage.py tock …``: Tock's command line with Django set up and the project's app
(``manage.py tock worker``, ``status``, ``jobs``, ``schedules``, ``migrate``)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):  # type: ignore[misc]
    help = "Tock's command line (worker, status, jobs, schedules, migrate) for this project."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help="tock's own arguments")

    def run_from_argv(self, argv: list[str]) -> None:
        # Everything after "tock" is Tock's own command line, parsed by Tock's CLI
        # (click), not by Django's argparse.
        from tock.cli.main import cli

        cli.main(
            args=["--app", "tock.contrib.django:app", *argv[2:]],
            prog_name=f"{argv[0].rsplit('/', 1)[-1]} tock",
        )

    def handle(self, *args: Any, **options: Any) -> None:  # call_command("tock", …)
        from tock.cli.main import cli

        cli.main(
            args=["--app", "tock.contrib.django:app", *args],
            prog_name="tock",
            standalone_mode=False,
        )
