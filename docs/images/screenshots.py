"""The admin's screenshots in docs/django.md and the README: a small project's jobs
page, a failed job's page and the workers page, taken with headless Chromium.

    python docs/images/screenshots.py               # writes docs/images/admin-*.png
    python docs/images/screenshots.py --out /tmp/shots --chromium chromium-browser

Everything lives in a temporary directory for the run: Django configured here (the
admin without its navigation sidebar, ``tock.contrib.django``, Django's and Tock's tables
in one SQLite file), a superuser, a shop's tasks, some jobs (succeeded, failed with a
traceback, scheduled, one running), a schedule, and a worker in this process (live, the
leader) that ran them. The admin is served on 127.0.0.1 at a free port, with Django's
development server (and its static files, as ``runserver`` serves them), in a thread.
Chromium's command line cannot carry a session cookie, so the server's settings hold one
middleware more, for this run only: every request from 127.0.0.1 is the superuser's.
Nothing else listens; the server stops with the script.

A page not built yet (404) is reported and its image is left as it was.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIZE = "1280,900"
#: the pages: (file name, path; "{failed}" is a failed job's id)
PAGES = (
    ("admin-jobs.png", "/admin/tock/job/"),
    ("admin-job-failed.png", "/admin/tock/job/{failed}/change/"),
    ("admin-workers.png", "/admin/tock/worker/"),
)

urlpatterns: list[Any] = []  #: the admin's, once Django is set up (ROOT_URLCONF)


class CardDeclined(Exception):
    """The payment gateway's refusal (a failed job's error in the screenshots)."""


CardDeclined.__module__ = "payments.gateway"  # as a project's own error is named


def loopback_superuser(get_response: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """For the screenshot run only: a request from 127.0.0.1 is the superuser's (the
    server listens there alone, for the few seconds the screenshots take)."""

    def middleware(request: Any) -> Any:
        if request.META.get("REMOTE_ADDR") == "127.0.0.1":
            from django.contrib.auth import get_user_model

            request.user = get_user_model().objects.get(username="admin")
        return get_response(request)

    return middleware


def configure(folder: Path) -> None:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="screenshots-only",
        DEBUG=False,
        USE_TZ=True,
        TIME_ZONE="UTC",
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "tock.contrib.django",
        ],
        STATIC_URL="/static/",
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            f"{__name__}.loopback_superuser",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(folder / "shop.db"),
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            }
        },
        TOCK={"DATABASE": "default"},
    )
    django.setup()
    from django.contrib import admin
    from django.urls import path

    admin.site.enable_nav_sidebar = False  # the page itself, at the width of a README
    urlpatterns[:] = [path("admin/", admin.site.urls)]
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("admin", "admin@example.com", "admin")


def fill(stop: threading.Event) -> tuple[int, Any, threading.Thread]:
    """A shop's tasks and jobs, a schedule, and a worker that ran them and stays up
    (live, the leader) until ``stop``; the id of a failed job, the worker and its
    thread."""
    from tock.contrib.django import app
    from tock.worker.worker import Worker, WorkerConfig

    @app.task(name="orders.send_confirmation", queue="emails")
    def send_confirmation(order_id: int, to: str) -> str:
        return f"sent to {to}"

    @app.task(name="orders.charge_card", queue="payments")
    def charge_card(order_id: int, amount_cents: int) -> dict[str, Any]:
        if amount_cents > 20_000:
            raise CardDeclined(f"order {order_id}: card declined by issuer (insufficient funds)")
        return {"charged": amount_cents}

    @app.task(name="media.make_thumbnails", queue="images")
    def make_thumbnails(path: str, sizes: list[int]) -> int:
        return len(sizes)

    @app.task(name="reports.build_daily", queue="reports")
    def build_daily(day: str) -> None:
        stop.wait(120)  # still running when the pictures are taken

    names = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Barbara Liskov")
    for i in range(12):
        order = 41_200 + i
        email = names[i % 4].lower().replace(" ", ".") + "@example.com"
        send_confirmation.enqueue(order, email)
        charge_card.enqueue(order, 4_900 + 2_700 * i)
        if i % 3 == 0:
            make_thumbnails.enqueue(f"uploads/{order}/photo.jpg", [64, 256, 1024])
    for i in range(3):
        send_confirmation.using(run_after=3600 * (i + 1)).enqueue(41_300 + i, "ops@example.com")
    app.schedule("nightly-report", task=build_daily, cron="0 2 * * *", args=["yesterday"])
    worker = Worker(
        app,
        WorkerConfig(queues=("default", "emails", "payments", "images", "reports"), concurrency=4),
    )
    thread = threading.Thread(target=worker.run, kwargs={"install_signal_handlers": False})
    thread.start()
    build_daily.enqueue("2026-12-04")
    deadline = time.monotonic() + 60
    while True:
        page = app.list_jobs(state="failed")
        settled = not app.list_jobs(state="ready").jobs and app.list_jobs(state="started").jobs
        if page.jobs and settled and app.health()["leader"] is not None:
            return page.jobs[0].id, worker, thread
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not run the jobs within 60 s")
        time.sleep(0.2)


def serve() -> tuple[Any, int]:
    """Django's development server on 127.0.0.1, a free port, in a thread."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

    class Quiet(WSGIRequestHandler):  # type: ignore[misc]
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = WSGIServer(("127.0.0.1", 0), Quiet, ipv6=False)
    server.set_app(StaticFilesHandler(WSGIHandler()))  # the admin's CSS, as runserver does
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def shoot(chromium: str, url: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                f"--user-data-dir={profile}",
                f"--window-size={SIZE}",
                f"--screenshot={out}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE, help="where the PNGs go")
    parser.add_argument("--chromium", default="chromium", help="the browser's command")
    args = parser.parse_args()
    if shutil.which(args.chromium) is None:
        raise SystemExit(
            f"{args.chromium!r} not found: install Chromium (apt-get install chromium)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("tock").setLevel(logging.ERROR)  # the failures are on purpose
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as folder:
        configure(Path(folder))
        failed, worker, thread = fill(stop)
        server, port = serve()
        try:
            for name, page in PAGES:
                url = f"http://127.0.0.1:{port}{page.format(failed=failed)}"
                try:
                    status = urllib.request.urlopen(url, timeout=30).status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                if status != 200:
                    print(f"{name}: {url} answers {status}; left as it was", file=sys.stderr)
                    continue
                shoot(args.chromium, url, args.out / name)
                size = (args.out / name).stat().st_size
                print(f"{name}: {url} ({size / 1024:.0f} KB)")
        finally:
            server.shutdown()
            stop.set()
            worker.stop()
            thread.join(60)  # it resigns as leader: before its database goes
            from tock.contrib.django import app

            app.close()


if __name__ == "__main__":
    main()
