"""Dramatiq 2.2 with its Redis broker, run as ``python -m systems.dramatiq WORKLOAD [...]``.

``import dramatiq`` (in ``systems.dramatiq_app``) is absolute: the library, not this module.
Workers are real ``dramatiq systems.dramatiq_app`` processes, cwd ``bench/compare``.

Settings (each documented):

* Worker: ``dramatiq systems.dramatiq_app --processes 1 --threads 8`` per worker (8
  threads is the CLI's default; ``--workers W`` starts W such commands, so each is a
  host that ``recovery`` can kill on its own). Prefetch is Dramatiq's default (2 messages
  per thread). https://dramatiq.io/guide.html "Workers" / ``dramatiq --help``.
* Reliable: Dramatiq acks a message after its actor returns (the Redis broker keeps it
  in a per-worker ack set until then) — its default, nothing to turn on
  (https://dramatiq.io/motivation.html, "at least once").
* Recovery: another worker's broker "maintenance" moves the unacked messages of a worker
  whose last heartbeat is older than ``heartbeat_timeout`` back to the queue; each broker
  command runs maintenance with probability ``maintenance_chance`` / 1,000,000 (RedisBroker
  parameters, https://dramatiq.io/reference.html#dramatiq.brokers.redis.RedisBroker;
  dispatch.lua). ``heartbeat_timeout`` stays at its default 60 s (a busy worker whose
  threads all run long jobs sends no heartbeat, so shorter risks running its jobs twice);
  ``maintenance_chance`` is raised from 1,000 (0.1 %: with one idle worker polling about
  once a second, ~10 minutes after the timeout) to 100,000 (10 %).
* Bulk enqueue: Dramatiq documents no bulk path for the Redis broker (``group`` enqueues
  its messages one by one), so ``actor.send`` in a loop (one EVALSHA each).
* Periodic: Dramatiq has no periodic tasks; its cookbook points to APScheduler
  (https://dramatiq.io/cookbook.html "Scheduling messages"), and the add-ons (periodiq,
  dramatiq-crontab) take cron expressions of minute resolution.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import common
import redis
from common import Marks, Procs, drain_result, measure_latency, measurement, result


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument(
        "--heartbeat-timeout", type=int, default=60_000, help="RedisBroker heartbeat_timeout, ms"
    )
    parser.add_argument(
        "--maintenance-chance", type=int, default=100_000, help="RedisBroker maintenance_chance"
    )


def flush(conn: redis.Redis, namespace: str) -> None:
    """Delete Dramatiq's keys only (others may share db 9 while we develop)."""
    keys = list(conn.scan_iter(match=f"{namespace}:*", count=10_000))
    for i in range(0, len(keys), 1000):
        conn.delete(*keys[i : i + 1000])


def main() -> None:
    args = common.parse_args(options)
    # The broker reads these when systems.dramatiq_app is imported, here and in workers.
    env = {
        "BENCH_DRAMATIQ_HEARTBEAT_TIMEOUT": str(args.heartbeat_timeout),
        "BENCH_DRAMATIQ_MAINTENANCE_CHANCE": str(args.maintenance_chance),
    }
    os.environ.update(env)
    from systems import dramatiq_app as app

    worker = [
        str(Path(sys.executable).parent / "dramatiq"), "systems.dramatiq_app",
        "--processes", "1", "--threads", str(args.threads), "--path", ".",
    ]  # fmt: skip
    settings = (
        f"redis; dramatiq --processes 1 --threads {args.threads} per worker (prefetch "
        f"{2 * args.threads}); acks after the actor returns (default); RedisBroker("
        f"heartbeat_timeout={args.heartbeat_timeout} ms, "
        f"maintenance_chance={args.maintenance_chance:,}/1,000,000)"
    )
    conn = redis.Redis.from_url(common.REDIS_URL)
    flush(conn, app.NAMESPACE)
    try:
        with measurement() as (marks, procs):
            run(args, worker, {**marks.env(), **env}, settings, app, marks, procs)
    finally:
        flush(conn, app.NAMESPACE)


def run(  # type: ignore[no-untyped-def]
    args: argparse.Namespace,
    worker: list[str],
    env: dict[str, str],
    settings: str,
    app,
    marks: Marks,
    procs: Procs,
) -> None:
    if args.workload == "enqueue":
        start = time.perf_counter()
        for i in range(args.n):
            app.mark_job.send(str(i))
        rate = args.n / (time.perf_counter() - start)
        result(rate, "jobs/s", "redis; actor.send in a loop (no bulk path for Redis)")
    elif args.workload == "drain":
        for i in range(args.n):
            app.mark_job.send(str(i))
        for _ in range(args.workers):
            procs.start(worker, env)
        drain_result(marks, args.n, procs, f"{settings}; {args.workers} worker(s)", ["redis"])
    elif args.workload == "latency":
        procs.start(worker, env)
        p50, p99 = measure_latency(marks, args.samples, app.mark_job.send)
        result(p50, "ms", f"{settings}; 1 worker", p99=p99)
    elif args.workload == "periodic":
        result(
            None, "ms", "redis",
            "Dramatiq has no periodic tasks: its cookbook schedules messages with "
            "APScheduler (a separate library); the add-ons periodiq and dramatiq-crontab "
            "take cron expressions, whose resolution is a minute",
        )  # fmt: skip
    elif args.workload == "recovery":
        for _ in range(2):
            procs.start(worker, env)
        tags = [f"r{i}" for i in range(common.RECOVERY_JOBS)]
        for t in tags:
            app.recover.send(t)
        seconds, note = common.measure_recovery(marks, procs, tags, args.cap)
        if seconds is None:
            note += (
                f"; the broker re-queues a dead worker's messages once its heartbeat is "
                f"{args.heartbeat_timeout / 1000:g} s old, at the next maintenance"
            )
        result(seconds, "s", f"{settings}; 2 workers, SIGKILL of one", note)


if __name__ == "__main__":
    main()
