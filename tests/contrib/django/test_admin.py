"""Tock in Django's admin: the page of workers, queues and the leader (docs/django.md:
The admin). Its reads and actions go through the app; each test checks the effect
through the app (or the store, for what only a worker reads), and the admin history."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("django_project")

URL = "/admin/tock/worker/"


@pytest.fixture
def worker(db: str) -> Iterator[str]:
    """A registered worker whose host and queues hold markup, unregistered after."""
    from tock.contrib.django import app
    from tock.store import WorkerInfo

    worker_id = f"adm-{secrets.token_hex(4)}"
    info = WorkerInfo(
        id=worker_id,
        hostname="<script>alert('host')</script>",
        pid=4242,
        queues=("default", "<b>q</b>"),
        concurrency=2,
    )
    app.store.worker_register(info, now=None)
    try:
        yield worker_id
    finally:
        app.store.worker_unregister(worker_id, now=None)


def history(object_id: str) -> list[Any]:
    from django.contrib.admin.models import LogEntry

    return list(LogEntry.objects.filter(object_id=object_id).order_by("id"))


def test_the_page_shows_workers_leader_and_queues_escaped(
    client: Any, user: Callable[..., Any], worker: str
) -> None:
    from tock.contrib.django import app

    queue = f"adm_{secrets.token_hex(4)}"
    app.pause_queue(queue)
    try:
        client.force_login(user("view_worker"))
        response = client.get(URL)
        assert response.status_code == 200
        page = response.content.decode()
        assert "Workers, queues and the leader" in page
        assert worker in page and "4242" in page
        assert "&lt;script&gt;alert(&#x27;host&#x27;)&lt;/script&gt;" in page
        assert "<script>alert(" not in page
        assert "default, &lt;b&gt;q&lt;/b&gt;" in page and "<b>q</b>" not in page
        assert queue in page
        assert 'id="tock-leader"' in page
        # A view-only user sees no action.
        assert 'name="action"' not in page
    finally:
        app.resume_queue(queue)


def test_the_index_lists_the_page_for_a_user_who_may_see_it(
    client: Any, user: Callable[..., Any]
) -> None:
    client.force_login(user("view_worker"))
    assert URL in client.get("/admin/").content.decode()
    client.force_login(user())  # staff, no permission of Tock's
    assert URL not in client.get("/admin/").content.decode()
    assert client.get(URL).status_code == 403


def test_anonymous_and_non_staff_users_are_sent_to_the_login(
    client: Any, user: Callable[..., Any]
) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    client.force_login(user("view_worker", "change_worker", staff=False))
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_view_only_user_cannot_act(client: Any, user: Callable[..., Any], worker: str) -> None:
    from tock.contrib.django import app

    queue = f"adm_{secrets.token_hex(4)}"
    client.force_login(user("view_worker"))
    assert client.post(URL, {"action": "pause_queue", "queue": queue}).status_code == 403
    assert client.post(URL, {"action": "stop_worker", "worker": worker}).status_code == 403
    assert queue not in {q["name"] for q in app.list_queues()}
    assert not app.store.worker_commands(worker).stop
    assert history(queue) == [] and history(worker) == []


def test_pause_and_resume_a_queue(client: Any, user: Callable[..., Any], db: str) -> None:
    from django.contrib.admin.models import CHANGE

    from tock.contrib.django import app

    queue = f"adm_{secrets.token_hex(4)}"
    acting = user("view_worker", "change_worker")
    client.force_login(acting)
    try:
        response = client.post(URL, {"action": "pause_queue", "queue": queue}, follow=True)
        assert response.redirect_chain == [(URL, 302)]
        assert {q["name"]: q["paused"] for q in app.list_queues()}[queue] is True
        assert f"Queue {queue} is paused" in response.content.decode()
        page = response.content.decode()
        assert 'value="resume_queue"' in page and "csrfmiddlewaretoken" in page
    finally:
        response = client.post(URL, {"action": "resume_queue", "queue": queue}, follow=True)
    assert queue not in {q["name"] for q in app.list_queues() if q["paused"]}
    assert f"Queue {queue} is resumed" in response.content.decode()
    entries = history(queue)
    assert [(e.user_id, e.action_flag, e.get_change_message()) for e in entries] == [
        (acting.pk, CHANGE, "Paused."),
        (acting.pk, CHANGE, "Resumed."),
    ]
    assert entries[0].content_type.model == "queue" and entries[0].object_repr == f"queue {queue}"


def test_stop_a_worker(client: Any, user: Callable[..., Any], worker: str) -> None:
    from django.contrib.admin.models import CHANGE

    from tock.contrib.django import app

    acting = user("view_worker", "change_worker")
    client.force_login(acting)
    assert not app.store.worker_commands(worker).stop
    response = client.post(URL, {"action": "stop_worker", "worker": worker}, follow=True)
    assert response.status_code == 200
    assert app.store.worker_commands(worker).stop  # what the worker reads next
    assert f"Worker {worker} was asked to stop" in response.content.decode()
    (entry,) = history(worker)
    assert (entry.user_id, entry.action_flag, entry.content_type.model) == (
        acting.pk,
        CHANGE,
        "worker",
    )


def test_bad_actions_are_told_and_change_nothing(
    client: Any, user: Callable[..., Any], db: str
) -> None:
    from tock.contrib.django import app

    client.force_login(user("view_worker", "change_worker"))
    before = app.list_queues()
    gone = f"adm-gone-{secrets.token_hex(4)}"
    for form, told in [
        ({"action": "stop_worker", "worker": gone}, gone),
        ({"action": "pause_queue", "queue": "no spaces"}, "queue"),
        ({"action": "drop_tables"}, "Unknown action &#x27;drop_tables&#x27;"),
    ]:
        response = client.post(URL, form, follow=True)
        assert response.status_code == 200
        assert told in response.content.decode()
    assert client.put(URL, {"action": "pause_queue", "queue": "q"}).status_code == 405
    assert app.list_queues() == before
    assert history(gone) == [] and history("no spaces") == []


def test_actions_need_the_csrf_token(user: Callable[..., Any], db: str) -> None:
    from django.test import Client

    from tock.contrib.django import app

    client = Client(enforce_csrf_checks=True)
    client.force_login(user("view_worker", "change_worker"))
    queue = f"adm_{secrets.token_hex(4)}"
    assert client.post(URL, {"action": "pause_queue", "queue": queue}).status_code == 403
    assert queue not in {q["name"] for q in app.list_queues()}


def test_the_admin_models_create_no_table_and_need_no_migration() -> None:
    """Unmanaged: Tock's tables come from its SQL migrations; Django's migrations of the
    admin's models create nothing, and none is missing."""
    from django.core.management import call_command
    from django.db import connections

    from tock.contrib.django.models import Queue, Worker

    assert not Worker._meta.managed and not Queue._meta.managed
    tables = connections["default"].introspection.table_names()
    assert "tock_admin_worker" not in tables and "tock_admin_queue" not in tables
    call_command("makemigrations", "tock", "--check", "--dry-run", verbosity=0)


def test_system_checks_pass_with_the_admin_installed() -> None:
    from django.core.management import call_command

    call_command("check", fail_level="WARNING")
