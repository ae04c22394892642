"""What every store shares when it turns rows into records."""

from __future__ import annotations

import functools
import json
from typing import Any

from tock.jobs import JobStatus

STATUS = {s.value: s for s in JobStatus}

#: the error recorded on jobs settled because their worker died
WORKER_DIED = json.dumps(
    {"type": "tock.WorkerDied", "message": "the worker running this job died", "traceback": ""}
)

_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def json_loads(text: str) -> Any:
    """``json.loads`` without its whitespace checks: the stored texts are compact
    (written by Tock or by the database's JSON functions). Anything else takes the slow
    road."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


@functools.lru_cache(maxsize=64)
def retry_on(text: str) -> tuple[str, ...]:
    """A job's ``retry_on`` names from their stored JSON (few distinct values: cached)."""
    return tuple(json_loads(text))
