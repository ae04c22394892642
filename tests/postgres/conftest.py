"""PostgreSQL only: a fresh schema per test, dropped after it (see ``pg_admin``)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from tock import FakeClock, Tock

PG_URL = os.environ.get("TOCK_TEST_POSTGRES_URL")


def with_schema(schema: str) -> str:
    assert PG_URL
    return f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"


@pytest.fixture
def new_schema(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Names fresh schemas for this test; every one is dropped after it."""
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set TOCK_TEST_POSTGRES_URL")
        pytest.skip("set TOCK_TEST_POSTGRES_URL")
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
        assert PG_URL
        conn = psycopg.connect(PG_URL, **kwargs)
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()
