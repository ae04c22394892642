"""The application object: the task registry, enqueueing and the facts of ``tock status``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar, overload

from tock import _validate as v
from tock.clock import Clock, SystemClock
from tock.errors import ConfigurationError
from tock.jobs import Job, JobId
from tock.store import Store, open_store, redact_url, resolve_url
from tock.tasks import Duration, Task, TaskOptions

__all__ = ["Tock"]

F = TypeVar("F", bound=Callable[..., Any])


class Tock:
    """A Tock application: ``app = Tock()`` uses ``$TOCK_URL``, else ``./tock.db``.

    The store opens on first use, so creating the app at import time costs nothing.
    """

    def __init__(self, url: str | None = None, *, clock: Clock | None = None) -> None:
        self.url = resolve_url(url)
        self.clock: Clock = clock or SystemClock()
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._tasks: dict[str, Task[Any, Any]] = {}
        if self.url.split(":", 1)[0].lower() == "sqlite":
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
        if self._store is not None:
            self._store.close()
            self._store = None

    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migrations applied."""
        return self.store.migrate()

    # -- tasks -----------------------------------------------------------------

    @property
    def tasks(self) -> Mapping[str, Task[Any, Any]]:
        return dict(self._tasks)

    @overload
    def task(self, fn: F, /) -> Task[Any, Any]: ...
    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        retries: int = 0,
        retry_backoff: Duration = 1.0,
        retry_on: type[BaseException] | Iterable[type[BaseException]] = (Exception,),
        timeout: Duration | None = None,
        at_most_once: bool = False,
        takes_context: bool = False,
        max_rescues: int = 5,
    ) -> Callable[[F], Task[Any, Any]]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        retries: int = 0,
        retry_backoff: Duration = 1.0,
        retry_on: type[BaseException] | Iterable[type[BaseException]] = (Exception,),
        timeout: Duration | None = None,
        at_most_once: bool = False,
        takes_context: bool = False,
        max_rescues: int = 5,
    ) -> Task[Any, Any] | Callable[[F], Task[Any, Any]]:
        """Register a function (sync or ``async``) as a task, by name."""
        options = TaskOptions.build(
            queue=queue,
            priority=priority,
            retries=retries,
            retry_backoff=retry_backoff,
            retry_on=retry_on,
            timeout=timeout,
            at_most_once=at_most_once,
            takes_context=takes_context,
            max_rescues=max_rescues,
        )

        def register(f: Callable[..., Any]) -> Task[Any, Any]:
            if not callable(f):
                raise ConfigurationError(f"@app.task decorates a function, not {f!r}")
            task_name = name if name is not None else _default_name(f)
            v.check_name("task", task_name)
            existing = self._tasks.get(task_name)
            if existing is not None and existing.fn is not f:
                raise ConfigurationError(f"a task named {task_name!r} is already registered")
            task: Task[Any, Any] = Task(self, f, task_name, options)
            self._tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    # -- jobs ------------------------------------------------------------------

    def job(self, job_id: JobId) -> Job:
        """A handle on an existing job (``JobNotFound`` if there is none)."""
        return Job(job_id, self.store, self.clock).refresh()

    def health(self) -> dict[str, Any]:
        """The facts ``tock status`` shows: store, schema, workers, queues."""
        store = self.store
        now = store.db_now(now=self.clock.db_now())
        version, latest = store.schema_version()
        workers = [
            {
                "id": w.id,
                "hostname": w.hostname,
                "pid": w.pid,
                "queues": list(w.queues),
                "concurrency": w.concurrency,
                "running": w.running,
                "started_at": w.started_at.isoformat(),
                "heartbeat_age": max(0.0, (now - w.heartbeat_at).total_seconds()),
            }
            for w in store.worker_list()
        ]
        queues = {}
        for s in store.job_stats(now=self.clock.db_now()):
            queues[s.queue] = {
                **{str(k): n for k, n in s.counts.items()},
                "ready": s.ready,
                "oldest_ready_age": (
                    None
                    if s.oldest_ready_at is None
                    else max(0.0, (now - s.oldest_ready_at) / timedelta(seconds=1))
                ),
            }
        return {
            "store": store.url,
            "schema": {"version": version, "latest": latest},
            "now": now.isoformat(),
            "workers": workers,
            "queues": queues,
        }


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
