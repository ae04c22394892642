"""The app's job operations, on every store: pages, filters, single and bulk changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import tock.app as app_module
from tock import (
    ConfigurationError,
    FakeClock,
    JobNotFound,
    JobStateError,
    JobStatus,
    Tock,
    TockError,
)
from tock.jobs import JobRecord, NewJob, Outcome, OutcomeKind, Start
from tock.store import Store

ERROR = json.dumps({"type": "builtins.ValueError", "message": "boom", "traceback": "tb"})


def new(task: str = "tests.noop", **fields: Any) -> NewJob:
    return NewJob(task=task, args="[]", kwargs="{}", **fields)


def finish(store: Store, clock: FakeClock, job: JobRecord, kind: OutcomeKind) -> JobRecord:
    assert job.claim_token is not None
    outcome = Outcome(job.id, job.claim_token, kind, result="1", error=ERROR)
    assert store.job_complete_batch([outcome], now=clock.db_now()) == 1
    return store.job_get(job.id)


@pytest.fixture
def jobs(app: Tock, store: Store, clock: FakeClock, make_job, make_worker) -> dict[str, int]:
    """One job in each state and view, by name."""
    make_worker("w1", queues=["default", "emails"])
    made: dict[str, int] = {}
    made["succeeded"] = finish(store, clock, make_job(status="running"), OutcomeKind.SUCCEEDED).id
    made["failed"] = finish(
        store, clock, make_job("emails.send", status="running", queue="emails"), OutcomeKind.FAILED
    ).id
    made["canceled"] = app.cancel_job(make_job().id).id
    started = make_job(status="running")
    start = Start(started.id, started.claim_token or 0)
    store.job_complete_batch([], now=clock.db_now(), started=[start])
    assert store.job_get(started.id).started_at is not None
    made["started"] = started.id
    made["claimed"] = make_job(status="running").id
    made["ready"] = make_job("emails.send", queue="emails", unique_key="welcome:7").id
    made["scheduled"] = make_job(run_after=3600.0).id
    return made


def ids(page: Any) -> list[int]:
    return [job.id for job in page]


def test_list_jobs_newest_first_across_both_tables(app: Tock, jobs: dict[str, int]) -> None:
    page = app.list_jobs()
    assert ids(page) == sorted(jobs.values(), reverse=True)
    assert page.next is None
    assert {j.id: j.status for j in page}[jobs["failed"]] is JobStatus.FAILED


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("failed", ["failed"]),
        ("succeeded", ["succeeded"]),
        ("pending", ["ready", "scheduled"]),
        ("running", ["started", "claimed"]),
        ("scheduled", ["scheduled"]),
        ("ready", ["ready"]),
        ("claimed", ["claimed"]),
        ("started", ["started"]),
        (["failed", "canceled"], ["failed", "canceled"]),
        (["pending", "ready"], ["ready", "scheduled"]),  # a view inside its state: once
        (JobStatus.CANCELED, ["canceled"]),
    ],
)
def test_list_jobs_by_state_and_view(
    app: Tock, jobs: dict[str, int], state: Any, expected: list[str]
) -> None:
    assert ids(app.list_jobs(state=state)) == sorted((jobs[n] for n in expected), reverse=True)


def test_list_jobs_by_queue_task_and_search(app: Tock, jobs: dict[str, int]) -> None:
    emails = sorted([jobs["failed"], jobs["ready"]], reverse=True)
    assert ids(app.list_jobs(queue="emails")) == emails
    assert ids(app.list_jobs(task="emails.send")) == emails
    assert ids(app.list_jobs(task="emails.send", state="failed")) == [jobs["failed"]]
    assert ids(app.list_jobs(queue="nowhere")) == []
    # search: an id or a unique key, exactly
    assert ids(app.list_jobs(search=str(jobs["scheduled"]))) == [jobs["scheduled"]]
    assert ids(app.list_jobs(search="welcome:7")) == [jobs["ready"]]
    assert ids(app.list_jobs(search="welcome:7", state="ready")) == [jobs["ready"]]
    assert ids(app.list_jobs(search="welcome:7", state="failed")) == []
    assert ids(app.list_jobs(search="welcome")) == []
    assert ids(app.list_jobs(search="emails.send")) == []
    assert ids(app.list_jobs(search="  ")) == ids(app.list_jobs())


def test_pages_by_keyset_cover_every_job_once(app: Tock, store: Store, clock: FakeClock) -> None:
    made = store.job_enqueue_many(
        [new(queue="q1" if i % 3 else "q2") for i in range(47)], now=clock.db_now()
    )
    for f, limit in (({}, 5), ({"queue": "q2"}, 4), ({"state": "pending"}, 47), ({}, 100)):
        seen: list[int] = []
        after = None
        while True:
            page = app.list_jobs(after=after, limit=limit, **f)
            assert len(page) <= limit
            seen += ids(page)
            if page.next is None:
                break
            assert page.next == ids(page)[-1]
            after = page.next
        expected = [i for i in made if "queue" not in f or (i - made[0]) % 3 == 0]
        assert seen == sorted(expected, reverse=True), f


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"state": "done"}, "unknown job state 'done'"),
        ({"state": ["failed", "nope"]}, "unknown job state 'nope'"),
        ({"queue": "bad/queue"}, "queue"),
        ({"task": ""}, "task"),
        ({"limit": 0}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"after": -3}, "after="),
        ({"after": "12"}, "after="),
        ({"search": 12}, "search="),
    ],
)
def test_list_jobs_refuses_bad_input(app: Tock, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        app.list_jobs(**kwargs)


def test_single_operations_and_their_refusals(app: Tock, jobs: dict[str, int]) -> None:
    again = app.retry_job(jobs["failed"])
    assert again.status is JobStatus.PENDING and again.record.attempts == 0
    assert app.cancel_job(jobs["ready"]).status is JobStatus.CANCELED
    ready = app.run_job_now(jobs["scheduled"])
    assert ready.record.run_at <= app.store.db_now(now=app.clock.db_now())
    assert app.run_job_now(jobs["scheduled"]).id == jobs["scheduled"]  # ready: left as it is
    app.delete_job(jobs["succeeded"])
    with pytest.raises(JobNotFound):
        app.get_job(jobs["succeeded"])

    refusals: list[tuple[Callable[[int], object], str, str]] = [
        (app.retry_job, "started", "running"),
        (app.retry_job, "scheduled", "pending"),
        (app.cancel_job, "claimed", "running"),
        (app.cancel_job, "canceled", "canceled"),
        (app.delete_job, "scheduled", "pending"),
        (app.run_job_now, "canceled", "canceled"),
    ]
    for operation, name, state in refusals:
        with pytest.raises(JobStateError) as caught:
            operation(jobs[name])
        assert caught.value.job_id == jobs[name]
        assert caught.value.state == state
        assert state in str(caught.value)
        assert isinstance(caught.value, TockError)
    for operation in (app.retry_job, app.cancel_job, app.delete_job, app.run_job_now):
        with pytest.raises(JobNotFound):
            operation(987654)
        with pytest.raises(ConfigurationError, match="job id"):
            operation(0)


def test_retry_refused_while_a_live_job_holds_the_key(
    app: Tock, store: Store, clock: FakeClock, make_job
) -> None:
    done = app.cancel_job(make_job(unique_key="k").id)
    holder = make_job(unique_key="k")
    with pytest.raises(JobStateError, match="unique key 'k'") as caught:
        app.retry_job(done.id)
    assert caught.value.state == "canceled"
    assert app.retry_jobs(state="canceled") == 0  # in bulk: left as it is
    app.cancel_job(holder.id)
    assert app.retry_jobs(state="canceled") == 1  # one of the two takes the key
    (live,) = app.list_jobs(state="pending")
    assert live.record.unique_key == "k"


@pytest.mark.parametrize("batch", [2, 500])
def test_bulk_operations_by_filter(
    app: Tock,
    store: Store,
    clock: FakeClock,
    make_worker,
    monkeypatch: pytest.MonkeyPatch,
    batch: int,
) -> None:
    monkeypatch.setattr(app_module, "BULK_BATCH", batch)
    make_worker("w1", queues=["default", "emails"])
    store.job_enqueue_many(
        [new("emails.send", queue="emails") for _ in range(5)]
        + [new("reports.make") for _ in range(4)],
        now=clock.db_now(),
    )
    store.job_enqueue_many([new("emails.send", queue="emails", run_after=60.0)], now=clock.db_now())
    # The five ready emails are canceled, not the one due later nor the reports.
    assert app.cancel_jobs(state="ready", queue="emails") == 5
    assert app.cancel_jobs(state="failed") == 0  # nothing cancelable matches
    assert len(app.list_jobs(state="canceled")) == 5
    # Reports run and fail.
    claimed = store.job_claim_batch(
        worker_id="w1", queues=["default"], limit=10, free=10, now=clock.db_now()
    )
    assert len(claimed) == 4
    for job in claimed:
        finish(store, clock, job, OutcomeKind.FAILED)
    assert app.retry_jobs(state="failed", task="emails.send") == 0
    assert app.retry_jobs(state="failed", task="reports.make") == 4
    assert len(app.list_jobs(state="pending", task="reports.make")) == 4
    assert app.retry_jobs(task="emails.send") == 5  # every retryable state: the canceled
    assert app.delete_jobs(state="pending") == 0  # only finished jobs are deleted
    assert app.cancel_jobs() == 10
    assert app.delete_jobs(task="reports.make") == 4
    assert app.delete_jobs() == 6
    assert ids(app.list_jobs()) == []


def test_list_fires_pages_newest_first(app: Tock, clock: FakeClock) -> None:
    @app.task(name="tests.tick")
    def tick() -> None: ...

    app.schedule("every-minute", task=tick, every=timedelta(minutes=1))
    made = [app.trigger_schedule("every-minute") for _ in range(5)]
    seen: list[int | None] = []
    after = None
    while True:
        page = app.list_fires("every-minute", after=after, limit=2)
        seen += [f.job_id for f in page]
        if page.next is None:
            break
        after = page.next
    assert seen == sorted((j.id for j in made), reverse=True)
    assert list(app.list_fires("no-such-schedule")) == []
    with pytest.raises(ConfigurationError, match="after="):
        app.list_fires("every-minute", after="yesterday")
    with pytest.raises(ConfigurationError, match="schedule"):
        app.list_fires("bad name")
