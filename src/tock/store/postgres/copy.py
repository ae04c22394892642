"""PostgreSQL's COPY, binary format, for bulk enqueue: jobs encoded straight into the
rows ``job_copy`` takes (docs/design.md: the hot path). Pure functions of jobs and ids:
no connection, no SQL."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta

from tock.jobs import NewJob
from tock.store._rows import us as _us

__all__ = [
    "COPY_SIGNATURE",
    "COPY_TRAILER",
    "Ids",
    "copy_options",
    "copy_rows",
    "copy_text",
    "fits",
    "pg_us",
    "retry_on_text",
]


def copy_text(text: str) -> str:
    """Lines of JSON texts (and run numbers) as COPY's text format. Tock's JSON has no raw
    tab, newline or carriage return (the encoder escapes them), so only backslashes need
    doubling, in one pass over the whole text."""
    return text.replace("\\", "\\\\") if "\\" in text else text


# COPY's binary format (PostgreSQL docs: COPY, "Binary Format"), for job_copy: a
# signature, then per row a field count and each field as its length (-1: NULL) and its
# bytes in the type's binary form (big-endian integers and floats, timestamptz in
# microseconds since 2000-01-01 UTC, text in the client encoding), then a trailer.
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_TRAILER = struct.pack("!h", -1)
_COPY_FIELDS = 15  # job_copy's columns
_COPY_HEAD = struct.Struct("!hiqi").pack  # field count, the id's length and id, len(args)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def pg_us(when: datetime) -> int:
    return (when - _PG_EPOCH) // _MICROSECOND


def _field(fmt: str, value: object) -> bytes:
    data = struct.pack(fmt, value)
    return struct.pack("!i", len(data)) + data


def _text_field(text: str, encoding: str) -> bytes:
    data = text.encode(encoding)
    return struct.pack("!i", len(data)) + data


_EMPTY_KWARGS = _text_field("{}", "ascii")


def copy_rows(jobs: list[NewJob], ids: list[int], shared: bytes, encoding: str) -> bytes:
    """job_copy's rows for jobs of one run (``shared``: their copy_options)."""
    args = [j.args.encode(encoding) for j in jobs]
    kwargs = [_EMPTY_KWARGS if j.kwargs == "{}" else _text_field(j.kwargs, encoding) for j in jobs]
    return b"".join(
        [
            _COPY_HEAD(_COPY_FIELDS, 8, i, len(a)) + a + k + shared
            for i, a, k in zip(ids, args, kwargs, strict=True)
        ]
    )


def fits(run: list[NewJob]) -> bool:
    """Whether the integer options of a run fit job_copy's int columns, and its delay a
    bigint (as job_insert_many takes it)."""
    j = run[0]
    ints = (j.priority, j.retries, j.max_rescues)
    return all(-(2**31) <= x < 2**31 for x in ints) and -(2**63) <= _us(j.run_after) < 2**63


def copy_options(j: NewJob, created_us: int, encoding: str) -> bytes:
    """job_copy's fields after (id, args, kwargs): the same for a whole run of jobs."""
    run_at = created_us + _us(j.run_after) if j.run_at is None else pg_us(j.run_at)
    return b"".join(
        (
            _text_field(j.task, encoding),
            _text_field(j.queue, encoding),
            _field("!i", j.priority),
            _text_field("pending", encoding),
            _field("!q", run_at),
            _field("!q", created_us),
            _field("!i", j.retries),
            _field("!d", float(j.retry_backoff)),
            _text_field(retry_on_text(j.retry_on), encoding),
            struct.pack("!i", -1) if j.timeout is None else _field("!d", float(j.timeout)),
            _field("?", bool(j.at_most_once)),
            _field("!i", j.max_rescues),
        )
    )


class Ids(list[int]):
    """The ids of a batch without unique keys, in input order."""


def retry_on_text(names: tuple[str, ...]) -> str:
    return json.dumps(list(names))
