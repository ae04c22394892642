"""The schedules' pages (docs/django.md: The admin)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse

from tock.contrib.django.admin._base import AppAdmin
from tock.contrib.django.models import Schedule

__all__ = ["ScheduleAdmin"]


@admin.register(Schedule)
class ScheduleAdmin(AppAdmin):
    """The schedules by name (``app.list_schedules``). Read-only for now."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        from tock.contrib.django import app

        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Schedules",
            "subtitle": None,
            "schedules": app.list_schedules(),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "tock/admin/schedules.html", context)
