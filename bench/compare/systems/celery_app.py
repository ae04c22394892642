"""The Celery app the comparison's workers (and beat) run: ``celery -A systems.celery_app``.

Configured from the environment the driver sets:

- ``BENCH_CELERY_BROKER``: the broker URL (Redis db 9 or RabbitMQ on loopback);
- ``BENCH_CELERY_PREFETCH``: ``worker_prefetch_multiplier`` (1 for long tasks, large for
  many short ones: docs "Optimizing", Prefetch Limits);
- ``BENCH_PERIODIC``: if set, a beat schedule of ``bench.tick`` every second.

Reliable settings, as Celery's docs give them (FAQ "Should I use retry or acks_late?",
https://docs.celeryq.dev/en/stable/faq.html#faq-acks-late-vs-retry, and the
``task_reject_on_worker_lost`` setting,
https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-reject-on-worker-lost):
acknowledge after the task ran, and requeue the message if the process running it dies.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery, Task
from celery.signals import before_task_publish
from marking import first_attempt, mark

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/9")

app = Celery("bench", broker=BROKER)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=int(os.environ.get("BENCH_CELERY_PREFETCH", "1")),
    task_ignore_result=True,  # no result backend: the jobs are no-ops
    broker_connection_retry_on_startup=True,  # the default; set to silence its warning
    worker_hijack_root_logger=False,
)


@app.task(name="bench.mark")
def mark_job(tag: str) -> None:
    mark(tag)


@app.task(name="bench.recover")
def recover(tag: str) -> None:
    """``recovery``: the first attempt marks and hangs (its worker is killed); the run
    after the redelivery marks again."""
    mark(tag)
    if first_attempt(tag):
        time.sleep(3600)


@app.task(name="bench.tick", bind=True)
def tick(self: Task) -> None:
    # Beat does not tell the task when it was due: the beat process stamps the time it
    # published the message (below) and the driver derives the due time from it.
    mark(f"tick {self.request.get('bench_sent')}")


if os.environ.get("BENCH_PERIODIC"):
    # Every second, as a plain interval (the form the docs show:
    # https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html#entries).
    app.conf.beat_schedule = {"bench-tick": {"task": "bench.tick", "schedule": 1.0}}

    @before_task_publish.connect
    def _stamp(headers: dict[str, Any] | None = None, **_: Any) -> None:
        """In the beat process: the time this fire is published, in a message header."""
        if headers is not None and headers.get("task") == "bench.tick":
            headers["bench_sent"] = time.time()
