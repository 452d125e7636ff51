//! Decoded snapshots a worker keeps between two steps of an instance, so that a large one (a
//! wide fan-out's holds every open task and every result not yet consumed) is not decoded again
//! at its next step.
//!
//! An entry is used only when the work item's snapshot bytes are exactly the bytes it was
//! decoded from (encoded from, which decode to the same value), so an entry can never stand for
//! another state: a commit that failed, a step taken by another worker, Redis going back in time
//! — each gives other bytes, and the snapshot is decoded as usual. Only snapshots of at least
//! [`SnapshotCache::MIN_BYTES`] are kept (decoding a small one costs less than keeping a copy of
//! its bytes), and split ones (their task tables kept apart by the backend: a miss reads the
//! whole table again; their bytes carry a number unique to the commit that wrote them, so equal
//! bytes mean the same table), and at most `max_bytes` of them in all, oldest out first.

use crate::state::Snapshot;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Decoded snapshots of the instances a worker stepped last (see the module's docs).
#[derive(Debug)]
pub struct SnapshotCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Instance → when it was put (`next`), the bytes, what they decode to, and what it
    /// counts for against the bound.
    entries: HashMap<String, (u64, Vec<u8>, Snapshot, usize)>,
    /// Instances in the order their entries were put, with when: a place whose time is not its
    /// entry's is left by an entry taken out or put again.
    order: VecDeque<(String, u64)>,
    /// What every entry counts for, together: its bytes (and for a split snapshot, an
    /// estimate of its task table's).
    bytes: usize,
    /// The next put's time.
    next: u64,
}

impl SnapshotCache {
    /// Snapshots smaller than this are not kept.
    pub const MIN_BYTES: usize = 32 * 1024;

    /// A cache holding at most `max_bytes` of snapshot bytes (their decoded values take a few
    /// times that); 0 keeps nothing.
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes, inner: Mutex::new(Inner::default()) }
    }

    /// The decoded snapshot of `instance_id` if it was kept for exactly these `bytes`; the entry
    /// is taken out (the step consumes it).
    pub(crate) fn take(&self, instance_id: &str, bytes: &[u8]) -> Option<Snapshot> {
        if bytes.len() < Self::MIN_BYTES && !Snapshot::is_split(bytes) {
            return None;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (_, kept, ..) = inner.entries.get(instance_id)?;
        if kept.as_slice() != bytes {
            return None;
        }
        let (_, _, snapshot, weight) = inner.entries.remove(instance_id)?;
        inner.bytes -= weight;
        Some(snapshot)
    }

    /// Keep `snapshot`, which `bytes` encode, for `instance_id`'s next step.
    /// A split snapshot ([`Snapshot::is_split`]) is always kept (else its next step reads its
    /// whole task table again), counted with an estimate of its table's size.
    pub(crate) fn put(&self, instance_id: &str, bytes: &[u8], snapshot: Snapshot) {
        let split = Snapshot::is_split(bytes);
        let weight = bytes.len() + if split { snapshot.runtime.table_len() * 96 } else { 0 };
        if (bytes.len() < Self::MIN_BYTES && !split) || weight > self.max_bytes {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let at = inner.next;
        inner.next += 1;
        if let Some((.., old)) = inner.entries.insert(instance_id.to_string(), (at, bytes.to_vec(), snapshot, weight)) {
            inner.bytes -= old;
        }
        inner.bytes += weight;
        inner.order.push_back((instance_id.to_string(), at));
        while inner.bytes > self.max_bytes {
            let Some((oldest, when)) = inner.order.pop_front() else { break };
            if inner.entries.get(&oldest).is_some_and(|(put, ..)| *put == when)
                && let Some((.., old)) = inner.entries.remove(&oldest)
            {
                inner.bytes -= old;
            }
        }
        // Entries taken out or put again leave places behind: drop them once they pile up.
        if inner.order.len() > 2 * inner.entries.len() + 64 {
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|(id, when)| entries.get(id).is_some_and(|(put, ..)| put == when));
        }
    }

    /// How many snapshots it keeps, and their bytes.
    pub fn len_and_bytes(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.entries.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RuntimeState;

    fn snapshot(fill: u8, len: usize) -> (Vec<u8>, Snapshot) {
        let s = Snapshot {
            orchestrator: "o".into(),
            version: 1,
            fingerprint: 1,
            state: vec![fill; len],
            runtime: RuntimeState::default(),
            pending_continue_as_new: None,
        };
        (s.to_bytes().unwrap(), s)
    }

    #[test]
    fn an_entry_is_used_only_for_the_very_bytes_it_was_kept_for() {
        let cache = SnapshotCache::new(1 << 20);
        let (bytes, s) = snapshot(1, 40_000);
        cache.put("a", &bytes, s.clone());
        let (other, _) = snapshot(2, 40_000);
        assert_eq!(cache.take("a", &other), None, "other bytes of the same length");
        assert_eq!(cache.take("b", &bytes), None, "another instance");
        assert_eq!(cache.take("a", &bytes), Some(s));
        assert_eq!(cache.take("a", &bytes), None, "taken out");
        assert_eq!(cache.len_and_bytes(), (0, 0));
    }

    #[test]
    fn small_snapshots_are_not_kept_and_the_oldest_go_first() {
        let cache = SnapshotCache::new(100_000);
        let (small, s) = snapshot(1, 100);
        cache.put("small", &small, s);
        assert_eq!(cache.len_and_bytes(), (0, 0));
        let (a, sa) = snapshot(1, 40_000);
        let (b, sb) = snapshot(2, 40_000);
        let (c, sc) = snapshot(3, 40_000);
        cache.put("a", &a, sa);
        cache.put("b", &b, sb.clone());
        cache.put("a", &a, snapshot(1, 40_000).1);
        cache.put("c", &c, sc);
        // Three of ~40 KB do not fit in 100 KB: `b`, put longest ago, went.
        assert_eq!(cache.take("b", &b), None);
        assert!(cache.take("a", &a).is_some());
        assert!(cache.take("c", &c).is_some());
        for i in 0..200 {
            cache.put("a", &a, snapshot(1, 40_000).1);
            if i % 2 == 0 {
                cache.take("a", &a);
            }
        }
        let inner = cache.inner.lock().unwrap();
        assert!(inner.order.len() <= 2 * inner.entries.len() + 65, "{} places", inner.order.len());
    }
}
