//! Networking: listeners (accept, connection limit, protected mode) and the
//! per-connection loop (read, parse, execute in batches, write once).

pub mod client;
pub mod connection;
pub mod listener;
