"""What every system's driver shares: the marks jobs write, worker processes, fresh
server state, and the one JSON line a driver prints.

A driver is a module under ``systems/`` run as ``python -m systems.<name> WORKLOAD
[options]`` from ``bench/compare`` in the benchmark's own environment (``run.py`` makes
it). It measures one workload once and prints one line, ``RESULT {json}``:

    {"value": 12345.6, "unit": "jobs/s", "settings": "...", "note": "..."}

``value`` is null where the system cannot do the workload (``note`` says why); for
``recovery`` a value of null with ``"note": "never"`` or ``"> 120 s"`` says what happened.
A drain's line has a second rate, ``from_start``: see :func:`drain_result`.

Jobs prove they ran by *marks*: the job body calls :func:`mark` with a tag, which appends
``"<unix time> <pid> <tag>"`` to a file of its own process in ``$BENCH_MARKS`` (one
``os.write`` on an ``O_APPEND`` descriptor: about a microsecond, the same for every
system). The driver reads them with :class:`Marks`. A no-op job's mark is both its start
and its end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from marking import AMQP_URL, MARKS_ENV, PG_URL, REDIS_URL, first_attempt, mark  # noqa: F401

HERE = Path(__file__).resolve().parent

WORKLOADS = ("enqueue", "drain", "latency", "periodic", "recovery")

# The job's side (mark, first_attempt) lives in marking.py: a worker imports only that.

# -- in the driver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    at: float
    pid: int
    tag: str


@dataclass
class Marks:
    """The marks directory of one measurement (``$BENCH_MARKS`` for its workers)."""

    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-marks-")))

    def env(self) -> dict[str, str]:
        return {MARKS_ENV: str(self.dir)}

    def read(self) -> list[Mark]:
        marks = []
        for path in self.dir.glob("*.log"):
            for line in path.read_text().splitlines():
                parts = line.split(" ", 2)
                if len(parts) == 3:
                    marks.append(Mark(float(parts[0]), int(parts[1]), parts[2]))
        return marks

    def count(self) -> int:
        return sum(p.read_bytes().count(b"\n") for p in self.dir.glob("*.log"))

    def wait(self, n: int, timeout: float, procs: Procs | None = None) -> bool:
        """Wait until ``n`` marks are written; False if ``timeout`` passes first. Fails
        at once if a worker process of ``procs`` exits unasked."""
        deadline = time.monotonic() + timeout
        while self.count() < n:
            if procs is not None:
                procs.check()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def wait_tag(self, tag: str, timeout: float) -> Mark | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.read():
                if m.tag == tag:
                    return m
            time.sleep(0.002)
        return None

    def bounds(self) -> tuple[float, float]:
        """The times of the first mark and of the last."""
        times = [m.at for m in self.read()]
        return min(times), max(times)


@dataclass
class Procs:
    """Worker (and scheduler) processes of one measurement, killed however it ends.

    Every driver starts its workers here, and nowhere else: ``launched`` is the wall
    clock (the marks' clock) just before the first of them was started, where a drain's
    second rate begins."""

    popens: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    asked_to_stop: set[int] = field(default_factory=set)
    launched: float | None = None

    def start(
        self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path = HERE
    ) -> subprocess.Popen[bytes]:
        log = Path(tempfile.mkstemp(prefix="bench-worker-", suffix=".log")[1])
        if self.launched is None:
            self.launched = time.time()
        popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a SIGKILL of the group takes its children too
        )
        self.popens.append(popen)
        self.logs.append(log)
        return popen

    def check(self) -> None:
        for p, log in zip(self.popens, self.logs, strict=True):
            if p.poll() is not None and p.pid not in self.asked_to_stop:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker {p.args!r} exited with {p.returncode}:\n{tail}")

    def kill(self, popen: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """SIGKILL (by default) the whole process group of one worker."""
        self.asked_to_stop.add(popen.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, sig)

    def stop_all(self, grace: float = 10.0) -> None:
        for p in self.popens:
            self.asked_to_stop.add(p.pid)
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.popens:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for log in self.logs:
            log.unlink(missing_ok=True)


@contextlib.contextmanager
def measurement() -> Iterator[tuple[Marks, Procs]]:
    """Fresh marks and processes for one measurement; both gone when it ends."""
    marks, procs = Marks(), Procs()
    try:
        yield marks, procs
    finally:
        procs.stop_all()
        for p in marks.dir.iterdir():
            p.unlink()
        marks.dir.rmdir()


def python() -> str:
    return sys.executable


# -- servers ---------------------------------------------------------------------------


def redis_flush() -> None:
    """Empty the benchmark's own Redis database (db 9 of the local server)."""
    import redis  # in the benchmark's environment

    redis.Redis.from_url(REDIS_URL).flushdb()


def rabbitmq_purge(queues: Sequence[str]) -> None:
    import kombu

    with kombu.Connection(AMQP_URL) as conn:
        channel = conn.channel()
        for q in queues:
            with contextlib.suppress(Exception):
                channel.queue_purge(q)


@contextlib.contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema (its name), dropped afterwards with everything in it."""
    import psycopg

    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def pg_url_with_search_path(schema: str) -> str:
    """For systems that find their tables through ``search_path`` (Tock does not)."""
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


# -- the command line of a driver ---------------------------------------------------------


def parse_args(
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``WORKLOAD [--n N] [--workers W] [--samples K] [--seconds S] [--cap C]``, and any
    options of the system's own (``extra``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--n", type=int, default=20_000, help="jobs (enqueue, drain)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (drain)")
    parser.add_argument("--samples", type=int, default=200, help="jobs one at a time (latency)")
    parser.add_argument("--seconds", type=float, default=15.0, help="periodic: how long")
    parser.add_argument("--cap", type=float, default=30.0, help="recovery: give up after")
    if extra is not None:
        extra(parser)
    # A driver told to stop (run.py forwards SIGTERM; Ctrl-C sends SIGINT, which a shell
    # that started the run in the background leaves ignored) unwinds, so that
    # ``measurement()`` stops the workers it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return parser.parse_args()


RECOVERY_JOBS = 4  #: jobs the victim of ``recovery`` holds
WARMUP = "warmup"


def victim_of(marks: Marks, procs: Procs, tags: Sequence[str]) -> subprocess.Popen[bytes]:
    """The worker process (group) whose processes marked most of ``tags`` first."""
    firsts: dict[str, Mark] = {}
    for m in sorted(marks.read(), key=lambda m: m.at):
        firsts.setdefault(m.tag, m)
    counts: dict[int, int] = {}
    for tag in tags:
        pgid = os.getpgid(firsts[tag].pid)
        counts[pgid] = counts.get(pgid, 0) + 1
    pgid = max(counts, key=lambda k: counts[k])
    return next(p for p in procs.popens if p.pid == pgid)


def measure_recovery(
    marks: Marks, procs: Procs, tags: Sequence[str], cap: float
) -> tuple[float | None, str]:
    """After every job of ``tags`` has started once: SIGKILL the worker holding most of
    them, and time until each of the jobs it held has started again (``cap`` at most).
    Returns (seconds or None, note)."""
    if not marks.wait(len(tags), 60, procs):
        return None, "the jobs never started"
    victim = victim_of(marks, procs, tags)
    held = [
        t for t in tags
        if os.getpgid(min((m for m in marks.read() if m.tag == t), key=lambda m: m.at).pid)
        == victim.pid
    ]  # fmt: skip
    t0 = time.time()
    procs.kill(victim)
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        seen: dict[str, list[Mark]] = {}
        for m in marks.read():
            seen.setdefault(m.tag, []).append(m)
        if all(len(seen.get(t, [])) >= 2 for t in held):
            return max(max(x.at for x in seen[t]) for t in held) - t0, f"{len(held)} jobs held"
        time.sleep(0.05)
    # Not within the cap. Whether a system would rescue them later, or never, is the
    # driver's to say from the system's documented behaviour.
    ran_again = sum(1 for t in held if len([m for m in marks.read() if m.tag == t]) >= 2)
    return None, f"> {cap:g} s ({ran_again}/{len(held)} ran again)"


# -- results ---------------------------------------------------------------------------


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 (inclusive method: no value above the largest measured)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    qs = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), qs[98]


LATENCY_IDLE = (0.01, 0.03)  # the range of seconds the worker idles before each sample
LATENCY_SEED = 5  # the idles are the same sequence in every system's run


def _idles(samples: int) -> list[float]:
    """The idle time before each latency sample: drawn at random (the same sequence for
    every system), so that a sample lands anywhere in the cycle of a worker that polls. A
    fixed idle can lock in step with a poll: a sample that starts just after a poll waits
    a whole period, and then the next one starts just after a poll again."""
    rng = random.Random(LATENCY_SEED)
    return [rng.uniform(*LATENCY_IDLE) for _ in range(samples)]


def _started(marks: Marks, who: str) -> None:
    if marks.wait_tag(WARMUP, 60) is None:
        raise SystemExit(f"the {who} did not start")


def _delay(marks: Marks, tag: str, t0: float) -> float:
    m = marks.wait_tag(tag, 30)
    assert m is not None, f"job {tag} never ran"
    return (m.at - t0) * 1000


def measure_latency(
    marks: Marks, samples: int, enqueue: Callable[[str], object], who: str = "worker"
) -> tuple[float, float]:
    """``latency``: a warm-up job, then ``samples`` jobs one at a time on an idle worker,
    each from just before ``enqueue(tag)`` to its mark; p50 and p99 in ms."""
    enqueue(WARMUP)
    _started(marks, who)
    delays = []
    for i, idle in enumerate(_idles(samples)):
        time.sleep(idle)
        t0 = time.time()
        enqueue(f"l{i}")
        delays.append(_delay(marks, f"l{i}", t0))
    return percentiles(delays)


async def ameasure_latency(
    marks: Marks, samples: int, enqueue: Callable[[str], Awaitable[object]]
) -> tuple[float, float]:
    """``measure_latency`` for a system whose enqueue is a coroutine (its event loop
    runs while the worker idles)."""
    await enqueue(WARMUP)
    _started(marks, "worker")
    delays = []
    for i, idle in enumerate(_idles(samples)):
        await asyncio.sleep(idle)
        t0 = time.time()
        await enqueue(f"l{i}")
        delays.append(_delay(marks, f"l{i}", t0))
    return percentiles(delays)


DRAIN_BOUND = 600.0  # seconds a drain may take before its rate so far is reported


def drain_result(
    marks: Marks, n: int, procs: Procs, settings: str, servers: Sequence[str] = ()
) -> None:
    """Wait for the ``n`` jobs of a drain, then print its two rates: ``value``, jobs from
    the first start to the last end, and ``from_start``, jobs from the launch of the
    first worker process (``Procs.launched``: the driver starts the workers after the
    jobs are enqueued, so the workers' start-up is in it) to the last end; with the
    seconds from that launch to the first job's start (``first_job_s``). A system that
    has not run them all within DRAIN_BOUND seconds (the slowest peers, with the full
    run's 100,000 jobs) is measured on the jobs it ran so far, and the note says so.
    With them go the CPU time a job took in ``servers`` (keys of SERVER_PROCESSES: the
    servers the system uses) and in the workers (:class:`CpuMeter`), from the first job
    on."""
    launched = procs.launched
    if launched is None:
        raise RuntimeError("a drain's workers are started with Procs.start, before this")
    deadline = time.monotonic() + DRAIN_BOUND
    meter = None
    if marks.wait(1, DRAIN_BOUND, procs):
        # From here: the workers' start-up is not in it.
        meter = CpuMeter.start(procs, servers, marks.count())
    done = marks.wait(n, max(0.0, deadline - time.monotonic()), procs)
    ran = marks.count()
    note = "" if done else f"only {ran:,} of {n:,} jobs ran within {DRAIN_BOUND:g} s: their rate"
    cpu = meter.per_job(ran) if meter is not None else None
    server, workers = cpu if cpu is not None else (None, None)
    rate = from_start = first_job = None
    if ran > 1:
        first, last = marks.bounds()
        rate = ran / (last - first)
        from_start = ran / (last - launched)
        first_job = round(first - launched, 4)
    result(
        rate,
        "jobs/s",
        settings,
        note,
        from_start=from_start,
        first_job_s=first_job,
        cpu_server_us=server,
        cpu_workers_us=workers,
    )


#: The servers' process names (PostgreSQL's postmaster counts the CPU of its backends
#: that exited; RabbitMQ runs in the Erlang VM).
SERVER_PROCESSES = {"postgres": "postgres", "redis": "redis-server", "rabbitmq": "beam.smp"}


@dataclass(frozen=True)
class CpuMeter:
    """CPU time spent by the servers on this machine and by the worker processes of a
    measurement (their process groups: every child a worker forks included), read from
    ``/proc`` (Linux); between ``start`` and ``per_job``."""

    procs: Procs
    servers: frozenset[str]  # process names
    jobs: int  # jobs already run at the start
    server: float
    workers: float
    began: float = field(default_factory=time.monotonic)

    #: /proc counts CPU time in clock ticks (10 ms): a shorter window says too little.
    SHORTEST: ClassVar[float] = 0.25

    @classmethod
    def start(cls, procs: Procs, servers: Sequence[str], jobs: int) -> CpuMeter | None:
        names = frozenset(SERVER_PROCESSES[s] for s in servers)
        got = cpu_seconds(names, {p.pid for p in procs.popens})
        return None if got is None else cls(procs, names, jobs, *got)

    def per_job(self, jobs: int) -> tuple[float, float] | None:
        """Microseconds of server CPU and of worker CPU a job since the start, for the
        ``jobs`` run by now (None if too few ran, or too briefly, to say)."""
        got = cpu_seconds(self.servers, {p.pid for p in self.procs.popens})
        ran = jobs - self.jobs
        if got is None or ran < 100 or time.monotonic() - self.began < self.SHORTEST:
            return None
        server, workers = got[0] - self.server, got[1] - self.workers
        return round(server / ran * 1e6, 1), round(workers / ran * 1e6, 1)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(servers: frozenset[str], groups: set[int]) -> tuple[float, float] | None:
    """CPU seconds, user and system, of the processes named in ``servers`` and of the
    processes in the process groups ``groups``, each with its children that have
    exited; None where there is no ``/proc``."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    server = workers = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        # After "(name) ": state ppid pgrp session tty_nr tpgid flags minflt cminflt
        # majflt cmajflt utime stime cutime cstime ... (proc(5)).
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = sum(int(f) for f in fields[11:15])
        if name in servers:
            server += ticks
        elif int(fields[2]) in groups:
            workers += ticks
    return server / _TICK, workers / _TICK


def result(value: float | None, unit: str, settings: str, note: str = "", **extra: Any) -> None:
    """Print the driver's one result line (``run.py`` reads it from stdout)."""
    print("RESULT " + json.dumps({"value": value, "unit": unit, "settings": settings,
                                  "note": note, **extra}), flush=True)  # fmt: skip
