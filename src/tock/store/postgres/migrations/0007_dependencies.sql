-- Jobs that wait on jobs (docs/design.md: Dependencies). {schema} as in 0001.

-- Set on a live job as soon as another job depends on it (in the transaction that adds
-- the edge, which locks the row): the finish of a batch reads it from the rows it moves
-- and settles the dependents of those that have some in the same transaction. Jobs
-- without dependents cost nothing more.
ALTER TABLE {schema}.tock_jobs ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;

-- One row per edge: job_id waits on depends_on. position orders a job's dependencies
-- (a chord's callback gets their results in this order). Kept after both ends finish,
-- for `tock jobs show`, until the pruner deletes the dependent.
CREATE TABLE {schema}.tock_job_deps (
    job_id     bigint  NOT NULL,
    depends_on bigint  NOT NULL,
    position   integer NOT NULL,
    PRIMARY KEY (job_id, depends_on)
);
-- A finishing job finds its dependents.
CREATE INDEX tock_job_deps_on ON {schema}.tock_job_deps (depends_on);

-- One row per job that has dependencies: how many are not yet met, what it does when one
-- ends failed, lost or canceled (on_failure: cancel, run, or "failure": it runs only
-- then, as a workflow's link_error), how results reach its arguments (pass_results:
-- NULL, "one", "list" or "id") and, once canceled by a dependency, which one. Its row is
-- locked to count a dependency met, so two dependencies finishing at once count in turn.
CREATE TABLE {schema}.tock_job_waits (
    job_id       bigint  PRIMARY KEY,
    deps_left    integer NOT NULL,
    on_failure   text    NOT NULL CHECK (on_failure IN ('cancel', 'run', 'failure')),
    pass_results text    CHECK (pass_results IN ('one', 'list', 'id')),
    canceled_by  bigint
);
-- A retried dependency brings back the jobs it canceled.
CREATE INDEX tock_job_waits_canceled_by ON {schema}.tock_job_waits (canceled_by)
    WHERE canceled_by IS NOT NULL;

-- Workflows (chain, group, chord): their shape as the workflow module wrote it, and the
-- ids of their jobs in the order they were enqueued.
CREATE TABLE {schema}.tock_workflows (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    spec       text        NOT NULL,
    job_ids    text        NOT NULL,
    created_at timestamptz NOT NULL
);
