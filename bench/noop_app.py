"""The app the benchmarks run: one no-op task."""

from __future__ import annotations

import os
import time

from tock import Context, Tock


def make_app(url: str) -> Tock:
    app = Tock(url)

    @app.task(name="bench.noop")
    def noop(i: int) -> None:
        return None

    @app.task(name="bench.hold", takes_context=True)
    def hold(ctx: Context, seconds: float) -> float:
        """Holds its worker for ``seconds`` in its first attempt (the rescue bench kills
        the worker meanwhile); any later attempt returns at once. Returns the wall-clock
        time its attempt started."""
        started = time.time()
        if ctx.attempt == 1:
            time.sleep(seconds)
        return started

    return app


def _app_from_env() -> Tock:
    return make_app(os.environ.get("BENCH_TOCK_URL", "sqlite:///bench.db"))


app_from_env = _app_from_env() if "BENCH_TOCK_URL" in os.environ else None
