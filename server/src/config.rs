//! Configuration: one struct, one parameter table that drives command-line
//! flags, the config file, environment variables and CONFIG GET/SET.
//!
//! Sources, later ones winning: built-in defaults, the config file (Redis's
//! `name value` format), `SHOAL_<NAME>` environment variables, `--name value`
//! flags. Every value is validated when set; a bad one fails start-up with a
//! message naming the parameter, the source and what was expected.

use crate::util::parse_memory;
use std::fmt::Write as _;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Every setting of a node, with Redis's names and defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses to listen on (`bind`); a leading '-' marks one that may fail.
    pub bind: Vec<String>,
    /// TCP port for clients; 0 picks a free port (tests).
    pub port: u16,
    /// Number of logical databases.
    pub databases: usize,
    /// Maximum simultaneous clients; further connections get an error and are closed.
    pub maxclients: usize,
    /// Close a client idle for this many seconds (0 = never).
    pub timeout: u64,
    /// TCP keepalive interval in seconds (0 = off).
    pub tcp_keepalive: u64,
    /// Largest bulk string a client may send.
    pub proto_max_bulk_len: u64,
    /// Largest unparsed input buffered per client before it is disconnected.
    pub client_query_buffer_limit: u64,
    /// Password of the default user (empty = no AUTH needed).
    pub requirepass: String,
    /// Refuse non-loopback clients when no password is set.
    pub protected_mode: bool,
    /// Background task frequency (active expiry cycles per second).
    pub hz: u64,
    /// Active expiry effort 1..10 (more keys sampled, more CPU per cycle).
    pub active_expire_effort: u64,
    /// Log level: debug, verbose, notice, warning, nothing.
    pub loglevel: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// Tokio worker threads (0 = one per core).
    pub worker_threads: usize,
    /// Shards per database (lock granularity).
    pub keyspace_shards: usize,
    /// Commands slower than this many microseconds go to the SLOWLOG (-1 = off).
    pub slowlog_log_slower_than: i64,
    /// Entries the SLOWLOG keeps.
    pub slowlog_max_len: u64,
    /// Memory limit in bytes for the keyspace (0 = none); past it keys are
    /// evicted by `maxmemory-policy`, or writes refused with OOM.
    pub maxmemory: u64,
    /// Eviction policy: noeviction, allkeys-lru/lfu/random, volatile-lru/lfu/random/ttl.
    pub maxmemory_policy: String,
    /// LFU counter growth: hits needed to saturate grow with this factor.
    pub lfu_log_factor: u32,
    /// Minutes after which an idle key's LFU counter is decremented (0 = never).
    pub lfu_decay_time: u32,
    /// Keys sampled per eviction.
    pub maxmemory_samples: u64,
    /// Working directory for data files (the persistence backend's data,
    /// its format marker and the node id live here).
    pub dir: String,
    /// Storage backend: none (a pure cache), sled or redb.
    pub persistence: crate::persist::Kind,
    /// When a write is durable: always (before its reply), everysec, no (backend's choice).
    pub appendfsync: crate::persist::Fsync,
    /// Microseconds to pause after each key loaded at start (Redis's
    /// key-load-delay, for testing LOADING; 0 = none).
    pub key_load_delay: u64,
    /// Hashes with more fields than this leave the packed (listpack) encoding.
    pub hash_max_listpack_entries: usize,
    /// Hashes with a field or value longer than this leave the packed encoding.
    pub hash_max_listpack_value: usize,
    /// Sorted sets with more members than this become a skiplist.
    pub zset_max_listpack_entries: usize,
    /// Sorted sets with a member longer than this become a skiplist.
    pub zset_max_listpack_value: usize,
    /// Sets of integers up to this many members stay an intset.
    pub set_max_intset_entries: usize,
    /// Lists: positive = entries per packed node, negative = node size class (-2 = 8 KiB).
    pub list_max_listpack_size: i64,
    /// Keyspace notification classes (`notify-keyspace-events` letters, see [`crate::notify`]).
    pub notify_keyspace_events: u32,
    /// `client-output-buffer-limit`: per class (normal, replica, pubsub) hard
    /// bytes, soft bytes, soft seconds.
    pub client_output_buffer_limit: [OutputLimit; 3],
    /// Cluster mode (`cluster-enabled yes`): db 0 only, CLUSTER commands
    /// answer the topology; without peers the node owns all 16384 slots.
    pub cluster_enabled: bool,
    /// The cluster node id (40 lowercase hex digits); empty = the persisted
    /// id when persistence is on, otherwise one generated at start.
    pub cluster_node_id: String,
    /// The IP address CLUSTER SLOTS/SHARDS/NODES announce (empty = the bound
    /// address, or the address the client connected to when bound to any).
    pub cluster_announce_ip: String,
    /// Gossip addresses (`host:port`) of nodes to join (`cluster-seeds`,
    /// comma-separated). Non-empty (or `cluster-gossip-port` set): the node
    /// gossips and forms a cluster with its peers.
    pub cluster_seeds: Vec<String>,
    /// The gossip UDP port (`cluster-gossip-port`); `None` = client port +
    /// 10000; 0 = any free port (tests).
    pub cluster_gossip_port: Option<u16>,
}

/// One class of `client-output-buffer-limit` (0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

/// Class names of `client-output-buffer-limit`, in index order.
pub const OUTPUT_CLASSES: [&str; 3] = ["normal", "replica", "pubsub"];

fn format_output_limits(l: &[OutputLimit; 3]) -> String {
    let names = ["normal", "slave", "pubsub"];
    let mut s = String::new();
    for (i, c) in l.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{} {} {} {}", names[i], c.hard, c.soft, c.soft_secs);
    }
    s
}

fn parse_output_limits(cur: &[OutputLimit; 3], v: &str) -> Result<[OutputLimit; 3], String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut out = *cur;
    for w in words.chunks(4) {
        let class = match w[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "slave" | "replica" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into());
            }
        };
        let hard = parse_memory(w[1]);
        let soft = parse_memory(w[2]);
        let secs = w[3].parse::<u64>().ok();
        match (hard, soft, secs) {
            (Some(hard), Some(soft), Some(soft_secs)) => {
                out[class] = OutputLimit {
                    hard,
                    soft,
                    soft_secs,
                }
            }
            _ => {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .into(),
                );
            }
        }
    }
    Ok(out)
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["127.0.0.1".into()],
            port: 6379,
            databases: 16,
            maxclients: 10000,
            timeout: 0,
            tcp_keepalive: 300,
            proto_max_bulk_len: 512 * 1024 * 1024,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            requirepass: String::new(),
            protected_mode: true,
            hz: 10,
            active_expire_effort: 1,
            loglevel: "notice".into(),
            log_format: LogFormat::Human,
            worker_threads: 0,
            keyspace_shards: 64,
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            dir: ".".into(),
            persistence: crate::persist::Kind::None,
            appendfsync: crate::persist::Fsync::EverySec,
            key_load_delay: 0,
            hash_max_listpack_entries: 128,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            set_max_intset_entries: 512,
            list_max_listpack_size: -2,
            notify_keyspace_events: 0,
            client_output_buffer_limit: [
                OutputLimit::default(),
                OutputLimit {
                    hard: 256 << 20,
                    soft: 64 << 20,
                    soft_secs: 60,
                },
                OutputLimit {
                    hard: 32 << 20,
                    soft: 8 << 20,
                    soft_secs: 60,
                },
            ],
            cluster_enabled: false,
            cluster_node_id: String::new(),
            cluster_announce_ip: String::new(),
            cluster_seeds: Vec::new(),
            cluster_gossip_port: None,
        }
    }
}

/// A configuration error, with the parameter and the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown parameter '{0}'")]
    Unknown(String),
    #[error("invalid value '{value}' for '{name}': {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: String,
    },
    #[error("'{0}' cannot be changed while the server runs")]
    Immutable(String),
    #[error("{source_name}: {error}")]
    At {
        source_name: String,
        error: Box<ConfigError>,
    },
    #[error("cannot read config file '{path}': {reason}")]
    File { path: String, reason: String },
}

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// One parameter: its Redis name, whether CONFIG SET may change it, and accessors.
pub struct Param {
    pub name: &'static str,
    pub mutable: bool,
    pub doc: &'static str,
    pub get: Getter,
    pub set: Setter,
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

fn parse_num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())
}

/// Parses an integer and checks Redis's bounds, so "-1" for an unsigned
/// parameter gets the range message, as Redis answers, not a parse error.
fn int_in(v: &str, lo: i64, hi: i64) -> Result<i64, String> {
    in_range(parse_num::<i64>(v)?, lo, hi)
}

fn parse_mem(v: &str) -> Result<u64, String> {
    parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())
}

fn in_range<T: PartialOrd + std::fmt::Display>(v: T, lo: T, hi: T) -> Result<T, String> {
    if v < lo || v > hi {
        Err(format!("argument must be between {lo} and {hi} inclusive"))
    } else {
        Ok(v)
    }
}

/// In the order Redis lists them in its CONFIG SET error.
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];

/// The parameter table. Order is the order CONFIG GET * answers in.
pub static PARAMS: &[Param] = &[
    Param {
        name: "bind",
        mutable: false,
        doc: "addresses to listen on, space separated",
        get: |c| c.bind.join(" "),
        set: |c, v| {
            let list: Vec<String> = v.split_whitespace().map(String::from).collect();
            if list.is_empty() {
                return Err("at least one address is needed".into());
            }
            c.bind = list;
            Ok(())
        },
    },
    Param {
        name: "port",
        mutable: false,
        doc: "TCP port for clients (0 = any free port)",
        get: |c| c.port.to_string(),
        set: |c, v| {
            c.port = parse_num::<u16>(v)?;
            Ok(())
        },
    },
    Param {
        name: "databases",
        mutable: false,
        doc: "number of logical databases",
        get: |c| c.databases.to_string(),
        set: |c, v| {
            c.databases = int_in(v, 1, 1_000_000)? as usize;
            Ok(())
        },
    },
    Param {
        name: "maxclients",
        mutable: true,
        doc: "maximum simultaneous client connections",
        get: |c| c.maxclients.to_string(),
        set: |c, v| {
            c.maxclients = int_in(v, 1, 1_000_000_000)? as usize;
            Ok(())
        },
    },
    Param {
        name: "timeout",
        mutable: true,
        doc: "close clients idle this many seconds (0 = never)",
        get: |c| c.timeout.to_string(),
        set: |c, v| {
            c.timeout = int_in(v, 0, i32::MAX as i64)? as u64;
            Ok(())
        },
    },
    Param {
        name: "tcp-keepalive",
        mutable: true,
        doc: "TCP keepalive interval in seconds (0 = off)",
        get: |c| c.tcp_keepalive.to_string(),
        set: |c, v| {
            c.tcp_keepalive = int_in(v, 0, i32::MAX as i64)? as u64;
            Ok(())
        },
    },
    Param {
        name: "proto-max-bulk-len",
        mutable: true,
        doc: "largest bulk string a client may send (bytes, k/m/g units)",
        get: |c| c.proto_max_bulk_len.to_string(),
        set: |c, v| {
            c.proto_max_bulk_len = in_range(parse_mem(v)?, 1024 * 1024, i64::MAX as u64)?;
            Ok(())
        },
    },
    Param {
        name: "client-query-buffer-limit",
        mutable: true,
        doc: "largest unparsed input buffered per client (bytes)",
        get: |c| c.client_query_buffer_limit.to_string(),
        set: |c, v| {
            c.client_query_buffer_limit = in_range(parse_mem(v)?, 1024 * 1024, i64::MAX as u64)?;
            Ok(())
        },
    },
    Param {
        name: "requirepass",
        mutable: true,
        doc: "password for AUTH (empty = none)",
        get: |c| c.requirepass.clone(),
        set: |c, v| {
            c.requirepass = v.to_string();
            Ok(())
        },
    },
    Param {
        name: "protected-mode",
        mutable: true,
        doc: "refuse non-loopback clients when no password is set",
        get: |c| yes_no(c.protected_mode),
        set: |c, v| {
            c.protected_mode = parse_bool(v)?;
            Ok(())
        },
    },
    Param {
        name: "hz",
        mutable: true,
        doc: "background cycles per second (active expiry)",
        get: |c| c.hz.to_string(),
        set: |c, v| {
            // Redis clamps hz into 1..500 rather than refusing.
            c.hz = parse_num::<i64>(v)?.clamp(1, 500) as u64;
            Ok(())
        },
    },
    Param {
        name: "active-expire-effort",
        mutable: true,
        doc: "active expiry effort, 1 (default) to 10",
        get: |c| c.active_expire_effort.to_string(),
        set: |c, v| {
            c.active_expire_effort = int_in(v, 1, 10)? as u64;
            Ok(())
        },
    },
    Param {
        name: "loglevel",
        mutable: true,
        doc: "debug, verbose, notice, warning or nothing",
        get: |c| c.loglevel.clone(),
        set: |c, v| {
            let l = v.to_ascii_lowercase();
            if !LOGLEVELS.contains(&l.as_str()) {
                return Err("argument(s) must be one of the following: debug, verbose, notice, warning, nothing".into());
            }
            c.loglevel = l;
            Ok(())
        },
    },
    Param {
        name: "log-format",
        mutable: false,
        doc: "human or json",
        get: |c| match c.log_format {
            LogFormat::Human => "human".into(),
            LogFormat::Json => "json".into(),
        },
        set: |c, v| {
            c.log_format = match v.to_ascii_lowercase().as_str() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                _ => return Err("argument must be 'human' or 'json'".into()),
            };
            Ok(())
        },
    },
    Param {
        name: "worker-threads",
        mutable: false,
        doc: "tokio worker threads (0 = one per core)",
        get: |c| c.worker_threads.to_string(),
        set: |c, v| {
            c.worker_threads = int_in(v, 0, 1024)? as usize;
            Ok(())
        },
    },
    Param {
        name: "keyspace-shards",
        mutable: false,
        doc: "lock shards per database",
        get: |c| c.keyspace_shards.to_string(),
        set: |c, v| {
            c.keyspace_shards = int_in(v, 1, 65536)? as usize;
            Ok(())
        },
    },
    Param {
        name: "slowlog-log-slower-than",
        mutable: true,
        doc: "log commands slower than this many microseconds (-1 = off)",
        get: |c| c.slowlog_log_slower_than.to_string(),
        set: |c, v| {
            c.slowlog_log_slower_than = in_range(parse_num::<i64>(v)?, -1, i64::MAX)?;
            Ok(())
        },
    },
    Param {
        name: "slowlog-max-len",
        mutable: true,
        doc: "entries kept in the SLOWLOG",
        get: |c| c.slowlog_max_len.to_string(),
        set: |c, v| {
            c.slowlog_max_len = int_in(v, 0, i64::MAX)? as u64;
            Ok(())
        },
    },
    Param {
        name: "maxmemory",
        mutable: true,
        doc: "memory limit in bytes, with k/kb/m/mb/g/gb units (0 = unlimited)",
        get: |c| c.maxmemory.to_string(),
        set: |c, v| {
            c.maxmemory = parse_mem(v)?;
            Ok(())
        },
    },
    Param {
        name: "maxmemory-policy",
        mutable: true,
        doc: "eviction policy (noeviction, allkeys-lru, ...)",
        get: |c| c.maxmemory_policy.clone(),
        set: |c, v| {
            let p = v.to_ascii_lowercase();
            if !POLICIES.contains(&p.as_str()) {
                return Err(format!(
                    "argument(s) must be one of the following: {}",
                    POLICIES.join(", ")
                ));
            }
            c.maxmemory_policy = p;
            Ok(())
        },
    },
    Param {
        name: "maxmemory-samples",
        mutable: true,
        doc: "keys sampled per eviction",
        get: |c| c.maxmemory_samples.to_string(),
        set: |c, v| {
            c.maxmemory_samples = int_in(v, 1, 64)? as u64;
            Ok(())
        },
    },
    Param {
        name: "dir",
        mutable: false,
        doc: "working directory for data files",
        get: |c| c.dir.clone(),
        set: |c, v| {
            c.dir = v.to_string();
            Ok(())
        },
    },
    Param {
        name: "persistence",
        mutable: false,
        doc: "storage backend: none (a cache), sled or redb (recommended for durability)",
        get: |c| c.persistence.name().into(),
        set: |c, v| {
            c.persistence = crate::persist::Kind::parse(v)
                .ok_or_else(|| "argument must be one of none, sled, redb".to_string())?;
            Ok(())
        },
    },
    Param {
        name: "appendfsync",
        mutable: true,
        doc: "durability: always (before the reply), everysec, no (left to the backend)",
        get: |c| c.appendfsync.name().into(),
        set: |c, v| {
            c.appendfsync = crate::persist::Fsync::parse(v)
                .ok_or_else(|| "argument must be one of always, everysec, no".to_string())?;
            Ok(())
        },
    },
    Param {
        name: "key-load-delay",
        mutable: true,
        doc: "microseconds to pause per key loaded at start (testing LOADING)",
        get: |c| c.key_load_delay.to_string(),
        set: |c, v| {
            c.key_load_delay = int_in(v, 0, 1_000_000)? as u64;
            Ok(())
        },
    },
    // shoal has no fork snapshots (RDB) and no AOF: `persistence` replaces
    // both. These answer truthfully for tools (redis-benchmark asks for them).
    Param {
        name: "save",
        mutable: true,
        doc: "RDB snapshot schedule; shoal has no snapshots, only \"\" is accepted (see persistence)",
        get: |_| String::new(),
        set: |_, v| {
            if v.trim().is_empty() {
                Ok(())
            } else {
                Err("shoal has no RDB snapshots; set persistence sled|redb instead; only \"\" is accepted".into())
            }
        },
    },
    Param {
        name: "appendonly",
        mutable: false,
        doc: "yes when a persistence backend is on (read-only; set persistence instead)",
        get: |c| yes_no(c.persistence != crate::persist::Kind::None),
        set: |c, v| {
            if parse_bool(v)? == (c.persistence != crate::persist::Kind::None) {
                Ok(())
            } else {
                Err("set persistence none|sled|redb at start instead".into())
            }
        },
    },
    Param {
        name: "hash-max-listpack-entries",
        mutable: true,
        doc: "hashes with more fields leave the packed encoding",
        get: |c| c.hash_max_listpack_entries.to_string(),
        set: |c, v| {
            c.hash_max_listpack_entries = int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Param {
        name: "hash-max-listpack-value",
        mutable: true,
        doc: "hashes with a longer field or value leave the packed encoding",
        get: |c| c.hash_max_listpack_value.to_string(),
        set: |c, v| {
            c.hash_max_listpack_value = int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Param {
        name: "zset-max-listpack-entries",
        mutable: true,
        doc: "sorted sets with more members become a skiplist",
        get: |c| c.zset_max_listpack_entries.to_string(),
        set: |c, v| {
            c.zset_max_listpack_entries = int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Param {
        name: "zset-max-listpack-value",
        mutable: true,
        doc: "sorted sets with a longer member become a skiplist",
        get: |c| c.zset_max_listpack_value.to_string(),
        set: |c, v| {
            c.zset_max_listpack_value = int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Param {
        name: "set-max-intset-entries",
        mutable: true,
        doc: "sets of integers up to this size stay an intset",
        get: |c| c.set_max_intset_entries.to_string(),
        set: |c, v| {
            c.set_max_intset_entries = int_in(v, 0, i64::MAX)? as usize;
            Ok(())
        },
    },
    Param {
        name: "list-max-listpack-size",
        mutable: true,
        doc: "list node size: entries if positive, size class if negative (-2 = 8 KiB)",
        get: |c| c.list_max_listpack_size.to_string(),
        set: |c, v| {
            c.list_max_listpack_size = int_in(v, -5, i64::MAX)?;
            Ok(())
        },
    },
    Param {
        name: "notify-keyspace-events",
        mutable: true,
        doc: "keyspace notification classes (Redis flag letters, e.g. KEA)",
        get: |c| crate::notify::format(c.notify_keyspace_events),
        set: |c, v| {
            c.notify_keyspace_events = crate::notify::parse(v).ok_or_else(|| {
                "Invalid event class character. Use 'Ag$lshzxeKEtmd'.".to_string()
            })?;
            Ok(())
        },
    },
    Param {
        name: "client-output-buffer-limit",
        mutable: true,
        doc: "per client class: hard soft soft-seconds (pubsub 32mb 8mb 60)",
        get: |c| format_output_limits(&c.client_output_buffer_limit),
        set: |c, v| {
            c.client_output_buffer_limit = parse_output_limits(&c.client_output_buffer_limit, v)?;
            Ok(())
        },
    },
    Param {
        name: "lfu-log-factor",
        mutable: true,
        doc: "LFU counter growth factor (higher = more hits to saturate)",
        get: |c| c.lfu_log_factor.to_string(),
        set: |c, v| {
            c.lfu_log_factor = int_in(v, 0, i32::MAX as i64)? as u32;
            Ok(())
        },
    },
    Param {
        name: "lfu-decay-time",
        mutable: true,
        doc: "minutes per LFU counter decrement of an idle key (0 = never)",
        get: |c| c.lfu_decay_time.to_string(),
        set: |c, v| {
            c.lfu_decay_time = int_in(v, 0, i32::MAX as i64)? as u32;
            Ok(())
        },
    },
    Param {
        name: "cluster-enabled",
        mutable: false,
        doc: "cluster mode: db 0 only, CLUSTER commands; alone, the node owns all 16384 slots",
        get: |c| yes_no(c.cluster_enabled),
        set: |c, v| {
            c.cluster_enabled = parse_bool(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-node-id",
        mutable: false,
        doc: "cluster node id, 40 hex digits (empty = the persisted id, else generated at start)",
        get: |c| c.cluster_node_id.clone(),
        set: |c, v| {
            c.cluster_node_id = parse_node_id(v)?;
            Ok(())
        },
    },
    Param {
        name: "cluster-announce-ip",
        mutable: true,
        doc: "IP address CLUSTER SLOTS/SHARDS/NODES announce (empty = the bound address)",
        get: |c| c.cluster_announce_ip.clone(),
        set: |c, v| {
            c.cluster_announce_ip = v.trim().to_string();
            Ok(())
        },
    },
    Param {
        name: "cluster-seeds",
        mutable: false,
        doc: "gossip addresses host:port of nodes to join, comma-separated (set, or cluster-gossip-port set: the node gossips and forms a multi-node cluster)",
        get: |c| c.cluster_seeds.join(","),
        set: |c, v| {
            let seeds: Vec<String> = v
                .split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            for seed in &seeds {
                let ok = seed
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
                if !ok {
                    return Err(format!("seed {seed:?} is not host:port"));
                }
            }
            c.cluster_seeds = seeds;
            Ok(())
        },
    },
    Param {
        name: "cluster-gossip-port",
        mutable: false,
        doc: "gossip UDP port (empty = client port + 10000, 0 = any free port)",
        get: |c| {
            c.cluster_gossip_port
                .map_or(String::new(), |p| p.to_string())
        },
        set: |c, v| {
            let v = v.trim();
            c.cluster_gossip_port = if v.is_empty() {
                None
            } else {
                Some(parse_num::<u16>(v)?)
            };
            Ok(())
        },
    },
];

/// A node id as `cluster-node-id` takes it: empty, or 40 hex digits (stored lower case).
fn parse_node_id(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() || (v.len() == 40 && v.bytes().all(|b| b.is_ascii_hexdigit())) {
        Ok(v.to_ascii_lowercase())
    } else {
        Err("argument must be empty or 40 hexadecimal digits".into())
    }
}

/// Finds a parameter by name (case-insensitive).
pub fn param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

impl Config {
    /// Sets one parameter from its string form.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let p = param(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        (p.set)(self, value).map_err(|reason| ConfigError::Invalid {
            name: p.name.to_string(),
            value: value.to_string(),
            reason,
        })
    }

    pub fn get(&self, name: &str) -> Option<String> {
        param(name).map(|p| (p.get)(self))
    }

    /// Applies a Redis-style config file's text.
    pub fn apply_file_text(&mut self, text: &str, path: &str) -> Result<(), ConfigError> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut buf = Vec::new();
            let mut spans = Vec::new();
            let at = |e: ConfigError| ConfigError::At {
                source_name: format!("{path}:{}", n + 1),
                error: Box::new(e),
            };
            crate::protocol::split_args(line.as_bytes(), &mut buf, &mut spans).map_err(|_| {
                at(ConfigError::Invalid {
                    name: line.to_string(),
                    value: String::new(),
                    reason: "unbalanced quotes".into(),
                })
            })?;
            let words: Vec<String> = spans
                .iter()
                .map(|&(s, e)| String::from_utf8_lossy(&buf[s..e]).into_owned())
                .collect();
            let Some((name, rest)) = words.split_first() else {
                continue;
            };
            self.set(name, &rest.join(" ")).map_err(at)?;
        }
        Ok(())
    }

    /// Builds the configuration from command-line arguments (without the
    /// program name) and an environment lookup: `[config-file] [--name value ...]`.
    pub fn from_args_and_env(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        let mut rest = args;
        if let Some(first) = rest.first()
            && !first.starts_with("--")
        {
            let text = std::fs::read_to_string(first).map_err(|e| ConfigError::File {
                path: first.clone(),
                reason: e.to_string(),
            })?;
            cfg.apply_file_text(&text, first)?;
            rest = &rest[1..];
        }
        for p in PARAMS {
            let var = env_name(p.name);
            if let Some(v) = env(&var) {
                cfg.set(p.name, &v).map_err(|e| ConfigError::At {
                    source_name: format!("environment variable {var}"),
                    error: Box::new(e),
                })?;
            }
        }
        let mut i = 0;
        while i < rest.len() {
            let Some(name) = rest[i].strip_prefix("--") else {
                return Err(ConfigError::Invalid {
                    name: rest[i].clone(),
                    value: String::new(),
                    reason: "expected --name value".into(),
                });
            };
            let mut vals = Vec::new();
            i += 1;
            while i < rest.len() && !(rest[i].starts_with("--") && rest[i].len() > 2) {
                vals.push(rest[i].clone());
                i += 1;
            }
            cfg.set(name, &vals.join(" "))
                .map_err(|e| ConfigError::At {
                    source_name: format!("flag --{name}"),
                    error: Box::new(e),
                })?;
        }
        Ok(cfg)
    }

    /// `--help` text listing every parameter with its default.
    pub fn help() -> String {
        let d = Config::default();
        let mut s = String::from(
            "Usage: shoal-server [config-file] [--name value ...]\n       shoal-server --help | --version\n\n\
             Every parameter can also be set in the config file (`name value`) or as\n\
             SHOAL_<NAME> in the environment (e.g. SHOAL_PORT=7000).\n\nParameters (default):\n",
        );
        for p in PARAMS {
            let _ = writeln!(s, "  --{:<28} {} ({:?})", p.name, p.doc, (p.get)(&d));
        }
        s
    }
}

/// The environment variable for a parameter: `SHOAL_` + upper-case, '-' -> '_'.
pub fn env_name(param: &str) -> String {
    format!("SHOAL_{}", param.to_ascii_uppercase().replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults_are_a_local_single_node() {
        let c = Config::from_args_and_env(&[], |_| None).unwrap();
        assert_eq!(c.port, 6379);
        assert_eq!(c.bind, vec!["127.0.0.1"]);
        assert_eq!(c.databases, 16);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = std::env::temp_dir().join(format!("shoal-cfg-{}", std::process::id()));
        std::fs::write(&dir, "# comment\nport 7000\ntimeout 5\nmaxclients 10\n").unwrap();
        let path = dir.to_string_lossy().to_string();
        let c = Config::from_args_and_env(&args(&[&path, "--port", "7002"]), |v| {
            (v == "SHOAL_PORT" || v == "SHOAL_TIMEOUT").then(|| "7001".to_string())
        })
        .unwrap();
        std::fs::remove_file(&dir).ok();
        assert_eq!(c.port, 7002);
        assert_eq!(c.timeout, 7001);
        assert_eq!(c.maxclients, 10);
    }

    #[test]
    fn bad_values_name_the_parameter_and_source() {
        let e = Config::from_args_and_env(&args(&["--port", "x"]), |_| None).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("--port") && msg.contains("'x'"), "{msg}");
        let e = Config::from_args_and_env(&args(&["--nope", "1"]), |_| None).unwrap_err();
        assert!(e.to_string().contains("unknown parameter 'nope'"));
        let e = Config::from_args_and_env(&[], |v| (v == "SHOAL_HZ").then(|| "fast".into()))
            .unwrap_err();
        assert!(e.to_string().contains("SHOAL_HZ"));
    }

    #[test]
    fn cluster_parameters() {
        let c = Config::from_args_and_env(&[], |_| None).unwrap();
        assert!(!c.cluster_enabled);
        assert_eq!(c.cluster_node_id, "");
        let id = "ABCDEF0123456789abcdef0123456789ABCDEF01";
        let c = Config::from_args_and_env(
            &args(&["--cluster-enabled", "yes", "--cluster-node-id", id]),
            |_| None,
        )
        .unwrap();
        assert!(c.cluster_enabled);
        assert_eq!(c.cluster_node_id, id.to_ascii_lowercase());
        for bad in ["abc", "g".repeat(40).as_str(), &"a".repeat(41)] {
            let e = Config::from_args_and_env(&args(&["--cluster-node-id", bad]), |_| None)
                .unwrap_err();
            assert!(e.to_string().contains("cluster-node-id"), "{e}");
        }
        let e = Config::from_args_and_env(&args(&["--cluster-enabled", "maybe"]), |_| None)
            .unwrap_err();
        assert!(e.to_string().contains("'yes' or 'no'"), "{e}");
        assert!(c.cluster_seeds.is_empty());
        assert_eq!(c.cluster_gossip_port, None);
        let c = Config::from_args_and_env(
            &args(&[
                "--cluster-seeds",
                "10.0.0.1:17000, shoal-0.shoal:17000",
                "--cluster-gossip-port",
                "0",
            ]),
            |_| None,
        )
        .unwrap();
        assert_eq!(c.cluster_seeds, ["10.0.0.1:17000", "shoal-0.shoal:17000"]);
        assert_eq!(c.cluster_gossip_port, Some(0));
        for bad in ["nohost", ":17000", "h:0", "h:99999"] {
            let e =
                Config::from_args_and_env(&args(&["--cluster-seeds", bad]), |_| None).unwrap_err();
            assert!(e.to_string().contains("cluster-seeds"), "{e}");
        }
        let e = Config::from_args_and_env(&args(&["--cluster-gossip-port", "70000"]), |_| None)
            .unwrap_err();
        assert!(e.to_string().contains("cluster-gossip-port"), "{e}");
    }

    #[test]
    fn multi_word_values() {
        let c =
            Config::from_args_and_env(&args(&["--bind", "127.0.0.1", "::1", "--save", ""]), |_| {
                None
            })
            .unwrap();
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
    }
}
