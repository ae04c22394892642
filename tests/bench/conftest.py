"""The comparison's run.py, loaded as a module (it is a script under bench/compare)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "bench" / "compare" / "run.py"


@pytest.fixture(scope="session")
def run() -> ModuleType:
    """bench/compare/run.py; loading it puts bench/compare on sys.path (``common``)."""
    spec = importlib.util.spec_from_file_location("compare_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module
