-- The leader's lease (docs/design.md: Leader). {schema} as in 0001. One row, always
-- there. worker_id NULL: no leader (never elected, or resigned). term only grows: each
-- election adds one, and every write made as leader checks it in its own transaction
-- (fencing).
CREATE TABLE {schema}.tock_leader (
    name       text        PRIMARY KEY CHECK (name = 'leader'),
    worker_id  text,
    term       bigint      NOT NULL,
    elected_at timestamptz,
    expires_at timestamptz
);
INSERT INTO {schema}.tock_leader (name, worker_id, term) VALUES ('leader', NULL, 0);
