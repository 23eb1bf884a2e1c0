//! shoal-cluster: how the 16384 Redis slots map onto the live nodes (slot, placement, map) and who the nodes are (membership), and how nodes call each other (transport). It moves opaque bytes and never parses a command or a value.
//!
//! The slot map side is pure and network-free; `transport` (tonic) and
//! `gossip` (chitchat over UDP) are the network edges: the same view gives
//! the same [`SlotMap`] on every node, which is what lets any node route any
//! key without asking another.

pub mod error;
pub mod gossip;
pub mod map;
pub mod membership;
pub mod placement;
pub mod slot;
pub mod transport;

pub use error::ClusterError;
pub use gossip::{FailureDetection, GossipConfig, GossipMembership};
pub use map::{MAX_NODES, Role, SlotMap, SlotMove, SlotRange};
pub use membership::{
    Callback, Member, Membership, MemoryMembership, NodeId, SubscriptionId, View,
};
pub use placement::{Assignment, Placement, Rendezvous, owner_count};
pub use slot::{SLOTS, hash_tag, key_slot};
pub use transport::{
    ForwardCall, ForwardOutcome, PeerHandler, PeerInfo, PeerPool, PeerStats, PoolConfig,
    ServeConfig, serve,
};
