//! Re-evaluation as a dry run: stored events go through today's rules and
//! what they would plan now is compared with what was planned when they
//! arrived (`switchyard replay --evaluate`). Nothing is written and nothing
//! is sent, so an operator can see what a rule change would have done to
//! last week's events before relying on it.
//!
//! Events run in id order, the order they were first evaluated in, and
//! rule state (`once`, `count`) is carried from one to the next starting
//! empty at the first event of the range, as the rules saw them then.

use rusqlite::Connection;
use serde::Serialize;

use crate::rules::{RuleSet, StateMap};
use crate::store::inspect::{self, EventRange, Planned};

/// Events read per page, to bound memory on a long range.
const PAGE: usize = 500;

/// One event whose evaluation today differs from the stored one.
#[derive(Debug, Serialize)]
pub struct Change {
    pub event: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The stored outcome; `None` when it was never evaluated.
    pub was: Option<String>,
    pub now: &'static str,
    /// Each failing rule's error today.
    pub errors: Vec<String>,
    /// Planned today and not then.
    pub added: Vec<Planned>,
    /// Planned then and not today.
    pub removed: Vec<Planned>,
}

/// The whole run, in numbers.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub version: String,
    pub events: usize,
    pub unchanged: usize,
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
}

/// Re-evaluates every routable event in `range` (its `after` and `limit`
/// are managed here: `limit` caps the events read in all) and calls
/// `changed` for each that differs.
pub fn run(
    set: &RuleSet,
    conn: &Connection,
    range: &EventRange,
    mut changed: impl FnMut(&Change),
) -> rusqlite::Result<Summary> {
    let mut summary = Summary {
        version: set.version.to_string(),
        ..Summary::default()
    };
    let mut state = StateMap::default();
    let mut page = EventRange {
        after: range.after,
        limit: range.limit.min(PAGE),
        ..range.clone()
    };
    while summary.events < range.limit {
        page.limit = PAGE.min(range.limit - summary.events);
        let events = inspect::evaluated(conn, &page)?;
        let Some(last) = events.last() else { break };
        page.after = last.event.id;
        for stored in events {
            let ev = &stored.event;
            let (eval, next) = set.evaluate(&ev.body, &ev.event_type, ev.received_at, state);
            state = next;
            let mut now: Vec<Planned> = eval
                .actions
                .iter()
                .map(|a| Planned {
                    rule: a.rule.clone(),
                    target: a.target.clone(),
                    action: a.action.as_str().to_owned(),
                    payload: a.payload.to_string(),
                })
                .collect();
            now.sort();
            let added = minus(&now, &stored.actions);
            let removed = minus(&stored.actions, &now);
            let outcome = eval.outcome.as_str();
            summary.events += 1;
            if added.is_empty() && removed.is_empty() && stored.outcome.as_deref() == Some(outcome)
            {
                summary.unchanged += 1;
                continue;
            }
            summary.changed += 1;
            summary.added += added.len();
            summary.removed += removed.len();
            changed(&Change {
                event: ev.id,
                event_type: ev.event_type.clone(),
                was: stored.outcome,
                now: outcome,
                errors: eval.rules.iter().filter_map(|r| r.error.clone()).collect(),
                added,
                removed,
            });
        }
    }
    Ok(summary)
}

/// The items of sorted `a` not matched one for one in sorted `b`.
fn minus(a: &[Planned], b: &[Planned]) -> Vec<Planned> {
    let mut out = Vec::new();
    let mut j = 0;
    for x in a {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        if j < b.len() && b[j] == *x {
            j += 1;
        } else {
            out.push(x.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(rule: &str, text: &str) -> Planned {
        Planned {
            rule: rule.into(),
            target: "support".into(),
            action: "slack".into(),
            payload: format!("{{\"text\":\"{text}\"}}"),
        }
    }

    #[test]
    fn minus_counts_repeated_actions_one_for_one() {
        let mut a = vec![p("r", "x"), p("r", "x"), p("r", "y")];
        let mut b = vec![p("r", "x"), p("r", "z")];
        a.sort();
        b.sort();
        assert_eq!(minus(&a, &b), vec![p("r", "x"), p("r", "y")]);
        assert_eq!(minus(&b, &a), vec![p("r", "z")]);
        assert!(minus(&a, &a).is_empty());
    }
}
