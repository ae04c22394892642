"""A chord across real worker processes, one of them killed (docs/workflows.md:
crashes): a member lost with its worker is rescued like any job, so the callback runs,
once, with every member's result."""

from __future__ import annotations

import random
import signal

import pytest

from tock import JobStatus, chord, group

from .cluster import Cluster, cli_worker

pytestmark = pytest.mark.slow


def test_a_chord_s_callback_runs_once_with_every_result_after_a_sigkill(
    cluster: Cluster,
) -> None:
    """A chord of 200 members on three workers; one worker is SIGKILLed while it runs
    members. Its members are rescued and run again elsewhere; the callback runs once,
    with the 200 results in the members' order."""
    rng = random.Random(20301206)
    sleepy = cluster.app.tasks["crash.sleepy"]
    gather = cluster.app.tasks["crash.gather"]
    tags = [f"m{i}" for i in range(200)]
    wf = chord(group(sleepy.s(rng.randint(50, 150), t) for t in tags), gather.s("callback"))
    handle = wf.enqueue()
    workers = [cluster.start_worker(f"w{i}", cli_worker("--concurrency", "10")) for i in range(3)]
    cluster.wait_for(
        "three workers", lambda: all(cluster.worker_row(w) is not None for w in workers), 60
    )
    victim = workers[0]
    row = cluster.worker_row(victim)
    assert row is not None
    cluster.wait_for(
        "the victim to run members",
        lambda: any(j.started_at for j in cluster.running_jobs(row.id)),
        60,
    )
    cluster.kill(victim)
    assert victim.popen.wait(10) == -signal.SIGKILL
    assert handle.result(timeout=120) == tags
    for w in workers[1:]:
        assert cluster.stop(w) == 0

    members, callback = handle.jobs[:-1], handle.jobs[-1]
    records = [m.refresh().record for m in members]
    assert all(r.status is JobStatus.SUCCEEDED for r in records)
    assert any(r.rescues for r in records), "the victim held no member"
    assert callback.refresh().status is JobStatus.SUCCEEDED
    starts = cluster.starts()
    assert len(starts["callback"]) == 1  # released once, though members ran twice
    assert callback.record.args[0] == [[t, r.result[1]] for t, r in zip(tags, records, strict=True)]
    cluster.assert_clean_output()
