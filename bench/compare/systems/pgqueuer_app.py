"""The PgQueuer entrypoints its workers run in the comparison, and the worker itself:
``python -m systems.pgqueuer_app [--batch-size N] [--heartbeat-timeout S]`` is
``pgq run systems.pgqueuer_app:main`` through PgQueuer's documented programmatic
equivalent, ``pgqueuer.run`` (docs/guides/programmatic-run.md): the installed ``pgq run``
fails at start-up (pgqueuer 1.6.0 with typer 0.29: ``--log-level`` reaches
``setup_fancy_logger`` as a str, "'str' object has no attribute 'name'").

The database comes from ``$BENCH_PGQUEUER_URL`` (a URL whose ``search_path`` is the
measurement's schema: PgQueuer finds its tables through ``search_path`` when no
``PGQUEUER_SCHEMA`` is set).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import asyncpg
import pgqueuer
from marking import PG_URL, first_attempt, mark
from pgqueuer import PgQueuer
from pgqueuer.core import logconfig
from pgqueuer.models import Job, Schedule


def url() -> str:
    return os.environ.get("BENCH_PGQUEUER_URL", PG_URL)


@asynccontextmanager
async def main() -> AsyncIterator[PgQueuer]:
    """The factory (an async context manager, as this version of PgQueuer requires)."""
    # The docs' advice: a single direct asyncpg connection for the worker (its LISTEN
    # must not go through a pool) -- docs/guides/performance-tuning.md.
    connection = await asyncpg.connect(url())
    try:
        yield build(connection)
    finally:
        await connection.close()


def build(connection: asyncpg.Connection) -> PgQueuer:
    pgq = PgQueuer.from_asyncpg_connection(connection)

    @pgq.entrypoint("bench.mark")
    async def mark_job(job: Job) -> None:
        mark(job.payload.decode() if job.payload else "")

    @pgq.entrypoint("bench.recover")
    async def recover(job: Job) -> None:
        """``recovery``: the first attempt marks and hangs (its worker is killed); the
        run after the heartbeat timeout marks again. The hang is a blocking call in a
        thread, as PgQueuer's docs say to run blocking code (the event loop, and so the
        job's heartbeats, go on)."""
        tag = job.payload.decode() if job.payload else ""
        mark(tag)
        if first_attempt(tag):
            await asyncio.to_thread(time.sleep, 3600)

    if os.environ.get("BENCH_PERIODIC"):
        # The row a fire gets back already holds the *next* fire time, so a fire's own
        # intended time is the ``next_run`` the previous fire got back.
        previous: list[datetime] = []

        # Six cron fields: croniter reads the last one as seconds.
        @pgq.schedule("bench.tick", "* * * * * *")
        async def tick(schedule: Schedule) -> None:
            intended = f"{previous[-1].timestamp():.6f}" if previous else "-"
            mark(f"tick {intended}")
            previous.append(schedule.next_run)

    return pgq


def worker() -> None:
    """What ``pgq run`` does: its default logging, uvloop, the supervisor."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--heartbeat-timeout", type=float, default=30.0)
    args = parser.parse_args()
    logconfig.setup_fancy_logger(logconfig.LogLevel.INFO)
    run = pgqueuer.run(
        main,
        batch_size=args.batch_size,
        heartbeat_timeout=timedelta(seconds=args.heartbeat_timeout),
    )
    try:
        import uvloop  # as the CLI: uvloop where installed (a pgqueuer dependency)
    except ImportError:
        asyncio.run(run)
    else:
        uvloop.run(run)


if __name__ == "__main__":
    worker()
