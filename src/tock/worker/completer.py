"""Outcomes of finished attempts, and starts of attempts, buffered until the claimer
writes them in a batch.

An attempt counts when it starts (a claimed job may wait in the prefetch): the executor
notes each start here and the claimer records it with its next batch, in the statement
of the batch. A job that ends before that batch has its start recorded by its outcome
(no statement of its own: the hot path of short jobs costs nothing more), and a start
younger than ``START_AFTER`` waits for a later batch, since most such jobs end first.
"""

from __future__ import annotations

import json
import random
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tock._validate import encode_result
from tock.jobs import JobId, JobRecord, Outcome, OutcomeKind, Start
from tock.tasks import qualified_name

MAX_BACKOFF = 3600.0  # docs/design.md: backoff doubles per retry, capped at 1 h, jitter ±25 %
#: seconds a start of a job still running may wait for a later batch (a job that short
#: likely ends first; the claimer turns at least every ``FLUSH_AFTER``, 25 ms, while it
#: holds jobs, so a start is recorded within about that). Longer, and a worker busy with
#: jobs of a few tens of milliseconds would show them all as claimed, none running.
START_AFTER = 0.005


class Completions:
    """A thread-safe buffer: executor threads add outcomes, the claimer's lanes drain
    them per batch (with ``--claimers`` > 1, several at once)."""

    def __init__(
        self, on_add: Callable[[], None], monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        # A deque: append and popleft are atomic, so adding takes no lock and the
        # threads that finish jobs never wait for one another here.
        self._items: deque[Outcome] = deque()
        self._on_add = on_add
        self._starts: deque[tuple[JobId, int, float]] = deque()  # (id, token, monotonic)
        self._monotonic = monotonic
        self._taking = threading.Lock()  # claimer lanes only: never an executor thread

    def start(self, job: JobRecord) -> None:
        """The executor begins ``job``'s attempt (before its outcome can be added)."""
        assert job.claim_token is not None
        self._starts.append((job.id, job.claim_token, self._monotonic()))

    def add(self, outcome: Outcome) -> None:
        self._items.append(outcome)
        self._on_add()

    def drain(self) -> list[Outcome]:
        """Take every outcome buffered now. Each ``popleft`` is atomic, so an outcome goes
        to exactly one of several lanes draining at once; one that finds the buffer
        emptied by another meanwhile stops there with what it took."""
        items = self._items
        taken = []
        for _ in range(len(items)):
            try:
                taken.append(items.popleft())
            except IndexError:
                break
        return taken

    def take(self) -> tuple[list[Outcome], list[Start]]:
        """A batch to write: every outcome buffered now, then the starts that go with it
        (``take_starts``), one lane at a time. Taken together, no two lanes' batches
        hold one job's start and the other's outcome each way round: on PostgreSQL two
        such batches in flight at once would each lock a row the other writes."""
        with self._taking:
            outcomes = self.drain()
            return outcomes, self.take_starts(outcomes)

    def take_starts(self, outcomes: Sequence[Outcome], min_age: float = START_AFTER) -> list[Start]:
        """The starts to write with ``outcomes`` (drained just before): those of jobs
        that end in them, and those older than ``min_age`` seconds; the others stay for
        a later batch. Every outcome's start is here or was taken by an earlier batch:
        a start is noted before its outcome is added, and outcomes are drained first."""
        starts = self._starts
        if not starts:
            return []
        now = self._monotonic()
        ended = {o.job_id for o in outcomes}
        taken: list[Start] = []
        kept = []
        for _ in range(len(starts)):
            try:
                job_id, token, at = starts.popleft()
            except IndexError:  # defensive: lanes take one at a time (take)
                break
            if job_id in ended or now - at >= min_age:
                taken.append(Start(job_id, token, now - at))
            else:
                kept.append((job_id, token, at))
        if kept:
            starts.extend(kept)
        return taken

    def restore_starts(self, starts: Sequence[Start]) -> None:
        """Put back starts a failed write did not record."""
        now = self._monotonic()
        self._starts.extend((s.job_id, s.token, now - s.ago) for s in starts)

    def __len__(self) -> int:
        return len(self._items)


def backoff(base: float, retry: int, rng: random.Random) -> float:
    """Seconds before the ``retry``-th retry (from 1): base * 2^(retry-1), ±25 %, ≤ 1 h."""
    return min(base * 2.0 ** (retry - 1) * rng.uniform(0.75, 1.25), MAX_BACKOFF)


def succeeded(job: JobRecord, value: object) -> Outcome:
    assert job.claim_token is not None
    try:
        text = encode_result(value)
    except TypeError as exc:
        return failed_with(job, exc, "", retry=False)
    return Outcome(job.id, job.claim_token, OutcomeKind.SUCCEEDED, result=text)


_WORKER_DIR = str(Path(__file__).resolve().parent)


def format_traceback(exc: BaseException) -> str:
    """The traceback from the task's own frames on: the worker's frames above it say
    nothing to the reader of a failed job."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(_WORKER_DIR):
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


#: earlier errors a job's error keeps (docs/design.md: the errors of earlier attempts)
MAX_EARLIER_ERRORS = 50

#: an attribute a task's own layer may set on the exception it lets through: the seconds
#: before the retry, instead of the task's backoff (the Django tasks backend's callable)
RETRY_DELAY_ATTR = "__tock_retry_delay__"


def error_json(type_name: str, message: str, tb: str, job: JobRecord | None = None) -> str:
    """The error of an attempt, as JSON. With the job: the worker and the attempt it
    ended, and the errors of the job's earlier attempts (``earlier``, oldest first, the
    last ``MAX_EARLIER_ERRORS``), so a job keeps one error per failed attempt."""
    error: dict[str, Any] = {"type": type_name, "message": message, "traceback": tb}
    if job is not None and job.worker_id is not None:
        error["worker"] = job.worker_id
        error["attempt"] = job.attempts
        previous = job.error
        if previous:
            earlier = [
                *previous.get("earlier", ()),
                {k: v for k, v in previous.items() if k != "earlier"},
            ]
            error["earlier"] = earlier[-MAX_EARLIER_ERRORS:]
    return json.dumps(error)


def failed_with(
    job: JobRecord,
    exc: BaseException,
    tb: str | None = None,
    *,
    retry: bool = True,
    rng: random.Random | None = None,
    type_name: str | None = None,
) -> Outcome:
    """The outcome of an attempt that raised: a retry if one is left and allowed."""
    assert job.claim_token is not None
    if tb is None:
        tb = format_traceback(exc)
    error = error_json(type_name or qualified_name(type(exc)), str(exc), tb, job)
    names = job.retry_on
    retryable = retry and any(qualified_name(c) in names for c in type(exc).__mro__)
    errors = job.errors_so_far  # this attempt included
    if retryable and errors <= job.retries:
        delay = getattr(exc, RETRY_DELAY_ATTR, None)
        if not isinstance(delay, int | float) or not 0 <= delay < float("inf"):
            delay = backoff(job.retry_backoff, errors, rng or random.Random())
        delay = min(float(delay), MAX_BACKOFF)
        return Outcome(job.id, job.claim_token, OutcomeKind.RETRY, error=error, delay=delay)
    return Outcome(job.id, job.claim_token, OutcomeKind.FAILED, error=error)


def failed_plainly(job: JobRecord, type_name: str, message: str) -> Outcome:
    """A failure Tock itself decides (unknown task): never retried."""
    assert job.claim_token is not None
    return Outcome(
        job.id, job.claim_token, OutcomeKind.FAILED, error=error_json(type_name, message, "", job)
    )


def canceled(job: JobRecord) -> Outcome:
    """A started attempt stopped on request (``tock jobs stop``): the job ends canceled,
    never retried, whatever the task did after (docs/design.md: Commands)."""
    assert job.claim_token is not None
    return Outcome(job.id, job.claim_token, OutcomeKind.CANCELED)


def released(job: JobRecord) -> Outcome:
    assert job.claim_token is not None
    return Outcome(job.id, job.claim_token, OutcomeKind.RELEASED)
