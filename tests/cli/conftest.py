"""The ``project`` fixture: an app module in ``tmp_path``, the current directory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import APP_MODULE, Project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOCK_URL", f"sqlite:///{tmp_path / 'tock.db'}")
    monkeypatch.delenv("TOCK_APP", raising=False)
    # Wide enough that rich never wraps a row; tests look for whole values.
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    # The CLI puts the current directory first on sys.path: undo that after the test.
    monkeypatch.setattr(sys, "path", list(sys.path))
    p = Project(tmp_path)
    p.write_module("cliapp", APP_MODULE)
    try:
        yield p
    finally:
        p.close()
