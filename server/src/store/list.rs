//! The List value type: a [`Pack`] while small, a ring buffer of
//! [`CompactBytes`] once big.
//!
//! Why two shapes: most lists in a cache are short (queues of a few jobs,
//! recent-items lists), and a pack stores each element as its bytes plus a
//! one-byte length, where a pointer-per-element structure would cost 24 bytes
//! or more each. Packs are linear to edit, so past the `list-max-listpack-size`
//! limit (bytes or entries, read like Redis's quicklist node limit) the list
//! becomes a `VecDeque<CompactBytes>`: push and pop at both ends are O(1)
//! without moving other elements, elements up to 22 bytes need no allocation,
//! and LINDEX/LRANGE/LSET index in O(1) instead of walking nodes as Redis's
//! quicklist does. A chunked quicklist would be smaller for big lists of tiny
//! elements, but every push at the head of a chunk moves the chunk's bytes;
//! the ring buffer keeps the benchmarked push/pop paths to a 24-byte write.
//! The conversion is one-way, as Redis's encodings are. Memory accounting
//! keeps a running count of the elements' heap bytes so `heap_size` is O(1).

use super::bytes::CompactBytes;
use super::pack::{Pack, PackIter};
use std::collections::VecDeque;

/// Byte limits of a packed list for negative `list-max-listpack-size` (-1..-5).
const SIZE_LIMITS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
/// A count limit never lets a pack grow past this many bytes (Redis's
/// SIZE_SAFETY_LIMIT for count-limited quicklist nodes).
const SAFETY_LIMIT: usize = 8192;
/// Upper bound of the length prefix a pack entry adds.
const MAX_PREFIX: usize = 10;

#[derive(Clone, Debug)]
enum Repr {
    Small(Pack),
    Big {
        items: VecDeque<CompactBytes>,
        /// Sum of the elements' own heap bytes (long elements only).
        heap: usize,
    },
}

/// A list value.
#[derive(Clone, Debug)]
pub struct List {
    repr: Repr,
}

impl Default for List {
    fn default() -> Self {
        List {
            repr: Repr::Small(Pack::new()),
        }
    }
}

/// Whether a pack of `bytes` bytes and `len` entries stays within `limit`
/// (the `list-max-listpack-size` value).
fn fits_small(bytes: usize, len: usize, limit: i64) -> bool {
    if limit > 0 {
        len as u64 <= limit as u64 && bytes <= SAFETY_LIMIT
    } else if limit == 0 {
        len <= 1 && bytes <= SAFETY_LIMIT
    } else {
        let i = usize::try_from(-(limit.max(-5)) - 1).unwrap_or(0);
        bytes <= SIZE_LIMITS.get(i).copied().unwrap_or(SAFETY_LIMIT)
    }
}

impl List {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of elements; a value is deleted from the keyspace at 0.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(p) => p.len(),
            Repr::Big { items, .. } => items.len(),
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned, kept O(1) (the shard calls it on every mutation).
    #[inline]
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Small(p) => p.heap_size(),
            Repr::Big { items, heap } => {
                items.capacity() * std::mem::size_of::<CompactBytes>() + heap
            }
        }
    }

    /// The name OBJECT ENCODING answers (Redis 7.0 reports every list so).
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Whether the list is in its packed (small) shape; for tests and DEBUG.
    pub fn is_packed(&self) -> bool {
        matches!(self.repr, Repr::Small(_))
    }

    /// Elements from head to tail (SORT, and anything reading a whole list).
    /// Reverse iteration of a packed list collects its (few) entries first.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Small(p) => Iter::Small(p.iter_pos(), p.len(), None),
            Repr::Big { items, .. } => Iter::Big(items.iter()),
        }
    }

    /// Elements `start..=end` (valid indices, `start <= end`) from head to tail.
    pub fn range(&self, start: usize, end: usize) -> Range<'_> {
        let n = end.saturating_sub(start) + 1;
        match &self.repr {
            Repr::Small(p) => Range::Small(p.iter_pos().skip(start).take(n)),
            Repr::Big { items, .. } => {
                let end = (end + 1).min(items.len());
                Range::Big(items.range(start.min(end)..end))
            }
        }
    }

    /// A list holding `items` in order (SORT ... STORE).
    pub fn from_elements<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut l = List::new();
        for it in items {
            l.push(false, it, -2);
        }
        l
    }

    /// The element at `i` (from the head).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        match &self.repr {
            Repr::Small(p) => p.get(i),
            Repr::Big { items, .. } => items.get(i).map(|e| e.as_slice()),
        }
    }

    /// Converts to the big shape unless a pack holding `extra` more bytes in
    /// one more entry still fits `limit`.
    fn make_room(&mut self, extra: usize, limit: i64) {
        if let Repr::Small(p) = &self.repr {
            if fits_small(p.end() + extra + MAX_PREFIX, p.len() + 1, limit) {
                return;
            }
            let mut items = VecDeque::with_capacity((p.len() * 2).max(16));
            let mut heap = 0;
            for (_, e) in p.iter_pos() {
                let c = CompactBytes::new(e);
                heap += c.heap_size();
                items.push_back(c);
            }
            self.repr = Repr::Big { items, heap };
        }
    }

    /// Pushes `v` at the head (`front`) or the tail. `limit` is the
    /// `list-max-listpack-size` setting deciding when a pack grows up.
    #[inline]
    pub fn push(&mut self, front: bool, v: &[u8], limit: i64) {
        self.make_room(v.len(), limit);
        match &mut self.repr {
            Repr::Small(p) => {
                if front {
                    p.push_front(v)
                } else {
                    p.push_back(v)
                }
            }
            Repr::Big { items, heap } => {
                let c = CompactBytes::new(v);
                *heap += c.heap_size();
                if front {
                    items.push_front(c)
                } else {
                    items.push_back(c)
                }
            }
        }
    }

    /// Byte position of the last entry of a pack.
    fn last_pos(p: &Pack) -> Option<usize> {
        p.iter_pos().last().map(|(pos, _)| pos)
    }

    /// Removes the head (`front`) or tail element, handing it to `f` first.
    #[inline]
    pub fn pop_with<R>(&mut self, front: bool, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match &mut self.repr {
            Repr::Small(p) => {
                let pos = if front {
                    (!p.is_empty()).then_some(0)?
                } else {
                    Self::last_pos(p)?
                };
                let r = f(p.entry_at(pos).0);
                p.remove_at(pos, 1);
                Some(r)
            }
            Repr::Big { items, heap } => {
                let c = if front {
                    items.pop_front()
                } else {
                    items.pop_back()
                }?;
                *heap -= c.heap_size();
                let r = f(c.as_slice());
                Self::maybe_shrink(items);
                Some(r)
            }
        }
    }

    /// Removes up to `n` elements from the head (`front`) or tail, handing
    /// each to `f` in pop order (tail first when popping from the tail).
    /// Returns how many were removed.
    pub fn pop_n_with(&mut self, front: bool, n: usize, mut f: impl FnMut(&[u8])) -> usize {
        let n = n.min(self.len());
        if n == 0 {
            return 0;
        }
        match &mut self.repr {
            Repr::Small(p) => {
                if front {
                    for (_, e) in p.iter_pos().take(n) {
                        f(e);
                    }
                    p.remove_at(0, n);
                } else {
                    let skip = p.len() - n;
                    let tail: Vec<(usize, &[u8])> = p.iter_pos().skip(skip).collect();
                    for (_, e) in tail.iter().rev() {
                        f(e);
                    }
                    let first = tail.first().map(|(pos, _)| *pos).unwrap_or(0);
                    p.remove_at(first, n);
                }
            }
            Repr::Big { items, heap } => {
                for _ in 0..n {
                    let c = if front {
                        items.pop_front()
                    } else {
                        items.pop_back()
                    };
                    if let Some(c) = c {
                        *heap -= c.heap_size();
                        f(c.as_slice());
                    }
                }
                Self::maybe_shrink(items);
            }
        }
        n
    }

    /// Gives memory back once a ring buffer is mostly empty.
    fn maybe_shrink(items: &mut VecDeque<CompactBytes>) {
        let cap = items.capacity();
        if cap > 64 && items.len() * 4 < cap {
            items.shrink_to(items.len() * 2);
        }
    }

    /// Replaces the element at `i`; false when out of range.
    pub fn set(&mut self, i: usize, v: &[u8], limit: i64) -> bool {
        if i >= self.len() {
            return false;
        }
        self.make_room(v.len(), limit);
        match &mut self.repr {
            Repr::Small(p) => match p.pos_of(i) {
                Some(pos) => {
                    p.replace_at(pos, v);
                    true
                }
                None => false,
            },
            Repr::Big { items, heap } => match items.get_mut(i) {
                Some(slot) => {
                    let c = CompactBytes::new(v);
                    *heap = *heap + c.heap_size() - slot.heap_size();
                    *slot = c;
                    true
                }
                None => false,
            },
        }
    }

    /// Inserts `v` so that it becomes the element at `i` (`i <= len`).
    pub fn insert(&mut self, i: usize, v: &[u8], limit: i64) {
        let i = i.min(self.len());
        self.make_room(v.len(), limit);
        match &mut self.repr {
            Repr::Small(p) => {
                let pos = p.pos_of(i).unwrap_or(p.end());
                p.insert_at(pos, v);
            }
            Repr::Big { items, heap } => {
                let c = CompactBytes::new(v);
                *heap += c.heap_size();
                items.insert(i, c);
            }
        }
    }

    /// Index of the first element equal to `v`, from the head.
    pub fn find(&self, v: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Small(p) => p.iter_pos().position(|(_, e)| e == v),
            Repr::Big { items, .. } => items.iter().position(|e| e.as_slice() == v),
        }
    }

    /// LREM: removes up to `count` elements equal to `v` (all when 0) from the
    /// head (`from_tail` false) or the tail; returns how many were removed.
    pub fn remove_matching(&mut self, v: &[u8], count: usize, from_tail: bool) -> usize {
        let limit = if count == 0 { usize::MAX } else { count };
        // The index from which matches are removed (removing from the tail
        // means every match at or after the limit-th match from the tail).
        let cut = if from_tail {
            let mut seen = 0;
            let mut cut = 0;
            for (i, e) in self.iter().enumerate().rev() {
                if e == v {
                    seen += 1;
                    cut = i;
                    if seen == limit {
                        break;
                    }
                }
            }
            if seen == 0 {
                return 0;
            }
            cut
        } else {
            0
        };
        let mut removed = 0usize;
        match &mut self.repr {
            Repr::Small(p) => {
                let mut doomed: Vec<usize> = Vec::new();
                for (i, (pos, e)) in p.iter_pos().enumerate() {
                    if i >= cut && e == v {
                        doomed.push(pos);
                        if doomed.len() == limit {
                            break;
                        }
                    }
                }
                // From the back, so earlier positions stay valid.
                for &pos in doomed.iter().rev() {
                    p.remove_at(pos, 1);
                }
                removed = doomed.len();
            }
            Repr::Big { items, heap } => {
                let mut idx = 0usize;
                let mut freed = 0usize;
                items.retain(|e| {
                    let drop = idx >= cut && removed < limit && e.as_slice() == v;
                    idx += 1;
                    if drop {
                        removed += 1;
                        freed += e.heap_size();
                    }
                    !drop
                });
                *heap -= freed;
                Self::maybe_shrink(items);
            }
        }
        removed
    }

    /// Keeps only `start..=end` (clamped to the list); `None` empties it.
    /// Returns how many elements were removed.
    pub fn trim(&mut self, keep: Option<(usize, usize)>) -> usize {
        let len = self.len();
        let (start, end) = match keep {
            Some((s, e)) if s <= e && s < len => (s, e.min(len - 1)),
            _ => (len, len),
        };
        let removed = if start >= len {
            len
        } else {
            len - (end - start + 1)
        };
        if removed == 0 {
            return 0;
        }
        match &mut self.repr {
            Repr::Small(p) => {
                if start >= len {
                    p.remove_at(0, len);
                } else {
                    if end + 1 < len
                        && let Some(pos) = p.pos_of(end + 1)
                    {
                        p.remove_at(pos, len - end - 1);
                    }
                    if start > 0 {
                        p.remove_at(0, start);
                    }
                }
            }
            Repr::Big { items, heap } => {
                if start >= len {
                    items.clear();
                    *heap = 0;
                } else {
                    let mut freed = 0;
                    for e in items.range(end + 1..).chain(items.range(..start)) {
                        freed += e.heap_size();
                    }
                    items.truncate(end + 1);
                    items.drain(..start);
                    *heap -= freed;
                }
                Self::maybe_shrink(items);
            }
        }
        removed
    }
}

/// Iterator over a whole list (see [`List::iter`]).
pub enum Iter<'a> {
    /// A pack iterator, how many entries it has left, and (once iterated
    /// from the back) the remaining entries collected.
    Small(PackIter<'a>, usize, Option<std::vec::IntoIter<&'a [u8]>>),
    Big(std::collections::vec_deque::Iter<'a, CompactBytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Iter::Small(_, _, Some(rest)) => rest.next(),
            Iter::Small(it, left, None) => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                it.next().map(|(_, e)| e)
            }
            Iter::Big(it) => it.next().map(|e| e.as_slice()),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            Iter::Small(_, _, Some(rest)) => rest.len(),
            Iter::Small(_, left, None) => *left,
            Iter::Big(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Small(it, left, rest) => {
                if rest.is_none() {
                    let v: Vec<&[u8]> = it.take(*left).map(|(_, e)| e).collect();
                    *left = 0;
                    *rest = Some(v.into_iter());
                }
                rest.as_mut().and_then(|r| r.next_back())
            }
            Iter::Big(it) => it.next_back().map(|e| e.as_slice()),
        }
    }
}

/// Iterator over a range of a list (see [`List::range`]).
pub enum Range<'a> {
    Small(std::iter::Take<std::iter::Skip<PackIter<'a>>>),
    Big(std::collections::vec_deque::Iter<'a, CompactBytes>),
}

impl<'a> Iterator for Range<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Range::Small(it) => it.next().map(|(_, e)| e),
            Range::Big(it) => it.next().map(|e| e.as_slice()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model_eq(l: &List, m: &VecDeque<Vec<u8>>) -> Result<(), TestCaseError> {
        prop_assert_eq!(l.len(), m.len());
        let fwd: Vec<&[u8]> = l.iter().collect();
        let want: Vec<&[u8]> = m.iter().map(|v| v.as_slice()).collect();
        prop_assert_eq!(&fwd, &want);
        let mut back: Vec<&[u8]> = l.iter().rev().collect();
        back.reverse();
        prop_assert_eq!(&back, &want);
        if !m.is_empty() {
            let r: Vec<&[u8]> = l.range(0, m.len() - 1).collect();
            prop_assert_eq!(&r, &want);
        }
        Ok(())
    }

    #[test]
    fn grows_from_pack_to_ring() {
        let mut l = List::new();
        for i in 0..200 {
            l.push(i % 2 == 0, format!("e{i}").as_bytes(), 128);
        }
        assert!(!l.is_packed());
        assert_eq!(l.len(), 200);
        assert_eq!(l.get(0), Some(&b"e198"[..]));
        assert_eq!(l.get(199), Some(&b"e199"[..]));
        let mut l = List::new();
        l.push(false, &[b'x'; 9000], -2);
        assert!(!l.is_packed());
        let mut l = List::new();
        l.push(false, b"a", -2);
        assert!(l.is_packed());
        assert_eq!(l.encoding(), "quicklist");
    }

    #[test]
    fn heap_size_tracks_elements() {
        let mut l = List::new();
        for _ in 0..1000 {
            l.push(false, &[7u8; 40], -2);
        }
        let big = l.heap_size();
        assert!(big >= 40 * 1000);
        while l.pop_with(true, |_| ()).is_some() {}
        assert!(l.heap_size() < big / 4);
    }

    proptest! {
        #[test]
        fn matches_a_vecdeque(
            limit in prop_oneof![Just(-2i64), Just(4i64), Just(-1i64)],
            ops in proptest::collection::vec(
                (0u8..9, any::<u16>(), any::<u16>(), proptest::collection::vec(0u8..3, 0..30)),
                0..150)
        ) {
            let mut l = List::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for (op, a, b, v) in ops {
                let len = m.len();
                match op {
                    0 => { l.push(true, &v, limit); m.push_front(v); }
                    1 => { l.push(false, &v, limit); m.push_back(v); }
                    2 => {
                        let got = l.pop_with(a % 2 == 0, |e| e.to_vec());
                        let want = if a % 2 == 0 { m.pop_front() } else { m.pop_back() };
                        prop_assert_eq!(got, want);
                    }
                    3 => {
                        let n = a as usize % 6;
                        let front = b % 2 == 0;
                        let mut got = Vec::new();
                        let k = l.pop_n_with(front, n, |e| got.push(e.to_vec()));
                        let mut want = Vec::new();
                        for _ in 0..n {
                            let x = if front { m.pop_front() } else { m.pop_back() };
                            if let Some(x) = x { want.push(x); }
                        }
                        prop_assert_eq!(k, want.len());
                        prop_assert_eq!(got, want);
                    }
                    4 if len > 0 => {
                        let i = a as usize % len;
                        prop_assert!(l.set(i, &v, limit));
                        m[i] = v;
                    }
                    5 => {
                        let i = a as usize % (len + 1);
                        l.insert(i, &v, limit);
                        m.insert(i, v);
                    }
                    6 => {
                        let count = a as usize % 4;
                        let tail = b % 2 == 0;
                        let got = l.remove_matching(&v, count, tail);
                        let lim = if count == 0 { usize::MAX } else { count };
                        let mut removed = 0;
                        if tail {
                            let mut i = m.len();
                            while i > 0 && removed < lim {
                                i -= 1;
                                if m[i] == v { m.remove(i); removed += 1; }
                            }
                        } else {
                            let mut i = 0;
                            while i < m.len() && removed < lim {
                                if m[i] == v { m.remove(i); removed += 1; } else { i += 1; }
                            }
                        }
                        prop_assert_eq!(got, removed);
                    }
                    7 => {
                        let keep = if a % 7 == 0 { None } else { Some((a as usize % 8, b as usize % 12)) };
                        let got = l.trim(keep);
                        let before = m.len();
                        match keep {
                            Some((s, e)) if s <= e && s < before => {
                                let e = e.min(before - 1);
                                m.truncate(e + 1);
                                m.drain(..s);
                            }
                            _ => m.clear(),
                        }
                        prop_assert_eq!(got, before - m.len());
                    }
                    _ => {
                        prop_assert_eq!(l.find(&v), m.iter().position(|x| *x == v));
                        if len > 0 {
                            let i = a as usize % len;
                            prop_assert_eq!(l.get(i), Some(m[i].as_slice()));
                            let j = b as usize % len;
                            let (s, e) = (i.min(j), i.max(j));
                            let r: Vec<&[u8]> = l.range(s, e).collect();
                            let w: Vec<&[u8]> = m.range(s..=e).map(|x| x.as_slice()).collect();
                            prop_assert_eq!(r, w);
                        }
                    }
                }
                model_eq(&l, &m)?;
            }
            let copy = List::from_elements(m.iter().map(|v| v.as_slice()));
            model_eq(&copy, &m)?;
        }
    }
}
