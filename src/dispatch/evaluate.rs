//! The evaluation loop, on a thread of its own (scripts are CPU work and
//! must not stall the async runtime). It reads durable events after its
//! cursor in id order, evaluates each with the live rule set, and commits
//! the batch's actions, results, rule state and the new cursor in one
//! transaction. A crash before that commit leaves the batch unevaluated; it
//! is evaluated again, with the same action ids.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::domain::now_millis;
use crate::rules::StateMap;
use crate::rules::reload::LiveRules;
use crate::store::outbox::{self, PendingEvent};
use crate::store::{Durable, Store};
use crate::telemetry::{Metrics, TypeOutcome};

/// Events evaluated per transaction.
const BATCH: usize = 256;

/// A running evaluation loop.
pub struct Evaluator {
    stop: Arc<AtomicBool>,
    durable: Arc<Durable>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Evaluator {
    pub fn spawn(
        store: &Store,
        rules: Arc<LiveRules>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Evaluator> {
        let conn = store.connect().map_err(std::io::Error::other)?;
        let writer = store.clone();
        let durable = store.durable();
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (durable.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("switchyard-evaluate".into()).spawn(move || {
            let mut state = outbox::load_state(&conn, now_millis()).unwrap_or_default();
            let mut cursor = outbox::cursor(&conn).unwrap_or(0);
            while !s.load(Ordering::Relaxed) {
                let upto = d.get();
                let batch = match outbox::fetch(&conn, cursor, upto, BATCH) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "reading events to evaluate failed; retrying");
                        d.wait_beyond(i64::MAX, Duration::from_secs(1));
                        continue;
                    }
                };
                if batch.is_empty() {
                    // Routable or not, everything up to `upto` is done.
                    if upto > cursor {
                        cursor = upto;
                    }
                    writer.evaluated_to(cursor);
                    d.wait_beyond(upto, Duration::from_millis(500));
                    continue;
                }
                let set = rules.current();
                let mut evaluated = Vec::with_capacity(batch.len());
                for ev in batch {
                    let (eval, next) = set.evaluate(&ev.body, &ev.event_type, ev.received_at, state);
                    state = next;
                    evaluated.push((ev, eval));
                }
                let last = evaluated.last().map(|(e, _): &(PendingEvent, _)| e.id).unwrap_or(cursor);
                // Counted per (type, outcome) once per batch, not per event.
                let mut counts: std::collections::HashMap<(&str, &'static str), u64> = Default::default();
                for (ev, eval) in &evaluated {
                    *counts.entry((ev.event_type.as_str(), eval.outcome.as_str())).or_default() += 1;
                }
                let counts: Vec<(String, &'static str, u64)> =
                    counts.into_iter().map(|((t, o), n)| (t.to_owned(), o, n)).collect();
                let batch = outbox::EvaluatedBatch {
                    evaluated,
                    cursor_to: last,
                    now: now_millis(),
                };
                match writer.commit_evaluations(batch) {
                    Ok(planned) => {
                        cursor = last;
                        writer.evaluated_to(cursor);
                        if planned > 0 {
                            writer.planned().notify_one();
                        }
                        metrics.actions_planned.inc_by(planned as u64);
                        for (event_type, outcome, n) in counts {
                            metrics
                                .evaluated
                                .get_or_create(&TypeOutcome {
                                    event_type,
                                    outcome: outcome.to_owned(),
                                })
                                .inc_by(n);
                        }
                    }
                    Err(e) => {
                        // Nothing of the batch was written: evaluate it again,
                        // from the rule state the journal holds (the last
                        // committed one), not the batch's unwritten changes.
                        tracing::error!(error = %e, "writing evaluations failed; the batch will be evaluated again");
                        state = outbox::load_state(&conn, now_millis()).unwrap_or_default();
                        d.wait_beyond(i64::MAX, Duration::from_secs(1));
                    }
                }
            }
        })?;
        Ok(Evaluator {
            stop,
            durable,
            thread: Some(thread),
        })
    }

    /// Finishes the batch in hand and stops.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.durable.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Evaluation with a fresh, in-memory rule state: `switchyard route`.
pub fn dry_run(rules: &crate::rules::RuleSet, ev: &PendingEvent) -> crate::rules::Evaluation {
    rules
        .evaluate(
            &ev.body,
            &ev.event_type,
            ev.received_at,
            StateMap::default(),
        )
        .0
}
