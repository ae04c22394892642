"""The application object: the task registry, enqueueing and the facts of ``tock status``."""

from __future__ import annotations

import functools
import inspect
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, Unpack, overload

from tock import _validate as v
from tock import schedules as sch
from tock.clock import Clock, SystemClock
from tock.errors import ConfigurationError, JobNotFound, JobStateError
from tock.jobs import Job, JobCount, JobId, JobPage, JobRecord, JobStatus, NewJob
from tock.store import (
    Dependencies,
    Fire,
    FireRecord,
    QueueRecord,
    QueueStats,
    ScheduleRecord,
    Store,
    WorkflowRecord,
    open_store,
    redact_url,
    resolve_url,
)
from tock.store import _lists as lists
from tock.tasks import NO_OVERRIDES, Task, TaskOptionArgs, TaskOptions, job_for_fire

if TYPE_CHECKING:
    from tock.workflows import Workflow

__all__ = ["FirePage", "Tock", "total_counts"]

F = TypeVar("F", bound=Callable[..., Any])


#: jobs a bulk retry, cancel or delete changes in one transaction
BULK_BATCH = 500

#: the newest finished jobs of each state that ``count_jobs`` looks at: a count beyond
#: it shows as "at least" (docs/design.md: counting jobs)
COUNT_CAP = 10_000

#: the newest jobs of each part of a filter that one page of ``search_jobs`` looks at
#: (docs/design.md: searching jobs)
SEARCH_SCAN = 10_000

#: the longest text ``search_jobs`` takes
MAX_SEARCH = 1000

#: the groups ``count_jobs`` counts: the live ones (exact), then the finished states
COUNT_GROUPS = (*lists.LIVE_GROUPS, *(s.value for s in JobStatus if s.finished))

#: seconds since a worker's last heartbeat (one comes every ~2 s) past which ``health()``
#: no longer counts it live; the rescuer declares it dead after ``rescue_after`` (10 s)
LIVE_HEARTBEAT = 10.0


def total_counts(by_queue: Mapping[str, Mapping[str, JobCount]], cap: int) -> dict[str, JobCount]:
    """The counts of :meth:`Tock.count_jobs_by_queue` over every queue: what
    :meth:`Tock.count_jobs` without a queue returns, without counting again."""
    total = {g: JobCount(0) for g in COUNT_GROUPS}
    for counts in by_queue.values():
        total = {g: total[g] + counts.get(g, JobCount(0)) for g in COUNT_GROUPS}
    # Each queue's count of a cut state is at most the cap; their sum, too.
    return {g: JobCount(min(c.n, cap), c.more) if c.more else c for g, c in total.items()}


#: the states :meth:`Tock.stop_jobs` applies to
_STOPPABLE = frozenset({JobStatus.RUNNING.value, JobStatus.PENDING.value, JobStatus.BLOCKED.value})


class Tock:
    """A Tock application: ``app = Tock()`` uses ``$TOCK_URL``, else ``./tock.db``.

    The store opens on first use, so creating the app at import time costs nothing.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
    ) -> None:
        """``url`` names the store to open (``$TOCK_URL``, else ``./tock.db``); or
        ``store=`` gives one already made (a test double, a store built on another
        connection). A given store stays the caller's: ``close()`` leaves it open."""
        if store is not None:
            if url is not None:
                raise ConfigurationError("give Tock a url or a store=, not both")
            if not isinstance(store, Store):
                raise ConfigurationError(
                    f"store= takes a Tock store (tock.store.Store), not {type(store).__name__}"
                )
            url = store.url
        self.url = resolve_url(url)
        self.clock: Clock = clock or SystemClock()
        self._store: Store | None = store
        self._owns_store = store is None
        self._store_lock = threading.Lock()
        self._tasks: dict[str, Task[Any, Any]] = {}
        self._code_schedules: dict[str, _CodeSchedule] = {}
        if store is None and self.url.split(":", 1)[0].lower() == "sqlite":
            # Refuse a bad URL here, where it enters, not at the first enqueue.
            from tock.store.sqlite.store import parse_sqlite_url

            parse_sqlite_url(self.url)

    def __repr__(self) -> str:
        return f"Tock({redact_url(self.url)!r})"

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    self._store = open_store(self.url)
        return self._store

    def close(self) -> None:
        """Close the store this app opened (one given with ``store=`` is left open)."""
        if self._store is not None and self._owns_store:
            self._store.close()
            self._store = None

    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migrations applied."""
        return self.store.migrate()

    def schema_version(self) -> tuple[int, int]:
        """(the schema version in the database, the newest this Tock knows)."""
        return self.store.schema_version()

    # -- tasks -----------------------------------------------------------------

    @property
    def tasks(self) -> Mapping[str, Task[Any, Any]]:
        return dict(self._tasks)

    def worker_tasks(self) -> dict[str, Task[Any, Any]]:
        """The tasks a worker of this app runs, by name: :attr:`tasks`, which a
        framework's app may wrap (Django's closes its database connections around each
        job, as around a request)."""
        return dict(self._tasks)

    @overload
    def task(self, fn: F, /) -> Task[Any, Any]: ...
    @overload
    def task(
        self, fn: None = None, /, *, name: str | None = None, **options: Unpack[TaskOptionArgs]
    ) -> Callable[[F], Task[Any, Any]]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        **options: Unpack[TaskOptionArgs],
    ) -> Task[Any, Any] | Callable[[F], Task[Any, Any]]:
        """Register a function (sync or ``async``) as a task, by name; ``options`` are
        those of ``TaskOptions`` (queue, priority, retries, retry_backoff, retry_on,
        timeout, at_most_once, takes_context, max_rescues)."""
        built = TaskOptions.build(**options)

        def register(f: Callable[..., Any]) -> Task[Any, Any]:
            if not callable(f):
                raise ConfigurationError(f"@app.task decorates a function, not {f!r}")
            task_name = name if name is not None else _default_name(f)
            v.check_name("task", task_name)
            existing = self._tasks.get(task_name)
            if existing is not None and existing.fn is not f:
                raise ConfigurationError(f"a task named {task_name!r} is already registered")
            task: Task[Any, Any] = Task(self, f, task_name, built)
            self._tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    # -- schedules -------------------------------------------------------------

    def periodic(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        name: str | None = None,
        **options: Unpack[PeriodicArgs],
    ) -> Any:
        """Register a task and a schedule of the same name that runs it (``cron=`` or
        ``every=``). The schedule is written to the store when ``tock worker`` starts.
        ``options``: those of a schedule (``ScheduleOptions``) and of :meth:`task`."""
        if cron is None and every is None:
            raise ConfigurationError("@app.periodic needs cron= or every=")
        given: dict[str, Any] = dict(options)
        schedule_options = sch.ScheduleOptions.build(
            **{k: given.pop(k) for k in list(given) if k in _SCHEDULE_OPTIONS}
        )
        TaskOptions.build(**given)  # checked before anything is registered
        trigger = sch.make_trigger(
            cron=cron,
            every=every,
            timezone=schedule_options.timezone,
            anchor=schedule_options.anchor,
        )

        def register(f: Callable[..., Any]) -> Task[Any, Any]:
            known = set(self._tasks)
            task = self.task(name=name, **given)(f)
            try:
                job = _encode_call(task, schedule_options)
            except BaseException:
                if task.name not in known:  # a declaration that fails leaves nothing behind
                    del self._tasks[task.name]
                raise
            if schedule_options.depends_on:
                try:  # a cycle among this process's code schedules is refused here
                    sch.check_dependencies(
                        task.name, schedule_options.depends_on, self._code_graph()
                    )
                except BaseException:
                    if task.name not in known:
                        del self._tasks[task.name]
                    raise
            self._code_schedules[task.name] = _CodeSchedule(
                task, trigger, job.args, job.kwargs, schedule_options
            )
            return task

        return register(fn) if fn is not None else register

    @property
    def code_schedules(self) -> Mapping[str, sch.Trigger]:
        """The schedules declared with ``@app.periodic`` in this process, by name."""
        return {name: c.trigger for name, c in self._code_schedules.items()}

    def schedule(
        self,
        name: str,
        *,
        task: Task[Any, Any] | str,
        cron: str | None = None,
        every: timedelta | float | None = None,
        at: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        **options: Unpack[sch.ScheduleOptionArgs],
    ) -> sch.Schedule:
        """Create or update (by name) a dynamic schedule; returns it as stored.
        ``options`` are those of ``ScheduleOptions`` (timezone, anchor, args, kwargs,
        misfire, grace, overlap, enabled, depends_on, future_depends,
        depends_on_outcome). Dependencies that form a cycle are refused
        (``ConfigurationError``); one on a schedule that does not exist is kept, and its
        fires wait (docs/schedules.md: Schedules that wait on schedules).

        Changing the trigger moves the next fire to the new trigger's first fire from now;
        any other change keeps it. ``paused`` is never changed here."""
        record = self._dynamic_record(
            name=name,
            task=task,
            cron=cron,
            every=every,
            at=at,
            queue=queue,
            priority=priority,
            **options,
        )
        self._check_cycles([record])
        now = self.store.db_now(now=self.clock.db_now())
        record = _with_first_fire(record, now)
        return _view(self.store.schedule_upsert(record, now=self.clock.db_now()))

    def schedule_many(self, schedules: Iterable[Mapping[str, Any]]) -> int:
        """Create or update many dynamic schedules in one transaction: each item holds
        the keyword arguments of :meth:`schedule` (``name`` included). Returns how many."""
        records = []
        for index, item in enumerate(schedules):
            if not isinstance(item, Mapping):
                raise TypeError(f"schedule_many item {index} is not a dict of schedule() arguments")
            unknown = set(item) - _SCHEDULE_ARGS
            if unknown:
                raise ConfigurationError(
                    f"schedule_many item {index}: unknown argument(s) {', '.join(sorted(unknown))}"
                )
            for required in ("name", "task"):
                if required not in item:
                    raise ConfigurationError(f"schedule_many item {index} has no {required!r}")
            records.append(self._dynamic_record(**item))
        if not records:
            return 0
        self._check_cycles(records)
        now = self.store.db_now(now=self.clock.db_now())
        memo: dict[str, datetime | None] = {}
        records = [_with_first_fire(r, now, memo) for r in records]
        return self.store.schedule_upsert_many(records, now=self.clock.db_now())

    def unschedule(self, name: str) -> bool:
        """Delete a schedule; True if it existed. Jobs of fires that came due are left
        alone; a job made ahead for a fire still to come, that no worker took yet, is
        withdrawn with it. A code schedule comes back when a worker that declares it
        starts."""
        return self.store.schedule_delete(v.check_name("schedule", name), now=self.clock.db_now())

    def get_schedule(self, name: str) -> sch.Schedule:
        """The schedule as stored (``ScheduleNotFound`` if there is none)."""
        return _view(self.store.schedule_get(v.check_name("schedule", name)))

    def list_schedules(self, *, limit: int | None = None) -> list[sch.Schedule]:
        """Every schedule, by name."""
        return [_view(r) for r in self.store.schedule_list(limit=limit)]

    def pause_schedule(self, name: str) -> sch.Schedule:
        """Stop firing until resumed; fires due meanwhile are dropped as "paused"."""
        v.check_name("schedule", name)
        return _view(self.store.schedule_set_paused(name, True, now=self.clock.db_now()))

    def resume_schedule(self, name: str) -> sch.Schedule:
        """Fire again from now on. The fires that came due while paused are recorded as
        one "paused" drop, by compare-and-set while the schedule is still paused, so no
        scheduler can run them between the two steps."""
        v.check_name("schedule", name)
        for _ in range(100):
            record = self.store.schedule_get(name)
            if not record.paused:
                return _view(record)
            now = self.store.db_now(now=self.clock.db_now())
            drop, new_next = _paused_fires(sch.trigger_from_json(record.trigger), record, now)
            if drop is not None and (
                self.store.schedule_fire(
                    name,
                    expected_next=record.next_fire_at,
                    new_next=new_next,
                    fires=[drop],
                    now=self.clock.db_now(),
                )
                is None
            ):
                continue  # changed meanwhile (resumed, fired or re-planned): look again
            return _view(self.store.schedule_set_paused(name, False, now=self.clock.db_now()))
        raise ConfigurationError(f"schedule {name!r} kept changing while it was resumed")

    def trigger_schedule(self, name: str) -> Job:
        """Fire the schedule once now, with its own key: the next planned fire is kept."""
        record = self.store.schedule_get(v.check_name("schedule", name))
        task = self._tasks.get(record.task)
        if task is None:
            raise ConfigurationError(
                f"schedule {name!r} runs task {record.task!r}, which this app does not register"
            )
        job_id = self.store.schedule_trigger(
            name, job_for_fire(task, record, None), now=self.clock.db_now()
        )
        return Job(job_id, self)

    def list_fires(self, schedule: str, *, after: str | None = None, limit: int = 50) -> FirePage:
        """A schedule's fire records, newest fire first (manual and scheduled together):
        each fire that made a job, and each run of dropped fires with its reason. Pass a
        page's ``next`` as ``after=`` for the following page."""
        v.check_name("schedule", schedule)
        _, limit = lists.check_page(None, limit)
        before = _fire_cursor(after)
        fires = self.store.fire_list(schedule, limit=limit + 1, before=before)
        more = len(fires) > limit
        fires = fires[:limit]
        last = fires[-1] if more else None
        return FirePage(
            fires,
            None if last is None else f"{last.at.isoformat()}|{int(last.manual)}",
        )

    def sync_schedules(self) -> list[str]:
        """Write the code schedules of this process to the store (``tock worker`` does it
        at start-up). Upserts only: disables none and never clears ``paused``."""
        if not self._code_schedules:
            return []
        now = self.store.db_now(now=self.clock.db_now())
        records = [
            _with_first_fire(c.record(name), now)
            for name, c in sorted(self._code_schedules.items())
        ]
        self._check_cycles(records)
        self.store.schedule_upsert_many(records, now=self.clock.db_now())
        return [r.name for r in records]

    def prune_schedules(self) -> list[str]:
        """Disable the code schedules that this process does not declare (any more);
        returns their names. Dynamic schedules are left alone."""
        return self.store.schedule_disable_code(
            sorted(self._code_schedules), now=self.clock.db_now()
        )

    def _code_graph(self) -> dict[str, tuple[str, ...]]:
        return {n: c.options.depends_on for n, c in self._code_schedules.items()}

    def check_schedule_dependencies(self, name: str, depends_on: Sequence[str]) -> None:
        """Raise ``ConfigurationError`` when a schedule ``name`` that depends on
        ``depends_on`` would depend on itself or close a cycle with the stored schedules
        (what :meth:`schedule` refuses; the admin's form asks before it saves)."""
        deps = sch.check_depends_on(depends_on)
        if deps:
            sch.check_dependencies(name, deps, self.store.schedule_graph())

    def _check_cycles(self, records: Sequence[ScheduleRecord]) -> None:
        """Refuse schedules whose dependencies, with those stored, form a cycle
        (docs/schedules.md: Schedules that wait on schedules). The store is read only
        when one of them depends on another schedule."""
        given = {r.name: tuple(json.loads(r.depends_on)) for r in records}
        if not any(given.values()):
            return
        graph = {**self.store.schedule_graph(), **given}
        for r in records:
            if given[r.name]:
                sch.check_dependencies(r.name, given[r.name], graph)

    def _dynamic_record(
        self,
        *,
        name: str,
        task: Task[Any, Any] | str,
        cron: str | None = None,
        every: timedelta | float | None = None,
        at: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        **options: Unpack[sch.ScheduleOptionArgs],
    ) -> ScheduleRecord:
        v.check_name("schedule", name)
        resolved = self._schedule_task(task)
        o = sch.ScheduleOptions.build(**options)
        trigger = _make_trigger(cron=cron, every=every, at=at, timezone=o.timezone, anchor=o.anchor)
        job = _encode_call(resolved, o)
        return ScheduleRecord(
            name=name,
            task=resolved.name,
            trigger=_trigger_text(trigger),
            args=job.args,
            kwargs=job.kwargs,
            queue=None if queue is None else v.check_name("queue", queue),
            priority=None if priority is None else v.check_priority(priority),
            misfire=o.misfire,
            grace=o.grace.total_seconds(),
            overlap=o.overlap,
            enabled=o.enabled,
            source="dynamic",
            **_dependency_fields(name, o),
        )

    def _schedule_task(self, task: object) -> Task[Any, Any]:
        if isinstance(task, Task):
            if self._tasks.get(task.name) is not task:
                raise ConfigurationError(f"task {task.name!r} is not registered with this app")
            return task
        if isinstance(task, str):
            found = self._tasks.get(task)
            if found is None:
                raise ConfigurationError(f"no task named {task!r} is registered with this app")
            return found
        raise ConfigurationError(f"task= takes a task or a registered task's name, not {task!r}")

    # -- jobs: the one surface every front end uses (docs/design.md) ---------------

    def insert_jobs(self, jobs: Sequence[NewJob], *, connection: object | None = None) -> list[Job]:
        """Write jobs already built and checked (``Task.enqueue`` and the shims build
        them), in one transaction, or in the caller's through ``connection``."""
        ids = self.store.job_enqueue_many(jobs, now=self.clock.db_now(), connection=connection)
        return [Job(i, self) for i in ids]

    def insert_workflow(
        self, jobs: Sequence[NewJob], spec: str, *, connection: object | None = None
    ) -> tuple[int, list[Job]]:
        """Write a workflow's jobs (their dependencies by position in ``jobs``) and its
        shape ``spec`` in one transaction (docs/workflows.md); its id and the jobs."""
        workflow_id, ids = self.store.workflow_enqueue(
            jobs, spec, now=self.clock.db_now(), connection=connection
        )
        return workflow_id, [Job(i, self) for i in ids]

    def workflow_record(self, workflow_id: int) -> WorkflowRecord:
        """A workflow as stored (``WorkflowNotFound`` for an unknown id)."""
        if type(workflow_id) is not int or workflow_id <= 0:
            raise ConfigurationError(f"a workflow id is a positive integer, not {workflow_id!r}")
        return self.store.workflow_get(workflow_id)

    def job_dependencies(self, job: Job | JobId) -> Dependencies:
        """What a job (a handle or an id) waits on and what waits on it, each with its
        state (docs/workflows.md); ``JobNotFound`` for an unknown job."""
        return self.store.job_dependencies(_job_id(job.id if isinstance(job, Job) else job))

    def job_record(self, job_id: JobId) -> JobRecord:
        """The job's row as stored now (``JobNotFound`` if there is none)."""
        return self.store.job_get(_job_id(job_id))

    def get_job(self, job_id: JobId) -> Job:
        """A handle on an existing job, read now (``JobNotFound`` if it never existed or
        was pruned)."""
        return Job(job_id, self).refresh()

    def job(self, job_id: JobId) -> Job:
        """The same as :meth:`get_job`."""
        return self.get_job(job_id)

    # -- workflows (docs/workflows.md) ------------------------------------------------

    def cancel_job_ids(self, job_ids: Iterable[JobId]) -> list[JobId]:
        """Cancel those of ``job_ids`` that are pending or blocked, in one transaction
        (what waits on them follows its policy); the ids canceled. Others are left as
        they are, without an error (a workflow's ``cancel()``)."""
        ids = [_job_id(i) for i in job_ids]
        return self.store.job_cancel_many(ids, now=self.clock.db_now()) if ids else []

    def get_workflow(self, workflow_id: int) -> Workflow:
        """A handle on a workflow enqueued before, from its stored spec
        (``WorkflowNotFound`` if there is none)."""
        from tock.workflows import Workflow

        return Workflow.from_record(self.workflow_record(workflow_id), self)

    def list_jobs(
        self,
        *,
        state: str | Iterable[str] | None = None,
        queue: str | None = None,
        task: str | None = None,
        search: str | None = None,
        after: JobId | None = None,
        limit: int = 50,
    ) -> JobPage:
        """Jobs newest first, live and finished together, a page at a time: pass a
        page's ``next`` as ``after=`` for the following one (a keyset: each page costs
        the same, and no query counts the table).

        ``state``: one state or view, or several (a job in any matches): the states,
        and the views ``scheduled`` and ``ready`` (pending, due later or now),
        ``claimed`` (running, not started) and ``started`` (running, started).
        ``search``: the jobs whose id or unique key is exactly the text (both looked up
        through an index). Each filter narrows the list."""
        f = lists.JobFilter.of(state, queue=queue, task=task, search=search)
        before, limit = lists.check_page(after, limit)
        records = self.store.job_page(f, before=before, limit=limit + 1, now=self.clock.db_now())
        page = [Job(r.id, self, r) for r in records[:limit]]
        return JobPage(page, page[-1].id if len(records) > limit else None)

    def search_jobs(
        self,
        text: str,
        *,
        state: str | Iterable[str] | None = None,
        queue: str | None = None,
        task: str | None = None,
        after: JobId | None = None,
        limit: int = 50,
        scan: int = SEARCH_SCAN,
    ) -> JobPage:
        """Jobs whose id is ``text``, or whose task, queue, unique key or arguments
        (their JSON text) contain it, ignoring case (ASCII letters only on SQLite),
        newest first, with :meth:`list_jobs`' filters (docs/design.md: searching jobs).

        A page looks at no more than the ``scan`` newest jobs of each part of the filter
        below ``after``: it may hold fewer than ``limit`` jobs, or none, and still have
        a ``next`` (pass it as ``after=`` to search older jobs); ``next`` is None once
        every job was looked at."""
        if not isinstance(text, str):
            raise ConfigurationError(f"a search takes a string, not {text!r}")
        text = text.strip()
        if not text:
            raise ConfigurationError("a search takes some text: it is empty")
        if len(text) > MAX_SEARCH or "\x00" in text:
            raise ConfigurationError(
                f"a search takes text of at most {MAX_SEARCH} characters, without NUL"
            )
        if isinstance(scan, bool) or not isinstance(scan, int) or scan < 1:
            raise ConfigurationError(f"scan must be a whole number >= 1, not {scan!r}")
        f = lists.JobFilter.of(state, queue=queue, task=task)
        before, limit = lists.check_page(after, limit)
        records, next_id = self.store.job_search(
            f, text, before=before, limit=limit, scan=scan, now=self.clock.db_now()
        )
        return JobPage([Job(r.id, self, r) for r in records], next_id)

    def count_jobs(
        self, *, queue: str | None = None, task: str | None = None, cap: int = COUNT_CAP
    ) -> dict[str, JobCount]:
        """How many jobs (of ``queue``, of ``task``) are in each group: ``blocked``,
        ``scheduled``, ``ready``, ``claimed``, ``started`` (the live ones, counted
        exactly), ``succeeded``, ``failed``, ``canceled``, ``lost``. The finished ones
        are counted among the newest ``cap`` jobs of each state: a state holding more
        gives a lower bound (``JobCount.more``), so no count reads the whole finished
        table (docs/design.md: counting jobs)."""
        if queue is not None:
            v.check_name("queue", queue)
        by_queue, zero = self._count(task, cap, live=True)
        if queue is not None:
            return by_queue.get(queue, zero)
        return total_counts(by_queue, cap)

    def count_jobs_by_queue(
        self, *, task: str | None = None, cap: int = COUNT_CAP, live: bool = True
    ) -> dict[str, dict[str, JobCount]]:
        """:meth:`count_jobs` of each queue that holds live jobs or is seen among the
        newest finished ones, by name. ``live=False`` counts the finished jobs alone
        (the live groups are then zero)."""
        return self._count(task, cap, live=live)[0]

    def _count(
        self, task: str | None, cap: int, *, live: bool
    ) -> tuple[dict[str, dict[str, JobCount]], dict[str, JobCount]]:
        """The counts by queue, and those of a queue with no job seen."""
        if task is not None:
            v.check_name("task", task)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ConfigurationError(f"cap must be a whole number >= 1, not {cap!r}")
        # One more than the cap: a state whose newest cap + 1 are all read holds more.
        counts = self.store.job_count(task=task, scan=cap + 1, now=self.clock.db_now(), live=live)
        finished_states = COUNT_GROUPS[len(lists.LIVE_GROUPS) :]

        def bounded(n: int, more: bool) -> JobCount:
            return JobCount(min(n, cap), True) if more else JobCount(n)

        def of(
            live_counts: Mapping[str, int], finished: Mapping[str, int], queue: str | None
        ) -> dict[str, JobCount]:
            return {
                **{
                    g: bounded(
                        live_counts.get(g, 0), (queue, g) in counts.live_cut or g in counts.cut
                    )
                    for g in lists.LIVE_GROUPS
                },
                **{
                    s: JobCount(min(finished.get(s, 0), cap), s in counts.cut)
                    for s in finished_states
                },
            }

        by_queue = {
            name: of(counts.live.get(name, {}), counts.finished.get(name, {}), name)
            for name in sorted(counts.live.keys() | counts.finished.keys())
        }
        return by_queue, of({}, {}, None)

    def retry_job(self, job_id: JobId) -> Job:
        """Run a failed, lost or canceled job again: pending, attempts from zero, due now.
        Any other state raises ``JobStateError``; so does a unique key that a live job
        holds meanwhile."""
        record = lists.retry_one(self.store, _job_id(job_id), now=self.clock.db_now())
        return Job(record.id, self, record)

    def cancel_job(self, job_id: JobId) -> Job:
        """Cancel a pending or blocked job (``JobStateError`` for any other state: a
        running job is stopped by its worker, not canceled here)."""
        record = lists.cancel_one(self.store, _job_id(job_id), now=self.clock.db_now())
        return Job(record.id, self, record)

    def delete_job(self, job_id: JobId) -> None:
        """Delete a finished job and its fire record now, as the pruner would later
        (``JobStateError`` for a live job: cancel it first)."""
        lists.delete_one(self.store, _job_id(job_id))

    def run_job_now(self, job_id: JobId) -> Job:
        """Make a scheduled job ready now; a ready job is left as it is
        (``JobStateError`` unless the job is pending)."""
        record = lists.run_now_one(self.store, _job_id(job_id), now=self.clock.db_now())
        return Job(record.id, self, record)

    def retry_jobs(
        self,
        *,
        state: str | Iterable[str] | None = None,
        queue: str | None = None,
        task: str | None = None,
        search: str | None = None,
    ) -> int:
        """:meth:`retry_job` for every failed, lost or canceled job the filter matches
        (as :meth:`list_jobs` takes it), in batches; returns how many. Jobs whose unique
        key a live job holds are left as they are."""
        return self._bulk(lists.RETRYABLE, self.store.job_retry_many, state, queue, task, search)

    def cancel_jobs(
        self,
        *,
        state: str | Iterable[str] | None = None,
        queue: str | None = None,
        task: str | None = None,
        search: str | None = None,
    ) -> int:
        """:meth:`cancel_job` for every pending or blocked job the filter matches, in
        batches; returns how many."""
        return self._bulk(lists.CANCELABLE, self.store.job_cancel_many, state, queue, task, search)

    def delete_jobs(
        self,
        *,
        state: str | Iterable[str] | None = None,
        queue: str | None = None,
        task: str | None = None,
        search: str | None = None,
    ) -> int:
        """:meth:`delete_job` for every finished job the filter matches, in batches;
        returns how many."""
        return self._bulk(
            lists.DELETABLE, lambda ids, now: self.store.job_delete_many(ids), state, queue,
            task, search,
        )  # fmt: skip

    def run_jobs_now(
        self,
        *,
        state: str | Iterable[str] | None = None,
        queue: str | None = None,
        task: str | None = None,
        search: str | None = None,
    ) -> int:
        """:meth:`run_job_now` for every scheduled job the filter matches, in batches;
        returns how many became ready."""
        return self._bulk(
            frozenset({JobStatus.PENDING.value}), self.store.job_run_now_many, state, queue,
            task, search,
        )  # fmt: skip

    def stop_jobs(
        self,
        *,
        state: str | Iterable[str] | None = None,
        queue: str | None = None,
        task: str | None = None,
        search: str | None = None,
    ) -> int:
        """:meth:`stop_job` for every running, pending or blocked job the filter
        matches: the running ones end canceled once their workers stop them, the others
        are canceled at once. Returns how many were stopped or canceled (a job that
        finished meanwhile is left as it is)."""

        def stop(ids: Sequence[JobId], now: datetime | None) -> list[JobId]:
            done = []
            for job_id in ids:  # one statement a job: each is its own command
                try:
                    done.append(self.store.job_stop(job_id, now=now).id)
                except (JobStateError, JobNotFound):
                    continue  # finished or pruned since the batch was read
            return done

        return self._bulk(_STOPPABLE, stop, state, queue, task, search)

    def _bulk(
        self,
        applies_to: frozenset[str],
        apply: Callable[..., list[JobId]],
        state: str | Iterable[str] | None,
        queue: str | None,
        task: str | None,
        search: str | None,
    ) -> int:
        # A batch a transaction, walking the matching ids downwards: each batch's
        # statement checks the state again, so a job that changed meanwhile is skipped.
        f = lists.JobFilter.of(state, queue=queue, task=task, search=search).narrowed(applies_to)
        if f is None:
            return 0
        done, before = 0, lists.MAX_ID
        while True:
            ids = self.store.job_ids(f, before=before, limit=BULK_BATCH, now=self.clock.db_now())
            if not ids:
                return done
            done += len(apply(ids, now=self.clock.db_now()))
            before = min(ids)

    # -- commands (docs/design.md: Commands) ----------------------------------------

    def stop_job(self, job_id: JobId) -> Job:
        """Stop a job (``tock jobs stop``). A running job's worker stops it within a
        short bound (``ctx.canceled`` set for a sync task, the coroutine cancelled for an
        async one; a claimed job never starts) and the job ends ``canceled``, never
        retried, even if the task then raises or its worker dies meanwhile. The handle
        returned says ``running`` until then (``job.result()`` waits for the end). A
        pending or blocked job is canceled at once, as by :meth:`cancel_job`. A finished
        job raises ``JobStateError``."""
        record = self.store.job_stop(_job_id(job_id), now=self.clock.db_now())
        return Job(record.id, self, record)

    def stop_worker(self, worker_id: str) -> None:
        """Ask a worker to shut down gracefully (``tock workers stop``), from any
        process: it stops claiming, hands back the jobs it has not started, lets running
        ones finish within its shutdown grace and resigns leadership, as on SIGTERM.
        ``WorkerNotFound`` when no registered worker has that id."""
        if not isinstance(worker_id, str) or not worker_id.strip():
            raise ConfigurationError(f"a worker id is a non-empty string, not {worker_id!r}")
        self.store.worker_stop_request(worker_id, now=self.clock.db_now())

    def list_workers(self) -> list[dict[str, Any]]:
        """The registered workers, as ``health()["workers"]`` shows them (``tock workers
        list``)."""
        workers: list[dict[str, Any]] = self.health()["workers"]
        return workers

    def pause_queue(self, name: str) -> QueueRecord:
        """No worker claims jobs of queue ``name`` until it is resumed (``tock queues
        pause``); running jobs go on, and enqueueing into it still works. Takes effect
        with the next claim of every worker."""
        return self.store.queue_pause(v.check_name("queue", name), now=self.clock.db_now())

    def resume_queue(self, name: str) -> QueueRecord:
        """Workers claim the queue's jobs again (``tock queues resume``); idle ones are
        woken at once."""
        return self.store.queue_resume(v.check_name("queue", name), now=self.clock.db_now())

    def list_queues(self) -> list[dict[str, Any]]:
        """Every queue that holds jobs or was ever paused, by name: ``health()``'s facts
        of each (``paused``, ``paused_at``, counts per state, ``ready``, ``served``)."""
        return [{"name": name, **q} for name, q in self.health()["queues"].items()]

    def transfer_leadership(self) -> str | None:
        """Make the leader step down so that another worker leads (``tock leader
        resign``), from any process. The lease is cleared at once; the leader finds out
        within 50 ms (it reads its lease that often), stops, frees its lock, and sits
        out the election a follower then wins (its writes are refused meanwhile).
        Returns the worker that led, or None when none did."""
        lease = self.store.leader_depose(now=self.clock.db_now())
        return None if lease is None else lease.worker_id

    def health(
        self, *, max_lag: float | None = None, finished_cap: int | None = None
    ) -> dict[str, Any]:
        """The facts ``tock status`` shows: store, schema, the leader, workers, queues,
        and the problems found (``ok`` is true when there are none).

        ``leader`` is ``{"worker", "term", "since"}`` while a lease is held, else None;
        each worker says whether it is the leader. With live workers and no leader,
        schedules do not fire: a problem. ``max_lag`` (seconds): a queue whose oldest
        ready job waits longer is a problem too.

        Every queue that holds jobs has every state's count (zero included), ``claimed``
        (running, not started), ``ready``, ``oldest_ready_age`` and ``served``: whether a
        live worker (a heartbeat within ``LIVE_HEARTBEAT`` seconds) serves it, and
        ``paused``/``paused_at`` (``pause_queue``; a paused queue is listed even with no
        jobs). Problems: no live worker, and ready jobs in a queue no live worker serves
        (the commonest reason a job "never runs"); a paused queue's waiting is no
        problem.

        ``finished_cap``: count each queue's finished jobs among the newest
        ``finished_cap`` of each state, as :meth:`count_jobs` does, instead of over the
        whole finished table (the admin's page of queues does; ``tock status`` counts
        them all). Each queue then says in ``"more"`` which states' counts are lower
        bounds, and a queue seen only among older finished jobs is not listed."""
        store = self.store
        now = store.db_now(now=self.clock.db_now())
        version, latest = store.schema_version()
        if max_lag is not None:
            max_lag = v.seconds("max_lag", max_lag, allow_zero=True)
        lease = store.leader_get(now=self.clock.db_now())
        leader = (
            {
                "worker": lease.worker_id,
                "term": lease.term,
                "since": lease.elected_at.isoformat() if lease.elected_at else None,
            }
            if lease.held
            else None
        )
        workers: list[dict[str, Any]] = []
        for w in store.worker_list():
            age = max(0.0, (now - w.heartbeat_at).total_seconds())
            workers.append(
                {
                    "id": w.id,
                    "hostname": w.hostname,
                    "pid": w.pid,
                    "queues": list(w.queues),
                    "concurrency": w.concurrency,
                    "running": w.running,
                    "claimed": w.claimed,
                    "started_at": w.started_at.isoformat(),
                    "heartbeat_age": age,
                    "live": age <= LIVE_HEARTBEAT,
                    "leader": leader is not None and leader["worker"] == w.id,
                }
            )
        served = {q for w in workers if w["live"] for q in w["queues"]}
        paused = {q.name: q for q in store.queue_list() if q.paused}
        if finished_cap is None:
            stats = {s.queue: s for s in store.job_stats(now=self.clock.db_now())}
            more: dict[str, list[str]] = {}
        else:
            stats, more = self._capped_stats(finished_cap)
        for name in paused.keys() - stats.keys():  # a paused queue with no jobs
            stats[name] = QueueStats(queue=name, counts={}, ready=0, oldest_ready_at=None)
        queues: dict[str, dict[str, Any]] = {}
        for s in sorted(stats.values(), key=lambda s: s.queue):
            counts = {status.value: 0 for status in JobStatus}
            counts.update({str(k): n for k, n in s.counts.items()})
            # Running jobs not started yet are "claimed" (a view of running), counted
            # apart: running + claimed = the jobs in state running.
            counts["running"] -= s.claimed
            queues[s.queue] = {
                **counts,
                "claimed": s.claimed,
                "ready": s.ready,
                "oldest_ready_age": (
                    None
                    if s.oldest_ready_at is None
                    else max(0.0, (now - s.oldest_ready_at) / timedelta(seconds=1))
                ),
                "served": s.queue in served,
                "paused": s.queue in paused,
                "paused_at": _iso(paused[s.queue].paused_at) if s.queue in paused else None,
            }
            if finished_cap is not None:
                queues[s.queue]["more"] = more.get(s.queue, [])
        problems = []
        if not served:
            problems.append("no live worker: start one with `tock worker`")
        elif leader is None:
            problems.append(
                "no leader: schedules do not fire and dead workers' jobs are not rescued "
                "(every live worker runs with --no-leader, or an election is under way)"
            )
        for name, q in queues.items():
            if q["ready"] and not q["served"] and not q["paused"]:
                problems.append(
                    f"queue {name!r} has {q['ready']} ready job(s) that no live worker serves"
                    f" (start one with `tock worker --queues {name}`)"
                )
            lag = q["oldest_ready_age"]
            if max_lag is not None and lag is not None and lag > max_lag and not q["paused"]:
                problems.append(
                    f"queue {name!r}: its oldest ready job has waited {lag:.1f} s, more than "
                    f"--max-lag {max_lag:g} s"
                )
        return {
            "store": store.url,
            "schema": {"version": version, "latest": latest},
            "now": now.isoformat(),
            "ok": not problems,
            "problems": problems,
            "leader": leader,
            "workers": workers,
            "queues": queues,
        }

    def _capped_stats(self, cap: int) -> tuple[dict[str, QueueStats], dict[str, list[str]]]:
        """``job_stats`` of the live table, with each queue's finished jobs counted as
        :meth:`count_jobs_by_queue` counts them; and the states whose counts are lower
        bounds, by queue."""
        stats = {s.queue: s for s in self.store.job_stats(now=self.clock.db_now(), finished=False)}
        more: dict[str, list[str]] = {}
        for name, counts in self.count_jobs_by_queue(cap=cap, live=False).items():
            finished = {s: counts[s.value].n for s in JobStatus if s.finished}
            found = stats.get(name)
            stats[name] = QueueStats(
                queue=name,
                counts={**(found.counts if found else {}), **finished},
                ready=found.ready if found else 0,
                oldest_ready_at=found.oldest_ready_at if found else None,
                claimed=found.claimed if found else 0,
            )
            more[name] = [g for g, c in counts.items() if c.more]
        return stats, more


#: the options of a schedule (``ScheduleOptions``), by name
_SCHEDULE_OPTIONS = frozenset(f.name for f in fields(sch.ScheduleOptions))


class PeriodicArgs(sch.ScheduleOptionArgs, TaskOptionArgs, total=False):
    """The keyword arguments of ``@app.periodic`` besides cron, every and name."""


@dataclass(frozen=True)
class FirePage:
    """One page of ``app.list_fires``: fire records newest first, and the cursor of the
    next page (pass it as ``after=``), or None when this is the last."""

    fires: list[FireRecord]
    next: str | None

    def __iter__(self) -> Iterator[FireRecord]:
        return iter(self.fires)

    def __len__(self) -> int:
        return len(self.fires)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _job_id(job_id: object) -> JobId:
    if isinstance(job_id, bool) or not isinstance(job_id, int) or not 1 <= job_id <= lists.MAX_ID:
        raise ConfigurationError(f"a job id is a whole number from 1, not {job_id!r}")
    return job_id


def _fire_cursor(after: object) -> tuple[datetime, bool] | None:
    if after is None:
        return None
    try:
        at, manual = str(after).rsplit("|", 1)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or manual not in ("0", "1"):
            raise ValueError
    except ValueError:
        raise ConfigurationError(
            f"after= takes a cursor from a page of fires' .next, not {after!r}"
        ) from None
    return when, manual == "1"


def _default_name(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if module == "__main__":
        raise ConfigurationError(
            f"task {qualname!r} is defined in __main__: give it a name, "
            "e.g. @app.task(name='emails.send'), so workers that import it find the same one"
        )
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        raise ConfigurationError(
            f"task {qualname!r} has no importable name (defined in a function or a lambda): "
            "give it name="
        )
    return f"{module}.{qualname}"


def _encode_call(task: Task[Any, Any], options: sch.ScheduleOptions) -> Any:
    """The schedule's arguments, checked against the task's signature and encoded as
    its jobs' will be (a wrong call fails here, when the schedule is defined)."""
    return task._new_job(options.args, options.kwargs, NO_OVERRIDES)


@dataclass(frozen=True)
class _CodeSchedule:
    task: Task[Any, Any]
    trigger: sch.Trigger
    args: str
    kwargs: str
    options: sch.ScheduleOptions

    def record(self, name: str) -> ScheduleRecord:
        return ScheduleRecord(
            name=name,
            task=self.task.name,
            trigger=sch.trigger_to_json(self.trigger),
            args=self.args,
            kwargs=self.kwargs,
            misfire=self.options.misfire,
            grace=self.options.grace.total_seconds(),
            overlap=self.options.overlap,
            enabled=self.options.enabled,
            source="code",
            **_dependency_fields(name, self.options),
        )


def _dependency_fields(name: str, options: sch.ScheduleOptions) -> dict[str, Any]:
    """A record's dependency fields (docs/schedules.md: Schedules that wait on
    schedules); a schedule depending on itself is refused here."""
    if name in options.depends_on:
        raise ConfigurationError(f"schedule {name!r} cannot depend on itself")
    return {
        "depends_on": json.dumps(list(options.depends_on)),
        "future_depends": options.future_depends,
        "depends_on_outcome": options.depends_on_outcome,
    }


def _with_first_fire(
    record: ScheduleRecord, now: datetime, memo: dict[str, datetime | None] | None = None
) -> ScheduleRecord:
    # Used only when the row is new or its trigger changed (the store keeps the stored
    # next fire otherwise). ``memo``: a batch shares few triggers and one ``now``.
    memo = {} if memo is None else memo
    if record.trigger not in memo:
        memo[record.trigger] = sch.first_fire(sch.trigger_from_json(record.trigger), now)
    return replace(record, next_fire_at=memo[record.trigger])


# Many dynamic schedules share a handful of triggers (a million users' "0 9 * * *"):
# parsing a cron expression and building its walker cost far more than the rest of a
# schedule_many item, so equal triggers are built once. Triggers are immutable.
_cached_trigger = functools.lru_cache(maxsize=4096)(sch.make_trigger)
_trigger_text = functools.lru_cache(maxsize=4096)(sch.trigger_to_json)


def _make_trigger(**given: Any) -> sch.Trigger:
    try:
        hash(tuple(given.values()))
    except TypeError:  # a bad value: make_trigger says what is wrong with it
        return sch.make_trigger(**given)
    return _cached_trigger(**given)


def _paused_fires(
    trigger: sch.Trigger, record: ScheduleRecord, now: datetime
) -> tuple[Fire | None, datetime | None]:
    """The fires that came due while ``record`` was paused, as one drop, and the next
    fire after ``now``."""
    cursor = record.next_fire_at
    if cursor is None or cursor > now:
        return None, cursor
    first, last, count = cursor, cursor, 0
    while cursor is not None and cursor <= now:
        # "skip" with the smallest grace: every due fire is missed or on time, none run
        # twice; Every skips any number of them by arithmetic.
        plan = sch.plan_fires(trigger, cursor, now, misfire="skip", grace=timedelta(microseconds=1))
        for d in plan.dropped:
            last, count = max(last, d.last), count + d.count
        for at in plan.run:
            last, count = max(last, at), count + 1
        cursor = plan.next_fire
    return Fire(first, "paused", last=last, count=count), cursor


def _view(record: ScheduleRecord) -> sch.Schedule:
    return sch.Schedule(
        name=record.name,
        task=record.task,
        trigger=sch.trigger_from_json(record.trigger),
        args=json.loads(record.args),
        kwargs=json.loads(record.kwargs),
        queue=record.queue,
        priority=record.priority,
        misfire=sch.check_misfire(record.misfire),
        grace=timedelta(seconds=record.grace),
        overlap=record.overlap,
        enabled=record.enabled,
        paused=record.paused,
        source=record.source,
        next_fire_at=record.next_fire_at,
        last_fire_at=record.last_fire_at,
        last_job_id=record.last_job_id,
        last_status=None if record.last_status is None else str(record.last_status),
        created_at=record.created_at,
        updated_at=record.updated_at,
        depends_on=tuple(json.loads(record.depends_on)),
        future_depends=record.future_depends,
        depends_on_outcome=record.depends_on_outcome,
    )


#: the keyword arguments of Tock.schedule, which schedule_many items hold
_SCHEDULE_ARGS = (
    frozenset(inspect.signature(Tock.schedule).parameters) - {"self", "options"}
) | _SCHEDULE_OPTIONS
