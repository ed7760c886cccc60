//! Shared nouns of the event path: who sent it, what it is, how it was
//! verified and what the journal made of it. No I/O lives here.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

/// The configured name of a source (`sources.<name>` in config.yaml).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceName(pub Arc<str>);

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The label of the signing key that authenticated a request
/// (`current`, `previous`, ...), so operators can see when an old key may go.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyLabel(pub Arc<str>);

impl fmt::Display for KeyLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 digest used for per-event de-duplication.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DedupDigest(pub [u8; 32]);

impl DedupDigest {
    /// Digest of arbitrary parts, each length-prefixed so that
    /// `("ab","c")` and `("a","bc")` never collide.
    pub fn of_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        Self(h.finalize().into())
    }

    /// Digest of one event's exact bytes (the default dedup key).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

impl fmt::Debug for DedupDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DedupDigest({})", hex::encode(&self.0[..8]))
    }
}

/// What the ingress decided about one element of a batch before journaling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventVerdict {
    /// An object with a string `type`: it will be routed by its type.
    Valid { event_type: String },
    /// Authentic but unusable; kept for inspection with the reason.
    Rejected { reason: String },
}

/// One element of a batch: where its exact bytes sit in the request body,
/// what the ingress made of it, and its dedup digest. The ingress produces
/// these and the journal stores them as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitEvent {
    pub range: std::ops::Range<usize>,
    pub verdict: EventVerdict,
    pub digest: DedupDigest,
}

/// Counts the ingress answers with once a batch is durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IngestReport {
    pub accepted: u32,
    pub duplicates: u32,
    pub rejected: u32,
}

/// Milliseconds since the Unix epoch, the journal's time unit.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch of an RFC 3339 time such as
/// `2026-03-01T12:00:00Z` (a trailing `Z` or none means UTC; an offset is
/// applied). `None` when the text is not such a time.
pub fn parse_time_ms(ts: &str) -> Option<i64> {
    let ts = ts.trim();
    humantime::parse_rfc3339_weak(ts.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(ts))
        .ok()
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
}
