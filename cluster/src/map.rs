//! `SlotMap`: the owners of all 16384 slots for one membership view, with the epoch CLUSTER commands report, the contiguous ranges CLUSTER SLOTS/SHARDS list, and the diff rebalancing pulls.

use crate::error::ClusterError;
use crate::membership::{NodeId, View};
use crate::placement::{Assignment, Placement, owner_count};
use crate::slot::SLOTS;
use std::fmt;
use xxhash_rust::xxh3::Xxh3;

/// Most nodes a map can hold: owners are stored as `u16` indices.
pub const MAX_NODES: usize = u16::MAX as usize;

/// Who owns which slot, computed from the live members and a [`Placement`].
/// Immutable: a membership change builds a new map with [`SlotMap::next`].
#[derive(Clone, PartialEq, Eq)]
pub struct SlotMap {
    epoch: u64,
    replicas: usize,
    /// Sorted and distinct; owners index into it.
    nodes: Vec<NodeId>,
    owners: Assignment,
    digest: u64,
}

impl fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotMap")
            .field("epoch", &self.epoch)
            .field("replicas", &self.replicas)
            .field("nodes", &self.nodes)
            .field("digest", &format_args!("{:016x}", self.digest))
            .finish_non_exhaustive()
    }
}

/// What a node gains in a new map: a copy of a slot to pull, or a promotion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMove {
    pub slot: u16,
    /// The slot's primary in the old map: it has every acknowledged write and
    /// keeps serving until the handoff completes (DESIGN.md, Rebalancing).
    pub from: NodeId,
    pub to: NodeId,
    /// The role `to` has in the new map.
    pub role: Role,
    /// `to` already held a copy in the old map (a replica promoted to
    /// primary): it catches up rather than pulling the whole slot.
    pub had_copy: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica,
}

/// A maximal run of consecutive slots with the same owners (primary first),
/// as CLUSTER SLOTS and CLUSTER SHARDS list them. `end` is inclusive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
    pub owners: Vec<NodeId>,
}

impl SlotMap {
    /// The first map of a node: epoch 1 (0 is left for "no map yet").
    /// `live` may contain duplicates and come in any order; `replicas` is the
    /// number of copies besides the primary (DESIGN's replication factor
    /// minus one).
    pub fn new(
        live: impl IntoIterator<Item = NodeId>,
        replicas: usize,
        placement: &dyn Placement,
    ) -> Result<SlotMap, ClusterError> {
        Self::compute(1, live, replicas, placement)
    }

    /// The map that follows `self` for a new set of live nodes. The epoch
    /// changes exactly when the map does: a different member set (or replica
    /// count, or placement result) gives `self.epoch + 1`; the same members
    /// give the same owners and keep the epoch, so re-deriving the map from
    /// an unchanged view is not a topology change.
    pub fn next(
        &self,
        live: impl IntoIterator<Item = NodeId>,
        replicas: usize,
        placement: &dyn Placement,
    ) -> Result<SlotMap, ClusterError> {
        let mut map = Self::compute(self.epoch, live, replicas, placement)?;
        if map.nodes != self.nodes || map.owners != self.owners {
            // Saturating: 2^64 topology changes do not happen; wrapping to a
            // small epoch would make newer maps look older.
            map.epoch = self.epoch.saturating_add(1);
        }
        Ok(map)
    }

    /// The map for `view`'s live members: [`SlotMap::next`] of `previous`,
    /// or [`SlotMap::new`] when there is none.
    pub fn from_view(
        view: &View,
        previous: Option<&SlotMap>,
        replicas: usize,
        placement: &dyn Placement,
    ) -> Result<SlotMap, ClusterError> {
        let live = view.live().cloned();
        match previous {
            Some(prev) => prev.next(live, replicas, placement),
            None => SlotMap::new(live, replicas, placement),
        }
    }

    fn compute(
        epoch: u64,
        live: impl IntoIterator<Item = NodeId>,
        replicas: usize,
        placement: &dyn Placement,
    ) -> Result<SlotMap, ClusterError> {
        let mut nodes: Vec<NodeId> = live.into_iter().collect();
        nodes.sort_unstable();
        nodes.dedup();
        if nodes.is_empty() {
            return Err(ClusterError::NoLiveNodes);
        }
        if nodes.len() > MAX_NODES {
            return Err(ClusterError::TooManyNodes {
                count: nodes.len(),
                max: MAX_NODES,
            });
        }
        let owners = placement.assign(&nodes, replicas);
        check(placement.name(), &owners, nodes.len(), replicas)?;
        let digest = digest(&nodes, &owners);
        Ok(SlotMap {
            epoch,
            replicas,
            nodes,
            owners,
            digest,
        })
    }

    /// Grows by one whenever the map changes; CLUSTER INFO/NODES report it.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A hash of the members and owners, equal on every node that computed
    /// the same map. Unlike the epoch, which counts the changes one node has
    /// seen, it depends only on the content, so peers can compare maps.
    #[must_use]
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Replicas per slot that were asked for (a slot has fewer when there are
    /// not enough nodes).
    #[must_use]
    pub fn replica_count(&self) -> usize {
        self.replicas
    }

    /// The nodes the map was built from, sorted.
    #[must_use]
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    #[must_use]
    pub fn contains(&self, node: &NodeId) -> bool {
        self.nodes.binary_search(node).is_ok()
    }

    /// The owners of `slot`, primary first; empty when `slot >= SLOTS`.
    pub fn owners(&self, slot: u16) -> impl ExactSizeIterator<Item = &NodeId> + '_ {
        // Indexing cannot panic: `check` verified every index against
        // `nodes` when the map was built, and neither changes afterwards.
        self.owners
            .slot(slot)
            .iter()
            .map(|&i| &self.nodes[usize::from(i)])
    }

    /// The primary of `slot`; `None` only when `slot >= SLOTS`.
    #[must_use]
    pub fn owner(&self, slot: u16) -> Option<&NodeId> {
        self.owners(slot).next()
    }

    /// The replicas of `slot`, in promotion order (the first takes over if
    /// the primary dies, by the same placement).
    pub fn replicas(&self, slot: u16) -> impl ExactSizeIterator<Item = &NodeId> + '_ {
        self.owners(slot).skip(1)
    }

    /// Maximal runs of consecutive slots with identical owner lists, in slot
    /// order, covering 0..=16383.
    #[must_use]
    pub fn ranges(&self) -> Vec<SlotRange> {
        let mut ranges = Vec::new();
        let mut start = 0u16;
        for slot in 1..=SLOTS {
            if slot < SLOTS && self.owners.slot(slot) == self.owners.slot(start) {
                continue;
            }
            ranges.push(SlotRange {
                start,
                end: slot - 1,
                owners: self.owners(start).cloned().collect(),
            });
            start = slot;
        }
        ranges
    }

    /// What each node gains going from `old` to `self`, in slot order: one
    /// entry per slot whose primary changed (`role` Primary) and per node that
    /// is a replica of a slot it did not hold (`role` Replica). Copies a node
    /// loses are not listed: it drops them once the new owners have them.
    #[must_use]
    pub fn diff(&self, old: &SlotMap) -> Vec<SlotMove> {
        let mut moves = Vec::new();
        for slot in 0..SLOTS {
            let (Some(from), Some(primary)) = (old.owner(slot), self.owner(slot)) else {
                continue;
            };
            let held = |n: &NodeId| old.owners(slot).any(|o| o == n);
            if primary != from {
                moves.push(SlotMove {
                    slot,
                    from: from.clone(),
                    to: primary.clone(),
                    role: Role::Primary,
                    had_copy: held(primary),
                });
            }
            for replica in self.replicas(slot) {
                if !held(replica) {
                    moves.push(SlotMove {
                        slot,
                        from: from.clone(),
                        to: replica.clone(),
                        role: Role::Replica,
                        had_copy: false,
                    });
                }
            }
        }
        moves
    }
}

/// Checks a placement's result against the [`Placement`] contract.
fn check(
    placement: &'static str,
    owners: &Assignment,
    nodes: usize,
    replicas: usize,
) -> Result<(), ClusterError> {
    let bad = |slot: u16, reason: String| ClusterError::BadPlacement {
        placement,
        slot,
        reason,
    };
    let width = owner_count(nodes, replicas);
    if owners.width() != width {
        return Err(bad(
            0,
            format!("{} owners per slot, expected {width}", owners.width()),
        ));
    }
    if owners.rows() != usize::from(SLOTS) {
        return Err(bad(0, format!("{} slots, expected {SLOTS}", owners.rows())));
    }
    let mut seen = vec![u16::MAX; nodes]; // last slot each node was seen in
    for slot in 0..SLOTS {
        for &i in owners.slot(slot) {
            match seen.get_mut(usize::from(i)) {
                None => return Err(bad(slot, format!("node index {i} of {nodes} nodes"))),
                Some(last) if *last == slot => {
                    return Err(bad(slot, format!("node index {i} listed twice")));
                }
                Some(last) => *last = slot,
            }
        }
    }
    Ok(())
}

fn digest(nodes: &[NodeId], owners: &Assignment) -> u64 {
    let mut h = Xxh3::new();
    for n in nodes {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        h.update(&(n.as_str().len() as u64).to_le_bytes());
        h.update(n.as_str().as_bytes());
    }
    h.update(&(owners.width() as u64).to_le_bytes());
    for slot in 0..SLOTS {
        for &i in owners.slot(slot) {
            h.update(&i.to_le_bytes());
        }
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{Member, Membership, MemoryMembership};
    use crate::placement::Rendezvous;
    use proptest::prelude::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn ids(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|s| id(s)).collect()
    }

    fn map(names: &[&str], replicas: usize) -> SlotMap {
        SlotMap::new(ids(names), replicas, &Rendezvous).unwrap()
    }

    #[test]
    fn one_node_owns_everything_in_one_range() {
        let m = map(&["solo"], 2);
        assert_eq!(m.epoch(), 1);
        assert_eq!(
            m.ranges(),
            [SlotRange {
                start: 0,
                end: SLOTS - 1,
                owners: ids(&["solo"])
            }]
        );
        assert_eq!(m.owner(0), Some(&id("solo")));
        assert_eq!(m.owner(SLOTS - 1), Some(&id("solo")));
        assert_eq!(m.replicas(5).len(), 0);
        assert_eq!(m.owner(SLOTS), None);
        assert_eq!(m.owners(SLOTS).len(), 0);
    }

    #[test]
    fn ranges_cover_every_slot_and_are_maximal() {
        let m = map(&["a", "b", "c", "d"], 1);
        let ranges = m.ranges();
        assert_eq!(ranges.first().unwrap().start, 0);
        assert_eq!(ranges.last().unwrap().end, SLOTS - 1);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end + 1, pair[1].start);
            assert_ne!(
                pair[0].owners, pair[1].owners,
                "adjacent ranges must differ"
            );
        }
        for r in &ranges {
            assert!(r.start <= r.end);
            assert_eq!(r.owners.len(), 2);
            for s in r.start..=r.end {
                assert_eq!(m.owners(s).cloned().collect::<Vec<_>>(), r.owners);
            }
        }
    }

    #[test]
    fn owners_replicas_and_membership() {
        let m = map(&["c", "a", "b", "a"], 1);
        assert_eq!(
            m.nodes(),
            ids(&["a", "b", "c"]).as_slice(),
            "sorted, deduplicated"
        );
        assert!(m.contains(&id("b")));
        assert!(!m.contains(&id("z")));
        assert_eq!(m.replica_count(), 1);
        for s in 0..SLOTS {
            let owners: Vec<_> = m.owners(s).collect();
            assert_eq!(owners.len(), 2);
            assert_eq!(Some(owners[0]), m.owner(s));
            assert_eq!(m.replicas(s).collect::<Vec<_>>(), owners[1..]);
            assert_ne!(owners[0], owners[1]);
        }
    }

    #[test]
    fn empty_membership_is_refused() {
        assert_eq!(
            SlotMap::new(Vec::new(), 1, &Rendezvous),
            Err(ClusterError::NoLiveNodes)
        );
    }

    #[test]
    fn epoch_counts_changes_of_the_member_set() {
        let m1 = map(&["a", "b", "c"], 1);
        let same = m1.next(ids(&["c", "b", "a"]), 1, &Rendezvous).unwrap();
        assert_eq!(same.epoch(), 1);
        assert_eq!(same, m1);
        let m2 = m1.next(ids(&["a", "b", "c", "d"]), 1, &Rendezvous).unwrap();
        assert_eq!(m2.epoch(), 2);
        let m3 = m2.next(ids(&["a", "b", "c"]), 1, &Rendezvous).unwrap();
        assert_eq!(m3.epoch(), 3);
        // Back to the first member set: same owners and digest, newer epoch.
        assert_eq!(m3.digest(), m1.digest());
        assert_ne!(m3.digest(), m2.digest());
        let m4 = m3.next(ids(&["a", "b", "c"]), 2, &Rendezvous).unwrap();
        assert_eq!(m4.epoch(), 4, "a replica count change is a map change");
    }

    #[test]
    fn diff_of_a_join_moves_about_one_share_to_the_newcomer() {
        let old = map(&["a", "b", "c", "d"], 0);
        let new = old
            .next(ids(&["a", "b", "c", "d", "e"]), 0, &Rendezvous)
            .unwrap();
        let moves = new.diff(&old);
        let fair = f64::from(SLOTS) / 5.0;
        assert!(
            (moves.len() as f64 - fair).abs() / fair < 0.10,
            "{}",
            moves.len()
        );
        for mv in &moves {
            assert_eq!(mv.to, id("e"));
            assert_eq!(mv.role, Role::Primary);
            assert!(!mv.had_copy);
            assert_eq!(Some(&mv.from), old.owner(mv.slot));
            assert_eq!(Some(&mv.to), new.owner(mv.slot));
        }
        assert!(moves.windows(2).all(|p| p[0].slot < p[1].slot));
        assert!(old.diff(&old).is_empty());
    }

    #[test]
    fn diff_of_a_death_promotes_replicas_and_pulls_new_ones() {
        let old = map(&["a", "b", "c", "d"], 1);
        let new = old.next(ids(&["a", "c", "d"]), 1, &Rendezvous).unwrap();
        let moves = new.diff(&old);
        let mut promotions = 0;
        for mv in &moves {
            assert_ne!(mv.to, id("b"));
            match mv.role {
                Role::Primary => {
                    // Only b's primaries change hands, to b's replica.
                    assert_eq!(mv.from, id("b"));
                    assert!(mv.had_copy);
                    assert_eq!(Some(&mv.to), old.replicas(mv.slot).next());
                    promotions += 1;
                }
                Role::Replica => {
                    assert!(!old.owners(mv.slot).any(|o| *o == mv.to));
                    assert!(old.owners(mv.slot).any(|o| *o == id("b")));
                }
            }
        }
        let b_primaries = (0..SLOTS)
            .filter(|&s| old.owner(s) == Some(&id("b")))
            .count();
        let b_copies = (0..SLOTS)
            .filter(|&s| old.owners(s).any(|o| *o == id("b")))
            .count();
        assert_eq!(promotions, b_primaries);
        // Every slot b held a copy of needs one new replica.
        assert_eq!(moves.len() - promotions, b_copies);
    }

    #[test]
    fn from_view_uses_live_members_only() {
        let mm = MemoryMembership::new(Member::new(id("a"), "h:1").unwrap());
        mm.join(Member::new(id("b"), "h:2").unwrap());
        mm.join(Member::new(id("c"), "h:3").unwrap());
        let m1 = SlotMap::from_view(&mm.view(), None, 1, &Rendezvous).unwrap();
        assert_eq!(m1.nodes(), ids(&["a", "b", "c"]).as_slice());
        assert_eq!(m1.epoch(), 1);

        mm.set_live(&id("b"), false).unwrap();
        let m2 = SlotMap::from_view(&mm.view(), Some(&m1), 1, &Rendezvous).unwrap();
        assert_eq!(m2.nodes(), ids(&["a", "c"]).as_slice());
        assert_eq!(m2.epoch(), 2);
        assert!((0..SLOTS).all(|s| m2.owners(s).all(|o| *o != id("b"))));

        // A change that does not touch liveness (a new address) keeps the map.
        mm.join(Member::new(id("c"), "h:33").unwrap());
        let m3 = SlotMap::from_view(&mm.view(), Some(&m2), 1, &Rendezvous).unwrap();
        assert_eq!(m3.epoch(), 2);
    }

    /// A placement that breaks its contract in a chosen way.
    #[derive(Debug)]
    struct Broken(fn(usize) -> Assignment);

    impl Placement for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        fn assign(&self, nodes: &[NodeId], _replicas: usize) -> Assignment {
            (self.0)(nodes.len())
        }
    }

    /// Rows of two owners, with `bad` in place of the normal `[0, 1]` at `at`.
    fn two_owners_except(at: u16, bad: [u16; 2]) -> Assignment {
        let rows = (0..SLOTS).flat_map(|s| if s == at { bad } else { [0, 1] });
        Assignment::from_rows(2, rows.collect())
    }

    #[test]
    fn contract_breaking_placements_are_refused() {
        let cases: [(Broken, u16, &str); 4] = [
            (
                Broken(|_| Assignment::from_rows(2, vec![0, 1, 1, 0])),
                0,
                "2 slots",
            ),
            (
                Broken(|_| Assignment::from_rows(1, vec![0; 16384])),
                0,
                "1 owners per slot",
            ),
            (Broken(|_| two_owners_except(9, [1, 1])), 9, "listed twice"),
            (
                Broken(|_| two_owners_except(7, [0, 2])),
                7,
                "node index 2 of 2",
            ),
        ];
        for (placement, slot, text) in cases {
            let err = SlotMap::new(ids(&["a", "b"]), 1, &placement).unwrap_err();
            match &err {
                ClusterError::BadPlacement {
                    placement: "broken",
                    slot: s,
                    reason,
                } => {
                    assert_eq!(*s, slot, "{err}");
                    assert!(reason.contains(text), "{err}");
                }
                other => panic!("unexpected {other}"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Every node computes the same map from the same membership, however
        /// it learned the members.
        #[test]
        fn deterministic(
            names in prop::collection::btree_set("[a-z0-9-]{1,10}", 1..10),
            r in 0usize..3,
        ) {
            let forward: Vec<NodeId> = names.iter().map(|s| id(s)).collect();
            let mut backward = forward.clone();
            backward.reverse();
            backward.extend(forward.iter().cloned()); // duplicates too
            let a = SlotMap::new(forward, r, &Rendezvous).unwrap();
            let b = SlotMap::new(backward, r, &Rendezvous).unwrap();
            prop_assert_eq!(a.digest(), b.digest());
            prop_assert_eq!(a.ranges(), b.ranges());
            prop_assert!(a == b);
        }
    }
}
