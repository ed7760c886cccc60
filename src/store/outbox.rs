//! The evaluation side of the store: reading durable, unevaluated events in
//! id order, and writing each batch's planned actions, the events'
//! evaluation results, the rule state and the cursor in one transaction, so
//! a crash leaves an event unevaluated, never half-planned.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest as _, Sha256};

use crate::rules::{Evaluation, StateEntry, StateMap};

/// An event waiting for the rules.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub id: i64,
    pub event_type: String,
    pub body: String,
    pub received_at: i64,
}

const CURSOR: &str = "eval_cursor";

/// The id below which every event has been evaluated.
pub fn cursor(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [CURSOR], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

/// Up to `limit` routable events with `after < id <= upto`, in id order.
/// Rejected events are never routed; they stay for inspection.
pub fn fetch(
    conn: &Connection,
    after: i64,
    upto: i64,
    limit: usize,
) -> rusqlite::Result<Vec<PendingEvent>> {
    let mut st = conn.prepare_cached(
        "SELECT id, type, body, received_at FROM events
         WHERE id > ?1 AND id <= ?2 AND state = 'pending' ORDER BY id LIMIT ?3",
    )?;
    let rows = st.query_map(params![after, upto, limit as i64], |r| {
        Ok(PendingEvent {
            id: r.get(0)?,
            event_type: r.get(1)?,
            body: r.get(2)?,
            received_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// One stored event by id (for `switchyard route --stored`).
pub fn event_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<PendingEvent>> {
    conn.query_row(
        "SELECT id, coalesce(type, ''), body, received_at FROM events WHERE id = ?1",
        [id],
        |r| {
            Ok(PendingEvent {
                id: r.get(0)?,
                event_type: r.get(1)?,
                body: r.get(2)?,
                received_at: r.get(3)?,
            })
        },
    )
    .optional()
}

/// The action's id: stable for (event, rule, ordinal), so re-evaluating an
/// event after a crash plans the same ids and a retry cannot duplicate work.
pub fn action_id(event_id: i64, rule: &str, ordinal: usize) -> String {
    let mut h = Sha256::new();
    h.update(event_id.to_be_bytes());
    h.update(rule.as_bytes());
    h.update((ordinal as u64).to_be_bytes());
    format!("act_{}", &hex::encode(h.finalize())[..24])
}

/// Evaluations to write together, and where the cursor moves.
#[derive(Debug)]
pub struct EvaluatedBatch {
    pub evaluated: Vec<(PendingEvent, Evaluation)>,
    pub cursor_to: i64,
    pub now: i64,
}

/// Writes a batch of evaluations and moves the cursor, inside the caller's
/// transaction (the journal writer's group commit).
pub fn write(tx: &rusqlite::Transaction<'_>, batch: &EvaluatedBatch) -> rusqlite::Result<usize> {
    let (evaluated, cursor_to, now) = (&batch.evaluated, batch.cursor_to, batch.now);
    let mut planned = 0;
    {
        let mut action = tx.prepare_cached(
            "INSERT INTO actions (id, event_id, rule, target, action, payload, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
        )?;
        let mut event = tx.prepare_cached(
            "INSERT INTO evaluations (event_id, evaluated_at, outcome, ruleset_version, rule_runs)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (event_id) DO UPDATE SET evaluated_at = excluded.evaluated_at,
                 outcome = excluded.outcome, ruleset_version = excluded.ruleset_version,
                 rule_runs = excluded.rule_runs",
        )?;
        let mut state = tx.prepare_cached(
            "INSERT INTO rule_state (key, until, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET until = excluded.until, count = excluded.count",
        )?;
        for (ev, eval) in evaluated {
            let mut per_rule: std::collections::HashMap<&str, usize> =
                std::collections::HashMap::new();
            for a in &eval.actions {
                let n = per_rule.entry(a.rule.as_str()).or_default();
                action.execute(params![
                    action_id(ev.id, &a.rule, *n),
                    ev.id,
                    a.rule,
                    a.target,
                    a.action.as_str(),
                    a.payload.to_string(),
                    now
                ])?;
                *n += 1;
                planned += 1;
            }
            let runs = serde_json::to_string(&eval.rules).unwrap_or_else(|_| "[]".into());
            event.execute(params![
                ev.id,
                now,
                eval.outcome.as_str(),
                &*eval.version,
                runs
            ])?;
            for (key, e) in &eval.state_writes {
                state.execute(params![key, e.until, e.count])?;
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![CURSOR, cursor_to],
        )?;
    }
    Ok(planned)
}

/// Rule state that has not expired at `now`.
pub fn load_state(conn: &Connection, now: i64) -> rusqlite::Result<StateMap> {
    let mut st = conn.prepare("SELECT key, until, count FROM rule_state WHERE until > ?1")?;
    let rows = st.query_map([now], |r| {
        Ok((
            r.get::<_, String>(0)?,
            StateEntry {
                until: r.get(1)?,
                count: r.get(2)?,
            },
        ))
    })?;
    Ok(StateMap(rows.collect::<rusqlite::Result<_>>()?))
}
