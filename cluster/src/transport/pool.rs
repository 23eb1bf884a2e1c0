//! [`PeerPool`]: the client side of the peer transport. One lazily connected
//! channel per peer, deadlines, retries of idempotent calls, a circuit
//! breaker and stats per peer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper_util::rt::TokioIo;
use shoal_proto::{
    DEFAULT_CALL_TIMEOUT, ForwardRequest, ForwardStatus, PeerClient, PingRequest, PullSlotRequest,
    SlotChunk, with_deadline,
};
use tokio::net::TcpStream;
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

use super::breaker::{Admit, Breaker, BreakerPolicy, BreakerState, RetryPolicy};
use super::{
    DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_MAX_MESSAGE_SIZE, ForwardCall,
    ForwardOutcome,
};
use crate::error::ClusterError;
use crate::membership::NodeId;
use crate::slot::SLOTS;

/// Settings of a [`PeerPool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Deadline of one call (Forward, Ping, opening PullSlot), connection
    /// set-up included; each retry has its own.
    pub call_timeout: Duration,
    /// Longest wait for a TCP connection to a peer. Within `call_timeout`
    /// when smaller; a call never waits longer than its deadline.
    pub connect_timeout: Duration,
    /// Longest wait for each message of a PullSlot stream (the call
    /// deadline covers only the stream's opening).
    pub chunk_timeout: Duration,
    /// Largest message encoded or decoded; should match the peers'
    /// [`ServeConfig::max_message_size`](super::ServeConfig).
    pub max_message_size: usize,
    /// Retries of idempotent calls.
    pub retry: RetryPolicy,
    /// Per-peer circuit breaker.
    pub breaker: BreakerPolicy,
    /// HTTP/2 keepalive PING interval, sent even on idle connections.
    pub keepalive_interval: Duration,
    /// Wait for a keepalive PING's answer before the connection is closed.
    pub keepalive_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            call_timeout: DEFAULT_CALL_TIMEOUT,
            connect_timeout: Duration::from_secs(1),
            chunk_timeout: Duration::from_secs(10),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
        }
    }
}

/// A peer's answer to [`PeerPool::ping`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pong {
    /// The node that answered (always the one pinged; see
    /// [`ClusterError::PeerIdentityMismatch`]).
    pub id: NodeId,
    /// Its slot-map epoch.
    pub epoch: u64,
    /// Round trip of the call, measured with this node's monotonic clock.
    pub rtt: Duration,
}

/// What the pool knows about one peer, for CLUSTER LINKS and INFO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStats {
    pub id: NodeId,
    /// The address calls currently go to (`host:port`).
    pub addr: String,
    pub breaker: BreakerState,
    /// Failed calls since the last success.
    pub consecutive_failures: u32,
    /// Calls sent (retries included; calls refused by the breaker excluded).
    pub calls: u64,
    /// Calls that failed at the transport level (unreachable, deadline,
    /// connection lost); a status the peer chose to answer is not a failure.
    pub failures: u64,
    /// Calls refused by the open breaker without being sent.
    pub rejected: u64,
    /// Retries sent (included in `calls`).
    pub retries: u64,
    /// TCP connection attempts to the peer (all addresses it has had).
    pub connects: u64,
    /// Round trip of the last successful Ping.
    pub last_rtt: Option<Duration>,
    /// The last failure, as text.
    pub last_error: Option<String>,
}

/// Clients for the peers of one node, keyed by node id.
///
/// Each peer has one tonic [`Channel`], created on its first call and
/// connected lazily: all concurrent calls to a peer share its single HTTP/2
/// connection, which is re-established on the next call after it breaks.
/// Cheap to clone (a handle to shared state); safe to call from many tasks.
///
/// Retries: a call is retried only after a transport failure (the peer was
/// unreachable, did not answer within the deadline, or the connection broke),
/// never after a status the peer chose (`FAILED_PRECONDITION`, ...), and only
/// for idempotent calls: Ping, opening PullSlot, and Forward when the caller
/// passes `retry: true` (a read-only command). A forwarded write is sent once:
/// after a timeout or a lost connection it may or may not have run, and
/// running it twice is not the transport's call to make.
///
/// Circuit breaker: after [`BreakerPolicy::failure_threshold`] consecutive
/// transport failures of a peer, its calls fail with
/// [`ClusterError::CircuitOpen`] at once, without a connection attempt, for
/// [`BreakerPolicy::cool_down`]; then one probe call is let through, and its
/// success closes the breaker (its failure reopens it). Opening the breaker
/// also drops the peer's channel, so the probe starts on a fresh connection.
#[derive(Clone)]
pub struct PeerPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    local: NodeId,
    config: PoolConfig,
    peers: RwLock<HashMap<NodeId, Arc<Link>>>,
}

/// One peer.
struct Link {
    id: NodeId,
    state: Mutex<LinkState>,
    calls: AtomicU64,
    failures: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
    /// Shared with every connector of this peer's channels.
    connects: Arc<AtomicU64>,
    /// Microseconds; `u64::MAX` until the first successful Ping.
    last_rtt_us: AtomicU64,
}

struct LinkState {
    /// `host:port` as given.
    addr: String,
    /// `http://host:port` (IPv6 hosts bracketed).
    endpoint: Endpoint,
    /// Created by the first call after creation, an address change or the
    /// breaker opening.
    channel: Option<Channel>,
    /// Bumped when the address changes; outcomes of calls sent to an older
    /// address do not move the breaker.
    generation: u64,
    breaker: Breaker,
    last_error: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a call failing with `code` says the peer (or the way to it) is
/// unhealthy, rather than that it answered with a refusal. Only these are
/// retried and counted by the breaker.
fn is_transport_failure(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
    )
}

/// The status message plus its source chain (where tonic keeps the
/// transport error, e.g. "Connection refused (os error 111)").
fn describe(status: &Status) -> String {
    let mut out = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        let text = err.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = err.source();
    }
    out
}

/// `host:port` to an endpoint of `http://host:port`, validated the way
/// [`crate::Member`] validates addresses.
fn endpoint_for(addr: &str) -> Result<Endpoint, ClusterError> {
    let bad = |reason| ClusterError::InvalidAddress {
        addr: addr.to_owned(),
        reason,
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no ':port'"))?;
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    if !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("host is not printable ASCII without spaces"));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => return Err(bad("port is not a number 1-65535")),
        Ok(_) => {}
    }
    let uri = if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    };
    Endpoint::from_shared(uri).map_err(|_| bad("not usable in a URI"))
}

impl PeerPool {
    /// A pool for the node `local` (sent as the origin of forwarded commands
    /// and the sender of pings), with no peers yet.
    #[must_use]
    pub fn new(local: NodeId, config: PoolConfig) -> PeerPool {
        PeerPool {
            inner: Arc::new(PoolInner {
                local,
                config,
                peers: RwLock::new(HashMap::new()),
            }),
        }
    }

    #[must_use]
    pub fn local(&self) -> &NodeId {
        &self.inner.local
    }

    #[must_use]
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// Sets where `peer` listens (`host:port`), adding the peer if it is new.
    /// A changed address (a node back with a new IP) replaces the peer's
    /// channel and closes its breaker: calls already sent finish on the old
    /// connection, new ones go to the new address. Returns whether anything
    /// changed. Needs no runtime (channels are created by the first call).
    ///
    /// # Errors
    ///
    /// [`ClusterError::InvalidAddress`] when `addr` is not `host:port`.
    pub fn update_address(&self, peer: &NodeId, addr: &str) -> Result<bool, ClusterError> {
        let endpoint = endpoint_for(addr)?;
        let existing = self
            .inner
            .peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(peer)
            .cloned();
        if let Some(link) = existing {
            let mut state = lock(&link.state);
            if state.addr == addr {
                return Ok(false);
            }
            tracing::info!(peer = %peer, from = %state.addr, to = %addr, "peer address changed");
            state.addr = addr.to_owned();
            state.endpoint = endpoint;
            state.channel = None;
            state.generation += 1;
            state.breaker = Breaker::new();
            return Ok(true);
        }
        let mut peers = self
            .inner
            .peers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if peers.contains_key(peer) {
            // Added meanwhile by another caller: update that one.
            drop(peers);
            return self.update_address(peer, addr);
        }
        peers.insert(
            peer.clone(),
            Arc::new(Link {
                id: peer.clone(),
                state: Mutex::new(LinkState {
                    addr: addr.to_owned(),
                    endpoint,
                    channel: None,
                    generation: 0,
                    breaker: Breaker::new(),
                    last_error: None,
                }),
                calls: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                retries: AtomicU64::new(0),
                connects: Arc::new(AtomicU64::new(0)),
                last_rtt_us: AtomicU64::new(u64::MAX),
            }),
        );
        Ok(true)
    }

    /// Forgets `peer` (it left the cluster). Calls in flight finish; the
    /// connection closes when the last one does. Returns whether it was known.
    pub fn remove(&self, peer: &NodeId) -> bool {
        self.inner
            .peers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(peer)
            .is_some()
    }

    /// Where calls to `peer` go, if it is known.
    #[must_use]
    pub fn address(&self, peer: &NodeId) -> Option<String> {
        self.link(peer)
            .ok()
            .map(|link| lock(&link.state).addr.clone())
    }

    /// Stats of `peer`, if it is known.
    #[must_use]
    pub fn stats(&self, peer: &NodeId) -> Option<PeerStats> {
        self.link(peer).ok().map(|link| link.stats())
    }

    /// Stats of every known peer, by node id.
    #[must_use]
    pub fn all_stats(&self) -> Vec<PeerStats> {
        let links: Vec<Arc<Link>> = self
            .inner
            .peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut stats: Vec<PeerStats> = links.iter().map(|link| link.stats()).collect();
        stats.sort_by(|a, b| a.id.cmp(&b.id));
        stats
    }

    /// Forwards one client command to `peer`, the owner of its slot, and
    /// returns what became of it. `retry`: whether the command may run twice
    /// (a read); a write must pass `false`.
    ///
    /// # Errors
    ///
    /// [`ClusterError::UnknownNode`], [`ClusterError::CircuitOpen`],
    /// [`ClusterError::PeerCall`] (the last attempt's status),
    /// [`ClusterError::PeerProtocol`] (a reply without a valid status).
    pub async fn forward(
        &self,
        peer: &NodeId,
        call: ForwardCall,
        retry: bool,
    ) -> Result<ForwardOutcome, ClusterError> {
        let message = ForwardRequest {
            command: call.command,
            db: call.db,
            epoch: call.epoch,
            resp: u32::from(call.resp),
            origin: self.inner.local.as_str().to_owned(),
        };
        let timeout = self.inner.config.call_timeout;
        let (link, addr, reply) = self
            .call(peer, "Forward", retry, move |mut client| {
                let message = message.clone();
                async move {
                    with_deadline(timeout, message, |r| client.forward(r))
                        .await
                        .map(tonic::Response::into_inner)
                }
            })
            .await?;
        let epoch = reply.epoch;
        match ForwardStatus::try_from(reply.status) {
            Ok(ForwardStatus::Ok) => Ok(ForwardOutcome::Ok {
                reply: reply.reply,
                epoch,
            }),
            Ok(ForwardStatus::StaleEpoch) => Ok(ForwardOutcome::StaleEpoch { epoch }),
            Ok(ForwardStatus::NotOwner) => Ok(ForwardOutcome::NotOwner { epoch }),
            Ok(ForwardStatus::Unspecified) | Err(_) => {
                let err = ClusterError::PeerProtocol {
                    peer: link.id.clone(),
                    addr,
                    call: "Forward",
                    reason: format!(
                        "status {} is not OK, STALE_EPOCH or NOT_OWNER",
                        reply.status
                    ),
                };
                lock(&link.state).last_error = Some(err.to_string());
                Err(err)
            }
        }
    }

    /// Pings `peer` with this node's `epoch`: its id, its epoch, and the
    /// round trip (also kept in [`PeerStats::last_rtt`]). Retried.
    ///
    /// # Errors
    ///
    /// As [`PeerPool::forward`], plus [`ClusterError::PeerIdentityMismatch`]
    /// when another node answers at the peer's address.
    pub async fn ping(&self, peer: &NodeId, epoch: u64) -> Result<Pong, ClusterError> {
        let sent_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let message = PingRequest {
            node_id: self.inner.local.as_str().to_owned(),
            epoch,
            sent_at_ms,
        };
        let timeout = self.inner.config.call_timeout;
        let (link, addr, (reply, rtt)) = self
            .call(peer, "Ping", true, move |mut client| {
                let message = message.clone();
                async move {
                    let started = Instant::now();
                    let reply = with_deadline(timeout, message, |r| client.ping(r)).await?;
                    Ok((reply.into_inner(), started.elapsed()))
                }
            })
            .await?;
        if reply.node_id != link.id.as_str() {
            let err = ClusterError::PeerIdentityMismatch {
                peer: link.id.clone(),
                addr,
                answered: reply.node_id,
            };
            lock(&link.state).last_error = Some(err.to_string());
            return Err(err);
        }
        let rtt_us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX - 1);
        link.last_rtt_us.store(rtt_us, Ordering::Relaxed);
        Ok(Pong {
            id: link.id.clone(),
            epoch: reply.epoch,
            rtt,
        })
    }

    /// Opens the stream of `slot`'s records on `peer`, from `cursor` (0 for
    /// the start), for this node at `epoch`. Opening is retried; read the
    /// chunks with [`SlotPull::next_chunk`], each bounded by
    /// [`PoolConfig::chunk_timeout`].
    ///
    /// # Errors
    ///
    /// [`ClusterError::SlotOutOfRange`], or as [`PeerPool::forward`]; the
    /// peer's refusals (`FAILED_PRECONDITION` for a stale epoch, `NOT_FOUND`)
    /// are [`ClusterError::PeerCall`] with that code.
    pub async fn pull_slot(
        &self,
        peer: &NodeId,
        slot: u16,
        epoch: u64,
        cursor: u64,
    ) -> Result<SlotPull, ClusterError> {
        if slot >= SLOTS {
            return Err(ClusterError::SlotOutOfRange {
                slot: u32::from(slot),
            });
        }
        let message = PullSlotRequest {
            slot: u32::from(slot),
            epoch,
            cursor,
        };
        let timeout = self.inner.config.call_timeout;
        let (link, addr, stream) = self
            .call(peer, "PullSlot", true, move |mut client| async move {
                with_deadline(timeout, message, |r| client.pull_slot(r))
                    .await
                    .map(tonic::Response::into_inner)
            })
            .await?;
        let generation = lock(&link.state).generation;
        Ok(SlotPull {
            link,
            addr,
            generation,
            policy: self.inner.config.breaker,
            chunk_timeout: self.inner.config.chunk_timeout,
            slot,
            cursor,
            stream: Some(stream),
            end: None,
        })
    }

    fn link(&self, peer: &NodeId) -> Result<Arc<Link>, ClusterError> {
        self.inner
            .peers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(peer)
            .cloned()
            .ok_or_else(|| ClusterError::UnknownNode { id: peer.clone() })
    }

    /// Runs `attempt` against `peer` through the breaker, retrying transport
    /// failures when `retry`. Returns the link, the address the successful
    /// attempt went to, and its result.
    async fn call<T, F, Fut>(
        &self,
        peer: &NodeId,
        call: &'static str,
        retry: bool,
        mut attempt: F,
    ) -> Result<(Arc<Link>, String, T), ClusterError>
    where
        F: FnMut(PeerClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let config = &self.inner.config;
        let max_attempts = if retry {
            config.retry.max_attempts.max(1)
        } else {
            1
        };
        let mut attempts = 0u32;
        let mut last: Option<(Code, String)> = None;
        loop {
            // Looked up per attempt: a retry goes to the peer's current address.
            let link = self.link(peer)?;
            let ticket = match self.admit(&link) {
                Ok(ticket) => ticket,
                Err(Refusal {
                    addr,
                    failures,
                    retry_in,
                }) => {
                    link.rejected.fetch_add(1, Ordering::Relaxed);
                    return Err(match last {
                        // Refused mid-retry (the breaker opened): report the
                        // failures this call saw.
                        Some((code, message)) => ClusterError::PeerCall {
                            peer: link.id.clone(),
                            addr,
                            call,
                            attempts,
                            code,
                            message,
                        },
                        None => ClusterError::CircuitOpen {
                            peer: link.id.clone(),
                            addr,
                            call,
                            failures,
                            retry_in,
                        },
                    });
                }
            };
            attempts += 1;
            link.calls.fetch_add(1, Ordering::Relaxed);
            if attempts > 1 {
                link.retries.fetch_add(1, Ordering::Relaxed);
            }
            let client = PeerClient::new(ticket.channel.clone())
                .max_decoding_message_size(config.max_message_size)
                .max_encoding_message_size(config.max_message_size);
            match attempt(client).await {
                Ok(value) => {
                    let addr = ticket.addr.clone();
                    ticket.settle(None, &config.breaker);
                    return Ok((link, addr, value));
                }
                Err(status) => {
                    let code = status.code();
                    let message = describe(&status);
                    let addr = ticket.addr.clone();
                    let transport = is_transport_failure(code);
                    let text = format!("{call}: {code:?}: {message}");
                    if transport {
                        link.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(peer = %link.id, %addr, attempt = attempts, error = %text, "peer call failed");
                        ticket.settle(Some(text), &config.breaker);
                    } else {
                        // The peer answered: healthy, but the call is refused.
                        ticket.settle(None, &config.breaker);
                        lock(&link.state).last_error = Some(text);
                    }
                    if !transport || attempts >= max_attempts {
                        return Err(ClusterError::PeerCall {
                            peer: link.id.clone(),
                            addr,
                            call,
                            attempts,
                            code,
                            message,
                        });
                    }
                    last = Some((code, message));
                    tokio::time::sleep(config.retry.backoff(attempts)).await;
                }
            }
        }
    }

    /// Asks `link`'s breaker whether a call may go, and gets the channel.
    fn admit(&self, link: &Arc<Link>) -> Result<Ticket, Refusal> {
        let mut state = lock(&link.state);
        match state.breaker.admit(Instant::now()) {
            Admit::Refuse { retry_in } => Err(Refusal {
                addr: state.addr.clone(),
                failures: state.breaker.consecutive_failures(),
                retry_in,
            }),
            Admit::Go { probe } => {
                if probe {
                    tracing::info!(peer = %link.id, addr = %state.addr, "circuit half-open: probing");
                }
                let channel = match &state.channel {
                    Some(channel) => channel.clone(),
                    None => {
                        let channel = self.channel(link, state.endpoint.clone());
                        state.channel = Some(channel.clone());
                        channel
                    }
                };
                Ok(Ticket {
                    link: Arc::clone(link),
                    addr: state.addr.clone(),
                    channel,
                    generation: state.generation,
                    probe,
                    settled: false,
                })
            }
        }
    }

    /// A new lazily connected channel to `endpoint` (needs a tokio runtime:
    /// tonic spawns the channel's worker task).
    fn channel(&self, link: &Link, endpoint: Endpoint) -> Channel {
        let config = &self.inner.config;
        endpoint
            .connect_timeout(config.connect_timeout)
            .http2_keep_alive_interval(config.keepalive_interval)
            .keep_alive_timeout(config.keepalive_timeout)
            .keep_alive_while_idle(true)
            .http2_adaptive_window(true)
            .connect_with_connector_lazy(CountingConnector {
                connects: Arc::clone(&link.connects),
            })
    }
}

/// Why the breaker refused a call.
struct Refusal {
    addr: String,
    failures: u32,
    retry_in: Duration,
}

/// Permission to send one call, and the obligation to report its outcome.
struct Ticket {
    link: Arc<Link>,
    addr: String,
    channel: Channel,
    generation: u64,
    probe: bool,
    settled: bool,
}

impl Ticket {
    /// Reports the outcome: `None` for success (the peer answered), or the
    /// transport failure.
    fn settle(mut self, failure: Option<String>, policy: &BreakerPolicy) {
        self.settled = true;
        self.link
            .outcome(self.generation, self.probe, failure, policy);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // The caller dropped the call's future: if it was the half-open
        // probe, let another call probe instead.
        if !self.settled && self.probe {
            let mut state = lock(&self.link.state);
            if state.generation == self.generation {
                state.breaker.probe_abandoned(Instant::now());
            }
        }
    }
}

impl Link {
    fn outcome(
        &self,
        generation: u64,
        probe: bool,
        failure: Option<String>,
        policy: &BreakerPolicy,
    ) {
        let mut state = lock(&self.state);
        let current = state.generation == generation;
        match failure {
            None => {
                if current && state.breaker.success() {
                    tracing::info!(peer = %self.id, addr = %state.addr, "circuit closed");
                }
            }
            Some(error) => {
                state.last_error = Some(error);
                if current && state.breaker.failure(Instant::now(), probe, policy) {
                    tracing::warn!(
                        peer = %self.id,
                        addr = %state.addr,
                        failures = state.breaker.consecutive_failures(),
                        cool_down = ?policy.cool_down,
                        last_error = state.last_error.as_deref().unwrap_or(""),
                        "circuit open"
                    );
                    // The probe after the cool-down starts on a fresh connection.
                    state.channel = None;
                }
            }
        }
    }

    fn stats(&self) -> PeerStats {
        let state = lock(&self.state);
        let rtt = self.last_rtt_us.load(Ordering::Relaxed);
        PeerStats {
            id: self.id.clone(),
            addr: state.addr.clone(),
            breaker: state.breaker.state(),
            consecutive_failures: state.breaker.consecutive_failures(),
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
            last_rtt: (rtt != u64::MAX).then(|| Duration::from_micros(rtt)),
            last_error: state.last_error.clone(),
        }
    }
}

/// An open PullSlot stream. Read it with [`SlotPull::next_chunk`] until
/// `Ok(None)`; after an error the stream is over and the transfer resumes
/// with a new [`PeerPool::pull_slot`] from [`SlotPull::cursor`].
pub struct SlotPull {
    link: Arc<Link>,
    addr: String,
    generation: u64,
    policy: BreakerPolicy,
    chunk_timeout: Duration,
    slot: u16,
    cursor: u64,
    /// `None` once the stream ended (done or failed).
    stream: Option<Streaming<SlotChunk>>,
    /// `Some(None)` after the final chunk, `Some(Some(err))` after a failure.
    end: Option<Option<ClusterError>>,
}

impl std::fmt::Debug for SlotPull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotPull")
            .field("peer", &self.link.id)
            .field("addr", &self.addr)
            .field("slot", &self.slot)
            .field("cursor", &self.cursor)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl SlotPull {
    /// The next chunk, waiting at most [`PoolConfig::chunk_timeout`] for it;
    /// `Ok(None)` after the chunk marked `done`.
    ///
    /// # Errors
    ///
    /// [`ClusterError::SlotStreamStalled`] when nothing arrived in time,
    /// [`ClusterError::SlotStreamBroken`] when the stream failed or ended
    /// before its final chunk. Both carry the cursor to resume from; the same
    /// error is returned again by later calls.
    pub async fn next_chunk(&mut self) -> Result<Option<SlotChunk>, ClusterError> {
        match &self.end {
            Some(None) => return Ok(None),
            Some(Some(err)) => return Err(err.clone()),
            None => {}
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        let failure = match tokio::time::timeout(self.chunk_timeout, stream.message()).await {
            Ok(Ok(Some(chunk))) => {
                self.cursor = chunk.cursor;
                if chunk.done {
                    self.end = Some(None);
                    self.stream = None;
                }
                self.link
                    .outcome(self.generation, false, None, &self.policy);
                return Ok(Some(chunk));
            }
            Err(_elapsed) => (
                ClusterError::SlotStreamStalled {
                    peer: self.link.id.clone(),
                    addr: self.addr.clone(),
                    slot: self.slot,
                    cursor: self.cursor,
                    waited: self.chunk_timeout,
                },
                true,
            ),
            Ok(Err(status)) => (
                ClusterError::SlotStreamBroken {
                    peer: self.link.id.clone(),
                    addr: self.addr.clone(),
                    slot: self.slot,
                    cursor: self.cursor,
                    code: status.code(),
                    message: describe(&status),
                },
                is_transport_failure(status.code()),
            ),
            Ok(Ok(None)) => (
                ClusterError::SlotStreamBroken {
                    peer: self.link.id.clone(),
                    addr: self.addr.clone(),
                    slot: self.slot,
                    cursor: self.cursor,
                    code: Code::Ok,
                    message: "stream ended before its final chunk".to_owned(),
                },
                false,
            ),
        };
        let (err, transport) = failure;
        // Dropping the stream resets it, so the peer stops sending.
        self.stream = None;
        if transport {
            self.link.failures.fetch_add(1, Ordering::Relaxed);
            self.link
                .outcome(self.generation, false, Some(err.to_string()), &self.policy);
        } else {
            lock(&self.link.state).last_error = Some(err.to_string());
        }
        self.end = Some(Some(err.clone()));
        Err(err)
    }

    /// Where to resume: the cursor of the last chunk received (or the
    /// starting cursor before any).
    #[must_use]
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    #[must_use]
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// Whether the final chunk has been received.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self.end, Some(None))
    }
}

/// Connects TCP to the channel's URI (nodelay on) and counts the attempts,
/// which [`PeerStats::connects`] reports. tonic wraps it with the endpoint's
/// connect timeout.
#[derive(Clone)]
struct CountingConnector {
    connects: Arc<AtomicU64>,
}

impl Service<Uri> for CountingConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        self.connects.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let host = uri
                .host()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host in URI"))?;
            let port = uri
                .port_u16()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no port in URI"))?;
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(stream))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_uris() {
        let uri = |addr| endpoint_for(addr).map(|e| e.uri().to_string()).ok();
        assert_eq!(
            uri("10.0.0.1:7000").as_deref(),
            Some("http://10.0.0.1:7000/")
        );
        assert_eq!(
            uri("shoal-0.shoal.default.svc:7000").as_deref(),
            Some("http://shoal-0.shoal.default.svc:7000/")
        );
        assert_eq!(uri("::1:7000").as_deref(), Some("http://[::1]:7000/"));
        assert_eq!(uri("[::1]:7000").as_deref(), Some("http://[::1]:7000/"));
        for bad in [
            "",
            "host",
            ":7000",
            "host:0",
            "host:x",
            "host:70000",
            "a b:1",
        ] {
            assert!(
                matches!(endpoint_for(bad), Err(ClusterError::InvalidAddress { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_transport_codes_count_as_failures() {
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::Cancelled] {
            assert!(is_transport_failure(code), "{code:?}");
        }
        for code in [
            Code::FailedPrecondition,
            Code::NotFound,
            Code::InvalidArgument,
            Code::ResourceExhausted,
        ] {
            assert!(!is_transport_failure(code), "{code:?}");
        }
    }
}
