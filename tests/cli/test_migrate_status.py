"""``tock migrate`` and ``tock status``."""

from __future__ import annotations

import json
import os

from tock.store import WorkerInfo
from tock.store.sqlite.store import LATEST, MIGRATIONS

from .helpers import Project


def test_migrate_then_up_to_date(project: Project) -> None:
    result = project.invoke("migrate")
    assert result.exit_code == 0, result.output
    assert f"Applied {len(MIGRATIONS)} migration(s)" in result.stdout
    for version, name, _ in MIGRATIONS:
        assert f"{version:04d}_{name}" in result.stdout
    result = project.invoke("migrate")
    assert result.exit_code == 0, result.output
    assert f"up to date (version {LATEST})" in result.stdout


def test_status_of_an_empty_store(project: Project) -> None:
    result = project.invoke("status")
    assert result.exit_code == 0, result.output
    assert project.url in result.stdout
    assert f"version {LATEST} (up to date)" in result.stdout
    assert "No live workers" in result.stdout
    assert "No jobs yet" in result.stdout


def _fill(project: Project) -> None:
    mod = project.mod
    mod.add.enqueue(1, 2)
    mod.boom.enqueue("no")
    project.drain()  # one succeeded, one failed
    mod.add.enqueue(3, 4)
    mod.add.using(queue="emails").enqueue(5, 6)
    mod.add.using(queue="emails", run_after=3600).enqueue(7, 8)
    project.app.store.worker_register(
        WorkerInfo(
            id="w-status-1", hostname="box-7", pid=os.getpid(), queues=("default", "emails"),
            concurrency=4,
        ),
        now=None,
    )  # fmt: skip


def test_status_shows_workers_and_queues(project: Project) -> None:
    _fill(project)
    result = project.invoke("status")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Workers (1)" in out
    worker_row = next(line for line in out.splitlines() if "w-status-1" in line)
    assert "box-7" in worker_row
    assert str(os.getpid()) in worker_row
    assert "default,emails" in worker_row
    assert "ago" in worker_row
    default = next(line for line in out.splitlines() if line.split()[:1] == ["default"])
    emails = next(line for line in out.splitlines() if line.split()[:1] == ["emails"])
    # Queue, Ready, Oldest ready (an age: two words), Pending, Running, Succeeded, Failed
    assert default.split()[1] == "1"
    assert default.split()[-4:] == ["1", "0", "1", "1"]
    assert emails.split()[1] == "1"
    assert emails.split()[-4:] == ["2", "0", "0", "0"]


def test_status_json_is_app_health(project: Project) -> None:
    _fill(project)
    result = project.invoke("status", "--json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["store"] == project.url
    assert facts["schema"] == {"version": LATEST, "latest": LATEST}
    assert [w["id"] for w in facts["workers"]] == ["w-status-1"]
    assert facts["queues"]["default"]["succeeded"] == 1
    assert facts["queues"]["default"]["failed"] == 1
    assert facts["queues"]["default"]["ready"] == 1
    assert facts["queues"]["emails"]["pending"] == 2
    assert facts["queues"]["emails"]["ready"] == 1
    assert set(facts) == set(project.app.health())
