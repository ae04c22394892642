-- Lists of jobs and fires, page by page, each page through an index in the list's order
-- (docs/design.md: listing jobs). The live table gets no index more: it holds only
-- unfinished work and is read in primary-key order; an index there would cost every
-- enqueue and claim.

-- A state's finished jobs in id order: lists by state, and the pruner (which reads the
-- oldest ids of a state and keeps those not yet past their retention).
DROP INDEX tock_jobs_finished_status;
CREATE INDEX tock_jobs_finished_status ON tock_jobs_finished (status, id);

-- By queue and by task, for the jobs that did not succeed: few next to the succeeded
-- ones and the ones people look for; partial, so a job that succeeds costs nothing more.
CREATE INDEX tock_jobs_finished_queue ON tock_jobs_finished (queue, id)
    WHERE status <> 'succeeded';
CREATE INDEX tock_jobs_finished_task ON tock_jobs_finished (task, id)
    WHERE status <> 'succeeded';

-- search= finds a finished job by its unique key.
CREATE INDEX tock_jobs_finished_key ON tock_jobs_finished (unique_key)
    WHERE unique_key IS NOT NULL;

-- A schedule's fires, newest first, manual and scheduled together.
CREATE INDEX tock_fires_list ON tock_fires (schedule, fire_at DESC, manual DESC);
