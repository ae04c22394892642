"""Tock as the backend of Django's tasks framework: enqueue, a real worker, and
``get_result`` (docs/django.md), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("django_project")


def framework() -> Any:
    try:
        import django.tasks as tasks  # Django 6.0+
        from django.tasks import exceptions
    except ImportError:
        import django_tasks as tasks
        from django_tasks import exceptions
    return tasks, exceptions


def run_worker() -> None:
    """A burst worker in this process: runs what is due, then returns."""
    from tock.contrib.django import app
    from tock.worker.worker import Worker, WorkerConfig

    Worker(app, WorkerConfig(queues=("default", "emails"), burst=True, duties=False)).run()


@pytest.fixture
def signals() -> Iterator[list[tuple[str, str, str]]]:
    """(signal, result id, status) of each signal of the framework sent meanwhile."""
    tasks, _ = framework()
    from importlib import import_module

    module = import_module(f"{tasks.__name__}.signals")
    got: list[tuple[str, str, str]] = []
    receivers = {}
    for name in ("task_enqueued", "task_started", "task_finished"):

        def receiver(sender: Any, task_result: Any, _name: str = name, **kwargs: Any) -> None:
            got.append((_name, task_result.id, str(task_result.status)))

        receivers[name] = receiver
        getattr(module, name).connect(receiver)
    yield got
    for name, receiver in receivers.items():
        getattr(module, name).disconnect(receiver)


def test_the_backend_supports_everything(db: str) -> None:
    from shop.tasks import add

    backend = add.get_backend()
    assert type(backend).__name__ == "TockBackend"
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority


def test_enqueue_run_and_get_result(db: str, signals: list[tuple[str, str, str]]) -> None:
    from shop.tasks import add

    result = add.enqueue(2, 3)
    assert isinstance(result.id, str) and result.status == "READY"
    assert result.args == [2, 3] and result.kwargs == {}
    assert signals == [("task_enqueued", result.id, "READY")]
    read = add.get_result(result.id)
    assert read.status == "READY" and read.enqueued_at is not None and read.started_at is None
    run_worker()
    result.refresh()
    assert result.status == "SUCCESSFUL" and result.return_value == 5
    assert result.attempts == 1 and len(result.worker_ids) == 1 and result.errors == []
    assert result.started_at is not None and result.finished_at is not None
    assert result.last_attempted_at is not None
    assert result.enqueued_at <= result.started_at <= result.finished_at
    mine = [s for s in signals if s[1] == result.id]
    assert mine == [
        ("task_enqueued", result.id, "READY"),
        ("task_started", result.id, "RUNNING"),
        ("task_finished", result.id, "SUCCESSFUL"),
    ]


def test_a_retried_task_keeps_one_error_per_failed_attempt(
    db: str, signals: list[tuple[str, str, str]]
) -> None:
    from shop.tasks import flaky

    result = flaky.enqueue(3)  # fails on attempts 1 and 2, succeeds on 3
    run_worker()
    result.refresh()
    assert result.status == "SUCCESSFUL" and result.return_value == 3
    assert result.attempts == 3
    assert [e.exception_class_path for e in result.errors] == ["builtins.ValueError"] * 2
    assert "ValueError: attempt 1" in result.errors[0].traceback
    assert "ValueError: attempt 2" in result.errors[1].traceback
    assert result.errors[0].exception_class is ValueError
    statuses = [(s[0], s[2]) for s in signals if s[1] == result.id]
    assert statuses == [
        ("task_enqueued", "READY"),
        ("task_started", "RUNNING"),
        ("task_finished", "READY"),  # a retry follows
        ("task_started", "RUNNING"),
        ("task_finished", "READY"),
        ("task_started", "RUNNING"),
        ("task_finished", "SUCCESSFUL"),
    ]


def test_a_task_that_fails_for_good(db: str) -> None:
    from shop.tasks import always_fails

    result = always_fails.enqueue()  # max_attempts=2, a callable backoff
    run_worker()
    result.refresh()
    assert result.status == "FAILED" and result.is_finished
    assert [e.exception_class_path for e in result.errors] == ["builtins.KeyError"] * 2
    assert len(result.worker_ids) == 2 and result.attempts == 2
    with pytest.raises(ValueError, match="failed"):
        _ = result.return_value


def test_a_callable_backoff_decides_the_delay(db: str) -> None:
    from django.utils import timezone
    from shop.tasks import retry_in_an_hour

    from tock.contrib.django import app

    result = retry_in_an_hour.enqueue()
    run_worker()  # one attempt; the retry is not due for an hour
    job = app.get_job(int(result.id)).record
    assert job.status == "pending" and job.attempts == 1
    wait = (job.run_at - timezone.now()).total_seconds()
    assert 3500 < wait <= 3600
    result.refresh()
    assert result.status == "READY" and len(result.errors) == 1
    app.cancel_job(job.id)


def test_django_s_own_task_decorator_takes_tocks_options(db: str) -> None:
    from shop.tasks import native_options

    from tock.contrib.django import TockTask

    if native_options is None:
        pytest.skip("this Django's @task passes no options to the backend (6.0)")
    assert isinstance(native_options, TockTask) and native_options.max_attempts == 2
    result = native_options.enqueue()
    run_worker()
    result.refresh()
    assert result.status == "FAILED" and result.attempts == 2
    assert [e.exception_class_path for e in result.errors] == ["builtins.OSError"] * 2


def test_a_deferred_task_waits(db: str) -> None:
    from django.utils import timezone
    from shop.tasks import add

    from tock.contrib.django import app

    when = timezone.now() + timedelta(hours=1)
    result = add.using(run_after=when).enqueue(1, 1)
    job = app.get_job(int(result.id)).record
    assert abs((job.run_at - when).total_seconds()) < 0.001
    run_worker()
    assert add.get_result(result.id).status == "READY"
    app.cancel_job(int(result.id))


def test_queue_and_priority_reach_the_job(db: str) -> None:
    from shop.tasks import mark

    from tock.contrib.django import app

    result = mark.enqueue(0)
    job = app.get_job(int(result.id)).record
    assert (job.queue, job.priority) == ("emails", 5)
    result = mark.using(priority=-7).enqueue(0)
    assert app.get_job(int(result.id)).record.priority == -7


def test_canceled_and_lost_read_as_failed_with_the_reason(db: str) -> None:
    from django.utils import timezone
    from shop.tasks import add

    from tock.contrib.django import app

    result = add.using(run_after=timezone.now() + timedelta(hours=1)).enqueue(1, 2)
    app.cancel_job(int(result.id))
    result.refresh()
    assert result.status == "FAILED"
    assert [e.exception_class_path for e in result.errors] == ["tock.errors.JobCanceled"]
    assert "canceled" in result.errors[0].traceback


def test_an_async_task_runs(db: str) -> None:
    from shop.tasks import aping

    result = aping.enqueue(21)
    run_worker()
    result.refresh()
    assert result.status == "SUCCESSFUL" and result.return_value == 42


@pytest.mark.parametrize("name", ["overstay", "aoverstay"])
def test_a_task_past_its_timeout_fails_and_its_signal_says_so(
    db: str, name: str, signals: list[tuple[str, str, str]]
) -> None:
    """A sync task that returns after its deadline, an async one cancelled at it: the
    job is a timeout (retried once), and task_finished says so, not SUCCESSFUL."""
    import shop.tasks

    overstaying = getattr(shop.tasks, name)
    result = overstaying.enqueue()
    run_worker()
    result.refresh()
    assert result.status == "FAILED" and result.attempts == 2
    assert [e.exception_class_path for e in result.errors] == ["tock.JobTimeout"] * 2
    finished = [status for signal, _, status in signals if signal == "task_finished"]
    assert finished == ["READY", "FAILED"]  # retried once, then failed for good


def test_a_unique_key_from_the_arguments(db: str) -> None:
    from shop.tasks import greet

    first = greet.enqueue("ada")
    again = greet.enqueue("ada")
    other = greet.enqueue("bob")
    assert first.id == again.id != other.id
    run_worker()
    assert greet.get_result(first.id).return_value == "hello ada"


def test_a_django_task_on_a_tock_schedule(db: str) -> None:
    from shop.tasks import add

    from tock.contrib.django import app

    app.schedule("django-add", task=add, every=timedelta(hours=1), args=[20, 22])
    try:
        job = app.trigger_schedule("django-add")
        run_worker()
        assert add.get_result(str(job.id)).return_value == 42
    finally:
        app.unschedule("django-add")


def test_get_result_of_an_unknown_id(db: str) -> None:
    from shop.tasks import add

    _, exceptions = framework()
    for bad in ("nope", "999999999", ""):
        with pytest.raises(exceptions.TaskResultDoesNotExist):
            add.get_result(bad)


def test_get_result_through_another_task_is_a_mismatch(db: str) -> None:
    from shop.tasks import add, mark

    _, exceptions = framework()
    result = add.enqueue(1, 1)
    with pytest.raises(exceptions.TaskResultMismatch):
        mark.get_result(result.id)


def test_a_tock_task_s_job_is_not_a_django_result(db: str) -> None:
    from shop.tasks import add, process_order

    _, exceptions = framework()
    job = process_order.enqueue(1)
    with pytest.raises(exceptions.TaskResultDoesNotExist, match="not a Django task"):
        add.get_backend().get_result(str(job.id))


# -- the framework's rules, and bad input --------------------------------------------


def module_level(x: int) -> int:
    return x


def takes_no_context(x: int) -> int:
    return x


def test_validate_task_follows_the_framework(db: str) -> None:
    from tock.contrib.django import task

    _, exceptions = framework()
    invalid = getattr(exceptions, "InvalidTask", None) or exceptions.InvalidTaskError
    with pytest.raises(invalid, match="Queue"):
        task(queue_name="nowhere")(module_level)
    with pytest.raises(invalid, match="priority"):
        task(priority=101)(module_level)
    with pytest.raises(invalid, match="context"):
        task(takes_context=True)(takes_no_context)

    def nested(x: int) -> int:
        return x

    with pytest.raises(invalid, match="module level"):
        task()(nested)
    with pytest.raises(invalid, match="max_attempts"):
        task(max_attempts=0)(module_level)
    with pytest.raises(invalid, match="backoff"):
        task(backoff=-1)(module_level)
    with pytest.raises(invalid, match="timeout"):
        task(timeout="soon")(module_level)
    with pytest.raises(invalid, match="unique_key"):
        task(unique_key="")(module_level)
    with pytest.raises(invalid, match="at_most_once"):
        task(at_most_once="yes")(module_level)


def test_bad_arguments_are_refused_at_enqueue(db: str) -> None:
    from shop.tasks import add

    with pytest.raises(TypeError):
        add.enqueue(1)  # a missing argument: refused here, not in the worker
    with pytest.raises(TypeError, match="JSON"):
        add.enqueue(1, object())


def test_backend_options_are_checked() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from tock.contrib.django import TockBackend

    TockBackend("x", {"OPTIONS": {"max_attempts": 3, "timeout": 5}})
    with pytest.raises(ImproperlyConfigured, match="unknown key"):
        TockBackend("x", {"OPTIONS": {"retries": 3}})
    with pytest.raises(ImproperlyConfigured, match="max_attempts"):
        TockBackend("x", {"OPTIONS": {"max_attempts": -1}})
    with pytest.raises(ImproperlyConfigured, match="unique_key"):
        TockBackend("x", {"OPTIONS": {"unique_key": "k"}})
    with pytest.raises(ImproperlyConfigured, match="QUEUES"):
        TockBackend("x", {"QUEUES": ["no spaces"]})


def test_a_lost_job_reads_as_failed_saying_so() -> None:
    from django.utils import timezone
    from shop.tasks import add

    from tock.contrib.django.backend import UNKNOWN_WORKER, task_result
    from tock.jobs import JobRecord, JobStatus

    now = timezone.now()
    record = JobRecord(
        id=9, task="shop.tasks.add", status=JobStatus.LOST, queue="default", priority=0,
        args=[1, 2], kwargs={}, run_at=now, created_at=now, attempts=1, rescues=0,
        at_most_once=True, finished_at=now, worker_id="w-dead",
        error={"type": "tock.WorkerDied", "message": "worker w-dead died", "traceback": ""},
    )  # fmt: skip
    result = task_result(add, record, "default")
    assert result.status == "FAILED" and result.finished_at == now
    assert [e.exception_class_path for e in result.errors] == [
        "tock.WorkerDied",
        "tock.errors.JobLost",
    ]
    assert "worker w-dead died" in result.errors[0].traceback
    assert "at-most-once" in result.errors[1].traceback
    assert result.worker_ids == [UNKNOWN_WORKER]


def test_tocks_options_reach_the_tock_task(db: str) -> None:
    from tock.contrib.django import app, task

    def options_probe() -> None: ...

    options_probe.__module__ = __name__  # a module-level function for the framework
    options_probe.__qualname__ = "options_probe"
    globals()["options_probe"] = options_probe
    made = task(max_attempts=4, backoff=3, timeout=7, at_most_once=True)(options_probe)
    registered = app.tasks[made.module_path].options
    assert registered.retries == 3 and registered.retry_backoff == 3.0
    assert registered.timeout == 7.0 and registered.at_most_once
