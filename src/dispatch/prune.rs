//! The retention loop: every `retention.every`, prune the journal in
//! batches until nothing more is due ([`crate::store::retention`] decides
//! what may go). Each batch is one job for the journal writer, queued with
//! the index and delivery work, so a large first prune slows nothing down
//! for long. A failed prune is logged and tried again next time.

use std::sync::Arc;

use crate::config::RetentionConfig;
use crate::domain::now_millis;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::store::retention::{Policy, Pruned};
use crate::telemetry::{KindLabel, Metrics};

/// Runs until `shutdown`; the first prune comes right after start.
pub async fn run(
    store: Store,
    cfg: RetentionConfig,
    metrics: Arc<Metrics>,
    mut shutdown: Shutdown,
) {
    loop {
        let total = prune_all(&store, &cfg, &metrics, &mut shutdown).await;
        if !total.is_empty() {
            tracing::info!(
                events = total.events,
                actions = total.actions,
                quarantine = total.quarantine,
                rule_state = total.rule_state,
                "retention pruned the journal"
            );
        }
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(cfg.every.0) => {}
        }
    }
}

/// Prunes batch after batch while batches come back full.
async fn prune_all(
    store: &Store,
    cfg: &RetentionConfig,
    metrics: &Metrics,
    shutdown: &mut Shutdown,
) -> Pruned {
    let mut total = Pruned::default();
    loop {
        let policy = Policy::at(cfg, now_millis());
        let batch = tokio::select! {
            _ = shutdown.wait() => return total,
            b = store.prune(policy) => b,
        };
        match batch {
            Ok(p) => {
                for (kind, n) in [
                    ("events", p.events),
                    ("actions", p.actions),
                    ("quarantine", p.quarantine),
                    ("rule_state", p.rule_state),
                ] {
                    if n > 0 {
                        metrics
                            .pruned
                            .get_or_create(&KindLabel { kind: kind.into() })
                            .inc_by(n as u64);
                    }
                }
                total.events += p.events;
                total.actions += p.actions;
                total.quarantine += p.quarantine;
                total.rule_state += p.rule_state;
                if !p.more(cfg.batch) {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention could not prune the journal; will retry");
                return total;
            }
        }
    }
}
