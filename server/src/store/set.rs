//! The Set value type: an intset while every member is an integer and the set
//! is small (`set-max-intset-entries`), a [`DenseMap`] ("hashtable") otherwise.
//!
//! The intset keeps each member as its canonical decimal string in a
//! fixed-width slot (zero-padded), sorted by numeric value. Keeping the text
//! rather than an `i64` lets [`Set::iter`] hand out borrowed `&[u8]` members
//! (replies, SORT, set algebra) without formatting; canonical decimals compare
//! numerically by (sign, length, bytes), so binary search needs no parsing.
//! The slot width grows with the longest member, like Redis's intset encoding
//! upgrade, and never shrinks.

use super::bytes::CompactBytes;
use super::dense::DenseMap;
use rand::Rng;
use std::cmp::Ordering;

/// Whether `m` is an integer the intset can hold (Redis's `string2ll` rules,
/// which also means its text is canonical).
#[inline]
pub fn is_int_member(m: &[u8]) -> bool {
    crate::util::parse_i64(m).is_some()
}

/// Numeric order of two canonical decimal integers.
#[inline]
fn cmp_dec(a: &[u8], b: &[u8]) -> Ordering {
    let an = a.first() == Some(&b'-');
    let bn = b.first() == Some(&b'-');
    match (an, bn) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, true) => b.len().cmp(&a.len()).then_with(|| b.cmp(a)),
    }
}

/// Sorts canonical decimal integers ascending (the order an intset answers in).
pub fn sort_ints(v: &mut [&[u8]]) {
    v.sort_unstable_by(|a, b| cmp_dec(a, b));
}

/// Sorted integers as zero-padded decimal text in slots of `width` bytes.
#[derive(Clone, Debug, Default)]
struct IntSet {
    width: usize,
    data: Vec<u8>,
}

impl IntSet {
    #[inline]
    fn len(&self) -> usize {
        self.data.len().checked_div(self.width).unwrap_or(0)
    }

    #[inline]
    fn slot(&self, i: usize) -> &[u8] {
        let s = &self.data[i * self.width..(i + 1) * self.width];
        let n = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        &s[..n]
    }

    /// Position of `m` (a canonical integer), or where it would go.
    fn search(&self, m: &[u8]) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match cmp_dec(self.slot(mid), m) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    fn contains(&self, m: &[u8]) -> bool {
        is_int_member(m) && self.search(m).is_ok()
    }

    /// Rewrites every slot at a larger width.
    fn widen(&mut self, width: usize) {
        let n = self.len();
        let mut data = Vec::with_capacity((n + 1) * width);
        for i in 0..n {
            let s = self.slot(i);
            data.extend_from_slice(s);
            data.resize(data.len() + width - s.len(), 0);
        }
        self.data = data;
        self.width = width;
    }

    /// Inserts a canonical integer at `pos` (from [`IntSet::search`]).
    fn insert_at(&mut self, pos: usize, m: &[u8]) {
        if m.len() > self.width {
            self.widen(m.len());
        }
        let w = self.width;
        let old = self.data.len();
        self.data.resize(old + w, 0);
        self.data.copy_within(pos * w..old, (pos + 1) * w);
        let slot = &mut self.data[pos * w..(pos + 1) * w];
        slot.fill(0);
        slot[..m.len()].copy_from_slice(m);
    }

    fn remove_at(&mut self, pos: usize) {
        let w = self.width;
        self.data.drain(pos * w..(pos + 1) * w);
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |i| self.slot(i))
    }
}

#[derive(Clone, Debug)]
enum Repr {
    Ints(IntSet),
    Table(DenseMap<()>),
}

/// A set value.
#[derive(Clone, Debug)]
pub struct Set {
    repr: Repr,
}

impl Default for Set {
    fn default() -> Self {
        Set::new()
    }
}

impl Set {
    /// An empty set in the intset encoding (what Redis creates for integers;
    /// the first non-integer member converts it).
    pub fn new() -> Self {
        Set {
            repr: Repr::Ints(IntSet::default()),
        }
    }

    /// Number of elements; a value is deleted from the keyspace at 0.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.len(),
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned, kept O(1) (the shard calls it on every mutation).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Ints(s) => s.data.capacity(),
            Repr::Table(t) => t.heap_size(),
        }
    }

    /// The name OBJECT ENCODING answers.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Ints(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Ints(_))
    }

    /// Members in no particular order (SORT, SINTER ...); an intset yields
    /// them in ascending numeric order, as Redis does.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let (a, b) = match &self.repr {
            Repr::Ints(s) => (Some(s.iter()), None),
            Repr::Table(t) => (None, Some(t.iter().map(|(k, _)| k))),
        };
        a.into_iter().flatten().chain(b.into_iter().flatten())
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(s) => s.contains(m),
            Repr::Table(t) => t.contains(m),
        }
    }

    /// Converts to the hashtable encoding (one way, as in Redis).
    fn convert_to_table(&mut self) {
        if let Repr::Ints(s) = &self.repr {
            let mut t = DenseMap::with_capacity(s.len() + 1);
            for m in s.iter() {
                t.insert(m, ());
            }
            self.repr = Repr::Table(t);
        }
    }

    /// Adds `m`; true if it was not there. The intset converts when `m` is not
    /// an integer or the set would exceed `max_intset` members.
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        if let Repr::Ints(s) = &mut self.repr {
            if is_int_member(m) {
                match s.search(m) {
                    Ok(_) => return false,
                    Err(pos) => {
                        if s.len() < max_intset {
                            s.insert_at(pos, m);
                            return true;
                        }
                    }
                }
            }
            self.convert_to_table();
        }
        match &mut self.repr {
            Repr::Table(t) => t.insert(m, ()).is_none(),
            Repr::Ints(_) => false,
        }
    }

    /// Removes `m`; true if it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(s) => {
                if !is_int_member(m) {
                    return false;
                }
                match s.search(m) {
                    Ok(pos) => {
                        s.remove_at(pos);
                        true
                    }
                    Err(_) => false,
                }
            }
            Repr::Table(t) => t.remove(m).is_some(),
        }
    }

    /// A uniformly random member.
    pub fn random(&self, rng: &mut impl Rng) -> Option<&[u8]> {
        match &self.repr {
            Repr::Ints(s) => {
                let n = s.len();
                (n > 0).then(|| s.slot(rng.random_range(0..n)))
            }
            Repr::Table(t) => t.random(rng).map(|(k, _)| k),
        }
    }

    /// Removes and returns a random member.
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<CompactBytes> {
        let m = CompactBytes::new(self.random(rng)?);
        match &mut self.repr {
            Repr::Ints(s) => {
                if let Ok(pos) = s.search(m.as_slice()) {
                    s.remove_at(pos);
                }
                Some(m)
            }
            Repr::Table(t) => t.remove(m.as_slice()).map(|(k, _)| k),
        }
    }

    /// Removes `count` (< len) distinct random members, handing each to `f`.
    pub fn pop_many(&mut self, count: usize, rng: &mut impl Rng, mut f: impl FnMut(&[u8])) {
        match &mut self.repr {
            Repr::Ints(s) => {
                // One pass instead of `count` O(n) removals: pick positions
                // with a partial shuffle, then keep the rest.
                let n = s.len();
                let mut pos: Vec<usize> = (0..n).collect();
                let mut gone = vec![false; n];
                for i in 0..count.min(n) {
                    let j = rng.random_range(i..n);
                    pos.swap(i, j);
                    gone[pos[i]] = true;
                    f(s.slot(pos[i]));
                }
                let w = s.width;
                let mut kept = Vec::with_capacity((n - count.min(n)) * w);
                for (i, g) in gone.iter().enumerate() {
                    if !g {
                        kept.extend_from_slice(&s.data[i * w..(i + 1) * w]);
                    }
                }
                s.data = kept;
            }
            Repr::Table(_) => {
                for _ in 0..count {
                    match self.pop_random(rng) {
                        Some(m) => f(m.as_slice()),
                        None => break,
                    }
                }
            }
        }
    }

    /// `count` (< len) distinct random members.
    pub fn sample_distinct(&self, count: usize, rng: &mut impl Rng) -> Vec<&[u8]> {
        let n = self.len();
        if count.saturating_mul(3) > n || self.is_intset() {
            // Near the whole set: a partial shuffle of all members.
            let mut all: Vec<&[u8]> = self.iter().collect();
            let k = count.min(n);
            for i in 0..k {
                let j = rng.random_range(i..n);
                all.swap(i, j);
            }
            all.truncate(k);
            return all;
        }
        let mut seen: hashbrown::HashSet<&[u8]> = hashbrown::HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            match self.random(rng) {
                Some(m) => {
                    if seen.insert(m) {
                        out.push(m);
                    }
                }
                None => break,
            }
        }
        out
    }

    /// SSCAN: an intset answers everything at once with cursor 0 (as Redis);
    /// a hashtable walks slot positions from `cursor`. Returns the next cursor.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        match &self.repr {
            Repr::Ints(s) => {
                s.iter().for_each(f);
                0
            }
            Repr::Table(t) => t.scan(cursor, count, |k, _| f(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn member(k: u16) -> Vec<u8> {
        match k % 5 {
            0 => format!("m{k}").into_bytes(),
            1 => format!("-{}", k as u64 * 1_000_003).into_bytes(),
            _ => k.to_string().into_bytes(),
        }
    }

    proptest! {
        #[test]
        fn matches_a_btreeset(
            ops in proptest::collection::vec((0u8..3, 0u16..200), 0..600),
            max in 0usize..40,
        ) {
            let mut s = Set::new();
            let mut m: BTreeSet<Vec<u8>> = BTreeSet::new();
            let mut rng = rand::rng();
            for (op, k) in ops {
                let key = member(k);
                match op {
                    0 => prop_assert_eq!(s.add(&key, max), m.insert(key.clone())),
                    1 => prop_assert_eq!(s.remove(&key), m.remove(&key)),
                    _ => {
                        if let Some(p) = s.pop_random(&mut rng) {
                            prop_assert!(m.remove(p.as_slice()));
                        }
                    }
                }
                prop_assert_eq!(s.len(), m.len());
                prop_assert_eq!(s.contains(&key), m.contains(&key));
                if s.is_intset() {
                    prop_assert!(s.len() <= max);
                    prop_assert!(m.iter().all(|x| is_int_member(x)));
                    let got: Vec<i64> = s.iter().map(|x| crate::util::parse_i64(x).unwrap()).collect();
                    let mut want: Vec<i64> = m.iter().map(|x| crate::util::parse_i64(x).unwrap()).collect();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
            }
            let got: BTreeSet<Vec<u8>> = s.iter().map(|x| x.to_vec()).collect();
            prop_assert_eq!(got, m);
        }

        #[test]
        fn decimal_order_is_numeric(a in any::<i64>(), b in any::<i64>()) {
            let (x, y) = (a.to_string(), b.to_string());
            prop_assert_eq!(cmp_dec(x.as_bytes(), y.as_bytes()), a.cmp(&b));
        }
    }

    #[test]
    fn encodings_and_widening() {
        let mut s = Set::new();
        assert!(s.add(b"5", 4));
        assert!(s.add(b"-9223372036854775808", 4));
        assert!(s.add(b"12", 4));
        assert!(!s.add(b"12", 4));
        assert_eq!(s.encoding(), "intset");
        let v: Vec<&[u8]> = s.iter().collect();
        assert_eq!(v, [&b"-9223372036854775808"[..], b"5", b"12"]);
        assert!(!s.contains(b"05"));
        assert!(s.add(b"7", 4));
        assert_eq!(s.encoding(), "intset");
        assert!(s.add(b"8", 4));
        assert_eq!(s.encoding(), "hashtable");
        let mut t = Set::new();
        t.add(b"1", 10);
        t.add(b"x", 10);
        assert_eq!(t.encoding(), "hashtable");
        t.remove(b"x");
        assert_eq!(t.encoding(), "hashtable");
    }

    #[test]
    fn pop_many_and_sample() {
        let mut rng = rand::rng();
        for (max, n) in [(512usize, 100usize), (0, 100)] {
            let mut s = Set::new();
            for i in 0..n {
                s.add(i.to_string().as_bytes(), max);
            }
            let sample = s.sample_distinct(30, &mut rng);
            let uniq: BTreeSet<&[u8]> = sample.iter().copied().collect();
            assert_eq!(uniq.len(), 30);
            let mut popped = BTreeSet::new();
            s.pop_many(40, &mut rng, |m| {
                popped.insert(m.to_vec());
            });
            assert_eq!(popped.len(), 40);
            assert_eq!(s.len(), 60);
            for p in &popped {
                assert!(!s.contains(p));
            }
        }
    }
}
