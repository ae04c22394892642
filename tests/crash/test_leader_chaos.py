"""The leader under chaos (docs/design.md: Leader): three worker processes on one store
(SQLite, PostgreSQL) while every-second schedules fire and jobs flow; the leader is
killed, paused past its lease and resumed, and terminated, in turn, twice over.

A SQLite leader is paused outside a write transaction (one paused inside holds the
single write lock and stalls every writer until it resumes: SQLite's, documented).
Afterwards: each schedule's fires cover every second of the window, each fire at most
one job and each job one fire (a stale leader's write changed nothing: the workers log
the writes their store refused), and no job was lost.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from datetime import timedelta

import pytest

from tock import JobStatus

from .cluster import Cluster, WorkerProcess, runner_worker

pytestmark = pytest.mark.slow

SCHEDULES = [f"chaos-{i}" for i in range(3)]
SECOND = timedelta(seconds=1)
LEASE_TTL = 2.0  # short, so that a pause outlives the lease in a couple of seconds
TIMINGS = (
    *("--concurrency", "4", "--heartbeat", "0.5", "--rescue-after", "3"),
    *("--rescue-interval", "0.5", "--lease-ttl", str(LEASE_TTL), "--renew-interval", "0.4"),
)
ACTIONS = ("kill", "pause", "terminate") * 2


def write_locked(cluster: Cluster) -> bool:
    """SQLite: whether a process holds the database's write lock now."""
    path = cluster.url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()  # rolls back
    return False


def pause(cluster: Cluster, worker: WorkerProcess) -> None:
    """SIGSTOP, outside a write transaction on SQLite: a process paused inside one holds
    the write lock, and every writer waits until it resumes (SQLite has one writer), an
    election too. That is SQLite's, not a failover to measure."""
    for _ in range(100):
        worker.popen.send_signal(signal.SIGSTOP)
        cluster.wait_paused(worker)
        if cluster.kind != "sqlite" or not write_locked(cluster):
            return
        worker.popen.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    pytest.fail(f"{worker.name} held the write lock at each of 100 pauses")


def pid_of(worker_id: str) -> int:
    """Worker ids are "<host>-<pid>-<random>" (the host may hold dashes)."""
    return int(worker_id.rsplit("-", 2)[1])


def test_the_leader_killed_paused_and_terminated_in_turn(cluster: Cluster) -> None:
    app = cluster.app
    for name in SCHEDULES:
        app.schedule(name, task="crash.tick", every=1, args=[name])
    workers: dict[int, WorkerProcess] = {}

    def start(name: str) -> None:
        w = cluster.start_worker(name, runner_worker(*TIMINGS))
        workers[w.pid] = w

    def lease():  # type: ignore[no-untyped-def]
        return app.store.leader_get(now=None)

    def leader() -> WorkerProcess:
        cluster.wait_for("a leader", lambda: lease().held, 30)
        return workers[pid_of(str(lease().worker_id))]

    for i in range(3):
        start(f"w{i}")
    jobs = []
    terms = []
    for round_, action in enumerate(ACTIONS):
        jobs += [app.tasks["crash.sleepy"].enqueue(50, f"r{round_}-{k}") for k in range(10)]
        old = leader()
        term = lease().term
        terms.append(term)
        if action == "kill":
            cluster.kill(old)
        elif action == "pause":
            pause(cluster, old)
        else:
            cluster.expected_dead.add(old.pid)
            old.popen.send_signal(signal.SIGTERM)
        cluster.wait_for(
            f"a new leader after the {action}", lambda t=term: lease().held and lease().term > t, 60
        )
        assert pid_of(str(lease().worker_id)) != old.pid
        if action == "pause":
            old.popen.send_signal(signal.SIGCONT)  # back: it must find out and stay quiet
            cluster.wait_for(
                "the resumed leader to stop acting",
                lambda w=old: "stops leading" in w.output_path.read_text(errors="replace"),
                30,
            )
        else:
            assert old.popen.wait(60) in (-signal.SIGKILL, 0)
            start(f"w{len(workers)}")
    for name in SCHEDULES:
        app.pause_schedule(name)
    cluster.wait_for("every job to finish", lambda: cluster.live_count() == 0, 120)
    for w in workers.values():
        if w.popen.poll() is None:
            assert cluster.stop(w) == 0

    # No job lost: every one ran to success (a killed worker's was rescued and re-run).
    assert {app.get_job(j.id).status for j in jobs} == {JobStatus.SUCCEEDED}
    # Every second of each schedule's window is one fire row (or part of a run of drops),
    # each enqueued fire one job, each job one fire.
    ticks = {j.id: j for j in cluster.jobs() if j.task == "crash.tick"}
    seen: list[int] = []
    for name in SCHEDULES:
        rows = sorted(app.store.fire_list(name, limit=10_000), key=lambda f: f.at)
        covered = [r.at + k * SECOND for r in rows for k in range(r.count)]
        assert covered == [rows[0].at + k * SECOND for k in range(len(covered))], name
        for r in rows:
            if r.job_id is None:
                assert r.outcome != "enqueued", r
                continue
            job = ticks[r.job_id]
            assert (job.args, job.run_at) == ([name], r.at)
            seen.append(r.job_id)
    assert sorted(seen) == sorted(ticks)
    starts = Counter(tag.split(":")[0] for tag in cluster.starts() if tag.startswith("chaos"))
    assert sum(starts.values()) >= len(ticks)  # each tick ran (twice only if rescued)
    # Terms only grew, one election at least per action.
    assert terms == sorted(terms) and lease().term >= terms[-1] + 1
    refused = sum(text.count("pass refused") for _, text in cluster.logs())
    print(f"writes refused by fencing: {refused}; terms: {terms}")
    cluster.assert_clean_output()
