"""Huey in the comparison, on Redis (``RedisHuey``, db 9) or SQLite (``SqliteHuey``, a
file in a temporary directory).

Workers are real ``huey_consumer systems.huey_app.huey`` processes (run from
``bench/compare``); jobs mark themselves (``marking.mark``). Each measurement uses a
fresh Huey namespace (``name``), removed afterwards, so nothing else in db 9 is touched.

Settings, from Huey's docs (https://huey.readthedocs.io/en/latest/):

- consumer.html#options-for-the-consumer and deployment.html#production-checklist:
  ``-g TERM`` with ``-t 5`` (graceful stop on SIGTERM, 5 s under the 10 s our process
  supervisor waits), ``-q`` (errors only, as the docs' example with a logfile), a
  ``SIGNAL_INTERRUPTED`` handler that re-enqueues interrupted tasks, ``-n`` on all
  consumers but one;
- worker-types: ``-k process`` -- the docs' advice for CPU-bound work, which a no-op
  job is (all its cost is Huey's own Python), and the only type whose W workers are W
  processes (threads share one GIL);
- SQLite is a polling backend: ``-d 0.01`` (default 0.1) so an idle worker sees a new
  job within ~10 ms; the default backoff 1.15 and max delay 10 s are kept. Redis dequeues
  with a blocking BRPOP (read timeout 1 s), where the polling flags do not apply.

Huey does not acknowledge tasks: one dequeued by a consumer that dies is lost
(consumer.html#consumer-shutdown, deployment.html), so ``recovery`` reports "never".
Periodic tasks are checked once a minute (guide.html#periodic-tasks), so ``periodic``
(every second) reports None.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen
from types import ModuleType

import common
import huey as huey_lib  # the library (absolute import: this module is systems.huey)
from common import Marks, Procs, drain_result, measure_latency, measurement, result

assert hasattr(huey_lib, "RedisHuey"), f"{huey_lib.__file__} is not the huey library"

CONSUMER = str(Path(sys.executable).with_name("huey_consumer"))
SQLITE_POLL = ("-d", "0.01", "-b", "1.15", "-m", "10")  # Huey's defaults: 0.1, 1.15, 10
RECOVERY_WORKERS = 2  # per consumer: 2 consumers x 2 take the 4 jobs (no prefetch)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", choices=("redis", "sqlite"), required=True)
    parser.add_argument("--worker-type", choices=("thread", "process"), default="process")


@contextlib.contextmanager
def huey_env(storage: str) -> Iterator[dict[str, str]]:
    """The environment of ``systems.huey_app`` for one measurement: a fresh namespace,
    and for SQLite a fresh database file; both gone afterwards."""
    name = f"bench_{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="bench-huey-") as d:
        env = {"BENCH_HUEY_STORAGE": storage, "BENCH_HUEY_NAME": name}
        if storage == "sqlite":
            env["BENCH_HUEY_SQLITE"] = str(Path(d) / "huey.db")
        yield env
        if storage == "redis":
            import redis

            conn = redis.Redis.from_url(common.REDIS_URL)
            keys = list(conn.scan_iter(f"huey.*{name}*"))  # queue, schedule, results...
            if keys:
                conn.delete(*keys)


def app_for(env: dict[str, str]) -> ModuleType:
    os.environ.update(env)
    from systems import huey_app

    return huey_app


def consumer_flags(args: argparse.Namespace, workers: int) -> list[str]:
    flags = ["-w", str(workers), "-k", args.worker_type, "-g", "TERM", "-t", "5", "-q"]
    return flags + list(SQLITE_POLL) if args.storage == "sqlite" else flags


def start_consumer(
    procs: Procs, marks: Marks, env: dict[str, str], flags: list[str], *extra: str, **more: str
) -> Popen[bytes]:
    argv = [CONSUMER, "systems.huey_app.huey", *flags, *extra]
    # cwd bench/compare (Procs' default) puts ``systems`` and ``common`` on the path.
    return procs.start(argv, {**marks.env(), **env, "PYTHONPATH": str(common.HERE), **more})


def describe(args: argparse.Namespace, flags: list[str] | None) -> str:
    if args.storage == "sqlite":
        store = "SqliteHuey (WAL, fsync=True: synchronous=FULL)"
    else:
        store = "RedisHuey (LPUSH/BRPOP list, db 9)"
    if flags is None:  # no consumer
        return f"huey {huey_lib.__version__}; {store}"
    return (
        f"huey {huey_lib.__version__}; {store}; huey_consumer {' '.join(flags)}; "
        "SIGNAL_INTERRUPTED re-enqueue handler; no acks (none exist)"
    )


def main() -> None:
    args = common.parse_args(options)
    with huey_env(args.storage) as env, measurement() as (marks, procs):
        app = app_for(env)
        flags = consumer_flags(args, args.workers)
        settings = describe(args, flags)
        if args.workload == "enqueue":
            params = [(str(i),) for i in range(args.n)]
            start = time.perf_counter()
            # TaskWrapper.map: Huey's API for many calls (api.html#TaskWrapper.map), a
            # loop of enqueues; Huey has no bulk or pipelined enqueue.
            app.mark_job.map(params)
            rate = args.n / (time.perf_counter() - start)
            assert app.huey.pending_count() == args.n
            result(rate, "jobs/s", f"{describe(args, None)}; TaskWrapper.map (one enqueue each)")
        elif args.workload == "drain":
            app.mark_job.map([(str(i),) for i in range(args.n)])
            start_consumer(procs, marks, env, flags)
            servers = ["redis"] if args.storage == "redis" else []
            drain_result(marks, args.n, procs, f"{settings}; 1 consumer", servers)
        elif args.workload == "latency":
            flags = consumer_flags(args, 1)
            start_consumer(procs, marks, env, flags)
            p50, p99 = measure_latency(marks, args.samples, app.mark_job, "consumer")
            result(p50, "ms", describe(args, flags), p99=p99)
        elif args.workload == "periodic":
            # Not measurable: run the finest schedule there is (crontab(): every
            # minute) for the same time as the others, to show how often it fires.
            flags = consumer_flags(args, 1)
            start_consumer(procs, marks, env, flags, BENCH_PERIODIC="1")
            time.sleep(args.seconds + 2)
            procs.check()
            fires = sum(1 for m in marks.read() if m.tag == "tick")
            note = (
                "Huey's periodic tasks have minute resolution: crontab() has no seconds "
                "field and the consumer's scheduler checks periodic tasks once a minute "
                "(guide.html#periodic-tasks; Scheduler.periodic_task_seconds = 60 in "
                f"huey {huey_lib.__version__}), so an every-second schedule is not "
                f"possible. @periodic_task(crontab()) fired {fires} time(s) in "
                f"{args.seconds + 2:g} s (once at consumer start)."
            )
            result(None, "ms", f"{describe(args, flags)}; @periodic_task(crontab())", note)
        elif args.workload == "recovery":
            flags = consumer_flags(args, RECOVERY_WORKERS)
            start_consumer(procs, marks, env, flags)
            start_consumer(procs, marks, env, flags, "-n")  # one periodic enqueuer
            tags = [f"r{i}" for i in range(common.RECOVERY_JOBS)]
            app.recover.map([(t,) for t in tags])
            seconds, note = common.measure_recovery(marks, procs, tags, args.cap)
            if seconds is None and note.startswith(">"):
                note = (
                    f"never ({note}): Huey does not acknowledge tasks; a task dequeued by "
                    "a consumer that is SIGKILLed is lost and never re-run "
                    "(consumer.html#consumer-shutdown; deployment.html: 'A task "
                    "interrupted by SIGKILL (or a power loss) is lost'). The "
                    "SIGNAL_INTERRUPTED handler only runs on a shutdown the consumer "
                    "sees; no storage (Redis, SQLite) has a visibility timeout."
                )
            settings = f"{describe(args, flags)}; 2 consumers (2nd with -n), SIGKILL of one"
            result(seconds, "s", settings, note)


if __name__ == "__main__":
    main()
