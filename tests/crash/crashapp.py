"""The app the crash tests' worker processes run (``--app crashapp:app``).

Every task appends one line ``"<tag> <pid>\\n"`` to the start log named by
``$TOCK_CRASH_LOG`` before it does anything else. The log lives outside the store, so it
shows every start, including those of a process killed before it could record anything.
One ``os.write`` on an ``O_APPEND`` descriptor: lines of concurrent processes never
interleave.
"""

from __future__ import annotations

import asyncio
import os
import time

from tock import Context, Tock

START_LOG = "TOCK_CRASH_LOG"
HANG_MS = 60_000  #: a first attempt of ``crash.fragile`` waits to be killed
RERUN_MS = 1_500  #: a later attempt of ``crash.steady`` (after a rescue) takes this long


def log_start(tag: str) -> None:
    fd = os.open(os.environ[START_LOG], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{tag} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def sleepy(ms: int, tag: str) -> list[object]:
    log_start(tag)
    time.sleep(ms / 1000)
    return [tag, os.getpid()]


def once(ms: int, tag: str) -> list[object]:
    log_start(tag)
    time.sleep(ms / 1000)
    return [tag, os.getpid()]


def fragile(ctx: Context, ms: int, tag: str) -> list[object]:
    """Hangs on its first attempt (the test kills the worker), sleeps ``ms`` after."""
    log_start(tag)
    time.sleep((HANG_MS if ctx.attempt == 1 else ms) / 1000)
    return [tag, os.getpid()]


def steady(ctx: Context, ms: int, tag: str) -> list[object]:
    """Sleeps ``ms`` on its first attempt and longer after a rescue, so that the late
    completion of a paused worker lands while another worker runs the job again."""
    log_start(tag)
    time.sleep((ms if ctx.attempt == 1 else RERUN_MS) / 1000)
    return [tag, os.getpid()]


def tick(ctx: Context, schedule: str) -> list[object]:
    """The job of a schedule's fire: logs ``<schedule>:<job id>``."""
    log_start(f"{schedule}:{ctx.job_id}")
    return [schedule, os.getpid()]


def hold(ctx: Context, tag: str) -> None:
    """Runs until stopped (``ctx.canceled``, at most a minute), logs ``<tag>:canceled``,
    then raises: a stopped job is not retried all the same."""
    log_start(tag)
    if ctx.canceled.wait(60):
        log_start(f"{tag}:canceled")
    raise RuntimeError(f"{tag} was stopped")


async def ahold(ctx: Context, tag: str) -> None:
    """The async ``hold``: sleeps until its coroutine is cancelled, logs
    ``<tag>:cancelled``."""
    log_start(tag)
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        log_start(f"{tag}:cancelled")
        raise


def gated(tag: str, gate: str) -> list[object]:
    """Runs until the file ``gate`` exists (at most a minute)."""
    log_start(tag)
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [tag, os.getpid()]


def gather(results: list[list[object]], tag: str) -> list[object]:
    """A chord's callback: logs ``tag``, returns the members' tags in the order given."""
    log_start(tag)
    return [r[0] if r is not None else None for r in results]


def build(url: str | None = None) -> Tock:
    """An app with the crash tasks; the test process builds its own on its store."""
    tock = Tock(url)
    tock.task(name="crash.sleepy", retries=0)(sleepy)
    tock.task(name="crash.once", at_most_once=True)(once)
    tock.task(name="crash.fragile", retries=0, takes_context=True)(fragile)
    tock.task(name="crash.steady", takes_context=True)(steady)
    tock.task(name="crash.tick", takes_context=True)(tick)
    tock.task(name="crash.hold", retries=3, takes_context=True)(hold)
    tock.task(name="crash.ahold", retries=3, takes_context=True)(ahold)
    tock.task(name="crash.gated")(gated)
    tock.task(name="crash.gather")(gather)
    return tock


# $TOCK_URL; the store opens on first use, so importing this module costs nothing.
app = build()
