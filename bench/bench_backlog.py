"""A big backlog drained: N no-op jobs enqueued, then worker processes started, timed from
their start until the live table is empty; beside a 20,000-job backlog in the same run.

    python bench/bench_backlog.py                        # 1,000,000 jobs, SQLite, defaults
    python bench/bench_backlog.py --store postgres --workers 2
    python bench/bench_backlog.py --worker-args "--prefetch 4000 --concurrency 4"
    python bench/bench_backlog.py --quick                # 20,000 jobs, one small run (CI)

Each drain has a fresh store: SQLite in a temporary directory, or PostgreSQL (--url, else
$TOCK_BENCH_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test) in a schema of
its own (bench_<random>), dropped afterwards. The no-op task of ``noop_app.py`` gets N
jobs through ``enqueue_many`` in batches of 10,000 (PostgreSQL: then ANALYZE, as
autovacuum soon would; --no-analyze leaves it out). Then --workers ``tock worker``
processes start, with --worker-args (none by default: Tock's defaults), and the drain is
timed from their launch, start-up included, until the live table (``tock_jobs``) is
empty.

While they drain, the lowest id left in the live table is read every --probe seconds
(one index seek; the backlog's ids are consecutive, so every job below it is done). That
gives when each tenth of the backlog was done, hence the rate per tenth: a slowdown as
the tables grow shows there. A tenth is done no later than it says, and late by at most
the jobs claimed ahead of the oldest unfinished one (a batch or two).

The same is measured for a 20,000-job backlog, --small-runs times (one before the big
drain, the others after; their median): the target is a big drain at >= 90 % of that
rate.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from precompile import compile_tock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 10_000  # enqueue_many batch, as the other benchmarks
SMALL = 20_000  # the backlog the big one is measured against
TARGET = 0.90  # the big drain's rate, at least this share of the small one's
TENTHS = 10


@dataclass
class Drain:
    """One drain; times in seconds from the launch of the workers."""

    n: int
    enqueue: float  # seconds the enqueue took
    end: float  # the live table found empty
    first: float  # the first jobs found done
    first_done: int  # how many were found done then
    tenths: list[float]  # when each tenth of the backlog was found done (the last: end)

    @property
    def rate(self) -> float:
        return self.n / self.end

    @property
    def after_start_up(self) -> float:
        """Jobs/s after the first jobs were found done (start-up left out)."""
        if self.end <= self.first:
            return float("nan")
        return (self.n - self.first_done) / (self.end - self.first)

    def tenth_rates(self) -> list[float | None]:
        """Jobs/s in each tenth; None for a tenth found done by the same probe as the one
        before it (too short to say)."""
        starts = [0.0, *self.tenths[:-1]]
        size = self.n / TENTHS
        return [size / (b - a) if b > a else None for a, b in zip(starts, self.tenths, strict=True)]


class Store:
    """A fresh store: its URL for Tock, and the probe of its live table."""

    url: str

    def lowest_live(self, at_least: int) -> int | None:
        """The lowest id >= ``at_least`` in the live table, None if there is none."""
        raise NotImplementedError

    def ids(self) -> tuple[int, int, int]:
        """The live table's lowest id, highest id, and row count."""
        raise NotImplementedError

    def analyze(self) -> None:
        """Statistics for the planner (PostgreSQL)."""


class SqliteStore(Store):
    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        self.conn = sqlite3.connect(path, isolation_level=None)  # each read its own

    def lowest_live(self, at_least: int) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM tock_jobs WHERE id >= ? ORDER BY id LIMIT 1", (at_least,)
        ).fetchone()
        return None if row is None else int(row[0])

    def ids(self) -> tuple[int, int, int]:
        lo, hi, n = self.conn.execute("SELECT min(id), max(id), count(*) FROM tock_jobs").fetchone()
        return int(lo), int(hi), int(n)


class PostgresStore(Store):
    def __init__(self, base: str, schema: str) -> None:
        import psycopg
        from psycopg import sql

        self.url = with_schema(base, schema)
        self.conn = psycopg.connect(with_schema(base, None), autocommit=True)
        table = sql.Identifier(schema, "tock_jobs")
        self.probe = sql.SQL("SELECT id FROM {} WHERE id >= %s ORDER BY id LIMIT 1").format(table)
        self.count = sql.SQL("SELECT min(id), max(id), count(*) FROM {}").format(table)
        self.stats = sql.SQL("ANALYZE {}").format(table)

    def lowest_live(self, at_least: int) -> int | None:
        row = self.conn.execute(self.probe, (at_least,)).fetchone()
        return None if row is None else int(row[0])

    def ids(self) -> tuple[int, int, int]:
        row = self.conn.execute(self.count).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def analyze(self) -> None:
        self.conn.execute(self.stats)


def with_schema(url: str, schema: str | None) -> str:
    """``url`` with its ``schema=`` set to ``schema`` (or removed)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    if schema is not None:
        query.append(("schema", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextlib.contextmanager
def fresh_store(kind: str, base: str) -> Iterator[Store]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-backlog-") as d:
            store = SqliteStore(Path(d) / "tock.db")
            try:
                yield store
            finally:
                store.conn.close()
        return
    import psycopg
    from psycopg import sql

    schema = f"bench_{secrets.token_hex(6)}"
    store = None
    try:
        store = PostgresStore(base, schema)
        yield store
    finally:
        if store is not None:
            store.conn.close()
        with psycopg.connect(with_schema(base, None), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def enqueue(url: str, n: int) -> float:
    """N no-op jobs in batches of BATCH; the seconds it took."""
    from noop_app import make_app

    app = make_app(url)
    try:
        app.migrate()
        noop = app.tasks["bench.noop"]
        start = time.perf_counter()
        for i in range(0, n, BATCH):
            noop.enqueue_many([(j,) for j in range(i, min(n, i + BATCH))])
        return time.perf_counter() - start
    finally:
        app.close()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def drain(kind: str, base: str, n: int, args: argparse.Namespace) -> Drain:
    with fresh_store(kind, base) as store:
        took = enqueue(store.url, n)
        lo, hi, count = store.ids()
        if count != n or hi - lo + 1 != n:
            raise RuntimeError(f"expected {n} consecutive ids, found {count} in {lo}..{hi}")
        if not args.no_analyze:
            store.analyze()
        cmd = [sys.executable, "-m", "tock", "--app", "noop_app:app_from_env", "worker"]
        cmd += shlex.split(args.worker_args)
        env = {**os.environ, "PYTHONPATH": str(HERE), "BENCH_TOCK_URL": store.url}
        with tempfile.TemporaryFile() as log:
            procs: list[subprocess.Popen[bytes]] = []
            launched = time.perf_counter()
            try:
                for _ in range(args.workers):
                    procs.append(subprocess.Popen(cmd, env=env, cwd=HERE, stdout=log, stderr=log))
                return watch(store, n, lo, launched, took, procs, log, args)
            finally:
                stop(procs)


def watch(
    store: Store,
    n: int,
    lo: int,
    launched: float,
    took: float,
    procs: list[subprocess.Popen[bytes]],
    log: Any,
    args: argparse.Namespace,
) -> Drain:
    """Probe the live table until it is empty; when each tenth was done."""
    tenths: list[float] = []
    first = None
    first_done = 0
    low: int | None = lo
    while True:
        for p in procs:
            if p.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-3000:]
                raise RuntimeError(f"a worker exited with {p.returncode}:\n{tail}")
        low = store.lowest_live(low if low is not None else lo)
        at = time.perf_counter() - launched
        done = n if low is None else low - lo
        if first is None and done > 0:
            first, first_done = at, done
        while len(tenths) < TENTHS and done >= n * (len(tenths) + 1) / TENTHS:
            tenths.append(at)
        if low is None:
            assert first is not None
            return Drain(n, took, at, first, first_done, tenths)
        if at > args.timeout:
            raise RuntimeError(f"{done:,} of {n:,} jobs done after {args.timeout:g} s")
        time.sleep(args.probe)


def line(label: str, d: Drain) -> str:
    return (
        f"{label:<22} enqueued in {d.enqueue:5.1f} s; drained in {d.end:6.2f} s from "
        f"starting the workers: {d.rate:8,.0f} jobs/s (first jobs done at {d.first:.2f} s; "
        f"{d.after_start_up:,.0f} jobs/s after that)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--url", default=os.environ.get("TOCK_BENCH_POSTGRES_URL", DEFAULT_URL))
    parser.add_argument("--n", type=int, default=1_000_000, help="jobs in the big backlog")
    parser.add_argument("--quick", action="store_true", help=f"{SMALL:,} jobs, one small run")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--worker-args", default="", help='flags for each `tock worker`, e.g. "--prefetch 4000"'
    )
    parser.add_argument("--small-runs", type=int, default=3, help=f"drains of {SMALL:,} jobs")
    parser.add_argument("--probe", type=float, default=0.02, help="seconds between probes")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds a drain may take")
    parser.add_argument("--no-analyze", action="store_true", help="PostgreSQL: no ANALYZE")
    args = parser.parse_args()
    compile_tock(HERE / "noop_app.py")  # as an installed Tock: see precompile.py
    n = SMALL if args.quick else args.n
    small_runs = 1 if args.quick else args.small_runs
    flags = args.worker_args.strip() or "(no flags)"
    print(
        f"bench_backlog: {args.store}; {args.workers} x tock worker {flags}; "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    # One small drain before the big one, the others after.
    order = ["small"][:small_runs] + ["big"] + ["small"] * max(0, small_runs - 1)
    small: list[Drain] = []
    big = None
    for which in order:
        if which == "big":
            big = drain(args.store, args.url, n, args)
            print(line(f"{n:,} jobs", big), flush=True)
        else:
            small.append(drain(args.store, args.url, SMALL, args))
            print(line(f"{SMALL:,} jobs (run {len(small)})", small[-1]), flush=True)
    assert big is not None
    print(f"\n{n:,} jobs, by tenth of the backlog (from starting the workers):")
    print("  tenth   done at     jobs/s in that tenth")
    for k, (at, rate) in enumerate(zip(big.tenths, big.tenth_rates(), strict=True), 1):
        print(f"  {k:>5}   {at:7.2f} s   {'—' if rate is None else f'{rate:,.0f}':>10}")
    small_rate = statistics.median(d.rate for d in small) if small else float("nan")
    share = big.rate / small_rate
    verdict = "met" if share >= TARGET else "missed"
    print(
        f"\n{n:,} jobs: {big.rate:,.0f} jobs/s; {SMALL:,} jobs: {small_rate:,.0f} jobs/s "
        f"(median of {len(small)}); ratio {share:.2f} (target >= {TARGET:.2f}): {verdict}"
    )


if __name__ == "__main__":
    main()
