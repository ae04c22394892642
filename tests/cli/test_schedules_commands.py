"""``tock schedules list | show | pause | resume | trigger | prune``.

No scheduler runs here: schedules stay where the tests put them. Fires in the past are
written through the store (``next_fire_at`` in 2020); code schedules fire from 2100.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tock import JobStatus
from tock.duties.scheduler import Scheduler
from tock.store import ScheduleRecord

from .helpers import Project, assert_error

HOURLY = "cliapp.hourly"  # the @app.periodic of the test app
PAST = datetime(2020, 1, 1, tzinfo=UTC)


def rows(output: str) -> dict[str, str]:
    """The lines of a ``tock schedules list`` table, by schedule name (first column)."""
    found = {}
    for line in output.splitlines()[2:]:  # after the header and its rule
        if line.strip() and not line.startswith("The first"):
            found[line.split()[0]] = line
    return found


def fields(output: str) -> dict[str, str]:
    """The ``name: value`` lines of ``tock schedules show``."""
    found = {}
    for line in output.splitlines():
        if not line.strip():
            break  # the fires table follows the first blank line
        name, _, value = line.partition(":")
        found[name] = value.strip()
    return found


def stored(project: Project, name: str, *, source: str = "dynamic", **changes: object) -> None:
    """A schedule written as it stands in the store, bypassing the app's checks: a task
    the app does not know, a code schedule no process declares, a fire time long past."""
    record = ScheduleRecord(
        name=name,
        task=str(changes.pop("task", "cliapp.add")),
        trigger='{"every": 3600.0, "anchor": "1970-01-01T00:00:00+00:00"}',
        args="[1, 2]",
        source=source,
        next_fire_at=changes.pop("next_fire_at", PAST),  # type: ignore[arg-type]
    )
    assert not changes, changes
    project.app.store.schedule_upsert(record, now=None)


@pytest.fixture
def dynamic(project: Project) -> str:
    project.mod.app.schedule(
        "report:user-42",
        task=project.mod.add,
        cron="0 2 * * *",
        timezone="Europe/Berlin",
        kwargs={"a": 1, "b": 2},
    )
    return "report:user-42"


# -- list --------------------------------------------------------------------------


def test_list_empty(project: Project) -> None:
    project.app.migrate()
    result = project.invoke("schedules", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No schedules."


def test_list_dynamic_and_code(project: Project, dynamic: str) -> None:
    assert project.app.sync_schedules() == [HOURLY]
    result = project.invoke("schedules", "list")
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header == ["Name", "Task", "Schedule", "State", "Next", "fire", "Last", "fire", "Source"]
    table = rows(result.stdout)
    assert list(table) == [HOURLY, dynamic]  # by name
    next_fire = project.app.get_schedule(dynamic).next_fire_at
    assert next_fire is not None
    assert table[dynamic].split() == [
        dynamic, "cliapp.add", "cron", "0", "2", "*", "*", "*", "(Europe/Berlin)", "active",
        *next_fire.strftime("%Y-%m-%d %H:%M:%S").split(), "-", "dynamic",
    ]  # fmt: skip
    assert table[HOURLY].split() == [
        HOURLY, HOURLY, "every", "1h", "from", "2100-01-01T00:00:00+00:00", "active",
        "2100-01-01", "00:00:00", "-", "code",
    ]  # fmt: skip


def test_list_paused_and_disabled(project: Project, dynamic: str) -> None:
    project.app.pause_schedule(dynamic)
    stored(project, "off")
    project.app.store.schedule_set_enabled("off", False, now=None)
    result = project.invoke("schedules", "list")
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    # A schedule that does not fire shows no next fire; `show` has the stored one.
    assert table[dynamic].split()[-4:] == ["paused", "-", "-", "dynamic"]
    assert table["off"].split()[-4:] == ["disabled", "-", "-", "dynamic"]


def test_list_undeclared_code_schedule(project: Project) -> None:
    project.app.sync_schedules()
    stored(project, "old.nightly", source="code")  # declared by code that is gone
    result = project.invoke("schedules", "list")
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert table["old.nightly"].split()[-2:] == ["code", "(undeclared)"]
    assert table[HOURLY].split()[-2:] == ["-", "code"]


def test_list_last_fire_and_its_outcome(project: Project, dynamic: str) -> None:
    job = project.app.trigger_schedule(dynamic)
    project.drain()
    last = project.app.get_schedule(dynamic).last_fire_at
    assert last is not None
    result = project.invoke("schedules", "list")
    assert result.exit_code == 0, result.output
    assert f"{last:%Y-%m-%d %H:%M:%S} succeeded" in rows(result.stdout)[dynamic]
    assert project.app.store.job_get(job.id).status is JobStatus.SUCCEEDED


def test_list_limit(project: Project, dynamic: str) -> None:
    project.app.sync_schedules()
    result = project.invoke("schedules", "list", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert list(rows(result.stdout)) == [HOURLY]
    assert result.stdout.strip().endswith("The first 1 schedules; --limit shows more.")
    result = project.invoke("schedules", "list", "-n", "2")  # exactly all of them
    assert list(rows(result.stdout)) == [HOURLY, dynamic]
    assert "--limit shows more" not in result.stdout


def test_list_bad_limit(project: Project) -> None:
    assert_error(project.invoke("schedules", "list", "--limit", "0"), "--limit")
    assert project.invoke("schedules", "list", "-n", "many").exit_code == 2


# -- show --------------------------------------------------------------------------


def test_show_every_field(project: Project, dynamic: str) -> None:
    result = project.invoke("schedules", "show", dynamic)
    assert result.exit_code == 0, result.output
    shown = fields(result.stdout)
    schedule = project.app.get_schedule(dynamic)
    assert shown == {
        "name": dynamic,
        "task": "cliapp.add",
        "schedule": "cron 0 2 * * * (Europe/Berlin)",
        "state": "active",
        "source": "dynamic",
        "args": "[]",
        "kwargs": '{"a": 1, "b": 2}',
        "queue": "(the task's)",
        "priority": "(the task's)",
        "misfire": "coalesce",
        "grace": "60 s",
        "overlap": "yes",
        "enabled": "yes",
        "paused": "no",
        "next_fire_at": shown["next_fire_at"],
        "last_fire_at": "-",
        "last_job_id": "-",
        "last_status": "-",
        "depends_on": "-",
        "future_depends": "no",
        "depends_on_outcome": "succeeded",
        "created_at": shown["created_at"],
        "updated_at": shown["updated_at"],
    }
    assert schedule.next_fire_at is not None
    assert shown["next_fire_at"] == f"{schedule.next_fire_at:%Y-%m-%d %H:%M:%S.%f}+00:00"
    assert "No fires recorded yet." in result.stdout


def test_show_fires_newest_first(project: Project) -> None:
    stored(project, "catch-up")  # due since 2020, every hour
    project.app.pause_schedule("catch-up")
    project.app.resume_schedule("catch-up")  # one "paused" drop for all of them
    job = project.app.trigger_schedule("catch-up")
    (manual, drop) = project.app.store.fire_list("catch-up")
    result = project.invoke("schedules", "show", "catch-up")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("Recent fires (newest first)", 1)[1].splitlines()
    fires = [line for line in lines if line[:4].isdigit()]
    assert len(fires) == 2
    assert fires[0].split()[2:4] == ["triggered", str(job.id)]
    first, last = f"{drop.at:%Y-%m-%d %H:%M:%S}", f"{drop.last:%Y-%m-%d %H:%M:%S}"
    assert fires[1].startswith(f"{first} … {last} ({drop.count})")
    assert "paused" in fires[1]
    assert fields(result.stdout)["last_job_id"] == str(job.id)
    assert manual.job_id == job.id


def test_show_undeclared_code_schedule_of_unknown_task(project: Project) -> None:
    stored(project, "old.nightly", source="code", task="old.nightly")
    result = project.invoke("schedules", "show", "old.nightly")
    assert result.exit_code == 0, result.output
    shown = fields(result.stdout)
    assert shown["source"] == "code (undeclared)"
    assert shown["task"] == "old.nightly (not registered in this app)"


def test_show_dependencies_and_a_waiting_fire(project: Project) -> None:
    project.mod.app.schedule("extract", task=project.mod.add, every=3600, args=[1, 2])
    record = ScheduleRecord(
        name="load",
        task="cliapp.add",
        trigger='{"every": 3600.0, "anchor": "1970-01-01T00:00:00+00:00"}',
        args="[1, 2]",
        next_fire_at=PAST,
        depends_on='["extract", "ghost"]',
        depends_on_outcome="any",
    )
    project.app.store.schedule_upsert(record, now=None)
    app = project.app
    report = Scheduler(app.store, app.clock, app.tasks).run_once()
    assert report.waiting == 1 and report.jobs == []
    (fire,) = [f for f in app.store.fire_list("load") if f.outcome == "waiting"]
    result = project.invoke("schedules", "show", "load")
    assert result.exit_code == 0, result.output
    shown = fields(result.stdout)
    assert shown["depends_on"] == "extract, ghost (unknown)"
    assert shown["future_depends"] == "no"
    assert shown["depends_on_outcome"] == "any"
    assert shown["waiting"] == f"fire {fire.at:%Y-%m-%d %H:%M:%S.%f}+00:00 waits for extract, ghost"
    assert "waiting for extract, ghost" in result.stdout  # the fires table

    facts = json.loads(project.invoke("schedules", "show", "load", "--json").stdout)
    assert facts["depends_on"] == ["extract", "ghost"]
    assert facts["depends_on_unknown"] == ["ghost"]
    assert (facts["future_depends"], facts["depends_on_outcome"]) == (False, "any")
    assert [f["waiting_for"] for f in facts["fires"] if f["outcome"] == "waiting"] == [
        ["extract", "ghost"]
    ]

    listed = project.invoke("schedules", "list")
    assert "Depends on" in listed.stdout
    assert "ghost (unknown)" in rows(listed.stdout)["load"]
    (extract, load) = json.loads(project.invoke("schedules", "list", "--json").stdout)
    assert (extract["depends_on"], load["depends_on_unknown"]) == ([], ["ghost"])


# -- pause, resume -----------------------------------------------------------------


def test_pause_resume_round_trip(project: Project) -> None:
    stored(project, "catch-up")  # every hour, next fire 2020-01-01 00:00: long due
    result = project.invoke("schedules", "pause", "catch-up")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Schedule 'catch-up' is paused")
    assert project.app.get_schedule("catch-up").paused
    assert project.app.store.fire_list("catch-up") == []

    result = project.invoke("schedules", "resume", "catch-up")
    assert result.exit_code == 0, result.output
    schedule = project.app.get_schedule("catch-up")
    assert not schedule.paused
    assert schedule.next_fire_at is not None
    assert result.stdout.strip() == (
        f"Schedule 'catch-up' is active; next fire {schedule.next_fire_at:%Y-%m-%d %H:%M:%S} UTC."
    )
    # Every fire that came due while paused, as one "paused" drop that made no job.
    (drop,) = project.app.store.fire_list("catch-up")
    assert (drop.outcome, drop.job_id, drop.manual, drop.at) == ("paused", None, False, PAST)
    assert drop.count == (drop.last - drop.at) // timedelta(hours=1) + 1
    assert drop.count > 1
    assert schedule.next_fire_at == drop.last + timedelta(hours=1)
    assert project.app.store.job_list(limit=10) == []


def test_pause_twice_and_resume_active(project: Project, dynamic: str) -> None:
    next_fire = project.app.get_schedule(dynamic).next_fire_at
    for _ in range(2):
        assert project.invoke("schedules", "pause", dynamic).exit_code == 0
    result = project.invoke("schedules", "resume", dynamic)
    assert result.exit_code == 0, result.output
    for _ in range(2):  # resuming an active schedule changes nothing
        result = project.invoke("schedules", "resume", dynamic)
        assert result.exit_code == 0, result.output
    assert next_fire is not None
    assert f"is active; next fire {next_fire:%Y-%m-%d %H:%M:%S} UTC." in result.stdout
    assert project.app.get_schedule(dynamic).next_fire_at == next_fire
    assert project.app.store.fire_list(dynamic) == []


def test_resume_disabled_schedule_says_so(project: Project) -> None:
    stored(project, "off", next_fire_at=datetime(2100, 1, 1, tzinfo=UTC))
    project.app.store.schedule_set_enabled("off", False, now=None)
    project.app.pause_schedule("off")
    result = project.invoke("schedules", "resume", "off")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "Schedule 'off' is disabled; next planned fire 2100-01-01 00:00:00 UTC "
        "(not while disabled)."
    )


# -- trigger -----------------------------------------------------------------------


def test_trigger_creates_a_job_and_keeps_the_next_fire(project: Project, dynamic: str) -> None:
    before = project.app.get_schedule(dynamic)
    result = project.invoke("schedules", "trigger", dynamic)
    assert result.exit_code == 0, result.output
    (job,) = project.app.store.job_list(limit=10)
    assert job.task == "cliapp.add"
    assert job.kwargs == {"a": 1, "b": 2}
    assert result.stdout.startswith(
        f"Schedule {dynamic!r} fired: job {job.id} (cliapp.add) on queue 'default'."
    )
    assert "its own key" in result.stdout
    assert before.next_fire_at is not None
    assert f"next fire {before.next_fire_at:%Y-%m-%d %H:%M:%S} UTC" in result.stdout
    after = project.app.get_schedule(dynamic)
    assert after.next_fire_at == before.next_fire_at
    assert after.last_job_id == job.id
    (fire,) = project.app.store.fire_list(dynamic)
    assert (fire.outcome, fire.job_id, fire.manual) == ("triggered", job.id, True)
    project.drain()
    assert project.app.store.job_get(job.id).result == 3


def test_trigger_twice_makes_two_jobs(project: Project, dynamic: str) -> None:
    for _ in range(2):
        assert project.invoke("schedules", "trigger", dynamic).exit_code == 0
    assert len(project.app.store.job_list(limit=10)) == 2
    assert len(project.app.store.fire_list(dynamic)) == 2


# -- prune -------------------------------------------------------------------------


def test_prune(project: Project, dynamic: str) -> None:
    project.app.sync_schedules()
    stored(project, "old.b", source="code")
    stored(project, "old.a", source="code")
    result = project.invoke("schedules", "prune", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Would disable 2 code schedule(s) this app does not declare:",
        "  old.a",
        "  old.b",
    ]
    assert project.app.get_schedule("old.a").enabled

    result = project.invoke("schedules", "prune")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Disabled 2 code schedule(s) this app does not declare:",
        "  old.a",
        "  old.b",
    ]
    enabled = {s.name: s.enabled for s in project.app.list_schedules()}
    assert enabled == {HOURLY: True, dynamic: True, "old.a": False, "old.b": False}

    for args in (["prune"], ["prune", "--dry-run"]):
        result = project.invoke("schedules", *args)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == "Nothing to prune: every code schedule is declared."


# -- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("command", ["show", "pause", "resume", "trigger"])
def test_unknown_name(project: Project, command: str) -> None:
    project.app.migrate()
    assert_error(project.invoke("schedules", command, "nope"), "schedule 'nope' not found")


@pytest.mark.parametrize("command", ["show", "pause", "resume", "trigger"])
@pytest.mark.parametrize("name", ["bad name!", "", "x" * 201])
def test_invalid_name(project: Project, command: str, name: str) -> None:
    assert_error(
        project.invoke("schedules", command, "--", name),
        f"invalid schedule name {name!r}",
        "A-Z a-z 0-9 _ . : -",
    )


def test_trigger_unregistered_task(project: Project) -> None:
    stored(project, "orphan", task="gone.task", next_fire_at=datetime(2100, 1, 1, tzinfo=UTC))
    assert_error(
        project.invoke("schedules", "trigger", "orphan"),
        "schedule 'orphan' runs task 'gone.task', which this app does not register",
    )
    assert project.app.store.job_list(limit=10) == []
    assert project.app.store.fire_list("orphan") == []


def test_missing_name_is_a_usage_error(project: Project) -> None:
    result = project.invoke("schedules", "pause")
    assert result.exit_code == 2, result.output
    assert "Missing argument 'NAME'" in result.output
