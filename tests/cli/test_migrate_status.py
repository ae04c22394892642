"""``tock migrate`` and ``tock status``."""

from __future__ import annotations

import json
import os

import pytest

from tock import JobStatus, NoDatabase
from tock.store import WorkerInfo
from tock.store.sqlite.store import LATEST, MIGRATIONS

from .helpers import Project, assert_error, terminate, wait_for


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
    project.app.migrate()
    result = project.invoke("status")
    assert result.exit_code == 0, result.output
    assert project.url in result.stdout
    assert f"version {LATEST} (up to date)" in result.stdout
    assert "No live workers" in result.stdout
    assert "No jobs yet" in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["jobs", "list"],
        ["jobs", "show", "1"],
        ["schedules", "list"],
        ["schedules", "show", "nightly"],
    ],
)
def test_read_only_commands_create_no_database(project: Project, command: list[str]) -> None:
    db = project.path / "tock.db"
    assert_error(project.invoke(*command), f"no Tock database at {db}", "tock migrate")
    assert not db.exists()
    assert not list(project.path.glob("tock.db*"))  # no journal files either


def test_the_apps_reads_create_no_database_and_its_first_write_does(project: Project) -> None:
    app, db = project.app, project.path / "tock.db"
    for read in (app.health, lambda: app.job(1), app.list_schedules):
        with pytest.raises(NoDatabase, match="no Tock database at"):
            read()
    assert not db.exists()
    job = project.mod.add.enqueue(1, 2)  # the first write creates and migrates it
    assert db.exists()
    assert app.job(job.id).status is JobStatus.PENDING
    assert app.health()["queues"]["default"]["pending"] == 1


def test_migrate_creates_the_database(project: Project) -> None:
    result = project.invoke("migrate")
    assert result.exit_code == 0, result.output
    assert (project.path / "tock.db").exists()
    assert project.invoke("status").exit_code == 0


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
    _lead(project, "w-status-1")


def _lead(project: Project, worker_id: str) -> None:
    """Make ``worker_id`` the leader, as its elector would."""
    store = project.app.store
    seen = store.leader_get(now=None)
    assert store.leader_elect(worker_id=worker_id, term=seen.term, ttl=60, now=None)


def test_status_shows_workers_and_queues(project: Project) -> None:
    _fill(project)
    result = project.invoke("status")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Workers (1)" in out
    worker_row = next(line for line in out.splitlines() if "box-7" in line)
    assert "w-status-1" in worker_row
    assert str(os.getpid()) in worker_row
    assert "default,emails" in worker_row
    assert "ago" in worker_row
    assert "leader" in worker_row.split()
    assert "Leader  w-status-1, term 1, since" in out
    default = next(line for line in out.splitlines() if line.split()[:1] == ["default"])
    emails = next(line for line in out.splitlines() if line.split()[:1] == ["emails"])
    # Queue, Ready, Oldest ready (an age: two words), Pending, Claimed, Running,
    # Succeeded, Failed, Served
    assert default.split()[1] == "1"
    assert default.split()[-6:] == ["1", "0", "0", "1", "1", "yes"]
    assert emails.split()[1] == "1"
    assert emails.split()[-6:] == ["2", "0", "0", "0", "0", "yes"]
    assert "No problems found." in out


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


def test_status_json_keys_are_stable(project: Project) -> None:
    project.mod.add.enqueue(1, 2)
    facts = json.loads(project.invoke("status", "--json").stdout)
    assert set(facts) == {
        "store",
        "schema",
        "now",
        "ok",
        "problems",
        "leader",
        "workers",
        "queues",
    }
    assert facts["leader"] is None
    assert facts["queues"]["default"] == {
        "blocked": 0,
        "pending": 1,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "canceled": 0,
        "lost": 0,
        "claimed": 0,
        "ready": 1,
        "oldest_ready_age": facts["queues"]["default"]["oldest_ready_age"],
        "served": False,
        "paused": False,
        "paused_at": None,
    }
    assert facts["ok"] is False


def _register(project: Project, worker_id: str, queues: tuple[str, ...]) -> None:
    project.app.store.worker_register(
        WorkerInfo(id=worker_id, hostname="h", pid=os.getpid(), queues=queues, concurrency=1),
        now=None,
    )


def test_check_without_a_live_worker_fails(project: Project) -> None:
    project.app.migrate()
    result = project.invoke("status", "--check")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "unhealthy: no live worker: start one with `tock worker`"


def test_check_names_a_queue_with_ready_jobs_nobody_serves(project: Project) -> None:
    project.mod.add.using(queue="emails").enqueue(1, 2)
    project.mod.add.enqueue(1, 2)
    _register(project, "w-default", ("default",))
    _lead(project, "w-default")
    result = project.invoke("status", "--check")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "queue 'emails' has 1 ready job(s) that no live worker serves" in line
    assert "--queues emails" in line
    shown = project.invoke("status")
    assert shown.exit_code == 0  # without --check, status only shows it
    emails = next(row for row in shown.stdout.splitlines() if row.split()[:1] == ["emails"])
    assert emails.endswith("no live worker")
    assert "Problems:" in shown.stdout
    facts = json.loads(project.invoke("status", "--json", "--check").stdout)
    assert facts["queues"]["emails"]["served"] is False
    assert facts["queues"]["default"]["served"] is True


def test_check_passes_when_every_queue_with_ready_jobs_is_served(project: Project) -> None:
    project.mod.add.using(queue="emails").enqueue(1, 2)
    _register(project, "w-both", ("default", "emails"))
    _lead(project, "w-both")
    result = project.invoke("status", "--check")
    assert (result.exit_code, result.stdout.strip()) == (0, "ok")


def test_check_fails_without_a_leader(project: Project) -> None:
    """Live workers, none of them leading (all --no-leader): schedules would not fire."""
    _register(project, "w-follower", ("default",))
    result = project.invoke("status", "--check")
    assert result.exit_code == 1
    assert "unhealthy: no leader: schedules do not fire" in result.stderr
    facts = json.loads(project.invoke("status", "--json").stdout)
    assert facts["leader"] is None and [w["leader"] for w in facts["workers"]] == [False]
    assert "Leader  none" in project.invoke("status").stdout


def test_json_names_the_leader_its_term_and_since_when(project: Project) -> None:
    _register(project, "w-1", ("default",))
    _register(project, "w-2", ("default",))
    _lead(project, "w-2")
    facts = json.loads(project.invoke("status", "--json").stdout)
    lease = project.app.store.leader_get(now=None)
    assert facts["leader"] == {
        "worker": "w-2",
        "term": 1,
        "since": lease.elected_at.isoformat() if lease.elected_at else None,
    }
    assert {w["id"]: w["leader"] for w in facts["workers"]} == {"w-1": False, "w-2": True}


def test_max_lag_makes_a_waiting_queue_a_problem(project: Project) -> None:
    from datetime import UTC, datetime, timedelta

    project.mod.add.using(run_after=datetime.now(UTC) - timedelta(minutes=2)).enqueue(1, 2)
    _register(project, "w-1", ("default",))
    _lead(project, "w-1")
    assert project.invoke("status", "--check").exit_code == 0  # served: no lag limit
    assert project.invoke("status", "--check", "--max-lag", "300").exit_code == 0
    late = project.invoke("status", "--check", "--max-lag", "60")
    assert late.exit_code == 1
    assert "queue 'default': its oldest ready job has waited" in late.stderr
    assert "more than --max-lag 60 s" in late.stderr
    bad = project.invoke("status", "--max-lag", "soon")
    assert bad.exit_code == 2 and "soon" in bad.stderr
    negative = project.invoke("status", "--max-lag", "-1")
    assert negative.exit_code == 1 and "max_lag must be a positive duration" in negative.stderr


def test_a_worker_with_an_old_heartbeat_serves_nothing(project: Project) -> None:
    from datetime import UTC, datetime, timedelta

    project.mod.add.enqueue(1, 2)
    old = datetime.now(UTC) - timedelta(minutes=5)
    project.app.store.worker_register(
        WorkerInfo(id="w-old", hostname="h", pid=1, queues=("default",), concurrency=1), now=old
    )
    facts = project.app.health()
    assert [w["live"] for w in facts["workers"]] == [False]
    assert facts["queues"]["default"]["served"] is False
    assert project.invoke("status", "--check").exit_code == 1


def test_status_shows_claimed_apart_from_running(project: Project) -> None:
    """A --concurrency 1 worker runs one job and holds the others (its prefetch): they
    are claimed, not running, and none has used an attempt."""
    mod = project.mod
    gate = project.path / "gate"
    markers = [project.path / f"started-{n}" for n in range(4)]
    jobs = [mod.gated.enqueue(str(m), str(gate)) for m in markers]
    proc = project.spawn("worker", "--concurrency", "1", "--prefetch", "3")
    store = project.app.store
    try:
        # The start is recorded with the worker's next batch (within about a second).
        wait_for(
            lambda: (
                [w.running for w in store.worker_list()] == [1]
                and sum(not j.refresh().record.claimed for j in jobs) == 1
            ),
            "one job to run and three to be claimed",
            project,
            proc,
        )
        assert sum(m.exists() for m in markers) == 1
        result = project.invoke("status")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        header = next(line for line in lines if "Concurrency" in line).split()
        worker = next(
            line
            for line in lines
            if "cliapp" not in line and str(proc.pid) in line and not line.startswith("Leader")
        )
        cells = dict(zip(header[-4:-1], worker.split()[-6:-3], strict=True))
        assert cells == {"Concurrency": "1", "Running": "1", "Claimed": "3"}, result.stdout
        queue = next(line for line in lines if line.split()[:1] == ["default"]).split()
        # Claimed, Running (then Succeeded, Failed, Served)
        assert queue[-5:-3] == ["3", "1"]
        facts = json.loads(project.invoke("status", "--json").stdout)
        assert (facts["queues"]["default"]["claimed"], facts["queues"]["default"]["running"]) == (
            3,
            1,
        )
        ((w),) = facts["workers"]
        assert (w["claimed"], w["running"]) == (3, 1)
        assert sorted(j.refresh().record.attempts for j in jobs) == [0, 0, 0, 1]
    finally:
        gate.touch()
    assert terminate(proc, project) == 0, project.log_text()


def test_leader_resign_clears_the_lease(project: Project) -> None:
    _register(project, "w-1", ("default",))
    nobody = project.invoke("leader", "resign")
    assert nobody.exit_code == 1 and "no worker leads: nothing to resign" in nobody.stderr
    _lead(project, "w-1")
    result = project.invoke("leader", "resign")
    assert result.exit_code == 0, result.output
    assert "Worker w-1 was asked to step down" in result.stdout
    assert json.loads(project.invoke("status", "--json").stdout)["leader"] is None
