"""The jobs' pages (docs/django.md: The admin)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.template.response import TemplateResponse

from tock.contrib.django.admin._base import AppAdmin, query
from tock.contrib.django.models import Job
from tock.errors import ConfigurationError

__all__ = ["JOB_GROUPS", "JobAdmin"]

#: the groups of the jobs' list, in the order of their links: (label, the state or view
#: of ``app.list_jobs``); "running" is the started jobs, "claimed" those not started yet
JOB_GROUPS = (
    ("failed", "failed"),
    ("lost", "lost"),
    ("running", "started"),
    ("claimed", "claimed"),
    ("ready", "ready"),
    ("scheduled", "scheduled"),
    ("blocked", "blocked"),
    ("succeeded", "succeeded"),
    ("canceled", "canceled"),
)


@admin.register(Job)
class JobAdmin(AppAdmin):
    """The jobs, newest first, a page at a time (``app.list_jobs``: a keyset cursor,
    no count), all of them or one group (``?state=failed``), of one queue
    (``?queue=emails``). Read-only for now."""

    list_per_page = 50

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        from tock.contrib.django import app

        groups = dict(JOB_GROUPS)
        group = request.GET.get("state") or None
        queue = request.GET.get("queue") or None
        after: int | None = None
        try:
            if group is not None and group not in groups:
                raise ConfigurationError(f"unknown group {group!r}: use one of {', '.join(groups)}")
            if "after" in request.GET:
                text = request.GET["after"]
                if not text.isdigit():
                    raise ConfigurationError(f"after= takes a page's cursor, not {text!r}")
                after = int(text)
            page = app.list_jobs(
                state=groups[group] if group else None,
                queue=queue,
                after=after,
                limit=self.list_per_page,
            )
        except ConfigurationError as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
        kept = {"queue": queue} if queue else {}
        links = [("all", None, query(kept))] + [
            (label, label, query({**kept, "state": label})) for label, _ in JOB_GROUPS
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Jobs" + (f": {group}" if group else ""),
            "subtitle": None,
            "jobs": [
                {
                    "record": job.record,
                    "args": json.dumps(job.record.args, default=repr),
                    "kwargs": json.dumps(job.record.kwargs, default=repr),
                }
                for job in page
            ],
            "group": group,
            "queue": queue,
            "links": links,
            "next": (
                None
                if page.next is None
                else query({**kept, **({"state": group} if group else {}), "after": page.next})
            ),
            "first": query({**kept, **({"state": group} if group else {})}),
            "after": after,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "tock/admin/jobs.html", context)
