"""Tock as the backend of Django's tasks framework (docs/django.md).

``TASKS = {"default": {"BACKEND": "tock.contrib.django.TockBackend"}}`` with Django 6.0+
(``django.tasks``) or the ``django-tasks`` backport (Django 5.2). A Django task becomes a
Tock task named by its module path, registered when its module is imported (the
Django app imports each installed app's ``tasks.py``): a worker runs only those, never a
path read from the database. ``enqueue`` writes a Tock job on Django's connection (in
the caller's transaction, if one is open); ``get_result`` reads the job back as a
``TaskResult``. What Tock adds to the framework: retries with backoff
(``max_attempts``), timeouts, unique keys, at-most-once, rescue of tasks whose worker
died, and schedules (``app.schedule(..., task=<a Django task>)``).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections
from django.utils import timezone

from tock import _validate as v
from tock.contrib.django.conf import DjangoTock, get_app
from tock.errors import ConfigurationError, JobNotFound, JobTimeout
from tock.jobs import JobRecord, JobStatus
from tock.tasks import Context, TaskOptions
from tock.tasks import Task as TockTaskHandle
from tock.worker.completer import RETRY_DELAY_ATTR

try:  # Django 6.0 and later
    from django.tasks import task_backends
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import (
        DEFAULT_TASK_BACKEND_ALIAS,
        DEFAULT_TASK_QUEUE_NAME,
        Task,
        TaskContext,
        TaskError,
        TaskResult,
        TaskResultStatus,
    )
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
except ImportError:  # the django-tasks backport (Django 5.2)
    from django_tasks import task_backends
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import (
        DEFAULT_TASK_BACKEND_ALIAS,
        DEFAULT_TASK_QUEUE_NAME,
        Task,
        TaskContext,
        TaskError,
        TaskResult,
        TaskResultStatus,
    )
    from django_tasks.exceptions import (
        InvalidTaskError as InvalidTask,
    )
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import (
        task_enqueued,
        task_finished,
        task_started,
    )

__all__ = ["TockBackend", "TockTask", "task"]

#: Tock's options of a Django task, and the ``OPTIONS`` key of each default
OPTION_NAMES = ("max_attempts", "backoff", "timeout", "unique_key", "at_most_once")

#: the worker id shown for an attempt whose worker died before it could say (a rescued
#: attempt: the rescuer returns the job to pending without naming the worker)
UNKNOWN_WORKER = "unknown (worker died)"

Backoff = float | timedelta | Callable[[BaseException, Any], float]


@dataclass(frozen=True, slots=True, kw_only=True)
class TockTask(Task):  # type: ignore[misc]
    """A Django task with Tock's options; ``None`` takes the backend's ``OPTIONS``
    default. ``max_attempts`` counts the first attempt (``retries + 1``); ``backoff`` is
    the seconds before the first retry, doubling for each next one, or a callable of
    the exception and the ``TaskResult`` returning the seconds; ``unique_key`` is a
    string or a callable of the task's arguments returning one."""

    max_attempts: int | None = None
    backoff: Backoff | None = None
    timeout: float | timedelta | None = None
    unique_key: str | Callable[..., str] | None = None
    at_most_once: bool | None = None


def task(
    function: Callable[..., Any] | None = None,
    *,
    priority: int = 0,  # the framework's default
    queue_name: str = DEFAULT_TASK_QUEUE_NAME,
    backend: str = DEFAULT_TASK_BACKEND_ALIAS,
    takes_context: bool = False,
    max_attempts: int | None = None,
    backoff: Backoff | None = None,
    timeout: float | timedelta | None = None,
    unique_key: str | Callable[..., str] | None = None,
    at_most_once: bool | None = None,
) -> Any:
    """``django.tasks.task`` with Tock's options (``TockTask``): a drop-in on any
    Django version the framework runs on."""

    def wrapper(f: Callable[..., Any]) -> TockTask:
        if not isinstance(task_backends[backend], TockBackend):
            raise ImproperlyConfigured(
                f"tock.contrib.django.task: TASKS[{backend!r}] is not a TockBackend"
            )
        return TockTask(
            func=f,
            priority=priority,
            queue_name=queue_name,
            backend=backend,
            takes_context=takes_context,
            run_after=None,  # a field without a default on Django 6.0
            max_attempts=max_attempts,
            backoff=backoff,
            timeout=timeout,
            unique_key=unique_key,
            at_most_once=at_most_once,
        )

    return wrapper(function) if function is not None else wrapper


class TockBackend(BaseTaskBackend):  # type: ignore[misc]
    """Django's tasks framework on Tock: jobs in the project's database, run by
    ``manage.py tock worker``."""

    task_class = TockTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        for queue in self.queues:
            try:
                v.check_name("queue", queue)
            except ConfigurationError as exc:
                raise ImproperlyConfigured(f"TASKS[{alias!r}]['QUEUES']: {exc}") from None
        options = dict(self.options)
        unknown = set(options) - set(OPTION_NAMES)
        if unknown:
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]['OPTIONS'] has unknown key(s) "
                f"{', '.join(sorted(map(str, unknown)))}; it takes {', '.join(OPTION_NAMES)}"
            )
        try:
            self.defaults = _options(options, f"TASKS[{alias!r}]['OPTIONS']")
        except ConfigurationError as exc:
            raise ImproperlyConfigured(str(exc)) from None

    @property
    def app(self) -> DjangoTock:
        return get_app()

    # -- the framework's interface ---------------------------------------------------

    def validate_task(self, task: Any) -> None:
        super().validate_task(task)
        try:
            v.check_name("task", task.module_path)
            self._register(task)
        except ConfigurationError as exc:
            raise InvalidTask(str(exc)) from None

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        self.validate_task(task)
        handle = self._register(task)
        run_after = task.run_after
        if run_after is not None:
            if timezone.is_naive(run_after):  # USE_TZ = False: the project's time zone
                run_after = timezone.make_aware(run_after)
            run_after = run_after.astimezone(UTC)
        key = _option(task, "unique_key", None)
        if callable(key):
            key = key(*args, **kwargs)
        job = handle.using(
            run_after=run_after,
            queue=task.queue_name,
            priority=task.priority,
            unique_key=key,
        ).enqueue(*args, **kwargs)
        result = TaskResult(
            task=task,
            id=str(job.id),
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> Any:
        try:
            job_id = int(result_id)
        except (TypeError, ValueError):
            raise TaskResultDoesNotExist(result_id) from None
        try:
            record = self.app.job_record(job_id)
        except JobNotFound:
            raise TaskResultDoesNotExist(result_id) from None
        found = KNOWN.get(record.task)
        if found is None:
            raise TaskResultDoesNotExist(
                f"{result_id}: job {job_id} runs {record.task!r}, not a Django task "
                "this process knows"
            )
        return task_result(found, record, self.alias)

    def check(self, **kwargs: Any) -> list[Any]:
        from django.apps import apps
        from django.core import checks

        messages = list(super().check(**kwargs))
        if not apps.is_installed("tock.contrib.django"):
            messages.append(
                checks.Error(
                    "TockBackend needs 'tock.contrib.django' in INSTALLED_APPS "
                    "(its migrations create Tock's tables; it finds the tasks modules)",
                    id="tock.E001",
                )
            )
        return messages

    # -- Django tasks as Tock tasks -------------------------------------------------

    def _register(self, task: Any) -> TockTaskHandle[Any, Any]:
        """The Tock task that runs ``task`` in the project's app (registered there on
        first sight, by module path)."""
        KNOWN.setdefault(task.module_path, task)
        return register(self.app, task)


#: every Django task of a TockBackend this process has seen, by module path: the
#: modules imported (installed apps' tasks.py) decide what a worker runs
KNOWN: dict[str, Any] = {}


def register(app: DjangoTock, task: Any) -> TockTaskHandle[Any, Any]:
    """The Tock task of ``app`` that runs the Django task ``task``."""
    name = task.module_path
    found = app._django_tasks.get(name)
    if found is not None:
        return found[1]
    backend = task.get_backend()
    given = {k: _option(task, k, None) for k in OPTION_NAMES}
    options = {**backend.defaults, **_options(given, f"task {name!r}")}
    handle = app.task(
        name=name,
        takes_context=True,
        retries=options["max_attempts"] - 1,
        retry_backoff=options["backoff"] if not callable(options["backoff"]) else 1.0,
        timeout=options["timeout"],
        at_most_once=options["at_most_once"],
    )(_runner(task, options["backoff"], options["max_attempts"]))
    app._django_tasks[name] = (task, handle)
    return handle


def register_known(app: DjangoTock) -> None:
    """Register with ``app`` every Django task this process has seen (a worker's app
    made after the tasks modules were imported)."""
    for task in list(KNOWN.values()):
        register(app, task)


def _option(task: Any, name: str, default: Any) -> Any:
    return getattr(task, name, default) if isinstance(task, TockTask) else default


def _options(given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Tock's options of a Django task, checked; keys with ``None`` are left out, and
    the backend's defaults (``where`` is the backend's OPTIONS) are all filled in."""
    out: dict[str, Any] = {}
    if given.get("max_attempts") is not None:
        n = given["max_attempts"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigurationError(f"{where}: max_attempts must be a whole number >= 1")
        out["max_attempts"] = n
    if given.get("backoff") is not None:
        b = given["backoff"]
        out["backoff"] = b if callable(b) else v.seconds(f"{where}: backoff", b)
    if given.get("timeout") is not None:
        out["timeout"] = v.seconds(f"{where}: timeout", given["timeout"])
    if given.get("unique_key") is not None:
        key = given["unique_key"]
        if not callable(key) and (not isinstance(key, str) or not key):
            raise ConfigurationError(
                f"{where}: unique_key must be a non-empty string or a callable"
            )
    if given.get("at_most_once") is not None:
        if not isinstance(given["at_most_once"], bool):
            raise ConfigurationError(f"{where}: at_most_once must be True or False")
        out["at_most_once"] = given["at_most_once"]
    if where.startswith("TASKS["):
        if given.get("unique_key") is not None:
            raise ConfigurationError(f"{where}: unique_key is an option of a task, not a default")
        defaults = TaskOptions()
        out.setdefault("max_attempts", defaults.retries + 1)
        out.setdefault("backoff", defaults.retry_backoff)
        out.setdefault("timeout", defaults.timeout)
        out.setdefault("at_most_once", defaults.at_most_once)
    return out


def _runner(task: Any, backoff: Any, max_attempts: int) -> Callable[..., Any]:
    """The function a Tock worker runs for a Django task: Django's request cycle for
    its connections, the framework's signals and context, and a callable backoff."""
    params = list(inspect.signature(task.func).parameters.values())
    if task.takes_context:
        params = params[1:]
    signature = inspect.Signature(
        [inspect.Parameter("tock_context", inspect.Parameter.POSITIONAL_ONLY), *params]
    )
    sender = type(task.get_backend())

    def begin(ctx: Context) -> tuple[Any, float | None]:
        record = get_app().job_record(ctx.job_id)
        # This attempt's start may not be recorded yet (a worker records starts in
        # batches): the context says which attempt it is, and whose.
        record.status, record.attempts = JobStatus.RUNNING, ctx.attempt
        record.worker_id = ctx.worker_id
        result = task_result(task, record, task.backend)
        task_started.send(sender, task_result=result)
        return result, record.timeout

    def failed(ctx: Context, result: Any, exc: BaseException) -> None:
        retried = isinstance(exc, Exception) and ctx.attempt < max_attempts
        object.__setattr__(
            result, "status", TaskResultStatus.READY if retried else TaskResultStatus.FAILED
        )
        if not retried:
            object.__setattr__(result, "finished_at", timezone.now())
        result.errors.append(_error_of(exc))
        if retried and callable(backoff):
            delay = backoff(exc, result)
            if isinstance(delay, timedelta):
                delay = delay.total_seconds()
            setattr(exc, RETRY_DELAY_ATTR, delay)
        task_finished.send(sender, task_result=result)

    def succeeded(ctx: Context, result: Any, value: Any, timeout: float | None) -> None:
        if ctx.timed_out:  # returned after its deadline: the worker records a timeout
            failed(ctx, result, _timeout(timeout))
            return
        object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
        object.__setattr__(result, "finished_at", timezone.now())
        object.__setattr__(result, "_return_value", value)
        task_finished.send(sender, task_result=result)

    if inspect.iscoroutinefunction(task.func):

        async def run_async(ctx: Context, *args: Any, **kwargs: Any) -> Any:
            result, timeout = await asyncio.to_thread(begin, ctx)
            call = (TaskContext(task_result=result), *args) if task.takes_context else args
            try:
                value = await task.func(*call, **kwargs)
            except asyncio.CancelledError as exc:
                # Cancelled at the deadline (the worker records tock.JobTimeout), or by
                # a hard stop, whose attempt the store settles: no signal then.
                if ctx.deadline is not None and time.monotonic() >= ctx.deadline:
                    failed(ctx, result, _timeout(timeout))
                raise exc
            except BaseException as exc:
                failed(ctx, result, exc)
                raise
            succeeded(ctx, result, value, timeout)
            return value

        run_async.__signature__ = signature  # type: ignore[attr-defined]
        run_async.__name__ = task.func.__name__
        return run_async

    def run(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            result, timeout = begin(ctx)
            call = (TaskContext(task_result=result), *args) if task.takes_context else args
            try:
                value = task.func(*call, **kwargs)
            except BaseException as exc:
                failed(ctx, result, _timeout(timeout) if ctx.timed_out else exc)
                raise
            succeeded(ctx, result, value, timeout)
            return value
        finally:
            close_old_connections()

    run.__signature__ = signature  # type: ignore[attr-defined]
    run.__name__ = task.func.__name__
    return run


def _timeout(seconds: float | None) -> JobTimeout:
    """The error the worker records for an attempt past its timeout, as signals show it."""
    return JobTimeout(f"the attempt ran past its timeout of {seconds or 0:g} s")


def _error_of(exc: BaseException) -> Any:
    import traceback

    cls = type(exc)
    return TaskError(
        exception_class_path=f"{cls.__module__}.{cls.__qualname__}",
        traceback="".join(traceback.format_exception(exc)),
    )


#: how a job's state reads as the framework's status
STATUS = {
    JobStatus.BLOCKED: TaskResultStatus.READY,
    JobStatus.PENDING: TaskResultStatus.READY,
    JobStatus.RUNNING: TaskResultStatus.RUNNING,
    JobStatus.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.LOST: TaskResultStatus.FAILED,
    JobStatus.CANCELED: TaskResultStatus.FAILED,
}


def task_result(task: Any, record: JobRecord, backend: str) -> Any:
    """A job as the framework's ``TaskResult``: one error per failed attempt, one
    worker id per attempt."""
    entries = []
    if record.error:
        entries = [*record.error.get("earlier", ()), record.error]
    errors = [
        TaskError(
            exception_class_path=str(e["type"]),
            traceback=str(e.get("traceback") or f"{e['type']}: {e.get('message', '')}"),
        )
        for e in entries
        if isinstance(e, dict) and e.get("type")
    ]
    if record.status is JobStatus.CANCELED:
        errors.append(
            TaskError(
                exception_class_path="tock.errors.JobCanceled",
                traceback=f"tock.errors.JobCanceled: job {record.id} was canceled",
            )
        )
    elif record.status is JobStatus.LOST:
        errors.append(
            TaskError(
                exception_class_path="tock.errors.JobLost",
                traceback=(
                    f"tock.errors.JobLost: job {record.id} is at-most-once and its worker "
                    "died: it is not run again unless retried"
                ),
            )
        )
    by_attempt = {
        e["attempt"]: str(e["worker"])
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("attempt"), int) and e.get("worker")
    }
    if record.worker_id is not None and record.status in (
        JobStatus.RUNNING,
        JobStatus.SUCCEEDED,
    ):
        by_attempt[record.attempts] = record.worker_id
    worker_ids = [by_attempt.get(n, UNKNOWN_WORKER) for n in range(1, record.attempts + 1)]
    finished = record.status.finished
    result = TaskResult(
        task=task,
        id=str(record.id),
        status=STATUS[record.status],
        enqueued_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at if finished else None,
        last_attempted_at=record.started_at,
        args=record.args,
        kwargs=record.kwargs,
        backend=backend,
        errors=errors,
        worker_ids=worker_ids,
    )
    if record.status is JobStatus.SUCCEEDED:
        object.__setattr__(result, "_return_value", record.result)
    return result
