"""Tock's quickstart: a worker on ./tock.db runs five example jobs and a schedule's first
three fires, then everything exits.

    python examples/quickstart.py

It starts `tock worker` in a subprocess (as you would in production), enqueues an
immediate job, a delayed one, one that fails twice and then succeeds through retries, an
async one, and one that fails for good, and prints every change of state as it happens.
The worker also fires `tick`, a schedule declared in code with `@app.periodic`: every
second, each fire one job, however many workers run.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from tock import Context, Job, JobFailed, JobStatus, Tock

app = Tock("sqlite:///tock.db")


# Tasks run in the worker process, which imports this module as `quickstart`: each task
# is given a name so that both sides agree on it.
@app.task(name="quickstart.greet")
def greet(name: str) -> str:
    time.sleep(0.2)  # long enough to be seen running
    return f"Hello, {name}!"


@app.task(name="quickstart.flaky", retries=3, retry_backoff=0.3, takes_context=True)
def flaky(ctx: Context, order: int) -> str:
    time.sleep(0.1)
    if ctx.attempt < 3:
        raise ConnectionError(f"attempt {ctx.attempt}: the payment service does not answer yet")
    return f"order {order} paid on attempt {ctx.attempt}"


@app.task(name="quickstart.fetch")
async def fetch(url: str) -> dict[str, object]:
    await asyncio.sleep(0.3)  # stands in for an HTTP request
    return {"url": url, "status": 200}


@app.task(name="quickstart.broken", retries=1, retry_backoff=0.3)
def broken(path: str) -> None:
    time.sleep(0.1)
    raise FileNotFoundError(f"no such report: {path}")


@app.periodic(every=timedelta(seconds=1), name="quickstart.tick")
def tick() -> str:
    return f"tick at {datetime.now().time():%H:%M:%S}"


FIRES = 3  # the schedule's fires the quickstart waits for


def fire_jobs(since: datetime) -> dict[str, Job]:
    """The jobs of the tick schedule's fires since ``since``, labelled by fire time."""
    fires = sorted(app.store.fire_list("quickstart.tick", limit=10), key=lambda f: f.at)
    return {
        f"tick {f.at:%H:%M:%S}": app.job(f.job_id)
        for f in fires
        if f.job_id is not None and f.at >= since
    }


def watch(jobs: dict[str, Job], started: float, deadline: float) -> None:
    """Print each job's changes of state until every job and three fires have finished."""
    seen: dict[str, tuple[JobStatus, int]] = {}
    since = app.store.db_now(now=None)
    while True:
        fires = fire_jobs(since)
        jobs.update(fires)
        for label, job in jobs.items():
            record = job.refresh().record
            state = (record.status, record.attempts)
            if seen.get(label) == state:
                continue
            seen[label] = state
            detail = ""
            if record.status is JobStatus.RUNNING:
                detail = f" (attempt {record.attempts})"
            elif record.status is JobStatus.PENDING and record.error:
                wait = max(0.0, (record.run_at - app.clock.now()).total_seconds())
                detail = f" (retry in {wait:.1f} s after {record.error['message']!r})"
            elif record.status is JobStatus.PENDING and record.run_at > app.clock.now():
                detail = f" (due in {(record.run_at - app.clock.now()).total_seconds():.1f} s)"
            elif record.status is JobStatus.SUCCEEDED:
                detail = f" -> {record.result!r}"
            elif record.status is JobStatus.FAILED and record.error:
                detail = f" ({record.error['type']}: {record.error['message']})"
            print(f"{time.monotonic() - started:6.2f}s  {label:<15} {record.status}{detail}")
        if len(fires) >= FIRES and all(job.record.status.finished for job in jobs.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the quickstart's jobs did not finish within 60 s")
        time.sleep(0.02)


def main() -> int:
    here = Path(__file__).resolve().parent
    app.migrate()
    print(f"Tock quickstart: store {app.store.url}, starting a worker...")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tock", "--app", "quickstart:app", "worker", "--concurrency", "4"],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")]),
        },
    )
    try:
        started = time.monotonic()
        jobs = {
            "immediate": greet.enqueue("world"),
            "delayed 2 s": greet.using(run_after=2).enqueue("later"),
            "retries": flaky.enqueue(1042),
            "async": fetch.enqueue("https://example.com"),
            "fails for good": broken.enqueue("q3.pdf"),
        }
        watch(jobs, started, deadline=started + 60)
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)

    try:
        jobs["fails for good"].result()
    except JobFailed as failure:
        print(
            f"\nThe failed job keeps its traceback; to see it again:\n    {show_command(failure)}"
        )
        print("    " + failure.traceback.strip().replace("\n", "\n    "))
    expected = {
        "immediate": JobStatus.SUCCEEDED,
        "delayed 2 s": JobStatus.SUCCEEDED,
        "retries": JobStatus.SUCCEEDED,
        "async": JobStatus.SUCCEEDED,
        "fails for good": JobStatus.FAILED,
    }
    ticks = [job for label, job in jobs.items() if label.startswith("tick ")]
    ok = (
        code == 0
        and all(jobs[k].status is v for k, v in expected.items())
        and len(ticks) >= FIRES
        and all(job.status is JobStatus.SUCCEEDED for job in ticks)
    )
    print("\nAll jobs finished as expected." if ok else "\nSomething went wrong (see above).")
    return 0 if ok else 1


def show_command(failure: JobFailed) -> str:
    """`tock jobs show` for the failed job, as it runs from here: the worker's --app and
    the paths of this Python and of this folder, relative when they are below here."""

    def path(p: str) -> str:
        rel = os.path.relpath(p)
        return shlex.quote(p if rel.startswith("..") else rel)

    here = str(Path(__file__).resolve().parent)
    return (
        f"PYTHONPATH={path(here)} {path(sys.executable)} -m tock --app quickstart:app "
        f"jobs show {failure.job_id}"
    )


if __name__ == "__main__":
    sys.exit(main())
