"""Random DAGs of jobs with random policies, cancels and outcomes, through the store on
both stores (docs/design.md: Dependencies): each job runs only after every dependency
ended, and ends exactly as its policy says; a retry of every failed job afterwards leaves
nothing waiting for ever."""

from __future__ import annotations

import itertools
import json
import random

from conftest import ensure_worker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tock import FakeClock, JobStatus
from tock.jobs import JobId, NewJob, Outcome, OutcomeKind
from tock.store import Store
from tock.store._lists import cancel_one

SUCCEEDED, FAILED, CANCELED = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED
ERROR = json.dumps({"type": "builtins.ValueError", "message": "boom", "traceback": ""})
_queues = itertools.count()


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list]:
    """Jobs 0..n-1, each waiting on some earlier ones (a DAG by construction), some
    given by position in the batch and some by id after it; a policy, an outcome if it
    runs, and whether it is canceled by hand before anything runs."""
    n = draw(st.integers(1, 12))
    deps = [sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(n)]
    return {
        "deps": deps,
        "policy": [draw(st.sampled_from(["cancel", "run"])) for _ in range(n)],
        "fails": [draw(st.booleans()) for _ in range(n)],
        "canceled": [draw(st.integers(0, 9)) == 0 for _ in range(n)],
        "split": [draw(st.integers(0, n)) for _ in range(1)],
        "seed": [draw(st.integers(0, 2**16))],
        "limit": [draw(st.integers(1, 5))],
    }


def expected(dag: dict[str, list]) -> list[JobStatus]:
    """How each job ends: canceled by hand; canceled by a dependency that did not succeed
    under "cancel"; else it ran, and ended as its outcome says."""
    ends: list[JobStatus] = []
    for i, deps in enumerate(dag["deps"]):
        blocked_by_one = dag["policy"][i] == "cancel" and any(
            ends[d] is not SUCCEEDED for d in deps
        )
        if dag["canceled"][i] or blocked_by_one:
            ends.append(CANCELED)
        else:
            ends.append(FAILED if dag["fails"][i] else SUCCEEDED)
    return ends


def drain(
    store: Store, clock: FakeClock, queue: str, fails: set[JobId], limit: int, rng: random.Random
) -> tuple[dict[JobId, int], dict[JobId, int]]:
    """Claim and finish until nothing is left, the outcomes of each claim sent with the
    next one (a worker's turn), shuffled; returns, per job, the turn whose claim took it
    and the turn whose statement recorded its end."""
    claimed_at: dict[JobId, int] = {}
    ended_at: dict[JobId, int] = {}
    done: list[Outcome] = []
    for turn in itertools.count():
        batch = store.job_claim_batch(
            worker_id="w1", queues=[queue], limit=limit, free=limit, now=clock.db_now(),
            completed=done,
        )  # fmt: skip
        for o in done:
            ended_at[o.job_id] = turn
        if not batch and not done:
            return claimed_at, ended_at
        rng.shuffle(batch)
        done = []
        for j in batch:
            assert j.id not in claimed_at, f"job {j.id} claimed twice"
            claimed_at[j.id] = turn
            if j.id in fails:
                done.append(Outcome(j.id, j.claim_token or 0, OutcomeKind.FAILED, error=ERROR))
            else:
                done.append(Outcome(j.id, j.claim_token or 0, OutcomeKind.SUCCEEDED, result="1"))
        assert turn < 1000, "the DAG never drained"
    raise AssertionError("unreachable")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(dag=dags())
def test_random_dags_run_in_order_and_end_as_their_policies_say(
    store: Store, clock: FakeClock, dag: dict[str, list]
) -> None:
    queue = f"dag{next(_queues)}"  # each example on a queue of its own
    ensure_worker(store, "w1", clock.db_now())
    n = len(dag["deps"])
    split = dag["split"][0]  # jobs before it enqueued first; those after wait on them by id
    ids: list[JobId] = []
    for part in (range(split), range(split, n)):
        jobs = [
            NewJob(
                task="t",
                args="[]",
                kwargs="{}",
                queue=queue,
                after=tuple(d - part.start for d in dag["deps"][i] if d >= part.start),
                depends_on=tuple(ids[d] for d in dag["deps"][i] if d < part.start),
                on_dependency_failure=dag["policy"][i],
            )
            for i in part
        ]
        if jobs:
            ids += store.job_enqueue_many(jobs, now=clock.db_now())
    for i in range(n):
        # Canceled by hand before anything runs (unless a dependency canceled by hand
        # before it canceled it already).
        if dag["canceled"][i] and store.job_get(ids[i]).status is not CANCELED:
            cancel_one(store, ids[i], now=clock.db_now())
    fails = {ids[i] for i in range(n) if dag["fails"][i]}
    rng = random.Random(dag["seed"][0])
    claimed_at, ended_at = drain(store, clock, queue, fails, dag["limit"][0], rng)

    want = expected(dag)
    got = [store.job_get(i).status for i in ids]
    assert got == want, (dag, got, want)
    for i in range(n):
        if ids[i] in claimed_at:
            for d in dag["deps"][i]:
                # Every dependency ended before (or in the statement of) its claim.
                if ids[d] in ended_at:
                    assert ended_at[ids[d]] <= claimed_at[ids[i]], (dag, i, d)

    # Retry every failed job, and let everything succeed: nothing is left waiting.
    failed = [ids[i] for i in range(n) if got[i] is FAILED]
    store.job_retry_many(failed, now=clock.db_now())
    claimed_at, ended_at = drain(store, clock, queue, set(), dag["limit"][0], rng)
    final = [store.job_get(i).status for i in ids]
    for i in range(n):
        assert final[i] in (SUCCEEDED, CANCELED), (dag, final)
        if final[i] is CANCELED:
            # Canceled by hand, or by a dependency canceled for good.
            assert dag["canceled"][i] or any(final[d] is CANCELED for d in dag["deps"][i]), (
                dag,
                final,
            )
        else:
            assert dag["policy"][i] == "run" or all(final[d] is SUCCEEDED for d in dag["deps"][i])
        if ids[i] in claimed_at and ids[i] not in failed:
            # Brought back by its dependency's retry: it waited for it again (a job
            # retried itself runs again at once: its dependencies were met).
            for d in dag["deps"][i]:
                if ids[d] in ended_at:
                    assert ended_at[ids[d]] <= claimed_at[ids[i]], (dag, i, d)
