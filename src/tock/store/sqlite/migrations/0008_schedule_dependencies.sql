-- Schedules that wait on schedules (docs/design.md: "Schedules that wait on schedules").
-- Times in microseconds since the epoch, as every time here.

-- depends_on: a JSON list of schedule names ('[]': none); future_depends: the first fire
-- of a schedule that never ran runs free; depends_on_outcome: what a dependency's run
-- must end in to count ('succeeded', or 'any' finished state).
ALTER TABLE tock_schedules ADD COLUMN depends_on TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tock_schedules ADD COLUMN future_depends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tock_schedules ADD COLUMN depends_on_outcome TEXT NOT NULL DEFAULT 'succeeded'
    CHECK (depends_on_outcome IN ('succeeded', 'any'));

-- A fire waiting on its schedule's dependencies has no job yet: outcome 'waiting', and
-- waiting_for the JSON list of the dependencies not yet met. A waiting fire dropped by
-- the misfire policy is recorded as 'dependencies'. SQLite cannot change a CHECK in
-- place: the table is built again with the new one, its rows and indexes kept.
CREATE TABLE tock_fires_new (
    schedule    TEXT    NOT NULL,
    manual      INTEGER NOT NULL DEFAULT 0,
    fire_at     INTEGER NOT NULL,
    job_id      INTEGER,
    outcome     TEXT    NOT NULL
        CHECK (outcome IN ('enqueued', 'coalesced', 'missed', 'overlap', 'paused', 'triggered',
                           'waiting', 'dependencies')),
    last_at     INTEGER NOT NULL,
    count       INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    waiting_for TEXT,
    PRIMARY KEY (schedule, manual, fire_at)
);
INSERT INTO tock_fires_new (schedule, manual, fire_at, job_id, outcome, last_at, count,
                            created_at)
SELECT schedule, manual, fire_at, job_id, outcome, last_at, count, created_at
  FROM tock_fires;
DROP TABLE tock_fires;
ALTER TABLE tock_fires_new RENAME TO tock_fires;

-- The indexes of 0002 and 0003, as they were.
CREATE INDEX tock_fires_job ON tock_fires (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX tock_fires_drops ON tock_fires (last_at) WHERE job_id IS NULL;
CREATE INDEX tock_fires_list ON tock_fires (schedule, fire_at DESC, manual DESC);

-- A scheduler pass reads the waiting fires (at most one a schedule) without a scan.
CREATE INDEX tock_fires_waiting ON tock_fires (schedule) WHERE outcome = 'waiting';
