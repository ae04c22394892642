"""What the SQL stores do alike, written once above their dialects (docs/design.md: Stores).

A dialect (``SQLiteStore``, ``PostgresStore``) gives this layer its queries, under the
same names in each ``queries.sql``, and a few primitives:

- ``_read()`` and ``_write()``: a connection for reads, and one inside a write
  transaction; ``_write_one()``: a connection for one statement that writes (its own
  transaction where the dialect commits each statement anyway); ``_snapshot()``: one
  whose reads all see one snapshot;
- ``_time(when)`` / ``_read_time(value)``: a time as a parameter, and back;
  ``_names(names)`` / ``_read_names(value)``: a list of names, the same way;
- ``_stamp(conn, now)``: the time a write transaction stamps its rows with, as a
  parameter (SQLite reads its clock once for the transaction; PostgreSQL's ``now()`` is
  already the transaction's); ``_clock(conn, now)``: that time read as a value, and
  ``_after(at)``: the next instant the store can tell apart;
- ``_stored_versions()`` and ``_run_migration(conn, sql)``: the schema's versions on the
  dialect's connection for that, and one migration applied;
- ``_bury``, ``_drop_token``, ``_upsert``, ``_complete``, ``_claim`` and
  ``_prune_some``: the few steps whose SQL takes a different shape per dialect.

Everything above those lives here: the fire and trigger loops, the migration loop and the
schema verdict, pruning in batches, splitting a batch into runs of shared options, the
claim's framing, job lists, and turning rows into records. What a dialect alone can do (COPY and
LISTEN/NOTIFY, advisory locks; ``BEGIN IMMEDIATE``, ``PRAGMA data_version``, file locks)
stays in its own package.
"""

from __future__ import annotations

import json
import logging
import operator
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import partial
from itertools import groupby
from typing import Any, ClassVar

from tock import _validate as v
from tock.errors import (
    ConfigurationError,
    JobNotFound,
    JobStateError,
    ScheduleNotFound,
    SchemaError,
    StaleTerm,
    StoreError,
    WorkerNotFound,
    WorkflowNotFound,
)
from tock.jobs import JobId, JobRecord, JobStatus, NewJob, Outcome, Start
from tock.store import (
    MAX_CLAIM_AHEAD,
    MAX_LEAD,
    Dependencies,
    Fire,
    FireRecord,
    FireRelease,
    JobCounts,
    Lease,
    QueueRecord,
    QueueStats,
    RescueReport,
    ScheduleRecord,
    Watch,
    WorkerCommands,
    WorkerInfo,
    WorkerRecord,
    WorkflowRecord,
)
from tock.store._lists import (
    FINISHED_TABLE,
    LIVE_GROUPS,
    MAX_ID,
    JobFilter,
    legacy_filter,
    like_pattern,
    merge_ids,
    params,
    parts,
)
from tock.store._rows import fire_record, job_record, json_loads, last_of_each, schedule_record
from tock.store._rows import us as _us
from tock.store._sql import variant

WAITING = "waiting"  #: a fire waiting on its schedule's dependencies (no job yet)
MANUAL_TRIES = 1000  # a manual trigger's key taken: try that many next instants
STOP_TRIES = 10  # job_stop: a job changing state under the request, asked again so often


log = logging.getLogger("tock.scheduler")


class SQLStore(ABC):
    """The operations both SQL stores share; a dialect subclasses it (see the module's
    docstring for what it supplies)."""

    Q: Mapping[str, str]  #: the dialect's queries, by name
    MIGRATIONS: ClassVar[list[tuple[int, str, str]]]  #: (version, name, sql), in order
    LATEST: ClassVar[int]
    _checked: bool
    _check_lock: threading.Lock

    # -- what each dialect supplies ------------------------------------------------

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def _write_one(self) -> AbstractContextManager[Any]: ...

    @staticmethod
    @abstractmethod
    def _time(when: datetime | None) -> Any: ...

    @staticmethod
    @abstractmethod
    def _read_time(value: Any) -> datetime | None: ...

    @staticmethod
    @abstractmethod
    def _names(names: Sequence[str] | None) -> Any: ...

    @staticmethod
    @abstractmethod
    def _read_names(value: Any) -> tuple[str, ...]: ...

    @abstractmethod
    def _stamp(self, conn: Any, now: datetime | None) -> Any: ...

    @abstractmethod
    def _clock(self, conn: Any, now: datetime | None) -> Any: ...

    @staticmethod
    @abstractmethod
    def _after(at: Any) -> Any: ...

    @property
    @abstractmethod
    def _where(self) -> str:
        """Where the schema lives, as error messages name it."""

    @abstractmethod
    def _run_migration(self, conn: Any, sql: str) -> None: ...

    @abstractmethod
    def _bury(self, conn: Any, worker_ids: list[str], now: Any, report: RescueReport) -> list[str]:
        """Settle dead workers' jobs and delete their rows (in the caller's
        transaction); the queues that jobs went back to, for ``_wake``."""

    def _wake(self, queues: list[str]) -> None:
        """After a commit that made jobs of ``queues`` ready again (a rescue, a
        hand-back): wake the workers where the store tells them (NOTIFY); a no-op where
        they notice by themselves."""
        return None

    @abstractmethod
    def _drop_token(self, worker_id: str) -> None: ...

    @abstractmethod
    def _upsert(self, conn: Any, schedules: Sequence[ScheduleRecord], now: Any) -> int: ...

    @abstractmethod
    def _complete(
        self, conn: Any, outcomes: Sequence[Outcome], now: Any, started: Sequence[Start] = ()
    ) -> int: ...

    @abstractmethod
    def _claim(
        self,
        params: dict[str, Any],
        queues: Sequence[str],
        completed: Sequence[Outcome],
        started: Sequence[Start],
    ) -> list[Any]:
        """The rows of one claim; records ``completed`` and ``started`` first."""

    @abstractmethod
    def job_enqueue_many(
        self, jobs: Sequence[NewJob], *, now: datetime | None, connection: object | None = None
    ) -> list[JobId]: ...

    @abstractmethod
    def job_cancel_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]: ...

    @abstractmethod
    def _snapshot(self) -> AbstractContextManager[Any]:
        """A connection whose reads all see one snapshot (the parts of a list)."""

    def _hint(self, *, queues: Sequence[str] = (), commands: bool = False) -> None:
        """A wake-up hint after a commit: idle workers of ``queues``, and workers
        watching for commands. A no-op where workers poll (SQLite)."""
        return None

    def worker_command_watch(self, callback: Callable[[], None]) -> Watch | None:
        return None  # workers poll worker_commands

    # -- records to parameters and rows to records -----------------------------------

    def _worker_params(self, info: WorkerInfo, now: datetime | None) -> dict[str, Any]:
        """What worker_register takes."""
        return {
            "id": info.id,
            "hostname": info.hostname,
            "pid": info.pid,
            "queues": self._names(info.queues),
            "concurrency": info.concurrency,
            "now": self._time(now),
        }

    @staticmethod
    def _schedule_rows(schedules: Sequence[ScheduleRecord]) -> list[dict[str, Any]]:
        """What schedule_upsert_many takes: a row a name (the last one given), with
        ``next_fire_at`` as given (each dialect sends times its own way)."""
        return [
            {
                "name": s.name,
                "task": s.task,
                "trigger": s.trigger,
                "args": s.args,
                "kwargs": s.kwargs,
                "queue": s.queue,
                "priority": s.priority,
                "misfire": s.misfire,
                "grace": float(s.grace),
                "overlap": bool(s.overlap),
                "enabled": bool(s.enabled),
                "paused": bool(s.paused),
                "source": s.source,
                "next_fire_at": s.next_fire_at,
                "depends_on": s.depends_on,
                "future_depends": bool(s.future_depends),
                "depends_on_outcome": s.depends_on_outcome,
            }
            for s in last_of_each(schedules)
        ]

    def _record(self, row: Sequence[Any]) -> JobRecord:
        return job_record(row, self._read_time)

    def _schedule(self, row: Sequence[Any]) -> ScheduleRecord:
        return schedule_record(row, self._read_time)

    # -- schema --------------------------------------------------------------------

    def _verify(self, versions: list[int]) -> None:
        """The schema's verdict: the version this Tock needs, or a clear error."""
        current = max(versions, default=0)
        if current > self.LATEST:
            raise self._newer(current)
        if current < self.LATEST:
            raise SchemaError(
                f"{self._where} has schema version {current}, this Tock needs "
                f"{self.LATEST}: run `tock migrate`"
            )

    def _newer(self, current: int) -> SchemaError:
        return SchemaError(
            f"{self._where} has schema version {current}, newer than this Tock knows "
            f"({self.LATEST}): upgrade Tock"
        )

    def _versions(self, conn: Any) -> list[int] | None:
        """The versions the migrations table holds (None: no table yet)."""
        if conn.execute(self.Q["migration_table"]).fetchone() is None:
            return None
        return [v for (v,) in conn.execute(self.Q["migration_versions"]).fetchall()]

    @abstractmethod
    def _stored_versions(self) -> list[int] | None:
        """The versions the schema's migrations table holds (None: no table)."""

    def schema_version(self) -> tuple[int, int]:
        return (max(self._stored_versions() or [0]), self.LATEST)

    def _apply_migrations(self, conn: Any, done: set[int], upto: int | None = None) -> list[str]:
        """Apply the migrations not in ``done`` (up to version ``upto``, if given), in
        order, each recorded; inside the dialect's migration transaction (and lock)."""
        if done and max(done) > self.LATEST:
            raise self._newer(max(done))
        if upto is not None and not 0 < upto <= self.LATEST:
            raise ConfigurationError(
                f"upto={upto!r}: this Tock knows schema versions 1 to {self.LATEST}"
            )
        applied: list[str] = []
        for version, name, sql in self.MIGRATIONS:
            if version in done or (upto is not None and version > upto):
                continue
            self._run_migration(conn, sql)
            conn.execute(
                self.Q["migration_record"], {"version": version, "name": name, "now": None}
            )
            applied.append(f"{version:04d}_{name}")
        return applied

    # -- jobs ----------------------------------------------------------------------

    def job_get(self, job_id: JobId) -> JobRecord:
        with self._read() as conn:
            row = conn.execute(self.Q["job_get"], {"id": job_id}).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return self._record(row)

    def job_list(
        self,
        *,
        statuses: Sequence[JobStatus] | None = None,
        queue: str | None = None,
        task: str | None = None,
        worker_id: str | None = None,
        limit: int = 50,
        started: bool | None = None,
    ) -> list[JobRecord]:
        return self.job_page(
            legacy_filter(statuses, queue, task, worker_id, started), limit=limit, now=None
        )

    def job_page(
        self, f: JobFilter, *, before: JobId = MAX_ID, limit: int = 50, now: datetime | None
    ) -> list[JobRecord]:
        rows = self._list(f, (), before, limit, now)
        rows.sort(key=lambda r: r[0], reverse=True)
        return [self._record(r) for r in _distinct(rows, limit)]

    def job_ids(
        self, f: JobFilter, *, before: JobId = MAX_ID, limit: int, now: datetime | None
    ) -> list[JobId]:
        return merge_ids(([r[0] for r in self._list(f, ("ids",), before, limit, now)],), limit)

    def job_search(
        self,
        f: JobFilter,
        text: str,
        *,
        before: JobId = MAX_ID,
        limit: int,
        scan: int,
        now: datetime | None,
    ) -> tuple[list[JobRecord], JobId | None]:
        # docs/design.md, searching jobs: each part's window is its ``scan`` newest
        # matching ids; the page holds what every window saw, so it stops at the highest
        # of the cut windows' floors, and the next page goes on below it.
        f = JobFilter(f.states, f.queue, f.task, f.worker_id)
        number = int(text) if text.isdigit() and int(text) <= MAX_ID else -1
        values = {
            **self._list_params(f, before, limit + 1, now),
            "scan": scan,
            "pattern": like_pattern(text),
            "search_id": number,
        }
        list_parts = parts(f)
        rows: list[Any] = []
        with self._snapshot() if len(list_parts) > 1 else self._read() as conn:
            floor = 0
            for part in list_parts:
                name = variant("job_search_window", *_table_flag(part.table), *part.flags)
                low, seen = conn.execute(self.Q[name], values).fetchone()
                if seen >= scan:
                    floor = max(floor, low)
            for part in list_parts:
                name = variant("job_search", *_table_flag(part.table), *part.flags)
                rows.extend(conn.execute(self.Q[name], {**values, "floor": floor}).fetchall())
        rows.sort(key=lambda r: r[0], reverse=True)
        found = [self._record(r) for r in _distinct(rows, limit + 1)]
        if len(found) > limit:
            return found[:limit], found[limit - 1].id
        return found, floor or None

    def job_count(
        self, *, task: str | None, scan: int, now: datetime | None, live: bool = True
    ) -> JobCounts:
        if isinstance(scan, bool) or not isinstance(scan, int) or scan < 1:
            raise ConfigurationError(f"scan must be a whole number >= 1, not {scan!r}")
        live_counts: dict[str, dict[str, int]] = {}
        finished: dict[str, dict[str, int]] = {}
        cut: set[str] = set()
        live_cut: set[tuple[str, str]] = set()
        with self._snapshot() as conn:
            if live:
                at = self._time(now)
                # Running jobs exactly (as many as workers hold); pending ones of each
                # queue, and blocked ones, among the first `scan` (docs/design.md:
                # counting jobs).
                for queue, claimed, started in conn.execute(
                    self.Q["job_count_running"], {"task": task}
                ):
                    counts = live_counts.setdefault(queue, dict.fromkeys(LIVE_GROUPS, 0))
                    counts["claimed"], counts["started"] = int(claimed or 0), int(started or 0)
                queues = [name for (name,) in conn.execute(self.Q["job_count_queues"])]
                for queue in queues:
                    values = {"task": task, "queue": queue, "scan": scan, "now": at}
                    row = conn.execute(self.Q["job_count_pending"], values).fetchone()
                    seen, scheduled, ready = (int(x or 0) for x in row)
                    counts = live_counts.setdefault(queue, dict.fromkeys(LIVE_GROUPS, 0))
                    counts["scheduled"], counts["ready"] = int(scheduled), int(ready)
                    if seen >= scan:
                        live_cut.update({(queue, "scheduled"), (queue, "ready")})
                seen = 0
                for queue, n, matched in conn.execute(
                    self.Q["job_count_blocked"], {"task": task, "scan": scan}
                ):
                    seen += n
                    counts = live_counts.setdefault(queue, dict.fromkeys(LIVE_GROUPS, 0))
                    counts["blocked"] = int(matched or 0)
                if seen >= scan:
                    cut.add("blocked")
                # A queue none of whose jobs counted (none of the task's) is left out,
                # unless it was cut: its task's jobs may lie further on.
                cut_queues = {queue for queue, _ in live_cut}
                live_counts = {
                    q: c for q, c in live_counts.items() if any(c.values()) or q in cut_queues
                }
            for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED,
                           JobStatus.LOST):  # fmt: skip
                values = {"task": task, "status": status.value, "scan": scan}
                seen = 0
                for queue, n, matched in conn.execute(self.Q["job_count_finished"], values):
                    seen += n
                    if matched:
                        finished.setdefault(queue, {})[status.value] = int(matched)
                if seen >= scan:
                    cut.add(status.value)
        return JobCounts(live_counts, finished, frozenset(cut), frozenset(live_cut))

    def job_list_plans(self, f: JobFilter, *, now: datetime | None) -> list[str]:
        values = self._list_params(f, MAX_ID, 50, now)
        with self._read() as conn:
            return [
                "\n".join(
                    str(row[-1]) for row in conn.execute(self.Q[part.query("ids", "plan")], values)
                )
                for part in parts(f)
            ]

    def _list_params(
        self, f: JobFilter, before: JobId, limit: int, now: datetime | None
    ) -> dict[str, Any]:
        return {**params(f), "before": before, "limit": limit, "now": self._time(now)}

    def _list(
        self,
        f: JobFilter,
        flags: tuple[str, ...],
        before: JobId,
        limit: int,
        now: datetime | None,
    ) -> list[Any]:
        """The rows of each part of the list (docs/design.md: listing jobs), read in one
        snapshot: a job that moves between the tables meanwhile is seen once at least."""
        values = self._list_params(f, before, limit, now)
        list_parts = parts(f)
        rows: list[Any] = []
        with self._snapshot() if len(list_parts) > 1 else self._read() as conn:
            for part in list_parts:
                rows.extend(conn.execute(self.Q[part.query(*flags)], values).fetchall())
        return rows

    def job_claim_batch(
        self,
        *,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        free: int,
        now: datetime | None,
        completed: Sequence[Outcome] = (),
        started: Sequence[Start] = (),
        ahead: float = 0.0,
    ) -> list[JobRecord]:
        if not 0 <= ahead <= MAX_CLAIM_AHEAD:
            raise ValueError(f"ahead must be 0 to {MAX_CLAIM_AHEAD} seconds, not {ahead!r}")
        if limit <= 0 or not queues:
            if completed or started:
                self.job_complete_batch(completed, now=now, started=started)
            return []
        params: dict[str, Any] = {
            "worker_id": worker_id,
            "token": secrets.randbits(62),
            "limit": limit,
            "free": free,
            "now": self._time(now),
            "ahead_us": round(ahead * 1_000_000),
        }
        if len(queues) == 1:
            params["queue"] = queues[0]
        else:
            params["queues"] = list(queues)
        records = [self._record(r) for r in self._claim(params, queues, completed, started)]
        for r in records:
            r.attempts += 1  # the attempt each will run as, counted when it starts
        # RETURNING has no order: put the batch back in claim order.
        records.sort(key=lambda r: (-r.priority, r.run_at, r.id))
        return records

    def job_complete_batch(
        self, outcomes: Sequence[Outcome], *, now: datetime | None, started: Sequence[Start] = ()
    ) -> int:
        if not outcomes and not started:
            return 0
        with self._write() as conn:
            return self._complete(conn, outcomes, self._time(now), started)

    def job_next_due(self, *, queues: Sequence[str]) -> datetime | None:
        with self._read() as conn:
            (value,) = conn.execute(
                self.Q["job_next_due"], {"queues": self._names(queues)}
            ).fetchone()
        return self._read_time(value)

    def job_prune(
        self,
        *,
        retention: Mapping[JobStatus, float],
        batch_size: int,
        now: datetime | None,
        lease: Lease | None = None,
    ) -> int:
        deleted = 0
        for status, age in retention.items():
            step = partial(self._prune_some, JobStatus(status), age, batch_size, now, lease)
            deleted += _in_batches(step, batch_size)
        return deleted

    @abstractmethod
    def _prune_some(
        self,
        status: JobStatus,
        age: float,
        batch_size: int,
        now: datetime | None,
        lease: Lease | None,
    ) -> int:
        """Delete up to ``batch_size`` finished jobs of ``status`` older than ``age``
        seconds, and their fire rows (docs/design.md: Schedules), in a transaction
        fenced by ``lease`` (``_fence``); how many went."""

    def job_stats(self, *, now: datetime | None, finished: bool = True) -> list[QueueStats]:
        with self._read() as conn:
            live = conn.execute(self.Q["job_stats_live"], {"now": self._time(now)}).fetchall()
            ended = conn.execute(self.Q["job_stats_finished"]).fetchall() if finished else []
        counts: dict[str, dict[JobStatus, int]] = {}
        ready: dict[str, int] = {}
        oldest: dict[str, datetime] = {}
        claimed: dict[str, int] = {}
        for queue, status, n, n_ready, first, n_claimed in live:
            counts.setdefault(queue, {})[JobStatus(status)] = n
            ready[queue] = ready.get(queue, 0) + (n_ready or 0)
            claimed[queue] = claimed.get(queue, 0) + (n_claimed or 0)
            first_at = self._read_time(first)
            if first_at is not None:
                oldest[queue] = min(first_at, oldest.get(queue, first_at))
        for queue, status, n in ended:
            counts.setdefault(queue, {})[JobStatus(status)] = n
        return [
            QueueStats(
                queue=q,
                counts=counts[q],
                ready=ready.get(q, 0),
                oldest_ready_at=oldest.get(q),
                claimed=claimed.get(q, 0),
            )
            for q in sorted(counts)
        ]

    # -- the leader (docs/design.md: Leader) ---------------------------------------

    def _lease(self, row: Sequence[Any]) -> Lease:
        worker_id, term, elected_at, expires_at, expired = row
        return Lease(
            worker_id=worker_id,
            term=int(term),
            elected_at=self._read_time(elected_at),
            expires_at=self._read_time(expires_at),
            expired=bool(expired),
        )

    def _fence(self, conn: Any, lease: Lease | None) -> None:
        """Fencing (docs/design.md: Leader): in a write transaction made as leader of
        ``lease``, before anything else; raises StaleTerm when that term is over."""
        if lease is None:
            return
        params = {"worker_id": lease.worker_id, "term": lease.term}
        if conn.execute(self.Q["leader_fence"], params).fetchone() is None:
            raise StaleTerm(lease.worker_id, lease.term)

    def leader_get(self, *, now: datetime | None) -> Lease:
        with self._read() as conn:
            row = conn.execute(self.Q["leader_get"], {"now": self._time(now)}).fetchone()
        if row is None:  # the migration inserts the one row; nobody deletes it
            raise StoreError("the leader's lease row is missing: run `tock migrate`")
        return self._lease(row)

    def leader_elect(
        self, *, worker_id: str, term: int, ttl: float, now: datetime | None, takeover: bool = False
    ) -> Lease | None:
        params = {
            "worker_id": worker_id,
            "term": term,
            "ttl_us": _us(ttl),
            "takeover": takeover,
            "now": self._time(now),
        }
        with self._write_one() as conn:
            row = conn.execute(self.Q["leader_elect"], params).fetchone()
        return None if row is None else self._lease(row)

    def leader_renew(self, lease: Lease, *, ttl: float, now: datetime | None) -> Lease | None:
        params = {
            "worker_id": lease.worker_id,
            "term": lease.term,
            "ttl_us": _us(ttl),
            "now": self._time(now),
        }
        with self._write_one() as conn:
            row = conn.execute(self.Q["leader_renew"], params).fetchone()
        return None if row is None else self._lease(row)

    def leader_resign(self, lease: Lease, *, now: datetime | None) -> bool:
        params = {"worker_id": lease.worker_id, "term": lease.term, "now": self._time(now)}
        with self._write_one() as conn:
            return bool(conn.execute(self.Q["leader_resign"], params).rowcount)

    def leader_depose(self, *, now: datetime | None) -> Lease | None:
        lease = self.leader_get(now=now)
        if not lease.held:
            return None
        params = {"worker_id": lease.worker_id, "term": lease.term, "now": self._time(now)}
        with self._write_one() as conn:  # a compare-and-set on what was read
            cleared = conn.execute(self.Q["leader_depose"], params).rowcount
        return lease if cleared else None

    # -- commands (docs/design.md: Commands) ----------------------------------------

    def job_stop(self, job_id: JobId, *, now: datetime | None) -> JobRecord:
        for _ in range(STOP_TRIES):
            with self._write_one() as conn:
                row = conn.execute(
                    self.Q["job_stop_request"], {"id": job_id, "now": self._time(now)}
                ).fetchone()
            if row is not None:
                self._hint(commands=True)
                return self.job_get(job_id)
            if self.job_cancel_many([job_id], now=now):  # pending or blocked: canceled
                return self.job_get(job_id)
            record = self.job_get(job_id)  # JobNotFound
            if record.status.finished:
                raise JobStateError(
                    job_id,
                    record.status.value,
                    f"cannot stop job {job_id}: it is {record.status} already; only "
                    "pending, blocked and running jobs can be stopped",
                )
            # Claimed or handed back between the two statements: ask again.
        raise StoreError(f"job {job_id} kept changing state: could not stop it, try again")

    # -- dependencies and workflows (docs/design.md: Dependencies) -------------------

    @abstractmethod
    def _forget_moved(self, conn: Any, ids: list[JobId]) -> None:
        """Jobs just copied to the finished table by a dependency's cancel leave the
        live table (a no-op where the query moved them whole)."""

    @abstractmethod
    def _drop_finished(self, conn: Any, ids: list[JobId]) -> None:
        """Jobs just copied back to the live table by a retry leave the finished one (a
        no-op where the query moved them whole)."""

    def job_dependencies(self, job_id: JobId) -> Dependencies:
        with self._snapshot() as conn:
            ids = json.dumps([job_id])
            on = conn.execute(self.Q["dep_of_job"], {"id": job_id, "ids": ids}).fetchall()
            by = conn.execute(self.Q["dep_on_job"], {"id": job_id, "ids": ids}).fetchall()
            wait = conn.execute(self.Q["dep_wait_of_job"], {"id": job_id}).fetchone()
        if not on and not by and wait is None:
            self.job_get(job_id)  # JobNotFound for an unknown id
            return Dependencies()
        return Dependencies(
            depends_on=tuple((d, _status(s)) for d, _, s in on),
            dependents=tuple((d, _status(s)) for d, s in by),
            waiting_on=max(0, wait[0]) if wait else 0,
            on_failure=wait[1] if wait else None,
            pass_results=wait[2] if wait else None,
            canceled_by=wait[3] if wait else None,
        )

    def workflow_prune(self, *, batch_size: int, lease: Lease | None = None) -> int:
        def some() -> int:
            with self._write() if lease is not None else self._write_one() as conn:
                self._fence(conn, lease)
                cur = self._dep_query(conn, "workflow_prune", {"batch_size": batch_size})
                return int(cur.rowcount)

        return _in_batches(some, batch_size)

    @abstractmethod
    def _dep_query(self, conn: Any, name: str, params: dict[str, Any]) -> Any:
        """Run a dependency query (PostgreSQL: unprepared, planned for the tables as
        they are)."""

    def workflow_get(self, workflow_id: int) -> WorkflowRecord:
        with self._read() as conn:
            row = conn.execute(self.Q["workflow_get"], {"id": workflow_id}).fetchone()
        if row is None:
            raise WorkflowNotFound(workflow_id)
        created_at = self._read_time(row[3])
        assert created_at is not None
        return WorkflowRecord(row[0], row[1], tuple(json.loads(row[2])), created_at)

    def queue_pause(self, name: str, *, now: datetime | None) -> QueueRecord:
        return self._queue_set(name, True, now)

    def queue_resume(self, name: str, *, now: datetime | None) -> QueueRecord:
        record = self._queue_set(name, False, now)
        self._hint(queues=[name])  # idle workers of that queue claim at once
        return record

    def _queue_set(self, name: str, paused: bool, now: datetime | None) -> QueueRecord:
        v.check_name("queue", name)
        with self._write_one() as conn:
            row = conn.execute(
                self.Q["queue_set_paused"],
                {"name": name, "paused": paused, "now": self._time(now)},
            ).fetchone()
        return self._queue(row)

    def _queue(self, row: Sequence[Any]) -> QueueRecord:
        return QueueRecord(name=row[0], paused=bool(row[1]), paused_at=self._read_time(row[2]))

    def queue_list(self) -> list[QueueRecord]:
        with self._read() as conn:
            return [self._queue(r) for r in conn.execute(self.Q["queue_list"]).fetchall()]

    def worker_stop_request(self, worker_id: str, *, now: datetime | None) -> None:
        with self._write_one() as conn:
            row = conn.execute(
                self.Q["worker_stop_request"], {"worker_id": worker_id, "now": self._time(now)}
            ).fetchone()
        if row is None:
            raise WorkerNotFound(worker_id)
        self._hint(commands=True)

    def worker_commands(self, worker_id: str) -> WorkerCommands:
        with self._read() as conn:
            rows = conn.execute(self.Q["worker_commands"], {"worker_id": worker_id}).fetchall()
        return WorkerCommands(
            stop=any(kind == 0 for kind, _ in rows),
            stop_jobs=frozenset(int(j) for kind, j in rows if kind == 1),
        )

    # -- workers -------------------------------------------------------------------

    def worker_unregister(self, worker_id: str, *, now: datetime | None) -> RescueReport:
        report = RescueReport(dead_workers=[worker_id])
        with self._write() as conn:
            queues = self._bury(conn, [worker_id], self._time(now), report)
        self._drop_token(worker_id)
        self._wake(queues)
        return report

    def worker_list(self) -> list[WorkerRecord]:
        with self._read() as conn:
            rows = conn.execute(self.Q["worker_list"]).fetchall()
        return [
            WorkerRecord(
                id=row[0],
                hostname=row[1],
                pid=row[2],
                queues=self._read_names(row[3]),
                concurrency=row[4],
                started_at=_known(self._read_time(row[5])),
                heartbeat_at=_known(self._read_time(row[6])),
                running=row[7],
                claimed=row[8],
            )
            for row in rows
        ]

    # -- schedules -----------------------------------------------------------------

    def schedule_upsert(self, schedule: ScheduleRecord, *, now: datetime | None) -> ScheduleRecord:
        with self._write() as conn:
            stamp = self._stamp(conn, now)
            self._upsert_withdrawing(conn, [schedule], stamp)
            row = conn.execute(self.Q["schedule_get"], {"name": schedule.name}).fetchone()
        return self._schedule(row)

    def schedule_upsert_many(
        self, schedules: Sequence[ScheduleRecord], *, now: datetime | None
    ) -> int:
        if not schedules:
            return 0
        with self._write() as conn:
            stamp = self._stamp(conn, now)
            return self._upsert_withdrawing(conn, schedules, stamp)

    # Fires made ahead (docs/design.md: "Fires made ahead"). The scheduler makes a fire's
    # job before its time; a pause, a disable, a removal or a change of the schedule then
    # withdraws the jobs of its fires still to come that no worker took yet, in the same
    # transaction, so none runs as if nothing had happened.

    #: what a fire's job is made of, or whether it may be made ahead: a change in any of
    #: them withdraws the jobs made ahead (a schedule given dependencies waits instead)
    _JOB_FIELDS = (
        "task",
        "trigger",
        "args",
        "kwargs",
        "queue",
        "priority",
        "overlap",
        "enabled",
        "depends_on",
    )

    def _upsert_withdrawing(
        self, conn: Any, schedules: Sequence[ScheduleRecord], stamp: Any
    ) -> int:
        """The upsert, withdrawing the fires made ahead of each schedule whose job the new
        values change; sync's unchanged rows keep theirs. The old values are read first,
        of the schedules that have a fire made ahead or may get one meanwhile (next fire
        within ``MAX_LEAD``; a fire changes none of the values compared), and the
        withdrawal comes after the upsert, which on PostgreSQL waits for a fire under
        way: a fire made ahead with the old values is always seen."""
        given = {s.name: s for s in schedules}
        rows = conn.execute(
            self.Q["schedule_ahead"],
            {
                "names": self._names(list(given)),
                "now": stamp,
                "lead": MAX_LEAD,
                "lead_us": _us(MAX_LEAD.total_seconds()),
            },
        ).fetchall()
        changed = []
        for row in rows:
            old = self._schedule(row)
            new = given[old.name]
            if any(getattr(old, f) != getattr(new, f) for f in self._JOB_FIELDS):
                changed.append((old.name, old.trigger == new.trigger))
        written = self._upsert(conn, schedules, stamp)
        for name, same_trigger in changed:
            # A new trigger has its own next fire (the upsert's): keep it.
            self._withdraw(conn, name, stamp, rewind=same_trigger)
        return written

    def _withdraw(self, conn: Any, name: str, stamp: Any, *, rewind: bool = True) -> int:
        """Delete the jobs of ``name``'s fires made ahead (fire time after now) that are
        still pending, with their fire rows, and move the next fire back to the first of
        them: as if they had never been made. A job a worker claimed already stays (it
        is due: its fire time came). Runs in the caller's transaction, after the
        schedule's row is locked (PostgreSQL: a fire under way commits first, and is then
        seen). ``rewind`` false keeps ``next_fire_at`` (a new trigger's). Returns how many
        jobs went."""
        params = {"name": name, "now": stamp}
        gone = conn.execute(self.Q["fire_withdraw_jobs"], params).fetchall()
        if not gone:
            return 0
        times = [self._read_time(at) for (at,) in conn.execute(self.Q["fire_withdraw"], params)]
        first = min(t for t in times if t is not None)
        conn.execute(
            self.Q["schedule_rewind"],
            {"name": name, "next_fire_at": self._time(first) if rewind else None},
        )
        log.info("schedule %s: %d job(s) made ahead withdrawn", name, len(gone))
        return len(gone)

    def schedule_get(self, name: str) -> ScheduleRecord:
        with self._read() as conn:
            row = conn.execute(self.Q["schedule_get"], {"name": name}).fetchone()
        if row is None:
            raise ScheduleNotFound(name)
        return self._schedule(row)

    def schedule_list(self, *, limit: int | None = None) -> list[ScheduleRecord]:
        params = {"limit": None if limit is None else int(limit)}
        with self._read() as conn:
            rows = conn.execute(self.Q["schedule_list"], params).fetchall()
        return [self._schedule(r) for r in rows]

    def schedule_delete(self, name: str, *, now: datetime | None) -> bool:
        with self._write() as conn:
            if conn.execute(self.Q["schedule_lock"], {"name": name}).fetchone() is None:
                return False
            self._withdraw(conn, name, self._stamp(conn, now))
            # A fire waiting on dependencies goes with its schedule: recorded as dropped.
            conn.execute(self.Q["fire_wait_drop"], {"schedule": name})
            return bool(conn.execute(self.Q["schedule_delete"], {"name": name}).rowcount > 0)

    def schedule_set_paused(
        self, name: str, paused: bool, *, now: datetime | None
    ) -> ScheduleRecord:
        return self._schedule_flag("paused", name, paused, now)

    def schedule_set_enabled(
        self, name: str, enabled: bool, *, now: datetime | None
    ) -> ScheduleRecord:
        return self._schedule_flag("enabled", name, enabled, now)

    def _schedule_flag(
        self, flag: str, name: str, value: bool, now: datetime | None
    ) -> ScheduleRecord:
        """``schedule_set_paused`` / ``schedule_set_enabled``: one flag, the row back. A
        pause or a disable withdraws the fires made ahead, in the same transaction (the
        flag first: it locks the row)."""
        stopping = value if flag == "paused" else not value
        with self._write() as conn:
            stamp = self._stamp(conn, now)
            rows = conn.execute(
                self.Q[f"schedule_set_{flag}"],
                {"name": name, flag: bool(value), "now": stamp},
            ).fetchall()
            if rows and stopping and self._withdraw(conn, name, stamp):
                rows = conn.execute(self.Q["schedule_get"], {"name": name}).fetchall()
        if not rows:
            raise ScheduleNotFound(name)
        return self._schedule(rows[0])

    def schedule_disable_code(self, keep: Sequence[str], *, now: datetime | None) -> list[str]:
        with self._write() as conn:
            stamp = self._stamp(conn, now)
            rows = conn.execute(
                self.Q["schedule_disable_code"],
                {"keep": self._names(keep), "now": stamp},
            ).fetchall()
            for (name,) in rows:
                self._withdraw(conn, name, stamp)
        return sorted(name for (name,) in rows)

    def schedule_due(
        self, *, now: datetime | None, limit: int, tasks: Sequence[str] | None = None
    ) -> list[ScheduleRecord]:
        params = {"now": self._time(now), "limit": int(limit), "tasks": self._names(tasks)}
        with self._read() as conn:
            rows = conn.execute(self.Q["schedule_due"], params).fetchall()
        return [self._schedule(r) for r in rows]

    def schedule_next_due(
        self, *, tasks: Sequence[str] | None = None, after: datetime | None = None
    ) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(
                self.Q["schedule_next_due"],
                {"tasks": self._names(tasks), "after": self._time(after)},
            ).fetchone()
        return None if row is None else self._read_time(row[0])

    def schedule_fire(
        self,
        name: str,
        *,
        expected_next: datetime | None,
        new_next: datetime | None,
        fires: Sequence[Fire],
        now: datetime | None,
        lease: Lease | None = None,
        expected_updated: datetime | None = None,
    ) -> list[JobId] | None:
        created: list[JobId] = []
        last: tuple[datetime, JobId] | None = None
        with self._write() as conn:
            self._fence(conn, lease)
            stamp = self._stamp(conn, now)
            moved = conn.execute(
                self.Q["schedule_advance"],
                {
                    "name": name,
                    "expected_next": self._time(expected_next),
                    "new_next": self._time(new_next),
                    "expected_updated": self._time(expected_updated),
                    "now": stamp,
                },
            ).rowcount
            if not moved:
                return None  # another scheduler advanced it first
            for fire in fires:
                at = self._time(fire.at)
                params = {
                    "schedule": name,
                    "fire_at": at,
                    "outcome": fire.outcome,
                    "last_at": at,
                    "count": 1,
                    "now": stamp,
                }
                if fire.outcome == WAITING:
                    # At most one waiting fire a schedule (docs/design.md: "Schedules
                    # that wait on schedules"): coalesce and all merge a later fire into
                    # it; skip drops it ("dependencies") and the later one waits instead.
                    if conn.execute(self.Q["fire_wait_merge"], params).fetchall():
                        continue
                    conn.execute(self.Q["fire_wait_drop"], params)
                elif fire.job is None:
                    params["last_at"] = self._time(fire.last) if fire.last is not None else at
                    params["count"] = fire.count
                    if conn.execute(self.Q["fire_extend"], params).fetchall():
                        continue  # joined the run of drops before it
                if not conn.execute(self.Q["fire_insert"], params).fetchall() or fire.job is None:
                    continue  # already recorded (creates nothing), or a drop
                # The ordinary insert path, inside this transaction.
                (job_id,) = self.job_enqueue_many([fire.job], now=now, connection=conn)
                conn.execute(
                    self.Q["fire_set_job"],
                    {"schedule": name, "manual": False, "fire_at": at, "job_id": job_id},
                )
                created.append(job_id)
                if last is None or fire.at >= last[0]:
                    last = (fire.at, job_id)
            if last is not None:
                conn.execute(
                    self.Q["schedule_set_last"],
                    {"name": name, "last_fire_at": self._time(last[0]), "last_job_id": last[1]},
                )
        return created

    def schedule_trigger(self, name: str, job: NewJob, *, now: datetime | None) -> JobId:
        with self._write() as conn:
            if conn.execute(self.Q["schedule_lock"], {"name": name}).fetchone() is None:
                raise ScheduleNotFound(name)
            # The transaction's time, also the fire's unless a trigger took it already.
            stamp = at = self._clock(conn, now)
            # No-overlap is decided at the fire time: a fire made ahead is withdrawn, and
            # its pass then sees this job (docs/design.md: "Fires made ahead").
            if not self._schedule(
                conn.execute(self.Q["schedule_get"], {"name": name}).fetchone()
            ).overlap:
                self._withdraw(conn, name, stamp)
            for _ in range(MANUAL_TRIES):
                params = {"schedule": name, "fire_at": at, "now": stamp}
                if conn.execute(self.Q["fire_insert_manual"], params).fetchall():
                    break
                at = self._after(at)  # two triggers in one instant: each keeps its own key
            else:
                raise StoreError(f"schedule {name!r}: no free time for a manual trigger")
            (job_id,) = self.job_enqueue_many([job], now=now, connection=conn)
            conn.execute(
                self.Q["fire_set_job"],
                {"schedule": name, "manual": True, "fire_at": at, "job_id": job_id},
            )
            conn.execute(
                self.Q["schedule_set_last"],
                {"name": name, "last_fire_at": at, "last_job_id": job_id},
            )
        return job_id

    def schedule_graph(self) -> dict[str, tuple[str, ...]]:
        with self._read() as conn:
            rows = conn.execute(self.Q["schedule_graph"], {}).fetchall()
        return {name: tuple(json_loads(deps)) for name, deps in rows}

    def schedule_deps_unmet(self, name: str) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(self.Q["schedule_deps_unmet"], {"name": name}).fetchall()
        return [n for (n,) in rows]

    # -- fires ---------------------------------------------------------------------

    def fire_waiting(self, *, limit: int, tasks: Sequence[str] | None = None) -> list[FireRecord]:
        params = {"limit": int(limit), "tasks": self._names(tasks)}
        with self._read() as conn:
            rows = conn.execute(self.Q["fire_waiting"], params).fetchall()
        return [fire_record(r, self._read_time) for r in rows]

    def fire_release(
        self,
        name: str,
        *,
        at: datetime,
        job: NewJob,
        drop_before: datetime | None,
        now: datetime | None,
        lease: Lease | None = None,
    ) -> FireRelease:
        key = {"schedule": name, "fire_at": self._time(at)}
        with self._write() as conn:
            self._fence(conn, lease)
            if conn.execute(self.Q["schedule_lock_active"], {"name": name}).fetchone() is None:
                return FireRelease(gone=True)  # gone, paused or disabled meanwhile
            row = conn.execute(self.Q["fire_waiting_get"], key).fetchone()
            if row is None:
                return FireRelease(gone=True)  # released, dropped or replaced meanwhile
            if drop_before is not None and at <= drop_before:
                conn.execute(self.Q["fire_wait_drop"], key)
                return FireRelease(dropped=True)
            unmet = [n for (n,) in conn.execute(self.Q["schedule_deps_unmet"], {"name": name})]
            if unmet:
                conn.execute(self.Q["fire_wait_set"], {**key, "waiting_for": _json(unmet)})
                return FireRelease(waiting_for=tuple(unmet))
            # The ordinary insert path, inside this transaction, as a fire's.
            (job_id,) = self.job_enqueue_many([job], now=now, connection=conn)
            conn.execute(self.Q["fire_released"], {**key, "job_id": job_id})
            conn.execute(
                self.Q["schedule_set_last"],
                {"name": name, "last_fire_at": row[1], "last_job_id": job_id},
            )
        return FireRelease(job_id=job_id)

    def fire_list(
        self, name: str, *, limit: int = 20, before: tuple[datetime, bool] | None = None
    ) -> list[FireRecord]:
        at, manual = (None, False) if before is None else (self._time(before[0]), before[1])
        with self._read() as conn:
            rows = conn.execute(
                self.Q["fire_list"],
                {"name": name, "limit": int(limit), "before_at": at, "before_manual": manual},
            ).fetchall()
        return [fire_record(r, self._read_time) for r in rows]

    def fire_prune(
        self,
        *,
        older_than: float,
        batch_size: int,
        now: datetime | None,
        lease: Lease | None = None,
    ) -> int:
        params = {"age_us": _us(older_than), "batch_size": batch_size, "now": self._time(now)}

        def some() -> int:
            with self._write() if lease is not None else self._write_one() as conn:
                self._fence(conn, lease)
                return int(conn.execute(self.Q["fire_prune"], params).rowcount)

        return _in_batches(some, batch_size)


def _json(names: Sequence[str]) -> str:
    return json.dumps(list(names))


def _in_batches(step: Callable[[], int], batch_size: int) -> int:
    """Run ``step`` (one batch's delete, its count) until a batch comes back short."""
    total = 0
    while True:
        n = step()
        total += n
        if n < batch_size:
            return total


def _table_flag(table: str) -> tuple[str, ...]:
    return ("finished",) if table == FINISHED_TABLE else ()


def _distinct(rows: Sequence[Sequence[Any]], limit: int) -> list[Sequence[Any]]:
    """Rows sorted newest first, each id once (views overlap), at most ``limit``."""
    seen: set[int] = set()
    out: list[Sequence[Any]] = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
            if len(out) == limit:
                break
    return out


def _known(when: datetime | None) -> datetime:
    assert when is not None
    return when


# -- batches -------------------------------------------------------------------

#: every option of a job but its arguments: jobs alike in these share one insert run
job_options = operator.attrgetter(
    "task",
    "queue",
    "priority",
    "retries",
    "retry_backoff",
    "retry_on",
    "timeout",
    "at_most_once",
    "max_rescues",
    "unique_key",
    "run_at",
    "run_after",
)


def option_runs(jobs: Sequence[NewJob], positions: Sequence[int]) -> list[list[int]]:
    """``positions`` in runs whose jobs share every option but their arguments."""
    return [list(run) for _, run in groupby(positions, key=lambda i: job_options(jobs[i]))]


def first_of_each_key(
    jobs: Sequence[NewJob], positions: Sequence[int]
) -> tuple[list[int], dict[str, int]]:
    """The positions that get a row (a unique key twice in one batch: its first job,
    docs/design.md: unique keys), and each key's position."""
    kept: list[int] = []
    first_of: dict[str, int] = {}
    for i in positions:
        key = jobs[i].unique_key
        if key is not None:
            if key in first_of:
                continue
            first_of[key] = i
        kept.append(i)
    return kept, first_of


def _status(value: str | None) -> JobStatus | None:
    return None if value is None else JobStatus(value)
