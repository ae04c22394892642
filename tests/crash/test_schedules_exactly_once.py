"""Exactly-once fires with several schedulers (docs/design.md: Guarantees; Semantics: schedules).

Three ``tock worker`` processes run the scheduler duty on one store (each test runs on
SQLite and on PostgreSQL); one is SIGKILLed halfway and another takes its place. Every
(schedule, fire time) must become exactly one job: no fire twice, none skipped.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta

import pytest

from tock import JobStatus

from .cluster import Cluster, cli_worker

pytestmark = pytest.mark.slow

EVERY = [f"every-{i}" for i in range(4)]
CRON = "cron-seconds"  # "* * * * * *": every second, seconds as the last field
SECOND = timedelta(seconds=1)


def fired(cluster: Cluster, name: str) -> list:
    return sorted(cluster.app.store.fire_list(name, limit=10_000), key=lambda f: f.at)


def test_three_schedulers_fire_each_time_exactly_once(cluster: Cluster) -> None:
    app = cluster.app
    for name in EVERY:
        app.schedule(name, task="crash.tick", every=1, args=[name])
    app.schedule(CRON, task="crash.tick", cron="* * * * * *", args=[CRON])
    names = [*EVERY, CRON]
    workers = [cluster.start_worker(f"w{i}", cli_worker("--concurrency", "4")) for i in range(3)]

    def each_has(n: int) -> bool:
        return all(len(fired(cluster, name)) >= n for name in names)

    cluster.wait_for("four fires of every schedule", lambda: each_has(4), 60)
    cluster.kill(workers[0])
    assert workers[0].popen.wait(10) == -signal.SIGKILL
    workers.append(cluster.start_worker("w3", cli_worker("--concurrency", "4")))
    # Nine: the pause withdraws a fire made ahead of its time, if it finds one
    # (docs/design.md: "Fires made ahead"), and eight stay.
    cluster.wait_for("nine fires of every schedule", lambda: each_has(9), 60)
    for name in names:
        app.pause_schedule(name)
    cluster.wait_for("every job to finish", lambda: cluster.live_count() == 0, 120)
    for w in workers[1:]:
        assert cluster.stop(w) == 0

    jobs = {j.id: j for j in cluster.jobs() if j.task == "crash.tick"}
    seen_jobs: list[int] = []
    for name in names:
        rows = fired(cluster, name)
        assert len(rows) >= 8
        # Every second from the first fire to the last: one row each, each a job.
        assert [r.at for r in rows] == [rows[0].at + k * SECOND for k in range(len(rows))]
        assert {(r.outcome, r.manual, r.count) for r in rows} == {("enqueued", False, 1)}
        for r in rows:
            job = jobs[r.job_id]
            assert (job.args, job.run_at, job.status) == ([name], r.at, JobStatus.SUCCEEDED)
            seen_jobs.append(r.job_id)
    assert sorted(seen_jobs) == sorted(jobs)  # no job without its fire, none twice
    starts = Counter(tag.split(":")[0] for tag in cluster.starts())
    assert starts == Counter({name: len(fired(cluster, name)) for name in names})
    cluster.assert_clean_output()
