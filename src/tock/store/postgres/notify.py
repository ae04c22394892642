"""Wake-ups on PostgreSQL: the throttle of the NOTIFY hints a process sends, and the
LISTEN loop that turns hints into a callback (docs/design.md: an idle PostgreSQL worker
LISTENs, with polling as the fallback)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from tock.store.postgres.store import PostgresStore

__all__ = ["LISTEN_TIMEOUT", "NOTIFY_WINDOW", "RETRY_MAX", "Notifier", "Watch"]

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


class Watch:
    """LISTENs on a connection of its own (not the pool's) and calls back on a hint.

    When the connection drops it reconnects with backoff, then calls back once (one
    poll): hints sent meanwhile were lost. The store logs the loss and the return, once
    per outage for all of its connections.
    """

    def __init__(
        self, store: PostgresStore, callback: Callable[[], None], *, channel: str | None = None
    ) -> None:
        self._store = store
        self._callback = callback
        self._channel = store.channel if channel is None else channel
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tock-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        store = self._store
        backoff = 0.0
        first = True
        listen = sql.SQL("LISTEN {}").format(sql.Identifier(self._channel))
        while not self._stop.is_set():
            if backoff and self._stop.wait(backoff):
                return
            born = time.monotonic()
            try:
                conn = store._db.listen_connect()
            except psycopg.Error as exc:
                store._db.lost(None, exc)
                backoff = min(max(backoff * 2, 0.05), RETRY_MAX)
                continue
            try:
                conn.execute(listen)
                store._db.back(born)
                backoff = 0.0
                if not first:
                    self._callback()  # one poll: hints sent while away are lost
                first = False
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=LISTEN_TIMEOUT):
                        self._callback()
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    store._db.lost(born, exc)
                backoff = min(max(backoff * 2, 0.05), RETRY_MAX)
            finally:
                with contextlib.suppress(Exception):
                    conn.close()

    def close(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()
