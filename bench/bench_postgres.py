"""Tock on PostgreSQL: bulk enqueue, latency, end-to-end throughput and its decay over
time, beside a raw-SQL reference loop.

    python bench/bench_postgres.py              # default sizes, 3 runs per figure
    python bench/bench_postgres.py --quick      # a smoke size (CI runs this)
    python bench/bench_postgres.py --runs 5 --jobs 50000
    python bench/bench_postgres.py --decay      # adds the 5-minute decay check
    python bench/bench_postgres.py --decay-only --decay-seconds 60

The server comes from --url, else $TOCK_BENCH_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/test. Every measurement runs in a schema of its own
(bench_<random>), migrated with ``app.migrate()`` and dropped afterwards.

Figures (medians over --runs, every system measured in this same run):
- bulk enqueue: jobs/s through ``task.enqueue_many`` (argument checks included), in
  batches of 10,000 as on SQLite;
- enqueue-to-start on an idle worker (defaults): jobs enqueued one at a time with an idle
  pause between, ``started_at - created_at`` as the store recorded them, p50 and p99;
- end to end: N pre-enqueued no-op jobs drained by 1, 2 and 4 worker processes, from the
  first worker's registration (just before its first claim) to the last job's end (both
  read from the store's own times),
  at Tock's defaults and at its documented throughput settings;
- reference: one process, psycopg, no framework: claim a batch with one statement (a CTE
  with ``FOR UPDATE SKIP LOCKED``, the LIMIT inside it, then ``UPDATE ... RETURNING``),
  complete it with one statement, autocommit per statement, a partial claim index like
  Tock's, same batch size as the throughput settings;
- decay (--decay): one worker at throughput settings drains a queue an enqueuer process
  keeps refilled, for --decay-seconds (default 300); throughput per window (a minute at
  the default length) as the median of its per-second counts, and the last window's as a
  fraction of the first's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from precompile import compile_tock
from psycopg import sql

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULTS: dict[str, int] = {}  # `tock worker` with no flags
# Documented in README ("Throughput settings"). Concurrency 4 was the best of 1/2/4/8 on
# the 2-core machine; prefetch 4000 drains a quarter faster than 1000 since finishing a
# batch no longer reads every running job (A/B, 1 and 2 workers, both stores); two
# claimers: one claim in flight while the other's jobs are decoded (+20-30 % here).
THROUGHPUT = {"concurrency": 4, "prefetch": 4000, "claimers": 2}
ENQUEUE_BATCH = 10_000
BACKLOG = 30_000  # the decay check keeps at least this many jobs pending


def _with_schema(url: str, schema: str | None) -> str:
    """``url`` with its ``schema=`` replaced (or removed when ``schema`` is None)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    if schema is not None:
        query.append(("schema", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _connect(base: str) -> psycopg.Connection:
    return psycopg.connect(_with_schema(base, None), autocommit=True)


@contextlib.contextmanager
def fresh_schema(base: str) -> Iterator[str]:
    """A schema name of this run's own, dropped (with everything in it) afterwards."""
    schema = f"bench_{secrets.token_hex(6)}"
    try:
        yield schema
    finally:
        with _connect(base) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextlib.contextmanager
def fresh_app(base: str) -> Iterator[tuple[object, str, str]]:
    """(migrated app, its URL, its schema) on a fresh schema."""
    from noop_app import make_app

    with fresh_schema(base) as schema:
        url = _with_schema(base, schema)
        app = make_app(url)
        try:
            app.migrate()
            yield app, url, schema
        finally:
            app.close()


def _table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def flag_args(settings: dict[str, int]) -> list[str]:
    """The worker's command-line flags for these settings."""
    return [arg for name, value in settings.items() for arg in (f"--{name}", str(value))]


def flags_of(settings: dict[str, int]) -> str:
    return " ".join(flag_args(settings)) or "no flags"


def _worker_cmd(settings: dict[str, int] | None, burst: bool) -> list[str]:
    cmd = [sys.executable, "-m", "tock", "--app", "noop_app:app_from_env", "worker"]
    if burst:
        cmd.append("--burst")
    cmd += ["--log-level", "WARNING"]
    if settings is not None:
        cmd += flag_args(settings)
    return cmd


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(HERE), "BENCH_TOCK_URL": url}


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _enqueue(app: object, n: int, start: int = 0) -> None:
    noop = app.tasks["bench.noop"]  # type: ignore[attr-defined]
    for i in range(start, start + n, ENQUEUE_BATCH):
        noop.enqueue_many([(j,) for j in range(i, min(start + n, i + ENQUEUE_BATCH))])


def bench_enqueue(base: str, n: int) -> float:
    with fresh_app(base) as (app, _, _):
        # Warm up as a running app is: its pool open, its session's staging table made.
        _enqueue(app, 1_000, start=-1_000)
        start = time.perf_counter()
        _enqueue(app, n)
        elapsed = time.perf_counter() - start
    return n / elapsed


def bench_drain(base: str, n: int, workers: int, settings: dict[str, int]) -> float:
    with fresh_app(base) as (app, url, schema):
        _enqueue(app, n)
        with _connect(base) as conn:  # as autovacuum would soon: the claim plan has stats
            conn.execute(sql.SQL("ANALYZE {}").format(_table(schema, "tock_jobs")))
        procs = [
            subprocess.Popen(_worker_cmd(settings, burst=True), env=_env(url), cwd=HERE)
            for _ in range(workers)
        ]
        try:
            with _connect(base) as conn:
                first = first_registration(conn, schema, procs)
            for p in procs:
                if p.wait(timeout=600) != 0:
                    raise RuntimeError(f"worker exited with {p.returncode}")
        finally:
            _stop(procs)
        with _connect(base) as conn:
            last, done = conn.execute(
                sql.SQL(
                    "SELECT max(finished_at), count(*) FROM {} WHERE status = 'succeeded'"
                ).format(_table(schema, "tock_jobs_finished"))
            ).fetchone()  # type: ignore[misc]
    if done != n:
        raise RuntimeError(f"only {done} of {n} jobs succeeded")
    return float(n / (last - first).total_seconds())


def first_registration(
    conn: psycopg.Connection, schema: str, procs: list[subprocess.Popen[bytes]]
) -> datetime:
    """The earliest ``started_at`` of the workers' rows, watched while they run: a worker
    registers just before its first claim and removes its row when it stops. (A job's
    ``started_at`` is its real start, after the claim that brought it.)"""
    query = sql.SQL("SELECT min(started_at) FROM {}").format(_table(schema, "tock_workers"))
    first: datetime | None = None
    while True:
        seen = conn.execute(query).fetchone()[0]  # type: ignore[index]
        if seen is not None:
            first = seen if first is None else min(first, seen)
        if all(p.poll() is not None for p in procs):
            break
        time.sleep(0.002)
    if first is None:
        raise RuntimeError("no worker was seen registered")
    return first


def bench_latency(base: str, samples: int) -> tuple[float, float]:
    """Enqueue-to-start on an idle worker, one job at a time: (p50, p99) in ms."""
    with fresh_app(base) as (app, url, _):
        noop = app.tasks["bench.noop"]  # type: ignore[attr-defined]
        proc = subprocess.Popen(_worker_cmd(None, burst=False), env=_env(url), cwd=HERE)
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
            _stop([proc])
    waits.sort()
    return statistics.median(waits), waits[min(len(waits) - 1, int(len(waits) * 0.99))]


def bench_reference(base: str, n: int, batch: int) -> float:
    """The floor any framework on PostgreSQL pays: two statements a batch, nothing else."""

    def run(job_args: str) -> None:
        return None

    with fresh_schema(base) as schema, _connect(base) as conn:
        jobs = _table(schema, "jobs")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "queue text NOT NULL, priority integer NOT NULL, run_at timestamptz NOT NULL, "
                "status text NOT NULL, args text NOT NULL)"
            ).format(jobs)
        )
        conn.execute(
            sql.SQL(
                "CREATE INDEX ON {} (queue, priority DESC, run_at, id) WHERE status = 'pending'"
            ).format(jobs)
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                sql.SQL("COPY {} (queue, priority, run_at, status, args) FROM STDIN").format(jobs)
            ) as copy,
        ):
            for i in range(n):
                copy.write_row(("default", 0, "2000-01-01T00:00:00Z", "pending", f"[{i}]"))
        conn.execute(sql.SQL("ANALYZE {}").format(jobs))
        claim = sql.SQL(
            "WITH locked AS (SELECT id FROM {jobs} WHERE status = 'pending' "
            "AND queue = 'default' AND run_at <= now() ORDER BY priority DESC, run_at, id "
            "LIMIT %s FOR UPDATE SKIP LOCKED) "
            "UPDATE {jobs} AS j SET status = 'running' FROM locked WHERE j.id = locked.id "
            "RETURNING j.id, j.args"
        ).format(jobs=jobs)
        complete = sql.SQL("UPDATE {} SET status = 'done' WHERE id = ANY(%s)").format(jobs)
        start = time.perf_counter()
        while True:
            rows = conn.execute(claim, (batch,)).fetchall()
            if not rows:
                break
            for _, args in rows:
                run(args)
            conn.execute(complete, ([r[0] for r in rows],))
        elapsed = time.perf_counter() - start
    return n / elapsed


def refill(url: str, backlog: int) -> None:
    """The decay check's enqueuer (a process of its own): keep >= backlog jobs pending."""
    from noop_app import make_app

    app = make_app(url)
    schema = dict(parse_qsl(urlsplit(url).query))["schema"]
    # Counting stops at ``backlog``: the enqueuer's own cost stays flat however big the
    # table grows.
    count = sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM {} WHERE status = 'pending' LIMIT %s) AS p"
    ).format(_table(schema, "tock_jobs"))
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    n = 0
    with _connect(url) as conn:
        while not stop:
            pending = conn.execute(count, (backlog,)).fetchone()[0]  # type: ignore[index]
            if pending < backlog:
                _enqueue(app, ENQUEUE_BATCH, n)
                n += ENQUEUE_BATCH
            else:
                time.sleep(0.05)
    app.close()


def bench_decay(
    base: str, seconds: float, settings: dict[str, int]
) -> tuple[list[tuple[int, float, int]], str, str, str]:
    """One worker on a continuously refilled queue for ``seconds``.

    Returns per window (start s, median jobs/s of its seconds, jobs finished), the live
    table's total size (with indexes) at the start and at the end, and what the server's
    statistics say of its dead rows and vacuums at the end.
    """
    windows = max(2, int(seconds // 60))
    length = seconds / windows
    with fresh_app(base) as (app, url, schema):
        _enqueue(app, BACKLOG)
        live, finished = _table(schema, "tock_jobs"), _table(schema, "tock_jobs_finished")
        size = sql.SQL("SELECT pg_size_pretty(pg_total_relation_size({}))").format(
            sql.Literal(f'"{schema}".tock_jobs')
        )
        with _connect(base) as conn:
            conn.execute(sql.SQL("ANALYZE {}").format(live))
            size_start = conn.execute(size).fetchone()[0]  # type: ignore[index]
        enqueuer = subprocess.Popen(
            [sys.executable, __file__, "--_refill", url, "--_backlog", str(BACKLOG)],
            env={**os.environ, "PYTHONPATH": str(HERE)},
            cwd=HERE,
        )
        worker = subprocess.Popen(_worker_cmd(settings, burst=False), env=_env(url), cwd=HERE)
        procs = [worker, enqueuer]
        try:
            with _connect(base) as conn:
                first = None
                deadline = time.monotonic() + 60
                while first is None:
                    if time.monotonic() > deadline or worker.poll() is not None:
                        raise RuntimeError("the worker did not start a job within 60 s")
                    time.sleep(0.1)
                    first = conn.execute(
                        sql.SQL("SELECT min(started_at) FROM {}").format(finished)
                    ).fetchone()[0]  # type: ignore[index]
                # Run until the whole last window is over (plus a margin for its stragglers).
                time.sleep(seconds + 1)
                for p in procs:
                    if p.poll() is not None:
                        raise RuntimeError(f"a decay process exited early ({p.returncode})")
                _stop(procs)
                first = conn.execute(
                    sql.SQL("SELECT min(started_at) FROM {}").format(finished)
                ).fetchone()[0]  # type: ignore[index]
                per_second: dict[int, int] = dict(
                    conn.execute(
                        sql.SQL(
                            "SELECT floor(extract(epoch FROM finished_at - %s))::int AS s, "
                            "count(*) FROM {} GROUP BY 1"
                        ).format(finished),
                        (first,),
                    ).fetchall()
                )
                size_end = conn.execute(size).fetchone()[0]  # type: ignore[index]
                dead, vacuums = conn.execute(
                    "SELECT n_dead_tup, autovacuum_count FROM pg_stat_user_tables "
                    "WHERE schemaname = %s AND relname = 'tock_jobs'",
                    (schema,),
                ).fetchone()  # type: ignore[misc]
        finally:
            _stop(procs)
    result = []
    for w in range(windows):
        lo, hi = round(w * length), round((w + 1) * length)
        counts = [per_second.get(s, 0) for s in range(lo, hi)]
        result.append((lo, statistics.median(counts), sum(counts)))
    return result, size_start, size_end, f"{dead:,} dead rows, autovacuumed {vacuums} time(s)"


def median(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    return float(statistics.median(fn() for _ in range(runs)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("TOCK_BENCH_POSTGRES_URL", DEFAULT_URL))
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain run")
    parser.add_argument("--enqueue-jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke size: 2,000 jobs, 1 run")
    parser.add_argument("--decay", action="store_true", help="add the decay check")
    parser.add_argument("--decay-only", action="store_true", help="only the decay check")
    parser.add_argument("--decay-seconds", type=float, default=300.0)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=THROUGHPUT["concurrency"],
        help="throughput settings to measure instead of the documented ones",
    )
    parser.add_argument("--prefetch", type=int, default=THROUGHPUT["prefetch"])
    parser.add_argument("--claimers", type=int, default=THROUGHPUT["claimers"])
    parser.add_argument("--_refill", help=argparse.SUPPRESS)
    parser.add_argument("--_backlog", type=int, default=BACKLOG, help=argparse.SUPPRESS)
    args = parser.parse_args()
    compile_tock(HERE / "noop_app.py")  # as an installed Tock: see precompile.py
    if args._refill:
        refill(args._refill, args._backlog)
        return
    if args.quick:
        args.jobs, args.enqueue_jobs, args.runs = 2_000, 10_000, 1
    throughput = {
        "concurrency": args.concurrency,
        "prefetch": args.prefetch,
        "claimers": args.claimers,
    }
    base = args.url

    with _connect(base) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        autovacuum = conn.execute("SHOW autovacuum").fetchone()[0]  # type: ignore[index]
    runs = "" if args.decay_only else f"; medians of {args.runs} run(s)"
    print(
        f"Tock on PostgreSQL {version}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores{runs}",
        flush=True,
    )
    if autovacuum != "on" and (args.decay or args.decay_only):
        print(
            "note: autovacuum is off on this server: Tock's autovacuum settings for its live "
            "table do not apply; only the workers' own vacuumer duty keeps it small",
            flush=True,
        )
    batch = throughput["concurrency"] + throughput["prefetch"]
    tp_flags = flags_of(throughput)
    if not args.decay_only:
        enq = median(lambda: bench_enqueue(base, args.enqueue_jobs), args.runs)
        print(
            f"bulk enqueue ({args.enqueue_jobs:,} jobs, enqueue_many in batches of "
            f"{ENQUEUE_BATCH:,}): {enq:,.0f} jobs/s  [target >= 100,000]",
            flush=True,
        )
        p50, p99 = bench_latency(base, 20 if args.quick else 200)
        print(
            f"enqueue-to-start on an idle worker (defaults): p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms  [target p99 < 20]",
            flush=True,
        )
        ref = median(lambda: bench_reference(base, args.jobs, batch), args.runs)
        print(f"raw-SQL reference loop (batch {batch:,}): {ref:,.0f} jobs/s", flush=True)
        for label, settings in (("defaults", DEFAULTS), ("throughput settings", throughput)):
            flags = flags_of(settings)
            for workers in (1, 2, 4):
                rate = median(
                    lambda w=workers, s=settings: bench_drain(base, args.jobs, w, s), args.runs
                )
                target = ""
                if workers == 1 and settings is throughput:
                    target = "  [target >= 15,000 and >= 40% of reference]"
                print(
                    f"end to end, {args.jobs:,} jobs, {workers} worker process(es), {label} "
                    f"({flags}): {rate:,.0f} jobs/s = {rate / ref:.0%} of reference{target}",
                    flush=True,
                )
    if args.decay or args.decay_only:
        windows, size_start, size_end, vacuum = bench_decay(base, args.decay_seconds, throughput)
        length = args.decay_seconds / len(windows)
        print(
            f"decay: 1 worker process ({tp_flags}), queue kept >= {BACKLOG:,} pending by an "
            f"enqueuer process, {args.decay_seconds:g} s in windows of {length:g} s:",
            flush=True,
        )
        for start, rate, done in windows:
            print(f"  from {start:>4} s: median {rate:,.0f} jobs/s ({done:,} jobs)")
        ratio = windows[-1][1] / windows[0][1] if windows[0][1] else float("nan")
        print(
            f"decay: last window's median throughput = {ratio:.0%} of the first's  "
            f"[target >= 90%]; live table with indexes {size_start} -> {size_end} "
            f"({vacuum})",
            flush=True,
        )


if __name__ == "__main__":
    main()
