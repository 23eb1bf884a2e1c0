//! Differential tests: every script in `tests/diff/*.txt` runs against shoal
//! (in-process) and a real `redis-server` (child process on a free port), in
//! RESP2 and RESP3, and every reply must be byte-for-byte identical.
//!
//! Script format, one command per line, split like redis-cli does
//! (`shoal::protocol::split_args`: whitespace, "double quotes" with escapes,
//! 'single quotes'). Blank lines and lines starting with `#` are ignored.
//! Line prefixes (combinable, before the command):
//! - `~` the reply order is unspecified (KEYS, SCAN): the elements of every
//!   array/set (and the pairs of every map) in the reply are compared sorted;
//! - `!` no reply is expected (after `CLIENT REPLY OFF`/`SKIP`).
//!
//! Each script starts on a new connection after `FLUSHALL`. For RESP3 the
//! connection first sends `HELLO 3` and skips its reply (it legitimately
//! differs). Set `DIFF_ONLY=<substring>[,...]` to run only matching scripts,
//! `DIFF_DUMP=1` to print redis-server's replies, `DIFF_SELF_CHECK=1` to
//! compare redis-server with a second redis-server (checks the scripts).
//! Without `redis-server` on `PATH` the tests print a note and pass.

mod common;

use common::redis_server::start_redis;
use common::{Raw, TestNode, encode, reply_len};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One script line.
struct Line {
    no: usize,
    text: String,
    args: Vec<Vec<u8>>,
    unordered: bool,
    no_reply: bool,
}

fn parse_script(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let mut t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (mut unordered, mut no_reply) = (false, false);
        loop {
            if let Some(rest) = t.strip_prefix('~') {
                unordered = true;
                t = rest.trim_start();
            } else if let Some(rest) = t.strip_prefix('!') {
                no_reply = true;
                t = rest.trim_start();
            } else {
                break;
            }
        }
        let mut out = Vec::new();
        let mut spans = Vec::new();
        shoal::protocol::split_args(t.as_bytes(), &mut out, &mut spans)
            .unwrap_or_else(|e| panic!("line {}: cannot split {t:?}: {e}", i + 1));
        assert!(!spans.is_empty(), "line {}: no command", i + 1);
        lines.push(Line {
            no: i + 1,
            text: t.to_string(),
            args: spans.iter().map(|&(s, e)| out[s..e].to_vec()).collect(),
            unordered,
            no_reply,
        });
    }
    lines
}

/// Runs a script on a fresh connection; one entry per line (None = no reply expected).
/// Stops at the first line that gets no reply (the connection state is unknown then).
/// The first entry is the reply to the setup `FLUSHALL`.
async fn run_script(
    addr: SocketAddr,
    lines: &[Line],
    resp3: bool,
) -> Vec<Result<Option<Vec<u8>>, String>> {
    let mut raw = Raw::connect(addr).await;
    let mut replies = Vec::with_capacity(lines.len() + 1);
    replies.push(Ok(Some(raw.cmd(&[b"FLUSHALL"]).await)));
    if resp3 {
        let hello = raw.cmd(&[b"HELLO", b"3"]).await;
        assert!(
            hello.starts_with(b"%"),
            "HELLO 3 on {addr}: {}",
            shoal::util_repr(&hello)
        );
    }
    for line in lines {
        let args: Vec<&[u8]> = line.args.iter().map(|a| a.as_slice()).collect();
        raw.send(&encode(&args)).await;
        if line.no_reply {
            replies.push(Ok(None));
            continue;
        }
        match raw.try_read_reply().await {
            Ok(r) => replies.push(Ok(Some(r))),
            Err(e) => {
                replies.push(Err(e));
                break;
            }
        }
    }
    replies
}

/// Sorts the elements of every array/set (and the pairs of every map) in a
/// reply, recursively.
fn normalize(b: &[u8]) -> Vec<u8> {
    let per_item = match b.first() {
        Some(b'*' | b'~') => 1,
        Some(b'%') => 2,
        _ => return b.to_vec(),
    };
    let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
        return b.to_vec();
    };
    let count: i64 = std::str::from_utf8(&b[1..nl])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1);
    if count <= 0 {
        return b.to_vec();
    }
    let mut pos = nl + 2;
    let mut items = Vec::new();
    for _ in 0..count {
        let mut item = Vec::new();
        for _ in 0..per_item {
            let Some(n) = reply_len(&b[pos..]) else {
                return b.to_vec();
            };
            item.extend_from_slice(&normalize(&b[pos..pos + n]));
            pos += n;
        }
        items.push(item);
    }
    items.sort();
    let mut out = b[..nl + 2].to_vec();
    for i in items {
        out.extend_from_slice(&i);
    }
    out.extend_from_slice(&b[pos..]);
    out
}

fn show(r: Option<&Result<Option<Vec<u8>>, String>>) -> String {
    match r {
        None => "<not run: an earlier line got no reply>".into(),
        Some(Ok(None)) => "<no reply expected>".into(),
        Some(Ok(Some(b))) => shoal::util_repr(b),
        Some(Err(e)) => e.clone(),
    }
}

fn diff_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("diff")
}

/// Runs one script (by file stem) against both servers in RESP2 and RESP3.
async fn differential(name: &str) {
    if let Ok(only) = std::env::var("DIFF_ONLY")
        && !only.split(',').any(|o| name.contains(o.trim()))
    {
        eprintln!("skipping script {name}: DIFF_ONLY={only}");
        return;
    }
    let Some(redis) = start_redis().await else {
        eprintln!("skipping differential tests: redis-server not installed");
        return;
    };
    let path = diff_dir().join(format!("{name}.txt"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let lines = parse_script(&text);
    assert!(!lines.is_empty(), "{name}: empty script");
    // DIFF_SELF_CHECK=1 compares redis-server with a second redis-server: a
    // mismatch then means the script itself is not deterministic.
    let self_check = std::env::var_os("DIFF_SELF_CHECK").is_some();
    let mut mismatches = Vec::new();
    for resp3 in [false, true] {
        let proto = if resp3 { "RESP3" } else { "RESP2" };
        let expected = run_script(redis.addr, &lines, resp3).await;
        let actual = if self_check {
            let other = start_redis().await.expect("second redis-server");
            run_script(other.addr, &lines, resp3).await
        } else {
            // A fresh node per run: its keyspace is empty even if FLUSHALL fails.
            let node = TestNode::start().await;
            let actual = run_script(node.addr, &lines, resp3).await;
            node.stop().await;
            actual
        };
        if std::env::var_os("DIFF_DUMP").is_some() {
            for (line, r) in lines.iter().zip(&expected[1..]) {
                eprintln!(
                    "{name}.txt:{} [{proto}] {} -> {}",
                    line.no,
                    line.text,
                    show(Some(r))
                );
            }
        }
        if expected[0] != actual[0] {
            mismatches.push(format!(
                "{name}.txt (setup) [{proto}] FLUSHALL\n    redis: {}\n    shoal: {}",
                show(expected.first()),
                show(actual.first())
            ));
        }
        let (expected, actual) = (&expected[1..], &actual[1..]);
        for (i, line) in lines.iter().enumerate() {
            let (e, a) = (expected.get(i), actual.get(i));
            let same = match (e, a) {
                (Some(Ok(Some(x))), Some(Ok(Some(y)))) if line.unordered => {
                    normalize(x) == normalize(y)
                }
                (Some(Ok(x)), Some(Ok(y))) => x == y,
                (None, None) => true,
                _ => false,
            };
            if !same {
                mismatches.push(format!(
                    "{name}.txt:{} [{proto}] {}\n    redis: {}\n    shoal: {}",
                    line.no,
                    line.text,
                    show(e),
                    show(a)
                ));
            }
        }
    }
    drop(redis);
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es) between redis-server and shoal:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// The scripts; `every_script_has_a_test` keeps this list and the directory in sync.
const SCRIPTS: &[&str] = &[
    "strings",
    "keys",
    "connection",
    "errors",
    "server",
    "hash",
    "list",
    "set",
    "zset",
    "bitmap",
    "sort",
    "pubsub",
    "tx",
    "cluster",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_strings() {
    differential("strings").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_keys() {
    differential("keys").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_connection() {
    differential("connection").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_errors() {
    differential("errors").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_server() {
    differential("server").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_hash() {
    differential("hash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_list() {
    differential("list").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_set() {
    differential("set").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_zset() {
    differential("zset").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_bitmap() {
    differential("bitmap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_sort() {
    differential("sort").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_pubsub() {
    differential("pubsub").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_tx() {
    differential("tx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_cluster() {
    differential("cluster").await;
}

#[test]
fn every_script_has_a_test() {
    let mut found: Vec<String> = std::fs::read_dir(diff_dir())
        .expect("tests/diff exists")
        .filter_map(|e| {
            let p = e.expect("dir entry").path();
            (p.extension().and_then(|x| x.to_str()) == Some("txt"))
                .then(|| p.file_stem().and_then(|s| s.to_str()).map(String::from))
                .flatten()
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = SCRIPTS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "tests/diff/*.txt and SCRIPTS differ");
    for name in SCRIPTS {
        let text =
            std::fs::read_to_string(diff_dir().join(format!("{name}.txt"))).expect("read script");
        assert!(!parse_script(&text).is_empty(), "{name}: empty script");
    }
}

#[test]
fn normalize_sorts_nested_arrays() {
    assert_eq!(
        normalize(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n"),
        normalize(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n")
    );
    assert_eq!(
        normalize(b"%2\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n:2\r\n"),
        normalize(b"%2\r\n$1\r\na\r\n:2\r\n$1\r\nb\r\n:1\r\n")
    );
    assert_ne!(
        normalize(b"%2\r\n$1\r\nb\r\n:1\r\n$1\r\na\r\n:2\r\n"),
        normalize(b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:2\r\n")
    );
    assert_ne!(
        normalize(b"*2\r\n$1\r\na\r\n$1\r\na\r\n"),
        normalize(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n")
    );
}
