"""What ``tock`` loads at start-up: only what the command run uses (no timing asserted).

A worker's start-up counts (a burst of workers is timed from their launch): the command
line imports the module of the command run and no other, rich only where a table is
drawn, each store's driver only for its store, asyncio only for async tasks,
never Django nor a web framework. Each case runs a real process and reads the modules it ended with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import store_url

from tock import Tock
from tock.cli.main import COMMANDS

pytestmark = pytest.mark.slow

#: never loaded by ``tock worker``: other commands' modules, what they draw with, the
#: modules of features the worker does not use, frameworks
NOT_FOR_A_WORKER = (
    "rich",
    "django",
    "starlette",
    "fastapi",
    "tock.contrib",
    "tock.workflows",
    "croniter",  # the app has no cron schedule
    *(spec.partition(":")[0] for name, spec in COMMANDS.items() if name != "worker"),
)

APP_MODULE = '''\
"""The app of the start-up tests: writes the modules of its process when it exits."""

import atexit
import gc
import json
import os
import sys

from tock import Tock

app = Tock(os.environ["STARTUP_URL"])


@app.task(name="startup.probe")
def probe():
    """Whether the garbage collector runs while jobs do, and how much was set aside."""
    return [gc.isenabled(), gc.get_freeze_count()]


@atexit.register
def _dump():
    with open(os.environ["STARTUP_MODULES"], "w") as out:
        json.dump(sorted(sys.modules), out)
'''


def loaded(names: list[str], prefix: str) -> list[str]:
    return [n for n in names if n == prefix or n.startswith(prefix + ".")]


def modules_after(code: str) -> list[str]:
    """The modules of a fresh interpreter after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    names: list[str] = json.loads(done.stdout.splitlines()[-1])
    return names


def test_import_tock_loads_its_errors_only() -> None:
    names = modules_after("import tock")
    assert loaded(names, "tock") == ["tock", "tock.errors"]
    names = modules_after("from tock import Tock")
    assert "tock.app" in names and "tock.workflows" not in names
    names = modules_after("from tock import *")  # every public name, on first use
    assert "tock.app" in names and "tock.workflows" in names


def test_the_command_line_loads_no_command_before_it_runs() -> None:
    names = modules_after("import tock.cli.main")
    assert loaded(names, "tock.cli") == ["tock.cli", "tock.cli._common", "tock.cli.main"]
    for prefix in ("rich", "tock.app", "tock.store", "psycopg"):
        assert not loaded(names, prefix), prefix


def test_help_still_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tock", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    listed = done.stdout.partition("Commands:")[2].split()
    assert set(COMMANDS) <= set(listed)


def test_a_worker_loads_what_it_runs_only(store_kind: str, tmp_path: Path) -> None:
    url = store_url(store_kind, tmp_path)
    (tmp_path / "startapp.py").write_text(APP_MODULE)
    app = Tock(url)
    app.migrate()
    job = app.task(name="startup.probe")(lambda: None).enqueue()
    dump = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-m", "tock", "--app", "startapp:app", "worker", "--burst"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "STARTUP_URL": url, "STARTUP_MODULES": str(dump)},
    )
    try:
        assert done.returncode == 0, done.stderr
        # The collector was paused while tock loaded, and runs again with the jobs.
        enabled, frozen = job.refresh().result()
    finally:
        app.close()
    assert enabled is True and frozen > 0
    names = json.loads(dump.read_text())
    assert "tock.cli.worker" in names and "tock.worker.worker" in names
    for prefix in NOT_FOR_A_WORKER:
        assert not loaded(names, prefix), prefix
    postgres = ("psycopg", "psycopg_pool", "tock.store.postgres")
    for prefix in postgres:
        assert bool(loaded(names, prefix)) is (store_kind == "postgres"), prefix
    for prefix in ("sqlite3", "tock.store.sqlite"):
        assert bool(loaded(names, prefix)) is (store_kind == "sqlite"), prefix
    if store_kind == "sqlite":  # asyncio only for async tasks (psycopg loads it itself)
        assert not loaded(names, "asyncio")
