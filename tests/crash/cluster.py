"""Worker processes on one store (a SQLite file, or a fresh PostgreSQL schema), started,
signalled and watched by a test.

Workers run ``crashapp:app`` through the real command line (``python -m tock ... worker``)
or, where a test needs shorter rescue timings than the command offers, through
``run_worker.py``. This process reads the store through its own app and polls with
deadlines; it never asserts a duration.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tock import JobStatus, Tock
from tock.jobs import LIVE, JobRecord
from tock.store import WorkerRecord

from . import crashapp

HERE = Path(__file__).parent
POLL = 0.05
# Lines no worker may write, even one whose neighbour was killed or paused.
BAD_OUTPUT = ("Traceback", " ERROR ", "CRITICAL", "cannot reach the store", "pass failed")


def cli_worker(*options: str) -> list[str]:
    """``tock worker`` on ``crashapp:app``, with its default timings."""
    return [sys.executable, "-m", "tock", "--app", "crashapp:app", "worker", *options]


def runner_worker(*options: str) -> list[str]:
    """``run_worker.py``: a worker whose heartbeat and rescue timings can be shortened."""
    return [sys.executable, str(HERE / "run_worker.py"), *options]


@dataclass
class WorkerProcess:
    name: str
    popen: subprocess.Popen[bytes]
    output_path: Path  #: stdout and stderr
    output: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid


class Cluster:
    def __init__(self, tmp_path: Path, kind: str, url: str) -> None:
        self.dir = tmp_path
        self.kind = kind
        # The workers' URL. On PostgreSQL their sessions carry an application name of
        # this test's own (Tock names its LISTEN and liveness sessions after it), so
        # that a test can terminate them and no other session on the server.
        self.app_name = f"tock_crash_{secrets.token_hex(4)}"
        self.url = url
        if kind == "postgres":
            self.url = f"{url}{'&' if '?' in url else '?'}application_name={self.app_name}"
        self.start_log = tmp_path / "starts.log"
        self.start_log.touch()
        self.app: Tock = crashapp.build(url)  # this process: not one of the workers
        self.app.migrate()
        self.workers: list[WorkerProcess] = []
        self.expected_dead: set[int] = set()  # pids this test killed on purpose

    # -- processes ---------------------------------------------------------------

    def start_worker(self, name: str, command: list[str]) -> WorkerProcess:
        env = dict(os.environ)
        env["TOCK_URL"] = self.url
        env[crashapp.START_LOG] = str(self.start_log)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
        path = self.dir / f"{name}.log"
        output = path.open("wb")
        popen = subprocess.Popen(
            command,
            cwd=HERE,  # `--app crashapp:app` imports from the current directory
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
        )
        worker = WorkerProcess(name, popen, path, output)
        self.workers.append(worker)
        return worker

    def kill(self, worker: WorkerProcess, sig: int = signal.SIGKILL) -> None:
        if sig == signal.SIGKILL:
            self.expected_dead.add(worker.pid)
        os.kill(worker.pid, sig)

    def stop(self, worker: WorkerProcess, timeout: float = 60) -> int:
        """SIGTERM (a graceful stop) and wait; returns the exit code."""
        self.expected_dead.add(worker.pid)
        worker.popen.send_signal(signal.SIGTERM)
        return worker.popen.wait(timeout)

    def wait_paused(self, worker: WorkerProcess, timeout: float = 10) -> None:
        """Wait until every thread of ``worker`` is stopped (SIGSTOP is asynchronous)."""

        def paused() -> bool:
            states = []
            for task in Path(f"/proc/{worker.pid}/task").iterdir():
                try:
                    stat = (task / "stat").read_text()
                except FileNotFoundError:
                    continue  # a thread that just ended
                # "pid (comm) state ...": comm may hold spaces, so split after the ')'.
                states.append(stat.rsplit(")", 1)[1].split()[0])
            return all(s in "tT" for s in states)

        self.wait_for(f"{worker.name} to pause", paused, timeout)

    def close(self) -> None:
        for w in self.workers:
            if w.popen.poll() is None:
                w.popen.kill()  # works on a stopped process too
            w.popen.wait()
            w.output.close()
        self.app.close()

    def logs(self) -> list[tuple[str, str]]:
        return [
            (f"{w.name} (pid {w.pid}) output", w.output_path.read_text(errors="replace"))
            for w in self.workers
        ]

    def assert_clean_output(self) -> None:
        for title, text in self.logs():
            for bad in BAD_OUTPUT:
                assert bad not in text, f"{title} holds {bad!r}:\n{text[-5_000:]}"

    # -- waiting -----------------------------------------------------------------

    def wait_for(
        self, what: str, predicate: Callable[[], object], timeout: float, poll: float = POLL
    ) -> None:
        """Poll ``predicate`` until it holds; fail if ``timeout`` passes first or a
        worker this test did not kill exits."""
        deadline = time.monotonic() + timeout
        while not predicate():
            for w in self.workers:
                code = w.popen.poll()
                if code is not None and w.pid not in self.expected_dead:
                    pytest.fail(f"worker {w.name} exited with {code} while waiting for {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"gave up after {timeout} s waiting for {what}")
            time.sleep(poll)

    # -- reading the store and the start log ---------------------------------

    def worker_rows(self) -> list[WorkerRecord]:
        return self.app.store.worker_list()

    def worker_row(self, worker: WorkerProcess) -> WorkerRecord | None:
        rows = [r for r in self.worker_rows() if r.pid == worker.pid]
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    def running_jobs(self, worker_id: str) -> list[JobRecord]:
        running = self.app.store.job_list(statuses=[JobStatus.RUNNING], limit=100_000)
        return [j for j in running if j.worker_id == worker_id]

    def live_count(self) -> int:
        return sum(
            n
            for s in self.app.store.job_stats(now=None)
            for status, n in s.counts.items()
            if status in LIVE
        )

    def jobs(self) -> list[JobRecord]:
        return self.app.store.job_list(limit=1_000_000)

    def starts(self) -> dict[str, list[int]]:
        """Tag -> pids of the processes that started it, in order."""
        pids: dict[str, list[int]] = defaultdict(list)
        for line in self.start_log.read_text().splitlines():
            tag, pid = line.split()
            pids[tag].append(int(pid))
        return pids
