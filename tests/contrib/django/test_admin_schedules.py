"""Tock in Django's admin: the schedules' pages (docs/django.md: Schedules in the admin).
Every read and change goes through the app; each test checks the effect through the app
(``app.get_schedule``, ``app.list_fires``, the job a trigger made) and the admin
history, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("django_project")

LIST = "/admin/tock/schedule/"
ADD = "/admin/tock/schedule/add/"
TASK = "shop.tasks.process_order"
CODE = "shop.tasks.hourly"  # the test project's @app.periodic schedule
ALL = ("view_schedule", "add_schedule", "change_schedule", "delete_schedule")


def page_of(name: str) -> str:
    """A schedule's page, its name quoted as the admin quotes a primary key."""
    from django.contrib.admin.utils import quote
    from django.urls import reverse

    return str(reverse("admin:tock_schedule_change", args=[quote(name)]))


@pytest.fixture
def queue(db: str) -> Iterator[str]:
    """A queue of the test's own: the jobs a test's schedules make go there, and are
    canceled after, so that no queue is left with ready jobs."""
    from tock.contrib.django import app

    name = f"adm_{secrets.token_hex(4)}"
    yield name
    app.cancel_jobs(queue=name, state="pending")


@pytest.fixture
def names(db: str) -> Iterator[list[str]]:
    """Names of schedules a test makes: deleted after (a list the test appends to)."""
    from tock.contrib.django import app

    made: list[str] = []
    yield made
    for name in made:
        app.unschedule(name)


@pytest.fixture
def dynamic(names: list[str], queue: str) -> str:
    """A dynamic schedule whose keyword arguments hold markup, in Berlin time."""
    from tock.contrib.django import app

    name = f"adm:dyn-{secrets.token_hex(4)}"
    names.append(name)
    app.schedule(
        name,
        task=TASK,
        cron="30 2 * * *",
        timezone="Europe/Berlin",
        queue=queue,
        kwargs={"order_id": "<script>alert('kw')</script>"},
    )
    return name


@pytest.fixture
def code(db: str) -> Iterator[str]:
    """The project's code schedule, in the store as a worker's start-up writes it;
    resumed after (pausing is kept by sync)."""
    from tock.contrib.django import app

    app.sync_schedules()
    yield CODE
    app.resume_schedule(CODE)


def history(name: str) -> list[Any]:
    from django.contrib.admin.models import LogEntry

    return list(
        LogEntry.objects.filter(object_id=name, content_type__model="schedule").order_by("id")
    )


def form(**changes: Any) -> dict[str, Any]:
    """The add/edit form's POST data: a valid cron schedule, with ``changes``."""
    data: dict[str, Any] = {
        "action": "save",
        "task": TASK,
        "kind": "cron",
        "cron": "0 9 * * *",
        "every": "",
        "at": "",
        "timezone": "UTC",
        "misfire": "coalesce",
        "grace": "60",
        "overlap": "on",
        "queue": "",
        "priority": "",
        "args": "[]",
        "kwargs": '{"order_id": 1}',
        "enabled": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, response.content[:500]
    return {k: list(v) for k, v in response.context_data["form"].errors.items()}


# -- the list ------------------------------------------------------------------------


def test_a_schedules_short_url_leads_to_its_page(
    client: Any, user: Callable[..., Any], dynamic: str
) -> None:
    """``<name>/`` (a link written by hand) redirects to ``<name>/change/``."""
    short = page_of(dynamic).removesuffix("change/")
    client.force_login(user("view_schedule"))
    response = client.get(short)
    assert response.status_code == 302 and response.url == page_of(dynamic)


def test_the_list_shows_each_schedule_with_a_link_escaped(
    client: Any, user: Callable[..., Any], dynamic: str, code: str
) -> None:
    from django.urls import reverse

    from tock.contrib.django import app

    client.force_login(user("view_schedule"))
    response = client.get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    table = page.split('id="tock-schedules"', 1)[1].split("</table>", 1)[0]
    assert f'<a href="{page_of(dynamic)}">{dynamic}</a>' in table
    assert page_of(dynamic) == f"/admin/tock/schedule/{dynamic.replace(':', '_3A')}/change/"
    # The name as it is (unquoted) reaches the page too.
    raw = reverse("admin:tock_schedule_change", args=[dynamic])
    assert raw == f"/admin/tock/schedule/{dynamic}/change/"
    assert client.get(raw).status_code == 200
    assert "cron 30 2 * * * (Europe/Berlin)" in table
    next_fire = app.get_schedule(dynamic).next_fire_at
    assert next_fire is not None and next_fire.strftime("%Y-%m-%d %H:%M:%S UTC") in table
    assert f">{CODE}</a>" in table and "every 1h" in table
    row = table.split(f">{CODE}</a>", 1)[1].split("</tr>", 1)[0]
    assert "<td>code</td>" in row
    assert 'id="tock-add-schedule"' not in page  # no add permission
    client.force_login(user("view_schedule", "add_schedule"))
    assert 'id="tock-add-schedule"' in client.get(LIST).content.decode()
    # The admin's index links to the list, and to the add form for those who may add.
    index = client.get("/admin/").content.decode()
    assert f'href="{LIST}"' in index and f'href="{ADD}"' in index


def test_a_code_schedule_no_process_declares_is_shown_as_such(
    client: Any, user: Callable[..., Any], db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tock.contrib.django import app

    app.sync_schedules()
    monkeypatch.setattr(type(app), "code_schedules", property(lambda self: {}))
    client.force_login(user("view_schedule"))
    table = client.get(LIST).content.decode().split('id="tock-schedules"', 1)[1]
    row = table.split(f">{CODE}</a>", 1)[1].split("</tr>", 1)[0]
    assert "<td>code (undeclared)</td>" in row


def test_anonymous_users_are_sent_to_the_login_and_others_need_the_view_permission(
    client: Any, user: Callable[..., Any], dynamic: str
) -> None:
    urls = [LIST, ADD, page_of(dynamic), page_of(dynamic).replace("/change/", "/delete/")]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/")
    client.force_login(user("view_worker"))
    for url in urls:
        assert client.get(url).status_code == 403, url


def test_an_unknown_schedule_is_404(client: Any, user: Callable[..., Any], db: str) -> None:
    client.force_login(user(*ALL))
    assert client.get(page_of("adm:no-such")).status_code == 404
    assert client.post(page_of("adm:no-such"), {"action": "pause"}).status_code == 404
    assert client.get("/admin/tock/schedule/adm_3Ano-such/delete/").status_code == 404
    assert client.get("/admin/tock/schedule/bad%20name/change/").status_code == 404


# -- a schedule's page ---------------------------------------------------------------


def test_the_page_shows_settings_preview_and_escapes_every_value(
    client: Any, user: Callable[..., Any], dynamic: str
) -> None:
    client.force_login(user("view_schedule"))
    response = client.get(page_of(dynamic))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Schedule {dynamic}" in page
    assert "&lt;script&gt;alert(&#x27;kw&#x27;)&lt;/script&gt;" in page
    assert "<script>alert(" not in page
    # The preview: the next fires from now, in UTC and in Berlin time (02:30 local,
    # 01:30 or 00:30 UTC; 03:00 on a spring-forward day, by the DST rule).
    preview = page.split('id="tock-preview"', 1)[1].split("</table>", 1)[0]
    rows = preview.split("<tr>")[2:]
    assert len(rows) == 8
    assert "<th>Europe/Berlin</th>" in preview
    for row in rows:
        utc, local = row.split("<td>")[1:3]
        assert utc.endswith(" UTC</td>") and (" 00:30:00 UTC" in utc or " 01:30:00 UTC" in utc)
        assert " 02:30:00 CE" in local
    # A view-only user sees no form and no button.
    content = page.split('id="content-main"', 1)[1]
    assert 'name="action"' not in content and "csrfmiddlewaretoken" not in content
    assert 'class="deletelink"' not in page


def test_a_staff_user_who_may_change_sees_the_form_and_the_buttons(
    client: Any, user: Callable[..., Any], dynamic: str
) -> None:
    client.force_login(user(*ALL))
    response = client.get(page_of(dynamic))
    page = response.content.decode()
    form_ = response.context_data["form"]
    assert form_.initial["cron"] == "30 2 * * *"
    assert form_.initial["timezone"] == "Europe/Berlin"
    assert form_.fields["name"].disabled
    assert 'value="pause"' in page and 'value="trigger"' in page and 'value="save"' in page
    assert "csrfmiddlewaretoken" in page.split('id="content-main"', 1)[1]
    assert 'class="deletelink"' in page
    assert 'id="tock-code-note"' not in page
    assert "&lt;script&gt;alert(&#x27;kw&#x27;)&lt;/script&gt;" in page  # in the form too
    assert "<script>alert(" not in page


def test_the_fires_are_listed_a_page_at_a_time_with_their_jobs(
    client: Any, user: Callable[..., Any], dynamic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tock.contrib.django import app
    from tock.contrib.django.admin import schedules
    from tock.store import Fire

    monkeypatch.setattr(schedules, "FIRES_PER_PAGE", 2)
    # A run of dropped fires, as a resume records it, then two fires by hand.
    record = app.store.schedule_get(dynamic)
    first = datetime(2020, 1, 1, 1, 30, tzinfo=UTC)  # older than the triggers
    app.store.schedule_fire(
        dynamic,
        expected_next=record.next_fire_at,
        new_next=record.next_fire_at,
        fires=[Fire(first, "paused", last=first + timedelta(days=2), count=3)],
        now=None,
    )
    jobs = [app.trigger_schedule(dynamic).id for _ in range(2)]
    client.force_login(user("view_schedule"))
    page = client.get(page_of(dynamic)).content.decode()
    fires = page.split('id="tock-fires"', 1)[1].split("</table>", 1)[0]
    links = [f'<a href="/admin/tock/job/{job}/change/">job {job}</a>' for job in jobs]
    assert all(link in fires for link in links)
    assert "triggered" in fires and "(by hand)" in fires and "paused" not in fires
    assert 'id="tock-next"' in page
    cursor = app.list_fires(dynamic, limit=2).next
    assert cursor is not None
    page = client.get(page_of(dynamic), {"after": cursor}).content.decode()
    fires = page.split('id="tock-fires"', 1)[1].split("</table>", 1)[0]
    assert "none: dropped (paused)" in fires
    assert "2020-01-01 01:30:00 UTC to 2020-01-03 01:30:00 UTC (3 fires)" in fires
    assert 'id="tock-next"' not in page
    response = client.get(page_of(dynamic), {"after": "nonsense"})
    assert response.status_code == 400
    assert "after= takes a cursor" in response.content.decode()


# -- add -------------------------------------------------------------------------------


def test_add_a_schedule(
    client: Any, user: Callable[..., Any], names: list[str], queue: str
) -> None:
    from django.contrib.admin.models import ADDITION

    from tock.contrib.django import app

    name = f"adm:add-{secrets.token_hex(4)}"
    names.append(name)
    acting = user("view_schedule", "add_schedule")
    client.force_login(acting)
    assert client.get(ADD).status_code == 200
    response = client.post(
        ADD,
        form(
            name=name,
            cron="*/5 9-17 * * mon-fri",
            timezone="America/New_York",
            queue=queue,
            priority="7",
            misfire="all",
            grace="30",
            overlap=None,
            args="[42]",
            kwargs="{}",
        ),
        follow=True,
    )
    assert response.redirect_chain == [(page_of(name), 302)]
    assert f"Schedule {name} was created." in response.content.decode()
    made = app.get_schedule(name)
    assert made.source == "dynamic" and made.task == TASK
    assert made.expression == "cron */5 9-17 * * mon-fri (America/New_York)"
    assert (made.queue, made.priority, made.misfire) == (queue, 7, "all")
    assert (made.grace, made.overlap, made.enabled) == (timedelta(seconds=30), False, True)
    assert (made.args, made.kwargs) == ([42], {})
    (entry,) = history(name)
    assert (entry.user_id, entry.action_flag, entry.object_repr) == (
        acting.pk,
        ADDITION,
        f"schedule {name}",
    )
    assert entry.get_change_message() == "Added."


def test_add_interval_and_one_shot_schedules(
    client: Any, user: Callable[..., Any], names: list[str]
) -> None:
    from tock.contrib.django import app
    from tock.schedules import At, Every

    every, once = (f"adm:{kind}-{secrets.token_hex(4)}" for kind in ("every", "once"))
    names += [every, once]
    client.force_login(user("view_schedule", "add_schedule"))
    response = client.post(ADD, form(name=every, kind="every", cron="", every="90"))
    assert response.status_code == 302
    assert app.get_schedule(every).trigger == Every(90)
    response = client.post(
        ADD,
        form(name=once, kind="at", cron="", at="2031-07-01 09:00", timezone="Europe/Berlin"),
    )
    assert response.status_code == 302
    assert app.get_schedule(once).trigger == At(datetime(2031, 7, 1, 7, 0, tzinfo=UTC))


def test_a_name_that_exists_is_refused_on_add(
    client: Any, user: Callable[..., Any], dynamic: str, code: str
) -> None:
    from tock.contrib.django import app

    before = app.get_schedule(dynamic)
    client.force_login(user("view_schedule", "add_schedule"))
    for name in (dynamic, code):
        response = client.post(ADD, form(name=name, cron="0 0 * * *"))
        assert errors(response) == {
            "name": [f"a schedule named {name!r} exists already: edit it from its page"]
        }
    assert app.get_schedule(dynamic) == before
    assert history(dynamic) == []


@pytest.mark.parametrize(
    ("changes", "field", "told"),
    [
        ({"name": "no spaces"}, "name", "invalid schedule name 'no spaces'"),
        ({"name": ""}, "name", "This field is required."),
        ({"cron": "0 25 * * *"}, "cron", "cron field 2 (hour) '25' is out of range 0-23"),
        ({"cron": "* * * *"}, "cron", "it has 4 fields: use 5"),
        ({"cron": "0 0 L * *"}, "cron", "cron field 3 (day of month) 'L' is not a number"),
        ({"cron": ""}, "cron", "a cron schedule needs an expression"),
        ({"kind": "every", "every": "0"}, "every", "above 0, not 0"),
        ({"kind": "every", "every": "-5"}, "every", "above 0, not -5"),
        ({"kind": "every", "every": "0.5"}, "every", "every= must be at least 1 second"),
        ({"kind": "every", "every": "ten"}, "every", "Enter a number."),
        ({"kind": "every"}, "every", "an interval schedule needs a number of seconds"),
        ({"kind": "every", "every": "1e20"}, "every", "less than or equal to 3153600000"),
        ({"grace": "1e20"}, "grace", "less than or equal to 3153600000"),
        ({"kind": "at", "at": "tomorrow"}, "at", "'tomorrow' is not a date and time"),
        (
            {"kind": "at", "at": "2031-03-30 02:30", "timezone": "Europe/Berlin"},
            "at",
            "2031-03-30 02:30 does not exist in Europe/Berlin",
        ),
        ({"timezone": "Mars/Olympus"}, "timezone", "Select a valid choice. Mars/Olympus"),
        ({"task": "shop.tasks.nope"}, "task", "Select a valid choice. shop.tasks.nope"),
        ({"kind": "weekly"}, "kind", "Select a valid choice. weekly"),
        ({"misfire": "later"}, "misfire", "Select a valid choice. later"),
        ({"misfire": "skip", "grace": "0"}, "grace", "misfire='skip' with grace=0"),
        ({"grace": "-1"}, "grace", "greater than or equal to 0"),
        ({"queue": "a queue"}, "queue", "invalid queue name 'a queue'"),
        ({"priority": "101"}, "priority", "less than or equal to 100"),
        ({"args": "[1,"}, "args", "not valid JSON: Expecting value: line 1 column 4"),
        ({"args": '{"a": 1}'}, "args", 'must be a JSON list, like [1, "a"], not {"a": 1}'),
        ({"args": "[NaN]"}, "args", "NaN is not a finite number"),
        ({"kwargs": "{'a': 1}"}, "kwargs", "not valid JSON: Expecting property name"),
        ({"kwargs": "[1]"}, "kwargs", 'must be a JSON object, like {"user": 42}, not [1]'),
    ],
)
def test_bad_input_is_an_error_on_its_field(
    client: Any,
    user: Callable[..., Any],
    names: list[str],
    changes: dict[str, str],
    field: str,
    told: str,
) -> None:
    from tock.contrib.django import app

    name = changes.get("name", f"adm:bad-{secrets.token_hex(4)}")
    if name and " " not in name:
        names.append(name)
    client.force_login(user("view_schedule", "add_schedule"))
    response = client.post(ADD, form(**{"name": name, **changes}))
    found = errors(response)
    assert list(found) == [field], found
    assert told in found[field][0], found
    page = response.content.decode()
    assert 'class="form-row errors field-' + field in page
    if name and " " not in name:
        assert name not in {s.name for s in app.list_schedules()}


def test_arguments_the_task_does_not_take_are_told(
    client: Any, user: Callable[..., Any], names: list[str]
) -> None:
    from tock.contrib.django import app

    name = f"adm:sig-{secrets.token_hex(4)}"
    names.append(name)
    client.force_login(user("view_schedule", "add_schedule"))
    response = client.post(ADD, form(name=name, kwargs='{"order_id": 1, "nope": 1}'))
    found = errors(response)
    assert list(found) == ["__all__"] and "nope" in found["__all__"][0]
    assert 'id="tock-form-errors"' in response.content.decode()
    assert name not in {s.name for s in app.list_schedules()}


def test_adding_needs_the_add_permission(
    client: Any, user: Callable[..., Any], names: list[str]
) -> None:
    from tock.contrib.django import app

    name = f"adm:perm-{secrets.token_hex(4)}"
    names.append(name)
    client.force_login(user("view_schedule", "change_schedule"))
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, form(name=name)).status_code == 403
    assert name not in {s.name for s in app.list_schedules()}


# -- edit --------------------------------------------------------------------------


def test_edit_a_schedule(client: Any, user: Callable[..., Any], dynamic: str, queue: str) -> None:
    from django.contrib.admin.models import CHANGE

    from tock.contrib.django import app

    acting = user("view_schedule", "change_schedule")
    client.force_login(acting)
    response = client.post(
        page_of(dynamic),
        form(
            name="adm:renamed",  # read-only: ignored
            cron="0 6 * * *",
            timezone="Asia/Tokyo",
            queue=queue,
            kwargs='{"order_id": 7}',
            enabled=None,
        ),
        follow=True,
    )
    assert response.redirect_chain == [(page_of(dynamic), 302)]
    assert f"Schedule {dynamic} was saved." in response.content.decode()
    edited = app.get_schedule(dynamic)
    assert edited.expression == "cron 0 6 * * * (Asia/Tokyo)"
    assert edited.kwargs == {"order_id": 7} and not edited.enabled
    assert "adm:renamed" not in {s.name for s in app.list_schedules()}
    (entry,) = history(dynamic)
    assert (entry.user_id, entry.action_flag) == (acting.pk, CHANGE)
    message = entry.get_change_message()
    assert message.startswith("Changed ") and "Cron expression" in message
    assert "Time zone" in message and "Enabled" in message and "Task" not in message
    assert "Keyword arguments" in message


def test_an_edit_with_an_error_changes_nothing(
    client: Any, user: Callable[..., Any], dynamic: str, queue: str
) -> None:
    from tock.contrib.django import app

    before = app.get_schedule(dynamic)
    client.force_login(user("view_schedule", "change_schedule"))
    response = client.post(page_of(dynamic), form(cron="61 * * * *", queue=queue))
    assert "cron field 1 (minute) '61' is out of range 0-59" in errors(response)["cron"][0]
    assert app.get_schedule(dynamic) == before
    assert history(dynamic) == []


def test_an_edit_keeps_an_interval_anchor_given_through_the_api(
    client: Any, user: Callable[..., Any], names: list[str]
) -> None:
    from tock.contrib.django import app
    from tock.schedules import Every

    name = f"adm:anchor-{secrets.token_hex(4)}"
    names.append(name)
    anchor = datetime(2030, 1, 1, 0, 7, tzinfo=UTC)
    app.schedule(name, task=TASK, every=600, anchor=anchor, args=[1])
    client.force_login(user("view_schedule", "change_schedule"))
    response = client.post(
        page_of(name), form(kind="every", cron="", every="300", args="[1]", kwargs="{}")
    )
    assert response.status_code == 302
    assert app.get_schedule(name).trigger == Every(300, anchor)


def test_a_view_only_user_cannot_act(
    client: Any, user: Callable[..., Any], dynamic: str, code: str
) -> None:
    from tock.contrib.django import app

    before = app.get_schedule(dynamic)
    logged = len(history(code))
    client.force_login(user("view_schedule"))
    for action in ("pause", "resume", "trigger"):
        assert client.post(page_of(dynamic), {"action": action}).status_code == 403
        assert client.post(page_of(code), {"action": action}).status_code == 403
    assert client.post(page_of(dynamic), form(cron="0 1 * * *")).status_code == 403
    delete = page_of(dynamic).replace("/change/", "/delete/")
    assert client.post(delete).status_code == 403
    assert app.get_schedule(dynamic) == before
    assert len(app.list_fires(dynamic)) == 0
    assert not app.get_schedule(code).paused
    assert history(dynamic) == [] and len(history(code)) == logged


# -- pause, resume, trigger -----------------------------------------------------------


def test_pause_resume_and_trigger(client: Any, user: Callable[..., Any], dynamic: str) -> None:
    from django.contrib.admin.models import CHANGE

    from tock.contrib.django import app

    acting = user("view_schedule", "change_schedule")
    client.force_login(acting)
    url = page_of(dynamic)
    response = client.post(url, {"action": "pause"}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert app.get_schedule(dynamic).paused
    page = response.content.decode()
    assert f"Schedule {dynamic} is paused" in page and 'value="resume"' in page
    response = client.post(url, {"action": "resume"}, follow=True)
    assert not app.get_schedule(dynamic).paused
    assert f"Schedule {dynamic} is resumed." in response.content.decode()
    response = client.post(url, {"action": "trigger"}, follow=True)
    (fire,) = app.list_fires(dynamic)
    assert fire.manual and fire.outcome == "triggered" and fire.job_id is not None
    job = app.get_job(fire.job_id)
    assert job.record.task == TASK and job.record.queue == app.get_schedule(dynamic).queue
    assert job.record.kwargs == {"order_id": "<script>alert('kw')</script>"}
    page = response.content.decode()
    assert f"Schedule {dynamic} fired once now: job {fire.job_id}." in page
    assert f'<a href="/admin/tock/job/{fire.job_id}/change/">job {fire.job_id}</a>' in page
    assert [(e.user_id, e.action_flag, e.get_change_message()) for e in history(dynamic)] == [
        (acting.pk, CHANGE, "Paused."),
        (acting.pk, CHANGE, "Resumed."),
        (acting.pk, CHANGE, f"Triggered: job {fire.job_id}."),
    ]


def test_bad_actions_are_told_and_change_nothing(
    client: Any, user: Callable[..., Any], dynamic: str
) -> None:
    from tock.contrib.django import app

    before = app.get_schedule(dynamic)
    client.force_login(user("view_schedule", "change_schedule"))
    response = client.post(page_of(dynamic), {"action": "drop_tables"}, follow=True)
    assert "Unknown action &#x27;drop_tables&#x27;" in response.content.decode()
    assert client.put(page_of(dynamic), {"action": "pause"}).status_code == 405
    assert app.get_schedule(dynamic) == before and history(dynamic) == []


def test_actions_need_the_csrf_token(user: Callable[..., Any], dynamic: str) -> None:
    from django.test import Client

    from tock.contrib.django import app

    client = Client(enforce_csrf_checks=True)
    client.force_login(user(*ALL))
    assert client.post(page_of(dynamic), {"action": "pause"}).status_code == 403
    assert client.post(ADD, form(name="adm:csrf")).status_code == 403
    assert not app.get_schedule(dynamic).paused
    assert "adm:csrf" not in {s.name for s in app.list_schedules()}


# -- code schedules --------------------------------------------------------------------


def test_a_code_schedule_is_read_only_with_pause_resume_and_trigger(
    client: Any, user: Callable[..., Any], code: str
) -> None:
    from tock.contrib.django import app

    before = app.get_schedule(code)
    logged = len(history(code))  # the admin history is Django's, kept across the stores
    acting = user(*ALL)
    client.force_login(acting)
    response = client.get(page_of(code))
    page = response.content.decode()
    assert response.context_data["form"] is None
    assert 'id="tock-code-note"' in page and "next worker start-up would undo" in page
    assert 'value="save"' not in page and 'class="deletelink"' not in page
    assert 'value="pause"' in page and 'value="trigger"' in page
    # An edit through a POST is refused.
    response = client.post(page_of(code), form(kind="every", cron="", every="5"), follow=True)
    assert "is declared in code" in response.content.decode()
    assert app.get_schedule(code) == before
    # So is a delete.
    response = client.post(page_of(code).replace("/change/", "/delete/"), follow=True)
    assert "is declared in code" in response.content.decode()
    assert app.get_schedule(code) == before
    assert len(history(code)) == logged
    # Pause, resume and trigger apply.
    client.post(page_of(code), {"action": "pause"})
    assert app.get_schedule(code).paused
    client.post(page_of(code), {"action": "resume"})
    assert not app.get_schedule(code).paused
    client.post(page_of(code), {"action": "trigger"})
    fire = app.list_fires(code, limit=1).fires[0]
    assert fire.manual and fire.job_id is not None
    app.cancel_job(fire.job_id)  # leaves no ready job in "default"
    assert [(e.user_id, e.get_change_message()) for e in history(code)[logged:]] == [
        (acting.pk, "Paused."),
        (acting.pk, "Resumed."),
        (acting.pk, f"Triggered: job {fire.job_id}."),
    ]


# -- delete ------------------------------------------------------------------------------


def test_delete_a_schedule_after_confirming(
    client: Any, user: Callable[..., Any], dynamic: str
) -> None:
    from django.contrib.admin.models import DELETION

    from tock.contrib.django import app
    from tock.errors import ScheduleNotFound

    delete = page_of(dynamic).replace("/change/", "/delete/")
    client.force_login(user("view_schedule", "change_schedule"))
    assert client.get(delete).status_code == 403
    acting = user("view_schedule", "delete_schedule")
    client.force_login(acting)
    response = client.get(delete)
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Delete schedule <strong>{dynamic}</strong>" in page
    assert "csrfmiddlewaretoken" in page
    app.get_schedule(dynamic)  # a GET deletes nothing
    response = client.post(delete, follow=True)
    assert response.redirect_chain == [(LIST, 302)]
    assert f"Schedule {dynamic} was deleted." in response.content.decode()
    with pytest.raises(ScheduleNotFound):
        app.get_schedule(dynamic)
    (entry,) = history(dynamic)
    assert (entry.user_id, entry.action_flag) == (acting.pk, DELETION)


def test_the_history_page_lists_the_actions(
    client: Any, user: Callable[..., Any], dynamic: str
) -> None:
    client.force_login(user("view_schedule", "change_schedule"))
    client.post(page_of(dynamic), {"action": "pause"})
    response = client.get(page_of(dynamic).replace("/change/", "/history/"))
    assert response.status_code == 200
    assert "Paused." in response.content.decode()
    assert client.get("/admin/tock/schedule/adm_3Agone/history/").status_code == 302


# -- schedules that wait on schedules ----------------------------------------------------


def test_add_a_schedule_with_dependencies(
    client: Any, user: Callable[..., Any], names: list[str], dynamic: str
) -> None:
    from tock.contrib.django import app

    name = f"adm:dep-{secrets.token_hex(4)}"
    names.append(name)
    client.force_login(user("view_schedule", "add_schedule"))
    response = client.post(
        ADD,
        form(
            name=name,
            depends_on=f" {dynamic}, adm:later ",
            future_depends="on",
            depends_on_outcome="any",
        ),
    )
    assert response.status_code == 302, response.content[:500]
    made = app.get_schedule(name)
    assert made.depends_on == (dynamic, "adm:later")
    assert (made.future_depends, made.depends_on_outcome) == (True, "any")


def test_a_dependency_cycle_is_an_error_on_the_field(
    client: Any, user: Callable[..., Any], names: list[str], dynamic: str
) -> None:
    from tock.contrib.django import app

    first = f"adm:cyc-{secrets.token_hex(4)}"
    names.append(first)
    app.schedule(first, task=TASK, cron="0 9 * * *", kwargs={"order_id": 1}, depends_on=[dynamic])
    client.force_login(user(*ALL))
    # The dynamic schedule is edited to depend on the one that depends on it.
    response = client.post(page_of(dynamic), form(depends_on=first))
    assert errors(response) == {
        "depends_on": [f"schedule dependencies form a cycle: {dynamic} -> {first} -> {dynamic}"]
    }
    assert app.get_schedule(dynamic).depends_on == ()
    response = client.post(ADD, form(name=f"adm:self-{secrets.token_hex(4)}", depends_on="a b"))
    assert errors(response) == {
        "depends_on": [
            "depends_on= holds 'a b', which is not a schedule name: use 1 to 200 characters "
            "from A-Z a-z 0-9 _ . : -"
        ]
    }
    edit = client.post(page_of(dynamic), form(depends_on=dynamic))
    assert errors(edit) == {"depends_on": [f"schedule {dynamic!r} cannot depend on itself"]}


def test_the_page_shows_dependencies_and_a_waiting_fire(
    client: Any, user: Callable[..., Any], names: list[str], dynamic: str
) -> None:
    from tock.contrib.django import app
    from tock.store import Fire
    from tock.tasks import job_for_fire

    name = f"adm:wait-{secrets.token_hex(4)}"
    names.append(name)
    app.schedule(
        name, task=TASK, every=3600, kwargs={"order_id": 1}, depends_on=[dynamic, "adm:ghost"]
    )
    record = app.store.schedule_get(name)
    assert record.next_fire_at is not None
    at = record.next_fire_at
    # A fire that came due and waits, as a scheduler pass leaves it.
    app.store.schedule_fire(
        name,
        expected_next=at,
        new_next=at + timedelta(hours=1),
        fires=[Fire(at, "waiting")],
        now=None,
    )
    job = job_for_fire(app.tasks[TASK], record, None)
    released = app.store.fire_release(name, at=at, job=job, drop_before=None, now=None)
    assert released.waiting_for == (dynamic, "adm:ghost")
    client.force_login(user("view_schedule", "change_schedule"))
    response = client.get(page_of(name))
    page = response.content.decode()
    assert f"{dynamic}, adm:ghost (unknown: no such schedule)" in page
    assert "no: even the first fire waits" in page
    assert f"waiting for {dynamic}, adm:ghost" in page
    assert "none yet: waiting on dependencies" in page
    initial = response.context_data["form"].initial
    assert initial["depends_on"] == f"{dynamic}, adm:ghost"
    assert (initial["future_depends"], initial["depends_on_outcome"]) == (False, "succeeded")
