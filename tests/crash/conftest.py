"""Real worker processes on one store, for the crash tests: every test runs on each store
kind (``store_kind`` of ``tests/conftest.py``: a fresh PostgreSQL schema per test,
migrated before the workers start and dropped after; with ``CI`` set and no PostgreSQL
server found, the PostgreSQL variants fail instead of skipping).

``cluster`` starts workers (their output goes to files in ``tmp_path``, added to the
report of a failed test) and kills every process it started when the test ends, however
it ends.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from conftest import store_url

from .cluster import Cluster

CLUSTER = pytest.StashKey[Cluster]()


@pytest.fixture
def cluster(request: pytest.FixtureRequest, store_kind: str, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, store_kind, store_url(store_kind, tmp_path))
    request.node.stash[CLUSTER] = c
    try:
        yield c
    finally:
        c.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    c = item.stash.get(CLUSTER, None)
    if c is not None and report.failed:
        for title, text in c.logs():
            report.sections.append((title, text[-20_000:]))
    return report
