"""The claimer: one thread that moves jobs between the store and the executor.

Each turn writes the outcomes finished since the last turn and claims new jobs into the
free slots plus the prefetch, in one transaction (docs/design.md: the hot path touches the
database once per batch). The prefetch and the moment to claim again come from what the
worker measures (``sizing.ClaimSizer``): the executor wakes the claimer when a slot has
no job to take or the jobs waiting fall to the refill mark. While it holds jobs the
claimer also turns every ``FLUSH_AFTER`` seconds, so a finished job's outcome is written
within about that time of its end, claim or no claim (docs/design.md: "Completions are
written within a bounded time"). When there is nothing to do it sleeps until woken: by
the executor, by the store's watch, or by the next delayed job coming due.

The next due job is known without a read on the hot path (docs/design.md: "Fires made
ahead"): this process's scheduler says when the jobs it made ahead are due
(:meth:`Claimer.expect`), and the store's ``job_next_due`` is read only when the claimer
goes idle after the watch saw new work (or a retry was written, or nothing is held), not
after every turn, and never while the last claim came back full (a backlog being drained:
the executor wakes the claimer at the refill mark). The sleep ends a little before that
time (``WAKE_AHEAD``, after rounding it up to the database clock's step): the claim
that follows takes jobs due within ``CLAIM_AHEAD`` and hands them to the executor at
their time (docs/design.md: "Claimed early").

With ``lanes`` > 1 that many threads take turns at once, each on a connection of its
own: while one turn waits for the database, another's jobs are decoded and handed to
the executor. Each lane claims at most its share of the free room, reserved before its
claim, so together they never hold more than ``concurrency + prefetch`` jobs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from tock.clock import Clock
from tock.errors import ConnectionLost
from tock.jobs import JobRecord, JobStatus, OutcomeKind
from tock.store import MAX_CLAIM_AHEAD, Store, is_outage
from tock.worker import completer
from tock.worker.executor import Executor
from tock.worker.sizing import ClaimSizer

log = logging.getLogger("tock.worker")

IDLE_POLL = 1.0  # the longest sleep without a wake-up: a safety net, not the mechanism
RETRY_MIN, RETRY_MAX = 0.05, 2.0  # the backoff of a claimer whose store does not answer
# Seconds past a due time an idle sleep ends: the timer never ends early by the monotonic
# clock, the due time is the wall clock's.
TIMER_SLACK = 0.00005
# A claim counts jobs due within this as due, and an idle sleep ends this much before the
# next job's time less a millisecond (a clock read to the millisecond may be that much
# short): the claim's round trip is over by the job's time, and the job is started at its
# run_at (docs/design.md: "Claimed early").
CLAIM_AHEAD = 0.005
WAKE_AHEAD = CLAIM_AHEAD - 0.001
#: the longest a claimer that holds jobs sleeps: a finished job's outcome is written within
#: about this long of its end (plus the write itself), so a worker killed with SIGKILL
#: runs again only the jobs that ended within it and those still running
FLUSH_AFTER = 0.025
#: the longest the claimer lets the slot threads take the jobs it just handed over
#: before it reads the store on its own account (``Executor.let_start``)
LET_START = 0.002


class Claimer:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        executor: Executor,
        completions: completer.Completions,
        *,
        worker_id: str,
        queues: Sequence[str],
        prefetch: int | None = None,
        burst: bool = False,
        lanes: int = 1,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.executor = executor
        self.completions = completions
        self.worker_id = worker_id
        self.queues = list(queues)
        #: the prefetch and refill mark (``prefetch``: fixed; None: sized from measures)
        self.sizer = ClaimSizer(executor.concurrency, prefetch)
        self.burst = burst
        self.lanes = lanes
        self._on_error = on_error  #: called once a lane stops on an error that is a bug
        self.wake = threading.Event()
        # Set while the last claim answered came back full (or the claimer stops): the
        # lanes after the first turn only then.
        self._backlog = threading.Event()
        self._claiming = True
        self._stopped = threading.Event()
        self._drained = threading.Event()  # burst mode: nothing due and nothing held
        self._threads: list[threading.Thread] = []
        # Guards what the lanes share: the claims below, the room reserved by claims in
        # flight, and the flag of an unsure claim.
        self._lock = threading.Lock()
        # Claim token -> jobs of that claim whose outcome is not written yet: a job
        # running in this worker's name under any other token was never received.
        self._claims: Counter[int] = Counter()
        self._reserved = 0  # jobs that claims in flight may bring
        self._reserved_free = 0  # of which into slots that start at once
        self._in_flight = 0  # claims sent and not yet answered
        self._unsure = False  # a claim failed: it may have committed all the same
        self._warned = False  # said that the store does not answer
        self.error: BaseException | None = None
        # The earliest run_at known to come (a fire made ahead by this process's
        # scheduler, or the store's next due job), and whether the store may know an
        # earlier one than we do (the watch saw a change, or a retry was written).
        self._due: datetime | None = None
        self._news = True
        # The last claim answered came back full: more is due now (a backlog). The
        # executor wakes the claimer at the refill mark; no read of the next due time.
        self._full = False
        step = getattr(store, "clock_step", 1e-6)
        self._step = timedelta(seconds=step) if step > 0 else None

    def expect(self, due: datetime) -> None:
        """A job of this worker's queues is due at ``due`` (this process's scheduler made
        it ahead of its time): the idle sleep ends then. Call ``wake.set()`` after."""
        with self._lock:
            known = self._due
            if known is None or due < known:
                self._due = due

    def _watched(self) -> None:
        """The store's watch: new work may have arrived."""
        self._news = True
        self.wake.set()

    def start(self) -> None:
        for i in range(self.lanes):
            name = "tock-claimer" if self.lanes == 1 else f"tock-claimer-{i}"
            thread = threading.Thread(target=self._run, args=(i,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop_claiming(self) -> None:
        self._claiming = False
        self.wake.set()

    def stop(self, give_up: threading.Event | None = None) -> bool:
        """Write what is buffered, then end the thread; False if ``give_up`` was set
        first (the store does not answer and someone asked to stop at once)."""
        self._claiming = False
        self._stopped.set()
        with self._lock:  # every lane turns until the buffered outcomes are written
            self._backlog.set()
        self.wake.set()
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.1)
                if give_up is not None and give_up.is_set() and thread.is_alive():
                    thread.join(1.0)  # one last chance to write
                    if thread.is_alive():
                        return False
                    break
        return True

    def wait_drained(self, timeout: float | None = None) -> bool:
        return self._drained.wait(timeout)

    def _run(self, lane: int) -> None:
        # One watch wakes every lane: they wait on the same event.
        watch = self.store.job_watch(self._watched) if lane == 0 else None
        retry = 0.0  # this lane's backoff; 0: its last turn worked
        try:
            while True:
                if lane and not self._backlog.is_set():
                    self._backlog.wait(IDLE_POLL)
                    continue
                stopping = self._stopped.is_set()
                self.wake.clear()
                try:
                    busy = self._turn()
                except Exception as exc:
                    if not is_outage(exc):
                        # Not the database going away but a bug (a wrong statement or
                        # argument, a schema that does not match): trying again would
                        # fail the same way for ever. Say it with its traceback, claim no
                        # more and stop the worker gracefully: later turns still try to
                        # write the outcomes of the jobs that finish (a bug in the claim
                        # may leave them writable); a second such error gives up, and
                        # the jobs are then settled as a stopped worker's.
                        if self.error is not None:
                            return
                        log.error(
                            "the claimer stopped on an unexpected error (a bug to report, "
                            "not an outage): %s: %s",
                            type(exc).__name__,
                            exc,
                            exc_info=exc,
                        )
                        self.error = exc
                        self._claiming = False
                        self._on_error()
                        continue
                    # The database went away: keep the outcomes, retry. A store that lost
                    # its connection said so once, and says when it is back: nothing to
                    # add. Any other outage is said once here.
                    if not isinstance(exc, ConnectionLost) and not self._warned:
                        log.warning("cannot reach the store (%s); will keep retrying", exc)
                        self._warned = True
                    retry = min(max(retry * 2, RETRY_MIN), RETRY_MAX)
                    self.wake.wait(retry)
                    continue
                retry = 0.0
                if self._warned:
                    log.info("the store answers again")
                    self._warned = False
                if stopping and not len(self.completions):
                    return
                if not busy:
                    self.wake.wait(self._idle_timeout())
        finally:
            if watch is not None:
                watch.close()

    def _turn(self) -> bool:
        """One transaction at most (two after a failed claim); True if there may be
        more to do right away."""
        if self._unsure:
            with self._lock:  # no claim starts meanwhile; none is in flight
                if self._unsure and not self._in_flight:
                    self._hand_back_unreceived()
        outcomes, started = self.completions.take()
        executor = self.executor
        runs = executor.take_run_times()
        want = free = 0
        with self._lock:
            sizer = self.sizer
            sizer.ran(runs)
            refill = executor.refill_at = sizer.refill_at
            if self._claiming:
                room = executor.concurrency + sizer.prefetch
                lanes = self.lanes if self._backlog.is_set() else 1
                share = -(-room // lanes)
                want = min(share, room - executor.held - self._reserved)
                # Only when a slot has nothing to take, or the jobs waiting for one are
                # down to the refill mark: claims come in batches, not one per job.
                idle_slot = executor.free > self._reserved_free
                if want > 0 and (idle_slot or executor.waiting + self._reserved <= refill):
                    free = max(0, min(want, executor.free - self._reserved_free))
                    self._reserved += want
                    self._reserved_free += free
                    self._in_flight += 1
                else:
                    want = 0
        claimed = []
        if want > 0 and self.burst:
            # Not drained while a claim is under way: from its commit on, the jobs it
            # takes are neither pending (for the burst's look at what is due) nor held
            # (those claimed early are handed over at their time).
            self._drained.clear()
        try:
            if want > 0:
                sent = time.monotonic()
                claimed = self.store.job_claim_batch(
                    worker_id=self.worker_id,
                    queues=self.queues,
                    limit=want,
                    free=free,
                    now=self.clock.db_now(),
                    completed=outcomes,
                    started=started,
                    ahead=CLAIM_AHEAD,
                )
                with self._lock:
                    self.sizer.claimed(time.monotonic() - sent)
            elif outcomes or started:
                self.store.job_complete_batch(outcomes, now=self.clock.db_now(), started=started)
            if any(o.kind is OutcomeKind.RETRY for o in outcomes):
                self._news = True  # a retry is due later: the next idle sleep asks when
        except BaseException:
            # Nothing was written, as far as we know: keep the outcomes and starts for
            # the next turn (their tokens still decide whether they apply). A claim whose
            # answer was lost (the connection dropped after its commit) holds jobs we
            # never got.
            self.completions.restore_starts(started)
            for outcome in outcomes:
                self.completions.add(outcome)
            if want > 0:
                with self._lock:
                    self._unsure = True
                    self._release(want, free)
            raise
        with self._lock:
            claims = self._claims
            for outcome in outcomes:
                if claims[outcome.token] <= 1:
                    claims.pop(outcome.token, None)
                else:
                    claims[outcome.token] -= 1
            for job in claimed:
                if job.claim_token is not None:
                    claims[job.claim_token] += 1
        if claimed:
            # Before the reservation goes: held covers them. Jobs claimed early start at
            # their time, after the others.
            now = self.clock.now()
            due = [j for j in claimed if j.run_at <= now]
            early = [j for j in claimed if j.run_at > now]
            if due:
                executor.submit(due)
            if early:
                self._wait_due(early, now)
                executor.submit(early)
            self._drained.clear()
        if want > 0:
            with self._lock:
                self._release(want, free)
                self._full = len(claimed) == want
                if self.lanes > 1:
                    if len(claimed) == want:
                        self._backlog.set()
                    elif not self._stopped.is_set():
                        self._backlog.clear()
        if claimed:
            # Room was left (several lanes), or the slots ran through what came meanwhile.
            return len(claimed) == want and (
                executor.free > 0 or executor.waiting <= executor.refill_at
            )
        if self.burst and executor.held == 0 and not len(self.completions) and not self._reserved:
            self._drained.set()
        return False

    def _wait_due(self, early: list[JobRecord], now: datetime) -> None:
        """Wait until the last of the jobs claimed before their time is due, at most
        ``MAX_CLAIM_AHEAD`` (a wall clock that disagrees with the database's cannot hold
        a job longer than that)."""
        wait = (max(j.run_at for j in early) - now).total_seconds()
        self.clock.sleep(min(wait, MAX_CLAIM_AHEAD))

    def _release(self, want: int, free: int) -> None:
        """A claim is answered (or failed): its reserved room goes (hold ``_lock``)."""
        self._reserved -= want
        self._reserved_free -= free
        self._in_flight -= 1

    def _hand_back_unreceived(self) -> None:
        """After a failed claim: jobs running in this worker's name under a claim token
        it never received were claimed by a statement that committed while its answer
        was lost. They never started here: hand them back (no attempt used), or they
        would stay running in the name of a live worker, never rescued."""
        running = self.store.job_list(
            statuses=[JobStatus.RUNNING], worker_id=self.worker_id, limit=1_000_000
        )
        lost = [
            j for j in running if j.claim_token is not None and j.claim_token not in self._claims
        ]
        if lost:
            log.info("handing back %d job(s) claimed by a claim whose answer was lost", len(lost))
        for job in lost:
            self.completions.add(completer.released(job))
        self._unsure = False

    def _idle_timeout(self) -> float:
        """How long an idle claimer sleeps: until the earliest job known to come is due,
        at most ``IDLE_POLL``; while it holds jobs or outcomes, ``FLUSH_AFTER`` at most."""
        timeout = self._until_due()
        if self.executor.held or len(self.completions):
            return min(timeout, FLUSH_AFTER)
        return timeout

    def _until_due(self) -> float:
        if not self._claiming:
            return 0.05
        executor = self.executor
        if executor.held >= executor.concurrency + self.sizer.prefetch:
            return IDLE_POLL  # full: the executor wakes the claimer when it wants more
        if self._full:
            # Draining a backlog: the executor wakes the claimer at the refill mark, or
            # woke it already (every job that ends after the turn's claim wakes it). A
            # read of the next due time here cost a lane 20-40 ms a turn with 16,000 jobs
            # pending.
            return IDLE_POLL
        now = self.clock.now()
        due = self._due
        if due is not None and due <= now:
            due = self._due = None  # its time came and a turn ran since: ask again
            self._news = True
        if self._news or not executor.held:
            self._news = False
            executor.let_start(LET_START)  # the jobs this turn handed over start first
            try:
                stored = self.store.job_next_due(queues=self.queues)
            except Exception:
                self._news = True
                return IDLE_POLL
            with self._lock:
                known = self._due  # the scheduler may have said one meanwhile
                if known is None or (stored is not None and stored < known):
                    known = stored
                due = self._due = known
        if due is None:
            return IDLE_POLL
        left = (self._after_step(due) - now) / timedelta(seconds=1) - WAKE_AHEAD + TIMER_SLACK
        return min(IDLE_POLL, max(0.001, left))

    def _after_step(self, due: datetime) -> datetime:
        """``due`` rounded up to the database clock's step: the first reading at which a
        claim finds the job due (SQLite reads whole milliseconds)."""
        step = self._step
        if step is None:
            return due
        epoch = datetime(1970, 1, 1, tzinfo=due.tzinfo)
        over = (due - epoch) % step
        return due if not over else due + (step - over)
