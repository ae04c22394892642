"""Tock's log records about jobs, and a JSON formatter for people who ship logs.

Every event in a job's life that a worker sees is one record of the ``tock.job`` logger:

=========================  =========  ===================================================
event                      level      ``outcome`` field
=========================  =========  ===================================================
an attempt starts          DEBUG      ``started``
an attempt succeeds        DEBUG      ``succeeded``
an attempt raises, retried WARNING    ``retry`` (``retry_in``: seconds until it is due)
the job ends ``failed``    WARNING    ``failed`` (its last error; or "worker died" too
                                      often, from the rescuer)
the job ends ``lost``      WARNING    ``lost`` (an at-most-once job whose worker died)
=========================  =========  ===================================================

Each carries its facts as attributes of the record (``extra=``), so that a formatter can
use them: ``job_id``, ``task``, ``queue``, ``attempt`` (from 1), ``outcome``, and where
they apply ``duration`` (seconds the attempt ran), ``retry_in`` and ``error`` ("Type:
message"). At the default level (INFO) the hot path pays one level check per job.
:class:`JsonFormatter` writes one JSON object a line with those fields; ``tock worker
--log-format json`` uses it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from tock.jobs import JobRecord, Outcome, OutcomeKind

__all__ = ["JOB_FIELDS", "JsonFormatter", "job_finished", "job_settled", "job_started"]

log = logging.getLogger("tock.job")

#: the structured fields of ``tock.job`` records, in the order JSON lines show them
JOB_FIELDS = ("job_id", "task", "queue", "attempt", "outcome", "duration", "retry_in", "error")

_DEBUG = logging.DEBUG


def _fields(job: JobRecord, outcome: str, **more: Any) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "task": job.task,
        "queue": job.queue,
        "attempt": job.attempts,
        "outcome": outcome,
        **more,
    }


def _error_text(error_json: str | None) -> str:
    """``"Type: message"`` from an outcome's error JSON text."""
    if not error_json:
        return "unknown error"
    try:
        error = json.loads(error_json)
    except ValueError:
        return error_json
    kind = str(error.get("type", "Error")).removeprefix("builtins.")
    message = error.get("message", "")
    return f"{kind}: {message}" if message else str(kind)


def job_started(job: JobRecord) -> None:
    """An attempt of ``job`` begins (DEBUG)."""
    if log.isEnabledFor(_DEBUG):
        log.debug(
            "job %d started: %s (attempt %d, queue %s)",
            job.id,
            job.task,
            job.attempts,
            job.queue,
            extra=_fields(job, "started"),
        )


def job_finished(job: JobRecord, outcome: Outcome, duration: float) -> None:
    """An attempt of ``job`` ended with ``outcome`` after ``duration`` seconds."""
    kind = outcome.kind
    if kind is OutcomeKind.SUCCEEDED:
        if log.isEnabledFor(_DEBUG):
            log.debug(
                "job %d succeeded: %s in %.3f s",
                job.id,
                job.task,
                duration,
                extra=_fields(job, "succeeded", duration=duration),
            )
    elif kind is OutcomeKind.RETRY:
        error = _error_text(outcome.error)
        log.warning(
            "job %d will be retried in %.3g s: %s attempt %d raised %s",
            job.id,
            outcome.delay,
            job.task,
            job.attempts,
            error,
            extra=_fields(job, "retry", duration=duration, retry_in=outcome.delay, error=error),
        )
    elif kind is OutcomeKind.FAILED:
        error = _error_text(outcome.error)
        log.warning(
            "job %d failed: %s attempt %d raised %s (no retries left; the job keeps its traceback)",
            job.id,
            job.task,
            job.attempts,
            error,
            extra=_fields(job, "failed", duration=duration, error=error),
        )


def job_settled(jobs: Iterable[JobRecord]) -> None:
    """Jobs of a dead (or stopped) worker that ended ``lost`` or ``failed`` (WARNING)."""
    for job in jobs:
        outcome = job.status.value
        worker = job.worker_id or "?"
        if outcome == "lost":
            message = "job %d lost: %s was at most once and its worker %s died (attempt %d)"
            error = "tock.WorkerDied: at most once, not started again"
        else:
            message = "job %d failed: %s, its worker %s died too often (attempt %d)"
            error = "tock.WorkerDied: past max_rescues"
        log.warning(
            message,
            job.id,
            job.task,
            worker,
            job.attempts,
            extra=_fields(job, outcome, error=error),
        )


# Attributes every LogRecord has: the rest were given with ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, the fields given with ``extra=`` (those of ``tock.job`` first), and
    ``exception`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        given = record.__dict__
        for key in JOB_FIELDS:
            if key in given:
                line[key] = given[key]
        for key, value in given.items():
            if key not in _STANDARD and key not in line and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)
