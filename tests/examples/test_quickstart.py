"""The README's first command runs examples/quickstart.py: it must work as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quickstart_runs_every_example_job_and_exits_0(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        cwd=tmp_path,  # it uses ./tock.db
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "All jobs finished as expected." in out
    # Each kind of example job shows its transitions.
    assert "immediate       succeeded -> 'Hello, world!'" in out
    assert "delayed 2 s     pending (due in" in out
    assert "retries         pending (retry in" in out
    assert "order 1042 paid on attempt 3" in out
    assert "async           succeeded -> {'url': 'https://example.com', 'status': 200}" in out
    assert "fails for good  failed (builtins.FileNotFoundError: no such report: q3.pdf)" in out
    assert "FileNotFoundError: no such report: q3.pdf" in out.split("keeps its traceback")[1]
    assert (tmp_path / "tock.db").exists()
    # Its closing hint is a command that runs as printed, from where it ran.
    hint = out.split("to see it again:")[1].splitlines()[1].strip()
    shown = subprocess.run(
        ["bash", "-c", hint], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, hint + shown.stderr
    assert "status:" in shown.stdout and "failed" in shown.stdout
    assert "FileNotFoundError: no such report: q3.pdf" in shown.stdout
