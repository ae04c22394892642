"""The PostgreSQL store: workers on any number of hosts coordinate through PostgreSQL alone.

How it coordinates (docs/design.md: Semantics):
- psycopg 3 with a ``psycopg_pool.ConnectionPool``; connections are in autocommit mode
  and a write that takes several statements runs in an explicit transaction.
- Every table is named with the URL's schema (``?schema=``, default ``tock``), filled in
  when ``queries.sql`` loads; ``search_path`` is never set nor relied upon, so SQL run on
  a caller's own connection (transactional enqueue) finds the same tables.
- Claims are one statement: a CTE locks the first due rows in claim order with
  ``FOR UPDATE SKIP LOCKED`` (the LIMIT inside it), then an UPDATE marks them running.
  Completions are one statement per kind for the whole batch (arrays, unnest).
- Times are ``timestamptz``; ``now`` is the caller's (fake time in tests) or, when
  ``None``, the database's clock; durations travel as parameters.
- Wake-ups: enqueue sends ``NOTIFY`` on the schema's channel, at most about once per
  5 ms window per queue and process; ``job_watch`` LISTENs on a connection of its own
  and falls back to nothing worse than the claimer's polling.
- A worker's liveness token is a session advisory lock on a hash of its id, held by a
  connection kept for the worker's life: the server releases it when the session ends.
- Migrations run under a transaction-scoped advisory lock; a missing or older schema is
  refused with "run `tock migrate`" (only an empty SQLite store migrates itself).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import operator
import os
import re
import selectors
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.rows import TupleRow, tuple_row
from psycopg_pool import ConnectionPool

from tock.errors import (
    ConfigurationError,
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
from tock.store._sql import fill, load_migrations, load_queries, variant
from tock.store.postgres.connections import Sessions, reason
from tock.store.postgres.copy import (
    COPY_SIGNATURE,
    COPY_TRAILER,
    Ids,
    copy_options,
    copy_rows,
    copy_text,
    fits,
    pg_us,
    retry_on_text,
)
from tock.store.postgres.notify import Listener, Notifier, Watch

log = logging.getLogger("tock.store")

J_COLUMNS = ", ".join(f"j.{c.strip()}" for c in COLUMNS.split(","))
NOW = "coalesce(%(now)s::timestamptz, now())"
MIGRATIONS = load_migrations("tock.store.postgres")
LATEST = MIGRATIONS[-1][0]
DEFAULT_SCHEMA = "tock"
COPY_MIN = 500  # from this many jobs, enqueue_many COPYs instead of passing arrays
COPY_KEYLESS_MIN = 50  # the same for batches without unique keys (measured: 10 to 20 ties)
COPY_CHUNK = 1000  # jobs per write of a COPY
TOKEN_RETAKE = 1.0  # a lost session may hold its liveness token a moment after it failed
TOKEN_WATCH = 0.25  # the token watch's longest wait: a new token joins it within this
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=16)
def queries(schema: str) -> dict[str, str]:
    return load_queries(
        "tock.store.postgres",
        {
            "schema": quote_ident(schema),
            "now": NOW,
            "cols": COLUMNS,
            "scols": f"{SCHEDULE_COLUMNS}, {{query:schedule_last_status}}",
            "fcols": FIRE_COLUMNS,
            "jcols": J_COLUMNS,
        },
    )


def parse_postgres_url(url: str) -> tuple[str, str]:
    """``postgresql://…?schema=name`` to (the URL psycopg sees, the schema).

    ``schema`` is Tock's, not libpq's: it is taken out before the driver sees the URL.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(f"invalid PostgreSQL URL {redact_url(url)!r}: {exc}") from None
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise ConfigurationError(
            f"invalid PostgreSQL URL {redact_url(url)!r}: use postgresql://user@host/db"
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    if len(schemas) > 1:
        raise ConfigurationError(f"{redact_url(url)!r} gives schema= more than once")
    schema = schemas[0] if schemas else DEFAULT_SCHEMA
    if not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(
            f"{redact_url(url)!r}: schema {schema!r} is not a valid name "
            "(letters, digits, _ and $, starting with a letter or _, at most 63)"
        )
    # %20, not +, for a space: libpq decodes percent escapes only (options=-c%20…).
    rest = urlencode([(k, v) for k, v in query if k != "schema"], quote_via=quote)
    return urlunsplit(parts._replace(query=rest)), schema


def _now(when: datetime | None) -> datetime | None:
    if when is not None and when.tzinfo is None:
        raise ConfigurationError(f"{when!r} is a naive datetime: give it a time zone (e.g. UTC)")
    return when


def _same(value: datetime | None) -> datetime | None:
    return value  # psycopg reads timestamptz as aware datetimes already


class PostgresStore(SQLStore):
    supports_listen_notify = True
    token_sessions = True
    clock_step = 1e-6  # timestamptz: microseconds
    claim_lanes = 2  # one claim waits for the server while the other's jobs start
    MIGRATIONS = MIGRATIONS
    LATEST = LATEST

    def __init__(self, url: str) -> None:
        conninfo_url, self.schema = parse_postgres_url(url)
        self.url = redact_url(url)
        self.Q = queries(self.schema)
        self._db = Sessions(conninfo_url, self.url)
        digest = hashlib.sha1(self.schema.encode()).hexdigest()[:16]
        self.channel = f"tock.{self.schema}" if len(self.schema) <= 50 else f"tock.{digest}"
        #: where commands are hinted (docs/design.md: Commands); at most 59 characters
        self.command_channel = f"{self.channel}.cmd"
        self._lock_prefix = f"tock:worker:{self.schema}:"
        self._pid = os.getpid()
        self._checked = False
        self._check_lock = threading.Lock()
        # Caller connections already checked (see _caller_connection), and the server's
        # identity they are checked against.
        self._callers_checked: weakref.WeakKeyDictionary[psycopg.Connection[Any], bool] = (
            weakref.WeakKeyDictionary()
        )
        self._server: tuple[Any, ...] | None = None
        # Worker id -> the session holding its token (None: lost, to be taken again).
        self._tokens: dict[str, psycopg.Connection[TupleRow] | None] = {}
        self._tokens_lock = threading.Lock()
        self._token_watch: threading.Thread | None = None  # see _watch_tokens
        self._closing = threading.Event()
        # term -> sessions holding the leader's lock; a session for a follower's waits
        self._leader_locks: dict[int, list[psycopg.Connection[TupleRow]]] = {}
        self._leader_waiter: psycopg.Connection[TupleRow] | None = None
        self._notifier = Notifier(self)
        self._listener = Listener(self)  # one LISTEN session for every watch

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # -- the dialect's primitives (tock.store._base) --------------------------------

    _time = staticmethod(_now)
    _read_time = staticmethod(_same)

    @staticmethod
    def _names(names: Sequence[str] | None) -> list[str] | None:
        return None if names is None else list(names)

    @staticmethod
    def _read_names(value: list[str]) -> tuple[str, ...]:
        return tuple(value)

    def _read(self) -> contextlib.AbstractContextManager[psycopg.Connection[TupleRow]]:
        return self._conn()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A read-only transaction at REPEATABLE READ: one snapshot for all its reads."""
        with self._conn() as conn, conn.transaction():
            conn.execute(self.Q["snapshot"])
            yield conn

    def _write_one(self) -> contextlib.AbstractContextManager[psycopg.Connection[TupleRow]]:
        return self._conn()  # autocommit: one statement is its own transaction

    def _stamp(self, conn: psycopg.Connection[Any], now: datetime | None) -> datetime | None:
        return _now(now)  # NULL: the SQL's now(), the transaction's time already

    def _clock(self, conn: psycopg.Connection[Any], now: datetime | None) -> datetime:
        (at,) = _one(conn.execute(self.Q["db_now"], {"now": _now(now)}))
        assert isinstance(at, datetime)
        return at

    @staticmethod
    def _after(at: datetime) -> datetime:
        return at + timedelta(microseconds=1)

    @property
    def _where(self) -> str:
        return f"schema {self.schema!r} of {self.url}"

    # -- connections -------------------------------------------------------------

    @property
    def _conninfo(self) -> str:
        return self._db.conninfo

    def _forked(self) -> None:
        """docs/design.md: a connection is never carried across a fork; nor is a token."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._tokens = {}
            self._token_watch = None
            self._leader_locks = {}
            self._leader_waiter = None
            self._notifier = Notifier(self)
            self._listener = Listener(self)

    def _get_pool(self) -> ConnectionPool[psycopg.Connection[TupleRow]]:
        self._forked()
        return self._db.pool()

    @contextlib.contextmanager
    def _conn(self, *, check: bool = True) -> Iterator[psycopg.Connection[TupleRow]]:
        if check and not self._checked:
            self._check_schema()
        self._forked()
        with self._db.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """One transaction on a pooled connection."""
        with self._conn() as conn, conn.transaction():
            yield conn

    def _caller_connection(self, connection: object) -> psycopg.Connection[Any]:
        """The caller's connection, checked once, at its first use (docs/design.md: caller
        connections): the store's database on the same server."""
        if not isinstance(connection, psycopg.Connection):
            raise ConfigurationError(
                "connection= must be a psycopg (3) Connection for the PostgreSQL store, "
                f"not {type(connection).__name__}"
            )
        if connection.closed:
            raise ConfigurationError("connection= is closed")
        status = connection.info.transaction_status
        if status == psycopg.pq.TransactionStatus.INERROR:
            raise ConfigurationError(
                "connection= is in a failed transaction: roll it back before enqueueing"
            )
        if status == psycopg.pq.TransactionStatus.ACTIVE:
            raise ConfigurationError("connection= is running another statement")
        if connection in self._callers_checked:
            return connection
        try:
            theirs = _one(connection.execute(self.Q["server_identity"]))
        except psycopg.Error as exc:
            if connection.broken:
                # The session is gone (a restart; the server ended it, as it ends a
                # paused leader's fenced write): what any statement on it raises, for the
                # store's own connection handling or the caller's.
                raise
            raise ConfigurationError(f"connection= cannot be used: {reason(exc)}") from exc
        if theirs != self._identity(refresh=False) and theirs != self._identity(refresh=True):
            raise ConfigurationError(
                f"connection= is open on database {theirs[0]!r} of another server or "
                f"database, not on this store's {self.url}"
            )
        # The same database: the store's own check of its schema (once, on its pool)
        # holds for this connection too, since every table is named with its schema.
        self._callers_checked[connection] = True
        return connection

    def _identity(self, *, refresh: bool) -> tuple[Any, ...]:
        """The store's (database, server start time); read again after a restart."""
        if self._server is None or refresh:
            with self._conn(check=False) as conn:
                self._server = tuple(_one(conn.execute(self.Q["server_identity"])))
        return self._server

    def close(self) -> None:
        self._closing.set()
        with self._tokens_lock:
            tokens, self._tokens = self._tokens, {}
            leader_locks, self._leader_locks = self._leader_locks, {}
            waiter, self._leader_waiter = self._leader_waiter, None
        sessions = [*tokens.values(), waiter, *(c for cs in leader_locks.values() for c in cs)]
        for conn in sessions:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._db.close()

    # -- schema ------------------------------------------------------------------

    def _check_schema(self) -> None:
        with self._check_lock:
            if self._checked:
                return
            # The first use, on a connection of its own: an unreachable server is a
            # clear error at once (the pool would only retry and log), and the pool
            # opens once the schema is known to be there.
            with self._db.direct() as conn:
                versions = self._versions(conn)
            if versions is None:
                raise SchemaError(
                    f"{self.url} has no Tock schema {self.schema!r}: run `tock migrate`"
                )
            self._verify(versions)
            self._checked = True

    def migrate(self, *, connection: object | None = None, upto: int | None = None) -> list[str]:
        if connection is None:
            with self._db.direct() as conn, conn.transaction():
                applied = self._migrate(conn, upto)
        else:
            # The caller's transaction (Django's migrations run in one) is joined through
            # a savepoint: the schema commits or rolls back with the caller's work.
            caller = self._caller_connection(connection)
            # Not in autocommit and idle: the caller's transaction begins with our first
            # statement (psycopg's transaction() would begin and commit one of its own).
            joined = caller.autocommit or (
                caller.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            )
            with caller.transaction() if joined else contextlib.nullcontext():
                applied = self._migrate(caller, upto)
        if connection is None:  # the caller's transaction may yet roll back
            self._checked = upto is None or upto >= self.LATEST
        return applied

    def _migrate(self, conn: psycopg.Connection[Any], upto: int | None) -> list[str]:
        # Two `tock migrate` at once: the second waits here, then finds all applied.
        conn.execute(self.Q["migration_lock"], {"lock": f"tock:migrate:{self.schema}"})
        conn.execute(self.Q["migration_setup"])
        done = {v for (v,) in conn.execute(self.Q["migration_versions"])}
        return self._apply_migrations(conn, done, upto)

    def _run_migration(self, conn: psycopg.Connection[Any], sql: str) -> None:
        conn.execute(fill(sql, {"schema": quote_ident(self.schema)}).encode())

    def _stored_versions(self) -> list[int] | None:
        with self._db.direct() as conn:
            return self._versions(conn)

    def db_now(self, *, now: datetime | None) -> datetime:
        with self._conn() as conn:
            (value,) = _one(conn.execute(self.Q["db_now"], {"now": _now(now)}))
        assert isinstance(value, datetime)
        return value

    # -- jobs --------------------------------------------------------------------

    def job_enqueue_many(
        self, jobs: Sequence[NewJob], *, now: datetime | None, connection: object | None = None
    ) -> list[JobId]:
        if not jobs:
            return []
        return self._enqueue(jobs, now, connection)

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
        workflow: list[int] = []
        ids = self._enqueue(jobs, now, connection, spec=spec, workflow=workflow)
        return workflow[0], ids

    def _enqueue(
        self,
        jobs: Sequence[NewJob],
        now: datetime | None,
        connection: object | None,
        *,
        spec: str | None = None,
        workflow: list[int] | None = None,
    ) -> list[JobId]:
        """Insert ``jobs``; with dependencies, link them in the same transaction; with
        ``spec``, write the workflow row too (its id appended to ``workflow``)."""
        linked = spec is not None or deps.wanted(jobs)
        if linked:
            deps.check(jobs)
        caller = None if connection is None else self._caller_connection(connection)
        if not self._checked:
            self._check_schema()  # a read on a pooled connection: it waits for no lock
        # A unique key twice in one batch: the first item's job, one row (docs/design.md).
        first_of: dict[str, int] = {}
        rows: list[int] = []  # positions that get a row, in input order
        picked = list(jobs)
        if any(job.unique_key is not None for job in jobs):
            rows, first_of = first_of_each_key(jobs, range(len(jobs)))
            picked = [jobs[i] for i in rows]
        when = _now(now)
        notify = self._notifier.due(set(map(_queue, picked)))
        # A few jobs without unique keys are one statement (_insert: the rows and the
        # wake-up hint), atomic on its own: no BEGIN and COMMIT round trips around it.
        alone = not first_of and len(picked) < COPY_KEYLESS_MIN and not linked
        ids: list[JobId] = []

        def insert(cur: psycopg.Cursor[TupleRow]) -> None:
            inserted, held = self._insert(cur, picked, when, notify)
            ids.extend(_batch_ids(jobs, rows, first_of, inserted, held))
            if linked:
                self._notify_in(cur, deps.link(self, cur, jobs, ids, when))
            if spec is not None and workflow is not None:
                row = cur.execute(
                    self.Q["workflow_insert"],
                    {"spec": spec, "job_ids": json.dumps(ids), "now": when},
                ).fetchone()
                assert row is not None
                workflow.append(row[0])

        if caller is not None:
            cm: contextlib.AbstractContextManager[Any] = (
                caller.transaction()
                if not alone
                and caller.autocommit
                and caller.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                else contextlib.nullcontext()
            )
            # A cursor of our own kind: the caller's connection may make client-side
            # cursors (Django's default), which cannot take binary parameters.
            with cm, psycopg.Cursor(caller, row_factory=tuple_row) as cur:
                insert(cur)
        elif alone:
            with self._conn() as conn, conn.cursor() as cur:  # autocommit
                insert(cur)
        else:
            with self._write() as conn, conn.cursor() as cur:
                insert(cur)
        return ids

    def _notify_in(self, cur: Any, queues: set[str]) -> None:
        """Wake the idle workers of ``queues`` at the commit of the caller's transaction
        (jobs a dependency released in it)."""
        if queues:
            cur.execute(self.Q["job_notify"], {"channel": self.channel, "queues": sorted(queues)})

    def _insert(
        self,
        cur: psycopg.Cursor[TupleRow],
        jobs: list[NewJob],
        now: datetime | None,
        notify: list[str],
    ) -> tuple[Ids | list[tuple[int, str | None]], list[tuple[str, int]]]:
        """The rows inserted, as (id, unique key), or as ids in input order when no job
        has a key; and the (key, id) of the live jobs that held a key."""
        params: dict[str, Any]
        runs = _runs(jobs) if len(jobs) >= COPY_KEYLESS_MIN else []
        # Big batches without unique keys: no conflict can skip a row, so the ids are
        # taken first and the rows COPYed straight into the live table. (A number that
        # does not fit its column takes the INSERT below, for the server's own error.)
        if runs and all(j.unique_key is None for j in jobs) and all(map(fits, runs)):
            ids = self._copy_jobs(cur, runs, len(jobs), now)
            if notify:
                cur.execute(self.Q["job_notify"], {"channel": self.channel, "queues": notify})
            return ids, []
        inserted: list[tuple[int, str | None]]
        # Without unique keys, the inserts' variant without ON CONFLICT (queries.sql).
        keyless = () if any(j.unique_key is not None for j in jobs) else ("keyless",)
        if len(jobs) >= COPY_MIN:
            # Big batches with unique keys: COPY the arguments into a session temp table,
            # then one INSERT ... SELECT in COPY order that takes the options once per
            # run of jobs sharing them; several times as fast as arrays.
            runs = runs or _runs(jobs)
            cur.execute(self.Q["job_stage_create"])
            if len(runs) == 1:
                # One run: its options are plain parameters, no run column to join on.
                copy_query, insert = self.Q["job_stage_copy_one"], "job_insert_staged_one"
                text = "".join(f"{j.args}\t{j.kwargs}\n" for j in jobs)
                params = dict(zip(STAGED, _row(jobs[0]), strict=True))
            else:
                copy_query, insert = self.Q["job_stage_copy"], "job_insert_staged"
                text = "".join(
                    f"{n}\t{j.args}\t{j.kwargs}\n"
                    for n, run in enumerate(runs, start=1)
                    for j in run
                )
                firsts = [_row(run[0]) for run in runs]
                params = {name: [row[i] for row in firsts] for i, name in enumerate(STAGED)}
            del params["args"], params["kwargs"]
            params["now"] = now
            with cur.copy(copy_query) as copy:
                copy.write(copy_text(text))
            cur.execute(self.Q[variant(insert, *keyless)], params)
            inserted = cur.fetchall()
        else:
            if len(jobs) == 1:
                params = dict(zip(STAGED, _row(jobs[0]), strict=True))
                insert = "job_insert_one"
            else:
                # One array per column (lists: psycopg sends a tuple as a record).
                columns = [list(c) for c in zip(*(_row(j) for j in jobs), strict=True)]
                params = dict(zip(STAGED, columns, strict=True))
                insert = "job_insert_many"
            params["now"] = now
            hint: tuple[str, ...] = ()
            if notify:  # the hint in the same statement: one round trip fewer
                hint = ("hint",)
                params.update(channel=self.channel, queues=notify)
                notify = []
            cur.execute(self.Q[variant(insert, *hint, *keyless)], params, binary=True)
            inserted = cur.fetchall()
        got = {key for _, key in inserted if key is not None}
        missing = [j.unique_key for j in jobs if j.unique_key is not None]
        missing = [k for k in missing if k not in got]
        held: list[tuple[str, int]] = []
        if missing:
            # docs/design.md: a key held by a live job creates nothing and returns that job.
            cur.execute(self.Q["job_by_unique_key"], {"keys": missing})
            held = cur.fetchall()
            if len(held) != len(missing):
                raise StoreError(
                    "a unique key is held by a job that another transaction has not "
                    "committed yet (or this transaction's snapshot cannot see): "
                    "enqueue again"
                )
        if notify:
            cur.execute(self.Q["job_notify"], {"channel": self.channel, "queues": notify})
        return inserted, held

    def _copy_jobs(
        self,
        cur: psycopg.Cursor[TupleRow],
        runs: list[list[NewJob]],
        n: int,
        now: datetime | None,
    ) -> Ids:
        """COPY jobs without unique keys into the live table; their ids in input order.

        Binary COPY: the server parses no timestamps or numbers, and the fields a run of
        jobs shares are encoded once for the run."""
        cur.execute(self.Q["job_take_ids"], {"n": n, "now": now}, binary=True)
        created, reserved = _one(cur)
        ids = Ids(sorted(reserved))  # increasing already (one session's nextval calls)
        encoding = cur.connection.info.encoding
        created_us = pg_us(created)
        start = 0
        with cur.copy(self.Q["job_copy"]) as copy:
            copy.write(COPY_SIGNATURE)
            for run in runs:
                shared = copy_options(run[0], created_us, encoding)
                # In chunks: the server inserts one while the next is encoded.
                for lo in range(0, len(run), COPY_CHUNK):
                    hi = min(lo + COPY_CHUNK, len(run))
                    taken = ids[start + lo : start + hi]
                    copy.write(copy_rows(run[lo:hi], taken, shared, encoding))
                start += len(run)
            copy.write(COPY_TRAILER)
        return ids

    def _notify(self, queues: list[str]) -> None:
        if not self._db.opened:
            return
        with self._conn(check=False) as conn:
            conn.execute(self.Q["job_notify"], {"channel": self.channel, "queues": queues})

    def job_retry_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]:
        moved: list[tuple[JobId, str]] = []
        with self._write() as conn:
            keyed = [r[0] for r in conn.execute(self.Q["job_keyed"], {"ids": list(ids)})]
            moved += conn.execute(
                self.Q["job_retry_many"], {"ids": list(ids), "now": _now(now)}
            ).fetchall()
            for job_id in keyed:
                try:
                    with conn.transaction():  # a savepoint: a held key refuses this job alone
                        moved += conn.execute(
                            self.Q["job_retry_keyed"], {"id": job_id, "now": _now(now)}
                        ).fetchall()
                except psycopg.errors.UniqueViolation:
                    continue
            if moved:
                # The jobs a retried dependency canceled come back with it.
                self._notify_in(conn, deps.restore(self, conn, [i for i, _ in moved], _now(now)))
        if moved:
            self._notify(sorted({q for _, q in moved}))
        return [i for i, _ in moved]

    def job_cancel_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]:
        with self._write() as conn:
            rows = conn.execute(
                self.Q["job_cancel_many"], {"ids": list(ids), "now": _now(now)}
            ).fetchall()
            if rows:  # those waiting on a canceled job follow their policy
                ended = dict.fromkeys((r[0] for r in rows), "canceled")
                self._notify_in(conn, deps.settle(self, conn, ended, _now(now)))
        return [r[0] for r in rows]

    def _dep_query(self, conn: Any, name: str, params: dict[str, Any]) -> Any:
        # Never prepared: planned for the tables as they are (queries.sql: Dependencies).
        return conn.execute(self.Q[name], params, prepare=False)

    def _forget_moved(self, conn: Any, ids: list[JobId]) -> None:
        return None  # dep_cancel moved them whole

    def _drop_finished(self, conn: Any, ids: list[JobId]) -> None:
        return None  # dep_restore moved them whole

    def job_delete_many(self, ids: Sequence[JobId]) -> list[JobId]:
        with self._write() as conn:
            rows = conn.execute(self.Q["job_delete_finished_jobs"], {"ids": list(ids)}).fetchall()
        return [r[0] for r in rows]

    def job_run_now_many(self, ids: Sequence[JobId], *, now: datetime | None) -> list[JobId]:
        with self._write() as conn:
            rows = conn.execute(
                self.Q["job_run_now_many"], {"ids": list(ids), "now": _now(now)}
            ).fetchall()
        if rows:
            self._notify(sorted({q for _, q in rows}))
        return [r[0] for r in rows]

    def _claim(
        self,
        params: dict[str, Any],
        queues: Sequence[str],
        completed: Sequence[Outcome],
        started: Sequence[Start],
    ) -> list[Any]:
        with self._conn() as conn:
            if all(o.kind in _FINISHING for o in completed):
                # The usual turn: record the starts, finish the batch and claim the next
                # in one statement (the claim's variants with job_finish and job_start).
                finish, starts = _finish_params(completed, started)
                # A claim that records no outcome commits lazily (queries.sql:
                # claim_lazy); one that does waits for the WAL flush.
                flags = ["finish"] if completed else ["lazy"]
                if completed:
                    params.update(finish)
                if starts:
                    params.update(starts)
                    flags.append("start")
                rows = conn.execute(self._claim_query(queues, *flags), params).fetchall()
                if not completed:
                    return [row for row in rows if row[0] is not None]  # none: one empty row
                # One column more: the outcomes it did not apply (jobs that others
                # depend on, or claims that no longer hold), and a row with no job
                # when it claimed none.
                unfinished = rows[0][-1] if rows else 0
                rows = [row[:-1] for row in rows if row[0] is not None]
                if unfinished:
                    with conn.transaction():
                        self._complete(conn, completed, params["now"])
                return rows
            with conn.transaction():
                self._complete(conn, completed, params["now"], started)
                rows = conn.execute(self._claim_query(queues), params).fetchall()
                return [row for row in rows if row[0] is not None]

    def _claim_query(self, queues: Sequence[str], *flags: str) -> str:
        if len(queues) == 1:
            return self.Q[variant("job_claim_batch", *flags)]
        return self.Q[variant("job_claim_batch_queues", *flags)]

    def _complete(
        self,
        conn: psycopg.Connection[TupleRow],
        outcomes: Sequence[Outcome],
        now: datetime | None,
        started: Sequence[Start] = (),
    ) -> int:
        finish: list[Outcome] = []
        retry: list[Outcome] = []
        release: list[Outcome] = []
        for o in outcomes:
            if o.kind in _FINISHING:
                finish.append(o)
            elif o.kind is OutcomeKind.RETRY:
                retry.append(o)
            else:
                release.append(o)
        # A retried job's start goes with its retry; _finish_params sorts out the rest.
        retried = {o.job_id for o in retry}
        ago = {s.job_id: _us(s.ago) for s in started if s.job_id in retried}
        rest = [s for s in started if s.job_id not in ago] if ago else started
        changed = 0
        finished, starts = _finish_params(finish, rest)
        depended: dict[JobId, str] = {}
        if finish:
            moved, flagged = _one(conn.execute(self.Q["job_finish_many"], {**finished, "now": now}))
            changed += moved
            if flagged:
                kinds = {o.job_id: o.kind.value for o in finish}
                depended = {i: kinds[i] for i in flagged}
        if starts:
            (n,) = _one(conn.execute(self.Q["job_start_many"], {**starts, "now": now}))
            changed += n
        if retry:
            changed += conn.execute(
                self.Q["job_retry_later"],
                {
                    "ids": [o.job_id for o in retry],
                    "tokens": [o.token for o in retry],
                    "delays_us": [_us(o.delay) for o in retry],
                    "errors": [o.error for o in retry],
                    "agos_us": [ago.get(o.job_id, 0) for o in retry],
                    "now": now,
                },
            ).rowcount
        if release:
            changed += conn.execute(
                self.Q["job_release"],
                {"ids": [o.job_id for o in release], "tokens": [o.token for o in release]},
            ).rowcount
        if retry or release:
            # A job whose stop was asked for is not run again (docs/design.md: Commands).
            stopped = conn.execute(
                self.Q["job_cancel_stopped"],
                {"ids": [o.job_id for o in retry] + [o.job_id for o in release], "now": now},
            )
            depended.update((i, "canceled") for (i,) in stopped)
        if depended:  # docs/design.md: Dependencies
            self._notify_in(conn, deps.settle(self, conn, depended, now))
        return changed

    def _prune_some(
        self,
        status: JobStatus,
        age: float,
        batch_size: int,
        now: datetime | None,
        lease: Lease | None,
    ) -> int:
        # One statement, the jobs and their fire rows: in a transaction of its own when
        # fenced.
        with self._write() if lease is not None else self._conn() as conn:
            self._fence(conn, lease)
            (n,) = _one(
                conn.execute(
                    self.Q["job_prune"],
                    {
                        "status": status.value,
                        "age_us": _us(age),
                        "batch_size": batch_size,
                        "now": _now(now),
                    },
                )
            )
        return int(n)

    def job_vacuum(self, *, min_dead_rows: int) -> bool:
        # Every job leaves three dead row versions in the live table (enqueue, claim,
        # finish); autovacuum wakes once a minute at best, and may be off on the server
        # (then a table's own settings cannot turn it on). A queue draining thousands of
        # jobs a second bloats in that minute, and claims slow down: so the workers
        # vacuum the live table themselves once it holds enough dead rows. SKIP_LOCKED:
        # when another worker is already at it, this one does not wait.
        with self._conn() as conn:
            (dead,) = _one(conn.execute(self.Q["job_dead_rows"]))
            if (dead or 0) < min_dead_rows:
                return False
            conn.execute(self.Q["job_vacuum"])
        return True

    def job_watch(self, callback: Callable[[], None]) -> Watch:
        self._forked()
        return self._listener.watch(self.channel, callback)

    def worker_command_watch(self, callback: Callable[[], None]) -> Watch:
        self._forked()
        return self._listener.watch(self.command_channel, callback)

    def _hint(self, *, queues: Sequence[str] = (), commands: bool = False) -> None:
        # A hint: if it cannot be sent, workers still poll.
        with contextlib.suppress(Exception):
            if queues:
                self._notify(list(queues))
            if commands and self._db.opened:
                with self._conn(check=False) as conn:
                    conn.execute(
                        self.Q["job_notify"], {"channel": self.command_channel, "queues": [""]}
                    )

    # -- the leader's lock (docs/design.md: Leader) ------------------------------

    def _fence(self, conn: Any, lease: Lease | None) -> None:
        if lease is not None:
            conn.execute(self.Q["leader_fence_idle"])
        super()._fence(conn, lease)

    def _leader_key(self, term: int) -> dict[str, str]:
        return {"lock": f"tock:leader:{self.schema}:{term}"}

    def leader_lock_take(self, term: int) -> bool:
        """Hold the lock of ``term``: a session advisory lock on a connection of its own,
        which the server releases when the session ends, however this process dies.
        False when another session holds it."""
        self._forked()
        born = time.monotonic()
        try:
            conn = self._db.leader_connect(born)
        except psycopg.Error as exc:
            raise self._db.lost(None, exc) from None
        try:
            taken = _one(conn.execute(self.Q["leader_lock_take"], self._leader_key(term)))[0]
        except psycopg.Error as exc:
            conn.close()
            raise self._db.lost(born, exc) from None
        if not taken:
            conn.close()
            return False
        with self._tokens_lock:
            self._leader_locks.setdefault(term, []).append(conn)
        return True

    def leader_lock_release(self, term: int) -> None:
        """Release the lock of ``term`` (its session ends)."""
        with self._tokens_lock:
            conns = self._leader_locks.get(term) or []
            conn = conns.pop() if conns else None
            if not conns:
                self._leader_locks.pop(term, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def leader_lock_held(self, term: int) -> bool:
        """Whether the session holding the lock of ``term`` is still there: one round
        trip on it. A session the server ended (a restart) has lost the lock."""
        conns = self._leader_locks.get(term)
        if not conns:
            return False
        conn = conns[-1]
        try:
            conn.execute(self.Q["leader_lock_check"])
        except psycopg.Error:
            return False
        return not conn.broken

    def leader_lock_wait(self, term: int, timeout: float) -> bool:
        """True as soon as nobody holds the lock of ``term`` (its leader's session ended,
        or it stepped down); False once ``timeout`` seconds have passed. A shared lock
        request that the server grants the moment the holder's session ends, bounded by
        ``lock_timeout``, on a session kept for these waits."""
        self._forked()
        conn = self._leader_waiter
        if conn is None or conn.closed or conn.broken:
            born = time.monotonic()
            try:
                conn = self._leader_waiter = self._db.leader_connect(born)
            except psycopg.Error as exc:
                raise self._db.lost(None, exc) from None
        params = {**self._leader_key(term), "timeout": f"{max(1, round(timeout * 1000))}ms"}
        try:
            conn.execute(self.Q["leader_lock_wait_timeout"], params)
            try:
                conn.execute(self.Q["leader_lock_wait"], params)
            except psycopg.errors.LockNotAvailable:
                return False
            # Granted: give it back. A session lost here (an outage that also ended the
            # leader's) is a lost connection like any other, not an error of the turn.
            conn.execute(self.Q["leader_lock_unwait"], params)
        except psycopg.Error as exc:
            raise self._db.lost(self._db.born(conn), exc) from None
        return True

    # -- workers, liveness and rescue -------------------------------------------

    def _take_token(
        self, worker_id: str, *, held_only: bool = False
    ) -> psycopg.Connection[TupleRow]:
        """The worker's liveness token on a connection of its own; taken again first
        when that connection was lost (docs/design.md: a reconnecting worker takes its token).
        With ``held_only``, only a token this store still holds or owes is taken again
        (``StoreError`` for one dropped meanwhile)."""
        with self._tokens_lock:
            conn = self._tokens.get(worker_id)
            if conn is not None and not conn.broken and not conn.closed:
                return conn
            retake = worker_id in self._tokens  # it was ours: its session was lost
            if held_only and not retake:
                raise StoreError(f"worker {worker_id!r} no longer holds a token here")
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                self._tokens[worker_id] = None  # still owed: the next call takes it
            born = time.monotonic()
            try:
                conn = self._db.token_connect(born)
            except psycopg.Error as exc:
                if retake:
                    raise self._db.lost(None, exc) from None
                raise StoreError(f"cannot connect to {self.url}: {reason(exc)}") from None
            lock = {"lock": self._lock_prefix + worker_id}
            # Taken again: the lost session may hold it a moment after its error reached
            # us (the server ends it asynchronously), and a rescuer may be trying it.
            deadline = born + (TOKEN_RETAKE if retake else 0.0)
            try:
                while not (taken := _one(conn.execute(self.Q["worker_token_take"], lock))[0]):
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.02)
            except psycopg.OperationalError as exc:
                conn.close()
                raise self._db.lost(born, exc) from None
            if not taken:
                conn.close()
                raise StoreError(f"worker id {worker_id!r} is already held by a live process")
            self._tokens[worker_id] = conn
            if self._token_watch is None or not self._token_watch.is_alive():
                self._closing.clear()  # a store used again after close()
                self._token_watch = threading.Thread(
                    target=self._watch_tokens, name="tock-token-watch", daemon=True
                )
                self._token_watch.start()
            return conn

    def _watch_tokens(self) -> None:
        """While the store is open: wait for a token session's socket to turn readable
        (an idle session hears from the server only when it ends it: a terminated
        backend, a proxy gone) and take that token again at once, not at the next
        heartbeat, well within the rescuer's grace (docs/design.md: Death and rescue)."""
        pid = os.getpid()
        while not self._closing.is_set() and os.getpid() == pid:
            held: dict[int, tuple[str, psycopg.Connection[Any]]] = {}
            with self._tokens_lock:
                for w, c in self._tokens.items():
                    if c is not None and not c.closed and not c.broken:
                        with contextlib.suppress(Exception):  # closed by another thread
                            held[c.fileno()] = (w, c)
            if not held:
                self._closing.wait(TOKEN_WATCH)
                continue
            with selectors.DefaultSelector() as selector:
                try:
                    for fd in held:
                        selector.register(fd, selectors.EVENT_READ)
                    ready = selector.select(TOKEN_WATCH)
                except (OSError, ValueError):  # a session closed meanwhile: look again
                    self._closing.wait(0.01)
                    continue
            for key, _ in ready:
                worker_id, conn = held[key.fd]
                with self._tokens_lock:
                    if self._tokens.get(worker_id) is not conn or conn.closed:
                        continue  # dropped or replaced meanwhile
                try:
                    self._on_token(worker_id, self.Q["token_check"], {}, held_only=True)
                except Exception as exc:  # the heartbeat tries again, and says so
                    log.debug("taking the token of worker %s again failed: %s", worker_id, exc)
                    self._closing.wait(TOKEN_WATCH)

    def _on_token(
        self,
        worker_id: str,
        query: str,
        params: Mapping[str, Any],
        *,
        held_only: bool = False,
    ) -> int:
        """One statement on the worker's token session (its rowcount); a lost session
        takes the token again first, then runs the statement once more."""
        for attempt in (1, 2):
            conn = self._take_token(worker_id, held_only=held_only)
            try:
                n = conn.execute(query, params).rowcount
            except psycopg.OperationalError as exc:
                if not conn.broken:
                    raise
                lost = self._db.lost(self._db.born(conn), exc)
                if attempt == 2:
                    raise lost from None
                continue
            if self._db.offline:
                self._db.back(self._db.born(conn))
            return n
        raise AssertionError("unreachable")

    def _drop_token(self, worker_id: str) -> None:
        with self._tokens_lock:
            conn = self._tokens.pop(worker_id, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def worker_register(self, info: WorkerInfo, *, now: datetime | None) -> None:
        if not self._checked:
            self._check_schema()
        self._on_token(info.id, self.Q["worker_register"], self._worker_params(info, now))

    def worker_heartbeat(self, worker_id: str, *, now: datetime | None) -> bool:
        params = {"id": worker_id, "now": _now(now)}
        if worker_id in self._tokens:
            # On the token's own connection: a heartbeat that gets through proves the
            # token is still held; a lost session takes its token again first.
            return self._on_token(worker_id, self.Q["worker_heartbeat"], params) > 0
        with self._conn() as conn:
            n = conn.execute(self.Q["worker_heartbeat"], params).rowcount
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
        params: dict[str, Any] = {
            "now": _now(now),
            "exclude": exclude,
            "rescue_after_us": _us(rescue_after),
            "token_after_us": _us(token_after),
            "lock_prefix": self._lock_prefix,
            "released": list(released),
            "settle_us": _us(token_after),
        }
        if self._settling(token_after):
            # This process lost its connection lately, and so, likely, did every worker
            # (a server restart drops every session): a free token is no evidence until
            # they have had token_after to reconnect and take theirs again.
            params["token_after_us"] = max(_us(rescue_after), _us(token_after))
            params["released"] = []
        asked = time.monotonic()
        with self._write() as conn:
            self._fence(conn, lease)
            when, own_age = _one(conn.execute(self.Q["worker_rescue_check"], params))
            waited = time.monotonic() - asked
            # An old heartbeat is evidence only while the store keeps pace (as on SQLite):
            # not when the database answered slowly (a stalled server stalls every
            # heartbeat alike), nor while the calling worker's own heartbeat is old (this
            # process was paused or could not write). Released tokens always count.
            report.kept_pace = waited <= min(1.0, token_after / 4) and (
                exclude is None or (own_age is not None and own_age.total_seconds() <= token_after)
            )
            params["heartbeat_deaths"] = heartbeat_deaths and report.kept_pace
            dead = [w for (w,) in conn.execute(self.Q["worker_dead"], params)]
            orphans = [w for (w,) in conn.execute(self.Q["worker_orphans"], params)]
            dead.extend(w for w in orphans if w not in dead)
            queues = []
            if dead:
                report.dead_workers.extend(dead)
                queues = self._bury(conn, dead, when, report)
        # The rescued jobs are ready: idle workers hear it now, not at their next poll.
        self._wake(queues)
        return report

    def _settling(self, settle: float) -> bool:
        """Whether this process lost its connection to the server less than ``settle``
        seconds ago (or has it lost now): then so, likely, did every worker, and a free
        token is no evidence yet."""
        back = self._db.back_at
        return self._db.offline or (back is not None and time.monotonic() - back < settle)

    def worker_tokens_free(self, *, exclude: str | None, settle: float) -> list[str]:
        if self._settling(settle):
            return []
        params = {"exclude": exclude, "lock_prefix": self._lock_prefix, "settle_us": _us(settle)}
        with self._conn() as conn:
            return [w for (w,) in conn.execute(self.Q["worker_tokens_free"], params)]

    def _bury(
        self,
        conn: psycopg.Connection[TupleRow],
        worker_ids: list[str],
        now: datetime | None,
        report: RescueReport,
    ) -> list[str]:
        params = {"worker_ids": worker_ids, "now": now, "error": WORKER_DIED}
        before = {id(x): len(x) for x in (report.canceled, report.lost, report.failed)}
        # Jobs whose stop was asked for end canceled (docs/design.md: Commands).
        report.canceled.extend(
            sorted(j for (j,) in conn.execute(self.Q["worker_jobs_cancel_stopped"], params))
        )
        for job_id, status in sorted(conn.execute(self.Q["worker_jobs_give_up"], params)):
            (report.lost if status == "lost" else report.failed).append(job_id)
        back = conn.execute(self.Q["worker_jobs_rescue"], params).fetchall()
        report.rescued.extend(sorted(j for j, _ in back))
        conn.execute(self.Q["worker_delete"], params)
        # Those waiting on the jobs that ended here follow their policy.
        ended: dict[JobId, str] = {}
        for status, ids in (
            ("canceled", report.canceled),
            ("lost", report.lost),
            ("failed", report.failed),
        ):
            ended.update((i, status) for i in ids[before[id(ids)] :])
        released = deps.settle(self, conn, ended, now) if ended else set()
        return sorted({q for _, q in back} | released)

    def _wake(self, queues: list[str]) -> None:
        if queues:
            self._notify(queues)

    # -- schedules -----------------------------------------------------------------

    def _upsert(
        self, conn: psycopg.Connection[Any], schedules: Sequence[ScheduleRecord], now: Any
    ) -> int:
        rows = [
            {**row, "next_fire_at": _iso(row["next_fire_at"])}
            for row in self._schedule_rows(schedules)
        ]
        text = json.dumps(rows, allow_nan=False)
        conn.execute(self.Q["schedule_upsert_many"], {"rows": text, "now": now})
        return len(rows)


_FINISHING = frozenset({OutcomeKind.SUCCEEDED, OutcomeKind.FAILED, OutcomeKind.CANCELED})


def _batch_ids(
    jobs: Sequence[NewJob],
    rows: list[int],
    first_of: dict[str, int],
    inserted: Ids | list[tuple[int, str | None]],
    held: list[tuple[str, int]],
) -> list[JobId]:
    """The ids of a batch in input order. One statement inserted the rows in input
    order: the identity handed out increasing ids in that order. Keyed rows are matched
    by their key."""
    if isinstance(inserted, Ids):
        return inserted  # a batch without unique keys, COPYed (a list already)
    if not first_of:
        return sorted(i for i, _ in inserted)
    ids: list[JobId | None] = [None] * len(jobs)
    by_key = dict(held)
    fresh = iter(sorted(i for i, key in inserted if key is None))
    for i, key in ((i, jobs[i].unique_key) for i in rows):
        if key is None:
            ids[i] = next(fresh)
    by_key.update((key, i) for i, key in inserted if key is not None)
    for i, job in enumerate(jobs):
        if job.unique_key is not None:
            ids[i] = by_key[job.unique_key]
    return [i for i in ids if i is not None]


def _finish_params(
    outcomes: Sequence[Outcome], started: Sequence[Start]
) -> tuple[dict[str, str], dict[str, str]]:
    """What job_finish and job_start take: one JSON text each for the batch. A start of
    a job that ends in the batch goes with its outcome (job_start leaves it out).

    Built by hand because every part already is JSON (results and errors are JSON texts
    the worker encoded, embedded as they are); psycopg's adaptation of one array per
    field cost a quarter of a worker's claimer thread.
    """
    ago = {s.job_id: _us(s.ago) for s in started} if started else {}
    rows = ",".join(
        f'{{"id":{o.job_id},"token":{o.token},"status":"{o.kind.value}",'
        f'"result":{o.result or "null"},"error":{o.error or "null"},'
        f'"ago_us":{ago.pop(o.job_id, 0)}}}'
        for o in outcomes
    )
    if not ago:
        return {"finished": f"[{rows}]"}, {}
    starts = ",".join(
        f'{{"id":{s.job_id},"token":{s.token},"ago_us":{ago[s.job_id]}}}'
        for s in started
        if s.job_id in ago
    )
    return {"finished": f"[{rows}]"}, {"started": f"[{starts}]"}


# The columns of an enqueued job as the insert queries take them, in this order.
STAGED = (
    "task",
    "queue",
    "priority",
    "args",
    "kwargs",
    "run_at",
    "run_after_us",
    "retries",
    "retry_backoff",
    "retry_on",
    "timeout",
    "at_most_once",
    "max_rescues",
    "unique_key",
)


def _row(j: NewJob) -> tuple[object, ...]:
    return (
        j.task,
        j.queue,
        j.priority,
        j.args,
        j.kwargs,
        _now(j.run_at),
        _us(j.run_after),
        j.retries,
        float(j.retry_backoff),
        retry_on_text(j.retry_on),
        None if j.timeout is None else float(j.timeout),
        bool(j.at_most_once),
        j.max_rescues,
        j.unique_key,
    )


_queue = operator.attrgetter("queue")


@functools.lru_cache(maxsize=64)
def _iso(when: datetime | None) -> str | None:
    checked = _now(when)
    return None if checked is None else checked.isoformat()


def _one(cur: psycopg.Cursor[TupleRow]) -> TupleRow:
    row = cur.fetchone()
    assert row is not None
    return row


def _runs(jobs: list[NewJob]) -> list[list[NewJob]]:
    """Consecutive jobs that share every option but their arguments."""
    return [[jobs[i] for i in run] for run in option_runs(jobs, range(len(jobs)))]
