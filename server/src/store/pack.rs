//! A packed sequence of byte strings in one allocation, the small-collection
//! encoding (Redis's listpack): small hashes, sorted sets and lists.
//!
//! Each entry is a LEB128 length followed by its bytes, so ten short fields
//! cost about their own size plus one byte each instead of a pointer-sized
//! header per element. Operations are linear; callers convert to a real
//! structure past the `*-max-listpack-*` limits, which keep packs small.
//! Positions are byte offsets of an entry's start, as [`Pack::iter_pos`] gives.

/// The packed sequence.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pack {
    buf: Vec<u8>,
    len: u32,
}

fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

fn put_varint(out: &mut [u8], mut n: usize) {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
}

impl Pack {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes used by the encoded entries (the position just past the last one).
    #[inline]
    pub fn end(&self) -> usize {
        self.buf.len()
    }

    /// Heap bytes owned (for memory accounting).
    #[inline]
    pub fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    /// The entry starting at byte `pos` and the position of the next one.
    #[inline]
    pub fn entry_at(&self, pos: usize) -> (&[u8], usize) {
        let mut n = 0usize;
        let mut shift = 0;
        let mut i = pos;
        loop {
            let b = self.buf[i];
            i += 1;
            n |= ((b & 0x7f) as usize) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        (&self.buf[i..i + n], i + n)
    }

    /// Entries in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        // Collecting positions makes reverse iteration possible without
        // back-links; packs are small by construction.
        let v: Vec<&[u8]> = self.iter_pos().map(|(_, e)| e).collect();
        v.into_iter()
    }

    /// Entries with their byte positions, in order.
    pub fn iter_pos(&self) -> PackIter<'_> {
        PackIter { pack: self, pos: 0 }
    }

    /// Position of the `i`th entry (or `end()` when `i == len()`).
    pub fn pos_of(&self, i: usize) -> Option<usize> {
        if i == self.len() {
            return Some(self.end());
        }
        self.iter_pos().nth(i).map(|(p, _)| p)
    }

    /// The `i`th entry.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.iter_pos().nth(i).map(|(_, e)| e)
    }

    /// Inserts `v` as a new entry at byte position `pos` (an entry start or `end()`).
    pub fn insert_at(&mut self, pos: usize, v: &[u8]) {
        let hl = varint_len(v.len());
        let add = hl + v.len();
        let old = self.buf.len();
        self.buf.reserve_exact(add);
        self.buf.resize(old + add, 0);
        self.buf.copy_within(pos..old, pos + add);
        put_varint(&mut self.buf[pos..pos + hl], v.len());
        self.buf[pos + hl..pos + add].copy_from_slice(v);
        self.len += 1;
    }

    pub fn push_back(&mut self, v: &[u8]) {
        self.insert_at(self.end(), v);
    }

    pub fn push_front(&mut self, v: &[u8]) {
        self.insert_at(0, v);
    }

    /// Removes `count` entries starting at byte position `pos`.
    pub fn remove_at(&mut self, pos: usize, count: usize) {
        let mut end = pos;
        let mut removed = 0;
        while removed < count && end < self.buf.len() {
            end = self.entry_at(end).1;
            removed += 1;
        }
        self.buf.drain(pos..end);
        self.len -= removed as u32;
        self.shrink();
    }

    /// Replaces the entry at byte position `pos` with `v`.
    pub fn replace_at(&mut self, pos: usize, v: &[u8]) {
        let (old, next) = self.entry_at(pos);
        if old.len() == v.len() {
            let start = next - v.len();
            self.buf[start..next].copy_from_slice(v);
            return;
        }
        let hl = varint_len(v.len());
        let mut enc = Vec::with_capacity(hl + v.len());
        enc.resize(hl, 0);
        put_varint(&mut enc, v.len());
        enc.extend_from_slice(v);
        self.buf.splice(pos..next, enc);
        self.shrink();
    }

    /// Position of the first entry equal to `v`, looking at every `step`th
    /// entry from the first (step 2 finds hash fields, not values).
    pub fn find(&self, v: &[u8], step: usize) -> Option<usize> {
        self.iter_pos()
            .step_by(step.max(1))
            .find(|(_, e)| *e == v)
            .map(|(p, _)| p)
    }

    /// Gives back spare capacity once it is a large share of the buffer.
    fn shrink(&mut self) {
        if self.buf.capacity() > 64 && self.buf.capacity() > self.buf.len() * 2 {
            self.buf.shrink_to_fit();
        }
    }
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter_pos().map(|(_, e)| String::from_utf8_lossy(e)))
            .finish()
    }
}

/// Iterator over `(position, entry)` pairs.
pub struct PackIter<'a> {
    pack: &'a Pack,
    pos: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = (usize, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.pack.buf.len() {
            return None;
        }
        let at = self.pos;
        let (e, next) = self.pack.entry_at(at);
        self.pos = next;
        Some((at, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn basic_ops() {
        let mut p = Pack::new();
        p.push_back(b"b");
        p.push_front(b"a");
        p.push_back(&[7u8; 300]);
        assert_eq!(p.len(), 3);
        assert_eq!(p.get(0), Some(&b"a"[..]));
        assert_eq!(p.get(2).map(|e| e.len()), Some(300));
        let pos = p.find(b"b", 1).unwrap_or(usize::MAX);
        p.replace_at(pos, b"bee");
        assert_eq!(p.iter().collect::<Vec<_>>()[1], b"bee");
        p.remove_at(0, 2);
        assert_eq!(p.len(), 1);
        assert_eq!(p.iter().next_back().map(|e| e.len()), Some(300));
    }

    proptest! {
        #[test]
        fn matches_a_vec(ops in proptest::collection::vec((0u8..4, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..60)) {
            let mut p = Pack::new();
            let mut m: Vec<Vec<u8>> = Vec::new();
            for (op, at, v) in ops {
                let i = if m.is_empty() { 0 } else { at as usize % (m.len() + 1) };
                match op {
                    0 => { let pos = p.pos_of(i).unwrap_or(0); p.insert_at(pos, &v); m.insert(i, v); }
                    1 if i < m.len() => { let pos = p.pos_of(i).unwrap_or(0); p.remove_at(pos, 1); m.remove(i); }
                    2 if i < m.len() => { let pos = p.pos_of(i).unwrap_or(0); p.replace_at(pos, &v); m[i] = v; }
                    _ => { p.push_back(&v); m.push(v); }
                }
                prop_assert_eq!(p.len(), m.len());
                let got: Vec<Vec<u8>> = p.iter().map(|e| e.to_vec()).collect();
                prop_assert_eq!(&got, &m);
            }
        }
    }
}
