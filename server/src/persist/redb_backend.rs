//! The redb backend: one redb database file `<dir>/data.redb`, one table `data` of storage key -> record.
//!
//! Durability: each `apply` is one write transaction, committed with
//! `Durability::Immediate` (fsync before returning) when `durable`, else
//! with `Durability::None`, which makes the commit visible to readers at
//! once but writes nothing durable: redb persists non-durable commits only
//! with the next `Immediate` commit or a clean close. [`Backend::sync`] is
//! therefore an empty `Immediate` commit. After a crash redb reopens at the
//! last `Immediate` commit: every non-durable commit after it is lost
//! (there is no background flush as in sled), each commit whole or not at all.
//!
//! redb trusts a file it closed cleanly and may panic on one altered outside
//! it, so the database is opened with `set_check_integrity_on_open`, which
//! verifies every page checksum (a full read of the file at start, which the
//! load reads anyway) and reports damage as an error instead.

use super::{Backend, Kind, Op, PersistError, Result, db_range, split_storage_key, storage_key};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use std::ops::Bound;
use std::path::{Path, PathBuf};

const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");

/// redb's page cache. Its default is 1 GiB, but the in-memory store is
/// authoritative and the backend is only read at load and on the rare
/// read-through, so a small cache leaves the memory to the store.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Name of the database file inside the data directory.
pub const FILE: &str = "data.redb";

pub struct RedbBackend {
    db: Database,
    dir: PathBuf,
    file: PathBuf,
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbBackend")
            .field("file", &self.file)
            .finish()
    }
}

/// Maps any redb error: damage to `Corrupt`, the rest to `Backend`, each with
/// what was being done and on which file.
fn map_err(dir: &Path, file: &Path, context: &str, e: impl Into<redb::Error>) -> PersistError {
    match e.into() {
        redb::Error::Corrupted(detail) => PersistError::Corrupt {
            dir: dir.to_path_buf(),
            detail: format!("redb {}: {context}: {detail}", file.display()),
        },
        // How redb reports a file that is not a redb database at all.
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            PersistError::Corrupt {
                dir: dir.to_path_buf(),
                detail: format!("redb {}: {context}: {io}", file.display()),
            }
        }
        redb::Error::DatabaseAlreadyOpen => PersistError::Backend {
            backend: "redb",
            detail: format!(
                "{context} {}: already open (by another process, or by another handle in this one)",
                file.display()
            ),
        },
        other => PersistError::Backend {
            backend: "redb",
            detail: format!("{context} {}: {other}", file.display()),
        },
    }
}

fn slice_bounds(r: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        r.0.as_ref().map(Vec::as_slice),
        r.1.as_ref().map(Vec::as_slice),
    )
}

impl RedbBackend {
    pub fn open(dir: &Path) -> Result<Self> {
        let file = dir.join(FILE);
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create(&file)
            .map_err(|e| map_err(dir, &file, "opening", e))?;
        let b = RedbBackend {
            db,
            dir: dir.to_path_buf(),
            file,
        };
        // Create the table up front, so readers never meet a missing one.
        let tx =
            b.db.begin_write()
                .map_err(|e| b.err("creating the table in", e))?;
        tx.open_table(DATA)
            .map_err(|e| b.err("creating the table in", e))?;
        tx.commit().map_err(|e| b.err("creating the table in", e))?;
        Ok(b)
    }

    fn err(&self, context: &str, e: impl Into<redb::Error>) -> PersistError {
        map_err(&self.dir, &self.file, context, e)
    }

    fn corrupt_key(&self, k: &[u8]) -> PersistError {
        PersistError::Corrupt {
            dir: self.dir.clone(),
            detail: format!(
                "redb {}: table \"data\" holds a key of {} bytes, shorter than the 4-byte db prefix",
                self.file.display(),
                k.len()
            ),
        }
    }

    /// (user key, record) pairs of `db`, as the transaction sees them.
    fn read_db(&self, t: &redb::Table<&[u8], &[u8]>, db: u32) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        let range = db_range(db);
        for kv in t
            .range::<&[u8]>(slice_bounds(&range))
            .map_err(|e| self.err("scanning a db to swap in", e))?
        {
            let (k, v) = kv.map_err(|e| self.err("scanning a db to swap in", e))?;
            let (_, key) =
                split_storage_key(k.value()).ok_or_else(|| self.corrupt_key(k.value()))?;
            out.push((key.to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn clear_db(&self, t: &mut redb::Table<&[u8], &[u8]>, db: u32) -> Result<()> {
        let range = db_range(db);
        t.retain_in::<&[u8], _>(slice_bounds(&range), |_, _| false)
            .map_err(|e| self.err("clearing a db in", e))
    }

    fn apply_ops(&self, t: &mut redb::Table<&[u8], &[u8]>, ops: &[Op]) -> Result<()> {
        for op in ops {
            match op {
                Op::Put { db, key, record } => {
                    t.insert(storage_key(*db, key).as_slice(), record.as_slice())
                        .map_err(|e| self.err("writing to", e))?;
                }
                Op::Del { db, key } => {
                    t.remove(storage_key(*db, key).as_slice())
                        .map_err(|e| self.err("deleting from", e))?;
                }
                Op::FlushDb(db) => self.clear_db(t, *db)?,
                Op::FlushAll => t
                    .retain(|_, _| false)
                    .map_err(|e| self.err("clearing", e))?,
                Op::SwapDb(a, b) if a == b => {}
                Op::SwapDb(a, b) => {
                    let in_a = self.read_db(t, *a)?;
                    let in_b = self.read_db(t, *b)?;
                    self.clear_db(t, *a)?;
                    self.clear_db(t, *b)?;
                    for (k, v) in in_a {
                        t.insert(storage_key(*b, &k).as_slice(), v.as_slice())
                            .map_err(|e| self.err("writing to", e))?;
                    }
                    for (k, v) in in_b {
                        t.insert(storage_key(*a, &k).as_slice(), v.as_slice())
                            .map_err(|e| self.err("writing to", e))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// One write transaction; on any error it is dropped, which aborts it,
    /// so a failed `apply` changes nothing.
    fn commit(&self, ops: &[Op], durability: Durability) -> Result<()> {
        let mut tx = self
            .db
            .begin_write()
            .map_err(|e| self.err("starting a write on", e))?;
        tx.set_durability(durability)
            .map_err(|e| self.err("setting durability on", e))?;
        {
            let mut t = tx
                .open_table(DATA)
                .map_err(|e| self.err("opening the table in", e))?;
            self.apply_ops(&mut t, ops)?;
        }
        tx.commit().map_err(|e| self.err("committing to", e))
    }

    fn read_table(&self) -> Result<redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
        let tx = self
            .db
            .begin_read()
            .map_err(|e| self.err("starting a read on", e))?;
        tx.open_table(DATA)
            .map_err(|e| self.err("opening the table in", e))
    }
}

impl Backend for RedbBackend {
    fn kind(&self) -> Kind {
        Kind::Redb
    }

    fn apply(&self, ops: &[Op], durable: bool) -> Result<()> {
        match (ops.is_empty(), durable) {
            (true, false) => Ok(()),
            (true, true) => self.sync(),
            (false, true) => self.commit(ops, Durability::Immediate),
            (false, false) => self.commit(ops, Durability::None),
        }
    }

    /// An empty `Immediate` commit: redb writes out the pending non-durable
    /// commits with it and fsyncs.
    fn sync(&self) -> Result<()> {
        self.commit(&[], Durability::Immediate)
    }

    fn get(&self, db: u32, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let t = self.read_table()?;
        let v = t
            .get(storage_key(db, key).as_slice())
            .map_err(|e| self.err("reading from", e))?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    /// Walks one read transaction: a consistent snapshot even while the
    /// writer commits.
    fn for_each(&self, f: &mut dyn FnMut(u32, &[u8], &[u8]) -> bool) -> Result<()> {
        let t = self.read_table()?;
        for kv in t.iter().map_err(|e| self.err("iterating", e))? {
            let (k, v) = kv.map_err(|e| self.err("iterating", e))?;
            let (db, key) =
                split_storage_key(k.value()).ok_or_else(|| self.corrupt_key(k.value()))?;
            if !f(db, key, v.value()) {
                break;
            }
        }
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        self.read_table()?
            .len()
            .map_err(|e| self.err("counting in", e))
    }

    fn is_empty(&self) -> Result<bool> {
        self.read_table()?
            .is_empty()
            .map_err(|e| self.err("checking for records in", e))
    }

    fn disk_bytes(&self) -> u64 {
        std::fs::metadata(&self.file).map(|m| m.len()).unwrap_or(0)
    }
}
