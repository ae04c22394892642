-- Tock's queries for PostgreSQL (psycopg 3). Placeholders filled in when this file loads:
--   {schema} the URL's schema, quoted as an identifier: every table is named with it
--            and search_path is never relied upon (docs/design.md: URLs)
--   {now}    the caller's %(now)s (fake time in tests) or, when NULL, the database's
--            clock at the start of the transaction
--   {cols}   every column of a job row, in the order JobRecord is read
--   {scols}  every column of a schedule row, in the order ScheduleRecord is read, then
--            the status of its last job
--   {fcols}  every column of a fire row, in the order FireRecord is read
-- Durations arrive as intervals or as bigint microseconds (parameters ending in _us).

-- name: db_now
SELECT {now};

-- name: snapshot
-- The first statement of a transaction whose reads must all see one snapshot (the parts
-- of a list of jobs).
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: migration_lock
-- Two `tock migrate` at once: the second waits here, then finds nothing left to do.
SELECT pg_advisory_xact_lock(hashtextextended(%(lock)s, 0));

-- name: migration_record
INSERT INTO {schema}.tock_migrations (version, name, applied_at)
VALUES (%(version)s, %(name)s, {now});

-- name: migration_versions
SELECT version FROM {schema}.tock_migrations ORDER BY version;

-- name: server_identity
-- Which database of which running server a connection is on: the same on every
-- connection to it, by TCP or socket, until the server restarts.
SELECT current_database(), pg_postmaster_start_time();

-- name: migration_table
-- A row when the schema holds Tock's migrations table.
SELECT 1 WHERE to_regclass('{schema}.tock_migrations') IS NOT NULL;

-- name: migration_setup
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.tock_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL
);

-- name: job_insert_many
-- One statement for the whole batch: one array per column, inserted in array order (so
-- the identity hands out increasing ids in input order). A unique key a live job holds
-- inserts nothing: the store then reads that job's id (job_by_unique_key).
-- Variants: "keyless" for a batch without unique keys, without the ON CONFLICT clause
-- (it makes every row a speculative insertion, about an eighth of a bulk insert's time
-- on the server); "hint" with the job_notify hint in the same statement, one round trip
-- fewer: a materialized CTE joined to the inserted rows, evaluated once at most and not
-- at all when no row was inserted.
-- variants: hint, keyless
WITH ins AS (                                                      -- if hint
INSERT INTO {schema}.tock_jobs (task, queue, priority, status, args, kwargs, run_at,
                                created_at, retries, retry_backoff, retry_on, timeout,
                                at_most_once, max_rescues, unique_key)
SELECT u.task, u.queue, u.priority, 'pending', u.args, u.kwargs,
       coalesce(u.run_at, {now} + u.run_after_us * interval '1 microsecond'), {now},
       u.retries, u.retry_backoff, u.retry_on, u.timeout, u.at_most_once, u.max_rescues,
       u.unique_key
  FROM unnest(%(task)s::text[], %(queue)s::text[], %(priority)s::int[], %(args)s::text[],
              %(kwargs)s::text[], %(run_at)s::timestamptz[], %(run_after_us)s::bigint[],
              %(retries)s::int[], %(retry_backoff)s::float8[], %(retry_on)s::text[],
              %(timeout)s::float8[], %(at_most_once)s::bool[], %(max_rescues)s::int[],
              %(unique_key)s::text[])
       WITH ORDINALITY
       AS u(task, queue, priority, args, kwargs, run_at, run_after_us, retries,
            retry_backoff, retry_on, timeout, at_most_once, max_rescues, unique_key, ord)
 ORDER BY u.ord
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING   -- if not keyless
RETURNING id, unique_key
{query:job_insert_hint}

-- name: job_insert_one
-- job_insert_many for one job: plain parameters, quicker to send than one-element arrays.
-- variants: hint, keyless
WITH ins AS (                                                      -- if hint
INSERT INTO {schema}.tock_jobs (task, queue, priority, status, args, kwargs, run_at,
                                created_at, retries, retry_backoff, retry_on, timeout,
                                at_most_once, max_rescues, unique_key)
VALUES (%(task)s::text, %(queue)s::text, %(priority)s::int, 'pending', %(args)s::text,
        %(kwargs)s::text,
        coalesce(%(run_at)s::timestamptz,
                 {now} + %(run_after_us)s::bigint * interval '1 microsecond'), {now},
        %(retries)s::int, %(retry_backoff)s::float8, %(retry_on)s::text,
        %(timeout)s::float8, %(at_most_once)s::bool, %(max_rescues)s::int,
        %(unique_key)s::text)
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING   -- if not keyless
RETURNING id, unique_key
{query:job_insert_hint}

-- name: job_insert_hint
-- The end of an insert's "hint" variant: the wake-up hint in the same statement.
-- variants: hint
), hint AS MATERIALIZED (                                          -- if hint
    SELECT count(pg_notify(%(channel)s, q)) AS n                   -- if hint
      FROM unnest(%(queues)s::text[]) AS q                         -- if hint
)                                                                  -- if hint
SELECT ins.id, ins.unique_key FROM ins, hint                       -- if hint

-- name: job_stage_create
-- The staging table of big enqueues with unique keys: one per session, emptied at every
-- commit, and before each batch: an earlier batch of the caller's transaction left its
-- rows. It holds only what differs from job to job; the options come once per run of
-- jobs that share them (``run`` numbers the runs, from 1; NULL when the batch is one run).
CREATE TEMP TABLE IF NOT EXISTS tock_enqueue_args (
    run int, args text, kwargs text, ord bigint GENERATED ALWAYS AS IDENTITY
) ON COMMIT DELETE ROWS;
DELETE FROM pg_temp.tock_enqueue_args;

-- name: job_stage_copy
COPY pg_temp.tock_enqueue_args (run, args, kwargs) FROM STDIN;

-- name: job_insert_staged
-- job_insert_many for big batches: the staged arguments in COPY order, each with the
-- options of its run (one array element per run).
-- variants: keyless
INSERT INTO {schema}.tock_jobs (task, queue, priority, status, args, kwargs, run_at,
                                created_at, retries, retry_backoff, retry_on, timeout,
                                at_most_once, max_rescues, unique_key)
SELECT r.task, r.queue, r.priority, 'pending', u.args, u.kwargs,
       coalesce(r.run_at, {now} + r.run_after_us * interval '1 microsecond'), {now},
       r.retries, r.retry_backoff, r.retry_on, r.timeout, r.at_most_once, r.max_rescues,
       r.unique_key
  FROM pg_temp.tock_enqueue_args AS u
  JOIN unnest(%(task)s::text[], %(queue)s::text[], %(priority)s::int[],
              %(run_at)s::timestamptz[], %(run_after_us)s::bigint[], %(retries)s::int[],
              %(retry_backoff)s::float8[], %(retry_on)s::text[], %(timeout)s::float8[],
              %(at_most_once)s::bool[], %(max_rescues)s::int[], %(unique_key)s::text[])
       WITH ORDINALITY
       AS r(task, queue, priority, run_at, run_after_us, retries, retry_backoff, retry_on,
            timeout, at_most_once, max_rescues, unique_key, run)
    ON r.run = u.run
 ORDER BY u.ord
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING   -- if not keyless
RETURNING id, unique_key;

-- name: job_stage_copy_one
COPY pg_temp.tock_enqueue_args (args, kwargs) FROM STDIN;

-- name: job_insert_staged_one
-- job_insert_staged for a batch of one run (the usual one: one task, one set of
-- options): the options as plain parameters, no join.
-- variants: keyless
INSERT INTO {schema}.tock_jobs (task, queue, priority, status, args, kwargs, run_at,
                                created_at, retries, retry_backoff, retry_on, timeout,
                                at_most_once, max_rescues, unique_key)
SELECT %(task)s::text, %(queue)s::text, %(priority)s::int, 'pending', u.args, u.kwargs,
       coalesce(%(run_at)s::timestamptz,
                {now} + %(run_after_us)s::bigint * interval '1 microsecond'), {now},
       %(retries)s::int, %(retry_backoff)s::float8, %(retry_on)s::text, %(timeout)s::float8,
       %(at_most_once)s::bool, %(max_rescues)s::int, %(unique_key)s::text
  FROM pg_temp.tock_enqueue_args AS u
 ORDER BY u.ord
ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING   -- if not keyless
RETURNING id, unique_key;

-- name: job_take_ids
-- Big batches without unique keys: their ids, taken from the identity's sequence in
-- increasing order, and the time they are created at, for job_copy. OFFSET 0 looks the
-- sequence up once, not once per id.
SELECT {now},
       array(SELECT nextval(s.seq)
               FROM (SELECT pg_get_serial_sequence('{schema}.tock_jobs', 'id')::regclass
                            AS seq OFFSET 0) AS s,
                    generate_series(1, %(n)s::int));

-- name: job_copy
-- The rows of job_take_ids' ids, straight into the live table: COPY writes the heap a
-- page at a time where INSERT ... SELECT writes it a row at a time. COPY may write a
-- GENERATED ALWAYS column. The columns that vary from job to job come first.
COPY {schema}.tock_jobs (id, args, kwargs, task, queue, priority, status, run_at,
                         created_at, retries, retry_backoff, retry_on, timeout,
                         at_most_once, max_rescues)
FROM STDIN (FORMAT binary);

-- name: job_by_unique_key
-- The live jobs that hold any of these unique keys.
SELECT unique_key, id FROM {schema}.tock_jobs WHERE unique_key = ANY(%(keys)s::text[]);

-- name: job_notify
-- A hint for idle workers (they LISTEN on the schema's channel), sent at commit: never
-- one per job (each notifying commit takes a global lock), see the store's throttle.
SELECT pg_notify(%(channel)s, q) FROM unnest(%(queues)s::text[]) AS q;

-- name: job_get
-- One statement, one snapshot: a job moving between the tables is seen exactly once.
SELECT {cols} FROM {schema}.tock_jobs WHERE id = %(id)s
UNION ALL
SELECT {cols} FROM {schema}.tock_jobs_finished WHERE id = %(id)s
LIMIT 1;

-- name: worker_alive
-- Part of a claim: the claiming worker's row exists, key-share-locked for the claim.
EXISTS (SELECT 1 FROM {schema}.tock_workers WHERE id = %(worker_id)s FOR KEY SHARE)

-- name: job_claim_batch
-- Due: run_at now or within %(ahead_us)s (a worker that woke just before a job's time
-- claims it early and starts it at its time: docs/design.md, "Claimed early").
-- Lock the first %(limit)s due jobs in claim order, skipping rows other claimers hold;
-- the LIMIT sits inside the CTE, next to FOR UPDATE, so the planner cannot lock more
-- rows than asked. At-most-once jobs are taken only into the %(free)s slots that start
-- at once (their rank), the rest may be prefetched; the claim stops before the first
-- at-most-once job it cannot take, so that prefetching workers never starve it behind a
-- stream of other jobs (docs/design.md: claim order). A worker whose row is gone (declared
-- dead, not yet registered again) claims nothing: worker_alive key-share-locks the
-- row, so a rescuer burying this worker either waits for this claim or is waited for.
-- A claimed job is not started: no started_at, no attempt counted, until the worker
-- records its start (job_start) or its outcome. A paused queue gives nothing
-- ({query:queue_open}: one probe of tock_queues' primary key, docs/design.md: Commands).
-- Variants: "finish" and "start" begin with the CTEs of job_finish and job_start: the
-- worker's last batch recorded in the same statement; the "finish" variant then returns
-- one more column, the number of outcomes it did not apply (jobs that others depend on,
-- and outcomes whose claim no longer holds). Every variant answers one row with no job
-- when it claims nothing. "lazy" (a claim that records no outcome) commits without
-- waiting for the WAL flush unless it took an at-most-once job ({query:claim_lazy}).
-- The finish is written before the
-- claim locks its first row (the count of "finished" gates the scan: a one-time filter),
-- never after: PostgreSQL runs a data-modifying CTE the main statement does not read
-- after the main statement, and a lock taken by FOR UPDATE stays held even where the
-- row then fails its re-check (a row another claimer took since this statement's
-- snapshot). A claim that locked such a row, then waited for one of its own finished
-- rows, could deadlock with that claimer finishing the row it locked.
-- variants: finish, start, lazy
WITH
{query:job_finish},                                                -- if finish
{query:job_start},                                                 -- if start
locked AS (
    SELECT id, at_most_once, priority, run_at FROM {schema}.tock_jobs
     WHERE status = 'pending' AND queue = %(queue)s
       AND run_at <= {now} + %(ahead_us)s * interval '1 microsecond' AND {query:worker_alive}
       AND {query:queue_open}
       AND (SELECT count(*) FROM finished) >= 0                     -- if finish
     ORDER BY priority DESC, run_at, id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT id, at_most_once,
           row_number() OVER (ORDER BY priority DESC, run_at, id) AS rank
      FROM locked
), claimed AS (
UPDATE {schema}.tock_jobs AS j
   SET status = 'running', worker_id = %(worker_id)s, claim_token = %(token)s,
       started_at = NULL
  FROM ranked AS r
 WHERE j.id = r.id
   AND r.rank < (SELECT coalesce(min(rank), %(limit)s + 1) FROM ranked
                  WHERE at_most_once AND rank > %(free)s)
RETURNING {jcols}
)
SELECT c.*, (SELECT count(*) FROM b) - (SELECT count(*) FROM finished)  -- if finish
SELECT c.*                                                          -- if not finish
  FROM (SELECT) AS one                                              -- if not lazy
  FROM {query:claim_lazy} AS one                                    -- if lazy
  LEFT JOIN claimed AS c ON true;

-- name: job_claim_batch_queues
-- The same across the queues of %(queues)s: for each queue, an ordered scan of the claim
-- index for at most twice the batch (LATERAL, one index scan a queue); the first twice
-- the batch of those together are the candidates (a sort of at most that many rows a
-- queue, never of a backlog). PostgreSQL cannot lock in claim order across several
-- scans, and locking in each would lock up to %(limit)s rows a queue; so the candidates
-- are read without locks, then looked up by primary key (= ANY of an array: the planner
-- cannot misjudge the set and scan the table) and locked in claim order with SKIP LOCKED
-- and the LIMIT inside the CTE: at most %(limit)s rows are locked. Rows other claimers
-- took meanwhile are skipped or fail the re-checked WHERE; the slack of twice the batch
-- keeps the batch full under contention. Paused queues give no candidates. The status
-- is re-checked as an expression (status || '') that the claim index, partial on
-- status = 'pending', cannot serve: given that index, the planner scanned every pending
-- job and compared each with the whole array (20,000 pending jobs, a batch of 1,000:
-- 150 ms a claim instead of 10).
-- Variants: "finish", "start" and "lazy", as job_claim_batch's.
-- variants: finish, start, lazy
WITH
{query:job_finish},                                                -- if finish
{query:job_start},                                                 -- if start
candidates AS (
    SELECT c.id
      FROM unnest(%(queues)s::text[]) AS q(name)
     CROSS JOIN LATERAL (
           SELECT id, priority, run_at FROM {schema}.tock_jobs
            WHERE status = 'pending' AND queue = q.name
              AND run_at <= {now} + %(ahead_us)s * interval '1 microsecond'
            ORDER BY priority DESC, run_at, id
            LIMIT 2 * %(limit)s) AS c
     WHERE NOT EXISTS (SELECT 1 FROM {schema}.tock_queues AS p
                        WHERE p.name = q.name AND p.paused)
     ORDER BY c.priority DESC, c.run_at, c.id
     LIMIT 2 * %(limit)s
), locked AS (
    SELECT id, at_most_once, priority, run_at FROM {schema}.tock_jobs
     WHERE id = ANY (ARRAY(SELECT id FROM candidates))
       AND status || '' = 'pending' AND run_at <= {now} + %(ahead_us)s * interval '1 microsecond'
       AND {query:worker_alive}
       AND (SELECT count(*) FROM finished) >= 0                     -- if finish
     ORDER BY priority DESC, run_at, id
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT id, at_most_once,
           row_number() OVER (ORDER BY priority DESC, run_at, id) AS rank
      FROM locked
), claimed AS (
UPDATE {schema}.tock_jobs AS j
   SET status = 'running', worker_id = %(worker_id)s, claim_token = %(token)s,
       started_at = NULL
  FROM ranked AS r
 WHERE j.id = r.id
   AND r.rank < (SELECT coalesce(min(rank), %(limit)s + 1) FROM ranked
                  WHERE at_most_once AND rank > %(free)s)
RETURNING {jcols}
)
SELECT c.*, (SELECT count(*) FROM b) - (SELECT count(*) FROM finished)  -- if finish
SELECT c.*                                                          -- if not finish
  FROM (SELECT) AS one                                              -- if not lazy
  FROM {query:claim_lazy} AS one                                    -- if lazy
  LEFT JOIN claimed AS c ON true;

-- name: claim_lazy
-- Part of a "lazy" claim: its transaction commits without waiting for its WAL to reach
-- the disk (synchronous_commit off, for this transaction alone) unless it took an
-- at-most-once job. A claim is a lease, not data: should the server crash before the
-- WAL writer flushed it (within three wal_writer_delay, 0.6 s by default), its jobs are
-- pending again and run again, which at-least-once allows, and the worker's outcome for
-- them finds its claim token stale and changes nothing. An at-most-once job must never
-- start twice, so its claim waits for the flush; so does every transaction that records
-- outcomes (a lost outcome would leave its job running for a live worker) and every
-- enqueue (docs/design.md: "Claims commit lazily").
(SELECT CASE WHEN NOT coalesce(bool_or(at_most_once), false)
             THEN set_config('synchronous_commit', 'off', true) END
   FROM claimed)

-- name: job_next_due
-- Paused queues left out: an idle worker does not wake for jobs it may not claim.
SELECT min(run_at) FROM {schema}.tock_jobs AS j
 WHERE status = 'pending' AND queue = ANY(%(queues)s::text[])
   AND NOT EXISTS (SELECT 1 FROM {schema}.tock_queues AS p WHERE p.name = j.queue AND p.paused);

-- name: queue_open
-- Part of a claim: the queue %(queue)s is not paused (docs/design.md: Commands).
NOT EXISTS (SELECT 1 FROM {schema}.tock_queues WHERE name = %(queue)s AND paused)

-- name: job_finish
-- Move claimed jobs to the finished table where the claim token still holds, for the
-- whole batch (a JSON array of {id, token, status, result, error, ago_us}; result and
-- error are the JSON the worker encoded, or null). A job whose start is not recorded
-- yet (started_at NULL) counts its attempt here, started ago_us before now. A job that
-- succeeds after retries keeps its last error, for the record. The DELETE locks each row: a rescuer moving the same job
-- at once waits, then finds it gone. It finds its rows by primary key (id = ANY) and
-- matches the token; it does not test status = 'running', which would let the planner
-- read every running row of the table through tock_jobs_worker (a partial index on that
-- status) once per batch: a token is held only while its job runs (every way back to
-- pending clears it), so the token alone says the claim still holds.
-- A claim's "finish" variant leaves the jobs that others depend on where they are (their
-- dependents are settled by a statement of its own, which sees every edge committed
-- before it: job_finish_many in a transaction) and says how many outcomes it did not
-- apply.
-- variants: finish
-- These are only CTEs: job_finish_many ends them with a count of the moved jobs, and
-- a claim's "finish" variant puts them before its own CTEs and UPDATE, so that finishing
-- a batch and claiming the next is one statement (one round trip, one commit). The rows
-- it deletes are running, the rows a claim takes pending; the claim waits for these
-- CTEs before it locks anything (see job_claim_batch).
b AS (
    SELECT * FROM json_to_recordset(%(finished)s::json)
                  AS b(id bigint, token bigint, status text, result json, error json,
                       ago_us bigint)
), done AS (
    DELETE FROM {schema}.tock_jobs AS j USING b
     WHERE j.id = ANY (ARRAY(SELECT id FROM b)) AND j.id = b.id AND j.claim_token = b.token
       AND NOT j.has_dependents                                     -- if finish
    RETURNING j.*, b.status AS new_status, b.result::text AS new_result,
              b.error::text AS new_error, b.ago_us
), finished AS (
    INSERT INTO {schema}.tock_jobs_finished ({cols})
    SELECT id, task, queue, priority, new_status, args, kwargs, run_at, created_at,
           coalesce(started_at, {now} - coalesce(ago_us, 0) * interval '1 microsecond'),
           {now}, attempts + (started_at IS NULL)::int, rescues, retries, retry_backoff,
           retry_on, timeout, at_most_once, max_rescues, unique_key, worker_id, claim_token,
           nullif(new_result, 'null'), coalesce(nullif(new_error, 'null'), error)
      FROM done
    RETURNING id
)

-- name: job_start
-- Record the starts of attempts still running at a batch (a JSON array of {id, token,
-- ago_us}): once per claim (started_at IS NULL), so sent again it changes nothing. Only
-- CTEs, before the statement of the batch (a claim's "start" variant, or
-- job_start_many), so that they cost no round trip of their own. Their rows are running
-- jobs that did not end in this batch: none is a row the other parts delete or lock.
-- SKIP LOCKED: a start
-- never waits. The job's outcome may be in another claimer lane's batch in flight (it
-- ended meanwhile), and two such batches, each waiting for a row the other locked,
-- would deadlock; a start so skipped is recorded by that outcome.
to_start AS (
    SELECT l.id, s.ago_us
      FROM json_to_recordset(%(started)s::json) AS s(id bigint, token bigint, ago_us bigint)
      JOIN {schema}.tock_jobs AS l
        ON l.id = s.id AND l.claim_token = s.token AND l.started_at IS NULL
       FOR UPDATE OF l SKIP LOCKED
), started AS (
    UPDATE {schema}.tock_jobs AS j
       SET started_at = {now} - t.ago_us * interval '1 microsecond', attempts = j.attempts + 1
      FROM to_start AS t
     WHERE j.id = t.id
    RETURNING 1
)

-- name: job_finish_many
-- job_finish on its own (a batch with retries or releases), how many jobs it moved, and
-- those that others depend on, for the settling of their dependents (docs/design.md:
-- Dependencies).
WITH {query:job_finish}
SELECT (SELECT count(*) FROM finished), ARRAY(SELECT id FROM done WHERE has_dependents);

-- name: job_start_many
-- job_start on its own, and how many starts it recorded.
WITH {query:job_start}
SELECT count(*) FROM started;

-- name: job_retry_later
-- Raised with attempts left: back to pending after its backoff, for the whole batch. A
-- start not recorded yet is recorded here (as in job_finish).
UPDATE {schema}.tock_jobs AS j
   SET status = 'pending', run_at = {now} + b.delay_us * interval '1 microsecond',
       worker_id = NULL, claim_token = NULL, error = b.error,
       attempts = j.attempts + (j.started_at IS NULL)::int,
       started_at = coalesce(j.started_at, {now} - b.ago_us * interval '1 microsecond')
  FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[], %(delays_us)s::bigint[],
              %(errors)s::text[], %(agos_us)s::bigint[]) AS b(id, token, delay_us, error, ago_us)
 WHERE j.id = b.id AND j.claim_token = b.token AND j.status = 'running';

-- name: job_release
-- Hand back jobs that were claimed but never started: no attempt is used up.
UPDATE {schema}.tock_jobs AS j
   SET status = 'pending', worker_id = NULL, claim_token = NULL
  FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS b(id, token)
 WHERE j.id = b.id AND j.claim_token = b.token AND j.status = 'running';

-- name: job_list
-- One part of a list of jobs (docs/design.md: listing jobs): the newest first below
-- %(before)s, on the live table or the "finished" one. The live table is read in
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
EXPLAIN                              -- if plan
SELECT {cols}                        -- if not ids
SELECT id                            -- if ids
  FROM {schema}.tock_jobs          -- if not finished
  FROM {schema}.tock_jobs_finished -- if finished
 WHERE id < %(before)s
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
   AND queue = %(queue)s              -- if queue
   AND task = %(task)s                -- if task
   AND worker_id = %(worker_id)s      -- if worker
   AND id = %(search_id)s             -- if by_id
   AND unique_key = %(search)s        -- if by_key
 ORDER BY id DESC
 LIMIT %(limit)s;

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
   AND queue = %(queue)s              -- if queue
   AND task = %(task)s                -- if task
   AND worker_id = %(worker_id)s      -- if worker

-- name: job_search_window
-- A search's window on one part of a list (docs/design.md: searching jobs): the lowest
-- id and the number of the at most %(scan)s newest jobs below %(before)s that the
-- filter matches, read along the index job_list uses.
-- variants: finished, blocked, pending, running, scheduled, ready, claimed, started
-- variants: succeeded, failed, lost, canceled, unsucceeded, queue, task, worker
SELECT min(id), count(*) FROM (
SELECT id FROM {schema}.tock_jobs           -- if not finished
SELECT id FROM {schema}.tock_jobs_finished  -- if finished
 WHERE id < %(before)s
{query:job_filter}
 ORDER BY id DESC
 LIMIT %(scan)s) AS window_;

-- name: job_search
-- The jobs of the window (ids from %(floor)s, below %(before)s) whose id is
-- %(search_id)s or whose task, queue, unique key or arguments (their JSON text) contain
-- %(pattern)s, whatever the case.
-- variants: finished, blocked, pending, running, scheduled, ready, claimed, started
-- variants: succeeded, failed, lost, canceled, unsucceeded, queue, task, worker
SELECT {cols}
  FROM {schema}.tock_jobs          -- if not finished
  FROM {schema}.tock_jobs_finished -- if finished
 WHERE id < %(before)s AND id >= %(floor)s
{query:job_filter}
   AND (id = %(search_id)s OR task ILIKE %(pattern)s ESCAPE '\'
        OR queue ILIKE %(pattern)s ESCAPE '\' OR unique_key ILIKE %(pattern)s ESCAPE '\'
        OR args ILIKE %(pattern)s ESCAPE '\' OR kwargs ILIKE %(pattern)s ESCAPE '\')
 ORDER BY id DESC
 LIMIT %(limit)s;

-- name: job_count_queues
-- The queues of pending jobs (docs/design.md: counting jobs), each found through the
-- claim index by skipping from one queue to the next: one index lookup a queue,
-- whatever the backlog.
WITH RECURSIVE q(name) AS (
    SELECT min(queue) FROM {schema}.tock_jobs WHERE status = 'pending'
    UNION ALL
    SELECT (SELECT min(queue) FROM {schema}.tock_jobs
             WHERE status = 'pending' AND queue > q.name)
      FROM q
     WHERE q.name IS NOT NULL
)
SELECT name FROM q WHERE name IS NOT NULL;

-- name: job_count_pending
-- Of %(queue)s's first %(scan)s pending jobs in claim order (read along the claim
-- index, so never more than %(scan)s rows): how many were read, and how many of
-- %(task)s (of every task when NULL) are scheduled and ready.
SELECT count(*),
       count(*) FILTER (WHERE run_at > {now}
                          AND (%(task)s::text IS NULL OR task = %(task)s)),
       count(*) FILTER (WHERE run_at <= {now}
                          AND (%(task)s::text IS NULL OR task = %(task)s))
  FROM (SELECT run_at, task FROM {schema}.tock_jobs
         WHERE status = 'pending' AND queue = %(queue)s
         ORDER BY priority DESC, run_at, id
         LIMIT %(scan)s) AS first;

-- name: job_count_running
-- The running jobs per queue, claimed and started, of %(task)s or of every task: exact
-- (read through the partial index of running jobs: as many as the workers hold).
SELECT queue,
       count(*) FILTER (WHERE started_at IS NULL
                          AND (%(task)s::text IS NULL OR task = %(task)s)),
       count(*) FILTER (WHERE started_at IS NOT NULL
                          AND (%(task)s::text IS NULL OR task = %(task)s))
  FROM {schema}.tock_jobs
 WHERE status = 'running'
 GROUP BY queue;

-- name: job_count_blocked
-- Per queue, of the first %(scan)s blocked jobs (read along their index, so never more
-- than %(scan)s rows): how many, and how many of %(task)s.
SELECT queue, count(*), count(*) FILTER (WHERE %(task)s::text IS NULL OR task = %(task)s)
  FROM (SELECT queue, task FROM {schema}.tock_jobs
         WHERE status = 'blocked'
         ORDER BY queue, id
         LIMIT %(scan)s) AS first
 GROUP BY queue;

-- name: job_count_finished
-- Per queue, of the newest %(scan)s finished jobs of %(status)s (read along the index
-- on (status, id), so never more than %(scan)s rows): how many, and how many are of
-- %(task)s (all of them when it is NULL).
SELECT queue, count(*), count(*) FILTER (WHERE %(task)s::text IS NULL OR task = %(task)s)
  FROM (SELECT queue, task FROM {schema}.tock_jobs_finished
         WHERE status = %(status)s
         ORDER BY id DESC
         LIMIT %(scan)s) AS newest
 GROUP BY queue;

-- name: job_retry_many
-- `tock jobs retry`, of each of %(ids)s that is failed, lost or canceled: back to the
-- live table, same id, attempts reset. Jobs with a unique key are moved one at a time by
-- job_retry_keyed (a key a live job holds refuses that job alone); these have none.
-- A job canceled by a dependency is not retried by itself: the retry of that dependency
-- brings it back (docs/design.md: Dependencies).
WITH moved AS (
    DELETE FROM {schema}.tock_jobs_finished AS f
     WHERE id = ANY(%(ids)s::bigint[]) AND status IN ('failed', 'lost', 'canceled')
       AND unique_key IS NULL
       AND NOT EXISTS (SELECT 1 FROM {schema}.tock_job_waits AS w
                        WHERE w.job_id = f.id AND w.canceled_by IS NOT NULL)
    RETURNING *
)
INSERT INTO {schema}.tock_jobs ({cols}) OVERRIDING SYSTEM VALUE
SELECT id, task, queue, priority, 'pending', args, kwargs, {now}, created_at, NULL, NULL,
       0, 0, retries, retry_backoff, retry_on, timeout, at_most_once, max_rescues,
       unique_key, NULL, NULL, NULL, error
  FROM moved
RETURNING id, queue;

-- name: job_retry_keyed
-- One job with a unique key (see job_retry_many); the insert fails with a unique
-- violation when a live job holds the key, and the store rolls back to its savepoint.
WITH moved AS (
    DELETE FROM {schema}.tock_jobs_finished
     WHERE id = %(id)s AND status IN ('failed', 'lost', 'canceled')
    RETURNING *
)
INSERT INTO {schema}.tock_jobs ({cols}) OVERRIDING SYSTEM VALUE
SELECT id, task, queue, priority, 'pending', args, kwargs, {now}, created_at, NULL, NULL,
       0, 0, retries, retry_backoff, retry_on, timeout, at_most_once, max_rescues,
       unique_key, NULL, NULL, NULL, error
  FROM moved
RETURNING id, queue;

-- name: job_keyed
-- Which of %(ids)s are finished jobs with a unique key.
SELECT id FROM {schema}.tock_jobs_finished
 WHERE id = ANY(%(ids)s::bigint[]) AND unique_key IS NOT NULL;

-- name: job_cancel_many
WITH moved AS (
    DELETE FROM {schema}.tock_jobs
     WHERE id = ANY(%(ids)s::bigint[]) AND status IN ('pending', 'blocked')
    RETURNING *
)
INSERT INTO {schema}.tock_jobs_finished ({cols})
SELECT id, task, queue, priority, 'canceled', args, kwargs, run_at, created_at, started_at,
       {now}, attempts, rescues, retries, retry_backoff, retry_on, timeout, at_most_once,
       max_rescues, unique_key, worker_id, claim_token, NULL, error
  FROM moved
RETURNING id;

-- name: job_delete_finished_jobs
-- Finished jobs only, with their fire rows (as when pruned).
WITH gone AS (
    DELETE FROM {schema}.tock_jobs_finished WHERE id = ANY(%(ids)s::bigint[])
    RETURNING id
), fires AS (
    DELETE FROM {schema}.tock_fires WHERE job_id IN (SELECT id FROM gone)
), edges AS (
    DELETE FROM {schema}.tock_job_deps WHERE job_id IN (SELECT id FROM gone)
), waits AS (
    DELETE FROM {schema}.tock_job_waits WHERE job_id IN (SELECT id FROM gone)
)
SELECT id FROM gone;

-- name: job_run_now_many
-- Scheduled jobs (pending, due later) become ready: due now.
UPDATE {schema}.tock_jobs SET run_at = {now}
 WHERE id = ANY(%(ids)s::bigint[]) AND status = 'pending' AND run_at > {now}
RETURNING id, queue;

-- name: job_prune
-- One batch, with the jobs' fire rows (docs/design.md: fire rows are pruned with their job's
-- retention); returns how many jobs. SKIP LOCKED lets two pruners share the work
-- instead of queueing.
-- A finished job that a blocked job still waits on is kept: its result goes to that
-- job's arguments when it is released; the dependency rows of the jobs pruned go with
-- them (docs/design.md: Dependencies).
WITH gone AS (
    DELETE FROM {schema}.tock_jobs_finished
     WHERE id IN (SELECT id FROM {schema}.tock_jobs_finished AS f
                   WHERE status = %(status)s
                     AND finished_at < {now} - %(age_us)s * interval '1 microsecond'
                     AND NOT EXISTS (SELECT 1 FROM {schema}.tock_job_deps AS d
                                       JOIN {schema}.tock_jobs AS j ON j.id = d.job_id
                                      WHERE d.depends_on = f.id)
                   ORDER BY id
                   LIMIT %(batch_size)s
                     FOR UPDATE SKIP LOCKED)
    RETURNING id
), fires AS (
    DELETE FROM {schema}.tock_fires WHERE job_id IN (SELECT id FROM gone)
), edges AS (
    DELETE FROM {schema}.tock_job_deps WHERE job_id IN (SELECT id FROM gone)
), waits AS (
    DELETE FROM {schema}.tock_job_waits WHERE job_id IN (SELECT id FROM gone)
)
SELECT count(*) FROM gone;

-- name: job_dead_rows
-- Dead row versions in the live table, from the statistics PostgreSQL keeps as it goes.
SELECT n_dead_tup FROM pg_stat_all_tables
 WHERE relid = to_regclass('{schema}.tock_jobs');

-- name: job_vacuum
VACUUM (SKIP_LOCKED, ANALYZE) {schema}.tock_jobs;

-- name: job_stats_live
-- Per queue and status: the count, the ready ones (pending, due), the oldest ready one's
-- run_at, and the claimed ones (running, not started).
SELECT queue, status, count(*),
       count(*) FILTER (WHERE status = 'pending' AND run_at <= {now}),
       min(run_at) FILTER (WHERE status = 'pending' AND run_at <= {now}),
       count(*) FILTER (WHERE status = 'running' AND started_at IS NULL)
  FROM {schema}.tock_jobs GROUP BY queue, status;

-- name: job_stats_finished
SELECT queue, status, count(*) FROM {schema}.tock_jobs_finished GROUP BY queue, status;

-- name: worker_register
INSERT INTO {schema}.tock_workers (id, hostname, pid, queues, concurrency, started_at,
                                   heartbeat_at)
VALUES (%(id)s, %(hostname)s, %(pid)s, %(queues)s::text[], %(concurrency)s, {now}, {now})
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at;

-- name: worker_token_take
-- The worker's liveness token: a session advisory lock on a 64-bit hash of its id,
-- held by a connection kept for the worker's life; the server releases it when the
-- session ends, however the process dies.
SELECT pg_try_advisory_lock(hashtextextended(%(lock)s, 0));

-- name: token_check
-- A round trip on a worker's token session: an error means the server ended it.
SELECT 1;

-- name: worker_heartbeat
UPDATE {schema}.tock_workers SET heartbeat_at = {now} WHERE id = %(id)s;

-- name: worker_list
-- Each worker with the jobs it runs (started) and holds unstarted (claimed).
SELECT w.id, w.hostname, w.pid, w.queues, w.concurrency, w.started_at, w.heartbeat_at,
       j.running, j.claimed
  FROM {schema}.tock_workers AS w
  CROSS JOIN LATERAL (
      SELECT count(*) FILTER (WHERE started_at IS NOT NULL) AS running,
             count(*) FILTER (WHERE started_at IS NULL) AS claimed
        FROM {schema}.tock_jobs WHERE status = 'running' AND worker_id = w.id) AS j
 ORDER BY w.started_at, w.id;

-- name: worker_rescue_check
-- The pass's now, and the age of the calling worker's own heartbeat (NULL: none).
SELECT {now}, {now} - (SELECT heartbeat_at FROM {schema}.tock_workers
                        WHERE id = %(exclude)s);

-- name: worker_dead
-- Dead: a heartbeat older than rescue_after (when heartbeats are trusted in this pass),
-- or older than token_after with a free liveness token. The try-lock is transaction-
-- scoped: a free token stays ours until the rescue commits (so the worker cannot take it
-- back halfway), then is released. CASE fixes the order: the lock is tried only for a
-- heartbeat past token_after. FOR UPDATE: a heartbeat landing meanwhile is seen (the row
-- is checked again once locked), and claims of this worker wait for the burial;
-- SKIP LOCKED: another rescuer, or a claim, is on it now (next pass).
-- A worker in released (seen with a free token over the rescuer's grace) is dead if its
-- token is still free, whatever its heartbeat's age, on a server up for settle at least
-- (a restart frees every token: live workers take theirs again within that time).
SELECT id FROM {schema}.tock_workers
 WHERE id IS DISTINCT FROM %(exclude)s
   AND CASE WHEN %(heartbeat_deaths)s
                 AND heartbeat_at < {now} - %(rescue_after_us)s * interval '1 microsecond'
            THEN true
            WHEN heartbeat_at < {now} - %(token_after_us)s * interval '1 microsecond'
                 OR (id = ANY(%(released)s::text[])
                     AND clock_timestamp() - pg_postmaster_start_time()
                         >= %(settle_us)s * interval '1 microsecond')
            THEN pg_try_advisory_xact_lock(hashtextextended(%(lock_prefix)s || id, 0))
            ELSE false END
 ORDER BY id
   FOR UPDATE SKIP LOCKED;

-- name: worker_tokens_free
-- Workers whose liveness token no session holds at this instant, on a server up for
-- settle at least (a restart frees every token for a moment). The shared try-lock is the
-- statement's own and ends with it; it fails at once while the worker's session holds
-- the token.
SELECT id FROM {schema}.tock_workers
 WHERE id IS DISTINCT FROM %(exclude)s
   AND clock_timestamp() - pg_postmaster_start_time() >= %(settle_us)s * interval '1 microsecond'
   AND pg_try_advisory_xact_lock_shared(hashtextextended(%(lock_prefix)s || id, 0))
 ORDER BY id;

-- name: worker_orphans
-- Running jobs whose worker row is gone count as a dead worker's.
SELECT DISTINCT worker_id FROM {schema}.tock_jobs AS j
 WHERE status = 'running' AND worker_id IS NOT NULL
   AND worker_id IS DISTINCT FROM %(exclude)s
   AND NOT EXISTS (SELECT 1 FROM {schema}.tock_workers AS w WHERE w.id = j.worker_id)
 ORDER BY worker_id;

-- name: worker_jobs_give_up
-- Dead workers' at-most-once jobs end lost; others past max_rescues end failed. A job
-- whose start is not recorded counts the attempt all the same: it may have started (a
-- start is recorded with the next batch), so it is lost "started or not" (docs/design.md), and
-- attempts - rescues stays the count of the task's own errors.
WITH gone AS (
    DELETE FROM {schema}.tock_jobs
     WHERE status = 'running' AND worker_id = ANY(%(worker_ids)s::text[])
       AND (at_most_once OR rescues >= max_rescues) AND stop_requested_at IS NULL
    RETURNING *
)
INSERT INTO {schema}.tock_jobs_finished ({cols})
SELECT id, task, queue, priority, CASE WHEN at_most_once THEN 'lost' ELSE 'failed' END,
       args, kwargs, run_at, created_at, started_at, {now},
       attempts + (started_at IS NULL)::int, rescues, retries, retry_backoff, retry_on,
       timeout, at_most_once, max_rescues, unique_key, worker_id, claim_token, NULL,
       %(error)s
  FROM gone
RETURNING id, status;

-- name: worker_jobs_rescue
-- Back to pending; the attempt counts even when its start was not recorded (as above).
-- Neither this nor worker_jobs_give_up takes a job whose stop was asked for: one asked
-- for after worker_jobs_cancel_stopped (read committed: another transaction's commit
-- shows between two statements) stays running with no worker row, and the next pass
-- cancels it as an orphan's (docs/design.md: Commands).
UPDATE {schema}.tock_jobs
   SET status = 'pending', rescues = rescues + 1,
       attempts = attempts + (started_at IS NULL)::int, worker_id = NULL, claim_token = NULL
 WHERE status = 'running' AND worker_id = ANY(%(worker_ids)s::text[])
   AND stop_requested_at IS NULL
RETURNING id, queue;

-- name: worker_delete
DELETE FROM {schema}.tock_workers WHERE id = ANY(%(worker_ids)s::text[]);

-- name: worker_jobs_cancel_stopped
-- Dead workers' jobs whose stop was asked for end canceled, not rescued (docs/design.md:
-- Commands); the attempt counts as in worker_jobs_give_up.
WITH gone AS (
    DELETE FROM {schema}.tock_jobs
     WHERE status = 'running' AND worker_id = ANY(%(worker_ids)s::text[])
       AND stop_requested_at IS NOT NULL
    RETURNING *
)
INSERT INTO {schema}.tock_jobs_finished ({cols})
SELECT id, task, queue, priority, 'canceled', args, kwargs, run_at, created_at, started_at,
       {now}, attempts + (started_at IS NULL)::int, rescues, retries, retry_backoff,
       retry_on, timeout, at_most_once, max_rescues, unique_key, worker_id, claim_token,
       NULL, error
  FROM gone
RETURNING id;

-- name: schedule_last_status
-- The status of a schedule row's last job, from either job table, or NULL once pruned:
-- a scalar subquery per row, one index probe per table. last_job_id is unqualified: it
-- resolves to the schedule row, whether the query reads, updates or upserts it (the job
-- tables have no such column). Part of {scols}.
coalesce((SELECT j.status FROM {schema}.tock_jobs AS j WHERE j.id = last_job_id),
         (SELECT f.status FROM {schema}.tock_jobs_finished AS f WHERE f.id = last_job_id))

-- name: schedule_upsert_many
-- Insert or update by name, the whole batch as one JSON array of objects (names unique
-- in the batch): the json module encodes it in C, where psycopg's Python array dumpers
-- took most of the time. An update never changes paused (set by people, never by sync)
-- and keeps next_fire_at unless the trigger changed; last_* and created_at stay.
INSERT INTO {schema}.tock_schedules AS s
       (name, task, trigger, args, kwargs, queue, priority, misfire, grace, overlap,
        enabled, paused, source, next_fire_at, created_at, updated_at, depends_on,
        future_depends, depends_on_outcome)
SELECT u.name, u.task, u.trigger, u.args, u.kwargs, u.queue, u.priority, u.misfire,
       u.grace, u.overlap, u.enabled, u.paused, u.source, u.next_fire_at, {now}, {now},
       u.depends_on, u.future_depends, u.depends_on_outcome
  FROM json_to_recordset(%(rows)s::json)
       AS u(name text, task text, trigger text, args text, kwargs text, queue text,
            priority int, misfire text, grace float8, overlap bool, enabled bool,
            paused bool, source text, next_fire_at timestamptz, depends_on text,
            future_depends bool, depends_on_outcome text)
ON CONFLICT (name) DO UPDATE
   SET task = excluded.task, trigger = excluded.trigger, args = excluded.args,
       kwargs = excluded.kwargs, queue = excluded.queue, priority = excluded.priority,
       misfire = excluded.misfire, grace = excluded.grace, overlap = excluded.overlap,
       enabled = excluded.enabled, source = excluded.source,
       depends_on = excluded.depends_on, future_depends = excluded.future_depends,
       depends_on_outcome = excluded.depends_on_outcome,
       next_fire_at = CASE WHEN s.trigger = excluded.trigger
                           THEN s.next_fire_at ELSE excluded.next_fire_at END,
       updated_at = excluded.updated_at;

-- name: schedule_get
-- {scols}: every column of a schedule row, in the order ScheduleRecord is read, then
-- the status of its last job (from either job table; NULL once pruned).
SELECT {scols} FROM {schema}.tock_schedules WHERE name = %(name)s;

-- name: schedule_list
SELECT {scols} FROM {schema}.tock_schedules ORDER BY name LIMIT %(limit)s::bigint;

-- name: schedule_delete
DELETE FROM {schema}.tock_schedules WHERE name = %(name)s;

-- name: schedule_set_paused
UPDATE {schema}.tock_schedules SET paused = %(paused)s, updated_at = {now}
 WHERE name = %(name)s
RETURNING {scols};

-- name: schedule_set_enabled
UPDATE {schema}.tock_schedules SET enabled = %(enabled)s, updated_at = {now}
 WHERE name = %(name)s
RETURNING {scols};

-- name: schedule_disable_code
-- `tock schedules prune`: the code schedules no process declares any more.
UPDATE {schema}.tock_schedules SET enabled = false, updated_at = {now}
 WHERE source = 'code' AND enabled AND name <> ALL(%(keep)s::text[])
RETURNING name;

-- name: schedule_due
-- Reads the partial index tock_schedules_due (its WHERE terms, as written there).
-- %(tasks)s NULL: every task's; else the task names to read.
SELECT {scols} FROM {schema}.tock_schedules
 WHERE enabled AND NOT paused AND next_fire_at <= {now}
   AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
 ORDER BY next_fire_at
 LIMIT %(limit)s;

-- name: schedule_next_due
-- The first entry of the partial index tock_schedules_due (of %(tasks)s, as above), after
-- %(after)s when given: an ordered scan that stops at the first match, where min() may
-- read them all.
SELECT next_fire_at FROM {schema}.tock_schedules
 WHERE enabled AND NOT paused AND next_fire_at IS NOT NULL
   AND (%(after)s::timestamptz IS NULL OR next_fire_at > %(after)s::timestamptz)
   AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[]))
 ORDER BY next_fire_at
 LIMIT 1;

-- name: schedule_advance
-- The compare-and-set of a fire: NULL-safe. A concurrent fire waits on the row lock,
-- then (READ COMMITTED re-checks the row) finds it moved and changes nothing. With
-- expected_updated (a scheduler's pass), also nothing when the row changed since it was
-- read (paused, disabled, updated) or is not active.
UPDATE {schema}.tock_schedules
   SET next_fire_at = %(new_next)s::timestamptz, updated_at = {now}
 WHERE name = %(name)s AND next_fire_at IS NOT DISTINCT FROM %(expected_next)s::timestamptz
   AND (%(expected_updated)s::timestamptz IS NULL
        OR (updated_at = %(expected_updated)s::timestamptz AND enabled AND NOT paused));

-- name: schedule_ahead
-- Of %(names)s, the schedules with a fire made ahead (docs/design.md: "Fires made
-- ahead": its latest job's fire time is still to come) or whose next fire is near enough
-- (%(lead)s, the longest lead) for a scheduler to make one meanwhile.
SELECT {scols} FROM {schema}.tock_schedules
 WHERE name = ANY(%(names)s::text[])
   AND (last_fire_at > {now} OR next_fire_at <= {now} + %(lead)s::interval);

-- name: fire_withdraw_jobs
-- The jobs of a schedule's fires made ahead (fire time after now) that no worker took
-- yet: deleted, as if never made. A job a claim holds locked is waited for, then found
-- running, and stays.
DELETE FROM {schema}.tock_jobs AS j
 USING {schema}.tock_fires AS f
 WHERE f.schedule = %(name)s AND NOT f.manual AND f.fire_at > {now}
   AND f.job_id = j.id AND j.status = 'pending'
RETURNING j.id;

-- name: fire_withdraw
-- Then the fire rows of the fires made ahead whose job is gone (withdrawn): their times
-- are free again.
DELETE FROM {schema}.tock_fires AS f
 WHERE f.schedule = %(name)s AND NOT f.manual AND f.fire_at > {now} AND f.job_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM {schema}.tock_jobs AS j WHERE j.id = f.job_id)
   AND NOT EXISTS (SELECT 1 FROM {schema}.tock_jobs_finished AS d WHERE d.id = f.job_id)
RETURNING f.fire_at;

-- name: schedule_rewind
-- After a withdrawal: the next fire is the first withdrawn one again (unless NULL: a new
-- trigger's stays), and the last fire the latest one left with a job.
UPDATE {schema}.tock_schedules AS s
   SET next_fire_at = coalesce(%(next_fire_at)s::timestamptz, s.next_fire_at),
       (last_fire_at, last_job_id) = (SELECT f.fire_at, f.job_id FROM {schema}.tock_fires AS f
                                       WHERE f.schedule = s.name AND f.job_id IS NOT NULL
                                       ORDER BY f.fire_at DESC, f.manual DESC LIMIT 1)
 WHERE s.name = %(name)s;

-- name: schedule_lock
-- A manual trigger locks its schedule first, as a fire does (schedule_advance): the two
-- take their locks in the same order, so a job's unique key held by one cannot deadlock
-- them.
SELECT 1 FROM {schema}.tock_schedules WHERE name = %(name)s FOR NO KEY UPDATE;

-- name: schedule_set_last
UPDATE {schema}.tock_schedules
   SET last_fire_at = %(last_fire_at)s, last_job_id = %(last_job_id)s
 WHERE name = %(name)s;

-- name: fire_extend
-- A drop joins the schedule's latest scheduled row when that row is a run of drops of
-- the same outcome that ends before it (docs/design.md: consecutive drops are one row). Fires of
-- one schedule are written under its row lock (schedule_advance): no two at once.
UPDATE {schema}.tock_fires
   SET last_at = %(last_at)s::timestamptz, count = count + %(count)s::int
 WHERE schedule = %(schedule)s AND NOT manual
   AND fire_at = (SELECT max(fire_at) FROM {schema}.tock_fires
                   WHERE schedule = %(schedule)s AND NOT manual)
   AND job_id IS NULL AND outcome = %(outcome)s AND last_at < %(fire_at)s::timestamptz
RETURNING 1;

-- name: fire_insert
-- A scheduled fire (or a run of drops). A fire time already recorded, as a row's key or
-- inside a run of drops (the latest row at or before it), inserts nothing and returns no
-- row: it creates nothing.
INSERT INTO {schema}.tock_fires (schedule, manual, fire_at, job_id, outcome, last_at,
                                 count, created_at)
SELECT %(schedule)s, false, %(fire_at)s::timestamptz, NULL::bigint, %(outcome)s,
       %(last_at)s::timestamptz, %(count)s::int, {now}
 WHERE NOT EXISTS (SELECT 1 FROM (SELECT last_at FROM {schema}.tock_fires
                                   WHERE schedule = %(schedule)s AND NOT manual
                                     AND fire_at <= %(fire_at)s::timestamptz
                                   ORDER BY fire_at DESC LIMIT 1) AS p
                    WHERE p.last_at >= %(fire_at)s::timestamptz)
ON CONFLICT (schedule, manual, fire_at) DO NOTHING
RETURNING 1;

-- name: fire_insert_manual
-- A manual trigger: its own key. Taken already (same microsecond): no row, the store
-- tries the next microsecond.
INSERT INTO {schema}.tock_fires (schedule, manual, fire_at, job_id, outcome, last_at,
                                 count, created_at)
VALUES (%(schedule)s, true, %(fire_at)s::timestamptz, NULL, 'triggered',
        %(fire_at)s::timestamptz, 1, {now})
ON CONFLICT (schedule, manual, fire_at) DO NOTHING
RETURNING 1;

-- name: fire_set_job
UPDATE {schema}.tock_fires SET job_id = %(job_id)s
 WHERE schedule = %(schedule)s AND manual = %(manual)s
   AND fire_at = %(fire_at)s::timestamptz;

-- name: schedule_graph
-- The schedules that depend on others, with their dependencies (a JSON list): the
-- cycle check at definition (docs/design.md: "Schedules that wait on schedules").
SELECT name, depends_on FROM {schema}.tock_schedules WHERE depends_on <> '[]';

-- name: schedule_lock_active
-- Lock the schedule's row if it exists and is active, as a fire does (schedule_advance):
-- a release and a fire of one schedule take their turns.
SELECT 1 FROM {schema}.tock_schedules
 WHERE name = %(name)s AND enabled AND NOT paused
   FOR NO KEY UPDATE;

-- name: schedule_deps_unmet
-- The dependencies of :name not met, in the order given: those none of whose runs (a
-- job of one of its fires, manual ones too) finished since the schedule's last run
-- started (its last job's start, or its creation while not started; the last fire
-- time once pruned), as succeeded or, with depends_on_outcome 'any', in any finished
-- state. A schedule that never ran: any finished run counts, and with future_depends
-- every dependency is met.
SELECT d.name
  FROM {schema}.tock_schedules AS s,
       jsonb_array_elements_text(s.depends_on::jsonb) WITH ORDINALITY AS d(name, n)
 WHERE s.name = %(name)s
   AND NOT (s.future_depends AND s.last_fire_at IS NULL)
   AND NOT EXISTS (
       SELECT 1 FROM {schema}.tock_fires AS f
         JOIN {schema}.tock_jobs_finished AS j ON j.id = f.job_id
        WHERE f.schedule = d.name AND f.job_id IS NOT NULL
          AND (j.status = 'succeeded' OR s.depends_on_outcome = 'any')
          AND (s.last_fire_at IS NULL
               OR j.finished_at > coalesce(
                      (SELECT coalesce(l.started_at, l.created_at)
                         FROM {schema}.tock_jobs AS l WHERE l.id = s.last_job_id),
                      (SELECT coalesce(p.started_at, p.created_at)
                         FROM {schema}.tock_jobs_finished AS p WHERE p.id = s.last_job_id),
                      s.last_fire_at)))
 ORDER BY d.n;

-- name: fire_waiting
-- The waiting fires of active schedules (of %(tasks)s when given), oldest first,
-- through the partial index tock_fires_waiting.
SELECT {fcols} FROM {schema}.tock_fires
 WHERE outcome = 'waiting'
   AND schedule IN (SELECT name FROM {schema}.tock_schedules
                     WHERE enabled AND NOT paused
                       AND (%(tasks)s::text[] IS NULL OR task = ANY(%(tasks)s::text[])))
 ORDER BY fire_at
 LIMIT %(limit)s;

-- name: fire_waiting_get
-- The schedule's waiting fire at %(fire_at)s, if it still waits.
SELECT fire_at, last_at FROM {schema}.tock_fires
 WHERE schedule = %(schedule)s AND NOT manual AND outcome = 'waiting'
   AND fire_at = %(fire_at)s::timestamptz;

-- name: fire_wait_merge
-- A later fire of a schedule whose fire waits joins it (misfire coalesce or all; skip
-- replaces it instead): at most one waiting fire a schedule. Under the schedule's row
-- lock (schedule_advance).
UPDATE {schema}.tock_fires
   SET last_at = greatest(last_at, %(fire_at)s::timestamptz), count = count + 1
 WHERE schedule = %(schedule)s AND NOT manual AND outcome = 'waiting'
   AND (SELECT misfire FROM {schema}.tock_schedules WHERE name = %(schedule)s) <> 'skip'
RETURNING 1;

-- name: fire_wait_drop
-- The schedule's waiting fire, dropped: recorded as 'dependencies'.
UPDATE {schema}.tock_fires SET outcome = 'dependencies', waiting_for = NULL
 WHERE schedule = %(schedule)s AND NOT manual AND outcome = 'waiting';

-- name: fire_wait_set
-- What a waiting fire waits for (a JSON list of names), as the scheduler last saw it.
UPDATE {schema}.tock_fires SET waiting_for = %(waiting_for)s
 WHERE schedule = %(schedule)s AND NOT manual AND outcome = 'waiting'
   AND fire_at = %(fire_at)s::timestamptz;

-- name: fire_released
-- A waiting fire whose dependencies are met: it now has its job.
UPDATE {schema}.tock_fires SET outcome = 'enqueued', job_id = %(job_id)s, waiting_for = NULL
 WHERE schedule = %(schedule)s AND NOT manual AND outcome = 'waiting'
   AND fire_at = %(fire_at)s::timestamptz;

-- name: fire_list
-- Newest fire first; a page goes on below the cursor (before_at, before_manual).
SELECT {fcols} FROM {schema}.tock_fires
 WHERE schedule = %(name)s
   AND (%(before_at)s::timestamptz IS NULL OR (fire_at, manual) < (%(before_at)s, %(before_manual)s))
 ORDER BY fire_at DESC, manual DESC
 LIMIT %(limit)s;

-- name: fire_prune
-- One batch of old runs of drops, through the partial index tock_fires_drops; SKIP
-- LOCKED: a run a fire is extending right now is left for the next pass. A waiting
-- fire is no drop: it stays until released or dropped.
DELETE FROM {schema}.tock_fires
 WHERE (schedule, manual, fire_at) IN (
        SELECT schedule, manual, fire_at FROM {schema}.tock_fires
         WHERE job_id IS NULL AND NOT manual AND outcome <> 'waiting'
           AND last_at < {now} - %(age_us)s * interval '1 microsecond'
         LIMIT %(batch_size)s
           FOR UPDATE SKIP LOCKED);

-- name: leader_get
-- The lease (docs/design.md: Leader), and whether it has expired by the database's clock.
SELECT worker_id, term, elected_at, expires_at, coalesce(expires_at <= {now}, true)
  FROM {schema}.tock_leader WHERE name = 'leader';

-- name: leader_elect
-- A new term for worker_id, from the term the candidate read: when nobody leads, the
-- lease expired, or (takeover) the leader of that term was seen dead or resigned. Two
-- candidates from one term: the first wins, the second matches no row.
UPDATE {schema}.tock_leader
   SET worker_id = %(worker_id)s, term = term + 1, elected_at = {now},
       expires_at = {now} + %(ttl_us)s * interval '1 microsecond'
 WHERE name = 'leader' AND term = %(term)s
   AND (%(takeover)s OR worker_id IS NULL OR expires_at <= {now})
RETURNING worker_id, term, elected_at, expires_at, false;

-- name: leader_renew
-- Only the holder renews, in its own term, before the lease expires.
UPDATE {schema}.tock_leader SET expires_at = {now} + %(ttl_us)s * interval '1 microsecond'
 WHERE name = 'leader' AND worker_id = %(worker_id)s AND term = %(term)s
   AND expires_at > {now}
RETURNING worker_id, term, elected_at, expires_at, false;

-- name: leader_resign
-- The term stays: the next election takes the one after it.
UPDATE {schema}.tock_leader SET worker_id = NULL, expires_at = {now}
 WHERE name = 'leader' AND worker_id = %(worker_id)s AND term = %(term)s;

-- name: leader_lock_take
-- The leader's lock of a term: a session advisory lock on a 64-bit hash of the schema and
-- the term, held by a connection kept while leading; the server releases it when the
-- session ends, however the process dies.
SELECT pg_try_advisory_lock(hashtextextended(%(lock)s, 0));

-- name: leader_lock_wait_timeout
-- How long a follower's wait for the leader's lock may last (then LockNotAvailable).
SELECT set_config('lock_timeout', %(timeout)s, false);

-- name: leader_lock_wait
-- Granted the moment the leader's session ends or unlocks; shared, so every follower
-- learns at once.
SELECT pg_advisory_lock_shared(hashtextextended(%(lock)s, 0));

-- name: leader_lock_unwait
SELECT pg_advisory_unlock_shared(hashtextextended(%(lock)s, 0));

-- name: leader_fence
-- Fencing: the first statement of a write made as leader, in its own transaction. FOR
-- SHARE: an election (an UPDATE of this row) waits until that transaction ends, so no
-- write of an old term commits after a new term was elected.
SELECT 1 FROM {schema}.tock_leader
 WHERE name = 'leader' AND worker_id = %(worker_id)s AND term = %(term)s
   FOR SHARE;

-- name: leader_depose
-- `tock leader resign` from any process: the lease read just before is cleared (the term
-- stays); its holder finds out at its next renewal and stops, and a follower is elected
-- meanwhile.
UPDATE {schema}.tock_leader SET worker_id = NULL, expires_at = {now}
 WHERE name = 'leader' AND worker_id = %(worker_id)s AND term = %(term)s
   AND expires_at > {now};

-- name: leader_lock_check
-- A round trip on the session holding the leader's lock: an error means the server ended
-- it, and the lock with it.
SELECT 1;

-- name: leader_fence_idle
-- In a write made as leader, before leader_fence: a leader paused (or cut off) inside the
-- transaction would hold the lease row FOR SHARE, and so block every election, for as
-- long as it is away. The server ends such a session after this long idle in the
-- transaction: its write rolls back, and the election goes on.
SET LOCAL idle_in_transaction_session_timeout = '2s';

-- name: queue_set_paused
-- `tock queues pause|resume` (docs/design.md: Commands): a row per queue ever paused.
-- Pausing a paused queue keeps the time it was first paused.
INSERT INTO {schema}.tock_queues AS t (name, paused, paused_at, updated_at)
VALUES (%(name)s, %(paused)s, CASE WHEN %(paused)s THEN {now} END, {now})
ON CONFLICT (name) DO UPDATE
   SET paused = excluded.paused,
       paused_at = CASE WHEN NOT excluded.paused THEN NULL
                        WHEN t.paused THEN t.paused_at
                        ELSE excluded.paused_at END,
       updated_at = excluded.updated_at
RETURNING name, paused, paused_at;

-- name: queue_list
SELECT name, paused, paused_at FROM {schema}.tock_queues ORDER BY name;

-- name: worker_stop_request
-- `tock workers stop`: the worker finds it at its next look (worker_commands), woken by
-- a NOTIFY on the commands channel. Asking again keeps the first time.
UPDATE {schema}.tock_workers SET stop_requested_at = coalesce(stop_requested_at, {now})
 WHERE id = %(worker_id)s
RETURNING id;

-- name: worker_commands
-- What a worker is asked to do: stop (kind 0), or stop one of its running jobs (kind 1,
-- the job's id); its jobs come through the partial index of running jobs.
SELECT 0, NULL::bigint FROM {schema}.tock_workers
 WHERE id = %(worker_id)s AND stop_requested_at IS NOT NULL
UNION ALL
SELECT 1, id FROM {schema}.tock_jobs
 WHERE status = 'running' AND worker_id = %(worker_id)s AND stop_requested_at IS NOT NULL;

-- name: job_stop_request
-- `tock jobs stop` of a running job: its worker stops the attempt and the job ends
-- canceled (asking again keeps the first time).
UPDATE {schema}.tock_jobs SET stop_requested_at = coalesce(stop_requested_at, {now})
 WHERE id = %(id)s AND status = 'running'
RETURNING worker_id;

-- name: job_cancel_stopped
-- Of %(ids)s (jobs just handed back or retried), those whose stop was asked for end
-- canceled instead of waiting to run again (docs/design.md: Commands).
WITH moved AS (
    DELETE FROM {schema}.tock_jobs
     WHERE id = ANY(%(ids)s::bigint[]) AND status = 'pending' AND stop_requested_at IS NOT NULL
    RETURNING *
)
INSERT INTO {schema}.tock_jobs_finished ({cols})
SELECT id, task, queue, priority, 'canceled', args, kwargs, run_at, created_at, started_at,
       {now}, attempts, rescues, retries, retry_backoff, retry_on, timeout, at_most_once,
       max_rescues, unique_key, worker_id, claim_token, NULL, error
  FROM moved
RETURNING id;

-- Dependencies (docs/design.md: Dependencies). Sets are looked up by key with
-- = ANY (ARRAY(...)), and these statements are never prepared (the store runs them with
-- prepare=False): a plan made once, when the tables were nearly empty, read the finished
-- table through its (status, id) index, a whole scan per lookup once it had grown. Each
-- statement is planned for the tables as they are. Each statement runs in the transaction of
-- the enqueue, finish, cancel, rescue or retry it belongs to, and each is a statement of
-- its own: it sees every edge committed before it (an enqueue that added one while the
-- finish waited for its lock on the dependency). Sets come as JSON arrays (%(ids)s,
-- %(rows)s), as on SQLite. Waiting jobs are locked in id order: two transactions that
-- count dependencies of the same jobs take their locks in one order, and wait in turn.

-- name: dep_mark
-- Jobs that another job now depends on: the live ones of %(ids)s are flagged (locked in
-- id order: a finish of one of them waits for this transaction, and then sees the flag),
-- and named.
WITH l AS (
    SELECT id FROM {schema}.tock_jobs
     WHERE id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint))
     ORDER BY id
       FOR UPDATE
)
UPDATE {schema}.tock_jobs AS j SET has_dependents = true
  FROM l WHERE j.id = l.id
RETURNING j.id;

-- name: dep_finished
SELECT id, status FROM {schema}.tock_jobs_finished
 WHERE id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint));

-- name: dep_block
-- Jobs this transaction inserted or brought back pending (no status test: the claim
-- index, partial on pending, would lead the plan and compare every pending job with the
-- array).
UPDATE {schema}.tock_jobs SET status = 'blocked'
 WHERE id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint));

-- name: dep_insert_edges
-- %(rows)s, a JSON array of [job_id, depends_on, position].
INSERT INTO {schema}.tock_job_deps (job_id, depends_on, position)
SELECT (r ->> 0)::bigint, (r ->> 1)::bigint, (r ->> 2)::int
  FROM json_array_elements(%(rows)s::json) AS r;

-- name: dep_insert_waits
-- %(rows)s, a JSON array of [job_id, deps_left, on_failure, pass_results].
INSERT INTO {schema}.tock_job_waits (job_id, deps_left, on_failure, pass_results)
SELECT (r ->> 0)::bigint, (r ->> 1)::int, r ->> 2, r ->> 3
  FROM json_array_elements(%(rows)s::json) AS r;

-- name: dep_waiting
-- The jobs still waiting on any of %(ids)s (jobs that just ended), one row per edge, their
-- waits locked in job order (a wait a concurrent transaction changed is read as it left
-- it, and left out if it no longer waits). With "only", just the waiting jobs of
-- %(only)s. Each table is read by key: the edges first, then their waits by array.
-- variants: only
WITH d AS (
    SELECT job_id, depends_on, position FROM {schema}.tock_job_deps
     WHERE depends_on = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint))
       AND job_id = ANY (ARRAY(SELECT json_array_elements_text(%(only)s::json)::bigint))  -- if only
)
SELECT w.job_id, d.depends_on, w.deps_left, w.on_failure
  FROM d
  JOIN {schema}.tock_job_waits AS w ON w.job_id = d.job_id
 WHERE w.job_id = ANY (ARRAY(SELECT job_id FROM d))
   AND w.canceled_by IS NULL AND w.deps_left > 0
 ORDER BY w.job_id, d.position
   FOR UPDATE OF w;

-- name: dep_wait_set
-- %(rows)s, a JSON array of [job_id, deps_left, canceled_by].
UPDATE {schema}.tock_job_waits AS w
   SET deps_left = (r ->> 1)::int, canceled_by = (r ->> 2)::bigint
  FROM json_array_elements(%(rows)s::json) AS r
 WHERE w.job_id = (r ->> 0)::bigint
   AND w.job_id = ANY (ARRAY(SELECT (e ->> 0)::bigint FROM json_array_elements(%(rows)s::json) AS e));

-- name: dep_pass
-- What the released jobs of %(ids)s pass on: each one's arguments, how it takes its
-- dependencies' results, and each dependency in order with how it ended and its result.
WITH w AS (
    SELECT job_id, pass_results FROM {schema}.tock_job_waits
     WHERE job_id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint))
       AND pass_results IS NOT NULL
), d AS (
    SELECT job_id, depends_on, position FROM {schema}.tock_job_deps
     WHERE job_id = ANY (ARRAY(SELECT job_id FROM w))
), f AS (
    SELECT id, status, result FROM {schema}.tock_jobs_finished
     WHERE id = ANY (ARRAY(SELECT depends_on FROM d))
)
SELECT w.job_id, w.pass_results, j.args, d.depends_on, f.status, f.result
  FROM w
  JOIN {schema}.tock_jobs AS j ON j.id = w.job_id
  JOIN d ON d.job_id = w.job_id
  LEFT JOIN f ON f.id = d.depends_on
 WHERE j.id = ANY (ARRAY(SELECT job_id FROM w))
 ORDER BY w.job_id, d.position;

-- name: dep_release
-- %(rows)s, a JSON array of [job_id, args or null]: blocked jobs become pending, with the
-- arguments their dependencies handed them.
UPDATE {schema}.tock_jobs AS j
   SET status = 'pending', args = coalesce(r ->> 1, j.args)
  FROM json_array_elements(%(rows)s::json) AS r
 WHERE j.id = (r ->> 0)::bigint AND j.status || '' = 'blocked'
   AND j.id = ANY (ARRAY(SELECT (e ->> 0)::bigint FROM json_array_elements(%(rows)s::json) AS e))
RETURNING j.id, j.queue;

-- name: dep_cancel
-- %(rows)s, a JSON array of [job_id, error]: blocked jobs end canceled with that error
-- (the dependency that canceled them).
WITH r AS (
    SELECT (r ->> 0)::bigint AS id, r ->> 1 AS error FROM json_array_elements(%(rows)s::json) AS r
), moved AS (
    DELETE FROM {schema}.tock_jobs AS j USING r
     WHERE j.id = ANY (ARRAY(SELECT id FROM r)) AND j.id = r.id AND j.status || '' = 'blocked'
    RETURNING j.*, r.error AS dep_error
)
INSERT INTO {schema}.tock_jobs_finished ({cols})
SELECT id, task, queue, priority, 'canceled', args, kwargs, run_at, created_at, started_at,
       {now}, attempts, rescues, retries, retry_backoff, retry_on, timeout, at_most_once,
       max_rescues, unique_key, worker_id, claim_token, NULL, dep_error
  FROM moved
RETURNING id;

-- name: dep_drop
-- Jobs that run only on a failure, none came: gone without a trace, edges and all.
DELETE FROM {schema}.tock_jobs
 WHERE id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint))
   AND status || '' = 'blocked'
RETURNING id;

-- name: dep_forget_edges
-- The dependency rows of jobs deleted (dropped, pruned or deleted by hand): their edges
-- (dep_forget_waits: their waits).
DELETE FROM {schema}.tock_job_deps
 WHERE job_id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint));

-- name: dep_forget_waits
DELETE FROM {schema}.tock_job_waits
 WHERE job_id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint));

-- name: dep_canceled_by
-- The jobs that %(ids)s canceled (as dependencies), finished canceled.
WITH w AS (
    SELECT job_id FROM {schema}.tock_job_waits
     WHERE canceled_by = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint))
)
SELECT f.id FROM {schema}.tock_jobs_finished AS f
 WHERE f.id = ANY (ARRAY(SELECT job_id FROM w)) AND f.status || '' = 'canceled';

-- name: dep_restore
-- `tock jobs retry` of a dependency brings the jobs it canceled back, blocked again; the
-- store then counts their dependencies again.
WITH moved AS (
    DELETE FROM {schema}.tock_jobs_finished
     WHERE id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint))
       AND status = 'canceled'
    RETURNING *
)
INSERT INTO {schema}.tock_jobs ({cols}) OVERRIDING SYSTEM VALUE
SELECT id, task, queue, priority, 'blocked', args, kwargs, run_at, created_at, NULL, NULL,
       0, 0, retries, retry_backoff, retry_on, timeout, at_most_once, max_rescues,
       unique_key, NULL, NULL, NULL, NULL
  FROM moved
RETURNING id;

-- name: dep_recount
-- Jobs back to waiting: every dependency unmet again until settled; no longer canceled.
UPDATE {schema}.tock_job_waits AS w
   SET deps_left = (SELECT count(*) FROM {schema}.tock_job_deps AS d WHERE d.job_id = w.job_id),
       canceled_by = NULL
 WHERE w.job_id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint));

-- name: dep_remark
-- Jobs back in the live table that others depend on are flagged again.
UPDATE {schema}.tock_jobs AS j SET has_dependents = true
 WHERE j.id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint))
   AND EXISTS (SELECT 1 FROM {schema}.tock_job_deps AS d WHERE d.depends_on = j.id);

-- name: dep_unreleased
-- Of %(ids)s, the jobs whose dependencies were never all met (canceled while they waited).
SELECT job_id FROM {schema}.tock_job_waits
 WHERE job_id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint)) AND deps_left > 0;

-- name: dep_deps_of
SELECT DISTINCT depends_on FROM {schema}.tock_job_deps
 WHERE job_id = ANY (ARRAY(SELECT json_array_elements_text(%(ids)s::json)::bigint));

-- name: dep_of_job
-- `tock jobs show`: what %(id)s waits on (with each one's state, live or finished) ...
SELECT d.depends_on, d.position, coalesce(l.status, f.status)
  FROM {schema}.tock_job_deps AS d
  LEFT JOIN {schema}.tock_jobs AS l ON l.id = d.depends_on
  LEFT JOIN {schema}.tock_jobs_finished AS f ON f.id = d.depends_on
 WHERE d.job_id = %(id)s
 ORDER BY d.position;

-- name: dep_on_job
-- ... and what waits on it.
SELECT d.job_id, coalesce(l.status, f.status)
  FROM {schema}.tock_job_deps AS d
  LEFT JOIN {schema}.tock_jobs AS l ON l.id = d.job_id
  LEFT JOIN {schema}.tock_jobs_finished AS f ON f.id = d.job_id
 WHERE d.depends_on = %(id)s
 ORDER BY d.job_id;

-- name: dep_wait_of_job
SELECT deps_left, on_failure, pass_results, canceled_by FROM {schema}.tock_job_waits
 WHERE job_id = %(id)s;

-- name: workflow_insert
INSERT INTO {schema}.tock_workflows (spec, job_ids, created_at)
VALUES (%(spec)s, %(job_ids)s, {now})
RETURNING id, created_at;

-- name: workflow_get
SELECT id, spec, job_ids, created_at FROM {schema}.tock_workflows WHERE id = %(id)s;

-- name: workflow_prune
-- Workflows none of whose jobs is stored any more (all pruned or deleted), oldest first,
-- one batch (docs/design.md: Dependencies). SKIP LOCKED: two pruners share the work.
DELETE FROM {schema}.tock_workflows
 WHERE id IN (SELECT w.id FROM {schema}.tock_workflows AS w
               WHERE NOT EXISTS (
                     SELECT 1 FROM json_array_elements_text(w.job_ids::json) AS j(id)
                      WHERE EXISTS (SELECT 1 FROM {schema}.tock_jobs AS l
                                     WHERE l.id = j.id::bigint)
                         OR EXISTS (SELECT 1 FROM {schema}.tock_jobs_finished AS f
                                     WHERE f.id = j.id::bigint))
               ORDER BY w.id
               LIMIT %(batch_size)s
                 FOR UPDATE SKIP LOCKED);
