"""Helpers of the CLI tests: a small project in ``tmp_path`` (``--app cliapp:app``).

The CLI imports the app module from the current directory (``monkeypatch.chdir``); the
module takes its store from ``$TOCK_URL``. Tests enqueue through the same module, so the
task names match the ones a worker subprocess registers.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner, Result

from tock import Tock
from tock.cli.main import cli
from tock.worker.worker import Worker, WorkerConfig

APP = "cliapp:app"
APP_MODULE = '''\
"""The app the CLI tests run: tasks that return, raise, sleep or wait on a gate."""

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tock import Tock

app = Tock()  # $TOCK_URL


@app.task
def add(a, b):
    return a + b


@app.task
def boom(message):
    raise ValueError(message)


@app.task
def slow(marker, seconds=1.0):
    Path(marker).touch()  # tells the test the job started
    time.sleep(seconds)
    return "slept"


@app.task
def gated(marker, gate):
    Path(marker).touch()
    deadline = time.monotonic() + 120  # never hang a test run for ever
    while not Path(gate).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return "released"


# A code schedule whose first fire is in 2100: a worker started by a test syncs it but
# never runs it, so no test sees its jobs.
@app.periodic(every=timedelta(hours=1), anchor=datetime(2100, 1, 1, tzinfo=UTC))
def hourly():
    return "tick"
'''


class Project:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path / 'tock.db'}"
        self.modules: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.runner = CliRunner()

    def write_module(self, name: str, text: str) -> Path:
        path = self.path / f"{name}.py"
        path.write_text(text)
        self.modules.append(name)
        importlib.invalidate_caches()  # the directory's listing may be cached already
        return path

    @property
    def mod(self) -> ModuleType:
        """The app module, imported the way the CLI imports it (same app object)."""
        if str(self.path) not in sys.path:
            sys.path.insert(0, str(self.path))
        return importlib.import_module("cliapp")

    @property
    def app(self) -> Tock:
        app: Tock = self.mod.app
        return app

    def invoke(self, *args: str, app: str | None = APP) -> Result:
        argv = ["--app", app, *args] if app is not None else list(args)
        return self.runner.invoke(cli, argv, catch_exceptions=False)

    def drain(self) -> None:
        """Run every due job to its end, here, as a worker in burst mode would."""
        worker = Worker(self.app, WorkerConfig(burst=True, duties=False))
        worker.run(install_signal_handlers=False)

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """``python -m tock --app cliapp:app ARGS`` in the project directory."""
        log = self.path / f"worker-{len(self.processes)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tock", "--app", APP, *args],
                cwd=self.path,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(proc)
        return proc

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in self.logs)

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for name in self.modules:
            module = sys.modules.pop(name, None)
            app = getattr(module, "app", None)
            if isinstance(app, Tock):
                app.close()


def assert_error(result: Result, *fragments: str, exit_code: int = 1) -> str:
    """A one-line ``Error: ...`` on stderr, no traceback, nothing on stdout."""
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def poll(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Wait (real time) until ``predicate()``; False if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def wait_for(
    predicate: Callable[[], bool],
    what: str,
    project: Project,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 60.0,
) -> None:
    def done() -> bool:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            pytest.fail(
                f"the worker exited ({proc.returncode}) before {what}\n{project.log_text()}"
            )
        return False

    if not poll(done, timeout):
        pytest.fail(f"timed out waiting for {what}\n{project.log_text()}")


def terminate(proc: subprocess.Popen[bytes], project: Project, timeout: float = 120.0) -> int:
    proc.send_signal(signal.SIGTERM)
    return wait_exit(proc, project, timeout)


def wait_exit(proc: subprocess.Popen[bytes], project: Project, timeout: float = 120.0) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not stop after SIGTERM\n{project.log_text()}")


def run_cli(
    project: Project, *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tock", *args],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ},
    )


def ids_in_table(output: str) -> list[int]:
    """The job ids of a ``tock jobs list`` table, in the order shown."""
    ids = []
    for line in output.splitlines():
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        if first.isdigit():
            ids.append(int(first))
    return ids


def statuses(app: Tock, ids: Sequence[int]) -> list[str]:
    return [app.store.job_get(i).status.value for i in ids]
