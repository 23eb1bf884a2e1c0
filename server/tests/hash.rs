//! Hash command tests for what the differential scripts cannot pin down:
//! random picks (HRANDFIELD) and cursor iteration (HSCAN) over large hashes,
//! RESP3 shapes of random replies, lazy expiry and conversion at scale.
mod common;

use common::{Raw, TestNode};
use redis::Value as V;
use shoal::store::ManualClock;
use std::collections::{BTreeMap, BTreeSet};

async fn q(r: &mut Raw, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    String::from_utf8_lossy(&Box::pin(r.cmd(&args)).await).into_owned()
}

/// Fills `key` with `n` fields `f<i>` = `v<i>` in batches.
async fn fill(c: &mut redis::aio::MultiplexedConnection, key: &str, n: usize) {
    for start in (0..n).step_by(100) {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for i in start..(start + 100).min(n) {
            cmd.arg(format!("f{i}")).arg(format!("v{i}"));
        }
        let _: i64 = cmd.query_async(c).await.expect("reply");
    }
}

async fn encoding(c: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query_async(c)
        .await
        .expect("reply")
}

#[tokio::test]
async fn hrandfield_on_big_and_small_hashes() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    for (key, n) in [("big", 1000usize), ("small", 50)] {
        fill(&mut c, key, n).await;
        let want = if n > 128 { "hashtable" } else { "listpack" };
        assert_eq!(encoding(&mut c, key).await, want);
        let all: BTreeSet<String> = (0..n).map(|i| format!("f{i}")).collect();

        // No count: one existing field.
        let f: String = redis::cmd("HRANDFIELD")
            .arg(key)
            .query_async(&mut c)
            .await
            .expect("reply");
        assert!(all.contains(&f));

        // Positive counts: distinct fields, min(count, size) of them.
        for count in [1usize, 5, 10, n / 3 - 1, n / 3 + 1, n / 2, n - 1, n, n + 10] {
            let got: Vec<String> = redis::cmd("HRANDFIELD")
                .arg(key)
                .arg(count)
                .query_async(&mut c)
                .await
                .expect("reply");
            assert_eq!(got.len(), count.min(n), "count {count}");
            let distinct: BTreeSet<&String> = got.iter().collect();
            assert_eq!(distinct.len(), got.len(), "count {count}: repeats");
            assert!(got.iter().all(|f| all.contains(f)));
        }

        // Negative counts: exactly |count| fields, repeats allowed.
        let got: Vec<String> = redis::cmd("HRANDFIELD")
            .arg(key)
            .arg(-3000)
            .query_async(&mut c)
            .await
            .expect("reply");
        assert_eq!(got.len(), 3000);
        assert!(got.iter().all(|f| all.contains(f)));
        // 3000 uniform picks out of <= 1000 fields cannot all be distinct,
        // and should reach well over a handful of different fields.
        let distinct: BTreeSet<&String> = got.iter().collect();
        assert!(distinct.len() < 3000 && distinct.len() > n.min(20));

        // WITHVALUES (RESP2: flat pairs) keeps each field with its value.
        for count in [7i64, -7, n as i64 + 5] {
            let got: Vec<String> = redis::cmd("HRANDFIELD")
                .arg(key)
                .arg(count)
                .arg("WITHVALUES")
                .query_async(&mut c)
                .await
                .expect("reply");
            let expect = if count < 0 {
                count.unsigned_abs() as usize
            } else {
                (count as usize).min(n)
            };
            assert_eq!(got.len(), 2 * expect);
            for pair in got.chunks(2) {
                assert_eq!(pair[1], pair[0].replacen('f', "v", 1));
            }
        }
    }
    node.stop().await;
}

#[tokio::test]
async fn hrandfield_withvalues_is_nested_in_resp3() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    fill(&mut c, "big", 300).await;
    fill(&mut c, "small", 3).await;
    let mut r = node.raw().await;
    q(&mut r, &["HELLO", "3"]).await;
    for key in ["big", "small"] {
        for count in ["2", "-2", "1"] {
            let reply = q(&mut r, &["HRANDFIELD", key, count, "WITHVALUES"]).await;
            let n: usize = count.trim_start_matches('-').parse().expect("reply");
            assert!(reply.starts_with(&format!("*{n}\r\n*2\r\n$")), "{reply:?}");
            let header = format!("*{n}\r\n");
            let body = &reply[header.len()..];
            assert_eq!(body.matches("*2\r\n").count(), n, "{reply:?}");
        }
        // Without WITHVALUES the elements are plain bulk strings.
        let reply = q(&mut r, &["HRANDFIELD", key, "-2"]).await;
        assert!(reply.starts_with("*2\r\n$"), "{reply:?}");
    }
    node.stop().await;
}

#[tokio::test]
async fn hscan_full_iteration_returns_every_field() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    fill(&mut c, "h", 2000).await;
    assert_eq!(encoding(&mut c, "h").await, "hashtable");
    for count in [1usize, 10, 97, 5000] {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut cursor = "0".to_string();
        let mut rounds = 0;
        loop {
            let (next, batch): (String, Vec<String>) = redis::cmd("HSCAN")
                .arg("h")
                .arg(&cursor)
                .arg("COUNT")
                .arg(count)
                .query_async(&mut c)
                .await
                .expect("reply");
            assert_eq!(batch.len() % 2, 0);
            for pair in batch.chunks(2) {
                seen.insert(pair[0].clone(), pair[1].clone());
            }
            rounds += 1;
            cursor = next;
            if cursor == "0" {
                break;
            }
            assert!(rounds < 10_000, "scan does not end");
        }
        assert_eq!(seen.len(), 2000, "count {count}");
        for (f, v) in &seen {
            assert_eq!(v, &f.replacen('f', "v", 1));
        }
    }

    // MATCH filters fields; fields present throughout a scan with
    // concurrent writes are still returned.
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    loop {
        let (next, batch): (String, Vec<String>) = redis::cmd("HSCAN")
            .arg("h")
            .arg(&cursor)
            .arg("MATCH")
            .arg("f1*")
            .arg("COUNT")
            .arg(50)
            .query_async(&mut c)
            .await
            .expect("reply");
        for pair in batch.chunks(2) {
            assert!(pair[0].starts_with("f1"));
            seen.insert(pair[0].clone());
        }
        let _: i64 = redis::cmd("HSET")
            .arg("h")
            .arg(format!("new{round}"))
            .arg("x")
            .query_async(&mut c)
            .await
            .expect("reply");
        let _: i64 = redis::cmd("HDEL")
            .arg("h")
            .arg(format!("f{}", 2 * round + 1))
            .query_async(&mut c)
            .await
            .expect("reply");
        round += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    let expected: BTreeSet<String> = (0..2000)
        .filter(|i| i % 2 == 0 || *i > 2 * round)
        .map(|i| format!("f{i}"))
        .filter(|f| f.starts_with("f1"))
        .collect();
    assert!(expected.is_subset(&seen));
    node.stop().await;
}

#[tokio::test]
async fn conversion_and_deletion_at_scale() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    fill(&mut c, "h", 128).await;
    assert_eq!(encoding(&mut c, "h").await, "listpack");
    fill(&mut c, "h", 129).await;
    assert_eq!(encoding(&mut c, "h").await, "hashtable");
    let len: i64 = redis::cmd("HLEN")
        .arg("h")
        .query_async(&mut c)
        .await
        .expect("reply");
    assert_eq!(len, 129);
    let all: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg("h")
        .query_async(&mut c)
        .await
        .expect("reply");
    assert_eq!(all.len(), 129);
    assert_eq!(all.get("f128").map(String::as_str), Some("v128"));
    // Deleting everything in one HDEL removes the key; the encoding never
    // went back to listpack on the way.
    let mut del = redis::cmd("HDEL");
    del.arg("h");
    for i in 0..128 {
        del.arg(format!("f{i}"));
    }
    let n: i64 = del.query_async(&mut c).await.expect("reply");
    assert_eq!(n, 128);
    assert_eq!(encoding(&mut c, "h").await, "hashtable");
    let n: i64 = redis::cmd("HDEL")
        .arg("h")
        .arg("f128")
        .arg("f0")
        .query_async(&mut c)
        .await
        .expect("reply");
    assert_eq!(n, 1);
    let exists: i64 = redis::cmd("EXISTS")
        .arg("h")
        .query_async(&mut c)
        .await
        .expect("reply");
    assert_eq!(exists, 0);
    // HSCAN of a small hash answers everything at once with cursor 0.
    fill(&mut c, "s", 20).await;
    let reply: V = redis::cmd("HSCAN")
        .arg("s")
        .arg(0)
        .arg("COUNT")
        .arg(1)
        .query_async(&mut c)
        .await
        .expect("reply");
    let (next, batch): (String, Vec<String>) =
        redis::FromRedisValue::from_redis_value(reply).expect("reply");
    assert_eq!(next, "0");
    assert_eq!(batch.len(), 40);
    node.stop().await;
}

#[tokio::test]
async fn expired_hashes_are_gone() {
    let clock = ManualClock::new(1_700_000_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(
        q(&mut r, &["HSET", "h", "f", "v", "g", "w"]).await,
        ":2\r\n"
    );
    assert_eq!(q(&mut r, &["PEXPIRE", "h", "100"]).await, ":1\r\n");
    assert_eq!(q(&mut r, &["HGET", "h", "f"]).await, "$1\r\nv\r\n");
    clock.advance(101);
    assert_eq!(q(&mut r, &["HGET", "h", "f"]).await, "$-1\r\n");
    assert_eq!(q(&mut r, &["HLEN", "h"]).await, ":0\r\n");
    assert_eq!(q(&mut r, &["HSET", "h", "f", "v2"]).await, ":1\r\n");
    assert_eq!(q(&mut r, &["TTL", "h"]).await, ":-1\r\n");
    assert_eq!(
        q(&mut r, &["HGETALL", "h"]).await,
        "*2\r\n$1\r\nf\r\n$2\r\nv2\r\n"
    );
    // A write keeps the TTL of a live hash.
    assert_eq!(q(&mut r, &["EXPIRE", "h", "100"]).await, ":1\r\n");
    assert_eq!(q(&mut r, &["HINCRBY", "h", "n", "5"]).await, ":5\r\n");
    assert_eq!(q(&mut r, &["HDEL", "h", "f"]).await, ":1\r\n");
    assert_eq!(q(&mut r, &["TTL", "h"]).await, ":100\r\n");
    node.stop().await;
}
