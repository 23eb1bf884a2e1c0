//! The data directory's format marker and the node id kept beside the data.
//!
//! The marker (`SHOAL-FORMAT`) is written before any engine file, so a
//! directory with engine files but no marker was not made by shoal (or was
//! tampered with) and is refused rather than treated as empty. It reads:
//!
//! ```text
//! shoal-data-format 1
//! backend redb
//! ```
//!
//! Both files are written atomically (temporary file, fsync, rename, fsync of
//! the directory), so a crash leaves either no file or a complete one.

use super::{Kind, PersistError, Result};
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Format of the data directory this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Name of the marker file inside the data directory.
pub const MARKER_FILE: &str = "SHOAL-FORMAT";

/// Name of the node id file inside the data directory.
pub const NODE_ID_FILE: &str = "node-id";

/// Suffix of the temporary files the atomic writes rename into place.
const TMP_SUFFIX: &str = ".tmp";

/// Entries a fresh directory may hold without being someone else's data:
/// our own node id (it may be created before the first open) and the
/// leftovers of an interrupted atomic write, plus `lost+found`, which a data
/// directory that is the root of its own file system always has.
fn ignorable_in_fresh_dir(name: &str) -> bool {
    name == NODE_ID_FILE || name == "lost+found" || name.ends_with(TMP_SUFFIX)
}

fn io_err(path: &Path, source: std::io::Error) -> PersistError {
    PersistError::Io {
        dir: path.to_path_buf(),
        source,
    }
}

fn corrupt(dir: &Path, detail: String) -> PersistError {
    PersistError::Corrupt {
        dir: dir.to_path_buf(),
        detail,
    }
}

/// The marker text for `kind`.
fn marker_text(kind: Kind) -> String {
    format!(
        "shoal-data-format {FORMAT_VERSION}\nbackend {}\n",
        kind.name()
    )
}

/// Checks `dir`'s marker against `kind`, creating dir and marker if new.
///
/// `Kind::None` keeps nothing on disk, so it neither checks nor writes.
pub fn check_or_create(dir: &Path, kind: Kind) -> Result<()> {
    if kind == Kind::None {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let path = dir.join(MARKER_FILE);
    match fs::read(&path) {
        Ok(bytes) => check_marker(dir, &bytes, kind),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            refuse_unmarked_data(dir)?;
            write_atomic(dir, MARKER_FILE, marker_text(kind).as_bytes())
        }
        Err(e) => Err(io_err(&path, e)),
    }
}

/// Fails with `Corrupt` unless `dir` holds nothing but what a fresh
/// directory may hold: files without a marker are someone's data, and
/// opening an engine over them would either fail obscurely or, worse,
/// present them as an empty keyspace that the next write overwrites.
fn refuse_unmarked_data(dir: &Path) -> Result<()> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !ignorable_in_fresh_dir(&name) {
            found.push(name);
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    let shown = found.len().min(5);
    Err(corrupt(
        dir,
        format!(
            "no {MARKER_FILE} marker, but the directory is not empty ({} entr{}: {}{}); refusing to treat it as an empty shoal data directory",
            found.len(),
            if found.len() == 1 { "y" } else { "ies" },
            found[..shown].join(", "),
            if found.len() > shown { ", ..." } else { "" }
        ),
    ))
}

/// Parses the marker; the format version is checked before the backend,
/// since a marker of another format may not name a backend the same way.
fn check_marker(dir: &Path, bytes: &[u8], kind: Kind) -> Result<()> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(corrupt(dir, format!("{MARKER_FILE} is not UTF-8 text")));
    };
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let Some(found) = first.strip_prefix("shoal-data-format ") else {
        return Err(corrupt(
            dir,
            format!(
                "{MARKER_FILE} starts with {first:?}, expected \"shoal-data-format <version>\""
            ),
        ));
    };
    let found = found.trim();
    let Ok(version) = found.parse::<u32>() else {
        return Err(corrupt(
            dir,
            format!("{MARKER_FILE} has format version {found:?}, expected a number"),
        ));
    };
    if version != FORMAT_VERSION {
        return Err(PersistError::Version {
            dir: dir.to_path_buf(),
            found: found.to_string(),
            expected: FORMAT_VERSION,
        });
    }
    // Other `key value` lines are tolerated so that format 1 can gain
    // informational lines without a version bump; `backend` must be there.
    let mut backend = None;
    for line in lines {
        if let Some(name) = line.strip_prefix("backend ") {
            if backend.is_some() {
                return Err(corrupt(dir, format!("{MARKER_FILE} names two backends")));
            }
            backend = Some(name.trim());
        }
    }
    match backend {
        None | Some("") | Some("none") => Err(corrupt(
            dir,
            format!("{MARKER_FILE} does not name a backend (expected a line \"backend <name>\")"),
        )),
        Some(name) if name == kind.name() => Ok(()),
        Some(name) => Err(PersistError::BackendMismatch {
            dir: dir.to_path_buf(),
            found: name.to_string(),
            expected: kind.name(),
        }),
    }
}

/// The node id stored in `dir` (40 lowercase hex digits), created on first use.
///
/// Creation is atomic but not exclusive: two processes creating it at the
/// same moment could each return their own id. Call it after [`super::open`],
/// whose engine lock makes this process the only one using `dir`.
pub fn node_id(dir: &Path) -> Result<String> {
    let path = dir.join(NODE_ID_FILE);
    match fs::read(&path) {
        Ok(bytes) => parse_node_id(&bytes).ok_or_else(|| {
            corrupt(
                dir,
                format!(
                    "{NODE_ID_FILE} holds {:?}, expected 40 lowercase hex digits",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(64)])
                ),
            )
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            let id = new_node_id();
            write_atomic(dir, NODE_ID_FILE, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(e) => Err(io_err(&path, e)),
    }
}

fn parse_node_id(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    let s = s.strip_suffix('\n').unwrap_or(s);
    let ok = s.len() == 40 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    ok.then(|| s.to_string())
}

/// 160 random bits as hex, the shape of a Redis run id / cluster node id.
fn new_node_id() -> String {
    let bytes: [u8; 20] = rand::random();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(40);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Writes `dir/name` so that it is either absent or complete after a crash:
/// write a temporary file, fsync it, rename it over, fsync the directory (so
/// the rename itself is durable).
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp: PathBuf = dir.join(format!("{name}{TMP_SUFFIX}"));
    let dest = dir.join(name);
    let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, &dest).map_err(|e| io_err(&dest, e))?;
    sync_dir(dir)
}

/// Fsyncs a directory so renames and creations in it are durable. Windows
/// cannot open a directory as a file; there the rename is as durable as the
/// file system makes it.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
