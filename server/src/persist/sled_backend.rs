//! The sled backend.

use super::{Backend, Kind, Op, PersistError, Result};
use std::path::Path;

#[derive(Debug)]
pub struct SledBackend;

impl SledBackend {
    pub fn open(dir: &Path) -> Result<Self> {
        let _ = dir;
        Err(PersistError::NotCompiled("sled"))
    }
}

impl Backend for SledBackend {
    fn kind(&self) -> Kind {
        Kind::Sled
    }
    fn apply(&self, _ops: &[Op], _durable: bool) -> Result<()> {
        Err(PersistError::NotCompiled("sled"))
    }
    fn sync(&self) -> Result<()> {
        Err(PersistError::NotCompiled("sled"))
    }
    fn get(&self, _db: u32, _key: &[u8]) -> Result<Option<Vec<u8>>> {
        Err(PersistError::NotCompiled("sled"))
    }
    fn for_each(&self, _f: &mut dyn FnMut(u32, &[u8], &[u8]) -> bool) -> Result<()> {
        Err(PersistError::NotCompiled("sled"))
    }
    fn len(&self) -> Result<u64> {
        Err(PersistError::NotCompiled("sled"))
    }
    fn disk_bytes(&self) -> u64 {
        0
    }
}
