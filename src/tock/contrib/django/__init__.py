"""Tock for Django (docs/django.md).

``INSTALLED_APPS += ["tock.contrib.django"]``; ``from tock.contrib.django import app``
is the project's Tock app; ``TASKS = {"default": {"BACKEND":
"tock.contrib.django.TockBackend"}}`` makes Tock the backend of Django's tasks framework,
and ``tock.contrib.django.task`` is ``django.tasks.task`` with Tock's options.

Names are loaded on first use: importing this package touches no setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tock.contrib.django.backend import TockBackend, TockTask, task
    from tock.contrib.django.conf import DjangoTock

    app: DjangoTock

__all__ = ["DjangoTock", "TockBackend", "TockTask", "app", "task"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from tock.contrib.django.conf import get_app

        return get_app()
    if name == "DjangoTock":
        from tock.contrib.django.conf import DjangoTock

        return DjangoTock
    if name in ("TockBackend", "TockTask", "task"):
        from tock.contrib.django import backend

        return getattr(backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
