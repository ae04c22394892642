"""``tock workers list | stop``, ``tock jobs stop``, ``tock queues pause | resume | list``:
what each says, its ``--json``, exit codes and errors. The commands reaching real worker
processes are tested in tests/crash/test_commands.py."""

from __future__ import annotations

import json

import pytest
from conftest import ensure_worker

from tock import JobStatus
from tock.jobs import Outcome, OutcomeKind
from tock.store import WorkerCommands

from .helpers import Project, assert_error

WORKER_KEYS = {
    "id", "hostname", "pid", "queues", "concurrency", "running", "claimed", "started_at",
    "heartbeat_age", "live", "leader",
}  # fmt: skip


@pytest.fixture(autouse=True)
def migrated(project: Project) -> None:
    project.app.migrate()  # as `tock migrate` leaves it: the commands read an existing store


def claimed_job(project: Project, worker: str = "w-test") -> int:
    project.mod.add.enqueue(1, 2)
    store = project.app.store
    ensure_worker(store, worker)
    (record,) = store.job_claim_batch(
        worker_id=worker, queues=["default"], limit=1, free=1, now=None
    )
    return record.id


# -- workers -------------------------------------------------------------------------


def test_workers_list(project: Project) -> None:
    result = project.invoke("workers", "list")
    assert result.exit_code == 0, result.output
    assert "No live workers: start one with `tock worker`." in result.stdout
    assert json.loads(project.invoke("workers", "list", "--json").stdout) == []
    ensure_worker(project.app.store, "w-test")
    result = project.invoke("workers", "list")
    assert result.exit_code == 0, result.output
    assert "w-test" in result.stdout and "Workers (1)" in result.stdout
    (listed,) = json.loads(project.invoke("workers", "list", "--json").stdout)
    assert set(listed) == WORKER_KEYS
    assert (listed["id"], listed["queues"], listed["live"]) == ("w-test", ["default"], True)


def test_workers_stop(project: Project) -> None:
    ensure_worker(project.app.store, "w-test")
    result = project.invoke("workers", "stop", "w-test")
    assert result.exit_code == 0, result.output
    assert "Worker w-test is asked to stop" in result.stdout
    assert project.app.store.worker_commands("w-test") == WorkerCommands(stop=True)


def test_workers_stop_unknown(project: Project) -> None:
    ensure_worker(project.app.store, "w-test")
    assert_error(project.invoke("workers", "stop", "w-nobody"), "worker 'w-nobody' not found")
    assert project.app.store.worker_commands("w-test") == WorkerCommands()


def test_workers_stop_empty_id(project: Project) -> None:
    assert_error(project.invoke("workers", "stop", " "), "a worker id is a non-empty string")


def test_workers_stop_needs_an_id(project: Project) -> None:
    result = project.invoke("workers", "stop")
    assert result.exit_code == 2
    assert "Missing argument 'WORKER_ID'" in result.stderr


# -- jobs stop -----------------------------------------------------------------------


def test_jobs_stop_running(project: Project) -> None:
    job_id = claimed_job(project)
    result = project.invoke("jobs", "stop", str(job_id))
    assert result.exit_code == 0, result.output
    assert (
        f"Job {job_id} (cliapp.add) is asked to stop; its worker w-test stops it" in result.stdout
    )
    store = project.app.store
    assert store.worker_commands("w-test") == WorkerCommands(stop_jobs=frozenset({job_id}))
    assert store.job_get(job_id).status is JobStatus.RUNNING


def test_jobs_stop_pending(project: Project) -> None:
    job = project.mod.add.enqueue(1, 2)
    result = project.invoke("jobs", "stop", str(job.id))
    assert result.exit_code == 0, result.output
    assert f"Job {job.id} (cliapp.add) is canceled." in result.stdout
    assert project.app.store.job_get(job.id).status is JobStatus.CANCELED


def test_jobs_stop_finished_is_refused(project: Project) -> None:
    job_id = claimed_job(project)
    store = project.app.store
    token = store.job_get(job_id).claim_token
    assert token is not None
    outcome = Outcome(job_id, token, OutcomeKind.SUCCEEDED, result="3")
    assert store.job_complete_batch([outcome], now=None) == 1
    assert_error(
        project.invoke("jobs", "stop", str(job_id)),
        f"cannot stop job {job_id}: it is succeeded already",
    )
    assert store.job_get(job_id).status is JobStatus.SUCCEEDED


def test_jobs_stop_not_found(project: Project) -> None:
    assert_error(project.invoke("jobs", "stop", "4242"), "job 4242 not found")


def test_jobs_stop_bad_id(project: Project) -> None:
    result = project.invoke("jobs", "stop", "0")
    assert result.exit_code == 2
    assert "0 is not a job id" in result.stderr


# -- queues --------------------------------------------------------------------------


def test_queues_pause_resume_and_list(project: Project) -> None:
    project.mod.add.enqueue(1, 2)
    result = project.invoke("queues", "pause", "emails")
    assert result.exit_code == 0, result.output
    assert "Queue 'emails' is paused" in result.stdout
    listed = project.invoke("queues", "list")
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert "since" in rows["emails"] and rows["default"].split()[1] == "no"
    as_json = json.loads(project.invoke("queues", "list", "--json").stdout)
    assert [(q["name"], q["paused"]) for q in as_json] == [("default", False), ("emails", True)]
    assert as_json[1]["paused_at"] is not None and as_json[1]["pending"] == 0
    status = json.loads(project.invoke("status", "--json").stdout)
    assert status["queues"]["emails"]["paused"] is True
    assert "emails (paused)" in project.invoke("status").stdout
    result = project.invoke("queues", "resume", "emails")
    assert result.exit_code == 0, result.output
    assert "Queue 'emails' is resumed." in result.stdout
    as_json = json.loads(project.invoke("queues", "list", "--json").stdout)
    assert [(q["name"], q["paused"]) for q in as_json] == [("default", False)]


def test_queues_list_empty(project: Project) -> None:
    result = project.invoke("queues", "list")
    assert result.exit_code == 0, result.output
    assert "No queues yet" in result.stdout
    assert json.loads(project.invoke("queues", "list", "--json").stdout) == []


def test_queues_pause_bad_name(project: Project) -> None:
    for verb in ("pause", "resume"):
        assert_error(project.invoke("queues", verb, "no spaces"), "invalid queue name 'no spaces'")
    assert project.app.store.queue_list() == []


def test_paused_queue_with_ready_jobs_is_no_problem(project: Project) -> None:
    ensure_worker(project.app.store, "w-test")  # serves default
    project.mod.add.using(queue="emails").enqueue(1, 2)
    assert project.invoke("status", "--check").exit_code == 1  # nobody serves emails
    assert project.invoke("queues", "pause", "emails").exit_code == 0
    result = project.invoke("status", "--check")
    assert "emails" not in result.stderr
