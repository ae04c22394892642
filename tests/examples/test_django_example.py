"""examples/django runs as its README says: set up, then the demo (docs/django.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "django"


def readme_commands() -> list[str]:
    text = (EXAMPLE / "README.md").read_text()
    return [b.strip() for b in re.findall(r"^```sh\n(.*?)^```$", text, re.M | re.S)]


def test_the_readme_shows_the_two_commands_this_test_runs() -> None:
    setup, demo = readme_commands()
    # The setup installs into a venv (this test's interpreter has it all), then migrates.
    assert setup.startswith("python3 -m venv .venv && .venv/bin/pip install -q -e '../..[django]'")
    assert setup.endswith(" && .venv/bin/python manage.py migrate")
    assert demo == ".venv/bin/python manage.py demo"


def run(args: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "TOCK_URL")}
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_the_example_runs_end_to_end(tmp_path: Path) -> None:
    copy = tmp_path / "django"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("db.sqlite3", ".venv"))
    assert "Applying tock.0001_initial... OK" in run(["manage.py", "migrate"], copy)
    out = run(["manage.py", "demo"], copy)
    assert "GET /orders/piano/refused: 409 piano is out of stock" in out
    assert "orders saved: 2 (the refused one rolled back)" in out
    assert "jobs waiting: 4" in out  # two orders, two jobs each; none for the refused one
    assert "job 1 orders.tasks.ship: succeeded, 1 attempt(s) -> 'order 1 shipped'" in out
    assert "order 2 lamp: shipped=True, receipt_sent=True" in out
    assert "schedule orders.tasks.restock_report: next fire" in out
    assert (
        "send_receipt 2: SUCCESSFUL after 2 attempts; errors: builtins.ConnectionError; "
        "returned 'receipt for order 1 sent on attempt 2'"
    ) in out
    assert (copy / "db.sqlite3").exists()
