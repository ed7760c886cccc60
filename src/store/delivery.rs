//! The delivery side of the outbox: claiming due actions with a lease and
//! an attempt number, and recording each attempt's result. A completion is
//! fenced by the attempt number: a worker whose lease expired and whose
//! action was claimed again cannot overwrite the newer attempt's result.
//! Both run inside the journal writer's transaction.

use rusqlite::{Transaction, params};

/// An action handed to a delivery worker.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub attempt: i64,
    pub target: String,
    pub action: String,
    pub payload: serde_json::Value,
    pub created_at: i64,
    /// The thread this message replies in (Slack `ts`), when its
    /// `thread_key` already has a first message.
    pub thread_ts: Option<String>,
}

/// Claims up to `limit` due actions (pending and due, or leased and expired).
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub limit: usize,
    pub now: i64,
    pub lease_ms: i64,
}

/// How an attempt ended, as the dispatcher decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle {
    Delivered,
    /// Try again at `due_at`.
    Retry {
        due_at: i64,
    },
    /// No more attempts: a dead letter.
    Dead,
    /// The target is not configured; waits without counting as a failure.
    Held,
    /// Not attempted (the target's circuit is open): back to pending at
    /// `due_at`, the claim not counted as an attempt.
    Deferred {
        due_at: i64,
    },
}

/// One attempt's record.
#[derive(Debug, Clone)]
pub struct Completion {
    pub id: String,
    pub attempt: i64,
    pub settle: Settle,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub excerpt: Option<String>,
    /// A thread to remember: (thread_key, ts) of a first Slack message.
    pub thread: Option<(String, String)>,
}

impl Completion {
    /// An action handed back untried: pending again at `due_at`, the claim
    /// not counted (an open breaker, or a send cut off at shutdown).
    pub fn deferred(id: String, attempt: i64, due_at: i64) -> Self {
        Completion {
            id,
            attempt,
            settle: Settle::Deferred { due_at },
            started_at: due_at,
            duration_ms: 0,
            status: None,
            error: None,
            excerpt: None,
            thread: None,
        }
    }
}

pub fn claim(tx: &Transaction<'_>, req: &ClaimRequest) -> rusqlite::Result<Vec<Claimed>> {
    let mut pick = tx.prepare_cached(
        "SELECT a.id, a.attempts, a.target, a.action, a.payload, a.created_at, t.ts FROM actions a
         LEFT JOIN threads t ON t.target = a.target AND t.thread_key = json_extract(a.payload, '$.thread_key')
         WHERE (a.state = 'pending' AND a.due_at <= ?1) OR (a.state = 'delivering' AND a.lease_until < ?1)
         ORDER BY a.due_at, a.created_at LIMIT ?2",
    )?;
    type Row = (String, i64, String, String, String, i64, Option<String>);
    let rows: Vec<Row> = pick
        .query_map(params![req.now, req.limit as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut lease = tx.prepare_cached(
        "UPDATE actions SET state = 'delivering', attempts = attempts + 1, lease_until = ?2 WHERE id = ?1",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, attempts, target, action, payload, created_at, thread_ts) in rows {
        lease.execute(params![id, req.now + req.lease_ms])?;
        out.push(Claimed {
            id,
            attempt: attempts + 1,
            target,
            action,
            payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
            created_at,
            thread_ts,
        });
    }
    Ok(out)
}

/// Records an attempt; false when the claim was stale (fenced out).
pub fn complete(tx: &Transaction<'_>, c: &Completion, now: i64) -> rusqlite::Result<bool> {
    // What the attempt leads to. Held and Deferred do not count against the
    // action: the claim's increment is undone in the same fenced update, so
    // nothing else has to remember to give it back.
    let (state, due_at, finished, counted, result) = match c.settle {
        Settle::Delivered => ("delivered", None, Some(now), true, Some("delivered")),
        Settle::Retry { due_at } => ("pending", Some(due_at), None, true, Some("retry")),
        Settle::Dead => ("dead", None, Some(now), true, Some("dead")),
        Settle::Held => ("held", None, None, false, Some("held")),
        Settle::Deferred { due_at } => ("pending", Some(due_at), None, false, None),
    };
    let changed = tx.execute(
        "UPDATE actions SET state = ?3, due_at = coalesce(?4, due_at), last_error = ?5,
                finished_at = ?6, lease_until = NULL, attempts = attempts - ?7
         WHERE id = ?1 AND attempts = ?2 AND state = 'delivering'",
        params![
            c.id,
            c.attempt,
            state,
            due_at,
            c.error,
            finished,
            i64::from(!counted)
        ],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    if let (Settle::Delivered, Some((key, ts))) = (&c.settle, &c.thread) {
        tx.execute(
            "INSERT INTO threads (target, thread_key, ts)
             SELECT target, ?2, ?3 FROM actions WHERE id = ?1 ON CONFLICT DO NOTHING",
            params![c.id, key, ts],
        )?;
    }
    if let Some(result) = result {
        tx.execute(
            "INSERT OR REPLACE INTO action_attempts (action_id, attempt, started_at, duration_ms, result, status, error, excerpt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![c.id, c.attempt, c.started_at, c.duration_ms, result, c.status, c.error, c.excerpt],
        )?;
    }
    Ok(true)
}

/// At start: held actions go back to pending (their target may be
/// configured now), and actions leased by a previous process are reclaimed
/// at once (one SQLite file has one dispatcher; the send may have happened,
/// so this is at-least-once and the action id is the idempotency key).
pub fn release_held(tx: &Transaction<'_>) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE actions SET state = 'pending', due_at = 0, lease_until = NULL
         WHERE state IN ('held', 'delivering')",
        [],
    )
}

/// One line of `switchyard actions`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActionRow {
    pub id: String,
    pub state: String,
    pub target: String,
    pub action: String,
    pub attempts: i64,
    pub created_at: i64,
    pub last_error: Option<String>,
}

/// Which actions [`list`] shows.
#[derive(Debug, Clone)]
pub struct ActionFilter<'a> {
    pub state: Option<&'a str>,
    pub target: Option<&'a str>,
    pub event_id: Option<i64>,
    pub limit: usize,
}

/// Every state an action can be in, for checking operator input.
pub const STATES: &[&str] = &["pending", "delivering", "delivered", "dead", "held"];

/// Actions filtered by state, target and event, newest first.
pub fn list(conn: &rusqlite::Connection, f: &ActionFilter<'_>) -> rusqlite::Result<Vec<ActionRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {ACTION_COLUMNS} FROM actions
         WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR target = ?2) AND (?3 IS NULL OR event_id = ?3)
         ORDER BY created_at DESC, id LIMIT ?4"
    ))?;
    let rows = st.query_map(
        params![f.state, f.target, f.event_id, f.limit as i64],
        ActionRow::from_row,
    )?;
    rows.collect()
}

/// What an [`ActionRow`] is read from, in [`ActionRow::from_row`]'s order.
pub(super) const ACTION_COLUMNS: &str =
    "id, state, target, action, attempts, created_at, last_error";

impl ActionRow {
    /// An action from a row that starts with [`ACTION_COLUMNS`].
    pub(super) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ActionRow> {
        Ok(ActionRow {
            id: r.get(0)?,
            state: r.get(1)?,
            target: r.get(2)?,
            action: r.get(3)?,
            attempts: r.get(4)?,
            created_at: r.get(5)?,
            last_error: r.get(6)?,
        })
    }
}

/// What `switchyard replay --dead` moves back to pending.
#[derive(Debug, Default, Clone)]
pub struct ReplayFilter {
    pub target: Option<String>,
    pub id: Option<String>,
    /// Dead-lettered at or after (ms).
    pub since: Option<i64>,
    /// Dead-lettered before (ms).
    pub until: Option<i64>,
}

/// Moves matching dead letters back to pending with a fresh delivery window
/// (`created_at` = now, so `max_age` counts from the replay); returns how many.
pub fn replay_dead(
    conn: &rusqlite::Connection,
    f: &ReplayFilter,
    now: i64,
) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE actions SET state = 'pending', due_at = 0, created_at = ?5, last_error = NULL, finished_at = NULL
         WHERE state = 'dead' AND (?1 IS NULL OR target = ?1) AND (?2 IS NULL OR id = ?2)
           AND (?3 IS NULL OR finished_at >= ?3) AND (?4 IS NULL OR finished_at < ?4)",
        params![f.target, f.id, f.since, f.until, now],
    )
}
