"""Options are defined once: what the API takes, what a job row keeps and what the CLI
shows all derive from ``TaskOptions`` and ``ScheduleOptions``; errors are listed once."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime

import pytest

import tock
import tock.errors
from tock import ConfigurationError, Tock
from tock.app import _SCHEDULE_ARGS, PeriodicArgs
from tock.cli.jobs import JSON_KEYS, SHOW_HELP, job_json
from tock.jobs import JobRecord, JobStatus, NewJob
from tock.schedules import ScheduleOptionArgs, ScheduleOptions
from tock.tasks import SNAPSHOT, TaskOptionArgs, TaskOptions


def names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def typed_keys(typed_dict: type) -> set[str]:
    return set(typed_dict.__required_keys__) | set(typed_dict.__optional_keys__)  # type: ignore[attr-defined]


def test_the_typed_arguments_mirror_the_definitions() -> None:
    assert typed_keys(TaskOptionArgs) == set(names(TaskOptions))
    assert typed_keys(ScheduleOptionArgs) == set(names(ScheduleOptions))
    assert typed_keys(PeriodicArgs) == set(names(TaskOptions)) | set(names(ScheduleOptions))
    assert {
        "name",
        "task",
        "cron",
        "every",
        "at",
        "queue",
        "priority",
        *names(ScheduleOptions),
    } == _SCHEDULE_ARGS


def test_the_job_row_keeps_exactly_the_snapshot_options() -> None:
    assert "takes_context" not in SNAPSHOT  # the function's own business
    per_call = {"unique_key", "run_at", "run_after"}
    per_call |= {"depends_on", "after", "on_dependency_failure", "pass_results"}
    assert set(names(NewJob)[3:]) - per_call == set(SNAPSHOT)
    assert set(SNAPSHOT) <= set(names(JobRecord))


def test_jobs_show_lists_every_field_of_the_row() -> None:
    shown = set(JSON_KEYS) - {"claimed", "last_error"}
    assert shown == set(names(JobRecord)) - {"claim_token"}
    for name in SNAPSHOT:
        assert name in JSON_KEYS and name in SHOW_HELP
    now = datetime(2030, 1, 1, tzinfo=UTC)
    record = JobRecord(1, "t", JobStatus.PENDING, "default", 0, [], {}, now, now)
    assert list(job_json(record)) == list(JSON_KEYS)


def test_every_option_is_taken_by_its_name(tmp_path) -> None:
    app = Tock(f"sqlite:///{tmp_path / 'tock.db'}")
    given = {
        "queue": "q",
        "priority": 7,
        "retries": 2,
        "retry_backoff": 3,
        "retry_on": ValueError,
        "timeout": 4,
        "at_most_once": True,
        "takes_context": True,
        "max_rescues": 1,
    }
    assert set(given) == set(names(TaskOptions))
    t = app.task(name="tests.ctx", **given)(lambda ctx: None)
    assert t.options == TaskOptions(
        queue="q",
        priority=7,
        retries=2,
        retry_backoff=3.0,
        retry_on=(ValueError,),
        timeout=4.0,
        at_most_once=True,
        takes_context=True,
        max_rescues=1,
    )
    job = t._new_job((), {}, tock.tasks.NO_OVERRIDES)
    assert [getattr(job, n) for n in SNAPSHOT] == [
        "q",
        7,
        2,
        3.0,
        ("builtins.ValueError",),
        4.0,
        True,
        1,
    ]


@pytest.mark.parametrize(
    ("build", "given", "message"),
    [
        (TaskOptions.build, {"retires": 3}, "unknown task option.*'retires'"),
        (TaskOptions.build, {"retries": -1}, "retries must be a whole number"),
        (TaskOptions.build, {"queue": "a b"}, "queue"),
        (ScheduleOptions.build, {"grase": 3}, "unknown schedule option.*'grase'"),
        (ScheduleOptions.build, {"overlap": "no"}, "overlap must be True or False"),
        (ScheduleOptions.build, {"args": "x"}, "args= takes a list or tuple"),
        (ScheduleOptions.build, {"misfire": "skip", "grace": 0}, "grace=0"),
    ],
)
def test_a_bad_option_is_named(build, given, message) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build(**given)


def test_an_unknown_option_of_a_task_or_a_periodic_is_named(tmp_path) -> None:
    app = Tock(f"sqlite:///{tmp_path / 'tock.db'}")
    with pytest.raises(ConfigurationError, match="'retires'"):
        app.task(name="tests.x", retires=3)  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match="'retires'"):
        app.periodic(every=10, name="tests.y", retires=3)(lambda: None)  # type: ignore[call-arg]
    assert not app.tasks


def test_errors_are_listed_once() -> None:
    defined = {
        name
        for name, value in vars(tock.errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == "tock"
    }
    assert defined == set(tock.errors.__all__)
    for name in defined:
        assert name in tock.__all__, name
        assert getattr(tock, name) is getattr(tock.errors, name)
    assert "ConnectionLost" in tock.__all__ and "JobStateError" in tock.__all__
