-- Commands through the store (docs/design.md: Commands). Times in microseconds since the
-- epoch, as every time here.

-- A queue's row exists once someone paused it; paused = 0 after a resume. Claims skip the
-- jobs of a paused queue (a primary-key probe of this small table, once a claim).
CREATE TABLE tock_queues (
    name       TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    paused_at  INTEGER,
    updated_at INTEGER NOT NULL
);

-- `tock workers stop`: the worker reads it (polling) and shuts down as on SIGTERM.
ALTER TABLE tock_workers ADD COLUMN stop_requested_at INTEGER;

-- `tock jobs stop` of a running job: its worker reads it and stops the attempt; the job
-- ends canceled, also when its worker dies meanwhile (the rescuer cancels it).
ALTER TABLE tock_jobs ADD COLUMN stop_requested_at INTEGER;
