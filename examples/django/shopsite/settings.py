"""A small shop that runs its background work on Tock, in its own SQLite database."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only"
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "shopsite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = ["django.contrib.contenttypes", "tock.contrib.django", "orders"]
try:
    import django.tasks  # noqa: F401  (Django 6: the tasks framework is built in)
except ImportError:
    INSTALLED_APPS.insert(0, "django_tasks")  # Django 5.2: the django-tasks backport

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
        # Take SQLite's write lock at BEGIN and wait for it there: a transaction that
        # reads, then enqueues, never fails at once because a worker is writing.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}

# Tock's tables live in this alias's database; enqueues join its transactions.
TOCK = {"DATABASE": "default"}

# Django's tasks framework runs on Tock: retries, timeouts, rescue of crashed workers.
TASKS = {
    "default": {
        "BACKEND": "tock.contrib.django.TockBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"max_attempts": 3, "backoff": 0.2},
    }
}
