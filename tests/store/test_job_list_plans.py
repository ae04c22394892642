"""Listing jobs over 100,000 of them: every filter's queries go through an index in the
list's order, with no sort over a table and no full scan, and pages cover each job once
(docs/design.md: listing jobs)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tock import FakeClock, Tock
from tock.jobs import JobCount, JobStatus, NewJob, Outcome, OutcomeKind, Start
from tock.store import Store
from tock.store._lists import JobFilter

QUEUES = ("default", "emails", "reports", "media")
TASKS = ("a.one", "a.two", "b.three", "b.four", "c.five")
N = 100_000


@pytest.fixture
def crowded(app: Tock, store: Store, clock: FakeClock, make_worker, request) -> Store:
    """100,000 jobs: most succeeded, some failed, canceled, running (claimed and
    started), ready and scheduled, over four queues and five tasks."""
    make_worker("w1", queues=QUEUES)
    jobs = [
        NewJob(
            task=TASKS[i % len(TASKS)],
            args=f"[{i}]",
            kwargs="{}",
            queue=QUEUES[i % len(QUEUES)],
            unique_key=f"key:{i}" if i % 1000 == 0 else None,
            run_after=3600.0 if i % 50 == 1 else 0.0,
        )
        for i in range(N)
    ]
    store.job_enqueue_many(jobs, now=clock.db_now())
    done = 0
    while done < 62_000:
        claimed = store.job_claim_batch(
            worker_id="w1", queues=QUEUES, limit=5_000, free=5_000, now=clock.db_now()
        )
        outcomes = [
            Outcome(
                j.id,
                j.claim_token or 0,
                OutcomeKind.FAILED if j.id % 7 == 0 else OutcomeKind.SUCCEEDED,
                result="null",
                error='{"type": "E", "message": "", "traceback": ""}',
            )
            for j in claimed
        ]
        store.job_complete_batch(outcomes, now=clock.db_now())
        done += len(claimed)
    claimed = store.job_claim_batch(
        worker_id="w1", queues=QUEUES, limit=1_000, free=1_000, now=clock.db_now()
    )
    store.job_complete_batch(
        [], now=clock.db_now(), started=[Start(j.id, j.claim_token or 0) for j in claimed[:500]]
    )
    app.cancel_jobs(state="ready", queue="media")
    if request.node.callspec.params.get("store_kind") == "postgres":
        # Fresh tables: the planner needs statistics, as autovacuum would gather them.
        admin = request.getfixturevalue("pg_admin")
        schema = store.schema  # type: ignore[attr-defined]
        for table in ("tock_jobs", "tock_jobs_finished"):
            admin.execute(f'ANALYZE "{schema}".{table}')
    return store


FILTERS: list[dict[str, Any]] = [
    {},
    *({"state": s} for s in ("succeeded", "failed", "canceled", "pending", "running")),
    *({"state": v} for v in ("scheduled", "ready", "claimed", "started")),
    {"state": ["failed", "canceled", "ready"]},
    {"queue": "emails"},
    {"task": "b.three"},
    {"queue": "emails", "state": "failed"},
    {"task": "a.one", "state": "succeeded"},
    {"search": "key:5000"},
    {"search": "777"},
    {"search": "key:7000", "state": "failed"},
]


def _bad_steps(store_kind: str, plan: str) -> list[str]:
    if store_kind == "sqlite":
        # "SCAN t" reads a whole table (or index); "USE TEMP B-TREE" sorts.
        bad = [line for line in plan.splitlines() if re.match(r"\s*SCAN\b", line)]
        bad += [line for line in plan.splitlines() if "TEMP B-TREE" in line]
        if not re.search(r"USING (COVERING )?INDEX|USING INTEGER PRIMARY KEY", plan):
            bad.append("no index")
        return bad
    bad = [line for line in plan.splitlines() if re.search(r"Seq Scan|Bitmap", line)]
    # A sort is allowed over the rows of two indexes alone: the running jobs (at most
    # the workers' concurrency together) and a unique key's jobs (one live, a few
    # finished); never over a table or a state's index.
    bounded = re.search(
        r"Index Scan using (tock_jobs_worker|tock_jobs_unique_key|tock_jobs_finished_key)", plan
    )
    if "Sort" in plan and not bounded:
        bad.append("a sort")
    if "Index" not in plan:
        bad.append("no index")
    return bad


def test_every_filter_is_served_by_an_index_in_order(
    app: Tock, crowded: Store, store_kind: str
) -> None:
    bad = []
    for f in FILTERS:
        plans = crowded.job_list_plans(JobFilter.of(**f), now=app.clock.db_now())
        assert plans
        bad += [(f, plan) for plan in plans if _bad_steps(store_kind, plan)]
    assert not bad, "\n\n".join(f"{f}:\n{plan}" for f, plan in bad)


def test_pages_over_100_000_jobs(app: Tock, crowded: Store) -> None:
    for f in ({"state": "failed"}, {"queue": "reports"}, {"task": "b.four", "state": "ready"}):
        seen: list[int] = []
        after = None
        while True:
            page = app.list_jobs(after=after, limit=1_000, **f)
            seen += [j.id for j in page]
            if page.next is None:
                break
            after = page.next
        assert seen == sorted(set(seen), reverse=True), f
        expected = crowded.job_ids(JobFilter.of(**f), limit=N + 1, now=app.clock.db_now())
        assert seen == expected, f
        assert 1_000 < len(seen) < N, f


def _plan(store: Store, store_kind: str, name: str, values: dict[str, Any]) -> str:
    """The database's plan of one of the store's queries (the store's own SQL, read
    here as ``job_list_plans`` reads a list's)."""
    sql = store.Q[name]  # type: ignore[attr-defined]
    with store._read() as conn:  # type: ignore[attr-defined]
        if store_kind == "sqlite":
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql, values).fetchall()
        else:
            rows = conn.execute("EXPLAIN " + sql, values).fetchall()
    return "\n".join(str(row[-1]) for row in rows)


def test_counts_and_search_windows_read_an_index_in_order(
    app: Tock, crowded: Store, store_kind: str
) -> None:
    """docs/design.md, counting and searching jobs: each finished state's count reads
    its newest rows along (status, id), and each search window along its part's index;
    neither sorts nor scans a table."""
    from tock.store._lists import parts
    from tock.store._sql import variant

    now = crowded._time(app.clock.db_now())  # type: ignore[attr-defined]

    def bad_steps(plan: str) -> list[str]:
        # Reading the window's rows again (SQLite's "SCAN (subquery-1)") and grouping
        # them (a sort) costs at most scan rows. PostgreSQL may gather a queue's or a
        # task's unsucceeded ids from their partial index and sort them, when it counts
        # that cheaper than walking the index in order: bounded by those jobs (few next
        # to the succeeded, docs/design.md: listing jobs), not by the table.
        steps = _bad_steps(store_kind, plan)
        if re.search(r"Bitmap Index Scan on tock_jobs_finished_(queue|task)\b", plan):
            steps = [s for s in steps if s != "a sort" and "Bitmap" not in s]
        return [
            s
            for s in steps
            if not re.match(r"\s*SCAN \(subquery-\d+\)", s)
            # The recursive skip over the queues reads its own rows (one a queue); the
            # running jobs are read whole through their partial index (as many as the
            # workers hold), the blocked ones through theirs up to the LIMIT.
            and not re.match(r"\s*SCAN q$", s)
            and "USING INDEX tock_jobs_worker" not in s
            and "USING INDEX tock_jobs_blocked" not in s
            and "TEMP B-TREE FOR GROUP BY" not in s
            and not (store_kind == "postgres" and s == "a sort" and "GroupAggregate" in plan)
        ]

    bad = []
    for status in ("succeeded", "failed", "canceled", "lost"):
        values = {"status": status, "scan": 1001, "task": "a.one"}
        plan = _plan(crowded, store_kind, "job_count_finished", values)
        bad += [(status, plan)] if bad_steps(plan) else []
    # The live counts: the queues skipped through, each queue's first pending jobs
    # along the claim index, the running ones through their own index.
    for name, values in [
        ("job_count_queues", {}),
        ("job_count_pending", {"queue": "emails", "scan": 1001, "task": "a.one", "now": now}),
        ("job_count_running", {"task": "a.one"}),
        ("job_count_blocked", {"scan": 1001, "task": "a.one"}),
    ]:
        plan = _plan(crowded, store_kind, name, values)
        bad += [(name, plan)] if bad_steps(plan) else []
    for f in ({}, {"state": "succeeded"}, {"queue": "emails", "state": "failed"}):
        for part in parts(JobFilter.of(**f)):
            finished = ("finished",) if part.table == "finished" else ()
            values = {"before": 2**63 - 1, "scan": 1000, "now": now, "queue": "emails"}
            name = variant("job_search_window", *finished, *part.flags)
            plan = _plan(crowded, store_kind, name, values)
            bad += [(f, plan)] if bad_steps(plan) else []
    assert not bad, "\n\n".join(f"{f}:\n{plan}" for f, plan in bad)


def test_counts_over_100_000_jobs_stop_at_the_cap(app: Tock, crowded: Store) -> None:
    counts = app.count_jobs(cap=1_000)
    assert str(counts["succeeded"]) == "1,000+" and str(counts["failed"]) == "1,000+"
    # Each queue holds more than 1,000 pending jobs: its ready and scheduled counts are
    # among its first 1,001 in claim order; the running ones are exact.
    assert str(counts["ready"]) == "1,000+"
    assert counts["claimed"].more is False and counts["started"].more is False
    exact = {s.queue: s.counts for s in crowded.job_stats(now=app.clock.db_now())}
    for queue, by_group in app.count_jobs_by_queue(cap=1_000).items():
        assert by_group["succeeded"].n <= exact[queue].get("succeeded", 0)  # type: ignore[call-overload]
        pending = exact[queue].get(JobStatus.PENDING, 0)  # type: ignore[call-overload]
        assert by_group["ready"].more is (pending > 1_000), queue
        assert by_group["ready"].n + by_group["scheduled"].n <= min(pending, 2_000), queue
    # With a cap above the backlog, every live count is exact again.
    wide = app.count_jobs(cap=200_000)
    live = crowded.job_stats(now=app.clock.db_now())
    assert wide["ready"] == JobCount(sum(s.ready for s in live))
    pending = sum(s.counts.get(JobStatus.PENDING, 0) for s in live)
    assert wide["scheduled"] == JobCount(pending - wide["ready"].n)
