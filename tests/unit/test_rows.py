"""Rows into records: job_record builds a JobRecord positionally, so its order must be
JobRecord's own; a field added to either side shows here first."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from tock.jobs import JobRecord, JobStatus
from tock.store._rows import COLUMNS, job_record

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_every_column_lands_in_its_own_field() -> None:
    # A distinct value per column, in COLUMNS order.
    row = (
        42,  # id
        "mod.task",  # task
        "emails",  # queue
        7,  # priority
        "failed",  # status
        '[1, "a"]',  # args
        '{"k": 2}',  # kwargs
        T0,  # run_at
        T0 + timedelta(seconds=1),  # created_at
        T0 + timedelta(seconds=2),  # started_at
        T0 + timedelta(seconds=3),  # finished_at
        3,  # attempts
        1,  # rescues
        5,  # retries
        2.5,  # retry_backoff
        '["builtins.OSError"]',  # retry_on
        9.0,  # timeout
        1,  # at_most_once
        4,  # max_rescues
        "key-1",  # unique_key
        "worker-1",  # worker_id
        1234,  # claim_token
        '{"ok": true}',  # result
        '{"type": "E", "message": "m", "traceback": ""}',  # error
    )
    assert len(row) == len(COLUMNS.split(","))
    expected = JobRecord(
        id=42,
        task="mod.task",
        status=JobStatus.FAILED,
        queue="emails",
        priority=7,
        args=[1, "a"],
        kwargs={"k": 2},
        run_at=T0,
        created_at=T0 + timedelta(seconds=1),
        attempts=3,
        rescues=1,
        retries=5,
        retry_backoff=2.5,
        retry_on=("builtins.OSError",),
        timeout=9.0,
        at_most_once=True,
        max_rescues=4,
        unique_key="key-1",
        started_at=T0 + timedelta(seconds=2),
        finished_at=T0 + timedelta(seconds=3),
        worker_id="worker-1",
        claim_token=1234,
        result={"ok": True},
        error={"type": "E", "message": "m", "traceback": ""},
    )
    got = job_record(row, lambda t: t)
    for f in dataclasses.fields(JobRecord):
        assert getattr(got, f.name) == getattr(expected, f.name), f.name


def test_empty_kwargs_and_missing_outcomes() -> None:
    row = (1, "t", "default", 0, "pending", "[]", "{}", T0, T0, None, None, 0, 0, 0, 1.0,
           '["builtins.Exception"]', None, 0, 5, None, None, None, None, None)  # fmt: skip
    got = job_record(row, lambda t: t)
    assert got.kwargs == {} and got.result is None and got.error is None
    assert got.started_at is None and got.at_most_once is False
