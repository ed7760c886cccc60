-- Delivery state of each action: pending → delivering (leased) →
-- delivered | dead; or held while its target is not configured.
ALTER TABLE actions ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE actions ADD COLUMN due_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE actions ADD COLUMN lease_until INTEGER;
ALTER TABLE actions ADD COLUMN last_error TEXT;
ALTER TABLE actions ADD COLUMN finished_at INTEGER;
CREATE INDEX IF NOT EXISTS actions_due ON actions(state, due_at);

-- Every attempt, for the operator: when, how long, what came back.
CREATE TABLE IF NOT EXISTS action_attempts (
    action_id   TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    result      TEXT    NOT NULL,     -- delivered | retry | dead | held
    status      INTEGER,              -- HTTP status, when there was one
    error       TEXT,
    excerpt     TEXT,                 -- the start of the answer body
    PRIMARY KEY (action_id, attempt)
) WITHOUT ROWID;
