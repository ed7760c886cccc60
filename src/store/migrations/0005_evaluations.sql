-- Evaluation results move out of the events row into a narrow table of
-- their own: marking an event evaluated appends a ~60-byte row at the right
-- edge instead of rewriting (and growing) the page that holds its body.
CREATE TABLE IF NOT EXISTS evaluations (
    event_id        INTEGER PRIMARY KEY,     -- events.id
    evaluated_at    INTEGER NOT NULL,        -- ms since the Unix epoch
    outcome         TEXT    NOT NULL,        -- routed | no_rule | rule_error
    ruleset_version TEXT    NOT NULL,
    rule_runs       TEXT    NOT NULL         -- JSON [{rule, error?, skip?}]
);
INSERT INTO evaluations (event_id, evaluated_at, outcome, ruleset_version, rule_runs)
    SELECT id, evaluated_at, outcome, coalesce(ruleset_version, ''), coalesce(rule_runs, '[]')
    FROM events WHERE evaluated_at IS NOT NULL;
ALTER TABLE events DROP COLUMN evaluated_at;
ALTER TABLE events DROP COLUMN outcome;
ALTER TABLE events DROP COLUMN ruleset_version;
ALTER TABLE events DROP COLUMN rule_runs;
