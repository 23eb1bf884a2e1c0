//! A hash map from byte strings to `V` for large collections (big hashes,
//! sets, sorted-set member index), with stable positions for HSCAN/SSCAN/ZSCAN.
//!
//! Same layout as a keyspace shard: a dense vector of slots plus a `u32`
//! index. Deleting leaves a hole on a free list instead of moving another
//! element, so a SCAN cursor (a slot position) never skips an element that
//! stayed in the map; only compaction (when three quarters are holes) moves
//! elements. Random picks are O(1) expected (SPOP, HRANDFIELD).

use super::bytes::CompactBytes;
use hashbrown::HashTable;
use rand::Rng;

/// Values that report the heap memory they own.
pub trait HeapSize {
    fn heap_size(&self) -> usize;
}

impl HeapSize for CompactBytes {
    #[inline]
    fn heap_size(&self) -> usize {
        CompactBytes::heap_size(self)
    }
}

impl HeapSize for () {
    #[inline]
    fn heap_size(&self) -> usize {
        0
    }
}

impl HeapSize for f64 {
    #[inline]
    fn heap_size(&self) -> usize {
        0
    }
}

#[derive(Clone, Debug)]
enum Slot<V> {
    Full(CompactBytes, V),
    /// A hole, linking to the next free slot (`u32::MAX` ends the list).
    Hole(u32),
}

const NO_FREE: u32 = u32::MAX;

/// The map.
#[derive(Clone)]
pub struct DenseMap<V> {
    slots: Vec<Slot<V>>,
    index: HashTable<u32>,
    free: u32,
    live: usize,
    /// Heap bytes owned by keys and values.
    heap: usize,
}

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        DenseMap {
            slots: Vec::new(),
            index: HashTable::new(),
            free: NO_FREE,
            live: 0,
            heap: 0,
        }
    }
}

impl<V: std::fmt::Debug + HeapSize> std::fmt::Debug for DenseMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (String::from_utf8_lossy(k), v)))
            .finish()
    }
}

#[inline]
fn hash(k: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(k)
}

impl<V: HeapSize> DenseMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        DenseMap {
            slots: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
            ..Self::default()
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Heap bytes owned: slots, index, and what keys and values own.
    pub fn heap_size(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<V>>()
            + self.index.allocation_size()
            + self.heap
    }

    #[inline]
    fn find(&self, k: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(
                hash(k),
                |&i| matches!(&slots[i as usize], Slot::Full(key, _) if key.as_slice() == k),
            )
            .copied()
    }

    #[inline]
    pub fn contains(&self, k: &[u8]) -> bool {
        self.find(k).is_some()
    }

    #[inline]
    pub fn get(&self, k: &[u8]) -> Option<&V> {
        let i = self.find(k)?;
        match &self.slots[i as usize] {
            Slot::Full(_, v) => Some(v),
            Slot::Hole(_) => None,
        }
    }

    /// Mutates the value of `k` in place, keeping the accounting true.
    pub fn update<R>(&mut self, k: &[u8], f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let i = self.find(k)?;
        match &mut self.slots[i as usize] {
            Slot::Full(_, v) => {
                let before = v.heap_size();
                let r = f(v);
                self.heap = self.heap + v.heap_size() - before;
                Some(r)
            }
            Slot::Hole(_) => None,
        }
    }

    /// Inserts or replaces; returns the old value.
    pub fn insert(&mut self, k: &[u8], v: V) -> Option<V> {
        if let Some(i) = self.find(k)
            && let Slot::Full(_, old) = &mut self.slots[i as usize]
        {
            self.heap = self.heap + v.heap_size() - old.heap_size();
            return Some(std::mem::replace(old, v));
        }
        let key = CompactBytes::new(k);
        self.heap += key.heap_size() + v.heap_size();
        let slot = Slot::Full(key, v);
        let i = if self.free != NO_FREE {
            let i = self.free;
            if let Slot::Hole(next) = self.slots[i as usize] {
                self.free = next;
            }
            self.slots[i as usize] = slot;
            i
        } else {
            self.slots.push(slot);
            (self.slots.len() - 1) as u32
        };
        self.live += 1;
        let slots = &self.slots;
        self.index
            .insert_unique(hash(k), i, |&j| match &slots[j as usize] {
                Slot::Full(key, _) => hash(key.as_slice()),
                Slot::Hole(_) => 0,
            });
        None
    }

    /// Removes `k`, returning its key and value.
    pub fn remove(&mut self, k: &[u8]) -> Option<(CompactBytes, V)> {
        let i = self.find(k)?;
        if let Ok(e) = self.index.find_entry(hash(k), |&j| j == i) {
            e.remove();
        }
        let old = std::mem::replace(&mut self.slots[i as usize], Slot::Hole(self.free));
        self.free = i;
        self.live -= 1;
        let out = match old {
            Slot::Full(key, v) => {
                self.heap -= key.heap_size() + v.heap_size();
                Some((key, v))
            }
            Slot::Hole(_) => None,
        };
        self.maybe_compact();
        out
    }

    /// Rebuilds when three quarters of the slots are holes (moves elements,
    /// so a SCAN in progress may then miss some; see the module doc).
    fn maybe_compact(&mut self) {
        if self.live == 0 {
            *self = Self::default();
            return;
        }
        let cap = self.slots.len();
        if cap < 64 || self.live * 4 > cap {
            return;
        }
        let old = std::mem::take(&mut self.slots);
        let mut slots = Vec::with_capacity(self.live);
        slots.extend(old.into_iter().filter(|s| matches!(s, Slot::Full(..))));
        let mut index = HashTable::with_capacity(slots.len());
        for (i, s) in slots.iter().enumerate() {
            if let Slot::Full(k, _) = s {
                index.insert_unique(hash(k.as_slice()), i as u32, |_| 0);
            }
        }
        self.slots = slots;
        self.index = index;
        self.free = NO_FREE;
    }

    /// Every element, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> + '_ {
        self.slots.iter().filter_map(|s| match s {
            Slot::Full(k, v) => Some((k.as_slice(), v)),
            Slot::Hole(_) => None,
        })
    }

    /// Visits elements from slot `cursor` until `count` slots were looked at;
    /// returns the next cursor, 0 when the scan is complete.
    pub fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut f: impl FnMut(&'a [u8], &'a V),
    ) -> u64 {
        let start = cursor as usize;
        let end = start.saturating_add(count.max(1)).min(self.slots.len());
        for s in self.slots.get(start..end).unwrap_or(&[]) {
            if let Slot::Full(k, v) = s {
                f(k.as_slice(), v);
            }
        }
        if end >= self.slots.len() {
            0
        } else {
            end as u64
        }
    }

    /// A uniformly random element.
    pub fn random(&self, rng: &mut impl Rng) -> Option<(&[u8], &V)> {
        if self.live == 0 {
            return None;
        }
        // At most three quarters are holes (compaction), so this ends fast.
        loop {
            let i = rng.random_range(0..self.slots.len());
            if let Slot::Full(k, v) = &self.slots[i] {
                return Some((k.as_slice(), v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    proptest! {
        #[test]
        fn matches_a_btreemap(ops in proptest::collection::vec((any::<bool>(), 0u16..300), 0..2000)) {
            let mut d: DenseMap<CompactBytes> = DenseMap::new();
            let mut m = BTreeMap::new();
            for (ins, k) in ops {
                let key = format!("key:{k}").into_bytes();
                if ins {
                    let v = CompactBytes::new(&vec![b'v'; k as usize % 40]);
                    prop_assert_eq!(d.insert(&key, v.clone()).is_some(), m.insert(key.clone(), v).is_some());
                } else {
                    prop_assert_eq!(d.remove(&key).is_some(), m.remove(&key).is_some());
                }
                prop_assert_eq!(d.len(), m.len());
            }
            for (k, v) in &m {
                prop_assert_eq!(d.get(k).map(|x| x.as_slice()), Some(v.as_slice()));
            }
        }
    }

    #[test]
    fn scan_returns_elements_present_throughout() {
        let mut d: DenseMap<()> = DenseMap::new();
        for i in 0..1000 {
            d.insert(format!("m{i}").as_bytes(), ());
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = d.scan(cursor, 10, |k, _| {
                seen.insert(k.to_vec());
            });
            // Churn during the scan: delete some, add others.
            d.remove(format!("m{}", round * 7 % 1000).as_bytes());
            d.insert(format!("new{round}").as_bytes(), ());
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            let k = format!("m{i}");
            if d.contains(k.as_bytes()) {
                assert!(seen.contains(k.as_bytes()), "{k} missed");
            }
        }
    }
}
