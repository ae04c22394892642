"""Jobs that wait on jobs, written once above the dialects (docs/design.md: Dependencies).

Edges are rows (``tock_job_deps``); a job that has dependencies has a row of its own in
``tock_job_waits``: how many of them are not met yet, its policy, how it takes their
results, and, once one canceled it, which. A live job that others depend on carries
``has_dependents``, so that finishing it knows to settle them.

Everything here runs inside the caller's write transaction: the enqueue that adds edges,
and every statement that moves a job to the finished table (a batch's outcomes, a
cancel, a stop, a rescue) or back (a retry). So a dependent is released, canceled or
counted in the same transaction as the end of its dependency, never by a later pass.
On PostgreSQL each step is a statement of its own: it sees every edge committed before
it, also those added while the finish waited for a row the enqueue had locked.

The queries take their sets as JSON arrays (``ids``, ``rows``) in both dialects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from tock.errors import ConfigurationError, JobNotFound
from tock.jobs import JobId, NewJob

#: what a job does when one of its dependencies ends failed, lost or canceled
POLICIES = ("cancel", "run", "failure")
#: how a released job takes its dependencies' results, as its first argument
PASSES = ("one", "list", "id")
#: the error of a job canceled because a dependency did not succeed
DEPENDENCY_FAILED = "tock.DependencyFailed"


class DepStore(Protocol):
    """What these steps need of a store: its queries, and how it deletes moved rows."""

    Q: Any

    def _dep_query(self, conn: Any, name: str, params: dict[str, Any]) -> Any:
        """Run one of these queries (a cursor, its rows to read)."""
        ...

    def _forget_moved(self, conn: Any, ids: list[JobId]) -> None: ...

    def _drop_finished(self, conn: Any, ids: list[JobId]) -> None: ...


def wanted(jobs: Sequence[NewJob]) -> bool:
    """Whether a batch asks for anything of this module (checked, then linked)."""
    return any(
        job.depends_on or job.after or job.pass_results or job.on_dependency_failure != "cancel"
        for job in jobs
    )


def check(jobs: Sequence[NewJob]) -> None:
    """Refuse a batch whose dependencies cannot be right, before anything is written:
    a position out of the batch or the job itself, a cycle, an unknown policy, results
    passed without a dependency, a unique key on a job that waits."""
    graph: dict[int, tuple[int, ...]] = {}
    for i, job in enumerate(jobs):
        if job.on_dependency_failure not in POLICIES:
            raise ConfigurationError(
                f"on_dependency_failure={job.on_dependency_failure!r}: give one of "
                + ", ".join(repr(p) for p in POLICIES)
            )
        if job.pass_results is not None and job.pass_results not in PASSES:
            raise ConfigurationError(
                f"pass_results={job.pass_results!r}: give None or one of "
                + ", ".join(repr(p) for p in PASSES)
            )
        if not job.depends_on and not job.after:
            if job.pass_results is not None or job.on_dependency_failure == "failure":
                raise ConfigurationError(
                    f"job {i} of the batch ({job.task}) takes what its dependencies hand "
                    "it but has none"
                )
            continue
        if job.unique_key is not None:
            raise ConfigurationError(
                f"job {i} of the batch ({job.task}): a job that waits on others cannot "
                f"have a unique key ({job.unique_key!r})"
            )
        for dep in job.depends_on:
            if type(dep) is not int or dep <= 0:
                raise ConfigurationError(
                    f"depends_on: {dep!r} is not a job id (give Job handles or ids)"
                )
        for pos in job.after:
            if type(pos) is not int or not 0 <= pos < len(jobs) or pos == i:
                raise ConfigurationError(
                    f"job {i} of the batch ({job.task}) waits on position {pos!r}: give "
                    f"another job of the batch (0 to {len(jobs) - 1})"
                )
        if job.pass_results == "one" and len(set(job.after)) + len(set(job.depends_on)) != 1:
            raise ConfigurationError(
                f"job {i} of the batch ({job.task}) takes the result of its only "
                "dependency, but it has several"
            )
        graph[i] = job.after
    cycle = _cycle(graph)
    if cycle:
        names = " -> ".join(f"{p} ({jobs[p].task})" for p in cycle)
        raise ConfigurationError(f"the jobs' dependencies form a cycle: {names}")


def _cycle(graph: dict[int, tuple[int, ...]]) -> list[int]:
    """A cycle of ``graph`` (node -> the nodes it waits on) as a path that returns to its
    start, or [] (an iterative depth-first search: a chain of 10,000 steps is fine)."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for root in graph:
        if state.get(root):
            continue
        path = [root]
        stack = [iter(graph.get(root, ()))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            seen = state.get(nxt)
            if seen == 1:
                return [*path[path.index(nxt) :], nxt]
            if seen is None:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(graph.get(nxt, ())))
    return []


def _json(values: Iterable[Any]) -> str:
    return json.dumps(list(values))


def link(
    store: DepStore, conn: Any, jobs: Sequence[NewJob], ids: Sequence[JobId], now: Any
) -> set[str]:
    """Write the dependencies of a batch just inserted (``ids`` in batch order): block the
    jobs that wait, flag what they wait on, add the edges and waits, and apply at once
    what the finished dependencies say. Returns the queues of jobs released here."""
    waiting = [i for i, job in enumerate(jobs) if job.depends_on or job.after]
    if not waiting:
        return set()
    edges: list[tuple[JobId, JobId, int]] = []
    waits: list[tuple[JobId, int, str, str | None]] = []
    on: set[JobId] = set()
    given: set[JobId] = set()
    for i in waiting:
        job = jobs[i]
        deps = list(dict.fromkeys([ids[p] for p in job.after] + list(job.depends_on)))
        edges += [(ids[i], dep, n) for n, dep in enumerate(deps)]
        waits.append((ids[i], len(deps), job.on_dependency_failure, job.pass_results))
        on.update(deps)
        given.update(job.depends_on)
    marked = {row[0] for row in store._dep_query(conn, "dep_mark", {"ids": _json(sorted(on))})}
    missing = sorted(on - marked)
    finished: dict[JobId, str] = {}
    if missing:
        finished = dict(store._dep_query(conn, "dep_finished", {"ids": _json(missing)}).fetchall())
        for dep in missing:
            if dep not in finished:
                raise JobNotFound(dep)
    dependents = [ids[i] for i in waiting]
    store._dep_query(conn, "dep_block", {"ids": _json(dependents)})
    store._dep_query(conn, "dep_insert_edges", {"rows": _json(edges)})
    store._dep_query(conn, "dep_insert_waits", {"rows": _json(waits)})
    if finished:
        return settle(store, conn, finished, now, only=dependents)
    return set()


def settle(
    store: DepStore,
    conn: Any,
    finished: Mapping[JobId, str],
    now: Any,
    *,
    only: Sequence[JobId] | None = None,
) -> set[str]:
    """The jobs ``finished`` (now in the finished table, with how each ended) count for
    those waiting on them (with ``only``: for those jobs alone, as when they were just
    added): each success is a dependency met; a failure, loss or cancel applies the
    waiting job's policy. Jobs whose last dependency is met are released (pending, with
    the results they take); jobs canceled by a dependency cancel their own waiting jobs in
    turn. Returns the queues of the jobs released."""
    queues: set[str] = set()
    ended = dict(finished)
    frontier = list(ended)
    while frontier:
        if only is None:
            rows = store._dep_query(conn, "dep_waiting", {"ids": _json(frontier)}).fetchall()
        else:
            rows = store._dep_query(
                conn, "dep_waiting+only", {"ids": _json(frontier), "only": _json(only)}
            ).fetchall()
            only = None  # a cascade reaches every job waiting on those it cancels
        if not rows:
            return queues
        plans: dict[JobId, _Plan] = {}
        for job_id, dep, left, policy in rows:
            plan = plans.get(job_id)
            if plan is None:
                plan = plans[job_id] = _Plan(left, policy)
            plan.count(dep, ended[dep])
        wait_rows: list[tuple[JobId, int, JobId | None]] = []
        release: dict[JobId, str | None] = {}  # job -> its first argument, if known here
        cancel: list[tuple[JobId, str]] = []
        drop: list[JobId] = []
        for job_id, plan in plans.items():
            if plan.canceled_by is not None:
                wait_rows.append((job_id, plan.left, plan.canceled_by))
                cancel.append((job_id, _dependency_error(plan.canceled_by, plan.why)))
            elif plan.failed_by is not None:  # "failure": its failure came
                wait_rows.append((job_id, 0, None))
                release[job_id] = str(plan.failed_by)
            else:
                left = plan.left - plan.met
                wait_rows.append((job_id, left, None))
                if left <= 0:
                    if plan.policy == "failure":
                        drop.append(job_id)  # every dependency ended, none failed
                    else:
                        release[job_id] = None
        store._dep_query(conn, "dep_wait_set", {"rows": _json(wait_rows)})
        if release:
            queues |= _release(store, conn, release)
        if drop:
            dropped = [r[0] for r in store._dep_query(conn, "dep_drop", {"ids": _json(drop)})]
            forget(store, conn, dropped)
        frontier = []
        if cancel:
            params = {"rows": _json(cancel), "now": now}
            frontier = [r[0] for r in store._dep_query(conn, "dep_cancel", params)]
            if frontier:
                store._forget_moved(conn, frontier)
                ended.update((i, "canceled") for i in frontier)
    return queues


class _Plan:
    """What the ends of one waiting job's dependencies, read together, do to it."""

    __slots__ = ("canceled_by", "failed_by", "left", "met", "policy", "why")

    def __init__(self, left: int, policy: str) -> None:
        self.left = left
        self.policy = policy
        self.met = 0
        self.canceled_by: JobId | None = None
        self.why = ""
        self.failed_by: JobId | None = None

    def count(self, dep: JobId, status: str) -> None:
        if status == "succeeded":
            self.met += 1
        elif self.policy == "cancel":
            if self.canceled_by is None:
                self.canceled_by, self.why = dep, status
        elif self.policy == "failure" and status in ("failed", "lost"):
            if self.failed_by is None:
                self.failed_by = dep
        else:  # "run", or "failure" and a cancel: counts as ended
            self.met += 1


def _dependency_error(dep: JobId, status: str) -> str:
    return json.dumps(
        {
            "type": DEPENDENCY_FAILED,
            "message": f"canceled: its dependency, job {dep}, ended {status}",
            "traceback": "",
        }
    )


def _release(store: DepStore, conn: Any, release: dict[JobId, str | None]) -> set[str]:
    """Blocked jobs to pending; those that take results get them before their own
    arguments."""
    args: dict[JobId, str] = {}
    rows = store._dep_query(conn, "dep_pass", {"ids": _json(release)}).fetchall()
    taken: dict[JobId, tuple[str, str, list[str]]] = {}
    for job_id, how, own, _dep, status, result in rows:
        entry = taken.setdefault(job_id, (how, own, []))
        entry[2].append(result if status == "succeeded" and result is not None else "null")
    for job_id, (how, own, results) in taken.items():
        if how == "id":
            first = release[job_id]
            if first is None:
                continue  # released without a failure: nothing to hand it
        elif how == "one":
            first = results[0]
        else:
            first = "[" + ",".join(results) + "]"
        args[job_id] = _prepend(own, first)
    params = [(job_id, args.get(job_id)) for job_id in release]
    return {queue for _, queue in store._dep_query(conn, "dep_release", {"rows": _json(params)})}


def _prepend(args: str, first: str) -> str:
    """A JSON array's text with ``first`` (a JSON text) put in front."""
    rest = args.strip()[1:].lstrip()
    return "[" + first + ("]" if rest.startswith("]") else "," + rest)


def forget(store: DepStore, conn: Any, ids: Sequence[JobId]) -> None:
    """Jobs deleted for good: their dependency rows go too."""
    if ids:
        store._dep_query(conn, "dep_forget_edges", {"ids": _json(ids)})
        store._dep_query(conn, "dep_forget_waits", {"ids": _json(ids)})


def restore(store: DepStore, conn: Any, retried: Sequence[JobId], now: Any) -> set[str]:
    """Jobs retried by hand: they are flagged again where others depend on them, and
    the jobs they canceled (as dependencies) come back blocked, transitively, and only
    those; each then counts its dependencies again (one still failed cancels it anew).
    Returns the queues of jobs released."""
    if not retried:
        return set()
    store._dep_query(conn, "dep_remark", {"ids": _json(retried)})
    # A job canceled while it waited waits again: its dependencies count anew.
    back = [r[0] for r in store._dep_query(conn, "dep_unreleased", {"ids": _json(retried)})]
    if back:
        store._dep_query(conn, "dep_block", {"ids": _json(back)})
        store._dep_query(conn, "dep_recount", {"ids": _json(back)})
    level = list(retried)
    while level:
        found = [r[0] for r in store._dep_query(conn, "dep_canceled_by", {"ids": _json(level)})]
        if not found:
            break
        level = [r[0] for r in store._dep_query(conn, "dep_restore", {"ids": _json(found)})]
        if level:
            store._drop_finished(conn, level)
            store._dep_query(conn, "dep_recount", {"ids": _json(level)})
            store._dep_query(conn, "dep_remark", {"ids": _json(level)})
            back += level
    if not back:
        return set()
    deps = [r[0] for r in store._dep_query(conn, "dep_deps_of", {"ids": _json(back)})]
    if not deps:
        return set()
    ended = dict(store._dep_query(conn, "dep_finished", {"ids": _json(deps)}).fetchall())
    return settle(store, conn, ended, now, only=back) if ended else set()
