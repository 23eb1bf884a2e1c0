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
//! Consistency: the drain runs under the whole execution gate (as EXEC
//! does), so a batch never holds half of a command or transaction (half a
//! RENAME would lose the key on a crash). Structural commands (FLUSHDB,
//! FLUSHALL, SWAPDB) change memory at once and queue their operation; the
//! next batch applies the queued operations first, then the drained keys,
//! which is their real order because both were taken under the gate. Until
//! that batch is written, a read-through translates the database index back
//! through the queued operations (a flushed database reads as empty).
//!
//! Locks: `cycle_lock` serialises cycles (writer thread, SAVE). `layout` is
//! taken for reading by read-through (inside a shard lock) and for writing
//! while a batch holding structural operations is applied, so a read never
//! translates through an operation the disk already has. Order: gate ->
//! shard (drain); shard -> layout -> `structural` (read-through); the writer
//! holds no shard lock while it waits for `layout`.

use super::{Backend, Fsync, Kind, Op, PersistError, Result};
use crate::command::tx::Gate;
use crate::store::codec::{self, Limits};
use crate::store::{Backing, DirtyState, Store, Value};
use parking_lot::{Condvar, Mutex, RwLock};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How often the writer looks for work when nobody asks (`always` cycles
/// on demand; expiry and eviction still leave work to pick up).
pub const CYCLE: Duration = Duration::from_millis(100);

/// The batch period of `everysec` (each batch durable) and `no`. One batch a
/// second rather than many small ones: random keys touch most of a B-tree's
/// leaves per batch, so fewer batches rewrite far fewer pages.
pub const BATCH_PERIOD: Duration = Duration::from_secs(1);

/// The writer's assumed speed (keys/s) until it has measured its own.
const INITIAL_RATE: u64 = 50_000;

/// With `everysec`, once the last durable batch *drained* this long ago the
/// writer is behind: write replies then wait for the next durable batch
/// (Redis delays writes when its AOF fsync lags), which bounds both the
/// backlog and how much a crash can lose.
pub const BEHIND: Duration = Duration::from_secs(2);

/// Counters for INFO persistence.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Unix ms of the last durable cycle that succeeded (LASTSAVE).
    pub last_save_unix_ms: AtomicU64,
    /// Unix ms at which the last successful durable batch drained: every
    /// write acknowledged before it is on disk.
    pub durable_as_of_unix_ms: AtomicU64,
    /// Keys written since the last durable cycle.
    pub changes_since_save: AtomicU64,
    pub last_write_ok: AtomicBool,
    pub batches: AtomicU64,
    pub keys_written: AtomicU64,
    pub write_errors: AtomicU64,
    pub durable_syncs: AtomicU64,
    /// Microseconds the last batch took to apply.
    pub last_batch_us: AtomicU64,
    /// Microseconds the last drain held the execution gate (commands wait
    /// that long), and the longest such pause.
    pub last_drain_us: AtomicU64,
    pub max_drain_us: AtomicU64,
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
    /// FLUSH/SWAPDB operations done in memory and not yet written, in order.
    structural: Arc<Mutex<Vec<(u64, Op)>>>,
    next_structural: AtomicU64,
    gate: Arc<Gate>,
    /// The store's shared state: the dirty key count (the writer's backlog).
    hooks: Arc<crate::store::Hooks>,
    /// Keys a second the backend has been taking (recent batches).
    rate: AtomicU64,
    /// A non-durable batch was applied since the last durable one.
    unsynced: AtomicBool,
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
    structural: Arc<Mutex<Vec<(u64, Op)>>>,
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
        // Undo the queued FLUSH/SWAPDB, newest first, to find where the
        // backend still keeps this database (or that it was flushed since).
        let db = {
            let pending = self.structural.lock();
            let mut i = db.load(Ordering::Relaxed) as u32;
            for (_, op) in pending.iter().rev() {
                match *op {
                    Op::SwapDb(a, b) if i == a => i = b,
                    Op::SwapDb(a, b) if i == b => i = a,
                    Op::FlushDb(x) if x == i => return None,
                    Op::FlushAll => return None,
                    _ => {}
                }
            }
            i
        };
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

/// The (db, key) a key operation is about, for sorting a batch.
fn op_key(op: &Op) -> (u32, &[u8]) {
    match op {
        Op::Put { db, key, .. } | Op::Del { db, key } => (*db, key),
        Op::FlushDb(_) | Op::FlushAll | Op::SwapDb(..) => (0, &[]),
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
        gate: Arc<Gate>,
    ) -> Result<Arc<Engine>> {
        let backend: Arc<dyn Backend> = match super::open(kind, dir)? {
            Some(b) => Arc::from(b),
            None => return Err(PersistError::NotCompiled("none")),
        };
        let node_id = super::marker::node_id(dir)?;
        let stats = Arc::new(EngineStats {
            last_save_unix_ms: AtomicU64::new(crate::node::unix_ms()),
            durable_as_of_unix_ms: AtomicU64::new(crate::node::unix_ms()),
            last_write_ok: AtomicBool::new(true),
            ..Default::default()
        });
        let limits = Arc::new(RwLock::new(limits));
        let layout = Arc::new(RwLock::new(()));
        let structural = Arc::new(Mutex::new(Vec::new()));
        let engine = Engine {
            backend: Arc::clone(&backend),
            dir: dir.to_path_buf(),
            node_id,
            fsync: AtomicU8::new(fsync as u8),
            limits: Arc::clone(&limits),
            layout: Arc::clone(&layout),
            structural: Arc::clone(&structural),
            next_structural: AtomicU64::new(0),
            gate,
            hooks: Arc::clone(store.hooks()),
            rate: AtomicU64::new(INITIAL_RATE),
            unsynced: AtomicBool::new(false),
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
            structural,
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
        // Loading is not the writer falling behind.
        self.stats
            .durable_as_of_unix_ms
            .store(crate::node::unix_ms(), Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name("shoal-persist".into())
            .spawn(move || me.run(&store));
        match spawned {
            Ok(h) => *self.thread.lock() = Some(h),
            Err(e) => tracing::error!(error = %e, "cannot start the persistence writer thread"),
        }
    }

    fn run(&self, store: &Store) {
        let mut last_batch = Instant::now();
        loop {
            let (stop, asked, asked_durable) = {
                let mut w = self.wake.lock();
                if !w.pending && !w.stop {
                    self.wake_cv.wait_for(&mut w, CYCLE);
                }
                let r = (w.stop, w.pending, w.durable);
                w.pending = false;
                w.durable = false;
                r
            };
            let fsync = self.fsync();
            // The period runs from drain to drain, so a slow batch does not
            // push the next one further away.
            // A backlog worth a third of a second starts a batch early.
            let due = fsync == Fsync::Always
                || last_batch.elapsed() >= BATCH_PERIOD
                || self.backlog_ms() >= BATCH_PERIOD.as_millis() as u64 / 3;
            if !(stop || asked || due) {
                continue;
            }
            let durable = stop || asked_durable || fsync != Fsync::No;
            let started = Instant::now();
            match self.cycle(store, durable) {
                Ok(_) => last_batch = started,
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

    /// Whether a write's reply must wait for the next durable batch:
    /// always with `always`, and with `everysec` while the writer is behind.
    #[inline]
    /// "Behind" counts the backlog too: the time since the last durable
    /// drain plus the time the writer needs for what is pending, so a slow
    /// backend throttles clients before their writes age past the bound.
    pub fn must_hold(&self) -> bool {
        match self.fsync() {
            Fsync::Always => true,
            Fsync::EverySec => {
                let last = self.stats.durable_as_of_unix_ms.load(Ordering::Relaxed);
                let lag = crate::node::unix_ms().saturating_sub(last);
                lag + self.backlog_ms() > BEHIND.as_millis() as u64
            }
            Fsync::No => false,
        }
    }

    /// Milliseconds the writer needs for the keys now pending, at its
    /// measured speed.
    #[inline]
    fn backlog_ms(&self) -> u64 {
        let pending = self.hooks.dirty_keys.load(Ordering::Relaxed).max(0) as u64;
        pending * 1000 / self.rate.load(Ordering::Relaxed).max(1)
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
        let drained_at = crate::node::unix_ms();
        let now = store.now_ms();
        let dbs = store.dbs();
        let mut ops = Vec::new();
        let mut drained = Vec::new();
        let gate = self.gate.write_all();
        let paused = Instant::now();
        // Structural operations first: they happened before every change
        // still dirty in the databases they touched (those were cleared).
        let structural: Vec<(u64, Op)> = self.structural.lock().clone();
        let last_structural = structural.last().map(|(seq, _)| *seq);
        ops.extend(structural.into_iter().map(|(_, op)| op));
        let first_key = ops.len();
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
        drop(gate);
        let pause = paused.elapsed().as_micros() as u64;
        self.stats.last_drain_us.store(pause, Ordering::Relaxed);
        self.stats.max_drain_us.fetch_max(pause, Ordering::Relaxed);
        let keys = ops.len() - first_key;
        // Each key appears once per batch, so order among keys is free: in
        // storage-key order the B-trees touch each page once, in sequence.
        ops[first_key..].sort_unstable_by(|a, b| op_key(a).cmp(&op_key(b)));
        let started = Instant::now();
        // An idle node syncs nothing: only non-durable batches need a sync.
        let res = if ops.is_empty() {
            if durable && self.unsynced.swap(false, Ordering::Relaxed) {
                self.backend.sync()
            } else {
                Ok(())
            }
        } else if let Some(last) = last_structural {
            // Readers translate through the queued operations until they
            // are gone: apply and dequeue as one step for them.
            let _layout = self.layout.write();
            let r = self.backend.apply(&ops, durable);
            if r.is_ok() {
                self.structural.lock().retain(|(seq, _)| *seq > last);
            }
            r
        } else {
            self.backend.apply(&ops, durable)
        };
        let ok = res.is_ok();
        if ok && !ops.is_empty() {
            // A durable batch syncs everything before it too.
            self.unsynced.store(!durable, Ordering::Relaxed);
        }
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
            st.keys_written.fetch_add(keys as u64, Ordering::Relaxed);
            st.changes_since_save
                .fetch_add(ops.len() as u64, Ordering::Relaxed);
            let took = started.elapsed();
            st.last_batch_us
                .store(took.as_micros() as u64, Ordering::Relaxed);
            if keys >= 1000 {
                let now = (keys as f64 / took.as_secs_f64().max(1e-6)) as u64;
                let old = self.rate.load(Ordering::Relaxed);
                self.rate.store((old * 3 + now) / 4, Ordering::Relaxed);
            }
        }
        if durable {
            st.durable_syncs.fetch_add(1, Ordering::Relaxed);
            st.changes_since_save.store(0, Ordering::Relaxed);
            st.last_save_unix_ms
                .store(crate::node::unix_ms(), Ordering::Relaxed);
            st.durable_as_of_unix_ms
                .store(drained_at, Ordering::Relaxed);
            self.durable.send_replace(generation);
        }
        Ok(keys)
    }

    /// FLUSHDB / FLUSHALL, called by the command (under its gate slot):
    /// memory is cleared now and the operation queued for the next batch.
    pub fn flush(&self, store: &Store, db: Option<usize>, clear: impl FnOnce()) {
        let op = match db {
            Some(db) => Op::FlushDb(db as u32),
            None => Op::FlushAll,
        };
        // Cleared after the queue is unlocked: clearing takes shard locks.
        self.queue(op, || {});
        clear();
        if db.is_none() {
            store.hooks().complete.store(true, Ordering::SeqCst);
        }
        self.wake(false);
    }

    /// SWAPDB: queued and swapped in memory under the queue's lock, so a
    /// read-through sees the new index and the queued swap together.
    pub fn swap_db(&self, a: usize, b: usize, swap: impl FnOnce()) {
        self.queue(Op::SwapDb(a as u32, b as u32), swap);
        self.wake(false);
    }

    /// Queues `op` and runs `then` before the queue is unlocked. `then` must
    /// take no shard lock: read-through takes the queue inside one.
    fn queue(&self, op: Op, then: impl FnOnce()) {
        let mut pending = self.structural.lock();
        let seq = self.next_structural.fetch_add(1, Ordering::Relaxed);
        pending.push((seq, op));
        then();
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

#[cfg(test)]
mod tests {
    //! The engine without its thread: every cycle is run by the test, so
    //! the windows between a change and its batch are held open on purpose.
    use super::*;
    use crate::store::{StoreConfig, SystemClock, Ttl};

    struct Setup {
        _dir: tempfile::TempDir,
        store: Arc<Store>,
        engine: Arc<Engine>,
    }

    fn setup(kind: Kind) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(Store::new(
            StoreConfig {
                databases: 4,
                shards: 4,
            },
            Arc::new(SystemClock),
        ));
        let engine = Engine::open(
            kind,
            dir.path(),
            Fsync::EverySec,
            Limits::default(),
            &store,
            Arc::new(Gate::default()),
        )
        .expect("open");
        Setup {
            _dir: dir,
            store,
            engine,
        }
    }

    fn set(store: &Store, db: usize, key: &str, val: &str) {
        let ks = store.db(db);
        let (h, mut shard) = ks.lock(key.as_bytes());
        shard.set(
            h,
            key.as_bytes(),
            Value::str(val.as_bytes()),
            Ttl::Keep,
            store.now_ms(),
        );
    }

    fn del(store: &Store, db: usize, key: &str) {
        let ks = store.db(db);
        let (h, mut shard) = ks.lock(key.as_bytes());
        shard.remove(h, key.as_bytes(), store.now_ms());
    }

    fn get(store: &Store, db: usize, key: &str) -> Option<String> {
        let ks = store.db(db);
        let (h, mut shard) = ks.lock(key.as_bytes());
        let i = shard.lookup(h, key.as_bytes(), store.now_ms())?;
        let v = shard.entry(i).value.as_str()?;
        Some(String::from_utf8_lossy(v.as_slice()).into_owned())
    }

    /// Drops every key from memory the way eviction does.
    fn evict_all(store: &Store) {
        for ks in store.dbs().iter() {
            for si in 0..ks.shard_count() {
                let mut shard = ks.lock_shard(si);
                let mut keys = Vec::new();
                shard.for_each(0, |e| keys.push(e.key.as_slice().to_vec()));
                for k in keys {
                    let h = crate::store::hash_key(&k);
                    if let Some(i) = shard.lookup_local(h, &k, 0) {
                        shard.evict_at(h, i);
                    }
                }
            }
        }
    }

    fn each_backend(f: impl Fn(Setup)) {
        for kind in Kind::compiled() {
            f(setup(kind));
        }
    }

    #[test]
    fn evicted_keys_read_through_whether_written_yet_or_not() {
        each_backend(|s| {
            set(&s.store, 0, "on-disk", "1");
            s.engine.cycle(&s.store, true).expect("cycle");
            // Not written yet when evicted: the capture is the only copy.
            set(&s.store, 0, "dirty", "2");
            set(&s.store, 0, "gone", "3");
            s.engine.cycle(&s.store, false).expect("cycle");
            del(&s.store, 0, "gone");
            evict_all(&s.store);
            assert!(!s.store.hooks().complete.load(Ordering::SeqCst));
            assert_eq!(get(&s.store, 0, "on-disk").as_deref(), Some("1"));
            assert_eq!(get(&s.store, 0, "dirty").as_deref(), Some("2"));
            assert_eq!(
                get(&s.store, 0, "gone"),
                None,
                "a deleted key came back from disk"
            );
            s.engine.cycle(&s.store, false).expect("cycle");
            evict_all(&s.store);
            assert_eq!(get(&s.store, 0, "dirty").as_deref(), Some("2"));
            assert_eq!(get(&s.store, 0, "gone"), None);
            assert_eq!(get(&s.store, 0, "never"), None);
        });
    }

    #[test]
    fn a_queued_flush_reads_as_empty_before_its_batch() {
        each_backend(|s| {
            set(&s.store, 0, "a", "1");
            set(&s.store, 1, "b", "2");
            s.engine.cycle(&s.store, true).expect("cycle");
            evict_all(&s.store);
            let db0 = s.store.db(0);
            s.engine.flush(&s.store, Some(0), || db0.clear());
            assert_eq!(
                get(&s.store, 0, "a"),
                None,
                "flushed key read back from disk"
            );
            assert_eq!(get(&s.store, 1, "b").as_deref(), Some("2"));
            evict_all(&s.store);
            s.engine.cycle(&s.store, false).expect("cycle");
            assert_eq!(get(&s.store, 0, "a"), None);
            assert_eq!(get(&s.store, 1, "b").as_deref(), Some("2"));
        });
    }

    #[test]
    fn a_queued_swap_translates_reads_before_its_batch() {
        each_backend(|s| {
            set(&s.store, 0, "a", "1");
            set(&s.store, 1, "b", "2");
            s.engine.cycle(&s.store, true).expect("cycle");
            evict_all(&s.store);
            let store = Arc::clone(&s.store);
            s.engine.swap_db(0, 1, || store.swap_db(0, 1));
            // Written after the swap, before its batch: lands in the new db 0.
            set(&s.store, 0, "c", "3");
            assert_eq!(get(&s.store, 0, "b").as_deref(), Some("2"));
            assert_eq!(get(&s.store, 1, "a").as_deref(), Some("1"));
            assert_eq!(get(&s.store, 0, "a"), None);
            s.engine.cycle(&s.store, false).expect("cycle");
            evict_all(&s.store);
            assert_eq!(get(&s.store, 0, "b").as_deref(), Some("2"));
            assert_eq!(get(&s.store, 0, "c").as_deref(), Some("3"));
            assert_eq!(get(&s.store, 1, "a").as_deref(), Some("1"));
            assert_eq!(get(&s.store, 1, "c"), None);
        });
    }
}
