"""The project's app: what a worker runs, and the CLI from Django (docs/django.md)."""

from __future__ import annotations

import json

import pytest

from .test_backend import run_worker

pytestmark = pytest.mark.usefixtures("django_project")


def test_the_app_is_one_object_on_the_settings_alias() -> None:
    from tock.contrib.django import DjangoTock, app
    from tock.contrib.django.conf import get_app

    assert isinstance(app, DjangoTock) and app is get_app()
    assert app.alias == "default"
    assert "shop.tasks.process_order" in app.tasks  # discovered from shop/tasks.py
    assert "shop.tasks.add" in app.tasks  # a Django task, by its module path


def test_a_job_of_a_name_no_module_registers_never_runs(db: str) -> None:
    """A worker runs registered tasks only, never a path read from a row."""
    from tock.contrib.django import app
    from tock.jobs import NewJob

    (job,) = app.insert_jobs([NewJob(task="os.system", args='["true"]', kwargs="{}")])
    run_worker()
    record = job.refresh().record
    assert record.status == "failed"
    assert record.error is not None and record.error["type"] == "tock.UnknownTask"


def test_sync_jobs_run_between_close_old_connections() -> None:
    from django.db import connections

    from tock.contrib.django import app

    tasks = app.worker_tasks()
    plain = tasks["shop.tasks.process_order"]
    assert plain.fn is not app.tasks["shop.tasks.process_order"].fn
    assert plain.fn.__wrapped__ is app.tasks["shop.tasks.process_order"].fn
    # A Django task's runner has the cycle already: not wrapped twice.
    assert tasks["shop.tasks.add"] is app.tasks["shop.tasks.add"]
    # CONN_MAX_AGE = 0: the connection a job used is closed when it ends, as after a
    # request (a worker never keeps one past its age, nor a broken one).
    connection = connections["default"]
    connection.ensure_connection()
    assert connection.connection is not None
    plain.fn(0)
    assert connection.connection is None


def test_manage_py_tock_from_call_command(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    call_command("tock", "status", "--json")
    status = json.loads(capsys.readouterr().out)
    assert status["schema"]["version"] == status["schema"]["latest"]


def test_call_command_writes_to_the_streams_given_and_fails_as_django_commands_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    from django.core.management import CommandError, call_command

    out, err = io.StringIO(), io.StringIO()
    call_command("tock", "jobs", "list", "--json", stdout=out, stderr=err)
    assert isinstance(json.loads(out.getvalue()), list)
    # A command's own exit status (no worker runs here) is a CommandError, not SystemExit;
    # its hints name the command as it was called.
    with pytest.raises(CommandError, match="exited with status 1") as failed:
        call_command("tock", "status", "--check", stdout=out, stderr=err)
    assert failed.value.returncode == 1
    assert "start one with `manage.py tock worker`" in err.getvalue()
    # Tock's one-line errors and click's usage errors too.
    with pytest.raises(CommandError, match="job 999999 not found"):
        call_command("tock", "jobs", "show", "999999", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="No such command 'nope'") as usage:
        call_command("tock", "nope", stdout=out, stderr=err)
    assert usage.value.returncode == 2
    assert capsys.readouterr() == ("", "")  # nothing went to the process's own streams


def test_django_s_own_options_are_taken_out_of_tocks() -> None:
    from tock.contrib.django.management.commands.tock import without_django_options

    args = ["--settings", "a.b", "status", "--pythonpath=/x", "--json", "--", "--settings"]
    assert without_django_options(args) == ["status", "--json", "--", "--settings"]


def test_the_django_migrations_apply_every_tock_migration() -> None:
    """A new Tock schema version needs a Django migration TockSQL(upto=N) (docs/design.md:
    Django): the last one reaches the newest version of both stores."""
    from django.db.migrations.loader import MigrationLoader

    import tock.store.postgres.store as postgres_store
    import tock.store.sqlite.store as sqlite_store
    from tock.contrib.django.migrate import TockSQL

    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = sorted(key for key in loader.disk_migrations if key[0] == "tock")
    uptos = [
        op.upto
        for key in ours
        for op in loader.disk_migrations[key].operations
        if isinstance(op, TockSQL)
    ]
    assert uptos == sorted(uptos) and len(set(uptos)) == len(uptos)
    # The other migrations hold the admin's unmanaged models only (they create no table).
    for key in ours:
        operations = loader.disk_migrations[key].operations
        if not any(isinstance(op, TockSQL) for op in operations):
            assert all(op.options.get("managed") is False for op in operations), key
    assert uptos[-1] == sqlite_store.LATEST == postgres_store.LATEST
