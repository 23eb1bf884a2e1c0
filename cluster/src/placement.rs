//! Placement: which nodes own each slot (primary first, then replicas), behind a trait so the policy can change without touching the slot map; `Rendezvous` (highest-random-weight hashing) is the policy in use.
//!
//! Rendezvous hashing scores every (node, slot) pair with a hash and gives a
//! slot to its highest-scoring nodes. A node's score for a slot does not
//! depend on the other nodes, so a join takes from each slot only if the new
//! node outscores the old owners (about 1/(N+1) of the slots, all moving to
//! the new node) and a leave moves exactly the leaver's slots. Owners are
//! distinct by construction (DESIGN.md, Decisions: why not a hash ring).

use crate::membership::NodeId;
use crate::slot::SLOTS;
use std::fmt;
use xxhash_rust::xxh3::xxh3_64;

/// How many owners each slot gets: the primary plus up to `replicas`
/// replicas, never more than there are nodes.
#[must_use]
pub fn owner_count(nodes: usize, replicas: usize) -> usize {
    nodes.min(replicas.saturating_add(1))
}

/// Decides the owners of every slot from a set of nodes.
///
/// Contract, checked by [`SlotMap`](crate::map::SlotMap) (a violation refuses
/// the map): the result is a pure function of `nodes` as a set and
/// `replicas` — every node computes it alone and all must agree — with
/// exactly [`owner_count`]`(nodes.len(), replicas)` distinct indices into
/// `nodes` per slot, primary first.
pub trait Placement: Send + Sync + fmt::Debug {
    /// A short name for logs and errors.
    fn name(&self) -> &'static str;

    /// The owners of all [`SLOTS`] slots. `nodes` is sorted and distinct,
    /// with at most `u16::MAX` entries.
    fn assign(&self, nodes: &[NodeId], replicas: usize) -> Assignment;
}

/// The owners of every slot, compactly: `width` node indices (into the node
/// list the assignment was computed from) per slot, slot 0 first.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Assignment {
    width: usize,
    owners: Vec<u16>,
}

impl Assignment {
    /// Wraps a row-major table of `width` indices per slot. Not validated
    /// here: [`SlotMap`](crate::map::SlotMap) checks it.
    #[must_use]
    pub fn from_rows(width: usize, owners: Vec<u16>) -> Assignment {
        Assignment { width, owners }
    }

    /// Owners per slot.
    #[must_use]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of complete slot rows held (`SLOTS` when well formed).
    #[must_use]
    pub fn rows(&self) -> usize {
        self.owners.len().checked_div(self.width).unwrap_or(0)
    }

    /// The owners of `slot`, primary first; empty past the table.
    #[must_use]
    pub fn slot(&self, slot: u16) -> &[u16] {
        let start = usize::from(slot) * self.width;
        self.owners
            .get(start..start + self.width)
            .unwrap_or_default()
    }
}

/// Highest-random-weight (rendezvous) placement with xxh3: a slot's owners
/// are the `1 + replicas` nodes with the highest [`Rendezvous::weight`] for
/// it, in decreasing weight order.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rendezvous;

impl Rendezvous {
    /// The score of node `id` for `slot`: xxh3 of (xxh3 of the id, slot).
    /// Pre-hashing the id makes the per-slot input 10 fixed bytes, which xxh3
    /// mixes fully (its 9-16 byte path), and keeps the cost per pair flat in
    /// the id length. Part of the wire contract: every node must compute the
    /// same value, so this must not change without a cluster-wide upgrade.
    #[must_use]
    pub fn weight(id: &NodeId, slot: u16) -> u64 {
        weight(xxh3_64(id.as_str().as_bytes()), slot)
    }
}

fn weight(id_hash: u64, slot: u16) -> u64 {
    let mut input = [0u8; 10];
    let (id_part, slot_part) = input.split_at_mut(8);
    id_part.copy_from_slice(&id_hash.to_le_bytes());
    slot_part.copy_from_slice(&slot.to_le_bytes());
    xxh3_64(&input)
}

impl Placement for Rendezvous {
    fn name(&self) -> &'static str {
        "rendezvous-xxh3"
    }

    fn assign(&self, nodes: &[NodeId], replicas: usize) -> Assignment {
        let width = owner_count(nodes.len(), replicas);
        if width == 0 {
            return Assignment::default();
        }
        let id_hashes: Vec<u64> = nodes
            .iter()
            .map(|n| xxh3_64(n.as_str().as_bytes()))
            .collect();
        // Highest weight first. Equal weights (a 2^-64 event per pair) fall
        // back to the id, never to the input position, so the result does
        // not depend on the order the nodes were given in.
        let order = |a: &(u64, u16), b: &(u64, u16)| {
            b.0.cmp(&a.0).then_with(|| {
                nodes
                    .get(usize::from(a.1))
                    .cmp(&nodes.get(usize::from(b.1)))
            })
        };
        let mut owners = Vec::with_capacity(usize::from(SLOTS) * width);
        let mut ranked: Vec<(u64, u16)> = Vec::with_capacity(nodes.len());
        for slot in 0..SLOTS {
            ranked.clear();
            // `as u16` is exact: the contract caps nodes at u16::MAX.
            ranked.extend(
                id_hashes
                    .iter()
                    .enumerate()
                    .map(|(i, &h)| (weight(h, slot), i as u16)),
            );
            // Only the top `width` need ordering: select them, then sort them.
            if width < ranked.len() {
                ranked.select_nth_unstable_by(width - 1, order);
                ranked.truncate(width);
            }
            ranked.sort_unstable_by(order);
            owners.extend(ranked.iter().map(|&(_, i)| i));
        }
        Assignment { width, owners }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn nodes(n: usize) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = (0..n)
            .map(|i| NodeId::new(&format!("shoal-{i}")).unwrap())
            .collect();
        v.sort();
        v
    }

    /// Owners of every slot as ids, so results from different node lists compare.
    fn owner_ids(nodes: &[NodeId], a: &Assignment) -> Vec<Vec<NodeId>> {
        (0..SLOTS)
            .map(|s| {
                a.slot(s)
                    .iter()
                    .map(|&i| nodes[usize::from(i)].clone())
                    .collect()
            })
            .collect()
    }

    fn primaries_per_node(nodes: &[NodeId], a: &Assignment) -> Vec<usize> {
        let mut count = vec![0; nodes.len()];
        for s in 0..SLOTS {
            count[usize::from(a.slot(s)[0])] += 1;
        }
        count
    }

    #[test]
    fn owners_are_distinct_and_as_many_as_asked() {
        for n in 1..=6 {
            let ns = nodes(n);
            for r in 0..=4 {
                let a = Rendezvous.assign(&ns, r);
                assert_eq!(a.width(), n.min(r + 1));
                assert_eq!(a.rows(), usize::from(SLOTS));
                for s in 0..SLOTS {
                    let row = a.slot(s);
                    let set: BTreeSet<_> = row.iter().collect();
                    assert_eq!(set.len(), row.len(), "slot {s} n {n} r {r}");
                    assert!(row.iter().all(|&i| usize::from(i) < n));
                }
            }
        }
    }

    #[test]
    fn replicas_at_least_nodes_gives_every_node() {
        let ns = nodes(4);
        for r in [3, 4, 100, usize::MAX] {
            let a = Rendezvous.assign(&ns, r);
            assert_eq!(a.width(), 4);
            for s in 0..SLOTS {
                let mut row = a.slot(s).to_vec();
                row.sort_unstable();
                assert_eq!(row, [0, 1, 2, 3]);
            }
        }
    }

    #[test]
    fn no_nodes_no_owners() {
        let a = Rendezvous.assign(&[], 2);
        assert_eq!(a.width(), 0);
        assert!(a.slot(0).is_empty());
    }

    #[test]
    fn primaries_are_balanced() {
        for n in [2, 3, 5, 10, 20] {
            let ns = nodes(n);
            let a = Rendezvous.assign(&ns, 2);
            let fair = f64::from(SLOTS) / n as f64;
            for (node, &c) in ns.iter().zip(&primaries_per_node(&ns, &a)) {
                let off = (c as f64 - fair).abs() / fair;
                assert!(
                    off < 0.10,
                    "n={n}: {node} has {c} primaries, fair {fair:.0}"
                );
            }
        }
    }

    #[test]
    fn every_role_is_balanced() {
        // Each node should also hold about 1/N of the first replicas, so a
        // dead node's load spreads instead of landing on one neighbour.
        let ns = nodes(5);
        let a = Rendezvous.assign(&ns, 2);
        for role in 0..3 {
            let mut count = [0usize; 5];
            for s in 0..SLOTS {
                count[usize::from(a.slot(s)[role])] += 1;
            }
            let fair = f64::from(SLOTS) / 5.0;
            for c in count {
                assert!(
                    (c as f64 - fair).abs() / fair < 0.10,
                    "role {role}: {count:?}"
                );
            }
        }
    }

    #[test]
    fn a_join_moves_about_one_share_and_only_to_the_new_node() {
        for n in [3, 5, 10] {
            let before = nodes(n);
            let after = nodes(n + 1);
            let newcomer = after.iter().find(|x| !before.contains(x)).unwrap();
            let old = owner_ids(&before, &Rendezvous.assign(&before, 0));
            let new = owner_ids(&after, &Rendezvous.assign(&after, 0));
            let moved: Vec<_> = (0..usize::from(SLOTS))
                .filter(|&s| old[s] != new[s])
                .collect();
            for &s in &moved {
                assert_eq!(&new[s][0], newcomer, "slot {s} moved elsewhere");
            }
            let fair = f64::from(SLOTS) / (n + 1) as f64;
            let off = (moved.len() as f64 - fair).abs() / fair;
            assert!(off < 0.10, "n={n}: {} moved, fair {fair:.0}", moved.len());
        }
    }

    #[test]
    fn a_leave_moves_only_the_leavers_slots() {
        let before = nodes(6);
        let leaver = before[2].clone();
        let after: Vec<_> = before.iter().filter(|&x| *x != leaver).cloned().collect();
        let old = owner_ids(&before, &Rendezvous.assign(&before, 2));
        let new = owner_ids(&after, &Rendezvous.assign(&after, 2));
        for s in 0..usize::from(SLOTS) {
            if old[s][0] != leaver {
                assert_eq!(old[s][0], new[s][0], "slot {s}: primary moved");
            } else {
                // The first replica takes over: it has the data.
                assert_eq!(new[s][0], old[s][1], "slot {s}");
            }
            // Survivors keep their relative order.
            let survivors: Vec<_> = old[s].iter().filter(|&x| *x != leaver).cloned().collect();
            assert_eq!(new[s][..survivors.len()], survivors[..], "slot {s}");
        }
    }

    #[test]
    fn weight_is_the_function_used() {
        let ns = nodes(3);
        let a = Rendezvous.assign(&ns, 2);
        for s in [0, 1, 777, SLOTS - 1] {
            let w: Vec<u64> = a
                .slot(s)
                .iter()
                .map(|&i| Rendezvous::weight(&ns[usize::from(i)], s))
                .collect();
            assert!(w.windows(2).all(|p| p[0] > p[1]), "slot {s}: {w:?}");
        }
    }

    fn node_set() -> impl Strategy<Value = Vec<NodeId>> {
        prop::collection::btree_set("[a-z0-9.-]{1,12}", 1..12)
            .prop_map(|s| s.iter().map(|x| NodeId::new(x).unwrap()).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn independent_of_input_order(ns in node_set(), r in 0usize..4, seed in any::<u64>()) {
            let sorted = ns.clone();
            let mut shuffled = ns;
            // A deterministic shuffle driven by the case's seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let a = owner_ids(&sorted, &Rendezvous.assign(&sorted, r));
            let b = owner_ids(&shuffled, &Rendezvous.assign(&shuffled, r));
            prop_assert_eq!(a, b);
        }

        #[test]
        fn joins_only_move_to_the_newcomer(ns in node_set(), r in 0usize..3) {
            let newcomer = NodeId::new("newcomer!").unwrap();
            let mut after = ns.clone();
            after.push(newcomer.clone());
            after.sort();
            let old = owner_ids(&ns, &Rendezvous.assign(&ns, r));
            let new = owner_ids(&after, &Rendezvous.assign(&after, r));
            for s in 0..usize::from(SLOTS) {
                // Without the newcomer, the new owner list is the old one
                // (minus its last entry if the newcomer pushed it out).
                let rest: Vec<_> = new[s].iter().filter(|&x| *x != newcomer).cloned().collect();
                prop_assert_eq!(&old[s][..rest.len()], &rest[..]);
            }
        }
    }
}
