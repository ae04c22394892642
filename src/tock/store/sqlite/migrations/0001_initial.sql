-- Tock's first schema for SQLite. Times are INTEGER microseconds since the epoch, UTC.

-- Live jobs: blocked, pending, running. Claims scan only this table, so it stays small.
-- AUTOINCREMENT: an id is never reused, even after the job moves out (docs/design.md: ids).
CREATE TABLE tock_jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    task          TEXT    NOT NULL,
    queue         TEXT    NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 0,
    status        TEXT    NOT NULL CHECK (status IN ('blocked', 'pending', 'running')),
    args          TEXT    NOT NULL DEFAULT '[]',
    kwargs        TEXT    NOT NULL DEFAULT '{}',
    run_at        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    rescues       INTEGER NOT NULL DEFAULT 0,
    retries       INTEGER NOT NULL DEFAULT 0,
    retry_backoff REAL    NOT NULL DEFAULT 1.0,
    retry_on      TEXT    NOT NULL DEFAULT '["builtins.Exception"]',
    timeout       REAL,
    at_most_once  INTEGER NOT NULL DEFAULT 0,
    max_rescues   INTEGER NOT NULL DEFAULT 5,
    unique_key    TEXT,
    worker_id     TEXT,
    claim_token   INTEGER,
    result        TEXT,
    error         TEXT
);

-- The claim reads this index in its ORDER BY (priority DESC, run_at, id) for one queue.
CREATE INDEX tock_jobs_claim ON tock_jobs (queue, priority DESC, run_at, id)
    WHERE status = 'pending';
-- A unique key is held by a live job only.
CREATE UNIQUE INDEX tock_jobs_unique_key ON tock_jobs (unique_key)
    WHERE unique_key IS NOT NULL;
-- The rescuer finds the jobs of a dead worker.
CREATE INDEX tock_jobs_worker ON tock_jobs (worker_id) WHERE status = 'running';

-- Finished jobs: succeeded, failed, canceled, lost. A job keeps its id when it moves here.
CREATE TABLE tock_jobs_finished (
    id            INTEGER PRIMARY KEY,
    task          TEXT    NOT NULL,
    queue         TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed', 'canceled', 'lost')),
    args          TEXT    NOT NULL,
    kwargs        TEXT    NOT NULL,
    run_at        INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER NOT NULL,
    attempts      INTEGER NOT NULL,
    rescues       INTEGER NOT NULL,
    retries       INTEGER NOT NULL,
    retry_backoff REAL    NOT NULL,
    retry_on      TEXT    NOT NULL,
    timeout       REAL,
    at_most_once  INTEGER NOT NULL,
    max_rescues   INTEGER NOT NULL,
    unique_key    TEXT,
    worker_id     TEXT,
    claim_token   INTEGER,
    result        TEXT,
    error         TEXT
);

-- Retention: the pruner deletes the oldest finished jobs of a status in batches.
CREATE INDEX tock_jobs_finished_status ON tock_jobs_finished (status, finished_at);

-- One row per worker process, its heartbeat written every ~2 s.
CREATE TABLE tock_workers (
    id           TEXT    PRIMARY KEY,
    hostname     TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT    NOT NULL,
    concurrency  INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
