//! The delivery loop: lease due actions from the outbox, send each through
//! its target's connector under the target's concurrency limit and rate
//! (token bucket), and record the attempt; the retry decision is
//! [`super::retry::decide`]'s. Leases are as long as a send can take plus a
//! margin, and every completion carries its attempt number, so a stale
//! worker cannot overwrite a newer attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::retry;
use crate::connectors::{Connectors, Outcome};
use crate::domain::now_millis;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::store::delivery::{ClaimRequest, Claimed, Completion, Settle};

/// Sends in flight across all targets.
const MAX_IN_FLIGHT: usize = 256;
/// How often an idle dispatcher looks for due actions.
const POLL: Duration = Duration::from_millis(100);

/// Per-target flow control.
struct Lane {
    slots: Arc<Semaphore>,
    bucket: std::sync::Mutex<Bucket>,
    breaker: std::sync::Mutex<Breaker>,
}

/// Consecutive failed attempts after which a target is paused.
const TRIP_AFTER: u32 = 5;
/// How long a tripped target rests before one probe goes through.
const COOL_DOWN: Duration = Duration::from_secs(30);

/// A circuit breaker: a target that keeps failing is paused and probed,
/// instead of burning every waiting action's attempts.
#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

impl Breaker {
    /// None: go ahead. Some(wait): paused for that long.
    fn admit(&mut self) -> Option<Duration> {
        match self.open_until {
            Some(t) if Instant::now() < t => Some(t - Instant::now()),
            Some(_) if self.probing => Some(Duration::from_secs(1)),
            Some(_) => {
                self.probing = true; // exactly one probe
                None
            }
            None => None,
        }
    }

    fn record(&mut self, ok: bool) {
        self.probing = false;
        if ok {
            self.failures = 0;
            self.open_until = None;
        } else {
            self.failures += 1;
            if self.failures >= TRIP_AFTER {
                self.open_until = Some(Instant::now() + COOL_DOWN);
            }
        }
    }
}

type Lanes = std::sync::Mutex<HashMap<String, Arc<Lane>>>;

/// A token bucket: `burst` tokens, refilled at `per_second`.
struct Bucket {
    tokens: f64,
    at: Instant,
    per_second: f64,
    burst: f64,
}

impl Bucket {
    /// How long to wait for the next token (and takes it).
    fn take(&mut self) -> Duration {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.per_second)
            .min(self.burst);
        self.at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }
}

/// Runs until `shutdown`, then waits up to `drain` for sends in flight.
pub async fn run(
    store: Store,
    connectors: Arc<Connectors>,
    metrics: Arc<crate::telemetry::Metrics>,
    mut shutdown: Shutdown,
    drain: Duration,
) {
    match store.release_held().await {
        Ok(n) if n > 0 => {
            tracing::info!(actions = n, "re-queued held and previously leased actions")
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "could not re-queue held actions"),
    }
    let lanes: Arc<Lanes> = Arc::default();
    // A lease outlives the longest send (timeout) by a margin, so a live
    // worker is never overtaken by a reclaim.
    let lease_ms = connectors.longest_timeout().as_millis() as i64 + 30_000;
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let planned = store.planned();
    // (action id, attempt) of every send in flight, to release at a hard stop.
    let sending: Arc<std::sync::Mutex<std::collections::HashSet<(String, i64)>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let free = in_flight.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            store
                .claim(ClaimRequest {
                    limit: free.min(64),
                    now: now_millis(),
                    lease_ms,
                })
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "claiming actions failed");
                    Vec::new()
                })
        };
        let idle = claimed.is_empty();
        for action in claimed {
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("never closed");
            let (store, connectors, lanes) = (store.clone(), connectors.clone(), lanes.clone());
            let leased = (action.id.clone(), action.attempt);
            sending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(leased.clone());
            let sending = sending.clone();
            let metrics = metrics.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let target = action.target.clone();
                if let Some(result) =
                    deliver(&store, &connectors, &lanes, &metrics, action, shutdown).await
                {
                    metrics.delivery_attempt(&target, result);
                }
                sending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&leased);
            });
        }
        if idle {
            tokio::select! {
                _ = planned.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.wait() => break,
            }
        }
    }
    // Sends in flight may finish until the deadline; the rest are stopped
    // and their leases released, so the next start sends them at once.
    let finished =
        tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tasks.abort_all();
        let left: Vec<(String, i64)> = sending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (id, attempt) in left {
            release(&store, id, attempt).await;
        }
    }
}

/// One attempt; returns how it was settled, or `None` when it was not
/// attempted (the target's breaker is open, or shutdown came first).
async fn deliver(
    store: &Store,
    connectors: &Connectors,
    lanes: &Lanes,
    metrics: &crate::telemetry::Metrics,
    action: Claimed,
    mut shutdown: Shutdown,
) -> Option<&'static str> {
    let Some(target) = connectors.target(&action.target).cloned() else {
        let outcome = connectors.send(&action).await; // Held: unknown target
        return Some(
            settle(
                store,
                &action,
                outcome,
                now_millis(),
                Instant::now(),
                &crate::config::DeliveryConfig::default(),
            )
            .await,
        );
    };
    // Flow control is per target, and per channel when the action names one
    // (Slack's pace is per channel).
    let lane_key = match action.payload.get("channel").and_then(|c| c.as_str()) {
        Some(ch) => format!("{}#{ch}", action.target),
        None => action.target.clone(),
    };
    let lane = lanes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(lane_key)
        .or_insert_with(|| {
            Arc::new(Lane {
                slots: Arc::new(Semaphore::new(target.delivery.concurrency)),
                bucket: std::sync::Mutex::new(Bucket {
                    tokens: f64::from(target.delivery.rate.burst),
                    at: Instant::now(),
                    per_second: target.delivery.rate.per_second,
                    burst: f64::from(target.delivery.rate.burst),
                }),
                breaker: std::sync::Mutex::new(Breaker::default()),
            })
        })
        .clone();
    // Until the request goes out, a shutdown releases the action rather than
    // wait for a slot or the rate limit: only sends on the wire are drained,
    // and a restart must not take a backlog's pace to finish.
    let _slot = tokio::select! {
        slot = lane.slots.clone().acquire_owned() => slot.expect("never closed"),
        _ = shutdown.wait() => return release(store, action.id, action.attempt).await,
    };
    // Checked with the slot held, so sends queued behind a failing one see the trip.
    let paused = lane
        .breaker
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .admit();
    if let Some(wait) = paused {
        let due_at = now_millis() + wait.as_millis() as i64;
        let c = Completion::deferred(action.id.clone(), action.attempt, due_at);
        if let Err(e) = store.complete(c).await {
            tracing::error!(action = %action.id, error = %e, "deferring an action failed");
        }
        return None;
    }
    let wait = lane.bucket.lock().unwrap_or_else(|p| p.into_inner()).take();
    if !wait.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {} // the rate limit, not a synchronisation
            _ = shutdown.wait() => return release(store, action.id, action.attempt).await,
        }
    }
    let started_ms = now_millis();
    let started = Instant::now();
    let outcome = connectors.send(&action).await;
    let failed = matches!(outcome, Outcome::Retry { .. });
    let (tripped, recovered) = {
        let mut b = lane.breaker.lock().unwrap_or_else(|p| p.into_inner());
        let was_open = b.open_until.is_some();
        b.record(!failed);
        let open = b.open_until.is_some();
        (!was_open && open, was_open && !open)
    };
    let paused = || {
        metrics
            .target_paused
            .get_or_create(&crate::telemetry::TargetLabel {
                target: action.target.clone(),
            })
    };
    if tripped {
        paused().set(1);
        tracing::warn!(target = %action.target, "target keeps failing; pausing it for {COOL_DOWN:?}, then probing");
    }
    if recovered {
        paused().set(0);
        tracing::info!(target = %action.target, "target answers again; its breaker closed");
    }
    Some(
        settle(
            store,
            &action,
            outcome,
            started_ms,
            started,
            &target.delivery,
        )
        .await,
    )
}

/// Gives a leased action back unattempted, due at once: the next start
/// sends it first.
async fn release(store: &Store, id: String, attempt: i64) -> Option<&'static str> {
    let c = Completion::deferred(id, attempt, 0);
    let id = c.id.clone();
    if let Err(e) = store.complete(c).await {
        tracing::warn!(action = %id, error = %e, "could not release a lease at shutdown; it is reclaimed at the next start");
    }
    None
}

async fn settle(
    store: &Store,
    action: &Claimed,
    outcome: Outcome,
    started_ms: i64,
    started: Instant,
    cfg: &crate::config::DeliveryConfig,
) -> &'static str {
    let jitter = (rand_unit(&action.id, action.attempt) * 2.0) - 1.0;
    let settle = retry::decide(
        &outcome,
        action.attempt,
        action.created_at,
        now_millis(),
        cfg,
        jitter,
    );
    let (status, error, excerpt) = match &outcome {
        Outcome::Delivered {
            status, excerpt, ..
        } => (*status, None, Some(excerpt.chars().take(500).collect())),
        Outcome::Retry { status, error, .. } | Outcome::GiveUp { status, error } => {
            (*status, Some(error.clone()), None)
        }
        Outcome::Held { reason } => (None, Some(reason.clone()), None),
    };
    match &settle {
        Settle::Dead => {
            tracing::warn!(action = %action.id, target = %action.target, error = ?error, "action dead-lettered")
        }
        Settle::Held => {
            tracing::info!(action = %action.id, target = %action.target, reason = ?error, "action held")
        }
        Settle::Retry { due_at } => {
            tracing::info!(action = %action.id, target = %action.target, attempt = action.attempt, retry_in_ms = due_at - now_millis(), error = ?error, "action will be retried")
        }
        Settle::Delivered => {
            tracing::debug!(action = %action.id, target = %action.target, "delivered")
        }
        Settle::Deferred { .. } => {}
    }
    let c = Completion {
        id: action.id.clone(),
        attempt: action.attempt,
        settle,
        started_at: started_ms,
        duration_ms: started.elapsed().as_millis() as i64,
        status,
        error,
        excerpt,
        thread: match (
            &outcome,
            action.payload.get("thread_key").and_then(|k| k.as_str()),
        ) {
            (
                Outcome::Delivered {
                    reference: Some(ts),
                    ..
                },
                Some(key),
            ) if action.thread_ts.is_none() => Some((key.to_owned(), ts.clone())),
            _ => None,
        },
    };
    let result = match c.settle {
        Settle::Delivered => "delivered",
        Settle::Retry { .. } => "retry",
        Settle::Dead => "dead",
        Settle::Held => "held",
        Settle::Deferred { .. } => "deferred",
    };
    match store.complete(c).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(action = %action.id, attempt = action.attempt, "a newer attempt owns this action; result dropped")
        }
        Err(e) => {
            tracing::error!(action = %action.id, error = %e, "recording the attempt failed; the lease will expire and it is sent again")
        }
    }
    result
}

/// A deterministic number in [0, 1) from the action and attempt (jitter
/// without a random-number dependency, reproducible in tests).
fn rand_unit(id: &str, attempt: i64) -> f64 {
    use sha2::{Digest as _, Sha256};
    let h = Sha256::new()
        .chain_update(id.as_bytes())
        .chain_update(attempt.to_be_bytes())
        .finalize();
    f64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]])) / (f64::from(u32::MAX) + 1.0)
}
