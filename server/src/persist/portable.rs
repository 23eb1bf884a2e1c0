//! Portable export/import of a backend's records (`shoal-server export|import`), independent of the backend.
//!
//! An export file moves data between backends and across data-format
//! versions. Layout (all integers big-endian):
//!
//! ```text
//! "SHOAL-EXPORT 1\n"
//! per record:  [db u32][key len u32][key][record len u32][record]
//! end frame:   [u32::MAX][record count u64][xxh3-64 checksum u64]
//! ```
//!
//! The checksum covers every byte before it (header, frames, end marker and
//! count), so a flipped bit anywhere, a truncation or a frame boundary gone
//! astray is refused. db `u32::MAX` marks the end, so it cannot be exported
//! (no Redis db has that index).
//!
//! What a failed import leaves: [`import_dir`] reads the whole file once to
//! verify it before it opens the data directory, so a damaged file changes
//! nothing there. [`import`] streams, since a reader cannot be rewound:
//! records are applied in batches as they are read and content damage is
//! only known at the checksum, so a failed `import` leaves the records of
//! the batches before the failure applied (not synced; they become durable
//! with the next sync or clean close). Nothing past a frame that fails to
//! parse is applied. Import adds and overwrites; it does not clear first.

use super::marker::{MARKER_FILE, sync_dir};
use super::{Backend, Kind, Op, PersistError, Result};
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3Default;

/// First bytes of an export file; the number is the export format version.
pub const HEADER: &[u8] = b"SHOAL-EXPORT 1\n";

/// The db field value that marks the end frame.
const END: u32 = u32::MAX;

/// Puts per `apply` during import.
const IMPORT_BATCH: usize = 1000;

/// Label of an export stream that has no file name.
const STREAM: &str = "<stream>";

fn export_err(file: &Path, detail: String) -> PersistError {
    PersistError::Export {
        file: file.to_path_buf(),
        detail,
    }
}

/// Writes `b`'s records to `w`; returns how many.
///
/// The records are those `for_each` visits: a snapshot for redb; for sled,
/// exact only when nothing writes meanwhile (as in `shoal-server export`,
/// which holds the directory's lock).
pub fn export(b: &dyn Backend, w: &mut dyn Write) -> Result<u64> {
    export_to(b, w, Path::new(STREAM))
}

/// A writer that hashes what it writes and knows the offset, for errors.
struct HashWriter<'a> {
    w: &'a mut dyn Write,
    hash: Xxh3Default,
    pos: u64,
    file: &'a Path,
}

impl HashWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        self.put_unhashed(bytes)
    }

    fn put_unhashed(&mut self, bytes: &[u8]) -> Result<()> {
        self.w
            .write_all(bytes)
            .map_err(|e| export_err(self.file, format!("writing at byte {}: {e}", self.pos)))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn len_u32(&self, what: &str, n: usize) -> Result<[u8; 4]> {
        u32::try_from(n).map(u32::to_be_bytes).map_err(|_| {
            export_err(
                self.file,
                format!("a {what} of {n} bytes does not fit the format's 32-bit length"),
            )
        })
    }

    fn frame(&mut self, db: u32, key: &[u8], record: &[u8]) -> Result<()> {
        if db == END {
            return Err(export_err(
                self.file,
                format!("db {db} is reserved for the end frame and cannot be exported"),
            ));
        }
        let klen = self.len_u32("key", key.len())?;
        let rlen = self.len_u32("record", record.len())?;
        self.put(&db.to_be_bytes())?;
        self.put(&klen)?;
        self.put(key)?;
        self.put(&rlen)?;
        self.put(record)
    }
}

fn export_to(b: &dyn Backend, w: &mut dyn Write, file: &Path) -> Result<u64> {
    let mut out = HashWriter {
        w,
        hash: Xxh3Default::new(),
        pos: 0,
        file,
    };
    out.put(HEADER)?;
    let mut count = 0u64;
    let mut failed = None;
    b.for_each(&mut |db, key, record| match out.frame(db, key, record) {
        Ok(()) => {
            count += 1;
            true
        }
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    out.put(&END.to_be_bytes())?;
    out.put(&count.to_be_bytes())?;
    let sum = out.hash.digest();
    out.put_unhashed(&sum.to_be_bytes())?;
    out.w
        .flush()
        .map_err(|e| export_err(file, format!("flushing: {e}")))?;
    Ok(count)
}

/// A reader that hashes what it reads and knows the offset, for errors.
struct HashReader<'a> {
    r: &'a mut dyn Read,
    hash: Xxh3Default,
    pos: u64,
    file: &'a Path,
}

impl HashReader<'_> {
    fn fail(&self, detail: String) -> PersistError {
        export_err(self.file, format!("at byte {}: {detail}", self.pos))
    }

    fn read_unhashed<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.r.read_exact(&mut buf).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                self.fail(format!("truncated: file ends inside the {what}"))
            } else {
                self.fail(format!("reading the {what}: {e}"))
            }
        })?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn read_array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let buf = self.read_unhashed::<N>(what)?;
        self.hash.update(&buf);
        Ok(buf)
    }

    fn read_u32(&mut self, what: &str) -> Result<u32> {
        self.read_array::<4>(what).map(u32::from_be_bytes)
    }

    /// Reads `len` bytes. Grows the buffer as bytes arrive rather than
    /// allocating `len` up front, so a damaged length field in a short file
    /// fails on the truncation instead of attempting a 4 GiB allocation.
    fn read_vec(&mut self, len: u32, what: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let got = (&mut self.r)
            .take(u64::from(len))
            .read_to_end(&mut buf)
            .map_err(|e| self.fail(format!("reading the {what}: {e}")))?;
        if got != len as usize {
            return Err(self.fail(format!(
                "truncated: the {what} should be {len} bytes, the file has {got} left"
            )));
        }
        self.hash.update(&buf);
        self.pos += u64::from(len);
        Ok(buf)
    }

    fn header(&mut self) -> Result<()> {
        let mut buf = Vec::new();
        (&mut self.r)
            .take(HEADER.len() as u64)
            .read_to_end(&mut buf)
            .map_err(|e| self.fail(format!("reading the header: {e}")))?;
        if buf != HEADER {
            let shown = String::from_utf8_lossy(&buf);
            let detail = if buf.starts_with(b"SHOAL-EXPORT ") {
                format!("export format {shown:?}, this build reads {HEADER:?}")
            } else {
                format!("not a shoal export file (starts with {shown:?})")
            };
            return Err(self.fail(detail));
        }
        self.hash.update(&buf);
        self.pos += buf.len() as u64;
        Ok(())
    }
}

/// Reads and checks a whole export stream, handing each record to `each`
/// as soon as its frame has parsed. Returns the record count.
fn read_frames(
    r: &mut dyn Read,
    file: &Path,
    each: &mut dyn FnMut(u32, Vec<u8>, Vec<u8>) -> Result<()>,
) -> Result<u64> {
    let mut rd = HashReader {
        r,
        hash: Xxh3Default::new(),
        pos: 0,
        file,
    };
    rd.header()?;
    let mut count = 0u64;
    loop {
        let db = rd.read_u32("db of a frame")?;
        if db == END {
            break;
        }
        let klen = rd.read_u32("key length")?;
        let key = rd.read_vec(klen, "key")?;
        let rlen = rd.read_u32("record length")?;
        let record = rd.read_vec(rlen, "record")?;
        count += 1;
        each(db, key, record)?;
    }
    let stated = u64::from_be_bytes(rd.read_array::<8>("record count of the end frame")?);
    let computed = rd.hash.digest();
    let stored = u64::from_be_bytes(rd.read_unhashed::<8>("checksum of the end frame")?);
    if stated != count {
        return Err(rd.fail(format!(
            "the end frame states {stated} records, the file holds {count}"
        )));
    }
    if stored != computed {
        return Err(rd.fail(format!(
            "checksum mismatch: stored {stored:016x}, computed {computed:016x} (the file is damaged)"
        )));
    }
    let mut extra = [0u8; 1];
    match rd.r.read(&mut extra) {
        Ok(0) => Ok(count),
        Ok(_) => Err(rd.fail("data after the end frame".to_string())),
        Err(e) => Err(rd.fail(format!("reading past the end frame: {e}"))),
    }
}

/// Checks an export stream without applying it; returns its record count.
pub fn verify(r: &mut dyn Read) -> Result<u64> {
    read_frames(r, Path::new(STREAM), &mut |_, _, _| Ok(()))
}

/// Applies the records of an export stream to `b` (non-durable batches of
/// `IMPORT_BATCH` puts, then one `sync`); returns how many. See the module
/// docs for what a failure leaves.
pub fn import(b: &dyn Backend, r: &mut dyn Read) -> Result<u64> {
    import_from(b, r, Path::new(STREAM))
}

fn import_from(b: &dyn Backend, r: &mut dyn Read, file: &Path) -> Result<u64> {
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let count = read_frames(r, file, &mut |db, key, record| {
        batch.push(Op::Put { db, key, record });
        if batch.len() >= IMPORT_BATCH {
            b.apply(&batch, false)?;
            batch.clear();
        }
        Ok(())
    })?;
    b.apply(&batch, false)?;
    b.sync()?;
    Ok(count)
}

fn open_existing(kind: Kind, dir: &Path, file: &Path) -> Result<Box<dyn Backend>> {
    // `open` creates a missing directory; an export from a mistyped path
    // must fail instead of exporting an empty, freshly made one.
    if !dir.join(MARKER_FILE).exists() {
        return Err(export_err(
            file,
            format!(
                "{} is not a shoal data directory (no {MARKER_FILE})",
                dir.display()
            ),
        ));
    }
    open_backend(kind, dir, file)
}

fn open_backend(kind: Kind, dir: &Path, file: &Path) -> Result<Box<dyn Backend>> {
    super::open(kind, dir)?.ok_or_else(|| {
        export_err(
            file,
            "persistence is none: there is no data directory to export or import".to_string(),
        )
    })
}

/// `file` with `.tmp` appended to its name.
fn tmp_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Exports the data directory `dir` (of backend `kind`) to `file`; returns
/// the record count. The file appears complete or not at all (written to
/// `file.tmp`, fsynced, renamed).
pub fn export_dir(kind: Kind, dir: &Path, file: &Path) -> Result<u64> {
    let b = open_existing(kind, dir, file)?;
    let tmp = tmp_path(file);
    let result = (|| {
        let f = File::create(&tmp)
            .map_err(|e| export_err(file, format!("creating {}: {e}", tmp.display())))?;
        let mut w = BufWriter::new(f);
        let count = export_to(b.as_ref(), &mut w, file)?;
        let f = w
            .into_inner()
            .map_err(|e| export_err(file, format!("flushing: {}", e.error())))?;
        f.sync_all()
            .map_err(|e| export_err(file, format!("syncing: {e}")))?;
        fs::rename(&tmp, file)
            .map_err(|e| export_err(file, format!("renaming {} into place: {e}", tmp.display())))?;
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(count)
    })();
    if result.is_err() {
        // Best effort: the error being returned matters more than a leftover.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Imports `file` into the data directory `dir` (created if new) for backend
/// `kind`; returns the record count. The file is verified completely before
/// the directory is opened, so a damaged file leaves `dir` untouched.
pub fn import_dir(kind: Kind, dir: &Path, file: &Path) -> Result<u64> {
    let open_file = || {
        File::open(file)
            .map(BufReader::new)
            .map_err(|e| export_err(file, format!("opening: {e}")))
    };
    let verified = read_frames(&mut open_file()?, file, &mut |_, _, _| Ok(()))?;
    let b = open_backend(kind, dir, file)?;
    let count = import_from(b.as_ref(), &mut open_file()?, file)?;
    if count != verified {
        // The file changed between the passes; what was applied stays.
        return Err(export_err(
            file,
            format!("changed during import: verified {verified} records, then read {count}"),
        ));
    }
    Ok(count)
}
