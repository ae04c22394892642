"""``tock jobs list | show | retry | cancel``."""

from __future__ import annotations

import pytest
from conftest import ensure_worker

from tock import JobStatus

from .helpers import Project, assert_error, ids_in_table


@pytest.fixture
def jobs(project: Project) -> dict[str, int]:
    """One job in each state a human meets: succeeded, failed, pending, running."""
    mod = project.mod
    ok = mod.add.enqueue(1, 2)
    bad = mod.boom.enqueue("it broke [red]badly[/red]")
    project.drain()
    pending = mod.add.using(priority=5).enqueue(3, 4)
    running = mod.add.using(queue="held").enqueue(5, 6)
    ensure_worker(project.app.store, "w-test")
    (claimed,) = project.app.store.job_claim_batch(
        worker_id="w-test", queues=["held"], limit=1, free=1, now=None
    )
    assert claimed.id == running.id
    return {"succeeded": ok.id, "failed": bad.id, "pending": pending.id, "running": running.id}


def test_list_newest_first(project: Project, jobs: dict[str, int]) -> None:
    result = project.invoke("jobs", "list")
    assert result.exit_code == 0, result.output
    assert ids_in_table(result.stdout) == sorted(jobs.values(), reverse=True)
    rows = {
        int(line.split()[0]): line
        for line in result.stdout.splitlines()
        if line.split()[:1] and line.split()[0].isdigit()
    }
    assert "cliapp.boom" in rows[jobs["failed"]]
    assert "failed" in rows[jobs["failed"]]
    # User text is shown as it is, never read as rich markup.
    assert "ValueError: it broke [red]badly[/red]" in rows[jobs["failed"]]
    # ID, Task, Queue, Status, Attempts, Priority, Run at/finished, Error
    assert rows[jobs["pending"]].split()[1:6] == ["cliapp.add", "default", "pending", "0", "5"]
    assert "held" in rows[jobs["running"]]


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["--state", "failed"], ["failed"]),
        (["--state", "FAILED,succeeded"], ["failed", "succeeded"]),
        (["-s", "failed", "-s", "pending"], ["failed", "pending"]),
        (["--queue", "held"], ["running"]),
        (["--task", "cliapp.boom"], ["failed"]),
        (["--task", "cliapp.add", "--state", "pending,running"], ["pending", "running"]),
    ],
)
def test_list_filters(
    project: Project, jobs: dict[str, int], args: list[str], wanted: list[str]
) -> None:
    result = project.invoke("jobs", "list", *args)
    assert result.exit_code == 0, result.output
    assert ids_in_table(result.stdout) == sorted((jobs[w] for w in wanted), reverse=True)


def test_list_limit(project: Project, jobs: dict[str, int]) -> None:
    result = project.invoke("jobs", "list", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert ids_in_table(result.stdout) == sorted(jobs.values(), reverse=True)[:2]
    assert "--limit shows more" in result.stdout


def test_list_nothing(project: Project, jobs: dict[str, int]) -> None:
    result = project.invoke("jobs", "list", "--queue", "nobody-uses-this")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No jobs match."


def test_list_unknown_state(project: Project) -> None:
    line = assert_error(project.invoke("jobs", "list", "--state", "failed,bogus"), "'bogus'")
    for state in JobStatus:
        assert state.value in line


def test_list_bad_limit(project: Project) -> None:
    assert_error(project.invoke("jobs", "list", "--limit", "0"), "--limit")
    assert project.invoke("jobs", "list", "--limit", "many").exit_code == 2


def test_show_failed_job(project: Project, jobs: dict[str, int]) -> None:
    result = project.invoke("jobs", "show", str(jobs["failed"]))
    assert result.exit_code == 0, result.output
    out = result.stdout
    fields = {
        line.split(":", 1)[0]: line.split(":", 1)[1].strip()
        for line in out.splitlines()
        if ":" in line and not line.startswith(" ")
    }
    for name in (
        "id", "task", "status", "queue", "priority", "args", "kwargs", "run_at", "created_at",
        "attempts", "rescues", "retries", "retry_backoff", "retry_on", "timeout",
        "at_most_once", "max_rescues", "unique_key", "started_at", "finished_at",
        "worker_id", "claim_token", "result", "error type", "error message", "traceback",
    ):  # fmt: skip
        assert name in fields, name
    assert fields["id"] == str(jobs["failed"])
    assert fields["status"] == "failed"
    assert fields["args"] == '["it broke [red]badly[/red]"]'
    assert fields["kwargs"] == "{}"
    assert fields["attempts"] == "1"
    assert fields["error type"] == "builtins.ValueError"
    assert fields["error message"] == "it broke [red]badly[/red]"
    traceback = out.split("traceback:", 1)[1]
    assert "Traceback (most recent call last)" in traceback
    assert "raise ValueError(message)" in traceback


def test_show_succeeded_job(project: Project, jobs: dict[str, int]) -> None:
    result = project.invoke("jobs", "show", str(jobs["succeeded"]))
    assert result.exit_code == 0, result.output
    assert "result:" in result.stdout
    assert any(line.split() == ["result:", "3"] for line in result.stdout.splitlines())
    assert "traceback" not in result.stdout


def test_show_not_found(project: Project) -> None:
    assert_error(project.invoke("jobs", "show", "999"), "job 999 not found")


@pytest.mark.parametrize("command", ["show", "retry", "cancel"])
@pytest.mark.parametrize("bad_id", ["abc", "1.5", "0", "-3", str(2**63)])
def test_bad_id_is_a_usage_error(project: Project, command: str, bad_id: str) -> None:
    result = project.invoke("jobs", command, "--", bad_id)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_retry_failed_job(project: Project, jobs: dict[str, int]) -> None:
    result = project.invoke("jobs", "retry", str(jobs["failed"]))
    assert result.exit_code == 0, result.output
    assert f"Job {jobs['failed']} (cliapp.boom) is pending again" in result.stdout
    record = project.app.store.job_get(jobs["failed"])
    assert record.status is JobStatus.PENDING
    assert record.attempts == 0


def test_retry_canceled_job(project: Project, jobs: dict[str, int]) -> None:
    assert project.invoke("jobs", "cancel", str(jobs["pending"])).exit_code == 0
    assert project.invoke("jobs", "retry", str(jobs["pending"])).exit_code == 0
    assert project.app.store.job_get(jobs["pending"]).status is JobStatus.PENDING


@pytest.mark.parametrize("state", ["succeeded", "pending", "running"])
def test_retry_refused(project: Project, jobs: dict[str, int], state: str) -> None:
    job_id = jobs[state]
    assert_error(
        project.invoke("jobs", "retry", str(job_id)),
        f"cannot retry job {job_id}: it is {state}",
    )
    assert project.app.store.job_get(job_id).status.value == state


def test_retry_not_found(project: Project) -> None:
    assert_error(project.invoke("jobs", "retry", "4242"), "job 4242 not found")


def test_cancel_pending_job(project: Project, jobs: dict[str, int]) -> None:
    result = project.invoke("jobs", "cancel", str(jobs["pending"]))
    assert result.exit_code == 0, result.output
    assert f"Job {jobs['pending']} (cliapp.add) is canceled." in result.stdout
    assert project.app.store.job_get(jobs["pending"]).status is JobStatus.CANCELED


@pytest.mark.parametrize("state", ["running", "succeeded", "failed"])
def test_cancel_refused(project: Project, jobs: dict[str, int], state: str) -> None:
    job_id = jobs[state]
    assert_error(
        project.invoke("jobs", "cancel", str(job_id)),
        f"cannot cancel job {job_id}: it is {state}",
    )
    assert project.app.store.job_get(job_id).status.value == state


def test_cancel_not_found(project: Project) -> None:
    assert_error(project.invoke("jobs", "cancel", "4242"), "job 4242 not found")
