"""A real Django project (./project) for the Django integration's tests: set up once in
this process (SQLite as "default", PostgreSQL as "pg" when the server answers), and run
as its own processes (manage.py) by the tests that need real workers."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_URL, require_postgres

PROJECT = Path(__file__).resolve().parent / "project"
SESSION_SCHEMA = f"dj_{secrets.token_hex(5)}"


def project_env(**extra: str) -> dict[str, str]:
    """The environment of a manage.py process of the test project."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "testproject.settings",
        "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT.parents[3] / "src")]),
    }
    env.pop("TOCK_URL", None)
    env.pop("TOCK_APP", None)
    env.update(extra)
    return env


def manage(
    *args: str, env: dict[str, str], timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(PROJECT / "manage.py"), *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"manage.py {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc


@pytest.fixture(scope="session")
def django_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Django set up in this process, both databases migrated. Yields the settings the
    in-process tests need (the SQLite file; the PostgreSQL schema, if any)."""
    import django
    from django.core.management import call_command

    path = tmp_path_factory.mktemp("django") / "db.sqlite3"
    saved = {k: os.environ.get(k) for k in ("TOCK_TEST_SQLITE", "TOCK_TEST_PG", "TOCK_TEST_SCHEMA")}
    os.environ["TOCK_TEST_SQLITE"] = str(path)
    admin = None
    if PG_URL is not None:
        import psycopg

        admin = psycopg.connect(PG_URL, autocommit=True)
        admin.execute(f"CREATE SCHEMA {SESSION_SCHEMA}")
        os.environ["TOCK_TEST_PG"] = PG_URL
        os.environ["TOCK_TEST_SCHEMA"] = SESSION_SCHEMA
    saved["DJANGO_SETTINGS_MODULE"] = os.environ.get("DJANGO_SETTINGS_MODULE")
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    sys.path.insert(0, str(PROJECT))
    try:
        django.setup()
        # Read once: the settings are loaded. Processes the suite starts later (other
        # Django projects) must not inherit them.
        os.environ.pop("DJANGO_SETTINGS_MODULE")
        call_command("migrate", database="default", verbosity=0)
        if PG_URL is not None:
            from django.test import override_settings

            with override_settings(TOCK={"DATABASE": "pg", "SCHEMA": SESSION_SCHEMA}):
                call_command("migrate", database="pg", verbosity=0)
        yield {"sqlite": path, "schema": SESSION_SCHEMA if PG_URL else None}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if admin is not None:
            from django.db import connections

            connections.close_all()
            from tock.contrib.django import app

            app.close()
            admin.execute(f"DROP SCHEMA IF EXISTS {SESSION_SCHEMA} CASCADE")
            admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, django_project: dict[str, Any]) -> Iterator[str]:
    """The Django alias Tock uses in this test: "default" (SQLite) or "pg"."""
    from django.test import override_settings

    if request.param == "sqlite":
        yield "default"
        return
    require_postgres()
    with override_settings(TOCK={"DATABASE": "pg", "SCHEMA": django_project["schema"]}):
        yield "pg"


@pytest.fixture
def user() -> Callable[..., Any]:
    """A staff user with the given permissions of Tock's admin (codenames)."""
    from django.contrib.auth.models import Permission, User

    def make(*codenames: str, staff: bool = True) -> Any:
        made = User.objects.create_user(f"u{secrets.token_hex(6)}", is_staff=staff)
        made.user_permissions.set(
            Permission.objects.filter(content_type__app_label="tock", codename__in=codenames)
        )
        return made

    return make


@pytest.fixture
def client() -> Any:
    from django.test import Client

    return Client()
