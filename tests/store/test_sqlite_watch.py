"""SQLite's watch (docs/design.md: Idle wake-up): another connection's commit calls back,
through inotify on the write-ahead log where Linux has it and through the poll
elsewhere; the notifications survive checkpoints and a log made anew. Every test waits
for events: none measures a duration."""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import tock.store.sqlite.watch as watch_module
from tock import Tock
from tock.store.sqlite.watch import SQLiteWatch, WalEvents

LINUX = sys.platform.startswith("linux")
WAIT = 30.0  # seconds: a bound for a stuck test, never a measure


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "tock.db"
    app = Tock(f"sqlite:///{path}")
    app.migrate()
    app.close()
    yield path


def commit(path: Path, name: str) -> None:
    """One write transaction on a connection of its own, closed after."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO tock_queues (name, paused, updated_at) VALUES (?, 0, 0)", (name,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def watching(path: Path, callback, **kwargs) -> SQLiteWatch:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    watch = SQLiteWatch(connect, "PRAGMA data_version", Path(f"{path}-wal"), callback, **kwargs)
    assert watch.wait_ready(WAIT)
    return watch


def test_job_watch_calls_back_on_another_connections_commit(db: Path) -> None:
    app = Tock(f"sqlite:///{db}")
    other = Tock(f"sqlite:///{db}")
    woke = threading.Event()
    watch = app.store.job_watch(woke.set)
    try:
        assert watch.wait_ready(WAIT)
        assert watch.notified == LINUX
        other.store.queue_pause("default", now=None)
        assert woke.wait(WAIT)
    finally:
        watch.close()
        app.close()
        other.close()


def test_job_watch_calls_back_on_the_stores_own_commit(db: Path) -> None:
    """A commit of the watching store itself calls back too (its scheduler's fires are
    new work for its claimer); the store counts it as its own before it is published."""
    app = Tock(f"sqlite:///{db}")
    woke = threading.Event()
    watch = app.store.job_watch(woke.set)
    try:
        assert watch.wait_ready(WAIT)
        before = app.store._commits
        app.store.queue_pause("default", now=None)
        assert app.store._commits == before + 1
        assert woke.wait(WAIT)
    finally:
        watch.close()
        app.close()


@pytest.mark.skipif(not LINUX, reason="inotify is Linux's")
def test_notifications_alone_call_back(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the safety poll out of the way (an hour), only a notification can call back:
    each of several commits in turn does, and so do those after checkpoints that restart
    the log and truncate it."""
    monkeypatch.setattr(watch_module, "SAFETY_INTERVAL", 3600.0)
    woke = threading.Event()
    watch = watching(db, woke.set)
    checkpoints = sqlite3.connect(db, isolation_level=None)
    try:
        assert watch.notified
        for i, checkpoint in enumerate([None, None, "RESTART", "TRUNCATE", "PASSIVE", None]):
            if checkpoint is not None:
                checkpoints.execute(f"PRAGMA wal_checkpoint({checkpoint})")
            woke.clear()
            commit(db, f"q{i}")
            assert woke.wait(WAIT), f"commit {i} (after {checkpoint}) called nothing back"
    finally:
        checkpoints.close()
        watch.close()


@pytest.mark.skipif(not LINUX, reason="inotify is Linux's")
def test_notifications_through_a_symlinked_path(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database opened through a symbolic link in another directory: SQLite keeps its
    log beside the file itself, and that is the one watched."""
    monkeypatch.setattr(watch_module, "SAFETY_INTERVAL", 3600.0)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = elsewhere / "link.db"
    link.symlink_to(db)
    app = Tock(f"sqlite:///{link}")
    woke = threading.Event()
    watch = app.store.job_watch(woke.set)
    try:
        assert watch.wait_ready(WAIT)
        assert watch.notified
        commit(db, "q")
        assert woke.wait(WAIT)
    finally:
        watch.close()
        app.close()


def test_without_notifications_the_poll_calls_back(db: Path) -> None:
    woke = threading.Event()
    watch = watching(db, woke.set, events=lambda wal: None)
    try:
        assert not watch.notified
        for i in range(3):
            woke.clear()
            commit(db, f"q{i}")
            assert woke.wait(WAIT)
    finally:
        watch.close()


class Deaf:
    """Notifications that never report a write (a file system whose writes go
    unreported): remembers how long each wait was asked to be."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []
        self.asked = threading.Event()
        self.closed = False

    def wait(self, timeout: float) -> bool:
        self.timeouts.append(timeout)
        self.asked.set()
        threading.Event().wait(min(timeout, 0.01))
        return False

    def take(self) -> bool:
        return False

    def wake(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_a_commit_no_write_announced_turns_the_poll_on(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notifications that miss a commit are not trusted alone any more: the watch polls
    at WATCH_INTERVAL from then on (the waits it asks for say so)."""
    monkeypatch.setattr(watch_module, "UNANNOUNCED", 0.0)
    deaf = Deaf()
    woke = threading.Event()
    watch = watching(db, woke.set, events=lambda wal: deaf)  # type: ignore[arg-type,return-value]
    try:
        assert watch.notified
        assert deaf.asked.wait(WAIT)
        assert deaf.timeouts[0] == watch_module.SAFETY_INTERVAL
        commit(db, "q")
        assert woke.wait(WAIT)
        deaf.asked.clear()
        assert deaf.asked.wait(WAIT)
        assert deaf.timeouts[-1] == watch_module.WATCH_INTERVAL
    finally:
        watch.close()
    assert deaf.closed


def test_close_stops_the_thread_without_a_commit(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """close() wakes the thread where it waits (with the poll an hour away, it would
    wait that long otherwise)."""
    monkeypatch.setattr(watch_module, "SAFETY_INTERVAL", 3600.0)
    monkeypatch.setattr(watch_module, "WATCH_INTERVAL", 3600.0)
    calls: list[int] = []
    for events in (WalEvents.open, lambda wal: None):
        watch = watching(db, lambda: calls.append(1), events=events)
        watch.close()
        watch.close()  # twice is harmless
    assert calls == []


@pytest.mark.skipif(not LINUX, reason="inotify is Linux's")
def test_wal_events_follow_the_log_made_anew(tmp_path: Path) -> None:
    """The log does not exist yet, is made, written, removed with the last connection
    and made again: each time a commit is reported."""
    path = tmp_path / "t.db"
    events = WalEvents.open(Path(f"{path}-wal"))
    assert events is not None
    try:
        for round_ in range(3):
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
            events.take()
            conn.execute("INSERT INTO t VALUES (?)", (round_,))
            assert wait_for(events), f"round {round_}: no write reported"
            conn.close()  # the last connection: SQLite removes the log
            assert not Path(f"{path}-wal").exists()
    finally:
        events.close()


@pytest.mark.skipif(not LINUX, reason="inotify is Linux's")
def test_wal_events_follow_a_log_renamed_into_place(tmp_path: Path) -> None:
    wal = tmp_path / "t.db-wal"
    wal.write_bytes(b"")
    events = WalEvents.open(wal)
    assert events is not None
    try:
        wal.unlink()
        fresh = tmp_path / "fresh"
        fresh.write_bytes(b"")
        fresh.rename(wal)
        assert wait_for(events)  # the new file itself
        events.take()
        with wal.open("ab") as f:
            f.write(b"frame")
        assert wait_for(events)  # a write to it
        other = tmp_path / "other-wal"
        other.write_bytes(b"x")  # another file of the directory: nothing
        assert not events.wait(0)
    finally:
        events.close()


def wait_for(events: WalEvents) -> bool:
    return any(events.wait(0.1) for _ in range(int(WAIT / 0.1)))
