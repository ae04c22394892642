"""Tock in Django's admin: the jobs' pages (docs/django.md: The admin). Reads and actions
go through the app; each test checks the effect through the app, and the admin history.
The database is shared by the tests: each works in a queue of its own."""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.usefixtures("django_project")

JOBS = "/admin/tock/job/"
TASK = "shop.tasks.process_order"
ERROR = {
    "type": "builtins.ValueError",
    "message": "the <b>last</b> error",
    "traceback": "Traceback (most recent call last):\n  last frame\nValueError: last",
    "earlier": [
        {
            "type": "builtins.KeyError",
            "message": "the first error",
            "traceback": "Traceback (most recent call last):\n  first frame\nKeyError",
        }
    ],
}


def job_url(job_id: int) -> str:
    return f"{JOBS}{job_id}/change/"


def history(user: Any, object_id: str | None = None, *, repr_has: str | None = None) -> list[Any]:
    """The admin history of jobs by ``user`` (each test makes its own: job ids repeat
    between the SQLite and the PostgreSQL store, the history is in one database)."""
    from django.contrib.admin.models import LogEntry

    entries = LogEntry.objects.filter(
        content_type__app_label="tock", content_type__model="job", user=user
    )
    if object_id is not None:
        entries = entries.filter(object_id=object_id)
    if repr_has is not None:
        entries = entries.filter(object_repr__contains=repr_has)
    return list(entries.order_by("id"))


def shown(page: str) -> list[int]:
    """The job ids of a jobs' page, in order."""
    table = page.split('id="tock-jobs"', 1)[1].split("</table>", 1)[0]
    return [int(i) for i in re.findall(r'<a href="/admin/tock/job/(\d+)/change/">', table)]


def messages_of(response: Any) -> list[str]:
    """The messages a page shows, as text."""
    page = response.content.decode()
    if 'class="messagelist"' not in page:
        return []
    listed = page.split('class="messagelist"', 1)[1].split("</ul>", 1)[0]
    return [html.unescape(m).strip() for m in re.findall(r"<li[^>]*>(.*?)</li>", listed, re.S)]


@pytest.fixture
def queue(db: str) -> Iterator[str]:
    """A queue of this test's own, emptied after (so that no queue is left with ready
    jobs, nor the worker registered)."""
    from tock.contrib.django import app

    name = f"adm_{secrets.token_hex(4)}"
    yield name
    for worker in app.store.worker_list():
        if worker.id.startswith(f"w-{name}"):
            app.store.worker_unregister(worker.id, now=None)
    app.cancel_jobs(queue=name)
    app.delete_jobs(queue=name)


def enqueue(queue: str, *args: Any, task: str = TASK, **more: Any) -> int:
    from tock.contrib.django import app
    from tock.jobs import NewJob

    (job,) = app.insert_jobs(
        [NewJob(task=task, args=json.dumps(list(args)), kwargs="{}", queue=queue, **more)]
    )
    return job.id


def claim(queue: str, *, start: bool = False) -> list[int]:
    """Claim the queue's due jobs for a worker of the test's; ``start``: begin them."""
    from tock.contrib.django import app
    from tock.jobs import Start
    from tock.store import WorkerInfo

    worker = f"w-{queue}"
    info = WorkerInfo(id=worker, hostname="host", pid=1, queues=(queue,), concurrency=10)
    app.store.worker_register(info, now=None)
    held = app.store.job_claim_batch(worker_id=worker, queues=[queue], limit=10, free=10, now=None)
    if start:
        starts = [Start(j.id, j.claim_token or 0) for j in held]
        app.store.job_complete_batch([], now=None, started=starts)
    return [j.id for j in held]


def finish(queue: str, kind: str, *, result: Any = None, error: Any = None) -> list[int]:
    """End the queue's due jobs as ``kind`` ("succeeded" or "failed")."""
    from tock.contrib.django import app
    from tock.jobs import Outcome, OutcomeKind

    worker = f"w-{queue}"
    claim(queue)
    held = [j for j in app.store.job_list(queue=queue, worker_id=worker) if j.status == "running"]
    outcomes = [
        Outcome(
            j.id,
            j.claim_token or 0,
            OutcomeKind(kind),
            result=json.dumps(result),
            error=json.dumps(error or ERROR),
        )
        for j in held
    ]
    app.store.job_complete_batch(outcomes, now=None)
    return [j.id for j in held]


@pytest.fixture
def jobs(queue: str) -> dict[str, int]:
    """One job of each kind in the test's queue, by name."""
    made: dict[str, int] = {}
    made["succeeded"] = enqueue(queue, "ok")
    finish(queue, "succeeded", result={"html": "<i>done</i>"})
    made["failed"] = enqueue(queue, "<script>alert(1)</script>", unique_key=f"key-{queue}")
    finish(queue, "failed")
    made["running"] = enqueue(queue, "run")
    claim(queue, start=True)
    made["ready"] = enqueue(queue, "needle in a haystack")
    made["scheduled"] = enqueue(queue, "later", task="shop.tasks.other", run_after=3600.0)
    return made


# -- the list ----------------------------------------------------------------------


def test_the_list_shows_groups_with_counts_and_links(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    acting = user("view_job")
    client.force_login(acting)
    response = client.get(JOBS, {"queue": queue})
    assert response.status_code == 200
    page = response.content.decode()
    assert shown(page) == sorted(jobs.values(), reverse=True)
    groups = page.split('id="tock-groups"', 1)[1].split("</p>", 1)[0]
    for label, n in [
        ("all", 5), ("failed", 1), ("lost", 0), ("running", 1), ("claimed", 0), ("ready", 1),
        ("scheduled", 1), ("blocked", 0), ("succeeded", 1), ("canceled", 0),
    ]:  # fmt: skip
        assert re.search(rf">{label}</(a|strong)> <span[^>]*>\({n}\)</span>", groups), label
    assert f"?queue={queue}&amp;state=failed" in groups
    # A view-only user sees no action control.
    assert 'name="action"' not in page and 'name="ids"' not in page


def test_counts_beyond_the_cap_show_as_at_least(
    client: Any, user: Callable[..., Any], queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib import admin

    from tock.contrib.django.models import Job

    monkeypatch.setattr(admin.site._registry[Job], "count_cap", 1)
    enqueue(queue, 1)
    enqueue(queue, 2)
    finish(queue, "succeeded")
    acting = user("view_job")
    client.force_login(acting)
    page = client.get(JOBS, {"queue": queue}).content.decode()
    groups = page.split('id="tock-groups"', 1)[1].split("</p>", 1)[0]
    assert re.search(r">succeeded</a> <span[^>]*title=\"at least[^>]*>\(1\+\)</span>", groups)


def test_the_list_pages_newest_first_by_cursor_escaped(
    client: Any,
    user: Callable[..., Any],
    queue: str,
    jobs: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.contrib import admin

    from tock.contrib.django.models import Job

    monkeypatch.setattr(admin.site._registry[Job], "list_per_page", 2)
    acting = user("view_job")
    client.force_login(acting)
    everything = sorted(jobs.values(), reverse=True)
    page = client.get(JOBS, {"queue": queue}).content.decode()
    assert shown(page) == everything[:2]
    assert f'href="?queue={queue}&amp;after={everything[1]}" id="tock-next">Next page' in page
    page = client.get(JOBS, {"queue": queue, "after": everything[2]}).content.decode()
    assert shown(page) == everything[3:]
    assert 'id="tock-next"' not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page


def test_the_list_shows_one_group(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    acting = user("view_job")
    client.force_login(acting)
    for group, expected in [
        ("failed", ["failed"]),
        ("running", ["running"]),
        ("ready", ["ready"]),
        ("scheduled", ["scheduled"]),
        ("succeeded", ["succeeded"]),
        ("canceled", []),
    ]:
        page = client.get(JOBS, {"queue": queue, "state": group}).content.decode()
        assert shown(page) == [jobs[name] for name in expected], group
        assert f"<strong>{group}</strong>" in page


def test_the_list_filters_by_task_from_a_select(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    from tock.contrib.django import app

    acting = user("view_job")
    client.force_login(acting)
    page = client.get(JOBS, {"queue": queue, "task": "shop.tasks.other"}).content.decode()
    assert shown(page) == [jobs["scheduled"]]
    assert '<option value="shop.tasks.other" selected>' in page
    for name in app.tasks:
        assert f'<option value="{name}"' in page
    groups = page.split('id="tock-groups"', 1)[1].split("</p>", 1)[0]
    assert re.search(r">scheduled</a> <span[^>]*>\(1\)</span>", groups)
    assert re.search(r">failed</a> <span[^>]*>\(0\)</span>", groups)


def test_the_list_links_each_queue(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    acting = user("view_job")
    client.force_login(acting)
    page = client.get(JOBS).content.decode()
    assert f'<a href="?queue={queue}">{queue}</a>' in page
    page = client.get(JOBS, {"queue": queue}).content.decode()
    assert f"<strong>{queue}</strong>" in page and "all queues" in page


def test_search_finds_arguments_task_and_ids(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    acting = user("view_job")
    client.force_login(acting)
    page = client.get(JOBS, {"queue": queue, "q": "NEEDLE"}).content.decode()
    assert shown(page) == [jobs["ready"]]
    page = client.get(JOBS, {"queue": queue, "q": "tasks.other"}).content.decode()
    assert shown(page) == [jobs["scheduled"]]
    page = client.get(JOBS, {"queue": queue, "q": "<script>"}).content.decode()
    assert shown(page) == [jobs["failed"]]
    # An id, or a unique key, is also an exact match of any age.
    page = client.get(JOBS, {"q": str(jobs["failed"])}).content.decode()
    assert f'href="/admin/tock/job/{jobs["failed"]}/change/">Job {jobs["failed"]}</a>' in page
    page = client.get(JOBS, {"q": f"key-{queue}"}).content.decode()
    exact = page.split('id="tock-exact"', 1)[1].split("</ul>", 1)[0]
    assert f"Job {jobs['failed']}" in exact


def test_search_looks_at_a_bounded_window_and_offers_older_jobs(
    client: Any,
    user: Callable[..., Any],
    queue: str,
    jobs: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.contrib import admin

    from tock.contrib.django.models import Job

    monkeypatch.setattr(admin.site._registry[Job], "search_scan", 1)
    acting = user("view_job")
    client.force_login(acting)
    found: list[int] = []
    params: dict[str, Any] = {"queue": queue, "q": "a"}  # in every job's task name
    for _ in range(20):
        page = client.get(JOBS, params).content.decode()
        found += shown(page)
        link = re.search(r'href="\?([^"]*)" id="tock-next">Search older jobs<', page)
        if link is None:
            break
        params = dict(re.findall(r"([^&=;]+)=([^&]*)", link[1].replace("&amp;", "&")))
        params = {k.replace("amp;", ""): v for k, v in params.items()}
    assert found == sorted(jobs.values(), reverse=True)


def test_the_list_refuses_bad_input(client: Any, user: Callable[..., Any], db: str) -> None:
    acting = user("view_job")
    client.force_login(acting)
    for params, told in [
        ({"state": "nope"}, "unknown group 'nope'"),
        ({"after": "abc"}, "after= takes a page's cursor, not 'abc'"),
        ({"after": "0"}, "after= takes a cursor"),
        ({"queue": "no spaces"}, "queue"),
        ({"task": "no spaces"}, "task"),
        ({"q": "x" * 1001}, "at most 1000 characters"),
    ]:
        response = client.get(JOBS, params)
        assert response.status_code == 400, params
        assert told in response.content.decode()
    assert client.put(JOBS, {}).status_code == 405


def test_permissions_of_the_list_and_a_job(
    client: Any, user: Callable[..., Any], jobs: dict[str, int]
) -> None:
    from tock.contrib.django import app

    url = job_url(jobs["failed"])
    client.force_login(user("view_worker"))
    assert client.get(JOBS).status_code == 403
    assert client.get(url).status_code == 403
    acting = user("view_job")
    client.force_login(acting)
    assert client.get(JOBS).status_code == 200
    assert client.post(JOBS, {"action": "retry", "ids": [jobs["failed"]]}).status_code == 403
    assert client.post(url, {"action": "retry"}).status_code == 403
    assert app.get_job(jobs["failed"]).status == "failed"
    assert history(acting, str(jobs["failed"])) == []
    client.logout()
    for target in (JOBS, url):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_actions_need_the_csrf_token(user: Callable[..., Any], jobs: dict[str, int]) -> None:
    from django.test import Client

    from tock.contrib.django import app

    client = Client(enforce_csrf_checks=True)
    acting = user("view_job", "change_job")
    client.force_login(acting)
    assert client.post(JOBS, {"action": "retry", "ids": [jobs["failed"]]}).status_code == 403
    assert client.post(job_url(jobs["failed"]), {"action": "retry"}).status_code == 403
    assert app.get_job(jobs["failed"]).status == "failed"


# -- a job's page ------------------------------------------------------------------


def test_a_jobs_page_shows_everything_escaped(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    acting = user("view_job")
    client.force_login(acting)
    response = client.get(job_url(jobs["failed"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Job {jobs['failed']}" in page
    assert "&quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in page
    assert "<script>alert(1)" not in page
    assert "the &lt;b&gt;last&lt;/b&gt; error" in page and "<b>last</b>" not in page
    # The last error at the top; each attempt's error with its traceback, oldest first.
    last = page.split('id="tock-last-error">', 1)[1].split("</td>", 1)[0]
    assert "builtins.ValueError" in last and "builtins.KeyError" not in last
    errors = page.split('id="tock-errors"', 1)[1]
    assert errors.index("builtins.KeyError") < errors.index("builtins.ValueError")
    assert "first frame" in page and "last frame" in page
    assert f"key-{queue}" in page and f"w-{queue}" in page and queue in page
    assert "Retry on" in page and "builtins.Exception" in page
    assert 'name="action"' not in page  # view only
    page = client.get(job_url(jobs["succeeded"])).content.decode()
    assert "&quot;html&quot;: &quot;&lt;i&gt;done&lt;/i&gt;&quot;" in page
    assert 'id="tock-result"' in page


def test_a_jobs_page_offers_the_actions_of_its_state(
    client: Any, user: Callable[..., Any], jobs: dict[str, int]
) -> None:
    acting = user("view_job", "change_job")
    client.force_login(acting)
    for name, actions in [
        ("failed", {"retry", "delete"}),
        ("succeeded", {"delete"}),
        ("ready", {"run_now", "cancel"}),
        ("running", {"stop"}),
    ]:
        page = client.get(job_url(jobs[name])).content.decode()
        assert set(re.findall(r'name="action" value="(\w+)"', page)) == actions, name


def test_a_missing_or_bad_job_is_a_404_that_says_why(
    client: Any, user: Callable[..., Any], jobs: dict[str, int]
) -> None:
    from tock.contrib.django import app

    acting = user("view_job")
    client.force_login(acting)
    app.delete_job(jobs["succeeded"])  # as the pruner would
    for object_id, told in [
        (str(jobs["succeeded"]), f"Job {jobs['succeeded']} does not exist"),
        ("999999999999", "was pruned"),
        ("abc", "&#x27;abc&#x27; is not a job id"),
        ("0", "&#x27;0&#x27; is not a job id"),
        (str(2**64), "is not a job id"),
    ]:
        response = client.get(
            job_url(int(object_id)) if object_id.isdigit() else f"{JOBS}{object_id}/change/"
        )
        assert response.status_code == 404, object_id
        assert told in response.content.decode(), object_id


def test_a_jobs_short_url_leads_to_its_page(
    client: Any, user: Callable[..., Any], jobs: dict[str, int]
) -> None:
    """``<id>/`` (a link written by hand) redirects to ``<id>/change/``, as Django's
    admin does; anonymous users are still sent to the login first."""
    job_id = jobs["failed"]
    assert client.get(f"{JOBS}{job_id}/").url.startswith("/admin/login/")
    client.force_login(user("view_job"))
    response = client.get(f"{JOBS}{job_id}/")
    assert response.status_code == 302 and response.url == job_url(job_id)
    assert client.get(f"{JOBS}{job_id}/", follow=True).status_code == 200


# -- actions -----------------------------------------------------------------------


def test_retry_a_selection_tells_each_refusal_and_logs_each_job(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    from django.contrib.admin.models import CHANGE

    from tock.contrib.django import app

    acting = user("view_job", "change_job")
    client.force_login(acting)
    response = client.post(
        f"{JOBS}?queue={queue}",
        {"action": "retry", "ids": [jobs["failed"], jobs["ready"]]},
    )
    assert response.status_code == 302 and response["Location"] == f"{JOBS}?queue={queue}"
    assert app.get_job(jobs["failed"]).status == "pending"
    assert app.get_job(jobs["ready"]).status == "pending"
    told = messages_of(client.get(response["Location"]))
    assert f"Retried: job(s) {jobs['failed']}." in told
    assert any(m.startswith(f"Job {jobs['ready']}: cannot retry job") for m in told)
    (entry,) = history(acting, str(jobs["failed"]))
    assert entry.user == acting and entry.action_flag == CHANGE
    assert entry.change_message == "Retried."
    assert history(acting, str(jobs["ready"])) == []


def test_cancel_run_now_stop_and_delete_a_selection(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    from django.contrib.admin.models import DELETION

    from tock.contrib.django import app
    from tock.errors import JobNotFound

    acting = user("view_job", "change_job")
    client.force_login(acting)
    client.post(JOBS, {"action": "run_now", "ids": [jobs["scheduled"]]})
    assert [j.id for j in app.list_jobs(state="ready", queue=queue)] == sorted(
        [jobs["scheduled"], jobs["ready"]], reverse=True
    )
    client.post(JOBS, {"action": "cancel", "ids": [jobs["ready"]]})
    assert app.get_job(jobs["ready"]).status == "canceled"
    client.post(JOBS, {"action": "stop", "ids": [jobs["running"]]})
    assert jobs["running"] in app.store.worker_commands(f"w-{queue}").stop_jobs
    client.post(JOBS, {"action": "delete", "ids": [jobs["succeeded"]]})
    with pytest.raises(JobNotFound):
        app.get_job(jobs["succeeded"])
    assert [e.change_message for e in history(acting, str(jobs["scheduled"]))] == ["Made ready."]
    assert [e.change_message for e in history(acting, str(jobs["ready"]))] == ["Canceled."]
    assert [e.change_message for e in history(acting, str(jobs["running"]))] == ["Asked to stop."]
    (deleted,) = history(acting, str(jobs["succeeded"]))
    assert deleted.action_flag == DELETION


def test_actions_on_all_matching_jobs_log_one_entry(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    from tock.contrib.django import app

    more = enqueue(queue, "another")
    acting = user("view_job", "change_job")
    client.force_login(acting)
    url = f"{JOBS}?queue={queue}&state=ready"
    response = client.post(url, {"action": "cancel", "across": "1"}, follow=True)
    assert f"Canceled 2 job(s) of state ready, queue {queue}." in messages_of(response)
    assert app.get_job(more).status == "canceled" and app.get_job(jobs["ready"]).status == (
        "canceled"
    )
    assert app.get_job(jobs["scheduled"]).status == "pending"
    (entry,) = history(acting, repr_has=f"queue {queue}")
    assert entry.object_id is None and entry.user == acting
    assert entry.change_message == f"Canceled 2 job(s) of state ready, queue {queue}."
    # Run now and retry by filter, too.
    client.post(f"{JOBS}?queue={queue}&state=scheduled", {"action": "run_now", "across": "1"})
    assert app.get_job(jobs["scheduled"]).record.run_at <= app.store.db_now(now=None)
    client.post(f"{JOBS}?queue={queue}&state=canceled", {"action": "retry", "across": "1"})
    assert app.get_job(more).status == "pending"
    # Stop by filter: the running job is asked to stop, the three pending ones (two
    # retried, one made ready) are canceled.
    response = client.post(f"{JOBS}?queue={queue}", {"action": "stop", "across": "1"}, follow=True)
    assert f"Asked to stop 4 job(s) of queue {queue}." in messages_of(response)
    assert jobs["running"] in app.store.worker_commands(f"w-{queue}").stop_jobs
    assert app.get_job(more).status == "canceled" and app.get_job(jobs["ready"]).status == (
        "canceled"
    )
    assert app.get_job(jobs["scheduled"]).status == "canceled"
    assert app.get_job(jobs["failed"]).status == "failed"  # finished: left alone
    assert len(history(acting, repr_has=f"queue {queue}")) == 4


def test_bad_actions_are_told_and_change_nothing(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    from tock.contrib.django import app

    acting = user("view_job", "change_job")
    client.force_login(acting)
    before = {j.id: j.status for j in app.list_jobs(queue=queue)}
    for url, form, told in [
        (JOBS, {"action": "drop_tables", "ids": [jobs["failed"]]}, "Unknown action 'drop_tables'"),
        (JOBS, {"action": "retry"}, "No job selected"),
        (JOBS, {"action": "retry", "ids": ["abc"]}, "'abc' is not a job id."),
        (JOBS, {"action": "retry", "ids": ["999999999999"]}, "Job 999999999999 does not exist"),
        (f"{JOBS}?q=x", {"action": "retry", "across": "1"}, "does not take a search"),
        (job_url(jobs["failed"]), {"action": "nope"}, "Unknown action 'nope'"),
        (job_url(jobs["ready"]), {"action": "retry"}, f"Job {jobs['ready']}: cannot retry"),
    ]:
        response = client.post(url, form, follow=True)
        assert response.status_code == 200, form
        assert any(told in m for m in messages_of(response)), (form, messages_of(response))
    response = client.post(f"{JOBS}?state=nope", {"action": "retry", "across": "1"})
    assert response.status_code == 400
    assert "unknown group 'nope'" in response.content.decode()
    assert {j.id: j.status for j in app.list_jobs(queue=queue)} == before
    assert all(history(acting, str(i)) == [] for i in jobs.values())


def test_actions_from_a_jobs_page(
    client: Any, user: Callable[..., Any], jobs: dict[str, int]
) -> None:
    from tock.contrib.django import app
    from tock.errors import JobNotFound

    acting = user("view_job", "change_job")
    client.force_login(acting)
    url = job_url(jobs["failed"])
    response = client.post(url, {"action": "retry"})
    assert response.status_code == 302 and response["Location"] == url
    assert app.get_job(jobs["failed"]).status == "pending"
    assert f"Job {jobs['failed']}: retried." in messages_of(client.get(url))
    response = client.post(job_url(jobs["succeeded"]), {"action": "delete"})
    assert response["Location"] == JOBS
    with pytest.raises(JobNotFound):
        app.get_job(jobs["succeeded"])
    assert (
        len(history(acting, str(jobs["failed"]))) == 1
        and len(history(acting, str(jobs["succeeded"]))) == 1
    )


# -- the workers page's counts -------------------------------------------------------


def test_the_workers_page_counts_finished_jobs_with_a_cap(
    client: Any, user: Callable[..., Any], queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib import admin

    from tock.contrib.django.models import Worker

    enqueue(queue, 1)
    enqueue(queue, 2)
    finish(queue, "succeeded")
    client.force_login(user("view_worker"))
    row = _queue_row(client.get("/admin/tock/worker/").content.decode(), queue)
    assert "<td>2</td>" in row and "+" not in row
    monkeypatch.setattr(admin.site._registry[Worker], "count_cap", 1)
    row = _queue_row(client.get("/admin/tock/worker/").content.decode(), queue)
    assert "<td>1+</td>" in row


def _queue_row(page: str, queue: str) -> str:
    table = page.split('id="tock-queues"', 1)[1].split("</table>", 1)[0]
    return next(r for r in table.split("<tr>") if f"<td>{queue}</td>" in r)


def test_a_user_who_may_change_sees_the_controls(
    client: Any, user: Callable[..., Any], queue: str, jobs: dict[str, int]
) -> None:
    client.force_login(user("view_job", "change_job"))
    page = client.get(JOBS, {"queue": queue}).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page
    assert set(re.findall(r'<option value="(\w+)">', page.split('name="action"', 1)[1])) >= {
        "retry", "cancel", "run_now", "stop", "delete"
    }  # fmt: skip
    assert sorted(int(i) for i in re.findall(r'name="ids" value="(\d+)"', page)) == sorted(
        jobs.values()
    )
    assert f"all jobs of queue {queue}, not only those ticked" in page
    # With a search, the actions take ticked jobs only.
    page = client.get(JOBS, {"queue": queue, "q": "needle"}).content.decode()
    assert 'name="across"' not in page and 'name="ids"' in page


def test_a_job_s_page_shows_what_it_waits_on_and_what_waits_on_it(
    client: Any, user: Callable[..., Any], queue: str
) -> None:
    client.force_login(user("view_job"))
    first = enqueue(queue, "a")
    waiting = enqueue(queue, "b", depends_on=(first,), on_dependency_failure="run")
    page = client.get(job_url(waiting)).content.decode()
    assert f'<a href="/admin/tock/job/{first}/change/">{first}</a> (pending)' in page
    assert "<th>Not met yet</th><td>1</td>" in page
    assert "it runs anyway" in page
    page = client.get(job_url(first)).content.decode()
    assert f'<a href="/admin/tock/job/{waiting}/change/">{waiting}</a> (blocked)' in page
    assert "Waits on" not in page
    plain = client.get(job_url(enqueue(queue, "c"))).content.decode()
    assert "Dependencies" not in plain
