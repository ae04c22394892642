-- Commands through the store (docs/design.md: Commands). {schema} as in 0001.

-- A queue's row exists once someone paused it; paused false after a resume. Claims skip
-- the jobs of a paused queue (a primary-key probe of this small table, once a claim).
CREATE TABLE {schema}.tock_queues (
    name       text        PRIMARY KEY,
    paused     boolean     NOT NULL DEFAULT false,
    paused_at  timestamptz,
    updated_at timestamptz NOT NULL
);

-- `tock workers stop`: the worker reads it (NOTIFY, polling as the fallback) and shuts
-- down as on SIGTERM.
ALTER TABLE {schema}.tock_workers ADD COLUMN stop_requested_at timestamptz;

-- `tock jobs stop` of a running job: its worker reads it and stops the attempt; the job
-- ends canceled, also when its worker dies meanwhile (the rescuer cancels it).
ALTER TABLE {schema}.tock_jobs ADD COLUMN stop_requested_at timestamptz;
