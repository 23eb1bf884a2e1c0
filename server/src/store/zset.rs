//! The sorted-set value: a packed (member, score) sequence while small
//! (Redis's listpack), a skiplist plus a member → score map once big.
//!
//! Every range operation is expressed through ranks: a score or lex bound is
//! turned into "how many elements lie before it" (O(log n) on the skiplist),
//! so ZRANGE/ZCOUNT/ZREMRANGEBY* all reduce to a rank interval.

use super::dense::DenseMap;
use super::pack::{Pack, PackIter};
use super::skiplist::{NIL, SkipList};
use rand::Rng;

/// The big encoding: the map gives O(1) ZSCORE, ZSCAN cursors and random picks.
#[derive(Clone, Debug, Default)]
pub struct Big {
    dict: DenseMap<f64>,
    list: SkipList,
}

#[derive(Clone, Debug)]
enum Repr {
    /// Pairs of entries: member, then the score as 8 little-endian bytes,
    /// sorted by (score, member).
    Small(Pack),
    Big(Box<Big>),
}

/// A sorted set. Never holds NaN scores.
#[derive(Clone, Debug)]
pub struct ZSet {
    repr: Repr,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet {
            repr: Repr::Small(Pack::new()),
        }
    }
}

/// The `zset-max-listpack-*` limits in force for one command.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

#[inline]
fn dec(e: &[u8]) -> f64 {
    <[u8; 8]>::try_from(e)
        .map(f64::from_le_bytes)
        .unwrap_or(0.0)
}

/// (position, member, score) of each pair of a small set.
pub struct Pairs<'a>(PackIter<'a>);

impl<'a> Iterator for Pairs<'a> {
    type Item = (usize, &'a [u8], f64);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (pos, m) = self.0.next()?;
        let (_, s) = self.0.next()?;
        Some((pos, m, dec(s)))
    }
}

fn pairs(p: &Pack) -> Pairs<'_> {
    Pairs(p.iter_pos())
}

/// A listpack stores scores as text where -0 reads back as 0; so does this one.
#[inline]
fn small_score(s: f64) -> f64 {
    if s == 0.0 { 0.0 } else { s }
}

/// Inserts a pair at its (score, member) position.
fn small_insert(p: &mut Pack, m: &[u8], s: f64) {
    let s = small_score(s);
    let pos = pairs(p)
        .find(|(_, x, xs)| !(*xs < s || (*xs == s && *x < m)))
        .map(|(pos, _, _)| pos)
        .unwrap_or(p.end());
    p.insert_at(pos, &s.to_le_bytes());
    p.insert_at(pos, m);
}

/// Elements of a rank interval, in either direction.
pub enum RangeIter<'a> {
    Small(Pairs<'a>, usize),
    SmallRev(std::iter::Rev<std::vec::IntoIter<(&'a [u8], f64)>>),
    Big {
        list: &'a SkipList,
        node: u32,
        left: usize,
        rev: bool,
    },
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = (&'a [u8], f64);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            RangeIter::Small(it, left) => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                it.next().map(|(_, m, s)| (m, s))
            }
            RangeIter::SmallRev(it) => it.next(),
            RangeIter::Big {
                list,
                node,
                left,
                rev,
            } => {
                if *left == 0 || *node == NIL {
                    return None;
                }
                *left -= 1;
                let r = list.get(*node);
                *node = if *rev {
                    list.prev(*node)
                } else {
                    list.next(*node)
                };
                Some(r)
            }
        }
    }
}

impl ZSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set already in the big encoding (ZADD on a new key with
    /// `zset-max-listpack-entries 0` or a long first member, as Redis does).
    pub fn new_big() -> Self {
        ZSet {
            repr: Repr::Big(Box::default()),
        }
    }

    /// Builds a set from members in (score, member) order without duplicates.
    pub fn from_sorted<'a>(
        items: impl ExactSizeIterator<Item = (&'a [u8], f64)> + Clone,
        lim: Limits,
    ) -> Self {
        let small = items.len() <= lim.entries && items.clone().all(|(m, _)| m.len() <= lim.value);
        if small {
            let mut p = Pack::new();
            for (m, s) in items {
                p.push_back(m);
                p.push_back(&small_score(s).to_le_bytes());
            }
            ZSet {
                repr: Repr::Small(p),
            }
        } else {
            let mut b = Big {
                dict: DenseMap::with_capacity(items.len()),
                list: SkipList::new(),
            };
            for (m, s) in items {
                b.dict.insert(m, s);
                b.list.insert(s, m);
            }
            ZSet {
                repr: Repr::Big(Box::new(b)),
            }
        }
    }

    /// Number of elements; a value is deleted from the keyspace at 0.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Small(p) => p.len() / 2,
            Repr::Big(b) => b.list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes owned, kept O(1) (the shard calls it on every mutation).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Small(p) => p.heap_size(),
            Repr::Big(b) => std::mem::size_of::<Big>() + b.dict.heap_size() + b.list.heap_size(),
        }
    }

    /// The name OBJECT ENCODING answers.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Small(_) => "listpack",
            Repr::Big(_) => "skiplist",
        }
    }

    /// Members in rank order (lowest score first), with their scores.
    pub fn iter(&self) -> RangeIter<'_> {
        self.range(0, self.len(), false)
    }

    /// The score of `m`.
    pub fn score(&self, m: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Small(p) => pairs(p).find(|(_, x, _)| *x == m).map(|(_, _, s)| s),
            Repr::Big(b) => b.dict.get(m).copied(),
        }
    }

    fn convert_to_big(&mut self) {
        if let Repr::Small(p) = &self.repr {
            let mut b = Big {
                dict: DenseMap::with_capacity(p.len() / 2 + 1),
                list: SkipList::new(),
            };
            for (_, m, s) in pairs(p) {
                b.dict.insert(m, s);
                b.list.insert(s, m);
            }
            self.repr = Repr::Big(Box::new(b));
        }
    }

    /// Adds a member known to be absent, converting to the big encoding
    /// first when the small one would exceed `lim` (one-way, as Redis).
    pub fn insert(&mut self, m: &[u8], s: f64, lim: Limits) {
        if let Repr::Small(p) = &self.repr
            && (p.len() / 2 + 1 > lim.entries || m.len() > lim.value)
        {
            self.convert_to_big();
        }
        match &mut self.repr {
            Repr::Small(p) => small_insert(p, m, s),
            Repr::Big(b) => {
                b.dict.insert(m, s);
                b.list.insert(s, m);
            }
        }
    }

    /// Changes the score of member `m` from `old` to `new`.
    pub fn update(&mut self, m: &[u8], old: f64, new: f64) {
        match &mut self.repr {
            Repr::Small(p) => {
                // Like Redis, re-inserting an existing member never converts.
                if let Some((pos, _, _)) = pairs(p).find(|(_, x, _)| *x == m) {
                    p.remove_at(pos, 2);
                }
                small_insert(p, m, new);
            }
            Repr::Big(b) => {
                b.list.remove(old, m);
                b.list.insert(new, m);
                b.dict.update(m, |v| *v = new);
            }
        }
    }

    /// Removes `m`, returning its score.
    pub fn remove(&mut self, m: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Small(p) => {
                let (pos, _, s) = pairs(p).find(|(_, x, _)| *x == m)?;
                p.remove_at(pos, 2);
                Some(s)
            }
            Repr::Big(b) => {
                let (_, s) = b.dict.remove(m)?;
                b.list.remove(s, m);
                Some(s)
            }
        }
    }

    /// 0-based rank of `m` in ascending order.
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Small(p) => pairs(p).position(|(_, x, _)| x == m),
            Repr::Big(b) => {
                let s = *b.dict.get(m)?;
                b.list.rank(s, m)
            }
        }
    }

    /// Number of elements before a bound that holds for a prefix of the order.
    fn count_prefix(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Small(p) => pairs(p).take_while(|(_, m, s)| pred(*s, m)).count(),
            Repr::Big(b) => b.list.count_prefix(pred),
        }
    }

    /// Elements with score `< s` (or `<= s` when `inclusive`).
    pub fn count_score_below(&self, s: f64, inclusive: bool) -> usize {
        if inclusive {
            self.count_prefix(|x, _| x <= s)
        } else {
            self.count_prefix(|x, _| x < s)
        }
    }

    /// Elements whose member is `< m` (or `<= m` when `inclusive`); meaningful
    /// when all scores are equal, as ZRANGEBYLEX requires.
    pub fn count_lex_below(&self, m: &[u8], inclusive: bool) -> usize {
        if inclusive {
            self.count_prefix(|_, x| x <= m)
        } else {
            self.count_prefix(|_, x| x < m)
        }
    }

    /// The element at 0-based `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Small(p) => pairs(p).nth(rank).map(|(_, m, s)| (m, s)),
            Repr::Big(b) => {
                let n = b.list.at_rank(rank);
                (n != NIL).then(|| b.list.get(n))
            }
        }
    }

    /// Elements of ranks `start..end` (clamped), ascending, or descending from `end - 1` when `rev`.
    pub fn range(&self, start: usize, end: usize, rev: bool) -> RangeIter<'_> {
        let end = end.min(self.len());
        let n = end.saturating_sub(start);
        match &self.repr {
            Repr::Small(p) => {
                let mut it = pairs(p);
                if start > 0 && n > 0 {
                    it.nth(start - 1);
                }
                if rev {
                    let v: Vec<(&[u8], f64)> = it.take(n).map(|(_, m, s)| (m, s)).collect();
                    RangeIter::SmallRev(v.into_iter().rev())
                } else {
                    RangeIter::Small(it, n)
                }
            }
            Repr::Big(b) => RangeIter::Big {
                list: &b.list,
                node: if n == 0 {
                    NIL
                } else {
                    b.list.at_rank(if rev { end - 1 } else { start })
                },
                left: n,
                rev,
            },
        }
    }

    /// Removes the elements of ranks `start..end` (clamped); returns how many.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        let n = end - start;
        match &mut self.repr {
            Repr::Small(p) => {
                if let Some(pos) = p.pos_of(2 * start) {
                    p.remove_at(pos, 2 * n);
                }
            }
            Repr::Big(b) => {
                let Big { dict, list } = &mut **b;
                list.remove_ranks(start, n, |m| {
                    dict.remove(m);
                });
            }
        }
        n
    }

    /// A uniformly random element.
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Small(p) => {
                let n = p.len() / 2;
                if n == 0 {
                    return None;
                }
                self.get(rng.random_range(0..n))
            }
            Repr::Big(b) => b.dict.random(rng).map(|(m, s)| (m, *s)),
        }
    }

    /// ZSCAN: a small set is returned whole with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match &self.repr {
            Repr::Small(p) => {
                for (_, m, s) in pairs(p) {
                    f(m, s);
                }
                0
            }
            Repr::Big(b) => b.dict.scan(cursor, count, |m, s| f(m, *s)),
        }
    }

    /// Whether the big encoding is in use (for tests).
    pub fn is_big(&self) -> bool {
        matches!(self.repr, Repr::Big(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Model = Vec<(f64, Vec<u8>)>;

    fn sort(m: &mut Model) {
        m.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
    }

    fn check(z: &ZSet, model: &Model, probe: f64, lex: &[u8]) -> Result<(), TestCaseError> {
        prop_assert_eq!(z.len(), model.len());
        let got: Model = z.iter().map(|(m, s)| (s, m.to_vec())).collect();
        prop_assert_eq!(&got, model);
        for (i, (s, m)) in model.iter().enumerate() {
            prop_assert_eq!(z.rank(m), Some(i));
            prop_assert_eq!(z.score(m), Some(*s));
            prop_assert_eq!(
                z.get(i).map(|(m, s)| (s, m.to_vec())),
                Some((*s, m.clone()))
            );
        }
        for incl in [false, true] {
            let want = model
                .iter()
                .filter(|(s, _)| if incl { *s <= probe } else { *s < probe })
                .count();
            prop_assert_eq!(z.count_score_below(probe, incl), want);
        }
        // Lex bounds are only meaningful with equal scores; check on the
        // members of the lowest score, which form a sorted prefix.
        if let Some((s0, _)) = model.first() {
            let same = model.iter().take_while(|(s, _)| s == s0).count();
            let want = model[..same]
                .iter()
                .filter(|(_, m)| m.as_slice() < lex)
                .count();
            let got = z.count_prefix(|s, m| s == *s0 && m < lex);
            prop_assert_eq!(got, want);
        }
        let n = model.len();
        for (a, b) in [(0, n), (1, n.saturating_sub(1)), (n / 2, n), (0, 3)] {
            for rev in [false, true] {
                let got: Model = z.range(a, b, rev).map(|(m, s)| (s, m.to_vec())).collect();
                let end = b.min(n);
                let mut want: Model = if a < end {
                    model[a..end].to_vec()
                } else {
                    vec![]
                };
                if rev {
                    want.reverse();
                }
                prop_assert_eq!(got, want);
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn matches_a_sorted_vec(
            entries in 0usize..20,
            ops in proptest::collection::vec((0u8..5, 0u8..30, -4i8..4, 0u8..6), 0..200),
        ) {
            let lim = Limits { entries, value: 64 };
            let mut z = ZSet::new();
            let mut model: Model = Vec::new();
            for (op, m, s, n) in ops {
                let member = format!("m{m:02}").into_bytes();
                let score = match s {
                    -4 => f64::NEG_INFINITY,
                    3 => f64::INFINITY,
                    s => s as f64 / 2.0,
                };
                let pos = model.iter().position(|(_, x)| *x == member);
                match (op, pos) {
                    (0, None) => {
                        z.insert(&member, score, lim);
                        model.push((score, member));
                    }
                    (0 | 1, Some(p)) => {
                        let old = model[p].0;
                        z.update(&member, old, score);
                        model[p].0 = score;
                    }
                    (2, Some(p)) => {
                        prop_assert_eq!(z.remove(&member), Some(model[p].0));
                        model.remove(p);
                    }
                    (3, _) => {
                        let start = m as usize % (model.len() + 1);
                        let end = start + n as usize;
                        let removed = z.remove_range(start, end);
                        let e = end.min(model.len());
                        prop_assert_eq!(removed, e.saturating_sub(start));
                        if start < e {
                            model.drain(start..e);
                        }
                    }
                    (_, Some(_)) => {}
                    (_, None) => prop_assert_eq!(z.remove(&member), None),
                }
                sort(&mut model);
                if model.len() > entries {
                    prop_assert!(z.is_big());
                }
                check(&z, &model, score, &format!("m{:02}", n * 5).into_bytes())?;
            }
        }
    }

    #[test]
    fn long_member_converts() {
        let lim = Limits {
            entries: 128,
            value: 4,
        };
        let mut z = ZSet::new();
        z.insert(b"ab", 1.0, lim);
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"abcdef", 2.0, lim);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.rank(b"abcdef"), Some(1));
    }
}
