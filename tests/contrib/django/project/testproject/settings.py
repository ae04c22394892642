"""Settings of the Django project the tests run (tests/contrib/django), from the
environment: TOCK_TEST_SQLITE (the SQLite file), TOCK_TEST_PG (a PostgreSQL URL: adds
the alias "pg", in the schema TOCK_TEST_SCHEMA), TOCK_TEST_ALIAS (Tock's alias), and for
``manage.py test`` the test databases' names: TOCK_TEST_SQLITE_TEST (a file),
TOCK_TEST_PG_TEST (a database the runner creates and drops)."""

import os
from urllib.parse import urlsplit

SECRET_KEY = "tock-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "shop.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "tock.contrib.django",
    "shop",
]
# Django's admin, with Tock's pages (docs/django.md: The admin).
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
try:
    import django.tasks  # noqa: F401  (Django 6.0+)
except ImportError:
    INSTALLED_APPS.insert(0, "django_tasks")  # the backport (Django 5.2)

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TOCK_TEST_SQLITE", "db.sqlite3"),
        # A write transaction takes SQLite's lock at BEGIN, and waits for a busy one
        # (docs/django.md: SQLite).
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
        # Django's test runner would use an in-memory database, which Tock's workers
        # (other connections) cannot reach (docs/django.md: Testing).
        "TEST": {"NAME": os.environ.get("TOCK_TEST_SQLITE_TEST")},
    }
}
if os.environ.get("TOCK_TEST_PG"):
    pg = urlsplit(os.environ["TOCK_TEST_PG"])
    DATABASES["pg"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": pg.path.lstrip("/"),
        "USER": pg.username or "",
        "PASSWORD": pg.password or "",
        "HOST": pg.hostname or "",
        "PORT": str(pg.port or ""),
        # Django's own tables in the test's schema too (Tock never relies on it).
        "OPTIONS": {"options": f"-c search_path={os.environ['TOCK_TEST_SCHEMA']}"},
    }
    if os.environ.get("TOCK_TEST_PG_TEST"):
        # A database of its own, where the schema is public until Tock makes its own.
        DATABASES["pg"]["TEST"] = {"NAME": os.environ["TOCK_TEST_PG_TEST"], "DEPENDENCIES": []}
        DATABASES["pg"]["OPTIONS"] = {"options": "-c search_path=public"}
    # The same database through server-side binding cursors (Django's other mode).
    DATABASES["pg_binding"] = {
        **DATABASES["pg"],
        "OPTIONS": {**DATABASES["pg"]["OPTIONS"], "server_side_binding": True},
        "TEST": {"MIRROR": "pg"},
    }
    # And through Django's own connection pool (psycopg_pool, Django 5.1+).
    DATABASES["pg_pool"] = {
        **DATABASES["pg"],
        "OPTIONS": {**DATABASES["pg"]["OPTIONS"], "pool": {"min_size": 1, "max_size": 2}},
        "TEST": {"MIRROR": "pg"},
    }

TOCK = {
    "DATABASE": os.environ.get("TOCK_TEST_ALIAS", "default"),
    "SCHEMA": os.environ.get("TOCK_TEST_SCHEMA", "tock"),
}
TASKS = {
    "default": {
        "BACKEND": "tock.contrib.django.TockBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"max_attempts": 1, "backoff": 0.01},
    }
}

# The project's own models live where Tock does, for the tests that run it on "pg".
DATABASE_ROUTERS = ["testproject.settings.SameAsTock"]


class SameAsTock:
    def db_for_read(self, model: object, **hints: object) -> str:
        return TOCK["DATABASE"]

    def db_for_write(self, model: object, **hints: object) -> str:
        return TOCK["DATABASE"]
