"""A background service that runs one pass every ``interval`` seconds in its own thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tock.errors import ConnectionLost

log = logging.getLogger("tock.worker")


class Periodic:
    """Calls ``fn`` every ``interval`` seconds until stopped; a failing pass is logged,
    and the next pass runs as planned (a database restart must not end the service), or
    sooner with ``retry``: then after ``retry`` seconds, doubling, at most ``interval``.
    A store that lost its connection says so itself: that failure is not logged again.
    With ``paced``, a pass that returns a number of seconds sets the delay before the next
    one (at most ``interval``): the scheduler sleeps until its next fire is due."""

    def __init__(
        self,
        name: str,
        interval: float,
        fn: Callable[[], object],
        *,
        first_delay: float | None = None,
        retry: float | None = None,
        paced: bool = False,
    ) -> None:
        self.name = name
        self.interval = interval
        self.retry = retry
        self.paced = paced
        self._fn = fn
        self._first_delay = interval if first_delay is None else first_delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False  # said that a pass failed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"tock-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        delay = self._first_delay
        retry = 0.0
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                result = self._fn()
            except Exception as exc:
                if self.retry is not None:
                    retry = min(max(retry * 2, self.retry), self.interval)
                    delay = retry
                if isinstance(exc, ConnectionLost):
                    log.debug("%s pass failed: %s", self.name, exc)
                elif not self._failing:
                    log.warning("%s pass failed: %s (will keep trying)", self.name, exc)
                    self._failing = True
            else:
                retry = 0.0
                if self.paced and isinstance(result, (int, float)):
                    delay = min(max(float(result), 0.0), self.interval)
                if self._failing:
                    log.info("%s works again", self.name)
                self._failing = False
