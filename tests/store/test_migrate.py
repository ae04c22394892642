"""Schema: migrate is idempotent; a fresh store works without an explicit migrate."""

from __future__ import annotations

from tock import Tock
from tock.store import Store


def add(x: int, y: int) -> int:
    return x + y


def test_migrate_is_idempotent(app: Tock, store: Store) -> None:
    app.migrate()
    assert app.migrate() == []
    assert app.migrate() == []
    version, latest = store.schema_version()
    assert version == latest >= 1


def test_migrate_keeps_jobs(app: Tock, store: Store) -> None:
    job = app.task(add).enqueue(1, 2)
    assert app.migrate() == []
    assert store.job_get(job.id).args == [1, 2]


def test_store_url_has_no_password(app: Tock, store: Store) -> None:
    assert store.url
    assert "secret" not in store.url
    assert store.supports_listen_notify in (True, False)
