"""Enqueueing through the app: defaults, per-call options, ids, handles and results."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conftest import ensure_worker

from tock import (
    FakeClock,
    Job,
    JobCanceled,
    JobFailed,
    JobLost,
    JobNotFound,
    JobStatus,
    Tock,
)
from tock.duties import Rescuer
from tock.jobs import Outcome, OutcomeKind
from tock.store import Store
from tock.store._lists import cancel_one
from tock.tasks import TaskOptions

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def add(x: int, y: int) -> int:
    return x + y


def send(to: str) -> None:
    return None


def claim_one(
    store: Store, clock: FakeClock, job_id: int, *, worker: str = "w1", queue: str = "default"
):
    ensure_worker(store, worker, clock.db_now())
    claimed = store.job_claim_batch(
        worker_id=worker, queues=[queue], limit=1, free=1, now=clock.db_now()
    )
    assert [j.id for j in claimed] == [job_id]
    return claimed[0]


def finish(store: Store, clock: FakeClock, job_id: int, kind: OutcomeKind, **kw) -> None:
    record = claim_one(store, clock, job_id, queue=store.job_get(job_id).queue)
    assert record.claim_token is not None
    assert (
        store.job_complete_batch(
            [Outcome(job_id, record.claim_token, kind, **kw)], now=clock.db_now()
        )
        == 1
    )


# -- defaults and the options snapshot ------------------------------------------------


def test_enqueue_defaults(app: Tock, store: Store) -> None:
    t = app.task(add)
    assert t.name == f"{__name__}.add"
    job = t.enqueue(1, 2)
    record = store.job_get(job.id)
    assert record.task == t.name
    assert record.status is JobStatus.PENDING
    assert record.queue == "default"
    assert record.priority == 0
    assert record.retries == 0
    assert record.retry_backoff == 1.0
    assert record.retry_on == ("builtins.Exception",)
    assert record.timeout is None
    assert record.at_most_once is False
    assert record.max_rescues == 5
    assert record.unique_key is None
    assert record.attempts == 0
    assert record.rescues == 0
    assert record.args == [1, 2]
    assert record.kwargs == {}
    assert record.created_at == T0
    assert record.run_at == T0
    assert record.worker_id is None
    assert record.result is None
    assert record.error is None


def test_enqueue_keeps_options_snapshot_on_the_row(app: Tock, store: Store) -> None:
    t = app.task(
        name="emails.send",
        queue="emails",
        priority=10,
        retries=5,
        retry_backoff=timedelta(seconds=2),
        retry_on=(OSError,),
        timeout=30,
        at_most_once=True,
        max_rescues=3,
    )(send)
    record = store.job_get(t.enqueue(to="a@example.com").id)
    assert record.task == "emails.send"
    assert record.queue == "emails"
    assert record.priority == 10
    assert record.retries == 5
    assert record.retry_backoff == 2.0
    assert record.retry_on == ("builtins.OSError",)
    assert record.timeout == 30.0
    assert record.at_most_once is True
    assert record.max_rescues == 3
    assert record.args == []
    assert record.kwargs == {"to": "a@example.com"}


def test_retry_on_single_class_and_timeout_timedelta(app: Tock, store: Store) -> None:
    t = app.task(name="t.single", retry_on=ValueError, timeout=timedelta(milliseconds=1500))(add)
    record = store.job_get(t.enqueue(1, 2).id)
    assert record.retry_on == ("builtins.ValueError",)
    assert record.timeout == 1.5


@pytest.mark.parametrize(
    ("run_after", "expected"),
    [
        (timedelta(minutes=5), T0 + timedelta(minutes=5)),
        (90, T0 + timedelta(seconds=90)),
        (0.25, T0 + timedelta(milliseconds=250)),
        (0, T0),
        (
            datetime(2030, 1, 2, 3, 0, tzinfo=timezone(timedelta(hours=2))),
            datetime(2030, 1, 2, 1, 0, tzinfo=UTC),
        ),
        (datetime(2029, 6, 1, tzinfo=UTC), datetime(2029, 6, 1, tzinfo=UTC)),
    ],
)
def test_using_run_after(app: Tock, store: Store, run_after, expected: datetime) -> None:
    t = app.task(add)
    record = store.job_get(t.using(run_after=run_after).enqueue(1, 2).id)
    assert record.run_at == expected
    assert record.created_at == T0


def test_run_at_follows_the_fake_now(app: Tock, store: Store, clock: FakeClock) -> None:
    t = app.task(add)
    clock.advance(seconds=3600)
    record = store.job_get(t.using(run_after=10).enqueue(1, 2).id)
    assert record.created_at == T0 + timedelta(hours=1)
    assert record.run_at == T0 + timedelta(hours=1, seconds=10)


def test_using_queue_priority_and_key_do_not_change_the_task(app: Tock, store: Store) -> None:
    t = app.task(add)
    record = store.job_get(
        t.using(queue="slow", priority=-7, unique_key="add:1:2").enqueue(1, 2).id
    )
    assert (record.queue, record.priority, record.unique_key) == ("slow", -7, "add:1:2")
    plain = store.job_get(t.enqueue(3, 4).id)
    assert (plain.queue, plain.priority, plain.unique_key) == ("default", 0, None)
    # using() with nothing to change is a plain enqueue.
    again = store.job_get(t.using().enqueue(5, 6).id)
    assert (again.queue, again.priority, again.args) == ("default", 0, [5, 6])


def test_a_plain_enqueue_follows_the_tasks_options(app: Tock, store: Store) -> None:
    # A plain enqueue reuses what it built from the options, until they are replaced.
    t = app.task(add)
    assert store.job_get(t.enqueue(1, 2).id).queue == "default"
    t.options = TaskOptions.build(queue="later", priority=3)
    record = store.job_get(t.enqueue(3, 4).id)
    assert (record.queue, record.priority, record.args) == ("later", 3, [3, 4])


# -- ids ----------------------------------------------------------------------------


def test_ids_increase_and_are_never_reused(app: Tock, store: Store, clock: FakeClock) -> None:
    t = app.task(add)
    first = t.enqueue(1, 2).id
    finish(store, clock, first, OutcomeKind.SUCCEEDED, result="3")
    second = t.enqueue(1, 2).id
    assert second > first
    cancel_one(store, second, now=clock.db_now())
    third = t.enqueue(1, 2).id
    assert third > second
    assert isinstance(third, int)


def test_enqueue_many_tuples_lists_and_dicts_in_input_order(app: Tock, store: Store) -> None:
    t = app.task(add)
    jobs = t.enqueue_many([(1, 2), [3, 4], {"x": 5, "y": 6}, (7, 8)])
    assert all(isinstance(j, Job) for j in jobs)
    ids = [j.id for j in jobs]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4
    records = [store.job_get(i) for i in ids]
    assert [(r.args, r.kwargs) for r in records] == [
        ([1, 2], {}),
        ([3, 4], {}),
        ([], {"x": 5, "y": 6}),
        ([7, 8], {}),
    ]


def test_enqueue_many_with_using_and_empty(app: Tock, store: Store) -> None:
    t = app.task(add)
    assert t.enqueue_many([]) == []
    jobs = t.using(queue="bulk", priority=3).enqueue_many([(1, 2), (3, 4)])
    assert {(store.job_get(j.id).queue, store.job_get(j.id).priority) for j in jobs} == {
        ("bulk", 3)
    }


def test_enqueue_many_refuses_an_item_that_is_neither_tuple_nor_dict(
    app: Tock, store: Store
) -> None:
    t = app.task(add)
    with pytest.raises(TypeError, match="item 1"):
        t.enqueue_many([(1, 2), 5, (3, 4)])
    with pytest.raises(TypeError, match="item 0"):
        t.enqueue_many(["ab"])
    assert store.job_list() == []


def test_enqueue_many_checks_every_item_before_storing_any(app: Tock, store: Store) -> None:
    t = app.task(add)
    with pytest.raises(TypeError, match="'y'"):
        t.enqueue_many([(1, 2), (3, {4})])
    with pytest.raises(TypeError):
        t.enqueue_many([(1, 2), (3, 4, 5)])
    assert store.job_list() == []


# -- handles and results ----------------------------------------------------------------


def test_status_is_as_last_read_and_refresh_reads_again(
    app: Tock, store: Store, clock: FakeClock
) -> None:
    t = app.task(add)
    job = t.enqueue(1, 2)
    assert job.status is JobStatus.PENDING
    assert job.status == "pending"
    claim_one(store, clock, job.id)
    assert job.status is JobStatus.PENDING
    assert job.refresh() is job
    assert job.status is JobStatus.RUNNING


def test_result_of_succeeded_job(app: Tock, store: Store, clock: FakeClock) -> None:
    t = app.task(add)
    job = t.enqueue(1, 2)
    finish(store, clock, job.id, OutcomeKind.SUCCEEDED, result=json.dumps({"sum": [3]}))
    assert job.result(timeout=5) == {"sum": [3]}
    record = store.job_get(job.id)
    assert record.status is JobStatus.SUCCEEDED
    assert record.finished_at == T0


def test_result_of_succeeded_job_returning_none(app: Tock, store: Store, clock: FakeClock) -> None:
    job = app.task(add).enqueue(1, 2)
    finish(store, clock, job.id, OutcomeKind.SUCCEEDED, result="null")
    assert job.result(timeout=5) is None


def test_result_raises_job_failed_with_type_message_traceback(
    app: Tock, store: Store, clock: FakeClock
) -> None:
    job = app.task(add).enqueue(1, 2)
    error = {
        "type": "builtins.ValueError",
        "message": "boom",
        "traceback": "Traceback (most recent call last): ...",
    }
    finish(store, clock, job.id, OutcomeKind.FAILED, error=json.dumps(error))
    with pytest.raises(JobFailed) as info:
        job.result(timeout=5)
    assert info.value.job_id == job.id
    assert info.value.type == "builtins.ValueError"
    assert info.value.message == "boom"
    assert info.value.traceback.startswith("Traceback")
    assert "boom" in str(info.value)


def test_result_raises_job_canceled(app: Tock, store: Store, clock: FakeClock) -> None:
    job = app.task(add).enqueue(1, 2)
    cancel_one(store, job.id, now=clock.db_now())
    with pytest.raises(JobCanceled):
        job.result(timeout=5)


def test_result_raises_job_lost(app: Tock, store: Store, clock: FakeClock, make_worker) -> None:
    job = app.task(name="t.amo", at_most_once=True)(add).enqueue(1, 2)
    make_worker("w1")
    claim_one(store, clock, job.id)
    clock.advance(seconds=11)
    Rescuer(store, clock).run_once()
    with pytest.raises(JobLost):
        job.result(timeout=5)


def test_result_times_out_and_leaves_the_job(app: Tock, store: Store) -> None:
    job = app.task(add).enqueue(1, 2)
    with pytest.raises(TimeoutError):
        job.result(timeout=0.05)
    assert store.job_get(job.id).status is JobStatus.PENDING


def test_aenqueue_and_aresult(app: Tock, store: Store, clock: FakeClock) -> None:
    t = app.task(add)

    async def enqueue() -> tuple[Job, Job]:
        return await t.aenqueue(1, 2), await t.using(queue="aq").aenqueue(x=3, y=4)

    job, other = asyncio.run(enqueue())
    assert store.job_get(job.id).args == [1, 2]
    assert store.job_get(other.id).queue == "aq"
    finish(store, clock, job.id, OutcomeKind.SUCCEEDED, result="3")

    async def wait() -> object:
        refreshed = await job.arefresh()
        assert refreshed.status is JobStatus.SUCCEEDED
        return await job.aresult(timeout=5)

    assert asyncio.run(wait()) == 3


def test_app_job_finds_live_and_finished_jobs(app: Tock, store: Store, clock: FakeClock) -> None:
    t = app.task(add)
    done = t.enqueue(3, 4)
    live = t.enqueue(1, 2)
    finish(store, clock, done.id, OutcomeKind.SUCCEEDED, result="7")
    assert app.job(live.id).status is JobStatus.PENDING
    handle = app.job(done.id)
    assert handle == done
    assert handle.status is JobStatus.SUCCEEDED
    assert handle.result() == 7
    with pytest.raises(JobNotFound) as info:
        app.job(done.id + 1000)
    assert info.value.job_id == done.id + 1000
    with pytest.raises(JobNotFound):
        store.job_get(done.id + 1000)


def test_job_list_filters(app: Tock, store: Store, clock: FakeClock) -> None:
    t = app.task(add)
    a = t.enqueue(1, 2)
    b = t.using(queue="other").enqueue(1, 2)
    c = t.enqueue(1, 2)
    finish(store, clock, a.id, OutcomeKind.SUCCEEDED, result="3")
    assert [r.id for r in store.job_list()] == [c.id, b.id, a.id]
    assert [r.id for r in store.job_list(statuses=[JobStatus.SUCCEEDED])] == [a.id]
    assert [r.id for r in store.job_list(queue="other")] == [b.id]
    assert [r.id for r in store.job_list(task="nope")] == []
    assert [r.id for r in store.job_list(limit=1)] == [c.id]
    held = claim_one(store, clock, c.id, worker="w2")
    assert [r.id for r in store.job_list(worker_id="w2")] == [held.id]
    assert [r.id for r in store.job_list(worker_id="w1")] == [a.id]  # finished by w1
    running_w1 = store.job_list(statuses=[JobStatus.RUNNING], worker_id="w1")
    assert running_w1 == []


def test_health(app: Tock, store: Store, clock: FakeClock, make_worker) -> None:
    t = app.task(add)
    t.enqueue(1, 2)
    t.using(run_after=60).enqueue(1, 2)
    done = t.using(queue="emails").enqueue(1, 2)
    finish(store, clock, done.id, OutcomeKind.SUCCEEDED, result="3")
    make_worker("w-health", queues=("default", "emails"), concurrency=4)
    clock.advance(seconds=3)
    health = app.health()
    assert set(health) >= {"store", "schema", "now", "workers", "queues"}
    assert health["store"] == store.url
    assert health["schema"]["version"] == health["schema"]["latest"] >= 1
    assert health["now"] == (T0 + timedelta(seconds=3)).isoformat()
    (worker,) = [w for w in health["workers"] if w["id"] == "w-health"]
    assert worker["queues"] == ["default", "emails"]
    assert worker["concurrency"] == 4
    assert worker["running"] == 0
    assert worker["heartbeat_age"] == 3.0
    default = health["queues"]["default"]
    assert default["pending"] == 2
    assert default["ready"] == 1
    assert default["oldest_ready_age"] == 3.0
    assert health["queues"]["emails"]["succeeded"] == 1
    assert health["queues"]["emails"]["ready"] == 0
    assert health["queues"]["emails"]["oldest_ready_age"] is None
    json.dumps(health)  # plain data, ready for `tock status --json`


# -- unique keys --------------------------------------------------------------------------


def test_live_unique_key_returns_the_existing_job(app: Tock, store: Store) -> None:
    t = app.task(add)
    first = t.using(unique_key="k").enqueue(1, 2)
    again = t.using(unique_key="k", queue="elsewhere").enqueue(5, 6)
    assert again.id == first.id
    assert len(store.job_list()) == 1
    assert store.job_get(first.id).args == [1, 2]
    other = t.using(unique_key="k2").enqueue(1, 2)
    assert other.id != first.id


def test_unique_key_held_by_a_running_job(app: Tock, store: Store, clock: FakeClock) -> None:
    t = app.task(add)
    first = t.using(unique_key="k").enqueue(1, 2)
    claim_one(store, clock, first.id)
    assert t.using(unique_key="k").enqueue(1, 2).id == first.id
    assert len(store.job_list()) == 1


def test_unique_key_duplicates_in_one_batch_map_to_one_job(
    app: Tock, store: Store, clock: FakeClock
) -> None:
    t = app.task(add)
    jobs = t.using(unique_key="same").enqueue_many([(1, 2), (3, 4), (5, 6)])
    assert len({j.id for j in jobs}) == 1
    assert store.job_get(jobs[0].id).args == [1, 2]
    assert len(store.job_list()) == 1


def test_unique_keys_in_a_batch_through_the_store(store: Store, clock: FakeClock, make_job) -> None:
    from tock.jobs import NewJob

    held = make_job(unique_key="held")

    def new(key: str | None, n: int) -> NewJob:
        return NewJob(task="t", args=json.dumps([n]), kwargs="{}", unique_key=key)

    ids = store.job_enqueue_many(
        [
            new("a", 0),
            new(None, 1),
            new("a", 2),
            new("held", 3),
            new("b", 4),
            new(None, 5),
            new("b", 6),
        ],
        now=clock.db_now(),
    )
    assert len(ids) == 7
    a, plain1, a2, h, b, plain2, b2 = ids
    assert a == a2 and b == b2 and h == held.id
    assert a < plain1 < b < plain2
    assert a > held.id
    assert [store.job_get(i).args for i in (a, plain1, b, plain2)] == [[0], [1], [4], [5]]
    assert len(store.job_list()) == 5


def test_unique_key_is_free_again_after_the_holder_finishes(
    app: Tock, store: Store, clock: FakeClock
) -> None:
    t = app.task(add)
    first = t.using(unique_key="k").enqueue(1, 2)
    finish(store, clock, first.id, OutcomeKind.SUCCEEDED, result="3")
    second = t.using(unique_key="k").enqueue(1, 2)
    assert second.id > first.id
    assert store.job_get(second.id).status is JobStatus.PENDING
    cancel_one(store, second.id, now=clock.db_now())
    third = t.using(unique_key="k").enqueue(1, 2)
    assert third.id > second.id


def test_bulk_enqueue_of_mixed_options_and_awkward_strings(
    app: Tock, store: Store, clock: FakeClock
) -> None:
    # Big batches take each store's bulk path (runs of jobs sharing options); strings
    # with backslashes, tabs, newlines, quotes and non-ASCII must come back as given.
    from tock.jobs import NewJob

    awkward = ["a\\b", "tab\there", "line\nbreak", 'quote"d', "é ✓ 日本", "\\N", "back\\\\slash"]
    jobs = []
    for i in range(1200):
        text = awkward[i % len(awkward)] + str(i)
        jobs.append(
            NewJob(
                task="t.bulk",
                args=json.dumps([text, i], ensure_ascii=False),
                kwargs=json.dumps({"k": text}, ensure_ascii=False),
                queue="a" if (i // 300) % 2 else "b",
                priority=(i // 400) - 1,
            )
        )
    ids = store.job_enqueue_many(jobs, now=clock.db_now())
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == 1200
    for i in (0, 1, 2, 3, 4, 5, 6, 299, 300, 301, 399, 400, 799, 800, 1199):
        record = store.job_get(ids[i])
        text = awkward[i % len(awkward)] + str(i)
        assert record.args == [text, i]
        assert record.kwargs == {"k": text}
        assert record.queue == ("a" if (i // 300) % 2 else "b")
        assert record.priority == (i // 400) - 1


def test_bulk_enqueue_of_one_run_keeps_its_options_and_order(
    app: Tock, store: Store, clock: FakeClock
) -> None:
    # A big batch sharing every option (PostgreSQL takes them as plain parameters).
    from tock.jobs import NewJob

    awkward = ["a\\b", "tab\there", "\\N", "é ✓"]
    jobs = [
        NewJob(
            task="t.one",
            args=json.dumps([awkward[i % len(awkward)], i], ensure_ascii=False),
            kwargs="{}",
            queue="q1",
            priority=3,
            retries=2,
            timeout=1.5,
            max_rescues=1,
            run_after=60.0,
        )
        for i in range(800)
    ]
    ids = store.job_enqueue_many(jobs, now=clock.db_now())
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == 800
    for i in (0, 1, 2, 3, 799):
        record = store.job_get(ids[i])
        assert record.args == [awkward[i % len(awkward)], i]
        assert record.kwargs == {}
        assert (record.task, record.queue, record.priority) == ("t.one", "q1", 3)
        assert (record.retries, record.timeout, record.max_rescues) == (2, 1.5, 1)
        assert record.run_at == clock.db_now() + timedelta(seconds=60)


@pytest.mark.parametrize("through_claim", [False, True], ids=["complete", "claim"])
def test_results_and_errors_come_back_as_written(
    app: Tock, store: Store, clock: FakeClock, through_claim: bool
) -> None:
    # Both ways a batch is finished: on its own, and with the next claim.
    from tock.worker.completer import error_json

    t = app.task(add)
    awkward = {"s": 'tab\t "quoted" back\\slash\nline é ✓', "n": [1.5, -0.0, 10**20, None]}
    ok, bad = t.enqueue(1, 2), t.enqueue(3, 4)
    ensure_worker(store, "w1", clock.db_now())
    claimed = store.job_claim_batch(
        worker_id="w1", queues=["default"], limit=2, free=2, now=clock.db_now()
    )
    token = {j.id: j.claim_token or 0 for j in claimed}
    outcomes = [
        Outcome(ok.id, token[ok.id], OutcomeKind.SUCCEEDED, result=json.dumps(awkward)),
        Outcome(
            bad.id,
            token[bad.id],
            OutcomeKind.FAILED,
            error=error_json("x.Err", 'it said "no"\tthen\\left', "Traceback:\n  é"),
        ),
    ]
    if through_claim:
        store.job_claim_batch(
            worker_id="w1",
            queues=["default"],
            limit=5,
            free=5,
            now=clock.db_now(),
            completed=outcomes,
        )
    else:
        assert store.job_complete_batch(outcomes, now=clock.db_now()) == 2
    assert store.job_get(ok.id).result == awkward
    assert store.job_get(bad.id).error == {
        "type": "x.Err",
        "message": 'it said "no"\tthen\\left',
        "traceback": "Traceback:\n  é",
    }


def test_bulk_enqueue_of_thousands_keeps_order_and_unique_keys(
    store: Store, clock: FakeClock
) -> None:
    # A unique key repeated far apart in one big batch is one job, at every position
    # that names it; the other ids come in input order.
    from tock.jobs import NewJob

    def new(i: int) -> NewJob:
        key = "shared" if i in (10, 2_500, 4_999) else None
        return NewJob(task="t.bulk", args=f"[{i}]", kwargs="{}", unique_key=key)

    ids = store.job_enqueue_many([new(i) for i in range(5_000)], now=clock.db_now())
    assert len(ids) == 5_000
    assert ids[10] == ids[2_500] == ids[4_999]
    others = [x for i, x in enumerate(ids) if i not in (2_500, 4_999)]
    assert others == sorted(others) and len(set(others)) == len(others)
    for i in (0, 9, 11, 1_999, 2_000, 2_001, 4_998):
        assert store.job_get(ids[i]).args == [i]


def test_a_bad_item_deep_in_a_big_batch_stores_nothing(app: Tock, store: Store) -> None:
    t = app.task(add)
    items: list[object] = [(i, i) for i in range(6_000)]
    items[4_500] = {1, 2}  # neither a tuple nor a dict
    with pytest.raises(TypeError, match="item 4500"):
        t.enqueue_many(items)  # type: ignore[arg-type]
    items[4_500] = (object(), 1)  # not JSON
    with pytest.raises(TypeError, match="argument 'x'"):
        t.enqueue_many(items)  # type: ignore[arg-type]
    assert store.job_list(limit=10) == []


def test_a_job_moving_to_the_finished_table_is_never_missing(
    app: Tock, store: Store, other_app: Tock, clock: FakeClock
) -> None:
    # job_get reads both tables in one snapshot: while another connection finishes jobs
    # one by one, every read finds each job in one table or the other.
    import threading

    ids = [j.id for j in app.task(add).enqueue_many([(i, i) for i in range(200)])]
    ensure_worker(store, "w1", clock.db_now())
    done = threading.Event()
    missing: list[int] = []

    def read() -> None:
        while not done.is_set():
            for job_id in ids:
                try:
                    other_app.store.job_get(job_id)
                except JobNotFound:
                    missing.append(job_id)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in ids:
            (job,) = store.job_claim_batch(
                worker_id="w1", queues=["default"], limit=1, free=1, now=clock.db_now()
            )
            store.job_complete_batch(
                [Outcome(job.id, job.claim_token or 0, OutcomeKind.SUCCEEDED, result="2")],
                now=clock.db_now(),
            )
    finally:
        done.set()
        reader.join()
    assert missing == []
