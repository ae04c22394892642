-- Tock's queries for SQLite. Placeholders filled in when this file loads:
--   {now}   the caller's :now (fake time in tests) or, when NULL, the database's clock,
--           as INTEGER microseconds since the epoch, UTC
--   {clock} the database's clock alone (positional queries write coalesce(?N, {clock}))
--   {cols}  every column of a job row, in the order JobRecord is read
--   {scols} every column of a schedule row, in the order ScheduleRecord is read, then
--           the status of its last job
--   {fcols} every column of a fire row, in the order FireRecord is read
-- Durations arrive as INTEGER microseconds (parameters ending in _us).

-- name: db_now
SELECT {now};

-- name: migration_record
INSERT INTO tock_migrations (version, name, applied_at) VALUES (:version, :name, {now});

-- name: migration_versions
SELECT version FROM tock_migrations ORDER BY version;

-- name: migration_table
-- A row when the database holds Tock's migrations table.
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tock_migrations';

-- name: migration_setup
CREATE TABLE IF NOT EXISTS tock_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL
);

-- name: database_empty
-- No row when the database holds no table at all (only then does it migrate itself).
SELECT 1 FROM sqlite_master LIMIT 1;

-- name: synchronous_full
-- Each connection's settings (docs/design.md: SQLite): every write is durable at commit,
-- and the journal is the write-ahead log. (Writers wait for the lock as long as
-- sqlite3.connect's timeout says: it sets SQLite's busy timeout.)
PRAGMA synchronous = FULL;

-- name: journal_wal
PRAGMA journal_mode = WAL;

-- name: data_version
-- Changes whenever another connection commits: what an idle worker polls.
PRAGMA data_version;

-- name: database_list
-- The file a connection is open on (a caller's connection must be on the store's).
PRAGMA database_list;

-- name: job_insert_many
-- One statement for a run of jobs that share every option: :rows is a JSON array of
-- [args, kwargs] pairs (JSON already checked at the edge), inserted in array order.
INSERT INTO tock_jobs (task, queue, priority, status, args, kwargs, run_at, created_at,
                       retries, retry_backoff, retry_on, timeout, at_most_once, max_rescues,
                       unique_key)
SELECT :task, :queue, :priority, 'pending', value -> '$[0]', value -> '$[1]',
       coalesce(:run_at, :now + :run_after_us), :now, :retries, :retry_backoff, :retry_on,
       :timeout, :at_most_once, :max_rescues, :unique_key
  FROM json_each(:rows)
 ORDER BY key;

-- name: job_by_unique_key
-- The live jobs that hold any of these unique keys.
SELECT unique_key, id FROM tock_jobs
 WHERE unique_key IN (SELECT value FROM json_each(:keys));

-- name: job_get
-- Both tables in one statement, so one snapshot: a job that finishes meanwhile is found
-- in one of them, never in neither.
SELECT {cols} FROM tock_jobs WHERE id = :id
UNION ALL
SELECT {cols} FROM tock_jobs_finished WHERE id = :id;

-- name: job_claim_batch
-- Rank the first :limit due jobs in claim order; at-most-once jobs are taken only into
-- the :free slots that start at once, the rest may be prefetched. The claim stops before
-- the first at-most-once job it cannot take: passing it would let a stream of other jobs
-- starve it on workers that always prefetch (docs/design.md: claim order). A worker whose row is
-- gone (declared dead, not yet registered again) claims nothing. A claimed job is not
-- started: no started_at, no attempt counted, until the worker records its start
-- (job_start_many) or its outcome. A paused queue gives nothing ({query:queue_open}: one
-- probe of tock_queues' primary key, docs/design.md: Commands).
WITH ranked AS (
    SELECT id, at_most_once,
           row_number() OVER (ORDER BY priority DESC, run_at, id) AS rank
      FROM (SELECT id, at_most_once, priority, run_at FROM tock_jobs
             WHERE status = 'pending' AND queue = :queue AND run_at <= {now} + :ahead_us
               AND {query:queue_open}
             ORDER BY priority DESC, run_at, id
             LIMIT :limit)
)
UPDATE tock_jobs
   SET status = 'running', worker_id = :worker_id, claim_token = :token, started_at = NULL
 WHERE id IN (SELECT id FROM ranked
               WHERE rank < (SELECT coalesce(min(rank), :limit + 1) FROM ranked
                              WHERE at_most_once AND rank > :free))
   AND EXISTS (SELECT 1 FROM tock_workers WHERE id = :worker_id)
RETURNING {cols};

-- name: job_claim_candidates
-- The first :limit due jobs of one queue, in claim order (the claim index, no sort). A
-- claim across several queues reads each queue's, under its write lock, and hands the
-- first :limit of them all to job_claim_batch_queues. None from a paused queue.
SELECT id, priority, run_at FROM tock_jobs
 WHERE status = 'pending' AND queue = :queue AND run_at <= {now} + :ahead_us
   AND {query:queue_open}
 ORDER BY priority DESC, run_at, id
 LIMIT :limit;

-- name: job_claim_batch_queues
-- job_claim_batch across several queues: the same rule, over the jobs of :ids (a JSON
-- array: the first :limit due jobs of the queues together, from job_claim_candidates).
WITH ranked AS (
    SELECT id, at_most_once,
           row_number() OVER (ORDER BY priority DESC, run_at, id) AS rank
      FROM tock_jobs
     WHERE id IN (SELECT value FROM json_each(:ids))
       AND status = 'pending' AND run_at <= {now} + :ahead_us
)
UPDATE tock_jobs
   SET status = 'running', worker_id = :worker_id, claim_token = :token, started_at = NULL
 WHERE id IN (SELECT id FROM ranked
               WHERE rank < (SELECT coalesce(min(rank), :limit + 1) FROM ranked
                              WHERE at_most_once AND rank > :free))
   AND EXISTS (SELECT 1 FROM tock_workers WHERE id = :worker_id)
RETURNING {cols};

-- name: job_any_due
-- A cheap read before taking the write lock for a claim (paused queues left out; due
-- within :ahead_us, as the claim's: docs/design.md, "Claimed early").
SELECT 1 FROM tock_jobs
 WHERE status = 'pending' AND queue IN (SELECT value FROM json_each(:queues)
                                         EXCEPT SELECT name FROM tock_queues WHERE paused)
   AND run_at <= {now} + :ahead_us
 LIMIT 1;

-- name: job_next_due
-- Paused queues left out: an idle worker does not wake for jobs it may not claim.
SELECT min(run_at) FROM tock_jobs
 WHERE status = 'pending' AND queue IN (SELECT value FROM json_each(:queues)
                                         EXCEPT SELECT name FROM tock_queues WHERE paused);

-- name: queue_open
-- Part of a claim: the queue :queue is not paused (docs/design.md: Commands).
NOT EXISTS (SELECT 1 FROM tock_queues WHERE name = :queue AND paused)

-- name: job_finish_many
-- Move claimed jobs to the finished table where the claim token still holds. :rows is a
-- JSON array of [id, token, status, result, error, ago_us] (result and error: JSON or
-- null). A job whose start is not recorded yet (started_at NULL) counts its attempt
-- here, started ago_us (null: 0) before now. A job that succeeds after retries keeps
-- its last error, for the record.
INSERT INTO tock_jobs_finished ({cols})
SELECT j.id, j.task, j.queue, j.priority, b.value ->> 2, j.args, j.kwargs, j.run_at,
       j.created_at, coalesce(j.started_at, {now} - coalesce(b.value ->> 5, 0)), {now},
       j.attempts + (j.started_at IS NULL), j.rescues, j.retries,
       j.retry_backoff, j.retry_on, j.timeout, j.at_most_once, j.max_rescues, j.unique_key,
       j.worker_id, j.claim_token, nullif(b.value -> '$[3]', 'null'),
       coalesce(nullif(b.value -> '$[4]', 'null'), j.error)
  FROM json_each(:rows) AS b
  JOIN tock_jobs AS j ON j.id = b.value ->> 0
 WHERE j.claim_token = b.value ->> 1 AND j.status = 'running'
RETURNING id;

-- name: job_delete_many
DELETE FROM tock_jobs WHERE id IN (SELECT value FROM json_each(:ids));

-- name: job_retry_later
-- An attempt that raised, attempts left: back to pending. Its start, if not recorded
-- yet, is recorded here (as in job_finish_many).
UPDATE tock_jobs
   SET status = 'pending', run_at = coalesce(:now, {clock}) + :delay_us, worker_id = NULL,
       claim_token = NULL,
       attempts = attempts + (started_at IS NULL),
       started_at = coalesce(started_at, {now} - :ago_us),
       error = :error
 WHERE id = :id AND claim_token = :token AND status = 'running';

-- name: job_start_many
-- Record the starts of attempts still running at a batch: :rows is a JSON array of
-- [id, token, ago_us]. Once per claim (started_at IS NULL): sent again, it changes nothing.
UPDATE tock_jobs
   SET started_at = {now} - (b.value ->> 2), attempts = attempts + 1
  FROM json_each(:rows) AS b
 WHERE tock_jobs.id = b.value ->> 0 AND tock_jobs.claim_token = b.value ->> 1
   AND tock_jobs.status = 'running' AND tock_jobs.started_at IS NULL;

-- name: job_release
-- Hand back a job that was claimed but never started: no attempt is used up.
UPDATE tock_jobs
   SET status = 'pending', worker_id = NULL, claim_token = NULL
 WHERE id = :id AND claim_token = :token AND status = 'running';

-- name: job_list
-- One part of a list of jobs (docs/design.md: listing jobs): the newest first below
-- :before, on the live table or the "finished" one. The live table is read in
-- primary-key order with the filter tested on each row (it holds only unfinished work);
-- a worker's running jobs come through the partial index of running jobs. On the
-- finished table each state comes through its index on (status, id), and a queue's or a
-- task's jobs that did not succeed through the partial indexes on (queue, id) and
-- (task, id), which the planner takes when the query says "unsucceeded" in their words.
-- The variants are the filter: a state, a view of one (scheduled, ready, claimed,
-- started), queue, task, worker, a search by id (by_id) or by unique key (by_key); "ids"
-- reads the ids alone, "plan" asks for the query's plan instead of its rows.
-- variants: finished, blocked, pending, running, scheduled, ready, claimed, started
-- variants: succeeded, failed, lost, canceled, unsucceeded
-- variants: queue, task, worker, by_id, by_key, ids, plan
EXPLAIN QUERY PLAN                   -- if plan
SELECT {cols}                        -- if not ids
SELECT id                            -- if ids
  FROM tock_jobs                     -- if not finished
  FROM tock_jobs_finished            -- if finished
 WHERE id < :before
   AND status = 'blocked'            -- if blocked
   AND status = 'pending'            -- if pending
   AND status = 'running'            -- if running
   AND run_at > {now}                -- if scheduled
   AND run_at <= {now}               -- if ready
   AND started_at IS NULL            -- if claimed
   AND started_at IS NOT NULL        -- if started
   AND status = 'succeeded'          -- if succeeded
   AND status = 'failed'             -- if failed
   AND status = 'lost'               -- if lost
   AND status = 'canceled'           -- if canceled
   AND status <> 'succeeded'         -- if unsucceeded
   AND queue = :queue                 -- if queue
   AND task = :task                   -- if task
   AND worker_id = :worker_id         -- if worker
   AND id = :search_id                -- if by_id
   AND unique_key = :search           -- if by_key
 ORDER BY id DESC
 LIMIT :limit;

-- name: job_filter
-- The conditions of a filter on one table (docs/design.md: listing jobs), as job_list
-- writes them, for the queries that include them (job_search_window, job_search).
-- variants: blocked, pending, running, scheduled, ready, claimed, started
-- variants: succeeded, failed, lost, canceled, unsucceeded, queue, task, worker
   AND status = 'blocked'            -- if blocked
   AND status = 'pending'            -- if pending
   AND status = 'running'            -- if running
   AND run_at > {now}                -- if scheduled
   AND run_at <= {now}               -- if ready
   AND started_at IS NULL            -- if claimed
   AND started_at IS NOT NULL        -- if started
   AND status = 'succeeded'          -- if succeeded
   AND status = 'failed'             -- if failed
   AND status = 'lost'               -- if lost
   AND status = 'canceled'           -- if canceled
   AND status <> 'succeeded'         -- if unsucceeded
   AND queue = :queue                 -- if queue
   AND task = :task                   -- if task
   AND worker_id = :worker_id         -- if worker

-- name: job_search_window
-- A search's window on one part of a list (docs/design.md: searching jobs): the lowest
-- id and the number of the at most :scan newest jobs below :before that the filter
-- matches, read along the index job_list uses.
-- variants: finished, blocked, pending, running, scheduled, ready, claimed, started
-- variants: succeeded, failed, lost, canceled, unsucceeded, queue, task, worker
SELECT min(id), count(*) FROM (
SELECT id FROM tock_jobs             -- if not finished
SELECT id FROM tock_jobs_finished    -- if finished
 WHERE id < :before
{query:job_filter}
 ORDER BY id DESC
 LIMIT :scan);

-- name: job_search
-- The jobs of the window (ids from :floor, below :before) whose id is :search_id or
-- whose task, queue, unique key or arguments (their JSON text) contain :pattern; LIKE
-- ignores the case of ASCII letters.
-- variants: finished, blocked, pending, running, scheduled, ready, claimed, started
-- variants: succeeded, failed, lost, canceled, unsucceeded, queue, task, worker
SELECT {cols}
  FROM tock_jobs                     -- if not finished
  FROM tock_jobs_finished            -- if finished
 WHERE id < :before AND id >= :floor
{query:job_filter}
   AND (id = :search_id OR task LIKE :pattern ESCAPE '\' OR queue LIKE :pattern ESCAPE '\'
        OR unique_key LIKE :pattern ESCAPE '\' OR args LIKE :pattern ESCAPE '\'
        OR kwargs LIKE :pattern ESCAPE '\')
 ORDER BY id DESC
 LIMIT :limit;

-- name: job_count_queues
-- The queues of pending jobs (docs/design.md: counting jobs), each found through the
-- claim index by skipping from one queue to the next: one index lookup a queue,
-- whatever the backlog.
WITH RECURSIVE q(name) AS (
    SELECT min(queue) FROM tock_jobs WHERE status = 'pending'
    UNION ALL
    SELECT (SELECT min(queue) FROM tock_jobs WHERE status = 'pending' AND queue > q.name)
      FROM q
     WHERE q.name IS NOT NULL
)
SELECT name FROM q WHERE name IS NOT NULL;

-- name: job_count_pending
-- Of :queue's first :scan pending jobs in claim order (read along the claim index, so
-- never more than :scan rows): how many were read, and how many of :task (of every task
-- when NULL) are scheduled and ready.
SELECT count(*),
       coalesce(sum(run_at > {now} AND (:task IS NULL OR task = :task)), 0),
       coalesce(sum(run_at <= {now} AND (:task IS NULL OR task = :task)), 0)
  FROM (SELECT run_at, task FROM tock_jobs
         WHERE status = 'pending' AND queue = :queue
         ORDER BY priority DESC, run_at, id
         LIMIT :scan);

-- name: job_count_running
-- The running jobs per queue, claimed and started, of :task or of every task: exact
-- (read through the index of running jobs: as many as the workers hold).
SELECT queue,
       sum(started_at IS NULL AND (:task IS NULL OR task = :task)),
       sum(started_at IS NOT NULL AND (:task IS NULL OR task = :task))
  FROM tock_jobs INDEXED BY tock_jobs_worker
 WHERE status = 'running'
 GROUP BY queue;

-- name: job_count_blocked
-- Per queue, of the first :scan blocked jobs (read along their index, so never more
-- than :scan rows): how many, and how many of :task.
SELECT queue, count(*), sum(:task IS NULL OR task = :task)
  FROM (SELECT queue, task FROM tock_jobs INDEXED BY tock_jobs_blocked
         WHERE status = 'blocked'
         LIMIT :scan)
 GROUP BY queue;

-- name: job_count_finished
-- Per queue, of the newest :scan finished jobs of :status (read along the index on
-- (status, id), so never more than :scan rows): how many, and how many are of :task
-- (all of them when :task is NULL).
SELECT queue, count(*), sum(:task IS NULL OR task = :task)
  FROM (SELECT queue, task FROM tock_jobs_finished
         WHERE status = :status
         ORDER BY id DESC
         LIMIT :scan)
 GROUP BY queue;

-- name: job_retry_many
-- `tock jobs retry`, of each of :ids (a JSON array) that is failed, lost or canceled:
-- back to the live table, same id, attempts reset. A job whose unique key a live job
-- holds is left where it is (OR IGNORE); only the rows inserted come back, and the store
-- then deletes those from the finished table (job_delete_finished_many).
-- A job canceled by a dependency is not retried by itself: the retry of that dependency
-- brings it back (docs/design.md: Dependencies).
INSERT OR IGNORE INTO tock_jobs ({cols})
SELECT id, task, queue, priority, 'pending', args, kwargs, {now}, created_at, NULL, NULL,
       0, 0, retries, retry_backoff, retry_on, timeout, at_most_once, max_rescues,
       unique_key, NULL, NULL, NULL, error
  FROM tock_jobs_finished AS f
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status IN ('failed', 'lost', 'canceled')
   AND NOT EXISTS (SELECT 1 FROM tock_job_waits AS w
                    WHERE w.job_id = f.id AND w.canceled_by IS NOT NULL)
RETURNING id;

-- name: job_delete_finished_many
DELETE FROM tock_jobs_finished WHERE id IN (SELECT value FROM json_each(:ids));

-- name: job_cancel_many
-- Each of :ids that is pending or blocked ends canceled; the store then deletes them
-- from the live table (job_delete_many).
INSERT INTO tock_jobs_finished ({cols})
SELECT id, task, queue, priority, 'canceled', args, kwargs, run_at, created_at, started_at,
       {now}, attempts, rescues, retries, retry_backoff, retry_on, timeout, at_most_once,
       max_rescues, unique_key, worker_id, claim_token, NULL, error
  FROM tock_jobs
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status IN ('pending', 'blocked')
RETURNING id;

-- name: job_delete_finished_jobs
-- Finished jobs only; their fire rows go with them (job_prune_fires), as when pruned.
DELETE FROM tock_jobs_finished WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING id;

-- name: job_run_now_many
-- Scheduled jobs (pending, due later) become ready: due now.
UPDATE tock_jobs SET run_at = {now}
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'pending' AND run_at > {now}
RETURNING id;

-- name: job_prune
-- One batch; the store then deletes their fire rows (job_prune_fires), in the same
-- transaction (docs/design.md: fire rows are pruned with their job's retention).
-- A finished job that a blocked job still waits on is kept: its result goes to that
-- job's arguments when it is released (docs/design.md: Dependencies).
DELETE FROM tock_jobs_finished
 WHERE id IN (SELECT id FROM tock_jobs_finished AS f
               WHERE status = :status AND finished_at < {now} - :age_us
                 AND NOT EXISTS (SELECT 1 FROM tock_job_deps AS d
                                   JOIN tock_jobs AS j ON j.id = d.job_id
                                  WHERE d.depends_on = f.id)
               ORDER BY id
               LIMIT :batch_size)
RETURNING id;

-- name: job_prune_fires
DELETE FROM tock_fires WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: job_stats_live
-- Per queue and status: the count, the ready ones (pending, due), the oldest ready one's
-- run_at, and the claimed ones (running, not started).
SELECT queue, status, count(*),
       sum(status = 'pending' AND run_at <= {now}),
       min(CASE WHEN status = 'pending' AND run_at <= {now} THEN run_at END),
       sum(status = 'running' AND started_at IS NULL)
  FROM tock_jobs GROUP BY queue, status;

-- name: job_stats_finished
SELECT queue, status, count(*) FROM tock_jobs_finished GROUP BY queue, status;

-- name: worker_register
INSERT INTO tock_workers (id, hostname, pid, queues, concurrency, started_at, heartbeat_at)
VALUES (:id, :hostname, :pid, :queues, :concurrency, {now}, {now})
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;

-- name: worker_heartbeat
UPDATE tock_workers SET heartbeat_at = {now} WHERE id = :id;

-- name: worker_list
-- Each worker with the jobs it runs (started) and holds unstarted (claimed).
SELECT w.id, w.hostname, w.pid, w.queues, w.concurrency, w.started_at, w.heartbeat_at,
       (SELECT count(*) FROM tock_jobs j
         WHERE j.status = 'running' AND j.worker_id = w.id AND j.started_at IS NOT NULL),
       (SELECT count(*) FROM tock_jobs j
         WHERE j.status = 'running' AND j.worker_id = w.id AND j.started_at IS NULL)
  FROM tock_workers w ORDER BY w.started_at, w.id;

-- name: worker_stale
-- Workers whose heartbeat is older than :age_us, with its age.
SELECT id, {now} - heartbeat_at FROM tock_workers WHERE heartbeat_at < {now} - :age_us;

-- name: token_check
-- (PostgreSQL's token sessions; a file lock needs no check.)
SELECT 1;

-- name: worker_tokens_free
-- The workers whose liveness token the rescuer's watch looks at (each lock file is tried
-- in Python: a lock no process holds is a dead process's).
SELECT id FROM tock_workers WHERE id IS NOT :exclude;

-- name: worker_heartbeat_age
SELECT {now} - heartbeat_at FROM tock_workers WHERE id = :id;

-- name: worker_has_running_jobs
SELECT 1 FROM tock_jobs WHERE status = 'running' AND worker_id = :worker_id LIMIT 1;

-- name: worker_orphans
-- Running jobs whose worker row is gone count as a dead worker's.
SELECT DISTINCT worker_id FROM tock_jobs
 WHERE status = 'running' AND worker_id NOT IN (SELECT id FROM tock_workers);

-- name: worker_jobs_give_up
-- A dead worker's at-most-once jobs end lost; others past max_rescues end failed. A job
-- whose start is not recorded counts the attempt all the same: it may have started (a
-- start is recorded with the next batch), so it is lost "started or not" (docs/design.md), and
-- attempts - rescues stays the count of the task's own errors.
INSERT INTO tock_jobs_finished ({cols})
SELECT id, task, queue, priority, CASE WHEN at_most_once THEN 'lost' ELSE 'failed' END,
       args, kwargs, run_at, created_at, started_at, {now}, attempts + (started_at IS NULL),
       rescues, retries,
       retry_backoff, retry_on, timeout, at_most_once, max_rescues, unique_key, worker_id,
       claim_token, NULL, :error
  FROM tock_jobs
 WHERE status = 'running' AND worker_id = :worker_id
   AND (at_most_once OR rescues >= max_rescues)
RETURNING id, status;

-- name: worker_jobs_delete_given_up
DELETE FROM tock_jobs
 WHERE status = 'running' AND worker_id = :worker_id
   AND (at_most_once OR rescues >= max_rescues);

-- name: worker_jobs_rescue
-- Back to pending; the attempt counts even when its start was not recorded (as above).
UPDATE tock_jobs
   SET status = 'pending', rescues = rescues + 1, attempts = attempts + (started_at IS NULL),
       worker_id = NULL, claim_token = NULL
 WHERE status = 'running' AND worker_id = :worker_id
RETURNING id, queue;

-- name: worker_delete
DELETE FROM tock_workers WHERE id = :worker_id;

-- name: worker_jobs_cancel_stopped
-- A dead worker's jobs whose stop was asked for end canceled, not rescued (docs/design.md:
-- Commands); the attempt counts as in worker_jobs_give_up. The store then deletes them
-- from the live table (worker_jobs_delete_stopped).
INSERT INTO tock_jobs_finished ({cols})
SELECT id, task, queue, priority, 'canceled', args, kwargs, run_at, created_at, started_at,
       {now}, attempts + (started_at IS NULL), rescues, retries, retry_backoff, retry_on,
       timeout, at_most_once, max_rescues, unique_key, worker_id, claim_token, NULL, error
  FROM tock_jobs
 WHERE status = 'running' AND worker_id = :worker_id AND stop_requested_at IS NOT NULL
RETURNING id;

-- name: worker_jobs_delete_stopped
DELETE FROM tock_jobs
 WHERE status = 'running' AND worker_id = :worker_id AND stop_requested_at IS NOT NULL;

-- name: schedule_last_status
-- The status of a schedule row's last job, from either job table, or NULL once pruned:
-- a scalar subquery per row, one index probe per table. last_job_id is unqualified: it
-- resolves to the schedule row, whether the query reads, updates or upserts it (the job
-- tables have no such column). Part of {scols}.
coalesce((SELECT j.status FROM tock_jobs AS j WHERE j.id = last_job_id),
         (SELECT f.status FROM tock_jobs_finished AS f WHERE f.id = last_job_id))

-- name: schedule_upsert_many
-- Insert or update by name (executemany: one row per schedule, in one transaction). An
-- update never changes paused (set by people, never by sync) and keeps next_fire_at
-- unless the trigger changed; last_* and created_at stay.
INSERT INTO tock_schedules (name, task, trigger, args, kwargs, queue, priority, misfire,
                            grace, overlap, enabled, paused, source, next_fire_at,
                            created_at, updated_at, depends_on, future_depends,
                            depends_on_outcome)
VALUES (:name, :task, :trigger, :args, :kwargs, :queue, :priority, :misfire, :grace, :overlap,
        :enabled, :paused, :source, :next_fire_at, :now, :now, :depends_on, :future_depends,
        :depends_on_outcome)
ON CONFLICT (name) DO UPDATE
   SET task = excluded.task, trigger = excluded.trigger, args = excluded.args,
       kwargs = excluded.kwargs, queue = excluded.queue, priority = excluded.priority,
       misfire = excluded.misfire, grace = excluded.grace, overlap = excluded.overlap,
       enabled = excluded.enabled, source = excluded.source,
       depends_on = excluded.depends_on, future_depends = excluded.future_depends,
       depends_on_outcome = excluded.depends_on_outcome,
       next_fire_at = CASE WHEN tock_schedules.trigger = excluded.trigger
                           THEN tock_schedules.next_fire_at ELSE excluded.next_fire_at END,
       updated_at = excluded.updated_at;

-- name: schedule_get
-- {scols}: every column of a schedule row, in the order ScheduleRecord is read, then
-- the status of its last job (from either job table; NULL once pruned).
SELECT {scols} FROM tock_schedules WHERE name = :name;

-- name: schedule_list
SELECT {scols} FROM tock_schedules ORDER BY name LIMIT coalesce(:limit, -1);

-- name: schedule_delete
DELETE FROM tock_schedules WHERE name = :name;

-- name: schedule_set_paused
UPDATE tock_schedules SET paused = :paused, updated_at = {now} WHERE name = :name
RETURNING {scols};

-- name: schedule_set_enabled
UPDATE tock_schedules SET enabled = :enabled, updated_at = {now} WHERE name = :name
RETURNING {scols};

-- name: schedule_disable_code
-- `tock schedules prune`: the code schedules no process declares any more.
UPDATE tock_schedules SET enabled = 0, updated_at = {now}
 WHERE source = 'code' AND enabled
   AND name NOT IN (SELECT value FROM json_each(:keep))
RETURNING name;

-- name: schedule_due
-- Reads the partial index tock_schedules_due (its WHERE terms, as written there).
-- :tasks NULL: every task's; else a JSON array of the task names to read.
SELECT {scols} FROM tock_schedules
 WHERE enabled AND NOT paused AND next_fire_at <= {now}
   AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
 ORDER BY next_fire_at
 LIMIT :limit;

-- name: schedule_next_due
-- The first entry of the partial index tock_schedules_due (of :tasks, as above), after
-- :after when given: an ordered scan that stops at the first match, where min() may
-- read them all.
SELECT next_fire_at FROM tock_schedules
 WHERE enabled AND NOT paused AND next_fire_at IS NOT NULL
   AND (:after IS NULL OR next_fire_at > :after)
   AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks)))
 ORDER BY next_fire_at
 LIMIT 1;

-- name: schedule_advance
-- The compare-and-set of a fire: NULL-safe (IS), so a schedule that another node fired
-- meanwhile changes nothing. With :expected_updated (a scheduler's pass), also nothing
-- when the row changed since it was read (paused, disabled, updated) or is not active.
UPDATE tock_schedules SET next_fire_at = :new_next, updated_at = {now}
 WHERE name = :name AND next_fire_at IS :expected_next
   AND (:expected_updated IS NULL
        OR (updated_at = :expected_updated AND enabled AND NOT paused));

-- name: schedule_ahead
-- Of :names (a JSON array), the schedules with a fire made ahead (docs/design.md: "Fires
-- made ahead": its latest job's fire time is still to come) or whose next fire is near
-- enough (:lead_us, the longest lead) for a scheduler to make one meanwhile.
SELECT {scols} FROM tock_schedules
 WHERE name IN (SELECT value FROM json_each(:names))
   AND (last_fire_at > {now} OR next_fire_at <= {now} + :lead_us);

-- name: fire_withdraw_jobs
-- The jobs of a schedule's fires made ahead (fire time after now) that no worker took
-- yet: deleted, as if never made.
DELETE FROM tock_jobs
 WHERE status = 'pending'
   AND id IN (SELECT job_id FROM tock_fires
               WHERE schedule = :name AND manual = 0 AND fire_at > {now}
                 AND job_id IS NOT NULL)
RETURNING id;

-- name: fire_withdraw
-- Then the fire rows of the fires made ahead whose job is gone (withdrawn): their times
-- are free again.
DELETE FROM tock_fires
 WHERE schedule = :name AND manual = 0 AND fire_at > {now} AND job_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM tock_jobs AS j WHERE j.id = tock_fires.job_id)
   AND NOT EXISTS (SELECT 1 FROM tock_jobs_finished AS d WHERE d.id = tock_fires.job_id)
RETURNING fire_at;

-- name: schedule_rewind
-- After a withdrawal: the next fire is the first withdrawn one again (unless NULL: a new
-- trigger's stays), and the last fire the latest one left with a job.
UPDATE tock_schedules
   SET next_fire_at = coalesce(:next_fire_at, next_fire_at),
       (last_fire_at, last_job_id) = (SELECT f.fire_at, f.job_id FROM tock_fires AS f
                                       WHERE f.schedule = :name AND f.job_id IS NOT NULL
                                       ORDER BY f.fire_at DESC, f.manual DESC LIMIT 1)
 WHERE name = :name;

-- name: schedule_lock
-- Whether the schedule exists (the write lock is already ours).
SELECT 1 FROM tock_schedules WHERE name = :name;

-- name: schedule_set_last
UPDATE tock_schedules SET last_fire_at = :last_fire_at, last_job_id = :last_job_id
 WHERE name = :name;

-- name: fire_extend
-- A drop joins the schedule's latest scheduled row when that row is a run of drops of
-- the same outcome that ends before it (docs/design.md: consecutive drops are one row).
UPDATE tock_fires SET last_at = :last_at, count = count + :count
 WHERE schedule = :schedule AND manual = 0
   AND fire_at = (SELECT max(fire_at) FROM tock_fires
                   WHERE schedule = :schedule AND manual = 0)
   AND job_id IS NULL AND outcome = :outcome AND last_at < :fire_at
RETURNING 1;

-- name: fire_insert
-- A scheduled fire (or a run of drops). A fire time already recorded, as a row's key or
-- inside a run of drops (the latest row at or before it), inserts nothing and returns no
-- row: it creates nothing.
INSERT INTO tock_fires (schedule, manual, fire_at, job_id, outcome, last_at, count,
                        created_at)
SELECT :schedule, 0, :fire_at, NULL, :outcome, :last_at, :count, {now}
 WHERE NOT EXISTS (SELECT 1 FROM (SELECT last_at FROM tock_fires
                                   WHERE schedule = :schedule AND manual = 0
                                     AND fire_at <= :fire_at
                                   ORDER BY fire_at DESC LIMIT 1)
                    WHERE last_at >= :fire_at)
ON CONFLICT (schedule, manual, fire_at) DO NOTHING
RETURNING 1;

-- name: fire_insert_manual
-- A manual trigger: its own key. Taken already (same microsecond): no row, the store
-- tries the next microsecond.
INSERT INTO tock_fires (schedule, manual, fire_at, job_id, outcome, last_at, count,
                        created_at)
VALUES (:schedule, 1, :fire_at, NULL, 'triggered', :fire_at, 1, {now})
ON CONFLICT (schedule, manual, fire_at) DO NOTHING
RETURNING 1;

-- name: fire_set_job
UPDATE tock_fires SET job_id = :job_id
 WHERE schedule = :schedule AND manual = :manual AND fire_at = :fire_at;

-- name: schedule_graph
-- The schedules that depend on others, with their dependencies (a JSON list): the
-- cycle check at definition (docs/design.md: "Schedules that wait on schedules").
SELECT name, depends_on FROM tock_schedules WHERE depends_on <> '[]';

-- name: schedule_lock_active
-- Whether the schedule exists and is active (the write lock is already ours).
SELECT 1 FROM tock_schedules WHERE name = :name AND enabled AND NOT paused;

-- name: schedule_deps_unmet
-- The dependencies of :name not met, in the order given: those none of whose runs (a
-- job of one of its fires, manual ones too) finished since the schedule's last run
-- started (its last job's start, or its creation while not started; the last fire
-- time once pruned), as succeeded or, with depends_on_outcome 'any', in any finished
-- state. A schedule that never ran: any finished run counts, and with future_depends
-- every dependency is met.
SELECT d.value
  FROM tock_schedules AS s, json_each(s.depends_on) AS d
 WHERE s.name = :name
   AND NOT (s.future_depends AND s.last_fire_at IS NULL)
   AND NOT EXISTS (
       SELECT 1 FROM tock_fires AS f JOIN tock_jobs_finished AS j ON j.id = f.job_id
        WHERE f.schedule = d.value AND f.job_id IS NOT NULL
          AND (j.status = 'succeeded' OR s.depends_on_outcome = 'any')
          AND (s.last_fire_at IS NULL
               OR j.finished_at > coalesce(
                      (SELECT coalesce(l.started_at, l.created_at) FROM tock_jobs AS l
                        WHERE l.id = s.last_job_id),
                      (SELECT coalesce(p.started_at, p.created_at) FROM tock_jobs_finished AS p
                        WHERE p.id = s.last_job_id),
                      s.last_fire_at)))
 ORDER BY d.key;

-- name: fire_waiting
-- The waiting fires of active schedules (of :tasks, a JSON array, when given), oldest
-- first, through the partial index tock_fires_waiting.
SELECT {fcols} FROM tock_fires
 WHERE outcome = 'waiting'
   AND schedule IN (SELECT name FROM tock_schedules
                     WHERE enabled AND NOT paused
                       AND (:tasks IS NULL OR task IN (SELECT value FROM json_each(:tasks))))
 ORDER BY fire_at
 LIMIT :limit;

-- name: fire_waiting_get
-- The schedule's waiting fire at :fire_at, if it still waits.
SELECT fire_at, last_at FROM tock_fires
 WHERE schedule = :schedule AND manual = 0 AND outcome = 'waiting' AND fire_at = :fire_at;

-- name: fire_wait_merge
-- A later fire of a schedule whose fire waits joins it (misfire coalesce or all; skip
-- replaces it instead): at most one waiting fire a schedule.
UPDATE tock_fires SET last_at = max(last_at, :fire_at), count = count + 1
 WHERE schedule = :schedule AND manual = 0 AND outcome = 'waiting'
   AND (SELECT misfire FROM tock_schedules WHERE name = :schedule) <> 'skip'
RETURNING 1;

-- name: fire_wait_drop
-- The schedule's waiting fire, dropped: recorded as 'dependencies'.
UPDATE tock_fires SET outcome = 'dependencies', waiting_for = NULL
 WHERE schedule = :schedule AND manual = 0 AND outcome = 'waiting';

-- name: fire_wait_set
-- What a waiting fire waits for (a JSON list of names), as the scheduler last saw it.
UPDATE tock_fires SET waiting_for = :waiting_for
 WHERE schedule = :schedule AND manual = 0 AND outcome = 'waiting' AND fire_at = :fire_at;

-- name: fire_released
-- A waiting fire whose dependencies are met: it now has its job.
UPDATE tock_fires SET outcome = 'enqueued', job_id = :job_id, waiting_for = NULL
 WHERE schedule = :schedule AND manual = 0 AND outcome = 'waiting' AND fire_at = :fire_at;

-- name: fire_list
-- Newest fire first; a page goes on below the cursor (:before_at, :before_manual).
SELECT {fcols} FROM tock_fires
 WHERE schedule = :name
   AND (:before_at IS NULL OR fire_at < :before_at
        OR (fire_at = :before_at AND manual < :before_manual))
 ORDER BY fire_at DESC, manual DESC
 LIMIT :limit;

-- name: fire_prune
-- One batch of old runs of drops, through the partial index tock_fires_drops.
-- A waiting fire is no drop: it stays until released or dropped.
DELETE FROM tock_fires
 WHERE rowid IN (SELECT rowid FROM tock_fires
                  WHERE job_id IS NULL AND last_at < {now} - :age_us AND manual = 0
                    AND outcome <> 'waiting'
                  LIMIT :batch_size);

-- name: leader_get
-- The lease (docs/design.md: Leader), and whether it has expired by the database's clock.
SELECT worker_id, term, elected_at, expires_at, coalesce(expires_at <= {now}, 1)
  FROM tock_leader WHERE name = 'leader';

-- name: leader_elect
-- A new term for :worker_id, from the term the candidate read: when nobody leads, the
-- lease expired, or (:takeover) the leader of that term was seen dead or resigned. Two
-- candidates from one term: the first wins, the second matches no row.
UPDATE tock_leader
   SET worker_id = :worker_id, term = term + 1, elected_at = {now}, expires_at = {now} + :ttl_us
 WHERE name = 'leader' AND term = :term
   AND (:takeover OR worker_id IS NULL OR expires_at <= {now})
RETURNING worker_id, term, elected_at, expires_at, 0;

-- name: leader_renew
-- Only the holder renews, in its own term, before the lease expires.
UPDATE tock_leader SET expires_at = {now} + :ttl_us
 WHERE name = 'leader' AND worker_id = :worker_id AND term = :term AND expires_at > {now}
RETURNING worker_id, term, elected_at, expires_at, 0;

-- name: leader_resign
-- The term stays: the next election takes the one after it.
UPDATE tock_leader SET worker_id = NULL, expires_at = {now}
 WHERE name = 'leader' AND worker_id = :worker_id AND term = :term;

-- name: leader_fence
-- Fencing: the first statement of a write made as leader, in its own transaction (under
-- the write lock, so no election can come between it and the commit).
SELECT 1 FROM tock_leader WHERE name = 'leader' AND worker_id = :worker_id AND term = :term;

-- name: leader_depose
-- `tock leader resign` from any process: the lease read just before is cleared (the term
-- stays); its holder finds out at its next renewal and stops, and a follower is elected
-- meanwhile.
UPDATE tock_leader SET worker_id = NULL, expires_at = {now}
 WHERE name = 'leader' AND worker_id = :worker_id AND term = :term AND expires_at > {now};

-- name: queue_set_paused
-- `tock queues pause|resume` (docs/design.md: Commands): a row per queue ever paused.
-- Pausing a paused queue keeps the time it was first paused.
INSERT INTO tock_queues (name, paused, paused_at, updated_at)
VALUES (:name, :paused, CASE WHEN :paused THEN {now} END, {now})
ON CONFLICT (name) DO UPDATE
   SET paused = excluded.paused,
       paused_at = CASE WHEN NOT excluded.paused THEN NULL
                        WHEN tock_queues.paused THEN tock_queues.paused_at
                        ELSE excluded.paused_at END,
       updated_at = excluded.updated_at
RETURNING name, paused, paused_at;

-- name: queue_list
SELECT name, paused, paused_at FROM tock_queues ORDER BY name;

-- name: worker_stop_request
-- `tock workers stop`: the worker finds it at its next look (worker_commands). Asking
-- again keeps the first time.
UPDATE tock_workers SET stop_requested_at = coalesce(stop_requested_at, {now})
 WHERE id = :worker_id
RETURNING id;

-- name: worker_commands
-- What a worker is asked to do: stop (kind 0), or stop one of its running jobs (kind 1,
-- the job's id); its jobs come through the partial index of running jobs.
SELECT 0, NULL FROM tock_workers WHERE id = :worker_id AND stop_requested_at IS NOT NULL
UNION ALL
SELECT 1, id FROM tock_jobs
 WHERE status = 'running' AND worker_id = :worker_id AND stop_requested_at IS NOT NULL;

-- name: job_stop_request
-- `tock jobs stop` of a running job: its worker stops the attempt and the job ends
-- canceled (asking again keeps the first time).
UPDATE tock_jobs SET stop_requested_at = coalesce(stop_requested_at, {now})
 WHERE id = :id AND status = 'running'
RETURNING worker_id;

-- name: job_cancel_stopped
-- Of :ids (a JSON array: jobs just handed back or retried), those whose stop was asked
-- for end canceled instead of waiting to run again (docs/design.md: Commands); the store
-- then deletes them from the live table (job_delete_many).
INSERT INTO tock_jobs_finished ({cols})
SELECT id, task, queue, priority, 'canceled', args, kwargs, run_at, created_at, started_at,
       {now}, attempts, rescues, retries, retry_backoff, retry_on, timeout, at_most_once,
       max_rescues, unique_key, worker_id, claim_token, NULL, error
  FROM tock_jobs
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'pending'
   AND stop_requested_at IS NOT NULL
RETURNING id;

-- Dependencies (docs/design.md: Dependencies). Every write below runs under the write
-- lock, in the transaction of the enqueue, finish, cancel, rescue or retry it belongs to.

-- name: dep_mark
-- Jobs that another job now depends on: the live ones of :ids are flagged, and named.
UPDATE tock_jobs SET has_dependents = 1
 WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING id;

-- name: dep_finished
-- The finished ones of :ids and how each ended.
SELECT id, status FROM tock_jobs_finished WHERE id IN (SELECT value FROM json_each(:ids));

-- name: dep_block
UPDATE tock_jobs SET status = 'blocked'
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'pending';

-- name: dep_insert_edges
-- :rows, a JSON array of [job_id, depends_on, position].
INSERT INTO tock_job_deps (job_id, depends_on, position)
SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(:rows);

-- name: dep_insert_waits
-- :rows, a JSON array of [job_id, deps_left, on_failure, pass_results].
INSERT INTO tock_job_waits (job_id, deps_left, on_failure, pass_results)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(:rows);

-- name: dep_waiting
-- The jobs still waiting on any of :ids (jobs that just ended), one row per edge: the
-- waiting job, the dependency, the job's count of unmet dependencies and its policy.
-- With "only", just the waiting jobs of :only (a JSON array).
-- variants: only
SELECT w.job_id, d.depends_on, w.deps_left, w.on_failure
  FROM tock_job_deps AS d
  JOIN tock_job_waits AS w ON w.job_id = d.job_id
 WHERE d.depends_on IN (SELECT value FROM json_each(:ids))
   AND w.canceled_by IS NULL AND w.deps_left > 0
   AND w.job_id IN (SELECT value FROM json_each(:only))             -- if only
 ORDER BY w.job_id, d.position;

-- name: dep_wait_set
-- :rows, a JSON array of [job_id, deps_left, canceled_by].
UPDATE tock_job_waits
   SET deps_left = r.value ->> 1, canceled_by = r.value ->> 2
  FROM json_each(:rows) AS r
 WHERE tock_job_waits.job_id = r.value ->> 0;

-- name: dep_pass
-- What the released jobs of :ids pass on: each one's arguments, how it takes its
-- dependencies' results, and each dependency in order with how it ended and its result.
SELECT w.job_id, w.pass_results, j.args, d.depends_on, f.status, f.result
  FROM tock_job_waits AS w
  JOIN tock_jobs AS j ON j.id = w.job_id
  JOIN tock_job_deps AS d ON d.job_id = w.job_id
  LEFT JOIN tock_jobs_finished AS f ON f.id = d.depends_on
 WHERE w.job_id IN (SELECT value FROM json_each(:ids)) AND w.pass_results IS NOT NULL
 ORDER BY w.job_id, d.position;

-- name: dep_release
-- :rows, a JSON array of [job_id, args or null]: blocked jobs become pending, with the
-- arguments their dependencies handed them.
UPDATE tock_jobs
   SET status = 'pending', args = coalesce(r.value ->> 1, tock_jobs.args)
  FROM json_each(:rows) AS r
 WHERE tock_jobs.id = r.value ->> 0 AND tock_jobs.status = 'blocked'
RETURNING tock_jobs.id, tock_jobs.queue;

-- name: dep_cancel
-- :rows, a JSON array of [job_id, error]: blocked jobs end canceled with that error (the
-- dependency that canceled them); the store then deletes them from the live table.
INSERT INTO tock_jobs_finished ({cols})
SELECT id, task, queue, priority, 'canceled', args, kwargs, run_at, created_at, started_at,
       {now}, attempts, rescues, retries, retry_backoff, retry_on, timeout, at_most_once,
       max_rescues, unique_key, worker_id, claim_token, NULL, dep_error
  FROM (SELECT j.*, r.value ->> 1 AS dep_error
          FROM json_each(:rows) AS r
          JOIN tock_jobs AS j ON j.id = r.value ->> 0
         WHERE j.status = 'blocked')
RETURNING id;

-- name: dep_drop
-- Jobs that run only on a failure, none came: gone without a trace, edges and all.
DELETE FROM tock_jobs
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'blocked'
RETURNING id;

-- name: dep_forget_edges
-- The dependency rows of jobs deleted (dropped, pruned or deleted by hand): their edges
-- (dep_forget_waits: their waits).
DELETE FROM tock_job_deps WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: dep_forget_waits
DELETE FROM tock_job_waits WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: dep_canceled_by
-- The jobs that :ids canceled (as dependencies), finished canceled.
SELECT w.job_id
  FROM tock_job_waits AS w
  JOIN tock_jobs_finished AS f ON f.id = w.job_id AND f.status = 'canceled'
 WHERE w.canceled_by IN (SELECT value FROM json_each(:ids));

-- name: dep_restore
-- `tock jobs retry` of a dependency brings the jobs it canceled back, blocked again; the
-- store then deletes them from the finished table (job_delete_finished_many) and counts
-- their dependencies again.
INSERT INTO tock_jobs ({cols})
SELECT id, task, queue, priority, 'blocked', args, kwargs, run_at, created_at, NULL, NULL,
       0, 0, retries, retry_backoff, retry_on, timeout, at_most_once, max_rescues,
       unique_key, NULL, NULL, NULL, NULL
  FROM tock_jobs_finished
 WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'canceled'
RETURNING id;

-- name: dep_recount
-- Jobs back to waiting: every dependency unmet again until settled; no longer canceled.
UPDATE tock_job_waits
   SET deps_left = (SELECT count(*) FROM tock_job_deps AS d
                     WHERE d.job_id = tock_job_waits.job_id),
       canceled_by = NULL
 WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: dep_remark
-- Jobs back in the live table that others depend on are flagged again.
UPDATE tock_jobs SET has_dependents = 1
 WHERE id IN (SELECT value FROM json_each(:ids))
   AND EXISTS (SELECT 1 FROM tock_job_deps AS d WHERE d.depends_on = tock_jobs.id);

-- name: dep_of_job
-- `tock jobs show`: what :id waits on (with each one's state, live or finished) ...
SELECT d.depends_on, d.position, coalesce(l.status, f.status)
  FROM tock_job_deps AS d
  LEFT JOIN tock_jobs AS l ON l.id = d.depends_on
  LEFT JOIN tock_jobs_finished AS f ON f.id = d.depends_on
 WHERE d.job_id = :id
 ORDER BY d.position;

-- name: dep_on_job
-- ... and what waits on it.
SELECT d.job_id, coalesce(l.status, f.status)
  FROM tock_job_deps AS d
  LEFT JOIN tock_jobs AS l ON l.id = d.job_id
  LEFT JOIN tock_jobs_finished AS f ON f.id = d.job_id
 WHERE d.depends_on = :id
 ORDER BY d.job_id;

-- name: dep_wait_of_job
SELECT deps_left, on_failure, pass_results, canceled_by FROM tock_job_waits WHERE job_id = :id;

-- name: workflow_insert
INSERT INTO tock_workflows (spec, job_ids, created_at) VALUES (:spec, :job_ids, {now})
RETURNING id, created_at;

-- name: workflow_get
SELECT id, spec, job_ids, created_at FROM tock_workflows WHERE id = :id;

-- name: dep_deps_of
SELECT DISTINCT depends_on FROM tock_job_deps
 WHERE job_id IN (SELECT value FROM json_each(:ids));

-- name: job_delete_moved
-- The rows a finish just copied to the finished table leave the live one; those that
-- others depend on are named (has_dependents), for the settling of their dependents.
DELETE FROM tock_jobs WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING id, has_dependents;

-- name: dep_unreleased
-- Of :ids, the jobs whose dependencies were never all met (canceled while they waited).
SELECT job_id FROM tock_job_waits
 WHERE job_id IN (SELECT value FROM json_each(:ids)) AND deps_left > 0;

-- name: workflow_prune
-- Workflows none of whose jobs is stored any more (all pruned or deleted), oldest first,
-- one batch (docs/design.md: Dependencies).
DELETE FROM tock_workflows
 WHERE id IN (SELECT w.id FROM tock_workflows AS w
               WHERE NOT EXISTS (SELECT 1 FROM json_each(w.job_ids) AS j
                                  WHERE EXISTS (SELECT 1 FROM tock_jobs WHERE id = j.value)
                                     OR EXISTS (SELECT 1 FROM tock_jobs_finished
                                                 WHERE id = j.value))
               ORDER BY w.id
               LIMIT :batch_size);
