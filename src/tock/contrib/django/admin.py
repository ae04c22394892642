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

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path

from tock.contrib.django.models import Job, Queue, Worker
from tock.errors import ConfigurationError, WorkerNotFound

__all__ = ["JobAdmin", "WorkerAdmin"]

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


class AppAdmin(admin.ModelAdmin):  # type: ignore[misc]
    """A page of the admin whose one URL is its ``changelist_view``, which calls the app:
    no add, change or delete views of rows (there are none)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="{}_{}_changelist".format(*info),
            )
        ]


@admin.register(Worker)
class WorkerAdmin(AppAdmin):
    """Workers, queues and the leader: ``app.health()``'s facts; stop a worker
    (``app.stop_worker``), pause or resume a queue (``app.pause_queue``,
    ``app.resume_queue``)."""

    #: the actions of the page's forms (the POST's ``action``), by name
    ACTIONS = ("stop_worker", "pause_queue", "resume_queue")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            self._act(request)
            # Post/redirect/get: a reload does not repeat the action.
            return HttpResponseRedirect(request.get_full_path())
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        from tock.contrib.django import app

        health = app.health()
        workers = [
            {**w, "started_at": _when(w["started_at"]), "queues": ", ".join(w["queues"])}
            for w in health["workers"]
        ]
        leader = health["leader"]
        if leader is not None:
            leader = {**leader, "since": _when(leader["since"])}
        queues = [
            {**q, "name": name, "paused_at": _when(q["paused_at"])}
            for name, q in health["queues"].items()
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Workers, queues and the leader",
            "subtitle": None,
            "workers": workers,
            "leader": leader,
            "queues": queues,
            "problems": health["problems"],
            "now": _when(health["now"]),
            "can_act": self.has_change_permission(request),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "tock/admin/workers.html", context)

    def _act(self, request: HttpRequest) -> None:
        """Perform the POST's action through the app, record it, and tell the user."""
        from tock.contrib.django import app

        action = request.POST.get("action", "")
        if action not in self.ACTIONS:
            messages.error(request, f"Unknown action {action!r}.")
            return
        try:
            if action == "stop_worker":
                worker_id = request.POST.get("worker", "")
                app.stop_worker(worker_id)
                self.log_change(request, Worker(id=worker_id), "Asked to stop.")
                messages.success(
                    request, f"Worker {worker_id} was asked to stop; it finishes its jobs first."
                )
            else:
                name = request.POST.get("queue", "")
                if action == "pause_queue":
                    app.pause_queue(name)
                    self.log_change(request, Queue(name=name), "Paused.")
                    messages.success(request, f"Queue {name} is paused: no worker claims its jobs.")
                else:
                    app.resume_queue(name)
                    self.log_change(request, Queue(name=name), "Resumed.")
                    messages.success(request, f"Queue {name} is resumed.")
        except (ConfigurationError, WorkerNotFound) as exc:  # a bad form, a gone worker
            messages.error(request, str(exc))


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
        links = [("all", None, _query(kept))] + [
            (label, label, _query({**kept, "state": label})) for label, _ in JOB_GROUPS
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
                else _query({**kept, **({"state": group} if group else {}), "after": page.next})
            ),
            "first": _query({**kept, **({"state": group} if group else {})}),
            "after": after,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "tock/admin/jobs.html", context)


def _query(params: dict[str, Any]) -> str:
    """A changelist link's query string ("?" alone when there is none)."""
    return "?" + urlencode(params)


def _when(iso: str | None) -> datetime | None:
    """An ISO time of ``app.health()`` as a datetime the template formats."""
    return None if iso is None else datetime.fromisoformat(iso)
