//! Threads that work behind the request path: the journal's SQLite writer,
//! its syncer and checkpointer, and the evaluation loop.
//!
//! They run under Linux's `SCHED_IDLE` policy: they get the CPU whenever
//! the request path (the Tokio workers and the ingest log) leaves it, and
//! give it back at once when a request needs it. On a small machine this is
//! worth ~10 % of ingress throughput (measured in alternating runs: seven
//! of seven pairs faster), because a webhook sender waiting for its 200 no
//! longer queues behind a long index commit. Under a sustained load that
//! takes every cycle, indexing, evaluation and delivery wait; the bounded
//! channel between the ingest log and the index then slows the ingress
//! until they catch up, so nothing piles up without bound.

use thread_priority::{
    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

/// Spawns a named background thread that lowers its own scheduling
/// priority first (lowering needs no privilege; if it fails anyway the
/// thread runs at normal priority and says so at debug level).
pub fn spawn<F, T>(name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            if let Err(e) = set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Min,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
            ) {
                tracing::debug!(error = ?e, "background thread keeps normal priority");
            }
            f()
        })
}
