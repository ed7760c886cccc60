//! The de-duplication index: which (source, digest) pairs were journaled and
//! until when they count as duplicates. It lives in memory, rebuilt at start
//! from the journal's `dedup_until` column, because probing an on-disk index
//! keyed by random digests dirties one random B-tree page per event and made
//! every commit several times larger than the events it stores.
//!
//! Keys are the first 128 bits of the SHA-256 digest (a collision needs
//! ~2^64 events), so an entry costs about 32 bytes.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::DedupDigest;

/// Live dedup keys per source.
#[derive(Default)]
pub struct DedupIndex {
    by_source: HashMap<Arc<str>, HashMap<u128, i64>>,
}

/// Keys claimed by a transaction that has not committed yet.
#[derive(Default)]
pub struct Pending {
    keys: Vec<(Arc<str>, u128, i64)>,
    seen: HashMap<(Arc<str>, u128), ()>,
}

fn key(d: &DedupDigest) -> u128 {
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.0[..16]);
    u128::from_le_bytes(b)
}

impl DedupIndex {
    /// Records a journaled digest (used when loading at start).
    pub fn insert(&mut self, source: &Arc<str>, d: &DedupDigest, until: i64) {
        let m = self.by_source.entry(source.clone()).or_default();
        let e = m.entry(key(d)).or_insert(until);
        *e = (*e).max(until);
    }

    /// True if `d` is a duplicate at `now`, counting keys claimed by `pending`;
    /// otherwise claims it in `pending` until `until`.
    pub fn check_and_claim(
        &self,
        pending: &mut Pending,
        source: &Arc<str>,
        d: &DedupDigest,
        now: i64,
        until: i64,
    ) -> bool {
        let k = key(d);
        let live = self
            .by_source
            .get(source)
            .and_then(|m| m.get(&k))
            .is_some_and(|&u| u > now);
        if live || pending.seen.contains_key(&(source.clone(), k)) {
            return true;
        }
        pending.seen.insert((source.clone(), k), ());
        pending.keys.push((source.clone(), k, until));
        false
    }

    /// Makes a committed transaction's claims visible.
    pub fn commit(&mut self, pending: Pending) {
        for (s, k, until) in pending.keys {
            self.by_source.entry(s).or_default().insert(k, until);
        }
    }

    /// Forgets keys that expired before `now`.
    pub fn prune(&mut self, now: i64) {
        for m in self.by_source.values_mut() {
            m.retain(|_, &mut until| until > now);
        }
    }

    pub fn len(&self) -> usize {
        self.by_source.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_duplicates_within_a_transaction_and_after_commit_only() {
        let s: Arc<str> = "sm".into();
        let d = DedupDigest::of_bytes(b"e1");
        let mut idx = DedupIndex::default();
        let mut p = Pending::default();
        assert!(!idx.check_and_claim(&mut p, &s, &d, 0, 100));
        assert!(idx.check_and_claim(&mut p, &s, &d, 0, 100), "same batch");
        // A rolled-back transaction (pending dropped) leaves nothing behind.
        drop(p);
        let mut p = Pending::default();
        assert!(!idx.check_and_claim(&mut p, &s, &d, 0, 100));
        idx.commit(p);
        let mut p = Pending::default();
        assert!(idx.check_and_claim(&mut p, &s, &d, 50, 150));
        assert!(
            !idx.check_and_claim(&mut p, &"other".into(), &d, 50, 150),
            "per source"
        );
        assert!(
            !idx.check_and_claim(&mut Pending::default(), &s, &d, 100, 200),
            "expired"
        );
        idx.prune(100);
        assert_eq!(idx.len(), 0);
    }
}
