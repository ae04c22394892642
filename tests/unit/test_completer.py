"""The retry policy: tock.worker.completer decides retry or failure for an attempt."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from tock.jobs import JobRecord, JobStatus, OutcomeKind, Start
from tock.worker import completer
from tock.worker.completer import (
    MAX_BACKOFF,
    START_AFTER,
    Completions,
    backoff,
    failed_plainly,
    failed_with,
    released,
    succeeded,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Custom(Exception):
    pass


class SubCustom(Custom):
    pass


class Fatal(BaseException):
    pass


def running(
    *,
    attempts: int = 1,
    rescues: int = 0,
    retries: int = 0,
    retry_backoff: float = 1.0,
    retry_on: tuple[str, ...] = ("builtins.Exception",),
) -> JobRecord:
    return JobRecord(
        id=7,
        task="t",
        status=JobStatus.RUNNING,
        queue="default",
        priority=0,
        args=[],
        kwargs={},
        run_at=T0,
        created_at=T0,
        attempts=attempts,
        rescues=rescues,
        retries=retries,
        retry_backoff=retry_backoff,
        retry_on=retry_on,
        claim_token=99,
        worker_id="w",
    )


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_no_retries_fails_at_once() -> None:
    outcome = failed_with(running(), raised(ValueError("boom")), rng=random.Random(1))
    assert outcome.kind is OutcomeKind.FAILED
    assert (outcome.job_id, outcome.token) == (7, 99)
    error = json.loads(outcome.error)
    assert error["type"] == "builtins.ValueError"
    assert error["message"] == "boom"
    assert "ValueError: boom" in error["traceback"]


@pytest.mark.parametrize("retries", [1, 2, 5])
def test_retries_count(retries: int) -> None:
    rng = random.Random(3)
    kinds = [
        failed_with(running(attempts=n, retries=retries), ValueError("x"), rng=rng).kind
        for n in range(1, retries + 2)
    ]
    assert kinds == [OutcomeKind.RETRY] * retries + [OutcomeKind.FAILED]


def test_rescues_do_not_use_up_retries() -> None:
    # Three attempts, two of them ended by a dead worker: one error so far.
    outcome = failed_with(
        running(attempts=3, rescues=2, retries=1), ValueError("x"), rng=random.Random(0)
    )
    assert outcome.kind is OutcomeKind.RETRY
    assert (
        failed_with(running(attempts=4, rescues=2, retries=1), ValueError("x")).kind
        is OutcomeKind.FAILED
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("base", [0.5, 1.0, 3.0])
def test_backoff_doubles_with_jitter(n: int, base: float) -> None:
    rng = random.Random(n * 100 + int(base * 10))
    nominal = base * 2 ** (n - 1)
    delays = [
        failed_with(
            running(attempts=n, retries=10, retry_backoff=base), ValueError("x"), rng=rng
        ).delay
        for _ in range(200)
    ]
    assert all(0.75 * nominal <= d <= 1.25 * nominal for d in delays)
    assert max(delays) - min(delays) > 0.2 * nominal  # the jitter is real
    assert abs(sum(delays) / len(delays) - nominal) < 0.1 * nominal


def test_backoff_is_capped_at_an_hour() -> None:
    assert MAX_BACKOFF == 3600.0
    rng = random.Random(5)
    delays = [
        failed_with(
            running(attempts=20, retries=30, retry_backoff=10.0), ValueError("x"), rng=rng
        ).delay
        for _ in range(50)
    ]
    assert all(d <= 3600.0 for d in delays)
    assert max(delays) == 3600.0
    assert backoff(1.0, 13, random.Random(0)) == 3600.0


def test_backoff_is_deterministic_with_a_seeded_rng() -> None:
    a = [backoff(2.0, n, random.Random(42)) for n in range(1, 6)]
    b = [backoff(2.0, n, random.Random(42)) for n in range(1, 6)]
    assert a == b


@pytest.mark.parametrize(
    ("retry_on", "exc", "kind"),
    [
        (("builtins.OSError",), ConnectionError("x"), OutcomeKind.RETRY),
        (("builtins.OSError",), OSError("x"), OutcomeKind.RETRY),
        (("builtins.OSError",), ValueError("x"), OutcomeKind.FAILED),
        ((f"{__name__}.Custom",), SubCustom("x"), OutcomeKind.RETRY),
        ((f"{__name__}.SubCustom",), Custom("x"), OutcomeKind.FAILED),
        (("builtins.Exception",), SubCustom("x"), OutcomeKind.RETRY),
        (("builtins.ValueError", "builtins.KeyError"), KeyError("x"), OutcomeKind.RETRY),
        (("builtins.Exception",), SystemExit(1), OutcomeKind.FAILED),
        (("builtins.Exception",), KeyboardInterrupt(), OutcomeKind.FAILED),
        (("builtins.Exception",), Fatal(), OutcomeKind.FAILED),
        ((f"{__name__}.Fatal",), Fatal(), OutcomeKind.RETRY),
    ],
)
def test_retry_on_matches_subclasses_by_name(
    retry_on, exc: BaseException, kind: OutcomeKind
) -> None:
    outcome = failed_with(running(retries=3, retry_on=retry_on), raised(exc), rng=random.Random(0))
    assert outcome.kind is kind
    if kind is OutcomeKind.FAILED:
        assert outcome.delay == 0


@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (SystemExit(2), "builtins.SystemExit"),
        (KeyboardInterrupt(), "builtins.KeyboardInterrupt"),
        (Fatal("f"), f"{__name__}.Fatal"),
    ],
)
def test_base_exceptions_recorded_as_failure(exc: BaseException, name: str) -> None:
    outcome = failed_with(running(retries=3), raised(exc))
    assert outcome.kind is OutcomeKind.FAILED
    assert json.loads(outcome.error)["type"] == name


def test_retry_keeps_the_error() -> None:
    outcome = failed_with(running(retries=1), raised(Custom("why")), rng=random.Random(0))
    assert outcome.kind is OutcomeKind.RETRY
    assert json.loads(outcome.error)["type"] == f"{__name__}.Custom"
    assert json.loads(outcome.error)["message"] == "why"


def test_retry_false_and_type_name() -> None:
    outcome = failed_with(
        running(retries=3), ValueError("t"), "", retry=False, type_name="tock.JobTimeout"
    )
    assert outcome.kind is OutcomeKind.FAILED
    assert json.loads(outcome.error) == {
        "type": "tock.JobTimeout",
        "message": "t",
        "traceback": "",
        "worker": "w",
        "attempt": 1,
    }


def test_an_error_keeps_the_errors_of_earlier_attempts() -> None:
    job = running(retries=5, attempts=1)
    first = json.loads(failed_with(job, raised(ValueError("one"))).error)
    assert "earlier" not in first
    job.error, job.attempts, job.worker_id = first, 2, "w2"
    second = json.loads(failed_with(job, raised(KeyError("two"))).error)
    job.error, job.attempts, job.worker_id = second, 3, "w3"
    third = json.loads(failed_with(job, raised(OSError("three"))).error)
    assert [e["type"] for e in [*third["earlier"], third]] == [
        "builtins.ValueError",
        "builtins.KeyError",
        "builtins.OSError",
    ]
    assert [(e["worker"], e["attempt"]) for e in [*third["earlier"], third]] == [
        ("w", 1),
        ("w2", 2),
        ("w3", 3),
    ]
    assert all("earlier" not in e for e in third["earlier"])


def test_earlier_errors_are_capped() -> None:
    job = running(retries=1000, attempts=1)
    for attempt in range(1, completer.MAX_EARLIER_ERRORS + 5):
        job.attempts = attempt
        job.error = json.loads(failed_with(job, raised(ValueError(str(attempt)))).error)
    assert job.error is not None
    assert len(job.error["earlier"]) == completer.MAX_EARLIER_ERRORS
    assert job.error["earlier"][-1]["message"] == str(attempt - 1)


def test_a_delay_set_on_the_exception_wins_over_the_backoff() -> None:
    exc = raised(ValueError("later"))
    setattr(exc, completer.RETRY_DELAY_ATTR, 42.0)
    outcome = failed_with(running(retries=1, retry_backoff=1.0), exc)
    assert outcome.kind is OutcomeKind.RETRY and outcome.delay == 42.0
    setattr(exc, completer.RETRY_DELAY_ATTR, float("nan"))  # not a delay: the backoff
    outcome = failed_with(running(retries=1, retry_backoff=1.0), exc, rng=random.Random(1))
    assert 0.75 <= outcome.delay <= 1.25


def test_succeeded_encodes_the_result() -> None:
    outcome = succeeded(running(), {"a": (1, 2)})
    assert outcome.kind is OutcomeKind.SUCCEEDED
    assert json.loads(outcome.result) == {"a": [1, 2]}


@pytest.mark.parametrize("value", [object(), {1, 2}, float("nan"), {1: "a"}, "nul\x00"], ids=repr)
def test_result_that_is_not_json_fails_without_retry(value: object) -> None:
    outcome = succeeded(running(retries=3), value)
    assert outcome.kind is OutcomeKind.FAILED
    error = json.loads(outcome.error)
    assert error["type"] == "builtins.TypeError"
    assert "return value" in error["message"]


def test_failed_plainly_and_released() -> None:
    outcome = failed_plainly(running(retries=3), "tock.UnknownTask", "no task named 'x'")
    assert outcome.kind is OutcomeKind.FAILED
    assert json.loads(outcome.error)["type"] == "tock.UnknownTask"
    back = released(running())
    assert (back.kind, back.job_id, back.token) == (OutcomeKind.RELEASED, 7, 99)


# -- starts: recorded with a batch, or by the job's own outcome --------------------------


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def job(job_id: int) -> JobRecord:
    record = running()
    record.id, record.claim_token = job_id, job_id * 10
    return record


def test_a_start_goes_with_the_outcome_of_its_job() -> None:
    """The hot path: a job that ends before the batch has its start written by its
    outcome, and no start is left to write on its own."""
    ticks = Ticks()
    buffer = Completions(on_add=lambda: None, monotonic=ticks)
    buffer.start(job(1))
    ticks.now += 0.002
    buffer.add(succeeded(job(1), None))
    outcomes = buffer.drain()
    assert buffer.take_starts(outcomes) == [Start(1, 10, pytest.approx(0.002))]
    assert buffer.take_starts([]) == []


def test_starts_of_running_jobs_wait_until_they_are_old_enough() -> None:
    ticks = Ticks()
    buffer = Completions(on_add=lambda: None, monotonic=ticks)
    buffer.start(job(1))
    ticks.now += START_AFTER / 2
    buffer.start(job(2))
    assert buffer.take_starts([]) == []  # both may end before the next batch
    ticks.now += START_AFTER * 0.75
    assert buffer.take_starts([]) == [Start(1, 10, pytest.approx(START_AFTER * 1.25))]
    ticks.now += START_AFTER
    assert buffer.take_starts([]) == [Start(2, 20, pytest.approx(START_AFTER * 1.75))]
    # A batch that failed puts its starts back, with their age.
    buffer.restore_starts([Start(2, 20, START_AFTER * 1.75)])
    ticks.now += 1.0
    assert buffer.take_starts([]) == [Start(2, 20, pytest.approx(START_AFTER * 1.75 + 1.0))]
