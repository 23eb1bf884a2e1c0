//! Active expiry at scale (run in release by `.ci/run`: `cargo test --release
//! -p shoal --test memory_heavy -- --ignored`): 1M keys with a 1 s TTL and no
//! reads are gone within 10 s, used_memory returns to the empty baseline, and
//! the server keeps answering PING with p99 under 5 ms meanwhile.
mod common;

use common::{Raw, TestNode, WAIT, encode, reply_len};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const KEYS: usize = 1_000_000;

async fn q(r: &mut Raw, line: &str) -> String {
    let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
    String::from_utf8_lossy(&Box::pin(r.cmd(&args)).await).into_owned()
}

async fn info_u64(r: &mut Raw, field: &str) -> u64 {
    let info = q(r, "INFO").await;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO"))
}

/// Sends the commands built by `f` for `range`, pipelined, and waits for all replies.
async fn pipelined(r: &mut Raw, range: std::ops::Range<usize>, f: impl Fn(usize) -> Vec<u8>) {
    let n = range.len();
    let mut buf = Vec::new();
    for i in range {
        buf.extend(f(i));
    }
    pipelined_raw(r, &buf, n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1M keys: run in release (see .ci/run)"]
async fn million_keys_with_a_ttl_expire_without_reads() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    let empty = info_u64(&mut r, "used_memory").await;
    for start in (0..KEYS).step_by(10_000) {
        pipelined(&mut r, start..start + 10_000, |i| {
            let k = format!("key:{i:07}");
            encode(&[b"SET", k.as_bytes(), b"0123456789abcdef", b"PX", b"1000"])
        })
        .await;
    }
    let loaded = Instant::now();
    let full = info_u64(&mut r, "used_memory").await;
    assert!(full > empty + 50 * 1024 * 1024, "1M keys use {full} bytes?");

    // Ping every millisecond on another connection while keys expire.
    let addr = node.addr;
    let pinger = tokio::spawn(async move {
        let mut p = Raw::connect(addr).await;
        let mut lat = Vec::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(11) {
            let t = Instant::now();
            assert_eq!(q(&mut p, "PING").await, "+PONG\r\n");
            lat.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lat
    });
    // Within 10 s of the TTL passing, at least 99% are gone.
    let deadline = loaded + Duration::from_secs(11);
    let mut left = KEYS as u64;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        left = q(&mut r, "DBSIZE").await.trim()[1..]
            .parse()
            .expect("dbsize");
        if left <= KEYS as u64 / 100 {
            break;
        }
    }
    assert!(
        left <= KEYS as u64 / 100,
        "{left} keys still there 10 s after their TTL"
    );
    // Keep going to zero for the memory check (bounded).
    let until = Instant::now() + Duration::from_secs(10);
    while left > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = q(&mut r, "DBSIZE").await.trim()[1..]
            .parse()
            .expect("dbsize");
    }
    let used = info_u64(&mut r, "used_memory").await;
    assert!(
        used <= empty + empty / 10,
        "used_memory {used} not back within 10% of the empty {empty} ({left} keys left)"
    );
    let mut lat = tokio::time::timeout(Duration::from_secs(20), pinger)
        .await
        .expect("pinger ends")
        .expect("pinger");
    lat.sort();
    let p99 = lat[lat.len() * 99 / 100];
    assert!(
        p99 < Duration::from_millis(5),
        "PING p99 {p99:?} during expiry"
    );
    node.stop().await;
}

/// Zipf(0.99) over `n` items: a CDF and a deterministic xorshift sampler.
struct Zipf {
    cdf: Vec<f64>,
    state: u64,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for k in 1..=n {
            acc += 1.0 / (k as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf {
            cdf,
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let u = (self.state >> 11) as f64 / (1u64 << 53) as f64;
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// A cache-aside workload: GET a zipf-chosen key, SET it on a miss.
/// Returns the hit ratio.
async fn zipf_hit_ratio(addr: std::net::SocketAddr) -> f64 {
    let mut r = Raw::connect(addr).await;
    assert_eq!(q(&mut r, "FLUSHALL").await, "+OK\r\n");
    assert_eq!(q(&mut r, "CONFIG SET maxmemory 20mb").await, "+OK\r\n");
    assert_eq!(
        q(&mut r, "CONFIG SET maxmemory-policy allkeys-lru").await,
        "+OK\r\n"
    );
    let value = vec![b'v'; 1000];
    let mut z = Zipf::new(100_000, 0.99);
    let (mut hits, mut total) = (0u64, 0u64);
    let mut chunk = vec![0u8; 1 << 16];
    for round in 0..3000 {
        let keys: Vec<String> = (0..100).map(|_| format!("item:{:06}", z.next())).collect();
        let mut buf = Vec::new();
        for k in &keys {
            buf.extend(encode(&[b"GET", k.as_bytes()]));
        }
        r.send(&buf).await;
        let mut replies = Vec::new();
        let mut acc = Vec::new();
        while replies.len() < keys.len() {
            while let Some(len) = reply_len(&acc) {
                replies.push(acc.drain(..len).collect::<Vec<u8>>());
            }
            if replies.len() == keys.len() {
                break;
            }
            let k = tokio::time::timeout(WAIT, r.stream.read(&mut chunk))
                .await
                .expect("replies")
                .expect("read");
            assert!(k > 0);
            acc.extend_from_slice(&chunk[..k]);
        }
        let mut sets = Vec::new();
        let mut n_sets = 0;
        for (k, rep) in keys.iter().zip(&replies) {
            // The first rounds warm the cache up; count from round 500.
            if round >= 500 {
                total += 1;
            }
            if rep.as_slice() == b"$-1\r\n" {
                sets.extend(encode(&[b"SET", k.as_bytes(), &value]));
                n_sets += 1;
            } else if round >= 500 {
                hits += 1;
            }
        }
        if n_sets > 0 {
            pipelined_raw(&mut r, &sets, n_sets).await;
        }
    }
    assert_eq!(q(&mut r, "CONFIG SET maxmemory 0").await, "+OK\r\n");
    hits as f64 / total as f64
}

async fn pipelined_raw(r: &mut Raw, buf: &[u8], n: usize) {
    r.send(buf).await;
    let (mut got, mut acc) = (0, Vec::new());
    let mut chunk = vec![0u8; 1 << 16];
    while got < n {
        while let Some(len) = reply_len(&acc) {
            acc.drain(..len);
            got += 1;
        }
        if got == n {
            break;
        }
        let k = tokio::time::timeout(WAIT, r.stream.read(&mut chunk))
            .await
            .expect("replies")
            .expect("read");
        assert!(k > 0);
        acc.extend_from_slice(&chunk[..k]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "side by side with redis-server: run in release (see .ci/run)"]
async fn lru_hit_ratio_is_no_worse_than_redis() {
    let Some(redis) = common::redis_server::start_redis().await else {
        eprintln!("skipped: redis-server is not on PATH");
        return;
    };
    let node = TestNode::start().await;
    let ours = zipf_hit_ratio(node.addr).await;
    let theirs = zipf_hit_ratio(redis.addr).await;
    println!(
        "zipf(0.99) cache-aside hit ratio, maxmemory 20mb, allkeys-lru: shoal {ours:.4}, redis-server {theirs:.4}"
    );
    assert!(
        ours >= theirs,
        "shoal's LRU hit ratio {ours:.4} is worse than redis-server's {theirs:.4}"
    );
    node.stop().await;
}
