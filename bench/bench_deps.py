"""Jobs that wait on jobs: what a dependency costs, on SQLite and PostgreSQL.

    python bench/bench_deps.py                 # 10,000 jobs a shape, 3 runs, both stores
    python bench/bench_deps.py --quick         # 1,000 jobs, 1 run (CI runs this)
    python bench/bench_deps.py --store sqlite --jobs 20000

Each run enqueues one batch of no-op jobs (one transaction, dependencies by position in
the batch) and drains it with one worker in this process (``--burst``, default settings:
concurrency 10, prefetch 10). The shapes, each of ``--jobs`` jobs:

- plain: no dependency (the reference);
- dag: groups of 100: one root, 98 jobs waiting on it (fan-out), one job waiting on the
  98 (fan-in): 1.96 edges a job;
- dag/2: the same shape with half the jobs, to show that the cost grows with the edges;
- chains: chains of 100 steps, each waiting on the one before (0.99 edges a job; at
  most one step of each chain is ready at a time).

Printed per shape: the enqueue and the drain (jobs/s), and for dag and chains the extra
time over plain per edge (enqueue and drain together): flat between dag/2 and dag when
the work is proportional to the edges. Medians of ``--runs``, every shape of a run side
by side. The PostgreSQL server comes from --pg-url, else $TOCK_TEST_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/test (a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from noop_app import make_app  # noqa: E402

from tock import JobStatus  # noqa: E402
from tock.jobs import NewJob  # noqa: E402
from tock.worker.worker import Worker, WorkerConfig  # noqa: E402

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
GROUP = 100


def plain(n: int) -> list[NewJob]:
    return [NewJob("bench.noop", f"[{i}]", "{}") for i in range(n)]


def dag(n: int) -> list[NewJob]:
    """Groups of GROUP: a root, GROUP - 2 waiting on it, one waiting on those."""
    jobs: list[NewJob] = []
    for start in range(0, n, GROUP):
        size = min(GROUP, n - start)
        jobs.append(NewJob("bench.noop", f"[{start}]", "{}"))
        middle = list(range(start + 1, start + size - 1))
        jobs += [NewJob("bench.noop", f"[{i}]", "{}", after=(start,)) for i in middle]
        if size > 1:
            jobs.append(
                NewJob("bench.noop", f"[{start + size - 1}]", "{}", after=tuple(middle) or (start,))
            )
    return jobs


def chains(n: int) -> list[NewJob]:
    """Chains of GROUP steps, each waiting on the step before."""
    return [
        NewJob("bench.noop", f"[{i}]", "{}", after=() if i % GROUP == 0 else (i - 1,))
        for i in range(n)
    ]


SHAPES: dict[str, Callable[[int], list[NewJob]]] = {
    "plain": plain,
    "dag/2": lambda n: dag(n // 2),
    "dag": dag,
    "chains": chains,
}


def edges(jobs: list[NewJob]) -> int:
    return sum(len(j.after) for j in jobs)


def one_run(url: str, jobs: list[NewJob]) -> tuple[float, float]:
    """Enqueue ``jobs`` in one batch and drain them: (enqueue seconds, drain seconds)."""
    app = make_app(url)
    try:
        app.migrate()
        started = time.perf_counter()
        app.store.job_enqueue_many(jobs, now=None)
        enqueued = time.perf_counter()
        Worker(app, WorkerConfig(burst=True, duties=False)).run(install_signal_handlers=False)
        drained = time.perf_counter()
        live = app.store.job_list(statuses=[JobStatus.BLOCKED, JobStatus.PENDING], limit=1)
        if live:
            raise RuntimeError(f"the drain left job {live[0].id} {live[0].status}")
        return enqueued - started, drained - enqueued
    finally:
        app.close()


def run_store(
    name: str, make_url: Callable[[], tuple[str, Callable[[], None]]], n: int, runs: int
) -> None:
    shapes = {label: make(n) for label, make in SHAPES.items()}
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in shapes}
    for _ in range(runs):
        for label, jobs in shapes.items():  # side by side in each run
            url, drop = make_url()
            try:
                times[label].append(one_run(url, jobs))
            finally:
                drop()
    med = {
        label: (
            statistics.median(e for e, _ in t),
            statistics.median(d for _, d in t),
            statistics.median(e + d for e, d in t),
        )
        for label, t in times.items()
    }
    base_total = med["plain"][2] / n  # seconds a job, plain
    print(f"\n{name}: {n:,} jobs a shape, medians of {runs} run(s)")
    print(f"{'shape':8} {'jobs':>7} {'edges':>7} {'enqueue/s':>11} {'drain/s':>10} {'µs/edge':>9}")
    for label, jobs in shapes.items():
        enq, drain, total = med[label]
        e = edges(jobs)
        per_edge = (total - base_total * len(jobs)) / e * 1e6 if e else float("nan")
        cost = f"{per_edge:9.1f}" if e else f"{'-':>9}"
        rates = f"{len(jobs) / enq:11,.0f} {len(jobs) / drain:10,.0f}"
        print(f"{label:8} {len(jobs):7,} {e:7,} {rates} {cost}")


def sqlite_url() -> tuple[str, Callable[[], None]]:
    d = tempfile.TemporaryDirectory()
    return f"sqlite:///{Path(d.name) / 'tock.db'}", d.cleanup


def pg_url(base: str) -> Callable[[], tuple[str, Callable[[], None]]]:
    def make() -> tuple[str, Callable[[], None]]:
        import psycopg

        schema = f"bench_{secrets.token_hex(4)}"
        url = f"{base}{'&' if '?' in base else '?'}schema={schema}"

        def drop() -> None:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

        return url, drop

    return make


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("TOCK_TEST_POSTGRES_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--quick", action="store_true", help="1,000 jobs a shape, 1 run")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.runs = 1_000, 1
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    if args.store in ("sqlite", "both"):
        run_store("SQLite", sqlite_url, args.jobs, args.runs)
    if args.store in ("postgres", "both"):
        run_store("PostgreSQL", pg_url(args.pg_url), args.jobs, args.runs)


if __name__ == "__main__":
    main()
