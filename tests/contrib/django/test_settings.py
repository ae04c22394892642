"""Bad settings are clear errors that name the setting (docs/django.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.usefixtures("django_project")


def test_unknown_tock_key() -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.test import override_settings

    from tock.contrib.django.conf import tock_settings

    bad = ImproperlyConfigured
    unknown = override_settings(TOCK={"DATABASE": "default", "URL": "x"})
    with unknown, pytest.raises(bad, match=r"unknown key.*URL"):
        tock_settings()
    elsewhere = override_settings(TOCK={"DATABASE": "elsewhere"})
    with elsewhere, pytest.raises(bad, match=r"'elsewhere'.*DATABASES"):
        tock_settings()
    with override_settings(TOCK={"SCHEMA": ""}), pytest.raises(bad, match="SCHEMA"):
        tock_settings()
    with override_settings(TOCK=["default"]), pytest.raises(ImproperlyConfigured, match="dict"):
        tock_settings()


def test_defaults() -> None:
    from django.test import override_settings

    from tock.contrib.django.conf import tock_settings

    with override_settings(TOCK={}):
        assert tock_settings() == {"DATABASE": "default", "SCHEMA": "tock"}


@contextlib.contextmanager
def other_database(database: dict[str, object]) -> Iterator[None]:
    """The alias "other" for a moment (override_settings warns about DATABASES)."""
    from django.db import connections

    both = {"default": dict(database), "other": dict(database)}
    connections.settings["other"] = connections.configure_settings(both)["other"]
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError):
            del connections["other"]
        del connections.settings["other"]


@pytest.mark.parametrize(
    ("database", "message"),
    [
        ({"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}, "in-memory"),
        ({"ENGINE": "django.db.backends.sqlite3", "NAME": "file:x?mode=memory"}, "in-memory"),
        # what Django's test runner makes of a SQLite alias without TEST NAME
        (
            {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": "file:memorydb_other?mode=memory&cache=shared",
            },
            r"for tests DATABASES\['other'\]\['TEST'\] = \{'NAME': <a file path>\}",
        ),
        ({"ENGINE": "django.db.backends.sqlite3", "NAME": "file:x.db"}, "plain file path"),
        ({"ENGINE": "django.db.backends.dummy", "NAME": "x"}, "SQLite and PostgreSQL"),
    ],
)
def test_databases_tock_cannot_use(database: dict[str, str], message: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from tock.contrib.django.conf import store_url

    with other_database(database), pytest.raises(ImproperlyConfigured, match=message):
        store_url("other")


def test_postgres_url_from_django_settings() -> None:
    from tock.contrib.django.conf import store_url

    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "USER": "app user",
        "PASSWORD": "p@ss:word",
        "HOST": "db.internal",
        "PORT": "6432",
        "OPTIONS": {"sslmode": "require", "pool": True, "options": "-c statement_timeout=5s"},
    }
    with other_database(database):
        url = store_url("other", "jobs")
    assert url == (
        "postgresql://app%20user:p%40ss%3Aword@db.internal:6432/shop"
        "?sslmode=require&options=-c%20statement_timeout%3D5s&schema=jobs"
    )


def test_the_sqlite_url_is_absolute() -> None:
    from django.db import connections

    from tock.contrib.django.conf import store_url

    url = store_url("default")
    assert url.startswith("sqlite:////")
    assert url.endswith(str(connections["default"].settings_dict["NAME"]))


def test_a_check_warns_of_sqlite_s_deferred_transactions() -> None:
    from django.db import connections

    from tock.contrib.django.checks import sqlite_transactions

    assert sqlite_transactions() == []  # the test project sets IMMEDIATE
    options = connections["default"].settings_dict["OPTIONS"]
    saved = options.pop("transaction_mode")
    try:
        (warning,) = sqlite_transactions()
        options["transaction_mode"] = "DEFERRED"
        (deferred,) = sqlite_transactions()
        options["transaction_mode"] = "exclusive"  # takes the lock at BEGIN too
        assert sqlite_transactions() == []
    finally:
        options["transaction_mode"] = saved
    assert warning.id == deferred.id == "tock.W001" and "IMMEDIATE" in warning.msg
