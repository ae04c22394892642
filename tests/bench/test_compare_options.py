"""The comparison's own options (bench/compare/run.py) refuse bad input before measuring
anything, and --tock-at measures the code of the commit it names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT, RUN


def refused(*argv: str) -> str:
    """run.py's message for options it refuses (it must exit before measuring)."""
    done = subprocess.run(
        [sys.executable, str(RUN), "--tock-only", "--quick", "--no-docs", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "[run" not in done.stdout, done.stdout
    return done.stderr.strip().splitlines()[-1]


def test_an_unknown_workload_is_named(run: ModuleType) -> None:
    assert run.workload_cells("drain,latency") == ["drain1", "drain2", "latency"]
    with pytest.raises(SystemExit, match="unknown workload 'drains'"):
        run.workload_cells("drains")
    assert "unknown workload 'bogus'" in refused("--workloads", "bogus")


def test_again_goes_with_resume() -> None:
    assert "--again goes with --resume" in refused("--again", "latency")
    assert "unknown workload 'bogus'" in refused("--resume", "--again", "bogus")


def test_tock_at_refuses_what_is_not_a_commit(run: ModuleType) -> None:
    with pytest.raises(SystemExit, match="'no-such-rev' is not a commit"):
        run.tock_code("no-such-rev", sys.executable)
    assert "is not a commit" in refused("--tock-at", "no-such-rev")


def test_tock_at_takes_the_commits_code_and_the_drivers_import_it(run: ModuleType) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    code = run.tock_code("HEAD", sys.executable)
    assert code.src.parent.parent == run.TREES
    assert (code.src / "tock" / "__init__.py").is_file()
    assert code.env["PYTHONPATH"].split(os.pathsep)[0] == str(code.src)
    checkout = run.tock_code(None, sys.executable)
    assert checkout.commit.rstrip("+") == code.commit
    if not checkout.commit.endswith("+"):  # src/tock as committed: the same code
        assert checkout.digest() == code.digest()


def test_again_drops_the_saved_cells_of_those_workloads(run: ModuleType, tmp_path: Path) -> None:
    plan = {"runs": 1, "sizes": {}, "cells": [], "tock": "x"}
    path = tmp_path / "progress.json"
    saved = run.Progress(path, plan, resume=False)
    for cell in ("drain1", "latency"):
        saved.add(0, cell, "tock-sqlite", {"value": 1.0}, 1.0)
    again = run.Progress(path, plan, resume=True, again=["latency"])
    assert again.get(0, "drain1", "tock-sqlite") == {"value": 1.0}
    assert again.get(0, "latency", "tock-sqlite") is None
    other = dict(plan, tock="y")  # other code: refused
    with pytest.raises(SystemExit, match="other Tock code"):
        run.Progress(path, other, resume=True)
    assert json.loads(path.read_text())["plan"] == plan
