-- Blocked jobs by queue (docs/design.md: counting jobs): the admin counts them without
-- reading the live table whole when a backlog fills it. Empty until jobs wait on
-- others.
CREATE INDEX tock_jobs_blocked ON {schema}.tock_jobs (queue, id) WHERE status = 'blocked';
