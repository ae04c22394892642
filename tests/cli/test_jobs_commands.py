"""``tock jobs list | show | retry | cancel | delete | run-now``."""

from __future__ import annotations

import json

import pytest
from conftest import ensure_worker

from tock import JobStatus
from tock.jobs import Outcome, OutcomeKind, Start

from .helpers import Project, assert_error, ids_in_table


@pytest.fixture
def jobs(project: Project) -> dict[str, int]:
    """One job in each state a human meets: succeeded, failed, pending, running, and
    claimed (running, not started)."""
    mod = project.mod
    ok = mod.add.enqueue(1, 2)
    bad = mod.boom.enqueue("it broke [red]badly[/red]")
    project.drain()
    pending = mod.add.using(priority=5).enqueue(3, 4)
    running = mod.add.using(queue="held").enqueue(5, 6)
    claimed = mod.add.using(queue="held").enqueue(7, 8)
    store = project.app.store
    ensure_worker(store, "w-test")
    records = store.job_claim_batch(worker_id="w-test", queues=["held"], limit=2, free=2, now=None)
    assert [r.id for r in records] == [running.id, claimed.id]
    assert records[0].claim_token is not None
    store.job_complete_batch([], now=None, started=[Start(running.id, records[0].claim_token)])
    return {
        "succeeded": ok.id,
        "failed": bad.id,
        "pending": pending.id,
        "running": running.id,
        "claimed": claimed.id,
    }


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
    # An attempt counts when it starts: a claimed job has used none yet.
    assert rows[jobs["running"]].split()[1:5] == ["cliapp.add", "held", "running", "1"]
    assert rows[jobs["claimed"]].split()[1:5] == ["cliapp.add", "held", "claimed", "0"]


@pytest.mark.parametrize(
    ("args", "wanted"),
    [
        (["--state", "failed"], ["failed"]),
        (["--state", "FAILED,succeeded"], ["failed", "succeeded"]),
        (["-s", "failed", "-s", "pending"], ["failed", "pending"]),
        (["--queue", "held"], ["running", "claimed"]),
        (["--task", "cliapp.boom"], ["failed"]),
        (["--task", "cliapp.add", "--state", "pending,running"], ["pending", "running"]),
        (["--state", "claimed"], ["claimed"]),
        (["--state", "running,claimed"], ["running", "claimed"]),
        (["-s", "claimed", "-s", "failed"], ["claimed", "failed"]),
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
    for state in (*JobStatus, "claimed"):
        assert state in line


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


def test_show_claimed_and_running_jobs(project: Project, jobs: dict[str, int]) -> None:
    def fields(job_id: int) -> dict[str, str]:
        result = project.invoke("jobs", "show", str(job_id))
        assert result.exit_code == 0, result.output
        return {
            line.split(":", 1)[0]: line.split(":", 1)[1].strip()
            for line in result.stdout.splitlines()
            if ":" in line and not line.startswith(" ")
        }

    claimed, running = fields(jobs["claimed"]), fields(jobs["running"])
    assert claimed["status"] == "claimed (running, not started yet)"
    assert (claimed["attempts"], claimed["started_at"]) == ("0", "-")
    assert running["status"] == "running"
    assert running["attempts"] == "1" and running["started_at"] != "-"


def _succeeded_after_a_retry(project: Project) -> tuple[int, int, int]:
    """Jobs that raised once: one succeeded since, one runs again, one waits to."""
    store = project.app.store
    ids = [project.mod.add.using(queue="r").enqueue(1, 1).id for _ in range(3)]
    ensure_worker(store, "w-retry")
    records = store.job_claim_batch(worker_id="w-retry", queues=["r"], limit=3, free=3, now=None)
    error = json.dumps({"type": "builtins.ValueError", "message": "flaky", "traceback": "tb"})
    store.job_complete_batch(
        [Outcome(r.id, r.claim_token, OutcomeKind.RETRY, error=error) for r in records], now=None
    )
    again = store.job_claim_batch(worker_id="w-retry", queues=["r"], limit=2, free=2, now=None)
    assert [r.id for r in again] == ids[:2]
    store.job_complete_batch(
        [Outcome(ids[0], again[0].claim_token, OutcomeKind.SUCCEEDED, result="2")], now=None
    )
    assert store.job_get(ids[0]).error is not None  # kept, as history
    return ids[0], ids[1], ids[2]


def test_list_shows_an_error_only_where_it_explains_the_state(project: Project) -> None:
    succeeded, claimed, pending = _succeeded_after_a_retry(project)
    result = project.invoke("jobs", "list", "--queue", "r")
    assert result.exit_code == 0, result.output
    rows = {
        int(line.split()[0]): line
        for line in result.stdout.splitlines()
        if line.split()[:1] and line.split()[0].isdigit()
    }
    assert "succeeded" in rows[succeeded] and "flaky" not in rows[succeeded]
    assert "claimed" in rows[claimed] and "flaky" not in rows[claimed]
    assert "ValueError: flaky" in rows[pending]  # why it is pending: a retry


def test_show_labels_an_earlier_attempts_error_as_history(project: Project) -> None:
    succeeded, _, pending = _succeeded_after_a_retry(project)
    out = project.invoke("jobs", "show", str(succeeded)).stdout
    assert "earlier attempt's error message: flaky" in " ".join(out.split())
    assert "earlier attempt's traceback:" in out
    assert "\nerror type:" not in out
    out = project.invoke("jobs", "show", str(pending)).stdout
    assert "earlier attempt's" not in out
    assert any(line.split() == ["error", "message:", "flaky"] for line in out.splitlines())


def test_show_not_found(project: Project) -> None:
    project.app.migrate()
    assert_error(project.invoke("jobs", "show", "999"), "job 999 not found")


@pytest.mark.parametrize("command", ["show", "retry", "cancel", "delete", "run-now"])
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


def test_list_pages_with_after(project: Project, jobs: dict[str, int]) -> None:
    newest_first = sorted(jobs.values(), reverse=True)
    first = project.invoke("jobs", "list", "--limit", "2")
    assert f"--after {newest_first[1]} shows the next page" in first.stdout
    second = project.invoke("jobs", "list", "--limit", "2", "--after", str(newest_first[1]))
    assert second.exit_code == 0, second.output
    assert ids_in_table(second.stdout) == newest_first[2:4]
    last = project.invoke("jobs", "list", "--after", str(newest_first[3]))
    assert ids_in_table(last.stdout) == newest_first[4:]
    assert "next page" not in last.stdout
    assert_error(project.invoke("jobs", "list", "--after", "0"), "after=")


def test_list_search_by_id_and_unique_key(project: Project, jobs: dict[str, int]) -> None:
    keyed = project.mod.add.using(unique_key="order:17").enqueue(9, 9)
    result = project.invoke("jobs", "list", "--search", "order:17", "--json")
    assert [j["id"] for j in json.loads(result.stdout)] == [keyed.id]
    result = project.invoke("jobs", "list", "--search", str(jobs["failed"]), "--json")
    assert [j["id"] for j in json.loads(result.stdout)] == [jobs["failed"]]


@pytest.mark.parametrize("option", ["--queue", "--task"])
def test_list_refuses_a_name_nothing_can_have(project: Project, option: str) -> None:
    assert_error(project.invoke("jobs", "list", option, "bad/name"), "bad/name")


def test_delete_finished_job(project: Project, jobs: dict[str, int]) -> None:
    result = project.invoke("jobs", "delete", str(jobs["succeeded"]))
    assert result.exit_code == 0, result.output
    assert f"Job {jobs['succeeded']} is deleted." in result.stdout
    assert_error(project.invoke("jobs", "show", str(jobs["succeeded"])), "not found")


@pytest.mark.parametrize("state", ["pending", "running", "claimed"])
def test_delete_refused_for_live_jobs(project: Project, jobs: dict[str, int], state: str) -> None:
    job_id = jobs[state]
    assert_error(
        project.invoke("jobs", "delete", str(job_id)),
        f"cannot delete job {job_id}: it is {'running' if state == 'claimed' else state}",
    )
    assert project.app.store.job_get(job_id).status is not None


def test_run_now(project: Project) -> None:
    project.app.migrate()
    later = project.mod.add.using(run_after=3600).enqueue(1, 1)
    result = project.invoke("jobs", "run-now", str(later.id))
    assert result.exit_code == 0, result.output
    assert f"Job {later.id} (cliapp.add) is due" in result.stdout
    listed = project.invoke("jobs", "list", "--state", "ready", "--json")
    assert [j["id"] for j in json.loads(listed.stdout)] == [later.id]


def test_run_now_refused(project: Project, jobs: dict[str, int]) -> None:
    job_id = jobs["failed"]
    assert_error(
        project.invoke("jobs", "run-now", str(job_id)),
        f"cannot run job {job_id} now: it is failed",
    )


def test_show_says_what_a_job_waits_on_and_what_waits_on_it(project: Project) -> None:
    mod = project.mod
    a = mod.add.enqueue(1, 2)
    bad = mod.boom.enqueue("no")
    b = mod.add.using(depends_on=[a, bad], on_dependency_failure="run").enqueue(3, 4)
    c = mod.add.using(depends_on=[b]).enqueue(5, 6)
    result = project.invoke("jobs", "list", "--state", "blocked")
    assert result.exit_code == 0, result.output
    assert ids_in_table(result.stdout) == [c.id, b.id]
    out = project.invoke("jobs", "show", str(b.id)).stdout
    assert f"waits on:     {a.id} (pending), {bad.id} (pending)" in out
    assert "2 not met yet; if one fails, is lost or canceled, it runs anyway" in out
    assert f"waited on by: {c.id} (blocked)" in out
    shown = json.loads(project.invoke("jobs", "show", str(c.id), "--json").stdout)
    assert shown["status"] == "blocked"
    assert shown["dependencies"] == {
        "depends_on": [{"id": b.id, "status": "blocked"}],
        "dependents": [],
        "waiting_on": 1,
        "on_failure": "cancel",
        "canceled_by": None,
    }
    project.drain()
    out = project.invoke("jobs", "show", str(b.id)).stdout
    assert f"waits on:     {a.id} (succeeded), {bad.id} (failed)" in out
    assert "all ended" in out
    plain = project.invoke("jobs", "show", str(a.id)).stdout
    assert "waits on" not in plain and f"waited on by: {b.id} (succeeded)" in plain
