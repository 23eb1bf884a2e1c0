//! The redb backend.

use super::{Backend, Kind, Op, PersistError, Result};
use std::path::Path;

#[derive(Debug)]
pub struct RedbBackend;

impl RedbBackend {
    pub fn open(dir: &Path) -> Result<Self> {
        let _ = dir;
        Err(PersistError::NotCompiled("redb"))
    }
}

impl Backend for RedbBackend {
    fn kind(&self) -> Kind {
        Kind::Redb
    }
    fn apply(&self, _ops: &[Op], _durable: bool) -> Result<()> {
        Err(PersistError::NotCompiled("redb"))
    }
    fn sync(&self) -> Result<()> {
        Err(PersistError::NotCompiled("redb"))
    }
    fn get(&self, _db: u32, _key: &[u8]) -> Result<Option<Vec<u8>>> {
        Err(PersistError::NotCompiled("redb"))
    }
    fn for_each(&self, _f: &mut dyn FnMut(u32, &[u8], &[u8]) -> bool) -> Result<()> {
        Err(PersistError::NotCompiled("redb"))
    }
    fn len(&self) -> Result<u64> {
        Err(PersistError::NotCompiled("redb"))
    }
    fn disk_bytes(&self) -> u64 {
        0
    }
}
