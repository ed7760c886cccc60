//! The journal: durable storage of every authentic event, de-duplication
//! and the quarantine of authentic but unreadable bodies.
//!
//! The ingress talks to a [`Store`] handle. An ingest goes to the log
//! writer (`log`), which writes concurrent requests as one group into a
//! preallocated segment file with one durable write (group commit: one
//! write serves many waiters) and answers each waiter only after it. The
//! logged group then goes to the SQLite writer, which indexes it into
//! `events` together with everything else the journal records (evaluations,
//! deliveries), in its own group commits, off the request path. SQLite is
//! the embedded default. The threads behind it yield the CPU to the
//! ingress while they keep up (`priority`). One router at a time may open
//! a store for writing (`lock`).

mod dedup;
pub mod delivery;
pub mod inspect;
mod lock;
mod log;
pub mod outbox;
mod priority;
pub mod retention;
mod segment;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

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

/// Where and when a verified request came from; shared by its events from
/// the ingress through the log to the index.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub source: Arc<str>,
    pub key_label: Option<Arc<str>>,
    pub received_at: i64,
    /// A resend before this is a duplicate.
    pub dedup_until: i64,
}

/// One verified request's events; written all-or-nothing.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    pub arrival: Arrival,
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
    /// Events already durable in the ingest log, to index; the position is
    /// where the log stands after them.
    Index(Vec<log::LoggedBatch>, log::LogPos),
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
    /// Delete one batch of what retention lets go.
    Prune(
        retention::Policy,
        oneshot::Sender<Result<retention::Pruned, StoreError>>,
    ),
    /// Finish what is queued before this, then close the database.
    Close,
}

/// The highest event id indexed in `events` (every event is on disk in the
/// ingest log before it is indexed), and a way to wait for it to move. The
/// evaluation loop reads events up to it.
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

/// Sends a job carrying its answer channel to a writer, runs `sent` (to
/// wake the writer), and waits for the answer.
async fn request<J, T>(
    writer: &mpsc::Sender<J>,
    job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> J,
    sent: impl FnOnce(),
) -> Result<T, StoreError> {
    let (tx, rx) = oneshot::channel();
    writer.send(job(tx)).await.map_err(|_| StoreError::Closed)?;
    sent();
    rx.await.map_err(|_| StoreError::Closed)?
}

/// A file or directory beside the database: its path with `suffix` added
/// (`-wal`, `-log`, `.lock`).
fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// A read-only connection to the journal, for operator tools: safe while
/// a server runs, and it never changes the file.
pub fn read_journal(url: &StoreUrl) -> Result<rusqlite::Connection, StoreError> {
    let StoreUrl::Sqlite(path) = url;
    if !path.exists() {
        return Err(StoreError::Open {
            path: path.clone(),
            reason: "no journal here yet".into(),
        });
    }
    sqlite::open_read_only(path)
}

/// Reads event `id` without opening the store for writing: from the index,
/// else from the ingest log beyond it (an event answered 200 just before a
/// crash is only there until the next start indexes it). Safe while a
/// server runs.
pub fn stored_event(url: &StoreUrl, id: i64) -> Result<Option<outbox::PendingEvent>, StoreError> {
    let StoreUrl::Sqlite(path) = url;
    let open_err = |reason: String| StoreError::Open {
        path: path.clone(),
        reason,
    };
    let conn = sqlite::open_read_only(path)?;
    let indexed = || outbox::event_by_id(&conn, id).map_err(|e| open_err(e.to_string()));
    if let Some(ev) = indexed()? {
        return Ok(Some(ev));
    }
    let from = sqlite::log_position(&conn).map_err(|e| open_err(e.to_string()))?;
    match log::find(&log::dir_for(path), from, id) {
        Ok(found) => Ok(found.map(|(arrival, ev)| outbox::PendingEvent {
            id,
            event_type: match ev.verdict {
                crate::domain::EventVerdict::Valid { event_type } => event_type,
                crate::domain::EventVerdict::Rejected { .. } => String::new(),
            },
            body: String::from_utf8_lossy(&ev.bytes).into_owned(),
            received_at: arrival.received_at,
        })),
        // A running server indexed and recycled that segment meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => indexed(),
        Err(e) => Err(open_err(format!("reading the ingest log: {e}"))),
    }
}

/// How the store runs beside the ingress ([`crate::config::Config::store_options`]).
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// The longest dedup window of any source: how far back the dedup
    /// index is rebuilt from the journal.
    pub max_dedup_window: std::time::Duration,
    /// How many nice steps below the process the threads that index, sync
    /// and checkpoint the journal run while it keeps up (0 = the ingress's
    /// priority; see [`priority`]).
    pub indexing_nice: i32,
}

/// A cheap, cloneable handle to the journal's writers.
#[derive(Clone)]
pub struct Store {
    log_tx: mpsc::Sender<log::LogJob>,
    tx: mpsc::Sender<Job>,
    path: PathBuf,
    durable: Arc<Durable>,
    planned: Arc<tokio::sync::Notify>,
    health: Arc<log::Health>,
    /// The background threads' priority ([`priority`]).
    background: Arc<priority::Background>,
    /// Resolves when the log thread has written its last group.
    log_closed: Arc<std::sync::Mutex<Option<oneshot::Receiver<()>>>>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// The SQLite writer, unparked when a delivery or quarantine job is
    /// queued, so it does not linger for more index work while one waits.
    writer_thread: std::thread::Thread,
}

impl Store {
    /// Opens (creating if needed) the store, indexes what the ingest log
    /// holds beyond the journal (after a crash), and starts its writers
    /// (threads of their own: no Tokio runtime is needed to open it).
    pub fn open(url: &StoreUrl, options: &StoreOptions) -> Result<Store, StoreError> {
        let max_dedup_window = options.max_dedup_window;
        match url {
            StoreUrl::Sqlite(path) => {
                let open_err = |reason: String| StoreError::Open {
                    path: path.clone(),
                    reason,
                };
                // Before anything is read or written: one router per store.
                let lock = lock::acquire(path)?;
                let mut conn = sqlite::open(path)?;
                let dir = log::dir_for(path);
                let from = sqlite::log_position(&conn).map_err(|e| open_err(e.to_string()))?;
                let replayed = log::replay(&dir, from)
                    .map_err(|e| open_err(format!("reading the ingest log: {e}")))?;
                let replayed_events: usize = replayed
                    .iter()
                    .flat_map(|(b, _)| b.iter().map(|b| b.events.len()))
                    .sum();
                sqlite::index_replayed(&mut conn, path, &replayed)?;
                if replayed_events > 0 {
                    tracing::info!(
                        events = replayed_events,
                        "indexed events from the ingest log"
                    );
                }
                let health = Arc::new(log::Health::new());
                // Everything in the log now is indexed and synced.
                let last_segment = replayed.last().map_or(from.segment, |(_, p)| p.segment);
                health
                    .indexed_segment
                    .store(last_segment + 1, Ordering::Release);
                let max_id: i64 = conn
                    .query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))
                    .map_err(|e| open_err(e.to_string()))?;
                let durable = Arc::new(Durable::default());
                durable.advance(max_id);
                health.logged.store(max_id, Ordering::Release);
                // The evaluation loop reports its own cursor once it runs.
                health.evaluated.store(max_id, Ordering::Release);
                let window_ms = i64::try_from(max_dedup_window.as_millis()).unwrap_or(i64::MAX);
                let index = sqlite::load_dedup_index(&conn, window_ms)
                    .map_err(|e| open_err(e.to_string()))?;
                tracing::info!(path = %path.display(), dedup_keys = index.len(), "journal open");

                // Bounded: when the disk is slower than the senders, requests
                // wait here (and time out at the client) instead of piling up memory.
                let (tx, rx) = mpsc::channel(1024);
                let (log_tx, log_rx) = mpsc::channel(1024);
                let background = Arc::new(priority::Background::new(options.indexing_nice));
                let sqlite_writer = sqlite::spawn_writer(
                    path.clone(),
                    lock,
                    conn,
                    rx,
                    health.clone(),
                    durable.clone(),
                    background.clone(),
                )?;
                let start = log::Start {
                    dir,
                    next_segment: last_segment + 1,
                    next_id: max_id + 1,
                    index,
                };
                let log_closed = log::spawn(
                    start,
                    log_rx,
                    tx.clone(),
                    health.clone(),
                    background.clone(),
                )
                .map_err(|e| open_err(format!("starting the ingest log: {e}")))?;
                Ok(Store {
                    log_tx,
                    tx,
                    path: path.clone(),
                    durable,
                    planned: Arc::new(tokio::sync::Notify::new()),
                    health,
                    background,
                    log_closed: Arc::new(std::sync::Mutex::new(Some(log_closed))),
                    writer_thread: sqlite_writer.thread().clone(),
                    writer: Arc::new(std::sync::Mutex::new(Some(sqlite_writer))),
                })
            }
        }
    }

    /// Journals a batch; returns only after it is durable.
    pub async fn ingest(&self, batch: IngestBatch) -> Result<IngestReport, StoreError> {
        request(&self.log_tx, |tx| log::LogJob::Ingest(batch, tx), || {}).await
    }

    /// Waits until every event acknowledged so far is indexed in SQLite
    /// (what a reader of the database file sees); false after `timeout`.
    pub async fn settle(&self, timeout: std::time::Duration) -> bool {
        let target = self.health.logged.load(Ordering::Acquire);
        let durable = self.durable.clone();
        tokio::task::spawn_blocking(move || durable.wait_beyond(target - 1, timeout) >= target)
            .await
            .unwrap_or(false)
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
        // No unpark: an evaluation rides with the next index group, or the
        // linger would end after every group and the index lose its batching.
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

    /// Deletes one batch of finished rows older than `policy` allows
    /// ([`retention`]); call again while [`retention::Pruned::more`].
    pub async fn prune(&self, policy: retention::Policy) -> Result<retention::Pruned, StoreError> {
        self.ask(|tx| Job::Prune(policy, tx)).await
    }

    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        request(&self.tx, job, || self.writer_thread.unpark()).await
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

    /// Event `id` as [`stored_event`] finds it: from the index, else from
    /// the ingest log beyond it (acknowledged, not indexed yet).
    pub fn logged_event(&self, id: i64) -> Result<Option<outbox::PendingEvent>, StoreError> {
        stored_event(&StoreUrl::Sqlite(self.path.clone()), id)
    }

    /// A read-only connection for operator views ([`inspect`]); in WAL mode
    /// it never blocks the writers.
    pub fn reader(&self) -> Result<rusqlite::Connection, StoreError> {
        sqlite::open_read_only(&self.path)
    }

    /// Events acknowledged (durable in the ingest log) and not yet indexed
    /// in the database.
    pub fn index_lag(&self) -> i64 {
        (self.health.logged.load(Ordering::Acquire) - self.durable.get()).max(0)
    }

    /// The evaluation loop's progress: every event up to `id` is evaluated.
    /// The journal's background threads yield the CPU while this keeps up
    /// with the ingress ([`priority`]).
    pub fn evaluated_to(&self, id: i64) {
        self.health.evaluated.fetch_max(id, Ordering::Release);
    }

    /// Whether the journal's background threads run below the ingress's
    /// priority now (they keep up; see [`priority`]).
    pub fn indexing_lowered(&self) -> bool {
        self.background.is_lowered()
    }

    /// Whether the last log write and the last index write succeeded (readiness).
    pub fn healthy(&self) -> bool {
        self.health.log_ok.load(Ordering::Acquire) && self.health.index_ok.load(Ordering::Acquire)
    }

    /// Stops the log writer, then the SQLite writer, each after it has
    /// finished the jobs already queued, and waits for the database to close
    /// cleanly. Jobs sent by other clones afterwards fail with
    /// [`StoreError::Closed`].
    pub async fn close(self) {
        let Store {
            log_tx,
            tx,
            log_closed,
            writer,
            ..
        } = self;
        // The log first: its last groups go to the index before the index closes.
        let _ = log_tx.send(log::LogJob::Close).await;
        let closed = log_closed.lock().ok().and_then(|mut c| c.take());
        if let Some(closed) = closed {
            let _ = closed.await;
        }
        let _ = tx.send(Job::Close).await;
        let thread = writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = thread {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}
