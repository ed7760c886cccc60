//! Live rules. The current [`RuleSet`] sits behind an `ArcSwap`: evaluation
//! takes a snapshot per batch, reload swaps the whole set at once. A reload
//! compiles every file and runs every rule test first; if anything fails,
//! the last good set stays and the failure is reported (log with
//! file:line:col, metrics, `switchyard check`).
//!
//! Triggers: the directory watcher (debounced; watching the directory, not
//! files, survives write-and-rename saves, vim swap files and ConfigMap
//! `..data` symlink swaps), SIGHUP, and a slow rescan that compares the
//! content fingerprint, for anything the watcher missed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::RecursiveMode;

use super::{RuleSet, cases, fingerprint};
use crate::config::Config;
use crate::telemetry::Metrics;

/// Compiles the rules and runs their tests; the error lines are ready to print.
pub fn load_checked(config: &Config) -> Result<RuleSet, Vec<String>> {
    let set = RuleSet::load(config)
        .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let report = cases::run_with(&set, Some(&config.sources));
    if report.ok() {
        Ok(set)
    } else {
        Err(report
            .failures()
            .into_iter()
            .map(|f| format!("rule test failed: {f}"))
            .collect())
    }
}

/// The live rule set and its reload machinery.
pub struct LiveRules {
    config: Config,
    current: ArcSwap<RuleSet>,
    last_error: Mutex<Vec<String>>,
    metrics: Arc<Metrics>,
}

impl LiveRules {
    /// Loads the first set; a service does not start on broken rules.
    pub fn start(config: Config, metrics: Arc<Metrics>) -> Result<Arc<LiveRules>, Vec<String>> {
        let set = load_checked(&config)?;
        metrics.rules_version(&set.version);
        tracing::info!(version = %set.version, files = set.files().len(), "rules loaded");
        Ok(Arc::new(LiveRules {
            config,
            current: ArcSwap::from_pointee(set),
            last_error: Mutex::new(Vec::new()),
            metrics,
        }))
    }

    /// The set to evaluate with now.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current.load_full()
    }

    /// Errors of the last failed reload (empty when the last one succeeded).
    pub fn last_error(&self) -> Vec<String> {
        self.last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Rescans the directory; swaps in a new set if it changed and passes.
    /// Returns whether a new version went live.
    pub fn reload(&self) -> bool {
        let dir = &self.config.rules.dir;
        match fingerprint(dir) {
            Ok(v) if *v == *self.current().version => return false,
            _ => {}
        }
        match load_checked(&self.config) {
            Ok(set) => {
                let version = set.version.clone();
                // Cleared first, so whoever sees the new set sees no stale error.
                if let Ok(mut e) = self.last_error.lock() {
                    e.clear();
                }
                self.current.store(Arc::new(set));
                self.metrics.rules_reload("ok");
                self.metrics.rules_version(&version);
                self.metrics.rule_load_errors.set(0);
                tracing::info!(%version, "rules reloaded");
                true
            }
            Err(errors) => {
                self.metrics.rules_reload("error");
                self.metrics.rule_load_errors.set(errors.len() as i64);
                for e in &errors {
                    tracing::error!(error = %e, version = %self.current().version, "rules not reloaded; keeping the last good set");
                }
                if let Ok(mut last) = self.last_error.lock() {
                    *last = errors;
                }
                false
            }
        }
    }

    /// Watches the rules directory on a thread of its own until `stop` is dropped.
    pub fn watch(self: &Arc<Self>) -> std::io::Result<WatchHandle> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let events = tx.clone();
        let mut debouncer = notify_debouncer_full::new_debouncer(
            self.config.rules.reload_debounce.0,
            None,
            move |_res: notify_debouncer_full::DebounceEventResult| {
                let _ = events.send(());
            },
        )
        .map_err(std::io::Error::other)?;
        debouncer
            .watch(&self.config.rules.dir, RecursiveMode::Recursive)
            .map_err(std::io::Error::other)?;
        let me = self.clone();
        let rescan: Duration = self.config.rules.rescan_every.0;
        let thread = std::thread::Builder::new()
            .name("switchyard-rules".into())
            .spawn(move || {
                loop {
                    match rx.recv_timeout(rescan) {
                        Ok(()) => {
                            // Fold a burst of notifications into one reload.
                            while rx.try_recv().is_ok() {}
                            me.reload();
                        }
                        // The safety net: cheap when nothing changed (fingerprint only).
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            me.reload();
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })?;
        Ok(WatchHandle {
            _debouncer: Box::new(debouncer),
            poke: tx,
            thread: Some(thread),
        })
    }
}

/// Keeps the watcher alive; dropping it stops the reload thread.
pub struct WatchHandle {
    _debouncer: Box<dyn std::any::Any + Send>,
    poke: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WatchHandle {
    /// Asks for a reload now (SIGHUP).
    pub fn poke(&self) {
        let _ = self.poke.send(());
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        // Dropping the debouncer and our sender disconnects the channel.
        let (dummy, _) = std::sync::mpsc::channel();
        self.poke = dummy;
        self._debouncer = Box::new(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
