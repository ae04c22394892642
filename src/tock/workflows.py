"""Workflows: signatures of task calls, and the chains, groups and chords made of them.

How a workflow runs (docs/workflows.md says it in users' words):

- ``enqueue`` compiles the whole shape into one batch of jobs whose dependencies are
  positions in the batch (``NewJob.after``), and writes it, with its spec, in one
  transaction (``store.workflow_enqueue``): a workflow exists whole or not at all, and
  inside the caller's transaction through ``connection=``.
- Nothing here waits or polls to move a workflow on. The store releases a step in the
  transaction that records its last dependency succeeding, and hands it their results
  as its first argument (``NewJob.pass_results``): "one" after a single step, "list"
  after a group. A chord's callback is one job depending on every member (no
  ``chord_unlock`` task polling, no result backend).
- A failure follows the consumer's policy (``on_dependency_failure``): "cancel" (the
  default) cancels what follows, transitively; "run" hands None in place of the result.
  ``link_error`` is one more job depending on every step, with the policy "failure":
  the store releases it when a step fails for good, with that step's id, and deletes it
  when every step succeeded.
- The spec is JSON: the shape with positions into the workflow's job ids, so
  ``app.get_workflow(id)`` rebuilds the handle from the store alone.

Each step's call is checked against its task's signature where the workflow is built,
with its first argument left open when it receives one: a wrong call is a ``TypeError``
naming the task before anything is written (docs/design.md: Names and input).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from tock import _validate as v
from tock.errors import ConfigurationError, JobCanceled
from tock.jobs import Job, JobSource, JobStatus, NewJob
from tock.tasks import NO_OVERRIDES, Task, TaskCall, _Overrides

if TYPE_CHECKING:
    from tock.store import WorkflowRecord

__all__ = ["Signature", "Workflow", "WorkflowSink", "chain", "chord", "group"]

#: the policies a chain or chord takes for a step whose dependency failed
POLICIES = ("cancel", "run")

#: the version of the spec this module writes (and the only one it reads)
SPEC_VERSION = 1

# What a node hands the step after it: the position of its one job, or a list of those
# of a group's members (each itself a position or a list).
_Out: TypeAlias = "int | list[_Out]"


@runtime_checkable
class WorkflowSink(JobSource, Protocol):
    """What a workflow is written through and read from: the app."""

    def cancel_job_ids(self, job_ids: Iterable[int]) -> list[int]: ...
    def insert_workflow(
        self, jobs: Sequence[NewJob], spec: str, *, connection: object | None = None
    ) -> tuple[int, list[Job]]: ...


class _Open:
    """The first argument a step receives, while its call is checked."""

    def __repr__(self) -> str:
        return "<the previous result>"


_OPEN = _Open()


class _Node:
    """A part of a workflow: a signature, chain, group or chord."""

    def __or__(self, other: object) -> chain:
        """``a.s() | b.s()`` is ``chain(a.s(), b.s())``, as in Celery's canvas."""
        if not isinstance(other, _Node):
            return NotImplemented
        return chain(self, other)

    def enqueue(
        self, *, connection: object | None = None, link_error: Signature | None = None
    ) -> Workflow:
        """Write the whole workflow in one transaction (the caller's, with
        ``connection=``) and return its handle. ``link_error``: a signature run once if
        a step fails for good, with the failed job's id first (unless it is ``.si()``);
        it is dropped when every step succeeds."""
        build = _build(self, link_error)
        app = build.app
        if connection is None:
            connection = build.connection
        workflow_id, jobs = app.insert_workflow(build.jobs, build.spec, connection=connection)
        return Workflow(workflow_id, jobs, json.loads(build.spec), app)

    async def aenqueue(
        self, *, connection: object | None = None, link_error: Signature | None = None
    ) -> Workflow:
        return await asyncio.to_thread(
            lambda: self.enqueue(connection=connection, link_error=link_error)
        )

    # -- building (overridden) ---------------------------------------------------------

    def _check_receiving(self) -> None:
        """Check the calls of the steps that receive what comes before this node."""
        raise NotImplementedError

    def _signatures(self) -> Iterable[Signature]:
        raise NotImplementedError


class Signature(_Node):
    """One call of a task in a workflow: ``task.s(*args, **kwargs)`` receives the
    previous step's result as its first argument; ``task.si(...)`` (immutable) receives
    nothing. ``task.using(queue=...).s(...)`` keeps the per-call options. Enqueued
    alone, it is a workflow of one job."""

    def __init__(
        self,
        task: Task[Any, Any] | TaskCall[Any, Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        immutable: bool = False,
    ) -> None:
        overrides = NO_OVERRIDES
        if isinstance(task, TaskCall):
            overrides = task._o
            task = task.task
        if not isinstance(task, Task):
            raise TypeError(
                f"a Signature takes a registered task (@app.task), not {task!r}: "
                "write task.s(...) or task.si(...)"
            )
        registry = getattr(task.app, "_tasks", None)
        if registry is not None and registry.get(task.name) is not task:
            raise ConfigurationError(f"task {task.name!r} is not registered with its app")
        if overrides.unique_key is not None:
            raise ConfigurationError(
                f"task {task.name!r}: a workflow's step takes no unique_key (a live job "
                "holding the key would stand in for a step the others wait on)"
            )
        if overrides.depends_on:
            raise ConfigurationError(
                f"task {task.name!r}: a workflow's step takes no depends_on (its place in "
                "the chain, group or chord says what it waits on)"
            )
        if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
            raise TypeError(f"task {task.name!r}: args must be a tuple or list, not {args!r}")
        self.task = task
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.immutable = bool(immutable)
        self._o: _Overrides = overrides
        # JSON now, as a plain enqueue refuses it (the first argument is not known yet).
        try:
            self._args_json = v.to_json(self.args, f"task {task.name!r} positional arguments")
            self._kwargs_json = (
                v.to_json(self.kwargs, f"task {task.name!r} keyword arguments")
                if self.kwargs
                else "{}"
            )
        except TypeError:
            self._name_bad_argument()
            raise

    def _name_bad_argument(self) -> None:
        """Raise the TypeError of the first argument that is not JSON, by its name in
        the function (as ``enqueue`` names it), if the call binds."""
        lead: tuple[Any, ...] = () if self.immutable else (_OPEN,)
        if self.task.options.takes_context:
            lead = (None, *lead)
        try:
            bound = self.task._signature.bind_partial(*lead, *self.args, **self.kwargs)
        except TypeError:
            return  # the call does not fit: named by position
        for index, (name, value) in enumerate(bound.arguments.items()):
            if index >= len(lead) or name in self.kwargs:
                v.to_json(value, f"task {self.task.name!r} argument {name!r}")

    def __repr__(self) -> str:
        call = [repr(a) for a in self.args] + [f"{k}={val!r}" for k, val in self.kwargs.items()]
        return f"{self.task.name}.{'si' if self.immutable else 's'}({', '.join(call)})"

    def check(self, *, receives: bool) -> None:
        """Raise ``TypeError`` naming the task unless its call fits the function, with a
        first argument left open when ``receives`` (and the signature is mutable)."""
        if receives and not self.immutable:
            try:
                self.task._bind((_OPEN, *self.args), self.kwargs)
            except TypeError as exc:
                raise TypeError(
                    f"{exc} (as a workflow step it receives the previous result as its "
                    "first argument: use .si() for a step that takes none)"
                ) from None
        else:
            self.task._bind(self.args, self.kwargs)

    def _check_receiving(self) -> None:
        self.check(receives=True)

    def _signatures(self) -> Iterable[Signature]:
        yield self


def _nodes(what: str, items: tuple[Any, ...]) -> list[_Node]:
    """The nodes given to ``chain``/``group``: as arguments, or one iterable of them."""
    if len(items) == 1 and not isinstance(items[0], _Node):
        only = items[0]
        if isinstance(only, (str, bytes, Mapping)) or not isinstance(only, Iterable):
            hint = " (a task: write task.s(...))" if isinstance(only, (Task, TaskCall)) else ""
            raise TypeError(
                f"{what} takes signatures (task.s(...)), chains, groups or chords, "
                f"not {only!r}{hint}"
            )
        items = tuple(only)
    nodes = list(items)
    for index, node in enumerate(nodes):
        if not isinstance(node, _Node):
            hint = " (a task: write task.s(...))" if isinstance(node, (Task, TaskCall)) else ""
            raise TypeError(
                f"{what} item {index} is {node!r}{hint}: it takes signatures "
                "(task.s(...)), chains, groups or chords"
            )
    if not nodes:
        raise ValueError(f"an empty {what}: give it at least one step")
    return nodes


def _policy(value: object) -> str:
    if value not in POLICIES:
        raise ConfigurationError(
            f"on_dependency_failure must be one of {', '.join(map(repr, POLICIES))}, not {value!r}"
        )
    return str(value)


class chain(_Node):  # lower case, as in Celery's canvas
    """Steps one after the other, each result the first argument of the next step
    (unless it is ``.si()``). A chain in a chain is flattened; a group followed by a step
    is a chord. ``on_dependency_failure="run"``: a step runs even if the one before it
    failed, receiving None (default "cancel": what follows is canceled)."""

    def __init__(self, *steps: Any, on_dependency_failure: str = "cancel") -> None:
        self.on_dependency_failure = _policy(on_dependency_failure)
        flat: list[_Node] = []
        for node in _nodes("chain", steps):
            if isinstance(node, chain) and node.on_dependency_failure == self.on_dependency_failure:
                flat.extend(node.steps)
            else:
                flat.append(node)
        self.steps: list[_Node] = flat
        for node in flat[1:]:
            node._check_receiving()

    def __repr__(self) -> str:
        return f"chain({', '.join(map(repr, self.steps))})"

    def _check_receiving(self) -> None:
        self.steps[0]._check_receiving()

    def _signatures(self) -> Iterable[Signature]:
        for node in self.steps:
            yield from node._signatures()


class group(_Node):  # lower case, as in Celery's canvas
    """Steps that run side by side; its result is the list of theirs, in order. Each
    member receives what comes before the group (unless it is ``.si()``). A group in a
    group is flattened."""

    def __init__(self, *members: Any) -> None:
        flat: list[_Node] = []
        for node in _nodes("group", members):
            flat.extend(node.members if isinstance(node, group) else [node])
        self.members: list[_Node] = flat

    def __repr__(self) -> str:
        return f"group({', '.join(map(repr, self.members))})"

    def _check_receiving(self) -> None:
        for node in self.members:
            node._check_receiving()

    def _signatures(self) -> Iterable[Signature]:
        for node in self.members:
            yield from node._signatures()


class chord(_Node):  # lower case, as in Celery's canvas
    """A group (the header) and a callback that receives the list of the header's
    results, in the header's order, once every member finished. The same as
    ``chain(header, callback)``. ``on_dependency_failure="run"``: a member that failed
    contributes None (default "cancel": the callback is canceled)."""

    def __init__(
        self, header: Any, callback: _Node | None = None, *, on_dependency_failure: str = "cancel"
    ) -> None:
        self.on_dependency_failure = _policy(on_dependency_failure)
        if not isinstance(header, group):
            header = group(header)  # a list of steps, or one step
        if callback is None:
            raise TypeError("a chord needs a callback: chord(group(...), callback.s())")
        if not isinstance(callback, _Node):
            raise TypeError(
                f"a chord's callback is a signature (task.s(...)), chain, group or chord, "
                f"not {callback!r}"
            )
        self.header: group = header
        self.callback = callback
        callback._check_receiving()

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.callback!r})"

    def _check_receiving(self) -> None:
        self.header._check_receiving()

    def _signatures(self) -> Iterable[Signature]:
        yield from self.header._signatures()
        yield from self.callback._signatures()


# -- compiling a shape into one batch of jobs -------------------------------------------


@dataclass
class _Build:
    app: WorkflowSink
    jobs: list[NewJob]
    spec: str
    connection: object | None


@dataclass(frozen=True)
class _Input:
    """What a node receives: the output of the node before it, under a policy."""

    out: _Out
    policy: str


def _flatten(out: _Out) -> list[int]:
    if isinstance(out, int):
        return [out]
    return [p for part in out for p in _flatten(part)]


def _build(root: _Node, link_error: object = None) -> _Build:
    """The jobs of a workflow, its spec, and the app and connection to write them with;
    every call checked, nothing written."""
    if not isinstance(root, _Node):  # pragma: no cover - _Node.enqueue is the one caller
        raise TypeError(f"not a workflow: {root!r}")
    if link_error is not None and not isinstance(link_error, Signature):
        raise TypeError(
            f"link_error takes a signature (handler.s() or handler.si()), not {link_error!r}"
        )
    signatures = list(root._signatures())
    if link_error is not None:
        signatures.append(link_error)
    apps = {id(s.task.app): s.task.app for s in signatures}
    if len(apps) > 1:
        raise ConfigurationError("a workflow's tasks must all be registered with one app")
    (app,) = apps.values()
    if not isinstance(app, WorkflowSink):
        raise ConfigurationError(f"{app!r} cannot write workflows (it has no insert_workflow)")
    connections = {id(s._o.connection): s._o.connection for s in signatures}
    connections.pop(id(None), None)
    if len(connections) > 1:
        raise ConfigurationError("a workflow's steps name different connections: give one")

    jobs: list[NewJob] = []
    shape, _ = _compile(root, None, jobs)
    errback: int | None = None
    if link_error is not None:
        link_error.check(receives=True)
        errback = len(jobs)
        jobs.append(
            _job(
                link_error,
                after=tuple(range(errback)),
                policy="failure",
                passes=None if link_error.immutable else "id",
            )
        )
    spec = json.dumps(
        {"version": SPEC_VERSION, "shape": shape, "link_error": errback}, separators=(",", ":")
    )
    connection = next(iter(connections.values()), None)
    return _Build(app, jobs, spec, connection)


def _job(sig: Signature, *, after: tuple[int, ...], policy: str, passes: str | None) -> NewJob:
    template = sig.task._job_template(sig._o, sig._args_json, sig._kwargs_json)
    return replace(template, after=after, on_dependency_failure=policy, pass_results=passes)


def _compile(node: _Node, given: _Input | None, jobs: list[NewJob]) -> tuple[Any, _Out]:
    """Append the jobs of ``node`` to ``jobs``; return its spec and its output."""
    if isinstance(node, Signature):
        if given is None:
            node.check(receives=False)
            job = _job(node, after=(), policy="cancel", passes=None)
        else:
            node.check(receives=True)
            passes: str | None = None
            if not node.immutable:
                passes = _passes(given.out, node)
            job = _job(node, after=tuple(_flatten(given.out)), policy=given.policy, passes=passes)
        jobs.append(job)
        return len(jobs) - 1, len(jobs) - 1
    if isinstance(node, chain):
        shapes, current = [], given
        for step in node.steps:
            shape, out = _compile(step, current, jobs)
            shapes.append(shape)
            current = _Input(out, node.on_dependency_failure)
        assert current is not None
        return {"chain": shapes}, current.out
    if isinstance(node, group):
        parts = [_compile(member, given, jobs) for member in node.members]
        return {"group": [s for s, _ in parts]}, [o for _, o in parts]
    if isinstance(node, chord):
        header, out = _compile(node.header, given, jobs)
        body, body_out = _compile(node.callback, _Input(out, node.on_dependency_failure), jobs)
        return {"chord": [header, body]}, body_out
    raise TypeError(f"not a workflow node: {node!r}")  # pragma: no cover


def _passes(out: _Out, receiver: Signature) -> str:
    if isinstance(out, int):
        return "one"
    if all(isinstance(o, int) for o in out):
        return "list"
    raise TypeError(
        f"task {receiver.task.name!r} would receive a list of lists (a group member that "
        "ends in a group): end that member with a step that gathers its group, or make "
        f"{receiver.task.name!r} .si()"
    )


# -- the handle ---------------------------------------------------------------------------


class Workflow:
    """A handle on a workflow in the store: ``id``, ``jobs`` (every job, in the order
    of the shape, the ``link_error`` job last), and ``status()``, ``result()``,
    ``cancel()``. ``app.get_workflow(id)`` gives the same handle again."""

    def __init__(self, workflow_id: int, jobs: Sequence[Job], spec: Any, source: WorkflowSink):
        shape, errback = _check_spec(spec, len(jobs))
        self.id = workflow_id
        self.jobs = list(jobs)
        self._shape = shape
        self._source = source
        #: the ``link_error`` job (None without one); the store deletes it once every
        #: step succeeded
        self.link_error: Job | None = None if errback is None else self.jobs[errback]

    @classmethod
    def from_record(cls, record: WorkflowRecord, source: WorkflowSink) -> Workflow:
        """The handle of a stored workflow (``app.get_workflow``)."""
        try:
            spec = json.loads(record.spec)
        except ValueError:
            raise ConfigurationError(f"workflow {record.id}: its spec is not JSON") from None
        return cls(record.id, [Job(i, source) for i in record.job_ids], spec, source)

    def __repr__(self) -> str:
        return f"<Workflow {self.id}: {len(self.jobs)} jobs>"

    @property
    def steps(self) -> list[Job]:
        """The jobs of its steps (every job but the ``link_error`` one)."""
        return [j for j in self.jobs if j is not self.link_error]

    def shape(self) -> Any:
        """The shape with each step's job: a Job for a step, a list for a chain or a
        group (a chain in a group is a list in the list), ``[header, callback]`` for a
        chord (the chain it is)."""
        return _map(self._shape, lambda p: self.jobs[p])

    def status(self) -> Any:
        """Each step's status, read now, in the workflow's shape: a JobStatus for a
        step, a list for a chain or group, ``[[member, ...], callback]`` for a chord.
        ``chain(a.s(), group(b.s(), c.s()), d.s()).enqueue().status()`` is, for example,
        ``["succeeded", ["running", "pending"], "blocked"]``."""
        return _map(self._shape, lambda p: self.jobs[p].refresh().status)

    def result(self, timeout: float | None = None) -> Any:
        """Wait until the workflow finishes and return its result: a step's, the last
        step's for a chain, the list of its members' for a group, the callback's for a
        chord. Raises as ``Job.result`` does: ``JobFailed``, ``JobLost``,
        ``JobCanceled`` (the failure that canceled the awaited step, when there is one),
        ``TimeoutError`` once ``timeout`` seconds passed (nothing is touched)."""
        clock = self._source.clock
        deadline = None if timeout is None else clock.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - clock.monotonic())

        try:
            return _result(self._last(self._shape), self.jobs, left)
        except JobCanceled:
            # A step canceled because one before it failed: the failure is the news.
            for job in self.steps:
                if job.refresh().status in (JobStatus.FAILED, JobStatus.LOST):
                    job.result(timeout=0)  # raises JobFailed or JobLost
            raise

    async def aresult(self, timeout: float | None = None) -> Any:
        return await asyncio.to_thread(self.result, timeout)

    def cancel(self) -> int:
        """Cancel every job of it still pending or blocked (running ones finish: stop
        them with ``app.stop_job``), the ``link_error`` job too; returns how many were
        canceled."""
        ids = [j.id for j in reversed(self.jobs)]  # dependents before what they wait on
        return len(set(self._source.cancel_job_ids(ids)) & set(ids))

    @staticmethod
    def _last(shape: Any) -> Any:
        """The part whose result is the workflow's."""
        while isinstance(shape, dict):
            if "chain" in shape:
                shape = shape["chain"][-1]
            elif "chord" in shape:
                shape = shape["chord"][1]
            else:
                return shape
        return shape


def _map(shape: Any, leaf: Callable[[int], Any]) -> Any:
    if isinstance(shape, int):
        return leaf(shape)
    if "chain" in shape:
        return [_map(s, leaf) for s in shape["chain"]]
    if "group" in shape:
        return [_map(s, leaf) for s in shape["group"]]
    header, body = shape["chord"]
    return [_map(header, leaf), _map(body, leaf)]


def _result(shape: Any, jobs: list[Job], left: Callable[[], float | None]) -> Any:
    if isinstance(shape, int):
        return jobs[shape].result(timeout=left())
    if "chain" in shape:
        return _result(shape["chain"][-1], jobs, left)
    if "chord" in shape:
        return _result(shape["chord"][1], jobs, left)
    return [_result(s, jobs, left) for s in shape["group"]]


def _check_spec(spec: Any, n_jobs: int) -> tuple[Any, int | None]:
    """The shape and the link_error position of a spec, checked against the number of
    jobs (a spec is read back from the store: refuse one this module did not write)."""
    if not isinstance(spec, dict) or spec.get("version") != SPEC_VERSION:
        raise ConfigurationError(f"not a workflow spec of version {SPEC_VERSION}: {spec!r}")
    seen: list[int] = []

    def walk(node: Any) -> None:
        if isinstance(node, int) and not isinstance(node, bool):
            seen.append(node)
            return
        if isinstance(node, dict) and len(node) == 1:
            ((kind, parts),) = node.items()
            if (
                kind in ("chain", "group", "chord")
                and isinstance(parts, list)
                and parts
                and (kind != "chord" or len(parts) == 2)
            ):
                for part in parts:
                    walk(part)
                return
        raise ConfigurationError(f"not a workflow shape: {node!r}")

    walk(spec.get("shape"))
    errback = spec.get("link_error")
    if errback is not None:
        seen.append(errback)
    if sorted(seen) != list(range(n_jobs)):
        raise ConfigurationError(f"a workflow spec whose positions do not match its {n_jobs} jobs")
    return spec["shape"], errback
