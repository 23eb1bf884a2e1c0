//! Cluster commands: CLUSTER (INFO MYID MYSHARDID NODES SLOTS SHARDS KEYSLOT
//! COUNTKEYSINSLOT GETKEYSINSLOT LINKS REPLICAS COUNT-FAILURE-REPORTS HELP),
//! READONLY, READWRITE, ASKING, and the key -> hash slot function.
//!
//! Standalone (`cluster-enabled no`, the default) every one of them answers
//! Redis's `-ERR This instance has cluster support disabled`, after the
//! arity check, exactly as redis-server. In cluster mode a node without
//! peers is a one-node cluster that owns all 16384 slots; the replies have
//! Redis 7.0.15's shapes (client libraries parse them), with the address the
//! node is reached at. Redis's slot-administration subcommands (ADDSLOTS,
//! SETSLOT, MEET, FAILOVER ...) are in the table with Redis's arities so
//! standalone answers stay Redis's, but in cluster mode they are refused:
//! shoal places slots on nodes itself.
//!
//! [`key_slot`] is shoal-cluster's; COUNTKEYSINSLOT/GETKEYSINSLOT scan db 0
//! (O(keys); no per-slot index yet). With persistence on they see the keys in memory only.

use super::{CmdError, CmdResult, CommandSpec, Ctx, arg_i64, container_help, flags::*};
use crate::cmd;
use crate::protocol::Args;
use std::fmt::Write as _;
use std::net::IpAddr;

/// Number of hash slots, as Redis Cluster.
pub const SLOTS: u16 = shoal_cluster::SLOTS;

/// The slot of a key and the part of it that is hashed: shoal-cluster's,
/// the one definition every layer uses.
pub use shoal_cluster::{hash_tag, key_slot};

/// This node's identity in cluster mode (set at start; see `node.rs`).
#[derive(Debug, Clone)]
pub struct Myself {
    /// 40 lowercase hex digits: `cluster-node-id`, else the persisted id,
    /// else generated at start.
    pub node_id: String,
    /// The shard id (Redis 7.2's MYSHARDID), derived from the node id so it
    /// is as stable as the node id.
    pub shard_id: String,
}

impl Myself {
    /// Picks the node id: the configured one, else the persisted one, else a new one.
    pub fn resolve(configured: &str, persisted: Option<&str>) -> Self {
        let node_id = if !configured.is_empty() {
            if let Some(p) = persisted
                && p != configured
            {
                tracing::warn!(
                    configured,
                    persisted = p,
                    "cluster-node-id differs from the id persisted in the data directory; using cluster-node-id"
                );
            }
            configured.to_string()
        } else if let Some(p) = persisted {
            p.to_string()
        } else {
            crate::node::random_hex(40)
        };
        let shard_id = derive_shard_id(&node_id);
        Myself { node_id, shard_id }
    }
}

/// 40 hex digits from the node id (xxh3 with three seeds), so a restarted
/// node keeps its shard id without storing it.
fn derive_shard_id(node_id: &str) -> String {
    let mut s = String::with_capacity(48);
    for seed in 1..=3u64 {
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(node_id.as_bytes(), seed);
        let _ = write!(s, "{h:016x}");
    }
    s.truncate(40);
    s
}

/// Redis's error for cluster commands on a standalone node.
fn disabled() -> CmdError {
    CmdError::msg("This instance has cluster support disabled")
}

/// This node's identity, or the standalone error.
fn myself<'a>(ctx: &Ctx<'a>) -> Result<&'a Myself, CmdError> {
    ctx.shared.cluster().ok_or_else(disabled)
}

/// Where clients reach this node: `cluster-announce-ip`, else the bound
/// address, else (bound to any address) the address this client connected to.
/// Returns (ip, client port, cluster bus port). The bus port is Redis's
/// default (port + 10000, 0 when that does not fit): no bus listens yet.
fn endpoint(ctx: &Ctx<'_>) -> (String, u16, u16) {
    let announce = ctx.shared.config.read().cluster_announce_ip.clone();
    let bound = ctx.shared.listening.lock().first().copied();
    let port = bound.map_or(ctx.conn.laddr.port(), |a| a.port());
    let ip = if !announce.is_empty() {
        announce
    } else {
        let ip: IpAddr = match bound {
            Some(a) if !a.ip().is_unspecified() => a.ip(),
            _ => ctx.conn.laddr.ip(),
        };
        ip.to_canonical().to_string()
    };
    (ip, port, bus_port(port))
}

const NONE: &[&str] = &[];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        subcommands: CLUSTER_SUBS,
        ..cmd!("cluster", -2, 0, (0, 0, 0), NONE, "cluster", "3.0.0", "A container for Redis Cluster commands.", cluster_container)
    },
    cmd!("readonly", 1, LOADING | STALE | FAST, (0, 0, 0), &["connection"], "cluster", "3.0.0", "Enables read queries for a connection to a cluster replica node.", readonly),
    cmd!("readwrite", 1, LOADING | STALE | FAST, (0, 0, 0), &["connection"], "cluster", "3.0.0", "Disables read queries for a connection to a cluster replica node.", readwrite),
    cmd!("asking", 1, FAST, (0, 0, 0), &["connection"], "cluster", "3.0.0", "Sent by cluster clients after an -ASK redirect.", asking),
];

/// Flags of Redis's slot-administration subcommands (its `no_async_loading` has no equivalent here).
const ADMIN_STALE: u32 = ADMIN | STALE;

#[rustfmt::skip]
static CLUSTER_SUBS: &[CommandSpec] = &[
    cmd!("cluster|info", 2, STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Returns information about the state of a node.", cluster_info),
    cmd!("cluster|myid", 2, STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Returns the ID of a node.", cluster_myid),
    cmd!("cluster|myshardid", 2, STALE, (0, 0, 0), NONE, "cluster", "7.2.0", "Returns the shard ID of a node.", cluster_myshardid),
    cmd!("cluster|nodes", 2, STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Returns the cluster configuration for a node.", cluster_nodes),
    cmd!("cluster|slots", 2, STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Returns the mapping of cluster slots to nodes.", cluster_slots),
    cmd!("cluster|shards", 2, STALE, (0, 0, 0), NONE, "cluster", "7.0.0", "Returns the mapping of cluster slots to shards.", cluster_shards),
    cmd!("cluster|links", 2, STALE, (0, 0, 0), NONE, "cluster", "7.0.0", "Returns a list of all TCP links to and from peer nodes.", cluster_links),
    cmd!("cluster|keyslot", 3, STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Returns the hash slot for a key.", cluster_keyslot),
    cmd!("cluster|countkeysinslot", 3, STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Returns the number of keys in a hash slot.", cluster_countkeysinslot),
    cmd!("cluster|getkeysinslot", 4, STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Returns the key names in a hash slot.", cluster_getkeysinslot),
    cmd!("cluster|replicas", 3, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "5.0.0", "Lists the replica nodes of a master node.", cluster_replicas),
    cmd!("cluster|slaves", 3, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Lists the replica nodes of a master node.", cluster_replicas),
    cmd!("cluster|count-failure-reports", 3, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Returns the number of active failure reports active for a node.", cluster_count_failure_reports),
    // Slot administration: shoal places slots itself.
    cmd!("cluster|addslots", -3, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Assigns new hash slots to a node.", cluster_unsupported),
    cmd!("cluster|addslotsrange", -4, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "7.0.0", "Assigns new hash slot ranges to a node.", cluster_unsupported),
    cmd!("cluster|delslots", -3, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Sets hash slots as unbound for a node.", cluster_unsupported),
    cmd!("cluster|delslotsrange", -4, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "7.0.0", "Sets hash slot ranges as unbound for a node.", cluster_unsupported),
    cmd!("cluster|flushslots", 2, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Deletes all slots information from a node.", cluster_unsupported),
    cmd!("cluster|setslot", -4, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Binds a hash slot to a node.", cluster_unsupported),
    cmd!("cluster|meet", -4, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Forces a node to handshake with another node.", cluster_unsupported),
    cmd!("cluster|forget", 3, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Removes a node from the nodes table.", cluster_unsupported),
    cmd!("cluster|replicate", 3, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Configure a node as replica of a master node.", cluster_unsupported),
    cmd!("cluster|failover", -2, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Forces a replica to perform a manual failover of its master.", cluster_unsupported),
    cmd!("cluster|reset", -2, ADMIN | NOSCRIPT | STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Resets a node.", cluster_unsupported),
    cmd!("cluster|saveconfig", 2, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Forces a node to save the cluster configuration to disk.", cluster_unsupported),
    cmd!("cluster|set-config-epoch", 3, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Sets the configuration epoch for a new node.", cluster_unsupported),
    cmd!("cluster|bumpepoch", 2, ADMIN_STALE, (0, 0, 0), NONE, "cluster", "3.0.0", "Advances the cluster config epoch.", cluster_unsupported),
];

/// CLUSTER HELP: Redis 7's lines for the subcommands shoal answers.
const HELP: &[&str] = &[
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "MYSHARDID",
    "    Return the node's shard id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
];

fn cluster_container(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    if super::is(args.get(1), "help") {
        // Arity first (`cluster|help` takes no arguments), then the mode, as Redis.
        if args.len() != 2 {
            return Err(CmdError::Arity("cluster|help".into()));
        }
        myself(ctx)?;
        return container_help(ctx.out, args, HELP);
    }
    Err(super::unknown_sub(args))
}

/// The multi-node topology (gossip on), or `None` for a one-node cluster.
fn topology(ctx: &Ctx<'_>) -> Option<std::sync::Arc<crate::topology::Topology>> {
    ctx.shared.topology.load_full()
}

/// Redis's bus port for a client port (port + 10000, 0 when that does not fit).
fn bus_port(port: u16) -> u16 {
    port.checked_add(10000).unwrap_or(0)
}

fn cluster_info(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    myself(ctx)?;
    let (known, epoch) = match topology(ctx) {
        Some(t) => (t.map.nodes().len().to_string(), t.map.epoch().to_string()),
        None => ("1".to_string(), "0".to_string()),
    };
    let mut s = String::with_capacity(320);
    for (k, v) in [
        ("cluster_state", "ok"),
        ("cluster_slots_assigned", "16384"),
        ("cluster_slots_ok", "16384"),
        ("cluster_slots_pfail", "0"),
        ("cluster_slots_fail", "0"),
        ("cluster_known_nodes", known.as_str()),
        ("cluster_size", known.as_str()),
        ("cluster_current_epoch", epoch.as_str()),
        ("cluster_my_epoch", epoch.as_str()),
        ("cluster_stats_messages_sent", "0"),
        ("cluster_stats_messages_received", "0"),
        ("total_cluster_links_buffer_limit_exceeded", "0"),
    ] {
        let _ = write!(s, "{k}:{v}\r\n");
    }
    ctx.out.verbatim(s.as_bytes());
    Ok(())
}

fn cluster_myid(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let me = myself(ctx)?;
    ctx.out.bulk(me.node_id.as_bytes());
    Ok(())
}

fn cluster_myshardid(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let me = myself(ctx)?;
    ctx.out.bulk(me.shard_id.as_bytes());
    Ok(())
}

fn cluster_nodes(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let me = myself(ctx)?;
    if let Some(t) = topology(ctx) {
        let epoch = t.map.epoch();
        let mut out = String::with_capacity(128 * t.members.len());
        for m in &t.members {
            let flags = if *m.id() == t.me {
                "myself,master"
            } else {
                "master"
            };
            let _ = write!(
                out,
                "{} {}:{}@{} {flags} - 0 0 {epoch} connected",
                m.id(),
                m.host(),
                m.port(),
                bus_port(m.port())
            );
            for (a, b) in t.ranges_of(m.id()) {
                if a == b {
                    let _ = write!(out, " {a}");
                } else {
                    let _ = write!(out, " {a}-{b}");
                }
            }
            out.push('\n');
        }
        ctx.out.verbatim(out.as_bytes());
        return Ok(());
    }
    let (ip, port, bus) = endpoint(ctx);
    // <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>...
    let line = format!(
        "{} {ip}:{port}@{bus} myself,master - 0 0 0 connected 0-{}\n",
        me.node_id,
        SLOTS - 1
    );
    ctx.out.verbatim(line.as_bytes());
    Ok(())
}

fn cluster_slots(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let me = myself(ctx)?;
    if let Some(t) = topology(ctx) {
        let ranges = t.map.ranges();
        let out = &mut *ctx.out;
        out.array(ranges.len());
        for r in &ranges {
            out.array(2 + r.owners.len());
            out.int(i64::from(r.start));
            out.int(i64::from(r.end));
            for id in &r.owners {
                let (host, port) = t.member(id).map_or(("", 0), |m| (m.host(), m.port()));
                out.array(4);
                out.bulk(host.as_bytes());
                out.int(i64::from(port));
                out.bulk(id.as_str().as_bytes());
                out.map(0);
            }
        }
        return Ok(());
    }
    let (ip, port, _) = endpoint(ctx);
    let out = &mut *ctx.out;
    out.array(1);
    out.array(3);
    out.int(0);
    out.int(i64::from(SLOTS - 1));
    // The master: ip, port, id, metadata (hostname when announced; none here).
    out.array(4);
    out.bulk(ip.as_bytes());
    out.int(i64::from(port));
    out.bulk(me.node_id.as_bytes());
    out.map(0);
    Ok(())
}

fn cluster_shards(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    let me = myself(ctx)?;
    if let Some(t) = topology(ctx) {
        let out = &mut *ctx.out;
        out.array(t.members.len());
        for m in &t.members {
            let ranges = t.ranges_of(m.id());
            out.map(2);
            out.bulk(b"slots");
            out.array(2 * ranges.len());
            for (a, b) in ranges {
                out.int(i64::from(a));
                out.int(i64::from(b));
            }
            out.bulk(b"nodes");
            out.array(1);
            out.map(7);
            out.bulk(b"id");
            out.bulk(m.id().as_str().as_bytes());
            out.bulk(b"port");
            out.int(i64::from(m.port()));
            out.bulk(b"ip");
            out.bulk(m.host().as_bytes());
            out.bulk(b"endpoint");
            out.bulk(m.host().as_bytes());
            out.bulk(b"role");
            out.bulk(b"master");
            out.bulk(b"replication-offset");
            out.int(0);
            out.bulk(b"health");
            out.bulk(b"online");
        }
        return Ok(());
    }
    let (ip, port, _) = endpoint(ctx);
    let out = &mut *ctx.out;
    out.array(1);
    out.map(2);
    out.bulk(b"slots");
    out.array(2);
    out.int(0);
    out.int(i64::from(SLOTS - 1));
    out.bulk(b"nodes");
    out.array(1);
    out.map(7);
    out.bulk(b"id");
    out.bulk(me.node_id.as_bytes());
    out.bulk(b"port");
    out.int(i64::from(port));
    out.bulk(b"ip");
    out.bulk(ip.as_bytes());
    out.bulk(b"endpoint");
    out.bulk(ip.as_bytes());
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"replication-offset");
    out.int(0);
    out.bulk(b"health");
    out.bulk(b"online");
    Ok(())
}

fn cluster_links(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    myself(ctx)?;
    // No peers, no links.
    ctx.out.array(0);
    Ok(())
}

fn cluster_keyslot(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    myself(ctx)?;
    ctx.out.int(i64::from(key_slot(args.get(2))));
    Ok(())
}

/// A slot argument in 0..16384, or `err`.
fn arg_slot(a: &[u8], err: &'static str) -> Result<u16, CmdError> {
    u16::try_from(arg_i64(a)?)
        .ok()
        .filter(|s| *s < SLOTS)
        .ok_or_else(|| CmdError::msg(err))
}

/// Calls `f` with every live key of db 0 in `slot` until it returns false.
/// A scan of the whole database: there is no per-slot index yet.
fn for_keys_in_slot(ctx: &Ctx<'_>, slot: u16, mut f: impl FnMut(&[u8]) -> bool) {
    let db = ctx.shared.store.db(0);
    let mut more = true;
    for i in 0..db.shard_count() {
        if !more {
            break;
        }
        db.lock_shard(i).for_each(ctx.now, |e| {
            let k = e.key.as_slice();
            if more && key_slot(k) == slot {
                more = f(k);
            }
        });
    }
}

fn cluster_countkeysinslot(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    myself(ctx)?;
    let slot = arg_slot(args.get(2), "Invalid slot")?;
    let mut n = 0i64;
    for_keys_in_slot(ctx, slot, |_| {
        n += 1;
        true
    });
    ctx.out.int(n);
    Ok(())
}

fn cluster_getkeysinslot(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    myself(ctx)?;
    let slot = arg_i64(args.get(2))?;
    let max = arg_i64(args.get(3))?;
    let slot = u16::try_from(slot)
        .ok()
        .filter(|s| *s < SLOTS && max >= 0)
        .ok_or_else(|| CmdError::msg("Invalid slot or number of keys"))?;
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let mut keys: Vec<Vec<u8>> = Vec::new();
    if max > 0 {
        for_keys_in_slot(ctx, slot, |k| {
            keys.push(k.to_vec());
            keys.len() < max
        });
    }
    ctx.out.bulks(keys.iter().map(Vec::as_slice));
    Ok(())
}

/// The node named by a node-id argument: only ourselves is known.
fn known_node(me: &Myself, arg: &[u8]) -> Result<(), CmdError> {
    if arg == me.node_id.as_bytes() {
        Ok(())
    } else {
        Err(CmdError::msg(format!(
            "Unknown node {}",
            String::from_utf8_lossy(arg)
        )))
    }
}

fn cluster_replicas(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let me = myself(ctx)?;
    known_node(me, args.get(2))?;
    ctx.out.array(0);
    Ok(())
}

fn cluster_count_failure_reports(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    let me = myself(ctx)?;
    known_node(me, args.get(2))?;
    ctx.out.int(0);
    Ok(())
}

fn cluster_unsupported(ctx: &mut Ctx<'_>, args: &Args<'_>) -> CmdResult {
    myself(ctx)?;
    Err(CmdError::msg(format!(
        "CLUSTER {} is not supported: shoal places slots on its nodes itself",
        String::from_utf8_lossy(args.get(1)).to_ascii_uppercase()
    )))
}

fn readonly(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    myself(ctx)?;
    ctx.conn.readonly = true;
    ctx.out.ok();
    Ok(())
}

fn readwrite(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    myself(ctx)?;
    ctx.conn.readonly = false;
    ctx.out.ok();
    Ok(())
}

/// ASKING: accepted; with one node no slot is ever being migrated, so
/// there is no -ASK redirect for it to follow.
fn asking(ctx: &mut Ctx<'_>, _args: &Args<'_>) -> CmdResult {
    myself(ctx)?;
    ctx.out.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Answers of redis-server 7.0.15's CLUSTER KEYSLOT.
        for (key, slot) in [
            (&b"foo"[..], 12182),
            (b"{user1}.a", 8106),
            (b"", 0),
            (b"{}", 15257),
            (b"{}a", 10875),
            (b"a{}", 6082),
            (b"{a}{b}", 15495),
            (b"{{a}}", 10276),
            (b"123456789", 12739),
        ] {
            assert_eq!(key_slot(key), slot, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn hash_tags() {
        assert_eq!(hash_tag(b"{user}:1"), b"user");
        assert_eq!(hash_tag(b"a{b}c{d}"), b"b");
        assert_eq!(hash_tag(b"{}x"), b"{}x");
        assert_eq!(hash_tag(b"{x"), b"{x");
        assert_eq!(hash_tag(b"x}{y}"), b"y");
        assert_eq!(key_slot(b"{user}:1"), key_slot(b"{user}:2"));
        assert_eq!(key_slot(b"{user}:1"), key_slot(b"user"));
    }

    #[test]
    fn node_ids() {
        let id = "0123456789abcdef0123456789abcdef01234567";
        let m = Myself::resolve(id, None);
        assert_eq!(m.node_id, id);
        assert_eq!(m.shard_id.len(), 40);
        assert_eq!(m.shard_id, Myself::resolve(id, None).shard_id);
        let p = "fedcba9876543210fedcba9876543210fedcba98";
        assert_eq!(Myself::resolve("", Some(p)).node_id, p);
        assert_eq!(Myself::resolve(id, Some(p)).node_id, id);
        let g = Myself::resolve("", None);
        assert_eq!(g.node_id.len(), 40);
        assert!(g.node_id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(g.node_id, Myself::resolve("", None).node_id);
    }
}
