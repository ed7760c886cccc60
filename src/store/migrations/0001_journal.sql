-- The journal: every authentic event, with its exact bytes.
CREATE TABLE IF NOT EXISTS events (
    id           INTEGER PRIMARY KEY,
    source       TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,            -- ms since the Unix epoch
    type         TEXT,                        -- NULL when rejected before a type was known
    body         TEXT    NOT NULL,            -- the event's exact bytes as sent
    digest       BLOB    NOT NULL,            -- dedup digest (exact bytes, fields or delivery id)
    dedup_until  INTEGER NOT NULL,            -- ms; a resend before this is a duplicate
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'rejected')),
    reason       TEXT,                        -- why it was rejected
    key_label    TEXT                         -- which signing key matched
);
-- No secondary index on purpose: rows are appended at the right edge of
-- the rowid tree, so a group commit dirties only the pages its events fill.
-- Readers walk by id (the evaluation loop keeps a cursor; the dedup index
-- is rebuilt by a backward scan that stops at the oldest live window).

-- Authentic bodies that could not be split into events, kept for inspection.
CREATE TABLE IF NOT EXISTS quarantine (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    code        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    digest      BLOB    NOT NULL,
    key_label   TEXT,
    UNIQUE (source, digest)
);
