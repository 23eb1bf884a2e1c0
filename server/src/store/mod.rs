//! The engine: logical databases of sharded keyspaces, expiry and the clock.
//!
//! Architecture Invariant: this module knows nothing of sockets, RESP, tokio
//! or the cluster. It is the core of the embedded API, and every operation
//! takes the current time from the injectable [`Clock`], so tests drive TTLs.

pub mod bytes;
pub mod clock;
pub mod codec;
pub mod dense;
pub mod evict;
pub mod hash;
pub mod keyspace;
pub mod list;
pub mod pack;
pub mod set;
pub mod skiplist;
pub mod value;
pub mod zset;

pub use self::bytes::CompactBytes;
pub use clock::{Clock, ManualClock, SystemClock};
pub use keyspace::{
    Backing, DirtyState, ENC_NOINT, ENC_RAW, Entry, Keyspace, MultiLock, Shard, ShardStats, Ttl,
    hash_key,
};
pub use value::Value;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Store-level settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Number of logical databases (SELECT 0..n-1).
    pub databases: usize,
    /// Shards per database.
    pub shards: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            databases: 16,
            shards: 64,
        }
    }
}

/// Outcome of one active expiry cycle.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExpireCycle {
    pub sampled: usize,
    pub expired: usize,
    pub timed_out: bool,
}

/// Receives keys deleted because their TTL passed, lazily or by the active
/// cycle (the node publishes the `expired` keyspace event). Called with the
/// key's shard locked: it must not touch the keyspace.
pub trait ExpiredHook: Send + Sync + std::fmt::Debug {
    fn expired(&self, db: usize, key: &[u8]);
}

/// Callbacks the embedding layer installs on a [`Store`], and the store-wide
/// state every shard reaches through its database (memory counter, LFU mode).
#[derive(Debug)]
pub struct Hooks {
    expired: std::sync::OnceLock<Box<dyn ExpiredHook>>,
    /// Bytes used by all shards, as they last reported it (each reports when
    /// its own figure moved by [`keyspace::MEM_SYNC`] bytes): what `maxmemory`
    /// is checked against on every write without visiting the shards.
    pub used: std::sync::atomic::AtomicIsize,
    /// Access metadata is an LFU counter (an LFU policy is set), not an LRU clock.
    pub lfu: std::sync::atomic::AtomicBool,
    pub lfu_log_factor: std::sync::atomic::AtomicU32,
    /// Minutes per counter decrement (0 = never decay).
    pub lfu_decay_time: std::sync::atomic::AtomicU32,
    /// Persistence is on: shards mark changed keys for the write-behind thread.
    pub persist: std::sync::atomic::AtomicBool,
    /// Memory holds the whole dataset (always, without persistence). Cleared
    /// when eviction drops a persisted key or loading stops at `maxmemory`:
    /// from then on a miss reads through [`Hooks::backing`].
    pub complete: std::sync::atomic::AtomicBool,
    pub backing: std::sync::OnceLock<Box<dyn Backing>>,
    /// Keys waiting for the persistence writer, as the shards last reported
    /// it (each within 64 of its own count): the writer's backlog.
    pub dirty_keys: std::sync::atomic::AtomicIsize,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            expired: std::sync::OnceLock::new(),
            used: std::sync::atomic::AtomicIsize::new(0),
            lfu: std::sync::atomic::AtomicBool::new(false),
            lfu_log_factor: std::sync::atomic::AtomicU32::new(10),
            lfu_decay_time: std::sync::atomic::AtomicU32::new(1),
            persist: std::sync::atomic::AtomicBool::new(false),
            complete: std::sync::atomic::AtomicBool::new(true),
            backing: std::sync::OnceLock::new(),
            dirty_keys: std::sync::atomic::AtomicIsize::new(0),
        }
    }
}

/// All databases of one node.
#[derive(Debug)]
pub struct Store {
    hooks: Arc<Hooks>,
    /// Swapped as a whole so SWAPDB is atomic for every reader.
    dbs: ArcSwap<Vec<Arc<Keyspace>>>,
    clock: Arc<dyn Clock>,
    /// Serialises SWAPDB/FLUSHALL-style whole-store changes.
    admin: Mutex<()>,
    /// Where the next active expiry cycle starts (db * shards + shard).
    expire_cursor: AtomicUsize,
    /// The eviction pool and its bookkeeping; one evictor at a time.
    evict_state: Mutex<evict::EvictState>,
}

impl Store {
    pub fn new(config: StoreConfig, clock: Arc<dyn Clock>) -> Self {
        let hooks = Arc::new(Hooks::default());
        let dbs = (0..config.databases.max(1))
            .map(|i| Arc::new(Keyspace::with_hooks(config.shards, i, Arc::clone(&hooks))))
            .collect();
        Store {
            hooks,
            dbs: ArcSwap::from_pointee(dbs),
            clock,
            admin: Mutex::new(()),
            expire_cursor: AtomicUsize::new(0),
            evict_state: Mutex::new(evict::EvictState::default()),
        }
    }

    /// Store-wide settings and counters shared with the shards.
    pub fn hooks(&self) -> &Arc<Hooks> {
        &self.hooks
    }

    /// Bytes used by the keyspace, from the shards' last reports: O(1), within
    /// a few KiB per recently written shard of [`Store::used_memory`].
    #[inline]
    pub fn used_memory_fast(&self) -> usize {
        self.hooks.used.load(Ordering::Relaxed).max(0) as usize
    }

    /// Switches access metadata between LRU clocks and LFU counters.
    pub fn set_lfu(&self, on: bool, log_factor: u32, decay_time: u32) {
        self.hooks.lfu.store(on, Ordering::Relaxed);
        self.hooks
            .lfu_log_factor
            .store(log_factor, Ordering::Relaxed);
        self.hooks
            .lfu_decay_time
            .store(decay_time, Ordering::Relaxed);
    }

    /// Installs the expired-key hook; only the first call takes effect.
    pub fn set_expired_hook(&self, hook: Box<dyn ExpiredHook>) {
        let _ = self.hooks.expired.set(hook);
    }

    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn databases(&self) -> usize {
        self.dbs.load().len()
    }

    /// A snapshot of the database table; index it with the SELECTed db.
    #[inline]
    pub fn dbs(&self) -> arc_swap::Guard<Arc<Vec<Arc<Keyspace>>>> {
        self.dbs.load()
    }

    /// The database at `i`. Panics if out of range; SELECT validates indices.
    pub fn db(&self, i: usize) -> Arc<Keyspace> {
        Arc::clone(&self.dbs.load()[i])
    }

    /// Atomically exchanges two databases (SWAPDB).
    pub fn swap_db(&self, a: usize, b: usize) {
        let _g = self.admin.lock();
        let mut v: Vec<Arc<Keyspace>> = self.dbs.load().as_ref().clone();
        v.swap(a, b);
        v[a].set_db_index(a);
        v[b].set_db_index(b);
        self.dbs.store(Arc::new(v));
    }

    pub fn flush_all(&self) {
        let _g = self.admin.lock();
        for db in self.dbs.load().iter() {
            db.clear();
        }
    }

    /// Bytes held by all databases.
    pub fn used_memory(&self) -> usize {
        self.dbs.load().iter().map(|d| d.used_memory()).sum()
    }

    pub fn stats(&self) -> ShardStats {
        let mut t = ShardStats::default();
        for db in self.dbs.load().iter() {
            let s = db.stats();
            t.hits += s.hits;
            t.misses += s.misses;
            t.expired += s.expired;
        }
        t
    }

    pub fn reset_stats(&self) {
        for db in self.dbs.load().iter() {
            db.reset_stats();
        }
    }

    /// One active expiry cycle, as Redis's: visit shards round robin, sample
    /// keys with a TTL, delete the expired ones, and stay on a shard while more
    /// than a quarter of its sample had expired. Stops at `budget`.
    pub fn active_expire_cycle(&self, samples: usize, budget: Duration) -> ExpireCycle {
        let start = Instant::now();
        let dbs = self.dbs.load();
        let per_db = dbs.first().map(|d| d.shard_count()).unwrap_or(1);
        let total = dbs.len() * per_db;
        let mut out = ExpireCycle::default();
        let first = self.expire_cursor.load(Ordering::Relaxed);
        let mut visited = 0;
        while visited < total {
            let at = (first + visited) % total;
            visited += 1;
            let db = &dbs[at / per_db];
            let now = self.now_ms();
            loop {
                let (seen, expired) = db.lock_shard(at % per_db).expire_step(now, samples);
                out.sampled += seen;
                out.expired += expired;
                if seen == 0 || expired * 4 <= seen {
                    break;
                }
                if start.elapsed() >= budget {
                    break;
                }
            }
            if start.elapsed() >= budget {
                out.timed_out = true;
                break;
            }
        }
        self.expire_cursor
            .store((first + visited) % total.max(1), Ordering::Relaxed);
        out
    }
}

#[cfg(test)]
mod tests;
