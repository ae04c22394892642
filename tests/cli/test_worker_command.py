"""``tock worker``: bad options in process; running and stopping in real processes.

Real processes use real time: they wait on files and rows with generous deadlines and
never assert how long anything took.
"""

from __future__ import annotations

import json
import signal
import sqlite3

import pytest

from tock import JobStatus

from .helpers import Project, assert_error, poll, run_cli, statuses, terminate, wait_exit, wait_for

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--queues", "default,bad queue"], ["invalid queue name 'bad queue'"]),
        (["--queues", ","], ["at least one queue"]),
        (["--concurrency", "0"], ["--concurrency", ">= 1"]),
        (["--concurrency", "-2"], ["--concurrency", ">= 1"]),
        (["--prefetch", "-1"], ["--prefetch"]),
        (["--claimers", "0"], ["--claimers", "from 1 to 4"]),
        (["--claimers", "5"], ["--claimers", "from 1 to 4"]),
        (["--shutdown-grace", "-1"], ["--shutdown-grace"]),
        (["--shutdown-grace", "nan"], ["--shutdown-grace"]),
        (["--lease-ttl", "0"], ["--lease-ttl must be a positive duration"]),
        (["--lease-renew", "-1"], ["--lease-renew must be a positive duration"]),
        (["--lease-ttl", "4", "--lease-renew", "2"], ["--lease-renew (2 s) must be under"]),
    ],
)
def test_bad_options(project: Project, args: list[str], fragments: list[str]) -> None:
    line = assert_error(project.invoke("worker", *args), *fragments)
    assert "shutdown_grace" not in line  # the option, not the Python parameter
    assert "renew_interval" not in line


def test_not_a_number_is_a_usage_error(project: Project) -> None:
    assert project.invoke("worker", "--concurrency", "many").exit_code == 2


def test_worker_needs_an_app(project: Project) -> None:
    assert_error(project.invoke("worker", "--burst", app=None), "--app", "TOCK_APP")


def test_burst_runs_jobs_to_completion(project: Project) -> None:
    mod = project.mod
    adds = [mod.add.enqueue(i, 10) for i in range(5)]
    bad = mod.boom.enqueue("nope")
    done = run_cli(project, "--app", "cliapp:app", "worker", "--burst", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    assert [job.refresh().result() for job in adds] == [10, 11, 12, 13, 14]
    assert bad.refresh().status is JobStatus.FAILED
    assert "worker" in done.stderr and "started" in done.stderr  # logging at INFO on stderr
    assert done.stdout == ""


def test_json_log_lines_name_each_failed_job(project: Project) -> None:
    mod = project.mod
    ok = mod.add.enqueue(1, 2)
    bad = mod.boom.enqueue("nope")
    done = run_cli(
        project, "--app", "cliapp:app", "worker", "--burst", "--log-format", "json",
        "--log-level", "debug",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    by_job = {(r.get("job_id"), r.get("outcome")): r for r in lines if r["logger"] == "tock.job"}
    failed = by_job[(bad.id, "failed")]
    assert (failed["level"], failed["task"], failed["attempt"]) == ("WARNING", "cliapp.boom", 1)
    assert failed["error"].endswith(": nope")
    assert by_job[(ok.id, "succeeded")]["level"] == "DEBUG"
    assert (ok.id, "started") in by_job
    assert any(r["logger"] == "tock.worker" and "started" in r["message"] for r in lines)


def test_bad_log_format_is_a_usage_error(project: Project) -> None:
    assert project.invoke("worker", "--log-format", "xml").exit_code == 2


def test_burst_with_two_claimers(project: Project) -> None:
    mod = project.mod
    adds = mod.add.enqueue_many([(i, 1) for i in range(300)])
    done = run_cli(
        project, "--app", "cliapp:app", "worker", "--burst", "--claimers", "2", "--prefetch", "50"
    )
    assert done.returncode == 0, done.stderr
    assert [job.refresh().result() for job in adds] == [i + 1 for i in range(300)]


def test_burst_serves_only_its_queues(project: Project) -> None:
    mod = project.mod
    mail = mod.add.using(queue="emails").enqueue(1, 1)
    report = mod.add.using(queue="reports").enqueue(2, 2)
    other = mod.add.enqueue(3, 3)
    done = run_cli(
        project, "--app", "cliapp:app", "worker", "--burst", "--queues", "emails,reports"
    )
    assert done.returncode == 0, done.stderr
    assert statuses(project.app, [mail.id, report.id, other.id]) == [
        "succeeded",
        "succeeded",
        "pending",
    ]


def test_log_level(project: Project) -> None:
    done = run_cli(project, "--app", "cliapp:app", "worker", "--burst", "--log-level", "warning")
    assert done.returncode == 0, done.stderr
    assert "started" not in done.stderr


def test_sigterm_lets_the_running_job_finish(project: Project) -> None:
    marker = project.path / "slow-started"
    job = project.mod.slow.enqueue(str(marker), 1.0)
    proc = project.spawn("worker", "--concurrency", "1")
    wait_for(marker.exists, "the job to start", project, proc)
    assert terminate(proc, project) == 0, project.log_text()
    job.refresh()
    assert job.status is JobStatus.SUCCEEDED, project.log_text()
    assert job.result() == "slept"
    assert project.app.store.worker_list() == []


def test_sigterm_hands_back_claimed_jobs_that_never_started(project: Project) -> None:
    mod = project.mod
    gate = project.path / "gate"
    first_started = project.path / "first-started"
    second_started = project.path / "second-started"
    first = mod.gated.enqueue(str(first_started), str(gate))
    second = mod.gated.enqueue(str(second_started), str(gate))
    proc = project.spawn("worker", "--concurrency", "1", "--prefetch", "1")
    try:
        wait_for(first_started.exists, "the first job to start", project, proc)
        wait_for(
            lambda: second.refresh().status is JobStatus.RUNNING,
            "the second job to be claimed",
            project,
            proc,
        )
        proc.send_signal(signal.SIGTERM)
        # The hand-back is written while the first job still runs; whether or not it
        # shows before the gate opens, the end state below is what counts.
        poll(lambda: second.refresh().status is JobStatus.PENDING, timeout=30)
    finally:
        gate.touch()
    assert wait_exit(proc, project) == 0, project.log_text()
    assert first.refresh().status is JobStatus.SUCCEEDED, project.log_text()
    record = project.app.store.job_get(second.id)
    assert record.status is JobStatus.PENDING, project.log_text()
    assert record.attempts == 0
    assert record.worker_id is None
    assert not second_started.exists()


def test_a_second_signal_stops_at_once(project: Project) -> None:
    # The gated job would run for two minutes and the grace is ten: only the second
    # signal explains the worker stopping before the gate opens. Its running job is
    # then settled as a dead worker's: back to pending, with a rescue counted.
    gate = project.path / "gate"
    started = project.path / "started"
    job = project.mod.gated.enqueue(str(started), str(gate))
    proc = project.spawn("worker", "--concurrency", "1", "--shutdown-grace", "600")
    try:
        wait_for(started.exists, "the job to start", project, proc)
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "signal again" in project.log_text(), "the first signal", project, proc)
        proc.send_signal(signal.SIGTERM)
        assert wait_exit(proc, project) == 0, project.log_text()
        assert not gate.exists()
    finally:
        gate.touch()
    record = project.app.store.job_get(job.id)
    assert record.status is JobStatus.PENDING, project.log_text()
    assert record.rescues == 1
    assert record.worker_id is None
    assert "second signal: stopping at once" in project.log_text()
    assert project.app.store.worker_list() == []


def test_worker_on_a_foreign_database_says_run_migrate(project: Project) -> None:
    with sqlite3.connect(project.path / "tock.db") as conn:
        conn.execute("CREATE TABLE theirs (x)")
    conn.close()
    done = run_cli(project, "--app", "cliapp:app", "worker", "--burst")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1
    assert "run `tock migrate`" in errors[0]


def test_worker_logs_show_a_record_once_at_the_level_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A project's logger with a console handler of its own (Django's "django" with
    DEBUG on) is not echoed a second time, and its records below --log-level are not
    shown by the worker's handler even when that logger's own level lets them through."""
    import logging
    import sys

    from tock.cli.worker import setup_logging

    project_logger = logging.getLogger("project_with_console")
    own = logging.StreamHandler(sys.stderr)
    own.setFormatter(logging.Formatter("own: %(message)s"))
    project_logger.addHandler(own)
    project_logger.setLevel(logging.INFO)
    quiet = logging.getLogger("project_without_console")
    quiet.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    handler = setup_logging("warning")
    try:
        project_logger.warning("printed by its own handler")
        quiet.info("below the level asked")
        quiet.warning("printed by the worker's")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        project_logger.removeHandler(own)
    err = capsys.readouterr().err
    assert err.count("printed by its own handler") == 1
    assert "own: printed by its own handler" in err
    assert "below the level asked" not in err
    assert err.count("printed by the worker's") == 1
