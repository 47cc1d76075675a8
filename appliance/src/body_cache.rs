//! Message bodies kept in memory for FETCH, one cache per executor shared by its
//! shards, within `store.body_cache_bytes`: a new body pushes the oldest ones out.
//! Bodies enter when a flush has made them durable (new mail is what clients fetch
//! next) and when a miss reads them from disk. A large body is kept as the very buffer
//! it arrived and was written from, so keeping it copies nothing; the cache counts each
//! buffer's whole allocation against its budget. Keys are a shard and a log offset; the
//! log is append-only, so an offset never names two bodies.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::ops::Range;

/// A body's place: its shard and the log offset where the body starts.
pub type BodyKey = (u32, u64);

/// Bodies larger than this share of the budget are never kept, so that one large
/// message cannot empty the cache.
const ENTRY_SHARE_MAX: usize = 16;

/// A buffer holding more than its body and this share of it again is trimmed before
/// it is kept, so that spare capacity does not crowd bodies out.
const SPARE_SHARE_MAX: usize = 8;

/// A bounded, oldest-out set of recent message bodies.
#[derive(Debug)]
pub struct BodyCache {
    budget_bytes: usize,
    /// Bytes allocated for the kept bodies.
    used_bytes: Cell<usize>,
    bodies: RefCell<HashMap<BodyKey, Vec<u8>>>,
    /// Kept bodies, oldest first.
    order: RefCell<VecDeque<BodyKey>>,
    hits: Cell<u64>,
    misses: Cell<u64>,
}

impl BodyCache {
    /// An empty cache of `budget_bytes` (0: keeps nothing).
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            used_bytes: Cell::new(0),
            bodies: RefCell::new(HashMap::new()),
            order: RefCell::new(VecDeque::new()),
            hits: Cell::new(0),
            misses: Cell::new(0),
        }
    }

    /// The largest body the cache keeps.
    pub fn entry_max_bytes(&self) -> usize {
        self.budget_bytes / ENTRY_SHARE_MAX
    }

    /// A copy of bytes `within` of the body at `key` (clamped to the body), if kept.
    pub fn get(&self, key: BodyKey, within: Range<u64>) -> Option<Vec<u8>> {
        let bodies = self.bodies.borrow();
        let Some(body) = bodies.get(&key) else {
            self.misses.set(self.misses.get() + 1);
            return None;
        };
        self.hits.set(self.hits.get() + 1);
        let len = body.len() as u64;
        let start = within.start.min(len) as usize;
        let end = within.end.min(len) as usize;
        Some(body[start..end.max(start)].to_vec())
    }

    /// Keeps a copy of `body` at `key`, pushing the oldest bodies out to make room.
    pub fn insert(&self, key: BodyKey, body: &[u8]) {
        if self.keeps(key, body.len()) {
            self.keep(key, body.to_vec());
        }
    }

    /// Keeps `body` itself at `key`, pushing the oldest bodies out to make room.
    pub fn insert_owned(&self, key: BodyKey, mut body: Vec<u8>) {
        if !self.keeps(key, body.len()) {
            return;
        }
        if body.capacity() - body.len() > body.len() / SPARE_SHARE_MAX {
            body.shrink_to_fit();
        }
        self.keep(key, body);
    }

    /// Whether a body of `len` bytes at `key` is one to keep (not empty, not too
    /// large, not kept already).
    fn keeps(&self, key: BodyKey, len: usize) -> bool {
        len > 0 && len <= self.entry_max_bytes() && !self.bodies.borrow().contains_key(&key)
    }

    fn keep(&self, key: BodyKey, body: Vec<u8>) {
        let cost = body.capacity();
        let mut bodies = self.bodies.borrow_mut();
        let mut order = self.order.borrow_mut();
        let mut used = self.used_bytes.get();
        while used + cost > self.budget_bytes {
            let Some(gone) = order.pop_front() else { break };
            if let Some(gone) = bodies.remove(&gone) {
                used -= gone.capacity();
            }
        }
        if used + cost > self.budget_bytes {
            self.used_bytes.set(used);
            return;
        }
        bodies.insert(key, body);
        order.push_back(key);
        self.used_bytes.set(used + cost);
    }

    /// Bytes allocated for the bodies kept now.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.get()
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
    fn keeps_recent_bodies_within_the_budget_and_pushes_the_oldest_out() {
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
        // 90 bytes push the oldest body out; 60 more push the next one out.
        cache.insert((3, 0), &[7; 90]);
        assert!(whole(&cache, (1, 0)).is_none());
        assert_eq!(whole(&cache, (1, 4096)), Some(vec![1u8; 100]));
        cache.insert((3, 4096), &[8; 60]);
        assert!(whole(&cache, (1, 4096)).is_none());
        assert_eq!(whole(&cache, (1, 2 * 4096)), Some(vec![2u8; 100]));
        assert_eq!(whole(&cache, (3, 0)), Some(vec![7u8; 90]));
        assert_eq!(cache.get((3, 4096), 50..70), Some(vec![8u8; 10]));
        assert_eq!(cache.get((3, 4096), 70..80), Some(Vec::new()));
        assert_eq!(cache.used_bytes(), 14 * 100 + 150);
        let (hits, misses) = cache.hits_and_misses();
        assert_eq!((hits, misses), (6, 3));
    }

    #[test]
    fn an_owned_body_is_kept_and_counted_by_its_allocation() {
        let cache = BodyCache::new(16 * 100);
        let mut roomy = Vec::with_capacity(100);
        roomy.extend_from_slice(&[5u8; 40]);
        cache.insert_owned((0, 0), roomy);
        assert_eq!(whole(&cache, (0, 0)), Some(vec![5u8; 40]));
        assert!(
            cache.used_bytes() < 50,
            "spare capacity is counted: {} bytes",
            cache.used_bytes()
        );
        let mut snug = Vec::with_capacity(100);
        snug.extend_from_slice(&[6u8; 95]);
        let before = cache.used_bytes();
        cache.insert_owned((0, 4096), snug);
        assert_eq!(whole(&cache, (0, 4096)), Some(vec![6u8; 95]));
        assert_eq!(
            cache.used_bytes() - before,
            100,
            "a snug buffer counts whole"
        );
        cache.insert_owned((0, 8192), vec![1u8; 101]);
        assert!(whole(&cache, (0, 8192)).is_none(), "too large to keep");
    }

    /// Bodies of every size, the budget turned over many times: whatever the cache
    /// still answers for is exactly the body inserted, the newest body is always kept,
    /// and the bytes kept never pass the budget.
    #[test]
    fn every_kept_body_reads_back_exactly_as_the_budget_turns_over() {
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
        // The newest bodies are kept up to the budget, less room for one more body.
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
