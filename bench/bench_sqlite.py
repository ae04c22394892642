"""Tock on SQLite: bulk enqueue and end-to-end throughput, beside a raw-SQL reference loop.

    python bench/bench_sqlite.py              # default sizes, 3 runs per figure
    python bench/bench_sqlite.py --quick      # a smoke size (CI runs this)
    python bench/bench_sqlite.py --runs 5 --jobs 50000

Figures (medians over --runs, every system measured in this same run):
- bulk enqueue: jobs/s through ``task.enqueue_many`` (argument checks included);
- end to end: N pre-enqueued no-op jobs drained by 1 and 2 worker processes, from the
  first worker's registration (just before its first claim) to the last job's end (both
  read from the store's own times),
  at Tock's defaults and at its documented throughput settings;
- reference: one process, no framework: claim a batch with one UPDATE ... RETURNING,
  complete it with one statement, same PRAGMAs (WAL, synchronous=FULL), same batch size.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from precompile import compile_tock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

DEFAULTS: dict[str, int] = {}  # `tock worker` with no flags
THROUGHPUT = {"concurrency": 4, "prefetch": 4000}  # documented in README: "Throughput"


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def bench_enqueue(n: int, batch: int) -> float:
    from noop_app import make_app

    with tempfile.TemporaryDirectory() as d:
        app = make_app(_url(Path(d) / "tock.db"))
        noop = app.tasks["bench.noop"]
        app.migrate()
        start = time.perf_counter()
        for i in range(0, n, batch):
            noop.enqueue_many([(j,) for j in range(i, min(n, i + batch))])
        elapsed = time.perf_counter() - start
        app.close()
    return n / elapsed


def flag_args(settings: dict[str, int]) -> list[str]:
    """The worker's command-line flags for these settings."""
    return [arg for name, value in settings.items() for arg in (f"--{name}", str(value))]


def bench_drain(n: int, workers: int, settings: dict[str, int]) -> float:
    from noop_app import make_app

    with tempfile.TemporaryDirectory() as d:
        url = _url(Path(d) / "tock.db")
        app = make_app(url)
        noop = app.tasks["bench.noop"]
        for i in range(0, n, 10_000):
            noop.enqueue_many([(j,) for j in range(i, min(n, i + 10_000))])
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        cmd = [
            sys.executable,
            "-m",
            "tock",
            "--app",
            "noop_app:app_from_env",
            "worker",
            "--burst",
            "--log-level",
            "WARNING",
            *flag_args(settings),
        ]
        env["BENCH_TOCK_URL"] = url
        conn = sqlite3.connect(Path(d) / "tock.db")
        procs = [subprocess.Popen(cmd, env=env, cwd=HERE) for _ in range(workers)]
        first = first_registration(conn, procs)
        for p in procs:
            if p.wait(timeout=600) != 0:
                raise RuntimeError(f"worker exited with {p.returncode}")
        last, done = conn.execute(
            "SELECT max(finished_at), count(*) FROM tock_jobs_finished"
        ).fetchone()
        conn.close()
        app.close()
        if done != n:
            raise RuntimeError(f"only {done} of {n} jobs finished")
        return n / ((last - first) / 1e6)


def first_registration(conn: sqlite3.Connection, procs: list[subprocess.Popen[bytes]]) -> int:
    """The earliest ``started_at`` of the workers' rows (µs), watched while they run: a
    worker registers just before its first claim and removes its row when it stops. (A
    job's ``started_at`` is its real start, after the claim that brought it.)"""
    first = None
    while True:
        (seen,) = conn.execute("SELECT min(started_at) FROM tock_workers").fetchone()
        if seen is not None:
            first = seen if first is None else min(first, seen)
        if all(p.poll() is not None for p in procs):
            break
        time.sleep(0.002)
    if first is None:
        raise RuntimeError("no worker was seen registered")
    return int(first)


def bench_latency(samples: int) -> tuple[float, float]:
    """Enqueue-to-start on an idle worker, one job at a time: (p50, p99) in ms."""
    from noop_app import make_app

    with tempfile.TemporaryDirectory() as d:
        url = _url(Path(d) / "tock.db")
        app = make_app(url)
        noop = app.tasks["bench.noop"]
        app.migrate()
        env = {**os.environ, "PYTHONPATH": str(HERE), "BENCH_TOCK_URL": url}
        cmd = [sys.executable, "-m", "tock", "--app", "noop_app:app_from_env", "worker"]
        proc = subprocess.Popen([*cmd, "--log-level", "WARNING"], env=env, cwd=HERE)
        try:
            noop.enqueue(-1).result(timeout=30)  # the worker is up and idle
            waits = []
            for i in range(samples):
                time.sleep(0.05)  # idle again before each job
                job = noop.enqueue(i)
                job.result(timeout=30)
                record = job.record
                assert record.started_at is not None
                waits.append((record.started_at - record.created_at).total_seconds() * 1000)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        app.close()
    waits.sort()
    return statistics.median(waits), waits[min(len(waits) - 1, int(len(waits) * 0.99))]


def bench_reference(n: int, batch: int) -> float:
    """The floor any framework on SQLite pays: two transactions a batch, nothing else."""

    def run(job_args: str) -> None:
        return None

    with tempfile.TemporaryDirectory() as d:
        conn = sqlite3.connect(Path(d) / "ref.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, "
            "priority INTEGER NOT NULL, run_at INTEGER NOT NULL, status TEXT NOT NULL, "
            "args TEXT NOT NULL)"
        )
        conn.execute(
            "CREATE INDEX jobs_claim ON jobs (queue, priority DESC, run_at, id) "
            "WHERE status = 'pending'"
        )
        conn.executemany(
            "INSERT INTO jobs (queue, priority, run_at, status, args) "
            "VALUES ('default', 0, 0, 'pending', ?)",
            [(f"[{i}]",) for i in range(n)],
        )
        start = time.perf_counter()
        while True:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "UPDATE jobs SET status = 'running' WHERE id IN (SELECT id FROM jobs "
                "WHERE status = 'pending' AND queue = 'default' AND run_at <= 1 "
                "ORDER BY priority DESC, run_at, id LIMIT ?) RETURNING id, args",
                (batch,),
            ).fetchall()
            conn.execute("COMMIT")
            if not rows:
                break
            for _, args in rows:
                run(args)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE jobs SET status = 'done' WHERE id IN (SELECT value FROM json_each(?))",
                ("[" + ",".join(str(r[0]) for r in rows) + "]",),
            )
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
    return n / elapsed


def median(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(fn() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain run")
    parser.add_argument("--enqueue-jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke size: 2,000 jobs, 1 run")
    args = parser.parse_args()
    compile_tock(HERE / "noop_app.py")  # as an installed Tock: see precompile.py
    if args.quick:
        args.jobs, args.enqueue_jobs, args.runs = 2_000, 10_000, 1

    print(
        f"Tock on SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores; medians of {args.runs} run(s)"
    )
    enq = median(lambda: bench_enqueue(args.enqueue_jobs, 10_000), args.runs)
    print(f"bulk enqueue (enqueue_many, batches of 10,000): {enq:,.0f} jobs/s  [target >= 100,000]")
    p50, p99 = bench_latency(20 if args.quick else 200)
    print(f"enqueue-to-start on an idle worker (defaults): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    batch = THROUGHPUT["concurrency"] + THROUGHPUT["prefetch"]
    ref = median(lambda: bench_reference(args.jobs, batch), args.runs)
    print(f"raw-SQL reference loop (batch {batch}): {ref:,.0f} jobs/s")
    for label, settings in (("defaults", DEFAULTS), ("throughput settings", THROUGHPUT)):
        for workers in (1, 2):
            rate = median(lambda w=workers, s=settings: bench_drain(args.jobs, w, s), args.runs)
            flags = " ".join(flag_args(settings)) or "no flags"
            target = "  [target >= 20,000]" if workers == 1 and settings is THROUGHPUT else ""
            print(
                f"end to end, {workers} worker process(es), {label} ({flags}): "
                f"{rate:,.0f} jobs/s = {rate / ref:.0%} of reference{target}"
            )


if __name__ == "__main__":
    main()
