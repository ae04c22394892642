-- Tock's first schema for PostgreSQL. {schema} is the URL's schema (default tock), quoted
-- as an identifier when this file loads: every table is named with its schema and
-- search_path is never set or relied upon (docs/design.md: URLs).
-- Times are timestamptz (UTC). Arguments, results and errors are the JSON *texts* Tock
-- wrote, kept as text rather than jsonb: jsonb would rewrite numbers (1e+16 comes back
-- as an int) and reorder keys, and JobRecord must come back exactly as on SQLite.
-- The schema itself and tock_migrations are created by `tock migrate`, under its
-- advisory lock, before this file runs.

-- Live jobs: blocked, pending, running. Claims scan only this table, so it stays small.
-- A bigint identity: an id is never reused, even after the job moves out (docs/design.md: ids).
-- GENERATED ALWAYS: an id is written only by `tock jobs retry` (OVERRIDING SYSTEM VALUE),
-- when a finished job comes back with the id it always had, and by the COPY of a big
-- batch, with ids it took from this identity's sequence just before.
CREATE TABLE {schema}.tock_jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task          text             NOT NULL,
    queue         text             NOT NULL,
    priority      integer          NOT NULL DEFAULT 0,
    status        text             NOT NULL CHECK (status IN ('blocked', 'pending', 'running')),
    args          text             NOT NULL DEFAULT '[]',
    kwargs        text             NOT NULL DEFAULT '{}',
    run_at        timestamptz      NOT NULL,
    created_at    timestamptz      NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    attempts      integer          NOT NULL DEFAULT 0,
    rescues       integer          NOT NULL DEFAULT 0,
    retries       integer          NOT NULL DEFAULT 0,
    retry_backoff double precision NOT NULL DEFAULT 1.0,
    retry_on      text             NOT NULL DEFAULT '["builtins.Exception"]',
    timeout       double precision,
    at_most_once  boolean          NOT NULL DEFAULT false,
    max_rescues   integer          NOT NULL DEFAULT 5,
    unique_key    text,
    worker_id     text,
    claim_token   bigint,
    result        text,
    error         text
);

-- A queue table churns: every job is inserted, updated once or twice and deleted within
-- seconds, so dead tuples pile up while the live row count stays small. The default
-- thresholds (20 % of the table + 50 rows) are reached either far too late (a big
-- backlog) or, on a small table, never predictably; the cost delay throttles vacuum
-- exactly when the table is hottest. Vacuum after a fixed number of dead rows, at full
-- speed, and analyse often so the claim plan keeps using the claim index. (As River and
-- Oban advise for their job tables.)
ALTER TABLE {schema}.tock_jobs SET (
    autovacuum_vacuum_scale_factor = 0.0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.0,
    autovacuum_vacuum_insert_threshold = 10000,
    autovacuum_analyze_scale_factor = 0.0,
    autovacuum_analyze_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);

-- The claim reads this index in its ORDER BY (priority DESC, run_at, id) for one queue
-- (several queues: one ordered scan per queue, merged); the partial predicate keeps
-- running and blocked jobs out of it.
CREATE INDEX tock_jobs_claim ON {schema}.tock_jobs (queue, priority DESC, run_at, id)
    WHERE status = 'pending';
-- A unique key is held by a live job only.
CREATE UNIQUE INDEX tock_jobs_unique_key ON {schema}.tock_jobs (unique_key)
    WHERE unique_key IS NOT NULL;
-- The rescuer finds the jobs of a dead worker.
CREATE INDEX tock_jobs_worker ON {schema}.tock_jobs (worker_id) WHERE status = 'running';

-- Finished jobs: succeeded, failed, canceled, lost. A job keeps its id when it moves here.
CREATE TABLE {schema}.tock_jobs_finished (
    id            bigint           PRIMARY KEY,
    task          text             NOT NULL,
    queue         text             NOT NULL,
    priority      integer          NOT NULL,
    status        text             NOT NULL
                  CHECK (status IN ('succeeded', 'failed', 'canceled', 'lost')),
    args          text             NOT NULL,
    kwargs        text             NOT NULL,
    run_at        timestamptz      NOT NULL,
    created_at    timestamptz      NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz      NOT NULL,
    attempts      integer          NOT NULL,
    rescues       integer          NOT NULL,
    retries       integer          NOT NULL,
    retry_backoff double precision NOT NULL,
    retry_on      text             NOT NULL,
    timeout       double precision,
    at_most_once  boolean          NOT NULL,
    max_rescues   integer          NOT NULL,
    unique_key    text,
    worker_id     text,
    claim_token   bigint,
    result        text,
    error         text
);

-- Retention: the pruner deletes the oldest finished jobs of a status in batches.
CREATE INDEX tock_jobs_finished_status ON {schema}.tock_jobs_finished (status, finished_at);

-- One row per worker process, its heartbeat written every ~2 s. The heartbeat touches
-- no indexed column, so with free room on the page it is a HOT update.
CREATE TABLE {schema}.tock_workers (
    id           text        PRIMARY KEY,
    hostname     text        NOT NULL,
    pid          integer     NOT NULL,
    queues       text[]      NOT NULL,
    concurrency  integer     NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
) WITH (fillfactor = 50);
