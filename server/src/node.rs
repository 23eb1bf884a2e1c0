//! `Node::start(config) -> NodeHandle`: wires the store, the command table,
//! the listeners and the background tasks, and owns graceful shutdown.
//!
//! Shutdown has three parts: a `CancellationToken` tells every task, the
//! listeners stop accepting, and a `TaskTracker` waits (bounded) for the
//! connections to finish the replies they are writing.

use crate::command::{CommandSpec, CommandTable, flags};
use crate::config::Config;
use crate::net::client::{ClientRegistry, ConnState};
use crate::protocol::Args;
use crate::pubsub::PubSub;
use crate::store::evict::Policy;
use crate::store::{Clock, Store, StoreConfig, SystemClock};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Errors starting or running a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("no address to listen on could be bound (bind = {0})")]
    NothingBound(String),
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("persistence: {0}")]
    Persist(#[from] crate::persist::PersistError),
    #[error("cluster: {0}")]
    Cluster(String),
}

/// Server-wide counters for INFO stats.
#[derive(Debug, Default)]
pub struct Stats {
    pub total_commands: AtomicU64,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub error_replies: AtomicU64,
    pub rejected_calls: AtomicU64,
    /// Writes since start (INFO stats; with persistence on, INFO persistence
    /// reports changes since the last durable batch).
    pub dirty: AtomicU64,
    pub expire_cycles_timed_out: AtomicU64,
    pub evicted_keys: AtomicU64,
}

impl Stats {
    #[inline]
    pub fn command(&self) {
        self.total_commands.fetch_add(1, Relaxed);
    }
    #[inline]
    pub fn error_reply(&self) {
        self.error_replies.fetch_add(1, Relaxed);
    }
    #[inline]
    pub fn rejected_call(&self) {
        self.rejected_calls.fetch_add(1, Relaxed);
    }
    #[inline]
    pub fn dirty(&self, n: u64) {
        self.dirty.fetch_add(n, Relaxed);
    }
    pub fn reset(&self) {
        for c in [
            &self.total_commands,
            &self.total_connections,
            &self.rejected_connections,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.error_replies,
            &self.rejected_calls,
            &self.expire_cycles_timed_out,
        ] {
            c.store(0, Relaxed);
        }
    }
}

/// One SLOWLOG entry.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub unix_secs: u64,
    pub micros: u64,
    pub args: Vec<Vec<u8>>,
    pub addr: String,
    pub name: String,
}

/// The slow log; the mutex is taken only for commands over the threshold.
#[derive(Debug)]
pub struct SlowLog {
    pub threshold_us: AtomicI64,
    pub max_len: AtomicUsize,
    next_id: AtomicU64,
    pub entries: Mutex<VecDeque<SlowEntry>>,
}

impl SlowLog {
    fn new(cfg: &Config) -> Self {
        SlowLog {
            threshold_us: AtomicI64::new(cfg.slowlog_log_slower_than),
            max_len: AtomicUsize::new(cfg.slowlog_max_len as usize),
            next_id: AtomicU64::new(0),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    #[inline]
    pub fn maybe_record(&self, took: Duration, args: &Args<'_>, conn: &ConnState) {
        let t = self.threshold_us.load(Relaxed);
        let us = took.as_micros() as u64;
        if t < 0 || us < t as u64 {
            return;
        }
        // Like Redis: at most 32 arguments, each cut to 128 bytes.
        let mut kept: Vec<Vec<u8>> = Vec::new();
        let n = args.len();
        for (i, a) in args.iter().enumerate() {
            if i == 31 && n > 32 {
                kept.push(format!("... ({} more arguments)", n - 31).into_bytes());
                break;
            }
            if a.len() > 128 {
                let mut v = a[..128].to_vec();
                v.extend_from_slice(format!("... ({} more bytes)", a.len() - 128).as_bytes());
                kept.push(v);
            } else {
                kept.push(a.to_vec());
            }
        }
        let entry = SlowEntry {
            id: self.next_id.fetch_add(1, Relaxed),
            unix_secs: unix_ms() / 1000,
            micros: us,
            args: kept,
            addr: conn.addr.to_string(),
            name: conn.name.clone(),
        };
        let max = self.max_len.load(Relaxed);
        let mut e = self.entries.lock();
        e.push_front(entry);
        while e.len() > max {
            e.pop_back();
        }
    }
}

/// Fan-out of executed commands to MONITOR clients.
#[derive(Debug)]
pub struct Monitor {
    tx: broadcast::Sender<Bytes>,
    /// Live subscriptions. Checked on every command: an atomic load, where
    /// `Sender::receiver_count` would take the channel's mutex.
    listeners: Arc<AtomicUsize>,
}

/// A MONITOR subscription; leaving MONITOR (drop) stops the feed's formatting work.
#[derive(Debug)]
pub struct MonitorSub {
    pub rx: broadcast::Receiver<Bytes>,
    listeners: Arc<AtomicUsize>,
}

impl Drop for MonitorSub {
    fn drop(&mut self) {
        self.listeners.fetch_sub(1, Relaxed);
    }
}

impl Monitor {
    fn new() -> Self {
        Monitor {
            tx: broadcast::channel(4096).0,
            listeners: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn subscribe(&self) -> MonitorSub {
        self.listeners.fetch_add(1, Relaxed);
        MonitorSub {
            rx: self.tx.subscribe(),
            listeners: Arc::clone(&self.listeners),
        }
    }

    /// Formats the command as Redis does (`+ts [db addr] "arg" ...`) if anyone listens.
    #[inline]
    pub fn feed(&self, now_ms: u64, conn: &ConnState, args: &Args<'_>) {
        if self.listeners.load(Relaxed) == 0 {
            return;
        }
        let mut line = format!(
            "+{}.{:06} [{} {}]",
            now_ms / 1000,
            (now_ms % 1000) * 1000,
            conn.db,
            conn.addr
        );
        for a in args.iter() {
            line.push(' ');
            line.push_str(&crate::util_repr(a));
        }
        line.push_str("\r\n");
        let _ = self.tx.send(Bytes::from(line));
    }
}

/// CLIENT PAUSE state.
#[derive(Debug, Default)]
pub struct Pause {
    /// Fast check so unpaused servers never take the lock.
    active: std::sync::atomic::AtomicBool,
    state: Mutex<Option<(Instant, bool)>>,
    pub unpaused: Notify,
}

impl Pause {
    pub fn pause(&self, until: Instant, all: bool) {
        *self.state.lock() = Some((until, all));
        self.active.store(true, Relaxed);
    }

    pub fn unpause(&self) {
        *self.state.lock() = None;
        self.active.store(false, Relaxed);
        self.unpaused.notify_waiters();
    }

    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Relaxed)
    }

    /// If `spec` must wait for an active pause, the instant the pause ends.
    pub fn blocks(&self, spec: &CommandSpec) -> Option<Instant> {
        let g = self.state.lock();
        let (until, all) = (*g)?;
        if until <= Instant::now() {
            return None;
        }
        if spec.has(flags::NO_PAUSE) {
            return None;
        }
        if all || spec.has(flags::WRITE) || spec.has(flags::MAY_REPLICATE) {
            Some(until)
        } else {
            None
        }
    }
}

/// State shared by every connection and task of one node.
#[derive(Debug)]
pub struct Shared {
    pub store: Arc<Store>,
    pub commands: CommandTable,
    /// Live configuration; read at connection start and by CONFIG/INFO.
    /// A RwLock because reads vastly outnumber CONFIG SET and never span an await.
    pub config: RwLock<Config>,
    /// Bumped by CONFIG SET so connections refresh their cached limits.
    pub config_epoch: AtomicU64,
    pub clients: ClientRegistry,
    pub stats: Stats,
    pub slowlog: SlowLog,
    pub monitor: Monitor,
    pub pause: Pause,
    pub shutdown: CancellationToken,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub run_id: String,
    /// Addresses actually bound (port 0 resolved).
    pub listening: Mutex<Vec<SocketAddr>>,
    /// Active expiry can be turned off by DEBUG SET-ACTIVE-EXPIRE 0.
    pub active_expire: std::sync::atomic::AtomicBool,
    /// `notify-keyspace-events` flags, mirrored from the config for the hot
    /// path; shared with the store's expired-key hook.
    pub notify_flags: Arc<std::sync::atomic::AtomicU32>,
    /// Pub/Sub subscriptions and delivery.
    pub pubsub: Arc<PubSub>,
    /// Makes EXEC atomic (see `command/tx.rs`).
    pub gate: Arc<crate::command::tx::Gate>,
    /// Clients blocked in BLPOP and friends.
    pub blocking: crate::blocking::Blocking,
    /// `maxmemory` and its policy, mirrored from the config for the write path.
    pub memory: MemoryLimit,
    /// The persistence engine (set at start when `persistence` is not none).
    pub persist: std::sync::OnceLock<Arc<crate::persist::engine::Engine>>,
    /// The dataset is being loaded: commands without the `loading` flag get `-LOADING`.
    pub loading: std::sync::atomic::AtomicBool,
    /// Set when the node stopped by itself (a failed load); the binary exits non-zero.
    pub failure: Mutex<Option<String>>,
    /// This node's cluster identity; set at start in cluster mode only
    /// (`cluster-enabled yes`), after persistence opened (it may hold the id).
    pub cluster: std::sync::OnceLock<crate::command::cluster::Myself>,
    /// Multi-node cluster mode: the current slot map and members (see
    /// `topology.rs`); `None` when standalone or a one-node cluster.
    pub topology: arc_swap::ArcSwapOption<crate::topology::Topology>,
    /// Multi-node cluster mode: the gossip membership (stopped at shutdown).
    pub gossip: std::sync::OnceLock<Arc<shoal_cluster::GossipMembership>>,
}

/// The eviction settings every write checks, as atomics (CONFIG SET updates them).
#[derive(Debug, Default)]
pub struct MemoryLimit {
    pub maxmemory: AtomicU64,
    policy: std::sync::atomic::AtomicU8,
    samples: AtomicUsize,
    lfu_decay_time: std::sync::atomic::AtomicU32,
}

/// Memory counted beyond the keyspace (runtime, tables, buffers): what
/// used_memory reports on an empty server.
pub const BASELINE_MEMORY: u64 = 1024 * 1024;

impl MemoryLimit {
    /// Applies the config's memory settings (start-up and CONFIG SET).
    pub fn apply(&self, c: &Config, store: &Store) {
        let policy = Policy::parse(&c.maxmemory_policy).unwrap_or(Policy::NoEviction);
        let idx = Policy::ALL.iter().position(|p| *p == policy).unwrap_or(0);
        self.policy.store(idx as u8, Relaxed);
        self.samples.store(c.maxmemory_samples as usize, Relaxed);
        self.lfu_decay_time.store(c.lfu_decay_time, Relaxed);
        self.maxmemory.store(c.maxmemory, Relaxed);
        store.set_lfu(policy.is_lfu(), c.lfu_log_factor, c.lfu_decay_time);
    }

    fn policy(&self) -> Policy {
        Policy::ALL[self.policy.load(Relaxed) as usize % Policy::ALL.len()]
    }
}

impl Shared {
    /// Memory as `maxmemory` sees it: the keyspace (from the shards' O(1)
    /// reports) plus the baseline.
    #[inline]
    pub fn used_memory_for_limit(&self) -> u64 {
        self.store.used_memory_fast() as u64
            + self.clients.buffer_bytes()
            + self.pubsub.queued_bytes() as u64
            + BASELINE_MEMORY
    }

    /// Called before a command when `maxmemory` is set: evicts by the policy
    /// until under the limit. False when still over it (noeviction, or nothing
    /// evictable left): then commands that may grow memory are refused.
    pub fn enforce_maxmemory(&self, now: u64) -> bool {
        let max = self.memory.maxmemory.load(Relaxed);
        if max == 0 || self.used_memory_for_limit() <= max {
            return true;
        }
        let cfg = crate::store::evict::EvictConfig {
            policy: self.memory.policy(),
            samples: self.memory.samples.load(Relaxed).max(1),
            lfu_decay_time: self.memory.lfu_decay_time.load(Relaxed),
            limit: max.saturating_sub(BASELINE_MEMORY) as usize,
        };
        let mut on_evict = |db: usize, key: &[u8]| {
            self.stats.evicted_keys.fetch_add(1, Relaxed);
            self.notify_keyspace(db, crate::notify::EVICTED, "evicted", key);
        };
        let mut r = self.store.evict(cfg, now, &mut on_evict);
        // With persistence, data the writer has not taken yet cannot be
        // dropped (dirty marks, eviction captures): write it now, then
        // evict again. Called before the command takes its gate slot, so the
        // batch's drain cannot wait on this thread.
        if !r.ok
            && let Some(p) = self.persist()
            && self.store.hooks().dirty_keys.load(Relaxed) > 0
        {
            if let Err(e) = p.cycle(&self.store, false) {
                tracing::warn!(error = %e, "write-behind batch to relieve memory failed");
            }
            let again = self.store.evict(cfg, now, &mut on_evict);
            r.keys += again.keys;
            r.ok = again.ok;
        }
        if r.keys > 0 {
            tracing::debug!(evicted = r.keys, "evicted keys to stay under maxmemory");
        }
        r.ok
    }
}

/// Publishes `expired` events for keys the store expires (lazily or actively).
#[derive(Debug)]
struct ExpiredNotifier {
    flags: Arc<std::sync::atomic::AtomicU32>,
    pubsub: Arc<PubSub>,
}

impl crate::store::ExpiredHook for ExpiredNotifier {
    fn expired(&self, db: usize, key: &[u8]) {
        let flags = self.flags.load(Relaxed);
        if flags & crate::notify::EXPIRED != 0 {
            self.pubsub.notify_keyspace(flags, db, "expired", key);
        }
    }
}

impl Shared {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Self {
        let store = Arc::new(Store::new(
            StoreConfig {
                databases: config.databases,
                shards: config.keyspace_shards,
            },
            clock,
        ));
        let started_unix_ms = unix_ms();
        let notify_flags = Arc::new(std::sync::atomic::AtomicU32::new(
            config.notify_keyspace_events,
        ));
        let memory = MemoryLimit::default();
        memory.apply(&config, &store);
        let pubsub = Arc::new(PubSub::new());
        pubsub.set_limits(config.client_output_buffer_limit[2]);
        store.set_expired_hook(Box::new(ExpiredNotifier {
            flags: Arc::clone(&notify_flags),
            pubsub: Arc::clone(&pubsub),
        }));
        Shared {
            store,
            commands: CommandTable::new(),
            slowlog: SlowLog::new(&config),
            config: RwLock::new(config),
            config_epoch: AtomicU64::new(0),
            clients: ClientRegistry::default(),
            stats: Stats::default(),
            monitor: Monitor::new(),
            pause: Pause::default(),
            shutdown: CancellationToken::new(),
            started: Instant::now(),
            started_unix_ms,
            run_id: random_hex(40),
            listening: Mutex::new(Vec::new()),
            active_expire: std::sync::atomic::AtomicBool::new(true),
            notify_flags,
            pubsub,
            gate: Default::default(),
            blocking: Default::default(),
            memory,
            persist: std::sync::OnceLock::new(),
            loading: std::sync::atomic::AtomicBool::new(false),
            failure: Mutex::new(None),
            cluster: std::sync::OnceLock::new(),
            topology: arc_swap::ArcSwapOption::empty(),
            gossip: std::sync::OnceLock::new(),
        }
    }

    /// The persistence engine, when `persistence` is not none.
    #[inline]
    pub fn persist(&self) -> Option<&Arc<crate::persist::engine::Engine>> {
        self.persist.get()
    }

    /// The node's cluster identity in cluster mode; `None` when standalone.
    #[inline]
    pub fn cluster(&self) -> Option<&crate::command::cluster::Myself> {
        self.cluster.get()
    }

    /// Whether the node runs in cluster mode (`cluster-enabled yes`).
    #[inline]
    pub fn cluster_enabled(&self) -> bool {
        self.cluster.get().is_some()
    }

    /// Publishes a keyspace event if its class is enabled (see [`crate::notify`]).
    #[inline]
    pub fn notify_keyspace(&self, db: usize, class: u32, event: &str, key: &[u8]) {
        let flags = self.notify_flags.load(Relaxed);
        if flags & class == 0 {
            return;
        }
        self.pubsub.notify_keyspace(flags, db, event, key);
    }

    /// The port clients reach us on (first bound address).
    pub fn port(&self) -> u16 {
        self.listening.lock().first().map(|a| a.port()).unwrap_or(0)
    }
}

/// Milliseconds since the Unix epoch from the wall clock.
pub fn unix_ms() -> u64 {
    SystemClock.now_ms()
}

pub(crate) fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    shared: Arc<Shared>,
    tracker: TaskTracker,
}

/// Entry point for the server binary, tests and embedding applications.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Binds the listeners and starts serving with the wall clock.
    pub async fn start(config: Config) -> Result<NodeHandle, NodeError> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Same as [`Node::start`] with an injected clock (tests drive TTLs with it).
    pub async fn start_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<NodeHandle, NodeError> {
        let listeners = crate::net::listener::bind_all(&config).await?;
        let persistence = (config.persistence, config.dir.clone(), config.appendfsync);
        let limits = crate::persist::engine::limits_of(&config);
        let cluster = config
            .cluster_enabled
            .then(|| config.cluster_node_id.clone());
        let multi = crate::topology::wanted(&config);
        if !config.cluster_enabled && !config.cluster_seeds.is_empty() {
            tracing::warn!("cluster-seeds is ignored: cluster-enabled is no");
        }
        let shared = Arc::new(Shared::new(config, clock));
        if persistence.0 != crate::persist::Kind::None {
            let engine = crate::persist::engine::Engine::open(
                persistence.0,
                std::path::Path::new(&persistence.1),
                persistence.2,
                limits,
                &shared.store,
                Arc::clone(&shared.gate),
            )?;
            let _ = shared.persist.set(engine);
            shared.loading.store(true, Relaxed);
            start_loading(Arc::clone(&shared));
        }
        if let Some(configured) = cluster {
            let persisted = shared.persist().map(|p| p.node_id().to_string());
            let me = crate::command::cluster::Myself::resolve(&configured, persisted.as_deref());
            if !multi {
                tracing::info!(
                    node_id = %me.node_id,
                    "cluster mode: a single node owning all 16384 slots"
                );
            } else {
                tracing::info!(node_id = %me.node_id, "cluster mode: multi-node (gossip)");
            }
            let _ = shared.cluster.set(me);
        }
        *shared.listening.lock() = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect();
        let tracker = TaskTracker::new();
        if multi {
            let first = shared.listening.lock().first().copied();
            let me = shared.cluster().map(|m| m.node_id.clone());
            if let (Some(client), Some(me)) = (first, me) {
                crate::topology::start(&shared, &me, client, &tracker).await?;
            }
        }
        for l in listeners {
            tracker.spawn(crate::net::listener::accept_loop(
                Arc::clone(&shared),
                l,
                tracker.clone(),
            ));
        }
        tracker.spawn(expire_task(Arc::clone(&shared)));
        tracing::info!(addrs = ?shared.listening.lock(), "ready to accept connections");
        Ok(NodeHandle { shared, tracker })
    }
}

impl NodeHandle {
    /// The first address bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.shared.listening.lock()[0]
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Why the node stopped by itself (a failed load), if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().clone()
    }

    /// Resolves when shutdown has been requested (SHUTDOWN, signal, `shutdown()`).
    pub async fn shutdown_requested(&self) {
        self.shared.shutdown.cancelled().await
    }

    /// Stops accepting, lets connections finish the replies in flight, and
    /// waits for every task up to `grace`. Returns false if tasks remained.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.shared.shutdown.cancel();
        if let Some(g) = self.shared.gossip.get() {
            // Peers see this node dead after their failure-detection time.
            g.shutdown().await;
        }
        self.tracker.close();
        let done = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        if let Some(engine) = self.shared.persist().cloned() {
            // The writer's last cycle is durable; joining it blocks, so off
            // the async workers.
            let _ = tokio::task::spawn_blocking(move || engine.stop()).await;
            tracing::info!("persistence writer stopped after a final durable write");
        }
        if done {
            tracing::info!("shut down cleanly");
        } else {
            tracing::warn!(
                ?grace,
                "shutdown grace period over with tasks still running"
            );
        }
        done
    }
}

/// Loads the persisted dataset on its own thread while clients get
/// `-LOADING`; then starts the write-behind thread. A load that fails (a
/// corrupt record) stops the node: serving part of the data silently would
/// be worse.
fn start_loading(shared: Arc<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("shoal-load".into())
        .spawn(move || {
            let Some(engine) = shared.persist().cloned() else {
                return;
            };
            let max = shared.memory.maxmemory.load(Relaxed);
            let cap = max.saturating_sub(BASELINE_MEMORY) / 100 * 95;
            tracing::info!(backend = engine.kind().name(), "loading the dataset");
            let delay = Duration::from_micros(shared.config.read().key_load_delay);
            match engine.load(&shared.store, cap, delay) {
                Ok(r) => {
                    tracing::info!(
                        keys = r.loaded,
                        expired_skipped = r.expired,
                        partial = r.partial,
                        secs = r.took.as_secs_f64(),
                        "dataset loaded"
                    );
                    engine.start(Arc::clone(&shared.store));
                    shared.loading.store(false, Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the dataset; shutting down");
                    *shared.failure.lock() = Some(format!("cannot load the dataset: {e}"));
                    shared.shutdown.cancel();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the loading thread");
    }
}

/// Runs the active expiry cycle `hz` times a second with Redis's CPU budget
/// (25% of each period, scaled by active-expire-effort).
async fn expire_task(shared: Arc<Shared>) {
    loop {
        let (hz, effort) = {
            let c = shared.config.read();
            (c.hz.max(1), c.active_expire_effort.clamp(1, 10))
        };
        let period = Duration::from_millis(1000 / hz);
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        if !shared.active_expire.load(Relaxed) {
            continue;
        }
        let samples = 20 + 5 * (effort as usize - 1);
        let budget = period.mul_f64(0.25 + 0.02 * (effort as f64 - 1.0));
        let r = shared.store.active_expire_cycle(samples, budget);
        if r.timed_out {
            shared.stats.expire_cycles_timed_out.fetch_add(1, Relaxed);
        }
    }
}
