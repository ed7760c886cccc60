//! Graceful shutdown: one trigger (SIGTERM, Ctrl-C, or a test), many
//! listeners. Servers stop accepting, finish requests in flight, and the
//! store closes after the servers are done.

use tokio::sync::watch;

/// The sending half: call [`Trigger::fire`] to start shutting down.
#[derive(Clone)]
pub struct Trigger(watch::Sender<bool>);

/// The receiving half, cloned into every task that must stop.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger(tx), Shutdown(rx))
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown has been triggered (or the trigger dropped).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }
}

/// Fires `trigger` on SIGTERM or Ctrl-C. A second signal while the stop
/// is under way ends the process at once (exit 130 after Ctrl-C, 143 after
/// SIGTERM): every acknowledged event is already durable in the ingest log
/// and is indexed at the next start; unanswered requests are retried by
/// their senders, and sends cut off are sent again once their lease lapses.
pub fn on_signals(trigger: Trigger) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGTERM");
                        let _ = tokio::signal::ctrl_c().await;
                        trigger.fire();
                        return;
                    }
                };
            let mut stopping = false;
            loop {
                let (name, code) = tokio::select! {
                    _ = tokio::signal::ctrl_c() => ("Ctrl-C", 130),
                    _ = term.recv() => ("SIGTERM", 143),
                };
                if stopping {
                    tracing::warn!(
                        "{name} again: exiting now; acknowledged events are in the ingest log and are indexed at the next start"
                    );
                    std::process::exit(code);
                }
                tracing::info!("{name}: shutting down (again to exit at once)");
                stopping = true;
                trigger.fire();
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            trigger.fire();
        }
    });
}
