//! Raw-byte protocol tests: pipelining, inline commands, split writes, large
//! values, malformed RESP (exact Redis error line, then the connection closes
//! while other clients keep working), command errors that keep the
//! connection open, the query buffer limit, and RESP3 nulls. Error lines are
//! also checked against a real `redis-server` when one is on `PATH`.

mod common;

use common::redis_server::start_redis;
use common::{Raw, TestNode, WAIT, encode, reply_len};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Quoted bytes, shortened for assertion messages.
fn show(b: &[u8]) -> String {
    if b.len() > 300 {
        return format!("{}...({} bytes)", shoal::util_repr(&b[..300]), b.len());
    }
    shoal::util_repr(b)
}

/// Reads exactly `n` replies (possibly arriving together), with bounded waits.
async fn read_replies(raw: &mut Raw, n: usize) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        if let Some(len) = reply_len(&buf) {
            out.push(buf.drain(..len).collect());
            continue;
        }
        let mut chunk = [0u8; 65536];
        let got = tokio::time::timeout(WAIT, raw.stream.read(&mut chunk))
            .await
            .expect("replies in time")
            .expect("read");
        assert!(got > 0, "closed after {} of {n} replies", out.len());
        buf.extend_from_slice(&chunk[..got]);
    }
    assert!(buf.is_empty(), "unexpected extra bytes: {}", show(&buf));
    out
}

/// Sends `bytes` (ignoring write errors: the server may close early) and
/// returns everything the server sends before closing.
async fn send_until_close(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut raw = Raw::connect(addr).await;
    let (mut rd, mut wr) = raw.stream.split();
    let write = async {
        let _ = wr.write_all(bytes).await;
    };
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return buf,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let ((), got) = tokio::time::timeout(WAIT, async { tokio::join!(write, read) })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "server did not close the connection within {WAIT:?} after {}",
                show(&bytes[..bytes.len().min(64)])
            )
        });
    got
}

/// Framing errors: input and the exact bytes Redis answers before closing.
fn malformed_cases() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let mut big_count = b"*".to_vec();
    big_count.extend(std::iter::repeat_n(b'1', 70 * 1024));
    let mut big_bulk_count = b"*1\r\n$".to_vec();
    big_bulk_count.extend(std::iter::repeat_n(b'1', 70 * 1024));
    let big_inline = vec![b'a'; 70 * 1024];
    // A NUL hides the newline from Redis's strchr(): the request never ends.
    let mut nul_inline = b"ECHO a\0b\r\n".to_vec();
    nul_inline.resize(70 * 1024, b'x');
    vec![
        (
            "bad type byte",
            b"*1\r\n:5\r\n".to_vec(),
            b"-ERR Protocol error: expected '$', got ':'\r\n".to_vec(),
        ),
        (
            "nested array",
            b"*1\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
            b"-ERR Protocol error: expected '$', got '*'\r\n".to_vec(),
        ),
        (
            "negative bulk length",
            b"*1\r\n$-1\r\n".to_vec(),
            b"-ERR Protocol error: invalid bulk length\r\n".to_vec(),
        ),
        (
            "non-numeric bulk length",
            b"*2\r\n$3\r\nGET\r\n$abc\r\n".to_vec(),
            b"-ERR Protocol error: invalid bulk length\r\n".to_vec(),
        ),
        (
            "bulk length with plus sign",
            b"*1\r\n$+4\r\nPING\r\n".to_vec(),
            b"-ERR Protocol error: invalid bulk length\r\n".to_vec(),
        ),
        (
            "bulk over the default proto-max-bulk-len",
            b"*1\r\n$536870913\r\n".to_vec(),
            b"-ERR Protocol error: invalid bulk length\r\n".to_vec(),
        ),
        (
            "non-numeric multibulk length",
            b"*abc\r\n".to_vec(),
            b"-ERR Protocol error: invalid multibulk length\r\n".to_vec(),
        ),
        (
            "multibulk length over INT_MAX",
            b"*2147483648\r\n".to_vec(),
            b"-ERR Protocol error: invalid multibulk length\r\n".to_vec(),
        ),
        (
            "unbalanced double quote inline",
            b"SET a \"b\r\n".to_vec(),
            b"-ERR Protocol error: unbalanced quotes in request\r\n".to_vec(),
        ),
        (
            "unbalanced single quote inline",
            b"ECHO 'x\r\n".to_vec(),
            b"-ERR Protocol error: unbalanced quotes in request\r\n".to_vec(),
        ),
        (
            "closing quote not followed by space",
            b"ECHO \"a\"b\r\n".to_vec(),
            b"-ERR Protocol error: unbalanced quotes in request\r\n".to_vec(),
        ),
        (
            "replies before the error are kept",
            b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n:1\r\n".to_vec(),
            b"+PONG\r\n+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n".to_vec(),
        ),
        (
            "too big inline request",
            big_inline,
            b"-ERR Protocol error: too big inline request\r\n".to_vec(),
        ),
        (
            "NUL byte in an inline command",
            nul_inline,
            b"-ERR Protocol error: too big inline request\r\n".to_vec(),
        ),
        (
            "too big mbulk count string",
            big_count,
            b"-ERR Protocol error: too big mbulk count string\r\n".to_vec(),
        ),
        (
            "too big bulk count string",
            big_bulk_count,
            b"-ERR Protocol error: too big bulk count string\r\n".to_vec(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_the_redis_error_and_close_only_that_connection() {
    let node = TestNode::start().await;
    let mut bystander = node.raw().await;
    assert_eq!(bystander.cmd(&[b"SET", b"k", b"v"]).await, b"+OK\r\n");
    for (name, input, expected) in malformed_cases() {
        let got = send_until_close(node.addr, &input).await;
        assert_eq!(
            show(&got),
            show(&expected),
            "{name}: shoal's reply before closing"
        );
        // The other client, connected all along, is unaffected.
        assert_eq!(bystander.cmd(&[b"PING"]).await, b"+PONG\r\n", "{name}");
        assert_eq!(
            bystander.cmd(&[b"GET", b"k"]).await,
            b"$1\r\nv\r\n",
            "{name}"
        );
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_errors_match_redis_server() {
    let Some(redis) = start_redis().await else {
        eprintln!("skipping comparison with redis-server: not installed");
        return;
    };
    for (name, input, expected) in malformed_cases() {
        let got = send_until_close(redis.addr, &input).await;
        assert_eq!(
            show(&got),
            show(&expected),
            "{name}: redis-server's reply (the expectation in this test is wrong)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_over_configured_proto_max_bulk_len_is_a_protocol_error() {
    let node = TestNode::start_with(|c| c.proto_max_bulk_len = 1024).await;
    let mut bystander = node.raw().await;
    // At the limit is fine.
    let at_limit = vec![b'x'; 1024];
    assert_eq!(bystander.cmd(&[b"SET", b"k", &at_limit]).await, b"+OK\r\n");
    let got = send_until_close(node.addr, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n").await;
    assert_eq!(
        show(&got),
        show(b"-ERR Protocol error: invalid bulk length\r\n")
    );
    let mut expected = b"$1024\r\n".to_vec();
    expected.extend_from_slice(&at_limit);
    expected.extend_from_slice(b"\r\n");
    assert!(
        bystander.cmd(&[b"GET", b"k"]).await == expected,
        "value at the limit kept"
    );
    assert_eq!(bystander.cmd(&[b"PING"]).await, b"+PONG\r\n");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_get_all_replies_in_order() {
    let node = TestNode::start().await;
    let mut raw = node.raw().await;
    let n = 2000;
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let key = format!("key:{i}");
        let val = format!("value-{i}");
        batch.extend(encode(&[b"SET", key.as_bytes(), val.as_bytes()]));
        expected.extend_from_slice(b"+OK\r\n");
        batch.extend(encode(&[b"GET", key.as_bytes()]));
        expected.extend(format!("${}\r\n{val}\r\n", val.len()).into_bytes());
        if i % 100 == 0 {
            // inline commands mixed into the pipeline
            batch.extend_from_slice(b"PING\r\n");
            expected.extend_from_slice(b"+PONG\r\n");
        }
    }
    raw.send(&batch).await;
    let mut got = vec![0u8; expected.len()];
    tokio::time::timeout(WAIT, raw.stream.read_exact(&mut got))
        .await
        .expect("all replies in time")
        .expect("read");
    assert!(got == expected, "pipelined replies differ");
    // Nothing extra.
    assert_eq!(raw.cmd(&[b"PING"]).await, b"+PONG\r\n");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_commands() {
    let node = TestNode::start().await;
    let mut raw = node.raw().await;
    raw.send(b"PING\r\n").await;
    assert_eq!(raw.read_reply().await, b"+PONG\r\n");
    // A bare LF ends an inline command too.
    raw.send(b"PING\n").await;
    assert_eq!(raw.read_reply().await, b"+PONG\r\n");
    raw.send(b"SET k \"hello world\\x21\\n\"\r\n").await;
    assert_eq!(raw.read_reply().await, b"+OK\r\n");
    raw.send(b"GET k\r\n").await;
    assert_eq!(raw.read_reply().await, b"$13\r\nhello world!\n\r\n");
    raw.send(b"ECHO 'it\\'s'\r\n").await;
    assert_eq!(raw.read_reply().await, b"$4\r\nit's\r\n");
    raw.send(b"  ECHO    spaced\t \r\n").await;
    assert_eq!(raw.read_reply().await, b"$6\r\nspaced\r\n");
    // Empty lines and empty multibulks produce no reply.
    raw.send(b"\r\n\r\n*0\r\n*-1\r\nECHO \"\"\r\n").await;
    assert_eq!(raw.read_reply().await, b"$0\r\n\r\n");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_split_across_many_small_writes() {
    let node = TestNode::start().await;
    let mut raw = node.raw().await;
    raw.stream.set_nodelay(true).expect("nodelay");
    let value = vec![b'v'; 3000];
    let mut req = encode(&[b"SET", b"split-key", &value]);
    req.extend(encode(&[b"GET", b"split-key"]));
    req.extend_from_slice(b"ECHO inline\r\n");
    for (i, chunk) in req.chunks(7).enumerate() {
        raw.send(chunk).await;
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let replies = read_replies(&mut raw, 3).await;
    let mut expected = b"$3000\r\n".to_vec();
    expected.extend_from_slice(&value);
    expected.extend_from_slice(b"\r\n");
    assert_eq!(show(&replies[0]), show(b"+OK\r\n"));
    assert_eq!(show(&replies[1]), show(&expected), "GET after split writes");
    assert_eq!(show(&replies[2]), show(b"$6\r\ninline\r\n"));
    // Byte by byte.
    for b in encode(&[b"ECHO", b"one-byte-at-a-time"]) {
        raw.send(&[b]).await;
    }
    assert_eq!(raw.read_reply().await, b"$18\r\none-byte-at-a-time\r\n");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_value_round_trip() {
    let node = TestNode::start().await;
    let mut raw = node.raw().await;
    let value: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(raw.cmd(&[b"SET", b"big", &value]).await, b"+OK\r\n");
    let got = raw.cmd(&[b"GET", b"big"]).await;
    let mut expected = format!("${}\r\n", value.len()).into_bytes();
    expected.extend_from_slice(&value);
    expected.extend_from_slice(b"\r\n");
    assert!(got == expected, "1 MB value differs after the round trip");
    // Pipelined behind another command too.
    let mut two = encode(&[b"SET", b"big2", &value]);
    two.extend(encode(&[b"GET", b"big2"]));
    raw.send(&two).await;
    let replies = read_replies(&mut raw, 2).await;
    assert_eq!(replies[0], b"+OK\r\n");
    assert!(replies[1] == expected, "pipelined 1 MB value");
    node.stop().await;
}

/// Command errors are replies; the connection stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_errors_do_not_close_the_connection() {
    let node = TestNode::start().await;
    let redis = start_redis().await;
    let cases: &[&[&[u8]]] = &[
        &[b"NOSUCHCOMMAND", b"a", b"b"],
        &[b"nosuch"],
        &[b"GET"],
        &[b"GET", b"a", b"b"],
        &[b"SET", b"k"],
        &[b"PING", b"a", b"b"],
        &[b"SELECT", b"99"],
        &[b"CLIENT", b"NOSUCH"],
    ];
    let mut raw = node.raw().await;
    let mut reference = match &redis {
        Some(r) => Some(Raw::connect(r.addr).await),
        None => None,
    };
    for args in cases {
        let got = raw.cmd(args).await;
        assert_eq!(got.first(), Some(&b'-'), "{args:?}: {}", show(&got));
        if let Some(reference) = reference.as_mut() {
            let expected = reference.cmd(args).await;
            assert_eq!(show(&got), show(&expected), "error line for {:?}", args);
        }
        assert_eq!(raw.cmd(&[b"PING"]).await, b"+PONG\r\n");
    }
    // Inline too.
    raw.send(b"NOSUCH arg\r\n").await;
    assert_eq!(
        show(&raw.read_reply().await),
        show(b"-ERR unknown command 'NOSUCH', with args beginning with: 'arg' \r\n")
    );
    assert_eq!(raw.cmd(&[b"PING"]).await, b"+PONG\r\n");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_buffer_limit_closes_the_connection() {
    let limit = 1024 * 1024;
    let node = TestNode::start_with(|c| c.client_query_buffer_limit = limit).await;
    let mut bystander = node.raw().await;
    // An unfinished 4 MB bulk: the server buffers it and must give up past the limit.
    let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4194304\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 2 * limit as usize));
    let got = send_until_close(node.addr, &req).await;
    assert!(
        got.is_empty(),
        "no reply expected before the close, got {}",
        show(&got)
    );
    assert_eq!(bystander.cmd(&[b"PING"]).await, b"+PONG\r\n");
    assert_eq!(bystander.cmd(&[b"GET", b"k"]).await, b"$-1\r\n");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_null_after_hello_3() {
    let node = TestNode::start().await;
    let mut raw = node.raw().await;
    assert_eq!(raw.cmd(&[b"GET", b"missing"]).await, b"$-1\r\n");
    let hello = raw.cmd(&[b"HELLO", b"3"]).await;
    assert_eq!(
        hello.first(),
        Some(&b'%'),
        "HELLO 3 replies with a map: {}",
        show(&hello)
    );
    assert_eq!(raw.cmd(&[b"GET", b"missing"]).await, b"_\r\n");
    assert_eq!(raw.cmd(&[b"CLIENT", b"GETNAME"]).await, b"_\r\n");
    assert_eq!(raw.cmd(&[b"PING"]).await, b"+PONG\r\n");
    let hello = raw.cmd(&[b"HELLO", b"2"]).await;
    assert_eq!(
        hello.first(),
        Some(&b'*'),
        "HELLO 2 replies with an array: {}",
        show(&hello)
    );
    assert_eq!(raw.cmd(&[b"GET", b"missing"]).await, b"$-1\r\n");
    node.stop().await;
}
