"""The Django app: ``INSTALLED_APPS += ["tock.contrib.django"]``."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class TockConfig(AppConfig):  # type: ignore[misc]
    name = "tock.contrib.django"
    label = "tock"
    verbose_name = "Tock"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from tock.contrib.django.checks import sqlite_transactions
        from tock.contrib.django.conf import tock_settings

        tock_settings()  # a wrong TOCK setting is an error at start-up, naming the key
        checks.register(sqlite_transactions)
        # Each installed app's tasks.py registers its tasks (docs/design.md: workers run
        # only tasks found in installed apps' task modules, never a path read from the
        # database).
        autodiscover_modules("tasks")
