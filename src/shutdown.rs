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

/// SIGTERM, Ctrl-C (SIGINT) and SIGHUP, caught from the moment they are
/// installed: one that arrives while the router is still starting is kept,
/// and acted on as soon as [`on_signals`] runs, instead of killing the
/// process half-started (the default action of all three).
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; needs a Tokio runtime.
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Fires `trigger` on SIGTERM or Ctrl-C, and runs `on_hangup` on SIGHUP
/// (one at a time).
/// A second SIGTERM or Ctrl-C while the stop is under way ends the process
/// at once (exit 130 after Ctrl-C, 143 after SIGTERM): every acknowledged
/// event is already durable in the ingest log and is indexed at the next
/// start; unanswered requests are retried by their senders, and sends cut
/// off are sent again once their lease lapses.
pub fn on_signals<F>(
    trigger: Trigger,
    mut signals: Signals,
    on_hangup: impl Fn() -> F + Send + 'static,
) where
    F: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut stopping = false;
        loop {
            let (name, code) = tokio::select! {
                _ = signals.int.recv() => ("Ctrl-C", 130),
                _ = signals.term.recv() => ("SIGTERM", 143),
                _ = signals.hup.recv() => {
                    on_hangup().await;
                    continue;
                }
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
    });
}
