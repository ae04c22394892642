"""examples/django runs as its README says (docs/django.md). The README's two commands
create a venv, install into it, migrate, then run the demo; this test runs the same
manage.py commands with this interpreter, which has Tock and Django already, in a copy of
the example, so that its database stays out of the repository."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "django"

#: the README's two commands, as a user runs them from examples/django
SETUP = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '../..[django]' "
    "'django-tasks>=0.12; python_version < \"3.12\"' && .venv/bin/python manage.py migrate"
)
DEMO = ".venv/bin/python manage.py demo"
VENV_PYTHON = ".venv/bin/python "


def readme_commands() -> list[str]:
    text = (EXAMPLE / "README.md").read_text()
    return [b.strip() for b in re.findall(r"^```sh\n(.*?)^```$", text, re.M | re.S)]


def python_args(command: str) -> list[str]:
    """The arguments of the venv's python in the command's last step: what this test
    runs with ``sys.executable`` instead."""
    last = command.split(" && ")[-1]
    assert last.startswith(VENV_PYTHON), command
    return shlex.split(last.removeprefix(VENV_PYTHON))


def test_the_readme_shows_the_two_commands_this_test_runs() -> None:
    assert readme_commands() == [SETUP, DEMO]
    assert python_args(SETUP) == ["manage.py", "migrate"]
    assert python_args(DEMO) == ["manage.py", "demo"]


def run(args: list[str], cwd: Path) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "TOCK_URL", "TOCK_APP")
    }
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_the_example_runs_end_to_end(tmp_path: Path) -> None:
    copy = tmp_path / "django"
    shutil.copytree(
        EXAMPLE, copy, ignore=shutil.ignore_patterns("db.sqlite3*", ".venv", "__pycache__")
    )
    assert "Applying tock.0001_initial... OK" in run(python_args(SETUP), copy)
    out = run(python_args(DEMO), copy)

    # Each committed order has its two jobs; the rolled-back one left neither row.
    assert "placed order 1: ship job 1, receipt task 2" in out
    assert "placed order 2: ship job 3, receipt task 4" in out
    assert (
        "refused order 3: rolled back with its ship job 5 (order saved: False, job saved: False)"
    ) in out
    assert "jobs waiting: 4" in out

    # Each job's outcome; the Django task failed twice, then succeeded: one error per
    # failed attempt, one worker id per attempt.
    assert "ship job 1: succeeded after 1 attempt(s), returned 'order 1 shipped'" in out
    assert "ship job 3: succeeded after 1 attempt(s), returned 'order 2 shipped'" in out
    receipt = out.split("send_receipt task 2: ")[1].split("ship job 3")[0]
    assert receipt.splitlines() == [
        "SUCCESSFUL after 3 attempts, returned 'receipt for order 1 sent'",
        "  error: builtins.ConnectionError: mail server unreachable (attempt 1)",
        "  error: builtins.ConnectionError: mail server unreachable (attempt 2)",
        "  worker ids: 3, one per attempt",
    ]
    assert "send_receipt task 4: SUCCESSFUL after 3 attempts" in out
    assert "order 1 book: shipped True, receipt sent True" in out
    assert "order 2 lamp: shipped True, receipt sent True" in out
    assert "order 3" not in out.split("worker: ")[1]
    assert "schedule orders.tasks.count_unshipped: every 5m, next fire" in out
    assert (copy / "db.sqlite3").exists()

    # What the README says to look at next: the jobs in Django's admin, as a superuser.
    admin = run(["manage.py", "shell", "-c", ADMIN_LOOK], copy)
    assert "jobs page: 200" in admin, admin
    assert "orders.tasks.ship" in admin and "succeeded" in admin, admin
    assert "job 2 page: 200, traceback shown: True" in admin, admin
    assert "schedules page: 200, orders.tasks.count_unshipped listed: True" in admin, admin
    assert "workers page: 200" in admin, admin


#: run by ``manage.py shell -c`` in the example after its demo: logs a superuser in with
#: Django's test client and prints what the admin's pages show
ADMIN_LOOK = """
from django.contrib.auth.models import User
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
client.force_login(User.objects.create_superuser("admin", "admin@example.com", "example"))
jobs = client.get("/admin/tock/job/")
print("jobs page:", jobs.status_code)
print(jobs.content.decode())
job = client.get("/admin/tock/job/2/change/")
text = job.content.decode()
shown = "mail server unreachable" in text and "Traceback" in text
print("job 2 page: %d, traceback shown: %s" % (job.status_code, shown))
schedules = client.get("/admin/tock/schedule/")
listed = "orders.tasks.count_unshipped" in schedules.content.decode()
print("schedules page: %d, %s listed: %s" % (
    schedules.status_code, "orders.tasks.count_unshipped", listed
))
print("workers page:", client.get("/admin/tock/worker/").status_code)
"""
