"""The embedded SQLite store: zero set-up, one machine, any number of processes.

How it coordinates (docs/design.md: Semantics):
- WAL, ``synchronous=FULL`` (a committed job survives power loss), a busy timeout, and
  ``BEGIN IMMEDIATE`` for every write: writers queue on SQLite's lock instead of
  failing halfway, so claims, rescues and prunes are race-free between processes.
- One connection per thread, opened lazily and never carried across a fork.
- Times are INTEGER microseconds since the epoch, UTC; ``now`` from the caller (tests)
  or the database's clock when ``now`` is NULL.
- A worker's liveness token is an ``flock`` on ``<database>-workers/<worker>.lock``:
  the kernel releases it when the process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tock.errors import (
    ConfigurationError,
    NoDatabase,
    SchemaError,
    StoreError,
)
from tock.jobs import JobId, JobStatus, NewJob, Outcome, OutcomeKind, Start
from tock.store import (
    Lease,
    RescueReport,
    ScheduleRecord,
    WorkerInfo,
    redact_url,
)
from tock.store import _deps as deps
from tock.store._base import SQLStore, first_of_each_key, option_runs
from tock.store._rows import (
    COLUMNS,
    FIRE_COLUMNS,
    SCHEDULE_COLUMNS,
    WORKER_DIED,
)
from tock.store._rows import us as _us
from tock.store._sql import load_migrations, load_queries
from tock.store.sqlite.watch import SQLiteWatch

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# SQLite's clock reads whole milliseconds; julianday() holds them in a double, whose error
# (tens of microseconds at today's dates) truncation would turn into a reading just short
# of the millisecond: rounded to it, a job due at a whole millisecond is due at once when
# the clock reads it (docs/design.md: "Fires made ahead").
_CLOCK = "(CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000)"
BUSY_TIMEOUT_MS = 60_000
Q = load_queries(
    "tock.store.sqlite",
    {
        "now": f"coalesce(:now, {_CLOCK})",
        "clock": _CLOCK,
        "cols": COLUMNS,
        "scols": f"{SCHEDULE_COLUMNS}, {{query:schedule_last_status}}",
        "fcols": FIRE_COLUMNS,
    },
)
MIGRATIONS = load_migrations("tock.store.sqlite")
LATEST = MIGRATIONS[-1][0]
LEADER_LOCK_POLL = 0.005  # a follower tries the leader's lock this often (a system call)


def to_us(when: datetime | None) -> int | None:
    if when is None:
        return None
    if when.tzinfo is None:
        raise ConfigurationError(f"{when!r} is a naive datetime: give it a time zone (e.g. UTC)")
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int | None) -> datetime | None:
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value)


def parse_sqlite_url(url: str) -> Path:
    """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` to a path."""
    prefix = "sqlite:///"
    if not url.lower().startswith(prefix):
        raise ConfigurationError(
            f"invalid SQLite URL {redact_url(url)!r}: use sqlite:///relative.db "
            "or sqlite:////absolute/path.db (three slashes, then the path)"
        )
    raw = url[len(prefix) :].split("?", 1)[0]
    if not raw or raw == ":memory:" or "mode=memory" in url:
        raise ConfigurationError(
            f"{url!r}: an in-memory SQLite database cannot be shared with worker processes; "
            "give a file path such as sqlite:///tock.db"
        )
    if raw.endswith("/"):
        raise ConfigurationError(f"{url!r} names a directory, not a database file")
    return Path(raw).absolute()


# Connections inherited through a fork: never used or closed in the child (see _conn).
_FORKED_AWAY: list[sqlite3.Connection] = []


def _close_all(conns: list[sqlite3.Connection], pid: int) -> None:
    """Close a store's connections, in the process that opened them (in a forked child
    they are set aside instead, see _conn); the list is emptied in place."""
    if os.getpid() != pid:
        _FORKED_AWAY.extend(conns)
    else:
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
    conns.clear()


class SQLiteStore(SQLStore):
    supports_listen_notify = False
    token_sessions = False  # a lock on a local file: free only once its process is gone
    clock_step = 1e-3  # the database's clock reads to the millisecond
    claim_lanes = 1  # one writer at a time: a second claim would only wait
    Q = Q
    MIGRATIONS = MIGRATIONS
    LATEST = LATEST

    def __init__(self, url: str) -> None:
        self.path = parse_sqlite_url(url)
        self.url = redact_url(url)
        self._local = threading.local()
        self._pid = os.getpid()
        self._checked = False
        self._check_lock = threading.Lock()
        self._all_conns: list[sqlite3.Connection] = []
        # Connections opened after close() (a Job handle kept past its app's close reads
        # again) are closed when the store object goes, not left to the garbage
        # collector (a ResourceWarning on Python 3.13).
        weakref.finalize(self, _close_all, self._all_conns, self._pid)
        self._tokens: dict[str, int] = {}  # worker id -> fd of its held liveness lock
        # term -> fds of the leader's lock this process holds (docs/design.md: Leader)
        self._leader_locks: dict[int, list[int]] = {}
        self._leader_locks_lock = threading.Lock()
        self._commits = 0  # write transactions of this store object, for its watches
        self._check_path()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"

    # -- the dialect's primitives (tock.store._base) --------------------------------

    _time = staticmethod(to_us)
    _read_time = staticmethod(from_us)

    @staticmethod
    def _names(names: Sequence[str] | None) -> str | None:
        """A list of names as the queries take it: a JSON array, or NULL for "every one"."""
        return None if names is None else json.dumps(list(names))

    @staticmethod
    def _read_names(value: str) -> tuple[str, ...]:
        return tuple(json.loads(value))

    def _read(self) -> contextlib.nullcontext[sqlite3.Connection]:
        return contextlib.nullcontext(self._conn())

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: in WAL mode its reads see one snapshot."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _write_one(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._write()  # BEGIN IMMEDIATE even for one statement: writers queue

    def _stamp(self, conn: sqlite3.Connection, now: datetime | None) -> int:
        """The caller's time, or the database's clock read once (for a whole batch)."""
        now_us = to_us(now)
        if now_us is None:
            (now_us,) = conn.execute(Q["db_now"], {"now": None}).fetchone()
        return now_us

    _clock = _stamp

    @staticmethod
    def _after(at: int) -> int:
        return at + 1

    @property
    def _where(self) -> str:
        return str(self.path)

    # -- connections -------------------------------------------------------------

    def _check_path(self) -> None:
        directory = self.path.parent
        if not directory.is_dir():
            raise StoreError(
                f"cannot open the SQLite database {self.path}: directory {directory} does not exist"
            )
        if self.path.exists():
            if self.path.is_dir():
                raise StoreError(f"cannot open {self.path}: it is a directory, not a database file")
            if not os.access(self.path, os.R_OK | os.W_OK):
                raise StoreError(
                    f"the SQLite database {self.path} is read-only for this user: "
                    "Tock needs to write to it"
                )
        if not os.access(directory, os.W_OK | os.X_OK):
            raise StoreError(
                f"directory {directory} is read-only for this user: SQLite needs to create "
                f"its journal files beside {self.path.name}"
            )

    def _connect(self, *, create: bool = True) -> sqlite3.Connection:
        if not create and not self.path.exists():
            # Reads never create the embedded database (a status pointed at the wrong
            # path would otherwise leave an empty one there and report nothing wrong).
            raise NoDatabase(
                f"no Tock database at {self.path}: `tock migrate` or `tock worker` "
                "creates it, and so does the app's first enqueue"
            )
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                # SQLite's busy timeout: a writer waits this long for the lock. Read
                # here, at each connection, so a test may shorten it.
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the SQLite database {self.path}: {exc}") from exc
        try:
            mode = _switch_to_wal(conn)
            if mode.lower() != "wal":
                raise StoreError(f"cannot switch {self.path} to WAL mode (it says {mode!r})")
            conn.execute(Q["synchronous_full"])
        except BaseException as exc:
            conn.close()  # not left for the garbage collector (a ResourceWarning on 3.13)
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"cannot open the SQLite database {self.path}: {exc}") from exc
            raise
        return conn

    def _conn(self, *, check: bool = True, create: bool = False) -> sqlite3.Connection:
        """This thread's connection. Only writers (``create``) may create the file."""
        if os.getpid() != self._pid:
            # docs/design.md: a connection is never carried across a fork. The parent's connections
            # are neither used nor closed here (closing would run SQLite's last-connection
            # clean-up in the wrong process); they are kept referenced so that the garbage
            # collector does not close them either.
            _FORKED_AWAY.extend(self._all_conns)
            self._local = threading.local()
            self._pid = os.getpid()
            self._all_conns.clear()  # the same list: the finalizer closes what comes next
            self._tokens = {}
            self._leader_locks = {}  # the parent's: the child holds none of them
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(create=create)
            self._local.conn = conn
            self._all_conns.append(conn)
        if check and not self._checked:
            self._check_schema(conn)
        return conn

    def close(self) -> None:
        _close_all(self._all_conns, self._pid)
        self._local = threading.local()
        for fd in self._tokens.values():
            os.close(fd)
        self._tokens = {}
        with self._leader_locks_lock:
            held, self._leader_locks = self._leader_locks, {}
        for fds in held.values():
            for fd in fds:
                os.close(fd)

    @contextlib.contextmanager
    def _write(self, connection: object | None = None) -> Iterator[sqlite3.Connection]:
        """A write transaction; with ``connection``, the caller's (docs/design.md: caller
        connections): joined through a savepoint when one is open, else opened here and
        committed here in autocommit mode, or left open for the caller to commit."""
        if connection is None:
            conn = self._conn(create=True)
            ours = True
        else:
            conn = self._caller_connection(connection)
            ours = False
        with self._joined(conn, ours=ours):
            yield conn

    @contextlib.contextmanager
    def _joined(self, conn: sqlite3.Connection, *, ours: bool = False) -> Iterator[None]:
        """A write transaction on ``conn``: ours, or the caller's joined."""
        if not ours:
            ours = not conn.in_transaction and _autocommits(conn)
            if not ours and not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")  # the caller's to commit, as its own work
        # Ours: a transaction of its own. The caller's: a batch that fails leaves
        # nothing of itself in it.
        begin, undo, end = (
            ("BEGIN IMMEDIATE", ("ROLLBACK",), "COMMIT")
            if ours
            else (
                "SAVEPOINT tock_write",
                ("ROLLBACK TO tock_write", "RELEASE tock_write"),
                "RELEASE tock_write",
            )
        )
        conn.execute(begin)
        try:
            yield
        except BaseException:
            for statement in undo:
                conn.execute(statement)
            raise
        if ours:
            self._commits += 1  # before it is published: the watch sees it as ours
        conn.execute(end)

    def _caller_connection(
        self, connection: object, *, check_schema: bool = True
    ) -> sqlite3.Connection:
        if not isinstance(connection, sqlite3.Connection):
            raise ConfigurationError(
                f"connection= must be a sqlite3.Connection for this store, "
                f"not {type(connection).__name__}"
            )
        try:
            row = connection.execute(Q["database_list"]).fetchone()
        except sqlite3.Error as exc:
            raise ConfigurationError(f"connection= cannot be used: {exc}") from exc
        if not row or not row[2] or Path(row[2]).resolve() != self.path.resolve():
            raise ConfigurationError(
                f"connection= is open on {row[2] if row else '?'!r}, "
                f"not on this store's database {self.path}"
            )
        # Checked on the caller's connection: migrating from another connection could
        # wait forever on the write lock the caller's transaction may hold.
        if check_schema and not self._checked:
            self._check_schema(connection, may_migrate=False)
        return connection

    # -- schema ------------------------------------------------------------------

    def _check_schema(self, conn: sqlite3.Connection, *, may_migrate: bool = True) -> None:
        with self._check_lock:
            if self._checked:
                return
            versions = self._versions(conn)
            if versions is None:
                empty = not conn.execute(Q["database_empty"]).fetchone()
                if not empty:
                    raise SchemaError(
                        f"{self.path} holds other tables but no Tock schema: run `tock migrate`"
                    )
                if not may_migrate:
                    raise SchemaError(
                        f"{self.path} has no Tock schema yet: run `tock migrate` "
                        "(or app.migrate()) before enqueueing through your own connection"
                    )
                # docs/design.md: only an empty embedded SQLite store migrates itself.
                self._migrate(conn)
            else:
                self._verify(versions)
            self._checked = True

    def _migrate(self, conn: sqlite3.Connection, upto: int | None = None) -> list[str]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(Q["migration_setup"])
            done = {v for (v,) in conn.execute(Q["migration_versions"])}
            applied = self._apply_migrations(conn, done, upto)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return applied

    def _run_migration(self, conn: sqlite3.Connection, sql: str) -> None:
        for statement in _statements(sql):
            conn.execute(statement)

    def migrate(self, *, connection: object | None = None, upto: int | None = None) -> list[str]:
        if connection is None:
            applied = self._migrate(self._conn(check=False, create=True), upto)
        else:
            # The caller's transaction (Django's migrations run in one): joined through
            # a savepoint, so the schema commits or rolls back with the caller's work.
            conn = self._caller_connection(connection, check_schema=False)
            with self._joined(conn):
                conn.execute(Q["migration_setup"])
                done = {v for (v,) in conn.execute(Q["migration_versions"])}
                applied = self._apply_migrations(conn, done, upto)
        if connection is None:  # the caller's transaction may yet roll back
            self._checked = upto is None or upto >= self.LATEST
        return applied

    def _stored_versions(self) -> list[int] | None:
        return self._versions(self._conn(check=False))

    def db_now(self, *, now: datetime | None) -> datetime:
        if getattr(self._local, "conn", None) is None and not self.path.exists():
            # SQLite's clock is this host's: asking it creates no database (a write may
            # ask for the time before it creates the file; a read then finds none).
            with contextlib.closing(sqlite3.connect(":memory:")) as clock:
                (value,) = clock.execute(Q["db_now"], {"now": to_us(now)}).fetchone()
        else:
            (value,) = self._conn().execute(Q["db_now"], {"now": to_us(now)}).fetchone()
        result = from_us(value)
        assert result is not None
        return result

    # -- jobs --------------------------------------------------------------------

    def job_enqueue_many(
        self, jobs: Sequence[NewJob], *, now: datetime | None, connection: object | None = None
    ) -> list[JobId]:
        if not jobs:
            return []
        linked = deps.wanted(jobs)
        if linked:
            deps.check(jobs)
        with self._write(connection) as conn:
            return self._enqueue(conn, jobs, now, linked)

    def _enqueue(
        self, conn: sqlite3.Connection, jobs: Sequence[NewJob], now: datetime | None, linked: bool
    ) -> list[JobId]:
        """Insert ``jobs`` (and their dependencies) in the caller's write transaction."""
        ids: list[JobId | None] = [None] * len(jobs)
        now_us = self._stamp(conn, now)
        keyed = [i for i, job in enumerate(jobs) if job.unique_key is not None]
        if keyed:
            # docs/design.md: a key held by a live job creates nothing and returns that job.
            held: dict[str, JobId] = dict(
                conn.execute(
                    Q["job_by_unique_key"],
                    {"keys": json.dumps([jobs[i].unique_key for i in keyed])},
                ).fetchall()
            )
            for i in keyed:
                key = jobs[i].unique_key
                assert key is not None
                if key in held:
                    ids[i] = held[key]
        fresh = [i for i in range(len(jobs)) if ids[i] is None]
        # The positions in `jobs` that get a new row, in order.
        inserted, seen_keys = first_of_each_key(jobs, fresh)
        for group in option_runs(jobs, inserted):
            first = jobs[group[0]]
            last = conn.execute(
                Q["job_insert_many"],
                {
                    "task": first.task,
                    "queue": first.queue,
                    "priority": first.priority,
                    "run_at": to_us(first.run_at),
                    "run_after_us": _us(first.run_after),
                    "now": now_us,
                    "retries": first.retries,
                    "retry_backoff": first.retry_backoff,
                    "retry_on": json.dumps(list(first.retry_on)),
                    "timeout": first.timeout,
                    "at_most_once": int(first.at_most_once),
                    "max_rescues": first.max_rescues,
                    "unique_key": first.unique_key,
                    # args and kwargs are JSON texts checked at the edge.
                    "rows": "["
                    + ",".join(f"[{jobs[i].args},{jobs[i].kwargs}]" for i in group)
                    + "]",
                },
            ).lastrowid
            assert last is not None
            # AUTOINCREMENT gives each row max(ever used) + 1, and the write lock is
            # held for the whole statement: a statement's ids are consecutive and in
            # input order, whatever another writer did between two statements.
            for offset, i in enumerate(group, start=last - len(group) + 1):
                ids[i] = offset
        for i in fresh:
            key = jobs[i].unique_key
            if ids[i] is None and key is not None:
                ids[i] = ids[seen_keys[key]]
        done = [i for i in ids if i is not None]
        if linked:
            deps.link(self, conn, jobs, done, now_us)
        return done

    def workflow_enqueue(
        self,
        jobs: Sequence[NewJob],
        spec: str,
        *,
        now: datetime | None,
        connection: object | None = None,
    ) -> tuple[int, list[JobId]]:
        if not jobs:
            raise ConfigurationError("a workflow needs at least one job")
        deps.check(jobs)
        with self._write(connection) as conn:
            ids = self._enqueue(conn, jobs, now, True)
            row = conn.execute(
                Q["workflow_insert"],
                {"spec": spec, "job_ids": json.dumps(ids), "now": self._stamp(conn, now)},
            ).fetchone()
        return row[0], ids

    def job_retry_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]:
        # The jobs a retried dependency canceled come back with it.
        return self._move("job_retry_many", "job_delete_finished_many", ids, now, deps.restore)

    def job_cancel_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]:
        # Those waiting on a canceled job follow their policy.
        return self._move("job_cancel_many", "job_delete_many", ids, now, _settle_canceled)

    def job_delete_many(self, ids: Sequence[JobId]) -> list[JobId]:
        # Their fire rows go with them, as when pruned, and their dependency rows.
        return self._move("job_delete_finished_jobs", "job_prune_fires", ids, None, _forget_deleted)

    def job_run_now_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]:
        return self._move("job_run_now_many", None, ids, now)

    def _move(
        self,
        change: str,
        then: str | None,
        ids: Sequence[JobId],
        now: datetime | None,
        after: Callable[[SQLiteStore, sqlite3.Connection, list[JobId], int], object] | None = None,
    ) -> list[JobId]:
        """One transaction: ``change`` (a query that returns the ids it changed) over
        ``ids``, then ``then`` over the ids changed (the other half of a move between
        the tables), then ``after`` (what the jobs' dependencies make of it)."""
        with self._write() as conn:
            now_us = self._stamp(conn, now)
            values = {"ids": json.dumps(list(ids)), "now": now_us}
            changed = [i for (i,) in conn.execute(Q[change], values).fetchall()]
            if changed and then is not None:
                conn.execute(Q[then], {"ids": json.dumps(changed)})
            if changed and after is not None:
                after(self, conn, changed, now_us)
        return changed

    def _dep_query(
        self, conn: sqlite3.Connection, name: str, params: dict[str, Any]
    ) -> sqlite3.Cursor:
        return conn.execute(Q[name], params)

    def _forget_moved(self, conn: sqlite3.Connection, ids: list[JobId]) -> None:
        conn.execute(Q["job_delete_many"], {"ids": json.dumps(ids)})

    def _drop_finished(self, conn: sqlite3.Connection, ids: list[JobId]) -> None:
        conn.execute(Q["job_delete_finished_many"], {"ids": json.dumps(ids)})

    def _claim(
        self,
        params: dict[str, Any],
        queues: Sequence[str],
        completed: Sequence[Outcome],
        started: Sequence[Start],
    ) -> list[Any]:
        conn = self._conn()
        if not completed and not started:
            # A read first: idle workers do not queue on the write lock for nothing.
            due = conn.execute(
                Q["job_any_due"],
                {
                    "queues": json.dumps(list(queues)),
                    "now": params["now"],
                    "ahead_us": params["ahead_us"],
                },
            ).fetchone()
            if due is None:
                return []
        with self._write() as conn:
            if completed or started:
                self._complete(conn, completed, params["now"], started)
            if len(queues) == 1:
                return conn.execute(Q["job_claim_batch"], params).fetchall()
            # Several queues: each queue's first jobs through the claim index, merged
            # here, under the write lock (no round trips: the database is in-process).
            limit, candidates = params["limit"], []
            for queue in queues:
                values = {
                    "queue": queue,
                    "limit": limit,
                    "now": params["now"],
                    "ahead_us": params["ahead_us"],
                }
                candidates += conn.execute(Q["job_claim_candidates"], values).fetchall()
            candidates.sort(key=lambda r: (-r[1], r[2], r[0]))
            ids = json.dumps([r[0] for r in candidates[:limit]])
            return conn.execute(Q["job_claim_batch_queues"], {**params, "ids": ids}).fetchall()

    def _complete(
        self,
        conn: sqlite3.Connection,
        outcomes: Sequence[Outcome],
        now_us: int | None,
        started: Sequence[Start] = (),
    ) -> int:
        finish: list[str] = []
        retry: list[dict[str, object]] = []
        release: list[dict[str, object]] = []
        # Starts of jobs that end in this batch go with their outcome (no statement of
        # their own); the others are recorded by job_start_many.
        ago = {s.job_id: _us(s.ago) for s in started} if started else {}
        for o in outcomes:
            if o.kind in _FINISHING:
                # result and error are JSON texts built by the worker: embedded as they are.
                result, error = o.result or "null", o.error or "null"
                finish.append(
                    f'[{o.job_id},{o.token},"{o.kind.value}",{result},{error},'
                    f"{ago.pop(o.job_id, 0)}]"
                )
            elif o.kind is OutcomeKind.RETRY:
                retry.append(
                    {
                        "delay_us": _us(o.delay),
                        "error": o.error,
                        "id": o.job_id,
                        "token": o.token,
                        "ago_us": ago.pop(o.job_id, 0),
                        "now": now_us,
                    }
                )
            else:
                release.append({"id": o.job_id, "token": o.token})
        changed = 0
        if ago:
            rows = ",".join(
                f"[{s.job_id},{s.token},{ago[s.job_id]}]" for s in started if s.job_id in ago
            )
            changed += conn.execute(
                Q["job_start_many"], {"rows": f"[{rows}]", "now": now_us}
            ).rowcount
        if finish:
            moved = conn.execute(
                Q["job_finish_many"], {"rows": "[" + ",".join(finish) + "]", "now": now_us}
            ).fetchall()
            if moved:
                ids = "[" + ",".join(str(i) for (i,) in moved) + "]"
                gone = conn.execute(Q["job_delete_moved"], {"ids": ids}).fetchall()
                depended: list[JobId] = [i for i, flag in gone if flag]
                if depended:  # docs/design.md: Dependencies
                    kinds = {o.job_id: o.kind.value for o in outcomes}
                    deps.settle(self, conn, {i: kinds[i] for i in depended}, now_us)
            changed += len(moved)
        if retry:
            changed += conn.executemany(Q["job_retry_later"], retry).rowcount
        if release:
            changed += conn.executemany(Q["job_release"], release).rowcount
        if retry or release:
            # A job whose stop was asked for is not run again (docs/design.md: Commands).
            ids = json.dumps([r["id"] for r in retry] + [r["id"] for r in release])
            canceled = conn.execute(Q["job_cancel_stopped"], {"ids": ids, "now": now_us})
            moved = [i for (i,) in canceled.fetchall()]
            if moved:
                conn.execute(Q["job_delete_many"], {"ids": json.dumps(moved)})
                deps.settle(self, conn, dict.fromkeys(moved, "canceled"), now_us)
        return changed

    def _prune_some(
        self,
        status: JobStatus,
        age: float,
        batch_size: int,
        now: datetime | None,
        lease: Lease | None,
    ) -> int:
        with self._write() as conn:
            self._fence(conn, lease)
            ids = conn.execute(
                Q["job_prune"],
                {
                    "status": status.value,
                    "age_us": _us(age),
                    "batch_size": batch_size,
                    "now": to_us(now),
                },
            ).fetchall()
            if ids:
                # Their fire rows go with them (docs/design.md: Schedules), and their
                # dependency rows.
                pruned = [i for (i,) in ids]
                conn.execute(Q["job_prune_fires"], {"ids": json.dumps(pruned)})
                deps.forget(self, conn, pruned)
        return len(ids)

    def job_vacuum(self, *, min_dead_rows: int) -> bool:
        # SQLite reuses freed pages by itself; nothing to do.
        return False

    def job_watch(self, callback: Callable[[], None]) -> SQLiteWatch:
        """docs/design.md: Idle wake-up (``watch.py``)."""
        wal = Path(f"{os.path.realpath(self.path)}-wal")
        return SQLiteWatch(
            self._connect, Q["data_version"], wal, callback, ours=lambda: self._commits
        )

    # -- the leader's lock (docs/design.md: Leader) ------------------------------

    def _leader_lock_path(self, term: int) -> Path:
        # '@' never appears in a worker's token file name (see _token_path): no clash
        return Path(f"{self.path}-workers") / f"leader@{term}.lock"

    def leader_lock_take(self, term: int) -> bool:
        """Hold the lock of ``term``: an ``flock`` on ``<database>-workers/leader@<term>
        .lock``, which the operating system releases when this process dies. A new
        descriptor each time, so that two candidates in one process exclude each other
        too. False when another holds it."""
        path = self._leader_lock_path(term)
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        with self._leader_locks_lock:
            self._leader_locks.setdefault(term, []).append(fd)
        self._prune_leader_locks(below=term)
        return True

    def leader_lock_release(self, term: int) -> None:
        """Release the lock of ``term`` this process holds (one of them, if two
        candidates of this process took it in turn)."""
        with self._leader_locks_lock:
            fds = self._leader_locks.get(term) or []
            fd = fds.pop() if fds else None
            if not fds:
                self._leader_locks.pop(term, None)
        if fd is not None:
            os.close(fd)

    def leader_lock_held(self, term: int) -> bool:
        """Whether this process still holds the lock of ``term`` (a file lock is never
        lost while the process lives)."""
        return bool(self._leader_locks.get(term))

    def leader_lock_wait(self, term: int, timeout: float) -> bool:
        """True as soon as nobody holds the lock of ``term`` (its leader died or stepped
        down); False once ``timeout`` seconds have passed. Polls a shared ``flock`` every
        few milliseconds: a system call, no database round trip."""
        path = self._leader_lock_path(term)
        path.parent.mkdir(exist_ok=True)
        deadline = time.monotonic() + timeout
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return False
                    time.sleep(LEADER_LOCK_POLL)
        finally:
            os.close(fd)

    def _prune_leader_locks(self, *, below: int) -> None:
        """Remove the lock files of terms before ``below`` that nobody holds (one file a
        term would pile up otherwise); a held one stays."""
        for path in Path(f"{self.path}-workers").glob("leader@*.lock"):
            try:
                term = int(path.stem.removeprefix("leader@"))
            except ValueError:
                continue
            if term < below:
                _unlink_unheld(path)

    # -- workers, liveness and rescue -------------------------------------------

    def _token_path(self, worker_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in worker_id)
        return Path(f"{self.path}-workers") / f"{safe}.lock"

    def _take_token(self, worker_id: str) -> None:
        if worker_id in self._tokens:
            return
        path = self._token_path(worker_id)
        path.parent.mkdir(exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise StoreError(
                    f"worker id {worker_id!r} is already held by a live process"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # a rescuer removed the file between our open and our lock
        self._tokens[worker_id] = fd

    def _drop_token(self, worker_id: str) -> None:
        fd = self._tokens.pop(worker_id, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                self._token_path(worker_id).unlink()
            os.close(fd)

    def _token_released(self, worker_id: str) -> bool:
        """True when no process holds the worker's liveness lock (so it died)."""
        if worker_id in self._tokens:
            return False
        path = self._token_path(worker_id)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        finally:
            os.close(fd)
        return True

    def worker_tokens_free(self, *, exclude: str | None, settle: float) -> list[str]:
        # A lock on a local file: only the death of its process frees it (``settle``
        # is for stores whose tokens a restart frees).
        ids = [w for (w,) in self._conn().execute(Q["worker_tokens_free"], {"exclude": exclude})]
        return [w for w in ids if self._token_released(w)]

    def worker_register(self, info: WorkerInfo, *, now: datetime | None) -> None:
        # Registering again (after being declared dead) takes a fresh token: the
        # rescuer removed the old lock file.
        old = self._tokens.pop(info.id, None)
        if old is not None:
            os.close(old)
        self._take_token(info.id)
        with self._write() as conn:
            conn.execute(Q["worker_register"], self._worker_params(info, now))

    def worker_heartbeat(self, worker_id: str, *, now: datetime | None) -> bool:
        with self._write() as conn:
            n = conn.execute(Q["worker_heartbeat"], {"id": worker_id, "now": to_us(now)}).rowcount
        return n > 0

    def worker_rescue(
        self,
        *,
        rescue_after: float,
        token_after: float,
        now: datetime | None,
        heartbeat_deaths: bool = True,
        exclude: str | None = None,
        lease: Lease | None = None,
        released: Sequence[str] = (),
    ) -> RescueReport:
        report = RescueReport()
        conn = self._conn()
        stale = conn.execute(
            Q["worker_stale"],
            {"age_us": _us(min(rescue_after, token_after)), "now": to_us(now)},
        ).fetchall()
        orphans = [w for (w,) in conn.execute(Q["worker_orphans"]) if w is not None]
        candidates = [w for w, _ in stale if w != exclude]
        for more in (released, orphans):
            candidates.extend(w for w in more if w not in candidates and w != exclude)
        if not candidates:
            return report
        asked = time.monotonic()
        with self._write() as conn:
            self._fence(conn, lease)
            # One `now` for the whole pass, read under the write lock.
            (now_us,) = conn.execute(Q["db_now"], {"now": to_us(now)}).fetchone()
            report.kept_pace = self._store_kept_pace(
                conn, now_us, time.monotonic() - asked, token_after, exclude
            )
            trust_heartbeats = heartbeat_deaths and report.kept_pace
            for worker_id in candidates:
                # A worker seen released over the rescuer's grace: its free token
                # alone is its death, whatever its heartbeat's age.
                token_after_us = -1 if worker_id in released else _us(token_after)
                if self._is_dead(
                    conn, worker_id, now_us, _us(rescue_after), token_after_us, trust_heartbeats
                ):
                    report.dead_workers.append(worker_id)
                    self._bury(conn, [worker_id], now_us, report)
        for worker_id in report.dead_workers:
            self._remove_token_file(worker_id)
        return report

    def _store_kept_pace(
        self,
        conn: sqlite3.Connection,
        now_us: int,
        lock_wait: float,
        token_after: float,
        exclude: str | None,
    ) -> bool:
        """Whether an old heartbeat may be read as a death in this pass.

        Not after the write lock was held for long (a paused or stuck writer stalls every
        heartbeat alike, so ages say nothing), nor while the rescuer's own heartbeat is
        old (this process itself was paused or could not write).
        """
        if lock_wait > min(1.0, token_after / 4):
            return False
        if exclude is None:
            return True
        row = conn.execute(Q["worker_heartbeat_age"], {"id": exclude, "now": now_us}).fetchone()
        return row is not None and row[0] <= _us(token_after)

    def _is_dead(
        self,
        conn: sqlite3.Connection,
        worker_id: str,
        now_us: int | None,
        rescue_after_us: int,
        token_after_us: int,
        heartbeat_deaths: bool,
    ) -> bool:
        """docs/design.md: dead = heartbeat older than rescue_after, or a released liveness
        token with a heartbeat older than ``token_after_us`` (-1, any age, for a worker the
        rescuer saw released over its grace); running jobs whose worker row is gone count as a
        dead worker's."""
        row = conn.execute(Q["worker_heartbeat_age"], {"id": worker_id, "now": now_us}).fetchone()
        if row is None:
            return bool(
                conn.execute(Q["worker_has_running_jobs"], {"worker_id": worker_id}).fetchone()
            )
        age = row[0]
        if heartbeat_deaths and age > rescue_after_us:
            return True
        return (token_after_us < 0 or age > token_after_us) and self._token_released(worker_id)

    def _remove_token_file(self, worker_id: str) -> None:
        """Remove a buried worker's lock file, only while holding its lock: a worker
        that came back and registered again holds a fresh one, which must stay."""
        _unlink_unheld(self._token_path(worker_id))

    def _bury(
        self,
        conn: sqlite3.Connection,
        worker_ids: list[str],
        now_us: int | None,
        report: RescueReport,
    ) -> list[str]:
        queues: set[str] = set()
        for worker_id in worker_ids:
            before = {id(x): len(x) for x in (report.canceled, report.lost, report.failed)}
            params = {"worker_id": worker_id, "now": now_us, "error": WORKER_DIED}
            # Jobs whose stop was asked for end canceled (docs/design.md: Commands).
            canceled = conn.execute(Q["worker_jobs_cancel_stopped"], params).fetchall()
            if canceled:
                report.canceled.extend(j for (j,) in canceled)
                conn.execute(Q["worker_jobs_delete_stopped"], params)
            for job_id, status in conn.execute(Q["worker_jobs_give_up"], params).fetchall():
                (report.lost if status == "lost" else report.failed).append(job_id)
            conn.execute(Q["worker_jobs_delete_given_up"], params)
            ended = _ended(report, before)
            if ended:  # those waiting on the jobs that ended here follow their policy
                deps.settle(self, conn, ended, now_us)
            rescued = conn.execute(Q["worker_jobs_rescue"], {"worker_id": worker_id}).fetchall()
            report.rescued.extend(j for j, _ in rescued)
            queues.update(q for _, q in rescued)
            conn.execute(Q["worker_delete"], {"worker_id": worker_id})
        return sorted(queues)

    # -- schedules -----------------------------------------------------------------

    def _upsert(
        self, conn: sqlite3.Connection, schedules: Sequence[ScheduleRecord], now_us: int
    ) -> int:
        rows = [
            {**row, "next_fire_at": to_us(row["next_fire_at"]), "now": now_us}
            for row in self._schedule_rows(schedules)
        ]
        conn.executemany(Q["schedule_upsert_many"], rows)
        return len(rows)

    # -- fires ---------------------------------------------------------------------


#: outcomes that move a job to the finished table
_FINISHING = frozenset({OutcomeKind.SUCCEEDED, OutcomeKind.FAILED, OutcomeKind.CANCELED})


def _unlink_unheld(path: Path) -> None:
    """Remove a lock file, only while holding its lock: a process holding it (a worker
    registered again, a leader) keeps it; the inode check skips a file made anew
    between the open and the lock."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino == os.stat(path).st_ino:
            path.unlink()
    except OSError:
        pass
    finally:
        os.close(fd)


def _autocommits(conn: sqlite3.Connection) -> bool:
    """Whether the connection commits each statement by itself (``isolation_level=None``,
    as Django's outside ``atomic()``, or ``autocommit=True`` from Python 3.12)."""
    mode = getattr(conn, "autocommit", None)
    if isinstance(mode, bool):  # Python 3.12+: True or False, else the legacy -1
        return mode
    return conn.isolation_level is None


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """``PRAGMA journal_mode = WAL``, waiting while another connection switches a fresh
    file: SQLite then answers "database is locked" at once, without its busy handler."""
    for _ in range(BUSY_TIMEOUT_MS // 10):
        try:
            return str(conn.execute(Q["journal_wal"]).fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.01)
    return str(conn.execute(Q["journal_wal"]).fetchone()[0])


def _statements(script: str) -> list[str]:
    """Split a migration into statements (they hold no semicolons inside literals)."""
    statements, current = [], []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") or not stripped:
            continue
        current.append(line)
        if stripped.endswith(";"):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements


def _forget_deleted(
    store: SQLiteStore, conn: sqlite3.Connection, ids: list[JobId], now: int
) -> None:
    deps.forget(store, conn, ids)


def _settle_canceled(
    store: SQLiteStore, conn: sqlite3.Connection, ids: list[JobId], now: int
) -> set[str]:
    return deps.settle(store, conn, dict.fromkeys(ids, "canceled"), now)


def _ended(report: RescueReport, before: dict[int, int]) -> dict[JobId, str]:
    """The jobs a burial ended since ``before`` (each list's length then), and how."""
    ended: dict[JobId, str] = {}
    for status, ids in (
        ("canceled", report.canceled),
        ("lost", report.lost),
        ("failed", report.failed),
    ):
        ended.update((i, status) for i in ids[before[id(ids)] :])
    return ended
