//! `GossipMembership`: the [`Membership`] of a real cluster, driven by chitchat (scuttlebutt gossip over UDP with a phi-accrual failure detector); seeds re-resolved with backoff, one member per node id whatever its address or incarnation.
//!
//! Each node runs one chitchat instance. Its chitchat identity is
//! `(node id, generation, gossip address)`, with the generation taken from
//! the start time, so a restarted node is a *new incarnation* of the same
//! member: peers pick, per node id, the live incarnation with the highest
//! generation, and the member's client address follows it (a pod rescheduled
//! with a new IP rejoins as itself, never as a second member). The client
//! address travels in the node's gossip state under [`CLIENT_ADDR_KEY`].
//!
//! A background task (the *driver*) turns chitchat's live-node changes into
//! membership changes: a node seen live for the first time joins, a member
//! the failure detector gives up on stays in the view as not live, a new
//! incarnation replaces the old one, and a node chitchat forgets (after
//! [`FailureDetection::dead_node_grace_period`]) leaves. Each of these is one
//! change of the view (its version grows by one) delivered to subscribers.
//!
//! Seeds are `host:port` strings resolved by our own task, not chitchat's
//! (which resolves once at start and then every 60 s): a name that does not
//! resolve yet (Kubernetes DNS before the pods are ready) is retried with
//! exponential backoff, and resolved seeds are contacted directly while this
//! node sees no live peer, then one at a time now and then so that partitions
//! heal through the seeds as well.
//!
//! Failure detection: chitchat's phi is `time since the last heartbeat /
//! mean heartbeat interval`, and a node is dead once it exceeds
//! [`FailureDetection::phi_threshold`]; liveness is re-evaluated at the end
//! of each gossip round. A node's heartbeat advances every round and with
//! every message it handles, and peers see it both directly and through
//! third parties' digests, so the mean interval seen is below the gossip
//! interval: with the defaults (200 ms rounds, phi 8) the timeout settles at
//! 1.0-1.6 s, and `tests/gossip.rs` measures 1.2-2.2 s from a SIGKILL to a
//! view in which the node is not live (2.6 s once for a node killed right
//! after joining, during a build). The detector adapts: slower heartbeats
//! (a loaded or lossy network) give proportionally longer timeouts, up to
//! phi × [`FailureDetection::max_interval`].

use crate::error::ClusterError;
use crate::membership::{
    Callback, Member, Membership, MemoryMembership, NodeId, SubscriptionId, View,
};
use chitchat::transport::Socket;
use chitchat::{
    Chitchat, ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, NodeState,
    ProtocolVersion, spawn_chitchat,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{MissedTickBehavior, interval, sleep, timeout};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::{debug, error, info, warn};

/// The transports gossip can run over: [`UdpTransport`] in production,
/// [`ChannelTransport`] (in-process, with `remove_link`/`add_link` to cut and
/// heal links) in tests. Re-exported so users need no chitchat dependency.
pub use chitchat::transport::{ChannelTransport, Transport, UdpTransport};

/// Gossip state key holding the node's client address (`host:port`).
pub const CLIENT_ADDR_KEY: &str = "client_addr";

/// Default gossip round: every 200 ms each node exchanges digests with up to
/// three live peers.
pub const DEFAULT_GOSSIP_INTERVAL: Duration = Duration::from_millis(200);

/// Longest a seed lookup may take before it counts as a failure.
const SEED_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the driver recomputes the view even without a live-node change
/// from chitchat (which does not report nodes it garbage-collects).
const RESYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Failure detector settings (chitchat's phi-accrual detector).
#[derive(Clone, Debug, PartialEq)]
pub struct FailureDetection {
    /// A node is dead once the time since its last heartbeat exceeds this
    /// many mean heartbeat intervals. Default 8.
    pub phi_threshold: f64,
    /// The mean interval assumed before samples exist (weighted as five
    /// samples, so it dominates the first second or so of a new peer).
    /// `None` (default): the gossip interval.
    pub initial_interval: Option<Duration>,
    /// Heartbeat intervals longer than this are not sampled (a pause or a
    /// healed partition must not teach the detector that long gaps are
    /// normal). Default 2 s.
    pub max_interval: Duration,
    /// Number of recent intervals the mean is taken over. Default 1000.
    pub sampling_window: usize,
    /// How long a dead node stays known (a not-live member of the view)
    /// before it is forgotten and leaves the view. Default 1 hour.
    pub dead_node_grace_period: Duration,
}

impl Default for FailureDetection {
    fn default() -> FailureDetection {
        FailureDetection {
            phi_threshold: 8.0,
            initial_interval: None,
            max_interval: Duration::from_secs(2),
            sampling_window: 1000,
            dead_node_grace_period: Duration::from_secs(3600),
        }
    }
}

/// Everything a node needs to join the gossip. [`GossipConfig::new`] fills
/// in the defaults; every field is public to tune.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// This node's identity, stable across restarts and address changes.
    pub node_id: NodeId,
    /// The address clients reach this node at (`host:port`), as written in
    /// -MOVED replies and CLUSTER SLOTS.
    pub advertise_addr: String,
    /// Where the gossip UDP socket binds. Port 0 picks a free port.
    pub gossip_listen_addr: SocketAddr,
    /// The gossip address peers send to. `None`: the bound address, which
    /// then must not be unspecified (`0.0.0.0`); a port of 0 here means the
    /// bound port.
    pub gossip_advertise_addr: Option<SocketAddr>,
    /// Gossip addresses of nodes to contact first, `host:port` (a name or an
    /// IP). May include this node itself; may be names that do not resolve
    /// yet (retried with backoff).
    pub seeds: Vec<String>,
    /// Nodes only talk to nodes of the same cluster id. Default `"shoal"`.
    pub cluster_id: String,
    /// Time between gossip rounds. Default [`DEFAULT_GOSSIP_INTERVAL`].
    pub gossip_interval: Duration,
    pub failure_detection: FailureDetection,
    /// First retry delay of a seed that does not resolve; doubles up to
    /// `seed_retry_max`. Defaults 100 ms and 5 s.
    pub seed_retry_min: Duration,
    pub seed_retry_max: Duration,
    /// How often resolved seeds are looked up again (a headless service's
    /// addresses change as pods come and go). Default 30 s.
    pub seed_refresh_interval: Duration,
    /// While this node sees live peers, one seed (in turn) is contacted this
    /// often. Default 5 s. While it sees none, every seed is contacted every
    /// gossip round.
    pub seed_gossip_interval: Duration,
}

impl GossipConfig {
    /// A configuration with the default timings and no seeds.
    #[must_use]
    pub fn new(
        node_id: NodeId,
        advertise_addr: impl Into<String>,
        gossip_listen_addr: SocketAddr,
    ) -> GossipConfig {
        GossipConfig {
            node_id,
            advertise_addr: advertise_addr.into(),
            gossip_listen_addr,
            gossip_advertise_addr: None,
            seeds: Vec::new(),
            cluster_id: "shoal".to_owned(),
            gossip_interval: DEFAULT_GOSSIP_INTERVAL,
            failure_detection: FailureDetection::default(),
            seed_retry_min: Duration::from_millis(100),
            seed_retry_max: Duration::from_secs(5),
            seed_refresh_interval: Duration::from_secs(30),
            seed_gossip_interval: Duration::from_secs(5),
        }
    }

    /// Checks what chitchat would otherwise panic on or silently misuse.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |field, reason: &str| {
            Err(ClusterError::InvalidGossipConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        Member::new(self.node_id.clone(), &self.advertise_addr)?;
        for (field, d) in [
            ("gossip_interval", self.gossip_interval),
            (
                "failure_detection.max_interval",
                self.failure_detection.max_interval,
            ),
            ("seed_retry_min", self.seed_retry_min),
            ("seed_retry_max", self.seed_retry_max),
            ("seed_refresh_interval", self.seed_refresh_interval),
            ("seed_gossip_interval", self.seed_gossip_interval),
        ] {
            if d < Duration::from_millis(1) {
                return bad(field, "must be at least 1 ms");
            }
        }
        if self.seed_retry_min > self.seed_retry_max {
            return bad("seed_retry_min", "greater than seed_retry_max");
        }
        if let Some(d) = self.failure_detection.initial_interval
            && d < Duration::from_millis(1)
        {
            return bad(
                "failure_detection.initial_interval",
                "must be at least 1 ms",
            );
        }
        let phi = self.failure_detection.phi_threshold;
        if !(phi.is_finite() && phi > 0.0) {
            return bad(
                "failure_detection.phi_threshold",
                "must be a positive number",
            );
        }
        if self.failure_detection.sampling_window == 0 {
            return bad("failure_detection.sampling_window", "must be at least 1");
        }
        for seed in &self.seeds {
            parse_seed(seed).map_err(|reason| ClusterError::InvalidGossipConfig {
                field: "seeds",
                reason: format!("{seed:?}: {reason}"),
            })?;
        }
        Ok(())
    }

    fn chitchat_failure_detector(&self) -> FailureDetectorConfig {
        let fd = &self.failure_detection;
        FailureDetectorConfig {
            phi_threshold: fd.phi_threshold,
            sampling_window_size: fd.sampling_window,
            max_interval: fd.max_interval,
            initial_interval: fd.initial_interval.unwrap_or(self.gossip_interval),
            dead_node_grace_period: fd.dead_node_grace_period,
        }
    }
}

/// Checks a seed is `host:port` with a non-zero port; returns the host.
fn parse_seed(seed: &str) -> Result<&str, &'static str> {
    let (host, port) = seed.rsplit_once(':').ok_or("no ':port'")?;
    if host.is_empty() {
        return Err("empty host");
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err("port is not a number 1-65535"),
        Ok(_) => Ok(host),
    }
}

/// One chitchat incarnation of a node as this node knows it: what
/// [`GossipMembership::incarnations`] reports, for diagnostics and tests.
#[derive(Clone, Debug, PartialEq)]
pub struct Incarnation {
    pub node_id: String,
    /// Start time in milliseconds since the Unix epoch (made unique per
    /// process); the newer incarnation of a node id wins.
    pub generation: u64,
    pub gossip_addr: SocketAddr,
    /// The advertised client address, once its state has arrived.
    pub client_addr: Option<String>,
    /// Whether the failure detector considers it alive.
    pub live: bool,
    /// The failure detector's current timeout for it: silence longer than
    /// this makes it dead (`None` for this node and for nodes without
    /// enough heartbeat samples).
    pub detection_timeout: Option<Duration>,
}

/// The [`Membership`] of a node in a gossiping cluster. Start it with
/// [`GossipMembership::start`]; stop it with [`GossipMembership::shutdown`]
/// (dropping it stops it too, in the background).
pub struct GossipMembership {
    view: Arc<MemoryMembership>,
    chitchat_id: ChitchatId,
    chitchat: Arc<tokio::sync::Mutex<Chitchat>>,
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for GossipMembership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GossipMembership")
            .field("chitchat_id", &self.chitchat_id)
            .field("view", &self.view.view())
            .field("stopped", &self.stop.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl GossipMembership {
    /// Opens the gossip socket on `transport`, starts chitchat and the
    /// driver, and returns with a view holding only this node (version 1).
    /// Peers appear as gossip finds them. Must run inside a tokio runtime.
    pub async fn start(
        config: GossipConfig,
        transport: &dyn Transport,
    ) -> Result<GossipMembership, ClusterError> {
        config.validate()?;
        let local = Member::new(config.node_id.clone(), &config.advertise_addr)?;
        let socket = transport
            .open(config.gossip_listen_addr)
            .await
            .map_err(|e| gossip_error("open its socket", &e))?;
        let bound = socket
            .local_addr()
            .map_err(|e| gossip_error("read its socket address", &e))?;
        let advertised = gossip_advertise_addr(&config, bound)?;
        let chitchat_id = ChitchatId::new(config.node_id.as_str(), next_generation(), advertised);
        let chitchat_config = ChitchatConfig {
            chitchat_id: chitchat_id.clone(),
            cluster_id: config.cluster_id.clone(),
            gossip_interval: config.gossip_interval,
            listen_addr: bound,
            // Seeds are resolved and contacted by our own task (see the
            // module documentation).
            seed_nodes: Vec::new(),
            failure_detector_config: config.chitchat_failure_detector(),
            // We never delete keys; tombstones would be kept this long.
            marked_for_deletion_grace_period: config.failure_detection.dead_node_grace_period,
            catchup_callback: None,
            extra_liveness_predicate: None,
            // V1 compresses digests (zstd): not worth it at our cluster sizes,
            // and V0 is the format every chitchat version decodes.
            protocol_version: ProtocolVersion::V0,
        };
        let handle = spawn_chitchat(
            chitchat_config,
            vec![(CLIENT_ADDR_KEY.to_owned(), config.advertise_addr.clone())],
            &Preopened(Mutex::new(Some(socket))),
        )
        .await
        .map_err(|e| gossip_error("start chitchat", &e))?;
        let chitchat = handle.chitchat();
        let live = chitchat.lock().await.live_nodes_watcher();

        let view = Arc::new(MemoryMembership::new(local));
        let stop = CancellationToken::new();
        let (seeds_tx, seeds_rx) = watch::channel(Vec::new());
        let resolver = SeedResolver {
            seeds: config.seeds.clone(),
            bound,
            advertised,
            retry_min: config.seed_retry_min,
            retry_max: config.seed_retry_max,
            refresh: config.seed_refresh_interval,
        };
        let resolver = tokio::spawn(resolver.run(seeds_tx, stop.clone()));
        let driver = Driver {
            view: Arc::clone(&view),
            local: chitchat_id.clone(),
            chitchat: Arc::clone(&chitchat),
            stop: stop.clone(),
            gossip_interval: config.gossip_interval,
            seed_gossip_interval: config.seed_gossip_interval,
            warned_duplicates: HashSet::new(),
        };
        let driver = tokio::spawn(driver.run(handle, live, seeds_rx, resolver));
        info!(node = %config.node_id, gossip = %advertised, generation = chitchat_id.generation_id,
            seeds = ?config.seeds, "gossip started");
        Ok(GossipMembership {
            view,
            chitchat_id,
            chitchat,
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            driver: Mutex::new(Some(driver)),
        })
    }

    /// The gossip address peers reach this node at (with the real port when
    /// the configuration asked for port 0).
    #[must_use]
    pub fn gossip_addr(&self) -> SocketAddr {
        self.chitchat_id.gossip_advertise_addr
    }

    /// This incarnation's generation (start time in ms, unique per process).
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.chitchat_id.generation_id
    }

    /// Whether gossip has stopped (shut down, dropped, or its socket failed).
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Every incarnation chitchat knows, this node's included, in chitchat's
    /// order (node id, generation, address).
    pub async fn incarnations(&self) -> Vec<Incarnation> {
        incarnations(&*self.chitchat.lock().await)
    }

    /// Stops gossiping and waits until the socket is closed. Peers declare
    /// this node dead after their failure-detection time, as for a crash.
    /// The view keeps its last state. Calling it again does nothing.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let driver = self
            .driver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(driver) = driver
            && let Err(e) = driver.await
        {
            error!(node = %self.chitchat_id.node_id, error = %e, "gossip driver task failed");
        }
    }
}

impl Membership for GossipMembership {
    fn local_id(&self) -> &NodeId {
        self.view.local_id()
    }

    fn view(&self) -> View {
        self.view.view()
    }

    fn subscribe(&self, callback: Callback) -> SubscriptionId {
        self.view.subscribe(callback)
    }

    fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.view.unsubscribe(id)
    }
}

fn gossip_error(op: &'static str, e: &anyhow::Error) -> ClusterError {
    ClusterError::Gossip {
        op,
        reason: format!("{e:#}"),
    }
}

fn gossip_advertise_addr(
    config: &GossipConfig,
    bound: SocketAddr,
) -> Result<SocketAddr, ClusterError> {
    match config.gossip_advertise_addr {
        Some(addr) if addr.ip().is_unspecified() => Err(ClusterError::InvalidGossipConfig {
            field: "gossip_advertise_addr",
            reason: format!("{addr}: peers cannot send to an unspecified address"),
        }),
        Some(mut addr) => {
            if addr.port() == 0 {
                addr.set_port(bound.port());
            }
            Ok(addr)
        }
        None if bound.ip().is_unspecified() => Err(ClusterError::InvalidGossipConfig {
            field: "gossip_advertise_addr",
            reason: format!("required when listening on {bound}"),
        }),
        None => Ok(bound),
    }
}

/// Start time in ms since the Unix epoch, strictly increasing within the
/// process (two nodes started in one millisecond in a test still differ).
fn next_generation() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev.saturating_add(1));
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => prev = seen,
        }
    }
}

/// Hands chitchat the socket opened before it started (so that port 0 and
/// bind errors are dealt with before the chitchat id, which contains the
/// address, is made).
struct Preopened(Mutex<Option<Box<dyn Socket>>>);

#[async_trait::async_trait]
impl Transport for Preopened {
    async fn open(&self, _listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| anyhow::anyhow!("the gossip socket was already handed out"))
    }
}

fn incarnations(chitchat: &Chitchat) -> Vec<Incarnation> {
    let live: HashSet<&ChitchatId> = chitchat.live_nodes().collect();
    chitchat
        .node_states()
        .iter()
        .map(|(id, state): (&ChitchatId, &NodeState)| Incarnation {
            node_id: id.node_id.to_string(),
            generation: id.generation_id,
            gossip_addr: id.gossip_advertise_addr,
            client_addr: state.get(CLIENT_ADDR_KEY).map(str::to_owned),
            live: live.contains(id),
            detection_timeout: chitchat.failure_detection_timeout(id),
        })
        .collect()
}

/// Per node id, the incarnation that represents it: a live one before a
/// dead one (a restarted node whose clock is behind still takes over once
/// its old incarnation is declared dead), then the highest generation. Nodes
/// whose client address has not arrived yet, or whose id or address is
/// invalid, are left out.
fn choose(incarnations: &[Incarnation]) -> BTreeMap<NodeId, (Member, bool)> {
    let mut best: HashMap<&str, &Incarnation> = HashMap::new();
    for inc in incarnations {
        if inc.client_addr.is_none() {
            continue;
        }
        let entry = best.entry(inc.node_id.as_str()).or_insert(inc);
        if (inc.live, inc.generation) > (entry.live, entry.generation) {
            *entry = inc;
        }
    }
    let mut chosen = BTreeMap::new();
    for inc in best.into_values() {
        let member = NodeId::new(&inc.node_id)
            .and_then(|id| Member::new(id, inc.client_addr.as_deref().unwrap_or_default()));
        match member {
            Ok(member) => {
                chosen.insert(member.id().clone(), (member, inc.live));
            }
            Err(e) => debug!(node = %inc.node_id, error = %e, "ignoring a gossip member"),
        }
    }
    chosen
}

/// Applies the chosen incarnations to the view, one change per member that
/// changed. Members join once seen live; a dead member stays (not live)
/// with its last address until it is live again or forgotten.
fn apply(view: &MemoryMembership, chosen: &BTreeMap<NodeId, (Member, bool)>) {
    let local = view.local_id().clone();
    let current = view.view();
    for (id, (member, live)) in chosen {
        if *id == local {
            continue; // our own entry comes from our configuration
        }
        match (current.get(id), *live) {
            (None, true) => {
                info!(node = %local, peer = %id, addr = %member.addr(), "peer joined");
                view.join(member.clone());
            }
            // Back to life, or a new incarnation at another address.
            (Some(old), true) if old != member => {
                info!(node = %local, peer = %id, addr = %member.addr(), "peer is live");
                view.join(member.clone());
            }
            (Some(old), false) if old.is_live() => {
                info!(node = %local, peer = %id, "peer declared dead");
                let _ = view.set_live(id, false);
            }
            _ => {}
        }
    }
    for old in current.members() {
        if *old.id() != local && !chosen.contains_key(old.id()) {
            info!(node = %local, peer = %old.id(), "peer forgotten");
            let _ = view.leave(old.id());
        }
    }
}

/// The background task owning the chitchat handle: refreshes the view on
/// chitchat's changes, contacts seeds, and stops chitchat at the end.
struct Driver {
    view: Arc<MemoryMembership>,
    local: ChitchatId,
    chitchat: Arc<tokio::sync::Mutex<Chitchat>>,
    stop: CancellationToken,
    gossip_interval: Duration,
    seed_gossip_interval: Duration,
    /// Generations of other live incarnations of our own node id already
    /// warned about.
    warned_duplicates: HashSet<u64>,
}

type LiveNodes = watch::Receiver<BTreeMap<ChitchatId, NodeState>>;

impl Driver {
    async fn run(
        mut self,
        handle: ChitchatHandle,
        mut live: LiveNodes,
        mut seeds: watch::Receiver<Vec<SocketAddr>>,
        resolver: JoinHandle<()>,
    ) {
        let mut resync = interval(RESYNC_INTERVAL);
        resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seed_tick = interval(self.gossip_interval);
        seed_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let rounds_per_seed = u32::try_from(
            self.seed_gossip_interval.as_nanos() / self.gossip_interval.as_nanos().max(1),
        )
        .unwrap_or(u32::MAX)
        .max(1);
        let mut round: u32 = 0;
        let mut next_seed: usize = 0;
        let mut seeds_open = true;
        let terminated = handle.termination_watcher();
        tokio::pin!(terminated);

        loop {
            tokio::select! {
                () = self.stop.cancelled() => break,
                changed = live.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.refresh().await;
                }
                _ = resync.tick() => self.refresh().await,
                changed = seeds.changed(), if seeds_open => match changed {
                    // Newly resolved seeds are contacted at once.
                    Ok(()) => {
                        for addr in seeds.borrow_and_update().iter() {
                            let _ = handle.gossip(*addr);
                        }
                    }
                    Err(_) => seeds_open = false,
                },
                _ = seed_tick.tick() => {
                    round = round.wrapping_add(1);
                    let addrs = seeds.borrow().clone();
                    if addrs.is_empty() {
                        continue;
                    }
                    if self.view.view().live().nth(1).is_none() {
                        // Alone: knock on every seed each round.
                        for addr in addrs {
                            let _ = handle.gossip(addr);
                        }
                    } else if round.is_multiple_of(rounds_per_seed) {
                        if let Some(addr) = addrs.get(next_seed % addrs.len()) {
                            let _ = handle.gossip(*addr);
                        }
                        next_seed = next_seed.wrapping_add(1);
                    }
                }
                result = &mut terminated => {
                    match result {
                        Ok(()) => warn!(node = %self.local.node_id, "chitchat stopped by itself"),
                        Err(e) => error!(node = %self.local.node_id, error = %e, "chitchat failed; this node no longer sees its peers"),
                    }
                    // Nobody can be heard any more: say so rather than keep a
                    // view that looks healthy.
                    self.mark_peers_dead();
                    break;
                }
            }
        }
        self.stop.cancel();
        if let Err(e) = resolver.await {
            error!(node = %self.local.node_id, error = %e, "seed resolver task failed");
        }
        if let Err(e) = handle.shutdown().await {
            debug!(node = %self.local.node_id, error = %e, "chitchat shutdown");
        }
        info!(node = %self.local.node_id, "gossip stopped");
    }

    async fn refresh(&mut self) {
        let incarnations = incarnations(&*self.chitchat.lock().await);
        for inc in &incarnations {
            if inc.live
                && *inc.node_id == *self.local.node_id
                && inc.generation != self.local.generation_id
                && self.warned_duplicates.insert(inc.generation)
            {
                warn!(node = %self.local.node_id, other_gossip_addr = %inc.gossip_addr,
                    other_generation = inc.generation,
                    "another live node uses this node's id: two nodes are configured with one id, or this node restarted while its previous incarnation still runs");
            }
        }
        apply(&self.view, &choose(&incarnations));
    }

    fn mark_peers_dead(&self) {
        let local = self.view.local_id().clone();
        for m in self.view.view().members() {
            if *m.id() != local && m.is_live() {
                let _ = self.view.set_live(m.id(), false);
            }
        }
    }
}

/// Resolves the seeds: until every seed resolves, retries with exponential
/// backoff; then looks them up again every `refresh`. A seed that stops
/// resolving keeps its last addresses.
struct SeedResolver {
    seeds: Vec<String>,
    bound: SocketAddr,
    advertised: SocketAddr,
    retry_min: Duration,
    retry_max: Duration,
    refresh: Duration,
}

/// Looks `seed` up, giving up after [`SEED_LOOKUP_TIMEOUT`].
async fn lookup(seed: String) -> (String, Result<Vec<SocketAddr>, String>) {
    let result = match timeout(SEED_LOOKUP_TIMEOUT, tokio::net::lookup_host(seed.as_str())).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err("no addresses".to_owned())
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("lookup took over {SEED_LOOKUP_TIMEOUT:?}")),
    };
    (seed, result)
}

impl SeedResolver {
    /// Whether gossip from our socket can reach `addr` and it is not us.
    fn usable(&self, addr: SocketAddr) -> bool {
        let family_ok = match self.bound {
            SocketAddr::V4(_) => addr.is_ipv4(),
            // An unspecified IPv6 socket is dual-stack on Linux by default.
            SocketAddr::V6(b) if b.ip().is_unspecified() => true,
            SocketAddr::V6(_) => addr.is_ipv6(),
        };
        family_ok && addr != self.bound && addr != self.advertised
    }

    async fn run(self, tx: watch::Sender<Vec<SocketAddr>>, stop: CancellationToken) {
        if self.seeds.is_empty() {
            return;
        }
        let mut known: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
        let mut failures: HashMap<String, u32> = HashMap::new();
        let mut backoff = self.retry_min;
        loop {
            // Concurrently, so that a seed whose lookup hangs does not hold
            // up the others.
            let mut lookups = JoinSet::new();
            for seed in &self.seeds {
                lookups.spawn(lookup(seed.clone()));
            }
            let mut all_resolved = true;
            loop {
                let joined = tokio::select! {
                    () = stop.cancelled() => return,
                    joined = lookups.join_next() => joined,
                };
                let Some(joined) = joined else { break };
                let (seed, result) = match joined {
                    Ok(done) => done,
                    Err(e) => {
                        all_resolved = false;
                        error!(error = %e, "seed lookup task failed");
                        continue;
                    }
                };
                match result {
                    Ok(addrs) => {
                        let mut usable: Vec<SocketAddr> =
                            addrs.into_iter().filter(|a| self.usable(*a)).collect();
                        usable.sort_unstable();
                        usable.dedup();
                        if let Some(n) = failures.remove(&seed) {
                            info!(seed = %seed, addrs = ?usable, failed_attempts = n, "seed resolved");
                        } else {
                            debug!(seed = %seed, addrs = ?usable, "seed resolved");
                        }
                        known.insert(seed, usable);
                    }
                    Err(error) => {
                        all_resolved = false;
                        let n = failures.entry(seed.clone()).or_insert(0);
                        *n += 1;
                        // Warn on the first failure, then at powers of two.
                        if n.is_power_of_two() {
                            warn!(seed = %seed, error = %error, attempts = *n, "seed does not resolve yet; retrying with backoff");
                        } else {
                            debug!(seed = %seed, error = %error, attempts = *n, "seed does not resolve yet");
                        }
                    }
                }
            }
            let mut all: Vec<SocketAddr> = known.values().flatten().copied().collect();
            all.sort_unstable();
            all.dedup();
            tx.send_if_modified(|current| {
                let changed = *current != all;
                if changed {
                    *current = all;
                }
                changed
            });
            let wait = if all_resolved {
                backoff = self.retry_min;
                self.refresh
            } else {
                let wait = backoff;
                backoff = backoff.saturating_mul(2).min(self.retry_max);
                wait
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(id: &str, generation: u64, addr: Option<&str>, live: bool) -> Incarnation {
        Incarnation {
            node_id: id.to_owned(),
            generation,
            gossip_addr: SocketAddr::from(([127, 0, 0, 1], 7000)),
            client_addr: addr.map(str::to_owned),
            live,
            detection_timeout: None,
        }
    }

    fn chosen_addrs(incs: &[Incarnation]) -> Vec<(String, String, bool)> {
        choose(incs)
            .into_iter()
            .map(|(id, (m, live))| (id.to_string(), m.addr(), live))
            .collect()
    }

    #[test]
    fn choose_prefers_live_then_newest_and_skips_incomplete() {
        let got = chosen_addrs(&[
            inc("a", 1, Some("h:1"), true),
            inc("a", 2, Some("h:2"), true), // newer incarnation, live: wins
            inc("b", 5, Some("h:5"), false),
            inc("b", 3, Some("h:3"), true), // older but live: wins over a dead one
            inc("c", 9, None, true),        // state not arrived: left out
            inc("c", 1, Some("h:7"), false), // ... so the old one stands
            inc("d", 1, Some("h:8"), false),
            inc("bad id", 1, Some("h:9"), true),
            inc("e", 1, Some("nohost"), true),
        ]);
        assert_eq!(
            got,
            [
                ("a".into(), "h:2".into(), true),
                ("b".into(), "h:3".into(), true),
                ("c".into(), "h:7".into(), false),
                ("d".into(), "h:8".into(), false),
            ]
        );
    }

    #[test]
    fn apply_joins_live_nodes_marks_dead_and_forgets() {
        let local = Member::new(NodeId::new("a").unwrap(), "h:1").unwrap();
        let view = MemoryMembership::new(local);
        // A node never seen live does not join.
        apply(
            &view,
            &choose(&[
                inc("a", 1, Some("h:1"), true),
                inc("b", 1, Some("h:2"), false),
            ]),
        );
        assert_eq!(view.view().version(), 1);
        apply(
            &view,
            &choose(&[
                inc("a", 1, Some("h:1"), true),
                inc("b", 1, Some("h:2"), true),
            ]),
        );
        assert_eq!(view.view().version(), 2);
        // No change, no version.
        apply(
            &view,
            &choose(&[
                inc("a", 1, Some("h:1"), true),
                inc("b", 1, Some("h:2"), true),
            ]),
        );
        assert_eq!(view.view().version(), 2);
        apply(
            &view,
            &choose(&[
                inc("a", 1, Some("h:1"), true),
                inc("b", 1, Some("h:2"), false),
            ]),
        );
        let v = view.view();
        assert_eq!(v.version(), 3);
        let b = v.get(&NodeId::new("b").unwrap()).unwrap();
        assert!(!b.is_live());
        // A new incarnation at a new address: one member, new address, live.
        apply(
            &view,
            &choose(&[
                inc("a", 1, Some("h:1"), true),
                inc("b", 1, Some("h:2"), false),
                inc("b", 2, Some("h:3"), true),
            ]),
        );
        let v = view.view();
        assert_eq!((v.version(), v.members().len()), (4, 2));
        let b = v.get(&NodeId::new("b").unwrap()).unwrap();
        assert_eq!((b.addr().as_str(), b.is_live()), ("h:3", true));
        // Forgotten by chitchat: leaves. The local node never does.
        apply(&view, &BTreeMap::new());
        let v = view.view();
        assert_eq!(v.version(), 5);
        assert_eq!(v.live().map(NodeId::as_str).collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn config_validation() {
        let ok = GossipConfig::new(
            NodeId::new("n").unwrap(),
            "shoal-0.shoal:6379",
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        assert_eq!(ok.validate(), Ok(()));
        let check = |edit: &dyn Fn(&mut GossipConfig), field: &str| {
            let mut c = ok.clone();
            edit(&mut c);
            match c.validate() {
                Err(ClusterError::InvalidGossipConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        };
        check(&|c| c.gossip_interval = Duration::ZERO, "gossip_interval");
        check(
            &|c| c.failure_detection.phi_threshold = f64::NAN,
            "failure_detection.phi_threshold",
        );
        check(
            &|c| c.failure_detection.sampling_window = 0,
            "failure_detection.sampling_window",
        );
        check(
            &|c| c.seed_retry_min = Duration::from_secs(10),
            "seed_retry_min",
        );
        check(&|c| c.seeds = vec!["host".into()], "seeds");
        check(&|c| c.seeds = vec!["host:0".into()], "seeds");
        check(&|c| c.seeds = vec![":7946".into()], "seeds");
        let mut c = ok.clone();
        c.seeds = vec![
            "shoal-0.shoal.default.svc:7946".into(),
            "10.0.0.1:7946".into(),
            "[::1]:7946".into(),
        ];
        assert_eq!(c.validate(), Ok(()));
        c.advertise_addr = "nohost".into();
        assert!(matches!(
            c.validate(),
            Err(ClusterError::InvalidAddress { .. })
        ));
    }

    #[test]
    fn advertise_address_rules() {
        let mut c = GossipConfig::new(
            NodeId::new("n").unwrap(),
            "h:1",
            SocketAddr::from(([0, 0, 0, 0], 0)),
        );
        let bound = SocketAddr::from(([0, 0, 0, 0], 7946));
        assert!(
            gossip_advertise_addr(&c, bound).is_err(),
            "0.0.0.0 cannot be advertised"
        );
        c.gossip_advertise_addr = Some(SocketAddr::from(([10, 1, 2, 3], 0)));
        assert_eq!(
            gossip_advertise_addr(&c, bound),
            Ok(SocketAddr::from(([10, 1, 2, 3], 7946)))
        );
        let bound = SocketAddr::from(([127, 0, 0, 1], 5000));
        c.gossip_advertise_addr = None;
        assert_eq!(gossip_advertise_addr(&c, bound), Ok(bound));
    }

    #[test]
    fn generations_increase() {
        let a = next_generation();
        let b = next_generation();
        assert!(b > a);
        assert!(a > 1_700_000_000_000, "milliseconds since the epoch");
    }
}
