//! The SQLite journal, with pipelined group commit.
//!
//! One writer thread owns the connection. It takes every job waiting in the
//! channel (up to a bound) — groups of logged events to index, evaluations,
//! delivery claims and completions, quarantined bodies — writes them all in
//! one `BEGIN IMMEDIATE` transaction and commits. The database runs WAL with
//! `synchronous=NORMAL`, so COMMIT appends to the WAL without waiting for
//! the disk; durability comes from the syncer thread, which `fdatasync`s
//! the WAL file and only then answers every waiter whose answer promises
//! durability (claims, completions, quarantines) and lets the ingest log
//! retire what the sync covered. Index and evaluation commits need no such
//! promise (their events are on disk in the log, and a crash loses only a
//! suffix of the WAL), so they are answered and their ids published at
//! commit, and synced within [`LAZY_SYNC`]. The writer prepares the next
//! group while the syncer waits on the disk.
//!
//! Events reach this writer already durable in the ingest log
//! ([`super::log`]); the transaction that indexes them also records how far
//! into the log it got, so a crash replays exactly what is missing.
//!
//! Why `synchronous=NORMAL` is as durable as `FULL` for what we acknowledge:
//! fsync on Linux flushes the file's (the inode's) dirty pages whichever
//! descriptor asks, and WAL mode with NORMAL never lets a checkpoint copy
//! frames into the database or restart the WAL before syncing the WAL
//! itself. A crash can lose only commits whose loss is redone: nobody was
//! told about them, or they are rebuilt from the ingest log and re-evaluated
//! with the same action ids.
//!
//! After a failed write the connection is dropped and reopened on the next
//! job, so the service recovers when the disk does, without a restart.
//! Logged events whose indexing failed are kept and retried: they were
//! acknowledged and must not be lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::dedup::DedupIndex;
use super::log::{Health, LogPos, LoggedBatch};
use super::priority::Background;
use super::{Job, Quarantined, StoreError};
use crate::domain::{DedupDigest, EventVerdict, now_millis};

/// Migrations in order; `PRAGMA user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_journal.sql"),
    include_str!("migrations/0002_outbox.sql"),
    include_str!("migrations/0003_delivery.sql"),
    include_str!("migrations/0004_threads.sql"),
    include_str!("migrations/0005_evaluations.sql"),
    include_str!("migrations/0006_actions_by_event.sql"),
];
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;
/// Upper bound on events per group commit, so one transaction stays short.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;
/// How often the WAL is folded back into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);
/// After indexing a group of nothing but logged events while they arrive
/// faster than [`LINGER_FROM_PER_SEC`], the writer waits up to this long
/// before the next group, so the index commits a hundred events or more at
/// once rather than a handful. The events are already durable in the log,
/// so only the evaluation loop sees this delay; light traffic is indexed at
/// once, and a delivery claim or completion ends the wait. 5 ms gives the
/// same ingress throughput as 20 ms with a lower p99 (BENCHMARKS.md) and
/// routes a burst's events sooner.
const INDEX_LINGER: std::time::Duration = std::time::Duration::from_millis(5);
const LINGER_FROM_PER_SEC: u128 = 2_000;
/// How long acknowledged events whose indexing failed wait before a retry.
const INDEX_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts the SQLite writer. It ends last of the store's threads, so it
/// holds the store's `lock` until it ends.
pub(super) fn spawn_writer(
    path: PathBuf,
    lock: super::lock::StoreLock,
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    health: Arc<Health>,
    durable: Arc<super::Durable>,
    background: Arc<Background>,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let checkpointer = Checkpointer::spawn(path.clone(), &background)?;
    let syncer = Syncer::spawn(wal_path(&path), health.clone(), durable, &background)?;
    background.spawn("switchyard-journal", move || {
        let _lock = lock;
        let mut conn = Some(conn);
        let mut closing = false;
        // Acknowledged events whose indexing failed: retried first.
        let mut retry: Vec<Job> = Vec::new();
        let mut last_group = std::time::Instant::now();
        loop {
            let mut jobs = std::mem::take(&mut retry);
            if jobs.is_empty() {
                match rx.blocking_recv() {
                    Some(Job::Close) | None => break,
                    Some(j) => jobs.push(j),
                }
            } else {
                // Not a synchronisation: a pause before retrying a failing disk.
                std::thread::sleep(INDEX_RETRY);
            }
            let mut events: usize = jobs.iter().map(job_size).sum();
            while events < MAX_EVENTS_PER_COMMIT {
                match rx.try_recv() {
                    Ok(Job::Close) => {
                        closing = true;
                        break;
                    }
                    Ok(j) => {
                        events += job_size(&j);
                        jobs.push(j);
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        // Every handle is gone: finish what is in hand.
                        closing = true;
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                }
            }
            let result = match conn.as_mut() {
                Some(c) => write(c, &jobs),
                None => open(&path)
                    .map(|c| conn.insert(c))
                    .and_then(|c| write(c, &jobs)),
            };
            // Events per second since the previous group started.
            let since = std::mem::replace(&mut last_group, std::time::Instant::now()).elapsed();
            let heavy = events as u128 * 1_000_000 >= LINGER_FROM_PER_SEC * since.as_micros();
            let linger = heavy && jobs.iter().all(|j| matches!(j, Job::Index(..)));
            match result {
                Ok((answers, max_id, indexed)) => {
                    // Answered by the syncer once the WAL is on disk.
                    syncer.hand_over(Committed {
                        jobs: jobs.into_iter().zip(answers).collect(),
                        max_id,
                        indexed,
                    });
                    if linger && !closing {
                        // A batching interval, not a synchronisation; a
                        // delivery or quarantine job unparks the writer
                        // at once (`Store::ask`).
                        std::thread::park_timeout(INDEX_LINGER);
                    }
                }
                Err(e) => {
                    health.index_ok.store(false, Ordering::Release);
                    tracing::error!(error = %e, jobs = jobs.len(), "journal write failed; batch rolled back");
                    // Reopen on the next job: a connection that saw an I/O
                    // error may hold state that no longer matches the disk.
                    conn = None;
                    for job in jobs {
                        match job {
                            Job::Index(..) if !closing => retry.push(job),
                            job => answer_err(job, e.clone()),
                        }
                    }
                }
            }
            if closing {
                break;
            }
        }
        syncer.finish();
        checkpointer.stop();
        // Closing the last connection checkpoints the WAL into the database.
        if let Some(c) = conn.take()
            && let Err((_, e)) = c.close()
        {
            tracing::warn!(error = %e, "closing the journal failed");
        }
    })
}

pub(super) fn wal_path(db: &Path) -> PathBuf {
    super::beside(db, "-wal")
}

/// A committed group waiting for its sync.
struct Committed {
    jobs: Vec<(Job, Answer)>,
    /// The highest event id the group indexed (0 if none).
    max_id: i64,
    /// How far into the ingest log the group indexed, if it indexed any.
    indexed: Option<LogPos>,
}

/// How long index and evaluation commits may go without a WAL sync. Their
/// events are durable in the ingest log already, and a crash can only lose
/// a suffix of the WAL (a lost evaluation is redone from its event), so the
/// sync has to come only before the log segments they cover are retired and
/// before anything is answered that leaves the process (a delivery claim)
/// or promises durability (a quarantine, a completion).
const LAZY_SYNC: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether a job's answer must wait for its commit to be synced.
fn waits_for_sync(job: &Job) -> bool {
    // A prune lost in a crash is simply done again.
    !matches!(job, Job::Index(..) | Job::Evaluated(..) | Job::Prune(..))
}

/// Makes committed groups durable and answers their waiters.
struct Syncer {
    tx: std::sync::mpsc::Sender<Committed>,
    thread: std::thread::JoinHandle<()>,
}

/// What the syncer has answered or published but not yet synced.
#[derive(Default)]
struct Unsynced {
    since: Option<std::time::Instant>,
    indexed: Option<LogPos>,
}

impl Syncer {
    fn spawn(
        wal: PathBuf,
        health: Arc<Health>,
        durable: Arc<super::Durable>,
        background: &Arc<Background>,
    ) -> Result<Syncer, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Committed>();
        let thread = background.spawn("switchyard-fsync", move || {
            let mut unsynced = Unsynced::default();
            loop {
                let first = match unsynced.since {
                    None => match rx.recv() {
                        Ok(g) => Some(g),
                        Err(_) => break,
                    },
                    Some(t) => match rx.recv_timeout(LAZY_SYNC.saturating_sub(t.elapsed())) {
                        Ok(g) => Some(g),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    },
                };
                // Everything committed so far rides on the next sync.
                let mut waiting = Vec::new();
                for g in first.into_iter().chain(rx.try_iter()) {
                    // Indexed events are readable now; they are on disk in the log.
                    durable.advance(g.max_id);
                    unsynced.indexed = unsynced.indexed.max(g.indexed);
                    unsynced.since.get_or_insert_with(std::time::Instant::now);
                    for (job, answer) in g.jobs {
                        if waits_for_sync(&job) {
                            waiting.push((job, answer));
                        } else {
                            answer_ok(job, answer);
                        }
                    }
                }
                let due = unsynced.since.is_some_and(|t| t.elapsed() >= LAZY_SYNC);
                if waiting.is_empty() && !due {
                    continue;
                }
                sync_and_answer(&wal, &health, &mut unsynced, waiting);
            }
            if unsynced.since.is_some() {
                sync_and_answer(&wal, &health, &mut unsynced, Vec::new());
            }
        })?;
        Ok(Syncer { tx, thread })
    }

    fn hand_over(&self, committed: Committed) {
        if let Err(std::sync::mpsc::SendError(committed)) = self.tx.send(committed) {
            for (job, _) in committed.jobs {
                answer_err(job, StoreError::Closed);
            }
        }
    }

    /// Syncs and answers what is still queued, then stops.
    fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

/// Syncs the WAL; on success retires what it covered in the ingest log and
/// answers `waiting`, on failure answers them with the error (and the
/// syncer tries again after [`LAZY_SYNC`]).
fn sync_and_answer(
    wal: &Path,
    health: &Health,
    unsynced: &mut Unsynced,
    waiting: Vec<(Job, Answer)>,
) {
    match sync_file(wal) {
        Ok(()) => {
            health.index_ok.store(true, Ordering::Release);
            if let Some(pos) = unsynced.indexed.take() {
                health
                    .indexed_segment
                    .fetch_max(pos.segment, Ordering::AcqRel);
            }
            unsynced.since = None;
            for (job, answer) in waiting {
                answer_ok(job, answer);
            }
        }
        Err(e) => {
            health.index_ok.store(false, Ordering::Release);
            tracing::error!(error = %e, wal = %wal.display(), "syncing the journal failed");
            unsynced.since = Some(std::time::Instant::now());
            let err = StoreError::Write(format!("syncing the journal failed: {e}"));
            for (job, _) in waiting {
                answer_err(job, err.clone());
            }
        }
    }
}

/// `fdatasync` of the WAL, opened afresh each time so a WAL that SQLite
/// deleted and recreated is never mistaken for the old one.
pub(super) fn sync_file(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(f) => f.sync_data(),
        // No WAL: the last connection closed and checkpointed (with a sync) already.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Rebuilds the dedup index from the journal's unexpired rows, scanning
/// back from the newest event until rows are older than `max_window` (the
/// longest dedup window any source has now).
pub(super) fn load_dedup_index(
    conn: &Connection,
    max_window_ms: i64,
) -> rusqlite::Result<DedupIndex> {
    let mut index = DedupIndex::default();
    let now = now_millis();
    let horizon = now.saturating_sub(max_window_ms);
    let mut st = conn
        .prepare("SELECT source, digest, dedup_until, received_at FROM events ORDER BY id DESC")?;
    let mut rows = st.query([])?;
    let mut sources: Vec<Arc<str>> = Vec::new();
    while let Some(r) = rows.next()? {
        let received_at: i64 = r.get(3)?;
        if received_at < horizon {
            break;
        }
        let until: i64 = r.get(2)?;
        if until <= now {
            continue;
        }
        let source: String = r.get(0)?;
        let digest: Vec<u8> = r.get(1)?;
        let Ok(d) = <[u8; 32]>::try_from(digest.as_slice()) else {
            continue;
        };
        let s = match sources.iter().find(|s| ***s == *source) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<str> = source.into();
                sources.push(s.clone());
                s
            }
        };
        index.insert(&s, &DedupDigest(d), until);
    }
    Ok(index)
}

/// Checkpoints the WAL into the database from its own connection, so the
/// writer seldom pays for a checkpoint inside a commit. Under sustained
/// load the WAL still reaches SQLite's 1 000-page auto-checkpoint between
/// these ticks and the writer checkpoints too; raising that limit only let
/// the WAL grow, with no gain in requests/s (BENCHMARKS.md, seventh look).
struct Checkpointer {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    fn spawn(path: PathBuf, background: &Arc<Background>) -> Result<Checkpointer, StoreError> {
        let conn = open(&path)?;
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        let thread = background.spawn("switchyard-checkpoint", move || {
            // A periodic tick, not a synchronisation: PASSIVE never blocks the writer.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::debug!(error = %e, "checkpoint failed; will retry");
                }
            }
            let _ = conn.close();
        })?;
        Ok(Checkpointer { stop, thread })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn job_size(j: &Job) -> usize {
    match j {
        Job::Index(b, _) => b.iter().map(|b| b.events.len()).sum::<usize>().max(1),
        Job::Evaluated(b, _) => b.evaluated.len().max(1),
        Job::Claim(r, _) => r.limit.max(1),
        Job::Prune(p, _) => p.batch.max(1),
        Job::Quarantine(..) | Job::Complete(..) | Job::ReleaseHeld(_) | Job::Close => 1,
    }
}

/// What a job produced inside the group transaction.
enum Answer {
    Count(usize),
    Claimed(Vec<super::delivery::Claimed>),
    Flag(bool),
    Pruned(super::retention::Pruned),
    Nothing,
}

fn answer_ok(job: Job, answer: Answer) {
    match (job, answer) {
        (Job::Index(..), _) => {}
        (Job::Quarantine(_, tx), _) => {
            let _ = tx.send(Ok(()));
        }
        (Job::Evaluated(_, tx), Answer::Count(n)) | (Job::ReleaseHeld(tx), Answer::Count(n)) => {
            let _ = tx.send(Ok(n));
        }
        (Job::Claim(_, tx), Answer::Claimed(c)) => {
            let _ = tx.send(Ok(c));
        }
        (Job::Complete(_, tx), Answer::Flag(f)) => {
            let _ = tx.send(Ok(f));
        }
        (Job::Prune(_, tx), Answer::Pruned(p)) => {
            let _ = tx.send(Ok(p));
        }
        (job, _) => answer_err(job, StoreError::Write("internal: mismatched answer".into())),
    }
}

fn answer_err(job: Job, e: StoreError) {
    match job {
        Job::Index(..) => {}
        Job::Quarantine(_, tx) => {
            let _ = tx.send(Err(e));
        }
        Job::Evaluated(_, tx) | Job::ReleaseHeld(tx) => {
            let _ = tx.send(Err(e));
        }
        Job::Claim(_, tx) => {
            let _ = tx.send(Err(e));
        }
        Job::Complete(_, tx) => {
            let _ = tx.send(Err(e));
        }
        Job::Prune(_, tx) => {
            let _ = tx.send(Err(e));
        }
        Job::Close => {}
    }
}

/// Opens the database for reading only (operator tools and views), waiting
/// out a writer's brief locks (a checkpoint, a migration) for up to 5 s.
pub(crate) fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    Ok(conn)
}

/// The store at `path` cannot be opened for `reason`, with why its
/// directory cannot be written when that is the cause: SQLite's own
/// message for both is "unable to open database file".
pub(super) fn open_error(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        reason: format!("{reason}{}", why_unwritable(path)),
    }
}

/// Why the directory of the database at `path` cannot be written; empty
/// when it can.
fn why_unwritable(path: &Path) -> &'static str {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // The directory may not exist yet: its nearest existing ancestor decides.
    let Some(existing) = dir.ancestors().find(|d| d.exists()) else {
        return "";
    };
    if rustix::fs::statvfs(existing)
        .is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
    {
        " (the filesystem holding it is mounted read-only)"
    } else if rustix::fs::access(existing, rustix::fs::Access::WRITE_OK).is_err() {
        " (its directory is not writable by this user)"
    } else {
        ""
    }
}

/// Opens the database, applying pragmas and the schema.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let err = |e: &dyn std::fmt::Display| open_error(path, e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
    }
    let conn = Connection::open(path).map_err(|e| err(&e))?;
    // A new database gets 16 KiB pages: an event row is ~1 KiB, and fewer,
    // larger WAL frames cut the index's writes and syscalls (+4 % ingress
    // requests/s, BENCHMARKS.md). An existing database keeps its size.
    conn.pragma_update(None, "page_size", 16384)
        .map_err(|e| err(&e))?;
    // WAL with synchronous=NORMAL: commits are made durable by the syncer
    // thread's fdatasync of the WAL before anyone is told.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| err(&e))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| err(&e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| err(&e))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| err(&e))?;
    if version > SCHEMA_VERSION {
        return Err(err(&format!(
            "schema version {version} is newer than this build understands ({SCHEMA_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        // Each migration and its version bump commit together.
        let tx = conn.unchecked_transaction().map_err(|e| err(&e))?;
        tx.execute_batch(sql).map_err(|e| err(&e))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(|e| err(&e))?;
        tx.commit().map_err(|e| err(&e))?;
    }
    Ok(conn)
}

/// What a committed group wrote: per-job answers, its highest event id
/// and how far into the ingest log it indexed.
type Written = (Vec<Answer>, i64, Option<LogPos>);

const LOG_SEGMENT: &str = "log_segment";
const LOG_OFFSET: &str = "log_offset";

/// How far into the ingest log the journal has indexed.
pub(super) fn log_position(conn: &Connection) -> rusqlite::Result<LogPos> {
    let get = |key: &str| -> rusqlite::Result<i64> {
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    };
    Ok(LogPos {
        segment: get(LOG_SEGMENT)? as u64,
        offset: get(LOG_OFFSET)? as u64,
    })
}

/// Inserts logged events with their ids (a replayed event already indexed
/// is left alone) and records the log position; returns the highest id.
fn index_logged(
    tx: &rusqlite::Transaction<'_>,
    batches: &[LoggedBatch],
    pos: LogPos,
) -> rusqlite::Result<i64> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (id, source, received_at, type, body, digest, dedup_until, state, reason, key_label)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
    )?;
    let mut max_id = 0;
    for b in batches {
        for ev in &b.events {
            // The split parsed these bytes as JSON, so they are UTF-8:
            // bound as text without checking them a second time.
            let text =
                rusqlite::types::ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(&ev.bytes));
            let (ty, state, reason) = match &ev.verdict {
                EventVerdict::Valid { event_type } => (Some(event_type.as_str()), "pending", None),
                EventVerdict::Rejected { reason } => (None, "rejected", Some(reason.as_str())),
            };
            insert.execute(params![
                ev.id,
                &*b.arrival.source,
                b.arrival.received_at,
                ty,
                text,
                &ev.digest[..],
                b.arrival.dedup_until,
                state,
                reason,
                b.arrival.key_label.as_deref()
            ])?;
            max_id = max_id.max(ev.id);
        }
    }
    let mut meta = tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?;
    meta.execute(params![LOG_SEGMENT, pos.segment as i64])?;
    meta.execute(params![LOG_OFFSET, pos.offset as i64])?;
    Ok(max_id)
}

/// Indexes what the ingest log holds beyond the journal's position (after
/// a crash) and makes it durable. Returns the highest id indexed.
pub(super) fn index_replayed(
    conn: &mut Connection,
    path: &Path,
    replayed: &[(Vec<LoggedBatch>, LogPos)],
) -> Result<i64, StoreError> {
    let werr = |e: rusqlite::Error| StoreError::Open {
        path: path.to_owned(),
        reason: format!("replaying the ingest log: {e}"),
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(werr)?;
    let mut max_id = 0;
    for (batches, pos) in replayed {
        max_id = max_id.max(index_logged(&tx, batches, *pos).map_err(werr)?);
    }
    tx.commit().map_err(werr)?;
    sync_file(&wal_path(path)).map_err(|e| StoreError::Open {
        path: path.to_owned(),
        reason: format!("syncing the replayed journal: {e}"),
    })?;
    Ok(max_id)
}

/// Writes every job in one transaction.
fn write(conn: &mut Connection, jobs: &[Job]) -> Result<Written, StoreError> {
    let werr = |e: rusqlite::Error| StoreError::Write(e.to_string());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(werr)?;
    let mut reports = Vec::with_capacity(jobs.len());
    let mut max_id = 0i64;
    let mut indexed = None;
    {
        let now = now_millis();
        let mut quarantine = tx
            .prepare_cached(
                "INSERT INTO quarantine (source, received_at, code, reason, body, digest, key_label)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (source, digest) DO NOTHING",
            )
            .map_err(werr)?;
        for job in jobs {
            match job {
                Job::Index(batches, pos) => {
                    max_id = max_id.max(index_logged(&tx, batches, *pos).map_err(werr)?);
                    indexed = indexed.max(Some(*pos));
                    reports.push(Answer::Nothing);
                }
                Job::Quarantine(q, _) => {
                    write_quarantine(&mut quarantine, q).map_err(werr)?;
                    reports.push(Answer::Nothing);
                }
                Job::Evaluated(b, _) => {
                    let planned = super::outbox::write(&tx, b).map_err(werr)?;
                    reports.push(Answer::Count(planned));
                }
                Job::Claim(r, _) => {
                    reports.push(Answer::Claimed(
                        super::delivery::claim(&tx, r).map_err(werr)?,
                    ));
                }
                Job::Complete(c, _) => {
                    reports.push(Answer::Flag(
                        super::delivery::complete(&tx, c, now).map_err(werr)?,
                    ));
                }
                Job::ReleaseHeld(_) => {
                    reports.push(Answer::Count(
                        super::delivery::release_held(&tx).map_err(werr)?,
                    ));
                }
                Job::Prune(p, _) => {
                    reports.push(Answer::Pruned(
                        super::retention::prune(&tx, p).map_err(werr)?,
                    ));
                }
                Job::Close => reports.push(Answer::Nothing),
            }
        }
    }
    tx.commit().map_err(werr)?;
    Ok((reports, max_id, indexed))
}

fn write_quarantine(
    stmt: &mut rusqlite::CachedStatement<'_>,
    q: &Quarantined,
) -> rusqlite::Result<()> {
    let digest = DedupDigest::of_bytes(&q.body);
    stmt.execute(params![
        &*q.source,
        q.received_at,
        q.code,
        &q.reason,
        &q.body[..],
        &digest.0[..],
        q.key_label.as_deref()
    ])?;
    Ok(())
}
