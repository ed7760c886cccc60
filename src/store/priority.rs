//! The CPU priority of the journal's background threads: the SQLite index
//! writer, its WAL syncer and its checkpointer.
//!
//! Everything these threads write is already durable in the ingest log, so
//! when a burst saturates the CPU the ingress (the request workers and the
//! log) should have it, and indexing, evaluation commits and checkpoints
//! catch up in larger batches after. So they run `server.indexing_nice`
//! steps below the process while the journal keeps up, and at the
//! process's own priority while it falls behind: more than [`BEHIND_FROM`]
//! events acknowledged and not yet evaluated (routing is late), or more
//! than [`QUEUED_FROM`] jobs waiting for the index writer (its bounded
//! queue is filling, and a full one holds back the ingress itself), until
//! both are low again. Without that return, anything else busy at normal
//! priority beside switchyard would starve the index and, through its
//! queue, the ingress (BENCHMARKS.md measures both cases).
//!
//! The ingest log's thread, which runs at the process's priority and sees
//! every acknowledged event, makes that decision after each group and
//! changes the background threads' nice values itself: a starved thread
//! could not be trusted to notice in time that it is starved.
//!
//! Lowering a priority needs no privilege, but raising it back does:
//! `CAP_SYS_NICE`, or an `RLIMIT_NICE` that reaches the process's nice value
//! (`LimitNICE=+0` in the systemd unit). Without either, the threads stay at
//! the process's priority, and the start says so once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process::{Pid, getpriority_process, setpriority_process};

use super::StoreError;

/// Events acknowledged but not yet evaluated from which the background
/// threads return to the process's priority (~0.4 s of a saturating burst).
pub(super) const BEHIND_FROM: i64 = 16_384;
/// ... and below which they may be lowered again.
pub(super) const CAUGHT_UP_BELOW: i64 = 2_048;
/// Jobs waiting for the index writer from which they return (a quarter of
/// its queue; under light load a job is a group of one or two events)...
pub(super) const QUEUED_FROM: usize = 256;
/// ... and below which they may be lowered again.
pub(super) const QUEUE_DRAINED_BELOW: usize = 32;
/// The lowest priority a nice value can give.
const LOWEST: i32 = 19;

/// The journal's background threads and the priority they run at.
pub(super) struct Background {
    /// The process's nice value (the opening thread's, which they inherit).
    base: i32,
    /// Their nice while the journal keeps up; `base` when lowering is off.
    lowered_to: i32,
    lowered: AtomicBool,
    /// Their thread ids; the lock is held while their priority changes, so
    /// a thread that ends (and frees its id for reuse) is never changed.
    threads: Mutex<Vec<Pid>>,
}

impl Background {
    /// `steps` below the calling thread's priority; 0 turns lowering off.
    pub(super) fn new(steps: i32) -> Background {
        let base = getpriority_process(None).unwrap_or(0);
        let mut lowered_to = (base + steps.max(0)).min(LOWEST);
        if lowered_to != base && !can_return_to(base) {
            tracing::info!(
                "journal indexing runs at the ingress's priority: returning from a lowered one needs CAP_SYS_NICE or LimitNICE=+0"
            );
            lowered_to = base;
        }
        Background {
            base,
            lowered_to,
            // The journal starts caught up: evaluation resumes from its cursor.
            lowered: AtomicBool::new(lowered_to != base),
            threads: Mutex::new(Vec::new()),
        }
    }

    /// Starts a background thread and returns once it runs at the
    /// priority of the others.
    pub(super) fn spawn(
        self: &std::sync::Arc<Self>,
        name: &str,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<std::thread::JoinHandle<()>, StoreError> {
        let (ready, joined) = std::sync::mpsc::sync_channel::<()>(1);
        let this = self.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _member = Member::join(&this);
                let _ = ready.send(());
                body();
            })
            .map_err(|e| StoreError::Open {
                path: std::path::PathBuf::from("<thread>"),
                reason: e.to_string(),
            })?;
        // Ends when the thread has joined (or died trying).
        let _ = joined.recv();
        Ok(thread)
    }

    /// Lowers or restores every background thread after the backlog:
    /// `behind` events acknowledged and not evaluated, `queued` jobs
    /// waiting for the index writer. Cheap unless it changes something:
    /// called by the log thread after every group.
    pub(super) fn follow(&self, behind: i64, queued: usize) {
        if self.lowered_to == self.base {
            return;
        }
        let lowered = self.lowered.load(Ordering::Relaxed);
        let want_low = if lowered {
            behind <= BEHIND_FROM && queued <= QUEUED_FROM
        } else {
            behind < CAUGHT_UP_BELOW && queued < QUEUE_DRAINED_BELOW
        };
        if want_low == lowered {
            return;
        }
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        self.lowered.store(want_low, Ordering::Relaxed);
        let to = self.nice();
        for &tid in threads.iter() {
            if let Err(e) = setpriority_process(Some(tid), to) {
                tracing::warn!(error = %e, to, "changing a journal thread's priority failed");
            }
        }
    }

    /// Whether the background threads run lowered now.
    pub(super) fn is_lowered(&self) -> bool {
        self.lowered.load(Ordering::Relaxed)
    }

    /// The nice value the background threads should have now.
    fn nice(&self) -> i32 {
        if self.lowered.load(Ordering::Relaxed) {
            self.lowered_to
        } else {
            self.base
        }
    }
}

/// A running background thread's membership, which ends with the thread.
struct Member<'a> {
    of: &'a Background,
    tid: Pid,
}

impl<'a> Member<'a> {
    /// Registers the calling thread and gives it the others' priority.
    fn join(of: &'a Background) -> Member<'a> {
        let tid = rustix::thread::gettid();
        let mut threads = of.threads.lock().unwrap_or_else(|e| e.into_inner());
        if of.nice() != of.base {
            // Lowering oneself needs no privilege; a failure leaves it as it was.
            let _ = setpriority_process(Some(tid), of.nice());
        }
        threads.push(tid);
        Member { of, tid }
    }
}

impl Drop for Member<'_> {
    fn drop(&mut self) {
        let mut threads = self.of.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.retain(|&t| t != self.tid);
    }
}

/// Whether a thread of this process may set its nice value back to `base`
/// once it has raised it: with `CAP_SYS_NICE`, or an `RLIMIT_NICE` of
/// `20 - base` or more (how the kernel's `can_nice` decides).
fn can_return_to(base: i32) -> bool {
    let privileged = rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective
            .contains(rustix::thread::CapabilitySet::SYS_NICE)
    });
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nice).current;
    privileged || limit.is_none_or(|l| 20 - i64::try_from(l).unwrap_or(i64::MAX) <= i64::from(base))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn nice_of(tid: Pid) -> i32 {
        getpriority_process(Some(tid)).unwrap()
    }

    /// A background thread that reports its id and waits until released.
    fn member(
        bg: &Arc<Background>,
    ) -> (
        Pid,
        std::sync::mpsc::Sender<()>,
        std::thread::JoinHandle<()>,
    ) {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let thread = bg
            .spawn("test-background", move || {
                tid_tx.send(rustix::thread::gettid()).unwrap();
                let _ = released.recv();
            })
            .unwrap();
        (tid_rx.recv().unwrap(), release, thread)
    }

    #[test]
    fn background_threads_are_lowered_while_the_journal_keeps_up_and_restored_while_it_falls_behind()
     {
        let bg = Arc::new(Background::new(4));
        let base = bg.base;
        let (tid, release, thread) = member(&bg);
        if bg.lowered_to == base {
            // No way back here (unprivileged, no RLIMIT_NICE): never lowered.
            assert_eq!(nice_of(tid), base);
            drop(release);
            thread.join().unwrap();
            return;
        }
        let low = (base + 4).min(LOWEST);
        assert_eq!(nice_of(tid), low);
        // Just at the thresholds: still lowered.
        bg.follow(BEHIND_FROM, QUEUED_FROM);
        assert_eq!(nice_of(tid), low);
        // Routing late: restored.
        bg.follow(BEHIND_FROM + 1, 0);
        assert_eq!(nice_of(tid), base);
        // Evaluation catches up, but not far enough yet: stays up.
        bg.follow(CAUGHT_UP_BELOW, 0);
        assert_eq!(nice_of(tid), base);
        // A thread that starts now starts at the others' priority.
        let (late, late_release, late_thread) = member(&bg);
        assert_eq!(nice_of(late), base);
        // Caught up, but the queue has not drained yet: stays up.
        bg.follow(CAUGHT_UP_BELOW - 1, QUEUE_DRAINED_BELOW);
        assert_eq!(nice_of(tid), base);
        bg.follow(CAUGHT_UP_BELOW - 1, QUEUE_DRAINED_BELOW - 1);
        assert_eq!((nice_of(tid), nice_of(late)), (low, low));
        // The index's queue filling: restored, however little is behind.
        bg.follow(0, QUEUED_FROM + 1);
        assert_eq!((nice_of(tid), nice_of(late)), (base, base));
        bg.follow(0, 0);
        assert_eq!((nice_of(tid), nice_of(late)), (low, low));
        // An ended thread is forgotten: its id is not touched again.
        drop(late_release);
        late_thread.join().unwrap();
        assert_eq!(bg.threads.lock().unwrap().as_slice(), &[tid]);
        drop(release);
        thread.join().unwrap();
        assert!(bg.threads.lock().unwrap().is_empty());
    }

    #[test]
    fn zero_steps_leave_the_threads_alone() {
        let bg = Arc::new(Background::new(0));
        let (tid, release, thread) = member(&bg);
        assert_eq!(nice_of(tid), bg.base);
        bg.follow(1 << 20, 1 << 10);
        assert_eq!(nice_of(tid), bg.base);
        drop(release);
        thread.join().unwrap();
    }
}
