"""Background services: ``Periodic`` runs one pass every ``interval`` seconds in its own
thread; ``Duty`` is the one shape every cluster duty has (docs/design.md: duties)."""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from tock.errors import ConnectionLost, StaleTerm
from tock.store import Lease

log = logging.getLogger("tock.worker")

#: the lease of no term: a write carrying it is always refused
NO_LEASE = Lease(worker_id=None, term=-1, elected_at=None, expires_at=None, expired=True)


class Periodic:
    """Calls ``fn`` every ``interval`` seconds until stopped; a failing pass is logged,
    and the next pass runs as planned (a database restart must not end the service), or
    sooner with ``retry``: then after ``retry`` seconds, doubling, at most ``interval``.
    A store that lost its connection says so itself: that failure is not logged again.
    With ``paced``, a pass that returns a number of seconds sets the delay before the next
    one (at most ``interval``): the scheduler sleeps until its next fire is due.

    It can be started again after ``stop()``: each start runs a new thread with a stop
    event of its own, so a thread still finishing its last pass never sees the new
    start's event (a leader switches its duties on and off as it wins and loses)."""

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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping: list[threading.Thread] = []  # stopped without waiting, maybe busy
        self._failing = False  # said that a pass failed

    @property
    def running(self) -> bool:
        """Started and not asked to stop since."""
        return self._thread is not None and not self._stop.is_set()

    def start(self) -> None:
        """Start the passes; a no-op while running. After ``stop()``, starts afresh."""
        with self._lock:
            if self.running:
                return
            self._stop = stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(stop,), name=f"tock-{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self, *, wait: bool = True) -> None:
        """Stop after the pass under way, if any (``wait``: until it is over, and until
        the passes of earlier stops without ``wait`` are over too: a worker that shuts
        down after giving up its duties closes its store only then); a no-op when not
        running."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
            if thread is not None:
                self._stopping.append(thread)
            stopping = [t for t in self._stopping if t.is_alive()]
            self._stopping = [] if wait else stopping
        if wait:
            for old in stopping:
                if old is not threading.current_thread():
                    old.join()

    def _run(self, stop: threading.Event) -> None:
        delay = self._first_delay
        retry = 0.0
        while not stop.wait(delay):
            delay = self.interval
            try:
                result = self._fn()
            except Exception as exc:
                if self.retry is not None:
                    retry = min(max(retry * 2, self.retry), self.interval)
                    delay = retry
                if isinstance(exc, ConnectionLost):
                    log.debug("%s pass failed: %s", self.name, exc)
                elif isinstance(exc, StaleTerm):  # fencing did its job: nothing written
                    log.warning("%s pass refused: %s", self.name, exc)
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


class Duty(abc.ABC):
    """One shape for every cluster duty (docs/design.md: duties): a frozen ``config``
    with its ``interval``, ``run_once()`` for one pass (tests call it directly), and
    ``start()``/``stop()`` for its passes in a thread of its own, startable again after
    a stop. A worker holds its duties in a list; a leader switches them on and off."""

    name: ClassVar[str]
    config: Any  #: a frozen dataclass with at least ``interval`` (seconds)
    _service: Periodic
    #: the lease of the leader this duty runs in, read at each pass: its writes carry it
    #: and the store refuses them once its term is over (fencing). None (tests, one-off
    #: passes): the writes are not made as leader.
    leader: Callable[[], Lease | None] | None = None

    def pass_lease(self) -> Lease | None:
        """The lease this pass's writes carry (see ``leader``). A leader's duty with no
        lease to give writes under one that no term matches: refused, never unfenced."""
        if self.leader is None:
            return None
        return self.leader() or NO_LEASE

    def _periodic(
        self,
        fn: Callable[[], object] | None = None,
        *,
        interval: float | None = None,
        **options: Any,
    ) -> None:
        """Set up the passes: ``fn`` (default ``run_once``) every ``interval`` (default
        ``config.interval``); ``options`` as ``Periodic`` takes them."""
        # ``run_once`` is looked up at each pass, not bound here (tests wrap it).
        self._service = Periodic(
            self.name,
            self.config.interval if interval is None else interval,
            fn or (lambda: self.run_once()),
            **options,
        )

    @abc.abstractmethod
    def run_once(self) -> object:
        """One pass."""

    @property
    def running(self) -> bool:
        return self._service.running

    def start(self) -> None:
        self._service.start()

    def stop(self, *, wait: bool = True) -> None:
        self._service.stop(wait=wait)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'running' if self.running else 'stopped'}>"
