//! Record encoding of one key's value and expiry for the persistence backends and export files.
//!
//! A record is self-describing and stable across versions; it starts with a
//! format byte so a later layout can be told apart from this one:
//!
//! ```text
//! [RECORD_FORMAT u8][expire_at u64 LE, 0 = none][type u8][payload]
//! type 0 string : len, bytes
//! type 1 list   : count, then count × (len, bytes), head to tail
//! type 2 hash   : count, then count × (field len, field, value len, value)
//! type 3 set    : count, then count × (len, bytes)
//! type 4 zset   : count, then count × (len, member, score as f64 bits LE),
//!                 in ascending (score, member) order
//! ```
//!
//! Counts and lengths are unsigned LEB128 varints. Strings carry their length
//! like every other element (one byte for short values), so a truncated record
//! and trailing bytes are both detected for every type.
//!
//! Decoding rebuilds collections through the same constructors the commands
//! use, with the encoding limits in force, so OBJECT ENCODING after a reload is
//! what the commands would have produced for the same contents. It never
//! panics on arbitrary bytes and never allocates from an untrusted count:
//! every element consumes at least one byte of the record, so no loop runs
//! longer than the record is long.

use super::bytes::CompactBytes;
use super::hash::{Hash, HashLimits};
use super::list::List;
use super::set::Set;
use super::value::Value;
use super::zset::{self, ZSet};

/// The layout version written as a record's first byte.
pub const RECORD_FORMAT: u8 = 1;

/// Bytes before the payload: format, expiry, type.
const HEADER: usize = 10;
/// Longest LEB128 encoding of a u64.
const MAX_VARINT: usize = 10;

const T_STR: u8 = 0;
const T_LIST: u8 = 1;
const T_HASH: u8 = 2;
const T_SET: u8 = 3;
const T_ZSET: u8 = 4;

/// Encoding limits used to rebuild collections in the same encodings the commands would pick.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub hash: HashLimits,
    /// list-max-listpack-size (negative = bytes class as Redis, see List::push's `limit` parameter)
    pub list: i64,
    pub set_max_intset: usize,
    pub zset: zset::Limits,
}

impl Default for Limits {
    /// Redis 7 defaults.
    fn default() -> Self {
        Limits {
            hash: HashLimits {
                max_entries: 128,
                max_value: 64,
            },
            list: -2,
            set_max_intset: 512,
            zset: zset::Limits {
                entries: 128,
                value: 64,
            },
        }
    }
}

/// Why a record could not be read, with where in it the problem lies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// An item starting at byte `at` runs past the end of the `len`-byte record.
    #[error("record truncated: item at byte {at} runs past the end of the {len}-byte record")]
    Truncated { at: usize, len: usize },
    #[error("unknown record format {0} (this build reads format {RECORD_FORMAT})")]
    UnknownFormat(u8),
    #[error("unknown value type {0} in record")]
    UnknownType(u8),
    /// The value ends at byte `at` but the record is `len` bytes long.
    #[error("record has trailing bytes: value ends at byte {at} of {len}")]
    Trailing { at: usize, len: usize },
    /// Content that no encoder writes (`what`) at byte `at`.
    #[error("invalid record at byte {at}: {what}")]
    Invalid { at: usize, what: &'static str },
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[inline]
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[inline]
fn put_header(out: &mut Vec<u8>, expire_at: Option<u64>, ty: u8) {
    // 0 means "no expiry" on disk as in the keyspace; an expiry at the epoch
    // itself is kept as 1 ms after it, so the key stays (long) expired
    // instead of coming back persistent.
    let at = match expire_at {
        None => 0,
        Some(t) => t.max(1),
    };
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&at.to_le_bytes());
    out.push(ty);
}

/// Appends the record of (value, expire_at) to `out`. expire_at = absolute
/// unix ms, None = no TTL (`Some(0)` is written as `Some(1)`: see the layout).
pub fn encode(value: &Value, expire_at: Option<u64>, out: &mut Vec<u8>) {
    match value {
        Value::Str(s) => {
            let b = s.as_slice();
            out.reserve(HEADER + MAX_VARINT + b.len());
            put_header(out, expire_at, T_STR);
            put_bytes(out, b);
        }
        Value::List(l) => {
            put_header(out, expire_at, T_LIST);
            put_varint(out, l.len() as u64);
            for e in l.iter() {
                put_bytes(out, e);
            }
        }
        Value::Hash(h) => {
            put_header(out, expire_at, T_HASH);
            put_varint(out, h.len() as u64);
            for (f, v) in h.iter() {
                put_bytes(out, f);
                put_bytes(out, v);
            }
        }
        Value::Set(s) => {
            put_header(out, expire_at, T_SET);
            put_varint(out, s.len() as u64);
            for m in s.iter() {
                put_bytes(out, m);
            }
        }
        Value::ZSet(z) => {
            put_header(out, expire_at, T_ZSET);
            put_varint(out, z.len() as u64);
            for (m, s) in z.iter() {
                put_bytes(out, m);
                out.extend_from_slice(&s.to_bits().to_le_bytes());
            }
        }
    }
}

/// Checks the header; returns the expiry and the type byte.
#[inline]
fn header(record: &[u8]) -> Result<(Option<u64>, u8), CodecError> {
    let len = record.len();
    let Some(&format) = record.first() else {
        return Err(CodecError::Truncated { at: 0, len });
    };
    if format != RECORD_FORMAT {
        return Err(CodecError::UnknownFormat(format));
    }
    let at = record
        .get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .ok_or(CodecError::Truncated { at: 1, len })?;
    let ty = *record.get(9).ok_or(CodecError::Truncated { at: 9, len })?;
    if ty > T_ZSET {
        return Err(CodecError::UnknownType(ty));
    }
    Ok(((at != 0).then_some(at), ty))
}

/// The expiry of a record, read without decoding the value (load skips expired keys cheaply).
#[inline]
pub fn expire_at(record: &[u8]) -> Result<Option<u64>, CodecError> {
    header(record).map(|(at, _)| at)
}

/// A cursor over a record's bytes.
#[derive(Clone)]
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn truncated(&self, at: usize) -> CodecError {
        CodecError::Truncated {
            at,
            len: self.buf.len(),
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, CodecError> {
        let start = self.pos;
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| self.truncated(start))?;
            self.pos += 1;
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                return Err(CodecError::Invalid {
                    at: start,
                    what: "varint overflows u64",
                });
            }
            v |= low << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(CodecError::Invalid {
                    at: start,
                    what: "varint longer than 10 bytes",
                });
            }
        }
    }

    #[inline]
    fn take(&mut self, n: usize, at: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.truncated(at))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.truncated(at))?;
        self.pos = end;
        Ok(s)
    }

    /// A length-prefixed byte string.
    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let at = self.pos;
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.truncated(at))?;
        self.take(n, at)
    }

    #[inline]
    fn score(&mut self) -> Result<f64, CodecError> {
        let at = self.pos;
        let b = self.take(8, at)?;
        <[u8; 8]>::try_from(b)
            .map(|b| f64::from_bits(u64::from_le_bytes(b)))
            .map_err(|_| self.truncated(at))
    }

    fn finish(&self) -> Result<(), CodecError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(CodecError::Trailing {
                at: self.pos,
                len: self.buf.len(),
            })
        }
    }
}

/// Rebuilds the value and expiry.
pub fn decode(record: &[u8], limits: &Limits) -> Result<(Value, Option<u64>), CodecError> {
    let (at, ty) = header(record)?;
    let mut r = Reader {
        buf: record,
        pos: HEADER,
    };
    let value = match ty {
        T_STR => Value::Str(CompactBytes::new(r.bytes()?)),
        T_LIST => {
            let n = r.varint()?;
            let mut l = List::new();
            // Each element consumes at least a byte: the loop ends with the record.
            for _ in 0..n {
                l.push(false, r.bytes()?, limits.list);
            }
            Value::List(Box::new(l))
        }
        T_HASH => {
            let n = r.varint()?;
            let mut h = Hash::new();
            for _ in 0..n {
                let at = r.pos;
                let f = r.bytes()?;
                let v = r.bytes()?;
                if !h.set(f, v, limits.hash) {
                    return Err(CodecError::Invalid {
                        at,
                        what: "repeated hash field",
                    });
                }
            }
            Value::Hash(Box::new(h))
        }
        T_SET => {
            let n = r.varint()?;
            let mut s = Set::new();
            for _ in 0..n {
                let at = r.pos;
                if !s.add(r.bytes()?, limits.set_max_intset) {
                    return Err(CodecError::Invalid {
                        at,
                        what: "repeated set member",
                    });
                }
            }
            Value::Set(Box::new(s))
        }
        T_ZSET => Value::ZSet(Box::new(decode_zset(&mut r, limits.zset)?)),
        t => return Err(CodecError::UnknownType(t)),
    };
    r.finish()?;
    Ok((value, at))
}

/// The (member, score) pairs of a validated zset payload, parsed lazily so
/// [`ZSet::from_sorted`] can walk them twice without a copy.
#[derive(Clone)]
struct ZPairs<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for ZPairs<'a> {
    type Item = (&'a [u8], f64);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let m = self.r.bytes().ok()?;
        let s = self.r.score().ok()?;
        Some((m, s))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for ZPairs<'_> {}

/// Validates a zset payload (no NaN, strictly ascending (score, member), no
/// repeated member) and builds the set from it in one pass of inserts.
fn decode_zset(r: &mut Reader<'_>, lim: zset::Limits) -> Result<ZSet, CodecError> {
    let n = r.varint()?;
    let start = r.clone();
    let mut prev: Option<(&[u8], f64)> = None;
    let mut count = 0usize;
    for _ in 0..n {
        let at = r.pos;
        let m = r.bytes()?;
        let s = r.score()?;
        if s.is_nan() {
            return Err(CodecError::Invalid {
                at,
                what: "NaN score",
            });
        }
        if let Some((pm, ps)) = prev
            && !(ps < s || (ps == s && pm < m))
        {
            return Err(CodecError::Invalid {
                at,
                what: "sorted set members out of (score, member) order",
            });
        }
        prev = Some((m, s));
        count += 1;
    }
    let items = ZPairs {
        r: start.clone(),
        left: count,
    };
    // Strict order rules out a member repeated with an equal score; one
    // repeated with another score is caught here.
    let repeated = CodecError::Invalid {
        at: start.pos,
        what: "repeated sorted set member",
    };
    let z = ZSet::from_sorted(items.clone(), lim);
    if z.is_big() {
        // The map keeps the last score of a repeated member: the first differs.
        for (m, s) in items {
            if z.score(m) != Some(s) {
                return Err(repeated);
            }
        }
    } else {
        // Small by the limits: sorting the members is cheap.
        let mut ms: Vec<&[u8]> = items.map(|(m, _)| m).collect();
        ms.sort_unstable();
        if ms.windows(2).any(|w| w[0] == w[1]) {
            return Err(repeated);
        }
    }
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lim() -> Limits {
        Limits::default()
    }

    // Values built the way the commands build them.

    fn list_of(items: &[Vec<u8>], limit: i64) -> Value {
        let mut l = List::new();
        for e in items {
            l.push(false, e, limit);
        }
        Value::List(Box::new(l))
    }

    fn hash_of(pairs: &[(Vec<u8>, Vec<u8>)], limits: HashLimits) -> Value {
        let mut h = Hash::new();
        for (f, v) in pairs {
            h.set(f, v, limits);
        }
        Value::Hash(Box::new(h))
    }

    fn set_of(members: &[Vec<u8>], max: usize) -> Value {
        let mut s = Set::new();
        for m in members {
            s.add(m, max);
        }
        Value::Set(Box::new(s))
    }

    /// As ZADD on a new key: big from the start when the limits say so.
    fn zset_of(items: &[(Vec<u8>, f64)], lim: zset::Limits) -> Value {
        let first = items.first().map(|(m, _)| m.len()).unwrap_or(0);
        let mut z = if lim.entries == 0 || first > lim.value {
            ZSet::new_big()
        } else {
            ZSet::new()
        };
        for (m, s) in items {
            match z.score(m) {
                Some(old) => z.update(m, old, *s),
                None => z.insert(m, *s, lim),
            }
        }
        Value::ZSet(Box::new(z))
    }

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
    /// Elements, field/value pairs, (member, score bits) pairs.
    type Contents = (Vec<Vec<u8>>, Pairs, Vec<(Vec<u8>, u64)>);

    /// Contents in a comparable form: order kept where the type defines one
    /// (lists, sorted sets, packed hashes), sorted otherwise.
    fn contents(v: &Value) -> Contents {
        match v {
            Value::Str(s) => (vec![s.as_slice().to_vec()], vec![], vec![]),
            Value::List(l) => (l.iter().map(|e| e.to_vec()).collect(), vec![], vec![]),
            Value::Hash(h) => {
                let mut p: Pairs = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                if !h.is_packed() {
                    p.sort();
                }
                (vec![], p, vec![])
            }
            Value::Set(s) => {
                let mut m: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
                if !s.is_intset() {
                    m.sort();
                }
                (m, vec![], vec![])
            }
            Value::ZSet(z) => (
                vec![],
                vec![],
                z.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect(),
            ),
        }
    }

    fn assert_round_trip(v: &Value, expire: Option<u64>, limits: &Limits) -> Vec<u8> {
        let mut rec = Vec::new();
        encode(v, expire, &mut rec);
        let (back, at) = decode(&rec, limits).expect("decodes");
        assert_eq!(at, expire);
        assert_eq!(expire_at(&rec), Ok(expire));
        assert_eq!(back.type_name(), v.type_name());
        assert_eq!(
            back.encoding(),
            v.encoding(),
            "encoding of {}",
            v.type_name()
        );
        assert_eq!(back.len(), v.len());
        assert_eq!(contents(&back), contents(v));
        // Re-encoding gives the same record wherever the iteration order is
        // the content's (everything but hashtables).
        if v.encoding() != "hashtable" {
            let mut again = Vec::new();
            encode(&back, expire, &mut again);
            assert_eq!(again, rec);
        }
        rec
    }

    fn nums(range: std::ops::Range<i64>) -> Vec<Vec<u8>> {
        range.map(|i| i.to_string().into_bytes()).collect()
    }

    /// One record of every type and encoding.
    fn samples() -> Vec<(Value, Option<u64>)> {
        let l = lim();
        let small_list: Vec<Vec<u8>> = vec![b"a".to_vec(), b"".to_vec(), b"ccc".to_vec()];
        let big_list: Vec<Vec<u8>> = (0..1000)
            .map(|i| format!("elem-{i}").into_bytes())
            .collect();
        let small_hash: Pairs = (0..10)
            .map(|i| (format!("f{i}").into_bytes(), format!("v{i}").into_bytes()))
            .collect();
        let big_hash: Pairs = (0..200)
            .map(|i| (format!("field{i}").into_bytes(), vec![b'x'; i % 70]))
            .collect();
        let mut zbig: Vec<(Vec<u8>, f64)> = (0..298)
            .map(|i| (format!("m{i}").into_bytes(), (i / 3) as f64 - 40.5))
            .collect();
        zbig.push((b"lowest".to_vec(), f64::NEG_INFINITY));
        zbig.push((b"highest".to_vec(), f64::INFINITY));
        let zsmall = vec![
            (b"b".to_vec(), 1.0),
            (b"a".to_vec(), 1.0),
            (b"z".to_vec(), -0.0),
            (b"inf".to_vec(), f64::INFINITY),
            (b"ninf".to_vec(), f64::NEG_INFINITY),
        ];
        let mut strings = nums(0..600);
        strings.push(b"not-a-number".to_vec());
        vec![
            (Value::str(b""), None),
            (Value::str(b"0123456789abcdef"), Some(1_700_000_000_000)),
            (Value::str(b"-12345"), None),
            (Value::str(&[0xffu8; 300]), Some(u64::MAX)),
            (list_of(&small_list, l.list), None),
            (list_of(&big_list, l.list), Some(42)),
            (hash_of(&small_hash, l.hash), None),
            (hash_of(&big_hash, l.hash), Some(7)),
            (set_of(&nums(-5..50), l.set_max_intset), None),
            (set_of(&nums(0..600), l.set_max_intset), None),
            (set_of(&strings, l.set_max_intset), Some(9)),
            (set_of(&[b"x".to_vec()], l.set_max_intset), None),
            (zset_of(&zsmall, l.zset), None),
            (zset_of(&zbig, l.zset), Some(123_456)),
        ]
    }

    #[test]
    fn every_type_round_trips_in_both_encodings() {
        let mut seen = std::collections::BTreeSet::new();
        for (v, at) in samples() {
            assert_round_trip(&v, at, &lim());
            seen.insert((v.type_name(), v.encoding()));
        }
        for want in [
            ("string", "embstr"),
            ("string", "int"),
            ("string", "raw"),
            ("list", "quicklist"),
            ("hash", "listpack"),
            ("hash", "hashtable"),
            ("set", "intset"),
            ("set", "hashtable"),
            ("zset", "listpack"),
            ("zset", "skiplist"),
        ] {
            assert!(seen.contains(&want), "no sample of {want:?}");
        }
    }

    #[test]
    fn list_shapes_follow_the_limit() {
        let l = lim();
        let items: Vec<Vec<u8>> = (0..1000).map(|i| format!("e{i}").into_bytes()).collect();
        for (n, limit) in [
            (3usize, -2i64),
            (1000, -2),
            (5, 4),
            (4, 4),
            (2, 0),
            (1000, -5),
        ] {
            let v = list_of(&items[..n], limit);
            let mut rec = Vec::new();
            encode(&v, None, &mut rec);
            let (back, _) = decode(&rec, &Limits { list: limit, ..l }).unwrap();
            let (Value::List(a), Value::List(b)) = (&v, &back) else {
                panic!("not lists");
            };
            assert_eq!(a.is_packed(), b.is_packed(), "n={n} limit={limit}");
            assert_eq!(contents(&v), contents(&back));
        }
    }

    #[test]
    fn limits_decide_the_rebuilt_encoding() {
        // The same record comes back in the encoding the limits in force pick.
        let v = set_of(&nums(0..100), 512);
        let mut rec = Vec::new();
        encode(&v, None, &mut rec);
        let tight = Limits {
            set_max_intset: 50,
            ..lim()
        };
        assert_eq!(decode(&rec, &tight).unwrap().0.encoding(), "hashtable");
        assert_eq!(decode(&rec, &lim()).unwrap().0.encoding(), "intset");

        let long = zset_of(&[(b"a".to_vec(), 1.0), (vec![b'm'; 100], 2.0)], lim().zset);
        assert_eq!(long.encoding(), "skiplist");
        assert_round_trip(&long, None, &lim());
        let h = hash_of(&[(b"f".to_vec(), vec![b'v'; 65])], lim().hash);
        assert_eq!(h.encoding(), "hashtable");
        assert_round_trip(&h, None, &lim());
        let z0 = Limits {
            zset: zset::Limits {
                entries: 0,
                value: 64,
            },
            ..lim()
        };
        let one = zset_of(&[(b"a".to_vec(), 1.0)], z0.zset);
        assert_eq!(one.encoding(), "skiplist");
        assert_round_trip(&one, None, &z0);
    }

    #[test]
    fn expiry_round_trips() {
        for at in [None, Some(1), Some(1_700_000_000_123), Some(u64::MAX)] {
            let mut rec = Vec::new();
            encode(&Value::str(b"v"), at, &mut rec);
            assert_eq!(expire_at(&rec), Ok(at));
            assert_eq!(decode(&rec, &lim()).unwrap().1, at);
        }
        // The epoch itself stays an (expired) expiry rather than none.
        let mut rec = Vec::new();
        encode(&Value::str(b"v"), Some(0), &mut rec);
        assert_eq!(expire_at(&rec), Ok(Some(1)));
    }

    #[test]
    fn expire_at_agrees_with_decode() {
        for (v, at) in samples() {
            let mut rec = Vec::new();
            encode(&v, at, &mut rec);
            assert_eq!(expire_at(&rec), Ok(decode(&rec, &lim()).unwrap().1));
        }
    }

    #[test]
    fn encode_appends() {
        let mut out = b"prefix".to_vec();
        encode(&Value::str(b"abc"), None, &mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(
            &out[6..],
            &[
                RECORD_FORMAT,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                T_STR,
                3,
                b'a',
                b'b',
                b'c'
            ]
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for (v, at) in samples() {
            let mut rec = Vec::new();
            encode(&v, at, &mut rec);
            for cut in 0..rec.len() {
                let got = decode(&rec[..cut], &lim());
                assert!(
                    matches!(got, Err(CodecError::Truncated { len, .. }) if len == cut),
                    "{} cut at {cut}/{}: {got:?}",
                    v.type_name(),
                    rec.len()
                );
                if cut < HEADER {
                    assert!(expire_at(&rec[..cut]).is_err());
                }
            }
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        for (v, at) in samples() {
            let mut rec = Vec::new();
            encode(&v, at, &mut rec);
            let len = rec.len();
            rec.push(0);
            assert_eq!(
                decode(&rec, &lim()).err(),
                Some(CodecError::Trailing {
                    at: len,
                    len: len + 1
                })
            );
        }
    }

    #[test]
    fn unknown_format_and_type_are_rejected() {
        let mut rec = Vec::new();
        encode(&Value::str(b"v"), Some(5), &mut rec);
        for f in [0u8, 2, 255] {
            let mut bad = rec.clone();
            bad[0] = f;
            assert_eq!(
                decode(&bad, &lim()).err(),
                Some(CodecError::UnknownFormat(f))
            );
            assert_eq!(expire_at(&bad), Err(CodecError::UnknownFormat(f)));
        }
        assert_eq!(expire_at(&[2]), Err(CodecError::UnknownFormat(2)));
        let mut bad = rec.clone();
        bad[9] = 5;
        assert_eq!(decode(&bad, &lim()).err(), Some(CodecError::UnknownType(5)));
        assert_eq!(expire_at(&bad), Err(CodecError::UnknownType(5)));
        assert_eq!(
            decode(&[], &lim()).err(),
            Some(CodecError::Truncated { at: 0, len: 0 })
        );
    }

    fn zset_record(items: &[(&[u8], f64)]) -> Vec<u8> {
        let mut rec = vec![RECORD_FORMAT, 0, 0, 0, 0, 0, 0, 0, 0, T_ZSET];
        put_varint(&mut rec, items.len() as u64);
        for (m, s) in items {
            put_bytes(&mut rec, m);
            rec.extend_from_slice(&s.to_bits().to_le_bytes());
        }
        rec
    }

    #[test]
    fn malformed_collections_are_rejected() {
        let l = lim();
        let big_members: Vec<Vec<u8>> = (0..200).map(|i| format!("m{i:03}").into_bytes()).collect();
        let is_invalid = |r: Result<(Value, Option<u64>), CodecError>| {
            matches!(r, Err(CodecError::Invalid { .. }))
        };
        // Sorted sets: NaN, disorder, a repeated member (small and big).
        assert!(is_invalid(decode(&zset_record(&[(b"a", f64::NAN)]), &l)));
        assert!(is_invalid(decode(
            &zset_record(&[(b"a", 2.0), (b"b", 1.0)]),
            &l
        )));
        assert!(is_invalid(decode(
            &zset_record(&[(b"b", 1.0), (b"a", 1.0)]),
            &l
        )));
        assert!(is_invalid(decode(
            &zset_record(&[(b"a", 1.0), (b"a", 1.0)]),
            &l
        )));
        assert!(is_invalid(decode(
            &zset_record(&[(b"a", -0.0), (b"a", 0.0)]),
            &l
        )));
        assert!(is_invalid(decode(
            &zset_record(&[(b"a", 1.0), (b"b", 1.5), (b"a", 2.0)]),
            &l
        )));
        let mut big: Vec<(&[u8], f64)> = big_members.iter().map(|m| (m.as_slice(), 1.0)).collect();
        big.push((b"m000", 2.0));
        assert!(is_invalid(decode(&zset_record(&big), &l)));
        big.pop();
        assert!(decode(&zset_record(&big), &l).is_ok());
        // Hash: repeated field; set: repeated member (intset and hashtable).
        let mut h = vec![RECORD_FORMAT, 0, 0, 0, 0, 0, 0, 0, 0, T_HASH, 2];
        for _ in 0..2 {
            put_bytes(&mut h, b"f");
            put_bytes(&mut h, b"v");
        }
        assert!(is_invalid(decode(&h, &l)));
        for m in [&b"7"[..], b"x"] {
            let mut s = vec![RECORD_FORMAT, 0, 0, 0, 0, 0, 0, 0, 0, T_SET, 2];
            put_bytes(&mut s, m);
            put_bytes(&mut s, m);
            assert!(is_invalid(decode(&s, &l)));
        }
        // Varints too long or too large, and huge counts and lengths.
        let mut v = vec![RECORD_FORMAT, 0, 0, 0, 0, 0, 0, 0, 0, T_LIST];
        v.extend_from_slice(&[0xff; 11]);
        assert!(is_invalid(decode(&v, &l)));
        let mut v = vec![RECORD_FORMAT, 0, 0, 0, 0, 0, 0, 0, 0, T_LIST];
        v.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        assert!(is_invalid(decode(&v, &l)));
        for ty in [T_STR, T_LIST, T_HASH, T_SET, T_ZSET] {
            let mut v = vec![RECORD_FORMAT, 0, 0, 0, 0, 0, 0, 0, 0, ty];
            put_varint(&mut v, u64::MAX);
            v.push(1);
            assert!(decode(&v, &l).is_err());
        }
    }

    #[test]
    fn empty_collections_round_trip() {
        // The keyspace never holds one, but the codec stays faithful.
        for v in [
            Value::List(Box::default()),
            Value::Hash(Box::default()),
            Value::Set(Box::default()),
            Value::ZSet(Box::default()),
        ] {
            assert_round_trip(&v, None, &lim());
        }
    }

    #[derive(Debug, Clone)]
    enum Gen {
        Str(Vec<u8>),
        List(Vec<Vec<u8>>),
        Hash(Pairs),
        Set(Vec<Vec<u8>>),
        ZSet(Vec<(Vec<u8>, f64)>),
    }

    fn elem() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (-300i64..300).prop_map(|i| i.to_string().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..12),
            proptest::collection::vec(any::<u8>(), 60..80),
        ]
    }

    fn score() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            (-5i8..5).prop_map(|i| f64::from(i) / 2.0),
            any::<f64>().prop_filter("not NaN", |s| !s.is_nan()),
        ]
    }

    fn value() -> impl Strategy<Value = Gen> {
        let many = |n| proptest::collection::vec(elem(), 0..n);
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..100).prop_map(Gen::Str),
            many(300).prop_map(Gen::List),
            proptest::collection::vec((elem(), elem()), 0..200).prop_map(Gen::Hash),
            many(300).prop_map(Gen::Set),
            proptest::collection::vec((elem(), score()), 0..200).prop_map(Gen::ZSet),
        ]
    }

    fn limits() -> impl Strategy<Value = Limits> {
        (
            0usize..150,
            0usize..70,
            -3i64..10,
            0usize..300,
            0usize..150,
            0usize..70,
        )
            .prop_map(|(he, hv, list, set, ze, zv)| Limits {
                hash: HashLimits {
                    max_entries: he,
                    max_value: hv,
                },
                list,
                set_max_intset: set,
                zset: zset::Limits {
                    entries: ze,
                    value: zv,
                },
            })
    }

    fn build(g: &Gen, l: &Limits) -> Value {
        match g {
            Gen::Str(s) => Value::str(s),
            Gen::List(v) => list_of(v, l.list),
            Gen::Hash(v) => hash_of(v, l.hash),
            Gen::Set(v) => set_of(v, l.set_max_intset),
            Gen::ZSet(v) => zset_of(v, l.zset),
        }
    }

    proptest! {
        #[test]
        fn random_values_round_trip(
            g in value(),
            l in limits(),
            at in proptest::option::of(1u64..u64::MAX),
        ) {
            let v = build(&g, &l);
            assert_round_trip(&v, at, &l);
        }

        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            ty in 0u8..6,
            framed in any::<bool>(),
        ) {
            let rec = if framed {
                // A valid header, so the payload parsers see the noise.
                let mut r = vec![RECORD_FORMAT, 0, 0, 0, 0, 0, 0, 0, 0, ty];
                r.extend_from_slice(&bytes);
                r
            } else {
                bytes
            };
            let tight = Limits {
                hash: HashLimits { max_entries: 2, max_value: 4 },
                list: 2,
                set_max_intset: 2,
                zset: zset::Limits { entries: 2, value: 4 },
            };
            for l in [lim(), tight] {
                if let Ok((v, at)) = decode(&rec, &l) {
                    prop_assert_eq!(expire_at(&rec), Ok(at));
                    // Whatever decodes re-encodes to a record that decodes the same.
                    let mut again = Vec::new();
                    encode(&v, at, &mut again);
                    let (w, _) = decode(&again, &l).unwrap();
                    prop_assert_eq!(contents(&w), contents(&v));
                }
            }
        }

        #[test]
        fn mutated_records_never_panic(
            g in value(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let l = lim();
            let mut rec = Vec::new();
            encode(&build(&g, &l), None, &mut rec);
            for (i, b) in flips {
                let i = i.index(rec.len());
                rec[i] = b;
            }
            let _ = decode(&rec, &l);
            let _ = expire_at(&rec);
        }
    }
}
