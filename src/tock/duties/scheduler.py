"""The scheduler: turns the due fires of schedules into jobs (docs/design.md: "Schedules").

One pass asks the store for the schedules whose next fire time has come (an index on that
time: the cost grows with the due fires, not with the number of schedules), asks
:func:`tock.schedules.plan_fires` what the misfire policy makes of them, and writes the
answer with :meth:`Store.schedule_fire`: a compare-and-set on the next fire time in the
transaction that inserts the jobs and the fire rows, whose key (schedule, fire time) makes
each fire one job at most, ever. The leader runs the scheduler; two of them reading the
same due schedule (two leaders for a moment) is harmless: one compare-and-set wins, the
other writes nothing.

Fires are made ahead (docs/design.md: "Fires made ahead"): a pass reads the schedules
whose next fire comes within ``lead`` seconds and makes the jobs of those fires at once,
due at their fire time, so that a worker starts each one at its time instead of after a
pass, a commit and a claim. The misfire policy looks at the real time only. A fire of a
schedule with ``overlap=False`` whose previous job is still pending or running is not
made ahead: it is left for a pass at its fire time, which decides then, as without a
lead. A pause, a removal or a change of the schedule withdraws the jobs made ahead that
no worker took yet (the store does it in the same transaction).

A fire of a schedule with ``depends_on`` is written as a "waiting" fire (no job) and is
never made ahead; after the due schedules, each pass looks at the waiting fires of the
schedules this process knows and releases those whose dependencies are met (their job
due now), drops those the misfire policy drops, or records what they wait for, each with
:meth:`Store.fire_release`, fenced by the lease (docs/design.md: "Schedules that wait on
schedules").

Between passes the scheduler sleeps until ``lead`` before the earliest next fire (or
until the fire time of a fire it left for its time), at most ``interval`` (a schedule
created or changed elsewhere is seen within that). After each fire that created jobs it
calls ``on_enqueued`` with their queues and the earliest fire time among them: a worker
wakes its own claimer at once, which then sleeps until that time, instead of waiting
for the store's watch (docs/design.md: Idle wake-up).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tock._service import Duty
from tock.clock import Clock
from tock.errors import ConfigurationError, ScheduleNotFound
from tock.jobs import JobId, JobStatus
from tock.schedules import Trigger, plan_fires, trigger_from_json
from tock.store import MAX_LEAD, Fire, Lease, ScheduleRecord, Store
from tock.tasks import Task, job_for_fire

log = logging.getLogger("tock.scheduler")

ENQUEUED = "enqueued"
OVERLAP = "overlap"
WAITING = "waiting"
_BUSY = (JobStatus.PENDING, JobStatus.RUNNING)
# Waking exactly at a fire time, a database clock read to the millisecond (SQLite's) may
# still be short of it: the pass finds nothing due and runs again at once, several times.
# Sleeping two of the clock's steps longer lands every wake after the fire; never less
# than MIN_SLACK, for the timer's own imprecision.
MIN_SLACK = 0.0002


def wake_slack(clock_step: float) -> float:
    """Seconds the scheduler sleeps past a fire time, for a database clock that reads
    in steps of ``clock_step`` seconds (SQLite: 2 ms; PostgreSQL: 0.2 ms)."""
    return max(2 * clock_step, MIN_SLACK)


WAKE_SLACK = wake_slack(1e-3)  # the default: a clock that reads to the millisecond


@dataclass(frozen=True)
class SchedulerConfig:
    interval: float = 1.0  #: the longest sleep between passes
    batch_size: int = 100  #: due schedules read at a time
    max_rounds: int = 100  #: batches one pass handles before it lets the thread breathe
    #: seconds ahead of its time that a fire's job is made (0: at the fire time). Half the
    #: interval: ample for a pass, its commit and every worker's wake-up (SQLite's watch
    #: at worst polls every ~20 ms), short enough that jobs seldom wait as "scheduled".
    lead: float = 0.5

    def __post_init__(self) -> None:
        longest = MAX_LEAD.total_seconds()  # upserts look that far for fires made ahead
        if not 0 <= self.lead <= longest:
            raise ConfigurationError(
                f"scheduler lead must be 0 to {longest:g} seconds, not {self.lead}"
            )


@dataclass
class SchedulerReport:
    """What one pass did."""

    jobs: list[JobId] = field(default_factory=list)  #: jobs created, in fire order
    fired: int = 0  #: schedules this pass advanced
    lost_races: int = 0  #: schedules another node advanced first
    dropped: int = 0  #: fires that became no job (misfire policy, no-overlap)
    deferred: int = 0  #: fires within the lead left for their time (no-overlap)
    released: int = 0  #: waiting fires whose dependencies were met: their jobs made
    waiting: int = 0  #: fires still waiting on dependencies after the pass
    next_due: datetime | None = None  #: the earliest next fire past the pass's lead
    now: datetime | None = None  #: the time the pass planned for
    lead: float = 0.0  #: seconds ahead of a fire that its job is made
    #: the earliest fire left for its time (no-overlap, the previous job still live):
    #: the next pass runs then, not ``lead`` before it
    held_until: datetime | None = None
    more: bool = False  #: due fires were left for the next pass (it starts at once)
    elapsed: float = 0.0  #: seconds the pass took (the sleep after it starts at its end)
    slack: float = WAKE_SLACK  #: seconds to sleep past the next fire (see ``wake_slack``)

    @property
    def delay(self) -> float:
        """Seconds until the next pass should run."""
        if self.more:
            return 0.0
        if self.now is None:
            return float("inf")
        wakes: list[float] = []
        # Within the lead when the pass began, yet not made: a schedule that cannot fire
        # (or one left for its time, below). Waiting the whole interval then beats
        # spinning on it.
        if self.next_due is not None:
            ahead = (self.next_due - self.now).total_seconds() - self.lead
            if ahead > 0:
                wakes.append(ahead)
        if self.held_until is not None:
            wakes.append(max(0.0, (self.held_until - self.now).total_seconds()))
        if not wakes:
            return float("inf")
        # ``now`` is the pass's start: the sleep begins only once the pass is over.
        return max(0.0, min(wakes) - self.elapsed) + self.slack


class Scheduler(Duty):
    """Fires the due schedules whose task this process knows, one pass at a time."""

    name = "scheduler"

    def __init__(
        self,
        store: Store,
        clock: Clock,
        tasks: Mapping[str, Task[Any, Any]] | Callable[[], Mapping[str, Task[Any, Any]]],
        config: SchedulerConfig | None = None,
        on_enqueued: Callable[[set[str], datetime], None] | None = None,
    ) -> None:
        self.store = store
        self._on_enqueued = on_enqueued
        self.clock = clock
        self._tasks = tasks
        self.config = config or SchedulerConfig()
        self._warned: set[tuple[str, str]] = set()  # (schedule, problem) said once
        self._slack = wake_slack(store.clock_step)
        self._periodic(lambda: self.run_once().delay, first_delay=0.0, retry=0.1, paced=True)

    @property
    def tasks(self) -> Mapping[str, Task[Any, Any]]:
        return self._tasks() if callable(self._tasks) else self._tasks

    def run_once(self) -> SchedulerReport:
        started = time.monotonic()
        lead = timedelta(seconds=self.config.lead)
        report = SchedulerReport(slack=self._slack, lead=self.config.lead)
        lease = self.pass_lease()
        tasks = self.tasks
        now = self.store.db_now(now=self.clock.db_now())
        report.now = now
        horizon = now + lead
        names = sorted(tasks)
        for _ in range(self.config.max_rounds):
            # Due by the horizon: the fires of the next ``lead`` seconds are made now.
            due = self.store.schedule_due(now=horizon, limit=self.config.batch_size, tasks=names)
            progressed = capped = False
            for record in due:
                outcome = self._fire(record, tasks[record.task], now, report, lease)
                progressed |= outcome is not None
                capped |= bool(outcome)
            if (len(due) < self.config.batch_size and not capped) or not progressed:
                break
        else:
            report.more = True
        self._release(tasks, now, report, lease)
        # Past the horizon: what is left within it was made, cannot fire, or waits for
        # its time (``held_until``).
        report.next_due = self.store.schedule_next_due(tasks=names, after=horizon)
        report.elapsed = time.monotonic() - started
        return report

    def _fire(
        self,
        record: ScheduleRecord,
        task: Task[Any, Any],
        now: datetime,
        report: SchedulerReport,
        lease: Lease | None,
    ) -> bool | None:
        """One schedule's due fires: True when fires are left for another round, None
        when the schedule cannot fire (its trigger is unreadable) or its fire waits for
        its time (no-overlap)."""
        trigger = self._trigger(record)
        if trigger is None:
            return None
        plan = plan_fires(
            trigger,
            record.next_fire_at,
            now,
            misfire=record.misfire,  # type: ignore[arg-type]  # checked by the store's CHECK
            grace=timedelta(seconds=record.grace),
            ahead=timedelta(seconds=self.config.lead),
        )
        fires = [Fire(d.first, d.reason, last=d.last, count=d.count) for d in plan.dropped]
        busy = not record.overlap and record.last_status in _BUSY
        waits = record.depends_on != "[]"
        skipped: list[datetime] = []  # consecutive fires dropped for overlap: one row
        new_next = plan.next_fire
        for at in plan.run:
            if (busy or waits) and at > now:
                # No-overlap and dependencies are decided at the fire time: a fire to
                # come is not dropped for a job that may end before it, nor made before
                # its dependencies are known. It stays the next fire, and a pass at its
                # time decides (docs/design.md: "Fires made ahead").
                new_next = at
                report.deferred += 1
                if report.held_until is None or at < report.held_until:
                    report.held_until = at
                break
            if busy:
                skipped.append(at)
                continue
            if waits:
                # Dependencies are decided at the fire time, by the release below, as
                # no-overlap is: the fire waits, and is released in this very pass when
                # they are met (docs/design.md: "Schedules that wait on schedules").
                fires.append(Fire(at, WAITING))
                continue
            fires.append(Fire(at, ENQUEUED, job=job_for_fire(task, record, at)))
            busy = not record.overlap
        if skipped:
            fires.append(Fire(skipped[0], OVERLAP, last=skipped[-1], count=len(skipped)))
        if not fires and new_next == record.next_fire_at:
            return None  # nothing to write: the fire waits for its time
        fires.sort(key=lambda f: f.at)
        created = self.store.schedule_fire(
            record.name,
            expected_next=record.next_fire_at,
            new_next=new_next,
            fires=fires,
            now=self.clock.db_now(),
            lease=lease,
            expected_updated=record.updated_at,
        )
        if created is None:
            # Another node fired it, or the row changed since it was read (an update,
            # a pause): read it again at once, not after the interval, or a fire within
            # the lead could be made late.
            report.lost_races += 1
            report.more = True
            return False
        report.fired += 1
        report.jobs.extend(created)
        if created and self._on_enqueued is not None:
            made = [f for f in fires if f.job is not None]
            self._on_enqueued({f.job.queue for f in made if f.job}, min(f.at for f in made))
        drops = [f for f in fires if f.job is None and f.outcome != WAITING]
        dropped = sum(f.count for f in drops)
        report.dropped += dropped
        if dropped:
            reasons = ", ".join(f"{f.count} {f.outcome}" for f in drops)
            log.info("schedule %s: fires dropped (%s)", record.name, reasons)
        return plan.capped

    def _release(
        self,
        tasks: Mapping[str, Task[Any, Any]],
        now: datetime,
        report: SchedulerReport,
        lease: Lease | None,
    ) -> None:
        """Look at the waiting fires again (docs/design.md: "Schedules that wait on
        schedules"): a fire whose dependencies are met gets its job, due now; under
        misfire "skip", one that waited past the grace is dropped ("dependencies");
        otherwise what it waits for is recorded when that changed. The dependencies are
        read first, and only a change is written (in a transaction fenced by the lease,
        which reads them again)."""
        # Every waiting fire is looked at, up to the pass's whole budget of schedules:
        # the first ones still waiting must not hide those after them.
        limit = self.config.batch_size * self.config.max_rounds
        waiting = self.store.fire_waiting(limit=limit, tasks=sorted(tasks))
        for fire in waiting:
            try:
                record = self.store.schedule_get(fire.schedule)
            except ScheduleNotFound:
                continue  # deleted meanwhile: its waiting fire went with it
            task = tasks.get(record.task)
            if task is None:
                continue
            deadline = None
            if record.misfire == "skip":
                deadline = now - timedelta(seconds=record.grace)
            unmet = tuple(self.store.schedule_deps_unmet(record.name))
            late = deadline is not None and fire.at <= deadline
            if unmet and not late and unmet == fire.waiting_for:
                report.waiting += 1
                continue  # nothing changed: nothing to write
            job = job_for_fire(task, record, None)  # due now: its dependencies ran
            result = self.store.fire_release(
                record.name,
                at=fire.at,
                job=job,
                drop_before=deadline,
                now=self.clock.db_now(),
                lease=lease,
            )
            if result.job_id is not None:
                report.jobs.append(result.job_id)
                report.released += 1
                if self._on_enqueued is not None:
                    self._on_enqueued({job.queue}, now)
            elif result.dropped:
                report.dropped += fire.count
                log.info("schedule %s: a fire waited past its grace (dependencies)", record.name)
            elif result.waiting_for:
                report.waiting += 1

    def _trigger(self, record: ScheduleRecord) -> Trigger | None:
        try:
            return trigger_from_json(record.trigger)
        except ConfigurationError as exc:
            if (record.name, "trigger") not in self._warned:
                self._warned.add((record.name, "trigger"))
                log.error("schedule %s cannot fire: %s", record.name, exc)
            return None
