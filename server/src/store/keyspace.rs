//! One logical database: a fixed array of mutex-protected shards.
//!
//! Each shard is a dense vector of entries plus a hash index of `u32`
//! positions into it. The dense vector gives O(1) random sampling (eviction,
//! active expiry, RANDOMKEY) and stable positions for SCAN cursors; the index
//! costs ~5 bytes a slot instead of a full entry per bucket. Deleted positions
//! are holes on a free list, reused by the next insert, so a live entry never
//! moves except when a mostly-empty shard is compacted.
//!
//! Why a mutex: critical sections are a hash probe plus a copy, never an
//! `.await`; multi-key commands lock shards in ascending index order, which
//! rules out deadlock between them.

use super::bytes::CompactBytes;
use super::value::Value;
use crossbeam_utils::CachePadded;
use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};
use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Marks a free position in `Shard::entries`; no real expiry is this late.
const HOLE: u64 = u64::MAX;
/// Sentinel for "no free position".
const NO_FREE: u32 = u32::MAX;

/// The access clock keeps 24 bits of seconds, as Redis's LRU clock does; the
/// high 8 bits of `Entry::access` hold encoding flags.
const LRU_MASK: u32 = (1 << 24) - 1;
/// A shard reports its memory to the store-wide counter once it moved this much.
pub const MEM_SYNC: usize = 4096;
/// The LFU counter of a new key (Redis's LFU_INIT_VAL), so it is not evicted at once.
pub const LFU_INIT_VAL: u32 = 5;
/// The string was modified in place (APPEND, SETRANGE): OBJECT ENCODING says "raw".
pub const ENC_RAW: u32 = 1 << 24;
/// The string was written as a float (INCRBYFLOAT): never "int" encoded.
pub const ENC_NOINT: u32 = 1 << 25;

/// Hash of a key, used both to pick a shard and inside the shard's index.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// A key, its value, its absolute expiry (ms, 0 = none) and access metadata.
#[derive(Debug)]
pub struct Entry {
    pub key: CompactBytes,
    pub value: Value,
    expire_at: u64,
    /// LRU clock (seconds) of the last access; on a hole, the next free position.
    access: u32,
    /// Last access in 10 ms ticks (wrapping, ~497 days): the LRU order
    /// eviction uses, finer than the seconds OBJECT IDLETIME reports. It
    /// fits the padding of the 64-byte entry.
    touched: u32,
}

impl Entry {
    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        if self.expire_at == 0 || self.expire_at == HOLE {
            None
        } else {
            Some(self.expire_at)
        }
    }

    #[inline]
    fn is_hole(&self) -> bool {
        self.expire_at == HOLE
    }

    /// True when the key's expiry has passed (Redis: expired when now > when).
    #[inline]
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != 0 && self.expire_at != HOLE && now > self.expire_at
    }

    /// Milliseconds since the last access, at 10 ms resolution (eviction's LRU order).
    #[inline]
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        ticks(now_ms).wrapping_sub(self.touched) as u64 * 10
    }

    /// The raw 24-bit access metadata: an LRU clock, or LFU minutes and counter.
    #[inline]
    pub fn access_bits(&self) -> u32 {
        self.access & LRU_MASK
    }

    /// Seconds-resolution clock value of the last access (24 bits, wraps like Redis's).
    pub fn access_clock(&self) -> u32 {
        self.access & LRU_MASK
    }

    /// Seconds since the last access, allowing for the 24-bit clock wrapping.
    pub fn idle_secs(&self, now_ms: u64) -> u64 {
        let now = lru_clock(now_ms);
        let then = self.access_clock();
        if now >= then {
            (now - then) as u64
        } else {
            (LRU_MASK - then + now + 1) as u64
        }
    }

    /// Encoding flags (`ENC_*`) to carry along when the value moves (RENAME, MOVE, COPY).
    pub fn encoding_flags(&self) -> u32 {
        self.access & !LRU_MASK
    }

    /// The name OBJECT ENCODING answers: from the content, unless the way the
    /// value was written fixes it (APPEND/SETRANGE make "raw", INCRBYFLOAT never "int").
    pub fn encoding(&self) -> &'static str {
        let flags = self.encoding_flags();
        match &self.value {
            Value::Str(_) if flags & ENC_RAW != 0 => "raw",
            Value::Str(b) if flags & ENC_NOINT != 0 => {
                if b.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
            v => v.encoding(),
        }
    }

    /// Bytes this entry accounts for beyond its slot in the dense vector.
    fn heap_size(&self) -> usize {
        self.key.heap_size() + self.value.heap_size()
    }
}

/// How a write treats the key's existing expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Keep whatever expiry the key has (SET KEEPTTL, APPEND, INCR ...).
    Keep,
    /// Set this absolute expiry in ms; 0 removes it.
    At(u64),
}

/// Counters kept per shard (under its lock) and summed for INFO.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    pub hits: u64,
    pub misses: u64,
    pub expired: u64,
}

#[derive(Debug, Default)]
pub struct Shard {
    /// Where expired keys are reported (keyspace notifications); `None` for
    /// a keyspace built without a [`Store`](super::Store).
    events: Option<Arc<DbEvents>>,
    index: HashTable<u32>,
    entries: Vec<Entry>,
    free_head: u32,
    live: usize,
    volatile: usize,
    heap: usize,
    expire_cursor: usize,
    pub stats: ShardStats,
    /// WATCHed keys of this shard with a version bumped by every change to
    /// the key (write, delete, expiry, flush). Empty unless someone watches,
    /// so the write path pays one emptiness check.
    watched: hashbrown::HashMap<Box<[u8]>, WatchSlot>,
    /// What this shard last added to the store-wide memory counter.
    reported: usize,
    /// xorshift state for the LFU counter's probabilistic increment.
    rng: u64,
    /// With persistence on: keys changed since the write-behind thread last
    /// wrote them (see `persist::engine`). Kept here, under the shard lock the
    /// write already holds, so marking costs one probe and no shared state.
    dirty: hashbrown::HashMap<Box<[u8]>, Dirty>,
    /// What this shard last added to the store-wide dirty key count.
    dirty_reported: usize,
}

/// A key not yet written to the persistence backend.
#[derive(Debug, Default)]
struct Dirty {
    /// 0: changed since the last drain; otherwise the drain generation that
    /// took its record (cleaned once that generation is written).
    drained: u64,
    /// The record of a value evicted before it reached the backend: the only
    /// copy until then, so a read finds it here.
    captured: Option<Box<[u8]>>,
}

/// Bytes a dirty mark accounts for beyond its key (map slot and header).
const DIRTY_OVERHEAD: usize = 40;

/// What the persistence writer sees of a dirty key when it drains a shard.
#[derive(Debug)]
pub enum DirtyState<'a> {
    /// The key's live value.
    Live(&'a Entry),
    /// The record of a value evicted before it was written.
    Captured(&'a [u8]),
    /// The key no longer exists (deleted, expired, renamed away).
    Gone,
}

/// Where a shard reads a key that is not in memory (persistence on and some
/// keys evicted or never loaded): implemented by the persistence engine.
pub trait Backing: Send + Sync + std::fmt::Debug {
    /// The value of `key` in the database whose current index is `db`, from
    /// the backend. Called with the key's shard locked.
    fn fetch(&self, db: &AtomicUsize, key: &[u8]) -> Option<(Value, Option<u64>)>;
    /// Rebuilds a value from a record captured at eviction.
    fn decode(&self, record: &[u8]) -> Option<(Value, Option<u64>)>;
}

/// A watched key: its modification count and how many clients watch it.
#[derive(Debug, Default, Clone, Copy)]
struct WatchSlot {
    version: u64,
    refs: u32,
}

impl Shard {
    fn new() -> Self {
        Shard {
            free_head: NO_FREE,
            rng: 0x2545_F491_4F6C_DD1D,
            ..Default::default()
        }
    }

    /// Reports this shard's memory to the store-wide counter once it moved by
    /// [`MEM_SYNC`] bytes, so `maxmemory` checks stay O(1) and mostly free of
    /// shared-cache-line writes.
    #[inline]
    fn sync_memory(&mut self) {
        if let Some(ev) = &self.events {
            let now = self.used_memory();
            if now.abs_diff(self.reported) >= MEM_SYNC {
                ev.hooks
                    .used
                    .fetch_add(now as isize - self.reported as isize, Ordering::Relaxed);
                self.reported = now;
            }
        }
    }

    #[inline]
    fn lfu_mode(&self) -> bool {
        self.events
            .as_ref()
            .is_some_and(|ev| ev.hooks.lfu.load(Ordering::Relaxed))
    }

    /// Access metadata for a new key: LRU clock, or LFU's initial counter.
    #[inline]
    fn fresh_access(&self, now: u64) -> u32 {
        if self.lfu_mode() {
            (lfu_minutes(now) << 8) | LFU_INIT_VAL
        } else {
            lru_clock(now)
        }
    }

    /// Records an access: refreshes the LRU clock, or decays and then
    /// logarithmically increments the LFU counter (Redis's updateLFU).
    #[inline]
    fn touch_access(&mut self, i: u32, now: u64) {
        let lfu = self
            .events
            .as_ref()
            .map(|ev| &ev.hooks)
            .filter(|h| h.lfu.load(Ordering::Relaxed));
        let Some((factor, decay)) = lfu.map(|h| {
            (
                h.lfu_log_factor.load(Ordering::Relaxed),
                h.lfu_decay_time.load(Ordering::Relaxed),
            )
        }) else {
            let e = &mut self.entries[i as usize];
            e.access = (e.access & !LRU_MASK) | lru_clock(now);
            e.touched = ticks(now);
            return;
        };
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let r = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let e = &mut self.entries[i as usize];
        let counter = lfu_decayed(e.access, now, decay);
        let counter = lfu_log_incr(counter, factor, r);
        e.access = (e.access & !LRU_MASK) | (lfu_minutes(now) << 8) | counter;
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Keys with an expiry.
    pub fn volatile(&self) -> usize {
        self.volatile
    }

    /// Bytes used by this shard: the slots, the index and what entries own on the heap.
    pub fn used_memory(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.index.allocation_size()
            + self.heap
    }

    #[inline]
    fn find(&self, h: u64, key: &[u8]) -> Option<u32> {
        let entries = &self.entries;
        self.index
            .find(h, |&i| entries[i as usize].key.as_slice() == key)
            .copied()
    }

    /// Finds a live key, deleting it first if it has expired (lazy expiry).
    /// Does not count hits or misses; see [`Shard::read`].
    #[inline]
    pub fn lookup(&mut self, h: u64, key: &[u8], now: u64) -> Option<u32> {
        // An expired key just deleted is marked dirty (persistence on), so
        // read-through finds the mark and answers a miss, never the disk copy.
        self.lookup_local(h, key, now)
            .or_else(|| self.read_through(h, key, now))
    }

    /// A lookup that never reads through to the persistence backend (eviction
    /// looks only at what is in memory).
    #[inline]
    pub fn lookup_local(&mut self, h: u64, key: &[u8], now: u64) -> Option<u32> {
        let idx = self.find(h, key)?;
        if self.entries[idx as usize].is_expired(now) {
            let old = self.remove_at(h, idx);
            self.stats.expired += 1;
            self.report_expired(&old);
            return None;
        }
        Some(idx)
    }

    /// A key missing from memory while the memory is not the whole dataset
    /// (persistence on, keys evicted or not loaded): brings it back from an
    /// eviction capture or the backend. Costs one flag load otherwise.
    #[cold]
    #[inline(never)]
    fn read_through(&mut self, h: u64, key: &[u8], now: u64) -> Option<u32> {
        let ev = self.events.as_ref()?;
        if ev.hooks.complete.load(Ordering::Relaxed) {
            return None;
        }
        let backing = ev.hooks.backing.get()?;
        let (value, at) = match self.dirty.get_mut(key) {
            // Changed and not in memory: deleted, unless evicted with a capture.
            Some(d) => {
                let rec = d.captured.take()?;
                self.heap -= rec.len();
                backing.decode(&rec)?
            }
            None => backing.fetch(&ev.db, key)?,
        };
        let at = at.unwrap_or(0);
        if at != 0 && now > at {
            // Expired while on disk: gone, and the backend's copy is deleted.
            Self::mark_in(&mut self.dirty, &mut self.heap, key);
            self.report_dirty();
            return None;
        }
        let idx = self.insert_entry(h, key, value, at, now);
        self.sync_memory();
        Some(idx)
    }

    /// A lookup for a read command: counts a keyspace hit or miss and
    /// refreshes the access clock unless `touch` is false.
    #[inline]
    pub fn read(&mut self, h: u64, key: &[u8], now: u64, touch: bool) -> Option<u32> {
        let r = self.lookup(h, key, now);
        match r {
            Some(i) => {
                self.stats.hits += 1;
                if touch {
                    self.touch_access(i, now);
                }
            }
            None => self.stats.misses += 1,
        }
        r
    }

    #[inline]
    pub fn entry(&self, idx: u32) -> &Entry {
        &self.entries[idx as usize]
    }

    /// Mutates a value in place, keeping the memory accounting true.
    pub fn value_mut<R>(&mut self, idx: u32, f: impl FnOnce(&mut Value) -> R) -> R {
        self.touch_watched_at(idx);
        self.mark_at(idx);
        let e = &mut self.entries[idx as usize];
        let before = e.value.heap_size();
        let r = f(&mut e.value);
        let after = e.value.heap_size();
        self.heap = self.heap + after - before;
        self.sync_memory();
        r
    }

    /// Replaces the encoding flags (`ENC_*`) of a live entry, keeping its access clock.
    pub fn set_encoding_flags(&mut self, idx: u32, flags: u32) {
        let e = &mut self.entries[idx as usize];
        e.access = (e.access & LRU_MASK) | (flags & !LRU_MASK);
    }

    /// Sets (`at > 0`) or removes (`at == 0`) the expiry of a live entry.
    pub fn set_expire(&mut self, idx: u32, at: u64) {
        self.touch_watched_at(idx);
        self.mark_at(idx);
        let e = &mut self.entries[idx as usize];
        let was = e.expire_at != 0;
        e.expire_at = at;
        match (was, at != 0) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
    }

    /// Inserts or overwrites `key`; returns the previous value if there was a live one.
    pub fn set(&mut self, h: u64, key: &[u8], value: Value, ttl: Ttl, now: u64) -> Option<Value> {
        match self.lookup(h, key, now) {
            Some(idx) => {
                let old = self.value_mut(idx, |v| std::mem::replace(v, value));
                if let Ttl::At(at) = ttl {
                    self.set_expire(idx, at);
                }
                // A new value: fresh LRU clock; LFU keeps the key's counter, as Redis's.
                if !self.lfu_mode() {
                    self.entries[idx as usize].access = lru_clock(now);
                    self.entries[idx as usize].touched = ticks(now);
                } else {
                    let e = &mut self.entries[idx as usize];
                    e.access &= LRU_MASK;
                }
                Some(old)
            }
            None => {
                let at = match ttl {
                    Ttl::Keep => 0,
                    Ttl::At(at) => at,
                };
                self.insert_new(h, key, value, at, now);
                None
            }
        }
    }

    /// Inserts a key known to be absent; returns its position.
    pub fn insert_new(
        &mut self,
        h: u64,
        key: &[u8],
        value: Value,
        expire_at: u64,
        now: u64,
    ) -> u32 {
        self.touch_watched(key);
        if self.persisting() {
            Self::mark_in(&mut self.dirty, &mut self.heap, key);
            self.report_dirty();
        }
        let idx = self.insert_entry(h, key, value, expire_at, now);
        self.sync_memory();
        idx
    }

    /// Inserts a key loaded from the persistence backend: not a change, so
    /// nothing is marked dirty and no WATCH is touched.
    pub fn insert_loaded(&mut self, key: &[u8], value: Value, expire_at: u64, now: u64) -> bool {
        let h = hash_key(key);
        if self.find(h, key).is_some() {
            return false;
        }
        self.insert_entry(h, key, value, expire_at, now);
        self.sync_memory();
        true
    }

    fn insert_entry(&mut self, h: u64, key: &[u8], value: Value, expire_at: u64, now: u64) -> u32 {
        let entry = Entry {
            key: CompactBytes::new(key),
            value,
            expire_at,
            access: self.fresh_access(now),
            touched: ticks(now),
        };
        self.heap += entry.heap_size();
        if expire_at != 0 {
            self.volatile += 1;
        }
        self.live += 1;
        let idx = if self.free_head != NO_FREE {
            let idx = self.free_head;
            self.free_head = self.entries[idx as usize].access;
            self.entries[idx as usize] = entry;
            idx
        } else {
            self.entries.push(entry);
            (self.entries.len() - 1) as u32
        };
        let entries = &self.entries;
        self.index
            .insert_unique(h, idx, |&i| hash_key(entries[i as usize].key.as_slice()));
        idx
    }

    /// Removes the entry at `idx` (whose key hashes to `h`) and returns it.
    pub fn remove_at(&mut self, h: u64, idx: u32) -> Entry {
        self.touch_watched_at(idx);
        self.mark_at(idx);
        self.remove_entry(h, idx)
    }

    /// Removes the entry at `idx` for eviction. With persistence on only the
    /// memory copy goes: a value the backend does not have yet is kept as a
    /// record in its dirty mark, so neither the write nor the key is lost.
    pub fn evict_at(&mut self, h: u64, idx: u32) -> Entry {
        self.touch_watched_at(idx);
        if self.persisting() {
            if let Some(ev) = &self.events {
                ev.hooks.complete.store(false, Ordering::Relaxed);
            }
            let e = &self.entries[idx as usize];
            if let Some(d) = self.dirty.get_mut(e.key.as_slice()) {
                let mut rec = Vec::new();
                super::codec::encode(&e.value, e.expire_at(), &mut rec);
                self.heap += rec.len();
                if let Some(old) = d.captured.replace(rec.into_boxed_slice()) {
                    self.heap -= old.len();
                }
            }
        }
        self.remove_entry(h, idx)
    }

    fn remove_entry(&mut self, h: u64, idx: u32) -> Entry {
        if let Ok(found) = self.index.find_entry(h, |&i| i == idx) {
            found.remove();
        }
        let hole = Entry {
            key: CompactBytes::default(),
            value: Value::Str(CompactBytes::default()),
            expire_at: HOLE,
            access: self.free_head,
            touched: 0,
        };
        let old = std::mem::replace(&mut self.entries[idx as usize], hole);
        self.free_head = idx;
        self.live -= 1;
        if old.expire_at != 0 {
            self.volatile -= 1;
        }
        self.heap -= old.heap_size();
        self.maybe_compact();
        self.sync_memory();
        old
    }

    /// Removes a live key; returns the entry if it existed and had not expired.
    pub fn remove(&mut self, h: u64, key: &[u8], now: u64) -> Option<Entry> {
        let idx = self.lookup(h, key, now)?;
        Some(self.remove_at(h, idx))
    }

    /// Rebuilds a shard that is mostly holes, returning the memory.
    /// Moving entries can make a SCAN in progress miss keys; it happens only
    /// when three quarters of the shard were deleted.
    fn maybe_compact(&mut self) {
        if self.live == 0 && !self.entries.is_empty() {
            // Empty: give everything back (the table and the slot vector).
            self.entries = Vec::new();
            self.index = HashTable::new();
            self.free_head = NO_FREE;
            self.expire_cursor = 0;
            return;
        }
        let cap = self.entries.len();
        if cap < 1024 || self.live * 4 > cap {
            return;
        }
        let old = std::mem::take(&mut self.entries);
        let mut entries = Vec::with_capacity(self.live.next_power_of_two());
        entries.extend(old.into_iter().filter(|e| !e.is_hole()));
        let mut index = HashTable::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            index.insert_unique(hash_key(e.key.as_slice()), i as u32, |_| 0);
        }
        self.index = index;
        self.entries = entries;
        self.free_head = NO_FREE;
        self.expire_cursor = 0;
    }

    /// Drops every key.
    pub fn clear(&mut self) {
        self.dirty.clear();
        self.flush_dirty_report();
        let stats = self.stats;
        let mut watched = std::mem::take(&mut self.watched);
        // FLUSH touches the watched keys that existed, as Redis's.
        for (k, w) in watched.iter_mut() {
            if self.find(hash_key(k), k).is_some() {
                w.version += 1;
            }
        }
        let events = self.events.take();
        let reported = self.reported;
        *self = Shard::new();
        self.stats = stats;
        self.watched = watched;
        self.events = events;
        // Hand back everything this shard had reported.
        self.reported = reported;
        if let Some(ev) = &self.events {
            let now = self.used_memory();
            ev.hooks
                .used
                .fetch_add(now as isize - reported as isize, Ordering::Relaxed);
            self.reported = now;
        }
    }

    /// Tells the store's expiry hook (if any) that `old` expired.
    #[inline]
    fn report_expired(&self, old: &Entry) {
        if let Some(ev) = &self.events {
            ev.expired(old.key.as_slice());
        }
    }

    #[inline]
    fn touch_watched(&mut self, key: &[u8]) {
        if !self.watched.is_empty()
            && let Some(w) = self.watched.get_mut(key)
        {
            w.version += 1;
        }
    }

    #[inline]
    fn touch_watched_at(&mut self, idx: u32) {
        // Disjoint fields: the key is borrowed in place, not copied.
        if !self.watched.is_empty()
            && let Some(w) = self
                .watched
                .get_mut(self.entries[idx as usize].key.as_slice())
        {
            w.version += 1;
        }
    }

    /// Whether changes must be marked for the persistence writer.
    #[inline]
    fn persisting(&self) -> bool {
        self.events
            .as_ref()
            .is_some_and(|ev| ev.hooks.persist.load(Ordering::Relaxed))
    }

    #[inline]
    fn mark_at(&mut self, idx: u32) {
        if self.persisting() {
            // Disjoint fields: the key is borrowed in place.
            let key = self.entries[idx as usize].key.as_slice();
            Self::mark_in(&mut self.dirty, &mut self.heap, key);
            self.report_dirty();
        }
    }

    /// Reports the dirty key count to the store-wide figure once it moved by
    /// 64, so the write path touches no shared cache line per write.
    #[inline]
    fn report_dirty(&mut self) {
        let len = self.dirty.len();
        if len.abs_diff(self.dirty_reported) >= 64 {
            self.flush_dirty_report();
        }
    }

    fn flush_dirty_report(&mut self) {
        let len = self.dirty.len();
        if let Some(ev) = &self.events {
            ev.hooks.dirty_keys.fetch_add(
                len as isize - self.dirty_reported as isize,
                Ordering::Relaxed,
            );
        }
        self.dirty_reported = len;
    }

    /// Marks `key` changed: the memory copy is now the one to write.
    fn mark_in(dirty: &mut hashbrown::HashMap<Box<[u8]>, Dirty>, heap: &mut usize, key: &[u8]) {
        match dirty.get_mut(key) {
            Some(d) => {
                d.drained = 0;
                if let Some(old) = d.captured.take() {
                    *heap -= old.len();
                }
            }
            None => {
                *heap += key.len() + DIRTY_OVERHEAD;
                dirty.insert(Box::from(key), Dirty::default());
            }
        }
    }

    /// Persistence writer: visits every key changed since the last drain
    /// with what it is now, and records that generation `generation` took it.
    /// Returns how many keys were visited.
    pub fn drain_dirty(
        &mut self,
        generation: u64,
        now: u64,
        mut f: impl FnMut(&[u8], DirtyState<'_>),
    ) -> usize {
        let mut n = 0;
        let (index, entries) = (&self.index, &self.entries);
        for (k, d) in self.dirty.iter_mut() {
            if d.drained != 0 {
                continue;
            }
            d.drained = generation;
            n += 1;
            let state = match &d.captured {
                Some(rec) => DirtyState::Captured(rec),
                None => {
                    let found = index
                        .find(hash_key(k), |&i| {
                            entries[i as usize].key.as_slice() == &k[..]
                        })
                        .map(|&i| &entries[i as usize]);
                    match found {
                        Some(e) if !e.is_expired(now) => DirtyState::Live(e),
                        _ => DirtyState::Gone,
                    }
                }
            };
            f(k, state);
        }
        n
    }

    /// Persistence writer: generation `generation` is written; its keys are clean
    /// unless changed again since. With `ok == false` (the write failed) they
    /// are marked for the next drain instead.
    pub fn finish_drain(&mut self, generation: u64, ok: bool) {
        let heap = &mut self.heap;
        self.dirty.retain(|k, d| {
            if d.drained != generation {
                return true;
            }
            if !ok {
                d.drained = 0;
                return true;
            }
            *heap -= k.len() + DIRTY_OVERHEAD + d.captured.as_ref().map_or(0, |c| c.len());
            false
        });
        if self.dirty.is_empty() && self.dirty.capacity() > 64 {
            self.dirty = hashbrown::HashMap::new();
        }
        self.flush_dirty_report();
        self.sync_memory();
    }

    /// Queues the backend's copy of an absent key for deletion (loading
    /// found it expired).
    pub fn mark_gone(&mut self, key: &[u8]) {
        if self.persisting() {
            Self::mark_in(&mut self.dirty, &mut self.heap, key);
            self.report_dirty();
        }
    }

    /// Keys waiting for the persistence writer.
    pub fn dirty_len(&self) -> usize {
        self.dirty.len()
    }

    /// Starts watching `key` (WATCH); returns its current version.
    pub fn watch(&mut self, key: &[u8]) -> u64 {
        let w = self.watched.entry(Box::from(key)).or_default();
        w.refs += 1;
        w.version
    }

    /// Stops one watch of `key` (UNWATCH, EXEC, DISCARD, disconnect).
    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(w) = self.watched.get_mut(key) {
            w.refs -= 1;
            if w.refs == 0 {
                self.watched.remove(key);
            }
        }
    }

    /// The version of a watched key (`None` if nobody watches it).
    pub fn watch_version(&self, key: &[u8]) -> Option<u64> {
        self.watched.get(key).map(|w| w.version)
    }

    /// The live entry of `key`, without deleting, counting or touching anything.
    pub fn peek(&self, h: u64, key: &[u8], now: u64) -> Option<&Entry> {
        let i = self.find(h, key)?;
        let e = &self.entries[i as usize];
        (!e.is_expired(now)).then_some(e)
    }

    /// Whether `key` is present but logically expired (not yet deleted).
    pub fn is_expired_key(&self, h: u64, key: &[u8], now: u64) -> bool {
        self.find(h, key)
            .is_some_and(|i| self.entries[i as usize].is_expired(now))
    }

    /// Whether `key` is present and live, without deleting or counting anything.
    pub fn exists_live(&self, h: u64, key: &[u8], now: u64) -> bool {
        self.find(h, key)
            .is_some_and(|i| !self.entries[i as usize].is_expired(now))
    }

    /// A random live position (may be expired; callers check).
    pub fn random_idx(&self, rng: &mut impl Rng) -> Option<u32> {
        if self.live == 0 {
            return None;
        }
        // Holes are at most 3/4 of the vector (compaction), so this ends fast.
        for _ in 0..256 {
            let i = rng.random_range(0..self.entries.len());
            if !self.entries[i].is_hole() {
                return Some(i as u32);
            }
        }
        self.entries
            .iter()
            .position(|e| !e.is_hole())
            .map(|i| i as u32)
    }

    /// Visits up to `n` live entries at consecutive positions from a random
    /// one (wrapping), looking at no more than `4n` positions. Consecutive
    /// positions share cache lines and prefetching, which is why Redis's
    /// eviction samples runs of buckets rather than scattered keys.
    pub fn sample_run(&self, rng: &mut impl Rng, n: usize, mut f: impl FnMut(&Entry)) {
        let len = self.entries.len();
        if self.live == 0 || len == 0 {
            return;
        }
        let mut at = rng.random_range(0..len);
        let mut taken = 0;
        for _ in 0..(4 * n).min(len) {
            let e = &self.entries[at];
            if !e.is_hole() {
                f(e);
                taken += 1;
                if taken == n {
                    return;
                }
            }
            at += 1;
            if at == len {
                at = 0;
            }
        }
    }

    /// Number of positions (live entries plus holes), the range of SCAN positions.
    pub fn slots(&self) -> usize {
        self.entries.len()
    }

    /// Visits live, unexpired entries from position `pos` until `budget`
    /// positions were looked at; returns the next position or `None` at the end.
    pub fn scan(
        &self,
        pos: usize,
        budget: usize,
        now: u64,
        mut f: impl FnMut(&Entry),
    ) -> Option<usize> {
        let end = (pos + budget.max(1)).min(self.entries.len());
        for e in self.entries.get(pos..end).unwrap_or(&[]) {
            if !e.is_hole() && !e.is_expired(now) {
                f(e);
            }
        }
        if end >= self.entries.len() {
            None
        } else {
            Some(end)
        }
    }

    /// Visits every live, unexpired entry.
    pub fn for_each(&self, now: u64, mut f: impl FnMut(&Entry)) {
        for e in &self.entries {
            if !e.is_hole() && !e.is_expired(now) {
                f(e);
            }
        }
    }

    /// One step of active expiry: looks at up to `samples` keys with a TTL
    /// (and at most 20x as many positions), deleting the expired ones.
    /// Returns (keys with a TTL looked at, keys deleted).
    pub fn expire_step(&mut self, now: u64, samples: usize) -> (usize, usize) {
        if self.volatile == 0 || self.entries.is_empty() {
            return (0, 0);
        }
        let (mut seen, mut expired) = (0, 0);
        let mut budget = samples * 20;
        let n = self.entries.len();
        while seen < samples && budget > 0 && self.volatile > 0 {
            if self.expire_cursor >= self.entries.len() {
                self.expire_cursor = 0;
            }
            let i = self.expire_cursor;
            self.expire_cursor += 1;
            budget -= 1;
            let e = &self.entries[i];
            if e.is_hole() || e.expire_at == 0 {
                continue;
            }
            seen += 1;
            if e.is_expired(now) {
                let h = hash_key(e.key.as_slice());
                let old = self.remove_at(h, i as u32);
                self.stats.expired += 1;
                self.report_expired(&old);
                expired += 1;
                if self.entries.len() != n {
                    // Compaction moved everything; start over next time.
                    break;
                }
            }
        }
        (seen, expired)
    }
}

/// The 10 ms tick clock of [`Entry::idle_ms`].
#[inline]
fn ticks(now_ms: u64) -> u32 {
    (now_ms / 10) as u32
}

/// LFU's 16-bit minutes clock (Redis's LFUGetTimeInMinutes).
#[inline]
pub fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFFFF) as u32
}

/// The LFU counter of `access` after decaying one step per `decay_time`
/// minutes since it was last touched (Redis's LFUDecrAndReturn).
pub fn lfu_decayed(access: u32, now_ms: u64, decay_time: u32) -> u32 {
    let ldt = (access >> 8) & 0xFFFF;
    let counter = access & 0xFF;
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    };
    let periods = elapsed.checked_div(decay_time).unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Redis's LFULogIncr: the counter grows with probability 1/((c-5)*factor+1),
/// so 255 means about a million hits at factor 10. `r` is uniform in [0, 1).
pub fn lfu_log_incr(counter: u32, factor: u32, r: f64) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * factor as f64 + 1.0);
    if r < p { counter + 1 } else { counter }
}

/// Seconds-resolution access clock, 24 bits (wraps every 194 days, like Redis's).
#[inline]
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32) & LRU_MASK
}

/// What a database's shards share to report expired keys: the database's
/// current index (SWAPDB changes it) and the store's hook.
#[derive(Debug)]
pub struct DbEvents {
    db: AtomicUsize,
    hooks: Arc<super::Hooks>,
}

impl DbEvents {
    #[inline]
    fn expired(&self, key: &[u8]) {
        if let Some(h) = self.hooks.expired.get() {
            h.expired(self.db.load(Ordering::Relaxed), key);
        }
    }
}

/// A logical database (SELECT index): shards chosen by key hash.
#[derive(Debug)]
pub struct Keyspace {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    events: Option<Arc<DbEvents>>,
}

/// Shard locks held in ascending order, for multi-key commands.
pub struct MultiLock<'a> {
    guards: Vec<(usize, MutexGuard<'a, Shard>)>,
    owner: &'a Keyspace,
}

impl MultiLock<'_> {
    /// The locked shard holding the key with hash `h`.
    pub fn shard(&mut self, h: u64) -> &mut Shard {
        let want = self.owner.shard_of(h);
        let pos = self
            .guards
            .binary_search_by_key(&want, |(i, _)| *i)
            .unwrap_or_else(|_| panic!("shard {want} was not locked by lock_many"));
        &mut self.guards[pos].1
    }
}

impl Keyspace {
    pub fn new(shards: usize) -> Self {
        Self::build(shards, None)
    }

    /// A database whose expired keys are reported to `hooks` as database `db`.
    pub fn with_hooks(shards: usize, db: usize, hooks: Arc<super::Hooks>) -> Self {
        let events = Arc::new(DbEvents {
            db: AtomicUsize::new(db),
            hooks,
        });
        Self::build(shards, Some(events))
    }

    fn build(shards: usize, events: Option<Arc<DbEvents>>) -> Self {
        let shards = shards.max(1);
        Keyspace {
            shards: (0..shards)
                .map(|_| {
                    let mut s = Shard::new();
                    s.events.clone_from(&events);
                    CachePadded::new(Mutex::new(s))
                })
                .collect(),
            events,
        }
    }

    /// The index expired-key events carry (SWAPDB moves a database).
    pub fn set_db_index(&self, db: usize) {
        if let Some(ev) = &self.events {
            ev.db.store(db, Ordering::Relaxed);
        }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Which shard a hash lives in. The shard's index uses the low bits (bucket)
    /// and the top 7 bits (probe tag) of the same hash, so the shard comes from
    /// bits 20..52: taking the top bits would give every key in a shard nearly
    /// the same tag and turn each probe into key comparisons.
    #[inline]
    pub fn shard_of(&self, h: u64) -> usize {
        ((((h >> 20) as u32 as u64) * self.shards.len() as u64) >> 32) as usize
    }

    /// Locks the shard of `key`; returns the key's hash with the guard.
    #[inline]
    pub fn lock(&self, key: &[u8]) -> (u64, MutexGuard<'_, Shard>) {
        let h = hash_key(key);
        (h, self.shards[self.shard_of(h)].lock())
    }

    pub fn lock_shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.shards[i].lock()
    }

    /// Locks the shards of all the given hashes, in ascending shard order.
    pub fn lock_many(&self, hashes: &[u64]) -> MultiLock<'_> {
        let mut idx: Vec<usize> = hashes.iter().map(|&h| self.shard_of(h)).collect();
        idx.sort_unstable();
        idx.dedup();
        MultiLock {
            guards: idx
                .into_iter()
                .map(|i| (i, self.shards[i].lock()))
                .collect(),
            owner: self,
        }
    }

    /// Number of keys (including not yet reclaimed expired ones, as Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys with an expiry.
    pub fn volatile(&self) -> usize {
        self.shards.iter().map(|s| s.lock().volatile()).sum()
    }

    pub fn clear(&self) {
        for s in self.shards.iter() {
            s.lock().clear();
        }
    }

    pub fn used_memory(&self) -> usize {
        self.shards.iter().map(|s| s.lock().used_memory()).sum()
    }

    pub fn stats(&self) -> ShardStats {
        let mut t = ShardStats::default();
        for s in self.shards.iter() {
            let st = s.lock().stats;
            t.hits += st.hits;
            t.misses += st.misses;
            t.expired += st.expired;
        }
        t
    }

    pub fn reset_stats(&self) {
        for s in self.shards.iter() {
            s.lock().stats = ShardStats::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_choice_leaves_the_probe_tag_spread() {
        // Keys of one shard must still differ in the top 7 bits (hashbrown's tag).
        let ks = Keyspace::new(64);
        let mut tags = std::collections::HashSet::new();
        for i in 0..10_000u32 {
            let h = hash_key(format!("key:{i}").as_bytes());
            if ks.shard_of(h) == 0 {
                tags.insert(h >> 57);
            }
        }
        assert!(
            tags.len() > 64,
            "only {} distinct tags in shard 0",
            tags.len()
        );
    }

    #[test]
    fn entry_is_compact() {
        assert!(
            std::mem::size_of::<Entry>() <= 64,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }

    #[test]
    fn insert_remove_reuse_and_compact() {
        let mut s = Shard::new();
        for i in 0..5000u32 {
            let k = format!("k{i}");
            s.set(
                hash_key(k.as_bytes()),
                k.as_bytes(),
                Value::str(b"v"),
                Ttl::Keep,
                0,
            );
        }
        assert_eq!(s.len(), 5000);
        for i in 0..4500u32 {
            let k = format!("k{i}");
            assert!(s.remove(hash_key(k.as_bytes()), k.as_bytes(), 0).is_some());
        }
        assert_eq!(s.len(), 500);
        assert!(s.entries.len() < 5000, "compacted");
        for i in 4500..5000u32 {
            let k = format!("k{i}");
            assert!(s.lookup(hash_key(k.as_bytes()), k.as_bytes(), 0).is_some());
        }
    }

    #[test]
    fn lazy_and_active_expiry() {
        let mut s = Shard::new();
        for i in 0..100u32 {
            let k = format!("k{i}");
            let ttl = if i % 2 == 0 { Ttl::At(1000) } else { Ttl::Keep };
            s.set(
                hash_key(k.as_bytes()),
                k.as_bytes(),
                Value::str(b"v"),
                ttl,
                0,
            );
        }
        assert_eq!(s.volatile(), 50);
        assert!(s.lookup(hash_key(b"k0"), b"k0", 1000).is_some());
        assert!(s.lookup(hash_key(b"k0"), b"k0", 1001).is_none());
        let mut total = 0;
        for _ in 0..100 {
            total += s.expire_step(1001, 20).1;
        }
        assert_eq!(total, 49);
        assert_eq!(s.len(), 50);
        assert_eq!(s.volatile(), 0);
    }
}

#[cfg(test)]
mod lfu_tests {
    use super::*;

    #[test]
    fn counter_grows_logarithmically_and_decays_per_period() {
        // Below the initial value every hit counts; past it, fewer and fewer.
        assert_eq!(lfu_log_incr(0, 10, 0.99), 1);
        assert_eq!(lfu_log_incr(5, 10, 0.99), 6);
        assert_eq!(lfu_log_incr(6, 10, 0.5), 6);
        assert_eq!(lfu_log_incr(6, 10, 0.05), 7);
        assert_eq!(lfu_log_incr(255, 10, 0.0), 255);
        let mut c = LFU_INIT_VAL;
        let mut x = 1u64;
        for _ in 0..100_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            c = lfu_log_incr(c, 10, (x >> 11) as f64 / (1u64 << 53) as f64);
        }
        // Redis documents about 142 after 100k hits at factor 10.
        assert!((120..170).contains(&c), "{c} after 100k hits");
        // One decrement per decay period of idle minutes.
        let t0 = 1_700_000_000_000u64;
        let access = (lfu_minutes(t0) << 8) | 30;
        assert_eq!(lfu_decayed(access, t0, 1), 30);
        assert_eq!(lfu_decayed(access, t0 + 10 * 60_000, 1), 20);
        assert_eq!(lfu_decayed(access, t0 + 10 * 60_000, 2), 25);
        assert_eq!(lfu_decayed(access, t0 + 10 * 60_000, 0), 30);
        assert_eq!(lfu_decayed(access, t0 + 100 * 60_000, 1), 0);
    }
}
