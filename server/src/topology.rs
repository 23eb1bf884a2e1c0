//! Multi-node cluster mode: gossip membership, the slot map every node
//! computes from it, and the route step of [`crate::exec::execute`].
//!
//! With `cluster-enabled yes` and `cluster-seeds` (or `cluster-gossip-port`)
//! set, the node starts a [`GossipMembership`] (chitchat over UDP) carrying
//! its client address; a task subscribed to it recomputes the [`SlotMap`]
//! (rendezvous placement, no replicas) on every view change and publishes a
//! [`Topology`] in an `ArcSwapOption` that commands read without locking.
//!
//! Current state (redirect mode only): a command whose key's slot another
//! node owns gets `-MOVED <slot> <host>:<port>`, on every connection (no
//! forwarding yet); keys of several slots get `-CROSSSLOT`. No data moves
//! when the map changes: keys of slots a node loses stay there unreachable,
//! and a dead node's keys are lost (rebalancing/handoff comes later).

use crate::command::{CmdError, CommandSpec};
use crate::node::{NodeError, Shared};
use crate::protocol::Args;
use shoal_cluster::{
    GossipConfig, GossipMembership, Member, Membership, NodeId, Rendezvous, SlotMap, View, key_slot,
};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

/// One slot map with the members' client addresses: what CLUSTER commands
/// report and the route step reads.
#[derive(Debug)]
pub struct Topology {
    pub map: SlotMap,
    /// The members of `map.nodes()`, in the same order.
    pub members: Vec<Member>,
    /// This node's id.
    pub me: NodeId,
}

impl Topology {
    fn build(view: &View, previous: Option<&SlotMap>, me: &NodeId) -> Option<Topology> {
        let map = match SlotMap::from_view(view, previous, 0, &Rendezvous) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot compute the slot map; keeping the previous one");
                return None;
            }
        };
        let members = map
            .nodes()
            .iter()
            .filter_map(|id| view.get(id).cloned())
            .collect::<Vec<_>>();
        if members.len() != map.nodes().len() {
            tracing::warn!("slot map node missing from the view; keeping the previous map");
            return None;
        }
        Some(Topology {
            map,
            members,
            me: me.clone(),
        })
    }

    /// The member `id` of the map.
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        let i = self.map.nodes().binary_search(id).ok()?;
        self.members.get(i)
    }

    /// The slot ranges owned by `id` as (start, end) pairs, in slot order.
    pub fn ranges_of(&self, id: &NodeId) -> Vec<(u16, u16)> {
        self.map
            .ranges()
            .into_iter()
            .filter(|r| r.owners.first() == Some(id))
            .map(|r| (r.start, r.end))
            .collect()
    }
}

/// The route step: `Some(error)` when the command must not run here
/// (`-CROSSSLOT`, or `-MOVED` to the owner of its keys' slot).
pub fn route(shared: &Shared, spec: &CommandSpec, args: &Args<'_>) -> Option<CmdError> {
    let topo = shared.topology.load();
    let topo = topo.as_ref()?;
    let mut slot = None;
    for p in spec.keys_in(args) {
        let s = key_slot(args.get(p));
        match slot {
            None => slot = Some(s),
            Some(first) if first != s => {
                return Some(CmdError::Raw(
                    "CROSSSLOT Keys in a request don't hash to the same slot".into(),
                ));
            }
            Some(_) => {}
        }
    }
    let slot = slot?;
    let owner = topo.map.owner(slot)?;
    if *owner == topo.me {
        return None;
    }
    let addr = topo
        .member(owner)
        .map_or_else(|| owner.to_string(), Member::addr);
    Some(CmdError::Raw(format!("MOVED {slot} {addr}")))
}

/// Whether `config` asks for a multi-node cluster (gossip).
pub fn wanted(config: &crate::config::Config) -> bool {
    config.cluster_enabled
        && (!config.cluster_seeds.is_empty() || config.cluster_gossip_port.is_some())
}

/// Starts gossip and the map task. `client` is the first bound client address.
pub async fn start(
    shared: &Arc<Shared>,
    node_id: &str,
    client: SocketAddr,
    tracker: &TaskTracker,
) -> Result<(), NodeError> {
    let (announce, seeds, gossip_port) = {
        let c = shared.config.read();
        (
            c.cluster_announce_ip.clone(),
            c.cluster_seeds.clone(),
            c.cluster_gossip_port,
        )
    };
    let bad = |m: String| NodeError::Cluster(m);
    let ip: IpAddr = if announce.is_empty() {
        if client.ip().is_unspecified() {
            return Err(bad(
                "cluster-announce-ip must be set when the node listens on any address and gossips"
                    .into(),
            ));
        }
        client.ip().to_canonical()
    } else {
        announce.parse().map_err(|_| {
            bad(format!(
                "cluster-announce-ip {announce:?} is not an IP address"
            ))
        })?
    };
    let port = match gossip_port {
        Some(p) => p,
        None => client.port().checked_add(10000).ok_or_else(|| {
            bad("client port + 10000 is not a port; set cluster-gossip-port".into())
        })?,
    };
    let id = NodeId::new(node_id).map_err(|e| bad(e.to_string()))?;
    let advertise = SocketAddr::new(ip, client.port()).to_string();
    let mut gc = GossipConfig::new(id.clone(), advertise, SocketAddr::new(client.ip(), port));
    gc.gossip_advertise_addr = Some(SocketAddr::new(ip, 0));
    gc.seeds = seeds;
    let gossip = GossipMembership::start(gc, &shoal_cluster::gossip::UdpTransport)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let gossip = Arc::new(gossip);
    if let Some(t) = Topology::build(&gossip.view(), None, &id) {
        tracing::info!(epoch = t.map.epoch(), nodes = ?t.map.nodes(), "cluster map");
        shared.topology.store(Some(Arc::new(t)));
    }
    let (tx, rx) = watch::channel(gossip.view());
    gossip.subscribe(Box::new(move |v: &View| {
        tx.send_replace(v.clone());
    }));
    tracing::info!(gossip = %gossip.gossip_addr(), "cluster mode: gossiping with peers");
    let _ = shared.gossip.set(Arc::clone(&gossip));
    tracker.spawn(map_task(Arc::clone(shared), rx, id));
    Ok(())
}

/// Recomputes the map on every view change until shutdown.
async fn map_task(shared: Arc<Shared>, mut rx: watch::Receiver<View>, me: NodeId) {
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
        }
        let view = rx.borrow_and_update().clone();
        let prev = shared.topology.load_full();
        let Some(t) = Topology::build(&view, prev.as_ref().map(|p| &p.map), &me) else {
            continue;
        };
        let changed = prev
            .as_ref()
            .is_none_or(|p| p.map.epoch() != t.map.epoch() || p.members != t.members);
        if changed {
            tracing::info!(epoch = t.map.epoch(), nodes = ?t.map.nodes(),
                view_version = view.version(), "cluster map changed");
        }
        shared.topology.store(Some(Arc::new(t)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: u16) -> View {
        let members = (0..n)
            .map(|i| {
                let id = NodeId::new(&format!("node-{i}")).unwrap();
                Member::new(id, &format!("127.0.0.1:{}", 7000 + i)).unwrap()
            })
            .collect();
        View::new(1, members)
    }

    #[test]
    fn build_pairs_members_with_the_map_and_ranges_cover_every_slot_once() {
        let me = NodeId::new("node-0").unwrap();
        let t = Topology::build(&view(3), None, &me).unwrap();
        assert_eq!(t.members.len(), 3);
        let mut covered = vec![0u8; usize::from(shoal_cluster::SLOTS)];
        for m in &t.members {
            assert_eq!(t.member(m.id()), Some(m));
            for (a, b) in t.ranges_of(m.id()) {
                for s in a..=b {
                    covered[usize::from(s)] += 1;
                    assert_eq!(t.map.owner(s), Some(m.id()));
                }
            }
        }
        assert!(covered.iter().all(|&c| c == 1));
        // The same view keeps the epoch; a smaller one bumps it.
        let same = Topology::build(&view(3), Some(&t.map), &me).unwrap();
        assert_eq!(same.map.epoch(), t.map.epoch());
        let fewer = Topology::build(&view(2), Some(&t.map), &me).unwrap();
        assert_eq!(fewer.map.epoch(), t.map.epoch() + 1);
        assert_eq!(fewer.members.len(), 2);
    }
}
