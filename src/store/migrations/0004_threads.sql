-- Slack threads: the first message about a thread_key records its `ts`;
-- later messages with the same key reply in that thread.
CREATE TABLE IF NOT EXISTS threads (
    target     TEXT NOT NULL,
    thread_key TEXT NOT NULL,
    ts         TEXT NOT NULL,
    PRIMARY KEY (target, thread_key)
) WITHOUT ROWID;
