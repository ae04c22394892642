"""Schedules and fires in the store, through the protocol only (both stores)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from tock import FakeClock, JobStatus
from tock.errors import ScheduleNotFound
from tock.jobs import NewJob, Outcome, OutcomeKind
from tock.store import Fire, FireRecord, ScheduleRecord, Store
from tock.store._sql import parse_queries

EVERY_10 = json.dumps({"every": 600, "anchor": "1970-01-01T00:00:00+00:00"})
CRON = json.dumps({"cron": "0 * * * *", "timezone": "UTC"})


def record(name: str = "s1", **fields: object) -> ScheduleRecord:
    values: dict[str, object] = {"task": "tests.noop", "trigger": EVERY_10}
    values.update(fields)
    return ScheduleRecord(name=name, **values)  # type: ignore[arg-type]


def job(*args: object) -> NewJob:
    return NewJob(task="tests.noop", args=json.dumps(list(args)), kwargs="{}")


def test_upsert_get_list_delete(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    first = now + timedelta(minutes=10)
    got = store.schedule_upsert(
        record(
            "b",
            args="[1]",
            kwargs='{"x": 2}',
            queue="q",
            priority=3,
            misfire="skip",
            grace=5.5,
            overlap=False,
            source="code",
            next_fire_at=first,
        ),
        now=now,
    )
    assert got == store.schedule_get("b")
    assert (got.name, got.task, got.trigger, got.args, got.kwargs) == (
        "b",
        "tests.noop",
        EVERY_10,
        "[1]",
        '{"x": 2}',
    )
    assert (got.queue, got.priority, got.misfire, got.grace) == ("q", 3, "skip", 5.5)
    assert (got.overlap, got.enabled, got.paused, got.source) == (False, True, False, "code")
    assert got.next_fire_at == first
    assert got.last_fire_at is None and got.last_job_id is None
    assert got.created_at == got.updated_at == now
    store.schedule_upsert(record("a", trigger=CRON), now=now)
    assert [s.name for s in store.schedule_list()] == ["a", "b"]
    assert store.schedule_get("a").queue is None and store.schedule_get("a").priority is None
    assert store.schedule_delete("a", now=clock.db_now()) is True
    assert store.schedule_delete("a", now=clock.db_now()) is False
    assert [s.name for s in store.schedule_list()] == ["b"]
    with pytest.raises(ScheduleNotFound, match="'a'"):
        store.schedule_get("a")
    with pytest.raises(LookupError):
        store.schedule_get("nope")


def test_pause_and_resume(store: Store, clock: FakeClock) -> None:
    store.schedule_upsert(record(), now=clock.db_now())
    clock.advance(seconds=5)
    paused = store.schedule_set_paused("s1", True, now=clock.db_now())
    assert paused.paused is True and paused.updated_at == clock.db_now()
    assert store.schedule_get("s1").paused is True
    assert store.schedule_set_paused("s1", False, now=clock.db_now()).paused is False
    with pytest.raises(ScheduleNotFound):
        store.schedule_set_paused("nope", True, now=clock.db_now())


def test_upsert_keeps_paused_and_next_fire_unless_trigger_changes(
    store: Store, clock: FakeClock
) -> None:
    now = clock.db_now()
    first = now + timedelta(minutes=10)
    store.schedule_upsert(record(next_fire_at=first), now=now)
    store.schedule_set_paused("s1", True, now=now)
    clock.advance(seconds=60)
    later = clock.db_now()
    # Same trigger (a sync at start-up): paused and next_fire_at stay, the rest changes.
    again = store.schedule_upsert(
        record(args="[7]", enabled=False, next_fire_at=later + timedelta(hours=1)), now=later
    )
    assert again.paused is True
    assert again.next_fire_at == first
    assert (again.args, again.enabled) == ("[7]", False)
    assert again.created_at == now and again.updated_at == later
    # An upsert that says paused=False does not resume: paused is set by people.
    assert store.schedule_upsert(record(paused=False), now=later).paused is True
    # A new trigger takes the caller's next fire time.
    new_next = later + timedelta(hours=1)
    changed = store.schedule_upsert(record(trigger=CRON, next_fire_at=new_next), now=later)
    assert (changed.trigger, changed.next_fire_at, changed.paused) == (CRON, new_next, True)
    # A new schedule may be created paused.
    assert store.schedule_upsert(record("p", paused=True), now=later).paused is True


def test_due_uses_now_and_skips_paused_disabled_and_never(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    store.schedule_upsert(record("late", next_fire_at=now + timedelta(seconds=30)), now=now)
    store.schedule_upsert(record("early", next_fire_at=now - timedelta(seconds=30)), now=now)
    store.schedule_upsert(record("exact", next_fire_at=now), now=now)
    store.schedule_upsert(record("never", next_fire_at=None), now=now)
    store.schedule_upsert(
        record("off", enabled=False, next_fire_at=now - timedelta(hours=1)), now=now
    )
    store.schedule_upsert(record("held", next_fire_at=now - timedelta(hours=1)), now=now)
    store.schedule_set_paused("held", True, now=now)
    assert [s.name for s in store.schedule_due(now=now, limit=10)] == ["early", "exact"]
    assert [s.name for s in store.schedule_due(now=now, limit=1)] == ["early"]
    clock.advance(seconds=30)
    assert [s.name for s in store.schedule_due(now=clock.db_now(), limit=10)] == [
        "early",
        "exact",
        "late",
    ]
    store.schedule_set_paused("held", False, now=now)
    assert store.schedule_due(now=clock.db_now(), limit=10)[0].name == "held"


def test_fire_creates_jobs_and_advances(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    t1 = now
    t2 = now + timedelta(minutes=10)
    store.schedule_upsert(record(next_fire_at=t1), now=now)
    new = NewJob(task="tests.other", args="[1, 2]", kwargs='{"k": "v"}', queue="q9", priority=4)
    ids = store.schedule_fire(
        "s1", expected_next=t1, new_next=t2, fires=[Fire(t1, "enqueued", job=new)], now=now
    )
    assert ids is not None and len(ids) == 1
    created = store.job_get(ids[0])
    assert (created.task, created.args, created.kwargs) == ("tests.other", [1, 2], {"k": "v"})
    assert (created.queue, created.priority) == ("q9", 4)
    s = store.schedule_get("s1")
    assert (s.next_fire_at, s.last_fire_at, s.last_job_id) == (t2, t1, ids[0])
    assert store.schedule_due(now=now, limit=10) == []


def test_fire_compare_and_set(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    t1, t2 = now, now + timedelta(minutes=10)
    store.schedule_upsert(record(next_fire_at=t1), now=now)
    fires = [Fire(t1, "enqueued", job=job(1))]
    first = store.schedule_fire("s1", expected_next=t1, new_next=t2, fires=fires, now=now)
    assert first is not None and len(first) == 1
    # Another node read the same next fire time: it loses and writes nothing.
    second = store.schedule_fire("s1", expected_next=t1, new_next=t2, fires=fires, now=now)
    assert second is None
    assert len(store.job_list()) == 1
    assert store.schedule_get("s1").next_fire_at == t2
    # The CAS is NULL-safe: a schedule that never fires again matches only None.
    assert store.schedule_fire("s1", expected_next=None, new_next=None, fires=[], now=now) is None
    assert store.schedule_fire("s1", expected_next=t2, new_next=None, fires=[], now=now) == []
    assert store.schedule_get("s1").next_fire_at is None
    assert store.schedule_fire("s1", expected_next=None, new_next=t2, fires=[], now=now) == []
    assert store.schedule_get("s1").next_fire_at == t2
    # A schedule that does not exist fires nothing.
    assert store.schedule_fire("nope", expected_next=t1, new_next=t2, fires=fires, now=now) is None
    assert len(store.job_list()) == 1


def test_fire_at_a_recorded_time_creates_no_second_job(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    t1, t2, t3 = now, now + timedelta(minutes=10), now + timedelta(minutes=20)
    store.schedule_upsert(record(next_fire_at=t1), now=now)
    (job_id,) = store.schedule_fire(
        "s1", expected_next=t1, new_next=t2, fires=[Fire(t1, "enqueued", job=job(1))], now=now
    ) or [None]
    # A fresh CAS (next moved back by a trigger change) at the same fire time: the unique
    # key on (schedule, fire time) lets it create nothing.
    store.schedule_upsert(record(trigger=CRON, next_fire_at=t1), now=now)
    again = store.schedule_fire(
        "s1",
        expected_next=t1,
        new_next=t3,
        fires=[Fire(t1, "enqueued", job=job(1)), Fire(t2, "enqueued", job=job(2))],
        now=now,
    )
    assert again is not None and len(again) == 1 and again[0] != job_id
    assert store.job_get(again[0]).args == [2]
    assert sorted(j.id for j in store.job_list()) == sorted([job_id, again[0]])
    s = store.schedule_get("s1")
    assert (s.next_fire_at, s.last_fire_at, s.last_job_id) == (t3, t2, again[0])


def test_fire_keys_outlive_a_deleted_schedule(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    t1, t2 = now, now + timedelta(minutes=10)
    store.schedule_upsert(record(next_fire_at=t1), now=now)
    assert store.schedule_fire(
        "s1", expected_next=t1, new_next=t2, fires=[Fire(t1, "enqueued", job=job())], now=now
    )
    store.schedule_delete("s1", now=now)
    store.schedule_upsert(record(next_fire_at=t1), now=now)
    assert (
        store.schedule_fire(
            "s1", expected_next=t1, new_next=t2, fires=[Fire(t1, "enqueued", job=job())], now=now
        )
        == []
    )
    assert len(store.job_list()) == 1


def test_drops_are_recorded_without_jobs(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    fire_times = [now - timedelta(minutes=10 * k) for k in (3, 2, 1, 0)]
    store.schedule_upsert(record(next_fire_at=fire_times[0]), now=now)
    nxt = now + timedelta(minutes=10)
    ids = store.schedule_fire(
        "s1",
        expected_next=fire_times[0],
        new_next=nxt,
        fires=[
            Fire(fire_times[0], "coalesced"),
            Fire(fire_times[1], "coalesced"),
            Fire(fire_times[2], "missed"),
            Fire(fire_times[3], "enqueued", job=job()),
        ],
        now=now,
    )
    assert ids is not None and len(ids) == 1
    assert len(store.job_list()) == 1
    s = store.schedule_get("s1")
    assert (s.last_fire_at, s.last_job_id) == (fire_times[3], ids[0])
    # A dropped fire is recorded: that time creates no job later either.
    again = store.schedule_fire(
        "s1",
        expected_next=nxt,
        new_next=nxt + timedelta(minutes=10),
        fires=[Fire(fire_times[1], "enqueued", job=job())],
        now=now,
    )
    assert again == []
    assert len(store.job_list()) == 1
    # Only drops: the schedule advances, no job, last fire unchanged.
    assert (
        store.schedule_fire(
            "s1",
            expected_next=nxt + timedelta(minutes=10),
            new_next=nxt + timedelta(minutes=20),
            fires=[Fire(nxt, "paused")],
            now=now,
        )
        == []
    )
    assert store.schedule_get("s1").last_job_id == ids[0]


def test_fire_is_one_transaction(store: Store, clock: FakeClock) -> None:
    """An outcome the store refuses rolls back the fires before it and the CAS."""
    now = clock.db_now()
    t1, t2 = now, now + timedelta(minutes=10)
    store.schedule_upsert(record(next_fire_at=t1), now=now)
    with pytest.raises(Exception):  # noqa: B017 - each driver's own integrity error
        store.schedule_fire(
            "s1",
            expected_next=t1,
            new_next=t2,
            fires=[Fire(t1, "enqueued", job=job(1)), Fire(t2, "not-an-outcome")],
            now=now,
        )
    assert store.job_list() == []
    assert store.schedule_get("s1").next_fire_at == t1
    # Nothing of it was kept: the same fire works now, once.
    ids = store.schedule_fire(
        "s1", expected_next=t1, new_next=t2, fires=[Fire(t1, "enqueued", job=job(1))], now=now
    )
    assert ids is not None and len(ids) == 1
    assert [j.id for j in store.job_list()] == ids


def test_fire_on_the_database_clock(store: Store, clock: FakeClock) -> None:
    """``now=None``: the database's clock stamps the rows (production)."""
    real = store.db_now(now=None)
    store.schedule_upsert(record(next_fire_at=real), now=None)
    assert [s.name for s in store.schedule_due(now=None, limit=5)] == ["s1"]
    ids = store.schedule_fire(
        "s1",
        expected_next=real,
        new_next=None,
        fires=[Fire(real, "triggered", job=job())],
        now=None,
    )
    assert ids is not None and len(ids) == 1
    assert store.schedule_get("s1").next_fire_at is None


# -- runs of drops (docs/design.md: consecutive drops are one row) -------------------------------


def rows(store: Store, name: str = "s1") -> list[tuple[Any, ...]]:
    """The schedule's fire rows, oldest first, as (at, last, count, outcome, job?, manual)."""
    return [
        (f.at, f.last, f.count, f.outcome, f.job_id is not None, f.manual)
        for f in reversed(store.fire_list(name, limit=1000))
    ]


def test_consecutive_drops_of_one_outcome_are_one_row(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    t = [now + timedelta(minutes=10 * k) for k in range(8)]
    store.schedule_upsert(record(next_fire_at=t[0]), now=now)
    ids = store.schedule_fire(
        "s1",
        expected_next=t[0],
        new_next=t[7],
        fires=[
            Fire(t[0], "coalesced"),
            Fire(t[1], "coalesced"),
            Fire(t[2], "coalesced", last=t[3], count=2),  # a run given as one Fire
            Fire(t[4], "missed"),  # another outcome: a row of its own
            Fire(t[5], "enqueued", job=job()),
            Fire(t[6], "missed"),  # after a job: a new row, not the run before it
        ],
        now=now,
    )
    assert ids is not None and len(ids) == 1
    assert rows(store) == [
        (t[0], t[3], 4, "coalesced", False, False),
        (t[4], t[4], 1, "missed", False, False),
        (t[5], t[5], 1, "enqueued", True, False),
        (t[6], t[6], 1, "missed", False, False),
    ]
    # The next pass goes on with the latest run, whatever the pass it started in.
    t8 = t[7] + timedelta(minutes=10)
    assert (
        store.schedule_fire(
            "s1",
            expected_next=t[7],
            new_next=t8 + timedelta(minutes=10),
            fires=[Fire(t[7], "missed"), Fire(t8, "missed", last=t8, count=1)],
            now=now,
        )
        == []
    )
    assert rows(store)[-1] == (t[6], t8, 3, "missed", False, False)


def test_a_time_inside_a_run_of_drops_creates_no_job(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    t = [now + timedelta(minutes=10 * k) for k in range(5)]
    store.schedule_upsert(record(next_fire_at=t[0]), now=now)
    store.schedule_fire(
        "s1",
        expected_next=t[0],
        new_next=t[4],
        fires=[Fire(t[0], "paused", last=t[3], count=4)],
        now=now,
    )
    # The trigger changes and the next fire time moves back into the run: a time the
    # run covers was dropped, so it creates no job; a time after it does.
    store.schedule_upsert(record(trigger=CRON, next_fire_at=t[2]), now=now)
    ids = store.schedule_fire(
        "s1",
        expected_next=t[2],
        new_next=None,
        fires=[Fire(t[2], "enqueued", job=job(2)), Fire(t[4], "enqueued", job=job(4))],
        now=now,
    )
    assert ids is not None and [store.job_get(i).args for i in ids] == [[4]]
    assert rows(store) == [
        (t[0], t[3], 4, "paused", False, False),
        (t[4], t[4], 1, "enqueued", True, False),
    ]


def test_a_drop_before_the_latest_row_is_not_merged(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    t = [now + timedelta(minutes=10 * k) for k in range(4)]
    store.schedule_upsert(record(next_fire_at=t[2]), now=now)
    store.schedule_fire(
        "s1", expected_next=t[2], new_next=t[3], fires=[Fire(t[2], "missed")], now=now
    )
    store.schedule_upsert(record(trigger=CRON, next_fire_at=t[0]), now=now)
    store.schedule_fire(
        "s1", expected_next=t[0], new_next=t[3], fires=[Fire(t[0], "missed")], now=now
    )
    assert rows(store) == [
        (t[0], t[0], 1, "missed", False, False),
        (t[2], t[2], 1, "missed", False, False),
    ]


# -- manual triggers -----------------------------------------------------------------------


def test_trigger_creates_a_job_with_its_own_key(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    first = now + timedelta(minutes=10)
    store.schedule_upsert(record(next_fire_at=first), now=now)
    store.schedule_set_paused("s1", True, now=now)
    job_id = store.schedule_trigger("s1", job(7), now=now)
    assert store.job_get(job_id).args == [7]
    s = store.schedule_get("s1")
    # next_fire_at and paused stay: a trigger is not a fire of the plan.
    assert (s.next_fire_at, s.paused) == (first, True)
    assert (s.last_fire_at, s.last_job_id, s.last_status) == (now, job_id, JobStatus.PENDING)
    assert store.fire_list("s1") == [
        FireRecord(
            schedule="s1",
            at=now,
            last=now,
            count=1,
            outcome="triggered",
            job_id=job_id,
            manual=True,
            created_at=now,
        )
    ]
    # The manual key is not the scheduled one: a fire at the same time still fires.
    store.schedule_set_paused("s1", False, now=now)
    store.schedule_upsert(record(trigger=CRON, next_fire_at=now), now=now)
    ids = store.schedule_fire(
        "s1", expected_next=now, new_next=first, fires=[Fire(now, "enqueued", job=job(1))], now=now
    )
    assert ids is not None and len(ids) == 1
    assert sorted(j.id for j in store.job_list()) == sorted([job_id, ids[0]])


def test_triggers_in_one_microsecond_each_get_a_fire(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    store.schedule_upsert(record(next_fire_at=now + timedelta(hours=1)), now=now)
    ids = [store.schedule_trigger("s1", job(i), now=now) for i in range(3)]
    assert len(set(ids)) == 3
    fired = store.fire_list("s1")
    assert [f.at for f in fired] == [now + timedelta(microseconds=k) for k in (2, 1, 0)]
    assert [f.job_id for f in fired] == ids[::-1]
    assert all(f.manual and f.outcome == "triggered" for f in fired)
    s = store.schedule_get("s1")
    assert (s.last_fire_at, s.last_job_id) == (now + timedelta(microseconds=2), ids[2])


def test_trigger_of_a_missing_schedule_writes_nothing(store: Store, clock: FakeClock) -> None:
    with pytest.raises(ScheduleNotFound, match="'nope'"):
        store.schedule_trigger("nope", job(), now=clock.db_now())
    assert store.job_list() == []
    assert store.fire_list("nope") == []


def test_trigger_on_the_database_clock(store: Store) -> None:
    before = store.db_now(now=None)
    store.schedule_upsert(record(), now=None)
    job_id = store.schedule_trigger("s1", job(), now=None)
    (fired,) = store.fire_list("s1")
    assert fired.at >= before and fired.job_id == job_id and fired.manual
    assert store.schedule_get("s1").last_fire_at == fired.at


# -- last_status ------------------------------------------------------------------------------


def test_last_status_follows_the_last_job_through_both_tables(
    store: Store, clock: FakeClock, make_worker: Callable[..., str]
) -> None:
    now = clock.db_now()
    store.schedule_upsert(record(next_fire_at=now), now=now)
    assert store.schedule_get("s1").last_status is None
    (job_id,) = store.schedule_fire(
        "s1", expected_next=now, new_next=None, fires=[Fire(now, "enqueued", job=job())], now=now
    ) or [0]

    def statuses() -> set[JobStatus | None]:
        # schedule_get, schedule_list and schedule_set_paused read it alike.
        got = {store.schedule_get("s1").last_status}
        got.add(store.schedule_list()[0].last_status)
        got.add(store.schedule_set_paused("s1", False, now=now).last_status)
        return got

    assert statuses() == {JobStatus.PENDING}
    # schedule_due too (next_fire_at moved back by a new trigger).
    store.schedule_upsert(record(trigger=CRON, next_fire_at=now), now=now)
    (due,) = store.schedule_due(now=now, limit=10)
    assert due.last_status is JobStatus.PENDING
    worker = make_worker()
    (claimed,) = store.job_claim_batch(
        worker_id=worker, queues=["default"], limit=1, free=1, now=now
    )
    assert statuses() == {JobStatus.RUNNING}
    outcome = Outcome(job_id, claimed.claim_token or 0, OutcomeKind.SUCCEEDED, result="null")
    assert store.job_complete_batch([outcome], now=now) == 1
    assert statuses() == {JobStatus.SUCCEEDED}  # from the finished table
    clock.advance(timedelta(days=2))
    store.job_prune(retention={JobStatus.SUCCEEDED: 86400.0}, batch_size=10, now=clock.db_now())
    assert statuses() == {None}
    # An upsert ignores the caller's last_status (the store sets it).
    kept = store.schedule_upsert(record(last_status=JobStatus.FAILED), now=now)
    assert kept.last_status is None and kept.last_job_id == job_id


# -- upsert_many, lists and switches -------------------------------------------------------


def test_upsert_many_is_upsert_for_each(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    first = now + timedelta(minutes=10)
    assert store.schedule_upsert_many([], now=now) == 0
    assert (
        store.schedule_upsert_many([record(f"s{i}", next_fire_at=first) for i in range(5)], now=now)
        == 5
    )
    store.schedule_set_paused("s0", True, now=now)
    clock.advance(seconds=60)
    later = clock.db_now()
    new_next = later + timedelta(hours=1)
    n = store.schedule_upsert_many(
        [
            record("s0", args="[1]", next_fire_at=new_next),  # same trigger: next kept
            record("s1", trigger=CRON, next_fire_at=new_next),  # new trigger: next taken
            record("s2", enabled=False, queue="q", priority=-3, grace=1.5, overlap=False),
            record("s9", source="code", next_fire_at=None),  # a new one
            record("s2", enabled=False, queue="q2", misfire="all"),  # twice: the last wins
        ],
        now=later,
    )
    assert n == 4
    got = {s.name: s for s in store.schedule_list()}
    assert sorted(got) == ["s0", "s1", "s2", "s3", "s4", "s9"]
    assert (got["s0"].args, got["s0"].paused, got["s0"].next_fire_at) == ("[1]", True, first)
    assert (got["s0"].created_at, got["s0"].updated_at) == (now, later)
    assert (got["s1"].trigger, got["s1"].next_fire_at) == (CRON, new_next)
    assert (got["s2"].enabled, got["s2"].queue, got["s2"].priority) == (False, "q2", None)
    assert (got["s2"].misfire, got["s2"].grace, got["s2"].overlap) == ("all", 60.0, True)
    assert (got["s9"].source, got["s9"].next_fire_at, got["s9"].created_at) == ("code", None, later)
    assert got["s3"].updated_at == now
    # The database's clock when now is None, read once for the batch.
    store.schedule_upsert_many([record("a"), record("b")], now=None)
    a, b = store.schedule_get("a"), store.schedule_get("b")
    assert a.created_at == a.updated_at == b.created_at


def test_upsert_many_is_one_transaction(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    with pytest.raises(Exception):  # noqa: B017 - each driver's own integrity error
        store.schedule_upsert_many([record("ok"), record("bad", misfire="never")], now=now)
    assert store.schedule_list() == []


def test_next_due(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    assert store.schedule_next_due() is None
    store.schedule_upsert_many(
        [
            record("never", next_fire_at=None),
            record("off", enabled=False, next_fire_at=now - timedelta(hours=2)),
            record("held", next_fire_at=now - timedelta(hours=1)),
            record("soon", next_fire_at=now + timedelta(minutes=5)),
            record("other", task="tests.other", next_fire_at=now + timedelta(minutes=1)),
        ],
        now=now,
    )
    store.schedule_set_paused("held", True, now=now)
    assert store.schedule_next_due() == now + timedelta(minutes=1)
    assert store.schedule_next_due(tasks=["tests.noop"]) == now + timedelta(minutes=5)
    assert store.schedule_next_due(tasks=[]) is None
    assert [s.name for s in store.schedule_due(now=now + timedelta(hours=1), limit=9)] == [
        "other",
        "soon",
    ]
    assert [
        s.name
        for s in store.schedule_due(now=now + timedelta(hours=1), limit=9, tasks=["tests.noop"])
    ] == ["soon"]
    store.schedule_set_paused("held", False, now=now)
    assert store.schedule_next_due() == now - timedelta(hours=1)


def test_set_enabled(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    store.schedule_upsert(record(next_fire_at=now), now=now)
    clock.advance(seconds=5)
    off = store.schedule_set_enabled("s1", False, now=clock.db_now())
    assert (off.enabled, off.updated_at, off.next_fire_at) == (False, clock.db_now(), now)
    assert store.schedule_due(now=clock.db_now(), limit=5) == []
    assert store.schedule_set_enabled("s1", True, now=clock.db_now()).enabled is True
    assert [s.name for s in store.schedule_due(now=clock.db_now(), limit=5)] == ["s1"]
    with pytest.raises(ScheduleNotFound):
        store.schedule_set_enabled("nope", True, now=clock.db_now())


def test_disable_code_schedules_no_process_declares(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    store.schedule_upsert_many(
        [
            record("c-kept", source="code"),
            record("c-gone-2", source="code"),
            record("c-gone-1", source="code"),
            record("c-off", source="code", enabled=False),
            record("dynamic"),
        ],
        now=now,
    )
    clock.advance(seconds=1)
    assert store.schedule_disable_code(["c-kept", "unknown"], now=clock.db_now()) == [
        "c-gone-1",
        "c-gone-2",
    ]
    got = {s.name: s for s in store.schedule_list()}
    assert {n for n, s in got.items() if s.enabled} == {"c-kept", "dynamic"}
    assert got["c-gone-1"].updated_at == clock.db_now() and got["c-off"].updated_at == now
    assert store.schedule_disable_code(["c-kept"], now=clock.db_now()) == []
    assert store.schedule_disable_code([], now=clock.db_now()) == ["c-kept"]


def test_list_limit(store: Store, clock: FakeClock) -> None:
    store.schedule_upsert_many([record(n) for n in "dbca"], now=clock.db_now())
    assert [s.name for s in store.schedule_list(limit=2)] == ["a", "b"]
    assert [s.name for s in store.schedule_list(limit=None)] == ["a", "b", "c", "d"]
    assert store.schedule_list(limit=0) == []


def test_fire_list_newest_first(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    t = [now + timedelta(minutes=10 * k) for k in range(3)]
    store.schedule_upsert(record(next_fire_at=t[0]), now=now)
    store.schedule_upsert(record("other", next_fire_at=t[0]), now=now)
    store.schedule_fire(
        "s1",
        expected_next=t[0],
        new_next=None,
        fires=[Fire(t[0], "missed"), Fire(t[2], "enqueued", job=job())],
        now=now,
    )
    store.schedule_fire(
        "other", expected_next=t[0], new_next=None, fires=[Fire(t[0], "missed")], now=now
    )
    store.schedule_trigger("s1", job(), now=t[1])
    fired = store.fire_list("s1")
    assert [(f.at, f.outcome, f.manual) for f in fired] == [
        (t[2], "enqueued", False),
        (t[1], "triggered", True),
        (t[0], "missed", False),
    ]
    assert {f.schedule for f in fired} == {"s1"}
    assert [f.at for f in store.fire_list("s1", limit=1)] == [t[2]]
    assert store.fire_list("nope") == []


# -- the SQL: same names in both dialects, plans that read the indexes ---------------------


def _query_names(package: str) -> set[str]:
    text = resources.files(package).joinpath("queries.sql").read_text(encoding="utf-8")
    return set(parse_queries(text))


def test_schedule_and_fire_queries_have_the_same_names_in_both_dialects() -> None:
    sqlite_names = _query_names("tock.store.sqlite")
    postgres_names = _query_names("tock.store.postgres")

    def ours(names: set[str]) -> set[str]:
        return {n for n in names if n.startswith(("schedule_", "fire_"))}

    assert ours(sqlite_names) == ours(postgres_names)
    assert "job_prune" in sqlite_names & postgres_names


def _plan(store: Store, name: str, params: Mapping[str, Any]) -> str:
    """The plan of one of the store's queries, as text (the raw driver: store-specific)."""
    if store.supports_listen_notify:  # PostgreSQL: seq scans off, so the plan shows an index fits
        query = store.Q[name]
        with store._conn() as conn, conn.transaction(force_rollback=True):  # type: ignore[attr-defined]
            conn.execute("SET LOCAL enable_seqscan = off")
            return "\n".join(r[0] for r in conn.execute("EXPLAIN " + query, params))
    from tock.store.sqlite.store import Q, to_us

    values = {k: to_us(v) if isinstance(v, datetime) else v for k, v in params.items()}
    conn: sqlite3.Connection = store._conn()  # type: ignore[attr-defined]
    return "\n".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + Q[name], values))


def test_due_and_next_due_read_the_partial_index(store: Store, clock: FakeClock) -> None:
    now = clock.db_now()
    store.schedule_upsert_many(
        [record(f"s{i}", next_fire_at=now + timedelta(seconds=i)) for i in range(200)], now=now
    )
    for name, params in (
        ("schedule_due", {"now": now, "limit": 10, "tasks": None}),
        ("schedule_next_due", {"tasks": None, "after": None}),
        ("schedule_next_due", {"tasks": None, "after": now}),
    ):
        plan = _plan(store, name, params)
        assert "tock_schedules_due" in plan, plan
        assert not re.search(r"Seq Scan on|SCAN tock_schedules\b(?! USING)", plan), plan


def test_fire_prune_reads_the_drops_index(store: Store, clock: FakeClock) -> None:
    plan = _plan(store, "fire_prune", {"now": clock.db_now(), "age_us": 10, "batch_size": 5})
    assert "tock_fires_drops" in plan, plan
