-- Schedules and their fires (docs/design.md: "Schedules"). {schema} as in 0001. Times are
-- timestamptz; trigger, args and kwargs are JSON texts (text, as job arguments are).

-- One row per schedule, code or dynamic. next_fire_at NULL: never fires again (a one-shot
-- that fired). queue and priority NULL: the task's.
CREATE TABLE {schema}.tock_schedules (
    name         text             PRIMARY KEY,
    task         text             NOT NULL,
    trigger      text             NOT NULL,
    args         text             NOT NULL DEFAULT '[]',
    kwargs       text             NOT NULL DEFAULT '{}',
    queue        text,
    priority     integer,
    misfire      text             NOT NULL CHECK (misfire IN ('coalesce', 'skip', 'all')),
    grace        double precision NOT NULL,
    overlap      boolean          NOT NULL,
    enabled      boolean          NOT NULL,
    paused       boolean          NOT NULL DEFAULT false,
    source       text             NOT NULL CHECK (source IN ('code', 'dynamic')),
    next_fire_at timestamptz,
    last_fire_at timestamptz,
    last_job_id  bigint,
    created_at   timestamptz      NOT NULL,
    updated_at   timestamptz      NOT NULL
);

-- A scheduler pass reads only the due fires of active schedules: its cost grows with the
-- due fires, not with the number of schedules.
CREATE INDEX tock_schedules_due ON {schema}.tock_schedules (next_fire_at)
    WHERE enabled AND NOT paused;

-- One row per (schedule, manual, fire time), ever: the key that makes a fire create at
-- most one job; a manual trigger has its own key (manual true), never a scheduled fire's.
-- job_id NULL for a drop (coalesced, missed, overlap, paused): consecutive drops of one
-- outcome are one row, fire_at the first, last_at the last, count how many.
-- No foreign key to tock_schedules: the fires of a deleted schedule keep their keys.
CREATE TABLE {schema}.tock_fires (
    schedule   text        NOT NULL,
    manual     boolean     NOT NULL DEFAULT false,
    fire_at    timestamptz NOT NULL,
    job_id     bigint,
    outcome    text        NOT NULL
        CHECK (outcome IN ('enqueued', 'coalesced', 'missed', 'overlap', 'paused', 'triggered')),
    last_at    timestamptz NOT NULL,
    count      integer     NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (schedule, manual, fire_at)
);

-- Fire rows go with their job (job_prune deletes them by job id).
CREATE INDEX tock_fires_job ON {schema}.tock_fires (job_id) WHERE job_id IS NOT NULL;

-- Runs of drops are pruned by the age of their last fire (fire_prune), without a scan.
CREATE INDEX tock_fires_drops ON {schema}.tock_fires (last_at) WHERE job_id IS NULL;
