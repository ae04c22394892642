"""Wake-ups on PostgreSQL: the throttle of the NOTIFY hints a process sends, and the
LISTEN loop that turns hints into a callback (docs/design.md: an idle PostgreSQL worker
LISTENs, with polling as the fallback)."""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import Notify, sql

if TYPE_CHECKING:
    from tock.store.postgres.store import PostgresStore

__all__ = ["LISTEN_TIMEOUT", "NOTIFY_WINDOW", "RETRY_MAX", "Listener", "Notifier", "Watch"]

NOTIFY_WINDOW = 0.005  # the throttle of wake-up hints, per process and queue
LISTEN_TIMEOUT = 0.1  # how often the LISTEN thread looks at its stop flag
RETRY_MAX = 2.0  # the longest wait between two reconnection attempts of the LISTEN thread


class Notifier:
    """Throttles the wake-up hints of this process: a NOTIFY at the start of a ~5 ms
    window per queue, and one more at its end if any was suppressed (every notifying
    commit takes a global lock in PostgreSQL, so never one per job)."""

    def __init__(
        self, store: PostgresStore, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._monotonic = monotonic  # tests replace it
        self._lock = threading.Lock()
        self._window_end: dict[str, float] = {}
        self._suppressed: set[str] = set()

    def due(self, queues: set[str]) -> list[str]:
        """The queues to notify in this commit; the others get a trailing hint."""
        now = self._monotonic()
        send: list[str] = []
        with self._lock:
            for queue in sorted(queues):
                end = self._window_end.get(queue)
                if end is None or now >= end:
                    self._window_end[queue] = now + NOTIFY_WINDOW
                    send.append(queue)
                elif queue not in self._suppressed:
                    self._suppressed.add(queue)
                    timer = threading.Timer(end - now, self._trailing, (queue,))
                    timer.daemon = True
                    timer.start()
        return send

    def _trailing(self, queue: str) -> None:
        with self._lock:
            self._suppressed.discard(queue)
            self._window_end[queue] = self._monotonic() + NOTIFY_WINDOW
        # A hint: if it cannot be sent, idle workers still poll.
        with contextlib.suppress(Exception):
            self._store._notify([queue])


class Listener:
    """One session of this store that LISTENs on every channel its watches want, and
    calls each watch back on a hint of its channel: a worker's wake-ups and its commands
    (docs/design.md: Commands) share it, one session per process rather than one per
    channel. It runs while some watch is open.

    When the connection drops it reconnects with backoff, then calls every watch back
    once (one poll): hints sent meanwhile were lost. The store logs the loss and the
    return, once per outage for all of its connections.
    """

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._watches: dict[str, list[Callable[[], None]]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def watch(self, channel: str, callback: Callable[[], None]) -> Watch:
        with self._lock:
            self._watches.setdefault(channel, []).append(callback)
            if self._thread is None:
                self._stop = stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(stop,), name="tock-listen", daemon=True
                )
                self._thread.start()
        return Watch(self, channel, callback)

    def _unwatch(self, channel: str, callback: Callable[[], None]) -> None:
        with self._lock:
            callbacks = self._watches.get(channel, [])
            if callback in callbacks:
                callbacks.remove(callback)
            if not callbacks:
                self._watches.pop(channel, None)
            if self._watches or self._thread is None:
                return
            thread, self._thread = self._thread, None
            self._stop.set()
        if threading.current_thread() is not thread:
            thread.join()

    def _callbacks(self, channel: str | None = None) -> list[Callable[[], None]]:
        with self._lock:
            if channel is not None:
                return list(self._watches.get(channel, ()))
            return [cb for callbacks in self._watches.values() for cb in callbacks]

    def _run(self, stop: threading.Event) -> None:
        store = self._store
        backoff = 0.0
        first = True
        while not stop.is_set():
            if backoff and stop.wait(backoff):
                return
            born = time.monotonic()
            try:
                conn = store._db.listen_connect()
            except psycopg.Error as exc:
                store._db.lost(None, exc)
                backoff = min(max(backoff * 2, 0.05), RETRY_MAX)
                continue
            listening: set[str] = set()
            try:
                self._listen(conn, listening)
                store._db.back(born)
                backoff = 0.0
                if not first:
                    for callback in self._callbacks():
                        callback()  # one poll: hints sent while away are lost
                first = False
                poller = _poller(conn)
                kept = True  # hints may have come while LISTEN ran: psycopg keeps them
                while not stop.is_set():
                    for notify in _notifies(conn, poller, kept):
                        for callback in self._callbacks(notify.channel):
                            callback()
                    kept = self._listen(conn, listening)  # a watch opened meanwhile
            except psycopg.Error as exc:
                if not stop.is_set():
                    store._db.lost(born, exc)
                backoff = min(max(backoff * 2, 0.05), RETRY_MAX)
            finally:
                with contextlib.suppress(Exception):
                    conn.close()

    def _listen(self, conn: psycopg.Connection[Any], listening: set[str]) -> bool:
        """LISTEN on the channels watched now and not yet listened to; whether it did."""
        with self._lock:
            wanted = set(self._watches) - listening
        for channel in sorted(wanted):
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            listening.add(channel)
        return bool(wanted)


def _poller(conn: psycopg.Connection[Any]) -> select.poll | None:
    """A poll object on the session's socket (None where the system has no poll())."""
    if not hasattr(select, "poll"):
        return None
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    return poller


def _notifies(
    conn: psycopg.Connection[Any], poller: select.poll | None, kept: bool
) -> Iterable[Notify]:
    """The hints that arrive within ``LISTEN_TIMEOUT``, as soon as one does; at once
    those psycopg ``kept`` while a statement ran on the session.

    psycopg's own ``notifies(timeout=...)`` costs about 1 ms of CPU a call whatever the
    timeout (psycopg 3.3 polls in whole milliseconds and spins through the last one):
    1 % of a core for an idle worker at ten calls a second. So the thread sleeps in
    poll() on the session's socket, and asks psycopg only when there is something to
    take, without waiting (``timeout=0``)."""
    if poller is None:
        return conn.notifies(timeout=LISTEN_TIMEOUT)
    if kept or poller.poll(LISTEN_TIMEOUT * 1000):
        return conn.notifies(timeout=0)
    return ()


class Watch:
    """A callback on hints of one channel, through the store's ``Listener``."""

    def __init__(self, listener: Listener, channel: str, callback: Callable[[], None]) -> None:
        self._listener = listener
        self._channel = channel
        self._callback = callback
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._listener._unwatch(self._channel, self._callback)
