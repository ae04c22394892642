"""Checks at the edge: names, priorities, durations and the JSON rules of docs/design.md."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tock import ConfigurationError
from tock._validate import check_name, check_priority, seconds, to_json


def is_json(value: Any) -> bool:
    """docs/design.md: JSON only: finite floats, strings without NUL, lists (tuples become lists),
    dicts with string keys."""
    if value is None or isinstance(value, (bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, (list, tuple)):
        return all(is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and "\x00" not in k and is_json(v) for k, v in value.items())
    return False


def normalized(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [normalized(v) for v in value]
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    return value


atoms = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities included
    | st.text(max_size=6)  # NUL included sometimes
    | st.sampled_from(["\x00", "a\x00b", "\\u0000", "é", "\u2028"])
    | st.builds(object)
    | st.binary(max_size=3)
    | st.sets(st.integers(), max_size=2)
    | st.complex_numbers(allow_nan=False, max_magnitude=10)
)
keys = (
    st.text(max_size=4)
    | st.sampled_from(["k\x00", ""])
    | st.integers()
    | st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
)
values = st.recursive(
    atoms,
    lambda children: (
        st.lists(children, max_size=3)
        | st.tuples(children)
        | st.dictionaries(keys, children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_to_json_refuses_exactly_what_is_not_json(value: Any) -> None:
    if is_json(value):
        text = to_json(value, "the value")
        assert json.loads(text) == normalized(value)
        assert "\\u0000" not in text or "\\\\u0000" in text
    else:
        with pytest.raises(TypeError, match="the value"):
            to_json(value, "the value")


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"a": [1, {2}]}, "arg['a'][1]"),
        ([1.0, math.nan], "arg[1]"),
        ({"k": {"n": "x\x00"}}, "arg['k']['n']"),
        ({"k": {3: "x"}}, "arg['k']"),
        ((1, (2, object())), "arg[1][1]"),
    ],
)
def test_to_json_names_the_place(value: Any, where: str) -> None:
    with pytest.raises(TypeError) as info:
        to_json(value, "arg")
    assert where in str(info.value)


def test_to_json_refuses_a_circular_value() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(TypeError, match="arg"):
        to_json(loop, "arg")


def test_to_json_is_compact_and_keeps_unicode() -> None:
    assert to_json({"a": [1, 2.5, None, True, "é"]}, "x") == '{"a":[1,2.5,null,true,"é"]}'


@pytest.mark.parametrize("name", ["a", "A-Z_a.z:0-9", "x" * 200])
def test_check_name_accepts(name: str) -> None:
    assert check_name("task", name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * 201, "a b", "a/b", "é", "a\n", None, 3, b"ab"], ids=repr
)
def test_check_name_refuses(name: object) -> None:
    with pytest.raises(ConfigurationError, match="invalid queue name"):
        check_name("queue", name)


def test_check_priority() -> None:
    assert check_priority(-100) == -100
    assert check_priority(100) == 100
    for bad in (101, -101, 1.0, True, "5", None):
        with pytest.raises(ConfigurationError, match="priority"):
            check_priority(bad)


def test_seconds() -> None:
    assert seconds("d", timedelta(minutes=1)) == 60.0
    assert seconds("d", 2) == 2.0
    assert seconds("d", 0.5) == 0.5
    assert seconds("d", 0, allow_zero=True) == 0.0
    for bad in (0, -1, timedelta(seconds=-1), math.nan, math.inf, "1", True, None):
        with pytest.raises(ConfigurationError, match="d must be"):
            seconds("d", bad)
