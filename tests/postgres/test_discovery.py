"""How the suite finds its PostgreSQL server (``tests/conftest.py``): run in a pytest of
its own, as a new user runs the README's command, with $TOCK_TEST_POSTGRES_URL unset or
pointing at a port where nothing listens. No case errors: the ``[postgres]`` cases run
against the local server when it answers, and skip with the reason when there is none
(in CI they fail instead), and the summary's header says which."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL = "postgresql://postgres@127.0.0.1:5432/test"
CLOSED = "postgresql://postgres@127.0.0.1:1/test"  # nothing listens on port 1
# The module whose [postgres] cases set up the server's admin connection before the
# skip, and a module of PostgreSQL's own cases.
FILES = ["tests/crash/test_connection_loss.py", "tests/postgres/test_server_restart.py"]

pytestmark = pytest.mark.slow


def run_pytest(url: str | None, *args: str, ci: bool = False) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TOCK_TEST_POSTGRES_URL", "CI")}
    if url is not None:
        env["TOCK_TEST_POSTGRES_URL"] = url
    if ci:
        env["CI"] = "true"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def local_server_answers() -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        psycopg.connect(LOCAL, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


def test_no_server_skips_every_postgres_case_with_the_reason() -> None:
    code, out = run_pytest(CLOSED, *FILES)
    assert code == 0, out
    header = (
        "PostgreSQL: not found: [postgres] cases skip: none answers at "
        f"{CLOSED} (TOCK_TEST_POSTGRES_URL): Connection refused"
    )
    assert header in out, out
    assert " error" not in out and "passed" not in out, out
    assert re.search(r"=+ \d+ skipped in ", out), out  # skipped only
    assert f"PostgreSQL not found: none answers at {CLOSED}" in out, out


def test_no_server_in_ci_is_a_failure() -> None:
    code, out = run_pytest(CLOSED, FILES[1], ci=True)
    assert code == 1, out
    assert "PostgreSQL: not found: [postgres] cases fail (CI is set)" in out, out
    assert "CI must run the PostgreSQL tests: none answers at" in out, out
    assert "skipped" not in out, out


def test_without_the_variable_the_local_server_is_found() -> None:
    """With nothing set, the local server runs the cases when it answers (this
    machine's usual case), else they skip saying to set the variable. The slow module
    only sets its cases up (``--setup-only``): its workers are not started."""
    answers = local_server_answers()
    code, out = run_pytest(None, FILES[1])
    assert code == 0, out
    assert " error" not in out, out
    code_setup, out_setup = run_pytest(None, "--setup-only", FILES[0])
    assert code_setup == 0, out_setup
    assert " error" not in out_setup, out_setup
    if answers:
        assert f"PostgreSQL: {LOCAL} (found locally)" in out, out
        assert re.search(r"=+ \d+ passed in ", out), out  # passed only
        assert "skipped" not in out_setup, out_setup
    else:
        assert "PostgreSQL: not found: [postgres] cases skip: none answers at" in out, out
        assert "; set TOCK_TEST_POSTGRES_URL" in out, out
        assert re.search(r"=+ \d+ skipped in ", out), out
