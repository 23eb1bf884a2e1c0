//! The List value type (stub until its family lands; see store/value.rs).

/// A list value. Its representation and operations are filled in with the
/// list commands; only what the rest of the store needs is here.
#[derive(Clone, Debug, Default)]
pub struct List {}

impl List {
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
        "quicklist"
    }
    /// Elements from head to tail (SORT, and anything reading a whole list).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        std::iter::empty()
    }

    /// A list holding `items` in order (SORT ... STORE).
    pub fn from_elements<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let _ = items.into_iter().count();
        List {}
    }
}
