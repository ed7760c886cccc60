//! Read-only views of the journal for operators (the admin API): events
//! with how their evaluation ended, one event with its body and actions,
//! one action with its attempts, and the quarantine. Every list is newest
//! first and pages by id (`before`), so a page stays stable while new
//! events arrive.
//!
//! These run on their own read connection: in WAL mode a reader never
//! blocks the writer, so an operator's query cannot slow the ingress.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::value::RawValue;

use super::delivery::{self, ACTION_COLUMNS, ActionFilter, ActionRow};

/// Every value of an event's `state`.
pub const EVENT_STATES: &[&str] = &["pending", "rejected"];
/// Every evaluation outcome, and `unevaluated` for routable events not
/// evaluated yet (a rejected event has no outcome: it is never routed).
pub const OUTCOMES: &[&str] = &["routed", "no_rule", "rule_error", "unevaluated"];

/// Which events [`events`] lists.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub source: Option<String>,
    pub state: Option<String>,
    pub outcome: Option<String>,
    /// Only events with a smaller id (the previous page's `next_before`).
    pub before: Option<i64>,
    pub limit: usize,
}

/// One event in a list: what it is and how it ended, without its body.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub source: String,
    pub received_at: i64,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub state: String,
    pub reason: Option<String>,
    pub key_label: Option<String>,
    /// `routed`, `no_rule`, `rule_error`; `None` until evaluated.
    pub outcome: Option<String>,
    pub evaluated_at: Option<i64>,
    pub ruleset_version: Option<String>,
}

/// One event with its exact bytes, each rule's run and its actions.
#[derive(Debug, Serialize)]
pub struct EventDetail {
    #[serde(flatten)]
    pub row: EventRow,
    /// The event's exact bytes as sent (rejected ones may not be valid JSON
    /// values for every consumer, so this is text, not a nested object).
    pub body: String,
    pub rule_runs: Option<Box<RawValue>>,
    pub actions: Vec<ActionRow>,
}

/// One action with what it carries and every attempt.
#[derive(Debug, Serialize)]
pub struct ActionDetail {
    #[serde(flatten)]
    pub row: ActionRow,
    pub event_id: i64,
    pub rule: String,
    pub payload: Box<RawValue>,
    pub due_at: i64,
    pub finished_at: Option<i64>,
    pub attempt_log: Vec<Attempt>,
}

/// One delivery attempt.
#[derive(Debug, Serialize)]
pub struct Attempt {
    pub attempt: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub result: String,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub excerpt: Option<String>,
}

/// One quarantined body, without the body itself.
#[derive(Debug, Serialize)]
pub struct QuarantineRow {
    pub id: i64,
    pub source: String,
    pub received_at: i64,
    pub code: String,
    pub reason: String,
    pub bytes: i64,
    pub key_label: Option<String>,
}

const EVENT_COLUMNS: &str = "e.id, e.source, e.received_at, e.type, e.state, e.reason, e.key_label,
     v.outcome, v.evaluated_at, v.ruleset_version";

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        source: r.get(1)?,
        received_at: r.get(2)?,
        event_type: r.get(3)?,
        state: r.get(4)?,
        reason: r.get(5)?,
        key_label: r.get(6)?,
        outcome: r.get(7)?,
        evaluated_at: r.get(8)?,
        ruleset_version: r.get(9)?,
    })
}

/// The most event ids one [`events`] call walks. A filter that matches
/// rarely (one type among many, `rule_error`) would otherwise read the
/// whole table, bodies and all, for one page.
pub const SCAN_WINDOW: i64 = 100_000;

/// A page of events and where the next one starts (`None`: no older events).
#[derive(Debug, Clone)]
pub struct EventPage {
    pub rows: Vec<EventRow>,
    /// Pass as `before` for the next page. When fewer than `limit` rows
    /// came back, the page covers a whole [`SCAN_WINDOW`] and older events
    /// may still match.
    pub next_before: Option<i64>,
}

/// Events matching `f`, newest first, among at most `window` ids below
/// `f.before` (walking down the id tree, so a page of a common filter is
/// cheap and a rare one is bounded).
pub fn events(conn: &Connection, f: &EventFilter, window: i64) -> rusqlite::Result<EventPage> {
    let upper = match f.before {
        Some(b) => b,
        None => {
            conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| {
                r.get::<_, i64>(0)
            })? + 1
        }
    };
    let lower = upper.saturating_sub(window.max(1));
    let mut st = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events e LEFT JOIN evaluations v ON v.event_id = e.id
         WHERE e.id < ?1 AND e.id >= ?2 AND (?3 IS NULL OR e.type = ?3)
           AND (?4 IS NULL OR e.source = ?4) AND (?5 IS NULL OR e.state = ?5)
           AND (?6 IS NULL OR ?6 = CASE WHEN v.outcome IS NOT NULL THEN v.outcome
                                        WHEN e.state = 'pending' THEN 'unevaluated' END)
         ORDER BY e.id DESC LIMIT ?7"
    ))?;
    let rows = st
        .query_map(
            params![
                upper,
                lower,
                f.event_type,
                f.source,
                f.state,
                f.outcome,
                f.limit as i64
            ],
            event_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let next_before = if rows.len() >= f.limit {
        rows.last().map(|r| r.id)
    } else {
        let older: Option<i64> = conn
            .query_row("SELECT 1 FROM events WHERE id < ?1 LIMIT 1", [lower], |r| {
                r.get(0)
            })
            .optional()?;
        older.map(|_| lower)
    };
    Ok(EventPage { rows, next_before })
}

/// Event `id` with its body, rule runs and actions.
pub fn event(conn: &Connection, id: i64) -> rusqlite::Result<Option<EventDetail>> {
    let found = conn
        .query_row(
            &format!(
                "SELECT {EVENT_COLUMNS}, e.body, v.rule_runs FROM events e
                 LEFT JOIN evaluations v ON v.event_id = e.id WHERE e.id = ?1"
            ),
            [id],
            |r| {
                Ok((
                    event_row(r)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, Option<String>>(11)?,
                ))
            },
        )
        .optional()?;
    let Some((row, body, runs)) = found else {
        return Ok(None);
    };
    let actions = delivery::list(
        conn,
        &ActionFilter {
            state: None,
            target: None,
            event_id: Some(id),
            limit: i64::MAX as usize,
        },
    )?;
    Ok(Some(EventDetail {
        row,
        body,
        rule_runs: runs.and_then(|r| RawValue::from_string(r).ok()),
        actions,
    }))
}

/// Action `id` with its payload and every attempt, oldest first.
pub fn action(conn: &Connection, id: &str) -> rusqlite::Result<Option<ActionDetail>> {
    let found = conn
        .query_row(
            &format!(
                "SELECT {ACTION_COLUMNS}, event_id, rule, payload, due_at, finished_at
                 FROM actions WHERE id = ?1"
            ),
            [id],
            |r| {
                Ok((
                    ActionRow::from_row(r)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, i64>(10)?,
                    r.get::<_, Option<i64>>(11)?,
                ))
            },
        )
        .optional()?;
    let Some((row, event_id, rule, payload, due_at, finished_at)) = found else {
        return Ok(None);
    };
    let mut st = conn.prepare_cached(
        "SELECT attempt, started_at, duration_ms, result, status, error, excerpt
         FROM action_attempts WHERE action_id = ?1 ORDER BY attempt",
    )?;
    let attempt_log = st
        .query_map([id], |r| {
            Ok(Attempt {
                attempt: r.get(0)?,
                started_at: r.get(1)?,
                duration_ms: r.get(2)?,
                result: r.get(3)?,
                status: r.get(4)?,
                error: r.get(5)?,
                excerpt: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // The outbox only ever holds payloads serialized from JSON values.
    let payload = RawValue::from_string(payload)
        .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"));
    Ok(Some(ActionDetail {
        row,
        event_id,
        rule,
        payload,
        due_at,
        finished_at,
        attempt_log,
    }))
}

/// Quarantined bodies, newest first, without their bytes.
pub fn quarantine(
    conn: &Connection,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<QuarantineRow>> {
    let mut st = conn.prepare_cached(
        "SELECT id, source, received_at, code, reason, length(body), key_label FROM quarantine
         WHERE (?1 IS NULL OR id < ?1) ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![before, limit as i64], |r| {
        Ok(QuarantineRow {
            id: r.get(0)?,
            source: r.get(1)?,
            received_at: r.get(2)?,
            code: r.get(3)?,
            reason: r.get(4)?,
            bytes: r.get(5)?,
            key_label: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Which stored events a re-evaluation reads.
#[derive(Debug, Clone, Default)]
pub struct EventRange {
    /// Received at or after (ms).
    pub since: Option<i64>,
    /// Received before (ms).
    pub until: Option<i64>,
    pub event_type: Option<String>,
    /// Only events with a larger id (the previous page's last).
    pub after: i64,
    pub limit: usize,
}

/// One action as an evaluation planned it, comparable across evaluations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Planned {
    pub rule: String,
    pub target: String,
    pub action: String,
    /// The payload as the outbox stores it (serde_json's sorted-key text).
    pub payload: String,
}

/// A stored event with how its evaluation ended and what it planned.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub event: super::outbox::PendingEvent,
    /// `None`: not evaluated yet.
    pub outcome: Option<String>,
    pub actions: Vec<Planned>,
}

/// Routable events in `r`, in id order (the order they were evaluated in),
/// each with its stored outcome and planned actions.
pub fn evaluated(conn: &Connection, r: &EventRange) -> rusqlite::Result<Vec<Evaluated>> {
    let mut st = conn.prepare_cached(
        "SELECT e.id, e.type, e.body, e.received_at, v.outcome FROM events e
         LEFT JOIN evaluations v ON v.event_id = e.id
         WHERE e.id > ?1 AND e.state = 'pending'
           AND (?2 IS NULL OR e.received_at >= ?2) AND (?3 IS NULL OR e.received_at < ?3)
           AND (?4 IS NULL OR e.type = ?4)
         ORDER BY e.id LIMIT ?5",
    )?;
    let mut actions = conn
        .prepare_cached("SELECT rule, target, action, payload FROM actions WHERE event_id = ?1")?;
    let rows = st
        .query_map(
            params![r.after, r.since, r.until, r.event_type, r.limit as i64],
            |row| {
                Ok((
                    super::outbox::PendingEvent {
                        id: row.get(0)?,
                        event_type: row.get(1)?,
                        body: row.get(2)?,
                        received_at: row.get(3)?,
                    },
                    row.get::<_, Option<String>>(4)?,
                ))
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(event, outcome)| {
            let mut planned = actions
                .query_map([event.id], |a| {
                    Ok(Planned {
                        rule: a.get(0)?,
                        target: a.get(1)?,
                        action: a.get(2)?,
                        payload: a.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            planned.sort();
            Ok(Evaluated {
                event,
                outcome,
                actions: planned,
            })
        })
        .collect()
}

/// What is waiting, for the backlog gauges on `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Actions per unfinished state (and dead letters), every state listed.
    pub actions: Vec<(&'static str, i64)>,
    /// When the oldest action still to be sent was planned (ms), if any.
    pub oldest_unsent: Option<i64>,
    /// Routable events the evaluation loop has not reached yet.
    pub unevaluated: i64,
}

/// The states [`backlog`] counts: everything but `delivered`, which only grows.
const BACKLOG_STATES: [&str; 4] = ["pending", "delivering", "held", "dead"];

/// Counts the backlog through the `(state, created_at)` index and the id
/// tree: cheap even when the outbox holds millions of delivered actions.
pub fn backlog(conn: &Connection) -> rusqlite::Result<Backlog> {
    let mut count = conn.prepare_cached("SELECT count(*) FROM actions WHERE state = ?1")?;
    let mut oldest = conn.prepare_cached("SELECT min(created_at) FROM actions WHERE state = ?1")?;
    let mut out = Backlog::default();
    for state in BACKLOG_STATES {
        out.actions
            .push((state, count.query_row([state], |r| r.get(0))?));
        if state != "dead" {
            let t: Option<i64> = oldest.query_row([state], |r| r.get(0))?;
            out.oldest_unsent = match (out.oldest_unsent, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    let cursor = super::outbox::cursor(conn)?;
    out.unevaluated = conn.query_row(
        "SELECT count(*) FROM events WHERE id > ?1 AND state = 'pending'",
        [cursor],
        |r| r.get(0),
    )?;
    Ok(out)
}

/// Unfinished and dead actions per target and state (the outbox's
/// `(state, created_at)` index finds them; delivered ones are not read).
pub fn backlog_by_target(conn: &Connection) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut st = conn.prepare_cached(
        "SELECT target, state, count(*) FROM actions
         WHERE state IN ('pending', 'delivering', 'held', 'dead') GROUP BY target, state",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real journal (the schema, by the store's own open) with events
    /// 1..=10, all of type `b` except 2 of type `a`.
    fn journal() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::sqlite::open(&dir.path().join("j.db")).unwrap();
        for id in 1..=10 {
            conn.execute(
                "INSERT INTO events (id, source, received_at, type, body, digest, dedup_until, state)
                 VALUES (?1, 's', ?1, ?2, '{}', x'00', 0, 'pending')",
                params![id, if id == 2 { "a" } else { "b" }],
            )
            .unwrap();
        }
        (dir, conn)
    }

    fn page(
        conn: &Connection,
        ty: &str,
        before: Option<i64>,
        limit: usize,
    ) -> (Vec<i64>, Option<i64>) {
        let f = EventFilter {
            event_type: Some(ty.into()),
            before,
            limit,
            ..EventFilter::default()
        };
        let p = events(conn, &f, 3).unwrap();
        (p.rows.iter().map(|r| r.id).collect(), p.next_before)
    }

    #[test]
    fn a_rare_filter_walks_one_window_per_page_and_says_where_to_go_on() {
        let (_d, conn) = journal();
        assert_eq!(page(&conn, "a", None, 5), (vec![], Some(8)));
        assert_eq!(page(&conn, "a", Some(8), 5), (vec![], Some(5)));
        assert_eq!(page(&conn, "a", Some(5), 5), (vec![2], Some(2)));
        assert_eq!(page(&conn, "a", Some(2), 5), (vec![], None));
        // A full page ends at its last row, whatever the window.
        assert_eq!(page(&conn, "b", None, 2), (vec![10, 9], Some(9)));
        assert_eq!(page(&conn, "b", Some(4), 5), (vec![3, 1], None));
    }
}
