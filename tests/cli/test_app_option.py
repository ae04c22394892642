"""``--app`` / ``$TOCK_APP``, and Tock's errors shown as one line."""

from __future__ import annotations

import os
import sqlite3
import sys

import pytest
from conftest import read_only

from .helpers import Project, assert_error, run_cli


def test_help_and_version_need_no_app(project: Project) -> None:
    result = project.invoke("--help", app=None)
    assert result.exit_code == 0
    for command in ("migrate", "worker", "status", "jobs"):
        assert command in result.stdout
    assert "TOCK_APP" in result.stdout
    result = project.invoke("jobs", "--help", app=None)
    assert result.exit_code == 0
    assert "retry" in result.stdout
    result = project.invoke("--version", app=None)
    assert result.exit_code == 0
    assert "tock" in result.stdout


def test_missing_app_says_how_to_give_one(project: Project) -> None:
    result = project.invoke("status", app=None)
    assert_error(result, "--app", "TOCK_APP")


def test_app_from_environment(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCK_APP", "cliapp:app")
    result = project.invoke("migrate", app=None)
    assert result.exit_code == 0, result.output
    assert "0001_initial" in result.stdout


def test_option_beats_environment(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCK_APP", "nowhere:app")
    result = project.invoke("migrate")
    assert result.exit_code == 0, result.output


def test_current_directory_comes_first_on_sys_path(project: Project) -> None:
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", cwd)]
    result = project.invoke("migrate")
    assert result.exit_code == 0, result.output
    assert sys.path[0] == cwd


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("cliapp", ["not of the form module:attribute"]),
        ("cliapp:", ["not of the form module:attribute"]),
        (":app", ["not of the form module:attribute"]),
        ("cli app:app", ["not of the form module:attribute"]),
        ("cliapp:app:x", ["not of the form module:attribute"]),
        ("nowhere:app", ["no module named 'nowhere'"]),
        ("cliapp.sub:app", ["no module named 'cliapp.sub'"]),
        ("cliapp:nope", ["has no attribute 'nope'", "did you mean cliapp:app?"]),
        ("cliapp:add", ["names a Task, not a tock.Tock"]),
        ("cliapp:time", ["names a module, not a tock.Tock"]),
    ],
)
def test_bad_app(project: Project, spec: str, fragments: list[str]) -> None:
    assert_error(project.invoke("status", app=spec), repr(spec), *fragments)


def test_app_module_that_raises_on_import(project: Project) -> None:
    project.write_module("broken", "import missing_dependency_xyz\n")
    assert_error(
        project.invoke("status", app="broken:app"),
        "importing 'broken' raised ModuleNotFoundError",
        "missing_dependency_xyz",
    )


def test_app_module_with_a_syntax_error(project: Project) -> None:
    project.write_module("typo", "app = (\n")
    assert_error(project.invoke("status", app="typo:app"), "SyntaxError")


def test_app_with_a_bad_url(project: Project) -> None:
    project.write_module("badurl", "from tock import Tock\napp = Tock('sqlite://nope.db')\n")
    assert_error(
        project.invoke("status", app="badurl:app"),
        "tock.ConfigurationError",
        "invalid SQLite URL",
    )


def test_schema_error_says_run_migrate(project: Project) -> None:
    # A database that holds other tables is never migrated behind its owner's back.
    with sqlite3.connect(project.path / "tock.db") as conn:
        conn.execute("CREATE TABLE theirs (x)")
    conn.close()
    assert_error(project.invoke("status"), "run `tock migrate`")
    assert_error(project.invoke("jobs", "list"), "run `tock migrate`")
    assert project.invoke("migrate").exit_code == 0
    assert project.invoke("status").exit_code == 0


def test_read_only_database(project: Project) -> None:
    assert project.invoke("migrate").exit_code == 0
    db = project.path / "tock.db"
    with read_only(db):
        assert_error(project.invoke("status"), "read-only")


def test_missing_database_directory(project: Project) -> None:
    project.write_module(
        "elsewhere", "from tock import Tock\napp = Tock('sqlite:///no/such/dir/tock.db')\n"
    )
    assert_error(project.invoke("migrate", app="elsewhere:app"), "does not exist")


def test_python_dash_m_tock(project: Project) -> None:
    done = run_cli(project, "--app", "cliapp:app", "migrate")
    assert done.returncode == 0, done.stderr
    assert "0001_initial" in done.stdout
    done = run_cli(project, "--app", "cliapp", "status")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: --app 'cliapp' is not of the form module:attribute (e.g. myproject.tasks:app)"
    ]


def test_password_never_shown(project: Project) -> None:
    project.write_module(
        "pgapp", "from tock import Tock\napp = Tock('postgresql://ann:s3cret@db.example/tock')\n"
    )
    result = project.invoke("status", app="pgapp:app")
    line = assert_error(result, "ann:***@db.example")
    assert "s3cret" not in line
