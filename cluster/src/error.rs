//! `ClusterError`: everything the cluster layer can refuse, each variant carrying the value that was wrong so a log line alone explains it.

use crate::membership::NodeId;

/// An error of the cluster layer. Variants carry the offending input (and,
/// where it helps, what was expected) rather than a bare message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// A node id that cannot be used: ids appear in CLUSTER NODES lines and
    /// in -MOVED/-ASK replies, so they must be short printable tokens.
    #[error("invalid node id {id:?}: {reason}")]
    InvalidNodeId { id: String, reason: &'static str },

    /// An advertised address that is not `host:port` with a usable port.
    #[error("invalid address {addr:?}: {reason}")]
    InvalidAddress { addr: String, reason: &'static str },

    /// A slot map was asked for with no live node to own the slots.
    #[error("no live nodes: a slot map needs at least one node")]
    NoLiveNodes,

    /// More nodes than a slot map can index (owners are stored as `u16`).
    #[error("too many nodes for a slot map: {count} (at most {max})")]
    TooManyNodes { count: usize, max: usize },

    /// A `Placement` implementation broke its contract for one slot. The map
    /// is refused rather than served, because every node must agree on it.
    #[error("placement {placement} returned bad owners for slot {slot}: {reason}")]
    BadPlacement {
        placement: &'static str,
        slot: u16,
        reason: String,
    },

    /// A membership change named a node the view does not contain.
    #[error("unknown node {id}")]
    UnknownNode { id: NodeId },

    /// A gossip setting that cannot work (`field` names it in
    /// `GossipConfig`).
    #[error("invalid gossip setting {field}: {reason}")]
    InvalidGossipConfig { field: &'static str, reason: String },

    /// The gossip layer failed: its socket could not be opened, or chitchat
    /// refused to start. chitchat reports `anyhow` errors; their text is kept.
    #[error("gossip failed to {op}: {reason}")]
    Gossip { op: &'static str, reason: String },
}
