"""Schedules that wait on schedules (docs/schedules.md: Schedules that wait on schedules),
on both stores and the fake clock: a fire of a dependent schedule waits until each
schedule it depends on finished a run since its own last run started."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import ensure_worker

from tock import ConfigurationError, FakeClock, JobStatus, Tock
from tock.duties.scheduler import Scheduler, SchedulerConfig
from tock.errors import StaleTerm
from tock.jobs import JobId, Outcome, OutcomeKind
from tock.store import FireRecord, Lease, Store
from tock.store._lists import cancel_one

T0 = datetime(2030, 1, 1, tzinfo=UTC)  # the clock fixture's start
HOUR = timedelta(hours=1)
ERROR = json.dumps({"type": "ValueError", "message": "boom", "traceback": ""})


def noop() -> None:
    pass


@pytest.fixture
def tasks(app: Tock) -> None:
    for name in ("a", "b", "c"):
        app.task(name=f"tests.{name}", queue=f"q{name}")(noop)


def scheduler(app: Tock) -> Scheduler:
    return Scheduler(app.store, app.clock, app.tasks)


def fires(app: Tock, name: str) -> list[FireRecord]:
    return list(reversed(app.store.fire_list(name, limit=1000)))  # oldest first


def waiting(app: Tock, name: str) -> list[FireRecord]:
    return [f for f in fires(app, name) if f.outcome == "waiting"]


def last_job(app: Tock, name: str) -> JobId:
    job_id = app.get_schedule(name).last_job_id
    assert job_id is not None
    return job_id


def finish(app: Tock, clock: FakeClock, job_id: JobId, kind: str = "succeeded") -> None:
    """Run one job to its end: claimed, started and finished at the fake now (canceled:
    canceled while pending)."""
    store = app.store
    if kind == "canceled":
        cancel_one(store, job_id, now=clock.db_now())
        return
    record = store.job_get(job_id)
    ensure_worker(store, "w1", clock.db_now())
    claimed = store.job_claim_batch(
        worker_id="w1", queues=[record.queue], limit=100, free=100, now=clock.db_now()
    )
    assert job_id in {c.id for c in claimed}
    outcomes = []
    for c in claimed:
        assert c.claim_token is not None
        if c.id != job_id:
            outcomes.append(Outcome(c.id, c.claim_token, OutcomeKind.RELEASED))
        elif kind == "succeeded":
            outcomes.append(Outcome(c.id, c.claim_token, OutcomeKind.SUCCEEDED, result="null"))
        else:
            outcomes.append(Outcome(c.id, c.claim_token, OutcomeKind.FAILED, error=ERROR))
    store.job_complete_batch(outcomes, now=clock.db_now())
    assert store.job_get(job_id).status == kind


def hourly(app: Tock, name: str, **options: Any) -> None:
    app.schedule(name, task=f"tests.{name}", every=HOUR, **options)


# -- the rule -------------------------------------------------------------------------------


def test_a_fire_waits_until_its_dependency_succeeded_since_its_last_run(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "a")
    hourly(app, "b", depends_on=["a"])
    s = scheduler(app)
    report = s.run_once()  # 00:00: a's job; b's first fire waits (a never ran)
    assert len(report.jobs) == 1 and report.waiting == 1
    (fire,) = fires(app, "b")
    assert (fire.outcome, fire.job_id, fire.waiting_for) == ("waiting", None, ("a",))
    assert fire.at == T0
    assert app.get_schedule("b").last_job_id is None

    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "a"))
    report = s.run_once()  # a succeeded: b's fire gets its job, due now
    assert report.released == 1
    (fire,) = fires(app, "b")
    assert (fire.outcome, fire.waiting_for) == ("enqueued", ())
    assert fire.job_id == last_job(app, "b") and fire.job_id in report.jobs
    job = app.store.job_get(fire.job_id)
    assert job.status is JobStatus.PENDING and job.run_at == T0 + timedelta(minutes=1)
    assert job.task == "tests.b"

    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "b"))  # b's run started at 00:02
    clock.set(T0 + HOUR)
    s.run_once()  # 01:00: a's run of 00:01 ended before b's run started: b waits
    assert [f.outcome for f in fires(app, "b")] == ["enqueued", "waiting"]
    clock.advance(seconds=5 * 60)
    s.run_once()
    assert waiting(app, "b")[0].waiting_for == ("a",)
    finish(app, clock, last_job(app, "a"))
    assert s.run_once().released == 1
    assert [f.outcome for f in fires(app, "b")] == ["enqueued", "enqueued"]


def test_future_depends_frees_the_first_fire(app: Tock, clock: FakeClock, tasks: None) -> None:
    hourly(app, "a")
    hourly(app, "b", depends_on=["a"], future_depends=True)
    s = scheduler(app)
    s.run_once()
    (fire,) = fires(app, "b")
    assert fire.outcome == "enqueued" and fire.job_id is not None  # never ran: free
    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "b"))
    clock.set(T0 + HOUR)
    s.run_once()  # a has not finished since: the second fire waits
    assert waiting(app, "b")[0].waiting_for == ("a",)


def test_without_future_depends_a_run_before_the_schedule_existed_counts(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "a")
    s = scheduler(app)
    s.run_once()
    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "a"))
    clock.advance(seconds=1 * 60)
    app.schedule("b", task="tests.b", every=60, depends_on=["a"])
    report = s.run_once()  # b never ran: any finished run of a counts
    assert report.released == 1 and fires(app, "b")[0].outcome == "enqueued"


@pytest.mark.parametrize("ending", ["failed", "canceled"])
@pytest.mark.parametrize("outcome", ["succeeded", "any"])
def test_a_run_that_did_not_succeed_releases_only_with_any(
    app: Tock, clock: FakeClock, tasks: None, ending: str, outcome: str
) -> None:
    hourly(app, "a")
    hourly(app, "b", depends_on=["a"], depends_on_outcome=outcome)
    assert app.get_schedule("b").depends_on_outcome == outcome
    s = scheduler(app)
    s.run_once()
    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "a"), ending)
    s.run_once()
    (fire,) = fires(app, "b")
    assert fire.outcome == ("enqueued" if outcome == "any" else "waiting")


def test_two_dependencies_wait_for_both(app: Tock, clock: FakeClock, tasks: None) -> None:
    hourly(app, "a")
    hourly(app, "c")
    hourly(app, "b", depends_on=["c", "a"])
    s = scheduler(app)
    s.run_once()
    assert waiting(app, "b")[0].waiting_for == ("c", "a")  # in the order given
    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "a"))
    s.run_once()
    assert waiting(app, "b")[0].waiting_for == ("c",)
    finish(app, clock, last_job(app, "c"))
    assert s.run_once().released == 1
    assert [f.outcome for f in fires(app, "b")] == ["enqueued"]


def test_a_manual_trigger_of_a_dependency_is_a_run(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    app.schedule("a", task="tests.a", cron="0 0 1 1 *")  # yearly: fires at 00:00 only
    hourly(app, "b", depends_on=["a"])
    s = scheduler(app)
    s.run_once()
    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "a"))
    s.run_once()  # released by a's scheduled run
    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "b"))
    clock.set(T0 + HOUR)
    s.run_once()
    assert waiting(app, "b")
    job = app.trigger_schedule("a")
    clock.advance(seconds=1 * 60)
    finish(app, clock, job.id)
    assert s.run_once().released == 1


def test_an_unknown_dependency_is_kept_and_never_met(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "b", depends_on=["later"])
    assert app.get_schedule("b").depends_on == ("later",)
    s = scheduler(app)
    s.run_once()
    assert waiting(app, "b")[0].waiting_for == ("later",)
    clock.advance(seconds=30 * 60)
    s.run_once()
    assert len(waiting(app, "b")) == 1  # coalesce: it waits as long as it takes


def test_a_dependent_fire_is_not_made_ahead(app: Tock, clock: FakeClock, tasks: None) -> None:
    hourly(app, "b", depends_on=["a"], future_depends=True)
    clock.set(T0 - timedelta(milliseconds=200))  # within the lead of 00:00
    report = scheduler(app).run_once()
    assert report.jobs == [] and fires(app, "b") == []
    assert app.get_schedule("b").next_fire_at == T0


# -- the misfire policy: late, and later fires -------------------------------------------


def test_skip_drops_a_fire_that_waited_past_the_grace(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "a")
    hourly(app, "b", depends_on=["a"], misfire="skip", grace=60)
    s = scheduler(app)
    s.run_once()
    clock.advance(seconds=30)
    s.run_once()
    assert len(waiting(app, "b")) == 1
    clock.advance(seconds=30)  # 60 s after its fire time: missed
    report = s.run_once()
    assert report.dropped == 1
    (fire,) = fires(app, "b")
    assert (fire.outcome, fire.job_id, fire.waiting_for) == ("dependencies", None, ())
    finish(app, clock, last_job(app, "a"))
    assert s.run_once().jobs == []  # nothing waits any more


def test_coalesce_releases_a_late_fire_merged_with_the_later_ones(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "b", depends_on=["a"])  # a does not exist yet
    s = scheduler(app)
    s.run_once()
    for hours in (1, 2):
        clock.set(T0 + hours * HOUR)
        s.run_once()
    (fire,) = fires(app, "b")  # at most one waiting fire: the later ones joined it
    assert (fire.outcome, fire.at, fire.last, fire.count) == ("waiting", T0, T0 + 2 * HOUR, 3)
    hourly(app, "a")
    s.run_once()
    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "a"))
    report = s.run_once()
    assert report.released == 1 and len(report.jobs) == 1  # one job for them all
    (fire,) = fires(app, "b")
    assert (fire.outcome, fire.count) == ("enqueued", 3)
    assert app.get_schedule("b").last_fire_at == T0 + 2 * HOUR


def test_all_merges_later_fires_too(app: Tock, clock: FakeClock, tasks: None) -> None:
    hourly(app, "b", depends_on=["a"], misfire="all")
    s = scheduler(app)
    s.run_once()
    clock.set(T0 + HOUR)
    s.run_once()
    (fire,) = fires(app, "b")
    assert (fire.outcome, fire.count) == ("waiting", 2)


def test_skip_replaces_the_waiting_fire_with_the_later_one(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    app.schedule("b", task="tests.b", every=600, depends_on=["a"], misfire="skip", grace=3600)
    s = scheduler(app)
    s.run_once()
    clock.set(T0 + timedelta(minutes=10))
    s.run_once()
    assert [(f.at, f.outcome) for f in fires(app, "b")] == [
        (T0, "dependencies"),
        (T0 + timedelta(minutes=10), "waiting"),
    ]


# -- pause, removal ----------------------------------------------------------------------


def test_a_paused_schedule_s_fire_waits_until_it_is_resumed(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "a")
    hourly(app, "b", depends_on=["a"])
    s = scheduler(app)
    s.run_once()
    app.pause_schedule("b")
    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "a"))
    assert s.run_once().jobs == []  # paused: not looked at
    assert len(waiting(app, "b")) == 1
    app.resume_schedule("b")
    assert s.run_once().released == 1
    assert [f.outcome for f in fires(app, "b")] == ["enqueued"]


def test_removing_a_dependency_leaves_the_fire_waiting(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "a")
    hourly(app, "b", depends_on=["a"])
    s = scheduler(app)
    s.run_once()
    assert app.unschedule("a")
    clock.advance(seconds=1 * 60)
    s.run_once()
    assert waiting(app, "b")[0].waiting_for == ("a",)
    assert app.get_schedule("b").depends_on == ("a",)


def test_a_run_of_a_removed_dependency_still_counts(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "a")
    hourly(app, "b", depends_on=["a"])
    s = scheduler(app)
    s.run_once()
    job = last_job(app, "a")
    app.unschedule("a")  # its fire rows stay, with their jobs
    clock.advance(seconds=1 * 60)
    finish(app, clock, job)
    assert s.run_once().released == 1


def test_removing_the_waiting_schedule_drops_its_fire(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "b", depends_on=["a"])
    s = scheduler(app)
    s.run_once()
    assert app.unschedule("b")
    (fire,) = fires(app, "b")
    assert fire.outcome == "dependencies"
    hourly(app, "b", depends_on=["a"])  # created again: the old fire does not come back
    assert app.store.fire_waiting(limit=10) == []


def test_dropping_the_dependencies_releases_the_waiting_fire(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "b", depends_on=["a"])
    s = scheduler(app)
    s.run_once()
    hourly(app, "b")  # no dependencies any more
    assert app.get_schedule("b").depends_on == ()
    assert s.run_once().released == 1


def test_a_waiting_fire_is_never_pruned_as_a_drop(app: Tock, clock: FakeClock, tasks: None) -> None:
    hourly(app, "b", depends_on=["a"])
    scheduler(app).run_once()
    clock.advance(seconds=3 * 86400)
    app.store.fire_prune(older_than=60, batch_size=100, now=clock.db_now())
    assert len(waiting(app, "b")) == 1


# -- fencing ---------------------------------------------------------------------------


def test_a_stale_leader_s_release_writes_nothing(
    app: Tock, store: Store, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "a")
    hourly(app, "b", depends_on=["a"])
    s = scheduler(app)
    s.run_once()
    clock.advance(seconds=1 * 60)
    finish(app, clock, last_job(app, "a"))

    def lead(worker: str, takeover: bool = False) -> Lease:
        seen = store.leader_get(now=clock.db_now())
        lease = store.leader_elect(
            worker_id=worker, term=seen.term, ttl=10.0, now=clock.db_now(), takeover=takeover
        )
        assert lease is not None
        return lease

    stale = lead("old")
    current = lead("new", takeover=True)
    s.leader = lambda: stale
    with pytest.raises(StaleTerm):
        s.run_once()
    assert [f.outcome for f in fires(app, "b")] == ["waiting"]
    assert app.get_schedule("b").last_job_id is None
    assert store.job_list(task="tests.b") == []
    s.leader = lambda: current
    assert s.run_once().released == 1


# -- definition: cycles and bad input --------------------------------------------------


def test_a_cycle_is_refused_naming_the_schedules(app: Tock, tasks: None) -> None:
    hourly(app, "a", depends_on=["b"])
    with pytest.raises(ConfigurationError, match="form a cycle: b -> a -> b"):
        hourly(app, "b", depends_on=["a"])
    hourly(app, "b", depends_on=["c"])
    with pytest.raises(ConfigurationError, match="form a cycle: c -> a -> b -> c"):
        hourly(app, "c", depends_on=["a"])
    assert app.get_schedule("b").depends_on == ("c",)
    with pytest.raises(ConfigurationError, match="c -> a -> b -> c"):
        app.schedule_many([{"name": "c", "task": "tests.c", "every": 60, "depends_on": ["a"]}])
    with pytest.raises(ConfigurationError, match="form a cycle"):
        app.schedule_many(
            [
                {"name": "x", "task": "tests.c", "every": 60, "depends_on": ["y"]},
                {"name": "y", "task": "tests.c", "every": 60, "depends_on": ["x"]},
            ]
        )
    assert {s.name for s in app.list_schedules()} == {"a", "b"}


def test_a_code_schedule_cycle_is_refused_at_registration_and_sync(app: Tock, tasks: None) -> None:
    app.periodic(every=60, name="p1", depends_on=["p2"])(noop)
    with pytest.raises(ConfigurationError, match="form a cycle: p2 -> p1 -> p2"):
        app.periodic(every=60, name="p2", depends_on=["p1"])(noop)
    assert "p2" not in app.tasks and "p2" not in app.code_schedules
    # Declared in any order: a dependency defined later is no error.
    app.periodic(every=60, name="p3", depends_on=["p4", "p1"])(noop)
    app.periodic(every=60, name="p4")(noop)
    # A stored dynamic schedule closing a cycle is found when the worker syncs.
    app.schedule("p2", task="tests.a", every=60, depends_on=["p3"])
    with pytest.raises(ConfigurationError, match="form a cycle: p1 -> p2 -> p3 -> p1"):
        app.sync_schedules()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"depends_on": "a"}, "depends_on= takes a list of schedule names"),
        ({"depends_on": [1]}, "depends_on= holds 1, which is not a schedule name"),
        ({"depends_on": ["no spaces"]}, "'no spaces', which is not a schedule name"),
        ({"depends_on": ["a", "a"]}, "depends_on= names 'a' twice"),
        ({"depends_on": ["b"]}, "schedule 'b' cannot depend on itself"),
        ({"depends_on_outcome": "failed"}, "depends_on_outcome must be 'succeeded' or 'any'"),
        ({"future_depends": "yes"}, "future_depends must be True or False"),
    ],
)
def test_bad_dependency_options_are_refused(
    app: Tock, tasks: None, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        hourly(app, "b", **options)
    with pytest.raises(ConfigurationError, match=message.replace("'b'", "'tests.b2'")):
        app.periodic(every=60, name="tests.b2", **{**options, "depends_on": _self(options)})(noop)
    assert app.list_schedules() == [] and app.code_schedules == {}


def _self(options: dict[str, Any]) -> Any:
    """The periodic variant: a dependency on itself names its own schedule."""
    deps = options.get("depends_on", ())
    return ["tests.b2"] if deps == ["b"] else deps


def test_giving_dependencies_withdraws_a_job_made_ahead(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    hourly(app, "b")
    clock.set(T0 - timedelta(milliseconds=200))  # within the lead of 00:00
    (made,) = scheduler(app).run_once().jobs
    hourly(app, "b", depends_on=["a"])  # the fire now waits on a: not made ahead
    assert app.store.job_list(task="tests.b") == []
    assert app.get_schedule("b").next_fire_at == T0
    clock.set(T0)
    scheduler(app).run_once()
    assert [f.outcome for f in fires(app, "b")] == ["waiting"]
    assert made not in {j.id for j in app.store.job_list(limit=100)}


def test_every_waiting_fire_is_looked_at_past_a_batch(
    app: Tock, clock: FakeClock, tasks: None
) -> None:
    for i in range(5):
        app.schedule(f"w{i}", task="tests.b", every=HOUR, depends_on=["a"])
    hourly(app, "a")
    s = Scheduler(app.store, app.clock, app.tasks, SchedulerConfig(batch_size=2))
    s.run_once()
    clock.advance(seconds=60)
    finish(app, clock, last_job(app, "a"))
    report = s.run_once()
    assert report.released == 5  # the five waiting fires, past a batch of two
