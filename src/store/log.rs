//! The ingest log: where an authentic event becomes durable before the
//! ingress answers 200.
//!
//! One thread owns the log. It takes every ingest waiting in its channel
//! (whatever queued while its last write ran), checks each event against
//! the dedup index, gives the new ones their journal ids, and writes the
//! whole group as records with one durable write into a preallocated,
//! zero-filled segment file ([`super::segment`]: direct and synchronous
//! where the filesystem allows it, else `pwrite` and `fdatasync`).
//! Overwriting blocks that already exist needs no filesystem metadata, so
//! that write is a fraction of an appending one. Then it answers
//! every waiter and hands the group to the SQLite writer, which indexes it
//! into `events` (in larger transactions, off the request path) and
//! publishes the ids for the evaluation loop.
//!
//! A record is `magic, segment number, payload length, crc32, payload`; a
//! recycled segment's stale records carry an older number, so a scan stops at
//! the first record that is torn, stale or zero. SQLite stores, in the same
//! transaction as the events, how far into the log it has indexed; at start
//! the log is replayed into SQLite from there, so a crash between the 200
//! and the index loses nothing. Segments wholly behind that point are reused
//! or deleted.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::dedup::{DedupIndex, Pending};
use super::priority::Background;
use super::segment::{Segment, WriteMode};
use super::{Arrival, IngestBatch, StoreError};
use crate::domain::{EventVerdict, IngestReport, now_millis};

const MAGIC: u32 = 0x5359_4c31;
const HEADER: usize = 4 + 8 + 4 + 4;
/// Size of a segment file, preallocated and zero-filled.
pub(super) const SEGMENT_SIZE: u64 = 16 << 20;
/// Upper bound on the request bytes one group writes.
const MAX_GROUP_BYTES: usize = 8 << 20;
/// Expired dedup keys are forgotten at most this often.
const PRUNE_EVERY_MS: i64 = 60_000;

/// A place in the log: everything before it has been indexed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogPos {
    pub segment: u64,
    pub offset: u64,
}

/// One request's new events, with their journal ids.
#[derive(Debug, Clone)]
pub struct LoggedBatch {
    pub arrival: Arrival,
    pub events: Vec<LoggedEvent>,
}

#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub id: i64,
    pub digest: [u8; 32],
    pub verdict: EventVerdict,
    /// The event's exact bytes.
    pub bytes: Bytes,
}

/// What the store's threads share about its health and progress.
#[derive(Default)]
pub struct Health {
    /// The last log write and sync succeeded.
    pub log_ok: AtomicBool,
    /// The last SQLite commit and sync succeeded.
    pub index_ok: AtomicBool,
    /// Every segment numbered below this is indexed and synced in SQLite.
    pub indexed_segment: AtomicU64,
    /// The highest id the log has made durable.
    pub logged: AtomicI64,
    /// The evaluation loop's cursor: every id up to it is evaluated.
    pub evaluated: AtomicI64,
}

impl Health {
    pub fn new() -> Health {
        Health {
            log_ok: AtomicBool::new(true),
            index_ok: AtomicBool::new(true),
            ..Health::default()
        }
    }
}

pub(super) enum LogJob {
    Ingest(
        IngestBatch,
        oneshot::Sender<Result<IngestReport, StoreError>>,
    ),
    Close,
}

/// The log's directory beside the database: `<db>-log/`.
pub(super) fn dir_for(db: &Path) -> PathBuf {
    super::beside(db, "-log")
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.seg"))
}

/// Segment numbers present in `dir`, ascending.
fn segments_in(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_suffix(".seg"))
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

// ---- records ----

fn put_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
        None => buf.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

/// Appends `batch` as one record of segment `segment` to `buf`.
fn encode(buf: &mut Vec<u8>, segment: u64, batch: &LoggedBatch) {
    let start = buf.len();
    buf.extend_from_slice(&MAGIC.to_le_bytes());
    buf.extend_from_slice(&segment.to_le_bytes());
    buf.extend_from_slice(&[0; 8]); // length and crc, filled below
    let a = &batch.arrival;
    put_str(buf, Some(&a.source));
    put_str(buf, a.key_label.as_deref());
    buf.extend_from_slice(&a.received_at.to_le_bytes());
    buf.extend_from_slice(&a.dedup_until.to_le_bytes());
    buf.extend_from_slice(&(batch.events.len() as u32).to_le_bytes());
    for ev in &batch.events {
        buf.extend_from_slice(&ev.id.to_le_bytes());
        buf.extend_from_slice(&ev.digest);
        match &ev.verdict {
            EventVerdict::Valid { event_type } => {
                buf.push(0);
                put_str(buf, Some(event_type));
            }
            EventVerdict::Rejected { reason } => {
                buf.push(1);
                put_str(buf, Some(reason));
            }
        }
        buf.extend_from_slice(&(ev.bytes.len() as u32).to_le_bytes());
        buf.extend_from_slice(&ev.bytes);
    }
    let len = (buf.len() - start - HEADER) as u32;
    buf[start + 12..start + 16].copy_from_slice(&len.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&buf[start..start + 16]);
    crc.update(&buf[start + HEADER..]);
    let crc = crc.finalize();
    buf[start + 16..start + 20].copy_from_slice(&crc.to_le_bytes());
}

/// Reads little-endian fields off a record payload.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<Option<String>> {
        let n = self.u32()?;
        if n == u32::MAX {
            return Some(None);
        }
        let b = self.take(n as usize)?;
        Some(Some(String::from_utf8(b.to_vec()).ok()?))
    }
}

fn decode(payload: &[u8]) -> Option<LoggedBatch> {
    let mut c = Cursor(payload);
    let source: Arc<str> = c.string()??.into();
    let key_label = c.string()?.map(Arc::from);
    let received_at = c.i64()?;
    let dedup_until = c.i64()?;
    let n = c.u32()?;
    let mut events = Vec::with_capacity(n.min(100_000) as usize);
    for _ in 0..n {
        let id = c.i64()?;
        let digest: [u8; 32] = c.take(32)?.try_into().ok()?;
        let kind = c.take(1)?[0];
        let text = c.string()??;
        let verdict = match kind {
            0 => EventVerdict::Valid { event_type: text },
            1 => EventVerdict::Rejected { reason: text },
            _ => return None,
        };
        let len = c.u32()? as usize;
        let bytes = Bytes::copy_from_slice(c.take(len)?);
        events.push(LoggedEvent {
            id,
            digest,
            verdict,
            bytes,
        });
    }
    Some(LoggedBatch {
        arrival: Arrival {
            source,
            key_label,
            received_at,
            dedup_until,
        },
        events,
    })
}

/// The whole records of segment `n` from `offset` on, and where they end.
/// Reads record by record, so a replay holds one record in memory rather
/// than the segment, and stops at the first torn, stale or zero one.
fn scan(dir: &Path, n: u64, offset: u64) -> std::io::Result<(Vec<LoggedBatch>, u64)> {
    let file = File::open(segment_path(dir, n))?;
    let size = file.metadata()?.len();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    reader.seek(std::io::SeekFrom::Start(offset))?;
    let mut at = offset;
    let mut out = Vec::new();
    let mut payload = Vec::new();
    let mut h = [0u8; HEADER];
    while at + HEADER as u64 <= size {
        reader.read_exact(&mut h)?;
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap_or_default());
        let magic = u32_at(0);
        let seg = u64::from_le_bytes(h[4..12].try_into().unwrap_or_default());
        let len = u64::from(u32_at(12));
        let crc = u32_at(16);
        if magic != MAGIC || seg != n || at + HEADER as u64 + len > size {
            break;
        }
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&h[0..16]);
        hasher.update(&payload);
        if hasher.finalize() != crc {
            break;
        }
        let Some(batch) = decode(&payload) else { break };
        out.push(batch);
        at += HEADER as u64 + len;
    }
    Ok((out, at))
}

/// Every record at or after `from`, segment by segment, with the position
/// after the last one. Used at start, before anything is written.
pub(super) fn replay(dir: &Path, from: LogPos) -> std::io::Result<Vec<(Vec<LoggedBatch>, LogPos)>> {
    std::fs::create_dir_all(dir)?;
    read_from(dir, from)
}

/// The logged event `id` at or after `from`, with its request's arrival;
/// reads only, so it is safe while a server writes the log.
pub(super) fn find(
    dir: &Path,
    from: LogPos,
    id: i64,
) -> std::io::Result<Option<(Arrival, LoggedEvent)>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    Ok(read_from(dir, from)?
        .into_iter()
        .flat_map(|(batches, _)| batches)
        .find_map(|b| {
            let ev = b.events.into_iter().find(|e| e.id == id)?;
            Some((b.arrival, ev))
        }))
}

fn read_from(dir: &Path, from: LogPos) -> std::io::Result<Vec<(Vec<LoggedBatch>, LogPos)>> {
    let mut out = Vec::new();
    for n in segments_in(dir)? {
        if n < from.segment {
            continue;
        }
        let start = if n == from.segment { from.offset } else { 0 };
        let (batches, end) = scan(dir, n, start)?;
        out.push((
            batches,
            LogPos {
                segment: n,
                offset: end,
            },
        ));
    }
    Ok(out)
}

// ---- the writer ----

struct Log {
    dir: PathBuf,
    current: Option<Segment>,
    next_number: u64,
    health: Arc<Health>,
    mode: WriteMode,
}

impl Log {
    /// A fresh, zero-filled segment of at least `min` bytes: a wholly
    /// indexed old segment renamed (its stale records carry an older
    /// number), or a new file.
    fn open_segment(&mut self, min: u64) -> std::io::Result<Segment> {
        let number = self.next_number;
        let path = segment_path(&self.dir, number);
        let indexed = self.health.indexed_segment.load(Ordering::Acquire);
        let current = self.current.as_ref().map(|s| s.number);
        let retired: Vec<u64> = segments_in(&self.dir)?
            .into_iter()
            .filter(|&n| n < indexed && Some(n) != current)
            .collect();
        let mut reused = false;
        if let Some((&first, rest)) = retired.split_first() {
            let old = segment_path(&self.dir, first);
            if std::fs::metadata(&old)?.len() >= min {
                std::fs::rename(&old, &path)?;
                reused = true;
            }
            // Keep one spare for the next roll; the rest is garbage.
            for &n in rest.iter().skip(1) {
                std::fs::remove_file(segment_path(&self.dir, n))?;
            }
        }
        let size = min.max(SEGMENT_SIZE).next_multiple_of(1 << 20);
        if !reused {
            let mut f = File::create(&path)?;
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..size >> 20 {
                f.write_all(&zeros)?;
            }
            f.sync_all()?;
        }
        // The name must be durable before records in the file are acknowledged.
        sync_dir(&self.dir)?;
        let seg = Segment::open(&path, number, self.mode)?;
        if !seg.is_direct() && self.mode == WriteMode::DirectIfPossible {
            // Asked once: the next segments live on the same filesystem.
            self.mode = WriteMode::Buffered;
            tracing::info!(dir = %self.dir.display(), "direct I/O refused; the ingest log uses buffered writes and fdatasync");
        }
        self.next_number += 1;
        Ok(seg)
    }

    /// Writes `records` (encoded for segment `number`) durably; returns the
    /// position after them. On error nothing may be acknowledged.
    fn append(&mut self, records: &[u8], number: u64) -> std::io::Result<LogPos> {
        let seg = self
            .current
            .as_mut()
            .filter(|s| s.number == number)
            .ok_or_else(|| std::io::Error::other("internal: records for another segment"))?;
        seg.append(records)?;
        Ok(LogPos {
            segment: seg.number,
            offset: seg.offset,
        })
    }

    /// The segment the next `bytes` of records go to, rolling when the
    /// current one has no room.
    fn room_for(&mut self, bytes: u64) -> std::io::Result<u64> {
        if let Some(s) = &mut self.current {
            if s.offset + bytes <= s.size {
                return Ok(s.number);
            }
            // Records of a failed group must not outlive the segment: a
            // replay would read them. Zero them before moving on.
            s.clean()?;
        }
        let seg = self.open_segment(bytes)?;
        let n = seg.number;
        self.current = Some(seg);
        Ok(n)
    }
}

/// What the log writer starts from.
pub(super) struct Start {
    pub dir: PathBuf,
    pub next_segment: u64,
    pub next_id: i64,
    pub index: DedupIndex,
}

/// Starts the log writer on a thread of its own. Logged groups go to
/// `index_tx` for the SQLite writer. The returned receiver resolves when
/// the thread has written its last group (however it ended): a message,
/// not a blocking join, so a runtime dropped before the log closes is not
/// held by it.
///
/// The thread blocks in each group's durable write; meanwhile the Tokio
/// workers go on serving and queueing the next group, which it takes whole
/// as soon as the write returns. An earlier version ran the log as a Tokio
/// task that held a worker during the write, which left one of two vCPUs
/// to every other request and parked the woken requests behind the next
/// write; the thread measured 5–9 % more requests/s (BENCHMARKS.md, fifth
/// look), and a stalled disk now holds this thread and no worker.
pub(super) fn spawn(
    start: Start,
    mut rx: mpsc::Receiver<LogJob>,
    index_tx: mpsc::Sender<super::Job>,
    health: Arc<Health>,
    background: Arc<Background>,
) -> std::io::Result<oneshot::Receiver<()>> {
    let mut log = Log {
        dir: start.dir,
        current: None,
        next_number: start.next_segment,
        health: health.clone(),
        mode: WriteMode::DirectIfPossible,
    };
    // The first segment is ready before the first request.
    log.room_for(0)?;
    let mut index = start.index;
    let mut next_id = start.next_id;
    let (done_tx, done_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("switchyard-log".into())
        .spawn(move || {
            // Dropped when the thread ends, however it ends: that is the signal.
            let _done = done_tx;
            let mut last_prune = now_millis();
            let mut buf = Vec::with_capacity(1 << 20);
            while let Some(first) = rx.blocking_recv() {
                let mut group = Group::default();
                group.add(first);
                group.take_waiting(&mut rx);
                if !group.jobs.is_empty() {
                    let (next, logged) =
                        write_group(&mut log, &mut index, &mut buf, group.jobs, next_id);
                    next_id = next;
                    if let Some(job) = logged {
                        // Acknowledged events go to the index; a closed index (at
                        // stop) leaves them in the log for the next start's replay.
                        let _ = index_tx.blocking_send(job);
                    }
                }
                // The index's priority follows its backlog (see `priority`).
                background.follow(
                    health.logged.load(Ordering::Relaxed)
                        - health.evaluated.load(Ordering::Relaxed),
                    index_tx.max_capacity() - index_tx.capacity(),
                );
                let now = now_millis();
                if now - last_prune > PRUNE_EVERY_MS {
                    last_prune = now;
                    index.prune(now);
                }
                if group.closing {
                    break;
                }
            }
            // The segment is closed before the signal goes.
            drop(log);
        })?;
    Ok(done_rx)
}

/// A request waiting for the log, and where its answer goes.
type Waiter = (
    IngestBatch,
    oneshot::Sender<Result<IngestReport, StoreError>>,
);

/// The requests one durable write will carry.
#[derive(Default)]
struct Group {
    jobs: Vec<Waiter>,
    bytes: usize,
    /// The log was asked to close: this is its last group.
    closing: bool,
}

impl Group {
    fn add(&mut self, job: LogJob) {
        match job {
            LogJob::Close => self.closing = true,
            LogJob::Ingest(b, tx) => {
                self.bytes += b.body.len();
                self.jobs.push((b, tx));
            }
        }
    }

    /// Whether the group can take more requests.
    fn is_open(&self) -> bool {
        !self.closing && self.bytes < MAX_GROUP_BYTES
    }

    /// Takes what already waits in the channel, while the group is open.
    fn take_waiting(&mut self, rx: &mut mpsc::Receiver<LogJob>) {
        while self.is_open() {
            match rx.try_recv() {
                Ok(job) => self.add(job),
                Err(_) => break,
            }
        }
    }
}

/// Dedups, numbers, writes and syncs one group and answers its waiters.
/// Returns the next free id and the index job for what it logged.
fn write_group(
    log: &mut Log,
    index: &mut DedupIndex,
    buf: &mut Vec<u8>,
    jobs: Vec<Waiter>,
    mut next_id: i64,
) -> (i64, Option<super::Job>) {
    let health = log.health.clone();
    if !health.index_ok.load(Ordering::Acquire) {
        // Refuse rather than pile acknowledged events up behind a failing index.
        for (_, tx) in jobs {
            let _ = tx.send(Err(StoreError::Write(
                "the journal index cannot be written; retrying".into(),
            )));
        }
        return (next_id, None);
    }
    let first_id = next_id;
    let now = now_millis();
    let mut claimed = Pending::default();
    let mut groups = Vec::with_capacity(jobs.len());
    let mut answers = Vec::with_capacity(jobs.len());
    let mut size = 0u64;
    for (b, tx) in jobs {
        let mut report = IngestReport::default();
        let mut events = Vec::with_capacity(b.events.len());
        for ev in b.events {
            if index.check_and_claim(
                &mut claimed,
                &b.arrival.source,
                &ev.digest,
                now,
                b.arrival.dedup_until,
            ) {
                report.duplicates += 1;
                continue;
            }
            match ev.verdict {
                EventVerdict::Valid { .. } => report.accepted += 1,
                EventVerdict::Rejected { .. } => report.rejected += 1,
            }
            let text = match &ev.verdict {
                EventVerdict::Valid { event_type } => event_type.len(),
                EventVerdict::Rejected { reason } => reason.len(),
            };
            size += (ev.range.len() + text + 64) as u64;
            events.push(LoggedEvent {
                id: next_id,
                digest: ev.digest.0,
                verdict: ev.verdict,
                bytes: b.body.slice(ev.range),
            });
            next_id += 1;
        }
        answers.push((tx, report));
        if !events.is_empty() {
            groups.push(LoggedBatch {
                arrival: b.arrival,
                events,
            });
        }
    }
    let written = if groups.is_empty() {
        Ok(None)
    } else {
        // An upper bound first, to pick the segment; then the exact bytes.
        let labels: usize = groups
            .iter()
            .map(|g| g.arrival.source.len() + g.arrival.key_label.as_deref().map_or(0, str::len))
            .sum();
        log.room_for(size + (groups.len() * (HEADER + 64) + labels) as u64)
            .and_then(|number| {
                buf.clear();
                for g in &groups {
                    encode(buf, number, g);
                }
                log.append(buf, number)
            })
            .map(Some)
    };
    match written {
        Ok(pos) => {
            health.log_ok.store(true, Ordering::Release);
            index.commit(claimed);
            let job = pos.map(|pos| {
                health.logged.store(next_id - 1, Ordering::Release);
                super::Job::Index(groups, pos)
            });
            for (tx, report) in answers {
                let _ = tx.send(Ok(report));
            }
            (next_id, job)
        }
        Err(e) => {
            health.log_ok.store(false, Ordering::Release);
            tracing::error!(error = %e, "writing the ingest log failed; group refused");
            let err = StoreError::Write(format!("writing the ingest log failed: {e}"));
            for (tx, _) in answers {
                let _ = tx.send(Err(err.clone()));
            }
            (first_id, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival() -> Arrival {
        Arrival {
            source: "screenmeet".into(),
            key_label: Some("current".into()),
            received_at: 7,
            dedup_until: 9,
        }
    }

    fn batch(ids: &[i64]) -> LoggedBatch {
        LoggedBatch {
            arrival: arrival(),
            events: ids
                .iter()
                .map(|&id| LoggedEvent {
                    id,
                    digest: [id as u8; 32],
                    verdict: if id % 2 == 0 {
                        EventVerdict::Valid {
                            event_type: "session.closed".into(),
                        }
                    } else {
                        EventVerdict::Rejected {
                            reason: "no type".into(),
                        }
                    },
                    bytes: Bytes::from(format!(r#"{{"n":{id}}}"#)),
                })
                .collect(),
        }
    }

    fn ids(batches: &[LoggedBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.events.iter().map(|e| e.id))
            .collect()
    }

    #[test]
    fn records_round_trip_and_a_scan_stops_at_torn_or_stale_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        encode(&mut buf, 3, &batch(&[1, 2]));
        encode(&mut buf, 3, &batch(&[3]));
        let whole = buf.len();
        encode(&mut buf, 3, &batch(&[4]));
        // The last record torn in half, then a stale record of segment 2.
        buf.truncate(whole + (buf.len() - whole) / 2);
        encode(&mut buf, 2, &batch(&[5]));
        buf.resize(buf.len() + 4096, 0);
        std::fs::write(segment_path(dir.path(), 3), &buf).unwrap();

        let (batches, end) = scan(dir.path(), 3, 0).unwrap();
        assert_eq!(ids(&batches), vec![1, 2, 3]);
        assert_eq!(end, whole as u64);
        let b = &batches[0];
        assert_eq!(
            (&*b.arrival.source, b.arrival.key_label.as_deref()),
            ("screenmeet", Some("current"))
        );
        assert_eq!((b.arrival.received_at, b.arrival.dedup_until), (7, 9));
        assert_eq!(&b.events[1].bytes[..], br#"{"n":2}"#);
        assert!(
            matches!(&b.events[0].verdict, EventVerdict::Rejected { reason } if reason == "no type")
        );

        // A flipped bit in a payload ends the scan there.
        let mut bad = buf.clone();
        bad[HEADER + 3] ^= 1;
        std::fs::write(segment_path(dir.path(), 3), &bad).unwrap();
        assert!(scan(dir.path(), 3, 0).unwrap().0.is_empty());
    }

    #[test]
    fn replay_starts_at_the_indexed_position_and_crosses_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Vec::new();
        encode(&mut a, 1, &batch(&[1]));
        let after_first = a.len() as u64;
        encode(&mut a, 1, &batch(&[2]));
        std::fs::write(segment_path(dir.path(), 1), &a).unwrap();
        let mut b = Vec::new();
        encode(&mut b, 2, &batch(&[3, 4]));
        std::fs::write(segment_path(dir.path(), 2), &b).unwrap();

        let got = replay(
            dir.path(),
            LogPos {
                segment: 1,
                offset: after_first,
            },
        )
        .unwrap();
        let all: Vec<i64> = got.iter().flat_map(|(b, _)| ids(b)).collect();
        assert_eq!(all, vec![2, 3, 4]);
        assert_eq!(
            got.last().unwrap().1,
            LogPos {
                segment: 2,
                offset: b.len() as u64
            }
        );
    }

    /// An ingest of `body_len` bytes (no events: the group only carries it).
    fn ingest(body_len: usize) -> LogJob {
        let batch = IngestBatch {
            arrival: arrival(),
            body: Bytes::from(vec![b'x'; body_len]),
            events: Vec::new(),
        };
        LogJob::Ingest(batch, oneshot::channel().0)
    }

    #[test]
    fn a_group_takes_what_waits_until_a_close_or_the_byte_cap() {
        let (tx, mut rx) = mpsc::channel(16);
        for job in [ingest(10), ingest(10), LogJob::Close, ingest(10)] {
            tx.try_send(job).unwrap();
        }
        let mut group = Group::default();
        group.add(ingest(10));
        group.take_waiting(&mut rx);
        assert_eq!(group.jobs.len(), 3);
        assert!(group.closing);
        assert!(
            rx.try_recv().is_ok(),
            "the request after the close stays queued"
        );

        let half = MAX_GROUP_BYTES / 2 + 1;
        for _ in 0..3 {
            tx.try_send(ingest(half)).unwrap();
        }
        let mut group = Group::default();
        group.take_waiting(&mut rx);
        assert_eq!(group.jobs.len(), 2, "the group closes at the byte cap");
        assert!(!group.closing);
        assert!(rx.try_recv().is_ok(), "the third waits for the next group");
    }
}
