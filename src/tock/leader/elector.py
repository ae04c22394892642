"""Leader election: one worker of a store leads and runs the cluster duties
(docs/design.md: Leader).

The database is the coordination engine; nodes never talk to each other.

- **The lease** is one row: the leader's worker id, its **term** (a number that only
  grows: each election adds one) and an expiry set by the database's clock. An election
  is a compare-and-set from the term the candidate read; only the holder renews, in its
  own term.
- **The leader's lock of a term** is one the operating system or the server releases
  when its holder dies (an ``flock`` beside the SQLite database, a PostgreSQL session
  advisory lock). A candidate takes the lock of the term it runs for *before* its
  election, so once a term is in the row its lock is held. Followers wait on the lock
  of the current term: granted means the leader died (or stepped down), and a follower
  takes over at once, whatever the lease's expiry. That is the fast path of failover.
- **Expiry** is the fallback, for a leader alive but cut off or paused: a follower
  re-reads the lease every ``wait_slice`` seconds and elects itself once it expired.
- **A leader stops acting before its lease can expire**: each renewal that succeeds
  sets a local deadline, ``ttl * DEADLINE_SHARE`` seconds after the renewal was sent (the
  database set the expiry later than that, from its own clock); past it without a
  renewal, the leader stops its duties. A renewal the store refuses (another term) or a
  lost lock (the server ended its session) stops them at once.
- **Fencing** does not rest on any of the above: every write a duty makes as leader
  checks the term in its own transaction, so a stale leader changes nothing.
- **Resigning** (a graceful stop) clears the lease and releases the lock: followers
  waiting on it elect one of themselves at once.

States: *follower* (no lease; ``lease`` is None) and *leader* (``lease`` held). Every
transition is in ``step()``, which tests drive on a fake clock; ``start()`` runs steps in
a thread of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tock import _validate as v
from tock.clock import Clock
from tock.errors import ConfigurationError, StoreError
from tock.store import Lease, Store

__all__ = ["DEADLINE_SHARE", "Elector", "ElectorConfig"]

log = logging.getLogger("tock.leader")

#: a leader acts for at most this share of its lease after a renewal was sent
DEADLINE_SHARE = 0.9
#: seconds a deposed leader sits out before it runs again: the followers already waiting
#: on its lock (woken in milliseconds) elect one of them first
HEAD_START = 0.1


@dataclass(frozen=True)
class ElectorConfig:
    ttl: float = 10.0  #: seconds a lease lasts from its last renewal
    renew_interval: float = 2.0  #: the leader renews its lease this often
    #: a follower waits on the leader's lock this long before it looks at the lease again
    #: (expiry is the fallback for a leader alive but cut off)
    wait_slice: float = 0.5
    #: the leader reads the lease this often between renewals: deposed from another
    #: process (``tock leader resign``), it steps down, and frees its lock, within this
    watch_interval: float = 0.05

    def __post_init__(self) -> None:
        v.seconds("ttl", self.ttl)
        v.seconds("renew_interval", self.renew_interval)
        v.seconds("wait_slice", self.wait_slice)
        v.seconds("watch_interval", self.watch_interval)
        if self.renew_interval >= self.ttl * DEADLINE_SHARE / 2:
            raise ConfigurationError(
                f"renew_interval ({self.renew_interval:g} s) must be under half of "
                f"{DEADLINE_SHARE:g} x ttl ({self.ttl * DEADLINE_SHARE / 2:g} s): a leader "
                "must get a second try at renewing before it has to stop acting"
            )


class Elector:
    """Runs for leader as ``worker_id``; calls ``on_elected(lease)`` when it wins and
    ``on_lost()`` when it stops leading (refused, deadline passed, resigned)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        worker_id: str,
        config: ElectorConfig | None = None,
        *,
        on_elected: Callable[[Lease], None] = lambda lease: None,
        on_lost: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        """``monotonic``: the local clock of the deadline and the renewals (default
        ``clock.monotonic``; tests give one that follows a fake clock)."""
        self.store = store
        self.clock = clock
        self._monotonic = monotonic or clock.monotonic
        self.worker_id = worker_id
        self.config = config or ElectorConfig()
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._lease: Lease | None = None
        self._last_lease: Lease | None = None
        self._deadline = 0.0  # monotonic: act no longer than this without a renewal
        self._next_renew = 0.0
        self._next_watch = 0.0
        self._cooldown_until = 0.0  # monotonic: not a candidate before (after deposed)
        self._lock = threading.RLock()  # one step at a time (the thread, stop(), tests)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    # -- what others read ------------------------------------------------------------

    @property
    def lease(self) -> Lease | None:
        """The lease while this worker leads, else None."""
        return self._lease

    @property
    def last_lease(self) -> Lease | None:
        """The lease of the last term this worker led, kept after it stops leading: the
        writes of a duty still finishing carry it, and the store refuses them."""
        return self._last_lease

    @property
    def term(self) -> int | None:
        """The term this worker leads in, for the writes it makes as leader (fencing)."""
        lease = self._lease
        return None if lease is None else lease.term

    @property
    def is_leader(self) -> bool:
        return self._lease is not None

    # -- one turn ----------------------------------------------------------------------

    def step(self, *, block: float = 0.0) -> float:
        """One turn: a leader renews when due and checks its deadline; a follower looks
        at the lease and elects itself when nobody holds it, or waits up to ``block``
        seconds for the leader's lock and takes over when it is freed. Returns the
        seconds until the next turn is due."""
        with self._lock:
            if self._lease is not None:
                return self._lead()
            return self._follow(block)

    def _lead(self) -> float:
        lease = self._lease
        assert lease is not None
        now = self._monotonic()
        if now >= self._next_renew:
            sent = now
            self._next_watch = now + self.config.watch_interval
            try:
                renewed = self.store.leader_renew(
                    lease, ttl=self.config.ttl, now=self.clock.db_now()
                )
                lock_held = renewed is not None and self.store.leader_lock_held(lease.term)
            except StoreError as exc:
                self._say_failing(f"cannot renew the lease of term {lease.term}: {exc}")
                # Again soon, not at once: the deadline below bounds how long it acts.
                self._next_renew = now + self.config.renew_interval / 4
            else:
                self._failing = False
                if renewed is None:
                    self._step_down(f"the lease of term {lease.term} is no longer ours")
                    # Deposed (tock leader resign) or outlived: let another worker lead.
                    self._cooldown_until = self._monotonic() + HEAD_START
                    return 0.0
                if not lock_held:
                    self._step_down(
                        f"the lock of term {lease.term} was lost (the database ended its session)",
                        resign=True,
                    )
                    return 0.0
                self._lease = self._last_lease = renewed
                self._deadline = sent + self.config.ttl * DEADLINE_SHARE
                self._next_renew = sent + self.config.renew_interval
        elif now >= self._next_watch:
            self._next_watch = now + self.config.watch_interval
            try:
                seen = self.store.leader_get(now=self.clock.db_now())
            except StoreError:
                pass  # the renewal says what is wrong
            else:
                if seen.worker_id != self.worker_id or seen.term != lease.term:
                    self._step_down(
                        f"the lease of term {lease.term} was taken from it (now "
                        f"{seen.worker_id or 'nobody'}, term {seen.term})"
                    )
                    self._cooldown_until = self._monotonic() + HEAD_START
                    return 0.0
        if self._monotonic() >= self._deadline:
            self._step_down(
                f"no renewal of term {lease.term} for {self.config.ttl * DEADLINE_SHARE:g} s"
            )
            return 0.0
        due = min(self._next_renew, self._next_watch, self._deadline)
        return max(0.0, due - self._monotonic())

    def _follow(self, block: float) -> float:
        if self._monotonic() < self._cooldown_until:
            return max(0.0, self._cooldown_until - self._monotonic())
        try:
            seen = self.store.leader_get(now=self.clock.db_now())
            if not seen.held:
                if self._elect(seen, takeover=False):
                    return 0.0
                return 0.0 if block else self.config.wait_slice
            # Wait on the leader's lock, at most until its lease would expire.
            freed = self.store.leader_lock_wait(seen.term, timeout=block)
            if freed and not self._stop.is_set():
                self._elect(seen, takeover=True)
                return 0.0
        except StoreError as exc:
            self._say_failing(f"cannot run for leader: {exc}")
            return self.config.wait_slice
        self._failing = False
        return 0.0 if block else self.config.wait_slice

    def _elect(self, seen: Lease, *, takeover: bool) -> bool:
        term = seen.term + 1
        if not self.store.leader_lock_take(term):
            return False  # another candidate runs for the same term
        sent = self._monotonic()
        try:
            lease = self.store.leader_elect(
                worker_id=self.worker_id,
                term=seen.term,
                ttl=self.config.ttl,
                now=self.clock.db_now(),
                takeover=takeover,
            )
        except BaseException:
            self.store.leader_lock_release(term)
            raise
        if lease is None:
            self.store.leader_lock_release(term)
            return False
        self._lease = self._last_lease = lease
        self._deadline = sent + self.config.ttl * DEADLINE_SHARE
        self._next_renew = sent + self.config.renew_interval
        how = (
            f"taking over from {seen.worker_id} (term {seen.term})"
            if takeover and seen.worker_id
            else "elected"
        )
        log.info("worker %s leads: term %d, %s", self.worker_id, lease.term, how)
        self._on_elected(lease)
        return True

    def _step_down(self, why: str, *, resign: bool = False) -> None:
        lease = self._lease
        assert lease is not None
        self._lease = None
        log.warning("worker %s stops leading (term %d): %s", self.worker_id, lease.term, why)
        self._on_lost()  # the duties stop first: no write as leader after this
        if resign:
            self._resign(lease)
        self.store.leader_lock_release(lease.term)

    def _resign(self, lease: Lease) -> None:
        try:
            self.store.leader_resign(lease, now=self.clock.db_now())
        except StoreError as exc:
            log.warning("could not clear the lease of term %d: %s", lease.term, exc)

    def resign(self) -> bool:
        """Stop leading at once and let another worker lead (no-op for a follower):
        duties stop, the lease is cleared, the lock released. Returns whether it led."""
        with self._lock:
            lease = self._lease
            if lease is None:
                return False
            self._lease = None
            log.info("worker %s resigns (term %d)", self.worker_id, lease.term)
            self._on_lost()
            self._resign(lease)
            self.store.leader_lock_release(lease.term)
            return True

    def _say_failing(self, message: str) -> None:
        if not self._failing:
            log.warning("%s (will keep trying)", message)
            self._failing = True

    # -- the thread ------------------------------------------------------------------

    def start(self) -> None:
        """A first turn here (a lone worker leads before its first claim), then turns in
        a thread of its own."""
        self._stop.clear()
        try:
            self.step()
        except Exception as exc:
            log.warning("first leader election failed: %s (will keep trying)", exc)
        self._thread = threading.Thread(target=self._run, name="tock-elector", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                delay = self.step(block=self.config.wait_slice)
            except Exception as exc:  # an unexpected failure must not end the elections
                log.exception("leader election turn failed: %s", exc)
                delay = self.config.wait_slice

    def stop(self, *, resign: bool = True) -> None:
        """Stop running for leader; a leader resigns (``resign``) or just stops acting."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if resign:
            self.resign()
        else:
            with self._lock:
                if self._lease is not None:
                    self._step_down("stopping")
