"""The app the benchmarks run: one no-op task."""

from __future__ import annotations

import os

from tock import Tock


def make_app(url: str) -> Tock:
    app = Tock(url)

    @app.task(name="bench.noop")
    def noop(i: int) -> None:
        return None

    return app


def _app_from_env() -> Tock:
    return make_app(os.environ.get("BENCH_TOCK_URL", "sqlite:///bench.db"))


app_from_env = _app_from_env() if "BENCH_TOCK_URL" in os.environ else None
