//! Pub/Sub with several clients: delivery order for channels, patterns and
//! shard channels, RESP3 pushes interleaved with replies, keyspace events
//! (including expiry under an injected clock), and slow subscribers being
//! disconnected at the output buffer limit while PUBLISH keeps answering.
mod common;

use common::{TestNode, WAIT, encode, reply_len};
use shoal::store::ManualClock;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection that reads a stream of frames (replies and pushes), keeping
/// what arrives beyond the frame asked for.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, line: &str) {
        let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        self.stream.write_all(&encode(&args)).await.expect("write");
    }

    /// The next complete frame, as text.
    async fn frame(&mut self) -> String {
        self.try_frame(WAIT)
            .await
            .unwrap_or_else(|| panic!("no frame in time; have {:?}", self.text()))
    }

    async fn try_frame(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(n) = reply_len(&self.buf) {
                let f = self.buf.drain(..n).collect::<Vec<u8>>();
                return Some(String::from_utf8_lossy(&f).into_owned());
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// A command whose arguments may contain spaces.
    async fn cmd_args(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.stream.write_all(&encode(&args)).await.expect("write");
        self.frame().await
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.send(line).await;
        self.frame().await
    }

    /// Sends HELLO 3 and skips its reply.
    async fn resp3(&mut self) {
        let hello = self.cmd("HELLO 3").await;
        assert!(hello.starts_with('%'), "{hello}");
    }

    /// Asserts nothing more arrives for a short while.
    async fn quiet(&mut self) {
        if let Some(f) = self.try_frame(Duration::from_millis(100)).await {
            panic!("unexpected frame {f:?}");
        }
    }
}

fn msg(kind: &str, parts: &[&str]) -> String {
    let head = if kind == ">" { ">" } else { "*" };
    let mut s = format!("{head}{}\r\n", parts.len());
    for p in parts {
        s.push_str(&format!("${}\r\n{p}\r\n", p.len()));
    }
    s
}

fn confirm(proto: &str, word: &str, ch: Option<&str>, n: i64) -> String {
    let head = if proto == ">" { ">3" } else { "*3" };
    let ch = match ch {
        Some(c) => format!("${}\r\n{c}\r\n", c.len()),
        None if proto == ">" => "_\r\n".to_string(),
        None => "$-1\r\n".to_string(),
    };
    format!("{head}\r\n${}\r\n{word}\r\n{ch}:{n}\r\n", word.len())
}

/// Polls `cmd` on `c` until it answers `want` (bounded).
async fn eventually(c: &mut Client, cmd: &str, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = c.cmd(cmd).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{cmd}: still {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn confirmations_counts_and_unsubscribe_all() {
    let node = TestNode::start().await;
    let mut c = Client::connect(node.addr).await;
    c.send("SUBSCRIBE a b a").await;
    assert_eq!(c.frame().await, confirm("*", "subscribe", Some("a"), 1));
    assert_eq!(c.frame().await, confirm("*", "subscribe", Some("b"), 2));
    assert_eq!(c.frame().await, confirm("*", "subscribe", Some("a"), 2));
    c.send("PSUBSCRIBE x* y*").await;
    assert_eq!(c.frame().await, confirm("*", "psubscribe", Some("x*"), 3));
    assert_eq!(c.frame().await, confirm("*", "psubscribe", Some("y*"), 4));
    c.send("SSUBSCRIBE s").await;
    assert_eq!(c.frame().await, confirm("*", "ssubscribe", Some("s"), 1));
    // Unsubscribing everything goes in subscription order, counting down.
    c.send("UNSUBSCRIBE").await;
    assert_eq!(c.frame().await, confirm("*", "unsubscribe", Some("a"), 3));
    assert_eq!(c.frame().await, confirm("*", "unsubscribe", Some("b"), 2));
    c.send("PUNSUBSCRIBE").await;
    assert_eq!(c.frame().await, confirm("*", "punsubscribe", Some("x*"), 1));
    assert_eq!(c.frame().await, confirm("*", "punsubscribe", Some("y*"), 0));
    // The shard subscription alone keeps RESP2 subscribed mode.
    assert!(c.cmd("GET k").await.starts_with("-ERR Can't execute 'get'"));
    assert_eq!(
        c.cmd("UNSUBSCRIBE").await,
        confirm("*", "unsubscribe", None, 0)
    );
    c.send("SUNSUBSCRIBE").await;
    assert_eq!(c.frame().await, confirm("*", "sunsubscribe", Some("s"), 0));
    assert_eq!(c.cmd("GET k").await, "$-1\r\n");
    c.quiet().await;
    node.stop().await;
}

#[tokio::test]
async fn channel_and_pattern_delivery_in_order() {
    let node = TestNode::start().await;
    let mut s1 = Client::connect(node.addr).await;
    let mut s2 = Client::connect(node.addr).await;
    let mut p = Client::connect(node.addr).await;
    assert_eq!(
        s1.cmd("SUBSCRIBE news").await,
        confirm("*", "subscribe", Some("news"), 1)
    );
    assert_eq!(
        s2.cmd("PSUBSCRIBE n*").await,
        confirm("*", "psubscribe", Some("n*"), 1)
    );
    s2.send("SUBSCRIBE news").await;
    assert_eq!(s2.frame().await, confirm("*", "subscribe", Some("news"), 2));
    assert_eq!(
        p.cmd("PUBSUB NUMSUB news other").await,
        "*4\r\n$4\r\nnews\r\n:2\r\n$5\r\nother\r\n:0\r\n"
    );
    assert_eq!(p.cmd("PUBSUB NUMPAT").await, ":1\r\n");
    assert_eq!(p.cmd("PUBSUB CHANNELS n*").await, "*1\r\n$4\r\nnews\r\n");
    for i in 0..200 {
        // s1 once, s2 twice (channel and pattern).
        assert_eq!(p.cmd(&format!("PUBLISH news m{i}")).await, ":3\r\n");
    }
    assert_eq!(p.cmd("PUBLISH nope x").await, ":1\r\n");
    for i in 0..200 {
        let m = format!("m{i}");
        assert_eq!(s1.frame().await, msg("*", &["message", "news", &m]));
        // A client matching by channel and pattern gets the channel message first.
        assert_eq!(s2.frame().await, msg("*", &["message", "news", &m]));
        assert_eq!(s2.frame().await, msg("*", &["pmessage", "n*", "news", &m]));
    }
    assert_eq!(s2.frame().await, msg("*", &["pmessage", "n*", "nope", "x"]));
    s1.quiet().await;
    // A disconnected subscriber is forgotten.
    drop(s1);
    eventually(&mut p, "PUBLISH news last", ":2\r\n").await;
    node.stop().await;
}

#[tokio::test]
async fn sharded_channels() {
    let node = TestNode::start().await;
    let mut s = Client::connect(node.addr).await;
    let mut p = Client::connect(node.addr).await;
    s.send("SSUBSCRIBE {a}1 {a}2").await;
    assert_eq!(s.frame().await, confirm("*", "ssubscribe", Some("{a}1"), 1));
    assert_eq!(s.frame().await, confirm("*", "ssubscribe", Some("{a}2"), 2));
    assert_eq!(p.cmd("PUBLISH {a}1 x").await, ":0\r\n");
    assert_eq!(p.cmd("SPUBLISH {a}1 hello").await, ":1\r\n");
    assert_eq!(p.cmd("SPUBLISH {a}3 hello").await, ":0\r\n");
    assert_eq!(
        p.cmd("PUBSUB SHARDNUMSUB {a}1").await,
        "*2\r\n$4\r\n{a}1\r\n:1\r\n"
    );
    assert_eq!(p.cmd("PUBSUB CHANNELS").await, "*0\r\n");
    assert_eq!(s.frame().await, msg("*", &["smessage", "{a}1", "hello"]));
    s.quiet().await;
    node.stop().await;
}

#[tokio::test]
async fn resp3_pushes_interleave_with_replies() {
    let node = TestNode::start().await;
    let mut c = Client::connect(node.addr).await;
    c.resp3().await;
    assert_eq!(
        c.cmd("SUBSCRIBE ch").await,
        confirm(">", "subscribe", Some("ch"), 1)
    );
    // Any command runs while subscribed in RESP3; PING answers normally.
    assert_eq!(c.cmd("PING").await, "+PONG\r\n");
    assert_eq!(c.cmd("SET k v").await, "+OK\r\n");
    // A message to oneself arrives before the PUBLISH reply, as in Redis.
    c.send("PUBLISH ch self").await;
    assert_eq!(c.frame().await, msg(">", &["message", "ch", "self"]));
    assert_eq!(c.frame().await, ":1\r\n");

    // Another client publishes while this one runs commands: every frame is
    // whole, messages keep their order, replies keep theirs.
    let addr = node.addr;
    let publisher = tokio::spawn(async move {
        let mut p = Client::connect(addr).await;
        for i in 0..500 {
            assert_eq!(p.cmd(&format!("PUBLISH ch m{i}")).await, ":1\r\n");
        }
    });
    let mut next_msg = 0;
    for i in 0..300 {
        c.send(&format!("ECHO r{i}")).await;
        loop {
            let f = c.frame().await;
            if f.starts_with('>') {
                assert_eq!(f, msg(">", &["message", "ch", &format!("m{next_msg}")]));
                next_msg += 1;
            } else {
                assert_eq!(f, format!("${}\r\nr{i}\r\n", format!("r{i}").len()));
                break;
            }
        }
    }
    publisher.await.expect("publisher");
    while next_msg < 500 {
        let f = c.frame().await;
        assert_eq!(f, msg(">", &["message", "ch", &format!("m{next_msg}")]));
        next_msg += 1;
    }
    c.quiet().await;
    node.stop().await;
}

#[tokio::test]
async fn subscribed_clients_in_client_list_and_kill() {
    let node = TestNode::start().await;
    let mut s = Client::connect(node.addr).await;
    let mut c = Client::connect(node.addr).await;
    s.send("SUBSCRIBE a b").await;
    s.frame().await;
    s.frame().await;
    s.send("PSUBSCRIBE p").await;
    s.frame().await;
    let info = c.cmd("CLIENT LIST TYPE pubsub").await;
    assert!(info.contains("flags=P "), "{info}");
    assert!(info.contains(" sub=2 psub=1 ssub=0 "), "{info}");
    let normal = c.cmd("CLIENT LIST TYPE normal").await;
    assert!(!normal.contains("flags=P"), "{normal}");
    assert_eq!(c.cmd("CLIENT KILL TYPE pubsub").await, ":1\r\n");
    assert!(
        s.try_frame(WAIT).await.is_none(),
        "killed subscriber closed"
    );
    eventually(&mut c, "PUBSUB NUMSUB a", "*2\r\n$1\r\na\r\n:0\r\n").await;
    node.stop().await;
}

/// Reads `n` keyspace-event pmessages and returns (channel, payload) pairs.
async fn events(c: &mut Client, n: usize) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for _ in 0..n {
        let f = c.frame().await;
        let parts: Vec<&str> = f.split("\r\n").collect();
        assert_eq!(parts.get(2), Some(&"pmessage"), "{f:?}");
        v.push((parts[6].to_string(), parts[8].to_string()));
    }
    v
}

fn ev(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn keyspace_events_for_commands_and_expiry() {
    let clock = ManualClock::new(1_700_000_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut c = Client::connect(node.addr).await;
    let mut s = Client::connect(node.addr).await;
    // Off by default: nothing is published.
    assert_eq!(
        s.cmd("PSUBSCRIBE __key*__:*").await,
        confirm("*", "psubscribe", Some("__key*__:*"), 1)
    );
    assert_eq!(c.cmd("SET k v").await, "+OK\r\n");
    s.quiet().await;

    assert_eq!(
        c.cmd("CONFIG SET notify-keyspace-events KEA").await,
        "+OK\r\n"
    );
    assert_eq!(c.cmd("SET k v EX 100").await, "+OK\r\n");
    assert_eq!(
        events(&mut s, 4).await,
        ev(&[
            ("__keyspace@0__:k", "set"),
            ("__keyevent@0__:set", "k"),
            ("__keyspace@0__:k", "expire"),
            ("__keyevent@0__:expire", "k"),
        ])
    );
    assert_eq!(c.cmd("PERSIST k").await, ":1\r\n");
    assert_eq!(c.cmd("INCR n").await, ":1\r\n");
    assert_eq!(c.cmd("APPEND k x").await, ":2\r\n");
    assert_eq!(c.cmd("RENAME k k2").await, "+OK\r\n");
    assert_eq!(c.cmd("DEL k2 nokey").await, ":1\r\n");
    assert_eq!(c.cmd("MOVE n 3").await, ":1\r\n");
    let got = events(&mut s, 14).await;
    assert_eq!(
        got,
        ev(&[
            ("__keyspace@0__:k", "persist"),
            ("__keyevent@0__:persist", "k"),
            ("__keyspace@0__:n", "incrby"),
            ("__keyevent@0__:incrby", "n"),
            ("__keyspace@0__:k", "append"),
            ("__keyevent@0__:append", "k"),
            ("__keyspace@0__:k", "rename_from"),
            ("__keyevent@0__:rename_from", "k"),
            ("__keyspace@0__:k2", "rename_to"),
            ("__keyevent@0__:rename_to", "k2"),
            ("__keyspace@0__:k2", "del"),
            ("__keyevent@0__:del", "k2"),
            ("__keyspace@0__:n", "move_from"),
            ("__keyevent@0__:move_from", "n"),
        ])
    );
    assert_eq!(
        events(&mut s, 2).await,
        ev(&[
            ("__keyspace@3__:n", "move_to"),
            ("__keyevent@3__:move_to", "n"),
        ])
    );

    // Only keyevent for the expired class: lazy expiry on access.
    assert_eq!(
        c.cmd("CONFIG SET notify-keyspace-events Ex").await,
        "+OK\r\n"
    );
    assert_eq!(c.cmd("SET e v PX 100").await, "+OK\r\n");
    clock.advance(200);
    assert_eq!(c.cmd("GET e").await, "$-1\r\n");
    assert_eq!(
        events(&mut s, 1).await,
        ev(&[("__keyevent@0__:expired", "e")])
    );
    // Active expiry, without any access, in the database the key lives in.
    assert_eq!(c.cmd("SELECT 5").await, "+OK\r\n");
    assert_eq!(c.cmd("SET f v PX 100").await, "+OK\r\n");
    clock.advance(200);
    assert_eq!(
        events(&mut s, 1).await,
        ev(&[("__keyevent@5__:expired", "f")])
    );
    s.quiet().await;
    node.stop().await;
}

#[tokio::test]
async fn resp3_client_sees_its_own_keyspace_event_before_the_reply() {
    let node = TestNode::start().await;
    let mut c = Client::connect(node.addr).await;
    c.resp3().await;
    assert_eq!(
        c.cmd("CONFIG SET notify-keyspace-events E$").await,
        "+OK\r\n"
    );
    assert_eq!(
        c.cmd("SUBSCRIBE __keyevent@0__:set").await,
        confirm(">", "subscribe", Some("__keyevent@0__:set"), 1)
    );
    c.send("SET mykey v").await;
    assert_eq!(
        c.frame().await,
        msg(">", &["message", "__keyevent@0__:set", "mykey"])
    );
    assert_eq!(c.frame().await, "+OK\r\n");
    node.stop().await;
}

/// Resident set size of this process (the node runs in-process), in bytes.
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_is_disconnected_at_the_hard_limit() {
    let node = TestNode::start().await;
    let mut p = Client::connect(node.addr).await;
    assert_eq!(
        p.cmd_args(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 256kb 0 0"
        ])
        .await,
        "+OK\r\n"
    );
    // A subscriber that never reads.
    let mut slow = Client::connect(node.addr).await;
    slow.send("SUBSCRIBE firehose").await;
    // And one that keeps up.
    let mut fast = Client::connect(node.addr).await;
    assert_eq!(
        fast.cmd("SUBSCRIBE firehose").await,
        confirm("*", "subscribe", Some("firehose"), 1)
    );
    eventually(
        &mut p,
        "PUBSUB NUMSUB firehose",
        "*2\r\n$8\r\nfirehose\r\n:2\r\n",
    )
    .await;
    let payload = "x".repeat(16 * 1024);
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < 2000 {
            let f = fast.frame().await;
            assert!(f.starts_with("*3\r\n$7\r\nmessage\r\n"), "{}", &f[..40]);
            n += 1;
        }
        fast
    });
    let before = rss();
    let mut receivers = Vec::new();
    // 32 MB in all: far beyond the socket buffers and the 256 KB limit.
    for _ in 0..2000 {
        let r = p.cmd(&format!("PUBLISH firehose {payload}")).await;
        receivers.push(r);
    }
    let fast = tokio::time::timeout(WAIT, reader)
        .await
        .expect("fast subscriber got everything in time")
        .expect("reader task");
    assert_eq!(receivers.first().map(String::as_str), Some(":2\r\n"));
    // The slow client is gone, the fast one still subscribed.
    eventually(
        &mut p,
        "PUBSUB NUMSUB firehose",
        "*2\r\n$8\r\nfirehose\r\n:1\r\n",
    )
    .await;
    assert_eq!(receivers.last().map(String::as_str), Some(":1\r\n"));
    // Unbounded queuing would hold all 32 MB for the slow client; allow for
    // allocator slack and the other tests of this binary running alongside.
    let grown = rss().saturating_sub(before);
    assert!(grown < 24 * 1024 * 1024, "RSS grew by {grown} bytes");
    drop(slow);
    drop(fast);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_is_disconnected_after_the_soft_limit_period() {
    let node = TestNode::start().await;
    let mut p = Client::connect(node.addr).await;
    assert_eq!(
        p.cmd_args(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 0 64kb 1"
        ])
        .await,
        "+OK\r\n"
    );
    let mut slow = Client::connect(node.addr).await;
    slow.send("SUBSCRIBE ch").await;
    eventually(&mut p, "PUBSUB NUMSUB ch", "*2\r\n$2\r\nch\r\n:1\r\n").await;
    let payload = "y".repeat(32 * 1024);
    let start = Instant::now();
    // Over the soft limit quickly; disconnected once that lasted over 1 s.
    loop {
        let r = p.cmd(&format!("PUBLISH ch {payload}")).await;
        if r == ":0\r\n" {
            break;
        }
        assert!(start.elapsed() < WAIT, "slow subscriber never disconnected");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "disconnected before the soft period: {:?}",
        start.elapsed()
    );
    drop(slow);
    node.stop().await;
}

#[tokio::test]
async fn keyspace_events_for_collections() {
    let node = TestNode::start().await;
    let mut c = Client::connect(node.addr).await;
    let mut s = Client::connect(node.addr).await;
    assert_eq!(
        s.cmd("PSUBSCRIBE __keyevent@0__:*").await,
        confirm("*", "psubscribe", Some("__keyevent@0__:*"), 1)
    );
    assert_eq!(
        c.cmd("CONFIG SET notify-keyspace-events Eg$lshz").await,
        "+OK\r\n"
    );
    for line in [
        "LPUSH l a b",
        "RPOP l",
        "LPOP l",
        "HSET h f v",
        "HDEL h f",
        "SADD s a",
        "SREM s a",
        "ZADD z 1 a",
        "ZINCRBY z 1 a",
        "ZREM z a",
        "SETBIT b 1 1",
        "LPUSH q x",
    ] {
        c.cmd(line).await;
    }
    // Another client's pop is reported the same way.
    let mut w = Client::connect(node.addr).await;
    assert_eq!(w.cmd("RPOP q").await, "$1\r\nx\r\n");
    let got = events(&mut s, 18).await;
    let want = ev(&[
        ("__keyevent@0__:lpush", "l"),
        ("__keyevent@0__:rpop", "l"),
        ("__keyevent@0__:lpop", "l"),
        ("__keyevent@0__:del", "l"),
        ("__keyevent@0__:hset", "h"),
        ("__keyevent@0__:hdel", "h"),
        ("__keyevent@0__:del", "h"),
        ("__keyevent@0__:sadd", "s"),
        ("__keyevent@0__:srem", "s"),
        ("__keyevent@0__:del", "s"),
        ("__keyevent@0__:zadd", "z"),
        ("__keyevent@0__:zincr", "z"),
        ("__keyevent@0__:zrem", "z"),
        ("__keyevent@0__:del", "z"),
        ("__keyevent@0__:setbit", "b"),
        ("__keyevent@0__:lpush", "q"),
        ("__keyevent@0__:rpop", "q"),
        ("__keyevent@0__:del", "q"),
    ]);
    assert_eq!(got, want);
    s.quiet().await;
    node.stop().await;
}
