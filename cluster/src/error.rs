//! `ClusterError`: everything the cluster layer can refuse, each variant carrying the value that was wrong so a log line alone explains it.

use std::time::Duration;

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

    /// A peer call failed (peer transport). `code` and `message` are the
    /// last attempt's gRPC status (the message includes the transport error
    /// chain, e.g. "connection refused"); `attempts` counts the calls sent,
    /// retries included.
    #[error(
        "peer {peer} at {addr}: {call} failed after {attempts} attempt(s): {code:?}: {message}"
    )]
    PeerCall {
        peer: NodeId,
        addr: String,
        call: &'static str,
        attempts: u32,
        code: tonic::Code,
        message: String,
    },

    /// The peer's circuit breaker is open: the call was not sent (no
    /// connection attempt). `failures` is the consecutive failures that
    /// opened it; `retry_in` is the time left until a probe call is allowed.
    #[error(
        "peer {peer} at {addr}: {call} not sent, circuit open after {failures} consecutive failures (probe in {retry_in:?})"
    )]
    CircuitOpen {
        peer: NodeId,
        addr: String,
        call: &'static str,
        failures: u32,
        retry_in: Duration,
    },

    /// The node answering at a peer's address is another node (the address
    /// was reused, e.g. by a rescheduled pod).
    #[error("peer {peer} at {addr}: answered by node {answered:?}")]
    PeerIdentityMismatch {
        peer: NodeId,
        addr: String,
        answered: String,
    },

    /// A peer sent a reply that breaks the protocol (e.g. a Forward reply
    /// without a status, or a chunk after the final one).
    #[error("peer {peer} at {addr}: malformed {call} reply: {reason}")]
    PeerProtocol {
        peer: NodeId,
        addr: String,
        call: &'static str,
        reason: String,
    },

    /// A PullSlot stream sent nothing for `waited`. Resume from `cursor`.
    #[error("peer {peer} at {addr}: slot {slot} stream stalled for {waited:?} at cursor {cursor}")]
    SlotStreamStalled {
        peer: NodeId,
        addr: String,
        slot: u16,
        cursor: u64,
        waited: Duration,
    },

    /// A PullSlot stream ended before its final chunk, or with an error
    /// status (`code` is `Ok` when it just ended). Resume from `cursor`.
    #[error(
        "peer {peer} at {addr}: slot {slot} stream broken at cursor {cursor}: {code:?}: {message}"
    )]
    SlotStreamBroken {
        peer: NodeId,
        addr: String,
        slot: u16,
        cursor: u64,
        code: tonic::Code,
        message: String,
    },

    /// A slot number outside 0..16384.
    #[error("slot {slot} out of range (0..16384)")]
    SlotOutOfRange { slot: u32 },

    /// The peer server could not run (listener or tonic transport error).
    #[error("peer server on {addr}: {reason}")]
    Serve { addr: String, reason: String },
    /// A gossip setting that cannot work (`field` names it in
    /// `GossipConfig`).
    #[error("invalid gossip setting {field}: {reason}")]
    InvalidGossipConfig { field: &'static str, reason: String },

    /// The gossip layer failed: its socket could not be opened, or chitchat
    /// refused to start. chitchat reports `anyhow` errors; their text is kept.
    #[error("gossip failed to {op}: {reason}")]
    Gossip { op: &'static str, reason: String },
}
