//! The order-statistic skiplist behind big sorted sets (Redis's `zskiplist`),
//! kept in an index arena so it needs neither `unsafe` nor shared pointers.
//!
//! Nodes are ordered by (score, member); every forward link carries the
//! number of level-0 steps it jumps (its span), which makes rank lookups,
//! rank-addressed ranges and "how many elements lie before this bound"
//! O(log n). Index 0 is the header; freed nodes go on a free list.

const MAX_LEVEL: usize = 32;
/// The null link.
pub const NIL: u32 = u32::MAX;
const HEADER: u32 = 0;

/// A forward link. It carries the next node's links offset and score, so a
/// search step reads one link and compares without touching the next node
/// (the member is read only when scores tie): one cache miss per step.
#[derive(Clone, Copy, Debug)]
struct Link {
    next: u32,
    next_off: u32,
    span: u32,
    score: f64,
}

const EMPTY: Link = Link {
    next: NIL,
    next_off: 0,
    span: 0,
    score: 0.0,
};

#[derive(Clone, Debug)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    /// Previous node at level 0; `NIL` for the first node (and the header).
    back: u32,
    /// Where this node's links start in `links`.
    off: u32,
    level: u8,
}

/// The skiplist. Scores are never NaN (callers refuse NaN), so `<`/`==` order them totally.
#[derive(Clone, Debug)]
pub struct SkipList {
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// Every node's links, `level` consecutive entries per node.
    links: Vec<Link>,
    /// Freed link blocks by level (index level-1).
    free_links: Vec<Vec<u32>>,
    tail: u32,
    len: usize,
    level: usize,
    /// Heap bytes owned by members of live nodes.
    heap: usize,
    rng: u64,
}

impl Default for SkipList {
    fn default() -> Self {
        Self::new()
    }
}

impl SkipList {
    pub fn new() -> Self {
        let header = Node {
            member: Box::default(),
            score: 0.0,
            back: NIL,
            off: 0,
            level: MAX_LEVEL as u8,
        };
        SkipList {
            nodes: vec![header],
            free: Vec::new(),
            links: vec![EMPTY; MAX_LEVEL],
            free_links: Vec::new(),
            tail: NIL,
            len: 0,
            level: 1,
            heap: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes owned: node and link arenas, free lists, members.
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.links.capacity() * std::mem::size_of::<Link>()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + self
                .free_links
                .iter()
                .map(|f| f.capacity() * std::mem::size_of::<u32>())
                .sum::<usize>()
            + self.heap
    }

    /// Redis's level distribution: each extra level with probability 1/4.
    fn random_level(&mut self) -> usize {
        // xorshift64*: cheap, and the distribution only needs to be geometric.
        let mut level = 1;
        loop {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32;
            if (r & 0xFFFF) < 0xFFFF / 4 && level < MAX_LEVEL {
                level += 1;
            } else {
                return level;
            }
        }
    }

    #[inline]
    fn link(&self, x: u32, i: usize) -> Link {
        self.links[self.nodes[x as usize].off as usize + i]
    }

    /// Whether the node `l` points to sorts strictly before (score, member).
    #[inline]
    fn before(&self, l: &Link, score: f64, member: &[u8]) -> bool {
        l.score < score || (l.score == score && *self.nodes[l.next as usize].member < *member)
    }

    /// Member and score of node `n` (a position from this list).
    #[inline]
    pub fn get(&self, n: u32) -> (&[u8], f64) {
        let node = &self.nodes[n as usize];
        (&node.member, node.score)
    }

    /// The node after `n`, or `NIL`.
    #[inline]
    pub fn next(&self, n: u32) -> u32 {
        self.link(n, 0).next
    }

    /// The node before `n`, or `NIL`.
    #[inline]
    pub fn prev(&self, n: u32) -> u32 {
        self.nodes[n as usize].back
    }

    fn alloc_links(&mut self, level: usize) -> u32 {
        if let Some(off) = self.free_links.get_mut(level - 1).and_then(Vec::pop) {
            return off;
        }
        let off = self.links.len() as u32;
        self.links.resize(self.links.len() + level, EMPTY);
        off
    }

    /// Inserts (score, member); the member must not be present.
    pub fn insert(&mut self, score: f64, member: &[u8]) {
        let mut update = [HEADER; MAX_LEVEL];
        let mut update_off = [0u32; MAX_LEVEL];
        let mut rank = [0u32; MAX_LEVEL];
        let (mut x, mut xo) = (HEADER, 0u32);
        for i in (0..self.level).rev() {
            rank[i] = if i + 1 == self.level { 0 } else { rank[i + 1] };
            loop {
                let l = self.links[xo as usize + i];
                if l.next == NIL || !self.before(&l, score, member) {
                    break;
                }
                rank[i] += l.span;
                x = l.next;
                xo = l.next_off;
            }
            update[i] = x;
            update_off[i] = xo;
        }
        let level = self.random_level();
        if level > self.level {
            for i in self.level..level {
                rank[i] = 0;
                update[i] = HEADER;
                update_off[i] = 0;
                self.links[i].span = self.len as u32;
            }
            self.level = level;
        }
        let off = self.alloc_links(level);
        let node = Node {
            member: member.into(),
            score,
            back: if update[0] == HEADER { NIL } else { update[0] },
            off,
            level: level as u8,
        };
        self.heap += member.len();
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        for i in 0..level {
            let at = update_off[i] as usize + i;
            let ul = self.links[at];
            self.links[off as usize + i] = Link {
                span: ul.span - (rank[0] - rank[i]),
                ..ul
            };
            self.links[at] = Link {
                next: idx,
                next_off: off,
                span: rank[0] - rank[i] + 1,
                score,
            };
        }
        for (i, &uo) in update_off.iter().enumerate().take(self.level).skip(level) {
            self.links[uo as usize + i].span += 1;
        }
        let next = self.links[off as usize].next;
        if next == NIL {
            self.tail = idx;
        } else {
            self.nodes[next as usize].back = idx;
        }
        self.len += 1;
    }

    /// The predecessors at every level of the first node not before (score, member).
    fn find_update(&self, score: f64, member: &[u8]) -> [u32; MAX_LEVEL] {
        let mut update = [HEADER; MAX_LEVEL];
        let (mut x, mut xo) = (HEADER, 0u32);
        for i in (0..self.level).rev() {
            loop {
                let l = self.links[xo as usize + i];
                if l.next == NIL || !self.before(&l, score, member) {
                    break;
                }
                x = l.next;
                xo = l.next_off;
            }
            update[i] = x;
        }
        update
    }

    /// Unlinks node `x` given its predecessors, and frees it.
    fn unlink(&mut self, x: u32, update: &[u32; MAX_LEVEL]) {
        let xoff = self.nodes[x as usize].off as usize;
        for (i, &u) in update.iter().enumerate().take(self.level) {
            let at = self.nodes[u as usize].off as usize + i;
            let ul = self.links[at];
            if ul.next == x {
                let xl = self.links[xoff + i];
                self.links[at] = Link {
                    span: ul.span + xl.span - 1,
                    ..xl
                };
            } else {
                self.links[at].span -= 1;
            }
        }
        let next = self.links[xoff].next;
        let back = self.nodes[x as usize].back;
        if next == NIL {
            self.tail = back;
        } else {
            self.nodes[next as usize].back = back;
        }
        while self.level > 1 && self.links[self.level - 1].next == NIL {
            self.level -= 1;
        }
        self.len -= 1;
        let node = &mut self.nodes[x as usize];
        self.heap -= node.member.len();
        node.member = Box::default();
        let (off, level) = (node.off, node.level as usize);
        if self.free_links.len() < level {
            self.free_links.resize(level, Vec::new());
        }
        self.free_links[level - 1].push(off);
        self.free.push(x);
        if self.len == 0 {
            // Give the arenas back once everything is gone.
            *self = SkipList {
                rng: self.rng,
                ..SkipList::new()
            };
        }
    }

    /// Removes (score, member); false if it was not there.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let update = self.find_update(score, member);
        let x = self.link(update[0], 0).next;
        if x == NIL {
            return false;
        }
        let n = &self.nodes[x as usize];
        if n.score != score || &*n.member != member {
            return false;
        }
        self.unlink(x, &update);
        true
    }

    /// 0-based rank of (score, member), if present.
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        let (mut x, mut xo) = (HEADER, 0u32);
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.links[xo as usize + i];
                if l.next == NIL
                    || !(l.score < score
                        || (l.score == score && *self.nodes[l.next as usize].member <= *member))
                {
                    break;
                }
                rank += l.span as usize;
                x = l.next;
                xo = l.next_off;
            }
            if x != HEADER && &*self.nodes[x as usize].member == member {
                return rank.checked_sub(1);
            }
        }
        None
    }

    /// The node at 0-based `rank`, or `NIL`.
    pub fn at_rank(&self, rank: usize) -> u32 {
        let want = rank + 1;
        let (mut x, mut xo) = (HEADER, 0u32);
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.links[xo as usize + i];
                if l.next == NIL || traversed + l.span as usize > want {
                    break;
                }
                traversed += l.span as usize;
                x = l.next;
                xo = l.next_off;
            }
            if traversed == want {
                return x;
            }
        }
        NIL
    }

    /// How many nodes satisfy `pred`, which must hold for a prefix of the
    /// order (every "lies before this bound" test does).
    pub fn count_prefix(&self, pred: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut xo = 0u32;
        let mut rank = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.links[xo as usize + i];
                if l.next == NIL || !pred(l.score, &self.nodes[l.next as usize].member) {
                    break;
                }
                rank += l.span as usize;
                xo = l.next_off;
            }
        }
        rank
    }

    /// Removes `count` nodes from 0-based rank `start`, calling `f` with each member.
    pub fn remove_ranks(&mut self, start: usize, count: usize, mut f: impl FnMut(&[u8])) {
        let mut update = [HEADER; MAX_LEVEL];
        let (mut x, mut xo) = (HEADER, 0u32);
        let mut traversed = 0usize;
        for i in (0..self.level).rev() {
            loop {
                let l = self.links[xo as usize + i];
                if l.next == NIL || traversed + l.span as usize > start {
                    break;
                }
                traversed += l.span as usize;
                x = l.next;
                xo = l.next_off;
            }
            update[i] = x;
        }
        let mut x = self.link(update[0], 0).next;
        let mut left = count;
        while x != NIL && left > 0 {
            let next = self.link(x, 0).next;
            f(&self.nodes[x as usize].member);
            self.unlink(x, &update);
            x = next;
            left -= 1;
            if self.len == 0 {
                break;
            }
        }
    }

    /// The first node, or `NIL`.
    pub fn first(&self) -> u32 {
        self.links[0].next
    }

    /// The last node, or `NIL`.
    pub fn last(&self) -> u32 {
        self.tail
    }

    /// (member, score) in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let mut x = self.first();
        std::iter::from_fn(move || {
            if x == NIL {
                return None;
            }
            let r = self.get(x);
            x = self.next(x);
            Some(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(sl: &SkipList, model: &[(f64, Vec<u8>)]) {
        assert_eq!(sl.len(), model.len());
        let got: Vec<(f64, Vec<u8>)> = sl.iter().map(|(m, s)| (s, m.to_vec())).collect();
        assert_eq!(got, model);
        let mut back = Vec::new();
        let mut x = sl.last();
        while x != NIL {
            let (m, s) = sl.get(x);
            back.push((s, m.to_vec()));
            x = sl.prev(x);
        }
        back.reverse();
        assert_eq!(back, model);
        for (i, (s, m)) in model.iter().enumerate() {
            assert_eq!(sl.rank(*s, m), Some(i));
            let (gm, gs) = sl.get(sl.at_rank(i));
            assert_eq!((gs, gm), (*s, &m[..]));
        }
        assert_eq!(sl.at_rank(model.len()), NIL);
    }

    proptest! {
        #[test]
        fn matches_a_sorted_vec(ops in proptest::collection::vec((0u8..3, 0u8..40, -5i8..5, 0u8..8), 0..300)) {
            let mut sl = SkipList::new();
            let mut model: Vec<(f64, Vec<u8>)> = Vec::new();
            for (op, m, s, n) in ops {
                let member = format!("m{m}").into_bytes();
                let score = s as f64;
                let pos = model.iter().position(|(_, x)| *x == member);
                match (op, pos) {
                    (0, None) => {
                        sl.insert(score, &member);
                        model.push((score, member));
                        model.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal).then(a.1.cmp(&b.1)));
                    }
                    (1, Some(p)) => {
                        let (os, om) = model.remove(p);
                        prop_assert!(sl.remove(os, &om));
                    }
                    (2, _) if !model.is_empty() => {
                        let start = m as usize % model.len();
                        let count = n as usize;
                        let mut removed = Vec::new();
                        sl.remove_ranks(start, count, |x| removed.push(x.to_vec()));
                        let end = (start + count).min(model.len());
                        let want: Vec<Vec<u8>> = model.drain(start..end).map(|(_, m)| m).collect();
                        prop_assert_eq!(removed, want);
                    }
                    _ => {}
                }
                check(&sl, &model);
                let below = sl.count_prefix(|s, _| s < 0.0);
                prop_assert_eq!(below, model.iter().filter(|(s, _)| *s < 0.0).count());
            }
        }
    }
}
