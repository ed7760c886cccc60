//! The SQLite journal: WAL mode with `synchronous=FULL`, so a commit is on
//! disk (fsync'd) when it returns. One writer thread owns the connection and
//! performs group commit: it takes every job waiting in the channel (up to a
//! bound), writes them all in one `BEGIN IMMEDIATE` transaction and answers
//! every waiter after the single commit. After a failed write the connection
//! is dropped and reopened on the next job, so the service recovers when the
//! disk does, without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::{Job, Quarantined, StoreError};
use crate::domain::{DedupDigest, EventVerdict, IngestReport, now_millis};

const SCHEMA: &str = include_str!("migrations/0001_journal.sql");
const SCHEMA_VERSION: i64 = 1;
/// Upper bound on events per group commit, so one transaction stays short.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;
/// Expired dedup rows are pruned at most this often.
const PRUNE_EVERY_MS: i64 = 60_000;

pub(super) fn spawn_writer(
    path: PathBuf,
    mut rx: mpsc::Receiver<Job>,
    healthy: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let conn = open(&path)?;
    std::thread::Builder::new()
        .name("switchyard-journal".into())
        .spawn(move || {
            let mut conn = Some(conn);
            let mut last_prune = 0i64;
            let mut closing = false;
            while let Some(first) = rx.blocking_recv() {
                if matches!(first, Job::Close) {
                    break;
                }
                let mut jobs = vec![first];
                let mut events = job_size(&jobs[0]);
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
                        Err(_) => break,
                    }
                }
                let result = match conn.as_mut() {
                    Some(c) => write(c, &jobs),
                    None => open(&path)
                        .map(|c| conn.insert(c))
                        .and_then(|c| write(c, &jobs)),
                };
                match result {
                    Ok(reports) => {
                        healthy.store(true, Ordering::Relaxed);
                        for (job, report) in jobs.into_iter().zip(reports) {
                            answer_ok(job, report);
                        }
                        let now = now_millis();
                        if now - last_prune > PRUNE_EVERY_MS {
                            last_prune = now;
                            if let Some(c) = conn.as_ref()
                                && let Err(e) = c.execute("DELETE FROM dedup WHERE expires_at < ?1", [now])
                            {
                                tracing::warn!(error = %e, "pruning expired dedup keys failed");
                            }
                        }
                    }
                    Err(e) => {
                        healthy.store(false, Ordering::Relaxed);
                        tracing::error!(error = %e, jobs = jobs.len(), "journal write failed; batch rolled back");
                        // Reopen on the next job: a connection that saw an I/O
                        // error may hold state that no longer matches the disk.
                        conn = None;
                        for job in jobs {
                            answer_err(job, e.clone());
                        }
                    }
                }
                if closing {
                    break;
                }
            }
            if let Some(c) = conn.take()
                && let Err((_, e)) = c.close()
            {
                tracing::warn!(error = %e, "closing the journal failed");
            }
        })
        .map_err(|e| StoreError::Open {
            path: PathBuf::from("<thread>"),
            reason: e.to_string(),
        })
}

fn job_size(j: &Job) -> usize {
    match j {
        Job::Ingest(b, _) => b.events.len().max(1),
        Job::Quarantine(..) | Job::Close => 1,
    }
}

fn answer_ok(job: Job, report: Option<IngestReport>) {
    match job {
        Job::Ingest(_, tx) => {
            let _ = tx.send(Ok(report.unwrap_or_default()));
        }
        Job::Quarantine(_, tx) => {
            let _ = tx.send(Ok(()));
        }
        Job::Close => {}
    }
}

fn answer_err(job: Job, e: StoreError) {
    match job {
        Job::Ingest(_, tx) => {
            let _ = tx.send(Err(e));
        }
        Job::Quarantine(_, tx) => {
            let _ = tx.send(Err(e));
        }
        Job::Close => {}
    }
}

/// Opens the database, applying pragmas and the schema.
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let err = |e: &dyn std::fmt::Display| StoreError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
    }
    let conn = Connection::open(path).map_err(|e| err(&e))?;
    // WAL + FULL: a commit returns only after the WAL is fsync'd.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| err(&e))?;
    conn.pragma_update(None, "synchronous", "FULL")
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
    if version < SCHEMA_VERSION {
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| err(&e))?;
    }
    Ok(conn)
}

/// Writes every job in one transaction. `None` reports are for quarantine jobs.
fn write(conn: &mut Connection, jobs: &[Job]) -> Result<Vec<Option<IngestReport>>, StoreError> {
    let werr = |e: rusqlite::Error| StoreError::Write(e.to_string());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(werr)?;
    let mut reports = Vec::with_capacity(jobs.len());
    {
        let now = now_millis();
        let mut dedup = tx
            .prepare_cached(
                "INSERT INTO dedup (source, digest, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (source, digest) DO UPDATE SET expires_at = excluded.expires_at
                 WHERE dedup.expires_at < ?4",
            )
            .map_err(werr)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (source, received_at, type, body, digest, state, reason, key_label)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(werr)?;
        let mut quarantine = tx
            .prepare_cached(
                "INSERT INTO quarantine (source, received_at, code, reason, body, digest, key_label)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (source, digest) DO NOTHING",
            )
            .map_err(werr)?;
        for job in jobs {
            match job {
                Job::Ingest(b, _) => {
                    let mut report = IngestReport::default();
                    for ev in &b.events {
                        let fresh = dedup
                            .execute(params![&*b.source, &ev.digest.0[..], b.dedup_until, now])
                            .map_err(werr)?
                            == 1;
                        if !fresh {
                            report.duplicates += 1;
                            continue;
                        }
                        let text = std::str::from_utf8(&b.body[ev.range.clone()])
                            .map_err(|_| StoreError::Write("event bytes are not UTF-8".into()))?;
                        let (ty, state, reason) = match &ev.verdict {
                            EventVerdict::Valid { event_type } => {
                                (Some(event_type.as_str()), "pending", None)
                            }
                            EventVerdict::Rejected { reason } => {
                                (None, "rejected", Some(reason.as_str()))
                            }
                        };
                        insert
                            .execute(params![
                                &*b.source,
                                b.received_at,
                                ty,
                                text,
                                &ev.digest.0[..],
                                state,
                                reason,
                                b.key_label.as_deref()
                            ])
                            .map_err(werr)?;
                        match ev.verdict {
                            EventVerdict::Valid { .. } => report.accepted += 1,
                            EventVerdict::Rejected { .. } => report.rejected += 1,
                        }
                    }
                    reports.push(Some(report));
                }
                Job::Quarantine(q, _) => {
                    write_quarantine(&mut quarantine, q).map_err(werr)?;
                    reports.push(None);
                }
                Job::Close => reports.push(None),
            }
        }
    }
    tx.commit().map_err(werr)?;
    Ok(reports)
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
