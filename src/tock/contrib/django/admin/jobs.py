"""The jobs' pages (docs/django.md: The admin): the list, by group, queue and task, with
bounded counts and a bounded search; a job's page; and the actions on jobs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.admin.options import get_content_type_for_model
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse

from tock.app import total_counts
from tock.contrib.django.admin._base import AppAdmin, query, to_change
from tock.contrib.django.models import Job
from tock.errors import ConfigurationError, JobNotFound, JobStateError
from tock.jobs import FINISHED, JobCount, JobRecord, JobStatus
from tock.store._lists import MAX_ID

__all__ = ["ACTIONS", "JOB_GROUPS", "JobAdmin"]

#: the groups of the jobs' list, in the order of their links: (label, the state or view
#: of ``app.list_jobs`` and ``app.count_jobs``); "running" is the started jobs,
#: "claimed" those not started yet
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

#: a page's exact matches of a search (an id or a unique key), at most
EXACT_MATCHES = 10


@dataclass(frozen=True)
class Action:
    """An action of the jobs' pages: its label, the past tense its messages and history
    use, and the names of the app's operations on one job and on every job a filter
    matches."""

    label: str
    done: str
    one: str
    many: str
    flag: int = CHANGE


#: the actions (the POST's ``action``), by name, in the order of the menu
#: (docs/django.md: The admin).
ACTIONS: dict[str, Action] = {
    "retry": Action("Retry", "Retried", "retry_job", "retry_jobs"),
    "cancel": Action("Cancel", "Canceled", "cancel_job", "cancel_jobs"),
    "run_now": Action("Run now", "Made ready", "run_job_now", "run_jobs_now"),
    "stop": Action("Stop", "Asked to stop", "stop_job", "stop_jobs"),
    "delete": Action("Delete", "Deleted", "delete_job", "delete_jobs", DELETION),
}


class BadInput(Exception):
    """A request's parameter the page cannot use; its message says which and why."""


@admin.register(Job)
class JobAdmin(AppAdmin):
    """The jobs, newest first, a page at a time (``app.list_jobs``: a keyset cursor),
    all of them or one group (``?state=failed``), of one queue (``?queue=emails``) and
    task (``?task=…``), with each group's count (``app.count_jobs``: bounded) and a
    search (``?q=``: ``app.search_jobs``, bounded). A job's page at ``<id>/change/``. Actions
    on selected jobs, or on all the filter matches, with the change permission."""

    list_per_page = 50
    #: the newest finished jobs of each state the counts look at
    count_cap = 10_000
    #: the newest jobs of each part of a filter a page of search looks at
    search_scan = 10_000

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        return [
            *super().get_urls(),
            path(
                "<str:object_id>/change/",
                self.admin_site.admin_view(self.job_view),
                name="{}_{}_change".format(*info),
            ),
            path(
                "<str:object_id>/",
                to_change(self.admin_site.admin_view, "admin:{}_{}_change".format(*info)),
            ),
        ]

    # -- the list ------------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            refused = self._act_on_list(request)
            # Post/redirect/get: a reload does not repeat the action.
            return refused or HttpResponseRedirect(request.get_full_path())
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        from tock.contrib.django import app

        try:
            f = _list_filter(request)
            after = _cursor(request)
            if f["q"]:
                page = app.search_jobs(
                    f["q"], state=f["state"], queue=f["queue"], task=f["task"], after=after,
                    limit=self.list_per_page, scan=self.search_scan,
                )  # fmt: skip
                exact = []
                if after is None:  # the exact matches, any age, on the first page
                    exact = app.list_jobs(
                        state=f["state"], queue=f["queue"], task=f["task"], search=f["q"],
                        limit=EXACT_MATCHES,
                    ).jobs  # fmt: skip
            else:
                page = app.list_jobs(
                    state=f["state"], queue=f["queue"], task=f["task"], after=after,
                    limit=self.list_per_page,
                )  # fmt: skip
                exact = []
            if f["queue"]:
                counts = app.count_jobs(queue=f["queue"], task=f["task"], cap=self.count_cap)
                names = []
            else:
                # One count for both: the groups' totals, and the queues to link to
                # (those of live jobs and of the newest finished ones).
                by_queue = app.count_jobs_by_queue(task=f["task"], cap=self.count_cap)
                counts = total_counts(by_queue, self.count_cap)
                names = sorted(by_queue)
        except (BadInput, ConfigurationError) as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
        group, queue, task, q = f["group"], f["queue"], f["task"], f["q"]
        kept = {k: v for k, v in (("queue", queue), ("task", task), ("q", q)) if v}
        here = {**kept, **({"state": group} if group else {})}
        links = [("all", None, query(kept), _sum(counts.values()))] + [
            (label, label, query({**kept, "state": label}), counts[state])
            for label, state in JOB_GROUPS
        ]
        tasks = sorted({*app.tasks, *([task] if task else [])})
        can_act = self.has_change_permission(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Jobs" + (f": {group}" if group else ""),
            "subtitle": None,
            "jobs": [_row(job.record) for job in page],
            "exact": [_row(job.record) for job in exact],
            "group": group,
            "queue": queue,
            "task": task,
            "q": q or "",
            "links": links,
            "queues": [(name, query({**here, "queue": name})) for name in names],
            "all_queues": query({k: v for k, v in here.items() if k != "queue"}),
            "tasks": tasks,
            "next": None if page.next is None else query({**here, "after": page.next}),
            "first": query(here),
            "after": after,
            "searching": bool(q),
            "search_scan": self.search_scan,
            "count_cap": self.count_cap,
            "can_act": can_act,
            "actions": [(name, a.label) for name, a in ACTIONS.items()],
            "filter_text": _describe(group, queue, task),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "tock/admin/jobs.html", context)

    def _act_on_list(self, request: HttpRequest) -> HttpResponse | None:
        """The list's POST: an action on the selected jobs (``ids``), or on every job
        the page's filter matches (``across=1``); what happened goes to the messages.
        A filter the list itself refuses is refused here the same way (400)."""
        from tock.contrib.django import app

        name = request.POST.get("action", "")
        action = ACTIONS.get(name)
        if action is None:
            messages.error(request, f"Unknown action {name!r}: use one of {', '.join(ACTIONS)}.")
            return None
        if request.POST.get("across") == "1":
            try:
                f = _list_filter(request)
            except (BadInput, ConfigurationError) as exc:
                return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
            if f["q"]:
                messages.error(
                    request,
                    "An action on all matching jobs does not take a search: clear the "
                    "search, or tick the jobs to act on.",
                )
                return None
            try:
                bulk = getattr(app, action.many)
                n = bulk(state=f["state"], queue=f["queue"], task=f["task"])
            except ConfigurationError as exc:
                messages.error(request, str(exc))
                return None
            described = _describe(f["group"], f["queue"], f["task"])
            text = f"{action.done} {n} job(s) of {described}."
            _log(request, None, action.flag, text, f"jobs: {described}")
            messages.success(request, text)
            return None
        given = request.POST.getlist("ids")
        if not given:
            messages.error(
                request,
                "No job selected: tick the jobs to act on, or choose all matching jobs.",
            )
            return None
        done = []
        for text in given:
            job_id = _job_id(text)
            if job_id is None:
                messages.error(request, f"{text!r} is not a job id.")
                continue
            if self._act_on_one(request, app, action, job_id, quiet=True):
                done.append(str(job_id))
        if done:
            messages.success(request, f"{action.done}: job(s) {', '.join(done)}.")
        return None

    def _act_on_one(
        self, request: HttpRequest, app: Any, action: Action, job_id: int, *, quiet: bool
    ) -> bool:
        """One job's action, logged; a refusal becomes a message naming the job and why."""
        try:
            getattr(app, action.one)(job_id)
        except JobStateError as exc:
            messages.error(request, f"Job {job_id}: {exc}")
            return False
        except JobNotFound:
            messages.error(request, f"Job {job_id}: {_missing(job_id)}")
            return False
        _log(request, job_id, action.flag, f"{action.done}.", str(Job(id=job_id)))
        if not quiet:
            messages.success(request, f"Job {job_id}: {action.done.lower()}.")
        return True

    # -- a job's page --------------------------------------------------------------

    def job_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """A job's page: everything its record holds, and its actions; POST does one."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        from tock.contrib.django import app

        job_id = _job_id(object_id)
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            name = request.POST.get("action", "")
            action = ACTIONS.get(name)
            if action is None:
                messages.error(
                    request, f"Unknown action {name!r}: use one of {', '.join(ACTIONS)}."
                )
            elif (
                job_id is not None
                and self._act_on_one(request, app, action, job_id, quiet=False)
                and action.flag == DELETION
            ):
                return HttpResponseRedirect(reverse("admin:tock_job_changelist"))
            return HttpResponseRedirect(request.get_full_path())
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "subtitle": None,
        }
        request.current_app = self.admin_site.name
        try:
            if job_id is None:
                raise BadInput(f"{object_id!r} is not a job id: a job id is a whole number.")
            record = app.get_job(job_id).record
        except (BadInput, JobNotFound) as exc:
            message = str(exc) if isinstance(exc, BadInput) else _missing(job_id or 0)
            return TemplateResponse(
                request,
                "tock/admin/job.html",
                {**context, "title": "No such job", "missing": message},
                status=404,
            )
        context.update(
            {
                "title": f"Job {record.id}",
                "job": record,
                "args": _pretty(record.args),
                "kwargs": _pretty(record.kwargs),
                "result": (
                    _pretty(record.result) if record.status is JobStatus.SUCCEEDED else None
                ),
                "errors": _errors(record),
                "deps": app.job_dependencies(record.id),
                "options": _options(record),
                "can_act": self.has_change_permission(request),
                "actions": [(n, ACTIONS[n].label) for n in _actions_of(record)],
            }
        )
        return TemplateResponse(request, "tock/admin/job.html", context)


def _list_filter(request: HttpRequest) -> dict[str, Any]:
    """The list's filter from the query string: ``state`` (a group), ``queue``,
    ``task`` and ``q``; names are checked by the app."""
    groups = dict(JOB_GROUPS)
    group = request.GET.get("state") or None
    if group is not None and group not in groups:
        raise BadInput(f"unknown group {group!r}: use one of {', '.join(groups)}")
    q = request.GET.get("q", "").strip() or None
    return {
        "group": group,
        "state": groups[group] if group else None,
        "queue": request.GET.get("queue") or None,
        "task": request.GET.get("task") or None,
        "q": q,
    }


def _cursor(request: HttpRequest) -> int | None:
    if "after" not in request.GET:
        return None
    text = request.GET["after"]
    if not text.isdigit():
        raise BadInput(f"after= takes a page's cursor, not {text!r}")
    return int(text)  # out of range: the app says so


def _job_id(text: str) -> int | None:
    """A job id from a URL or a form, or None when the text is not one."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        return None
    return int(text)


def _missing(job_id: int) -> str:
    return (
        f"Job {job_id} does not exist: either it never did, or it finished and was pruned "
        "(succeeded and canceled jobs are kept one day, failed and lost ones until deleted)."
    )


def _describe(group: str | None, queue: str | None, task: str | None) -> str:
    """A filter in words, for messages and the admin history."""
    parts = [
        f"{label} {value}"
        for label, value in (("state", group), ("queue", queue), ("task", task))
        if value
    ]
    return "every state, queue and task" if not parts else ", ".join(parts)


def _sum(counts: Any) -> JobCount:
    total = JobCount(0)
    for count in counts:
        total = total + count
    return total


def _row(record: JobRecord) -> dict[str, Any]:
    return {
        "record": record,
        "args": json.dumps(record.args, default=repr, ensure_ascii=False),
        "kwargs": json.dumps(record.kwargs, default=repr, ensure_ascii=False),
    }


def _pretty(value: Any) -> str:
    """A value as indented JSON text (the template escapes it)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=repr, sort_keys=True)


def _errors(record: JobRecord) -> list[dict[str, str]]:
    """The errors of a job's attempts, oldest first: ``error["earlier"]`` holds those
    before the last (as the Django tasks backend reads them)."""
    if not record.error:
        return []
    earlier: Any = record.error.get("earlier", ())
    entries = [*earlier, record.error]
    return [
        {
            "type": str(e.get("type", "")),
            "message": str(e.get("message", "")),
            "traceback": str(e.get("traceback") or ""),
        }
        for e in entries
        if isinstance(e, dict)
    ]


def _options(record: JobRecord) -> list[tuple[str, Any]]:
    return [
        ("retries", record.retries),
        ("retry backoff (s)", record.retry_backoff),
        ("retry on", ", ".join(record.retry_on)),
        ("timeout (s)", "none" if record.timeout is None else record.timeout),
        ("at most once", "yes" if record.at_most_once else "no"),
        ("max rescues", record.max_rescues),
    ]


def _actions_of(record: JobRecord) -> list[str]:
    """The actions that apply to a job in its state (docs/design.md: Job lifecycle)."""
    status = record.status
    if status in (JobStatus.FAILED, JobStatus.LOST, JobStatus.CANCELED):
        return ["retry", "delete"]
    if status is JobStatus.SUCCEEDED:
        return ["delete"]
    if status is JobStatus.PENDING:
        return ["run_now", "cancel"]
    if status is JobStatus.BLOCKED:
        return ["cancel"]
    assert status not in FINISHED
    return ["stop"]


def _log(request: HttpRequest, job_id: int | None, flag: int, message: str, name: str) -> None:
    """An entry of the admin history, by the acting user: of one job, or (``job_id``
    None) of an action on every job a filter matches."""
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type_id=get_content_type_for_model(Job).pk,
        object_id=None if job_id is None else str(job_id),
        object_repr=name[:200],
        action_flag=flag,
        change_message=message,
    )
