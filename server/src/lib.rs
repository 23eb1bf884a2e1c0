//! shoal: a sharded, replicated cache and key-value server that speaks the Redis protocol.
//!
//! The crate is both the server (`shoal-server` binary) and the engine an
//! application can embed. Layers, from the inside out:
//! - [`store`]: the keyspace engine (no network, no RESP, injectable clock);
//! - [`protocol`]: RESP request parser and RESP2/RESP3 reply encoder;
//! - [`command`]: the command table and one module per command family;
//! - [`exec`]: the single execution path every command goes through;
//! - [`net`]: listeners and the per-connection loop;
//! - [`node`]: wiring, background tasks and shutdown; [`config`]: settings.

pub mod blocking;
pub mod command;
pub mod config;
pub mod exec;
pub mod net;
pub mod node;
pub mod notify;
pub mod persist;
pub mod protocol;
pub mod pubsub;
pub mod store;
pub mod topology;
pub mod util;

pub use config::Config;
pub use node::{Node, NodeHandle};

/// Quotes bytes like Redis's `sdscatrepr` (MONITOR, CLIENT LIST, errors).
pub fn util_repr(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &c in s {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('"');
    out
}
