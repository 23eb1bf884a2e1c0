//! Persistence backends: one `Backend` trait over opaque (db, key) -> record bytes, with sled and redb implementations behind Cargo features.
//!
//! The in-memory store stays authoritative; the engine's write-behind thread
//! (`persist::writer`) hands batches of [`Op`]s to a backend in order. A
//! backend knows nothing of values: records are encoded by `store::codec`.
//! Every backend passes the same test suite (`persist::tests`).

use std::ops::Bound;
use std::path::{Path, PathBuf};

pub mod engine;
pub mod marker;
pub mod portable;
#[cfg(feature = "persistence-redb")]
mod redb_backend;
#[cfg(feature = "persistence-sled")]
mod sled_backend;
#[cfg(test)]
mod tests;

/// Everything that can go wrong below the engine, with the evidence.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("data directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "data directory {dir} holds shoal data format {found}; this build reads format {expected} (export with the version that wrote it, then import)"
    )]
    Version {
        dir: PathBuf,
        found: String,
        expected: u32,
    },
    #[error(
        "data directory {dir} was written by the {found} backend, but persistence is set to {expected}"
    )]
    BackendMismatch {
        dir: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("data directory {dir} is corrupt: {detail}")]
    Corrupt { dir: PathBuf, detail: String },
    #[error("{backend} backend: {detail}")]
    Backend {
        backend: &'static str,
        detail: String,
    },
    #[error("persistence {0} is not compiled into this build (Cargo feature persistence-{0})")]
    NotCompiled(&'static str),
    #[error("export file {file}: {detail}")]
    Export { file: PathBuf, detail: String },
}

pub type Result<T> = std::result::Result<T, PersistError>;

/// Which backend (`persistence` config parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    None,
    Sled,
    Redb,
}

impl Kind {
    pub const NAMES: [&'static str; 3] = ["none", "sled", "redb"];

    pub fn parse(s: &str) -> Option<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "no" | "off" => Some(Kind::None),
            "sled" => Some(Kind::Sled),
            "redb" => Some(Kind::Redb),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::None => "none",
            Kind::Sled => "sled",
            Kind::Redb => "redb",
        }
    }

    /// Backends compiled into this build.
    pub fn compiled() -> Vec<Kind> {
        let mut v = Vec::new();
        if cfg!(feature = "persistence-sled") {
            v.push(Kind::Sled);
        }
        if cfg!(feature = "persistence-redb") {
            v.push(Kind::Redb);
        }
        v
    }
}

/// When a write is durable (`appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// On stable storage before its reply is sent.
    Always,
    /// Written behind within ~100 ms, made durable at least every second.
    EverySec,
    /// Written behind; durable when the backend flushes on its own (sled:
    /// every 500 ms; redb: at SAVE, shutdown or the next durable commit).
    No,
}

impl Fsync {
    pub fn parse(s: &str) -> Option<Fsync> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Some(Fsync::Always),
            "everysec" => Some(Fsync::EverySec),
            "no" => Some(Fsync::No),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        }
    }
}

/// One change, applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets the record of a key (insert or overwrite).
    Put {
        db: u32,
        key: Vec<u8>,
        record: Vec<u8>,
    },
    /// Removes a key (absent is fine).
    Del { db: u32, key: Vec<u8> },
    /// Removes every key of one database (FLUSHDB).
    FlushDb(u32),
    /// Removes every key (FLUSHALL).
    FlushAll,
    /// Exchanges the contents of two databases (SWAPDB).
    SwapDb(u32, u32),
}

/// A storage engine. Calls come from one writer thread plus readers
/// (read-through on a miss, load at start), so implementations are `Sync`.
pub trait Backend: Send + Sync + 'static {
    fn kind(&self) -> Kind;
    /// Applies `ops` in order, as one atomic batch where the engine allows.
    /// With `durable`, the batch (and all before it) is on stable storage
    /// when this returns.
    fn apply(&self, ops: &[Op], durable: bool) -> Result<()>;
    /// Makes everything applied so far durable.
    fn sync(&self) -> Result<()>;
    fn get(&self, db: u32, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Visits every record (db, key, record) in key order per db; stops when
    /// `f` returns false.
    // The closure type is spelled out so that implementations can repeat it.
    #[allow(clippy::type_complexity)]
    fn for_each(&self, f: &mut dyn FnMut(u32, &[u8], &[u8]) -> bool) -> Result<()>;
    /// Number of records stored (a full scan on sled).
    fn len(&self) -> Result<u64>;
    /// Whether no record is stored; cheap on every backend, unlike `len`.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Bytes the engine's files take on disk.
    fn disk_bytes(&self) -> u64;
}

/// Opens (creating if needed) the data directory `dir` for `kind`: checks the
/// format marker (a directory of another format version or backend, or a
/// corrupt one, is refused), then opens the engine. `None` for `Kind::None`.
pub fn open(kind: Kind, dir: &Path) -> Result<Option<Box<dyn Backend>>> {
    if kind == Kind::None {
        return Ok(None);
    }
    // Before the marker: a build without the backend must not create a
    // directory (and stamp it with a backend) that it then cannot open.
    if !Kind::compiled().contains(&kind) {
        return Err(PersistError::NotCompiled(kind.name()));
    }
    marker::check_or_create(dir, kind)?;
    match kind {
        Kind::None => Ok(None),
        #[cfg(feature = "persistence-sled")]
        Kind::Sled => Ok(Some(Box::new(sled_backend::SledBackend::open(dir)?))),
        #[cfg(feature = "persistence-redb")]
        Kind::Redb => Ok(Some(Box::new(redb_backend::RedbBackend::open(dir)?))),
        #[allow(unreachable_patterns)]
        other => Err(PersistError::NotCompiled(other.name())),
    }
}

/// The storage key of (db, key): the db as 4 big-endian bytes, then the key,
/// so one db is one contiguous range.
pub fn storage_key(db: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + key.len());
    k.extend_from_slice(&db.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Splits a storage key back into (db, key); `None` if it is too short.
pub fn split_storage_key(k: &[u8]) -> Option<(u32, &[u8])> {
    let (db, key) = k.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*db), key))
}

/// The storage-key range holding every key of `db`: from `db`'s 4-byte
/// prefix up to (excluding) the next db's prefix; the last db has no upper
/// bound, since its prefix + 1 would overflow.
pub fn db_range(db: u32) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = Bound::Included(db.to_be_bytes().to_vec());
    let hi = match db.checked_add(1) {
        Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
        None => Bound::Unbounded,
    };
    (lo, hi)
}
