"""The project's Tock app, built from Django's settings (docs/django.md).

``TOCK = {"DATABASE": "default", "SCHEMA": "tock"}`` (both optional) names the Django
database alias Tock lives in. The app's store opens its own connections from that
alias's settings (workers, the CLI); an enqueue joins the Django connection of that
alias in the thread that makes it, so a job enqueued inside ``transaction.atomic()``
exists if and only if the block commits (docs/design.md: caller connections).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.signals import connection_created

from tock.app import Tock
from tock.errors import ConfigurationError
from tock.jobs import Job, NewJob
from tock.store import Store, resolve_url
from tock.tasks import Task

__all__ = ["DjangoTock", "get_app", "store_url", "tock_settings"]

#: the keys of ``settings.TOCK``
SETTINGS = {"DATABASE", "SCHEMA"}

#: libpq parameters a Django PostgreSQL alias's OPTIONS may hold that a worker's own
#: connections need too (the rest of OPTIONS is Django's own: pool, isolation_level…)
_LIBPQ_OPTIONS = (
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslpassword",
    "sslcrl",
    "connect_timeout",
    "application_name",
    "options",
    "target_session_attrs",
    "service",
    "passfile",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
)


def tock_settings() -> dict[str, str]:
    """``settings.TOCK`` checked, with its defaults filled in."""
    given = getattr(settings, "TOCK", None) or {}
    if not isinstance(given, Mapping):
        raise ImproperlyConfigured(f"settings.TOCK must be a dict, not {type(given).__name__}")
    unknown = set(given) - SETTINGS
    if unknown:
        raise ImproperlyConfigured(
            f"settings.TOCK has unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"it takes {', '.join(sorted(SETTINGS))}"
        )
    alias = given.get("DATABASE", DEFAULT_DB_ALIAS)
    schema = given.get("SCHEMA", "tock")
    for key, value in (("DATABASE", alias), ("SCHEMA", schema)):
        if not isinstance(value, str) or not value:
            raise ImproperlyConfigured(f"settings.TOCK[{key!r}] must be a non-empty string")
    if alias not in settings.DATABASES:
        raise ImproperlyConfigured(
            f"settings.TOCK['DATABASE'] is {alias!r}, which settings.DATABASES does not "
            f"define (it has {', '.join(sorted(settings.DATABASES)) or 'none'})"
        )
    return {"DATABASE": alias, "SCHEMA": schema}


def store_url(alias: str, schema: str = "tock") -> str:
    """The Tock URL of a Django database alias: the same database, no second set of
    credentials (SQLite and PostgreSQL)."""
    db = connections[alias].settings_dict
    engine = db.get("ENGINE", "")
    vendor = connections[alias].vendor
    if vendor == "sqlite":
        name = str(db.get("NAME") or "")
        if not name or name == ":memory:" or "mode=memory" in name:
            # Django's test runner gives SQLite an in-memory test database unless
            # TEST NAME says otherwise.
            raise ImproperlyConfigured(
                f"database {alias!r} is an in-memory SQLite database ({name or 'no NAME'}); "
                "Tock's workers are other processes, so it needs a file: set NAME to a "
                f"path, and for tests DATABASES[{alias!r}]['TEST'] = "
                "{'NAME': <a file path>} (docs/django.md: Testing)"
            )
        if name.startswith("file:"):
            raise ImproperlyConfigured(
                f"database {alias!r}: Tock takes a plain file path as NAME, not a {name!r} URI"
            )
        return f"sqlite:///{Path(name).resolve()}"  # an absolute path: four slashes
    if vendor == "postgresql":
        auth = ""
        if db.get("USER"):
            auth = quote(str(db["USER"]), safe="")
            if db.get("PASSWORD"):
                auth += ":" + quote(str(db["PASSWORD"]), safe="")
            auth += "@"
        params: dict[str, str] = {}
        host = str(db.get("HOST") or "")
        if host.startswith("/"):  # a socket directory
            params["host"], host = host, ""
        netloc = auth + (f"[{host}]" if ":" in host else host)
        if db.get("PORT"):
            netloc += f":{db['PORT']}"
        options = db.get("OPTIONS") or {}
        params.update({k: str(options[k]) for k in _LIBPQ_OPTIONS if k in options})
        params["schema"] = schema
        dbname = quote(str(db.get("NAME") or ""), safe="")
        return f"postgresql://{netloc}/{dbname}?{urlencode(params, quote_via=quote)}"
    raise ImproperlyConfigured(
        f"database {alias!r} uses {engine!r}; Tock works with SQLite and PostgreSQL "
        "(django.db.backends.sqlite3, django.db.backends.postgresql)"
    )


def _database_key(alias: str) -> tuple[object, ...]:
    """What :func:`store_url` builds the URL of ``alias`` from, as it is now."""
    db = connections[alias].settings_dict
    options = db.get("OPTIONS") or {}
    return (
        *(db.get(key) for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")),
        *(options.get(key) for key in _LIBPQ_OPTIONS),
    )


def raw_connection(alias: str) -> Any:
    """The DB-API connection under Django's connection of ``alias``, in this thread."""
    wrapper = connections[alias]
    wrapper.ensure_connection()
    return wrapper.connection


class DjangoTock(Tock):
    """The Tock app of a Django project: its store is the database of one Django alias,
    and an enqueue joins Django's connection (and transaction) of that alias."""

    def __init__(self, alias: str | None = None, schema: str | None = None) -> None:
        """``alias`` and ``schema`` default to ``settings.TOCK``'s."""
        conf = tock_settings()
        self._alias = alias or conf["DATABASE"]
        self._schema = schema or conf["SCHEMA"]
        super().__init__(store_url(self._alias, self._schema))
        # Django tasks (the tasks framework's) by module path: (the Django task, the Tock
        # task that runs it); see backend.py
        self._django_tasks: dict[str, tuple[Any, Task[Any, Any]]] = {}
        self._stale = False
        self._database = _database_key(self._alias)

    def reconfigure(self) -> None:
        """Follow ``settings.TOCK`` and ``settings.DATABASES`` again, at the next use
        (Django's ``override_settings`` in a project's tests): the store opens anew; the
        tasks stay registered."""
        self._stale = True

    def _follow_settings(self) -> None:
        # Django's test runner points the alias at its test database by changing the
        # connection's settings_dict, which sends no signal: compare what the URL is made
        # of at each use (a few dict reads), and reopen the store when it changed.
        if not self._stale and _database_key(self._alias) == self._database:
            return
        conf = tock_settings() if self._stale else {"DATABASE": self._alias, "SCHEMA": self._schema}
        url = resolve_url(store_url(conf["DATABASE"], conf["SCHEMA"]))
        with self._store_lock:
            self._alias, self._schema, self.url = conf["DATABASE"], conf["SCHEMA"], url
            self._database = _database_key(self._alias)
            store, self._store = self._store, None
            self._stale = False
        if store is not None:
            store.close()

    @property
    def alias(self) -> str:
        """The Django database alias Tock's tables live in."""
        self._follow_settings()
        return self._alias

    @property
    def schema(self) -> str:
        """The PostgreSQL schema of Tock's tables (unused on SQLite)."""
        self._follow_settings()
        return self._schema

    @property
    def store(self) -> Store:
        self._follow_settings()
        return super().store

    def __repr__(self) -> str:
        return f"<DjangoTock database={self.alias!r}>"

    def insert_jobs(self, jobs: Sequence[NewJob], *, connection: object | None = None) -> list[Job]:
        """As :meth:`Tock.insert_jobs`; without ``connection``, on Django's connection of
        this alias in this thread: inside ``atomic()`` the jobs commit or roll back with
        the block, outside one they commit at once. A Django connection
        (``django.db.connections[alias]``) may be given too."""
        self._follow_settings()
        if connection is None:
            connection = raw_connection(self.alias)
        elif hasattr(connection, "ensure_connection") and hasattr(connection, "settings_dict"):
            wrapper: Any = connection  # Django's connection: the DB-API one under it
            wrapper.ensure_connection()
            connection = wrapper.connection
        return super().insert_jobs(jobs, connection=connection)

    def worker_tasks(self) -> dict[str, Task[Any, Any]]:
        """The tasks, each job run between two ``close_old_connections()``, as Django
        runs a request: connections past ``CONN_MAX_AGE``, or broken, are closed before
        and after it (a worker may run for weeks; the database may restart)."""
        from tock.contrib.django.backend import register_known

        register_known(self)
        tasks = super().worker_tasks()
        return {
            # a Django task's runner has the request cycle already (backend.py)
            name: task if name in self._django_tasks else _with_request_cycle(task)
            for name, task in tasks.items()
        }

    def _schedule_task(self, task: object) -> Task[Any, Any]:
        """A Django task (the tasks framework's) is scheduled as the Tock task that runs
        it: ``app.schedule("nightly", task=send_digest, cron="0 2 * * *")``."""
        if not isinstance(task, Task) and hasattr(task, "module_path"):
            from tock.contrib.django.backend import TockBackend

            backend = task.get_backend()  # type: ignore[attr-defined]
            if not isinstance(backend, TockBackend):
                raise ConfigurationError(
                    f"task {task.module_path!r} uses the tasks backend "
                    f"{type(backend).__name__}, not TockBackend: Tock cannot run it"
                )
            return backend._register(task)
        return super()._schedule_task(task)


def _with_request_cycle(task: Task[Any, Any]) -> Task[Any, Any]:
    if task.is_async:
        # An async task reaches the ORM through sync_to_async, in threads of asgiref's
        # own; nothing is held by the thread running the coroutine.
        return task
    fn = task.fn

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return Task(task.app, run, task.name, task.options)


_app: DjangoTock | None = None
_app_lock = threading.Lock()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    """``override_settings(TOCK=…)`` in a project's tests: the app follows."""
    if setting in ("TOCK", "DATABASES") and _app is not None:
        _app.reconfigure()


setting_changed.connect(_settings_changed)


def _connected(*, connection: Any, **kwargs: Any) -> None:
    """Django connects to no database in particular to create or drop one (its test
    runner: PostgreSQL's ``DROP DATABASE`` fails while any session is on it). Tock's own
    connections go first; the store opens again at its next use, on whatever database
    the alias names then."""
    if connection.alias == NO_DB_ALIAS and _app is not None:
        _app.close()


connection_created.connect(_connected)


def get_app() -> DjangoTock:
    """The project's Tock app (``from tock.contrib.django import app``), made once from
    ``settings.TOCK``."""
    global _app
    if _app is None:
        with _app_lock:
            if _app is None:
                _app = DjangoTock()
    return _app
