//! Retention: deleting what is finished and older than `retention:` says,
//! so the journal does not grow forever. Nothing unfinished goes:
//!
//! - an event goes only once it is evaluated (or was rejected, so never
//!   will be), out of its dedup window, and has no action left;
//! - an action goes only once delivered (or dead, if dead letters have a
//!   retention at all), with its attempts;
//! - quarantined bodies go by age; expired rule state (`once`, `count`)
//!   goes, as it no longer changes any answer.
//!
//! Each call deletes at most `batch` rows of each kind in the writer's own
//! group transaction (a `Job`), so a first prune of a large journal runs as
//! many short transactions between index and delivery work, never as one
//! long one that would stall them.

use rusqlite::{Transaction, params};
use serde::Serialize;

use crate::config::RetentionConfig;

/// The cut-off times of one prune (ms since the epoch; `None`: keep).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub now: i64,
    pub events_before: Option<i64>,
    pub delivered_before: Option<i64>,
    pub dead_before: Option<i64>,
    pub quarantine_before: Option<i64>,
    pub batch: usize,
}

impl Policy {
    pub fn at(r: &RetentionConfig, now: i64) -> Policy {
        let before = |keep: Option<crate::config::Span>| {
            keep.map(|k| now.saturating_sub(k.0.as_millis().min(i64::MAX as u128) as i64))
        };
        Policy {
            now,
            events_before: before(r.events),
            delivered_before: before(r.actions),
            dead_before: before(r.dead_letters),
            quarantine_before: before(r.quarantine),
            batch: r.batch,
        }
    }
}

/// What one prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub events: usize,
    pub actions: usize,
    pub quarantine: usize,
    pub rule_state: usize,
}

impl Pruned {
    /// Whether some kind filled its batch, so more may be waiting.
    pub fn more(&self, batch: usize) -> bool {
        [self.events, self.actions, self.quarantine, self.rule_state]
            .iter()
            .any(|n| *n >= batch)
    }

    pub fn is_empty(&self) -> bool {
        *self == Pruned::default()
    }
}

/// Deletes up to `p.batch` finished rows of each kind, inside `tx`.
pub fn prune(tx: &Transaction<'_>, p: &Policy) -> rusqlite::Result<Pruned> {
    let mut out = Pruned::default();
    let n = p.batch as i64;
    // Actions first: an event whose last action goes here can go below.
    for (state, before) in [("delivered", p.delivered_before), ("dead", p.dead_before)] {
        let Some(before) = before else { continue };
        let ids: Vec<String> = tx
            .prepare_cached(
                "SELECT id FROM actions WHERE state = ?1 AND finished_at < ?2 LIMIT ?3",
            )?
            .query_map(params![state, before, n - out.actions as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut attempts = tx.prepare_cached("DELETE FROM action_attempts WHERE action_id = ?1")?;
        let mut action = tx.prepare_cached("DELETE FROM actions WHERE id = ?1")?;
        for id in &ids {
            attempts.execute([id])?;
            out.actions += action.execute([id])?;
        }
    }
    if let Some(before) = p.events_before {
        let cursor = super::outbox::cursor(tx)?;
        let ids: Vec<i64> = tx
            .prepare_cached(
                "SELECT e.id FROM events e
                 WHERE e.received_at < ?1 AND e.dedup_until < ?2
                   AND (e.state = 'rejected' OR e.id <= ?3)
                   AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.event_id = e.id)
                 ORDER BY e.id LIMIT ?4",
            )?
            .query_map(params![before, p.now, cursor, n], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut evaluation = tx.prepare_cached("DELETE FROM evaluations WHERE event_id = ?1")?;
        let mut event = tx.prepare_cached("DELETE FROM events WHERE id = ?1")?;
        for id in &ids {
            evaluation.execute([id])?;
            out.events += event.execute([id])?;
        }
    }
    if let Some(before) = p.quarantine_before {
        out.quarantine = tx.execute(
            "DELETE FROM quarantine WHERE id IN
               (SELECT id FROM quarantine WHERE received_at < ?1 ORDER BY id LIMIT ?2)",
            params![before, n],
        )?;
    }
    out.rule_state = tx.execute(
        "DELETE FROM rule_state WHERE key IN (SELECT key FROM rule_state WHERE until <= ?1 LIMIT ?2)",
        params![p.now, n],
    )?;
    Ok(out)
}
