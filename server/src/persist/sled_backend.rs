//! The sled backend: one sled database in `<dir>/sled`, one tree `data` of storage key -> record.
//!
//! Durability: sled writes every batch to its log in memory and a
//! background thread flushes and fsyncs the log every `FLUSH_EVERY_MS`; a
//! `durable` apply and [`Backend::sync`] call `Db::flush`, which fsyncs
//! before returning. After a crash sled recovers a prefix of the applied
//! batches, each batch whole or not at all: everything up to the last flush
//! survives, later batches may or may not.
//!
//! Each `apply` is one `sled::Batch` (atomic in sled, on disk and to
//! readers). FLUSHDB, FLUSHALL and SWAPDB need the current contents of a
//! range, including earlier ops of the same call that are not in the tree
//! yet, so a call holding such ops first folds its ops into an overlay map
//! (storage key -> new record or deletion) read through on top of the tree,
//! and the overlay becomes the batch.

use super::{Backend, Kind, Op, PersistError, Result, db_range, split_storage_key, storage_key};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often sled's background thread flushes its log (sled's own default,
/// made explicit): the bound on what a crash loses between explicit syncs.
const FLUSH_EVERY_MS: u64 = 500;

/// sled's page cache. Its default is 1 GiB, but the in-memory store is
/// authoritative and the backend is only read at load and on the rare
/// read-through, so a small cache is enough and leaves the memory to the store.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long `open` waits for sled's file lock (see `open_waiting_for_lock`).
const LOCK_WAIT: Duration = Duration::from_secs(1);

const TREE: &str = "data";

pub struct SledBackend {
    db: sled::Db,
    tree: sled::Tree,
    dir: PathBuf,
    /// Serialises `apply`: a call reads ranges and then writes a batch built
    /// from them, which another call's batch must not interleave with.
    /// Readers (`get`, `for_each`) do not take it.
    write: Mutex<()>,
}

impl std::fmt::Debug for SledBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledBackend")
            .field("dir", &self.dir)
            .finish()
    }
}

/// Pending changes of one `apply` call: `None` deletes.
type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

impl SledBackend {
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("sled");
        // sled recovers what it can parse and starts empty if that is
        // nothing: a garbage or foreign log opens as an empty database. So
        // note whether sled's log held anything before the open, and refuse
        // if sled then reports it found no database in it.
        let log = path.join("db");
        let had_log = std::fs::metadata(&log).is_ok_and(|m| m.len() > 0);
        let config = sled::Config::new()
            .path(&path)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(FLUSH_EVERY_MS));
        let db = Self::open_waiting_for_lock(&config)
            .map_err(|e| Self::map_err(dir, &format!("opening {}", path.display()), e))?;
        if had_log && !db.was_recovered() {
            return Err(PersistError::Corrupt {
                dir: dir.to_path_buf(),
                detail: format!(
                    "sled found no database in the non-empty log {} (sled may have truncated the unreadable part; restore it from a backup or an export)",
                    log.display()
                ),
            });
        }
        if !had_log {
            // Make the new database's metadata durable at once, so that a
            // crash right after creation does not leave a non-empty log
            // without it, which the check above would refuse.
            db.flush()
                .map_err(|e| Self::map_err(dir, "flushing a new database", e))?;
        }
        let tree = db
            .open_tree(TREE)
            .map_err(|e| Self::map_err(dir, &format!("opening tree {TREE:?}"), e))?;
        Ok(SledBackend {
            db,
            tree,
            dir: dir.to_path_buf(),
            write: Mutex::new(()),
        })
    }

    /// Opens, retrying for up to `LOCK_WAIT` while the file lock is taken.
    ///
    /// Dropping a `sled::Db` does not release its lock at once: jobs on
    /// sled's I/O thread pool (log writes, segment truncation) hold the
    /// locked file until they finish, so a reopen in the same process just
    /// after a drop can find it still locked for some milliseconds. A lock
    /// held by a live handle (another process, or another open here) is
    /// still reported, after the wait.
    fn open_waiting_for_lock(config: &sled::Config) -> sled::Result<sled::Db> {
        let start = Instant::now();
        loop {
            match config.open() {
                // sled reports a held lock only as this message (sled pinned
                // at =0.34.7, so the text is stable).
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock")
                        && start.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    fn map_err(dir: &Path, context: &str, e: sled::Error) -> PersistError {
        match e {
            sled::Error::Corruption { at, .. } => PersistError::Corrupt {
                dir: dir.to_path_buf(),
                detail: format!("sled: {context}: corruption detected at {at:?}"),
            },
            other => PersistError::Backend {
                backend: "sled",
                detail: format!("{context} in {}: {other}", dir.display()),
            },
        }
    }

    fn err(&self, context: &str, e: sled::Error) -> PersistError {
        Self::map_err(&self.dir, context, e)
    }

    fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .map(drop)
            .map_err(|e| self.err("flushing", e))
    }

    /// The batch for ops that are only puts and deletes: no reads needed.
    /// `sled::Batch` keeps the last write per key, the same as applying
    /// them in order.
    fn simple_batch(ops: &[Op]) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                Op::Put { db, key, record } => batch.insert(storage_key(*db, key), &record[..]),
                Op::Del { db, key } => batch.remove(storage_key(*db, key)),
                Op::FlushDb(_) | Op::FlushAll | Op::SwapDb(..) => {}
            }
        }
        batch
    }

    /// Marks every key in `range` deleted, whether in the tree or pending.
    fn clear_range(
        &self,
        overlay: &mut Overlay,
        range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
    ) -> Result<()> {
        for k in self.tree.range(range.clone()).keys() {
            let k = k.map_err(|e| self.err("scanning a range to clear", e))?;
            overlay.insert(k.to_vec(), None);
        }
        for (_, v) in overlay.range_mut(range) {
            *v = None;
        }
        Ok(())
    }

    /// The contents of `db` as the ops so far leave it: tree, then overlay.
    /// Returns (user key, record) pairs.
    fn effective_db(&self, overlay: &Overlay, db: u32) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        let mut out = BTreeMap::new();
        for kv in self.tree.range(db_range(db)) {
            let (k, v) = kv.map_err(|e| self.err("scanning a db to swap", e))?;
            out.insert(k.to_vec(), v.to_vec());
        }
        for (k, v) in overlay.range(db_range(db)) {
            match v {
                Some(v) => out.insert(k.clone(), v.clone()),
                None => out.remove(k),
            };
        }
        // Strip the db prefix; every key in db_range(db) has it.
        Ok(out
            .into_iter()
            .filter_map(|(k, v)| Some((split_storage_key(&k)?.1.to_vec(), v)))
            .collect())
    }

    fn overlay_batch(&self, ops: &[Op]) -> Result<sled::Batch> {
        let mut overlay = Overlay::new();
        for op in ops {
            match op {
                Op::Put { db, key, record } => {
                    overlay.insert(storage_key(*db, key), Some(record.clone()));
                }
                Op::Del { db, key } => {
                    overlay.insert(storage_key(*db, key), None);
                }
                Op::FlushDb(db) => self.clear_range(&mut overlay, db_range(*db))?,
                Op::FlushAll => {
                    self.clear_range(&mut overlay, (Bound::Unbounded, Bound::Unbounded))?;
                }
                Op::SwapDb(a, b) if a == b => {}
                Op::SwapDb(a, b) => {
                    let in_a = self.effective_db(&overlay, *a)?;
                    let in_b = self.effective_db(&overlay, *b)?;
                    self.clear_range(&mut overlay, db_range(*a))?;
                    self.clear_range(&mut overlay, db_range(*b))?;
                    for (k, v) in in_a {
                        overlay.insert(storage_key(*b, &k), Some(v));
                    }
                    for (k, v) in in_b {
                        overlay.insert(storage_key(*a, &k), Some(v));
                    }
                }
            }
        }
        let mut batch = sled::Batch::default();
        for (k, v) in overlay {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        Ok(batch)
    }

    fn corrupt_key(&self, k: &[u8]) -> PersistError {
        PersistError::Corrupt {
            dir: self.dir.clone(),
            detail: format!(
                "sled tree {TREE:?} holds a key of {} bytes, shorter than the 4-byte db prefix",
                k.len()
            ),
        }
    }
}

impl Backend for SledBackend {
    fn kind(&self) -> Kind {
        Kind::Sled
    }

    fn apply(&self, ops: &[Op], durable: bool) -> Result<()> {
        if !ops.is_empty() {
            let _w = self.write.lock();
            let needs_reads = ops
                .iter()
                .any(|op| matches!(op, Op::FlushDb(_) | Op::FlushAll | Op::SwapDb(..)));
            let batch = if needs_reads {
                self.overlay_batch(ops)?
            } else {
                Self::simple_batch(ops)
            };
            self.tree
                .apply_batch(batch)
                .map_err(|e| self.err("applying a batch", e))?;
        }
        if durable { self.flush() } else { Ok(()) }
    }

    fn sync(&self) -> Result<()> {
        self.flush()
    }

    fn get(&self, db: u32, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.tree
            .get(storage_key(db, key))
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| self.err("reading a key", e))
    }

    fn for_each(&self, f: &mut dyn FnMut(u32, &[u8], &[u8]) -> bool) -> Result<()> {
        // Not a snapshot: batches applied during the walk may be seen in part.
        // At load and export nothing else writes.
        for kv in self.tree.iter() {
            let (k, v) = kv.map_err(|e| self.err("iterating", e))?;
            let (db, key) = split_storage_key(&k).ok_or_else(|| self.corrupt_key(&k))?;
            if !f(db, key, &v) {
                break;
            }
        }
        Ok(())
    }

    /// A full key scan: sled keeps no count.
    fn len(&self) -> Result<u64> {
        let mut n = 0u64;
        for k in self.tree.iter().keys() {
            k.map_err(|e| self.err("counting", e))?;
            n += 1;
        }
        Ok(n)
    }

    fn is_empty(&self) -> Result<bool> {
        match self.tree.iter().keys().next() {
            None => Ok(true),
            Some(Ok(_)) => Ok(false),
            Some(Err(e)) => Err(self.err("checking for records", e)),
        }
    }

    fn disk_bytes(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}
