"""RQ (python-rq 3.0) on Redis, run as ``python -m systems.rq WORKLOAD [...]``.

``import rq`` below is absolute, so it is the library, not this module (``systems.rq``).
Workers are real ``rq worker`` processes started with cwd ``bench/compare`` (RQ's
default ``--path .``), which import ``systems.rq_jobs``.

Settings (each documented):

* Worker class: ``rq.worker.SimpleWorker`` by default — RQ's own throughput advice for
  jobs of single-digit milliseconds (https://python-rq.org/docs/workers/ "SimpleWorker",
  and docs/benchmark.md "Notes on Performance": ~6x the default forking ``Worker`` on a
  hello-world job); ``--worker-class Worker`` runs RQ's production default (one fork per
  job, heartbeats while a job runs).
* One RQ worker process runs one job at a time (docs: "If you want to perform jobs
  concurrently, simply start more workers"), so ``--workers W`` is W ``rq worker``
  processes; ``recovery`` runs two hosts of three ``rq worker`` processes each.
* Reliable: every job has ``retry=Retry(max=3)``: a job whose worker died ("abandoned",
  its StartedJobRegistry entry expired) is re-queued by another worker's maintenance
  instead of being moved to the FailedJobRegistry (https://python-rq.org/docs/exceptions/
  "Retrying Failed Jobs"; rq/registry.py StartedJobRegistry.cleanup).
* Rescue timing: the entry of a running job expires ``job_monitoring_interval + 60`` s
  after the last heartbeat (forking ``Worker``; the +60 is fixed) or ``job_timeout + 60``
  s after the start (``SimpleWorker``: no heartbeats while a job runs; default timeout
  180 s); a worker cleans registries every ``--maintenance-interval`` (default 600 s)
  and, when idle, only wakes every ``--worker-ttl`` - 15 s. We run
  ``--maintenance-interval 5 --worker-ttl 20 --job-monitoring-interval 5`` (CLI options of
  ``rq worker``, https://python-rq.org/docs/workers/ "Worker Arguments").
* Bulk enqueue: ``Queue.enqueue_many`` of ``Queue.prepare_data`` in one pipeline per
  batch (https://python-rq.org/docs/ "Bulk Job Enqueueing").
* Periodic: RQ's ``CronScheduler`` (``rq cron``, new in 2.4, beta) with ``interval=1``
  (https://python-rq.org/docs/cron/).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import common
import redis
from common import Marks, Procs, drain_result, measure_latency, measurement, result
from rq import Queue, Retry
from rq.cron import get_cron_job_history_key
from rq.defaults import RQ_KEY_PREFIX

from systems import rq_jobs

BATCH = 1_000  # jobs per enqueue_many pipeline
RETRY = Retry(max=3)  # re-queue an abandoned job (its worker died) instead of failing it
MAINTENANCE = (
    "--maintenance-interval",
    "5",
    "--worker-ttl",
    "20",
    "--job-monitoring-interval",
    "5",
)
RECOVERY_PROCS = 3  # rq worker processes per host in ``recovery`` (4 jobs, 1 job each)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--worker-class",
        choices=("SimpleWorker", "Worker"),
        default="SimpleWorker",
        help="RQ worker class (SimpleWorker: RQ's advice for very short jobs)",
    )


def rq_bin() -> str:
    return str(Path(sys.executable).parent / "rq")


def flush(conn: redis.Redis) -> None:
    """Delete RQ's keys only (others may share db 9 while we develop)."""
    keys = list(conn.scan_iter(match=f"{RQ_KEY_PREFIX}:*", count=10_000))
    for i in range(0, len(keys), 1000):
        conn.delete(*keys[i : i + 1000])


def worker_argv(worker_class: str) -> list[str]:
    return [
        rq_bin(), "worker", "--url", common.REDIS_URL, "--path", ".",
        "--worker-class", f"rq.worker.{worker_class}", *MAINTENANCE,
        "--disable-job-desc-logging", rq_jobs.QUEUE,
    ]  # fmt: skip


def start_host(procs: Procs, marks: Marks, argv: list[str], n: int) -> subprocess.Popen[bytes]:
    """``n`` rq worker processes in one process group (a "host": killed together)."""
    cmd = " ".join(f"{shlex.join(argv)} &" for _ in range(n)) + " wait"
    return procs.start(["sh", "-c", cmd], marks.env())


def session_pids(sid: int) -> list[int]:
    """Processes of session ``sid``: a forking ``Worker``'s work horse leaves its parent's
    process group (``os.setpgrp``) but not its session."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:  # field 6 of proc(5): session id
                pids.append(int(stat.parent.name))
    return pids


def kill_session(procs: Procs, sid: int) -> None:
    """SIGKILL every process of the session of one of our workers (``procs``) — never
    another session (ours, or anyone else's)."""
    if sid not in {p.pid for p in procs.popens} or sid == os.getsid(0):
        raise RuntimeError(f"session {sid} is not one of our workers'")
    for pid in session_pids(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def measure_recovery(
    marks: Marks, procs: Procs, tags: list[str], cap: float
) -> tuple[float | None, str]:
    """``common.measure_recovery`` by session instead of process group (see
    ``session_pids``): SIGKILL every process of the host holding most of ``tags``."""
    if not marks.wait(len(tags), 60, procs):
        return None, "the jobs never started"
    firsts: dict[str, common.Mark] = {}
    for m in sorted(marks.read(), key=lambda m: m.at):
        firsts.setdefault(m.tag, m)
    host = {t: os.getsid(firsts[t].pid) for t in tags}
    victim = max(set(host.values()), key=lambda sid: list(host.values()).count(sid))
    held = [t for t in tags if host[t] == victim]
    t0 = time.time()
    procs.asked_to_stop.add(victim)
    kill_session(procs, victim)
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        seen: dict[str, list[float]] = {}
        for m in marks.read():
            seen.setdefault(m.tag, []).append(m.at)
        if all(len(seen.get(t, [])) >= 2 for t in held):
            return max(max(seen[t]) for t in held) - t0, f"{len(held)} jobs held"
        time.sleep(0.05)
    counts = {t: sum(1 for m in marks.read() if m.tag == t) for t in held}
    ran_again = sum(1 for c in counts.values() if c >= 2)
    return None, f"> {cap:g} s ({ran_again}/{len(held)} ran again)"


def enqueue_bulk(queue: Queue, n: int) -> None:
    for lo in range(0, n, BATCH):
        queue.enqueue_many(
            [
                Queue.prepare_data(rq_jobs.mark_job, (str(i),), retry=RETRY)
                for i in range(lo, min(n, lo + BATCH))
            ]
        )


def main() -> None:
    args = common.parse_args(options)
    argv = worker_argv(args.worker_class)
    settings = (
        f"redis; rq worker --worker-class rq.worker.{args.worker_class} "
        f"{' '.join(MAINTENANCE)}; jobs retry=Retry(max=3)"
    )
    conn = redis.Redis.from_url(common.REDIS_URL)
    flush(conn)
    queue = Queue(rq_jobs.QUEUE, connection=conn)
    try:
        with measurement() as (marks, procs):
            try:
                run(args, argv, settings, conn, queue, marks, procs)
            finally:
                for p in procs.popens:  # work horses outlive their worker's group
                    kill_session(procs, p.pid)
    finally:
        flush(conn)


def run(
    args: argparse.Namespace,
    argv: list[str],
    settings: str,
    conn: redis.Redis,
    queue: Queue,
    marks: Marks,
    procs: Procs,
) -> None:
    if args.workload == "enqueue":
        start = time.perf_counter()
        enqueue_bulk(queue, args.n)
        rate = args.n / (time.perf_counter() - start)
        result(
            rate,
            "jobs/s",
            f"redis; Queue.enqueue_many in pipelines of {BATCH:,}, retry=Retry(max=3)",
        )
    elif args.workload == "drain":
        enqueue_bulk(queue, args.n)
        for _ in range(args.workers):
            procs.start(argv, marks.env())
        drain_result(
            marks, args.n, procs, f"{settings}; {args.workers} worker process(es)", ["redis"]
        )
    elif args.workload == "latency":
        procs.start(argv, marks.env())
        p50, p99 = measure_latency(
            marks, args.samples, lambda tag: queue.enqueue(rq_jobs.mark_job, tag, retry=RETRY)
        )
        result(p50, "ms", f"{settings}; 1 worker process", p99=p99)
    elif args.workload == "periodic":
        procs.start(argv, marks.env())
        cron = [rq_bin(), "cron", "--url", common.REDIS_URL, "--path", ".", "systems.rq_jobs"]
        procs.start(cron, {**marks.env(), "BENCH_RQ_CRON": "1"})
        time.sleep(args.seconds + 2)
        procs.check()
        # An interval job is due ``interval`` after its previous enqueue (rq/cron.py
        # CronJob.get_next_enqueue_time); RQ records each enqueue time in the cron job's
        # history (sorted set, score = job.enqueued_at). Intended time of fire k =
        # enqueue time of fire k-1 + 1 s; its job's mark carries its id.
        history = conn.zrange(get_cron_job_history_key("bench.tick"), 0, -1, withscores=True)
        enqueued = sorted((score, job_id.decode()) for job_id, score in history)
        ran = {m.tag.split(" ", 1)[1]: m.at for m in marks.read() if m.tag.startswith("tick ")}
        delays = [
            (ran[job_id] - (prev + 1.0)) * 1000
            for (prev, _), (_, job_id) in itertools.pairwise(enqueued)
            if job_id in ran
        ]  # fire 0 (no predecessor) is the warm-up
        p50, p99 = common.percentiles(delays) if delays else (math.nan, math.nan)
        result(
            p50 if delays else None, "ms",
            f"{settings}; rq cron, cron.register(interval=1); 1 worker process",
            "delay from each fire's due time (previous enqueue + 1 s, as RQ computes it) "
            "to the job's mark; RQ's interval schedule is not anchored to whole seconds",
            p99=p99, fires=len(delays),
        )  # fmt: skip
    elif args.workload == "recovery":
        for _ in range(2):
            start_host(procs, marks, argv, RECOVERY_PROCS)
        time.sleep(1)  # let the workers register before the jobs arrive
        tags = [f"r{i}" for i in range(common.RECOVERY_JOBS)]
        queue.enqueue_many([Queue.prepare_data(rq_jobs.recover, (t,), retry=RETRY) for t in tags])
        seconds, note = measure_recovery(marks, procs, tags, args.cap)
        if seconds is None and args.worker_class == "SimpleWorker":
            note += (
                "; SimpleWorker sends no heartbeat while a job runs, so a dead worker's job "
                "counts as abandoned only job_timeout + 60 s (180 + 60 by default) after it "
                "started, then the next maintenance re-queues it"
            )
        elif seconds is None:
            note += (
                "; a dead worker's job counts as abandoned job_monitoring_interval + 60 s "
                "after its last heartbeat, then the next maintenance re-queues it"
            )
        result(
            seconds, "s",
            f"{settings}; 2 hosts x {RECOVERY_PROCS} rq worker processes, SIGKILL of one host",
            note,
        )  # fmt: skip


if __name__ == "__main__":
    main()
