"""The Huey instance and tasks of the comparison: ``huey_consumer systems.huey_app.huey``.

Configured by the driver (``systems/huey.py``) through the environment:
``BENCH_HUEY_STORAGE`` (``redis`` or ``sqlite``), ``BENCH_HUEY_NAME`` (a fresh namespace
per measurement), ``BENCH_HUEY_SQLITE`` (the database file) and ``BENCH_PERIODIC``.
"""

from __future__ import annotations

import os
import time

from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey, Task
from huey.signals import SIGNAL_INTERRUPTED
from marking import REDIS_URL, first_attempt, mark

NAME = os.environ.get("BENCH_HUEY_NAME", "bench")


def make_huey() -> Huey:
    if os.environ.get("BENCH_HUEY_STORAGE", "redis") == "sqlite":
        # fsync=True: durable writes (synchronous=FULL), as Tock's SQLite default.
        # https://huey.readthedocs.io/en/latest/api.html#SqliteHuey
        return SqliteHuey(NAME, filename=os.environ["BENCH_HUEY_SQLITE"], fsync=True)
    # RedisHuey: LPUSH / blocking BRPOP on a list. PriorityRedisHuey (a sorted set) is
    # only needed for priorities, which the benchmark does not use.
    return RedisHuey(NAME, url=REDIS_URL)


huey = make_huey()


@huey.signal(SIGNAL_INTERRUPTED)
def requeue_interrupted(signal: str, task: Task, *args: object, **kwargs: object) -> None:
    """The production checklist's re-enqueue of tasks interrupted by a shutdown
    (https://huey.readthedocs.io/en/latest/recipes.html#recipe-interrupted-tasks).
    It runs on a shutdown the consumer sees; a SIGKILL it never sees."""
    huey.enqueue(task)


@huey.task(name="bench.mark")
def mark_job(tag: str) -> None:
    mark(tag)


@huey.task(name="bench.recover")
def recover(tag: str) -> None:
    """``recovery``: the first attempt marks and hangs (its consumer is killed); a
    re-run, if any, marks again."""
    mark(tag)
    if first_attempt(tag):
        time.sleep(3600)


if os.environ.get("BENCH_PERIODIC"):
    # crontab() = every minute, the finest schedule Huey has: its scheduler checks
    # periodic tasks once a minute (consumer.html#consumer-internals).
    @huey.periodic_task(crontab(), name="bench.tick")
    def tick() -> None:
        mark("tick")
