"""The scheduler duty and the app's schedule API, on both stores and the fake clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tock import ConfigurationError, FakeClock, JobStatus, Tock
from tock.duties.scheduler import Scheduler
from tock.errors import ScheduleNotFound
from tock.schedules import Cron, Every
from tock.store import FireRecord
from tock.store._lists import cancel_one

T0 = datetime(2030, 1, 1, tzinfo=UTC)  # the clock fixture's start


def noop() -> None:
    pass


def greet(who: str, punct: str = "!") -> str:
    return f"hello {who}{punct}"


def register(app: Tock) -> tuple[Any, Any]:
    return (
        app.task(name="tests.noop")(noop),
        app.task(name="tests.greet", queue="greetings", priority=5, retries=2)(greet),
    )


def scheduler(app: Tock) -> Scheduler:
    return Scheduler(app.store, app.clock, app.tasks)


def fires(app: Tock, name: str) -> list[FireRecord]:
    return list(reversed(app.store.fire_list(name, limit=1000)))  # oldest first


def jobs_of(app: Tock, task: str = "tests.noop") -> list[Any]:
    return sorted(app.store.job_list(task=task, limit=10_000), key=lambda r: r.id)


# -- no grace ----------------------------------------------------------------------------


def test_zero_grace_is_stored_and_a_late_fire_coalesces(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("g0", task="tests.noop", every=timedelta(minutes=10), grace=timedelta(0))
    assert app.get_schedule("g0").grace == timedelta(0)
    s = scheduler(app)
    assert len(s.run_once().jobs) == 1  # 00:00, handled at its time
    clock.set(T0 + timedelta(minutes=10, milliseconds=5))
    assert len(s.run_once().jobs) == 1  # 5 ms late: missed, and coalesce runs it


def test_skip_with_zero_grace_is_refused_at_the_edge(app: Tock) -> None:
    register(app)
    with pytest.raises(ConfigurationError, match="grace=0 would drop every fire"):
        app.schedule("g1", task="tests.noop", every=60, misfire="skip", grace=0)
    with pytest.raises(ConfigurationError, match="grace must be zero or a positive duration"):
        app.schedule("g2", task="tests.noop", every=60, grace=-1)
    assert [s.name for s in app.list_schedules()] == []


# -- the worked example -------------------------------------------------------


@pytest.mark.parametrize(
    ("misfire", "jobs", "dropped"),
    [("coalesce", 1, ("coalesced", 17)), ("skip", 0, ("missed", 18)), ("all", 18, None)],
)
def test_misfire_policies_worked_example(
    app: Tock, clock: FakeClock, misfire: str, jobs: int, dropped: tuple[str, int] | None
) -> None:
    """Every 10 min, grace 60 s, passes at 00:00:00 and 03:05:00: the fires 00:10 … 03:00
    (18) give coalesce 1 (the 03:00 fire), skip 0, all 18."""
    register(app)
    app.schedule("s", task="tests.noop", every=timedelta(minutes=10), misfire=misfire, grace=60)
    s = scheduler(app)
    first = s.run_once()
    assert len(first.jobs) == 1  # 00:00, on time
    clock.set(T0 + timedelta(hours=3, minutes=5))
    report = s.run_once()
    assert len(report.jobs) == jobs
    rows = fires(app, "s")[1:]  # after the 00:00 fire
    created = [r for r in rows if r.job_id is not None]
    assert len(created) == jobs
    if misfire == "coalesce":
        assert created[0].at == T0 + timedelta(hours=3)  # the latest missed fire
    if misfire == "all":
        assert [r.at for r in created] == [T0 + timedelta(minutes=10 * k) for k in range(1, 19)]
    drops = [r for r in rows if r.job_id is None]
    if dropped is None:
        assert drops == []
    else:
        # Consecutive drops are one row: first, last, count, reason.
        (drop,) = drops
        assert (drop.outcome, drop.count) == dropped
        assert drop.at == T0 + timedelta(minutes=10)
        last = T0 + timedelta(hours=2, minutes=50 if misfire == "coalesce" else 60)
        assert drop.last == last
    assert app.get_schedule("s").next_fire_at == T0 + timedelta(hours=3, minutes=10)
    assert report.next_due == T0 + timedelta(hours=3, minutes=10)


def test_the_job_of_a_fire(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("g", task="tests.greet", cron="*/5 * * * *", args=["ada"], kwargs={"punct": "?"})
    app.schedule("q", task="tests.greet", every=300, args=["bob"], queue="other", priority=-3)
    clock.advance(timedelta(minutes=5))
    report = scheduler(app).run_once()
    assert len(report.jobs) == 2
    g, q = (app.store.job_get(i) for i in sorted(report.jobs))
    assert (g.args, g.kwargs, g.queue, g.priority, g.retries) == (
        ["ada"], {"punct": "?"}, "greetings", 5, 2,
    )  # fmt: skip
    assert g.run_at == T0 + timedelta(minutes=5)  # due at its fire time
    assert (q.queue, q.priority) == ("other", -3)
    assert app.get_schedule("g").last_job_id == g.id
    assert app.get_schedule("g").last_status == "pending"


def test_nothing_due_nothing_written(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("hourly", task=noop_task(app), cron="@hourly")
    s = scheduler(app)
    s.run_once()  # 00:00 fires
    clock.advance(timedelta(minutes=30))
    report = s.run_once()
    assert report.jobs == [] and report.fired == 0
    assert 30 * 60 - 60 < report.delay <= 30 * 60 + 1  # less the pass's own time
    assert len(fires(app, "hourly")) == 1


def test_the_sleep_after_a_pass_discounts_the_pass() -> None:
    from tock.duties.scheduler import WAKE_SLACK, SchedulerReport

    report = SchedulerReport(now=T0, next_due=T0 + timedelta(seconds=1), elapsed=0.25)
    assert report.delay == pytest.approx(0.75 + WAKE_SLACK)
    late = SchedulerReport(now=T0, next_due=T0 + timedelta(seconds=1), elapsed=2.0)
    assert late.delay == WAKE_SLACK
    assert SchedulerReport(now=T0, next_due=None).delay == float("inf")
    assert SchedulerReport(now=T0, next_due=T0, more=True).delay == 0.0


def test_the_scheduler_wakes_past_a_fire_by_two_steps_of_the_database_clock(app) -> None:
    from tock.duties.scheduler import MIN_SLACK, SchedulerReport, wake_slack

    assert wake_slack(1e-3) == 0.002  # SQLite reads its clock to the millisecond
    assert wake_slack(1e-6) == MIN_SLACK  # PostgreSQL to the microsecond: the floor
    report = scheduler(app).run_once()
    assert report.slack == wake_slack(app.store.clock_step)
    due = SchedulerReport(now=T0, next_due=T0 + timedelta(seconds=1), slack=report.slack)
    assert due.delay == pytest.approx(1 + report.slack)


def noop_task(app: Tock) -> Any:
    return app.tasks["tests.noop"]


# -- exactly once ---------------------------------------------------------------------


def test_two_schedulers_racing_make_one_job_per_fire(
    app: Tock, other_app: Tock, clock: FakeClock
) -> None:
    for a in (app, other_app):
        register(a)
    app.schedule("tick", task="tests.noop", every=10)
    schedulers = [scheduler(app), scheduler(other_app)]
    for _ in range(25):
        clock.advance(timedelta(seconds=10))
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(
            s: Scheduler, barrier: threading.Barrier = barrier, errors: list[Any] = errors
        ) -> None:
            try:
                barrier.wait()
                s.run_once()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
    rows = fires(app, "tick")
    assert [r.at for r in rows] == [T0 + timedelta(seconds=10 * k) for k in range(26)]
    assert all(r.job_id is not None for r in rows)
    assert len(jobs_of(app)) == 26 == len({r.job_id for r in rows})


def test_each_fire_that_creates_jobs_says_so_with_their_queues(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("n", task="tests.noop", every=10)
    app.schedule("g", task="tests.greet", every=10, args=["ada"])
    app.schedule("q", task="tests.greet", every=10, args=["bob"], queue="other")
    app.schedule("o", task="tests.noop", every=10, overlap=False)
    told: list[set[str]] = []
    s = Scheduler(app.store, app.clock, app.tasks, on_enqueued=lambda q, _due: told.append(q))
    s.run_once()  # the first fire of each
    assert sorted(map(sorted, told)) == [["default"], ["default"], ["greetings"], ["other"]]
    told.clear()
    clock.advance(timedelta(seconds=10))
    s.run_once()  # "o" still has a pending job: its fire is dropped, and says nothing
    assert sorted(map(sorted, told)) == [["default"], ["greetings"], ["other"]]
    told.clear()
    assert s.run_once().jobs == [] and told == []  # nothing due


# -- overlap, pause, trigger -----------------------------------------------------------


def test_overlap_false_skips_while_the_previous_job_is_pending(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("crawl", task="tests.noop", every=60, overlap=False)
    s = scheduler(app)
    (first,) = s.run_once().jobs
    for _ in range(3):
        clock.advance(timedelta(seconds=60))
        assert s.run_once().jobs == []
    rows = fires(app, "crawl")
    assert [(r.outcome, r.count) for r in rows] == [("enqueued", 1), ("overlap", 3)]
    assert rows[1].at == T0 + timedelta(minutes=1)
    assert rows[1].last == T0 + timedelta(minutes=3)
    cancel_one(app.store, first, now=clock.db_now())  # no longer pending
    clock.advance(timedelta(seconds=60))
    assert len(s.run_once().jobs) == 1


def test_overlap_false_with_misfire_all_runs_the_first_only(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("b", task="tests.noop", every=60, overlap=False, misfire="all")
    clock.advance(timedelta(minutes=10))
    report = scheduler(app).run_once()
    assert len(report.jobs) == 1
    assert [(r.outcome, r.count) for r in fires(app, "b")] == [("enqueued", 1), ("overlap", 10)]


def test_pause_drops_fires_and_resume_records_them_once(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("p", task="tests.noop", every=60)
    s = scheduler(app)
    s.run_once()
    paused = app.pause_schedule("p")
    assert paused.paused
    clock.advance(timedelta(minutes=5, seconds=30))
    assert s.run_once().jobs == []
    resumed = app.resume_schedule("p")
    assert not resumed.paused
    assert resumed.next_fire_at == T0 + timedelta(minutes=6)
    rows = fires(app, "p")
    assert [(r.outcome, r.at, r.last, r.count) for r in rows[1:]] == [
        ("paused", T0 + timedelta(minutes=1), T0 + timedelta(minutes=5), 5)
    ]
    assert app.resume_schedule("p") == resumed  # resuming twice changes nothing
    clock.advance(timedelta(seconds=30))
    assert len(s.run_once().jobs) == 1


def test_trigger_fires_now_with_its_own_key(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("t", task="tests.greet", cron="0 9 * * *", args=["eve"])
    before = app.get_schedule("t")
    job = app.trigger_schedule("t")
    record = app.store.job_get(job.id)
    assert (record.task, record.args, record.status) == ("tests.greet", ["eve"], JobStatus.PENDING)
    after = app.get_schedule("t")
    assert after.next_fire_at == before.next_fire_at
    assert after.last_job_id == job.id
    (row,) = fires(app, "t")
    assert (row.outcome, row.manual, row.job_id) == ("triggered", True, job.id)
    second = app.trigger_schedule("t")  # same instant on the fake clock: still its own job
    assert second.id != job.id


def test_unknown_schedule_names(app: Tock) -> None:
    register(app)
    for call in (app.get_schedule, app.pause_schedule, app.resume_schedule, app.trigger_schedule):
        with pytest.raises(ScheduleNotFound, match="'nope'"):
            call("nope")
    assert app.unschedule("nope") is False


# -- who fires what ---------------------------------------------------------------------


def test_a_scheduler_fires_only_tasks_its_process_knows(
    app: Tock, other_app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.schedule("s", task="tests.noop", every=60)
    other_app.task(name="tests.other")(noop)
    assert scheduler(other_app).run_once().jobs == []
    assert app.get_schedule("s").next_fire_at == T0
    assert len(scheduler(app).run_once().jobs) == 1


def test_code_schedules_sync_and_prune(app: Tock, other_app: Tock, clock: FakeClock) -> None:
    daily = app.periodic(cron="0 2 * * *", timezone="Europe/Berlin", name="tests.nightly")(noop)
    app.periodic(every=timedelta(seconds=10), misfire="skip", name="tests.rates")(noop)
    assert daily.name == "tests.nightly" and "tests.nightly" in app.tasks
    assert app.sync_schedules() == ["tests.nightly", "tests.rates"]
    nightly = app.get_schedule("tests.nightly")
    assert nightly.source == "code" and nightly.trigger == Cron("0 2 * * *", "Europe/Berlin")
    assert nightly.next_fire_at == datetime(2030, 1, 1, 1, tzinfo=UTC)  # 02:00 CET
    app.pause_schedule("tests.rates")
    clock.advance(timedelta(hours=1))
    app.sync_schedules()  # an unchanged trigger keeps its next fire; paused stays
    assert app.get_schedule("tests.nightly").next_fire_at == nightly.next_fire_at
    assert app.get_schedule("tests.rates").paused
    # Another deployment declares only one of them: prune disables the other.
    other_app.periodic(cron="0 2 * * *", timezone="Europe/Berlin", name="tests.nightly")(noop)
    app.schedule("dyn", task="tests.nightly", every=60)
    assert other_app.prune_schedules() == ["tests.rates"]
    assert not app.get_schedule("tests.rates").enabled
    assert app.get_schedule("dyn").enabled  # dynamic schedules are never pruned
    app.sync_schedules()  # a process that declares it again enables it again
    assert app.get_schedule("tests.rates").enabled


def test_schedule_upserts_by_name(app: Tock, clock: FakeClock) -> None:
    register(app)
    first = app.schedule("u", task="tests.noop", every=3600, args=[])
    assert first.source == "dynamic" and first.next_fire_at == T0
    clock.advance(timedelta(minutes=10))
    kept = app.schedule("u", task="tests.noop", every=3600, grace=5)
    assert kept.next_fire_at == T0 and kept.grace == timedelta(seconds=5)
    moved = app.schedule("u", task="tests.noop", cron="30 * * * *")
    assert moved.next_fire_at == T0 + timedelta(minutes=30)
    assert [s.name for s in app.list_schedules()] == ["u"]
    assert app.unschedule("u") is True
    assert app.list_schedules() == []


def test_schedule_many(app: Tock, clock: FakeClock) -> None:
    register(app)
    n = app.schedule_many(
        {"name": f"user:{i}", "task": "tests.greet", "cron": "0 9 * * *", "args": [str(i)]}
        for i in range(250)
    )
    assert n == 250
    listed = app.list_schedules()
    assert len(listed) == 250 and listed[0].args == ["0"]
    assert all(s.next_fire_at == T0 + timedelta(hours=9) for s in listed)
    assert app.schedule_many([]) == 0


def test_one_shot_at(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("once", task="tests.noop", at=T0 + timedelta(minutes=1))
    s = scheduler(app)
    assert s.run_once().jobs == []
    clock.advance(timedelta(minutes=2))
    assert len(s.run_once().jobs) == 1
    clock.advance(timedelta(days=1))
    assert s.run_once().jobs == []
    assert app.get_schedule("once").next_fire_at is None


def test_a_long_backlog_is_caught_up_in_bounded_rounds(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("m", task="tests.noop", cron="* * * * *", misfire="all")
    clock.advance(timedelta(minutes=2500))
    report = scheduler(app).run_once()
    assert len(report.jobs) == 2501
    assert app.get_schedule("m").next_fire_at == T0 + timedelta(minutes=2501)


def test_an_unreadable_trigger_does_not_spin(app: Tock, clock: FakeClock) -> None:
    from dataclasses import replace

    register(app)
    app.schedule("bad", task="tests.noop", every=60)
    record = app.store.schedule_get("bad")
    app.store.schedule_upsert(replace(record, trigger='{"cron": "nope"}'), now=clock.db_now())
    report = scheduler(app).run_once()
    assert report.jobs == [] and report.delay == float("inf")


def test_fire_rows_are_pruned_with_their_jobs(app: Tock, clock: FakeClock) -> None:
    from tock.duties import Pruner, PrunerConfig

    register(app)
    app.schedule("r", task="tests.noop", every=60, misfire="skip", grace=1)
    s = scheduler(app)
    (job_id,) = s.run_once().jobs
    clock.advance(timedelta(minutes=10))
    s.run_once()  # 9 missed (dropped) and the 10th on time
    cancel_one(app.store, job_id, now=clock.db_now())
    assert [r.outcome for r in fires(app, "r")] == ["enqueued", "missed", "enqueued"]
    clock.advance(timedelta(days=2))
    pruner = Pruner(
        app.store,
        clock,
        PrunerConfig(retention={JobStatus.CANCELED: 3600}, fire_retention=3600),
    )
    pruner.run_once()
    assert [r.outcome for r in fires(app, "r")] == ["enqueued"]  # the pending job's row


# -- bad input, refused where it enters ----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "tests.unknown", "every": 60}, "no task named 'tests.unknown'"),
        ({"task": 42, "every": 60}, "task= takes"),
        ({"task": "tests.noop", "cron": "61 * * * *"}, "minute"),
        ({"task": "tests.noop", "cron": "* * *"}, "cron"),
        ({"task": "tests.noop", "cron": ["0 2 * * *"]}, "a cron expression is a string"),
        ({"task": "tests.noop", "every": [60]}, "every= must be"),
        ({"task": "tests.noop", "cron": "0 2 * * *", "timezone": "Mars/Base"}, "Mars/Base"),
        ({"task": "tests.noop", "every": 0.5}, "at least 1 second"),
        ({"task": "tests.noop", "at": datetime(2030, 1, 1)}, "naive"),
        ({"task": "tests.noop", "every": 60, "cron": "* * * * *"}, "exactly one"),
        ({"task": "tests.noop"}, "exactly one"),
        ({"task": "tests.noop", "every": 60, "misfire": "sometimes"}, "misfire"),
        ({"task": "tests.noop", "every": 60, "grace": -1}, "grace"),
        ({"task": "tests.noop", "every": 60, "overlap": "no"}, "overlap"),
        ({"task": "tests.noop", "every": 60, "enabled": 1}, "enabled"),
        ({"task": "tests.noop", "every": 60, "priority": 101}, "priority"),
        ({"task": "tests.noop", "every": 60, "queue": "bad queue"}, "queue"),
        ({"task": "tests.noop", "every": 60, "args": "abc"}, "args="),
        ({"task": "tests.noop", "every": 60, "kwargs": [1]}, "kwargs="),
    ],
)
def test_bad_schedules_are_refused(app: Tock, kwargs: dict[str, Any], message: str) -> None:
    register(app)
    with pytest.raises(ConfigurationError, match=message):
        app.schedule("s", **kwargs)
    assert app.list_schedules() == []


def test_bad_arguments_for_the_task_are_refused(app: Tock) -> None:
    register(app)
    with pytest.raises(TypeError, match=r"tests\.greet"):
        app.schedule("s", task="tests.greet", every=60, args=[1, 2, 3])
    with pytest.raises(TypeError, match="who"):
        app.schedule("s", task="tests.greet", every=60, args=[float("nan")])
    with pytest.raises(ConfigurationError, match="schedule"):
        app.schedule("bad name!", task="tests.noop", every=60)
    assert app.list_schedules() == []


def test_bad_periodic_declarations(app: Tock) -> None:
    with pytest.raises(ConfigurationError, match="cron= or every="):
        app.periodic(name="x")(noop)
    with pytest.raises(ConfigurationError, match="timezone"):
        app.periodic(every=60, timezone="UTC", name="x")(noop)
    with pytest.raises(TypeError, match="x"):
        app.periodic(every=60, args=[1], name="x")(noop)


def test_bad_schedule_many_items(app: Tock) -> None:
    register(app)
    with pytest.raises(ConfigurationError, match="item 1 has no 'name'"):
        app.schedule_many([{"name": "a", "task": "tests.noop", "every": 60}, {"task": "x"}])
    with pytest.raises(ConfigurationError, match="unknown argument"):
        app.schedule_many([{"name": "a", "task": "tests.noop", "every": 60, "colour": 1}])
    with pytest.raises(TypeError, match="item 0"):
        app.schedule_many([("a", "tests.noop")])  # type: ignore[list-item]
    assert app.list_schedules() == []


def test_every_anchor(app: Tock, clock: FakeClock) -> None:
    register(app)
    anchor = T0 + timedelta(seconds=7)
    s = app.schedule("a", task="tests.noop", every=60, anchor=anchor)
    assert s.trigger == Every(60, anchor) and s.next_fire_at == anchor
    assert s.expression.startswith("every 1m from")
