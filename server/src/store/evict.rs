//! `maxmemory` eviction: Redis's policies by sampling, with an eviction pool.
//!
//! As Redis's `performEvictions`: while the store is over its limit, sample
//! `maxmemory-samples` keys per database (keys with a TTL only, for the
//! volatile policies), keep the best candidates in a pool of 16 across rounds
//! (highest idle time, lowest LFU counter, or nearest expiry first), and
//! delete the best one still present; the random policies delete a random
//! key. Sampling is O(samples) per round whatever the keyspace size.

use super::keyspace::{Keyspace, lfu_decayed};
use super::{CompactBytes, Store};
use rand::Rng;
use std::sync::Arc;

/// A `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    /// Every policy; a policy's index here is its compact form (an atomic `u8`).
    pub const ALL: [Policy; 8] = [
        Policy::NoEviction,
        Policy::AllKeysLru,
        Policy::AllKeysLfu,
        Policy::AllKeysRandom,
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
    ];

    pub fn parse(s: &str) -> Option<Policy> {
        Some(match s {
            "noeviction" => Policy::NoEviction,
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => return None,
        })
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn random(self) -> bool {
        matches!(self, Policy::AllKeysRandom | Policy::VolatileRandom)
    }
}

/// Eviction settings of one call.
#[derive(Debug, Clone, Copy)]
pub struct EvictConfig {
    pub policy: Policy,
    pub samples: usize,
    pub lfu_decay_time: u32,
    /// Evict until the store's bytes are at most this.
    pub limit: usize,
}

/// A candidate in the pool; a higher `score` is evicted first.
#[derive(Debug, Clone)]
pub struct Candidate {
    score: u64,
    db: usize,
    /// Inline up to 22 bytes: sampling allocates nothing for typical keys.
    key: CompactBytes,
}

const POOL_SIZE: usize = 16;

/// State kept across eviction runs: the pool, and which databases have keys
/// (refreshed every 256 rounds: counting visits every shard).
#[derive(Debug, Default)]
pub struct EvictState {
    pool: Vec<Candidate>,
    rounds: u64,
    with_keys: Vec<usize>,
    with_volatile: Vec<usize>,
}

impl EvictState {
    fn refresh(&mut self, dbs: &[Arc<Keyspace>]) {
        self.with_keys = (0..dbs.len()).filter(|&i| !dbs[i].is_empty()).collect();
        self.with_volatile = (0..dbs.len()).filter(|&i| dbs[i].volatile() > 0).collect();
    }
}

/// What one eviction run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub keys: u64,
    /// False when the store is still over the limit (nothing evictable left,
    /// or noeviction).
    pub ok: bool,
}

impl Store {
    /// Evicts keys until the keyspace's bytes are at most `cfg.limit`,
    /// calling `on_evict(db, key)` after each deletion (shard unlocked).
    pub fn evict(
        &self,
        cfg: EvictConfig,
        now: u64,
        on_evict: &mut dyn FnMut(usize, &[u8]),
    ) -> Evicted {
        let mut out = Evicted::default();
        if self.used_memory_fast() <= cfg.limit {
            out.ok = true;
            return out;
        }
        if cfg.policy == Policy::NoEviction {
            return out;
        }
        // One evictor at a time (the pool is shared across rounds, as Redis's).
        let mut st = self.evict_state.lock();
        let mut rng = rand::rng();
        let dbs = self.dbs();
        let mut misses = 0;
        while self.used_memory_fast() > cfg.limit {
            if st.rounds.is_multiple_of(256) || misses > 0 {
                st.refresh(&dbs);
            }
            st.rounds += 1;
            let st = &mut *st;
            let candidates = if cfg.policy.volatile() {
                &st.with_volatile
            } else {
                &st.with_keys
            };
            let volatile = cfg.policy.volatile();
            let evicted = if cfg.policy.random() {
                random_victim(&dbs, candidates, volatile, &mut rng).and_then(|(db, key)| {
                    let ks = dbs.get(db)?;
                    remove_if_present(ks, &key, volatile, now)
                        .then(|| (db, CompactBytes::new(&key)))
                })
            } else {
                for &i in candidates {
                    if let Some(ks) = dbs.get(i) {
                        sample_into(&mut st.pool, i, ks, cfg, now, &mut rng);
                    }
                }
                evict_best(&mut st.pool, &dbs, volatile, now)
            };
            match evicted {
                Some((db, key)) => {
                    misses = 0;
                    out.keys += 1;
                    on_evict(db, key.as_slice());
                }
                None => {
                    // Nothing found: once more with fresh database lists, then give up.
                    misses += 1;
                    if misses > 1 {
                        return out;
                    }
                }
            }
        }
        out.ok = true;
        out
    }
}

/// A random key (with a TTL for volatile-random) from a random non-empty database.
fn random_victim(
    dbs: &[Arc<Keyspace>],
    with_keys: &[usize],
    volatile: bool,
    rng: &mut impl Rng,
) -> Option<(usize, Vec<u8>)> {
    if with_keys.is_empty() {
        return None;
    }
    for _ in 0..1024 {
        let db = with_keys[rng.random_range(0..with_keys.len())];
        let Some(ks) = dbs.get(db) else {
            continue;
        };
        let shard = ks.lock_shard(rng.random_range(0..ks.shard_count()));
        if (volatile && shard.volatile() == 0) || shard.is_empty() {
            continue;
        }
        for _ in 0..16 {
            if let Some(i) = shard.random_idx(rng) {
                let e = shard.entry(i);
                if !volatile || e.expire_at().is_some() {
                    return Some((db, e.key.as_slice().to_vec()));
                }
            }
        }
    }
    None
}

/// Samples keys of database `db` into the pool with their eviction score.
fn sample_into(
    pool: &mut Vec<Candidate>,
    db: usize,
    ks: &Keyspace,
    cfg: EvictConfig,
    now: u64,
    rng: &mut impl Rng,
) {
    let volatile = cfg.policy.volatile();
    for _ in 0..4 {
        let shard = ks.lock_shard(rng.random_range(0..ks.shard_count()));
        if (volatile && shard.volatile() == 0) || shard.is_empty() {
            continue;
        }
        shard.sample_run(rng, cfg.samples, |e| {
            if volatile && e.expire_at().is_none() {
                return;
            }
            let score = match cfg.policy {
                Policy::AllKeysLfu | Policy::VolatileLfu => {
                    255 - lfu_decayed(e.access_bits(), now, cfg.lfu_decay_time) as u64
                }
                Policy::VolatileTtl => u64::MAX - e.expire_at().unwrap_or(u64::MAX),
                _ => e.idle_ms(now),
            };
            pool_insert(pool, score, db, e.key.as_slice());
        });
        return;
    }
}

fn pool_insert(pool: &mut Vec<Candidate>, score: u64, db: usize, key: &[u8]) {
    if pool.len() >= POOL_SIZE {
        // Full: replace the weakest candidate if this one is better.
        let Some((wi, weakest)) = pool.iter().enumerate().min_by_key(|(_, p)| p.score) else {
            return;
        };
        if weakest.score >= score {
            return;
        }
        if pool.iter().any(|p| p.db == db && p.key.as_slice() == key) {
            return;
        }
        pool.swap_remove(wi);
    } else if pool.iter().any(|p| p.db == db && p.key.as_slice() == key) {
        return;
    }
    pool.push(Candidate {
        score,
        db,
        key: CompactBytes::new(key),
    });
}

/// Deletes the best candidate whose key is still there; returns it.
fn evict_best(
    pool: &mut Vec<Candidate>,
    dbs: &[Arc<Keyspace>],
    volatile: bool,
    now: u64,
) -> Option<(usize, CompactBytes)> {
    while !pool.is_empty() {
        let bi = pool
            .iter()
            .enumerate()
            .max_by_key(|(_, p)| p.score)
            .map(|(i, _)| i)?;
        let c = pool.swap_remove(bi);
        let Some(ks) = dbs.get(c.db) else {
            continue;
        };
        if remove_if_present(ks, c.key.as_slice(), volatile, now) {
            return Some((c.db, c.key));
        }
    }
    None
}

/// Deletes `key` if it is live (and has a TTL, for volatile policies).
fn remove_if_present(ks: &Keyspace, key: &[u8], volatile: bool, now: u64) -> bool {
    let (h, mut shard) = ks.lock(key);
    match shard.lookup_local(h, key, now) {
        Some(i) if !volatile || shard.entry(i).expire_at().is_some() => {
            shard.evict_at(h, i);
            true
        }
        _ => false,
    }
}
