"""System checks of the Django integration (``manage.py check``)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import connections

from tock.contrib.django.conf import tock_settings


def sqlite_transactions(**kwargs: Any) -> list[Any]:
    """On SQLite, a Django transaction that reads before it writes (the usual order in a
    view) and then enqueues must take the write lock while a worker may hold it: with
    Django's default deferred BEGIN, SQLite refuses at once ("database is locked")
    instead of waiting. ``transaction_mode: IMMEDIATE`` (or ``EXCLUSIVE``, which in WAL
    mode is the same) takes the lock at BEGIN, where the busy timeout applies
    (docs/django.md: SQLite)."""
    alias = tock_settings()["DATABASE"]
    db = connections[alias]
    if db.vendor != "sqlite":
        return []
    options = db.settings_dict.get("OPTIONS") or {}
    messages = []
    if str(options.get("transaction_mode", "")).upper() not in ("IMMEDIATE", "EXCLUSIVE"):
        messages.append(
            checks.Warning(
                f"DATABASES[{alias!r}] is SQLite without OPTIONS['transaction_mode'] = 'IMMEDIATE'",
                hint=(
                    "A transaction that reads, then enqueues while a worker writes, fails "
                    "at once with 'database is locked'. Set 'transaction_mode': "
                    "'IMMEDIATE' and a 'timeout' of some seconds (docs/django.md)."
                ),
                id="tock.W001",
            )
        )
    return messages
