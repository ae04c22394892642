"""Shared fixtures. Every store runs the same suite (``store`` is parametrised by name);
time comes from a FakeClock passed to the app, which hands it to the store as ``now``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tock import FakeClock, Tock
from tock.store import Store

PG_URL = os.environ.get("TOCK_TEST_POSTGRES_URL")
STORES = ["sqlite"]  # PostgreSQL joins with its own store


def store_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'tock.db'}"
    raise AssertionError(kind)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "postgres" and not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set TOCK_TEST_POSTGRES_URL")
        pytest.skip("set TOCK_TEST_POSTGRES_URL")
    return kind


@pytest.fixture
def app(store_kind: str, tmp_path: Path, clock: FakeClock) -> Iterator[Tock]:
    """A Tock app on a fresh store of each kind, on the fake clock."""
    tock = Tock(store_url(store_kind, tmp_path), clock=clock)
    yield tock
    tock.close()


@pytest.fixture
def store(app: Tock) -> Store:
    return app.store
