//! A single shoal node in cluster mode (`cluster-enabled yes`, no peers: it
//! owns all 16384 slots) next to a real one-node Redis Cluster (redis-server
//! 7.0.15 with every slot assigned to itself): the same commands go to both,
//! in RESP2 and RESP3, and the replies must match after the fields that
//! legitimately differ (node id, port, cluster bus port) are normalized;
//! structure, field names, order and types must be the same. Then the real
//! clients: the `redis` crate's cluster client and `redis-cli -c`.
//! Without redis-server (or redis-cli) those parts print why they skip.
//! `CLUSTER_DUMP=1` prints redis-server's normalized replies.

mod common;

use common::redis_server::start_redis_cluster;
use common::{Raw, TestNode, WAIT, encode};
use redis::AsyncCommands;
use shoal::command::cluster::key_slot;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn cluster_node() -> TestNode {
    TestNode::start_with(|c| c.cluster_enabled = true).await
}

// ------------------------------------------------------------ RESP trees

/// A parsed reply, with the fields that differ between servers replaced by
/// placeholders ([`R::Port`], `<ID>` ... in strings).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum R {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(String),
    Null,
    NullArray,
    Verbatim(String, String),
    Double(String),
    Bool(bool),
    Array(Vec<R>),
    Set(Vec<R>),
    Map(Vec<(R, R)>),
    Push(Vec<R>),
    /// An integer equal to the server's port.
    Port,
}

fn line(b: &[u8], at: usize) -> (&[u8], usize) {
    let end = at
        + b[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("complete reply");
    (&b[at + 1..end], end + 2)
}

fn num(s: &[u8]) -> i64 {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("a RESP length or integer")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses one reply starting at `at`; returns it and the position after it.
fn parse(b: &[u8], at: usize) -> (R, usize) {
    let (body, mut pos) = line(b, at);
    let r = match b[at] {
        b'+' => R::Simple(text(body)),
        b'-' => R::Error(text(body)),
        b':' => R::Int(num(body)),
        b',' => R::Double(text(body)),
        b'#' => R::Bool(body == b"t"),
        b'_' => R::Null,
        b'$' | b'=' => {
            let n = num(body);
            if n < 0 {
                R::Null
            } else {
                let data = &b[pos..pos + n as usize];
                pos += n as usize + 2;
                if b[at] == b'=' {
                    R::Verbatim(text(&data[..3]), text(&data[4..]))
                } else {
                    R::Bulk(text(data))
                }
            }
        }
        b'*' | b'~' | b'>' => {
            let n = num(body);
            if n < 0 {
                R::NullArray
            } else {
                let mut items = Vec::new();
                for _ in 0..n {
                    let (item, next) = parse(b, pos);
                    items.push(item);
                    pos = next;
                }
                match b[at] {
                    b'*' => R::Array(items),
                    b'~' => R::Set(items),
                    _ => R::Push(items),
                }
            }
        }
        b'%' => {
            let mut pairs = Vec::new();
            for _ in 0..num(body) {
                let (k, next) = parse(b, pos);
                let (v, next) = parse(b, next);
                pairs.push((k, v));
                pos = next;
            }
            R::Map(pairs)
        }
        t => panic!("unexpected reply type {:?}", t as char),
    };
    (r, pos)
}

fn parse_reply(b: &[u8]) -> R {
    let (r, end) = parse(b, 0);
    assert_eq!(end, b.len(), "one reply: {}", shoal::util_repr(b));
    r
}

/// What differs between two servers: their node ids and ports.
struct Who {
    id: String,
    port: u16,
    bus: u16,
}

impl Who {
    fn text(&self, s: &str) -> String {
        let s = s.replace(&self.id, "<ID>");
        let s = s.replace(&format!(":{}@{}", self.port, self.bus), ":<PORT>@<BUS>");
        if s == self.port.to_string() {
            "<PORT>".into()
        } else {
            s
        }
    }

    fn norm(&self, r: R) -> R {
        let all = |v: Vec<R>| v.into_iter().map(|r| self.norm(r)).collect::<Vec<_>>();
        match r {
            R::Int(n) if n == i64::from(self.port) => R::Port,
            R::Simple(s) => R::Simple(self.text(&s)),
            R::Error(s) => R::Error(self.text(&s)),
            R::Bulk(s) => R::Bulk(self.text(&s)),
            R::Verbatim(f, s) => R::Verbatim(f, self.text(&s)),
            R::Array(v) => R::Array(all(v)),
            R::Set(v) => R::Set(all(v)),
            R::Push(v) => R::Push(all(v)),
            R::Map(v) => R::Map(
                v.into_iter()
                    .map(|(k, v)| (self.norm(k), self.norm(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// How a step's replies are compared.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Exact,
    /// The order of the elements is unspecified (GETKEYSINSLOT).
    Sorted,
    /// Only the number of elements must match (GETKEYSINSLOT with a count
    /// below the keys in the slot picks any of them).
    Len,
}

fn sorted(r: R) -> R {
    match r {
        R::Array(mut v) => {
            v.sort();
            R::Array(v)
        }
        R::Set(mut v) => {
            v.sort();
            R::Set(v)
        }
        other => other,
    }
}

fn len_of(r: R) -> R {
    match r {
        R::Array(v) | R::Set(v) => R::Int(v.len() as i64),
        other => other,
    }
}

/// Splits a script line like redis-cli; `$ID` becomes the server's node id.
fn split(line: &str, id: &str) -> Vec<Vec<u8>> {
    let line = line.replace("$ID", id);
    let mut out = Vec::new();
    let mut spans = Vec::new();
    shoal::protocol::split_args(line.as_bytes(), &mut out, &mut spans).expect("split");
    spans.iter().map(|&(s, e)| out[s..e].to_vec()).collect()
}

async fn call(raw: &mut Raw, args: &[Vec<u8>]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    raw.send(&encode(&args)).await;
    raw.read_reply().await
}

async fn node_id(addr: SocketAddr) -> String {
    let mut raw = Raw::connect(addr).await;
    match parse_reply(&raw.cmd(&[b"CLUSTER", b"MYID"]).await) {
        R::Bulk(id) => id,
        other => panic!("CLUSTER MYID: {other:?}"),
    }
}

/// Runs `steps` on a new connection (RESP3 after `HELLO 3`) and returns the
/// normalized replies.
async fn run(addr: SocketAddr, steps: &[(&str, Cmp)], resp3: bool) -> Vec<R> {
    let id = node_id(addr).await;
    let who = Who {
        id: id.clone(),
        port: addr.port(),
        bus: addr.port().checked_add(10000).unwrap_or(0),
    };
    let mut raw = Raw::connect(addr).await;
    assert_eq!(raw.cmd(&[b"FLUSHALL"]).await, b"+OK\r\n");
    if resp3 {
        assert!(raw.cmd(&[b"HELLO", b"3"]).await.starts_with(b"%"));
    }
    let mut replies = Vec::new();
    for (line, cmp) in steps {
        let reply = who.norm(parse_reply(&call(&mut raw, &split(line, &id)).await));
        replies.push(match cmp {
            Cmp::Exact => reply,
            Cmp::Sorted => sorted(reply),
            Cmp::Len => len_of(reply),
        });
    }
    replies
}

/// The comparison script. Keys of one slot are written with SET one by
/// one: Redis Cluster refuses multi-key commands across slots.
fn script() -> Vec<(&'static str, Cmp)> {
    use Cmp::*;
    let mut s = vec![
        ("CLUSTER INFO", Exact),
        ("CLUSTER MYID", Exact),
        ("CLUSTER NODES", Exact),
        ("CLUSTER SLOTS", Exact),
        ("CLUSTER SHARDS", Exact),
        ("CLUSTER LINKS", Exact),
        ("cluster slots", Exact),
        ("CLUSTER REPLICAS $ID", Exact),
        ("CLUSTER SLAVES $ID", Exact),
        ("CLUSTER REPLICAS abc", Exact),
        (
            "CLUSTER REPLICAS 0000000000000000000000000000000000000000",
            Exact,
        ),
        ("CLUSTER COUNT-FAILURE-REPORTS $ID", Exact),
        ("CLUSTER COUNT-FAILURE-REPORTS abc", Exact),
        ("CLUSTER BOGUS", Exact),
        ("CLUSTER", Exact),
        ("CLUSTER INFO x", Exact),
        ("CLUSTER HELP x", Exact),
        // KEYSLOT
        ("CLUSTER KEYSLOT foo", Exact),
        ("CLUSTER KEYSLOT \"\"", Exact),
        ("CLUSTER KEYSLOT {user1}.a", Exact),
        ("CLUSTER KEYSLOT {}", Exact),
        ("CLUSTER KEYSLOT {}a", Exact),
        ("CLUSTER KEYSLOT a{}", Exact),
        ("CLUSTER KEYSLOT {a}{b}", Exact),
        ("CLUSTER KEYSLOT {{a}}", Exact),
        ("CLUSTER KEYSLOT \"a\\x00{b\\xff}c\"", Exact),
        ("CLUSTER KEYSLOT", Exact),
        ("CLUSTER KEYSLOT a b", Exact),
        // COUNTKEYSINSLOT / GETKEYSINSLOT (slot 15891 is {t}'s, 12182 foo's, 5061 bar's)
        ("CLUSTER KEYSLOT {t}", Exact),
    ];
    for k in [
        "SET {t}1 a",
        "SET {t}2 b",
        "SET {t}3 c",
        "SET {t}4 d",
        "SET {t}5 e",
        "SET foo 1",
        "SET bar 1",
    ] {
        s.push((k, Exact));
    }
    s.extend([
        ("CLUSTER COUNTKEYSINSLOT 15891", Exact),
        ("CLUSTER COUNTKEYSINSLOT 5061", Exact),
        ("CLUSTER COUNTKEYSINSLOT 12182", Exact),
        ("CLUSTER COUNTKEYSINSLOT 0", Exact),
        ("CLUSTER COUNTKEYSINSLOT 16383", Exact),
        ("CLUSTER COUNTKEYSINSLOT 16384", Exact),
        ("CLUSTER COUNTKEYSINSLOT -1", Exact),
        ("CLUSTER COUNTKEYSINSLOT x", Exact),
        ("CLUSTER COUNTKEYSINSLOT 99999999999999999999", Exact),
        ("CLUSTER GETKEYSINSLOT 15891 10", Sorted),
        ("CLUSTER GETKEYSINSLOT 15891 5", Sorted),
        ("CLUSTER GETKEYSINSLOT 15891 3", Len),
        ("CLUSTER GETKEYSINSLOT 15891 0", Exact),
        ("CLUSTER GETKEYSINSLOT 12182 1", Exact),
        ("CLUSTER GETKEYSINSLOT 5061 100", Exact),
        ("CLUSTER GETKEYSINSLOT 0 10", Exact),
        ("CLUSTER GETKEYSINSLOT 15891 -1", Exact),
        ("CLUSTER GETKEYSINSLOT -1 1", Exact),
        ("CLUSTER GETKEYSINSLOT 16384 1", Exact),
        ("CLUSTER GETKEYSINSLOT x 1", Exact),
        ("CLUSTER GETKEYSINSLOT 1 x", Exact),
        ("CLUSTER GETKEYSINSLOT 1", Exact),
        // READONLY / READWRITE / ASKING
        ("READONLY", Exact),
        ("GET foo", Exact),
        ("READWRITE", Exact),
        ("ASKING", Exact),
        ("GET foo", Exact),
        ("READONLY x", Exact),
        ("ASKING x", Exact),
        // db 0 only
        ("SELECT 0", Exact),
        ("SELECT 1", Exact),
        ("SELECT -1", Exact),
        ("SELECT 16", Exact),
        ("SELECT x", Exact),
        ("SELECT 99999999999", Exact),
        ("SELECT", Exact),
        ("GET foo", Exact),
        ("MOVE foo 1", Exact),
        ("MOVE foo 0", Exact),
        ("MOVE nokey 1", Exact),
        ("MOVE foo x", Exact),
        ("SWAPDB 0 1", Exact),
        ("SWAPDB 0 0", Exact),
        ("SWAPDB x 0", Exact),
        ("SET {a}x 1", Exact),
        ("COPY {a}x {a}y DB 1", Exact),
        ("COPY {a}x {a}y DB 0", Exact),
        ("COPY {a}x {a}z DB x", Exact),
        ("COPY {a}x {a}z DB 16", Exact),
        ("COPY {a}x {a}z DB -1", Exact),
        ("COPY {a}x {a}z DB 99999999999", Exact),
        ("COPY {a}x {a}y", Exact),
        ("COPY {a}x {a}y DB 0 REPLACE", Exact),
        ("COPY {a}x {a}x DB 0", Exact),
        ("COPY {a}x {a}y BOGUS", Exact),
        ("MULTI", Exact),
        ("SELECT 1", Exact),
        ("MOVE {a}x 1", Exact),
        ("SWAPDB 0 1", Exact),
        ("COPY {a}x {a}q DB 2", Exact),
        ("SET {a}k v", Exact),
        ("EXEC", Exact),
        ("GET {a}k", Exact),
        // SORT: BY with a pattern and GET name other keys
        ("RPUSH l 3 1 2", Exact),
        ("SORT l", Exact),
        ("SORT l BY w_*", Exact),
        ("SORT l BY {l}w_*", Exact),
        ("SORT l BY nosort", Exact),
        ("SORT l GET #", Exact),
        ("SORT l GET x_*", Exact),
        ("SORT l BY w_* GET #", Exact),
        ("SORT l GET # BY w_*", Exact),
        ("SORT l BOGUS GET #", Exact),
        ("SORT_RO l BY w_*", Exact),
        ("SORT_RO l GET #", Exact),
        ("SORT l STORE {l}d", Exact),
        ("LRANGE {l}d 0 -1", Exact),
        // INFO and CONFIG
        ("INFO cluster", Exact),
        ("CONFIG GET cluster-enabled", Exact),
        ("DBSIZE", Exact),
    ]);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_match_a_one_node_redis_cluster() {
    let Some(redis) = start_redis_cluster().await else {
        eprintln!("skipping: redis-server not installed");
        return;
    };
    let node = cluster_node().await;
    let steps = script();
    let mut mismatches = Vec::new();
    for resp3 in [false, true] {
        let expected = run(redis.addr, &steps, resp3).await;
        let actual = run(node.addr, &steps, resp3).await;
        assert_eq!(expected.len(), actual.len());
        for (((line, _), e), a) in steps.iter().zip(&expected).zip(&actual) {
            if std::env::var_os("CLUSTER_DUMP").is_some() {
                eprintln!("[resp3={resp3}] {line} -> {e:?}");
            }
            if e != a {
                mismatches.push(format!(
                    "[{}] {line}\n    redis: {e:?}\n    shoal: {a:?}",
                    if resp3 { "RESP3" } else { "RESP2" }
                ));
            }
        }
    }
    node.stop().await;
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Pseudo-random keys rich in braces, so hash tags of every shape occur.
fn tricky_keys(n: usize) -> Vec<Vec<u8>> {
    let alphabet = b"{}{}ab:0\xff\x00z";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (x >> 59) as usize % 12;
            (0..len)
                .map(|i| alphabet[((x >> (i * 4)) & 0xff) as usize % alphabet.len()])
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyslot_matches_redis_for_tricky_keys() {
    let Some(redis) = start_redis_cluster().await else {
        eprintln!("skipping: redis-server not installed");
        return;
    };
    let node = cluster_node().await;
    let mut r = Raw::connect(redis.addr).await;
    let mut s = Raw::connect(node.addr).await;
    for key in tricky_keys(500) {
        let args = [&b"CLUSTER"[..], b"KEYSLOT", &key];
        let expected = r.cmd(&args).await;
        assert_eq!(
            s.cmd(&args).await,
            expected,
            "key {}",
            shoal::util_repr(&key)
        );
        assert_eq!(
            expected,
            format!(":{}\r\n", key_slot(&key)).into_bytes(),
            "key_slot({})",
            shoal::util_repr(&key)
        );
    }
    node.stop().await;
}

/// CLUSTER HELP lists only what shoal answers, each entry in Redis's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_help_is_a_subset_of_redis_help() {
    let node = cluster_node().await;
    let mut s = node.raw().await;
    let R::Array(ours) = parse_reply(&s.cmd(&[b"CLUSTER", b"HELP"]).await) else {
        panic!("CLUSTER HELP is an array");
    };
    let lines: Vec<String> = ours
        .iter()
        .map(|r| match r {
            R::Simple(l) => l.clone(),
            other => panic!("status lines only: {other:?}"),
        })
        .collect();
    assert_eq!(
        lines[0],
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert_eq!(lines[lines.len() - 2..], ["HELP", "    Prints this help."]);
    assert!(lines.iter().any(|l| l == "MYSHARDID"));
    node.stop().await;
    let Some(redis) = start_redis_cluster().await else {
        eprintln!("skipping the comparison: redis-server not installed");
        return;
    };
    let mut r = Raw::connect(redis.addr).await;
    let theirs = parse_reply(&r.cmd(&[b"CLUSTER", b"HELP"]).await);
    let R::Array(theirs) = theirs else {
        panic!("redis CLUSTER HELP: {theirs:?}");
    };
    let theirs: HashSet<R> = theirs.into_iter().collect();
    for l in &lines {
        // MYSHARDID is Redis 7.2's; 7.0.15 does not list it.
        if l == "MYSHARDID" || l == "    Return the node's shard id." {
            continue;
        }
        assert!(theirs.contains(&R::Simple(l.clone())), "not Redis's: {l:?}");
    }
}

#[tokio::test]
async fn cluster_mode_extras() {
    let node = cluster_node().await;
    let mut s = node.raw().await;
    let R::Bulk(shard) = parse_reply(&s.cmd(&[b"CLUSTER", b"MYSHARDID"]).await) else {
        panic!("MYSHARDID is a bulk string");
    };
    assert_eq!(shard.len(), 40);
    assert!(shard.bytes().all(|b| b.is_ascii_hexdigit()));
    let hello = s.cmd(&[b"HELLO", b"2"]).await;
    assert!(
        contains(&hello, b"$4\r\nmode\r\n$7\r\ncluster\r\n"),
        "{}",
        shoal::util_repr(&hello)
    );
    let info = s.cmd(&[b"INFO", b"server"]).await;
    assert!(contains(&info, b"redis_mode:cluster\r\n"));
    // Unsupported slot administration is refused, not ignored.
    let r = s.cmd(&[b"CLUSTER", b"ADDSLOTS", b"1"]).await;
    assert!(
        r.starts_with(b"-ERR CLUSTER ADDSLOTS is not supported"),
        "{}",
        shoal::util_repr(&r)
    );
    // READONLY shows in CLIENT INFO (flag r) until READWRITE or RESET.
    let flags = |b: Vec<u8>| {
        let t = String::from_utf8_lossy(&b).into_owned();
        t.split(' ')
            .find_map(|f| f.strip_prefix("flags=").map(String::from))
            .unwrap_or_default()
    };
    assert_eq!(s.cmd(&[b"READONLY"]).await, b"+OK\r\n");
    assert_eq!(flags(s.cmd(&[b"CLIENT", b"INFO"]).await), "r");
    assert_eq!(s.cmd(&[b"READWRITE"]).await, b"+OK\r\n");
    assert_eq!(flags(s.cmd(&[b"CLIENT", b"INFO"]).await), "N");
    assert_eq!(s.cmd(&[b"READONLY"]).await, b"+OK\r\n");
    assert_eq!(s.cmd(&[b"RESET"]).await, b"+RESET\r\n");
    assert_eq!(flags(s.cmd(&[b"CLIENT", b"INFO"]).await), "N");
    node.stop().await;
}

/// Standalone: HELLO and INFO say so, CLUSTER (even MYSHARDID) is refused.
#[tokio::test]
async fn standalone_mode() {
    let node = TestNode::start().await;
    let mut s = node.raw().await;
    let hello = s.cmd(&[b"HELLO", b"2"]).await;
    assert!(contains(&hello, b"$4\r\nmode\r\n$10\r\nstandalone\r\n"));
    let info = s.cmd(&[b"INFO", b"server"]).await;
    assert!(contains(&info, b"redis_mode:standalone\r\n"));
    assert_eq!(
        s.cmd(&[b"CLUSTER", b"MYSHARDID"]).await,
        b"-ERR This instance has cluster support disabled\r\n"
    );
    node.stop().await;
}

async fn slots_ip(addr: SocketAddr) -> String {
    let mut s = Raw::connect(addr).await;
    let R::Array(ranges) = parse_reply(&s.cmd(&[b"CLUSTER", b"SLOTS"]).await) else {
        panic!("SLOTS is an array");
    };
    match &ranges[0] {
        R::Array(range) => match &range[2] {
            R::Array(node) => match &node[0] {
                R::Bulk(ip) => ip.clone(),
                other => panic!("ip: {other:?}"),
            },
            other => panic!("node: {other:?}"),
        },
        other => panic!("range: {other:?}"),
    }
}

/// The announced address: the bound one, the one the client reached when
/// bound to any address, or `cluster-announce-ip`.
#[tokio::test]
async fn announced_address() {
    let node = TestNode::start_with(|c| {
        c.cluster_enabled = true;
        c.bind = vec!["0.0.0.0".into()];
    })
    .await;
    let port = node.addr.port();
    let via_loopback = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(slots_ip(via_loopback).await, "127.0.0.1");
    let mut s = Raw::connect(via_loopback).await;
    let conf = [&b"CONFIG"[..], b"SET", b"cluster-announce-ip", b"10.1.2.3"];
    assert_eq!(s.cmd(&conf).await, b"+OK\r\n");
    assert_eq!(slots_ip(via_loopback).await, "10.1.2.3");
    let nodes = s.cmd(&[b"CLUSTER", b"NODES"]).await;
    let expected = format!(" 10.1.2.3:{port}@");
    assert!(
        contains(&nodes, expected.as_bytes()),
        "{}",
        shoal::util_repr(&nodes)
    );
    node.stop().await;
}

#[tokio::test]
async fn node_id_from_config() {
    let id = "0123456789abcdef0123456789abcdef01234567";
    let node = TestNode::start_with(|c| {
        c.cluster_enabled = true;
        c.cluster_node_id = id.into();
    })
    .await;
    assert_eq!(node_id(node.addr).await, id);
    node.stop().await;
    // Without one, each node generates its own.
    let (a, b) = (cluster_node().await, cluster_node().await);
    let (ia, ib) = (node_id(a.addr).await, node_id(b.addr).await);
    assert_ne!(ia, ib);
    for i in [&ia, &ib] {
        assert!(i.len() == 40 && i.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    }
    a.stop().await;
    b.stop().await;
}

/// Waits until the node has loaded its data (commands stop answering -LOADING).
async fn loaded(addr: SocketAddr) {
    let deadline = Instant::now() + WAIT;
    let mut s = Raw::connect(addr).await;
    while s.cmd(&[b"DBSIZE"]).await.starts_with(b"-LOADING") {
        assert!(Instant::now() < deadline, "still loading");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// With persistence on, the node id is the one persisted beside the data:
/// it survives a restart.
#[tokio::test]
async fn node_id_persists_with_the_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = || {
        let dir = dir.path().to_string_lossy().into_owned();
        TestNode::start_with(move |c| {
            c.cluster_enabled = true;
            c.persistence = shoal::persist::Kind::Redb;
            c.dir = dir;
        })
    };
    let node = start().await;
    loaded(node.addr).await;
    let id = node_id(node.addr).await;
    let persisted = node
        .handle
        .as_ref()
        .and_then(|h| h.shared().persist().map(|p| p.node_id().to_string()));
    assert_eq!(Some(id.clone()), persisted);
    let mut s = node.raw().await;
    let shard = s.cmd(&[b"CLUSTER", b"MYSHARDID"]).await;
    node.stop().await;
    let node = start().await;
    loaded(node.addr).await;
    assert_eq!(node_id(node.addr).await, id);
    let mut s = node.raw().await;
    assert_eq!(s.cmd(&[b"CLUSTER", b"MYSHARDID"]).await, shard);
    node.stop().await;
}

/// COUNTKEYSINSLOT/GETKEYSINSLOT scan db 0; with 20k keys they stay quick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_slot_with_many_keys() {
    let node = cluster_node().await;
    let mut con = node.client().await;
    let keys: Vec<String> = (0..20_000)
        .map(|i| {
            if i % 20 == 0 {
                format!("{{hot}}:{i}")
            } else {
                format!("key:{i}")
            }
        })
        .collect();
    for chunk in keys.chunks(1000) {
        let pairs: Vec<(&str, &str)> = chunk.iter().map(|k| (k.as_str(), "v")).collect();
        let () = con.mset(&pairs).await.expect("mset");
    }
    let hot = key_slot(b"{hot}");
    let mut expected: Vec<&String> = keys
        .iter()
        .filter(|k| key_slot(k.as_bytes()) == hot)
        .collect();
    expected.sort();
    assert!(expected.len() >= 1000);
    let started = Instant::now();
    let n: i64 = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(hot)
        .query_async(&mut con)
        .await
        .expect("countkeysinslot");
    assert_eq!(n as usize, expected.len());
    let mut all: Vec<String> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(hot)
        .arg(100_000)
        .query_async(&mut con)
        .await
        .expect("getkeysinslot");
    all.sort();
    assert_eq!(all.iter().collect::<Vec<_>>(), expected);
    let some: Vec<String> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(hot)
        .arg(10)
        .query_async(&mut con)
        .await
        .expect("getkeysinslot");
    assert_eq!(some.len(), 10);
    assert!(some.iter().all(|k| key_slot(k.as_bytes()) == hot));
    // Every key's slot counts it.
    for k in keys.iter().step_by(997) {
        let slot = key_slot(k.as_bytes());
        let n: usize = redis::cmd("CLUSTER")
            .arg("COUNTKEYSINSLOT")
            .arg(slot)
            .query_async(&mut con)
            .await
            .expect("countkeysinslot");
        let want = keys
            .iter()
            .filter(|o| key_slot(o.as_bytes()) == slot)
            .count();
        assert_eq!(n, want, "slot {slot}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "slot scans took {:?}",
        started.elapsed()
    );
    node.stop().await;
}

/// The `redis` crate's cluster client (CLUSTER SLOTS, slot routing) against
/// one shoal node, in RESP2 and RESP3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rs_cluster_client_works() {
    let node = cluster_node().await;
    for proto in [redis::ProtocolVersion::RESP2, redis::ProtocolVersion::RESP3] {
        let client =
            redis::cluster::ClusterClient::builder(vec![format!("redis://{}/", node.addr)])
                .use_protocol(proto)
                .connection_timeout(WAIT)
                .response_timeout(WAIT)
                .build()
                .expect("cluster client");
        let mut con = tokio::time::timeout(WAIT, client.get_async_connection())
            .await
            .expect("connect in time")
            .expect("connect");
        let keys: Vec<String> = (0..300).map(|i| format!("key:{proto:?}:{i}")).collect();
        let slots: HashSet<u16> = keys.iter().map(|k| key_slot(k.as_bytes())).collect();
        assert!(slots.len() > 250, "keys spread over many slots");
        for (i, k) in keys.iter().enumerate() {
            let () = con.set(k, i).await.expect("set");
        }
        for (i, k) in keys.iter().enumerate() {
            let v: usize = con.get(k).await.expect("get");
            assert_eq!(v, i);
        }
        let same = ["{user}:a", "{user}:b", "{user}:c"];
        let () = con
            .mset(&[(same[0], "1"), (same[1], "2"), (same[2], "3")])
            .await
            .expect("mset");
        let got: Vec<String> = con.mget(&same).await.expect("mget");
        assert_eq!(got, ["1", "2", "3"]);
        // Keys of several slots: the client splits the MGET per slot.
        let spread: Vec<&String> = keys.iter().take(20).collect();
        let got: Vec<usize> = con.mget(&spread).await.expect("mget across slots");
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        let n: i64 = con.del(&same).await.expect("del");
        assert_eq!(n, 3);
    }
    node.stop().await;
}

/// Runs redis-cli with a bounded wait; `None` when it is not installed.
fn redis_cli(args: &[String]) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    let bin = std::env::split_paths(&path)
        .map(|d| d.join("redis-cli"))
        .find(|p| p.is_file())?;
    let mut child = std::process::Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    let deadline = Instant::now() + WAIT;
    loop {
        if child.try_wait().expect("wait redis-cli").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redis-cli {args:?} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("redis-cli output");
    Some(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_cluster_mode_smoke() {
    let node = cluster_node().await;
    let port = node.addr.port().to_string();
    let cli = |args: &[&str]| {
        let mut v: Vec<String> = ["-c", "-h", "127.0.0.1", "-p", &port]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(args.iter().map(|s| s.to_string()));
        tokio::task::spawn_blocking(move || redis_cli(&v))
    };
    let Some(out) = cli(&["SET", "greeting", "hello"]).await.expect("join") else {
        eprintln!("skipping: redis-cli not installed");
        node.stop().await;
        return;
    };
    assert_eq!(out.trim(), "OK");
    let out = cli(&["GET", "greeting"]).await.expect("join");
    assert_eq!(out.as_deref().map(str::trim), Some("hello"));
    let out = cli(&["CLUSTER", "KEYSLOT", "greeting"])
        .await
        .expect("join");
    let slot = key_slot(b"greeting").to_string();
    assert_eq!(out.as_deref().map(str::trim), Some(slot.as_str()));
    let check = format!("127.0.0.1:{port}");
    let out = tokio::task::spawn_blocking(move || {
        redis_cli(&["--cluster".to_string(), "check".to_string(), check])
    })
    .await
    .expect("join")
    .unwrap_or_default();
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    node.stop().await;
}
