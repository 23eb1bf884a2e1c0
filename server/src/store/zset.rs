//! The ZSet value type (stub until its family lands; see store/value.rs).

/// A zset value. Its representation and operations are filled in with the
/// zset commands; only what the rest of the store needs is here.
#[derive(Clone, Debug, Default)]
pub struct ZSet {}

impl ZSet {
    /// Number of elements; a value is deleted from the keyspace at 0.
    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned, kept O(1) (the shard calls it on every mutation).
    pub fn heap_size(&self) -> usize {
        0
    }

    /// The name OBJECT ENCODING answers.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }
    /// Members in rank order (lowest score first), with their scores.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        std::iter::empty()
    }
}
