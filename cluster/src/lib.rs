//! shoal-cluster: how the 16384 Redis slots map onto the live nodes, and (to come) membership and the peer transport.
