"""How an idle SQLite worker notices another connection's commit (docs/design.md: Idle
wake-up).

``PRAGMA data_version``, read on a connection of the watch's own, changes whenever
another connection has committed. Reading it is cheap; waking a thread to read it is not
(tens of microseconds of CPU each time), so the watch does not poll it fast:

- On Linux, an inotify watch on the write-ahead log says when a writer appends to it. A
  commit writes its frames there, syncs them, then publishes them in the log's index:
  the watch reads ``data_version`` at once and, while it has not changed (the sync is
  under way), again after 0.1 ms, then at steps half as long again each time (at most
  ``MAX_STEP``), for ``LOOK_FOR`` after the last write it saw.
- Under the notifications, a poll every ``SAFETY_INTERVAL`` (0.1 s). If it ever finds a
  commit while no write was seen for ``UNANNOUNCED`` (1 s: a file system whose writes go
  unreported), the watch polls every ``WATCH_INTERVAL`` (20 ms) from then on.
- Where inotify cannot be had (other systems; the number of inotify instances per user
  is limited), the poll every ``WATCH_INTERVAL`` is the whole mechanism.
- After a call back on a commit that was not the store's own, the watch looks again only
  ``WATCH_WINDOW`` (5 ms) later: a stream of commits (other workers draining their
  queues) wakes it once per window at most, not once per commit (as PostgreSQL's hints:
  one per 5 ms window).
- A change that came with a commit of the store's own (its claims, completions and
  heartbeats: nothing its claimer does not know, most likely) calls back when the poll
  did, at its next tick (every ``WATCH_INTERVAL``), unless another's commit comes first:
  the store's own work keeps the rhythm it had, not one in step with its commits.

The log's directory is watched too, for the log's name only: SQLite removes the log when
the last connection to the database closes and the next one creates it anew, a new file
that is watched from then on.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import math
import os
import select
import sqlite3
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "FIRST_STEP",
    "LOOK_FOR",
    "MAX_STEP",
    "SAFETY_INTERVAL",
    "UNANNOUNCED",
    "WATCH_INTERVAL",
    "WATCH_WINDOW",
    "SQLiteWatch",
    "WalEvents",
]

WATCH_INTERVAL = 0.02  # the poll without notifications (or once they missed a commit)
SAFETY_INTERVAL = 0.1  # the poll under notifications
WATCH_WINDOW = 0.005  # after a call back, the watch looks again this much later at the soonest
# After a write to the log, the looks until its commit is published (a sync of the log
# takes a few hundred µs, far more on a busy disk): the first FIRST_STEP later, each next
# step half as long again, at most MAX_STEP, for LOOK_FOR after the last write seen.
FIRST_STEP = 0.0001
MAX_STEP = 0.002
LOOK_FOR = 0.02
# A commit found by a poll with no write seen for this long: writes go unreported here.
UNANNOUNCED = 1.0

# <sys/inotify.h>
_IN_MODIFY = 0x00000002
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_IN_IGNORED = 0x00008000
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_NEW = _IN_CREATE | _IN_MOVED_TO
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        for name in ("inotify_init1", "inotify_add_watch"):
            getattr(libc, name).restype = ctypes.c_int
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError):
        return None
    return libc


class WalEvents:
    """Writes to one write-ahead log, through inotify (Linux): ``wait`` returns True once
    some writer appended to it (or created it anew). ``open`` returns None where inotify
    cannot be had; the caller then polls."""

    def __init__(self, libc: ctypes.CDLL, fd: int, wal: Path) -> None:
        self._libc = libc
        self._fd = fd
        self._wal = wal
        self._name = os.fsencode(wal.name)
        self._file_wd: int | None = None
        self._dir_wd = self._add(wal.parent, _NEW | _IN_ONLYDIR)  # entries made, no writes
        self._watch_file()
        self._woken, self._waker = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._closing = threading.Lock()  # wake() never writes to a descriptor reused
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._poll.register(self._woken, select.POLLIN)

    @classmethod
    def open(cls, wal: Path) -> WalEvents | None:
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None  # EMFILE: this user's inotify instances are used up
        try:
            return cls(libc, fd, wal)
        except OSError:
            os.close(fd)
            return None

    def _add(self, path: Path, mask: int) -> int:
        wd = int(self._libc.inotify_add_watch(self._fd, os.fsencode(path), mask))
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(path))
        return wd

    def _watch_file(self) -> None:
        """Watch the log's writes, if it exists (else its creation brings it here)."""
        try:
            self._file_wd = self._add(self._wal, _IN_MODIFY)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for writes to the log, or for ``wake``; True if
        writes came (all of those already queued are taken)."""
        ready = self._poll.poll(max(0, math.ceil(timeout * 1000)))
        if any(fd == self._woken for fd, _ in ready):
            return False
        return bool(ready) and self.take()

    def wake(self) -> None:
        """End a ``wait`` under way, and every one after it (from any thread)."""
        with self._closing, contextlib.suppress(OSError):
            if self._fd >= 0:
                os.write(self._waker, b"\0")

    def take(self) -> bool:
        """Take the events queued now, without waiting: True if any was a write to the
        log or its creation."""
        written = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return written
            if not data:
                return written
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _, size = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + size].rstrip(b"\0")
                offset += _EVENT.size + size
                if mask & _IN_Q_OVERFLOW:
                    written = True  # events were lost: look
                elif wd == self._file_wd:
                    if mask & _IN_IGNORED:
                        self._file_wd = None  # the file is gone
                    else:
                        written = True
                elif wd == self._dir_wd and name == self._name and mask & _NEW:
                    # A new log: watch it (an inotify watch is on a file, not a name).
                    with contextlib.suppress(OSError):
                        self._watch_file()
                    written = True

    def close(self) -> None:
        with self._closing:
            if self._fd >= 0:
                for fd in (self._fd, self._woken, self._waker):
                    os.close(fd)
                self._fd = -1


class SQLiteWatch:
    """Calls back, on a thread of its own, when another connection commits: ``query``
    (``PRAGMA data_version``) read on a connection of its own, opened by ``connect``,
    changed; ``wal``: the database's write-ahead log. ``ours``: how many commits the
    store made so far, counted before each is published (a change that came with one of
    them is called back later, and opens no window: a claim's commit must not hold back
    the next job's enqueue)."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        query: str,
        wal: Path,
        callback: Callable[[], None],
        *,
        ours: Callable[[], int] = lambda: 0,
        events: Callable[[Path], WalEvents | None] = WalEvents.open,
    ) -> None:
        self._connect = connect
        self._ours = ours
        self._query = query
        self._wal = wal
        self._callback = callback
        self._events = events
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._wal_events: WalEvents | None = None  # for close() to wake the thread
        #: whether writes to the log are notified (known once ``ready``)
        self.notified = False
        self._thread = threading.Thread(target=self._run, name="tock-watch", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the watch has read its first version: any commit after that calls
        back."""
        return self._ready.wait(timeout)

    def _run(self) -> None:
        stop = self._stop
        events: WalEvents | None = None
        try:
            conn = self._connect()
        except BaseException:
            self._ready.set()
            raise
        try:
            events = self._wal_events = self._events(self._wal)  # before the first read
            last = conn.execute(self._query).fetchone()[0]
            self.notified = events is not None
            self._ready.set()
            interval = WATCH_INTERVAL if events is None else SAFETY_INTERVAL
            step = 0.0  # > 0: a write to the log may not be published yet; look after this
            wrote = float("-inf")  # when the watch last saw a write (monotonic)
            due = 0.0  # > 0: a change that came with the store's own commits: call back then
            born = time.monotonic()
            ours = self._ours()
            while not stop.is_set():  # close() sets it, then wakes the wait
                wait = max(0.0, min(interval, due - time.monotonic())) if due else interval
                if step:
                    stop.wait(min(step, wait))
                    written = events is not None and events.take()
                elif events is not None:
                    written = events.wait(wait)
                else:
                    stop.wait(wait)
                    written = False
                if stop.is_set():
                    return
                now = time.monotonic()
                if written:
                    wrote = now
                seen, ours = ours, self._ours()
                try:
                    version = conn.execute(self._query).fetchone()[0]
                except sqlite3.Error:
                    step = 0.0
                    continue
                changed, last = version != last, version
                if changed and now - wrote > UNANNOUNCED:
                    interval = WATCH_INTERVAL  # a commit that no write announced
                if changed and events is not None and ours != seen:
                    # The store's own commit came with it (perhaps nothing else): called
                    # back as the poll did, at its next tick (ticks every WATCH_INTERVAL
                    # from the watch's start: not in step with the store's own commits).
                    tick = math.floor((now - born) / WATCH_INTERVAL) + 1
                    due, changed = due or born + tick * WATCH_INTERVAL, False
                if changed or (due and now >= due):
                    due = 0.0
                    self._callback()
                    if changed:
                        if events is not None:
                            stop.wait(WATCH_WINDOW)
                        step = 0.0
                        if not written:
                            continue
                        # The writes just taken may be a later commit's, still syncing.
                if written:
                    step = min(step * 1.5, MAX_STEP) if step else FIRST_STEP
                elif step:
                    step = min(step * 1.5, MAX_STEP) if now - wrote < LOOK_FOR else 0.0
        finally:
            self._ready.set()
            if events is not None:
                events.close()
            conn.close()

    def close(self) -> None:
        self._stop.set()
        events = self._wal_events
        if events is not None:
            events.wake()
        if threading.current_thread() is not self._thread:
            self._thread.join()
