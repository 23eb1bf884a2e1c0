//! The per-connection loop: read, parse every complete request in the
//! buffer, execute each, append replies to one output buffer, write once.
//!
//! Architecture Invariant: only a framing error (a broken RESP frame) or the
//! query buffer limit closes a connection; command errors are replies.

use crate::blocking::{Outcome, Waiter};
use crate::command::{Action, Ctx};
use crate::net::client::{ConnState, ReplyMode};
use crate::node::{MonitorSub, Shared};
use crate::protocol::{Limits, Out, OwnedArgs, Parsed, Proto, RequestParser};
use bytes::{Buf, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

const READ_CHUNK: usize = 16 * 1024;
/// Above this, buffers are given back after use instead of kept for the next batch.
const KEEP_BUFFER: usize = 1024 * 1024;
/// Replies are written out mid-batch past this size, bounding memory for huge pipelines.
const FLUSH_AT: usize = 1024 * 1024;

/// Connection settings cached from the config, refreshed when CONFIG SET changes it.
struct Cached {
    epoch: u64,
    limits: Limits,
    idle: Option<Duration>,
    query_limit: usize,
}

impl Cached {
    fn load(shared: &Shared) -> Self {
        let epoch = shared.config_epoch.load(Relaxed);
        let c = shared.config.read();
        // CONFIG SET bumps the epoch; whichever connection sees it first
        // installs the pub/sub output limits the publishers check.
        shared.pubsub.set_limits(c.client_output_buffer_limit[2]);
        Cached {
            epoch,
            limits: Limits {
                max_bulk_len: c.proto_max_bulk_len.min(usize::MAX as u64) as usize,
                max_multibulk_len: i32::MAX as usize,
            },
            idle: (c.timeout > 0).then(|| Duration::from_secs(c.timeout)),
            query_limit: c.client_query_buffer_limit.min(usize::MAX as u64) as usize,
        }
    }
}

/// Serves one client until it quits, errs, is killed, or the node shuts down.
pub async fn serve(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let laddr = stream.local_addr().unwrap_or(peer);
    let handle = shared.clients.register(peer, laddr);
    let authenticated = shared.config.read().requirepass.is_empty();
    let mut conn = ConnState::new(handle, authenticated);
    tracing::debug!(id = conn.id, %peer, "client connected");
    run(&shared, &mut stream, &mut conn).await;
    crate::command::tx::unwatch_all(&mut conn);
    conn.account_buffers(&shared.clients, 0);
    if let Some(subs) = conn.pubsub.as_deref_mut() {
        subs.clear(&shared.pubsub);
    }
    shared.clients.unregister(conn.id);
    tracing::debug!(id = conn.id, %peer, "client disconnected");
}

async fn run(shared: &Arc<Shared>, stream: &mut TcpStream, conn: &mut ConnState) {
    let mut cached = Cached::load(shared);
    let mut parser = RequestParser::new(cached.limits);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Out::new(Proto::Resp2);
    let mut monitor: Option<MonitorSub> = None;
    let kill = conn.handle.kill.clone();
    loop {
        if shared.config_epoch.load(Relaxed) != cached.epoch {
            cached = Cached::load(shared);
            parser.set_limits(cached.limits);
        }
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
            rbuf.reserve(READ_CHUNK);
        }
        // Like Redis, subscribers and monitors are never closed for idling.
        let idle = cached.idle.filter(|_| !conn.monitor && !conn.subscribed());
        let read = tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => return,
            _ = kill.cancelled() => return,
            line = recv_monitor(&mut monitor) => {
                if let Some(line) = line
                    && stream.write_all(&line).await.is_err()
                {
                    return;
                }
                continue;
            }
            _ = sleep_or_forever(idle) => {
                tracing::debug!(id = conn.id, "closing idle client");
                return;
            }
            r = stream.read_buf(&mut rbuf) => r,
            // After the read: a busy channel must not starve the client's
            // commands (their replies carry the queued messages anyway).
            _ = pubsub_ready(&conn.pubsub) => {
                if deliver_messages(shared, stream, conn, &mut out, &kill).await.is_err() {
                    return;
                }
                continue;
            }
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                shared.stats.net_input_bytes.fetch_add(n as u64, Relaxed);
            }
        }
        if rbuf.len() > cached.query_limit {
            tracing::warn!(
                id = conn.id,
                addr = %conn.addr,
                qbuf = rbuf.len(),
                limit = cached.query_limit,
                "closing client that reached max query buffer length"
            );
            return;
        }

        let mut start = 0;
        let mut close = false;
        // Bytes the unfinished request still needs; reserved after the
        // consumed bytes are released, so BytesMut can reuse their space
        // instead of reallocating.
        let mut grow = 0;
        let mut executed: u32 = 0;
        let mut now = 0;
        loop {
            let buf = &rbuf[start..];
            let parsed = parser.parse(buf);
            match parsed {
                Ok(Parsed::Request(n)) => {
                    let args = parser.args(buf);
                    if let Some(until) = paused_until(shared, &args) {
                        // Send what is done, wait, then parse this request again.
                        if flush(shared, stream, &mut out, &kill).await.is_err() {
                            return;
                        }
                        let wait = until.saturating_duration_since(std::time::Instant::now());
                        tokio::select! {
                            _ = shared.shutdown.cancelled() => return,
                            _ = kill.cancelled() => return,
                            _ = shared.pause.unpaused.notified() => {}
                            _ = tokio::time::sleep(wait) => {}
                        }
                        continue;
                    }
                    let before = conn.reply;
                    let mark = out.mark();
                    // One clock read per 256 commands of a batch (a batch runs in
                    // microseconds); Redis likewise caches the time per call.
                    if executed.is_multiple_of(256) {
                        now = shared.store.now_ms();
                    }
                    executed += 1;
                    let mut ctx = Ctx {
                        shared,
                        conn,
                        out: &mut out,
                        now,
                    };
                    crate::exec::execute(&mut ctx, &args);
                    apply_reply_mode(conn, before, &mut out, mark);
                    queue_messages(conn, &mut out, mark);
                    if !conn.monitor {
                        // RESET leaves MONITOR mode: stop the stream too.
                        monitor = None;
                    }
                    start += n;
                    if let Some(action) = conn.action.take() {
                        match action {
                            Action::Close => {
                                close = true;
                                break;
                            }
                            Action::Shutdown => {
                                shared.shutdown.cancel();
                                close = true;
                                break;
                            }
                            Action::Sleep(d) => {
                                if flush(shared, stream, &mut out, &kill).await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(d).await;
                            }
                            Action::Monitor => {
                                monitor = Some(shared.monitor.subscribe());
                                conn.monitor = true;
                            }
                            Action::Block(on) => {
                                let waiter = Arc::new(Waiter {
                                    client: Arc::clone(&conn.handle),
                                    db: conn.db,
                                    keys: on.keys,
                                    args: OwnedArgs::from_args(&args),
                                    proto: out.proto,
                                    state: parking_lot::Mutex::new(Outcome::Waiting),
                                    wake: tokio::sync::Notify::new(),
                                });
                                shared.blocking.register(Arc::clone(&waiter));
                                // A push may have landed between the handler's
                                // look and the registration: serve it now.
                                let ready =
                                    waiter.keys.iter().map(|k| (waiter.db, k.clone())).collect();
                                shared.blocking.serve(shared, ready);
                                let done =
                                    block(shared, stream, &mut rbuf, &waiter, on.timeout, &mut out)
                                        .await;
                                shared.blocking.unregister(&waiter);
                                if !done {
                                    return;
                                }
                            }
                        }
                    }
                    if out.buf.len() >= FLUSH_AT
                        && flush(shared, stream, &mut out, &kill).await.is_err()
                    {
                        return;
                    }
                }
                Ok(Parsed::Empty(n)) => start += n,
                Ok(Parsed::Incomplete(need)) => {
                    grow = need.saturating_sub(rbuf.len() - start);
                    break;
                }
                Err(e) => {
                    out.error(&format!("ERR Protocol error: {e}"));
                    tracing::debug!(id = conn.id, error = %e, "protocol error, closing");
                    close = true;
                    break;
                }
            }
        }
        rbuf.advance(start);
        if grow > 0 {
            // Grow towards a large bulk's size, doubling at most, so a client
            // announcing a huge bulk cannot make us reserve it upfront.
            rbuf.reserve(grow.min(rbuf.len().max(READ_CHUNK)));
        }
        if rbuf.is_empty() && rbuf.capacity() > KEEP_BUFFER {
            rbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        conn.publish(if out.resp3() { 3 } else { 2 }, rbuf.len(), out.buf.len());
        conn.account_buffers(&shared.clients, rbuf.capacity() + out.buf.capacity());
        if flush(shared, stream, &mut out, &kill).await.is_err() || close {
            return;
        }
        messages_written(conn);
    }
}

/// CLIENT REPLY OFF/SKIP: drop the reply just written when the mode says so.
/// As in Redis, a `CLIENT REPLY ON` right after `SKIP` turns skipping off
/// before it replies, so its `+OK` is sent.
fn apply_reply_mode(conn: &mut ConnState, before: ReplyMode, out: &mut Out, mark: usize) {
    match (before, conn.reply) {
        (ReplyMode::Skip, ReplyMode::Skip) => {
            out.truncate(mark);
            conn.reply = ReplyMode::On;
        }
        (_, ReplyMode::Off) | (_, ReplyMode::Skip) => out.truncate(mark),
        _ => {}
    }
}

fn paused_until(shared: &Shared, args: &crate::protocol::Args<'_>) -> Option<std::time::Instant> {
    if !shared.pause.active() {
        return None;
    }
    let (spec, _) = crate::exec::resolve(&shared.commands, args).ok()?;
    shared.pause.blocks(spec)
}

/// Writes the output buffer. A kill (CLIENT KILL, or a pub/sub client over
/// its output buffer limit) interrupts a write the client is not reading.
async fn flush(
    shared: &Shared,
    stream: &mut TcpStream,
    out: &mut Out,
    kill: &CancellationToken,
) -> std::io::Result<()> {
    if out.buf.is_empty() {
        return Ok(());
    }
    if out.hold_until != 0 {
        let target = std::mem::take(&mut out.hold_until);
        if let Some(p) = shared.persist() {
            // appendfsync always: the acknowledgements leave once durable.
            let mut durable = p.durable();
            p.wake(true);
            tokio::select! {
                r = durable.wait_for(|&d| d >= target) => {
                    if r.is_err() {
                        return Err(std::io::ErrorKind::BrokenPipe.into());
                    }
                }
                _ = kill.cancelled() => return Err(std::io::ErrorKind::ConnectionAborted.into()),
                _ = shared.shutdown.cancelled() => return Err(std::io::ErrorKind::ConnectionAborted.into()),
            }
        }
    }
    tokio::select! {
        r = stream.write_all(&out.buf) => r?,
        _ = kill.cancelled() => return Err(std::io::ErrorKind::ConnectionAborted.into()),
    }
    shared
        .stats
        .net_output_bytes
        .fetch_add(out.buf.len() as u64, Relaxed);
    if out.buf.capacity() > KEEP_BUFFER {
        out.buf = BytesMut::with_capacity(READ_CHUNK);
    } else {
        out.buf.clear();
    }
    Ok(())
}

/// Waits until a blocked command is served, times out, is unblocked, or the
/// client leaves (false: close the connection). Input arriving meanwhile is
/// buffered for after the wait, as Redis does.
async fn block(
    shared: &Arc<Shared>,
    stream: &mut TcpStream,
    rbuf: &mut BytesMut,
    waiter: &Arc<Waiter>,
    timeout: Option<Duration>,
    out: &mut Out,
) -> bool {
    let kill = waiter.client.kill.clone();
    if flush(shared, stream, out, &kill).await.is_err() {
        waiter.finish(Outcome::Cancelled);
        return false;
    }
    let deadline = timeout.map(|d| tokio::time::Instant::now() + d);
    let mut eof = false;
    loop {
        if let Some(o) = waiter.take() {
            match o {
                Outcome::Served(reply) => out.buf.extend_from_slice(&reply),
                Outcome::TimedOut => out.null_array(),
                Outcome::UnblockedError => {
                    out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
                }
                Outcome::Waiting | Outcome::Cancelled => return false,
            }
            return true;
        }
        if eof {
            waiter.finish(Outcome::Cancelled);
            continue;
        }
        tokio::select! {
            biased;
            _ = shared.shutdown.cancelled() => {
                waiter.finish(Outcome::Cancelled);
            }
            _ = kill.cancelled() => {
                waiter.finish(Outcome::Cancelled);
            }
            _ = waiter.wake.notified() => {}
            _ = sleep_until_or_forever(deadline) => {
                waiter.finish(Outcome::TimedOut);
            }
            r = stream.read_buf(rbuf), if rbuf.len() < READ_CHUNK * 64 => {
                if !matches!(r, Ok(n) if n > 0) {
                    eof = true;
                }
            }
        }
    }
}

async fn sleep_until_or_forever(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Next MONITOR line; pending forever when not monitoring. Lagging monitors
/// skip what they missed rather than slowing the server.
async fn recv_monitor(sub: &mut Option<MonitorSub>) -> Option<bytes::Bytes> {
    match sub {
        None => std::future::pending().await,
        Some(s) => loop {
            match s.rx.recv().await {
                Ok(b) => return Some(b),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        },
    }
}

// ---- pub/sub delivery (begin) ----
// Messages wait in the subscriber's queue (crate::pubsub) and are copied into
// the output buffer only between whole replies, so frames never interleave.

/// Resolves when a publisher queued messages; pending forever without subscriptions.
async fn pubsub_ready(subs: &Option<Box<crate::pubsub::ConnSubs>>) {
    match subs {
        Some(s) => s.sub.ready().await,
        None => std::future::pending().await,
    }
}

/// After a command: messages queued meanwhile (including the ones the command
/// published to this very client, e.g. its own keyspace events) go before the
/// command's reply, as in Redis where they enter the output buffer during the call.
fn queue_messages(conn: &mut ConnState, out: &mut Out, mark: usize) {
    let Some(subs) = conn.pubsub.as_deref_mut() else {
        return;
    };
    subs.sub.set_resp3(out.resp3());
    if !subs.sub.has_pending() {
        return;
    }
    if mark == out.buf.len() {
        subs.inflight += subs.sub.drain_into(&mut out.buf);
        return;
    }
    let reply = out.buf[mark..].to_vec();
    out.buf.truncate(mark);
    subs.inflight += subs.sub.drain_into(&mut out.buf);
    out.buf.extend_from_slice(&reply);
}

/// Between batches: writes the queued messages.
async fn deliver_messages(
    shared: &Shared,
    stream: &mut TcpStream,
    conn: &mut ConnState,
    out: &mut Out,
    kill: &CancellationToken,
) -> std::io::Result<()> {
    let Some(subs) = conn.pubsub.as_deref_mut() else {
        return Ok(());
    };
    subs.inflight += subs.sub.drain_into(&mut out.buf);
    flush(shared, stream, out, kill).await?;
    messages_written(conn);
    Ok(())
}

/// The drained messages reached the socket: they no longer count against the
/// client's output buffer limit.
fn messages_written(conn: &mut ConnState) {
    if let Some(subs) = conn.pubsub.as_deref_mut() {
        subs.sub.written(std::mem::take(&mut subs.inflight));
    }
}
// ---- pub/sub delivery (end) ----
