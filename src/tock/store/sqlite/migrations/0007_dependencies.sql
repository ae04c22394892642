-- Jobs that wait on jobs (docs/design.md: Dependencies). Times in microseconds since the
-- epoch, as every time here.

-- Set on a live job as soon as another job depends on it: the finish of a batch settles
-- the dependents of the jobs it moves that have some, in the same transaction.
ALTER TABLE tock_jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;

-- One row per edge: job_id waits on depends_on; position orders a job's dependencies (a
-- chord's callback gets their results in this order). Kept until the pruner deletes the
-- dependent.
CREATE TABLE tock_job_deps (
    job_id     INTEGER NOT NULL,
    depends_on INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    PRIMARY KEY (job_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX tock_job_deps_on ON tock_job_deps (depends_on);

-- One row per job that has dependencies: how many are not yet met, what it does when one
-- ends failed, lost or canceled (cancel, run, or "failure": it runs only then), how
-- results reach its arguments (NULL, "one", "list" or "id") and, once canceled by a
-- dependency, which one.
CREATE TABLE tock_job_waits (
    job_id       INTEGER PRIMARY KEY,
    deps_left    INTEGER NOT NULL,
    on_failure   TEXT    NOT NULL CHECK (on_failure IN ('cancel', 'run', 'failure')),
    pass_results TEXT    CHECK (pass_results IN ('one', 'list', 'id')),
    canceled_by  INTEGER
);
CREATE INDEX tock_job_waits_canceled_by ON tock_job_waits (canceled_by)
    WHERE canceled_by IS NOT NULL;

-- Workflows (chain, group, chord): their shape as the workflow module wrote it, and the
-- ids of their jobs in the order they were enqueued.
CREATE TABLE tock_workflows (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    spec       TEXT    NOT NULL,
    job_ids    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
