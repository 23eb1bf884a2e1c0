//! The Set value type (stub until its family lands; see store/value.rs).

/// A set value. Its representation and operations are filled in with the
/// set commands; only what the rest of the store needs is here.
#[derive(Clone, Debug, Default)]
pub struct Set {}

impl Set {
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
        "intset"
    }
    /// Members in no particular order (SORT, SINTER ...).
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        std::iter::empty()
    }
}
