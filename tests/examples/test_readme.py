"""The README's first command, exactly as README.md prints it, in a fresh clone of the
repository (its HEAD commit: what a new user gets), as a new user runs it: a venv, an
install from the package index, the quickstart. It needs the network to reach PyPI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_command(n: int) -> str:
    """The README's ``n``th ```sh block (from 1): one command line."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", (ROOT / "README.md").read_text(), re.M | re.S)
    assert len(blocks) >= n, f"README.md has {len(blocks)} sh blocks"
    command = blocks[n - 1].strip()
    assert command and "\n" not in command, f"README.md's sh block {n} is not one line"
    return command


def fresh_clone(dest: Path) -> Path:
    """A clone of this repository at its HEAD commit (work not committed is not in it)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if head.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout")
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    subprocess.run(
        ["git", "-C", str(dest), "checkout", "--quiet", "--detach", head.stdout.strip()],
        check=True,
    )
    return dest


@pytest.mark.slow
def test_the_readmes_first_command_runs_in_a_fresh_clone(tmp_path: Path) -> None:
    command = readme_command(1)
    clone = fresh_clone(tmp_path / "tock")
    # As a new user's shell runs it: no venv of this suite's in the way.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"{command}\n{out}{proc.stderr}"
    # What the quickstart prints (tests/examples/test_quickstart.py checks it in full).
    assert "immediate       succeeded -> 'Hello, world!'" in out, out
    assert "fails for good  failed (builtins.FileNotFoundError: no such report: q3.pdf)" in out
    assert out.rstrip().endswith("All jobs finished as expected."), out
    assert (clone / ".venv").is_dir() and (clone / "tock.db").exists()
