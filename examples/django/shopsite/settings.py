"""A small shop that runs its background work on Tock, in its own SQLite database."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-only"
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "shopsite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    # Django's admin, where Tock's pages show jobs, schedules and workers (/admin/tock/).
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "tock.contrib.django",
    "orders",
]
try:
    import django.tasks  # noqa: F401  (Django 6: the tasks framework is built in)
except ImportError:
    INSTALLED_APPS.insert(0, "django_tasks")  # Django 5.2: the django-tasks backport

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
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
