//! The write-behind engine: drains the shards' dirty marks into ordered batches for the backend on its own thread, loads the data at start, reads through on a miss, and orders SAVE, FLUSH and SWAPDB with the batches.
//!
//! How a write reaches disk: the command changes memory and the shard marks
//! the key dirty (under the lock it already holds). Every cycle the writer
//! takes a new *generation* number, visits the shards, encodes the current
//! value of each dirty key (or a delete), applies the batch to the backend in
//! one atomic write, then clears the marks of that generation unless the key
//! changed again meanwhile. A key written many times between cycles is
//! written once. A command that needs durability (`appendfsync always`) waits
//! until a durable cycle whose generation started after its change.
//!
//! Why whole values rather than a command log: the backend must answer a
//! read of one key (memory is a cache over disk), which needs key -> value.
//!
//! Locks: `cycle_lock` makes cycles, SAVE and the structural commands
//! (FLUSHDB, FLUSHALL, SWAPDB) one ordered stream. `layout` is taken for
//! reading by read-through (inside a shard lock) and for writing while a
//! structural change is applied to disk, so a read never sees disk and
//! memory disagree on which database is which. Order: shard -> layout; a
//! structural change never takes a shard lock while it holds `layout`.

use super::{Backend, Fsync, Kind, Op, PersistError, Result};
use crate::store::codec::{self, Limits};
use crate::store::{Backing, DirtyState, Store, Value};
use parking_lot::{Condvar, Mutex, RwLock};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often the writer drains the shards when nobody asks sooner.
pub const CYCLE: Duration = Duration::from_millis(100);

/// Counters for INFO persistence.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Unix ms of the last durable cycle that succeeded (LASTSAVE).
    pub last_save_unix_ms: AtomicU64,
    /// Keys written since the last durable cycle.
    pub changes_since_save: AtomicU64,
    pub last_write_ok: AtomicBool,
    pub batches: AtomicU64,
    pub keys_written: AtomicU64,
    pub write_errors: AtomicU64,
    pub durable_syncs: AtomicU64,
    /// Microseconds the last batch took to apply.
    pub last_batch_us: AtomicU64,
    pub loading: AtomicBool,
    pub loaded_keys: AtomicU64,
    pub load_expired_skipped: AtomicU64,
    /// Milliseconds the load at start took (0 while loading).
    pub load_ms: AtomicU64,
    /// Loading stopped at maxmemory; the rest is read through on a miss.
    pub load_partial: AtomicBool,
    pub read_through: AtomicU64,
    pub read_errors: AtomicU64,
}

/// The persistence engine of one node.
pub struct Engine {
    backend: Arc<dyn Backend>,
    /// The data directory, named by the errors `load` reports.
    dir: PathBuf,
    node_id: String,
    fsync: AtomicU8,
    limits: Arc<RwLock<Limits>>,
    layout: Arc<RwLock<()>>,
    cycle_lock: Mutex<()>,
    generation: AtomicU64,
    /// The last generation known durable; `always` waiters watch it.
    durable: tokio::sync::watch::Sender<u64>,
    wake: Mutex<Wake>,
    wake_cv: Condvar,
    pub stats: Arc<EngineStats>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Wake {
    pending: bool,
    durable: bool,
    stop: bool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.backend.kind())
            .field("node_id", &self.node_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// What the shards call to read a key that is not in memory.
struct Reader {
    backend: Arc<dyn Backend>,
    limits: Arc<RwLock<Limits>>,
    layout: Arc<RwLock<()>>,
    stats: Arc<EngineStats>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("backend", &self.backend.kind())
            .finish_non_exhaustive()
    }
}

impl Backing for Reader {
    fn fetch(&self, db: &AtomicUsize, key: &[u8]) -> Option<(Value, Option<u64>)> {
        let _layout = self.layout.read();
        let db = db.load(Ordering::Relaxed) as u32;
        match self.backend.get(db, key) {
            Ok(Some(rec)) => {
                self.stats.read_through.fetch_add(1, Ordering::Relaxed);
                self.decode(&rec)
            }
            Ok(None) => None,
            Err(e) => {
                self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, db, "read-through from the persistence backend failed; answering as a miss");
                None
            }
        }
    }

    fn decode(&self, record: &[u8]) -> Option<(Value, Option<u64>)> {
        match codec::decode(record, &self.limits.read()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.stats.read_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "undecodable record in the persistence backend");
                None
            }
        }
    }
}

/// The encoding limits of `config`, so loaded values get the encodings the
/// commands would give them.
pub fn limits_of(config: &crate::config::Config) -> Limits {
    Limits {
        hash: crate::store::hash::HashLimits {
            max_entries: config.hash_max_listpack_entries,
            max_value: config.hash_max_listpack_value,
        },
        list: config.list_max_listpack_size,
        set_max_intset: config.set_max_intset_entries,
        zset: crate::store::zset::Limits {
            entries: config.zset_max_listpack_entries,
            value: config.zset_max_listpack_value,
        },
    }
}

/// What loading found.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadReport {
    pub loaded: u64,
    pub expired: u64,
    /// Stopped at `maxmemory`: the rest stays on disk and is read through.
    pub partial: bool,
    pub took: Duration,
}

impl Engine {
    /// Opens the backend in `dir` and hooks the engine into `store`: shards
    /// start marking changes and misses read through once memory is not the
    /// whole dataset.
    pub fn open(
        kind: Kind,
        dir: &Path,
        fsync: Fsync,
        limits: Limits,
        store: &Store,
    ) -> Result<Arc<Engine>> {
        let backend: Arc<dyn Backend> = match super::open(kind, dir)? {
            Some(b) => Arc::from(b),
            None => return Err(PersistError::NotCompiled("none")),
        };
        let node_id = super::marker::node_id(dir)?;
        let stats = Arc::new(EngineStats {
            last_save_unix_ms: AtomicU64::new(crate::node::unix_ms()),
            last_write_ok: AtomicBool::new(true),
            ..Default::default()
        });
        let limits = Arc::new(RwLock::new(limits));
        let layout = Arc::new(RwLock::new(()));
        let engine = Engine {
            backend: Arc::clone(&backend),
            dir: dir.to_path_buf(),
            node_id,
            fsync: AtomicU8::new(fsync as u8),
            limits: Arc::clone(&limits),
            layout: Arc::clone(&layout),
            cycle_lock: Mutex::new(()),
            generation: AtomicU64::new(0),
            durable: tokio::sync::watch::Sender::new(0),
            wake: Mutex::new(Wake::default()),
            wake_cv: Condvar::new(),
            stats: Arc::clone(&stats),
            thread: Mutex::new(None),
        };
        let hooks = store.hooks();
        let _ = hooks.backing.set(Box::new(Reader {
            backend,
            limits,
            layout,
            stats,
        }));
        hooks.persist.store(true, Ordering::SeqCst);
        Ok(Arc::new(engine))
    }

    pub fn kind(&self) -> Kind {
        self.backend.kind()
    }

    /// The node id kept in the data directory.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn fsync(&self) -> Fsync {
        match self.fsync.load(Ordering::Relaxed) {
            0 => Fsync::Always,
            1 => Fsync::EverySec,
            _ => Fsync::No,
        }
    }

    pub fn set_fsync(&self, f: Fsync) {
        self.fsync.store(f as u8, Ordering::Relaxed);
    }

    pub fn set_limits(&self, l: Limits) {
        *self.limits.write() = l;
    }

    pub fn disk_bytes(&self) -> u64 {
        self.backend.disk_bytes()
    }

    /// Loads every record into `store` (expired ones are skipped and their
    /// deletion queued), stopping at `max_bytes` of used memory if non-zero
    /// (then misses read through). A record that cannot be decoded, or a
    /// database index beyond `databases`, is an error: refusing to start is
    /// better than silently serving part of the data.
    pub fn load(&self, store: &Store, max_bytes: u64, key_delay: Duration) -> Result<LoadReport> {
        let start = Instant::now();
        self.stats.loading.store(true, Ordering::Relaxed);
        let dbs = store.dbs();
        let limits = *self.limits.read();
        let now = store.now_ms();
        let mut report = LoadReport::default();
        let mut failure: Option<PersistError> = None;
        let mut last_log = start;
        let backend = self.backend.kind().name();
        self.backend.for_each(&mut |db, key, rec| {
            let Some(ks) = dbs.get(db as usize) else {
                // The directory, not an empty path: the message reads "data
                // directory {dir} is corrupt" (it said "data directory  is").
                failure = Some(PersistError::Corrupt {
                    dir: self.dir.clone(),
                    detail: format!(
                        "a key of database {db} is stored, but `databases` is {}; start with databases > {db}",
                        dbs.len()
                    ),
                });
                return false;
            };
            if max_bytes != 0 && store.used_memory_fast() as u64 >= max_bytes {
                report.partial = true;
                return false;
            }
            let (value, at) = match codec::decode(rec, &limits) {
                Ok(v) => v,
                Err(e) => {
                    failure = Some(PersistError::Corrupt {
                        dir: self.dir.clone(),
                        detail: format!(
                            "record of key {} in database {db} cannot be decoded: {e}",
                            crate::util_repr(key)
                        ),
                    });
                    return false;
                }
            };
            let (_, mut shard) = ks.lock(key);
            match at {
                Some(at) if now > at => {
                    shard.mark_gone(key);
                    report.expired += 1;
                }
                _ => {
                    shard.insert_loaded(key, value, at.unwrap_or(0), now);
                    report.loaded += 1;
                    self.stats.loaded_keys.store(report.loaded, Ordering::Relaxed);
                }
            }
            drop(shard);
            if !key_delay.is_zero() {
                std::thread::sleep(key_delay);
            }
            if last_log.elapsed() >= Duration::from_secs(2) {
                last_log = Instant::now();
                let secs = start.elapsed().as_secs_f64();
                tracing::info!(
                    backend,
                    loaded = report.loaded,
                    keys_per_sec = (report.loaded as f64 / secs) as u64,
                    "loading the dataset"
                );
            }
            true
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        if report.partial {
            store.hooks().complete.store(false, Ordering::SeqCst);
            self.stats.load_partial.store(true, Ordering::Relaxed);
        }
        report.took = start.elapsed();
        self.stats
            .load_expired_skipped
            .store(report.expired, Ordering::Relaxed);
        self.stats
            .load_ms
            .store(report.took.as_millis() as u64, Ordering::Relaxed);
        self.stats.loading.store(false, Ordering::Relaxed);
        Ok(report)
    }

    /// Starts the write-behind thread; it holds `store` until [`Engine::stop`].
    pub fn start(self: &Arc<Self>, store: Arc<Store>) {
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("shoal-persist".into())
            .spawn(move || me.run(&store));
        match spawned {
            Ok(h) => *self.thread.lock() = Some(h),
            Err(e) => tracing::error!(error = %e, "cannot start the persistence writer thread"),
        }
    }

    fn run(&self, store: &Store) {
        let mut last_sync = Instant::now();
        loop {
            let (stop, asked_durable) = {
                let mut w = self.wake.lock();
                if !w.pending && !w.stop {
                    self.wake_cv.wait_for(&mut w, CYCLE);
                }
                let r = (w.stop, w.durable);
                w.pending = false;
                w.durable = false;
                r
            };
            let durable = stop
                || asked_durable
                || match self.fsync() {
                    Fsync::Always => true,
                    Fsync::EverySec => last_sync.elapsed() >= Duration::from_secs(1),
                    Fsync::No => false,
                };
            match self.cycle(store, durable) {
                Ok(_) if durable => last_sync = Instant::now(),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "persistence write failed; the keys stay dirty and are retried");
                    std::thread::sleep(CYCLE);
                }
            }
            if stop {
                return;
            }
        }
    }

    /// Asks the writer for a cycle now (durable if `durable`).
    pub fn wake(&self, durable: bool) {
        let mut w = self.wake.lock();
        w.pending = true;
        w.durable |= durable;
        drop(w);
        self.wake_cv.notify_one();
    }

    /// Stops the writer after a last durable cycle, and waits for it.
    pub fn stop(&self) {
        {
            let mut w = self.wake.lock();
            w.stop = true;
            w.pending = true;
        }
        self.wake_cv.notify_one();
        let handle = self.thread.lock().take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!("the persistence writer thread panicked");
        }
    }

    /// The generation a change made before this call is written by; with
    /// `appendfsync always`, the reply waits for [`Engine::durable`] to reach it.
    #[inline]
    pub fn target(&self) -> u64 {
        self.generation.load(Ordering::SeqCst) + 1
    }

    /// Watches the last durable generation.
    pub fn durable(&self) -> tokio::sync::watch::Receiver<u64> {
        self.durable.subscribe()
    }

    /// One write-behind cycle; durable: the backend syncs before it returns.
    /// Returns the number of keys written.
    pub fn cycle(&self, store: &Store, durable: bool) -> Result<usize> {
        let _order = self.cycle_lock.lock();
        self.cycle_locked(store, durable)
    }

    /// SAVE: everything changed so far written and made durable, now.
    pub fn save(&self, store: &Store) -> Result<usize> {
        self.cycle(store, true)
    }

    fn cycle_locked(&self, store: &Store, durable: bool) -> Result<usize> {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let now = store.now_ms();
        let dbs = store.dbs();
        let mut ops = Vec::new();
        let mut drained = Vec::new();
        for (dbi, ks) in dbs.iter().enumerate() {
            let db = dbi as u32;
            for si in 0..ks.shard_count() {
                let mut shard = ks.lock_shard(si);
                if shard.dirty_len() == 0 {
                    continue;
                }
                let n = shard.drain_dirty(generation, now, |key, state| {
                    ops.push(match state {
                        DirtyState::Live(e) => {
                            let mut record = Vec::with_capacity(16 + e.value.heap_size());
                            codec::encode(&e.value, e.expire_at(), &mut record);
                            Op::Put {
                                db,
                                key: key.to_vec(),
                                record,
                            }
                        }
                        DirtyState::Captured(rec) => Op::Put {
                            db,
                            key: key.to_vec(),
                            record: rec.to_vec(),
                        },
                        DirtyState::Gone => Op::Del {
                            db,
                            key: key.to_vec(),
                        },
                    })
                });
                if n > 0 {
                    drained.push((dbi, si));
                }
            }
        }
        let started = Instant::now();
        let res = if ops.is_empty() {
            if durable { self.backend.sync() } else { Ok(()) }
        } else {
            self.backend.apply(&ops, durable)
        };
        let ok = res.is_ok();
        for (dbi, si) in drained {
            dbs[dbi].lock_shard(si).finish_drain(generation, ok);
        }
        let st = &self.stats;
        st.last_write_ok.store(ok, Ordering::Relaxed);
        if !ok {
            st.write_errors.fetch_add(1, Ordering::Relaxed);
        }
        res?;
        if !ops.is_empty() {
            st.batches.fetch_add(1, Ordering::Relaxed);
            st.keys_written
                .fetch_add(ops.len() as u64, Ordering::Relaxed);
            st.changes_since_save
                .fetch_add(ops.len() as u64, Ordering::Relaxed);
            st.last_batch_us
                .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        if durable {
            st.durable_syncs.fetch_add(1, Ordering::Relaxed);
            st.changes_since_save.store(0, Ordering::Relaxed);
            st.last_save_unix_ms
                .store(crate::node::unix_ms(), Ordering::Relaxed);
            self.durable.send_replace(generation);
        }
        Ok(ops.len())
    }

    /// FLUSHDB / FLUSHALL: what was written before goes to disk first, then
    /// the backend drops the database(s), then memory does (`clear`). Disk
    /// goes first so a read-through in between finds nothing rather than a
    /// key that is being flushed.
    pub fn flush(&self, store: &Store, db: Option<usize>, clear: impl FnOnce()) -> Result<()> {
        let _order = self.cycle_lock.lock();
        let pending = self.cycle_locked(store, false);
        let op = match db {
            Some(db) => Op::FlushDb(db as u32),
            None => Op::FlushAll,
        };
        let res = {
            let _layout = self.layout.write();
            pending.and_then(|_| self.backend.apply(&[op], self.fsync() == Fsync::Always))
        };
        // Memory is cleared even if the disk write failed: the client asked
        // for it, and the error is reported (the disk keeps the old keys).
        clear();
        if res.is_ok() && db.is_none() {
            store.hooks().complete.store(true, Ordering::SeqCst);
        }
        res
    }

    /// SWAPDB: pending writes first, then disk and memory swap together
    /// under `layout` (`swap` takes no shard lock).
    pub fn swap_db(&self, store: &Store, a: usize, b: usize, swap: impl FnOnce()) -> Result<()> {
        let _order = self.cycle_lock.lock();
        self.cycle_locked(store, false)?;
        let _layout = self.layout.write();
        self.backend.apply(
            &[Op::SwapDb(a as u32, b as u32)],
            self.fsync() == Fsync::Always,
        )?;
        swap();
        Ok(())
    }

    /// Keys waiting for the writer (INFO).
    pub fn pending(&self, store: &Store) -> usize {
        let dbs = store.dbs();
        dbs.iter()
            .map(|ks| {
                (0..ks.shard_count())
                    .map(|i| ks.lock_shard(i).dirty_len())
                    .sum::<usize>()
            })
            .sum()
    }
}
