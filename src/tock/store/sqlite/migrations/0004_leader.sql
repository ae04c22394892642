-- The leader's lease (docs/design.md: Leader): one row, always there. worker_id NULL: no
-- leader (never elected, or resigned). term only grows: each election adds one, and every
-- write made as leader checks it in its own transaction (fencing). Times in microseconds
-- since the epoch, as every time here.
CREATE TABLE tock_leader (
    name       TEXT    PRIMARY KEY CHECK (name = 'leader'),
    worker_id  TEXT,
    term       INTEGER NOT NULL,
    elected_at INTEGER,
    expires_at INTEGER
);
INSERT INTO tock_leader (name, worker_id, term) VALUES ('leader', NULL, 0);
