"""Tock in Django's admin (docs/django.md: The admin).

Loaded by ``django.contrib.admin``'s autodiscovery when both it and
``tock.contrib.django`` are installed. Each page is a ``ModelAdmin`` of an unmanaged
model (models.py: the index entry, the permissions, the history's content type) whose
URLs are replaced by views that call the app: no ORM query over Tock's tables, no write
behind the app. ``admin_view`` keeps the admin's login redirect and CSRF protection;
the view permission shows a page, the change permission acts on it (a POST without it
is refused with 403). Every action is recorded in the admin history (``LogEntry``) with
the acting user.
"""

from __future__ import annotations

from tock.contrib.django.admin._base import AppAdmin
from tock.contrib.django.admin.jobs import JobAdmin
from tock.contrib.django.admin.schedules import ScheduleAdmin
from tock.contrib.django.admin.workers import WorkerAdmin

__all__ = ["AppAdmin", "JobAdmin", "ScheduleAdmin", "WorkerAdmin"]
