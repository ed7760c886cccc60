//! The journal: durable storage of every authentic event, de-duplication
//! and the quarantine of authentic but unreadable bodies.
//!
//! The ingress talks to a [`Store`] handle; the handle hands work to one
//! writer that batches concurrent requests into a single transaction (group
//! commit: one fsync serves many waiters) and answers each waiter only after
//! that commit is durable. SQLite is the embedded default.

mod dedup;
pub mod delivery;
pub mod outbox;
mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::config::StoreUrl;
use crate::domain::{IngestReport, SplitEvent};

/// Errors of the store, answered as 503 by the ingress.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("the store failed to write: {0}")]
    Write(String),
    #[error("the store is shutting down")]
    Closed,
}

/// One verified request's events; written all-or-nothing.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    pub source: Arc<str>,
    pub key_label: Option<Arc<str>>,
    pub received_at: i64,
    pub dedup_until: i64,
    pub body: Bytes,
    pub events: Vec<SplitEvent>,
}

/// An authentic body that could not be split, kept with the reason.
#[derive(Debug, Clone)]
pub struct Quarantined {
    pub source: Arc<str>,
    pub key_label: Option<Arc<str>>,
    pub received_at: i64,
    pub code: &'static str,
    pub reason: String,
    pub body: Bytes,
}

enum Job {
    Ingest(
        IngestBatch,
        oneshot::Sender<Result<IngestReport, StoreError>>,
    ),
    Quarantine(Quarantined, oneshot::Sender<Result<(), StoreError>>),
    /// A batch of evaluations for the outbox; answered with the actions planned.
    Evaluated(
        outbox::EvaluatedBatch,
        oneshot::Sender<Result<usize, StoreError>>,
    ),
    /// Lease due actions to a delivery worker.
    Claim(
        delivery::ClaimRequest,
        oneshot::Sender<Result<Vec<delivery::Claimed>, StoreError>>,
    ),
    /// Record an attempt (fenced by its attempt number).
    Complete(
        delivery::Completion,
        oneshot::Sender<Result<bool, StoreError>>,
    ),
    /// Put held actions back in the queue.
    ReleaseHeld(oneshot::Sender<Result<usize, StoreError>>),
    /// Finish what is queued before this, then close the database.
    Close,
}

/// The highest event id known to be on disk, and a way to wait for it to
/// move. The evaluation loop reads only durable events.
#[derive(Default)]
pub struct Durable {
    id: std::sync::Mutex<i64>,
    moved: std::sync::Condvar,
}

impl Durable {
    pub fn advance(&self, id: i64) {
        if let Ok(mut g) = self.id.lock()
            && id > *g
        {
            *g = id;
            self.moved.notify_all();
        }
    }

    /// Wakes waiters without moving the id (they re-check and go on waiting).
    pub fn wake(&self) {
        self.moved.notify_all();
    }

    pub fn get(&self) -> i64 {
        self.id.lock().map(|g| *g).unwrap_or(0)
    }

    /// Waits until the durable id passes `seen`, or `timeout`; returns it.
    pub fn wait_beyond(&self, seen: i64, timeout: std::time::Duration) -> i64 {
        let Ok(g) = self.id.lock() else { return seen };
        match self.moved.wait_timeout_while(g, timeout, |id| *id <= seen) {
            Ok((g, _)) => *g,
            Err(_) => seen,
        }
    }
}

/// A cheap, cloneable handle to the journal writer.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
    durable: Arc<Durable>,
    planned: Arc<tokio::sync::Notify>,
    healthy: Arc<AtomicBool>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Store {
    /// Opens (creating if needed) the store and starts its writer.
    /// `max_dedup_window` is the longest window of any source: how far back
    /// the dedup index is rebuilt from the journal.
    pub fn open(
        url: &StoreUrl,
        max_dedup_window: std::time::Duration,
    ) -> Result<Store, StoreError> {
        match url {
            StoreUrl::Sqlite(path) => {
                // Bounded: when the disk is slower than the senders, requests
                // wait here (and time out at the client) instead of piling up memory.
                let (tx, rx) = mpsc::channel(1024);
                let healthy = Arc::new(AtomicBool::new(true));
                let window_ms = i64::try_from(max_dedup_window.as_millis()).unwrap_or(i64::MAX);
                let durable = Arc::new(Durable::default());
                let writer = sqlite::spawn_writer(
                    path.clone(),
                    rx,
                    healthy.clone(),
                    window_ms,
                    durable.clone(),
                )?;
                Ok(Store {
                    tx,
                    path: path.clone(),
                    durable,
                    planned: Arc::new(tokio::sync::Notify::new()),
                    healthy,
                    writer: Arc::new(std::sync::Mutex::new(Some(writer))),
                })
            }
        }
    }

    /// Journals a batch; returns only after the commit is durable.
    pub async fn ingest(&self, batch: IngestBatch) -> Result<IngestReport, StoreError> {
        self.ask(|tx| Job::Ingest(batch, tx)).await
    }

    /// Keeps an unreadable authentic body for inspection; durable on return.
    pub async fn quarantine(&self, q: Quarantined) -> Result<(), StoreError> {
        self.ask(|tx| Job::Quarantine(q, tx)).await
    }

    /// Writes a batch of evaluations through the one writer (so evaluation
    /// never fights ingress for SQLite's write lock); blocking, for the
    /// evaluation thread. Returns the number of actions planned.
    pub fn commit_evaluations(&self, batch: outbox::EvaluatedBatch) -> Result<usize, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .blocking_send(Job::Evaluated(batch, tx))
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    /// Leases due actions; durable before it returns.
    pub async fn claim(
        &self,
        req: delivery::ClaimRequest,
    ) -> Result<Vec<delivery::Claimed>, StoreError> {
        self.ask(|tx| Job::Claim(req, tx)).await
    }

    /// Records an attempt; `false` when a newer claim fenced this one out.
    pub async fn complete(&self, c: delivery::Completion) -> Result<bool, StoreError> {
        self.ask(|tx| Job::Complete(c, tx)).await
    }

    /// Puts held actions back in the queue (at start, after a reload).
    pub async fn release_held(&self) -> Result<usize, StoreError> {
        self.ask(Job::ReleaseHeld).await
    }

    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(job(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Signalled when evaluations planned new actions, so the dispatcher
    /// does not wait for its next poll.
    pub fn planned(&self) -> Arc<tokio::sync::Notify> {
        self.planned.clone()
    }

    /// Where durable event ids are published.
    pub fn durable(&self) -> Arc<Durable> {
        self.durable.clone()
    }

    /// A separate connection for the evaluation loop and tools.
    pub fn connect(&self) -> Result<rusqlite::Connection, StoreError> {
        sqlite::open(&self.path)
    }

    /// Whether the last write succeeded (readiness).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Stops the writer after it has finished the jobs already queued, and
    /// waits for it to close the database cleanly. Jobs sent by other
    /// clones afterwards fail with [`StoreError::Closed`].
    pub async fn close(self) {
        let Store { tx, writer, .. } = self;
        let _ = tx.send(Job::Close).await;
        let handle = writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}
