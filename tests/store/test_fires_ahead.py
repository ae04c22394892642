"""Fires made ahead (docs/design.md: "Fires made ahead"), on both stores and the fake
clock: the scheduler makes a fire's job before its time, due at it; each fire stays one
job at most across schedulers and leaders; no-overlap, pause, removal, updates and the
misfire policy keep their meaning; an idle claimer sleeps until the job is due."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tock import FakeClock, JobStatus, Tock
from tock.duties.scheduler import Scheduler, SchedulerConfig
from tock.errors import ConfigurationError, JobNotFound
from tock.store import FireRecord
from tock.store._lists import cancel_one
from tock.worker.claimer import (
    CLAIM_AHEAD,
    FLUSH_AFTER,
    IDLE_POLL,
    TIMER_SLACK,
    WAKE_AHEAD,
    Claimer,
)
from tock.worker.completer import Completions
from tock.worker.executor import Executor

T0 = datetime(2030, 1, 1, tzinfo=UTC)  # the clock fixture's start
LEAD = SchedulerConfig().lead
WAIT = 10.0  # seconds a thread of a test may take, at most


def noop() -> None:
    pass


def greet(who: str) -> str:
    return f"hello {who}"


def register(app: Tock) -> None:
    app.task(name="tests.noop")(noop)
    app.task(name="tests.greet")(greet)


def scheduler(app: Tock, **config: Any) -> Scheduler:
    return Scheduler(app.store, app.clock, app.tasks, SchedulerConfig(**config))


def fires(app: Tock, name: str) -> list[FireRecord]:
    return list(reversed(app.store.fire_list(name, limit=1000)))  # oldest first


def live_jobs(app: Tock, task: str = "tests.noop") -> list[Any]:
    return sorted(app.store.job_list(task=task, limit=10_000), key=lambda r: r.id)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def claim(app: Tock, clock: FakeClock, worker: str) -> list[Any]:
    return app.store.job_claim_batch(
        worker_id=worker, queues=["default"], limit=10, free=10, now=clock.db_now()
    )


# -- the job exists before its fire, due at it ---------------------------------------------


def test_a_fires_job_is_made_ahead_due_at_the_fire_time(
    app: Tock, clock: FakeClock, make_worker: Any
) -> None:
    register(app)
    app.schedule("tick", task="tests.noop", every=10)
    s = scheduler(app)
    assert len(s.run_once().jobs) == 1  # 00:00:00, its first fire, on time
    clock.set(at(10) - timedelta(seconds=LEAD / 2))
    report = s.run_once()
    (made,) = report.jobs
    job = app.store.job_get(made)
    assert job.status is JobStatus.PENDING and job.run_at == at(10)
    assert [f.at for f in fires(app, "tick")] == [at(0), at(10)]
    assert app.get_schedule("tick").next_fire_at == at(20)
    # Not due before its time: a claim just before finds nothing, one at it the job.
    worker = make_worker("w1")
    claim(app, clock, worker)  # the 00:00:00 job
    assert claim(app, clock, worker) == []
    clock.set(at(10))
    assert [j.id for j in claim(app, clock, worker)] == [made]
    # The next pass makes nothing more until the lead before 00:00:20.
    assert s.run_once().jobs == []


def test_the_scheduler_sleeps_until_the_lead_before_the_next_fire(
    app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.schedule("tick", task="tests.noop", every=10)
    s = scheduler(app)
    s.run_once()
    clock.set(at(3))
    report = s.run_once()
    assert report.next_due == at(10)
    assert report.delay == pytest.approx(7 - LEAD + report.slack, abs=0.05)


def test_lead_zero_makes_each_job_at_its_fire_time(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("tick", task="tests.noop", every=10)
    s = scheduler(app, lead=0)
    s.run_once()
    clock.set(at(10) - timedelta(milliseconds=1))
    assert s.run_once().jobs == []
    clock.set(at(10))
    assert len(s.run_once().jobs) == 1


def test_the_lead_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="lead"):
        SchedulerConfig(lead=-1)


# -- at most one job a fire, across schedulers and leaders ---------------------------------


def test_a_new_leader_does_not_make_a_fire_made_ahead_again(
    app: Tock, other_app: Tock, clock: FakeClock
) -> None:
    for a in (app, other_app):
        register(a)
    app.schedule("tick", task="tests.noop", every=1)
    old, new = scheduler(app), scheduler(other_app)
    for k in range(1, 30):
        # The old leader makes fire k ahead; the next leader passes at k's time and
        # just after, then both pass at once at every instant of the lead window.
        clock.set(at(k) - timedelta(seconds=LEAD * 0.9))
        old.run_once()
        clock.set(at(k))
        new.run_once()
        clock.set(at(k) + timedelta(milliseconds=1))
        new.run_once()
        old.run_once()
    rows = fires(app, "tick")
    assert [r.at for r in rows] == [at(k) for k in range(30)]
    assert all(r.job_id is not None and r.outcome == "enqueued" for r in rows)
    jobs = live_jobs(app)
    assert len(jobs) == 30 == len({r.job_id for r in rows})
    assert sorted(j.run_at for j in jobs) == [at(k) for k in range(30)]


def test_a_pass_that_read_a_schedule_before_an_update_or_a_pause_writes_nothing(
    store: Any, app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.schedule("hi", task="tests.greet", every=10, args=["ada"])
    record = store.schedule_get("hi")
    clock.advance(timedelta(milliseconds=3))
    app.schedule("hi", task="tests.greet", every=10, args=["bob"])  # the same next fire

    def fire(read: Any) -> Any:
        return store.schedule_fire(
            "hi",
            expected_next=record.next_fire_at,
            new_next=at(10),
            fires=[],
            now=clock.db_now(),
            expected_updated=read.updated_at,
        )

    assert fire(record) is None  # changed since it was read
    app.pause_schedule("hi")  # in the same instant: the stamp alone would not tell
    assert fire(store.schedule_get("hi")) is None  # not active
    assert store.schedule_get("hi").next_fire_at == record.next_fire_at == at(0)


# -- no-overlap --------------------------------------------------------------------------


def test_no_overlap_leaves_a_fire_for_its_time_while_the_previous_job_is_live(
    app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.schedule("crawl", task="tests.noop", every=10, overlap=False)
    s = scheduler(app)
    (first,) = s.run_once().jobs  # 00:00:00, pending
    clock.set(at(10) - timedelta(seconds=LEAD / 2))
    report = s.run_once()
    # Not made, not dropped: the previous job may still end before 00:00:10.
    assert report.jobs == [] and report.dropped == 0 and report.deferred == 1
    assert report.held_until == at(10)
    assert report.delay == pytest.approx(LEAD / 2 + report.slack, abs=0.05)
    assert [f.at for f in fires(app, "crawl")] == [at(0)]
    assert app.get_schedule("crawl").next_fire_at == at(10)
    # At its time the job is still pending: dropped as overlap, decided then.
    clock.set(at(10))
    assert s.run_once().jobs == []
    rows = fires(app, "crawl")
    assert [(r.at, r.outcome) for r in rows] == [(at(0), "enqueued"), (at(10), "overlap")]
    # The job ends before the next fire's lead: that fire is made ahead.
    cancel_one(app.store, first, now=clock.db_now())
    clock.set(at(20) - timedelta(seconds=LEAD / 2))
    (made,) = s.run_once().jobs
    assert app.store.job_get(made).run_at == at(20)


def test_no_overlap_makes_the_fire_at_its_time_when_the_job_ended_meanwhile(
    app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.schedule("crawl", task="tests.noop", every=10, overlap=False)
    s = scheduler(app)
    (first,) = s.run_once().jobs
    clock.set(at(10) - timedelta(seconds=LEAD / 2))
    assert s.run_once().jobs == []  # left for its time
    cancel_one(app.store, first, now=clock.db_now())
    clock.set(at(10))
    (made,) = s.run_once().jobs
    assert app.store.job_get(made).run_at == at(10)
    assert [r.outcome for r in fires(app, "crawl")] == ["enqueued", "enqueued"]


def test_a_manual_trigger_of_a_no_overlap_schedule_withdraws_its_fire_made_ahead(
    app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.schedule("crawl", task="tests.noop", every=10, overlap=False)
    s = scheduler(app)
    (first,) = s.run_once().jobs
    cancel_one(app.store, first, now=clock.db_now())
    clock.set(at(10) - timedelta(seconds=LEAD / 2))
    (ahead,) = s.run_once().jobs  # the previous job ended: made ahead
    clock.advance(timedelta(milliseconds=10))
    triggered = app.trigger_schedule("crawl")  # pending at 00:00:10
    with pytest.raises(JobNotFound):
        app.store.job_get(ahead)
    assert app.get_schedule("crawl").next_fire_at == at(10)
    assert s.run_once().jobs == []  # left for its time: the triggered job is live
    clock.set(at(10))
    assert s.run_once().jobs == []
    scheduled = [r for r in fires(app, "crawl") if not r.manual]
    assert [(r.at, r.outcome) for r in scheduled] == [(at(0), "enqueued"), (at(10), "overlap")]
    assert app.store.job_get(triggered.id).status is JobStatus.PENDING


# -- pause, removal, updates after a fire was made ahead -------------------------------------


def made_ahead(app: Tock, clock: FakeClock, s: Scheduler, name: str = "tick") -> int:
    """The 00:00:00 fire, then the 00:00:10 one made ahead; returns the latter's job."""
    s.run_once()
    clock.set(at(10) - timedelta(seconds=LEAD / 2))
    (job,) = s.run_once().jobs
    assert app.get_schedule(name).next_fire_at == at(20)
    return job


def test_a_pause_withdraws_the_job_made_ahead_and_a_resume_in_time_makes_it_again(
    app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.schedule("tick", task="tests.noop", every=10)
    s = scheduler(app)
    job = made_ahead(app, clock, s)
    clock.advance(timedelta(milliseconds=50))
    paused = app.pause_schedule("tick")
    with pytest.raises(JobNotFound):
        app.store.job_get(job)
    assert paused.next_fire_at == at(10)  # as if never made
    assert paused.last_fire_at == at(0)
    assert [f.at for f in fires(app, "tick")] == [at(0)]
    assert s.run_once().jobs == []  # paused: nothing made
    clock.advance(timedelta(milliseconds=50))
    app.resume_schedule("tick")  # before 00:00:10: that fire runs after all
    (again,) = s.run_once().jobs
    assert again != job and app.store.job_get(again).run_at == at(10)
    rows = fires(app, "tick")
    assert [(r.at, r.job_id) for r in rows] == [(at(0), rows[0].job_id), (at(10), again)]


def test_a_fire_made_ahead_and_paused_past_its_time_is_recorded_as_paused(
    app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.schedule("tick", task="tests.noop", every=10)
    s = scheduler(app)
    made_ahead(app, clock, s)
    app.pause_schedule("tick")
    clock.set(at(35))
    app.resume_schedule("tick")
    rows = fires(app, "tick")
    assert [(r.at, r.outcome, r.count) for r in rows] == [
        (at(0), "enqueued", 1),
        (at(10), "paused", 3),
    ]
    assert rows[1].last == at(30)
    assert len(live_jobs(app)) == 1  # the 00:00:00 job alone
    assert app.get_schedule("tick").next_fire_at == at(40)


def test_a_pause_leaves_a_job_whose_fire_came_due(
    app: Tock, clock: FakeClock, make_worker: Any
) -> None:
    register(app)
    app.schedule("tick", task="tests.noop", every=10)
    s = scheduler(app)
    job = made_ahead(app, clock, s)
    clock.set(at(10))
    claim(app, clock, make_worker("w1"))
    app.pause_schedule("tick")  # its time came: the job is the fire's, as before
    assert app.store.job_get(job).status is JobStatus.RUNNING
    assert app.get_schedule("tick").next_fire_at == at(20)


def test_a_disable_withdraws_the_job_made_ahead(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("tick", task="tests.noop", every=10)
    s = scheduler(app)
    job = made_ahead(app, clock, s)
    record = app.store.schedule_set_enabled("tick", False, now=clock.db_now())
    assert record.next_fire_at == at(10)
    with pytest.raises(JobNotFound):
        app.store.job_get(job)


def test_prune_withdraws_the_job_made_ahead_of_a_code_schedule_no_process_declares(
    app: Tock, other_app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.periodic(every=timedelta(seconds=10), name="tick")(noop)
    assert app.sync_schedules() == ["tick"]
    job = made_ahead(app, clock, scheduler(app))
    assert other_app.prune_schedules() == ["tick"]  # a deployment without it
    with pytest.raises(JobNotFound):
        app.store.job_get(job)
    record = app.get_schedule("tick")
    assert not record.enabled and record.next_fire_at == at(10)


def test_unschedule_withdraws_the_job_made_ahead(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("tick", task="tests.noop", every=10)
    s = scheduler(app)
    job = made_ahead(app, clock, s)
    assert app.unschedule("tick") is True
    with pytest.raises(JobNotFound):
        app.store.job_get(job)
    assert [j.run_at for j in live_jobs(app)] == [at(0)]  # a fire that came due stays
    # Created again under the name: 00:00:10 is free again, and made once.
    app.schedule("tick", task="tests.noop", every=10)
    (again,) = s.run_once().jobs
    assert app.store.job_get(again).run_at == at(10)
    assert s.run_once().jobs == []


def test_an_update_withdraws_and_remakes_the_job_with_the_new_values(
    app: Tock, clock: FakeClock
) -> None:
    register(app)
    app.schedule("hi", task="tests.greet", every=10, args=["ada"])
    s = scheduler(app)
    job = made_ahead(app, clock, s, "hi")
    # The same values again (what start-up sync does): the job made ahead stays.
    app.schedule("hi", task="tests.greet", every=10, args=["ada"])
    assert app.store.job_get(job).args == ["ada"]
    assert app.get_schedule("hi").next_fire_at == at(20)
    # New arguments: withdrawn, and made again with them for the same fire.
    clock.advance(timedelta(milliseconds=10))
    app.schedule("hi", task="tests.greet", every=10, args=["bob"])
    with pytest.raises(JobNotFound):
        app.store.job_get(job)
    assert app.get_schedule("hi").next_fire_at == at(10)
    (again,) = s.run_once().jobs
    remade = app.store.job_get(again)
    assert (remade.args, remade.run_at) == (["bob"], at(10))
    # A new trigger: withdrawn, and the next fire is the new trigger's first.
    clock.advance(timedelta(milliseconds=10))
    app.schedule("hi", task="tests.greet", every=20, args=["bob"])
    with pytest.raises(JobNotFound):
        app.store.job_get(again)
    assert app.get_schedule("hi").next_fire_at == at(20)
    assert [r.at for r in fires(app, "hi")] == [at(0)]


@pytest.mark.parametrize("change", ["update", "pause", "unschedule"])
def test_a_change_racing_a_fire_made_ahead_withdraws_it(
    app: Tock,
    store_kind: str,
    clock: FakeClock,
    request: pytest.FixtureRequest,
    change: str,
) -> None:
    """A scheduler pass holds the schedule's row (its fire made ahead with the old
    arguments, not committed yet) while a change runs: the change waits for it and then
    withdraws that fire. On PostgreSQL the change's wait is on the row lock."""
    register(app)
    app.schedule("hi", task="tests.greet", every=10, args=["ada"])
    s = scheduler(app)
    s.run_once()  # 00:00:00
    clock.set(at(10) - timedelta(seconds=LEAD / 2))
    store: Any = app.store
    inside, release = threading.Event(), threading.Event()
    enqueue = store.job_enqueue_many

    def held_enqueue(*args: Any, **kwargs: Any) -> Any:
        ids = enqueue(*args, **kwargs)
        inside.set()
        assert release.wait(WAIT)
        return ids

    store.job_enqueue_many = held_enqueue
    made: list[Any] = []
    firing = threading.Thread(target=lambda: made.extend(s.run_once().jobs))
    firing.start()
    assert inside.wait(WAIT)
    del store.job_enqueue_many
    actions = {
        "update": lambda: app.schedule("hi", task="tests.greet", every=10, args=["bob"]),
        "pause": lambda: app.pause_schedule("hi"),
        "unschedule": lambda: app.unschedule("hi"),
    }
    updating = threading.Thread(target=actions[change])
    updating.start()
    if store_kind == "postgres":
        wait_for_lock_waiter(request.getfixturevalue("pg_admin"))
    release.set()
    firing.join(WAIT)
    updating.join(WAIT)
    assert not firing.is_alive() and not updating.is_alive()
    (job,) = made  # the fire made ahead with the old arguments committed first …
    with pytest.raises(JobNotFound):
        app.store.job_get(job)  # … and the change withdrew it
    if change == "unschedule":
        assert [j.run_at for j in live_jobs(app, "tests.greet")] == [at(0)]
        return
    assert app.get_schedule("hi").next_fire_at == at(10)
    remade = s.run_once().jobs
    if change == "pause":
        assert remade == []
    else:
        assert [app.store.job_get(i).args for i in remade] == [["bob"]]


def wait_for_lock_waiter(admin: Any) -> None:
    """Until a session waits on a lock (the update, on the fire's row lock)."""
    for _ in range(int(WAIT / 0.01)):
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchone()
        if row and row[0]:
            return
        threading.Event().wait(0.01)
    raise AssertionError("the update never waited on the fire's row lock")


# -- misfire keeps its meaning -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("misfire", "ran", "dropped"),
    [
        ("coalesce", [50, 60], ("coalesced", 10, 40, 4)),
        ("skip", [60], ("missed", 10, 50, 5)),
        ("all", [10, 20, 30, 40, 50, 60], None),
    ],
)
def test_misfire_looks_at_the_real_time_and_a_fire_ahead_stands_for_no_missed_one(
    app: Tock,
    clock: FakeClock,
    misfire: str,
    ran: list[int],
    dropped: tuple[str, int, int, int] | None,
) -> None:
    """Every 10 s, grace 5 s, a pass at 00:00:00 and one at 00:00:59.8: the fires 00:10
    … 00:50 were missed (late by 5 s or more); 00:01:00 is within the lead, made ahead,
    and stands for none of them."""
    register(app)
    app.schedule("m", task="tests.noop", every=10, misfire=misfire, grace=5)
    s = scheduler(app)
    s.run_once()
    clock.set(at(60) - timedelta(seconds=LEAD * 0.4))
    s.run_once()
    rows = fires(app, "m")[1:]
    assert [r.at for r in rows if r.job_id is not None] == [at(k) for k in ran]
    drops = [(r.outcome, r.at, r.last, r.count) for r in rows if r.job_id is None]
    if dropped is None:
        assert drops == []
    else:
        reason, first, last, count = dropped
        assert drops == [(reason, at(first), at(last), count)]
    assert app.get_schedule("m").next_fire_at == at(70)


def test_a_fire_late_by_less_than_grace_still_runs_with_a_lead(app: Tock, clock: FakeClock) -> None:
    register(app)
    app.schedule("m", task="tests.noop", every=10, misfire="skip", grace=5)
    s = scheduler(app)
    s.run_once()
    clock.set(at(14))  # 00:00:10 is 4 s late: within grace
    (job,) = s.run_once().jobs
    assert app.store.job_get(job).run_at == at(10)


# -- the idle claimer sleeps until the job made ahead is due --------------------------------


def idle_claimer(app: Tock, clock: FakeClock) -> Claimer:
    """A claimer that is not started: its idle sleep is computed, not waited."""
    completions = Completions(on_add=lambda: None)
    executor = Executor(dict(app.tasks), 2, completions, lambda: None)
    return Claimer(
        app.store,
        clock,
        executor,
        completions,
        worker_id="w1",
        queues=["default"],
        prefetch=2,
    )


def test_an_idle_claimer_sleeps_until_the_next_job_is_due(
    app: Tock, clock: FakeClock, make_worker: Any
) -> None:
    register(app)
    claimer = idle_claimer(app, clock)
    assert claimer._idle_timeout() == IDLE_POLL  # nothing known
    app.schedule("tick", task="tests.noop", every=10)
    s = scheduler(app)
    s.run_once()
    assert len(claim(app, clock, make_worker("w0"))) == 1  # 00:00:00's job
    clock.set(at(10) - timedelta(seconds=0.3))
    s.run_once()  # 00:00:10 made ahead
    claimer._watched()  # the store's watch saw the insert
    # It wakes just before, so that its claim is over by the job's time.
    assert claimer._idle_timeout() == pytest.approx(0.3 - WAKE_AHEAD + TIMER_SLACK, abs=1e-6)


def test_a_claimer_holding_jobs_learns_of_a_fire_made_ahead_from_its_scheduler(
    app: Tock, clock: FakeClock, make_job: Any
) -> None:
    register(app)
    claimer = idle_claimer(app, clock)
    held = make_job(status="running")
    claimer.executor.submit([held])  # not started: held, waiting for a slot
    assert claimer._until_due() == IDLE_POLL  # read once: nothing due later
    assert claimer._until_due() == IDLE_POLL  # and not read again without news
    # Holding a job, it sleeps no longer than FLUSH_AFTER: an outcome is written soon.
    assert claimer._idle_timeout() == FLUSH_AFTER
    claimer.expect(clock.now() + timedelta(seconds=0.25))
    assert claimer._until_due() == pytest.approx(0.25 - WAKE_AHEAD + TIMER_SLACK, abs=1e-6)
    # Its time came (the turn at it claimed the job): the claimer asks the store again.
    clock.advance(timedelta(seconds=0.25))
    assert claimer._until_due() == IDLE_POLL


def test_a_claimer_draining_a_backlog_reads_the_next_due_time_only_once_a_claim_is_short(
    app: Tock, clock: FakeClock, make_worker: Any
) -> None:
    """While claims come back full, more is due now and the executor wakes the claimer at
    the refill mark: no read of ``job_next_due`` (it scans the queues' pending jobs)."""
    register(app)
    make_worker("w1")
    app.tasks["tests.noop"].enqueue_many([() for _ in range(10)])
    claimer = idle_claimer(app, clock)  # room: 2 slots + a prefetch of 2
    reads: list[object] = []
    next_due = app.store.job_next_due

    def counted(**kwargs: Any) -> Any:
        reads.append(kwargs)
        return next_due(**kwargs)

    app.store.job_next_due = counted  # type: ignore[method-assign]
    try:
        for _ in range(2):
            claimer._turn()  # 4 jobs: a full claim
            assert len(claimer.executor.void()) == 4  # as if they ran: room again
            assert claimer._until_due() == IDLE_POLL
        assert reads == []
        claimer._turn()  # the last 2 of 4 asked: short, the backlog is drained
        claimer.executor.void()
        assert claimer._until_due() == IDLE_POLL
        assert len(reads) == 1
    finally:
        del app.store.job_next_due


def test_the_claimers_sleep_ends_at_a_reading_of_the_database_clock_that_finds_it_due(
    app: Tock, clock: FakeClock
) -> None:
    """SQLite's clock reads whole milliseconds: a job due 1 µs past one is due at the
    next; PostgreSQL's reads microseconds."""
    claimer = idle_claimer(app, clock)
    due = at(0.5) + timedelta(microseconds=1)
    claimer.expect(due)
    first_due_reading = at(0.501) if app.store.clock_step == 1e-3 else due
    expected = (first_due_reading - T0).total_seconds() - WAKE_AHEAD + TIMER_SLACK
    assert claimer._idle_timeout() == pytest.approx(expected, abs=1e-6)


# -- claimed early, started at its time (docs/design.md: "Claimed early") -------------------


def test_a_claim_ahead_takes_the_jobs_due_within_it_and_no_later(
    app: Tock, clock: FakeClock, make_worker: Any, make_job: Any
) -> None:
    worker = make_worker("w0")
    soon = make_job(run_at=clock.now() + timedelta(milliseconds=4))
    later = make_job(run_at=clock.now() + timedelta(milliseconds=40))
    args = dict(worker_id=worker, queues=["default"], limit=10, free=10, now=clock.db_now())
    assert app.store.job_claim_batch(**args) == []  # nothing due now
    assert [j.id for j in app.store.job_claim_batch(**args, ahead=0.005)] == [soon.id]
    assert app.store.job_get(later.id).status is JobStatus.PENDING
    # Several queues take the same path through the other statement.
    more = dict(args, queues=["default", "other"])
    assert [j.id for j in app.store.job_claim_batch(**more, ahead=0.05)] == [later.id]


@pytest.mark.parametrize("ahead", [-0.001, 0.051, float("nan")])
def test_a_claim_ahead_is_bounded(app: Tock, clock: FakeClock, ahead: float) -> None:
    with pytest.raises(ValueError, match="ahead"):
        app.store.job_claim_batch(
            worker_id="w", queues=["default"], limit=1, free=1, now=clock.db_now(), ahead=ahead
        )


def test_a_job_claimed_early_is_handed_to_the_executor_at_its_time(
    app: Tock, clock: FakeClock, make_worker: Any, make_job: Any
) -> None:
    register(app)
    claimer = idle_claimer(app, clock)
    make_worker("w1")
    now_job = make_job(task="tests.noop")
    early = make_job(task="tests.noop", run_at=clock.now() + timedelta(seconds=CLAIM_AHEAD))
    handed: list[list[int]] = []

    def submit(jobs: list[Any]) -> None:
        handed.append([j.id for j in jobs])

    claimer.executor.submit = submit  # type: ignore[method-assign]
    slept: list[float] = []
    clock.sleep = slept.append  # type: ignore[method-assign]
    claimer._turn()
    # The due job at once, then the early one after a sleep until its run_at.
    assert handed == [[now_job.id], [early.id]]
    assert slept == [pytest.approx(CLAIM_AHEAD)]
