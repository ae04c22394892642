"""Each dialect's SQL lives in its queries.sql under the same names (docs/design.md:
Stores), and the loader's rules for placeholders, includes and variants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tock.store._base as base
import tock.store.postgres.store as postgres_store
import tock.store.sqlite.store as sqlite_store
from tock.store._lists import JobFilter, parts
from tock.store._sql import Queries, parse_queries, variant

SQLITE = sqlite_store.Q
POSTGRES = postgres_store.queries("tock")

#: Queries only one dialect has, and why: what that dialect alone can or must do.
DIALECT_ONLY: dict[str, set[str]] = {
    # SQLite's connection settings and its change counter, polled by idle workers.
    "sqlite: connection": {
        "synchronous_full",
        "journal_wal",
        "data_version",
        "database_list",
    },
    # Only an empty SQLite file migrates itself.
    "sqlite: self-migration": {"database_empty"},
    # SQLite has no data-modifying CTEs: a move between tables is a second statement.
    "sqlite: second statements": {
        "job_delete_many",
        "job_delete_moved",
        "job_delete_finished_many",
        "job_prune_fires",
        "worker_jobs_delete_given_up",
        "worker_jobs_delete_stopped",
    },
    # A read before the write lock, and a claim across queues merged under that lock.
    "sqlite: claims": {"job_any_due", "job_claim_candidates"},
    # Liveness tokens are file locks: the rescuer decides in Python, row by row.
    "sqlite: rescue": {"worker_stale", "worker_heartbeat_age", "worker_has_running_jobs"},
    # Big enqueues: COPY, a staging table, ids taken ahead; one job as plain parameters.
    "postgres: enqueue": {
        "job_copy",
        "job_take_ids",
        "job_stage_create",
        "job_stage_copy",
        "job_stage_copy_one",
        "job_insert_staged",
        "job_insert_staged_one",
        "job_insert_one",
    },
    # LISTEN/NOTIFY wake-ups, and vacuuming the live table between autovacuum's passes.
    "postgres: notify and vacuum": {"job_notify", "job_dead_rows", "job_vacuum"},
    # CTEs that other statements include (one round trip for a finish and a claim; a
    # claim that commits lazily).
    "postgres: fragments": {
        "job_finish",
        "job_start",
        "job_insert_hint",
        "worker_alive",
        "claim_lazy",
    },
    # A unique violation aborts the statement: keyed jobs are retried one by one.
    "postgres: keyed retries": {"job_keyed", "job_retry_keyed"},
    # Advisory locks (migrations, liveness tokens, the leader's lock; SQLite's are file
    # locks); the rescuer decides in SQL.
    "postgres: locks and rescue": {
        "migration_lock",
        "worker_token_take",
        "leader_lock_take",
        "leader_lock_wait_timeout",
        "leader_lock_wait",
        "leader_lock_unwait",
        "leader_lock_check",
        "leader_fence_idle",
        "worker_rescue_check",
        "worker_dead",
    },
    # A caller's connection is checked against the server; a list reads one snapshot.
    "postgres: sessions": {"server_identity", "snapshot"},
}


def _only(prefix: str) -> set[str]:
    return {n for reason, names in DIALECT_ONLY.items() if reason.startswith(prefix) for n in names}


def test_both_dialects_define_the_same_queries_but_the_listed_ones() -> None:
    sqlite, postgres = SQLITE.names(), POSTGRES.names()
    assert sqlite - postgres == _only("sqlite")
    assert postgres - sqlite == _only("postgres")


def test_the_list_queries_take_the_same_variants_on_both() -> None:
    assert SQLITE.flags("job_list") == POSTGRES.flags("job_list")


def _used(path: Path) -> set[str]:
    """The query names a module asks for: Q["name"] and variant("name", ...)."""
    text = path.read_text(encoding="utf-8")
    return set(re.findall(r"""(?:\bQ\[\s*|\bvariant\(\s*)["']([a-z0-9_]+)["']""", text))


@pytest.mark.parametrize(
    ("module", "queries"),
    [
        (sqlite_store, [SQLITE]),
        (postgres_store, [POSTGRES]),
        (base, [SQLITE, POSTGRES]),
    ],
    ids=["sqlite", "postgres", "shared"],
)
def test_every_query_a_store_asks_for_exists(module: object, queries: list[Queries]) -> None:
    used = _used(Path(module.__file__))  # type: ignore[attr-defined]
    assert used
    for q in queries:
        assert used <= q.names(), used - q.names()


@pytest.mark.parametrize("queries", [SQLITE, POSTGRES], ids=["sqlite", "postgres"])
def test_every_list_part_has_its_query(queries: Queries) -> None:
    states = ["succeeded", "failed", "lost", "canceled", "pending", "blocked", "running"]
    filters = [
        JobFilter.of(state, queue=queue, task=task, worker_id=worker, search=search)
        for state in (None, *states, "scheduled", "ready", "claimed", "started")
        for queue, task, worker in ((None, None, None), ("q", "t", "w"))
        for search in (None, "12", "key")
    ]
    for f in filters:
        for part in parts(f):
            for more in ((), ("ids",), ("ids", "plan")):
                assert queries[part.query(*more)].strip()


def test_placeholders_includes_and_variants() -> None:
    text = """
-- name: cols
a, b
-- name: pick
-- variants: ids, plan
EXPLAIN          -- if plan
SELECT {query:cols}  -- if not ids
SELECT id        -- if ids
  FROM {table}
 WHERE x = 1
   {query:narrow}
-- name: narrow
-- variants: by_id
   AND id = :id  -- if by_id
"""
    q = parse_queries(text, {"table": "t"})
    assert q["pick"] == "SELECT a, b\n  FROM t\n WHERE x = 1"
    assert q[variant("pick", "plan", "ids")] == "EXPLAIN\nSELECT id\n  FROM t\n WHERE x = 1"
    assert variant("pick", "plan", "ids") == "pick+ids+plan"
    assert q.flags("pick") == ("ids", "plan")
    # An included query takes the flags of the variant that it declares too.
    with pytest.raises(KeyError, match="no variant"):
        q[variant("pick", "by_id")]
    assert q[variant("narrow", "by_id")] == "AND id = :id"
    # Variants made on first use are kept as keys; the names are the file's own.
    assert q.names() == {"cols", "pick", "narrow"} < set(q)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n", "defined twice"),
        ("-- name: a\nSELECT 1 -- if b\n", "depends on 'b'"),
        ("-- name: a\n-- variants: b, b\nSELECT 1\n", "bad variants line"),
        ("-- name: a\n-- variants: B-1\nSELECT 1\n", "bad variants line"),
        ("-- name: a\nSELECT {query:nowhere}\n", "not defined"),
        ("-- name: a\nSELECT {query:b}\n-- name: b\nSELECT {query:a}\n", "includes itself"),
    ],
)
def test_bad_query_files_are_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_queries(text)


def test_an_unknown_query_is_a_key_error() -> None:
    for key in ("nowhere", "job_claim_batch+nope", "job_claim_batch+start+finish"):
        with pytest.raises(KeyError):
            POSTGRES[key]
