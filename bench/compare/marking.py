"""What a job of any system's worker calls: ``mark`` and ``first_attempt``, and the
servers' URLs. Kept apart from ``common.py`` (the drivers' side: asyncio, argparse,
subprocess, ...) so that a worker process imports only this: the harness adds nothing
to a system's start-up, which the drains' rate "from start" counts."""

from __future__ import annotations

import os
import time

MARKS_ENV = "BENCH_MARKS"
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")  # db 9: ours
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

_fd: int | None = None


def mark(tag: object = "") -> None:
    """Called by a job: record that it ran now, in this process."""
    global _fd
    if _fd is None:
        path = os.path.join(os.environ[MARKS_ENV], f"{os.getpid()}.log")
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, f"{time.time():.6f} {os.getpid()} {tag}\n".encode())


def first_attempt(tag: object) -> bool:
    """For ``recovery``: True the first time a job with this tag asks, in any process
    (a file per tag in the marks directory, created exclusively)."""
    path = os.path.join(os.environ[MARKS_ENV], f"attempt-{tag}")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True
