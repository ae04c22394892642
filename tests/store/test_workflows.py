"""Workflows run end to end on every store: results passed along a chain, gathered by a
chord in order, failures under each policy, link_error, cancel, and the handle rebuilt
from the store. Real clock and a real worker; waits on results, never on sleeps."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import ensure_worker

from tock import (
    FakeClock,
    JobCanceled,
    JobFailed,
    JobLost,
    JobNotFound,
    JobStatus,
    Tock,
    chain,
    chord,
    group,
)
from tock.duties import Rescuer, RescuerConfig
from tock.errors import WorkflowNotFound
from tock.jobs import JobRecord, Outcome, OutcomeKind

from .test_worker import WAIT, running_worker, wait_for


class Boom(Exception):
    pass


@pytest.fixture
def tasks(real_app: Tock) -> SimpleNamespace:
    app = real_app

    @app.task(name="wf.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="wf.collect")
    def collect(results: list[Any]) -> list[Any]:
        return results

    @app.task(name="wf.total")
    def total(results: list[int]) -> int:
        return sum(results)

    @app.task(name="wf.ping")
    def ping() -> str:
        return "pong"

    @app.task(name="wf.fail")
    def fail(*args: Any) -> None:
        raise Boom("no")

    @app.task(name="wf.echo")
    def echo(value: Any, note: str = "") -> list[Any]:
        return [value, note]

    return SimpleNamespace(add=add, collect=collect, total=total, ping=ping, fail=fail, echo=echo)


def statuses(shape: Any) -> Any:
    return shape.value if isinstance(shape, JobStatus) else [statuses(s) for s in shape]


def test_chain_passes_each_result_to_the_next(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chain(tasks.add.s(1, 2), tasks.add.s(3), tasks.add.s(4)).enqueue()
    assert statuses(wf.status()) == ["pending", "blocked", "blocked"]
    with running_worker(real_app):
        assert wf.result(timeout=WAIT) == 10
    assert statuses(wf.status()) == ["succeeded"] * 3
    assert [j.refresh().record.result for j in wf.jobs] == [3, 6, 10]


def test_group_runs_each_member(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = group(tasks.add.s(i, i) for i in range(4)).enqueue()
    with running_worker(real_app, concurrency=4):
        assert wf.result(timeout=WAIT) == [0, 2, 4, 6]
    assert statuses(wf.status()) == ["succeeded"] * 4


def test_chord_callback_gets_the_results_in_order(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chord(group(tasks.add.s(i, 100) for i in range(8)), tasks.collect.s()).enqueue()
    assert statuses(wf.status()) == [["pending"] * 8, "blocked"]
    with running_worker(real_app, concurrency=8):
        assert wf.result(timeout=WAIT) == [100 + i for i in range(8)]


def test_nested_chain_group_task_group_task(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chain(
        group(tasks.add.s(1, 1), tasks.add.s(2, 2)),  # [2, 4]
        tasks.total.s(),  # 6
        group(tasks.add.s(10), tasks.add.s(20), tasks.ping.si()),  # [16, 26, "pong"]
        tasks.collect.s(),
    ).enqueue()
    with running_worker(real_app, concurrency=4):
        assert wf.result(timeout=WAIT) == [16, 26, "pong"]
    assert statuses(wf.status()) == [["succeeded"] * 2, "succeeded", ["succeeded"] * 3, "succeeded"]


def test_group_of_chains_collects_each_last_step(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chord(
        [chain(tasks.add.s(i, i), tasks.add.s(1)) for i in range(3)], tasks.collect.s()
    ).enqueue()
    with running_worker(real_app, concurrency=3):
        assert wf.result(timeout=WAIT) == [1, 3, 5]
    assert statuses(wf.status()) == [[["succeeded"] * 2] * 3, "succeeded"]


def test_si_waits_and_receives_nothing(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chain(tasks.add.s(1, 2), tasks.ping.si(), tasks.echo.s(note="after")).enqueue()
    with running_worker(real_app):
        assert wf.result(timeout=WAIT) == ["pong", "after"]


def test_a_failure_cancels_what_follows(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chain(tasks.add.s(1, 2), tasks.fail.s(), tasks.add.s(3), tasks.add.s(4)).enqueue()
    with running_worker(real_app), pytest.raises(JobFailed) as failed:
        wf.result(timeout=WAIT)  # the failure, not the cancel it caused
    assert failed.value.job_id == wf.jobs[1].id
    assert statuses(wf.status()) == ["succeeded", "failed", "canceled", "canceled"]
    with pytest.raises(JobCanceled):
        wf.jobs[3].result(timeout=0)


def test_chord_under_run_gets_none_for_a_failed_member(
    real_app: Tock, tasks: SimpleNamespace
) -> None:
    wf = chord(
        [tasks.add.s(1, 1), tasks.fail.s(), tasks.add.s(2, 2)],
        tasks.collect.s(),
        on_dependency_failure="run",
    ).enqueue()
    with running_worker(real_app, concurrency=3):
        assert wf.result(timeout=WAIT) == [2, None, 4]
    assert statuses(wf.status()) == [["succeeded", "failed", "succeeded"], "succeeded"]


def test_chord_by_default_cancels_the_callback(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chord([tasks.add.s(1, 1), tasks.fail.s()], tasks.collect.s()).enqueue()
    with running_worker(real_app, concurrency=2), pytest.raises(JobFailed):
        wf.result(timeout=WAIT)
    wait_for(lambda: wf.status()[0][0] is JobStatus.SUCCEEDED, "the other member")
    assert statuses(wf.status()) == [["succeeded", "failed"], "canceled"]


def test_link_error_runs_once_with_the_failed_id(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chain(tasks.add.s(1, 2), tasks.fail.s(), tasks.add.s(3)).enqueue(
        link_error=tasks.echo.s(note="errback")
    )
    assert wf.link_error is not None and wf.link_error.status is JobStatus.BLOCKED
    with running_worker(real_app):
        assert wf.link_error.result(timeout=WAIT) == [wf.jobs[1].id, "errback"]
    assert statuses(wf.status()) == ["succeeded", "failed", "canceled"]
    runs = real_app.list_jobs(task="wf.echo").jobs
    assert [j.id for j in runs] == [wf.link_error.id]


def test_link_error_si_receives_nothing(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = group(tasks.fail.s(), tasks.ping.si()).enqueue(link_error=tasks.ping.si())
    assert wf.link_error is not None
    with running_worker(real_app, concurrency=2):
        assert wf.link_error.result(timeout=WAIT) == "pong"


def test_link_error_is_dropped_when_every_step_succeeds(
    real_app: Tock, tasks: SimpleNamespace
) -> None:
    wf = chain(tasks.add.s(1, 2), tasks.add.s(3)).enqueue(link_error=tasks.echo.s())
    assert wf.link_error is not None
    with running_worker(real_app):
        assert wf.result(timeout=WAIT) == 6

        def dropped() -> bool:
            try:
                wf.link_error.refresh()  # type: ignore[union-attr]
            except JobNotFound:
                return True
            return False

        wait_for(dropped, "the link_error job to be dropped")
    assert real_app.list_jobs(task="wf.echo").jobs == []


def test_a_signature_alone_takes_link_error(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = tasks.fail.s(1).enqueue(link_error=tasks.echo.s())
    assert wf.link_error is not None
    with running_worker(real_app):
        assert wf.link_error.result(timeout=WAIT) == [wf.jobs[0].id, ""]
        with pytest.raises(JobFailed):
            wf.result(timeout=WAIT)


def test_cancel_cancels_every_job_not_finished(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chord([tasks.add.s(1, 1), tasks.add.s(2, 2)], tasks.collect.s()).enqueue(
        link_error=tasks.echo.s()
    )
    assert wf.cancel() == 4
    assert statuses(wf.status()) == [["canceled", "canceled"], "canceled"]
    with pytest.raises(JobCanceled):
        wf.result(timeout=WAIT)
    assert wf.cancel() == 0


def test_get_workflow_after_reopening_the_app(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chain(tasks.add.s(1, 2), group(tasks.add.s(1), tasks.add.s(2)), tasks.total.s()).enqueue(
        link_error=tasks.echo.s()
    )
    with running_worker(real_app, concurrency=2):
        assert wf.result(timeout=WAIT) == 9
    reopened = Tock(real_app.url)
    try:
        again = reopened.get_workflow(wf.id)
        assert again.id == wf.id
        assert again.jobs == wf.jobs
        assert again.link_error == wf.link_error
        assert statuses(again.status()) == ["succeeded", ["succeeded"] * 2, "succeeded"]
        assert again.result(timeout=0) == 9
        with pytest.raises(WorkflowNotFound):
            reopened.get_workflow(wf.id + 1000)
    finally:
        reopened.close()


def test_result_times_out_without_touching_anything(real_app: Tock, tasks: SimpleNamespace) -> None:
    wf = chain(tasks.add.s(1, 2), tasks.add.s(3)).enqueue()
    with pytest.raises(TimeoutError):
        wf.result(timeout=0.05)
    assert statuses(wf.status()) == ["pending", "blocked"]


def test_a_bad_step_writes_nothing(real_app: Tock, tasks: SimpleNamespace) -> None:
    with pytest.raises(TypeError, match=r"task 'wf\.add'"):
        chain(tasks.add.s(1, 2), group(tasks.add.s(1), tasks.add.s())).enqueue()
    assert real_app.list_jobs().jobs == []


@pytest.mark.parametrize("commit", [True, False])
def test_enqueue_through_the_callers_connection(
    real_app: Tock, store_kind: str, tasks: SimpleNamespace, commit: bool
) -> None:
    """The whole workflow exists if and only if the caller commits."""
    from .test_caller_connection import begin, connect

    conn = connect(real_app, store_kind, autocommit=True)
    try:
        begin(conn)
        wf = chain(tasks.add.s(1, 2), tasks.add.s(3)).enqueue(connection=conn)
        conn.execute("COMMIT" if commit else "ROLLBACK")
    finally:
        conn.close()
    if commit:
        assert statuses(wf.status()) == ["pending", "blocked"]
        assert real_app.get_workflow(wf.id).jobs == wf.jobs
    else:
        for job in wf.jobs:
            with pytest.raises(JobNotFound):
                job.refresh()
        with pytest.raises(WorkflowNotFound):
            real_app.get_workflow(wf.id)


# -- crashes: fabricate what a dead worker leaves, then one rescuer pass -----------------


def _claim(app: Tock, clock: FakeClock, worker: str, n: int) -> list[JobRecord]:
    ensure_worker(app.store, worker, clock.db_now())
    return app.store.job_claim_batch(
        worker_id=worker, queues=["default"], limit=n, free=n, now=clock.db_now()
    )


def _succeed(app: Tock, clock: FakeClock, record: JobRecord, result: Any) -> None:
    assert record.claim_token is not None
    outcome = Outcome(record.id, record.claim_token, OutcomeKind.SUCCEEDED, json.dumps(result))
    app.store.job_complete_batch([outcome], now=clock.db_now())


def _crash(app: Tock, clock: FakeClock) -> None:
    clock.advance(seconds=11)
    Rescuer(app.store, clock, RescuerConfig()).run_once()


def test_a_chord_member_rescued_after_a_crash_releases_the_callback_once(
    app: Tock, clock: FakeClock
) -> None:
    add = app.task(name="wf.add")(lambda x, y: x + y)
    collect = app.task(name="wf.collect")(lambda results: results)
    wf = chord([add.s(1, 1), add.s(2, 2)], collect.s()).enqueue()
    assert len(_claim(app, clock, "dead", 2)) == 2
    _crash(app, clock)
    assert statuses(wf.status()) == [["pending", "pending"], "blocked"]
    first, second = _claim(app, clock, "alive", 2)
    _succeed(app, clock, first, 2)
    assert statuses(wf.status()) == [["succeeded", "running"], "blocked"]
    _succeed(app, clock, second, 4)
    callback = app.store.job_get(wf.jobs[2].id)
    assert (callback.status, callback.args) == (JobStatus.PENDING, [[2, 4]])
    assert [j.id for j in app.list_jobs(task="wf.collect").jobs] == [callback.id]


@pytest.mark.parametrize("policy", ["cancel", "run"])
def test_a_chord_member_lost_in_a_crash_never_leaves_the_callback_waiting(
    app: Tock, clock: FakeClock, policy: str
) -> None:
    once = app.task(name="wf.once", at_most_once=True)(lambda: 1)
    collect = app.task(name="wf.collect")(lambda results: results)
    wf = chord([once.si(), once.si()], collect.s(), on_dependency_failure=policy).enqueue()
    first, _ = _claim(app, clock, "dead", 2)
    _succeed(app, clock, first, 1)
    _crash(app, clock)
    if policy == "cancel":
        assert statuses(wf.status()) == [["succeeded", "lost"], "canceled"]
        with pytest.raises(JobLost):
            wf.result(timeout=0)
    else:
        assert statuses(wf.status()) == [["succeeded", "lost"], "pending"]
        assert app.store.job_get(wf.jobs[2].id).args == [[1, None]]
