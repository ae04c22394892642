"""Bad input is refused at the edge with a clear error, and nothing is stored."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

import pytest

from tock import ConfigurationError, Context, Tock
from tock.store import Store


def add(x: int, y: int) -> int:
    return x + y


def anything(*args: object, **kwargs: object) -> None:
    return None


def with_ctx(ctx: Context, url: str) -> None:
    return None


@pytest.fixture
def t(app: Tock):
    return app.task(add)


def nothing_stored(store: Store) -> bool:
    return store.job_list() == []


# -- arguments against the signature ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, 2, 3), {}), ((1, 2), {"z": 3}), ((1,), {"x": 2}), ((), {})],
)
def test_wrong_arguments_name_the_task(t, store: Store, args, kwargs) -> None:
    with pytest.raises(TypeError, match=re.escape(f"task {t.name!r}")):
        t.enqueue(*args, **kwargs)
    with pytest.raises(TypeError, match=re.escape(f"task {t.name!r}")):
        t.enqueue_many([args] if not kwargs else [kwargs])
    assert nothing_stored(store)


def test_context_parameter_is_not_an_argument(app: Tock, store: Store) -> None:
    task = app.task(name="crawl", takes_context=True)(with_ctx)
    with pytest.raises(TypeError, match="crawl"):
        task.enqueue()
    with pytest.raises(TypeError, match="crawl"):
        task.enqueue("a", "b")
    assert nothing_stored(store)
    assert store.job_get(task.enqueue("https://example.com").id).args == ["https://example.com"]


def test_takes_context_needs_a_parameter(app: Tock) -> None:
    def bare() -> None:
        return None

    with pytest.raises(ConfigurationError, match="takes_context"):
        app.task(name="bare", takes_context=True)(bare)


# -- values that are not JSON ---------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        object(),
        {1, 2},
        frozenset(),
        b"bytes",
        float("nan"),
        float("inf"),
        -math.inf,
        {1: "int key"},
        {None: "none key"},
        {("a",): "tuple key"},
        "nul \x00 inside",
        [1, [2, {"deep": {3}}]],
        {"a": [{"b": float("nan")}]},
        {"a": {"b": {2: "x"}}},
        ["ok", "bad\x00"],
        {"k\x00": 1},
        datetime(2030, 1, 1),
        timedelta(seconds=1),
        1 + 2j,
    ],
    ids=repr,
)
def test_non_json_argument_is_refused_naming_it(t, store: Store, value) -> None:
    with pytest.raises(TypeError, match="'y'"):
        t.enqueue(1, value)
    with pytest.raises(TypeError, match="'x'"):
        t.enqueue(x=value, y=1)
    assert nothing_stored(store)


def test_non_json_in_star_args_and_kwargs(app: Tock, store: Store) -> None:
    task = app.task(anything)
    with pytest.raises(TypeError, match="args"):
        task.enqueue(1, object())
    with pytest.raises(TypeError, match="extra"):
        task.enqueue(extra={1})
    assert nothing_stored(store)


def test_tuples_become_lists(t, store: Store) -> None:
    record = store.job_get(t.enqueue((1, (2, 3)), {"a": (4,)}).id)
    assert record.args == [[1, [2, 3]], {"a": [4]}]


# -- names -----------------------------------------------------------------------------

BAD_NAMES = [
    "",
    "has space",
    "slash/name",
    "x" * 201,
    "é",
    "semi;colon",
    "new\nline",
    "trailing\n",
    "nul\x00",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_task_name(app: Tock, store: Store, name: str) -> None:
    with pytest.raises(ConfigurationError, match="task name"):
        app.task(name=name)(add)
    assert name not in app.tasks
    assert nothing_stored(store)


@pytest.mark.parametrize("name", [*BAD_NAMES, 5, None], ids=repr)
def test_bad_queue_name(app: Tock, t, store: Store, name) -> None:
    if name is not None:
        with pytest.raises(ConfigurationError, match="queue name"):
            app.task(name="q.task", queue=name)(add)
    with pytest.raises(ConfigurationError, match="queue name"):
        t.using(queue=name if name is not None else "").enqueue(1, 2)
    assert nothing_stored(store)


@pytest.mark.parametrize("name", ["a", "A-Z_a.z:0-9", "x" * 200, "emails.send", "q:1"])
def test_good_names(app: Tock, store: Store, name: str) -> None:
    task = app.task(name=name, queue=name)(add)
    assert store.job_get(task.enqueue(1, 2).id).queue == name


# -- priorities --------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [101, -101, 1000, 1.5, "1", True, None])
def test_bad_priority(app: Tock, t, store: Store, priority) -> None:
    with pytest.raises(ConfigurationError, match="priority"):
        app.task(name="p.task", priority=priority)(add)
    if priority is not None:  # using(priority=None) means "the task's own"
        with pytest.raises(ConfigurationError, match="priority"):
            t.using(priority=priority).enqueue(1, 2)
    assert nothing_stored(store)


@pytest.mark.parametrize("priority", [-100, 100, 0])
def test_priority_bounds_accepted(t, store: Store, priority: int) -> None:
    assert store.job_get(t.using(priority=priority).enqueue(1, 2).id).priority == priority


# -- durations and times ----------------------------------------------------------------

BAD_DURATIONS = [-1, -0.5, timedelta(seconds=-1), float("nan"), float("inf"), "10", True, [1]]


@pytest.mark.parametrize("value", BAD_DURATIONS, ids=repr)
def test_bad_run_after(t, store: Store, value) -> None:
    with pytest.raises(ConfigurationError, match="run_after"):
        t.using(run_after=value).enqueue(1, 2)
    assert nothing_stored(store)


@pytest.mark.parametrize("value", [*BAD_DURATIONS, 0, timedelta(0)], ids=repr)
def test_bad_task_durations(app: Tock, value) -> None:
    with pytest.raises(ConfigurationError, match="retry_backoff"):
        app.task(name="d.backoff", retry_backoff=value)(add)
    with pytest.raises(ConfigurationError, match="timeout"):
        app.task(name="d.timeout", timeout=value)(add)
    assert app.tasks == {}


@pytest.mark.parametrize("value", [-1, 1.5, "3", True])
def test_bad_retries_and_max_rescues(app: Tock, value) -> None:
    with pytest.raises(ConfigurationError, match="retries"):
        app.task(name="r.retries", retries=value)(add)
    with pytest.raises(ConfigurationError, match="max_rescues"):
        app.task(name="r.rescues", max_rescues=value)(add)


@pytest.mark.parametrize(
    "value", [ValueError("instance"), int, "builtins.Exception", [OSError, 3]], ids=repr
)
def test_bad_retry_on(app: Tock, value) -> None:
    with pytest.raises(ConfigurationError, match="retry_on"):
        app.task(name="r.on", retry_on=value)(add)


def test_naive_datetime_run_after_refused(t, store: Store) -> None:
    with pytest.raises(ConfigurationError, match="naive"):
        t.using(run_after=datetime(2030, 1, 1, 12, 0)).enqueue(1, 2)
    assert nothing_stored(store)


@pytest.mark.parametrize("key", ["", "nul\x00", 5], ids=repr)
def test_bad_unique_key(t, store: Store, key) -> None:
    with pytest.raises(ConfigurationError, match="unique_key"):
        t.using(unique_key=key).enqueue(1, 2)
    assert nothing_stored(store)


# -- registration ----------------------------------------------------------------------


def test_task_in_main_needs_a_name(app: Tock) -> None:
    def job() -> None:
        return None

    job.__module__ = "__main__"
    job.__qualname__ = "job"
    with pytest.raises(ConfigurationError, match="name="):
        app.task(job)
    assert app.tasks == {}
    assert app.task(name="main.job")(job).name == "main.job"


def test_task_defined_in_a_function_needs_a_name(app: Tock) -> None:
    def inner() -> None:
        return None

    with pytest.raises(ConfigurationError, match="name="):
        app.task(inner)
    with pytest.raises(ConfigurationError, match="name="):
        app.task(lambda: None)


def test_duplicate_task_name_refused(app: Tock) -> None:
    def other(x: int, y: int) -> int:
        return x * y

    first = app.task(name="dup")(add)
    with pytest.raises(ConfigurationError, match="dup"):
        app.task(name="dup")(other)
    assert app.tasks["dup"] is first
    assert app.task(name="dup")(add).fn is add  # the same function again is fine


def test_task_decorates_only_callables(app: Tock) -> None:
    with pytest.raises(ConfigurationError):
        app.task(name="not.callable")(42)  # type: ignore[arg-type]
