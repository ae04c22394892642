"""Schedules and fires in the store, through the protocol only (both stores)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tock import FakeClock
from tock.errors import ScheduleNotFound
from tock.jobs import NewJob
from tock.store import ScheduleRecord, Store

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
    assert store.schedule_delete("a") is True
    assert store.schedule_delete("a") is False
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
        "s1", expected_next=t1, new_next=t2, fires=[(t1, new, "enqueued")], now=now
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
    fires = [(t1, job(1), "enqueued")]
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
        "s1", expected_next=t1, new_next=t2, fires=[(t1, job(1), "enqueued")], now=now
    ) or [None]
    # A fresh CAS (next moved back by a trigger change) at the same fire time: the unique
    # key on (schedule, fire time) lets it create nothing.
    store.schedule_upsert(record(trigger=CRON, next_fire_at=t1), now=now)
    again = store.schedule_fire(
        "s1",
        expected_next=t1,
        new_next=t3,
        fires=[(t1, job(1), "enqueued"), (t2, job(2), "enqueued")],
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
        "s1", expected_next=t1, new_next=t2, fires=[(t1, job(), "enqueued")], now=now
    )
    store.schedule_delete("s1")
    store.schedule_upsert(record(next_fire_at=t1), now=now)
    assert (
        store.schedule_fire(
            "s1", expected_next=t1, new_next=t2, fires=[(t1, job(), "enqueued")], now=now
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
            (fire_times[0], None, "coalesced"),
            (fire_times[1], None, "coalesced"),
            (fire_times[2], None, "missed"),
            (fire_times[3], job(), "enqueued"),
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
        fires=[(fire_times[1], job(), "enqueued")],
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
            fires=[(nxt, None, "paused")],
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
            fires=[(t1, job(1), "enqueued"), (t2, None, "not-an-outcome")],
            now=now,
        )
    assert store.job_list() == []
    assert store.schedule_get("s1").next_fire_at == t1
    # Nothing of it was kept: the same fire works now, once.
    ids = store.schedule_fire(
        "s1", expected_next=t1, new_next=t2, fires=[(t1, job(1), "enqueued")], now=now
    )
    assert ids is not None and len(ids) == 1
    assert [j.id for j in store.job_list()] == ids


def test_fire_on_the_database_clock(store: Store, clock: FakeClock) -> None:
    """``now=None``: the database's clock stamps the rows (production)."""
    real = store.db_now(now=None)
    store.schedule_upsert(record(next_fire_at=real), now=None)
    assert [s.name for s in store.schedule_due(now=None, limit=5)] == ["s1"]
    ids = store.schedule_fire(
        "s1", expected_next=real, new_next=None, fires=[(real, job(), "triggered")], now=None
    )
    assert ids is not None and len(ids) == 1
    assert store.schedule_get("s1").next_fire_at is None
