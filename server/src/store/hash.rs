//! The Hash value type: field -> value maps, packed while small (Redis's
//! listpack encoding) and a [`DenseMap`] once large (Redis's hashtable).
//!
//! The packed form keeps field, value, field, value ... in insertion order, so
//! HGETALL on a small hash answers in the same order as Redis. Conversion is
//! one-way, as in Redis: a hash that grew large never goes back to packed.

use super::bytes::CompactBytes;
use super::dense::DenseMap;
use super::pack::Pack;
use rand::Rng;

/// The encoding limits (`hash-max-listpack-entries`, `hash-max-listpack-value`),
/// read from the config once per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits {
            max_entries: 128,
            max_value: 64,
        }
    }
}

#[derive(Clone, Debug)]
enum Repr {
    /// Field and value entries alternating.
    Pack(Pack),
    Map(DenseMap<CompactBytes>),
}

/// A hash value.
#[derive(Clone, Debug)]
pub struct Hash {
    repr: Repr,
}

impl Default for Hash {
    fn default() -> Self {
        Hash {
            repr: Repr::Pack(Pack::new()),
        }
    }
}

/// Positions of the field entry and of its value entry in a pack.
fn pack_find(p: &Pack, field: &[u8]) -> Option<(usize, usize)> {
    let mut pos = 0;
    while pos < p.end() {
        let (f, vpos) = p.entry_at(pos);
        if f == field {
            return Some((pos, vpos));
        }
        pos = p.entry_at(vpos).1;
    }
    None
}

/// Field/value pairs of a pack, in order.
struct PackPairs<'a> {
    pack: &'a Pack,
    pos: usize,
}

impl<'a> Iterator for PackPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.pack.end() {
            return None;
        }
        let (f, vpos) = self.pack.entry_at(self.pos);
        let (v, next) = self.pack.entry_at(vpos);
        self.pos = next;
        Some((f, v))
    }
}

impl Hash {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of fields; a value is deleted from the keyspace at 0.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len() / 2,
            Repr::Map(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned, kept O(1) (the shard calls it on every mutation).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.heap_size(),
            Repr::Map(m) => m.heap_size(),
        }
    }

    /// The name OBJECT ENCODING answers.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Map(_) => "hashtable",
        }
    }

    /// Whether the packed encoding is in use (HSCAN answers everything at once then).
    pub fn is_packed(&self) -> bool {
        matches!(self.repr, Repr::Pack(_))
    }

    /// The value of `field`.
    #[inline]
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Pack(p) => pack_find(p, field).map(|(_, vpos)| p.entry_at(vpos).0),
            Repr::Map(m) => m.get(field).map(|v| v.as_slice()),
        }
    }

    #[inline]
    pub fn contains(&self, field: &[u8]) -> bool {
        match &self.repr {
            Repr::Pack(p) => pack_find(p, field).is_some(),
            Repr::Map(m) => m.contains(field),
        }
    }

    /// Sets `field` to `value`; true when the field is new. Converts to the
    /// large encoding first when either is longer than the value limit, and
    /// after when the field count passes the entry limit (Redis's hashTypeSet).
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: HashLimits) -> bool {
        if let Repr::Pack(_) = self.repr
            && (field.len() > limits.max_value || value.len() > limits.max_value)
        {
            self.convert();
        }
        let new = match &mut self.repr {
            Repr::Pack(p) => match pack_find(p, field) {
                Some((_, vpos)) => {
                    p.replace_at(vpos, value);
                    false
                }
                None => {
                    p.push_back(field);
                    p.push_back(value);
                    true
                }
            },
            Repr::Map(m) => m.insert(field, CompactBytes::new(value)).is_none(),
        };
        if let Repr::Pack(p) = &self.repr
            && p.len() / 2 > limits.max_entries
        {
            self.convert();
        }
        new
    }

    /// Removes `field`; true when it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Pack(p) => match pack_find(p, field) {
                Some((pos, _)) => {
                    p.remove_at(pos, 2);
                    true
                }
                None => false,
            },
            Repr::Map(m) => m.remove(field).is_some(),
        }
    }

    /// Moves to the large encoding (one-way).
    fn convert(&mut self) {
        if let Repr::Pack(p) = &self.repr {
            let mut m = DenseMap::with_capacity(p.len() / 2 + 1);
            for (f, v) in (PackPairs { pack: p, pos: 0 }) {
                m.insert(f, CompactBytes::new(v));
            }
            self.repr = Repr::Map(m);
        }
    }

    /// Every field/value pair: insertion order while packed, slot order after.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let (packed, map) = match &self.repr {
            Repr::Pack(p) => (Some(PackPairs { pack: p, pos: 0 }), None),
            Repr::Map(m) => (None, Some(m.iter().map(|(k, v)| (k, v.as_slice())))),
        };
        packed
            .into_iter()
            .flatten()
            .chain(map.into_iter().flatten())
    }

    /// A uniformly random pair.
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Pack(p) => {
                let n = p.len() / 2;
                if n == 0 {
                    return None;
                }
                (PackPairs { pack: p, pos: 0 }).nth(rng.random_range(0..n))
            }
            Repr::Map(m) => m.random(rng).map(|(k, v)| (k, v.as_slice())),
        }
    }

    /// HSCAN step: visits pairs from `cursor` and returns the next cursor (0
    /// at the end). A packed hash is visited whole in one call, as Redis does.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match &self.repr {
            Repr::Pack(p) => {
                for (k, v) in (PackPairs { pack: p, pos: 0 }) {
                    f(k, v);
                }
                0
            }
            Repr::Map(m) => m.scan(cursor, count, |k, v| f(k, v.as_slice())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn check(h: &Hash, m: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), TestCaseError> {
        prop_assert_eq!(h.len(), m.len());
        let mut got: Vec<(Vec<u8>, Vec<u8>)> =
            h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        got.sort();
        let want: Vec<(Vec<u8>, Vec<u8>)> = m.iter().map(|(f, v)| (f.clone(), v.clone())).collect();
        prop_assert_eq!(got, want);
        for (f, v) in m {
            prop_assert_eq!(h.get(f), Some(v.as_slice()));
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn matches_a_btreemap(
            ops in proptest::collection::vec((0u8..3, 0u16..40, 0usize..12), 0..400),
            max_entries in 0usize..20,
            max_value in 0usize..10,
        ) {
            let limits = HashLimits { max_entries, max_value };
            let mut h = Hash::new();
            let mut m: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut was_big = false;
            for (op, k, vlen) in ops {
                let field = format!("f{k}").into_bytes();
                match op {
                    0 | 1 => {
                        let value = vec![b'a' + (k % 26) as u8; vlen];
                        prop_assert_eq!(h.set(&field, &value, limits), m.insert(field, value).is_none());
                    }
                    _ => prop_assert_eq!(h.remove(&field), m.remove(&field).is_some()),
                }
                check(&h, &m)?;
                let should_be_big = m.len() > max_entries
                    || m.iter().any(|(f, v)| f.len() > max_value || v.len() > max_value);
                // Converted exactly when the content was ever too big for
                // the packed encoding (conversion is one-way).
                was_big |= should_be_big;
                prop_assert_eq!(!h.is_packed(), was_big);
                let mut rng = rand::rng();
                if let Some((f, v)) = h.random(&mut rng) {
                    prop_assert_eq!(m.get(f).map(|x| x.as_slice()), Some(v));
                } else {
                    prop_assert!(m.is_empty());
                }
            }
        }
    }

    #[test]
    fn packed_keeps_insertion_order_and_updates_in_place() {
        let mut h = Hash::new();
        let l = HashLimits::default();
        assert!(h.set(b"b", b"1", l));
        assert!(h.set(b"a", b"2", l));
        assert!(h.set(b"c", b"3", l));
        assert!(!h.set(b"a", b"22", l));
        assert!(h.remove(b"b"));
        let got: Vec<_> = h.iter().collect();
        assert_eq!(got, vec![(&b"a"[..], &b"22"[..]), (&b"c"[..], &b"3"[..])]);
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn converts_on_long_values_and_many_entries() {
        let l = HashLimits {
            max_entries: 3,
            max_value: 4,
        };
        let mut h = Hash::new();
        h.set(b"f", b"12345", l);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = Hash::new();
        for f in [&b"a"[..], b"b", b"c"] {
            h.set(f, b"v", l);
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"d", b"v", l);
        assert_eq!(h.encoding(), "hashtable");
        h.remove(b"d");
        h.remove(b"c");
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn scan_visits_everything() {
        let l = HashLimits::default();
        let mut h = Hash::new();
        for i in 0..1000 {
            h.set(format!("f{i}").as_bytes(), b"v", l);
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut cursor = 0;
        loop {
            cursor = h.scan(cursor, 10, |f, _| {
                seen.insert(f.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
    }
}
