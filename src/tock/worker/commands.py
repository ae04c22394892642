"""Commands: what a worker is asked to do through the store (docs/design.md: Commands).

`tock workers stop` and `tock jobs stop` write a request in the store; each worker looks
at its own requests (``store.worker_commands``, one small read) every ``interval``
seconds, busy or idle, and at once when the store hints that a command was given
(PostgreSQL: a NOTIFY on the commands channel; SQLite has no hint and is polled more
often). A stop of the worker stops it gracefully, as SIGTERM does; a stop of jobs goes
to the executor. Paused queues need nothing here: claims skip them in the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection

from tock.errors import ConnectionLost
from tock.jobs import JobId
from tock.store import Store

log = logging.getLogger("tock.worker")

#: seconds between two looks at a worker's commands: SQLite (no hint, a read costs
#: microseconds) and PostgreSQL (woken by NOTIFY; the look is the fallback)
POLL_SQLITE = 0.2
POLL_NOTIFY = 0.5


class Commands:
    """One thread that reads this worker's commands and acts on them."""

    def __init__(
        self,
        store: Store,
        worker_id: str,
        *,
        on_stop: Callable[[], None],
        on_stop_jobs: Callable[[Collection[JobId]], None],
        on_forget: Callable[[Collection[JobId]], None] = lambda keep: None,
        interval: float | None = None,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self._on_stop = on_stop
        self._on_stop_jobs = on_stop_jobs
        self._on_forget = on_forget
        self.interval = interval or (POLL_NOTIFY if store.supports_listen_notify else POLL_SQLITE)
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False  # the worker's stop was acted on
        self._seen: frozenset[JobId] = frozenset()  # job stops already passed on
        self._failing = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tock-commands", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        watch = self.store.worker_command_watch(self.wake.set)
        try:
            while not self._stop.is_set():
                self.wake.wait(self.interval)
                self.wake.clear()
                if self._stop.is_set():
                    return
                try:
                    self.poll()
                except Exception as exc:  # an outage: the next look tries again
                    if not self._failing and not isinstance(exc, ConnectionLost):
                        log.warning("cannot read this worker's commands: %s", exc)
                    self._failing = True
                else:
                    self._failing = False
        finally:
            if watch is not None:
                watch.close()

    def poll(self) -> None:
        """One look at the commands (tests call it directly)."""
        commands = self.store.worker_commands(self.worker_id)
        new = commands.stop_jobs - self._seen
        if new:
            log.info(
                "stopping job(s) %s: asked through the store",
                ", ".join(str(i) for i in sorted(new)),
            )
            self._on_stop_jobs(new)
        self._on_forget(commands.stop_jobs)
        self._seen = commands.stop_jobs
        if commands.stop and not self._stopping:
            self._stopping = True
            log.info("worker %s was asked to stop (tock workers stop)", self.worker_id)
            self._on_stop()
