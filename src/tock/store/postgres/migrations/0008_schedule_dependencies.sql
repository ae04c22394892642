-- Schedules that wait on schedules (docs/design.md: "Schedules that wait on schedules").
-- {schema} as in 0001.

-- depends_on: a JSON list of schedule names ('[]': none); future_depends: the first fire
-- of a schedule that never ran runs free; depends_on_outcome: what a dependency's run
-- must end in to count ('succeeded', or 'any' finished state).
ALTER TABLE {schema}.tock_schedules
    ADD COLUMN depends_on text NOT NULL DEFAULT '[]',
    ADD COLUMN future_depends boolean NOT NULL DEFAULT false,
    ADD COLUMN depends_on_outcome text NOT NULL DEFAULT 'succeeded'
        CHECK (depends_on_outcome IN ('succeeded', 'any'));

-- A fire waiting on its schedule's dependencies has no job yet: outcome 'waiting', and
-- waiting_for the JSON list of the dependencies not yet met. A waiting fire dropped by
-- the misfire policy is recorded as 'dependencies'.
ALTER TABLE {schema}.tock_fires ADD COLUMN waiting_for text;
ALTER TABLE {schema}.tock_fires DROP CONSTRAINT tock_fires_outcome_check;
ALTER TABLE {schema}.tock_fires ADD CONSTRAINT tock_fires_outcome_check
    CHECK (outcome IN ('enqueued', 'coalesced', 'missed', 'overlap', 'paused', 'triggered',
                       'waiting', 'dependencies'));

-- A scheduler pass reads the waiting fires (at most one a schedule) without a scan.
CREATE INDEX tock_fires_waiting ON {schema}.tock_fires (schedule) WHERE outcome = 'waiting';
