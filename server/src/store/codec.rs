//! Record encoding of one key's value and expiry for the persistence backends and export files.

// Placeholder until the codec lands (being written on its own branch).
pub fn encode(_value: &super::Value, _expire_at: Option<u64>, _out: &mut Vec<u8>) {}
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub hash: super::hash::HashLimits,
    pub list: i64,
    pub set_max_intset: usize,
    pub zset: super::zset::Limits,
}
#[derive(Debug)]
pub struct CodecError;
impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("placeholder")
    }
}
pub fn decode(_r: &[u8], _l: &Limits) -> Result<(super::Value, Option<u64>), CodecError> {
    Err(CodecError)
}
