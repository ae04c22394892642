"""Tock's schedules on SQLite and PostgreSQL: creating many dynamic schedules, and what the
scheduler costs and how late it fires with all of them in the store.

    python bench/bench_schedules.py                    # 100,000 schedules, 60 s window, both stores
    python bench/bench_schedules.py --quick            # a smoke size (CI runs this)
    python bench/bench_schedules.py --full             # 1,000,000 schedules, 60 s window
    python bench/bench_schedules.py --store sqlite --schedules 20000 --seconds 30

Wall times measured on the 2-core machine, both stores: --quick 33 s, the default 165 s
(under 3 minutes), --full 398 s (creating a million schedules takes ~2 minutes a store).

The PostgreSQL server comes from --pg-url, else $TOCK_TEST_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/test; every run uses a schema of its own
(bench_<random>), migrated with ``app.migrate()`` and dropped afterwards. SQLite runs in a
temporary directory.

Figures, per store:
- creating: N dynamic schedules (--schedules; 100,000, --full 1,000,000, --quick 2,000)
  through ``app.schedule_many`` in batches of 10,000, argument checks and first-fire
  computation included: schedules/s over all of them, and the median batch's rate. The
  mix: 70 % per-user crons (``"0 9 * * *"`` and a few others in ten time zones, with
  ``kwargs={"user": i}``), 30 % ``every=`` 2 h .. 1 d with a few anchors; every one's first
  fire is at least an hour away, so none fires during the run. Then ``app.schedule(...)``
  one at a time over a sample of new names (1,000; --quick 100): schedules/s and the median
  call in ms.
- scheduler, with all of them in the store (the sample too) plus 10 ``every=1`` schedules
  of a no-op task: a real ``Worker`` (defaults, duties on, so its scheduler duty runs) in a
  thread of this process; after a 3 s warm-up, a window of --seconds (60; --quick 10):
  * the CPU seconds per minute of the thread named "tock-scheduler" alone
    (utime + stime from /proc/self/task/<native_id>/stat at both ends of the window), the
    whole process's beside it for context, and the scheduler's passes in the window;
  * fire-to-start delay: for every job of the 10 every-second schedules whose fire time
    (the job's ``run_at``) falls in the window, ``started_at - run_at`` as the store
    recorded them, p50 and p99; the worker keeps running 3 s after the window so late
    jobs still start, and a fire with no started job is reported (and fails the target).
  On PostgreSQL the schedules table is ANALYZEd before the worker starts, as autovacuum
  soon would after a bulk load.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tock import Tock  # noqa: E402
from tock.schedules import Cron, Every, first_fire  # noqa: E402
from tock.worker.worker import Worker, WorkerConfig  # noqa: E402

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 10_000
EVERY_SECOND = 10  # every=1 schedules of the no-op task
WARMUP = 3.0  # seconds the worker runs before the window opens
TAIL = 3.0  # seconds it keeps running after the window closes
MS = timedelta(milliseconds=1)
TARGET_CPU = 1.0  # scheduler CPU seconds per minute
TARGET_P99_MS = {"sqlite": 250.0, "postgres": 100.0}

TIMEZONES = (
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Africa/Lagos",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)
CRONS = ("0 9 * * *", "30 8 * * 1-5", "0 18 * * 5", "15 7 1 * *", "0 10 * * *", "0 */6 * * *")
INTERVALS = tuple(timedelta(hours=h) for h in (2, 3, 6, 12, 24))


# -- stores --------------------------------------------------------------------------


def _with_schema(url: str, schema: str | None) -> str:
    """``url`` with its ``schema=`` replaced (or removed when ``schema`` is None)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    if schema is not None:
        query.append(("schema", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


def make_app(url: str) -> Tock:
    app = Tock(url)

    @app.task(name="bench.noop")
    def noop(i: int) -> None:
        return None

    @app.task(name="bench.report")
    def report(user: int) -> None:
        return None

    return app


@contextlib.contextmanager
def fresh_url(store: str, pg_url: str) -> Iterator[str]:
    """A URL of an empty store of this run's own, removed afterwards."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            yield f"sqlite:///{Path(d) / 'tock.db'}"
        return
    import psycopg
    from psycopg import sql

    schema = f"bench_{secrets.token_hex(6)}"
    # Sessions of their own name: a test elsewhere that ends every "tock-listen" session of
    # the database (tests/postgres: test_watch_reconnects_and_polls_once) leaves ours alone.
    parts = urlsplit(_with_schema(pg_url, schema))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    query.append(("application_name", f"tock_{schema}"))
    try:
        yield urlunsplit(parts._replace(query=urlencode(query)))
    finally:
        with psycopg.connect(_with_schema(pg_url, None), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _analyze(url: str) -> None:
    import psycopg
    from psycopg import sql

    schema = dict(parse_qsl(urlsplit(url).query))["schema"]
    with psycopg.connect(_with_schema(url, None), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ANALYZE {}.{}").format(
                sql.Identifier(schema), sql.Identifier("tock_schedules")
            )
        )


def _version(store: str, pg_url: str) -> str:
    if store == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    import psycopg

    with psycopg.connect(_with_schema(pg_url, None), autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    return f"PostgreSQL {row[0]}"


# -- the schedules ---------------------------------------------------------------------


def _far_triggers(now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(cron triggers, every triggers) as schedule() keyword arguments, each of them with
    its first fire at least an hour after ``now``."""
    hour = timedelta(hours=1)
    crons = []
    for tz in TIMEZONES:
        for expression in CRONS:
            fire = first_fire(Cron(expression, tz), now)
            if fire is not None and fire - now >= hour:
                crons.append({"cron": expression, "timezone": tz})
    # Anchors from the next hour but one on: the first fire is the anchor itself.
    base = now.replace(minute=0, second=0, microsecond=0) + 2 * hour
    everies = []
    for interval in INTERVALS:
        for minutes in (0, 10, 20, 30, 40, 50):
            anchor = base + timedelta(minutes=minutes)
            fire = first_fire(Every(interval, anchor), now)
            assert fire is not None and fire - now >= hour
            everies.append({"every": interval, "anchor": anchor})
    assert crons and everies
    return crons, everies


def far_schedules(
    prefix: str, start: int, n: int, triggers: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """``n`` schedule() argument dicts: 7 in 10 a per-user cron, 3 in 10 an every=."""
    crons, everies = triggers
    items = []
    for i in range(start, start + n):
        if i % 10 < 7:
            trigger = crons[i % len(crons)]
            items.append(
                {
                    "name": f"{prefix}report:user-{i}",
                    "task": "bench.report",
                    "kwargs": {"user": i},
                    **trigger,
                }
            )
        else:
            trigger = everies[i % len(everies)]
            items.append(
                {
                    "name": f"{prefix}sync:account-{i}",
                    "task": "bench.report",
                    "args": [i],
                    **trigger,
                }
            )
    return items


# -- measuring -----------------------------------------------------------------------


@dataclass
class Result:
    store: str
    n: int = 0
    bulk_rate: float = 0.0
    bulk_batch_median: float = 0.0
    single_n: int = 0
    single_rate: float = 0.0
    single_median_ms: float = 0.0
    seconds: float = 0.0
    cpu_per_min: float = 0.0
    process_cpu_per_min: float = 0.0
    passes: int = 0
    pass_median_ms: float = 0.0
    jobs: int = 0
    expected: int = 0
    missing: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    # fire -> job row: p50, p99; negative when the job is made ahead of its fire (the lead)
    created_ms: tuple[float, float] = (0.0, 0.0)
    claimed_ms: tuple[float, float] = (0.0, 0.0)  # job row -> started: p50, p99
    notes: list[str] = field(default_factory=list)


def bench_create(app: Tock, n: int, single: int, result: Result) -> None:
    now = app.store.db_now(now=None)
    triggers = _far_triggers(now)
    rates = []
    start = time.perf_counter()
    for i in range(0, n, BATCH):
        items = far_schedules("", i, min(BATCH, n - i), triggers)
        t = time.perf_counter()
        done = app.schedule_many(items)
        rates.append(done / (time.perf_counter() - t))
        assert done == len(items), (done, len(items))
    result.n = n
    result.bulk_rate = n / (time.perf_counter() - start)
    result.bulk_batch_median = statistics.median(rates)

    calls = []
    items = far_schedules("one:", 0, single, triggers)
    start = time.perf_counter()
    for item in items:
        t = time.perf_counter()
        app.schedule(**item)
        calls.append(time.perf_counter() - t)
    result.single_n = single
    result.single_rate = single / (time.perf_counter() - start)
    result.single_median_ms = statistics.median(calls) * 1000


def _thread_cpu(native_id: int) -> float:
    """CPU seconds (user + system) of one thread of this process."""
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _find_thread(name: str, timeout: float) -> threading.Thread:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in threading.enumerate():
            if t.name == name and t.native_id is not None:
                return t
        time.sleep(0.01)
    raise RuntimeError(f"no thread named {name!r} after {timeout:g} s")


def bench_scheduler(app: Tock, seconds: float, result: Result) -> None:
    noop = app.tasks["bench.noop"]
    for k in range(EVERY_SECOND):
        app.schedule(f"tick-{k}", task=noop, every=1, args=[k])

    worker = Worker(app, WorkerConfig(sync_schedules=False))
    # Count the scheduler's passes and their wall time (two perf_counter calls a pass).
    pass_times: list[tuple[float, float]] = []
    run_once: Callable[[], Any] = worker.scheduler.run_once

    def timed_run_once() -> Any:
        t = time.perf_counter()
        report = run_once()
        pass_times.append((t, time.perf_counter() - t))
        return report

    worker.scheduler.run_once = timed_run_once  # type: ignore[method-assign]
    thread = threading.Thread(
        target=worker.run, kwargs={"install_signal_handlers": False}, name="bench-worker"
    )
    thread.start()
    try:
        scheduler = _find_thread("tock-scheduler", 30)
        assert scheduler.native_id is not None
        time.sleep(WARMUP)
        if not thread.is_alive():
            raise RuntimeError("the worker stopped during the warm-up")
        window_start = datetime.now(UTC)
        t0 = time.perf_counter()
        cpu0, proc0 = _thread_cpu(scheduler.native_id), _process_cpu()
        time.sleep(seconds)
        cpu1, proc1 = _thread_cpu(scheduler.native_id), _process_cpu()
        t1 = time.perf_counter()
        window_end = datetime.now(UTC)
        time.sleep(TAIL)
    finally:
        worker.stop()
        thread.join(timeout=60)
    if thread.is_alive():
        raise RuntimeError("the worker did not stop within 60 s")
    elapsed = t1 - t0
    result.seconds = elapsed
    result.cpu_per_min = (cpu1 - cpu0) * 60 / elapsed
    result.process_cpu_per_min = (proc1 - proc0) * 60 / elapsed
    in_window = [d for t, d in pass_times if t0 <= t < t1]
    result.passes = len(in_window)
    result.pass_median_ms = statistics.median(in_window) * 1000 if in_window else float("nan")

    limit = EVERY_SECOND * int(WARMUP + seconds + TAIL + 30) * 2
    records = app.store.job_list(task="bench.noop", limit=limit)
    fired = [r for r in records if window_start <= r.run_at < window_end]
    # Every-second fires in the window: whole seconds in [window_start, window_end).
    first = window_start.replace(microsecond=0)
    if first < window_start:
        first += timedelta(seconds=1)
    expected_seconds = 0
    moment = first
    while moment < window_end:
        expected_seconds += 1
        moment += timedelta(seconds=1)
    result.expected = expected_seconds * EVERY_SECOND
    started = [r for r in fired if r.started_at is not None]
    result.jobs = len(started)
    result.missing = result.expected - len(started)
    if not started:
        raise RuntimeError("no every-second job started in the window")
    delays = [(r.started_at - r.run_at) / MS for r in started]  # type: ignore[operator]
    result.p50_ms, result.p99_ms = _p50_p99(delays)
    result.max_ms = max(delays)
    result.created_ms = _p50_p99([(r.created_at - r.run_at) / MS for r in started])
    result.claimed_ms = _p50_p99([(r.started_at - r.created_at) / MS for r in started])  # type: ignore[operator]


def _p50_p99(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.99))]


def run_store(store: str, pg_url: str, n: int, single: int, seconds: float) -> Result:
    result = Result(store)
    with fresh_url(store, pg_url) as url:
        app = make_app(url)
        try:
            app.migrate()
            bench_create(app, n, single, result)
            print(
                f"  {store}: created {n:,} + {single:,} schedules: "
                f"{result.bulk_rate:,.0f}/s bulk, {result.single_rate:,.0f}/s one at a time",
                flush=True,
            )
            if store == "postgres":
                _analyze(url)
            bench_scheduler(app, seconds, result)
        finally:
            app.close()
    return result


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_table(results: list[Result]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    for r in results:
        target_ms = TARGET_P99_MS[r.store]
        rows += [
            (
                r.store,
                f"schedule_many, {r.n:,} in batches of {BATCH:,}",
                f"{r.bulk_rate:,.0f} schedules/s (median batch {r.bulk_batch_median:,.0f}/s)",
                "",
            ),
            (
                r.store,
                f"schedule(), {r.single_n:,} one at a time",
                f"{r.single_rate:,.0f} schedules/s (median call {r.single_median_ms:.2f} ms)",
                "",
            ),
            (
                r.store,
                f"scheduler CPU, {r.n + r.single_n + EVERY_SECOND:,} schedules, {r.seconds:.0f} s",
                f"{r.cpu_per_min:.2f} s/min",
                f"< {TARGET_CPU:g} s/min: {_met(r.cpu_per_min < TARGET_CPU)}",
            ),
            (
                r.store,
                "  (context) scheduler passes; whole process CPU",
                f"{r.passes:,} passes, median {r.pass_median_ms:.1f} ms; "
                f"{r.process_cpu_per_min:.2f} s/min",
                "",
            ),
            (
                r.store,
                f"fire-to-start, {r.jobs:,} of {r.expected:,} fires",
                f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms (max {r.max_ms:.1f})",
                f"p99 < {target_ms:g} ms: {_met(r.p99_ms < target_ms and r.missing <= 0)}"
                + (f" ({r.missing} fires did not start)" if r.missing > 0 else ""),
            ),
            (
                r.store,
                "  (context) fire -> job row; job row -> start",
                f"p50 {r.created_ms[0]:.1f}, p99 {r.created_ms[1]:.1f} ms; "
                f"p50 {r.claimed_ms[0]:.1f}, p99 {r.claimed_ms[1]:.1f} ms",
                "",
            ),
        ]
    header = ("store", "figure", "value", "target")
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("TOCK_TEST_POSTGRES_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--schedules", type=int, default=None, help="N (default 100,000)")
    parser.add_argument("--single", type=int, default=None, help="schedule() calls (1,000)")
    parser.add_argument("--seconds", type=float, default=None, help="scheduler window (60)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke size: 2,000 schedules, 10 s")
    size.add_argument("--full", action="store_true", help="1,000,000 schedules, 60 s")
    args = parser.parse_args()
    n, single, seconds = 100_000, 1_000, 60.0
    if args.quick:
        n, single, seconds = 2_000, 100, 10.0
    elif args.full:
        n = 1_000_000
    n = args.schedules if args.schedules is not None else n
    single = args.single if args.single is not None else single
    seconds = args.seconds if args.seconds is not None else seconds
    stores = ("sqlite", "postgres") if args.store == "both" else (args.store,)

    versions = ", ".join(_version(s, args.pg_url) for s in stores)
    print(
        f"Tock schedules on {versions}; Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores; {n:,} schedules, {seconds:g} s scheduler window",
        flush=True,
    )
    started = time.perf_counter()
    results = [run_store(s, args.pg_url, n, single, seconds) for s in stores]
    print()
    print_table(results)
    print(f"\n(wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
