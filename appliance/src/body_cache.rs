//! Message bodies kept in memory for FETCH, one cache per executor shared by its
//! shards. The bodies lie back to back in one ring of `store.body_cache_bytes`,
//! allocated once, so the cache never holds more than that and never fragments the
//! heap; a new body overwrites the oldest ones. Bodies enter when a flush has made them
//! durable (new mail is what clients fetch next) and when a miss reads them from disk.
//! Keys are a shard and a log offset; the log is append-only, so an offset never names
//! two bodies.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ops::Range;

/// A body's place: its shard and the log offset where the body starts.
pub type BodyKey = (u32, u64);

/// Bodies larger than this share of the ring are never kept, so that one large
/// message cannot empty the cache.
const ENTRY_SHARE_MAX: usize = 16;

/// A bounded ring of recent message bodies.
#[derive(Debug)]
pub struct BodyCache {
    /// The ring; its pages become resident as bodies are first written into them.
    ring: RefCell<Vec<u8>>,
    /// Where the next body goes.
    head: Cell<usize>,
    /// Where each kept body lies in the ring.
    index: RefCell<HashMap<BodyKey, Range<usize>>>,
    /// Kept bodies, oldest first (ring order).
    order: RefCell<VecDeque<(BodyKey, Range<usize>)>>,
    hits: Cell<u64>,
    misses: Cell<u64>,
}

impl BodyCache {
    /// An empty cache of `budget_bytes` (0: keeps nothing).
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            // Zeroed memory from the allocator is not resident until written.
            ring: RefCell::new(vec![0u8; budget_bytes]),
            head: Cell::new(0),
            index: RefCell::new(HashMap::new()),
            order: RefCell::new(VecDeque::new()),
            hits: Cell::new(0),
            misses: Cell::new(0),
        }
    }

    /// The largest body the cache keeps.
    pub fn entry_max_bytes(&self) -> usize {
        self.ring.borrow().len() / ENTRY_SHARE_MAX
    }

    /// A copy of bytes `within` of the body at `key` (clamped to the body), if kept.
    pub fn get(&self, key: BodyKey, within: Range<u64>) -> Option<Vec<u8>> {
        let index = self.index.borrow();
        let Some(at) = index.get(&key) else {
            self.misses.set(self.misses.get() + 1);
            return None;
        };
        self.hits.set(self.hits.get() + 1);
        let len = (at.end - at.start) as u64;
        let start = at.start + within.start.min(len) as usize;
        let end = at.start + within.end.min(len) as usize;
        Some(self.ring.borrow()[start..end.max(start)].to_vec())
    }

    /// Keeps `body` at `key`, overwriting the oldest bodies to make room.
    pub fn insert(&self, key: BodyKey, body: &[u8]) {
        self.insert_with(key, body.len(), |place| place.copy_from_slice(body));
    }

    /// Keeps the `len` bytes that `fill` writes into their place in the ring at `key`
    /// (straight from where they are, with no copy in between).
    pub fn insert_with(&self, key: BodyKey, len: usize, fill: impl FnOnce(&mut [u8])) {
        let size = self.ring.borrow().len();
        if len == 0 || len > self.entry_max_bytes() {
            return;
        }
        if self.index.borrow().contains_key(&key) {
            return;
        }
        let mut index = self.index.borrow_mut();
        let mut order = self.order.borrow_mut();
        let mut head = self.head.get();
        if head + len > size {
            // Wrap: the bodies between the head and the end are the oldest; they go.
            while order.front().is_some_and(|(_, at)| at.start >= head) {
                if let Some((gone, _)) = order.pop_front() {
                    index.remove(&gone);
                }
            }
            head = 0;
        }
        let place = head..head + len;
        while order
            .front()
            .is_some_and(|(_, at)| at.start < place.end && place.start < at.end)
        {
            if let Some((gone, _)) = order.pop_front() {
                index.remove(&gone);
            }
        }
        fill(&mut self.ring.borrow_mut()[place.clone()]);
        index.insert(key, place.clone());
        order.push_back((key, place.clone()));
        self.head.set(place.end);
    }

    /// Bytes of bodies kept now.
    pub fn used_bytes(&self) -> usize {
        self.order.borrow().iter().map(|(_, at)| at.len()).sum()
    }

    /// Lookups that found their body, and lookups that did not.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits.get(), self.misses.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(cache: &BodyCache, key: BodyKey) -> Option<Vec<u8>> {
        cache.get(key, 0..u64::MAX)
    }

    #[test]
    fn keeps_recent_bodies_within_the_ring_and_overwrites_the_oldest() {
        let cache = BodyCache::new(16 * 100);
        assert_eq!(cache.entry_max_bytes(), 100);
        cache.insert((2, 0), &[3; 101]);
        assert!(
            whole(&cache, (2, 0)).is_none(),
            "a body over the entry limit is kept"
        );
        for i in 0..16u8 {
            cache.insert((1, u64::from(i) * 4096), &[i; 100]);
        }
        assert_eq!(cache.used_bytes(), 1600);
        assert_eq!(whole(&cache, (1, 0)), Some(vec![0u8; 100]));
        // A 150-byte body wraps to the start and overwrites the two oldest.
        cache.insert((3, 0), &[7; 90]);
        cache.insert((3, 4096), &[8; 60]);
        assert!(whole(&cache, (1, 0)).is_none());
        assert!(whole(&cache, (1, 4096)).is_none());
        assert_eq!(whole(&cache, (1, 2 * 4096)), Some(vec![2u8; 100]));
        assert_eq!(whole(&cache, (3, 0)), Some(vec![7u8; 90]));
        assert_eq!(cache.get((3, 4096), 50..70), Some(vec![8u8; 10]));
        assert_eq!(cache.get((3, 4096), 70..80), Some(Vec::new()));
        assert_eq!(cache.used_bytes(), 14 * 100 + 150);
        let (hits, misses) = cache.hits_and_misses();
        assert_eq!((hits, misses), (5, 3));
    }

    /// Bodies of every size, over many laps: whatever the cache still answers for is
    /// exactly the body inserted, the newest body is always kept, and the bytes kept
    /// never pass the ring.
    #[test]
    fn every_kept_body_reads_back_exactly_over_many_laps() {
        let cache = BodyCache::new(4096);
        let body = |key: u64, len: usize| -> Vec<u8> {
            (0..len).map(|i| (key as usize * 31 + i) as u8).collect()
        };
        let mut lens = Vec::new();
        let mut state = 12345u64;
        for key in 0..2000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (state >> 33) as usize % cache.entry_max_bytes();
            lens.push(len);
            cache.insert((0, key), &body(key, len));
            assert_eq!(whole(&cache, (0, key)), Some(body(key, len)));
            assert!(cache.used_bytes() <= 4096);
            for old in key.saturating_sub(40)..key {
                if let Some(found) = whole(&cache, (0, old)) {
                    assert_eq!(found, body(old, lens[old as usize]));
                }
            }
        }
        // At least the ring's worth of the newest bodies, minus one lap's slack, is kept.
        assert!(cache.used_bytes() > 4096 - 2 * cache.entry_max_bytes());
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = BodyCache::new(0);
        cache.insert((0, 0), b"x");
        assert!(whole(&cache, (0, 0)).is_none());
        assert_eq!(cache.used_bytes(), 0);
    }
}
