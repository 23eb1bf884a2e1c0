//! Blocking commands with several clients: wake-up on a push from any
//! client, first-blocked-first-served, timeouts, CLIENT UNBLOCK, MULTI,
//! BLMOVE chains, and nothing lost when a blocked client leaves.
mod common;

use common::{Raw, TestNode, WAIT, encode};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

async fn q(r: &mut Raw, line: &str) -> String {
    let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
    String::from_utf8_lossy(&Box::pin(r.cmd(&args)).await).into_owned()
}

async fn send(r: &mut Raw, line: &str) {
    let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
    r.send(&encode(&args)).await;
}

async fn reply(r: &mut Raw) -> String {
    String::from_utf8_lossy(&Box::pin(r.read_reply()).await).into_owned()
}

/// Waits (bounded) until `n` clients are blocked.
async fn until_blocked(node: &TestNode, n: usize) {
    let shared = node.handle.as_ref().expect("running").shared();
    let start = Instant::now();
    while shared.blocking.blocked() != n {
        assert!(start.elapsed() < WAIT, "never saw {n} blocked clients");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn push_from_another_client_wakes_the_blocked_one() {
    let node = TestNode::start().await;
    let mut a = node.raw().await;
    let mut b = node.raw().await;
    send(&mut a, "BLPOP list 0").await;
    until_blocked(&node, 1).await;
    assert_eq!(q(&mut b, "RPUSH list hello").await, ":1\r\n");
    assert_eq!(reply(&mut a).await, "*2\r\n$4\r\nlist\r\n$5\r\nhello\r\n");
    // Served before the pusher's next command: nothing left in the list.
    assert_eq!(q(&mut b, "LLEN list").await, ":0\r\n");
    assert_eq!(q(&mut b, "EXISTS list").await, ":0\r\n");
    until_blocked(&node, 0).await;
    node.stop().await;
}

#[tokio::test]
async fn first_blocked_is_first_served() {
    let node = TestNode::start().await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut c = node.raw().await;
        send(&mut c, "BRPOP q 0").await;
        until_blocked(&node, i + 1).await;
        clients.push(c);
    }
    let mut p = node.raw().await;
    // One push of three: each waiter gets one, in blocking order (BRPOP takes the tail).
    assert_eq!(q(&mut p, "LPUSH q c b a").await, ":3\r\n");
    assert_eq!(reply(&mut clients[0]).await, "*2\r\n$1\r\nq\r\n$1\r\nc\r\n");
    assert_eq!(reply(&mut clients[1]).await, "*2\r\n$1\r\nq\r\n$1\r\nb\r\n");
    assert_eq!(reply(&mut clients[2]).await, "*2\r\n$1\r\nq\r\n$1\r\na\r\n");
    assert_eq!(q(&mut p, "EXISTS q").await, ":0\r\n");
    node.stop().await;
}

#[tokio::test]
async fn timeout_answers_null_and_pipelined_commands_follow() {
    let node = TestNode::start().await;
    let mut a = node.raw().await;
    let start = Instant::now();
    let mut pipe = encode(&[b"BLPOP", b"nothing", b"0.2"]);
    pipe.extend(encode(&[b"PING"]));
    a.send(&pipe).await;
    // Both replies leave in one write: read them as bytes.
    let mut got = vec![0u8; b"*-1\r\n+PONG\r\n".len()];
    tokio::time::timeout(WAIT, a.stream.read_exact(&mut got))
        .await
        .expect("replies in time")
        .expect("read");
    assert_eq!(got, b"*-1\r\n+PONG\r\n");
    assert!(start.elapsed() >= Duration::from_millis(190));
    // RESP3 null for the timeout.
    assert!(q(&mut a, "HELLO 3").await.starts_with('%'));
    assert_eq!(q(&mut a, "BZPOPMIN nothing 0.05").await, "_\r\n");
    assert_eq!(q(&mut a, "BLPOP k other 0.01").await, "_\r\n");
    node.stop().await;
}

#[tokio::test]
async fn bad_timeouts_are_errors() {
    let node = TestNode::start().await;
    let mut a = node.raw().await;
    assert_eq!(
        q(&mut a, "BLPOP k -1").await,
        "-ERR timeout is negative\r\n"
    );
    assert_eq!(
        q(&mut a, "BLPOP k abc").await,
        "-ERR timeout is not a float or out of range\r\n"
    );
    // As Redis: milliseconds are truncated, so a tiny negative is 0 (forever)
    // and a tiny positive too; infinities are "negative".
    assert_eq!(
        q(&mut a, "BLPOP k inf").await,
        "-ERR timeout is negative\r\n"
    );
    assert_eq!(q(&mut a, "RPUSH k v").await, ":1\r\n");
    assert_eq!(
        q(&mut a, "BLPOP k -0.0001").await,
        "*2\r\n$1\r\nk\r\n$1\r\nv\r\n"
    );
    node.stop().await;
}

#[tokio::test]
async fn inside_multi_blocking_commands_do_not_block() {
    let node = TestNode::start().await;
    let mut a = node.raw().await;
    assert_eq!(q(&mut a, "MULTI").await, "+OK\r\n");
    assert_eq!(q(&mut a, "BLPOP empty 0").await, "+QUEUED\r\n");
    assert_eq!(
        q(&mut a, "BLMOVE empty dst LEFT RIGHT 0").await,
        "+QUEUED\r\n"
    );
    assert_eq!(q(&mut a, "BZPOPMAX empty 0").await, "+QUEUED\r\n");
    assert_eq!(q(&mut a, "EXEC").await, "*3\r\n*-1\r\n$-1\r\n*-1\r\n");
    // A push inside a transaction serves a waiter after EXEC.
    let mut w = node.raw().await;
    send(&mut w, "BLPOP t 0").await;
    until_blocked(&node, 1).await;
    assert_eq!(q(&mut a, "MULTI").await, "+OK\r\n");
    assert_eq!(q(&mut a, "RPUSH t 1 2").await, "+QUEUED\r\n");
    assert_eq!(q(&mut a, "LLEN t").await, "+QUEUED\r\n");
    assert_eq!(q(&mut a, "EXEC").await, "*2\r\n:2\r\n:2\r\n");
    assert_eq!(reply(&mut w).await, "*2\r\n$1\r\nt\r\n$1\r\n1\r\n");
    assert_eq!(q(&mut a, "LRANGE t 0 -1").await, "*1\r\n$1\r\n2\r\n");
    node.stop().await;
}

#[tokio::test]
async fn client_unblock_with_timeout_or_error() {
    let node = TestNode::start().await;
    let mut a = node.raw().await;
    let id = q(&mut a, "CLIENT ID").await;
    let id = id.trim().trim_start_matches(':').to_string();
    let mut b = node.raw().await;
    send(&mut a, "BLPOP k 0").await;
    until_blocked(&node, 1).await;
    let list = q(&mut b, &format!("CLIENT LIST ID {id}")).await;
    assert!(list.contains(" flags=b "), "{list}");
    assert_eq!(q(&mut b, &format!("CLIENT UNBLOCK {id}")).await, ":1\r\n");
    assert_eq!(reply(&mut a).await, "*-1\r\n");
    assert_eq!(q(&mut b, &format!("CLIENT UNBLOCK {id}")).await, ":0\r\n");
    send(&mut a, "BLPOP k 0").await;
    until_blocked(&node, 1).await;
    assert_eq!(
        q(&mut b, &format!("CLIENT UNBLOCK {id} ERROR")).await,
        ":1\r\n"
    );
    assert_eq!(
        reply(&mut a).await,
        "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );
    assert_eq!(
        q(&mut b, &format!("CLIENT UNBLOCK {id} MAYBE")).await,
        "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"
    );
    node.stop().await;
}

#[tokio::test]
async fn blmove_chain_and_multiple_keys() {
    let node = TestNode::start().await;
    let mut mover = node.raw().await;
    let mut popper = node.raw().await;
    let mut multi = node.raw().await;
    let mut p = node.raw().await;
    send(&mut mover, "BLMOVE src mid RIGHT LEFT 0").await;
    until_blocked(&node, 1).await;
    send(&mut popper, "BLPOP mid 0").await;
    until_blocked(&node, 2).await;
    assert_eq!(q(&mut p, "RPUSH src x").await, ":1\r\n");
    assert_eq!(reply(&mut mover).await, "$1\r\nx\r\n");
    assert_eq!(reply(&mut popper).await, "*2\r\n$3\r\nmid\r\n$1\r\nx\r\n");
    // Blocked on two keys: served from the one that got an element.
    send(&mut multi, "BLPOP k1 k2 0").await;
    until_blocked(&node, 1).await;
    assert_eq!(q(&mut p, "RPUSH k2 v").await, ":1\r\n");
    assert_eq!(reply(&mut multi).await, "*2\r\n$2\r\nk2\r\n$1\r\nv\r\n");
    // Sorted sets wake BZPOPMIN.
    send(&mut multi, "BZPOPMIN z 0").await;
    until_blocked(&node, 1).await;
    assert_eq!(q(&mut p, "ZADD z 2 b 1 a").await, ":2\r\n");
    assert_eq!(
        reply(&mut multi).await,
        "*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_blocked_client_that_leaves_loses_nothing() {
    let node = TestNode::start().await;
    {
        let mut a = node.raw().await;
        send(&mut a, "BLPOP gone 0").await;
        until_blocked(&node, 1).await;
    }
    until_blocked(&node, 0).await;
    let mut p = node.raw().await;
    assert_eq!(q(&mut p, "RPUSH gone v").await, ":1\r\n");
    assert_eq!(q(&mut p, "LRANGE gone 0 -1").await, "*1\r\n$1\r\nv\r\n");
    // A key of the wrong type keeps the waiter blocked; it is served later.
    let mut w = node.raw().await;
    send(&mut w, "BLPOP wt 0").await;
    until_blocked(&node, 1).await;
    assert_eq!(q(&mut p, "SET wt string").await, "+OK\r\n");
    until_blocked(&node, 1).await;
    assert_eq!(q(&mut p, "DEL wt").await, ":1\r\n");
    assert_eq!(q(&mut p, "RPUSH wt v").await, ":1\r\n");
    assert_eq!(reply(&mut w).await, "*2\r\n$2\r\nwt\r\n$1\r\nv\r\n");
    node.stop().await;
}
