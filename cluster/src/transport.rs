//! The peer transport: how a node serves the `shoal.peer.v1` protocol to the
//! other nodes ([`serve`] + [`PeerHandler`]) and how it calls them
//! ([`PeerPool`]).
//!
//! Like the rest of the crate it moves opaque bytes: a forwarded command, its
//! reply and a slot's records pass through untouched; only the handler (the
//! server crate's execution path) interprets them.
//!
//! Server side: [`serve`] runs tonic's `PeerServer` on a listener with the
//! message size limit raised (tonic refuses messages over 4 MiB by default;
//! a forwarded `SET` may carry Redis's largest bulk, 512 MiB) and delegates
//! every call to an `Arc<dyn PeerHandler>`. It stops on a
//! [`CancellationToken`]: the listener closes at once, open PullSlot streams
//! end with `UNAVAILABLE`, idle connections are closed, in-flight calls get
//! [`ServeConfig::shutdown_grace`] to finish.
//!
//! Client side: [`PeerPool`] keeps one lazily connected tonic channel (one
//! HTTP/2 connection, multiplexing every concurrent call) per peer node id,
//! bounds every call with a deadline, retries idempotent calls with
//! exponential backoff and jitter, and runs a circuit breaker per peer so
//! that calls to a dead peer fail at once instead of each waiting for a
//! connection attempt. [`PeerStats`] reports per peer what CLUSTER LINKS and
//! INFO need.

mod breaker;
mod pool;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use shoal_proto::{
    ForwardReply, ForwardRequest, ForwardStatus, Peer, PeerServer, PingReply, PingRequest,
    PullSlotRequest,
};
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response};

use crate::error::ClusterError;
use crate::membership::NodeId;
use crate::slot::SLOTS;

pub use breaker::{BreakerPolicy, BreakerState, RetryPolicy};
pub use pool::{PeerPool, PeerStats, Pong, PoolConfig, SlotPull};
pub use shoal_proto::{Record, SlotChunk};
/// The attribute for implementing [`PeerHandler`]: `#[shoal_cluster::transport::async_trait]`.
pub use tonic::async_trait;
/// The status a [`PeerHandler::pull_slot`] refusal or chunk error carries.
pub use tonic::{Code, Status};

/// Default limit of one peer message, both directions: Redis's
/// `proto-max-bulk-len` (512 MiB) plus 1 MiB for the rest of the command
/// (name, key, RESP framing) and the protobuf envelope.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = (512 << 20) + (1 << 20);

/// Default HTTP/2 keepalive: a PING every this often on every peer
/// connection, idle or not, on both sides.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Default wait for the keepalive PING's answer before the connection is
/// declared dead and closed (a peer whose host vanished without a FIN).
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// One client command forwarded to its slot's owner (see `ForwardRequest`
/// in `peer.proto`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardCall {
    /// The database the client connection has selected (0 in cluster mode).
    pub db: u32,
    /// The client connection's protocol, 2 or 3; the reply is encoded in it.
    pub resp: u8,
    /// The sender's slot-map epoch when it chose the receiver as the owner.
    pub epoch: u64,
    /// The raw RESP request, as the client sent it. Opaque here.
    pub command: Bytes,
}

/// What became of a forwarded command. Every variant carries the receiver's
/// slot-map epoch (the protocol sends it with every status), so the sender
/// can notice that its own map is behind even when the command ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// The command ran; `reply` is its complete RESP reply (possibly an
    /// error reply such as `-WRONGTYPE ...`), to be written to the client as is.
    Ok { reply: Bytes, epoch: u64 },
    /// Not executed: the sender's epoch is older than the receiver's, which
    /// is `epoch`. The client gets `-TRYAGAIN`; never forwarded again.
    StaleEpoch { epoch: u64 },
    /// Not executed: in the receiver's map (at `epoch`) it does not own the
    /// command's slot. The sender refreshes its map; never forwarded again.
    NotOwner { epoch: u64 },
}

impl ForwardOutcome {
    /// The receiver's epoch when it answered.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        match *self {
            ForwardOutcome::Ok { epoch, .. }
            | ForwardOutcome::StaleEpoch { epoch }
            | ForwardOutcome::NotOwner { epoch } => epoch,
        }
    }
}

/// Who answered a Ping: the node's id and its slot-map epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub id: NodeId,
    pub epoch: u64,
}

/// A slot's records as the handler streams them: chunks in cursor order, the
/// last with `done` set. An `Err` item ends the stream with that status.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<SlotChunk, Status>> + Send + 'static>>;

/// What a node does when a peer calls it. The server crate implements it on
/// top of its execution path; [`serve`] calls it. Object safe (boxed futures
/// via `async_trait`), so it is passed as `Arc<dyn PeerHandler>`.
///
/// The transport has already validated what it can without parsing a
/// command: the sender's node id, the RESP version (2 or 3) and the slot
/// number (below 16384); malformed requests get `INVALID_ARGUMENT` without
/// reaching the handler.
#[tonic::async_trait]
pub trait PeerHandler: Send + Sync + 'static {
    /// Executes a command forwarded by `origin`, or refuses it without
    /// executing it when `call.epoch` is older than this node's map
    /// ([`ForwardOutcome::StaleEpoch`]) or this node does not own the
    /// command's slot ([`ForwardOutcome::NotOwner`]). Never forwards it
    /// further (one hop). Infallible: a command that fails has an error
    /// reply, which is an `Ok` outcome.
    async fn forward(&self, origin: NodeId, call: ForwardCall) -> ForwardOutcome;

    /// Answers a ping from `from`, whose slot-map epoch is `epoch`, with this
    /// node's id and epoch.
    async fn ping(&self, from: NodeId, epoch: u64) -> PeerInfo;

    /// Opens the stream of `slot`'s records from `cursor` (0 = the start) for
    /// a puller whose map is at `epoch`. Refusals are statuses, as
    /// `peer.proto` says: `FAILED_PRECONDITION` when `epoch` is older than
    /// this node's map, `NOT_FOUND` when the slot is not held here.
    async fn pull_slot(&self, slot: u16, epoch: u64, cursor: u64) -> Result<ChunkStream, Status>;
}

/// Settings of [`serve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// Largest message decoded or encoded ([`DEFAULT_MAX_MESSAGE_SIZE`]).
    /// The callers' [`PoolConfig::max_message_size`] should match.
    pub max_message_size: usize,
    /// After shutdown is signalled, how long in-flight calls may take before
    /// the server stops waiting for them.
    pub shutdown_grace: Duration,
    /// HTTP/2 keepalive PING interval on accepted connections.
    pub keepalive_interval: Duration,
    /// Wait for a keepalive PING's answer before closing the connection.
    pub keepalive_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            shutdown_grace: Duration::from_secs(5),
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
        }
    }
}

/// Serves the peer protocol on `listener`, answering with `handler`, until
/// `shutdown` is cancelled. Returns the server as a future for the caller to
/// spawn (or track); it completes after shutdown once every connection has
/// closed, or after [`ServeConfig::shutdown_grace`] at the latest.
///
/// On shutdown the listener is closed at once, each connection gets an
/// HTTP/2 GOAWAY (in-flight unary calls finish; they are bounded by their
/// callers' deadlines), and open PullSlot streams end with `UNAVAILABLE` so
/// that pullers resume from their last cursor elsewhere or later.
///
/// # Errors
///
/// [`ClusterError::Serve`] when tonic's server fails.
pub fn serve(
    listener: TcpListener,
    handler: Arc<dyn PeerHandler>,
    shutdown: CancellationToken,
    config: ServeConfig,
) -> impl Future<Output = Result<(), ClusterError>> + Send + 'static {
    let addr = listener
        .local_addr()
        .map_or_else(|e| format!("<unknown: {e}>"), |a| a.to_string());
    let service = PeerServer::new(PeerService {
        handler,
        shutdown: shutdown.clone(),
    })
    .max_decoding_message_size(config.max_message_size)
    .max_encoding_message_size(config.max_message_size);
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let router = Server::builder()
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .http2_adaptive_window(Some(true))
        .add_service(service);

    async move {
        tracing::info!(%addr, "peer server listening");
        let serving =
            router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
        let overdue = async {
            shutdown.cancelled().await;
            tokio::time::sleep(config.shutdown_grace).await;
        };
        let result = tokio::select! {
            biased;
            served = serving => served.map_err(|e| ClusterError::Serve {
                addr: addr.clone(),
                reason: error_chain(&e),
            }),
            () = overdue => {
                tracing::warn!(
                    %addr,
                    grace = ?config.shutdown_grace,
                    "peer server: calls still in flight after the shutdown grace; not waiting for them"
                );
                Ok(())
            }
        };
        tracing::info!(%addr, "peer server stopped");
        result
    }
}

/// The tonic service: validates what the transport can, delegates the rest.
struct PeerService {
    handler: Arc<dyn PeerHandler>,
    shutdown: CancellationToken,
}

fn node_id(field: &str, id: &str) -> Result<NodeId, Status> {
    NodeId::new(id).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardReply>, Status> {
        let req = request.into_inner();
        let origin = node_id("origin", &req.origin)?;
        let resp = match req.resp {
            2 => 2,
            3 => 3,
            other => {
                return Err(Status::invalid_argument(format!(
                    "resp: {other} is not 2 or 3"
                )));
            }
        };
        let call = ForwardCall {
            db: req.db,
            resp,
            epoch: req.epoch,
            command: req.command,
        };
        let reply = match self.handler.forward(origin, call).await {
            ForwardOutcome::Ok { reply, epoch } => ForwardReply {
                status: ForwardStatus::Ok.into(),
                reply,
                epoch,
            },
            ForwardOutcome::StaleEpoch { epoch } => ForwardReply {
                status: ForwardStatus::StaleEpoch.into(),
                reply: Bytes::new(),
                epoch,
            },
            ForwardOutcome::NotOwner { epoch } => ForwardReply {
                status: ForwardStatus::NotOwner.into(),
                reply: Bytes::new(),
                epoch,
            },
        };
        Ok(Response::new(reply))
    }

    async fn ping(&self, request: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        let req = request.into_inner();
        let from = node_id("node_id", &req.node_id)?;
        let info = self.handler.ping(from, req.epoch).await;
        Ok(Response::new(PingReply {
            node_id: info.id.as_str().to_owned(),
            epoch: info.epoch,
            sent_at_ms: req.sent_at_ms,
        }))
    }

    type PullSlotStream = ChunkStream;

    async fn pull_slot(
        &self,
        request: Request<PullSlotRequest>,
    ) -> Result<Response<Self::PullSlotStream>, Status> {
        let req = request.into_inner();
        let slot = u16::try_from(req.slot)
            .ok()
            .filter(|&s| s < SLOTS)
            .ok_or_else(|| {
                Status::invalid_argument(format!("slot {} out of range (0..16384)", req.slot))
            })?;
        let chunks = self.handler.pull_slot(slot, req.epoch, req.cursor).await?;
        let stream: ChunkStream = Box::pin(UntilShutdown {
            inner: chunks,
            shutdown: Box::pin(self.shutdown.clone().cancelled_owned()),
            ended: false,
        });
        Ok(Response::new(stream))
    }
}

/// A handler's chunk stream that ends with `UNAVAILABLE` when the server shuts
/// down, so graceful shutdown does not wait for a slot transfer to finish.
struct UntilShutdown {
    inner: ChunkStream,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    ended: bool,
}

impl Stream for UntilShutdown {
    type Item = Result<SlotChunk, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.shutdown.as_mut().poll(cx).is_ready() {
            self.ended = true;
            return Poll::Ready(Some(Err(Status::unavailable(
                "peer server shutting down; resume from the last cursor",
            ))));
        }
        let next = self.inner.as_mut().poll_next(cx);
        if matches!(next, Poll::Ready(None)) {
            self.ended = true;
        }
        next
    }
}

/// An error and its sources, `: `-separated (tonic and hyper put the useful
/// part, e.g. "Connection refused", in the source chain).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}
