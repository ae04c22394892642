"""PostgreSQL only: a fresh schema per test, dropped after it (see ``pg_admin``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from conftest import require_postgres

from tock import FakeClock, Tock

if TYPE_CHECKING:
    import psycopg


def with_schema(schema: str) -> str:
    url = require_postgres()
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@pytest.fixture
def new_schema(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Names fresh schemas for this test; every one is dropped after it."""
    require_postgres()
    from psycopg import sql

    admin: psycopg.Connection = request.getfixturevalue("pg_admin")
    names: list[str] = []

    def new() -> str:
        names.append(f"t_{secrets.token_hex(6)}")
        return names[-1]

    yield new
    for name in names:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def make_app(new_schema: Callable[[], str], clock: FakeClock) -> Iterator[Callable[..., Tock]]:
    """``make_app()`` a migrated app on a fresh schema; ``make_app(url)`` another app on
    an existing one (as another process would open it)."""
    apps: list[Tock] = []

    def make(url: str | None = None, *, migrate: bool = True) -> Tock:
        app = Tock(url or with_schema(new_schema()), clock=clock)
        apps.append(app)
        if url is None and migrate:
            app.migrate()
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def raw() -> Iterator[Callable[..., psycopg.Connection]]:
    """Plain psycopg connections to the test database, closed after the test."""
    conns: list[psycopg.Connection] = []

    def connect(**kwargs: object) -> psycopg.Connection:
        import psycopg

        conn = psycopg.connect(require_postgres(), **kwargs)
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()
