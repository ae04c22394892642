"""The job functions RQ's workers import (``systems.rq_jobs.<name>``), and the cron
configuration ``rq cron systems.rq_jobs`` loads for ``periodic``.

Workers run with cwd ``bench/compare`` (``rq worker --path .``, RQ's default), so both
``systems`` and ``marking`` import from there; ``rq`` is the library (absolute import).
"""

from __future__ import annotations

import os
import time

import rq
from marking import first_attempt, mark
from rq import cron

QUEUE = "bench"


def mark_job(tag: str) -> None:
    mark(tag)


def recover(tag: str) -> None:
    """``recovery``: the first attempt marks and hangs (its worker is killed); the run
    after the rescue marks again."""
    mark(tag)
    if first_attempt(tag):
        time.sleep(3600)


def tick() -> None:
    """``periodic``: the tag carries the job's id, so the driver can pair each mark with
    the enqueue times RQ records for the cron job (its history sorted set)."""
    job = rq.get_current_job()
    mark(f"tick {job.id if job else '?'}")


if os.environ.get("BENCH_RQ_CRON"):
    # Loaded by ``rq cron systems.rq_jobs``: RQ's CronScheduler (new in RQ 2.4, beta),
    # interval in whole seconds: https://python-rq.org/docs/cron/
    cron.register(tick, queue_name=QUEUE, interval=1, name="bench.tick")
