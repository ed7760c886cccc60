-- The journal: every authentic event, with its exact bytes.
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    received_at INTEGER NOT NULL,            -- ms since the Unix epoch
    type        TEXT,                        -- NULL when rejected before a type was known
    body        TEXT    NOT NULL,            -- the event's exact bytes as sent
    digest      BLOB    NOT NULL,            -- dedup digest (exact bytes, fields or delivery id)
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'rejected')),
    reason      TEXT,                        -- why it was rejected
    key_label   TEXT                         -- which signing key matched
);
CREATE INDEX IF NOT EXISTS events_by_state ON events(state, id);
CREATE INDEX IF NOT EXISTS events_by_type ON events(type);

-- De-duplication: one row per (source, digest) until it expires.
CREATE TABLE IF NOT EXISTS dedup (
    source     TEXT    NOT NULL,
    digest     BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (source, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_by_expiry ON dedup(expires_at);

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
