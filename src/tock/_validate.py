"""Checks applied where input enters: names, priorities, durations and JSON values."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from tock.errors import ConfigurationError

NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
PRIORITY_MIN, PRIORITY_MAX = -100, 100


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _make_encoder() -> Callable[[Any], str]:
    """Compact JSON, NaN refused; the C encoder built once (``JSONEncoder.encode``
    builds it again on every call, which is most of the cost for small values)."""
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_refuse
        ).encode
    # markers=None: no circular check here (a shared dict is not thread-safe); a
    # circular value ends in RecursionError, which to_json turns into a TypeError.
    iterencode = c_make_encoder(
        None, _refuse, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


_dumps = _make_encoder()


def check_name(kind: str, value: object) -> str:
    # fullmatch: "$" alone would let a trailing newline through.
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ConfigurationError(
            f"invalid {kind} name {value!r}: use 1 to 200 characters from A-Z a-z 0-9 _ . : -"
        )
    return value


def check_priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"priority must be an integer from -100 to 100, not {value!r}")
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise ConfigurationError(f"priority {value} is out of range: use -100 to 100")
    return value


def seconds(what: str, value: object, *, allow_zero: bool = False) -> float:
    """A duration given as a ``timedelta`` or a number of seconds, checked."""
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
    else:
        raise ConfigurationError(
            f"{what} must be a timedelta or a number of seconds, not {value!r}"
        )
    if not math.isfinite(result) or result < 0 or (result == 0 and not allow_zero):
        raise ConfigurationError(f"{what} must be a positive duration, not {value!r}")
    return result


def _check_json(value: Any, where: str, path: frozenset[int] = frozenset()) -> None:
    # Precise walk, used only when the fast encoder refused the value or its text
    # could hide a NUL: it names the place of the first problem.
    if isinstance(value, (list, tuple, dict)):
        if id(value) in path:
            raise TypeError(f"{where} contains itself; JSON cannot hold a circular value")
        path = path | {id(value)}
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where} is {value!r}: JSON has no NaN or infinity")
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise TypeError(f"{where} contains a NUL character, which Tock does not store")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", path)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has a key {key!r} that is not a string; JSON keys are strings"
                )
            if "\x00" in key:
                raise TypeError(
                    f"{where} has a key containing a NUL character, which Tock does not store"
                )
            _check_json(item, f"{where}[{key!r}]", path)
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}, which is not JSON "
        "(use str, int, float, bool, None, list, tuple or dict with string keys)"
    )


def _has_non_str_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(not isinstance(k, str) or _has_non_str_key(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_non_str_key(v) for v in value)
    return False


def to_json(value: Any, where: str) -> str:
    """Encode ``value`` as JSON text or raise ``TypeError`` naming ``where``.

    The C encoder does the work; a dict key that is not a string (which ``json``
    would silently turn into one) and a NUL are caught by cheap checks around it.
    """
    try:
        text = _dumps(value)
    except (TypeError, ValueError, RecursionError):
        _check_json(value, where)
        raise TypeError(f"{where} is not JSON") from None  # pragma: no cover
    if "\\u0000" in text or ("{" in text and _has_non_str_key(value)):
        _check_json(value, where)
    return text


def encode_result(value: Any) -> str:
    return to_json(value, "the return value")


def checked_options(kind: str, definition: type, given: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``given`` for a dataclass whose fields each carry their ``check`` in
    their metadata (``TaskOptions``, ``ScheduleOptions``), each checked; an unknown one
    is refused by name."""
    known = {f.name: f for f in dataclasses.fields(definition)}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigurationError(
            f"unknown {kind} option(s) {', '.join(map(repr, unknown))}: "
            f"the options are {', '.join(known)}"
        )
    return {name: known[name].metadata["check"](value) for name, value in given.items()}
