"""Procrastinate 3 on PostgreSQL in the comparison.

Workers are real ``procrastinate --app systems.procrastinate_app.app worker`` processes
(run as ``python -m procrastinate`` so that ``systems`` is importable); jobs mark
themselves (``marking.mark``). Each measurement gets a fresh schema, found by
Procrastinate through the connection's ``search_path``; its tables are created by
``procrastinate schema --apply`` (https://procrastinate.readthedocs.io/en/stable/howto/
basics/command_line.html).

Reliable settings: Procrastinate's own: a job is committed by ``defer``; a worker sets
it ``doing`` and then ``succeeded``; workers heartbeat every 10 s, and the docs' recipe
for jobs of a dead worker is a periodic task that retries the jobs of workers without a
heartbeat for 30 s (howto/production/retry_stalled_jobs.html). The docs' example runs it
every 10 minutes; here it runs every 10 s, so that ``recovery`` measures the heartbeat
threshold and not the task's cadence (a careful deployment chooses a cadence; nothing
here is faster than the documented detection).

Throughput advice (howto/advanced/concurrency, "Execute multiple jobs at the same
time"): ``--concurrency`` sub-workers per process; LISTEN/NOTIFY is on by default, with
polling every ``fetch_job_polling_interval`` (5 s) only as a fallback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import common
from common import Marks, Procs, ameasure_latency, drain_result, measurement, result

BATCH = 10_000  # batch_defer_async batch, as the Tock driver's enqueue_many
APP = "systems.procrastinate_app.app"


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=10, help="sub-workers per worker")


def install_schema(url: str) -> None:
    """The documented command, on the measurement's schema (via search_path)."""
    argv = [sys.executable, "-m", "procrastinate", "--app", APP, "schema", "--apply"]
    env = {**os.environ, "BENCH_PROCRASTINATE_URL": url}
    subprocess.run(argv, cwd=common.HERE, env=env, check=True, capture_output=True)


def start_worker(procs: Procs, marks: Marks, url: str, concurrency: int, **env: str):  # type: ignore[no-untyped-def]
    # --log-level warning: the CLI logs two INFO lines per job by default (Tock logs
    # none per job).
    argv = [sys.executable, "-m", "procrastinate", "--app", APP, "--log-level", "warning",
            "worker", "--concurrency", str(concurrency)]  # fmt: skip
    return procs.start(
        argv,
        {**marks.env(), "BENCH_PROCRASTINATE_URL": url,
         "BENCH_PROCRASTINATE_CONCURRENCY": str(concurrency), **env},
    )  # fmt: skip


async def enqueue(task, tags: list[str]) -> None:  # type: ignore[no-untyped-def]
    for lo in range(0, len(tags), BATCH):
        await task.batch_defer_async(*({"tag": t} for t in tags[lo : lo + BATCH]))


async def run(args: argparse.Namespace, url: str, marks: Marks, procs: Procs) -> None:
    os.environ["BENCH_PROCRASTINATE_URL"] = url
    os.environ["BENCH_PROCRASTINATE_CONCURRENCY"] = str(args.concurrency)
    from systems import procrastinate_app

    app = procrastinate_app.app
    settings = (
        f"PostgreSQL, psycopg pool; procrastinate --log-level warning worker "
        f"--concurrency {args.concurrency} "
        "(LISTEN/NOTIFY; fetch_job_polling_interval 5 s fallback); heartbeat every 10 s; "
        f"periodic task retrying stalled jobs (cron {procrastinate_app.RETRY_STALLED_CRON!r}"
        ": every 10 s; "
        f"no heartbeat for {procrastinate_app.STALLED_AFTER:g} s)"
    )
    async with app.open_async():
        if args.workload == "enqueue":
            tags = [str(i) for i in range(args.n)]
            start = time.perf_counter()
            await enqueue(procrastinate_app.mark_job, tags)
            rate = args.n / (time.perf_counter() - start)
            result(rate, "jobs/s", f"PostgreSQL; task.batch_defer_async in batches of {BATCH:,}")
        elif args.workload == "drain":
            await enqueue(procrastinate_app.mark_job, [str(i) for i in range(args.n)])
            for _ in range(args.workers):
                start_worker(procs, marks, url, args.concurrency)
            settings = f"{settings}; {args.workers} worker(s)"
            drain_result(marks, args.n, procs, settings, ["postgres"])
        elif args.workload == "latency":
            start_worker(procs, marks, url, args.concurrency)
            task = procrastinate_app.mark_job
            p50, p99 = await ameasure_latency(
                marks, args.samples, lambda tag: task.defer_async(tag=tag)
            )
            result(p50, "ms", f"{settings}; task.defer_async", p99=p99)
        elif args.workload == "periodic":
            start_worker(procs, marks, url, args.concurrency, BENCH_PERIODIC="1")
            await asyncio.sleep(args.seconds + 2)
            procs.check()
            # The job gets the fire time the deferrer intended (``timestamp``): the
            # delay is from it to the mark.
            fires = sorted(
                (int(m.tag.split()[1]), m.at) for m in marks.read() if m.tag.startswith("tick ")
            )[1:]  # the first: warm-up
            delays = [(at - ts) * 1000 for ts, at in fires]
            p50, p99 = common.percentiles(delays)
            result(
                p50, "ms", f"{settings}; @app.periodic(cron='* * * * * *') (seconds field)",
                "delay from the job's `timestamp` (the intended fire time) to its mark; "
                "the periodic deferrer sleeps until each tick plus a fixed 0.5 s margin "
                "(procrastinate.periodic.MARGIN), so every fire is at least 0.5 s late",
                p99=p99, fires=len(fires),
            )  # fmt: skip
        elif args.workload == "recovery":
            for _ in range(2):
                start_worker(procs, marks, url, args.concurrency)
            tags = [f"r{i}" for i in range(common.RECOVERY_JOBS)]
            await enqueue(procrastinate_app.recover, tags)
            seconds, note = common.measure_recovery(marks, procs, tags, args.cap)
            if seconds is None:
                note += (
                    "; a killed worker's jobs are retried once its heartbeat is "
                    f"{procrastinate_app.STALLED_AFTER:g} s old, at the next run of the "
                    "retry task"
                )
            result(seconds, "s", f"{settings}; 2 workers, SIGKILL of one", note)


def main() -> None:
    args = common.parse_args(options)
    with common.pg_schema() as schema, measurement() as (marks, procs):
        url = common.pg_url_with_search_path(schema)
        install_schema(url)
        asyncio.run(run(args, url, marks, procs))


if __name__ == "__main__":
    main()
