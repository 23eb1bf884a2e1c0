//! The data directory's format marker and the node id kept beside the data.

use super::{Kind, PersistError, Result};
use std::path::Path;

/// Format of the data directory this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Checks `dir`'s marker against `kind`, creating dir and marker if new.
pub fn check_or_create(dir: &Path, kind: Kind) -> Result<()> {
    let _ = (dir, kind);
    Err(PersistError::NotCompiled("marker"))
}

/// The node id stored in `dir` (40 hex digits), created on first use.
pub fn node_id(dir: &Path) -> Result<String> {
    let _ = dir;
    Err(PersistError::NotCompiled("marker"))
}
