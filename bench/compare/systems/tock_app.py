"""The app Tock's workers run in the comparison (``--app systems.tock_app:app``)."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from marking import first_attempt, mark

from tock import Tock

app = Tock(os.environ.get("BENCH_TOCK_URL"))


@app.task(name="bench.mark")
def mark_job(tag: str) -> None:
    mark(tag)


@app.task(name="bench.recover")
def recover(tag: str) -> None:
    """``recovery``: the first attempt marks and hangs (its worker is killed); the run
    after the rescue marks again."""
    mark(tag)
    if first_attempt(tag):
        time.sleep(3600)


if os.environ.get("BENCH_PERIODIC"):

    @app.periodic(every=timedelta(seconds=1), name="bench.tick")
    def tick() -> None:
        mark("tick")
