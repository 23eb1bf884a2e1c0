//! Membership: who is in the cluster, where each node listens, and whether it is alive — the seam the gossip implementation (chitchat) will plug into; `MemoryMembership` is the in-process stand-in for tests.
//!
//! The slot map is computed from a [`View`] (the live members), so anything
//! that can produce views and report changes can drive the cluster: gossip in
//! production, a test driving [`MemoryMembership`] by hand, or a simulated
//! network later.

use crate::error::ClusterError;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Longest node id accepted. Redis's own ids are 40 hex characters; ours are
/// pod names or persisted ids, which fit comfortably.
pub const MAX_NODE_ID_LEN: usize = 255;

/// A node's identity: stable across restarts and address changes (DESIGN:
/// never an IP address). Cheap to clone. Ordered by its bytes, which is the
/// order the slot map indexes nodes in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

impl NodeId {
    /// Validates and wraps an id: 1 to [`MAX_NODE_ID_LEN`] printable ASCII
    /// characters without spaces, because ids are written unquoted into
    /// space-separated CLUSTER NODES lines and redirect replies.
    pub fn new(id: &str) -> Result<NodeId, ClusterError> {
        let reason = if id.is_empty() {
            Some("empty")
        } else if id.len() > MAX_NODE_ID_LEN {
            Some("longer than 255 bytes")
        } else if !id.bytes().all(|b| b.is_ascii_graphic()) {
            Some("not printable ASCII without spaces")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(ClusterError::InvalidNodeId {
                id: id.to_owned(),
                reason,
            }),
            None => Ok(NodeId(Arc::from(id))),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for NodeId {
    type Error = ClusterError;
    fn try_from(id: &str) -> Result<Self, Self::Error> {
        NodeId::new(id)
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// One member of the cluster as the membership layer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    id: NodeId,
    host: String,
    port: u16,
    live: bool,
}

impl Member {
    /// A live member advertising `addr` (`host:port`; an IPv6 host may be
    /// bracketed or not, the port is what follows the last `:`). Host and
    /// port are kept apart because CLUSTER SHARDS reports them separately.
    pub fn new(id: NodeId, addr: &str) -> Result<Member, ClusterError> {
        let bad = |reason| ClusterError::InvalidAddress {
            addr: addr.to_owned(),
            reason,
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no ':port'"))?;
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if !host.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("host is not printable ASCII without spaces"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port is not a number 1-65535"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        Ok(Member {
            id,
            host: host.to_owned(),
            port,
            live: true,
        })
    }

    #[must_use]
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, as written in -MOVED replies.
    #[must_use]
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Whether the failure detector currently considers the node alive. Only
    /// live members own slots.
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.live
    }
}

/// A snapshot of the membership. `version` grows with every change, so two
/// snapshots of one membership compare by it (it is local to that
/// membership instance, not agreed between nodes).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct View {
    version: u64,
    /// Sorted by id, one entry per id: lookups binary-search it.
    members: Vec<Member>,
}

impl View {
    /// A view of `members` (any order; of two entries with one id, the later
    /// wins), for membership implementations to hand out.
    #[must_use]
    pub fn new(version: u64, mut members: Vec<Member>) -> View {
        // Stable sort keeps equal ids in input order; reversing before the
        // dedup makes the later entry the one kept.
        members.reverse();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        members.dedup_by(|a, b| a.id == b.id);
        View { version, members }
    }

    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// All members, live or not, sorted by id.
    #[must_use]
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Ids of the live members, in id order: the input of the slot map.
    pub fn live(&self) -> impl Iterator<Item = &NodeId> {
        self.members.iter().filter(|m| m.live).map(|m| &m.id)
    }

    #[must_use]
    pub fn get(&self, id: &NodeId) -> Option<&Member> {
        self.members
            .binary_search_by(|m| m.id.cmp(id))
            .ok()
            .and_then(|i| self.members.get(i))
    }
}

/// Identifies a subscription, to end it with [`Membership::unsubscribe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

/// Called with each new view. Runs on whatever thread made the change (later:
/// the gossip task), so it must be quick, and must not change the membership
/// itself (deliveries are serialized, so that would deadlock). Bridging to
/// async code is one non-blocking call, e.g. `tokio::sync::watch::Sender::send_replace`.
pub type Callback = Box<dyn Fn(&View) + Send + Sync>;

/// Source of membership views. Implementations: [`MemoryMembership`] (tests,
/// single node); gossip later.
pub trait Membership: Send + Sync {
    /// This node's own id.
    fn local_id(&self) -> &NodeId;

    /// The current view.
    fn view(&self) -> View;

    /// Registers `callback`. It is called at once with the current view, then
    /// once per change, in version order, so a subscriber never misses a
    /// change between reading the view and subscribing.
    fn subscribe(&self, callback: Callback) -> SubscriptionId;

    /// Ends a subscription; false if it was not active. A delivery already
    /// under way may still complete.
    fn unsubscribe(&self, id: SubscriptionId) -> bool;
}

/// A registered callback, shared so deliveries run without the list locked.
type SharedCallback = Arc<dyn Fn(&View) + Send + Sync>;

/// An in-memory membership changed by direct calls: what tests (and a
/// one-node cluster) use until gossip exists.
pub struct MemoryMembership {
    local: NodeId,
    view: Mutex<View>,
    subscribers: Mutex<Vec<(SubscriptionId, SharedCallback)>>,
    /// Held while a change is applied and delivered, so every subscriber sees
    /// changes one at a time and in version order.
    delivery: Mutex<()>,
    next_subscription: AtomicU64,
}

impl fmt::Debug for MemoryMembership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryMembership")
            .field("local", &self.local)
            .field("view", &*lock(&self.view))
            .finish_non_exhaustive()
    }
}

/// Locks ignoring poison: the data under these locks is replaced whole by
/// every change, so a panic in a callback cannot leave it half-updated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryMembership {
    /// A membership holding only `local` (alive), at version 1.
    #[must_use]
    pub fn new(local: Member) -> MemoryMembership {
        MemoryMembership {
            local: local.id.clone(),
            view: Mutex::new(View::new(1, vec![local])),
            subscribers: Mutex::new(Vec::new()),
            delivery: Mutex::new(()),
            next_subscription: AtomicU64::new(0),
        }
    }

    /// Adds `member`, or replaces the member with its id (a restart at a new
    /// address keeps the identity). The member's liveness is taken as given.
    pub fn join(&self, member: Member) {
        let outcome = self.change(|members| {
            match members.binary_search_by(|m| m.id.cmp(&member.id)) {
                Ok(i) => match members.get_mut(i) {
                    Some(old) if *old != member => *old = member,
                    _ => return Ok(false),
                },
                Err(i) => members.insert(i, member),
            }
            Ok(true)
        });
        debug_assert!(outcome.is_ok(), "joining cannot fail");
    }

    /// Removes a member (a graceful leave, or an operator forgetting a node).
    pub fn leave(&self, id: &NodeId) -> Result<(), ClusterError> {
        self.change(|members| {
            let i = find(members, id)?;
            members.remove(i);
            Ok(true)
        })
    }

    /// Marks a member alive or dead, as the failure detector will. Setting
    /// the state it already has changes nothing and notifies no one.
    pub fn set_live(&self, id: &NodeId, live: bool) -> Result<(), ClusterError> {
        self.change(|members| {
            let i = find(members, id)?;
            Ok(match members.get_mut(i) {
                Some(m) if m.live != live => {
                    m.live = live;
                    true
                }
                _ => false,
            })
        })
    }

    /// Applies `edit` to the members; when it reports a change, bumps the
    /// version and delivers the new view to every subscriber.
    fn change(
        &self,
        edit: impl FnOnce(&mut Vec<Member>) -> Result<bool, ClusterError>,
    ) -> Result<(), ClusterError> {
        let _delivering = lock(&self.delivery);
        let snapshot = {
            let mut view = lock(&self.view);
            if !edit(&mut view.members)? {
                return Ok(());
            }
            view.version += 1;
            view.clone()
        };
        // Callbacks run without the view or subscriber locks, so they may read
        // the membership (and unsubscribe) freely.
        let subscribers: Vec<_> = lock(&self.subscribers)
            .iter()
            .map(|(_, cb)| Arc::clone(cb))
            .collect();
        for cb in subscribers {
            cb(&snapshot);
        }
        Ok(())
    }
}

fn find(members: &[Member], id: &NodeId) -> Result<usize, ClusterError> {
    members
        .binary_search_by(|m| m.id.cmp(id))
        .map_err(|_| ClusterError::UnknownNode { id: id.clone() })
}

impl Membership for MemoryMembership {
    fn local_id(&self) -> &NodeId {
        &self.local
    }

    fn view(&self) -> View {
        lock(&self.view).clone()
    }

    fn subscribe(&self, callback: Callback) -> SubscriptionId {
        let id = SubscriptionId(self.next_subscription.fetch_add(1, Ordering::Relaxed));
        let callback: SharedCallback = Arc::from(callback);
        // Under the delivery lock no change can slip in between the first
        // delivery and the registration.
        let _delivering = lock(&self.delivery);
        callback(&self.view());
        lock(&self.subscribers).push((id, callback));
        id
    }

    fn unsubscribe(&self, id: SubscriptionId) -> bool {
        let mut subs = lock(&self.subscribers);
        let before = subs.len();
        subs.retain(|(s, _)| *s != id);
        subs.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn member(s: &str, port: u16) -> Member {
        Member::new(id(s), &format!("10.0.0.1:{port}")).unwrap()
    }

    #[test]
    fn node_id_validation() {
        assert!(NodeId::new("shoal-0").is_ok());
        assert!(NodeId::new(&"a".repeat(255)).is_ok());
        for bad in ["", "a b", "a\nb", "é", &"a".repeat(256)] {
            let err = NodeId::new(bad).unwrap_err();
            assert!(
                matches!(&err, ClusterError::InvalidNodeId { id, .. } if id == bad),
                "{err}"
            );
        }
    }

    #[test]
    fn address_parsing() {
        let m = Member::new(id("a"), "shoal-0.shoal:6379").unwrap();
        assert_eq!((m.host(), m.port()), ("shoal-0.shoal", 6379));
        assert_eq!(m.addr(), "shoal-0.shoal:6379");
        assert!(m.is_live());
        let m = Member::new(id("a"), "::1:7000").unwrap();
        assert_eq!((m.host(), m.port()), ("::1", 7000));
        let m = Member::new(id("a"), "[::1]:7000").unwrap();
        assert_eq!(m.host(), "[::1]");
        for bad in ["host", ":6379", "host:0", "host:65536", "host:x", "ho st:1"] {
            let err = Member::new(id("a"), bad).unwrap_err();
            assert!(
                matches!(&err, ClusterError::InvalidAddress { addr, .. } if addr == bad),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn view_new_sorts_and_keeps_the_last_entry_per_id() {
        let v = View::new(7, vec![member("b", 1), member("a", 2), member("b", 3)]);
        assert_eq!(v.version(), 7);
        let got: Vec<_> = v
            .members()
            .iter()
            .map(|m| (m.id().as_str(), m.port()))
            .collect();
        assert_eq!(got, [("a", 2), ("b", 3)]);
        assert_eq!(v.get(&id("b")).map(Member::port), Some(3));
        assert!(v.get(&id("c")).is_none());
    }

    #[test]
    fn changes_bump_the_version_and_no_ops_do_not() {
        let mm = MemoryMembership::new(member("a", 1));
        assert_eq!(mm.local_id(), &id("a"));
        let v1 = mm.view();
        assert_eq!(v1.version(), 1);
        mm.join(member("c", 3));
        mm.join(member("b", 2));
        let v = mm.view();
        assert_eq!(v.version(), 3);
        let ids: Vec<_> = v.members().iter().map(|m| m.id().as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"], "members stay sorted by id");

        mm.join(member("b", 2)); // identical: no change
        mm.set_live(&id("b"), true).unwrap(); // already alive
        assert_eq!(mm.view().version(), 3);

        mm.set_live(&id("b"), false).unwrap();
        let v = mm.view();
        assert_eq!(v.version(), 4);
        assert_eq!(v.live().map(NodeId::as_str).collect::<Vec<_>>(), ["a", "c"]);
        assert!(!v.get(&id("b")).unwrap().is_live());

        // Rejoining at a new address replaces the entry (same identity).
        mm.join(member("b", 9));
        let v = mm.view();
        assert_eq!(v.version(), 5);
        assert_eq!(v.get(&id("b")).unwrap().port(), 9);
        assert!(v.get(&id("b")).unwrap().is_live());

        mm.leave(&id("c")).unwrap();
        assert_eq!(mm.view().version(), 6);
        assert!(mm.view().get(&id("c")).is_none());
    }

    #[test]
    fn unknown_nodes_are_refused_without_a_change() {
        let mm = MemoryMembership::new(member("a", 1));
        assert_eq!(
            mm.leave(&id("zz")),
            Err(ClusterError::UnknownNode { id: id("zz") })
        );
        assert_eq!(
            mm.set_live(&id("zz"), false),
            Err(ClusterError::UnknownNode { id: id("zz") })
        );
        assert_eq!(mm.view().version(), 1);
    }

    #[test]
    fn subscribers_see_the_current_view_then_every_change_in_order() {
        let mm = Arc::new(MemoryMembership::new(member("a", 1)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let sub = mm.subscribe(Box::new(move |v: &View| {
            sink.lock().unwrap().push((v.version(), v.members().len()));
        }));
        mm.join(member("b", 2));
        mm.set_live(&id("b"), false).unwrap();
        mm.set_live(&id("b"), false).unwrap(); // no-op: not delivered
        mm.leave(&id("b")).unwrap();
        assert_eq!(*seen.lock().unwrap(), [(1, 1), (2, 2), (3, 2), (4, 1)]);

        assert!(mm.unsubscribe(sub));
        assert!(!mm.unsubscribe(sub));
        mm.join(member("c", 3));
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    #[test]
    fn callbacks_may_read_the_membership() {
        let mm = Arc::new(MemoryMembership::new(member("a", 1)));
        let reader = Arc::clone(&mm);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        mm.subscribe(Box::new(move |v: &View| {
            // Reading inside the callback must not deadlock, and agrees.
            sink.lock()
                .unwrap()
                .push(reader.view().version() == v.version());
        }));
        mm.join(member("b", 2));
        assert_eq!(*seen.lock().unwrap(), [true, true]);
    }

    #[test]
    fn concurrent_changes_are_delivered_in_version_order() {
        let mm = Arc::new(MemoryMembership::new(member("a", 1)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        mm.subscribe(Box::new(move |v: &View| {
            sink.lock().unwrap().push(v.version())
        }));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mm = Arc::clone(&mm);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        mm.join(member(&format!("n{t}-{i}"), 2));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(*seen, (1..=201).collect::<Vec<u64>>());
    }
}
