"""PgQueuer on PostgreSQL in the comparison.

Workers are ``pgq run systems.pgqueuer_app:main`` processes, started through
``pgqueuer.run`` (see ``pgqueuer_app.py`` for why not the CLI itself), on asyncpg
(PgQueuer's first choice of driver; ``pip install pgqueuer[asyncpg]``); jobs mark themselves
(``marking.mark``). Each measurement gets a fresh schema, found by PgQueuer through the
connection's ``search_path``; its tables are created by ``pgq install`` and tuned by
``pgq autovac`` (docs/guides/performance-tuning.md, "Quick-Reference Checklist").

Reliable settings: PgQueuer's own: ``durable`` tables (the default: logged, no loss on
a crash), at-least-once; a picked job whose heartbeat is older than
``--heartbeat-timeout`` (default 30 s; heartbeats at half of it) is picked again by
another worker (``pgq run --help``; ``QueueManager.run`` docstring). Older docs name the
per-entrypoint ``retry_timer`` for this; 1.6.0 has no ``retry_timer`` any more: the
heartbeat timeout is on by default and is the one setting.

Throughput advice (docs/guides/performance-tuning.md): "Increase ``batch_size`` when
jobs are short-lived (< 1 s)": ``--batch-size 100`` (default 10); LISTEN/NOTIFY for
pickup, polling after ``dequeue_timeout`` only as a fallback.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import asyncpg
import common
from common import Marks, Procs, ameasure_latency, drain_result, measurement, result
from pgqueuer import Queries
from pgqueuer.db import AsyncpgDriver

BATCH = 10_000  # jobs per enqueue call, as the Tock driver's enqueue_many


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=100, help="jobs per dequeue")
    parser.add_argument(
        "--heartbeat-timeout", type=float, default=30.0, help="re-pick a job after (s)"
    )


def pgq(url: str, *argv: str) -> None:
    """A ``pgq`` command on the measurement's schema (via the URL's search_path)."""
    cmd = [sys.executable, "-m", "pgqueuer", "--pg-dsn", url, *argv]
    subprocess.run(cmd, cwd=common.HERE, check=True, capture_output=True)


def worker_flags(args: argparse.Namespace) -> list[str]:
    return ["--batch-size", str(args.batch_size),
            "--heartbeat-timeout", str(args.heartbeat_timeout)]  # fmt: skip


def start_worker(procs: Procs, marks: Marks, url: str, args: argparse.Namespace, **env: str):  # type: ignore[no-untyped-def]
    argv = [sys.executable, "-m", "systems.pgqueuer_app", *worker_flags(args)]
    return procs.start(argv, {**marks.env(), "BENCH_PGQUEUER_URL": url, **env})


async def enqueue(queries: Queries, entrypoint: str, tags: list[str]) -> None:
    # The documented bulk path: one ``enqueue`` call with lists.
    for lo in range(0, len(tags), BATCH):
        chunk = tags[lo : lo + BATCH]
        await queries.enqueue([entrypoint] * len(chunk), [t.encode() for t in chunk],
                              [0] * len(chunk))  # fmt: skip


async def run(args: argparse.Namespace, url: str, marks: Marks, procs: Procs) -> None:
    connection = await asyncpg.connect(url)
    queries = Queries(AsyncpgDriver(connection))
    settings = (
        f"PostgreSQL (durable tables, pgq autovac), asyncpg; pgqueuer.run (= pgq run) "
        f"{' '.join(worker_flags(args))}"
        " (LISTEN/NOTIFY; dequeue_timeout 30 s fallback)"
    )
    if args.workload == "enqueue":
        tags = [str(i) for i in range(args.n)]
        start = time.perf_counter()
        await enqueue(queries, "bench.mark", tags)
        rate = args.n / (time.perf_counter() - start)
        result(rate, "jobs/s", f"PostgreSQL, asyncpg; Queries.enqueue(lists) of {BATCH:,}")
    elif args.workload == "drain":
        await enqueue(queries, "bench.mark", [str(i) for i in range(args.n)])
        for _ in range(args.workers):
            start_worker(procs, marks, url, args)
        drain_result(marks, args.n, procs, f"{settings}; {args.workers} worker(s)", ["postgres"])
    elif args.workload == "latency":
        start_worker(procs, marks, url, args)
        p50, p99 = await ameasure_latency(
            marks, args.samples, lambda tag: queries.enqueue("bench.mark", tag.encode())
        )
        result(p50, "ms", f"{settings}; Queries.enqueue", p99=p99)
    elif args.workload == "periodic":
        start_worker(procs, marks, url, args, BENCH_PERIODIC="1")
        await asyncio.sleep(args.seconds + 2)
        procs.check()
        ticks = sorted((m.at, m.tag.split()[1]) for m in marks.read() if m.tag.startswith("tick "))
        # Fires whose intended time is known (not the first), the first of them warm-up.
        fires = [(at, float(ts)) for at, ts in ticks if ts != "-"][1:]
        delays = [(at - ts) * 1000 for at, ts in fires]
        p50, p99 = common.percentiles(delays)
        result(
            p50, "ms", f"{settings}; @pgq.schedule('bench.tick', '* * * * * *') (seconds field)",
            "delay from each fire's intended time (the next_run the previous fire wrote, "
            "which the scheduler waits for) to the schedule function's mark; the scheduler "
            "runs the function itself (no queued job). The docs show 5-field (minute) cron "
            "only; croniter accepts a 6th (seconds) field, but the scheduler sleeps until "
            "the next fire plus 1 s leeway, so an every-second schedule fires about every "
            f"2 s: {len(ticks)} fires in {args.seconds + 2:g} s",
            p99=p99, fires=len(fires),
        )  # fmt: skip
    elif args.workload == "recovery":
        for _ in range(2):
            start_worker(procs, marks, url, args)
        tags = [f"r{i}" for i in range(common.RECOVERY_JOBS)]
        await enqueue(queries, "bench.recover", tags)
        seconds, note = common.measure_recovery(marks, procs, tags, args.cap)
        if seconds is None:
            note += (
                f"; a killed worker's jobs are picked again once their heartbeat is "
                f"{args.heartbeat_timeout:g} s old"
            )
        result(seconds, "s", f"{settings}; 2 workers, SIGKILL of one", note)
    await connection.close()


def main() -> None:
    args = common.parse_args(options)
    with common.pg_schema() as schema, measurement() as (marks, procs):
        url = common.pg_url_with_search_path(schema)
        pgq(url, "install")
        pgq(url, "autovac")
        asyncio.run(run(args, url, marks, procs))


if __name__ == "__main__":
    main()
