"""Jobs that wait on jobs, through the store on both stores (docs/design.md:
Dependencies): each transition with fan-in and fan-out, on the fake clock."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from conftest import ensure_worker

from tock import ConfigurationError, FakeClock, JobNotFound, JobStateError, JobStatus
from tock.duties import Rescuer
from tock.jobs import JobId, NewJob, Outcome, OutcomeKind
from tock.store import Store
from tock.store._lists import cancel_one, retry_one

BLOCKED, PENDING, RUNNING = JobStatus.BLOCKED, JobStatus.PENDING, JobStatus.RUNNING
SUCCEEDED, FAILED, CANCELED, LOST = (
    JobStatus.SUCCEEDED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
    JobStatus.LOST,
)
ERROR = json.dumps({"type": "builtins.ValueError", "message": "boom", "traceback": "tb"})


def job(
    n: Any = 0, *, after: Sequence[int] = (), on: Sequence[JobId] = (), **fields: Any
) -> NewJob:
    return NewJob(
        task="t", args=json.dumps([n]), kwargs="{}", after=tuple(after), depends_on=tuple(on),
        **fields,
    )  # fmt: skip


def add(store: Store, clock: FakeClock, *jobs: NewJob) -> list[JobId]:
    return store.job_enqueue_many(list(jobs), now=clock.db_now())


def status(store: Store, *ids: JobId) -> list[JobStatus]:
    return [store.job_get(i).status for i in ids]


def run(
    store: Store,
    clock: FakeClock,
    outcomes: dict[JobId, OutcomeKind] | None = None,
    *,
    results: dict[JobId, Any] | None = None,
    worker: str = "w1",
    limit: int = 100,
) -> list[JobId]:
    """Claim every ready job and finish it (SUCCEEDED unless ``outcomes`` says, its
    result its first argument unless ``results`` says), the outcomes going with the
    next claim as a worker sends them; returns the ids run, in order."""
    ensure_worker(store, worker, clock.db_now())
    outcomes = outcomes or {}
    results = results or {}
    done: list[Outcome] = []
    ran: list[JobId] = []
    while True:
        claimed = store.job_claim_batch(
            worker_id=worker,
            queues=["default"],
            limit=limit,
            free=limit,
            now=clock.db_now(),
            completed=done,
        )
        if not claimed:
            if not done:
                return ran
            # PostgreSQL settles a batch's dependents after its claim: claim again.
            done = []
            continue
        done = []
        for j in claimed:
            ran.append(j.id)
            kind = outcomes.get(j.id, OutcomeKind.SUCCEEDED)
            result = json.dumps(results.get(j.id, j.args[0] if j.args else None))
            assert j.claim_token is not None
            done.append(
                Outcome(
                    j.id,
                    j.claim_token,
                    kind,
                    result=result if kind is OutcomeKind.SUCCEEDED else None,
                    error=None if kind is OutcomeKind.SUCCEEDED else ERROR,
                )
            )


# -- release -------------------------------------------------------------------------


def test_a_job_waits_blocked_until_its_dependency_succeeds(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    (b,) = add(store, clock, job("b", on=[a]))
    assert status(store, a, b) == [PENDING, BLOCKED]
    assert run(store, clock) == [a, b]  # released by a's finish, claimed by the next claim
    assert status(store, a, b) == [SUCCEEDED, SUCCEEDED]


def test_fan_in_waits_for_every_dependency(store: Store, clock) -> None:
    a, b, c = add(store, clock, job("a"), job("b"), job("c"))
    (d,) = add(store, clock, job("d", on=[a, b, c]))
    ensure_worker(store, "w1", clock.db_now())
    first = store.job_claim_batch(
        worker_id="w1", queues=["default"], limit=2, free=2, now=clock.db_now()
    )
    assert [j.id for j in first] == [a, b]
    done = [Outcome(j.id, j.claim_token or 0, OutcomeKind.SUCCEEDED, result="1") for j in first]
    assert store.job_complete_batch(done, now=clock.db_now()) == 2
    assert status(store, d) == [BLOCKED]
    assert store.job_dependencies(d).waiting_on == 1
    assert run(store, clock) == [c, d]


def test_fan_out_releases_every_dependent_once(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    dependents = add(store, clock, *(job(i, on=[a]) for i in range(5)))
    assert store.job_dependencies(a).dependents == tuple((d, BLOCKED) for d in dependents)
    assert run(store, clock) == [a, *dependents]


def test_a_batch_may_wait_on_its_own_jobs_in_any_order(store: Store, clock) -> None:
    ids = add(store, clock, job("c", after=[1, 2]), job("a"), job("b", after=[1]))
    c, a, b = ids
    assert status(store, c, a, b) == [BLOCKED, PENDING, BLOCKED]
    assert run(store, clock) == [a, b, c]


def test_a_dependency_already_succeeded_counts_as_met(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    run(store, clock)
    (b,) = add(store, clock, job("b", on=[a]))
    assert status(store, b) == [PENDING]
    assert store.job_dependencies(b).depends_on == ((a, SUCCEEDED),)


# -- failure policies -----------------------------------------------------------------


def test_a_failed_dependency_cancels_its_dependents_transitively(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    b, c = add(store, clock, job("b", on=[a]), job("c", after=[0]))
    (d,) = add(store, clock, job("d", on=[c], on_dependency_failure="run"))
    assert run(store, clock, {a: OutcomeKind.FAILED}) == [a, d]
    assert status(store, a, b, c, d) == [FAILED, CANCELED, CANCELED, SUCCEEDED]
    error = store.job_get(b).error
    assert error is not None and error["type"] == "tock.DependencyFailed"
    assert f"job {a}" in error["message"] and "failed" in error["message"]
    assert store.job_dependencies(b).canceled_by == a
    assert store.job_dependencies(c).canceled_by == b


def test_run_policy_counts_a_failure_as_met(store: Store, clock) -> None:
    a, b = add(store, clock, job("a"), job("b"))
    (c,) = add(store, clock, job("c", on=[a, b], on_dependency_failure="run"))
    assert run(store, clock, {a: OutcomeKind.FAILED}) == [a, b, c]
    assert status(store, c) == [SUCCEEDED]


@pytest.mark.parametrize("policy, expected", [("cancel", CANCELED), ("run", PENDING)])
def test_a_dependency_already_failed_applies_the_policy_at_once(
    store: Store, clock, policy: str, expected: JobStatus
) -> None:
    (a,) = add(store, clock, job("a"))
    run(store, clock, {a: OutcomeKind.FAILED})
    (b,) = add(store, clock, job("b", on=[a], on_dependency_failure=policy))
    assert status(store, b) == [expected]


def test_canceling_a_job_cancels_what_waits_on_it(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    b, c = add(store, clock, job("b", on=[a]), job("c", after=[0]))
    cancel_one(store, b, now=clock.db_now())
    assert status(store, a, b, c) == [PENDING, CANCELED, CANCELED]
    assert store.job_dependencies(c).canceled_by == b
    assert store.job_dependencies(b).canceled_by is None  # canceled by hand
    assert run(store, clock) == [a]


def test_stopping_a_blocked_job_cancels_it_and_its_dependents(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    b, c = add(store, clock, job("b", on=[a]), job("c", after=[0]))
    assert store.job_stop(b, now=clock.db_now()).status is CANCELED
    assert status(store, c) == [CANCELED]


def test_a_dependency_canceled_while_running_cancels_its_dependents(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    (b,) = add(store, clock, job("b", on=[a]))
    assert run(store, clock, {a: OutcomeKind.CANCELED}) == [a]
    assert status(store, a, b) == [CANCELED, CANCELED]


# -- rescue ----------------------------------------------------------------------------


def test_a_rescued_dependency_releases_its_dependents_once(
    store: Store, clock: FakeClock, make_worker
) -> None:
    make_worker("w1")
    (a,) = add(store, clock, job("a"))
    (b,) = add(store, clock, job("b", on=[a]))
    store.job_claim_batch(worker_id="w1", queues=["default"], limit=1, free=1, now=clock.db_now())
    clock.advance(seconds=11)
    assert Rescuer(store, clock).run_once().rescued == [a]
    assert status(store, a, b) == [PENDING, BLOCKED]
    assert run(store, clock, worker="w2") == [a, b]
    assert status(store, b) == [SUCCEEDED]


def test_a_lost_dependency_cancels_its_dependents(store: Store, clock, make_worker) -> None:
    make_worker("w1")
    (a,) = add(store, clock, job("a", at_most_once=True))
    (b,) = add(store, clock, job("b", on=[a]))
    store.job_claim_batch(worker_id="w1", queues=["default"], limit=1, free=1, now=clock.db_now())
    clock.advance(seconds=11)
    assert Rescuer(store, clock).run_once().lost == [a]
    assert status(store, a, b) == [LOST, CANCELED]
    assert "lost" in (store.job_get(b).error or {})["message"]


# -- retry -----------------------------------------------------------------------------


def test_retrying_a_failed_dependency_brings_back_what_it_canceled(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    b, c = add(store, clock, job("b", on=[a]), job("c", after=[0]))
    (d,) = add(store, clock, job("d", on=[b], on_dependency_failure="run"))
    (e,) = add(store, clock, job("e"))
    cancel_one(store, e, now=clock.db_now())
    run(store, clock, {a: OutcomeKind.FAILED})
    assert status(store, b, c, d) == [CANCELED, CANCELED, SUCCEEDED]
    retry_one(store, a, now=clock.db_now())
    # b and c wait again; d, which ran, and e, canceled by hand, stay as they are.
    assert status(store, a, b, c, d, e) == [PENDING, BLOCKED, BLOCKED, SUCCEEDED, CANCELED]
    assert store.job_dependencies(b).canceled_by is None
    assert store.job_dependencies(b).waiting_on == 1
    assert run(store, clock) == [a, b, c]
    assert status(store, a, b, c) == [SUCCEEDED] * 3


def test_a_job_canceled_by_its_dependency_is_not_retried_alone(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    (b,) = add(store, clock, job("b", on=[a]))
    run(store, clock, {a: OutcomeKind.FAILED})
    with pytest.raises(JobStateError, match=f"retry job {a}"):
        retry_one(store, b, now=clock.db_now())
    assert status(store, b) == [CANCELED]


def test_a_retried_job_that_was_canceled_waiting_counts_its_dependencies_again(
    store: Store, clock
) -> None:
    a, x = add(store, clock, job("a"), job("x"))
    (b,) = add(store, clock, job("b", on=[a, x]))
    cancel_one(store, x, now=clock.db_now())  # b canceled by x
    cancel_one(store, a, now=clock.db_now())
    assert status(store, b) == [CANCELED]
    retry_one(store, x, now=clock.db_now())  # b back, waiting on a (canceled): canceled again
    assert status(store, b) == [CANCELED]
    assert store.job_dependencies(b).canceled_by == a
    retry_one(store, a, now=clock.db_now())
    assert status(store, a, x, b) == [PENDING, PENDING, BLOCKED]
    assert run(store, clock) == [a, x, b]


# -- results ----------------------------------------------------------------------------


def test_results_reach_the_released_job_first(store: Store, clock) -> None:
    ids = add(
        store,
        clock,
        job("a"),
        job("b"),
        job("one", after=[0], pass_results="one"),
        job("list", after=[1, 0], pass_results="list"),
    )
    a, b, one, lst = ids
    run(store, clock, results={a: {"x": 1}, b: [2]})
    assert store.job_get(one).args == [{"x": 1}, "one"]
    assert store.job_get(lst).args == [[[2], {"x": 1}], "list"]


def test_a_failed_member_hands_none_under_the_run_policy(store: Store, clock) -> None:
    ids = add(
        store,
        clock,
        job("a"),
        job("b"),
        job("cb", after=[0, 1], pass_results="list", on_dependency_failure="run"),
    )
    _, b, cb = ids
    run(store, clock, {b: OutcomeKind.FAILED})
    assert store.job_get(cb).args == [["a", None], "cb"]


def test_a_failure_job_runs_only_on_a_failure_with_its_id(store: Store, clock) -> None:
    ids = add(
        store,
        clock,
        job("a"),
        job("b", after=[0]),
        job("err", after=[0, 1], on_dependency_failure="failure", pass_results="id"),
    )
    a, b, err = ids
    assert run(store, clock, {b: OutcomeKind.FAILED}) == [a, b, err]
    assert store.job_get(err).args == [b, "err"]
    ids = add(
        store,
        clock,
        job("a"),
        job("err", after=[0], on_dependency_failure="failure", pass_results="id"),
    )
    assert run(store, clock) == [ids[0]]
    with pytest.raises(JobNotFound):  # not needed: gone without a trace
        store.job_get(ids[1])


# -- bad input ---------------------------------------------------------------------------


def test_an_unknown_dependency_is_refused_and_nothing_is_written(store: Store, clock) -> None:
    (a,) = add(store, clock, job("a"))
    with pytest.raises(JobNotFound, match="job 999999 not found"):
        add(store, clock, job("b"), job("c", on=[a, 999999]))
    assert [j.id for j in store.job_list(limit=10)] == [a]
    assert store.job_dependencies(a).dependents == ()


@pytest.mark.parametrize(
    "jobs, message",
    [
        ([job(0, after=[1]), job(1, after=[0])], "cycle: 0 \\(t\\) -> 1 \\(t\\) -> 0"),
        ([job(0, after=[0])], "waits on position 0"),
        ([job(0, after=[5])], "waits on position 5"),
        ([job(0, on=[-1])], "not a job id"),
        ([job(0, on=[1], on_dependency_failure="ignore")], "on_dependency_failure='ignore'"),
        ([job(0, on=[1], pass_results="all")], "pass_results='all'"),
        ([job(0, pass_results="one")], "has none"),
        ([job(0), job(1), job(2, after=[0, 1], pass_results="one")], "has several"),
        ([job(0, on=[1], unique_key="k")], "cannot have a unique key"),
    ],
)
def test_bad_dependencies_are_refused_before_any_write(
    store: Store, clock, jobs: list[NewJob], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        store.job_enqueue_many(jobs, now=clock.db_now())
    assert store.job_list(limit=10) == []


# -- prune, records ----------------------------------------------------------------------


def test_a_finished_dependency_is_kept_while_a_job_waits_on_it(
    store: Store, clock: FakeClock
) -> None:
    a, x, old = add(store, clock, job("a"), job("x"), job("old"))
    (b,) = add(store, clock, job("b", on=[a, x], pass_results="list"))
    ensure_worker(store, "w1", clock.db_now())
    claimed = store.job_claim_batch(
        worker_id="w1", queues=["default"], limit=1, free=1, now=clock.db_now()
    )
    assert [j.id for j in claimed] == [a]
    done = [Outcome(a, claimed[0].claim_token or 0, OutcomeKind.SUCCEEDED, result='"ra"')]
    store.job_complete_batch(done, now=clock.db_now())
    cancel_one(store, old, now=clock.db_now())
    clock.advance(seconds=30 * 86400)
    retention = {SUCCEEDED: 60.0, CANCELED: 60.0}
    assert store.job_prune(retention=retention, batch_size=100, now=clock.db_now()) == 1
    assert status(store, a, x, b) == [SUCCEEDED, PENDING, BLOCKED]
    assert run(store, clock) == [x, b]
    assert store.job_get(b).args == [["ra", "x"], "b"]
    clock.advance(seconds=30 * 86400)
    assert store.job_prune(retention=retention, batch_size=100, now=clock.db_now()) == 3
    with pytest.raises(JobNotFound):
        store.job_dependencies(b)


def test_a_workflow_is_pruned_once_none_of_its_jobs_is_stored(store: Store, clock) -> None:
    from tock import WorkflowNotFound
    from tock.duties import Pruner

    done, _ = store.workflow_enqueue([job("a"), job("b", after=[0])], "{}", now=clock.db_now())
    kept, kept_ids = store.workflow_enqueue(
        [job("c"), job("d", after=[0])], "{}", now=clock.db_now()
    )
    run(store, clock, {kept_ids[0]: OutcomeKind.FAILED})  # d canceled by c, c kept: failed
    clock.advance(seconds=2 * 86400)
    Pruner(store, clock).run_once()  # succeeded and canceled jobs go after a day
    with pytest.raises(WorkflowNotFound):
        store.workflow_get(done)
    assert store.workflow_get(kept).job_ids == tuple(kept_ids)
    assert status(store, kept_ids[0]) == [FAILED]
    assert store.workflow_prune(batch_size=10) == 0


def test_a_workflow_row_keeps_its_spec_and_job_ids(store: Store, clock) -> None:
    wid, ids = store.workflow_enqueue(
        [job("a"), job("b", after=[0], pass_results="one")], '{"chain": [0, 1]}', now=clock.db_now()
    )
    record = store.workflow_get(wid)
    assert record.spec == '{"chain": [0, 1]}' and list(record.job_ids) == ids
    assert status(store, *ids) == [PENDING, BLOCKED]
    from tock import WorkflowNotFound

    with pytest.raises(WorkflowNotFound):
        store.workflow_get(wid + 1000)


# -- through the app, with a worker ----------------------------------------------------


def double(x: int) -> int:
    return 2 * x


def total(*xs: int) -> int:
    return sum(xs)


def test_a_burst_worker_runs_a_job_after_its_dependencies(real_app) -> None:
    from tock.worker.worker import Worker, WorkerConfig

    d = real_app.task(name="deps.double")(double)
    t = real_app.task(name="deps.total")(total)
    a, b = d.enqueue(1), d.enqueue(2)
    c = t.using(depends_on=[a, b.id]).enqueue(10)
    late = t.using(depends_on=[c], on_dependency_failure="run").enqueue(5)
    assert c.status is BLOCKED
    assert real_app.job_dependencies(c).depends_on == ((a.id, PENDING), (b.id, PENDING))
    Worker(real_app, WorkerConfig(burst=True, duties=False)).run(install_signal_handlers=False)
    assert [j.refresh().status for j in (a, b, c, late)] == [SUCCEEDED] * 4
    assert real_app.job_dependencies(c).dependents == ((late.id, SUCCEEDED),)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depends_on": 3}, "must be a list of jobs"),
        ({"depends_on": ["x"]}, "'x' is not a job"),
        ({"depends_on": [0]}, "0 is not a job"),
        ({"depends_on": [1], "on_dependency_failure": "skip"}, "'skip'"),
        ({"on_dependency_failure": "run"}, "depends_on is not"),
        ({"depends_on": [1], "unique_key": "k"}, "cannot have a unique_key"),
    ],
)
def test_bad_dependency_options_are_refused_where_they_enter(app, kwargs, message) -> None:
    t = app.task(name="deps.total")(total)
    with pytest.raises(ConfigurationError, match=message):
        t.using(**kwargs)


def test_an_unknown_dependency_of_a_task_call_is_job_not_found(app) -> None:
    t = app.task(name="deps.total")(total)
    with pytest.raises(JobNotFound):
        t.using(depends_on=[424242]).enqueue(1)
