"""``tock jobs``: list, show, retry, cancel, stop, delete and run jobs now, through the app.

Retry applies to failed, lost and canceled jobs (their attempts start again from zero);
cancel to pending and blocked ones; stop to those and running ones (docs/design.md:
Commands). The store refuses anything else with a message
that says why, shown here as one line (docs/design.md: Job lifecycle).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import click
from rich.text import Text

from tock.cli._common import STATUS_STYLES, console, fail, fmt_time, get_app, new_table
from tock.jobs import JobRecord, JobStatus
from tock.store import Dependencies
from tock.tasks import SNAPSHOT

CLAIMED = "claimed"  #: a view of running: claimed by a worker, not started yet
STARTED = "started"  #: the app's view of running jobs whose attempt started
STATES = (*(s.value for s in JobStatus), CLAIMED, "scheduled", "ready")
FC = TypeVar("FC", bound=Callable[..., Any])
MAX_ID = 2**63 - 1  # ids are 64-bit integers (docs/design.md: Jobs and tables)
SHORT_ERROR = 60
WIDE = 100  #: columns from which `jobs list` shows the priority

#: ``job_json``'s keys, in order: the task options each job keeps come from their one
#: definition (``tock.tasks.SNAPSHOT``), so a new option is shown without a change here
_HEAD = ("id", "task", "queue", "priority", "status", "claimed", "args", "kwargs")
_TIMES = ("run_at", "created_at", "started_at", "finished_at")
JSON_KEYS = (
    *_HEAD,
    *_TIMES,
    "attempts",
    "rescues",
    *(name for name in SNAPSHOT if name not in _HEAD),
    "unique_key",
    "worker_id",
    "result",
    "error",
    "last_error",
)


def _check_id(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise click.BadParameter(f"{value} is not a job id: ids go from 1 to {MAX_ID}")
    return value


def job_id_argument() -> Callable[[FC], FC]:
    """The ``ID`` argument: a whole number from 1; anything else is a usage error."""
    return click.argument("job_id", metavar="ID", type=int, callback=_check_id)


@click.group()
def jobs() -> None:
    """List, show, retry, cancel and delete jobs."""


@jobs.command("list")
@click.option(
    "--state",
    "-s",
    "states",
    multiple=True,
    metavar="STATE",
    help=f"Only jobs in these states, comma-separated or repeated: {', '.join(STATES)}.",
)
@click.option("--queue", "-q", help="Only jobs of this queue.")
@click.option("--task", "-t", help="Only jobs of this task (its registered name).")
@click.option("--search", metavar="TEXT", help="Only the job whose id or unique key is TEXT.")
@click.option("--limit", "-n", type=int, default=50, show_default=True, help="At most this many.")
@click.option(
    "--after",
    type=int,
    metavar="ID",
    help="The page after the job with this id (the id a full page names at its end).",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of jobs (keys as in show).")
def list_jobs(
    states: tuple[str, ...],
    queue: str | None,
    task: str | None,
    search: str | None,
    limit: int,
    after: int | None,
    as_json: bool,
) -> None:
    """List jobs, newest first. "claimed" jobs are running jobs a worker holds and has
    not started yet; --state running selects the started ones; "scheduled" and "ready"
    are the pending jobs due later and due now."""
    if limit < 1:
        fail(f"--limit must be at least 1, not {limit}")
    page = get_app().list_jobs(
        state=parse_states(states), queue=queue, task=task, search=search, after=after, limit=limit
    )
    records = [job.record for job in page]
    if as_json:
        click.echo(json.dumps([job_json(r) for r in records], indent=2, ensure_ascii=False))
        return
    out = console()
    if not records:
        out.print("No jobs match.")
        return
    # Narrow terminals drop the priority (`tock jobs show` has it) before squeezing names.
    wide = out.width >= WIDE
    table = new_table()
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Task", overflow="fold")
    table.add_column("Queue", overflow="fold")
    table.add_column("Status", no_wrap=True)
    table.add_column("Attempts", justify="right")
    if wide:
        table.add_column("Priority", justify="right")
    table.add_column("Run at/finished", no_wrap=True)
    table.add_column("Error", overflow="fold")
    for r in records:
        cells: list[str | Text] = [
            str(r.id),
            Text(r.task),
            Text(r.queue),
            Text(shown_status(r), style=STATUS_STYLES[r.status.value]),
            str(r.attempts),
        ]
        if wide:
            cells.append(str(r.priority))
        cells.append(fmt_time(r.finished_at if r.status.finished else r.run_at))
        cells.append(Text(short_error(state_error(r)), style="red"))
        table.add_row(*cells)
    out.print(table)
    if page.next is not None:
        out.print(
            f"More jobs match: --after {page.next} shows the next page, "
            "--limit shows more at once.",
            style="dim",
        )


_KEY_NOTES = {
    "claimed": "claimed (true for a running job not started yet)",
    "error": "error (the error that explains the state, or null)",
    "last_error": "last_error (the last attempt's error, kept as history)",
}
SHOW_HELP = (
    "Show every field of one job, with its error's traceback, what it waits on and what "
    "waits on it.\n\nJSON keys: "
    + ", ".join(_KEY_NOTES.get(key, key) for key in JSON_KEYS)
    + " and dependencies (depends_on and dependents, each a list of {id, status}; "
    "waiting_on, on_failure, canceled_by). Times are ISO 8601, UTC."
)


@jobs.command(help=SHOW_HELP)
@job_id_argument()
@click.option("--json", "as_json", is_flag=True, help="The job as one JSON object.")
def show(job_id: int, as_json: bool) -> None:
    app = get_app()
    record = app.get_job(job_id).record
    deps = app.job_dependencies(job_id)
    if as_json:
        shown = job_json(record)
        shown["dependencies"] = dependencies_json(deps)
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
        return
    for line in describe(record) + describe_dependencies(deps):
        click.echo(line)


def dependencies_json(deps: Dependencies) -> dict[str, Any]:
    """What a job waits on and what waits on it, for programs (docs/workflows.md)."""

    def jobs(pairs: tuple[tuple[int, JobStatus | None], ...]) -> list[dict[str, Any]]:
        return [{"id": i, "status": None if s is None else s.value} for i, s in pairs]

    return {
        "depends_on": jobs(deps.depends_on),
        "dependents": jobs(deps.dependents),
        "waiting_on": deps.waiting_on,
        "on_failure": deps.on_failure,
        "canceled_by": deps.canceled_by,
    }


def describe_dependencies(deps: Dependencies) -> list[str]:
    """Lines for what a job waits on and what waits on it; none without either."""

    def jobs(pairs: tuple[tuple[int, JobStatus | None], ...]) -> str:
        return ", ".join(f"{i} ({'pruned' if s is None else s.value})" for i, s in pairs)

    lines = []
    if deps.depends_on:
        lines.append("")
        lines.append(f"waits on:     {jobs(deps.depends_on)}")
        note = f"{deps.waiting_on} not met yet" if deps.waiting_on else "all ended"
        policy = {"cancel": "it is canceled", "run": "it runs anyway"}.get(
            deps.on_failure or "", "it runs (only then)"
        )
        lines.append(f"              {note}; if one fails, is lost or canceled, {policy}")
        if deps.canceled_by is not None:
            lines.append(f"canceled by:  job {deps.canceled_by}, which did not succeed")
    if deps.dependents:
        if not lines:
            lines.append("")
        lines.append(f"waited on by: {jobs(deps.dependents)}")
    return lines


@jobs.command()
@job_id_argument()
def retry(job_id: int) -> None:
    """Run a failed, lost or canceled job again (its attempts start from zero)."""
    record = get_app().retry_job(job_id).record
    click.echo(
        f"Job {record.id} ({record.task}) is {record.status} again on queue {record.queue!r}, "
        f"due {fmt_time(record.run_at)} UTC."
    )


@jobs.command()
@job_id_argument()
def cancel(job_id: int) -> None:
    """Cancel a pending or blocked job."""
    record = get_app().cancel_job(job_id).record
    click.echo(f"Job {record.id} ({record.task}) is {record.status}.")


@jobs.command()
@job_id_argument()
def stop(job_id: int) -> None:
    """Stop a job: a running one ends canceled, never retried.

    Its worker learns of it within a fraction of a second: a sync task gets ctx.canceled
    set, an async one is cancelled, a claimed job never starts. A pending or blocked job
    is canceled at once, as by `tock jobs cancel`; a finished one is an error.
    """
    record = get_app().stop_job(job_id).record
    if record.status is JobStatus.RUNNING:
        click.echo(
            f"Job {record.id} ({record.task}) is asked to stop; its worker {record.worker_id} "
            "stops it and it ends canceled."
        )
    else:
        click.echo(f"Job {record.id} ({record.task}) is {record.status}.")


@jobs.command()
@job_id_argument()
def delete(job_id: int) -> None:
    """Delete a finished job now (the pruner would later, by its retention)."""
    get_app().delete_job(job_id)
    click.echo(f"Job {job_id} is deleted.")


@jobs.command("run-now")
@job_id_argument()
def run_now(job_id: int) -> None:
    """Make a scheduled job (pending, due later) due now."""
    record = get_app().run_job_now(job_id).record
    click.echo(f"Job {record.id} ({record.task}) is due {fmt_time(record.run_at)} UTC.")


def parse_states(options: tuple[str, ...]) -> list[str] | None:
    """``("failed,lost", "canceled")`` -> those states and views; ``None`` (every state)
    if none. Here "running" is the running jobs whose attempt started (the app's view
    "started"), "claimed" those not started yet: both together are every running job."""
    names = [name.strip().lower() for option in options for name in option.split(",")]
    wanted: list[str] = []
    for name in names:
        if not name:
            continue
        if name not in STATES:
            fail(f"unknown state {name!r}: use one or more of {', '.join(STATES)}")
        shown = STARTED if name == JobStatus.RUNNING.value else name
        if shown not in wanted:
            wanted.append(shown)
    return wanted or None


def job_json(record: JobRecord) -> dict[str, Any]:
    """A job for programs: every key always present, times in ISO 8601 (UTC)."""
    shown: dict[str, Any] = {}
    for key in JSON_KEYS:
        if key == "claimed":
            value: Any = record.claimed
        elif key == "result":
            value = record.result if record.status is JobStatus.SUCCEEDED else None
        elif key == "error":
            value = state_error(record)
        elif key == "last_error":
            value = record.error
        else:
            value = getattr(record, key)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, JobStatus):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        shown[key] = value
    return shown


def shown_status(record: JobRecord) -> str:
    """The status, or "claimed" for a running job whose attempt has not started."""
    return CLAIMED if record.claimed else record.status.value


def state_error(record: JobRecord) -> dict[str, str] | None:
    """The error only where it explains the state: failed, lost, canceled, or pending
    after a retry. A job keeps its last error once it runs again (and after it
    succeeds): that is an earlier attempt's, history for `tock jobs show`."""
    status = record.status
    if status in (JobStatus.FAILED, JobStatus.LOST, JobStatus.CANCELED) or (
        status is JobStatus.PENDING and record.attempts > 0
    ):
        return record.error
    return None


def short_error(error: dict[str, str] | None) -> str:
    if not error:
        return ""
    kind = error.get("type", "")
    kind = kind.removeprefix("builtins.")
    lines = error.get("message", "").strip().splitlines()
    text = f"{kind}: {lines[0]}" if lines else kind
    return text if len(text) <= SHORT_ERROR else text[: SHORT_ERROR - 1] + "…"


def describe(record: JobRecord) -> list[str]:
    """``name: value`` lines for every field, then the error and its traceback."""
    rows: list[tuple[str, str]] = []
    for f in dataclasses.fields(record):
        if f.name == "error":
            continue
        value = getattr(record, f.name)
        if f.name in ("args", "kwargs") or (
            f.name == "result" and record.status is JobStatus.SUCCEEDED
        ):
            # JSON, as stored: a result "3" and a result 3 must not look alike.
            rows.append((f.name, json.dumps(value, ensure_ascii=False)))
        elif f.name == "status" and record.claimed:
            rows.append((f.name, "claimed (running, not started yet)"))
        else:
            rows.append((f.name, _value(value)))
    error = record.error
    # An error that does not explain the state is an earlier attempt's: history.
    label = "" if error is None or state_error(record) is not None else "earlier attempt's "
    if error is not None:
        rows.append((f"{label}error type", error.get("type", "")))
        rows.append((f"{label}error message", one_line_or_more(error.get("message", ""))))
    width = max(len(name) for name, _ in rows) + 1
    lines = [f"{name + ':':<{width}} {value}" for name, value in rows]
    if error is not None:
        traceback = error.get("traceback", "").rstrip()
        lines.append("")
        lines.append(f"{label}traceback:" if traceback else f"{label}traceback: (none recorded)")
        if traceback:
            lines.extend(f"  {line}" for line in traceback.splitlines())
    return lines


def one_line_or_more(message: str) -> str:
    # Continuation lines of a multi-line message stay readable under the field name.
    return message.replace("\n", "\n    ")


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, JobStatus):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
