//! shoal-proto: the peer protocol between shoal nodes.
//!
//! `proto/peer.proto` (package `shoal.peer.v1`) is compiled by `build.rs` into
//! prost messages plus a tonic client and server, included here as [`peer`].
//! The protocol moves client commands, replies and stored records as opaque
//! bytes (`bytes::Bytes`, so decoding slices the received buffer rather than
//! copying); only the receiving node's execution path interprets them.
//!
//! - [`Peer`] is the service trait a node implements; serve it with
//!   `tonic::transport::Server::builder().add_service(PeerServer::new(..))`.
//! - [`PeerClient`] calls it over a `tonic::transport::Channel`.
//! - [`with_deadline`] runs one call with a deadline and reports an expired
//!   deadline as `DEADLINE_EXCEEDED` (tonic itself reports `CANCELLED`).
//!
//! Message size: tonic refuses to decode a message over 4 MiB by default, on
//! both sides. A forwarded command or its reply can be larger (Redis accepts
//! bulk strings up to 512 MB), so the cluster layer must raise
//! `max_decoding_message_size` on [`PeerServer`] and [`PeerClient`].

use std::future::Future;
use std::time::Duration;

use tonic::{Code, Request, Response, Status};

/// Generated code for the `shoal.peer.v1` package: the messages, the
/// [`ForwardStatus`] enum, `peer_client::PeerClient` and
/// `peer_server::{Peer, PeerServer}`.
///
/// The generated items carry their own lint allowances (tonic-prost-build puts
/// `#[allow(clippy::all)]` on every message and a module-level `#![allow]` on
/// the client and server modules), so none is needed here.
pub mod peer {
    tonic::include_proto!("shoal.peer.v1");
}

pub use peer::peer_client::PeerClient;
pub use peer::peer_server::{Peer, PeerServer};
pub use peer::{
    ForwardReply, ForwardRequest, ForwardStatus, PingReply, PingRequest, PullSlotRequest, Record,
    SlotChunk,
};

/// Default deadline of one peer call (Forward, Ping, or opening a PullSlot
/// stream). A forwarded command holds a client's reply, so this is the longest
/// a client waits on an unresponsive peer before getting an error.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Wraps `message` in a request whose deadline is `timeout`.
///
/// The deadline travels as the `grpc-timeout` header: the server drops the
/// call when it passes, and the tonic channel enforces it on the client side
/// too, connection set-up included. For a server-streaming call (PullSlot) it
/// bounds only the wait for the stream to open, not the messages after: bound
/// each `Streaming::message` separately.
pub fn request<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Runs one call with a deadline of `timeout` and reports an expired deadline
/// as [`Code::DeadlineExceeded`].
///
/// `call` receives the request (built by [`request`]) and returns the client
/// method's future, e.g. `with_deadline(t, msg, |r| client.forward(r))`.
///
/// Why not just [`request`]: tonic 0.14 turns an expired `grpc-timeout`, on
/// either side, into `Code::Cancelled` ("Timeout expired"), which cannot be
/// told apart from a real cancellation by its code. Like other gRPC clients
/// (grpc-dotnet, vert.x), this reports `Cancelled` as `DeadlineExceeded` when
/// the deadline has passed. The call is also raced against a local timer, so
/// it returns by the deadline even if the channel's own timer were not armed
/// yet (for example while the channel's request buffer is full).
///
/// # Errors
///
/// The call's own [`Status`], or `DEADLINE_EXCEEDED` when `timeout` passed.
pub async fn with_deadline<T, R, F, Fut>(
    timeout: Duration,
    message: T,
    call: F,
) -> Result<Response<R>, Status>
where
    F: FnOnce(Request<T>) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let started = tokio::time::Instant::now();
    match tokio::time::timeout(timeout, call(request(message, timeout))).await {
        Ok(Err(status))
            if status.code() == Code::Cancelled
                && (caused_by_timeout(&status) || started.elapsed() >= timeout) =>
        {
            Err(deadline_exceeded(timeout))
        }
        Ok(result) => result,
        Err(_elapsed) => Err(deadline_exceeded(timeout)),
    }
}

/// Whether tonic's own timer produced `status`: the client-side deadline
/// leaves a `tonic::TimeoutExpired` in the source chain. (A `Cancelled` sent
/// by the server when its copy of the deadline fires has no source; the
/// elapsed-time check in [`with_deadline`] covers that one.)
fn caused_by_timeout(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = err.source();
    }
    false
}

fn deadline_exceeded(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!("peer call deadline of {timeout:?} expired"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn request_carries_the_deadline_and_results_pass_through() {
        let reply = with_deadline(T, 7u32, |r: Request<u32>| async move {
            let header = r.metadata().get("grpc-timeout").cloned();
            assert_eq!(
                header.as_ref().map(|h| h.to_str().ok()),
                Some(Some("5000000u"))
            );
            Ok(Response::new(r.into_inner() + 1))
        })
        .await
        .expect("ok");
        assert_eq!(reply.into_inner(), 8);

        let err = with_deadline(T, (), |_| async {
            Err::<Response<()>, _>(Status::not_found("x"))
        })
        .await
        .expect_err("error");
        assert_eq!(err.code(), Code::NotFound);
    }

    #[tokio::test]
    async fn cancelled_before_the_deadline_stays_cancelled() {
        let err = with_deadline(T, (), |_| async {
            Err::<Response<()>, _>(Status::cancelled("cancelled by the peer"))
        })
        .await
        .expect_err("error");
        assert_eq!(err.code(), Code::Cancelled);
    }

    #[tokio::test]
    async fn cancelled_by_tonics_timer_is_deadline_exceeded() {
        // What tonic 0.14's channel returns when the grpc-timeout fires.
        let mut status = Status::cancelled("Timeout expired");
        status.set_source(Arc::new(tonic::TimeoutExpired(())));
        let err = with_deadline(T, (), |_| async { Err::<Response<()>, _>(status) })
            .await
            .expect_err("error");
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    }

    #[tokio::test]
    async fn a_call_that_never_returns_ends_at_the_deadline() {
        let t = Duration::from_millis(50);
        let started = tokio::time::Instant::now();
        let err = with_deadline(t, (), |_| {
            std::future::pending::<Result<Response<()>, Status>>()
        })
        .await
        .expect_err("error");
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
        assert!(started.elapsed() >= t);
    }
}
