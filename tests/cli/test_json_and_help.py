"""``--json`` on the listing commands (stable keys, ISO times, null where absent), and
help texts as people read them."""

from __future__ import annotations

import json
from datetime import datetime

import click
import pytest
from click.testing import CliRunner

from tock.cli.main import cli

from .helpers import Project

JOB_KEYS = {
    "id", "task", "queue", "priority", "status", "claimed", "args", "kwargs", "run_at",
    "created_at", "started_at", "finished_at", "attempts", "rescues", "retries",
    "retry_backoff", "retry_on", "timeout", "at_most_once", "max_rescues", "unique_key",
    "worker_id", "result", "error", "last_error",
}  # fmt: skip
SCHEDULE_KEYS = {
    "name", "task", "schedule", "trigger", "state", "source", "args", "kwargs", "queue",
    "priority", "misfire", "grace", "overlap", "enabled", "paused", "next_fire_at",
    "last_fire_at", "last_job_id", "last_status", "depends_on", "depends_on_unknown",
    "future_depends", "depends_on_outcome",
}  # fmt: skip


def _json(project: Project, *args: str) -> object:
    result = project.invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_jobs_list_and_show_json(project: Project) -> None:
    ok = project.mod.add.enqueue(1, 2)
    bad = project.mod.boom.enqueue("nope")
    project.drain()
    waiting = project.mod.add.using(queue="later").enqueue(3, 4)
    listed = _json(project, "jobs", "list")
    assert isinstance(listed, list)
    assert [j["id"] for j in listed] == [waiting.id, bad.id, ok.id]  # newest first
    assert all(set(j) == JOB_KEYS for j in listed)
    by_id = {j["id"]: j for j in listed}
    assert (by_id[ok.id]["status"], by_id[ok.id]["result"]) == ("succeeded", 3)
    assert by_id[ok.id]["error"] is None and by_id[ok.id]["claimed"] is False
    failed = by_id[bad.id]
    assert failed["status"] == "failed"
    assert failed["error"]["message"] == "nope" and failed["error"] == failed["last_error"]
    assert by_id[waiting.id]["started_at"] is None and by_id[waiting.id]["finished_at"] is None
    datetime.fromisoformat(by_id[ok.id]["finished_at"])
    shown = _json(project, "jobs", "show", str(bad.id))
    assert shown.pop("dependencies") == {
        "depends_on": [],
        "dependents": [],
        "waiting_on": 0,
        "on_failure": None,
        "canceled_by": None,
    }
    assert shown == failed
    assert _json(project, "jobs", "list", "--state", "pending") == [by_id[waiting.id]]


def test_jobs_list_json_of_nothing_is_an_empty_list(project: Project) -> None:
    project.app.migrate()
    assert _json(project, "jobs", "list") == []


def test_schedules_list_and_show_json(project: Project) -> None:
    project.mod.app.schedule(
        "report", task=project.mod.add, cron="0 2 * * *", timezone="Europe/Berlin",
        kwargs={"a": 1, "b": 2},
    )  # fmt: skip
    project.invoke("schedules", "trigger", "report")
    (listed,) = _json(project, "schedules", "list")  # type: ignore[misc]
    assert set(listed) == SCHEDULE_KEYS
    assert listed["trigger"] == {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}
    assert (listed["state"], listed["source"], listed["queue"]) == ("active", "dynamic", None)
    assert listed["grace"] == 60.0
    datetime.fromisoformat(listed["next_fire_at"])
    shown = _json(project, "schedules", "show", "report")
    assert isinstance(shown, dict)
    assert set(shown) == SCHEDULE_KEYS | {"created_at", "updated_at", "fires"}
    assert {k: shown[k] for k in SCHEDULE_KEYS} == listed
    (fire,) = shown["fires"]
    assert (fire["outcome"], fire["manual"], fire["count"]) == ("triggered", True, 1)
    assert fire["job_id"] == listed["last_job_id"]


def _commands(cmd: click.Command, path: list[str]) -> list[list[str]]:
    found = [path]
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            found.extend(_commands(sub, [*path, name]))
    return found


@pytest.mark.parametrize("path", _commands(cli, []), ids=lambda p: " ".join(p) or "tock")
def test_help_shows_no_rest_markup(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "``" not in result.output
    assert ":func:" not in result.output and ":class:" not in result.output
