"""Celery in the comparison, on a Redis or a RabbitMQ broker (``--broker``).

Workers are real ``celery worker`` processes (prefork pool) on ``systems.celery_app``;
periodic jobs come from a real ``celery beat`` process. No result backend: the jobs are
no-ops (``task_ignore_result``).

Reliable settings (Celery docs; see ``celery_app.py``): ``task_acks_late=True`` and
``task_reject_on_worker_lost=True``, so a message is acknowledged only after its task ran
and is redelivered if the worker dies:

- RabbitMQ redelivers a consumer's unacknowledged messages as soon as its connection
  closes (a SIGKILLed worker's socket closes at once);
- Redis has no such signal: kombu redelivers an unacknowledged message once it is older
  than the transport's ``visibility_timeout``, by default 1 hour
  (https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html
  #visibility-timeout). We keep that default: the docs only ever advise raising it
  (to the longest ETA / task run time, else tasks run twice), never lowering it.

Throughput advice (docs "Optimizing",
https://docs.celeryq.dev/en/stable/userguide/optimizing.html): the prefork pool with
concurrency = cores, ``-O fair`` (the default scheduling since 4.0; given explicitly),
and a prefetch multiplier by task length: large ("Say 64, or 128") for many short tasks
(drain, latency, periodic: no-op jobs), 1 for long ones ("Reserve one task at a time",
with acks_late: recovery, whose jobs sleep).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import common
from common import Marks, Procs, drain_result, measure_latency, measurement, result

CORES = os.cpu_count() or 1
SHORT_PREFETCH = 128  # "Optimizing" / Prefetch Limits: many short tasks -> "64, or 128"
LONG_PREFETCH = 1  # "Reserve one task at a time" (with task_acks_late)
QUEUE = "celery"  # Celery's default queue


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), required=True)
    parser.add_argument(
        "--enqueue-path",
        choices=("send_task", "apply_async", "group"),
        default="send_task",
        help="enqueue: how to publish many messages (all reuse one pooled producer)",
    )


def broker_url(kind: str) -> str:
    return common.REDIS_URL if kind == "redis" else common.AMQP_URL


def purge(kind: str) -> None:
    """Empty Celery's queue, and on Redis also kombu's unacked bookkeeping (so nothing
    left by an earlier run is restored into ours). Only Celery's own keys: db 9 is shared
    with the other Redis systems' drivers."""
    if kind == "rabbitmq":
        common.rabbitmq_purge([QUEUE])
        return
    import redis

    r = redis.Redis.from_url(common.REDIS_URL)
    keys = [*r.scan_iter(f"{QUEUE}*"), b"unacked", b"unacked_index", b"unacked_mutex"]
    r.delete(*keys)


def worker_flags(concurrency: int) -> list[str]:
    return ["-P", "prefork", "-c", str(concurrency), "-O", "fair"]


def start_worker(
    procs: Procs, marks: Marks, kind: str, name: str, concurrency: int, prefetch: int, **env: str
):  # type: ignore[no-untyped-def]
    argv = [sys.executable, "-m", "celery", "-A", "systems.celery_app", "worker",
            "-l", "warning", "-n", f"{name}@%h", *worker_flags(concurrency)]  # fmt: skip
    env = {"BENCH_CELERY_BROKER": broker_url(kind), "BENCH_CELERY_PREFETCH": str(prefetch),
           **marks.env(), **env}  # fmt: skip
    return procs.start(argv, env)


def describe(kind: str, concurrency: int, prefetch: int) -> str:
    broker = "Redis (visibility_timeout=3600 s, default)" if kind == "redis" else "RabbitMQ"
    return (f"{broker}; task_acks_late=True, task_reject_on_worker_lost=True, "
            f"worker_prefetch_multiplier={prefetch}, ignore_result; celery worker "
            f"{' '.join(worker_flags(concurrency))}")  # fmt: skip


def enqueue(app, n: int, path: str) -> None:  # type: ignore[no-untyped-def]
    """Celery has no bulk insert: one message per job, through one producer from the
    pool (Calling guide, "Connections"), by the fastest documented call we measured
    (``send_task``, which ``apply_async`` wraps) unless ``--enqueue-path`` says otherwise."""
    from celery import group

    task = app.tasks["bench.mark"]
    if path == "group":
        group(task.s(str(i)) for i in range(n)).apply_async()
        return
    with app.producer_or_acquire() as producer:
        if path == "send_task":
            for i in range(n):
                app.send_task("bench.mark", (str(i),), producer=producer)
        else:
            for i in range(n):
                task.apply_async((str(i),), producer=producer)


def warm_up(app, marks: Marks, procs: Procs) -> None:  # type: ignore[no-untyped-def]
    app.tasks["bench.mark"].delay(common.WARMUP)
    deadline = time.monotonic() + 60
    while marks.wait_tag(common.WARMUP, 0.5) is None:
        procs.check()
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not start")


def periodic(kind: str, marks: Marks, procs: Procs, seconds: float) -> dict[str, float]:
    """Beat every 1 s plus one worker; returns p50/p99 of the delay and its parts.

    Celery's interval schedule is relative: each fire is due ``run_every`` after the
    previous fire was sent (beat's ``last_run_at``), not on a clock grid, and beat does
    not tell the task when it was due. So the beat process stamps each message with the
    time it publishes it (``before_task_publish``), and fire k is taken as due at
    send(k-1) + 1 s: delay = mark(k) - (send(k-1) + 1 s) = beat's lateness + transit."""
    env = {"BENCH_CELERY_BROKER": broker_url(kind), "BENCH_PERIODIC": "1", **marks.env()}
    with tempfile.TemporaryDirectory(prefix="bench-celerybeat-") as d:
        argv = [sys.executable, "-m", "celery", "-A", "systems.celery_app", "beat",
                "-l", "warning", "-s", str(Path(d) / "schedule"),
                "--pidfile", str(Path(d) / "beat.pid")]  # fmt: skip
        procs.start(argv, env)
        deadline = time.monotonic() + seconds + 1.5
        while time.monotonic() < deadline:
            procs.check()
            time.sleep(0.1)
    fires = sorted(
        (float(m.tag.split()[1]), m.at) for m in marks.read() if m.tag.startswith("tick ")
    )
    delays, lateness, transit = [], [], []
    for (prev_sent, _), (sent, at) in itertools.pairwise(fires):
        due = prev_sent + 1.0
        delays.append((at - due) * 1000)
        lateness.append((sent - due) * 1000)
        transit.append((at - sent) * 1000)
    p50, p99 = common.percentiles(delays)
    drift = (fires[-1][0] - fires[0][0]) - (len(fires) - 1) if len(fires) > 1 else 0.0
    return {
        "p50": p50,
        "p99": p99,
        "fires": len(delays),
        "beat_late_p50": common.percentiles(lateness)[0],
        "transit_p50": common.percentiles(transit)[0],
        "drift_s": drift,
    }


def main() -> None:
    args = common.parse_args(options)
    kind = args.broker
    os.environ["BENCH_CELERY_BROKER"] = broker_url(kind)
    from systems.celery_app import app

    purge(kind)
    try:
        with measurement() as (marks, procs):
            run(args, app, marks, procs)
    finally:
        purge(kind)  # e.g. recovery's hung jobs, requeued when their workers stop


def run(args: argparse.Namespace, app, marks: Marks, procs: Procs) -> None:  # type: ignore[no-untyped-def]
    kind = args.broker
    short = describe(kind, CORES, SHORT_PREFETCH)
    if args.workload == "enqueue":
        start = time.perf_counter()
        enqueue(app, args.n, args.enqueue_path)
        rate = args.n / (time.perf_counter() - start)
        how = {"send_task": "app.send_task", "apply_async": "task.apply_async",
               "group": "group(...).apply_async()"}[args.enqueue_path]  # fmt: skip
        result(rate, "jobs/s", f"{kind}; {how} per job, one pooled producer reused",
               "Celery has no bulk enqueue: one message per job")  # fmt: skip
    elif args.workload == "drain":
        enqueue(app, args.n, args.enqueue_path)
        for i in range(args.workers):
            start_worker(procs, marks, kind, f"bench{i}", CORES, SHORT_PREFETCH)
        drain_result(marks, args.n, procs, f"{short}; {args.workers} worker(s)", [kind])
    elif args.workload == "latency":
        start_worker(procs, marks, kind, "bench0", CORES, SHORT_PREFETCH)
        warm_up(app, marks, procs)
        p50, p99 = measure_latency(marks, args.samples, app.tasks["bench.mark"].delay)
        result(p50, "ms", f"{short}; task.delay per job", p99=p99)
    elif args.workload == "periodic":
        start_worker(procs, marks, kind, "bench0", CORES, SHORT_PREFETCH)
        warm_up(app, marks, procs)  # beat starts once the worker consumes
        stats = periodic(kind, marks, procs, args.seconds)
        p50, p99 = stats.pop("p50"), stats.pop("p99")
        note = ("beat does not pass a fire's due time: due = previous fire's publish time "
                "(stamped in a header by the beat process) + 1 s, as Celery's interval "
                "schedule counts from the last run; delay = beat lateness + transit to the "
                "worker's mark (first fire skipped: it has no previous)")  # fmt: skip
        result(p50, "ms", f"{short}; celery beat, schedule=1.0 s", note, p99=p99, **stats)
    elif args.workload == "recovery":
        # Concurrency = the recovery jobs, so the survivor has free processes for the
        # redelivered ones (its own are hung): we time redelivery, not a full worker.
        conc = common.RECOVERY_JOBS
        for i in range(2):
            start_worker(procs, marks, kind, f"bench{i}", conc, LONG_PREFETCH)
        tags = [f"r{i}" for i in range(common.RECOVERY_JOBS)]
        task = app.tasks["bench.recover"]
        for t in tags:
            task.delay(t)
        seconds, note = common.measure_recovery(marks, procs, tags, args.cap)
        if seconds is None and kind == "redis":
            note += ("; Redis redelivers unacknowledged messages only once older than "
                     "visibility_timeout (3600 s default), found by a periodic scan")  # fmt: skip
        settings = describe(kind, conc, LONG_PREFETCH)
        result(seconds, "s", f"{settings}; 2 workers, SIGKILL of one", note)


if __name__ == "__main__":
    main()
