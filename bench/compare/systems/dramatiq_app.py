"""The broker and actors Dramatiq's workers import (``dramatiq systems.dramatiq_app``,
started with cwd ``bench/compare``: Dramatiq's default ``--path .``).

``import dramatiq`` is absolute: the library, not ``systems.dramatiq``. The broker's
recovery knobs come from the environment so the driver and its workers agree.
"""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from marking import REDIS_URL, first_attempt, mark

QUEUE = "bench"
NAMESPACE = "dramatiq"  # RedisBroker's default key prefix
#: ms without a heartbeat before a worker counts as dead (RedisBroker's default, 60 s)
HEARTBEAT_TIMEOUT = int(os.environ.get("BENCH_DRAMATIQ_HEARTBEAT_TIMEOUT", "60000"))
#: of a million broker commands, how many also run maintenance (default 1,000)
MAINTENANCE_CHANCE = int(os.environ.get("BENCH_DRAMATIQ_MAINTENANCE_CHANCE", "100000"))

broker = RedisBroker(
    url=REDIS_URL,
    namespace=NAMESPACE,
    heartbeat_timeout=HEARTBEAT_TIMEOUT,
    maintenance_chance=MAINTENANCE_CHANCE,
)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, actor_name="bench.mark")
def mark_job(tag: str) -> None:
    mark(tag)


@dramatiq.actor(queue_name=QUEUE, actor_name="bench.recover")
def recover(tag: str) -> None:
    """``recovery``: the first attempt marks and hangs (its worker is killed); the run
    after the rescue marks again."""
    mark(tag)
    if first_attempt(tag):
        time.sleep(3600)
