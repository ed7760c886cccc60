//! The retry decision: a pure function of the attempt's outcome, the
//! attempt number, the action's age and the target's delivery settings.
//! Jitter (±20 %) spreads retries so a recovering API is not hit by every
//! waiting action at once; `Retry-After` is honoured up to a clamp; a 429
//! or a timeout waits at least the floor.

use std::time::Duration;

use crate::config::DeliveryConfig;
use crate::connectors::Outcome;
use crate::store::delivery::Settle;

/// Decides what happens after attempt `attempt` (1-based) of an action
/// created at `created_at`, at `now` (ms). `jitter` is in [-1, 1].
pub fn decide(
    outcome: &Outcome,
    attempt: i64,
    created_at: i64,
    now: i64,
    cfg: &DeliveryConfig,
    jitter: f64,
) -> Settle {
    match outcome {
        Outcome::Delivered { .. } => Settle::Delivered,
        Outcome::GiveUp { .. } => Settle::Dead,
        Outcome::Held { .. } => Settle::Held,
        Outcome::Retry { after, floor, .. } => {
            let r = &cfg.retry;
            if r.max_attempts > 0 && attempt >= i64::from(r.max_attempts) {
                return Settle::Dead;
            }
            let idx = usize::try_from(attempt - 1)
                .unwrap_or(0)
                .min(r.schedule.len().saturating_sub(1));
            let base = r.schedule.get(idx).map_or(Duration::from_secs(60), |s| s.0);
            let jittered = base.mul_f64((1.0 + 0.2 * jitter.clamp(-1.0, 1.0)).max(0.0));
            let mut wait = match after {
                Some(a) => (*a).min(r.max_retry_after.0).max(jittered.min(*a)),
                None => jittered,
            };
            if *floor {
                wait = wait.max(r.floor.0);
            }
            let due_at = now.saturating_add(wait.as_millis() as i64);
            if due_at.saturating_sub(created_at) > r.max_age.0.as_millis() as i64 {
                Settle::Dead
            } else {
                Settle::Retry { due_at }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Span;

    fn cfg() -> DeliveryConfig {
        let mut c = DeliveryConfig::default();
        c.retry.schedule = vec![Span(Duration::from_secs(5)), Span(Duration::from_secs(30))];
        c.retry.max_age = Span(Duration::from_secs(3600));
        c.retry.floor = Span(Duration::from_secs(5));
        c.retry.max_retry_after = Span(Duration::from_secs(600));
        c
    }

    fn retry(after: Option<u64>, floor: bool) -> Outcome {
        Outcome::Retry {
            status: Some(500),
            error: "x".into(),
            after: after.map(Duration::from_secs),
            floor,
        }
    }

    #[test]
    fn follows_the_schedule_with_jitter_and_repeats_the_last_step() {
        assert_eq!(
            decide(&retry(None, false), 1, 0, 0, &cfg(), 0.0),
            Settle::Retry { due_at: 5_000 }
        );
        assert_eq!(
            decide(&retry(None, false), 1, 0, 0, &cfg(), 1.0),
            Settle::Retry { due_at: 6_000 }
        );
        assert_eq!(
            decide(&retry(None, false), 1, 0, 0, &cfg(), -1.0),
            Settle::Retry { due_at: 4_000 }
        );
        assert_eq!(
            decide(&retry(None, false), 9, 0, 0, &cfg(), 0.0),
            Settle::Retry { due_at: 30_000 }
        );
    }

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        assert_eq!(
            decide(&retry(Some(7), true), 1, 0, 0, &cfg(), -1.0),
            Settle::Retry { due_at: 7_000 }
        );
        assert_eq!(
            decide(&retry(Some(5000), true), 1, 0, 0, &cfg(), 0.0),
            Settle::Retry { due_at: 600_000 }
        );
    }

    #[test]
    fn a_429_or_timeout_waits_at_least_the_floor() {
        assert_eq!(
            decide(&retry(Some(1), true), 1, 0, 0, &cfg(), -1.0),
            Settle::Retry { due_at: 5_000 }
        );
    }

    #[test]
    fn the_last_allowed_attempt_is_dead() {
        let mut c = cfg();
        c.retry.max_attempts = 3;
        assert_eq!(
            decide(&retry(None, false), 2, 0, 0, &c, 0.0),
            Settle::Retry { due_at: 30_000 }
        );
        assert_eq!(decide(&retry(None, false), 3, 0, 0, &c, 0.0), Settle::Dead);
    }

    #[test]
    fn too_old_or_given_up_is_dead_held_is_held() {
        assert_eq!(
            decide(&retry(None, false), 2, 0, 3_590_000, &cfg(), 0.0),
            Settle::Dead
        );
        let give_up = Outcome::GiveUp {
            status: Some(400),
            error: "invalid_payload".into(),
        };
        assert_eq!(decide(&give_up, 1, 0, 0, &cfg(), 0.0), Settle::Dead);
        assert_eq!(
            decide(&Outcome::Held { reason: "r".into() }, 1, 0, 0, &cfg(), 0.0),
            Settle::Held
        );
    }
}
