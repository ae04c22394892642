"""Tock in the comparison: SQLite or PostgreSQL, at its defaults or at its documented
throughput settings (README: "Throughput settings").

Workers are real ``tock worker`` processes on ``systems.tock_app:app``; jobs mark
themselves (``marking.mark``). At its defaults a worker is started with no flags at all,
as a user starts one. Reliable settings are Tock's defaults: every job is committed
before ``enqueue`` returns (SQLite ``synchronous=FULL``; PostgreSQL commits),
at-least-once.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import common
from common import Marks, Procs, drain_result, measure_latency, measurement, result

DEFAULTS: tuple[str, ...] = ()  # `tock worker`, no flags
THROUGHPUT = ("--concurrency", "4", "--prefetch", "4000")
PG_THROUGHPUT = (*THROUGHPUT, "--claimers", "2")  # README: on PostgreSQL, two claimers
BATCH = 10_000  # enqueue_many batch, as bench_sqlite.py and bench_postgres.py


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--throughput", action="store_true")


@contextlib.contextmanager
def store_url(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-tock-") as d:
            yield f"sqlite:///{Path(d) / 'tock.db'}"
    else:
        with common.pg_schema() as schema:
            sep = "&" if "?" in common.PG_URL else "?"
            yield f"{common.PG_URL}{sep}schema={schema}"


def app_for(url: str):  # type: ignore[no-untyped-def]
    os.environ["BENCH_TOCK_URL"] = url
    from systems.tock_app import app

    app.migrate()
    return app


def start_worker(procs: Procs, marks: Marks, url: str, flags: tuple[str, ...], **env: str):  # type: ignore[no-untyped-def]
    argv = [sys.executable, "-m", "tock", "--app", "systems.tock_app:app", "worker", *flags]
    return procs.start(argv, {**marks.env(), "BENCH_TOCK_URL": url, **env})


def enqueue(app, n: int) -> None:  # type: ignore[no-untyped-def]
    task = app.tasks["bench.mark"]
    for lo in range(0, n, BATCH):
        task.enqueue_many([(str(i),) for i in range(lo, min(n, lo + BATCH))])


def main() -> None:
    args = common.parse_args(options)
    flags = DEFAULTS
    if args.throughput:
        flags = PG_THROUGHPUT if args.store == "postgres" else THROUGHPUT
    settings = f"{args.store}; tock worker {' '.join(flags) or '(no flags)'}"
    with store_url(args.store) as url, measurement() as (marks, procs):
        app = app_for(url)
        if args.workload == "enqueue":
            start = time.perf_counter()
            enqueue(app, args.n)
            rate = args.n / (time.perf_counter() - start)
            result(rate, "jobs/s", f"{args.store}; enqueue_many in batches of {BATCH:,}")
        elif args.workload == "drain":
            enqueue(app, args.n)
            for _ in range(args.workers):
                start_worker(procs, marks, url, flags)
            servers = ["postgres"] if args.store == "postgres" else []
            drain_result(marks, args.n, procs, f"{settings}; {args.workers} worker(s)", servers)
        elif args.workload == "latency":
            start_worker(procs, marks, url, flags)
            p50, p99 = measure_latency(marks, args.samples, app.tasks["bench.mark"].enqueue)
            result(p50, "ms", settings, p99=p99)
        elif args.workload == "periodic":
            start_worker(procs, marks, url, flags, BENCH_PERIODIC="1")
            time.sleep(args.seconds + 2)
            # every=1 fires at whole seconds (anchored at the epoch): a job's fire time
            # is its mark's second (the delay is far below a second).
            ticks = sorted(m.at for m in marks.read() if m.tag == "tick")[1:]  # 1st: warm-up
            delays = [(t - math.floor(t)) * 1000 for t in ticks]
            p50, p99 = common.percentiles(delays)
            result(p50, "ms", f"{settings}; @app.periodic(every=1 s)", p99=p99, fires=len(ticks))
        elif args.workload == "recovery":
            for _ in range(2):
                start_worker(procs, marks, url, flags)
            tags = [f"r{i}" for i in range(common.RECOVERY_JOBS)]
            app.tasks["bench.recover"].enqueue_many([(t,) for t in tags])
            seconds, note = common.measure_recovery(marks, procs, tags, args.cap)
            result(seconds, "s", f"{settings}; 2 workers, SIGKILL of one", note)
        app.close()


if __name__ == "__main__":
    main()
