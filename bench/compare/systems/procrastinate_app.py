"""The Procrastinate app its workers run in the comparison
(``procrastinate --app systems.procrastinate_app.app worker``).

The database comes from ``$BENCH_PROCRASTINATE_URL`` (a URL whose ``search_path`` is the
measurement's schema: Procrastinate finds its tables through ``search_path``).
"""

from __future__ import annotations

import os
import time

from marking import PG_URL, first_attempt, mark
from procrastinate import App, JobContext, PsycopgConnector

CONCURRENCY = int(os.environ.get("BENCH_PROCRASTINATE_CONCURRENCY", "10"))
#: How often the stalled-job retry task runs: every 10 s (six cron fields: seconds come
#: last). The docs' example says every 10 minutes; see ``systems/procrastinate.py`` for
#: why it is shorter here.
RETRY_STALLED_CRON = os.environ.get("BENCH_PROCRASTINATE_RETRY_CRON", "* * * * * */10")
#: The docs' default: a worker without a heartbeat for 30 s is stalled.
STALLED_AFTER = float(os.environ.get("BENCH_PROCRASTINATE_STALLED_AFTER", "30"))

app = App(
    connector=PsycopgConnector(
        conninfo=os.environ.get("BENCH_PROCRASTINATE_URL", PG_URL),
        # One connection per sub-worker plus the listener, heartbeat, periodic deferrer
        # and abort poller: a smaller pool would make sub-workers queue for connections.
        min_size=1,
        max_size=CONCURRENCY + 4,
    ),
)


@app.task(name="bench.mark")
async def mark_job(tag: str) -> None:
    # async: Procrastinate runs sync tasks in a thread; a no-op has nothing to block on.
    mark(tag)


@app.task(name="bench.recover")
def recover(tag: str) -> None:
    """``recovery``: the first attempt marks and hangs (its worker is killed); the run
    after the stalled-job retry marks again. Sync, so it blocks a thread and not the
    worker's event loop (whose heartbeats must go on)."""
    mark(tag)
    if first_attempt(tag):
        time.sleep(3600)


# https://procrastinate.readthedocs.io/en/stable/howto/production/retry_stalled_jobs.html
@app.periodic(cron=RETRY_STALLED_CRON)
@app.task(name="bench.retry_stalled_jobs", queueing_lock="retry_stalled_jobs", pass_context=True)
async def retry_stalled_jobs(context: JobContext, timestamp: int) -> None:
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER):
        await app.job_manager.retry_job(job)


if os.environ.get("BENCH_PERIODIC"):
    # Six cron fields: the last is seconds (croniter), so this fires every second.
    @app.periodic(cron="* * * * * *")
    @app.task(name="bench.tick")
    async def tick(timestamp: int) -> None:
        # ``timestamp`` is the fire time the deferrer intended (whole seconds).
        mark(f"tick {timestamp}")
