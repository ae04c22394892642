"""Commands to real worker processes through the store (docs/design.md: Commands), given
with the real command line: `tock workers stop`, `tock jobs stop`, `tock queues pause`
and `resume`. Each test runs on SQLite and on PostgreSQL; waits poll with deadlines and
no test asserts a duration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tock import JobStatus
from tock.jobs import JobRecord

from .cluster import HERE, Cluster, WorkerProcess, cli_worker, runner_worker

pytestmark = pytest.mark.slow

WAIT = 60


def tock_cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """`tock --app crashapp:app ...` in a process of its own, on the cluster's store."""
    env = dict(os.environ, TOCK_URL=cluster.url)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "tock", "--app", "crashapp:app", *args],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def worker_id(cluster: Cluster, worker: WorkerProcess) -> str:
    cluster.wait_for(f"{worker.name} to register", lambda: cluster.worker_row(worker), WAIT)
    row = cluster.worker_row(worker)
    assert row is not None
    return row.id


def job(cluster: Cluster, job_id: int) -> JobRecord:
    return cluster.app.store.job_get(job_id)


def wait_status(cluster: Cluster, job_id: int, status: JobStatus) -> JobRecord:
    cluster.wait_for(
        f"job {job_id} to be {status}", lambda: job(cluster, job_id).status is status, WAIT
    )
    return job(cluster, job_id)


def wait_started(cluster: Cluster, tag: str) -> None:
    cluster.wait_for(f"{tag} to start", lambda: tag in cluster.starts(), WAIT)


def test_workers_stop_shuts_a_worker_down_as_sigterm_does(cluster: Cluster) -> None:
    """The claimed job is handed back unstarted (no attempt used), the running one
    finishes, the worker removes its row and exits 0."""
    worker = cluster.start_worker("w", cli_worker("--concurrency", "1", "--prefetch", "1"))
    wid = worker_id(cluster, worker)
    gate = cluster.dir / "gate"
    running = cluster.app.tasks["crash.gated"].enqueue("running", str(gate))
    waiting = cluster.app.tasks["crash.sleepy"].enqueue(10, "waiting")
    wait_started(cluster, "running")
    cluster.wait_for(
        "the second job to be claimed",
        lambda: job(cluster, waiting.id).status is JobStatus.RUNNING,
        WAIT,
    )
    listed = tock_cli(cluster, "workers", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert wid in listed.stdout
    result = tock_cli(cluster, "workers", "stop", wid)
    assert result.returncode == 0, result.stderr
    assert f"Worker {wid} is asked to stop" in result.stdout
    cluster.expected_dead.add(worker.pid)
    cluster.wait_for(
        "the claimed job to be handed back",
        lambda: job(cluster, waiting.id).status is JobStatus.PENDING,
        WAIT,
    )
    assert worker.popen.poll() is None  # still waiting for its running job
    gate.touch()
    assert worker.popen.wait(WAIT) == 0
    assert job(cluster, running.id).status is JobStatus.SUCCEEDED
    back = job(cluster, waiting.id)
    assert back.status is JobStatus.PENDING and back.attempts == 0
    assert "waiting" not in cluster.starts()
    assert cluster.worker_rows() == []
    assert "was asked to stop (tock workers stop)" in worker.output_path.read_text()
    cluster.assert_clean_output()


def test_workers_stop_of_an_unknown_worker(cluster: Cluster) -> None:
    result = tock_cli(cluster, "workers", "stop", "nobody-1")
    assert result.returncode == 1
    assert "worker 'nobody-1' not found" in result.stderr


@pytest.mark.parametrize("task", ["crash.hold", "crash.ahold"])
def test_jobs_stop_of_a_running_job(cluster: Cluster, task: str) -> None:
    """A sync task sees ctx.canceled, an async one is cancelled; the job ends canceled
    and is not retried though it raised with retries left."""
    worker = cluster.start_worker("w", cli_worker())
    worker_id(cluster, worker)
    held = cluster.app.tasks[task].enqueue("held")
    wait_started(cluster, "held")
    result = tock_cli(cluster, "jobs", "stop", str(held.id))
    assert result.returncode == 0, result.stderr
    assert f"Job {held.id} ({task}) is asked to stop" in result.stdout
    record = wait_status(cluster, held.id, JobStatus.CANCELED)
    assert record.attempts == 1 and record.retries == 3
    marker = "held:canceled" if task == "crash.hold" else "held:cancelled"
    cluster.wait_for("the task to see its stop", lambda: marker in cluster.starts(), WAIT)
    assert len(cluster.starts()["held"]) == 1  # started once, never again
    again = tock_cli(cluster, "jobs", "stop", str(held.id))
    assert again.returncode == 1
    assert f"cannot stop job {held.id}: it is canceled already" in again.stderr
    assert cluster.stop(worker) == 0
    assert len(cluster.starts()["held"]) == 1
    cluster.assert_clean_output()


def test_jobs_stop_of_a_claimed_job_that_never_starts(cluster: Cluster) -> None:
    """Concurrency 1: a long job runs, the next waits in the prefetch. Stopped, it ends
    canceled without its body running; the running one is untouched until stopped."""
    worker = cluster.start_worker("w", cli_worker("--concurrency", "1", "--prefetch", "1"))
    worker_id(cluster, worker)
    first = cluster.app.tasks["crash.hold"].enqueue("first")
    second = cluster.app.tasks["crash.sleepy"].enqueue(10, "second")
    wait_started(cluster, "first")
    cluster.wait_for(
        "the second job to be claimed",
        lambda: job(cluster, second.id).status is JobStatus.RUNNING,
        WAIT,
    )
    assert job(cluster, second.id).started_at is None
    result = tock_cli(cluster, "jobs", "stop", str(second.id))
    assert result.returncode == 0, result.stderr
    stopped = wait_status(cluster, second.id, JobStatus.CANCELED)
    assert stopped.attempts == 0 and stopped.started_at is None
    assert "second" not in cluster.starts()
    assert job(cluster, first.id).status is JobStatus.RUNNING
    assert tock_cli(cluster, "jobs", "stop", str(first.id)).returncode == 0
    wait_status(cluster, first.id, JobStatus.CANCELED)
    assert cluster.stop(worker) == 0
    assert "second" not in cluster.starts()
    cluster.assert_clean_output()


def test_jobs_stop_of_a_pending_job_cancels_it(cluster: Cluster) -> None:
    pending = cluster.app.tasks["crash.sleepy"].enqueue(10, "never")
    result = tock_cli(cluster, "jobs", "stop", str(pending.id))
    assert result.returncode == 0, result.stderr
    assert f"Job {pending.id} (crash.sleepy) is canceled." in result.stdout
    assert job(cluster, pending.id).status is JobStatus.CANCELED


def test_queues_pause_and_resume(cluster: Cluster) -> None:
    """A paused queue's jobs stay pending while another queue's run; resumed, they run."""
    worker = cluster.start_worker("w", cli_worker("--queues", "default,slow"))
    worker_id(cluster, worker)
    result = tock_cli(cluster, "queues", "pause", "slow")
    assert result.returncode == 0, result.stderr
    sleepy = cluster.app.tasks["crash.sleepy"]
    held = sleepy.using(queue="slow").enqueue(10, "held")
    free = sleepy.enqueue(10, "free")
    wait_status(cluster, free.id, JobStatus.SUCCEEDED)
    status = tock_cli(cluster, "status", "--json")
    assert '"paused": true' in status.stdout
    listed = tock_cli(cluster, "queues", "list")
    assert listed.returncode == 0 and "slow" in listed.stdout and "since" in listed.stdout
    assert job(cluster, held.id).status is JobStatus.PENDING
    assert "held" not in cluster.starts()
    result = tock_cli(cluster, "queues", "resume", "slow")
    assert result.returncode == 0, result.stderr
    wait_status(cluster, held.id, JobStatus.SUCCEEDED)
    assert cluster.stop(worker) == 0
    cluster.assert_clean_output()


def test_a_stopped_job_whose_worker_dies_ends_canceled(cluster: Cluster) -> None:
    """The worker is paused (SIGSTOP) so it cannot act on the stop, then killed: the
    rescuer of another worker cancels the job instead of rescuing it, and it never runs
    again though it has retries left."""
    fast = ("--heartbeat", "0.5", "--rescue-after", "5", "--rescue-interval", "0.5")
    doomed_worker = cluster.start_worker("doomed", runner_worker(*fast))
    worker_id(cluster, doomed_worker)
    held = cluster.app.tasks["crash.hold"].enqueue("doomed")
    wait_started(cluster, "doomed")
    cluster.kill(doomed_worker, signal.SIGSTOP)
    cluster.wait_paused(doomed_worker)
    result = tock_cli(cluster, "jobs", "stop", str(held.id))
    assert result.returncode == 0, result.stderr
    assert "is asked to stop" in result.stdout
    cluster.kill(doomed_worker)  # SIGKILL
    assert doomed_worker.popen.wait(WAIT) == -signal.SIGKILL
    rescuer = cluster.start_worker("rescuer", runner_worker(*fast))
    record = wait_status(cluster, held.id, JobStatus.CANCELED)
    assert record.retries == 3
    assert cluster.starts()["doomed"] == [doomed_worker.pid]
    assert "doomed:canceled" not in cluster.starts()  # it never learnt of the stop
    assert cluster.stop(rescuer) == 0
    assert cluster.starts()["doomed"] == [doomed_worker.pid]
