"""The PostgreSQL store's connections, and what it says when the server goes away.

One ``Sessions`` per store: a ``psycopg_pool.ConnectionPool`` for its statements (in
autocommit; a write of several statements opens a transaction of its own), and sessions
of their own, outside the pool, for LISTEN, for workers' liveness tokens and for the
leader's lock (TCP
keepalives, so the server notices a vanished client within about 30 s and frees its
token), and for one-off work (schema checks, migrations).

Outages (docs/design.md: PostgreSQL outages): the first failure of a connection the
server ended is logged once, as "lost the connection"; the next success on a connection
opened since, once, as "reconnected". A failure on a connection born before the outage
was declared is part of it. An idle pooled connection whose session the server ended
(a restart, a terminated backend) is replaced before any statement is sent on it, so
the caller sees no error; a session that ends while its statement runs raises
``ConnectionLost``: whether that write happened is unknown.

psycopg_pool logs a warning per failed reconnection attempt and per discarded
connection: a filter keeps those about Tock's own pools out of the log, installed when
the process opens its first pool (importing Tock changes no logging).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout

from tock.errors import ConfigurationError, ConnectionLost, StoreError

__all__ = ["CONNECT_TIMEOUT", "KEEPALIVES", "POOL_TIMEOUT", "Sessions", "reason"]

log = logging.getLogger("tock.store")

POOL_TIMEOUT = 30.0  # waiting for a pooled connection before StoreError
CONNECT_TIMEOUT = 5  # a new connection: fail fast, with the reason
# Sessions of their own (LISTEN, liveness token): the server notices a vanished client
# within about 30 s (not the system's default of two hours), and frees its token.
KEEPALIVES = " -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=4"
_POLL = hasattr(select, "poll")


def reason(exc: BaseException) -> str:
    """The first line of an error, as the store's messages quote it."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class _PoolLogFilter(logging.Filter):
    """Keeps psycopg_pool's warnings about Tock's own pools out of the log: it writes one
    per failed reconnection attempt and per discarded connection, while the store says
    once that it lost the connection and once that it is back. Records about other
    pools pass, and so do Tock's when the ``tock.store`` logger is at DEBUG."""

    def __init__(self) -> None:
        super().__init__()
        self.pools: weakref.WeakSet[ConnectionPool[Any]] = weakref.WeakSet()
        self.conns: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or log.isEnabledFor(logging.DEBUG):
            return True
        names = {p.name for p in list(self.pools)}
        if any(record.threadName and record.threadName.startswith(f"{n}-") for n in names):
            return False  # the pool's own threads (reconnection attempts)
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        for arg in args:
            if isinstance(arg, str) and arg in names:
                return False
            if isinstance(arg, psycopg.Connection) and arg in self.conns:
                return False
        return True


_POOL_LOG_FILTER = _PoolLogFilter()


@functools.cache
def _filter_pool_logs() -> None:
    """Put the filter on psycopg_pool's logger, once, when this process opens its first
    pool: importing Tock changes no logging of the process."""
    logging.getLogger("psycopg.pool").addFilter(_POOL_LOG_FILTER)


def _ended_by_server(conn: psycopg.Connection[Any]) -> BaseException | None:
    """Why an idle pooled connection is dead, or None if it is not known to be. Between
    two statements the server sends nothing unless it ends the session (a FATAL error,
    then end of file); so a readable socket is a suspicion, which an empty statement
    (one round trip) settles: a notice or a parameter change is read and forgotten."""
    if conn.closed:
        return psycopg.OperationalError("the connection is closed")
    fd = conn.pgconn.socket
    if _POLL:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        spoke = bool(poller.poll(0))
    else:  # Windows: no poll(), and select() takes any socket there
        spoke = bool(select.select([fd], [], [], 0)[0])
    if not spoke:
        return None
    try:
        conn.execute("")
    except psycopg.Error as exc:
        return exc
    return None


class Sessions:
    """A store's connections to its database, and its outage state (see the module)."""

    def __init__(self, conninfo_url: str, url: str) -> None:
        self.url = url  # with any password removed, for messages
        # Sessions in UTC: timestamptz comes back as datetime(..., tzinfo=UTC), exactly
        # as the SQLite store builds them.
        try:
            params = psycopg.conninfo.conninfo_to_dict(conninfo_url)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(f"invalid PostgreSQL URL {url!r}: {reason(exc)}") from None
        options = str(params.get("options") or "")
        params["options"] = (options + " -c TimeZone=UTC").strip()
        name = str(params.setdefault("application_name", "tock"))
        self.conninfo = psycopg.conninfo.make_conninfo("", **params)
        # Named after the URL's application_name (default "tock"), so `pg_stat_activity`
        # tells the LISTEN and liveness sessions apart, and an operator can find them all.
        own = {"options": f"{params['options']}{KEEPALIVES}"}
        self._listen_conninfo = psycopg.conninfo.make_conninfo(
            self.conninfo, application_name=f"{name}-listen", **own
        )
        self._token_conninfo = psycopg.conninfo.make_conninfo(
            self.conninfo, application_name=f"{name}-worker", **own
        )
        self._leader_conninfo = psycopg.conninfo.make_conninfo(
            self.conninfo, application_name=f"{name}-leader", **own
        )
        self._pid = os.getpid()
        self._pool: ConnectionPool[psycopg.Connection[TupleRow]] | None = None
        self._pool_lock = threading.Lock()
        # When each connection of this store was opened: its failures date from then.
        self._born: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self._state_lock = threading.Lock()
        self.offline = False
        self._lost_at = float("-inf")  # monotonic time the latest outage was declared
        self.back_at: float | None = None  # ... and the time it ended

    # -- the pool ------------------------------------------------------------------

    @property
    def opened(self) -> bool:
        """Whether this process has opened the pool (a statement has run)."""
        return self._pool is not None and os.getpid() == self._pid

    def pool(self) -> ConnectionPool[psycopg.Connection[TupleRow]]:
        if os.getpid() != self._pid:
            # docs/design.md: a connection is never carried across a fork (nor a pool's threads).
            self._pid = os.getpid()
            self._pool = None
            self._born = weakref.WeakKeyDictionary()
        pool = self._pool
        if pool is None:
            with self._pool_lock:
                pool = self._pool
                if pool is None:
                    _filter_pool_logs()
                    pool = ConnectionPool(
                        self.conninfo,
                        min_size=1,
                        max_size=10,
                        kwargs={"autocommit": True},
                        timeout=POOL_TIMEOUT,
                        name="tock-pool",
                        configure=self._configure,
                        open=True,
                    )
                    _POOL_LOG_FILTER.pools.add(pool)
                    self._pool = pool
        return pool

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """A new pooled connection: its birth dates its failures (see ``lost``)."""
        self._born[conn] = time.monotonic()
        _POOL_LOG_FILTER.conns.add(conn)

    def born(self, conn: psycopg.Connection[Any]) -> float:
        return self._born.get(conn, float("-inf"))

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A pooled connection for the block; a lost session is ConnectionLost."""
        try:
            pool = self.pool()
            conn = self._checkout(pool)
            try:
                with conn:
                    try:
                        yield conn
                    except psycopg.Error as exc:
                        # Any error that left the session broken (an OperationalError, or
                        # the server ending a session idle in a transaction) is a lost
                        # session.
                        if not conn.broken:
                            raise
                        # Declared before the pool replaces it: the new one is born after.
                        raise self.lost(self.born(conn), exc) from None
                    if self.offline:
                        self.back(self.born(conn))
            finally:
                pool.putconn(conn)
        except PoolTimeout:
            if self.offline:
                raise ConnectionLost(f"lost the connection to {self.url}; reconnecting") from None
            raise StoreError(f"cannot connect to {self.url}: {self._why_unreachable()}") from None

    def _checkout(
        self, pool: ConnectionPool[psycopg.Connection[TupleRow]]
    ) -> psycopg.Connection[TupleRow]:
        """A pooled connection whose session the server has not ended (see the module).
        Costs one poll of the socket (no round trip) unless the server spoke."""
        for _ in range(pool.max_size + 1):
            conn = pool.getconn()
            exc = _ended_by_server(conn)
            if exc is None:
                return conn
            self.lost(self.born(conn), exc)
            conn.close()
            pool.putconn(conn)  # discarded; the pool opens a new one
        return pool.getconn()  # the server keeps ending sessions: let the statement say

    def _why_unreachable(self) -> str:
        try:
            psycopg.connect(self.conninfo, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.Error as exc:
            return reason(exc)
        return f"no free connection in the pool after {POOL_TIMEOUT:g} s"

    # -- sessions of their own -------------------------------------------------------

    @contextlib.contextmanager
    def direct(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A connection outside the pool, for one-off work (schema checks, migrations)."""
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.url}: {reason(exc)}") from None
        with conn:
            yield conn

    def listen_connect(self) -> psycopg.Connection[TupleRow]:
        """A connection of its own for LISTEN (not the pool's), with keepalives."""
        return psycopg.connect(
            self._listen_conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )

    def token_connect(self, born: float) -> psycopg.Connection[TupleRow]:
        """A connection of its own for a worker's liveness token, with keepalives;
        ``born``: when the caller started opening it (its failures date from then)."""
        conn = psycopg.connect(
            self._token_conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )
        self._born[conn] = born
        return conn

    def leader_connect(self, born: float) -> psycopg.Connection[TupleRow]:
        """A connection of its own for the leader's lock (held, or waited for by a
        follower), with keepalives: named ``<application_name>-leader``."""
        conn = psycopg.connect(
            self._leader_conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        )
        self._born[conn] = born
        return conn

    # -- outages ---------------------------------------------------------------------

    def lost(self, born: float | None, exc: BaseException) -> ConnectionLost:
        """Says once per outage, for every connection of this store, that the server is
        gone; returns the error to raise. ``born``: when the failed connection was opened
        (``None``: a new connection did not open). A connection older than the outage
        declared last fails as part of it: the sessions of a server that restarts (or
        whose backends are terminated) do not all fail at the same instant, and one that
        answered a moment after the first failure may still fail next."""
        why = reason(exc)
        with self._state_lock:
            new = not self.offline and (born is None or born >= self._lost_at)
            if new:
                self.offline = True
                self._lost_at = time.monotonic()
        if new:
            log.warning("lost the connection to PostgreSQL at %s (%s); reconnecting", self.url, why)
            if self.opened:
                # The other idle connections most likely went with it: replace them now,
                # not one failed operation at a time.
                with contextlib.suppress(Exception):
                    self.pool().check()
        return ConnectionLost(f"lost the connection to {self.url} ({why}); reconnecting")

    def back(self, born: float) -> None:
        """An operation worked again after ``lost`` on a connection opened since (born
        then): say so, once."""
        with self._state_lock:
            if not self.offline or born < self._lost_at:
                return
            self.offline = False
            self.back_at = time.monotonic()
        log.info("reconnected to PostgreSQL at %s", self.url)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and os.getpid() == self._pid:
            pool.close()
