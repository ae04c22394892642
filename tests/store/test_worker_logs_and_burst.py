"""What a worker says about each job, how ``--burst`` decides it is done, and what a
worker does with an error that is a bug rather than an outage. Real clock, real stores;
waits on results and events, never on sleeps."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from datetime import timedelta
from typing import Any

import pytest

from tock import Context, JobFailed, JobStatus, Tock, TockError
from tock.duties.rescuer import Rescuer, RescuerConfig
from tock.logs import JOB_FIELDS, JsonFormatter
from tock.store import WorkerInfo, is_outage
from tock.worker import worker as worker_module
from tock.worker.worker import Worker, WorkerConfig

from .test_worker import WAIT, running_worker, wait_for


class Flaky(Exception):
    pass


def flaky(ctx: Context, fail_times: int) -> int:
    if ctx.attempt <= fail_times:
        raise Flaky(f"attempt {ctx.attempt}")
    return ctx.attempt


def add(x: int, y: int) -> int:
    return x + y


def job_records(caplog: pytest.LogCaptureFixture, job_id: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tock.job" and getattr(r, "job_id", 0) == job_id]


# -- one record per job event (item: a worker logs nothing per job) ---------------------


def test_retries_and_failure_are_warnings_with_the_jobs_fields(
    real_app: Tock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the default level: no start or success records
    t = real_app.task(name="w.flaky", takes_context=True, retries=1, retry_backoff=0.01)(flaky)
    with running_worker(real_app, queues=("q",)):
        job = t.using(queue="q").enqueue(5)
        with pytest.raises(JobFailed):
            job.result(timeout=WAIT)
        wait_for(lambda: len(job_records(caplog, job.id)) == 2, "two records of the job")
    retry, failed = job_records(caplog, job.id)
    assert [(r.levelno, r.outcome) for r in (retry, failed)] == [  # type: ignore[attr-defined]
        (logging.WARNING, "retry"),
        (logging.WARNING, "failed"),
    ]
    for record, attempt in ((retry, 1), (failed, 2)):
        fields: Any = record
        assert (fields.task, fields.queue, fields.attempt) == ("w.flaky", "q", attempt)
        assert fields.error == f"{__name__}.Flaky: attempt {attempt}"
        assert fields.duration >= 0
    assert retry.retry_in > 0  # type: ignore[attr-defined]
    assert f"job {job.id} will be retried" in retry.getMessage()
    assert f"job {job.id} failed: w.flaky attempt 2 raised" in failed.getMessage()


def test_starts_and_successes_are_debug_records(
    real_app: Tock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tock.job")
    t = real_app.task(name="w.add")(add)
    with running_worker(real_app):
        job = t.enqueue(1, 2)
        assert job.result(timeout=WAIT) == 3
        wait_for(lambda: len(job_records(caplog, job.id)) == 2, "start and success")
    started, succeeded = job_records(caplog, job.id)
    assert [(r.levelno, r.outcome) for r in (started, succeeded)] == [  # type: ignore[attr-defined]
        (logging.DEBUG, "started"),
        (logging.DEBUG, "succeeded"),
    ]
    assert (started.task, started.attempt, started.queue) == ("w.add", 1, "default")  # type: ignore[attr-defined]
    assert succeeded.duration >= 0  # type: ignore[attr-defined]


def test_at_info_a_success_leaves_no_record(
    real_app: Tock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = real_app.task(name="w.add")(add)
    with running_worker(real_app):
        job = t.enqueue(1, 2)
        assert job.result(timeout=WAIT) == 3
    assert job_records(caplog, job.id) == []


def test_json_lines_carry_the_fields() -> None:
    record = logging.LogRecord("tock.job", logging.WARNING, __file__, 1, "job %d", (7,), None)
    for key, value in {"job_id": 7, "task": "t", "queue": "q", "attempt": 2}.items():
        setattr(record, key, value)
    record.custom = {"a": 1}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "job 7"
    assert (line["level"], line["logger"]) == ("WARNING", "tock.job")
    assert line["time"].endswith("Z")
    assert [k for k in line if k in JOB_FIELDS] == ["job_id", "task", "queue", "attempt"]
    assert line["custom"] == {"a": 1}
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exception"]


# -- the rescuer says what it did, and only then (item: 0 back to pending, 0 lost) ------


def test_rescue_of_a_dead_worker_with_no_jobs_is_not_a_warning(
    app: Tock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    dead = WorkerInfo(id="dead-1", hostname="h", pid=1, queues=("default",), concurrency=1)
    app.store.worker_register(dead, now=app.clock.db_now())
    app.clock.advance(seconds=60)  # type: ignore[attr-defined]
    report = Rescuer(app.store, app.clock, RescuerConfig()).run_once()
    assert report.dead_workers == ["dead-1"]
    rescuer = [r for r in caplog.records if r.name == "tock.rescuer"]
    assert [r.levelno for r in rescuer] == [logging.INFO]
    assert "held no jobs" in rescuer[0].getMessage()
    assert "0 back to pending" not in caplog.text


def test_a_lost_job_is_a_warning_with_its_fields(
    app: Tock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = app.task(name="w.once", at_most_once=True, queue="q")(add)
    job = t.enqueue(1, 2)
    dead = WorkerInfo(id="dead-2", hostname="h", pid=1, queues=("q",), concurrency=1)
    app.store.worker_register(dead, now=app.clock.db_now())
    (claimed,) = app.store.job_claim_batch(
        worker_id="dead-2", queues=["q"], limit=1, free=1, now=app.clock.db_now()
    )
    assert claimed.id == job.id
    app.clock.advance(seconds=60)  # type: ignore[attr-defined]
    Rescuer(app.store, app.clock, RescuerConfig()).run_once()
    assert app.store.job_get(job.id).status is JobStatus.LOST
    (summary,) = [r for r in caplog.records if r.name == "tock.rescuer"]
    assert summary.levelno == logging.WARNING
    assert "0 back to pending, 1 lost, 0 failed" in summary.getMessage()
    (lost,) = job_records(caplog, job.id)
    fields: Any = lost
    assert (lost.levelno, fields.outcome, fields.task, fields.queue) == (
        logging.WARNING,
        "lost",
        "w.once",
        "q",
    )
    assert "dead-2" in lost.getMessage()


# -- --burst runs what is due within its horizon ----------------------------------------


def test_burst_runs_a_retry_due_moments_later(real_app: Tock) -> None:
    t = real_app.task(name="w.flaky", takes_context=True, retries=2, retry_backoff=0.05)(flaky)
    job = t.enqueue(1)
    worker = Worker(real_app, WorkerConfig(burst=True, duties=False))
    worker.run(install_signal_handlers=False)  # returns once nothing is due
    record = real_app.store.job_get(job.id)
    assert (record.status, record.attempts) == (JobStatus.SUCCEEDED, 2)


def test_burst_runs_the_fires_its_scheduler_makes(real_app: Tock) -> None:
    real_app.task(name="w.add")(add)
    real_app.schedule("due-now", task="w.add", at=real_app.clock.now(), args=[1, 2])
    worker = Worker(real_app, WorkerConfig(burst=True, duties=True))
    worker.run(install_signal_handlers=False)
    (fire,) = [f for f in real_app.store.fire_list("due-now") if f.job_id is not None]
    assert real_app.store.job_get(fire.job_id).status is JobStatus.SUCCEEDED  # type: ignore[arg-type]


def test_burst_exits_when_the_next_job_is_beyond_its_horizon(real_app: Tock) -> None:
    t = real_app.task(name="w.add")(add)
    later = t.using(run_after=timedelta(minutes=5)).enqueue(1, 2)
    done = threading.Event()
    worker = Worker(real_app, WorkerConfig(burst=True, duties=False))
    thread = threading.Thread(
        target=lambda: (worker.run(install_signal_handlers=False), done.set()), daemon=True
    )
    thread.start()
    assert done.wait(WAIT), "a burst worker waited for a job due in five minutes"
    assert real_app.store.job_get(later.id).status is JobStatus.PENDING


def test_burst_gives_up_on_what_stays_due_and_is_never_taken(
    real_app: Tock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A job this worker cannot take (here: every claim comes back empty, as for a worker
    # whose row was removed) would keep it waiting for ever.
    monkeypatch.setattr(worker_module, "BURST_STUCK", 0.3)
    t = real_app.task(name="w.add")(add)
    job = t.enqueue(1, 2)
    monkeypatch.setattr(real_app.store, "job_claim_batch", lambda **kwargs: [])
    worker = Worker(real_app, WorkerConfig(burst=True, duties=False))
    worker.run(install_signal_handlers=False)
    assert "has stayed due for 0.3 s without this worker taking it" in caplog.text
    assert real_app.store.job_get(job.id).status is JobStatus.PENDING


# -- an error that is a bug stops the worker; an outage does not ------------------------


def test_a_bug_stops_claiming_but_running_jobs_finish_and_are_recorded(
    real_app: Tock, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()

    def gated(x: int) -> int:
        started.set()
        release.wait(WAIT)
        return x

    first = real_app.task(name="w.gated")(gated).enqueue(7)
    store = real_app.store
    real_claim = store.job_claim_batch
    broken = threading.Event()

    def claim(**kwargs: Any) -> Any:
        if broken.is_set():
            raise TypeError("a bug in the claim")
        return real_claim(**kwargs)

    monkeypatch.setattr(store, "job_claim_batch", claim)
    worker = Worker(real_app, WorkerConfig(duties=False))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(install_signal_handlers=False)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(WAIT)
    broken.set()
    later = real_app.task(name="w.add")(add).enqueue(1, 2)  # wakes the claimer: the bug
    wait_for(lambda: worker.claimer.error is not None, "the claimer to meet the bug")
    release.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], TockError)
    # The job that was running finished and its outcome was written; the other waits.
    assert store.job_get(first.id).status is JobStatus.SUCCEEDED
    assert store.job_get(later.id).status is JobStatus.PENDING


def test_a_bug_in_the_claim_stops_the_worker_with_its_traceback(
    real_app: Tock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    store = real_app.store

    def broken(**kwargs: Any) -> Any:
        raise sqlite3.ProgrammingError("Incorrect number of bindings supplied")

    monkeypatch.setattr(store, "job_claim_batch", broken)
    worker = Worker(real_app, WorkerConfig(duties=False))
    with pytest.raises(TockError, match="stopped after an unexpected error: ProgrammingError"):
        worker.run(install_signal_handlers=False)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "cannot reach the store" not in caplog.text
    assert store.worker_list() == []  # it stopped and removed its row


def test_a_locked_database_is_an_outage_the_worker_waits_out(
    real_app: Tock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    t = real_app.task(name="w.add")(add)
    store = real_app.store
    real_claim = store.job_claim_batch
    failures = [2]

    def locked_twice(**kwargs: Any) -> Any:
        if failures[0]:
            failures[0] -= 1
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = 5  # type: ignore[attr-defined]  # SQLITE_BUSY
            raise error
        return real_claim(**kwargs)

    monkeypatch.setattr(store, "job_claim_batch", locked_twice)
    with running_worker(real_app):
        assert t.enqueue(1, 2).result(timeout=WAIT) == 3
    assert "cannot reach the store (database is locked)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _sqlite_error(kind: type[sqlite3.Error], code: int) -> sqlite3.Error:
    error = kind("x")
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (_sqlite_error(sqlite3.OperationalError, 5), True),  # busy
        (_sqlite_error(sqlite3.OperationalError, 6), True),  # locked
        (_sqlite_error(sqlite3.OperationalError, 13), True),  # full
        (_sqlite_error(sqlite3.OperationalError, 10 | (12 << 8)), True),  # an I/O error
        (_sqlite_error(sqlite3.OperationalError, 1), False),  # no such table: a bug
        (sqlite3.ProgrammingError("bindings"), False),
        (sqlite3.InterfaceError("type"), False),
        (sqlite3.IntegrityError("unique"), False),
        (OSError(28, "No space left on device"), True),
        (TypeError("bad argument"), False),
        (KeyError("x"), False),
    ],
)
def test_outage_or_bug(error: BaseException, outage: bool) -> None:
    assert is_outage(error) is outage


def test_tock_and_psycopg_errors_outage_or_bug() -> None:
    from tock.errors import ConnectionLost, SchemaError, StoreError

    assert is_outage(ConnectionLost("lost"))
    assert is_outage(StoreError("cannot connect"))
    assert not is_outage(SchemaError("run `tock migrate`"))
    psycopg = pytest.importorskip("psycopg")
    assert is_outage(psycopg.OperationalError("server closed the connection"))
    assert not is_outage(psycopg.ProgrammingError("syntax error"))
    assert not is_outage(psycopg.errors.UndefinedColumn("no such column"))
