"""The Django project as its own processes: ``manage.py migrate`` makes Tock's schema
(the same as ``tock migrate``), ``manage.py tock …`` is Tock's CLI, and a real worker
runs Django tasks, a crashed one's included (docs/django.md)."""

from __future__ import annotations

import json
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_postgres

from tock import Tock

from .conftest import PROJECT, manage, project_env

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a fresh project database: a SQLite file, or a PostgreSQL
    schema of its own (Django's tables and Tock's)."""
    sqlite = str(tmp_path / "db.sqlite3")
    if request.param == "sqlite":
        yield project_env(TOCK_TEST_SQLITE=sqlite)
        return
    url = require_postgres()
    import psycopg

    schema = f"djc_{secrets.token_hex(5)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield project_env(
                TOCK_TEST_SQLITE=sqlite,
                TOCK_TEST_PG=url,
                TOCK_TEST_SCHEMA=schema,
                TOCK_TEST_ALIAS="pg",
            )
        finally:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def migrate_args(env: dict[str, str]) -> list[str]:
    return ["migrate", "--database", env.get("TOCK_TEST_ALIAS", "default")]


# -- the schema -----------------------------------------------------------------------


def sqlite_schema(path: str) -> list[tuple[str, ...]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master"
            " WHERE name LIKE 'tock%' OR tbl_name LIKE 'tock%' ORDER BY type, name"
        ).fetchall()
    return [(t, n, tb, re.sub(r"\s+", " ", sql or "")) for t, n, tb, sql in rows]


def pg_schema(url: str, schema: str) -> list[tuple[str, ...]]:
    import psycopg

    queries = [
        "SELECT 'column', table_name, column_name, data_type, is_nullable,"
        " coalesce(column_default, ''), is_identity FROM information_schema.columns"
        " WHERE table_schema = %(s)s AND table_name LIKE 'tock%%'",
        "SELECT 'index', tablename, indexname, indexdef, '', '', '' FROM pg_indexes"
        " WHERE schemaname = %(s)s AND tablename LIKE 'tock%%'",
        "SELECT 'constraint', c.conrelid::regclass::text, c.conname,"
        " pg_get_constraintdef(c.oid), '', '', '' FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %(s)s"
        " AND c.conrelid::regclass::text LIKE '%%tock%%'",
    ]
    rows: list[tuple[str, ...]] = []
    with psycopg.connect(url) as conn:
        for query in queries:
            rows += [
                tuple(str(v).replace(schema, "S") for v in row)
                for row in conn.execute(query, {"s": schema})
            ]
    return sorted(rows)


def test_manage_py_migrate_makes_the_schema_tock_migrate_makes(
    project: dict[str, str], tmp_path: Path
) -> None:
    out = manage(*migrate_args(project), env=project).stdout
    assert "Applying tock.0001_initial... OK" in out
    if "TOCK_TEST_PG" in project:
        url, schema = project["TOCK_TEST_PG"], project["TOCK_TEST_SCHEMA"]
        other = f"djt_{secrets.token_hex(5)}"
        app = Tock(f"{url}?schema={other}")
        try:
            app.migrate()
            by_django, by_tock = pg_schema(url, schema), pg_schema(url, other)
        finally:
            app.close()
            import psycopg

            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA IF EXISTS {other} CASCADE")
    else:
        app = Tock(f"sqlite:///{tmp_path / 'tock.db'}")
        app.migrate()
        app.close()
        by_django = sqlite_schema(project["TOCK_TEST_SQLITE"])
        by_tock = sqlite_schema(str(tmp_path / "tock.db"))
    assert by_django, "manage.py migrate made no Tock table"
    assert by_django == by_tock
    # Either one finds the other's work done.
    assert "is up to date" in manage("tock", "migrate", env=project).stdout
    assert "No migrations to apply" in manage(*migrate_args(project), env=project).stdout


def test_tock_migrate_first_then_manage_py_migrate_applies_nothing_twice(
    project: dict[str, str],
) -> None:
    manage("tock", "migrate", env=project)
    out = manage(*migrate_args(project), env=project).stdout
    assert "Applying tock.0001_initial... OK" in out  # recorded for Django; no SQL run twice
    status = json.loads(manage("tock", "status", "--json", env=project).stdout)
    assert status["schema"]["version"] == status["schema"]["latest"]


def test_tock_migrations_are_not_reversible(project: dict[str, str]) -> None:
    manage(*migrate_args(project), env=project)
    proc = manage(*migrate_args(project), "tock", "zero", env=project, check=False)
    assert proc.returncode != 0
    assert "irreversible" in (proc.stdout + proc.stderr).lower()


# -- manage.py test -------------------------------------------------------------------


def test_manage_py_test_runs_the_project_s_tests_on_its_test_database(
    project: dict[str, str], tmp_path: Path
) -> None:
    """Django's test runner points the alias at a test database without a signal: the
    app follows it (the store reopens there), and lets PostgreSQL drop it at the end."""
    env = {
        **project,
        "TOCK_TEST_SQLITE_TEST": str(tmp_path / "test_db.sqlite3"),
        "TOCK_TEST_PG_TEST": f"test_{project.get('TOCK_TEST_SCHEMA', 'none')}",
    }
    out = manage("test", "shop", "--noinput", "-v", "2", env=env)
    assert "Ran 4 tests" in out.stderr and "OK" in out.stderr
    assert "Applying tock.0001_initial... OK" in out.stderr + out.stdout
    assert "Destroying test database" in out.stderr
    if "TOCK_TEST_PG" in project:
        import psycopg

        with psycopg.connect(project["TOCK_TEST_PG"]) as conn:
            left = conn.execute(
                "SELECT count(*) FROM pg_database WHERE datname = %s",
                (env["TOCK_TEST_PG_TEST"],),
            ).fetchone()
        assert left == (0,)


# -- manage.py tock -------------------------------------------------------------------


def shell(code: str, env: dict[str, str]) -> str:
    """What ``manage.py shell -c code`` prints last (Django 5.2 says first how many
    objects it imported)."""
    return manage("shell", "-c", code, env=env).stdout.strip().splitlines()[-1]


def test_manage_py_tock_is_tocks_cli_with_the_project(project: dict[str, str]) -> None:
    manage(*migrate_args(project), env=project)
    ids = shell(
        "from shop.tasks import add, process_order\n"
        "from shop.models import Order\n"
        "o = Order.objects.create(item='x')\n"
        "print(add.enqueue(2, 3).id, process_order.enqueue(o.id).id)",
        project,
    ).split()
    listed = manage("tock", "jobs", "list", "--json", env=project).stdout
    assert {str(j["id"]) for j in json.loads(listed)} >= set(ids)
    out = manage("tock", "worker", "--burst", "--queues", "default,emails", env=project)
    assert "tasks:" in out.stderr and "shop.tasks.add" in out.stderr
    shown = json.loads(manage("tock", "jobs", "show", ids[1], "--json", env=project).stdout)
    assert shown["status"] == "succeeded" and shown["result"].startswith("order ")
    result = shell(
        f"from shop.tasks import add; r = add.get_result('{ids[0]}'); "
        "print(r.status, r.return_value)",
        project,
    )
    assert result.split() == ["SUCCESSFUL", "5"]
    schedules = manage("tock", "schedules", "list", env=project).stdout
    assert "shop.tasks.hourly" in schedules  # synced by the worker at start-up
    help_text = manage("tock", "--help", env=project).stdout
    assert "manage.py tock worker" in help_text and "--app" not in help_text
    # Django's own options, anywhere, as with every other manage.py command.
    no_module = {k: v for k, v in project.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = manage("tock", "--settings=testproject.settings", "jobs", "list", env=no_module)
    assert "shop.tasks" in out.stdout


def test_a_crashed_worker_s_django_task_is_rescued(project: dict[str, str], tmp_path: Path) -> None:
    manage(*migrate_args(project), env=project)
    marker = tmp_path / "died"
    job_id = shell(
        f"from shop.tasks import die_once; print(die_once.enqueue({str(marker)!r}).id)", project
    ).strip()
    # The first worker runs the task, which kills its own process (SIGKILL).
    first = manage("tock", "worker", env=project, check=False, timeout=120)
    assert first.returncode == -signal.SIGKILL and marker.exists()
    # The next one learns of the death from the released liveness token and runs it again.
    second = subprocess.Popen(
        [sys.executable, str(PROJECT / "manage.py"), "tock", "worker"],
        cwd=PROJECT,
        env=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        code = (
            "from shop.tasks import die_once; "
            f"r = die_once.get_result('{job_id}'); "
            "import json; print(json.dumps([r.status, r.attempts, r.worker_ids, len(r.errors)]))"
        )
        deadline = time.monotonic() + 90
        while True:
            status, attempts, workers, errors = json.loads(shell(code, project))
            if status == "SUCCESSFUL" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=60)
    assert status == "SUCCESSFUL", err
    assert attempts == 2 and errors == 0
    assert workers[0] == "unknown (worker died)" and workers[1] != workers[0]
