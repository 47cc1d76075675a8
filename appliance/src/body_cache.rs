//! Message bodies kept in memory for FETCH, one cache per executor shared by its
//! shards: bounded in bytes (`store.body_cache_bytes`), least recently used out first.
//! Bodies enter when they are read from disk and when a flush has made them durable
//! (new mail is what clients fetch next). Keys are a shard and a log offset; the log is
//! append-only, so an offset never names two bodies.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// A body's place: its shard and the log offset where the body starts.
pub type BodyKey = (u32, u64);

/// Bodies larger than this share of the budget are never kept, so that one large
/// message cannot empty the cache.
const ENTRY_SHARE_MAX: usize = 16;

/// A kept body and the tick of its last use.
#[derive(Debug)]
struct Entry {
    body: Rc<[u8]>,
    last_use: u64,
}

/// A bounded, least-recently-used cache of message bodies.
#[derive(Debug)]
pub struct BodyCache {
    budget_bytes: usize,
    used_bytes: Cell<usize>,
    entries: RefCell<HashMap<BodyKey, Entry>>,
    /// Last use (a tick) of every entry, oldest first.
    by_use: RefCell<BTreeMap<u64, BodyKey>>,
    tick: Cell<u64>,
    hits: Cell<u64>,
    misses: Cell<u64>,
}

impl BodyCache {
    /// An empty cache holding at most `budget_bytes` of bodies (0: keeps nothing).
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            used_bytes: Cell::new(0),
            entries: RefCell::new(HashMap::new()),
            by_use: RefCell::new(BTreeMap::new()),
            tick: Cell::new(0),
            hits: Cell::new(0),
            misses: Cell::new(0),
        }
    }

    /// The largest body the cache keeps.
    pub fn entry_max_bytes(&self) -> usize {
        self.budget_bytes / ENTRY_SHARE_MAX
    }

    /// The body at `key`, if kept; marks it as just used.
    pub fn get(&self, key: BodyKey) -> Option<Rc<[u8]>> {
        let mut entries = self.entries.borrow_mut();
        let Some(entry) = entries.get_mut(&key) else {
            self.misses.set(self.misses.get() + 1);
            return None;
        };
        let mut by_use = self.by_use.borrow_mut();
        by_use.remove(&entry.last_use);
        entry.last_use = self.next_tick();
        by_use.insert(entry.last_use, key);
        self.hits.set(self.hits.get() + 1);
        Some(entry.body.clone())
    }

    /// Keeps `body` at `key`, evicting the least recently used bodies to make room.
    pub fn insert(&self, key: BodyKey, body: &[u8]) {
        if body.len() > self.entry_max_bytes() || self.entries.borrow().contains_key(&key) {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        let mut by_use = self.by_use.borrow_mut();
        while self.used_bytes.get() + body.len() > self.budget_bytes {
            let Some((_, oldest)) = by_use.pop_first() else {
                break;
            };
            if let Some(gone) = entries.remove(&oldest) {
                self.used_bytes.set(self.used_bytes.get() - gone.body.len());
            }
        }
        let tick = self.next_tick();
        self.used_bytes.set(self.used_bytes.get() + body.len());
        let body = Rc::from(body);
        entries.insert(
            key,
            Entry {
                body,
                last_use: tick,
            },
        );
        by_use.insert(tick, key);
    }

    /// Bytes of bodies kept now.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.get()
    }

    /// Lookups that found their body, and lookups that did not.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits.get(), self.misses.get())
    }

    fn next_tick(&self) -> u64 {
        self.tick.set(self.tick.get() + 1);
        self.tick.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_bodies_within_budget_and_evicts_the_least_recently_used() {
        let cache = BodyCache::new(16 * 100);
        assert_eq!(cache.entry_max_bytes(), 100);
        cache.insert((1, 0), &[1; 100]);
        cache.insert((1, 4096), &[2; 100]);
        cache.insert((2, 0), &[3; 101]);
        assert!(
            cache.get((2, 0)).is_none(),
            "a body over the entry limit is kept"
        );
        for i in 3..16 {
            cache.insert((1, i * 4096), &[9; 100]);
        }
        assert_eq!(cache.used_bytes(), 1500);
        // Using the first body makes the second the least recently used.
        assert_eq!(cache.get((1, 0)).as_deref(), Some(&[1u8; 100][..]));
        cache.insert((3, 0), &[4; 100]);
        cache.insert((3, 4096), &[5; 100]);
        assert_eq!(cache.used_bytes(), 1600);
        assert!(cache.get((1, 4096)).is_none());
        assert!(cache.get((1, 0)).is_some());
        assert_eq!(cache.get((3, 4096)).as_deref(), Some(&[5u8; 100][..]));
        assert_eq!(cache.hits_and_misses(), (3, 2));
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let cache = BodyCache::new(0);
        cache.insert((0, 0), b"x");
        assert!(cache.get((0, 0)).is_none());
        assert_eq!(cache.used_bytes(), 0);
    }
}
