-- Evaluation results on the event: when, with which rule set, how it ended.
ALTER TABLE events ADD COLUMN evaluated_at INTEGER;
ALTER TABLE events ADD COLUMN outcome TEXT;          -- routed | no_rule | rule_error
ALTER TABLE events ADD COLUMN ruleset_version TEXT;
ALTER TABLE events ADD COLUMN rule_runs TEXT;        -- JSON [{rule, error?, skip?}]

-- The outbox: planned actions, written in the same transaction that marks
-- their event evaluated. The id is deterministic (event, rule, ordinal) and
-- is the action's idempotency key downstream.
CREATE TABLE IF NOT EXISTS actions (
    id         TEXT    PRIMARY KEY,
    event_id   INTEGER NOT NULL,
    rule       TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    action     TEXT    NOT NULL,                  -- slack | ticket | email | http
    payload    TEXT    NOT NULL,                  -- JSON
    state      TEXT    NOT NULL DEFAULT 'pending',
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_state ON actions(state, created_at);

-- Durable rule state for once() / count().
CREATE TABLE IF NOT EXISTS rule_state (
    key   TEXT    PRIMARY KEY,
    until INTEGER NOT NULL,
    count INTEGER NOT NULL
) WITHOUT ROWID;

-- Small named integers, e.g. the evaluation cursor.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
