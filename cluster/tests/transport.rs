//! Loopback tests of the peer transport: `serve` with a test `PeerHandler`
//! on 127.0.0.1:0 and a `PeerPool` calling it over TCP. Every wait is
//! bounded and every server is shut down at the end.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use shoal_cluster::transport::{
    BreakerPolicy, BreakerState, ChunkStream, Record, RetryPolicy, SlotChunk,
};
use shoal_cluster::{
    ClusterError, ForwardCall, ForwardOutcome, NodeId, PeerHandler, PeerInfo, PeerPool, PoolConfig,
    ServeConfig, serve,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

/// Upper bound for any single step that should complete promptly.
const STEP: Duration = Duration::from_secs(10);
/// The slot the test handler holds.
const SLOT: u16 = 866;

/// Waits for `fut`, failing the test after [`STEP`].
async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match timeout(STEP, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: no result within {STEP:?}"),
    }
}

fn id(s: &str) -> NodeId {
    NodeId::new(s).expect("valid node id")
}

/// What the test handler does with PullSlot.
#[derive(Clone, Copy, PartialEq)]
enum Pull {
    /// Streams the whole slot.
    Normal,
    /// Sends one chunk per stream, then stalls without ending it.
    StallAfterOne,
}

/// A node's side of the protocol, standing in for the execution path: a
/// forwarded command is answered with the command itself as a RESP bulk
/// string (so both directions are checked byte for byte).
struct TestHandler {
    id: NodeId,
    epoch: AtomicU64,
    owns: AtomicBool,
    records: Vec<Record>,
    chunk: usize,
    pull: Pull,
    /// Every forwarded call, executed or not.
    forwarded: Mutex<Vec<(NodeId, ForwardCall)>>,
    /// Calls of any kind that reached the handler.
    calls: AtomicU64,
    /// Forward never answers.
    hang_forward: AtomicBool,
}

impl TestHandler {
    fn new(node: &str, epoch: u64) -> Self {
        TestHandler {
            id: id(node),
            epoch: AtomicU64::new(epoch),
            owns: AtomicBool::new(true),
            records: Vec::new(),
            chunk: 4,
            pull: Pull::Normal,
            forwarded: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            hang_forward: AtomicBool::new(false),
        }
    }

    fn with_records(mut self, n: usize, chunk: usize, pull: Pull) -> Self {
        self.records = slot_records(n);
        self.chunk = chunk;
        self.pull = pull;
        self
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn forwarded(&self) -> Vec<(NodeId, ForwardCall)> {
        self.forwarded.lock().expect("lock").clone()
    }
}

/// A RESP bulk string holding `payload`.
fn bulk(payload: &[u8]) -> Bytes {
    let mut out = format!("${}\r\n", payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

fn slot_records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            // Binary keys and records: 0xff makes neither valid UTF-8.
            key: Bytes::from(vec![b'k', 0xff, (i % 256) as u8, (i / 256) as u8]),
            record: Bytes::from(vec![(i % 256) as u8; i % 50 + 1]),
        })
        .collect()
}

#[tonic::async_trait]
impl PeerHandler for TestHandler {
    async fn forward(&self, origin: NodeId, call: ForwardCall) -> ForwardOutcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.forwarded
            .lock()
            .expect("lock")
            .push((origin, call.clone()));
        if self.hang_forward.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        if call.epoch < epoch {
            ForwardOutcome::StaleEpoch { epoch }
        } else if !self.owns.load(Ordering::SeqCst) {
            ForwardOutcome::NotOwner { epoch }
        } else {
            ForwardOutcome::Ok {
                reply: bulk(&call.command),
                epoch,
            }
        }
    }

    async fn ping(&self, _from: NodeId, _epoch: u64) -> PeerInfo {
        self.calls.fetch_add(1, Ordering::SeqCst);
        PeerInfo {
            id: self.id.clone(),
            epoch: self.epoch.load(Ordering::SeqCst),
        }
    }

    async fn pull_slot(&self, slot: u16, epoch: u64, cursor: u64) -> Result<ChunkStream, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if slot != SLOT {
            return Err(Status::not_found(format!("slot {slot} is not held here")));
        }
        let mine = self.epoch.load(Ordering::SeqCst);
        if epoch < mine {
            return Err(Status::failed_precondition(format!(
                "pull at epoch {epoch} but this node is at {mine}"
            )));
        }
        let records = &self.records;
        let mut at = usize::try_from(cursor)
            .map_err(|_| Status::invalid_argument("cursor"))?
            .min(records.len());
        let mut chunks = Vec::new();
        loop {
            let end = (at + self.chunk).min(records.len());
            let done = end == records.len();
            chunks.push(Ok(SlotChunk {
                records: records[at..end].to_vec(),
                cursor: end as u64,
                done,
            }));
            at = end;
            if done {
                break;
            }
        }
        let stream = tokio_stream::iter(chunks);
        if self.pull == Pull::StallAfterOne
            && !chunks_done_in_one(&self.records, cursor, self.chunk)
        {
            use tokio_stream::StreamExt;
            return Ok(Box::pin(stream.take(1).chain(tokio_stream::pending())));
        }
        Ok(Box::pin(stream))
    }
}

/// Whether the stream from `cursor` is a single (final) chunk.
fn chunks_done_in_one(records: &[Record], cursor: u64, chunk: usize) -> bool {
    records.len().saturating_sub(cursor as usize) <= chunk
}

struct TestServer {
    addr: SocketAddr,
    handler: Arc<TestHandler>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), ClusterError>>,
}

impl TestServer {
    async fn start(handler: TestHandler) -> Self {
        Self::start_on(
            "127.0.0.1:0".parse().expect("addr"),
            handler,
            ServeConfig::default(),
        )
        .await
    }

    async fn start_on(addr: SocketAddr, handler: TestHandler, config: ServeConfig) -> Self {
        let listener = bounded("bind", TcpListener::bind(addr))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let handler = Arc::new(handler);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            Arc::clone(&handler) as Arc<dyn PeerHandler>,
            shutdown.clone(),
            config,
        ));
        TestServer {
            addr,
            handler,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        bounded("server shutdown", self.task)
            .await
            .expect("server task panicked")
            .expect("server failed");
    }
}

/// Test settings: short backoffs, the default breaker (5 failures, 1 s).
fn config() -> PoolConfig {
    PoolConfig {
        retry: RetryPolicy {
            max_attempts: 3,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
        ..PoolConfig::default()
    }
}

/// A pool of node "node-a" that knows `peer` at `addr`.
fn pool_for(peer: &str, addr: SocketAddr, config: PoolConfig) -> PeerPool {
    let pool = PeerPool::new(id("node-a"), config);
    assert!(
        pool.update_address(&id(peer), &addr.to_string())
            .expect("address")
    );
    pool
}

fn call(command: impl Into<Bytes>, epoch: u64) -> ForwardCall {
    ForwardCall {
        db: 0,
        resp: 2,
        epoch,
        command: command.into(),
    }
}

/// A port on 127.0.0.1 with nothing listening (bound once, then released).
async fn free_addr() -> SocketAddr {
    let listener = bounded("bind", TcpListener::bind("127.0.0.1:0"))
        .await
        .expect("bind");
    listener.local_addr().expect("local_addr")
}

#[tokio::test]
async fn forward_round_trip_keeps_arbitrary_bytes_up_to_5_mib() {
    let server = TestServer::start(TestHandler::new("node-b", 5)).await;
    let pool = pool_for("node-b", server.addr, config());
    let b = id("node-b");

    let every_byte: Vec<u8> = (0..=255u8).collect();
    let big: Vec<u8> = (0..5 << 20).map(|i: u32| (i % 251) as u8).collect();
    let commands: Vec<Bytes> = vec![
        Bytes::from_static(b"*3\r\n$3\r\nSET\r\n$2\r\nk\xff\r\n$6\r\n\xfe\x00\r\n\xc3(\r\n"),
        Bytes::from(every_byte),
        Bytes::from_static(b"PING\r\n"),
        Bytes::new(),
        // Over tonic's 4 MiB default limit, in both directions.
        Bytes::from(big),
    ];
    for (i, command) in commands.iter().enumerate() {
        let call = ForwardCall {
            db: i as u32,
            resp: if i % 2 == 0 { 2 } else { 3 },
            epoch: 5 + i as u64,
            command: command.clone(),
        };
        let outcome = bounded("forward", pool.forward(&b, call, false))
            .await
            .unwrap_or_else(|e| panic!("command {i}: {e}"));
        assert_eq!(
            outcome,
            ForwardOutcome::Ok {
                reply: bulk(command),
                epoch: 5
            },
            "command {i}"
        );
    }

    let received = server.handler.forwarded();
    assert_eq!(received.len(), commands.len());
    for (i, ((origin, got), sent)) in received.iter().zip(&commands).enumerate() {
        assert_eq!(origin.as_str(), "node-a");
        assert_eq!(&got.command, sent, "command {i}");
        assert_eq!(got.db, i as u32);
        assert_eq!(got.resp, if i % 2 == 0 { 2 } else { 3 });
        assert_eq!(got.epoch, 5 + i as u64);
    }
    let stats = pool.stats(&b).expect("stats");
    assert_eq!(stats.calls, commands.len() as u64);
    assert_eq!(stats.failures, 0);
    assert_eq!(stats.connects, 1, "one connection for every call");
    server.stop().await;
}

#[tokio::test]
async fn forward_outcomes_stale_epoch_and_not_owner_are_not_executed() {
    let server = TestServer::start(TestHandler::new("node-b", 7)).await;
    let pool = pool_for("node-b", server.addr, config());
    let b = id("node-b");

    let outcome = bounded("forward", pool.forward(&b, call(&b"GET k"[..], 6), true))
        .await
        .expect("forward");
    assert_eq!(outcome, ForwardOutcome::StaleEpoch { epoch: 7 });
    assert_eq!(outcome.epoch(), 7);

    server.handler.owns.store(false, Ordering::SeqCst);
    let outcome = bounded("forward", pool.forward(&b, call(&b"GET k"[..], 7), true))
        .await
        .expect("forward");
    assert_eq!(outcome, ForwardOutcome::NotOwner { epoch: 7 });

    server.handler.owns.store(true, Ordering::SeqCst);
    let outcome = bounded("forward", pool.forward(&b, call(&b"GET k"[..], 8), false))
        .await
        .expect("forward");
    assert_eq!(
        outcome,
        ForwardOutcome::Ok {
            reply: bulk(b"GET k"),
            epoch: 7
        }
    );

    // A malformed request is refused by the transport before the handler,
    // and a refusal is an answer: not retried, not a breaker failure.
    let before = server.handler.calls();
    let mut bad = call(&b"GET k"[..], 8);
    bad.resp = 4;
    let err = bounded("forward", pool.forward(&b, bad, true))
        .await
        .expect_err("resp 4 refused");
    match &err {
        ClusterError::PeerCall { code, attempts, .. } => {
            assert_eq!(*code, Code::InvalidArgument, "{err}");
            assert_eq!(*attempts, 1, "{err}");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(server.handler.calls(), before);
    let stats = pool.stats(&b).expect("stats");
    assert_eq!(stats.failures, 0);
    assert_eq!(stats.breaker, BreakerState::Closed);
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("resp")),
        "{stats:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_message_over_the_configured_limit_is_refused_not_a_failure() {
    let server = TestServer::start_on(
        "127.0.0.1:0".parse().expect("addr"),
        TestHandler::new("node-b", 1),
        ServeConfig {
            max_message_size: 1 << 20,
            ..ServeConfig::default()
        },
    )
    .await;
    let pool = pool_for("node-b", server.addr, config());
    let b = id("node-b");
    let err = bounded(
        "big forward",
        pool.forward(&b, call(vec![b'x'; 2 << 20], 1), false),
    )
    .await
    .expect_err("over the server's limit");
    // tonic 0.14.9 refuses it with OUT_OF_RANGE ("decoded message length
    // too large"): an answer, not a transport failure.
    match &err {
        ClusterError::PeerCall {
            code,
            attempts,
            message,
            ..
        } => {
            assert_eq!(*code, Code::OutOfRange, "{err}");
            assert_eq!(*attempts, 1, "{err}");
            assert!(message.contains("too large"), "{err}");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(server.handler.calls(), 0);
    let stats = pool.stats(&b).expect("stats");
    assert_eq!((stats.failures, stats.breaker), (0, BreakerState::Closed));
    // Within the limit it works on the same connection.
    bounded(
        "small forward",
        pool.forward(&b, call(vec![b'x'; 1000], 1), false),
    )
    .await
    .expect("small forward");
    server.stop().await;
}

#[tokio::test]
async fn ping_measures_rtt_and_checks_identity() {
    let server = TestServer::start(TestHandler::new("node-b", 42)).await;
    let pool = pool_for("node-b", server.addr, config());
    let b = id("node-b");
    assert_eq!(pool.stats(&b).expect("stats").last_rtt, None);

    let pong = bounded("ping", pool.ping(&b, 41)).await.expect("ping");
    assert_eq!(pong.id, b);
    assert_eq!(pong.epoch, 42);
    assert!(pong.rtt > Duration::ZERO && pong.rtt < STEP, "{pong:?}");
    let rtt = pool.stats(&b).expect("stats").last_rtt.expect("rtt kept");
    assert_eq!(rtt.as_micros(), pong.rtt.as_micros());

    // The same address registered for another node id: the answer is
    // recognised as coming from the wrong node.
    let x = id("node-x");
    pool.update_address(&x, &server.addr.to_string())
        .expect("address");
    let err = bounded("ping", pool.ping(&x, 41))
        .await
        .expect_err("wrong node");
    assert_eq!(
        err,
        ClusterError::PeerIdentityMismatch {
            peer: x.clone(),
            addr: server.addr.to_string(),
            answered: "node-b".to_owned()
        }
    );

    // An unknown peer is an error, not a panic.
    let err = bounded("ping", pool.ping(&id("node-z"), 1))
        .await
        .expect_err("unknown");
    assert_eq!(err, ClusterError::UnknownNode { id: id("node-z") });
    server.stop().await;
}

#[tokio::test]
async fn pull_slot_streams_many_chunks_and_resumes() {
    let handler = TestHandler::new("node-b", 1).with_records(1000, 3, Pull::Normal);
    let records = handler.records.clone();
    let server = TestServer::start(handler).await;
    let pool = pool_for("node-b", server.addr, config());
    let b = id("node-b");

    let mut pull = bounded("pull_slot", pool.pull_slot(&b, SLOT, 1, 0))
        .await
        .expect("pull_slot");
    let mut got = Vec::new();
    let mut chunks = 0;
    let mut last_cursor = 0;
    while let Some(chunk) = bounded("next chunk", pull.next_chunk())
        .await
        .expect("chunk")
    {
        assert!(chunk.cursor > last_cursor);
        last_cursor = chunk.cursor;
        chunks += 1;
        got.extend(chunk.records);
    }
    assert_eq!(chunks, 334);
    assert_eq!(got, records);
    assert!(pull.is_done());
    assert_eq!(pull.cursor(), 1000);
    // After the end it stays ended.
    assert_eq!(pull.next_chunk().await, Ok(None));

    // Resuming from a cursor sends only what follows it.
    let mut pull = bounded("pull_slot", pool.pull_slot(&b, SLOT, 1, 990))
        .await
        .expect("pull_slot");
    let mut rest = Vec::new();
    while let Some(chunk) = bounded("next chunk", pull.next_chunk())
        .await
        .expect("chunk")
    {
        rest.extend(chunk.records);
    }
    assert_eq!(rest, records[990..]);

    // Refusals arrive as the peer's status, once (not retried), and leave
    // the breaker closed.
    let err = bounded("stale pull", pool.pull_slot(&b, SLOT, 0, 0))
        .await
        .expect_err("stale epoch");
    assert!(
        matches!(
            err,
            ClusterError::PeerCall {
                code: Code::FailedPrecondition,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = bounded("other slot", pool.pull_slot(&b, SLOT + 1, 1, 0))
        .await
        .expect_err("not held");
    assert!(
        matches!(
            err,
            ClusterError::PeerCall {
                code: Code::NotFound,
                ..
            }
        ),
        "{err}"
    );
    let err = bounded("bad slot", pool.pull_slot(&b, 16384, 1, 0))
        .await
        .expect_err("out of range");
    assert_eq!(err, ClusterError::SlotOutOfRange { slot: 16384 });
    let stats = pool.stats(&b).expect("stats");
    assert_eq!(stats.failures, 0);
    assert_eq!(stats.breaker, BreakerState::Closed);
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_pull_stream_times_out_per_message_and_resumes() {
    let handler = TestHandler::new("node-b", 1).with_records(10, 2, Pull::StallAfterOne);
    let records = handler.records.clone();
    let server = TestServer::start(handler).await;
    let chunk_timeout = Duration::from_millis(300);
    let pool = pool_for(
        "node-b",
        server.addr,
        PoolConfig {
            chunk_timeout,
            ..config()
        },
    );
    let b = id("node-b");

    // Every stream sends one chunk and then stalls; each stall is detected
    // after `chunk_timeout` and the pull resumes from the last cursor.
    let mut got = Vec::new();
    let mut cursor = 0;
    let mut stalls = 0;
    loop {
        let mut pull = bounded("pull_slot", pool.pull_slot(&b, SLOT, 1, cursor))
            .await
            .expect("pull_slot");
        let chunk = bounded("first chunk", pull.next_chunk())
            .await
            .expect("chunk")
            .expect("a chunk");
        got.extend(chunk.records.clone());
        if chunk.done {
            assert_eq!(pull.next_chunk().await, Ok(None));
            break;
        }
        let started = Instant::now();
        let err = bounded("stalled chunk", pull.next_chunk())
            .await
            .expect_err("stalled");
        let waited = started.elapsed();
        assert!(waited >= chunk_timeout, "gave up after {waited:?}");
        assert!(
            waited < chunk_timeout + Duration::from_secs(3),
            "{waited:?}"
        );
        assert_eq!(
            err,
            ClusterError::SlotStreamStalled {
                peer: b.clone(),
                addr: server.addr.to_string(),
                slot: SLOT,
                cursor: chunk.cursor,
                waited: chunk_timeout,
            }
        );
        // The error sticks.
        assert_eq!(pull.next_chunk().await, Err(err));
        stalls += 1;
        cursor = pull.cursor();
    }
    assert_eq!(stalls, 4);
    assert_eq!(got, records);
    let stats = pool.stats(&b).expect("stats");
    assert_eq!(stats.failures, 4, "each stall is a failure: {stats:?}");
    assert_eq!(stats.breaker, BreakerState::Closed, "successes in between");
    server.stop().await;
}

#[tokio::test]
async fn a_down_peer_opens_the_breaker_then_closes_it_when_back_on_the_same_address() {
    let addr = free_addr().await;
    let cool_down = Duration::from_secs(1);
    let pool = pool_for(
        "node-b",
        addr,
        PoolConfig {
            breaker: BreakerPolicy {
                failure_threshold: 5,
                cool_down,
            },
            ..config()
        },
    );
    let b = id("node-b");

    // N = 5 failures, each a real connection attempt, refused.
    for i in 1..=5u64 {
        let err = bounded(
            "forward to a down peer",
            pool.forward(&b, call(&b"GET k"[..], 1), false),
        )
        .await
        .expect_err("down");
        match &err {
            ClusterError::PeerCall {
                peer,
                addr: at,
                call,
                attempts,
                code,
                message,
            } => {
                assert_eq!(peer, &b);
                assert_eq!(at, &addr.to_string());
                assert_eq!(*call, "Forward");
                assert_eq!(*attempts, 1, "a forward is not retried unless asked");
                assert_eq!(*code, Code::Unavailable, "{err}");
                assert!(message.to_lowercase().contains("refused"), "{err}");
            }
            other => panic!("unexpected {other}"),
        }
        assert_eq!(pool.stats(&b).expect("stats").connects, i);
    }
    let stats = pool.stats(&b).expect("stats");
    assert_eq!(stats.breaker, BreakerState::Open);
    assert_eq!(stats.consecutive_failures, 5);
    assert_eq!((stats.calls, stats.failures), (5, 5));

    // The peer comes back on the same address while the breaker is open.
    let server =
        TestServer::start_on(addr, TestHandler::new("node-b", 1), ServeConfig::default()).await;

    // The (N+1)th call fails at once, without a connection attempt: the
    // peer's handler sees nothing and the pool's connect counter stays put.
    let started = Instant::now();
    let err = pool
        .forward(&b, call(&b"GET k"[..], 1), false)
        .await
        .expect_err("breaker open");
    let took = started.elapsed();
    let retry_in = match err {
        ClusterError::CircuitOpen {
            ref peer,
            failures,
            retry_in,
            ..
        } => {
            assert_eq!(peer, &b);
            assert_eq!(failures, 5);
            assert!(retry_in <= cool_down, "{err}");
            retry_in
        }
        ref other => panic!("unexpected {other}"),
    };
    assert!(took < Duration::from_millis(100), "took {took:?}");
    // Ping is retried, but not through an open breaker.
    let err = bounded("ping", pool.ping(&b, 1)).await.expect_err("open");
    assert!(matches!(err, ClusterError::CircuitOpen { .. }), "{err}");
    let stats = pool.stats(&b).expect("stats");
    assert_eq!(stats.connects, 5, "no connection attempt");
    assert_eq!(stats.rejected, 2);
    assert_eq!(stats.calls, 5);
    assert_eq!(server.handler.calls(), 0);

    // After the cool-down one probe goes through, succeeds and closes it.
    tokio::time::sleep(retry_in + Duration::from_millis(20)).await;
    let outcome = bounded("probe", pool.forward(&b, call(&b"GET k"[..], 1), false))
        .await
        .expect("probe succeeds");
    assert!(matches!(outcome, ForwardOutcome::Ok { .. }));
    let stats = pool.stats(&b).expect("stats");
    assert_eq!(stats.breaker, BreakerState::Closed);
    assert_eq!(stats.consecutive_failures, 0);
    assert_eq!(stats.connects, 6);
    bounded("ping", pool.ping(&b, 1)).await.expect("ping");
    assert_eq!(server.handler.calls(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker() {
    let addr = free_addr().await;
    let cool_down = Duration::from_millis(300);
    let pool = pool_for(
        "node-b",
        addr,
        PoolConfig {
            breaker: BreakerPolicy {
                failure_threshold: 2,
                cool_down,
            },
            ..config()
        },
    );
    let b = id("node-b");
    for _ in 0..2 {
        let err = bounded("forward", pool.forward(&b, call(&b"x"[..], 1), false))
            .await
            .expect_err("down");
        assert!(matches!(err, ClusterError::PeerCall { .. }), "{err}");
    }
    assert_eq!(pool.stats(&b).expect("stats").breaker, BreakerState::Open);
    tokio::time::sleep(cool_down + Duration::from_millis(20)).await;
    // The probe is sent (a connection attempt) and fails: open again.
    let err = bounded("probe", pool.forward(&b, call(&b"x"[..], 1), false))
        .await
        .expect_err("still down");
    assert!(matches!(err, ClusterError::PeerCall { .. }), "{err}");
    let stats = pool.stats(&b).expect("stats");
    assert_eq!((stats.breaker, stats.connects), (BreakerState::Open, 3));
    let err = bounded("refused", pool.forward(&b, call(&b"x"[..], 1), false))
        .await
        .expect_err("open");
    assert!(matches!(err, ClusterError::CircuitOpen { .. }), "{err}");
    assert_eq!(pool.stats(&b).expect("stats").connects, 3);
}

#[tokio::test]
async fn idempotent_calls_are_retried_with_backoff_and_writes_are_not() {
    let addr = free_addr().await;
    let pool = pool_for(
        "node-b",
        addr,
        PoolConfig {
            breaker: BreakerPolicy {
                failure_threshold: 100,
                cool_down: Duration::from_secs(1),
            },
            retry: RetryPolicy {
                max_attempts: 3,
                base_backoff: Duration::from_millis(40),
                max_backoff: Duration::from_millis(80),
            },
            ..config()
        },
    );
    let b = id("node-b");

    let started = Instant::now();
    let err = bounded("ping", pool.ping(&b, 1)).await.expect_err("down");
    let took = started.elapsed();
    assert!(
        matches!(
            err,
            ClusterError::PeerCall {
                attempts: 3,
                code: Code::Unavailable,
                call: "Ping",
                ..
            }
        ),
        "{err}"
    );
    // Two backoffs: at least 20 ms (half of 40) + 40 ms (half of 80).
    assert!(took >= Duration::from_millis(60), "took {took:?}");
    let stats = pool.stats(&b).expect("stats");
    assert_eq!((stats.calls, stats.retries, stats.connects), (3, 2, 3));

    let err = bounded("read", pool.forward(&b, call(&b"GET k"[..], 1), true))
        .await
        .expect_err("down");
    assert!(
        matches!(err, ClusterError::PeerCall { attempts: 3, .. }),
        "{err}"
    );
    let err = bounded("write", pool.forward(&b, call(&b"SET k v"[..], 1), false))
        .await
        .expect_err("down");
    assert!(
        matches!(err, ClusterError::PeerCall { attempts: 1, .. }),
        "{err}"
    );
    let err = bounded("open stream", pool.pull_slot(&b, SLOT, 1, 0))
        .await
        .expect_err("down");
    assert!(
        matches!(err, ClusterError::PeerCall { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(pool.stats(&b).expect("stats").calls, 10);

    // A breaker that opens mid-retry stops the retries and reports the
    // attempts made and their last status.
    let pool = pool_for(
        "node-b",
        addr,
        PoolConfig {
            breaker: BreakerPolicy {
                failure_threshold: 2,
                cool_down: Duration::from_secs(5),
            },
            ..config()
        },
    );
    let err = bounded("ping", pool.ping(&b, 1)).await.expect_err("down");
    assert!(
        matches!(
            err,
            ClusterError::PeerCall {
                attempts: 2,
                code: Code::Unavailable,
                ..
            }
        ),
        "{err}"
    );
    let stats = pool.stats(&b).expect("stats");
    assert_eq!((stats.calls, stats.rejected), (2, 1));
}

#[tokio::test]
async fn a_peer_that_moves_is_reached_at_its_new_address() {
    let first = TestServer::start(TestHandler::new("node-b", 1)).await;
    let pool = pool_for("node-b", first.addr, config());
    let b = id("node-b");
    bounded("forward", pool.forward(&b, call(&b"one"[..], 1), false))
        .await
        .expect("forward");
    let first_handler = Arc::clone(&first.handler);
    first.stop().await;

    // The node restarts elsewhere (a rescheduled pod with a new IP).
    let second = TestServer::start(TestHandler::new("node-b", 2)).await;
    let err = bounded(
        "forward to the old address",
        pool.forward(&b, call(&b"lost"[..], 1), false),
    )
    .await
    .expect_err("old address is gone");
    assert!(matches!(err, ClusterError::PeerCall { .. }), "{err}");

    assert!(
        pool.update_address(&b, &second.addr.to_string())
            .expect("address")
    );
    assert!(
        !pool
            .update_address(&b, &second.addr.to_string())
            .expect("address"),
        "same address: no change"
    );
    assert_eq!(pool.address(&b), Some(second.addr.to_string()));
    let outcome = bounded("forward", pool.forward(&b, call(&b"two"[..], 2), false))
        .await
        .expect("forward to the new address");
    assert_eq!(
        outcome,
        ForwardOutcome::Ok {
            reply: bulk(b"two"),
            epoch: 2
        }
    );
    let pong = bounded("ping", pool.ping(&b, 2)).await.expect("ping");
    assert_eq!(pong.epoch, 2);
    assert_eq!(first_handler.calls(), 1);
    assert_eq!(second.handler.calls(), 2);
    let stats = pool.stats(&b).expect("stats");
    assert_eq!(stats.addr, second.addr.to_string());
    assert_eq!(stats.breaker, BreakerState::Closed);

    // Bad addresses are refused; forgetting a peer makes it unknown.
    assert!(matches!(
        pool.update_address(&b, "no-port"),
        Err(ClusterError::InvalidAddress { .. })
    ));
    assert!(pool.remove(&b));
    assert!(!pool.remove(&b));
    let err = bounded("forward", pool.forward(&b, call(&b"x"[..], 2), false))
        .await
        .expect_err("unknown");
    assert_eq!(err, ClusterError::UnknownNode { id: b.clone() });
    second.stop().await;
}

#[tokio::test]
async fn concurrent_calls_from_many_tasks_share_one_connection() {
    let server = TestServer::start(TestHandler::new("node-b", 1)).await;
    let pool = pool_for("node-b", server.addr, config());
    let b = id("node-b");
    const TASKS: usize = 32;
    const CALLS: usize = 20;

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let pool = pool.clone();
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            for c in 0..CALLS {
                let command = Bytes::from(format!("task {t} call {c}"));
                let outcome = pool
                    .forward(&b, call(command.clone(), 1), false)
                    .await
                    .expect("forward");
                assert_eq!(
                    outcome,
                    ForwardOutcome::Ok {
                        reply: bulk(&command),
                        epoch: 1
                    }
                );
            }
        }));
    }
    for task in tasks {
        bounded("task", task).await.expect("task panicked");
    }
    let stats = pool.stats(&b).expect("stats");
    assert_eq!(stats.calls, (TASKS * CALLS) as u64);
    assert_eq!(stats.connects, 1, "one channel, one connection: {stats:?}");
    let distinct: HashSet<Bytes> = server
        .handler
        .forwarded()
        .into_iter()
        .map(|(_, c)| c.command)
        .collect();
    assert_eq!(distinct.len(), TASKS * CALLS);
    assert_eq!(pool.all_stats(), vec![stats]);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_completes_with_a_client_connected_and_a_stream_open() {
    let handler = TestHandler::new("node-b", 1).with_records(10, 2, Pull::StallAfterOne);
    let server = TestServer::start_on(
        "127.0.0.1:0".parse().expect("addr"),
        handler,
        ServeConfig {
            // Longer than the bound below: shutdown must not need it.
            shutdown_grace: Duration::from_secs(60),
            ..ServeConfig::default()
        },
    )
    .await;
    let addr = server.addr;
    let pool = pool_for("node-b", addr, config());
    let b = id("node-b");

    // A connected client with an open, stalled PullSlot stream.
    bounded("forward", pool.forward(&b, call(&b"x"[..], 1), false))
        .await
        .expect("forward");
    let mut pull = bounded("pull_slot", pool.pull_slot(&b, SLOT, 1, 0))
        .await
        .expect("pull_slot");
    let first = bounded("first chunk", pull.next_chunk())
        .await
        .expect("chunk")
        .expect("a chunk");
    assert!(!first.done);

    let started = Instant::now();
    server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );

    // The open stream ended with UNAVAILABLE and the cursor to resume from.
    let err = bounded("stream after shutdown", pull.next_chunk())
        .await
        .expect_err("ended");
    match &err {
        ClusterError::SlotStreamBroken {
            code,
            cursor,
            message,
            ..
        } => {
            assert_eq!(*code, Code::Unavailable, "{err}");
            assert_eq!(*cursor, first.cursor);
            assert!(message.contains("shutting down"), "{err}");
        }
        other => panic!("unexpected {other}"),
    }
    // And the server is gone: new calls fail.
    let err = bounded(
        "forward after shutdown",
        pool.forward(&b, call(&b"x"[..], 1), false),
    )
    .await
    .expect_err("server stopped");
    assert!(matches!(err, ClusterError::PeerCall { .. }), "{err}");
}

#[tokio::test]
async fn shutdown_waits_for_a_call_in_flight_at_most_the_grace() {
    let grace = Duration::from_millis(300);
    let handler = TestHandler::new("node-b", 1);
    handler.hang_forward.store(true, Ordering::SeqCst);
    let server = TestServer::start_on(
        "127.0.0.1:0".parse().expect("addr"),
        handler,
        ServeConfig {
            shutdown_grace: grace,
            ..ServeConfig::default()
        },
    )
    .await;
    // A caller with a long deadline, so only the grace can end the wait.
    let pool = pool_for(
        "node-b",
        server.addr,
        PoolConfig {
            call_timeout: Duration::from_secs(30),
            ..config()
        },
    );
    let b = id("node-b");
    let caller = tokio::spawn({
        let pool = pool.clone();
        let b = b.clone();
        async move { pool.forward(&b, call(&b"hangs"[..], 1), false).await }
    });
    bounded("forward reaches the handler", async {
        while server.handler.calls() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    let started = Instant::now();
    server.stop().await;
    let took = started.elapsed();
    assert!(
        took >= grace,
        "did not wait for the call in flight: {took:?}"
    );
    assert!(took < grace + Duration::from_secs(3), "took {took:?}");
    caller.abort();
    let _ = bounded("caller", caller).await;
}
