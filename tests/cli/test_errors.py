"""Failures of the database or the operating system that reach a command are one line,
``Error: ...`` and exit 1, never a traceback."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import tock.store.sqlite.store as sqlite_store

from .helpers import Project, assert_error


def test_a_locked_database_is_one_line(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = project.mod.boom.enqueue("x")
    project.drain()
    project.app.close()  # the next connection is opened with the short busy timeout below
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 50)
    holder = sqlite3.connect(project.path / "tock.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = project.invoke("jobs", "retry", str(bad.id))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_error(result, "database is locked", "write lock")


def test_an_os_error_is_one_line(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    project.mod.add.enqueue(1, 2)
    monkeypatch.setattr(sqlite_store.SQLiteStore, "job_page", full)
    assert_error(project.invoke("jobs", "list"), "No space left on device")


def test_an_sqlite_error_that_is_not_a_lock_is_one_line(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.DatabaseError("database disk image is malformed")

    project.mod.add.enqueue(1, 2)
    monkeypatch.setattr(sqlite_store.SQLiteStore, "job_page", broken)
    assert_error(project.invoke("jobs", "list"), "SQLite database answered", "malformed")
