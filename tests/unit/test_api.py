"""The public names users and outside tests rely on are exported, and behave as documented."""

from __future__ import annotations

import inspect

import pytest

import tock
from tock import JobStatus

PROMISED = {
    "Tock",
    "Context",
    "Job",
    "JobStatus",
    "JobFailed",
    "JobCanceled",
    "JobLost",
    "JobTimeout",
    "JobNotFound",
    "ConfigurationError",
    "SchemaError",
    "StoreError",
    "TockError",
    "FakeClock",
    "JobStateError",
    "JobPage",
}


def test_all_exports_the_promised_names() -> None:
    assert set(tock.__all__) >= PROMISED


def test_every_exported_name_exists_once() -> None:
    assert len(tock.__all__) == len(set(tock.__all__))
    for name in tock.__all__:
        assert hasattr(tock, name), name


def test_exported_members_are_the_public_ones() -> None:
    public = {
        name
        for name, value in vars(tock).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= set(tock.__all__), public - set(tock.__all__)


def test_version() -> None:
    assert isinstance(tock.__version__, str) and tock.__version__


def test_job_status_values() -> None:
    assert [s.value for s in JobStatus] == [
        "blocked",
        "pending",
        "running",
        "succeeded",
        "failed",
        "canceled",
        "lost",
    ]
    assert JobStatus("pending") == "pending"
    assert {s for s in JobStatus if s.finished} == {"succeeded", "failed", "canceled", "lost"}


@pytest.mark.parametrize(
    "name",
    [
        "JobFailed",
        "JobCanceled",
        "JobLost",
        "JobTimeout",
        "JobNotFound",
        "ConfigurationError",
        "SchemaError",
        "StoreError",
        "NoDatabase",
        "ConnectionLost",
    ],
)
def test_errors_are_tock_errors_named_as_imported(name: str) -> None:
    cls = getattr(tock, name)
    assert issubclass(cls, tock.TockError)
    assert f"{cls.__module__}.{cls.__qualname__}" == f"tock.{name}"


def test_error_families() -> None:
    assert issubclass(tock.ConfigurationError, ValueError)
    assert issubclass(tock.JobNotFound, LookupError)
    assert issubclass(tock.SchemaError, tock.StoreError)
    assert issubclass(tock.NoDatabase, tock.StoreError)
    assert not issubclass(tock.JobTimeout, OSError)


def test_job_failed_attributes() -> None:
    err = tock.JobFailed(3, "builtins.ValueError", "boom", "tb")
    assert (err.job_id, err.type, err.message, err.traceback) == (
        3,
        "builtins.ValueError",
        "boom",
        "tb",
    )
    assert "boom" in str(err)


def test_context_fields() -> None:
    ctx = tock.Context(job_id=1, attempt=1, task="t", queue="default")
    assert not ctx.canceled.is_set()
    assert ctx.logger is not None
