"""The schedules' pages (docs/django.md: Schedules in the admin).

The list (``app.list_schedules``); a schedule's page: its settings, a preview of its
next fires (Tock's own trigger functions, from now), its fire records a page at a time
(``app.list_fires``) and its buttons (pause, resume, trigger); a form that creates and
edits dynamic schedules (``app.schedule``); a confirmation page that deletes one
(``app.unschedule``). Code schedules (``@app.periodic``) are read-only here: the next
``tock worker`` start-up would undo an edit (docs/schedules.md: Code schedules and
deployments), so only pause, resume and trigger apply to them.

URLs follow the admin's own: ``add/``, ``<name>/change/``, ``<name>/delete/`` and
``<name>/history/``, the name quoted as the admin quotes a primary key (``:`` is
``_3A``) and unquoted by the views, so the admin history's links find the page too.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse

from tock import _validate as v
from tock import schedules as sch
from tock.app import Tock
from tock.contrib.django.admin._base import AppAdmin, query, to_change
from tock.contrib.django.models import Schedule
from tock.errors import ConfigurationError, ScheduleNotFound

__all__ = ["ScheduleAdmin", "ScheduleForm"]

#: how many next fire times a schedule's page previews
PREVIEW = 8
#: fire records on one page of a schedule's page
FIRES_PER_PAGE = 20
#: the outcomes of a fire record that made a job (the others are drops, with a reason)
_MADE_JOB = ("enqueued", "triggered")
#: the longest interval or grace the form takes, in seconds (a bound, so that no input
#: overflows a date)
_CENTURY = 100 * 365 * 86_400
_KINDS = (("cron", "cron expression"), ("every", "interval"), ("at", "once, at a time"))


@functools.cache
def _time_zones() -> list[tuple[str, str]]:
    # The zones zoneinfo knows: read from the disk once (a few hundred files).
    return [(name, name) for name in sorted(available_timezones())]


_SHAPES: dict[type, str] = {
    list: 'a JSON list, like [1, "a"]',
    dict: 'a JSON object, like {"user": 42}',
}


class _JSONArgument(forms.JSONField):  # type: ignore[misc]
    """A JSON text that must hold a list (``args``) or an object (``kwargs``); blank is
    the empty one. Its errors name what is wrong (json's own message, or the type)."""

    def __init__(self, kind: type[list[Any]] | type[dict[str, Any]], **kwargs: Any) -> None:
        self.kind = kind
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return self.kind()
        if isinstance(value, (list, dict)):
            return value

        def refuse(constant: str) -> Any:
            raise ValueError(f"{constant} is not a finite number")

        try:
            converted = json.loads(value, parse_constant=refuse)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise ValidationError(f"not valid JSON: {exc}", code="invalid") from None
        if not isinstance(converted, self.kind):
            wanted = _SHAPES[self.kind]
            raise ValidationError(
                f"must be {wanted}, not {json.dumps(converted)[:100]}", code="invalid"
            )
        return converted


class ScheduleForm(forms.Form):  # type: ignore[misc]
    """A dynamic schedule's settings, checked as ``app.schedule`` checks them (names,
    the cron expression by Tock's own parser, the interval, the time zone, the policy)
    so that each error is attached to its field. ``schedule``: the one being edited (its
    name is then read-only); without it the form creates one, and refuses a name that
    exists."""

    name = forms.CharField(
        label="Name",
        max_length=200,
        help_text="1 to 200 characters from A-Z a-z 0-9 _ . : -",
    )
    task = forms.ChoiceField(label="Task", help_text="A task the project registers.")
    kind = forms.ChoiceField(label="Kind", choices=_KINDS, initial="cron", widget=forms.RadioSelect)
    cron = forms.CharField(
        required=False,
        label="Cron expression",
        help_text="5 fields (minute hour day-of-month month day-of-week), or 6 with the "
        "seconds last; or @hourly, @daily, @weekly, @monthly, @yearly.",
    )
    every = forms.FloatField(
        required=False,
        max_value=_CENTURY,
        label="Interval (seconds)",
        help_text="At least 1 second; fires at :00, :10 … for 600 (aligned to the epoch).",
    )
    at = forms.CharField(
        required=False,
        label="Once, at",
        help_text="A date and time like 2027-01-01 09:00, read in the time zone below "
        "(or with its own offset, like 2027-01-01T09:00+01:00).",
    )
    timezone = forms.ChoiceField(
        initial="UTC",
        label="Time zone",
        help_text="The cron expression's zone, and the one the time above is read in.",
    )
    misfire = forms.ChoiceField(
        label="Misfire",
        choices=[(p, p) for p in ("coalesce", "skip", "all")],
        initial=sch.DEFAULT_MISFIRE,
        help_text="Fires missed by more than the grace: run one (coalesce), none (skip), "
        "or each (all).",
    )
    grace = forms.FloatField(
        initial=sch.DEFAULT_GRACE.total_seconds(),
        min_value=0,
        max_value=_CENTURY,
        label="Grace (seconds)",
        help_text="A fire late by less than this always runs.",
    )
    overlap = forms.BooleanField(
        label="Overlap",
        required=False,
        initial=True,
        help_text="Unchecked: a fire due while the previous job is pending or running "
        "makes no job.",
    )
    queue = forms.CharField(
        label="Queue", required=False, max_length=200, help_text="Blank: the task's queue."
    )
    priority = forms.IntegerField(
        label="Priority",
        required=False,
        min_value=v.PRIORITY_MIN,
        max_value=v.PRIORITY_MAX,
        help_text="-100 to 100, higher first. Blank: the task's priority.",
    )
    args = _JSONArgument(
        list,
        required=False,
        initial=list,
        label="Arguments",
        help_text='A JSON list, like [1, "a"].',
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    kwargs = _JSONArgument(
        dict,
        required=False,
        initial=dict,
        label="Keyword arguments",
        help_text='A JSON object, like {"user": 42}.',
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    depends_on = forms.CharField(
        label="Depends on",
        required=False,
        max_length=10_000,
        help_text="Schedule names, comma-separated: a fire waits until each of them "
        "finished a run since this schedule's last run started. A name no schedule holds "
        "yet is kept (the fire waits for it).",
    )
    future_depends = forms.BooleanField(
        label="Future depends",
        required=False,
        initial=False,
        help_text="Checked: the first fire (the schedule never ran) runs without waiting.",
    )
    depends_on_outcome = forms.ChoiceField(
        required=False,  # not given: the default, as for app.schedule
        label="Dependencies must end",
        choices=[("succeeded", "succeeded"), ("any", "in any finished state")],
        initial=sch.DEFAULT_DEPENDS_ON_OUTCOME,
        help_text="What a dependency's run must end in to count: succeeded, or any of "
        "succeeded, failed, canceled and lost.",
    )

    def __init__(
        self, app: Tock, *args: Any, schedule: sch.Schedule | None = None, **kwargs: Any
    ) -> None:
        if schedule is not None:
            kwargs.setdefault("initial", initial_of(schedule))
        super().__init__(*args, **kwargs)
        self.app = app
        self.schedule = schedule
        tasks = sorted(app.tasks)
        if schedule is not None and schedule.task not in app.tasks:
            tasks.append(schedule.task)  # shown as it is; saving it says it is unknown
        self.fields["task"].choices = [(t, t) for t in tasks]
        self.fields["timezone"].choices = _time_zones()
        if schedule is not None:
            self.fields["name"].disabled = True

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if self.schedule is not None:
            return self.schedule.name
        try:
            v.check_name("schedule", name)
        except ConfigurationError as exc:
            raise ValidationError(str(exc), code="invalid") from None
        try:
            self.app.get_schedule(name)
        except ScheduleNotFound:
            return name
        raise ValidationError(
            f"a schedule named {name!r} exists already: edit it from its page",
            code="exists",
        )

    def clean_queue(self) -> str | None:
        queue: str = self.cleaned_data["queue"].strip()
        if not queue:
            return None
        try:
            return v.check_name("queue", queue)
        except ConfigurationError as exc:
            raise ValidationError(str(exc), code="invalid") from None

    def clean_depends_on(self) -> tuple[str, ...]:
        text: str = self.cleaned_data["depends_on"]
        names = [n.strip() for n in text.split(",")] if text.strip() else []
        try:
            return sch.check_depends_on(names)
        except ConfigurationError as exc:
            raise ValidationError(str(exc), code="invalid") from None

    def clean_depends_on_outcome(self) -> str:
        return str(self.cleaned_data["depends_on_outcome"] or sch.DEFAULT_DEPENDS_ON_OUTCOME)

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean()
        name, deps = data.get("name"), data.get("depends_on")
        if name and deps:
            try:  # a cycle is told on the field, before anything is saved
                self.app.check_schedule_dependencies(name, deps)
            except ConfigurationError as exc:
                self.add_error("depends_on", str(exc))
        kind, zone = data.get("kind"), data.get("timezone")
        if kind == "cron":
            text = (data.get("cron") or "").strip()
            if not text:
                self.add_error("cron", "a cron schedule needs an expression, like 0 9 * * *")
            elif zone is not None:
                try:
                    sch.Cron(text, zone)  # the API's own parser: the admin and it agree
                except ConfigurationError as exc:
                    self.add_error("cron", str(exc))
                else:
                    data["cron"] = text
        elif kind == "every":
            interval = data.get("every")
            if interval is None:
                if "every" not in self.errors:
                    self.add_error("every", "an interval schedule needs a number of seconds")
            elif not math.isfinite(interval) or interval <= 0:
                self.add_error(
                    "every", f"the interval must be a number of seconds above 0, not {interval:g}"
                )
            else:
                try:
                    sch.Every(interval)
                except ConfigurationError as exc:
                    self.add_error("every", str(exc))
        elif kind == "at" and zone is not None:
            try:
                data["at"] = parse_at(data.get("at") or "", zone)
            except ValidationError as exc:
                self.add_error("at", exc)
        misfire, grace = data.get("misfire"), data.get("grace")
        if misfire is not None and grace is not None:
            try:
                sch.check_policy(misfire, grace)
            except ConfigurationError as exc:
                self.add_error("grace", str(exc))
        return data

    def schedule_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``app.schedule`` (besides the name), from a valid form."""
        data = self.cleaned_data
        kind = data["kind"]
        trigger: dict[str, Any]
        if kind == "cron":
            trigger = {"cron": data["cron"], "timezone": data["timezone"]}
        elif kind == "every":
            trigger = {"every": data["every"]}
            old = None if self.schedule is None else self.schedule.trigger
            if isinstance(old, sch.Every) and old.anchor != sch.EPOCH:
                trigger["anchor"] = old.anchor  # set through the API: an edit keeps it
        else:
            trigger = {"at": data["at"]}
        return {
            "task": data["task"],
            **trigger,
            "queue": data["queue"],
            "priority": data["priority"],
            "args": data["args"],
            "kwargs": data["kwargs"],
            "misfire": data["misfire"],
            "grace": data["grace"],
            "overlap": data["overlap"],
            "enabled": data["enabled"],
            "depends_on": list(data["depends_on"]),
            "future_depends": data["future_depends"],
            "depends_on_outcome": data["depends_on_outcome"],
        }


def parse_at(text: str, zone_name: str) -> datetime:
    """A one-shot time typed into the form: ISO 8601, read in ``zone_name`` unless it
    carries its own offset. A local time the zone skips (clocks going forward) is refused;
    one it repeats is its first occurrence (docs/schedules.md: Daylight saving time)."""
    text = text.strip()
    if not text:
        raise ValidationError("a one-shot schedule needs a time, like 2027-01-01 09:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"{text!r} is not a date and time: write it like 2027-01-01 09:00", code="invalid"
        ) from None
    if when.tzinfo is not None:
        return when
    zone = ZoneInfo(zone_name)
    aware = when.replace(tzinfo=zone, fold=0)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != when:
        raise ValidationError(
            f"{text} does not exist in {zone_name} (the clocks skip it)", code="invalid"
        )
    return aware


def initial_of(schedule: sch.Schedule) -> dict[str, Any]:
    """The form's initial values for a stored schedule."""
    trigger = schedule.trigger
    values: dict[str, Any] = {
        "name": schedule.name,
        "task": schedule.task,
        "timezone": "UTC",
        "misfire": schedule.misfire,
        "grace": schedule.grace.total_seconds(),
        "overlap": schedule.overlap,
        "queue": schedule.queue or "",
        "priority": schedule.priority,
        "args": schedule.args,
        "kwargs": schedule.kwargs,
        "enabled": schedule.enabled,
        "depends_on": ", ".join(schedule.depends_on),
        "future_depends": schedule.future_depends,
        "depends_on_outcome": schedule.depends_on_outcome,
    }
    if isinstance(trigger, sch.Cron):
        values.update(kind="cron", cron=trigger.expression, timezone=trigger.timezone)
    elif isinstance(trigger, sch.Every):
        seconds = trigger.interval.total_seconds()
        values.update(kind="every", every=int(seconds) if seconds.is_integer() else seconds)
    else:
        values.update(kind="at", at=trigger.when.strftime("%Y-%m-%d %H:%M:%S"))
    return values


@dataclass(frozen=True)
class _Fire:
    """A fire time of the preview, in UTC and in the schedule's zone."""

    utc: str
    local: str


def preview(trigger: sch.Trigger, now: datetime, count: int = PREVIEW) -> list[_Fire]:
    """The trigger's next ``count`` fire times from ``now`` (Tock's own functions)."""
    zone = trigger.zone if isinstance(trigger, sch.Cron) else ZoneInfo("UTC")
    fires: list[_Fire] = []
    when = sch.next_fire(trigger, now)
    while when is not None and len(fires) < count:
        fires.append(_Fire(_fmt(when, ZoneInfo("UTC")), _fmt(when, zone)))
        when = sch.next_fire(trigger, when)
    return fires


def _fmt(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def source_of(schedule: sch.Schedule, app: Tock) -> str:
    # docs/design.md: a code schedule no process declares any more is shown as such.
    if schedule.source == "code" and schedule.name not in app.code_schedules:
        return "code (undeclared)"
    return schedule.source


def dependencies_of(schedule: sch.Schedule, app: Tock) -> list[dict[str, Any]]:
    """The schedule's dependencies for its page: each name, and whether a schedule of
    that name exists (docs/schedules.md: a fire waits for one that does not)."""
    found = []
    for name in schedule.depends_on:
        try:
            app.get_schedule(name)
        except ScheduleNotFound:
            found.append({"name": name, "known": False})
        else:
            found.append({"name": name, "known": True})
    return found


def state_of(schedule: sch.Schedule) -> str:
    """``active``, ``paused``, ``disabled`` or ``disabled, paused``."""
    states = [
        n for n, on in (("disabled", not schedule.enabled), ("paused", schedule.paused)) if on
    ]
    return ", ".join(states) or "active"


@admin.register(Schedule)
class ScheduleAdmin(AppAdmin):
    """The schedules: list, page, add, edit, delete; pause, resume, trigger."""

    #: the actions of a schedule's page (the POST's ``action``), by name
    ACTIONS = ("save", "pause", "resume", "trigger")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(admin.ModelAdmin.has_add_permission(self, request))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(admin.ModelAdmin.has_delete_permission(self, request, obj))

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name="{}_{}_changelist".format(*info)),
            path("add/", wrap(self.add_view), name="{}_{}_add".format(*info)),
            path(
                "<str:object_id>/history/",
                wrap(self.history_view),
                name="{}_{}_history".format(*info),
            ),
            path(
                "<str:object_id>/delete/",
                wrap(self.delete_view),
                name="{}_{}_delete".format(*info),
            ),
            path(
                "<str:object_id>/change/",
                wrap(self.change_view),
                name="{}_{}_change".format(*info),
            ),
            path("<str:object_id>/", to_change(wrap, "admin:{}_{}_change".format(*info))),
        ]

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        """The unsaved model instance naming the schedule, or None when there is none (the
        admin's history page asks; no ORM query: the app says whether it exists)."""
        from tock.contrib.django import app

        try:
            return Schedule(name=app.get_schedule(object_id).name)
        except (ScheduleNotFound, ConfigurationError):
            return None

    # -- pages ---------------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        from tock.contrib.django import app

        rows = [
            {
                "schedule": s,
                "url": self._url("change", s.name),
                "source": source_of(s, app),
            }
            for s in app.list_schedules()
        ]
        context = {
            **self._context(request, "Schedules"),
            "rows": rows,
            "can_add": self.has_add_permission(request),
            "add_url": self._url("add"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "tock/admin/schedules.html", context)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        from tock.contrib.django import app

        if request.method == "POST":
            form = ScheduleForm(app, request.POST)
            if form.is_valid() and self._save(request, form):
                name = form.cleaned_data["name"]
                self.log_addition(
                    request,
                    Schedule(name=name),
                    self.construct_change_message(request, form, None, add=True),
                )
                messages.success(request, f"Schedule {name} was created.")
                return HttpResponseRedirect(self._url("change", name))
        elif request.method in ("GET", "HEAD"):
            form = ScheduleForm(app)
        else:
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        context = {
            **self._context(request, "Add schedule"),
            "form": form,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "tock/admin/schedule_add.html", context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        from tock.contrib.django import app

        schedule = self._schedule(object_id)
        can_change = self.has_change_permission(request)
        editable = can_change and schedule.source == "dynamic"
        form: ScheduleForm | None = None
        if request.method == "POST":
            if not can_change:
                raise PermissionDenied
            action = request.POST.get("action", "")
            if action != "save":
                self._act(request, schedule, action)
                # Post/redirect/get: a reload does not repeat the action.
                return HttpResponseRedirect(request.get_full_path())
            if schedule.source != "dynamic":
                messages.error(
                    request,
                    f"Schedule {schedule.name} is declared in code (@app.periodic): it is "
                    "not edited here, since the next worker start-up would undo the edit.",
                )
                return HttpResponseRedirect(request.get_full_path())
            form = ScheduleForm(app, request.POST, schedule=schedule)
            if form.is_valid() and self._save(request, form):
                self.log_change(
                    request,
                    Schedule(name=schedule.name),
                    self.construct_change_message(request, form, None),
                )
                messages.success(request, f"Schedule {schedule.name} was saved.")
                return HttpResponseRedirect(request.get_full_path())
        elif request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        elif editable:
            form = ScheduleForm(app, schedule=schedule)
        try:
            page = app.list_fires(
                schedule.name, after=request.GET.get("after") or None, limit=FIRES_PER_PAGE
            )
        except ConfigurationError as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
        fires = [
            {
                "fire": fire,
                "made_job": fire.outcome in _MADE_JOB,
                "job_url": None
                if fire.job_id is None
                else reverse(
                    "admin:tock_job_change", args=[fire.job_id], current_app=self.admin_site.name
                ),
            }
            for fire in page
        ]
        trigger = schedule.trigger
        context = {
            **self._context(request, f"Schedule {schedule.name}"),
            "schedule": schedule,
            "source": source_of(schedule, app),
            "state": state_of(schedule),
            "zone": trigger.timezone if isinstance(trigger, sch.Cron) else "UTC",
            "form": form,
            "can_act": can_change,
            "can_delete": self.has_delete_permission(request) and schedule.source == "dynamic",
            "delete_url": self._url("delete", schedule.name),
            "history_url": self._url("history", schedule.name),
            "preview": preview(trigger, app.clock.now()),
            "dependencies": dependencies_of(schedule, app),
            "fires": fires,
            "next": None if page.next is None else query({"after": page.next}),
            "first": query({}),
            "after": request.GET.get("after"),
            "json_args": json.dumps(schedule.args),
            "json_kwargs": json.dumps(schedule.kwargs),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "tock/admin/schedule.html", context)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_delete_permission(request):
            raise PermissionDenied
        from tock.contrib.django import app

        schedule = self._schedule(object_id)
        if schedule.source != "dynamic":
            messages.error(
                request,
                f"Schedule {schedule.name} is declared in code (@app.periodic): the next "
                "worker start-up would create it again. Remove it from the code, then "
                "disable it with `tock schedules prune`.",
            )
            return HttpResponseRedirect(self._url("change", schedule.name))
        if request.method == "POST":
            obj = Schedule(name=schedule.name)
            self.log_deletions(request, [obj])
            app.unschedule(schedule.name)
            messages.success(request, f"Schedule {schedule.name} was deleted.")
            return HttpResponseRedirect(self._url("changelist"))
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        context = {
            **self._context(request, f"Delete schedule {schedule.name}?"),
            "schedule": schedule,
            "change_url": self._url("change", schedule.name),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "tock/admin/schedule_delete.html", context)

    # -- helpers -------------------------------------------------------------------

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        request.current_app = self.admin_site.name
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "subtitle": None,
            "changelist_url": self._url("changelist"),
        }

    def _url(self, view: str, name: str | None = None) -> str:
        info = self.opts.app_label, self.opts.model_name
        url: str = reverse(
            f"admin:{info[0]}_{info[1]}_{view}",
            args=[] if name is None else [quote(name)],
            current_app=self.admin_site.name,
        )
        return url

    def _schedule(self, object_id: str) -> sch.Schedule:
        from tock.contrib.django import app

        try:
            return app.get_schedule(unquote(object_id))
        except (ScheduleNotFound, ConfigurationError):
            raise Http404(f"No schedule named {unquote(object_id)!r}.") from None

    def _save(self, request: HttpRequest, form: ScheduleForm) -> bool:
        """Create or update the schedule through the app; False (and the form told why)
        when the app refuses it (the arguments against the task's signature…)."""
        from tock.contrib.django import app

        try:
            app.schedule(form.cleaned_data["name"], **form.schedule_arguments())
        except (ConfigurationError, TypeError) as exc:
            form.add_error(None, str(exc))
            return False
        return True

    def _act(self, request: HttpRequest, schedule: sch.Schedule, action: str) -> None:
        """Pause, resume or trigger through the app, record it, and tell the user."""
        from tock.contrib.django import app

        name = schedule.name
        obj = Schedule(name=name)
        try:
            if action == "pause":
                app.pause_schedule(name)
                self.log_change(request, obj, "Paused.")
                messages.success(request, f"Schedule {name} is paused: it fires nothing.")
            elif action == "resume":
                app.resume_schedule(name)
                self.log_change(request, obj, "Resumed.")
                messages.success(request, f"Schedule {name} is resumed.")
            elif action == "trigger":
                job = app.trigger_schedule(name)
                self.log_change(request, obj, f"Triggered: job {job.id}.")
                messages.success(request, f"Schedule {name} fired once now: job {job.id}.")
            else:
                messages.error(request, f"Unknown action {action!r}.")
        except (ConfigurationError, ScheduleNotFound) as exc:  # a task not registered, gone
            messages.error(request, str(exc))
