//! Connection-level behaviour: maxclients, idle timeout, AUTH with
//! requirepass, protected mode's loopback exemption, graceful shutdown.
mod common;

use common::{TestNode, WAIT};
use std::time::Duration;

#[tokio::test]
async fn maxclients_refuses_extra_connections_with_an_error() {
    let node = TestNode::start_with(|c| c.maxclients = 2).await;
    let mut a = node.raw().await;
    let mut b = node.raw().await;
    assert_eq!(a.cmd(&[b"PING"]).await, b"+PONG\r\n");
    assert_eq!(b.cmd(&[b"PING"]).await, b"+PONG\r\n");
    let mut c = node.raw().await;
    assert_eq!(
        c.read_to_close().await,
        b"-ERR max number of clients reached\r\n"
    );
    drop(a);
    // The slot frees once the server notices the close; retry within a bound.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut d = node.raw().await;
        d.send(b"PING\r\n").await;
        let got = d.read_to_close_or_reply().await;
        if got == b"+PONG\r\n" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slot never freed: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.stop().await;
}

#[tokio::test]
async fn idle_clients_are_closed_after_timeout() {
    let node = TestNode::start_with(|c| c.timeout = 1).await;
    let mut a = node.raw().await;
    assert_eq!(a.cmd(&[b"PING"]).await, b"+PONG\r\n");
    let start = std::time::Instant::now();
    assert_eq!(a.read_to_close().await, b"");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    node.stop().await;
}

#[tokio::test]
async fn requirepass_demands_auth() {
    let node = TestNode::start_with(|c| c.requirepass = "secret".into()).await;
    let mut a = node.raw().await;
    assert_eq!(
        a.cmd(&[b"GET", b"k"]).await,
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        a.cmd(&[b"AUTH", b"wrong"]).await,
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(a.cmd(&[b"AUTH", b"secret"]).await, b"+OK\r\n");
    assert_eq!(a.cmd(&[b"GET", b"k"]).await, b"$-1\r\n");
    let mut b = node.raw().await;
    let hello = b
        .cmd(&[b"HELLO", b"3", b"AUTH", b"default", b"secret"])
        .await;
    assert!(
        hello.starts_with(b"%7\r\n"),
        "{:?}",
        String::from_utf8_lossy(&hello)
    );
    assert_eq!(b.cmd(&[b"GET", b"k"]).await, b"_\r\n");
    node.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_and_closes_connections() {
    let node = TestNode::start().await;
    let mut a = node.raw().await;
    assert_eq!(a.cmd(&[b"SET", b"k", b"v"]).await, b"+OK\r\n");
    let handle = node.handle.expect("running");
    let addr = node.addr;
    assert!(handle.shutdown(WAIT).await);
    assert_eq!(a.read_to_close().await, b"");
    // Nobody listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
