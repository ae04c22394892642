"""The page of workers, queues and the leader (docs/django.md: The admin)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse

from tock.contrib.django.admin._base import AppAdmin, when
from tock.contrib.django.models import Queue, Worker
from tock.errors import ConfigurationError, WorkerNotFound

__all__ = ["WorkerAdmin"]

FINISHED_STATES = ("failed", "lost", "succeeded", "canceled")


@admin.register(Worker)
class WorkerAdmin(AppAdmin):
    """Workers, queues and the leader: ``app.health()``'s facts; stop a worker
    (``app.stop_worker``), pause or resume a queue (``app.pause_queue``,
    ``app.resume_queue``)."""

    #: the actions of the page's forms (the POST's ``action``), by name
    ACTIONS = ("stop_worker", "pause_queue", "resume_queue")
    #: the newest finished jobs of each state the queues' counts look at: no count
    #: reads the whole finished table (``app.health(finished_cap=)``)
    count_cap = 10_000

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

        health = app.health(finished_cap=self.count_cap)
        workers = [
            {**w, "started_at": when(w["started_at"]), "queues": ", ".join(w["queues"])}
            for w in health["workers"]
        ]
        leader = health["leader"]
        if leader is not None:
            leader = {**leader, "since": when(leader["since"])}
        queues = [
            {
                **q,
                "name": name,
                "paused_at": when(q["paused_at"]),
                **{f"{state}_more": state in q["more"] for state in FINISHED_STATES},
            }
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
            "now": when(health["now"]),
            "count_cap": f"{self.count_cap:,}",
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
