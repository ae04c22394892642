-- Schedules and their fires (docs/design.md: "Schedules"). Times are INTEGER microseconds since
-- the epoch, UTC; booleans are 0/1.

-- One row per schedule, code or dynamic. trigger, args and kwargs are JSON texts.
-- next_fire_at NULL: never fires again (a one-shot that fired). queue and priority NULL:
-- the task's.
CREATE TABLE tock_schedules (
    name         TEXT    PRIMARY KEY,
    task         TEXT    NOT NULL,
    trigger      TEXT    NOT NULL,
    args         TEXT    NOT NULL DEFAULT '[]',
    kwargs       TEXT    NOT NULL DEFAULT '{}',
    queue        TEXT,
    priority     INTEGER,
    misfire      TEXT    NOT NULL CHECK (misfire IN ('coalesce', 'skip', 'all')),
    grace        REAL    NOT NULL,
    overlap      INTEGER NOT NULL,
    enabled      INTEGER NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0,
    source       TEXT    NOT NULL CHECK (source IN ('code', 'dynamic')),
    next_fire_at INTEGER,
    last_fire_at INTEGER,
    last_job_id  INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- A scheduler pass reads only the due fires of active schedules: its cost grows with the
-- due fires, not with the number of schedules.
CREATE INDEX tock_schedules_due ON tock_schedules (next_fire_at)
    WHERE enabled AND NOT paused;

-- One row per (schedule, manual, fire time), ever: the key that makes a fire create at
-- most one job; a manual trigger has its own key (manual true), never a scheduled fire's.
-- job_id NULL for a drop (coalesced, missed, overlap, paused): consecutive drops of one
-- outcome are one row, fire_at the first, last_at the last, count how many.
-- No foreign key to tock_schedules: the fires of a deleted schedule keep their keys.
CREATE TABLE tock_fires (
    schedule   TEXT    NOT NULL,
    manual     INTEGER NOT NULL DEFAULT 0,
    fire_at    INTEGER NOT NULL,
    job_id     INTEGER,
    outcome    TEXT    NOT NULL
        CHECK (outcome IN ('enqueued', 'coalesced', 'missed', 'overlap', 'paused', 'triggered')),
    last_at    INTEGER NOT NULL,
    count      INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (schedule, manual, fire_at)
);

-- Fire rows go with their job (job_prune deletes them by job id).
CREATE INDEX tock_fires_job ON tock_fires (job_id) WHERE job_id IS NOT NULL;

-- Runs of drops are pruned by the age of their last fire (fire_prune), without a scan.
CREATE INDEX tock_fires_drops ON tock_fires (last_at) WHERE job_id IS NULL;
