"""What every store shares when it turns rows into records."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from tock.jobs import JobRecord, JobStatus
from tock.store import FireRecord, ScheduleRecord

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


#: the columns of a job row, in the order ``job_record`` reads them
COLUMNS = (
    "id, task, queue, priority, status, args, kwargs, run_at, created_at, started_at, "
    "finished_at, attempts, rescues, retries, retry_backoff, retry_on, timeout, at_most_once, "
    "max_rescues, unique_key, worker_id, claim_token, result, error"
)


def job_record(row: Sequence[Any], when: Callable[[Any], datetime | None]) -> JobRecord:
    """A JobRecord from a row of COLUMNS; ``when`` turns a stored time into a datetime.

    Built positionally, in JobRecord's field order (tests/unit/test_rows.py checks it):
    a claim decodes every job it takes, and naming the 24 fields cost twice as much.
    """
    (
        job_id, task, queue, priority, status, args, kwargs, run_at, created_at,
        started_at, finished_at, attempts, rescues, retries, retry_backoff, retry_on_text,
        timeout, at_most_once, max_rescues, unique_key, worker_id, claim_token, result,
        error,
    ) = row  # fmt: skip
    return JobRecord(
        job_id,
        task,
        STATUS[status],
        queue,
        priority,
        json_loads(args),
        {} if kwargs == "{}" else json_loads(kwargs),
        when(run_at),  # type: ignore[arg-type]  # NOT NULL columns
        when(created_at),  # type: ignore[arg-type]
        attempts,
        rescues,
        retries,
        retry_backoff,
        retry_on(retry_on_text),
        timeout,
        bool(at_most_once),
        max_rescues,
        unique_key,
        when(started_at),
        when(finished_at),
        worker_id,
        claim_token,
        None if result is None else json_loads(result),
        None if error is None else json_loads(error),
    )


def us(seconds: float) -> int:
    """A duration in whole microseconds, as the stores pass durations to SQL."""
    return round(seconds * 1_000_000)


#: the columns of a schedule row, in the order ``schedule_record`` reads them; the
#: queries add the status of the last job (see ``last_status``) after them
SCHEDULE_COLUMNS = (
    "name, task, trigger, args, kwargs, queue, priority, misfire, grace, overlap, enabled, "
    "paused, source, next_fire_at, last_fire_at, last_job_id, created_at, updated_at, "
    "depends_on, future_depends, depends_on_outcome"
)


def schedule_record(row: Sequence[Any], when: Callable[[Any], datetime | None]) -> ScheduleRecord:
    """A ScheduleRecord from a row of SCHEDULE_COLUMNS and the last job's status."""
    return ScheduleRecord(
        name=row[0],
        task=row[1],
        trigger=row[2],
        args=row[3],
        kwargs=row[4],
        queue=row[5],
        priority=row[6],
        misfire=row[7],
        grace=float(row[8]),
        overlap=bool(row[9]),
        enabled=bool(row[10]),
        paused=bool(row[11]),
        source=row[12],
        next_fire_at=when(row[13]),
        last_fire_at=when(row[14]),
        last_job_id=row[15],
        created_at=when(row[16]),
        updated_at=when(row[17]),
        depends_on=row[18],
        future_depends=bool(row[19]),
        depends_on_outcome=row[20],
        last_status=None if row[21] is None else STATUS[row[21]],
    )


def last_of_each(schedules: Sequence[ScheduleRecord]) -> list[ScheduleRecord]:
    """One schedule per name, the last given, in first-seen order: one statement may not
    write a row twice (PostgreSQL's upsert refuses it), and both stores must agree."""
    by_name = {s.name: s for s in schedules}
    return list(by_name.values())


#: the columns of a fire row, in the order ``fire_record`` reads them
FIRE_COLUMNS = "schedule, fire_at, last_at, count, outcome, job_id, manual, created_at, waiting_for"


def fire_record(row: Sequence[Any], when: Callable[[Any], datetime | None]) -> FireRecord:
    at, last, created_at = when(row[1]), when(row[2]), when(row[7])
    assert at is not None and last is not None and created_at is not None
    return FireRecord(
        schedule=row[0],
        at=at,
        last=last,
        count=row[3],
        outcome=row[4],
        job_id=row[5],
        manual=bool(row[6]),
        created_at=created_at,
        waiting_for=() if row[8] is None else tuple(json_loads(row[8])),
    )
