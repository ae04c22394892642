"""Counting jobs by group with a bound, and searching them with a bound, on every store
(docs/design.md: counting jobs, searching jobs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tock import ConfigurationError, FakeClock, Tock
from tock.app import COUNT_CAP, total_counts
from tock.jobs import JobCount, JobRecord, NewJob, Outcome, OutcomeKind, Start
from tock.store import Store
from tock.store._lists import JobFilter

ERROR = json.dumps({"type": "builtins.ValueError", "message": "boom", "traceback": "tb"})


def new(task: str = "tests.noop", *, args: Any = (), queue: str = "default", **more: Any) -> NewJob:
    return NewJob(task=task, args=json.dumps(list(args)), kwargs="{}", queue=queue, **more)


def finish_all(store: Store, clock: FakeClock, queue: str, kind: OutcomeKind) -> list[int]:
    """Claim every due job of ``queue`` and end each with ``kind``."""
    claimed = store.job_claim_batch(
        worker_id="w1", queues=[queue], limit=1000, free=1000, now=clock.db_now()
    )
    outcomes = [Outcome(j.id, j.claim_token or 0, kind, result="1", error=ERROR) for j in claimed]
    store.job_complete_batch(outcomes, now=clock.db_now())
    return [j.id for j in claimed]


@pytest.fixture
def mixed(app: Tock, store: Store, clock: FakeClock, make_worker) -> dict[str, list[int]]:
    """Jobs in many groups over three queues: 5 succeeded and 2 failed in "default"
    (three of them of task "b"); canceled, ready and scheduled ones in "emails"; a
    started and a claimed one in "media"."""
    make_worker("w1", queues=["default", "emails"])
    made: dict[str, list[int]] = {}
    store.job_enqueue_many([new() for _ in range(4)] + [new("b")], now=clock.db_now())
    made["succeeded"] = finish_all(store, clock, "default", OutcomeKind.SUCCEEDED)
    store.job_enqueue_many([new("b"), new("b")], now=clock.db_now())
    made["failed"] = finish_all(store, clock, "default", OutcomeKind.FAILED)
    (canceled,) = store.job_enqueue_many([new(queue="emails")], now=clock.db_now())
    app.cancel_job(canceled)
    made["canceled"] = [canceled]
    made["ready"] = store.job_enqueue_many([new(queue="emails")] * 2, now=clock.db_now())
    made["scheduled"] = store.job_enqueue_many(
        [new(queue="emails", run_after=3600.0)], now=clock.db_now()
    )
    (started, claimed) = store.job_enqueue_many([new(queue="media")] * 2, now=clock.db_now())
    held = store.job_claim_batch(
        worker_id="w1", queues=["media"], limit=2, free=2, now=clock.db_now()
    )
    store.job_complete_batch(
        [], now=clock.db_now(), started=[Start(started, _token(held, started))]
    )
    made["started"], made["claimed"] = [started], [claimed]
    return made


def _token(held: list[JobRecord], job_id: int) -> int:
    return next(j.claim_token or 0 for j in held if j.id == job_id)


def test_store_counts_each_group_per_queue(
    store: Store, clock: FakeClock, mixed: dict[str, list[int]]
) -> None:
    counts = store.job_count(task=None, scan=100, now=clock.db_now())
    assert counts.cut == frozenset()
    assert counts.finished == {
        "default": {"succeeded": 5, "failed": 2},
        "emails": {"canceled": 1},
    }
    assert counts.live["emails"] == {
        "blocked": 0, "scheduled": 1, "ready": 2, "claimed": 0, "started": 0
    }  # fmt: skip
    assert counts.live["media"] == {
        "blocked": 0, "scheduled": 0, "ready": 0, "claimed": 1, "started": 1
    }  # fmt: skip
    assert "default" not in counts.live
    assert store.job_count(task=None, scan=100, now=clock.db_now(), live=False).live == {}


def test_store_counts_of_one_task(
    store: Store, clock: FakeClock, mixed: dict[str, list[int]]
) -> None:
    counts = store.job_count(task="b", scan=100, now=clock.db_now())
    assert counts.live == {}
    b = counts.finished["default"]
    assert sum(b.values()) == 3 and set(b) <= {"succeeded", "failed"}


def test_store_counts_stop_at_the_scan(
    store: Store, clock: FakeClock, mixed: dict[str, list[int]]
) -> None:
    """A state with more finished jobs than ``scan`` is counted over its newest ``scan``
    and named in ``cut``; the others stay exact."""
    counts = store.job_count(task=None, scan=3, now=clock.db_now())
    assert counts.cut == {"succeeded"}
    assert counts.finished["default"] == {"succeeded": 3, "failed": 2}
    counts = store.job_count(task=None, scan=2, now=clock.db_now())
    assert counts.cut == {"succeeded", "failed"}


def test_app_count_jobs_caps_and_filters(app: Tock, mixed: dict[str, list[int]]) -> None:
    counts = app.count_jobs()
    assert counts["succeeded"] == JobCount(5) and counts["failed"] == JobCount(2)
    assert counts["ready"] == JobCount(2) and counts["started"] == JobCount(1)
    assert app.count_jobs(queue="emails")["canceled"] == JobCount(1)
    assert app.count_jobs(queue="emails")["succeeded"] == JobCount(0)
    assert app.count_jobs(queue="nowhere")["ready"] == JobCount(0)
    capped = app.count_jobs(cap=4)
    assert capped["succeeded"] == JobCount(4, more=True)
    assert str(capped["succeeded"]) == "4+" and str(capped["failed"]) == "2"
    assert str(JobCount(10_000, more=True)) == "10,000+"
    # A queue nothing was seen of, when a state is cut: at least zero.
    assert app.count_jobs(queue="nowhere", cap=4)["succeeded"] == JobCount(0, more=True)
    by_queue = app.count_jobs_by_queue()
    assert sorted(by_queue) == ["default", "emails", "media"]
    assert by_queue["media"]["claimed"] == JobCount(1)
    # The totals of one count by queue are count_jobs()'s, capped the same way.
    assert total_counts(by_queue, COUNT_CAP) == counts
    assert total_counts(app.count_jobs_by_queue(cap=4), 4) == capped
    assert total_counts({}, 4)["ready"] == JobCount(0)


@pytest.mark.parametrize(
    ("kwargs", "told"),
    [
        ({"cap": 0}, "cap must be a whole number >= 1, not 0"),
        ({"cap": True}, "cap must be a whole number"),
        ({"queue": "no spaces"}, "queue"),
        ({"task": "no spaces"}, "task"),
    ],
)
def test_count_jobs_refuses_bad_input(app: Tock, kwargs: dict[str, Any], told: str) -> None:
    with pytest.raises(ConfigurationError, match=told):
        app.count_jobs(**kwargs)


def test_health_with_a_finished_cap_counts_the_newest_only(
    app: Tock, mixed: dict[str, list[int]]
) -> None:
    exact = app.health()["queues"]
    assert exact["default"]["succeeded"] == 5 and "more" not in exact["default"]
    capped = app.health(finished_cap=3)["queues"]
    assert capped["default"]["succeeded"] == 3 and capped["default"]["more"] == ["succeeded"]
    assert capped["default"]["failed"] == 2
    assert capped["emails"]["ready"] == 2 and capped["emails"]["canceled"] == 1
    assert capped["media"]["claimed"] == 1 and capped["media"]["running"] == 1


@pytest.fixture
def searchable(store: Store, clock: FakeClock) -> list[int]:
    """Twenty jobs, ids in order; every fifth has "Needle" in its arguments, job 7's
    task and job 12's unique key hold "needle" too; one keyword argument has markup."""
    jobs = []
    for i in range(20):
        jobs.append(
            NewJob(
                task="reports.needle_maker" if i == 7 else "reports.build",
                args=json.dumps(["Needle" if i % 5 == 0 else "hay", i]),
                kwargs=json.dumps({"where": "<b>100%_done</b>"} if i == 3 else {}),
                queue="reports" if i % 2 else "default",
                unique_key="key:needle" if i == 12 else None,
            )
        )
    return store.job_enqueue_many(jobs, now=clock.db_now())


def test_store_search_finds_text_in_task_key_and_arguments(
    store: Store, clock: FakeClock, searchable: list[int]
) -> None:
    found, more = store.job_search(JobFilter(), "NEEDLE", limit=50, scan=1000, now=clock.db_now())
    expected = [searchable[i] for i in (15, 12, 10, 7, 5, 0)]
    assert [r.id for r in found] == expected and more is None
    # LIKE's wildcards are plain text; the id matches as a whole number.
    found, _ = store.job_search(JobFilter(), "100%_", limit=50, scan=1000, now=clock.db_now())
    assert [r.id for r in found] == [searchable[3]]
    assert store.job_search(JobFilter(), "1%0", limit=50, scan=1000, now=clock.db_now())[0] == []
    found, _ = store.job_search(
        JobFilter(), str(searchable[4]), limit=50, scan=1000, now=clock.db_now()
    )
    assert searchable[4] in [r.id for r in found]


def test_store_search_narrows_by_filter(
    store: Store, clock: FakeClock, searchable: list[int]
) -> None:
    f = JobFilter.of(queue="reports")
    found, _ = store.job_search(f, "needle", limit=50, scan=1000, now=clock.db_now())
    assert [r.id for r in found] == [searchable[15], searchable[7], searchable[5]]
    f = JobFilter.of("scheduled")
    assert store.job_search(f, "needle", limit=50, scan=1000, now=clock.db_now()) == ([], None)


def test_store_search_looks_at_a_bounded_window_and_goes_on(
    store: Store, clock: FakeClock, searchable: list[int]
) -> None:
    """Each page looks at the ``scan`` newest jobs below its cursor: following the
    cursors finds every match once, in order, however few each page holds."""
    seen: list[int] = []
    before, pages = None, 0
    while True:
        kwargs = {} if before is None else {"before": before}
        found, before = store.job_search(
            JobFilter(), "needle", limit=2, scan=4, now=clock.db_now(), **kwargs
        )
        pages += 1
        assert len(found) <= 2
        seen += [r.id for r in found]
        if before is None:
            break
    assert seen == [searchable[i] for i in (15, 12, 10, 7, 5, 0)]
    assert pages >= 5  # 20 jobs, 4 at a time
    # A window with no match still hands on a cursor.
    found, before = store.job_search(JobFilter(), "needle", limit=2, scan=2, now=clock.db_now())
    assert found == [] and before == searchable[18]


def test_store_search_over_both_tables(
    app: Tock, store: Store, clock: FakeClock, searchable: list[int], make_worker
) -> None:
    make_worker("w1", queues=["default"])
    done = finish_all(store, clock, "default", OutcomeKind.SUCCEEDED)
    assert searchable[10] in done
    found, more = store.job_search(JobFilter(), "needle", limit=50, scan=1000, now=clock.db_now())
    assert [r.id for r in found] == [searchable[i] for i in (15, 12, 10, 7, 5, 0)]
    assert more is None
    page = app.search_jobs("needle", state="succeeded")
    assert [j.id for j in page] == [searchable[i] for i in (12, 10, 0)]
    seen: list[int] = []
    after = None
    while True:
        page = app.search_jobs("needle", after=after, limit=1, scan=3)
        seen += [j.id for j in page]
        if page.next is None:
            break
        after = page.next
    assert seen == [searchable[i] for i in (15, 12, 10, 7, 5, 0)]


@pytest.mark.parametrize(
    ("text", "kwargs", "told"),
    [
        ("", {}, "a search takes some text: it is empty"),
        ("   ", {}, "it is empty"),
        (None, {}, "a search takes a string, not None"),
        ("x" * 1001, {}, "at most 1000 characters"),
        ("a\x00b", {}, "without NUL"),
        ("x", {"scan": 0}, "scan must be a whole number >= 1, not 0"),
        ("x", {"after": 0}, "after= takes a cursor"),
        ("x", {"limit": 0}, "limit must be a whole number >= 1"),
        ("x", {"state": "nope"}, "unknown job state 'nope'"),
        ("x", {"queue": "no spaces"}, "queue"),
    ],
)
def test_search_jobs_refuses_bad_input(
    app: Tock, text: Any, kwargs: dict[str, Any], told: str
) -> None:
    with pytest.raises(ConfigurationError, match=told):
        app.search_jobs(text, **kwargs)


def test_run_jobs_now_by_filter(app: Tock, store: Store, clock: FakeClock) -> None:
    later = store.job_enqueue_many(
        [new(queue="slow", run_after=3600.0), new(queue="slow", run_after=60.0)],
        now=clock.db_now(),
    )
    other = store.job_enqueue_many([new(queue="fast", run_after=60.0)], now=clock.db_now())
    assert app.run_jobs_now(queue="slow") == 2
    assert [j.id for j in app.list_jobs(state="ready", queue="slow")] == sorted(later)[::-1]
    assert [j.id for j in app.list_jobs(state="scheduled")] == other
    assert app.run_jobs_now(queue="slow") == 0


def test_stop_jobs_by_filter(app: Tock, store: Store, mixed: dict[str, list[int]]) -> None:
    """Every live job the filter matches: running ones are asked to stop (their worker
    ends them canceled), pending ones are canceled at once; finished ones are left."""
    assert app.stop_jobs(queue="media") == 2
    assert set(store.worker_commands("w1").stop_jobs) == {*mixed["started"], *mixed["claimed"]}
    assert app.stop_jobs(queue="emails", state="scheduled") == 1
    assert app.get_job(mixed["scheduled"][0]).status == "canceled"
    assert all(app.get_job(j).status == "pending" for j in mixed["ready"])
    assert app.stop_jobs(state="failed") == 0  # finished: nothing to stop
    assert all(app.get_job(j).status == "failed" for j in mixed["failed"])
    assert app.stop_jobs(queue="emails") == 2  # the ready ones
    assert app.count_jobs(queue="emails")["ready"].n == 0
