"""The PostgreSQL store's modules by concern: importing them changes nothing global."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_store_changes_no_logging() -> None:
    # The filter that quiets psycopg_pool about Tock's own pools goes on its logger when
    # the first pool opens, not at import.
    code = (
        "import logging, tock.store.postgres.store, tock.store.postgres.notify, "
        "tock.store.postgres.copy, tock.store.postgres.connections\n"
        "print(len(logging.getLogger('psycopg.pool').filters))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "0"
