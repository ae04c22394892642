"""Property: any JSON value round-trips through enqueue and the store unchanged
(tuples become lists)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tock import Tock
from tock.store import Store

json_atoms = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text().filter(lambda s: "\x00" not in s)
)
json_values = st.recursive(
    json_atoms,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(
            st.text(max_size=8).filter(lambda s: "\x00" not in s), children, max_size=4
        )
    ),
    max_leaves=12,
)


def normalized(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [normalized(v) for v in value]
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same JSON type all the way down (1 is not 1.0, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def echo(*args: Any, **kwargs: Any) -> None:
    return None


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=json_values, kw=json_values)
def test_json_values_round_trip(app: Tock, store: Store, value: Any, kw: Any) -> None:
    task = app.tasks.get("prop.echo") or app.task(name="prop.echo")(echo)
    record = store.job_get(task.enqueue(value, key=kw).id)
    assert same(record.args, [normalized(value)])
    assert same(record.kwargs, {"key": normalized(kw)})


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(json_values, min_size=1, max_size=5))
def test_json_values_round_trip_in_a_batch(app: Tock, store: Store, items: list[Any]) -> None:
    task = app.tasks.get("prop.echo") or app.task(name="prop.echo")(echo)
    jobs = task.enqueue_many([(v,) if i % 2 else {"v": v} for i, v in enumerate(items)])
    for i, (job, v) in enumerate(zip(jobs, items, strict=True)):
        record = store.job_get(job.id)
        if i % 2:
            assert same(record.args, [normalized(v)]) and record.kwargs == {}
        else:
            assert record.args == [] and same(record.kwargs, {"v": normalized(v)})
