"""Tasks: registered functions with their options, and the ways to enqueue them."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypedDict, TypeVar

from tock import _validate as v
from tock.errors import ConfigurationError
from tock.jobs import Job, JobId, NewJob

if TYPE_CHECKING:
    from tock.store import ScheduleRecord
    from tock.workflows import Signature

__all__ = [
    "SNAPSHOT",
    "Context",
    "JobSink",
    "Task",
    "TaskCall",
    "TaskOptionArgs",
    "TaskOptions",
    "job_for_fire",
]

P = ParamSpec("P")
R = TypeVar("R")

Duration = float | int | timedelta


@dataclass
class Context:
    """What a task with ``takes_context=True`` receives as its first argument."""

    job_id: int
    attempt: int  #: 1 for the first attempt
    task: str
    queue: str
    canceled: threading.Event = field(default_factory=threading.Event)  #: set at timeout/shutdown
    #: set (before ``canceled``) when the attempt ran past its timeout: the worker
    #: records it as ``tock.JobTimeout`` whatever the task returns then
    timed_out: bool = False
    #: when the attempt's timeout passes, on ``time.monotonic()``'s clock (None: no timeout)
    deadline: float | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("tock.task"))
    worker_id: str | None = None  #: the worker running this attempt


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _whole(name: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigurationError(f"{name} must be a whole number >= 0, not {value!r}")
        return value

    return check


def _exception_classes(value: Any) -> tuple[type[BaseException], ...]:
    if isinstance(value, type):
        classes: tuple[Any, ...] = (value,)
    elif isinstance(value, Iterable) and not isinstance(value, str):
        classes = tuple(value)
    else:
        raise ConfigurationError(f"retry_on takes exception classes, not {value!r}")
    for c in classes:
        if not (isinstance(c, type) and issubclass(c, BaseException)):
            raise ConfigurationError(f"retry_on takes exception classes, not {c!r}")
    return classes


def _option(default: Any, check: Callable[[Any], Any], *, snapshot: bool = True, doc: str) -> Any:
    """One task option: its default, the check that turns what a user gives into the
    stored value (raising ConfigurationError), whether each job keeps it (the row
    snapshot), and one line of help."""
    return field(default=default, metadata={"check": check, "snapshot": snapshot, "doc": doc})


@dataclass(frozen=True)
class TaskOptions:
    """A task's options: the one definition of them (docs/design.md: options are defined
    once). ``@app.task`` takes them by these names (``TaskOptionArgs`` types them; a test
    holds the two alike), each job keeps a snapshot of those marked so, in ``NewJob``
    and ``JobRecord`` fields of the same names, and ``tock jobs show`` lists them."""

    queue: str = _option(
        "default", lambda value: v.check_name("queue", value), doc="the queue its jobs go to"
    )
    priority: int = _option(0, v.check_priority, doc="-100 to 100, higher first")
    retries: int = _option(0, _whole("retries"), doc="retries after the first attempt")
    retry_backoff: float = _option(
        1.0,
        lambda value: v.seconds("retry_backoff", value),
        doc="seconds before the first retry, doubling per retry",
    )
    retry_on: tuple[type[BaseException], ...] = _option(
        (Exception,), _exception_classes, doc="the errors that are retried"
    )
    timeout: float | None = _option(
        None,
        lambda value: None if value is None else v.seconds("timeout", value),
        doc="seconds an attempt may run",
    )
    at_most_once: bool = _option(False, bool, doc="never started again if its worker dies")
    takes_context: bool = _option(
        False, bool, snapshot=False, doc="the function takes a Context first"
    )
    max_rescues: int = _option(5, _whole("max_rescues"), doc="rescues after which the job fails")

    @classmethod
    def build(cls, **given: Any) -> TaskOptions:
        """The options from what a user gave, each checked where it enters."""
        return cls(**v.checked_options("task", cls, given))


class TaskOptionArgs(TypedDict, total=False):
    """The keyword arguments of ``@app.task`` (and ``@app.periodic``) for ``TaskOptions``,
    as users may give them: the same names (tests/unit/test_options.py holds them alike)."""

    queue: str
    priority: int
    retries: int
    retry_backoff: Duration
    retry_on: type[BaseException] | Iterable[type[BaseException]]
    timeout: Duration | None
    at_most_once: bool
    takes_context: bool
    max_rescues: int


#: the options each job keeps (docs/design.md: options snapshot), in definition order
SNAPSHOT: tuple[str, ...] = tuple(f.name for f in fields(TaskOptions) if f.metadata["snapshot"])


class JobSink(Protocol):
    """What a task enqueues through: the app (docs/design.md: the app is the one surface).
    A task builds and checks its jobs; the app writes them."""

    def insert_jobs(
        self, jobs: Sequence[NewJob], *, connection: object | None = None
    ) -> list[Job]: ...


@dataclass(frozen=True)
class _Overrides:
    run_after: float = 0.0
    run_at: datetime | None = None
    queue: str | None = None
    priority: int | None = None
    unique_key: str | None = None
    connection: object | None = None
    depends_on: tuple[JobId, ...] = ()
    on_dependency_failure: str = "cancel"


NO_OVERRIDES = _Overrides()  # a plain ``enqueue``: its job maker is built once per task
# The fields of a NewJob after (task, args, kwargs), in order: a job maker's options.
_OPTION_FIELDS = tuple(f.name for f in fields(NewJob)[3:])


class Task(Generic[P, R]):
    """A registered function. Call it to run it here; ``enqueue`` it to run it on a worker."""

    def __init__(self, app: JobSink, fn: Callable[P, R], name: str, options: TaskOptions) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self._signature = inspect.signature(fn)
        self._check_call = _call_checker(self._signature, skip_first=options.takes_context)
        self._retry_on_names = tuple(qualified_name(c) for c in options.retry_on)
        # (the options it was built with, the job maker of a plain enqueue)
        self._plain: tuple[TaskOptions, Callable[[Sequence[Any], Mapping[str, Any]], NewJob]]
        self._plain = (options, self._job_maker(NO_OVERRIDES))
        if options.takes_context and not self._signature.parameters:
            raise ConfigurationError(
                f"task {name!r} has takes_context=True but no parameter to receive the Context"
            )
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    # -- enqueue ---------------------------------------------------------------

    def using(
        self,
        *,
        run_after: Duration | datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        unique_key: str | None = None,
        connection: object | None = None,
        depends_on: Iterable[Job | JobId] | None = None,
        on_dependency_failure: str | None = None,
    ) -> TaskCall[P, R]:
        """Options for the jobs enqueued through the returned object.

        ``depends_on``: jobs (handles or ids) each job waits on: it is ``blocked`` until
        every one succeeded, then ``pending``. ``on_dependency_failure``: what it does
        when one ends failed, lost or canceled: ``"cancel"`` (the default: canceled,
        naming it) or ``"run"`` (it counts as met). docs/workflows.md."""
        o = _overrides(run_after, queue, priority, unique_key, connection)
        if depends_on is not None or on_dependency_failure is not None:
            o = _dependency_overrides(o, depends_on, on_dependency_failure)
        return TaskCall(self, o)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        return TaskCall(self, NO_OVERRIDES).enqueue(*args, **kwargs)

    def enqueue_many(self, items: Iterable[Sequence[Any] | Mapping[str, Any]]) -> list[Job]:
        """Enqueue one job per item, in one transaction: a tuple of positional arguments
        or a dict of keyword arguments."""
        return TaskCall(self, NO_OVERRIDES).enqueue_many(items)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        return await TaskCall(self, NO_OVERRIDES).aenqueue(*args, **kwargs)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A call for a workflow (``chain``, ``group``, ``chord``): it receives the
        previous step's result as its first argument, before ``args``."""
        return TaskCall(self, NO_OVERRIDES).s(*args, **kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """A call for a workflow that receives nothing from the steps before it."""
        return TaskCall(self, NO_OVERRIDES).si(*args, **kwargs)

    def _new_job(self, args: Sequence[Any], kwargs: Mapping[str, Any], o: _Overrides) -> NewJob:
        if o is NO_OVERRIDES:
            built_with, maker = self._plain
            if built_with is not self.options:  # options replaced since: build again
                maker = self._job_maker(o)
                self._plain = (self.options, maker)
            return maker(args, kwargs)
        return self._job_maker(o)(args, kwargs)

    def _job_template(self, o: _Overrides, args: str = "", kwargs: str = "") -> NewJob:
        """A job of this task with its options and ``o`` applied; ``args``/``kwargs`` are
        JSON texts already checked (a schedule's), or left for ``_job_maker`` to fill."""
        snapshot = {name: getattr(self.options, name) for name in SNAPSHOT}
        snapshot["retry_on"] = self._retry_on_names  # kept as the classes' names
        if o.queue:
            snapshot["queue"] = o.queue
        if o.priority is not None:
            snapshot["priority"] = o.priority
        return NewJob(
            task=self.name,
            args=args,
            kwargs=kwargs,
            **snapshot,
            unique_key=o.unique_key,
            run_at=o.run_at,
            run_after=o.run_after,
            depends_on=o.depends_on,
            on_dependency_failure=o.on_dependency_failure,
        )

    def _job_maker(self, o: _Overrides) -> Callable[[Sequence[Any], Mapping[str, Any]], NewJob]:
        """``_new_job`` with the options resolved once, for a whole batch: building each
        job from them positionally costs about half of naming its 14 fields every time."""
        template = self._job_template(o)
        # Every field after (task, args, kwargs), in NewJob's order.
        options = tuple(getattr(template, name) for name in _OPTION_FIELDS)
        name, check, to_json = self.name, self._check_call, v.to_json

        def new_job(args: Sequence[Any], kwargs: Mapping[str, Any]) -> NewJob:
            if not check(args, kwargs):
                self._bind(args, kwargs)  # raises the precise TypeError
            try:
                args_json = to_json(args, "positional arguments")
                kwargs_json = to_json(kwargs, "keyword arguments") if kwargs else "{}"
            except TypeError:
                self._name_bad_argument(self._bind(args, kwargs))
                raise
            return NewJob(name, args_json, kwargs_json, *options)

        return new_job

    def _bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> inspect.BoundArguments:
        try:
            if self.options.takes_context:
                return self._signature.bind(None, *args, **kwargs)
            return self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.name!r}: {exc}") from None

    def _name_bad_argument(self, bound: inspect.BoundArguments) -> None:
        names = list(bound.arguments)
        if self.options.takes_context:
            names = names[1:]
        for name in names:
            v.to_json(bound.arguments[name], f"task {self.name!r} argument {name!r}")


def _call_checker(
    signature: inspect.Signature, *, skip_first: bool
) -> Callable[[Sequence[Any], Mapping[str, Any]], bool]:
    """A fast yes for calls that fit a plain signature; ``False`` means "bind to know".

    ``inspect.Signature.bind`` costs several microseconds a call, most of bulk enqueue's
    budget; plain parameters (no ``*args``, ``**kwargs`` or positional-only ones) are
    checked here by counting and by names instead.
    """
    params = list(signature.parameters.values())[1 if skip_first else 0 :]
    plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
    names = [p.name for p in params]
    required = [i for i, p in enumerate(params) if p.default is inspect.Parameter.empty]
    n_required = len(required)
    contiguous = required == list(range(n_required))
    name_set = frozenset(names)

    def check(args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
        if not plain:
            return False
        n = len(args)
        if n > len(names):
            return False
        if not kwargs:
            return contiguous and n >= n_required
        if not name_set.issuperset(kwargs) or any(name in kwargs for name in names[:n]):
            return False
        return all(i < n or names[i] in kwargs for i in required)

    return check


def _overrides(
    run_after: Duration | datetime | None,
    queue: str | None,
    priority: int | None,
    unique_key: str | None,
    connection: object | None,
) -> _Overrides:
    o = NO_OVERRIDES
    if isinstance(run_after, datetime):
        if run_after.tzinfo is None:
            raise ConfigurationError(
                f"run_after={run_after!r} is a naive datetime: give it a time zone (e.g. UTC)"
            )
        o = replace(o, run_at=run_after)
    elif run_after is not None:
        o = replace(o, run_after=v.seconds("run_after", run_after, allow_zero=True))
    if queue is not None:
        o = replace(o, queue=v.check_name("queue", queue))
    if priority is not None:
        o = replace(o, priority=v.check_priority(priority))
    if unique_key is not None:
        if not isinstance(unique_key, str) or not unique_key or "\x00" in unique_key:
            raise ConfigurationError(f"unique_key must be a non-empty string, not {unique_key!r}")
        o = replace(o, unique_key=unique_key)
    if connection is not None:
        o = replace(o, connection=connection)
    return o


def _dependency_overrides(
    o: _Overrides, depends_on: Iterable[Job | JobId] | None, policy: str | None
) -> _Overrides:
    ids: list[JobId] = []
    if depends_on is not None:
        if isinstance(depends_on, (str, bytes, Job, int)) or not isinstance(depends_on, Iterable):
            raise ConfigurationError(
                f"depends_on must be a list of jobs (Job handles or ids), not {depends_on!r}"
            )
        for dep in depends_on:
            if isinstance(dep, Job):
                ids.append(dep.id)
            elif type(dep) is int and dep > 0:
                ids.append(dep)
            else:
                raise ConfigurationError(
                    f"depends_on: {dep!r} is not a job (give Job handles or job ids)"
                )
    if policy is not None and policy not in ("cancel", "run"):
        raise ConfigurationError(
            f"on_dependency_failure={policy!r}: give 'cancel' (the default) or 'run'"
        )
    if policy is not None and not ids:
        raise ConfigurationError("on_dependency_failure is given but depends_on is not")
    if ids and o.unique_key is not None:
        raise ConfigurationError("a job with depends_on cannot have a unique_key")
    return replace(
        o, depends_on=tuple(dict.fromkeys(ids)), on_dependency_failure=policy or "cancel"
    )


class TaskCall(Generic[P, R]):
    """A task with per-call options: ``task.using(queue="slow").enqueue(...)``."""

    def __init__(self, task: Task[P, R], overrides: _Overrides) -> None:
        self.task = task
        self._o = overrides

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        job = self.task._new_job(args, kwargs, self._o)
        (handle,) = self.task.app.insert_jobs([job], connection=self._o.connection)
        return handle

    def enqueue_many(self, items: Iterable[Sequence[Any] | Mapping[str, Any]]) -> list[Job]:
        new_job = self.task._job_maker(self._o)
        new_jobs = []
        for index, item in enumerate(items):
            # A plain tuple first: it is no Mapping, and isinstance of an ABC is slow.
            if type(item) is tuple:
                new_jobs.append(new_job(item, {}))
            elif isinstance(item, Mapping):
                new_jobs.append(new_job((), item))
            elif isinstance(item, (tuple, list)):
                new_jobs.append(new_job(item, {}))
            else:
                raise TypeError(
                    f"enqueue_many item {index} is a {type(item).__name__}: give a tuple of "
                    "positional arguments or a dict of keyword arguments"
                )
        return self.task.app.insert_jobs(new_jobs, connection=self._o.connection)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        import asyncio  # here: a worker without async tasks never loads it

        return await asyncio.to_thread(lambda: self.enqueue(*args, **kwargs))

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """``Task.s`` with these options."""
        from tock.workflows import Signature

        return Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """``Task.si`` with these options."""
        from tock.workflows import Signature

        return Signature(self, args, kwargs, immutable=True)


def job_for_fire(task: Task[Any, Any], record: ScheduleRecord, fire_at: datetime | None) -> NewJob:
    """The job of one fire: the task's options, the schedule's arguments, queue and
    priority; due at the fire time (so it runs before work enqueued after it), or now for
    a manual trigger (``fire_at`` None)."""
    overrides = _Overrides(queue=record.queue, priority=record.priority, run_at=fire_at)
    return task._job_template(overrides, record.args, record.kwargs)
