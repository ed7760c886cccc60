-- The admin API shows an event with its actions; without this index that
-- is a scan of the whole outbox.
CREATE INDEX IF NOT EXISTS actions_by_event ON actions(event_id);
