//! Sorted-set tests that a byte-for-byte script cannot express: random
//! replies (ZRANDMEMBER) and cursor iteration (ZSCAN) on big sets, and the
//! encoding switch under load.
#![allow(clippy::unwrap_used)] // tests: a failed call should fail the test
mod common;

use common::TestNode;
use redis::AsyncCommands;
use std::collections::{BTreeMap, BTreeSet};

async fn fill(
    c: &mut redis::aio::MultiplexedConnection,
    key: &str,
    n: usize,
) -> BTreeMap<String, f64> {
    let mut model = BTreeMap::new();
    let mut cmd = redis::cmd("ZADD");
    cmd.arg(key);
    for i in 0..n {
        let (m, s) = (format!("member:{i}"), (i % 97) as f64 / 4.0);
        cmd.arg(s).arg(&m);
        model.insert(m, s);
    }
    let added: usize = cmd.query_async(c).await.unwrap();
    assert_eq!(added, n);
    model
}

#[tokio::test]
async fn zrandmember_on_a_big_set() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let model = fill(&mut c, "z", 1000).await;
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("z")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(enc, "skiplist");

    let one: String = c.zrandmember("z", None).await.unwrap();
    assert!(model.contains_key(&one));

    // Positive count: distinct members.
    let got: Vec<String> = c.zrandmember("z", Some(100)).await.unwrap();
    assert_eq!(got.len(), 100);
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 100);
    assert!(got.iter().all(|m| model.contains_key(m)));

    // Negative count: repetitions allowed, exactly |count| picks.
    let got: Vec<String> = c.zrandmember("z", Some(-3000)).await.unwrap();
    assert_eq!(got.len(), 3000);
    assert!(got.iter().all(|m| model.contains_key(m)));
    // 3000 picks out of 1000 cover far more than a few distinct members.
    assert!(got.iter().collect::<BTreeSet<_>>().len() > 500);

    // More than the set holds: the whole set.
    let got: Vec<String> = c.zrandmember("z", Some(5000)).await.unwrap();
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), 1000);

    // With scores: pairs whose scores are the stored ones.
    let got: Vec<(String, f64)> = c.zrandmember_withscores("z", 50).await.unwrap();
    assert_eq!(got.len(), 50);
    for (m, s) in &got {
        assert_eq!(model.get(m), Some(s));
    }
    let got: Vec<(String, f64)> = c.zrandmember_withscores("z", -50).await.unwrap();
    assert_eq!(got.len(), 50);
    for (m, s) in &got {
        assert_eq!(model.get(m), Some(s));
    }
    node.stop().await;
}

#[tokio::test]
async fn zscan_on_a_big_set_sees_every_member_that_stays() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let model = fill(&mut c, "z", 2000).await;

    let mut seen: BTreeMap<String, f64> = BTreeMap::new();
    let mut cursor: u64 = 0;
    let mut round = 0;
    loop {
        let (next, items): (u64, Vec<(String, f64)>) = redis::cmd("ZSCAN")
            .arg("z")
            .arg(cursor)
            .arg("COUNT")
            .arg(25)
            .query_async(&mut c)
            .await
            .unwrap();
        for (m, s) in items {
            assert_eq!(model.get(&m), Some(&s), "{m} has the wrong score");
            seen.insert(m, s);
        }
        // Churn while iterating: remove some members, add new ones.
        let _: usize = c
            .zrem("z", format!("member:{}", (round * 13) % 2000))
            .await
            .unwrap();
        let _: usize = c.zadd("z", format!("new:{round}"), 1.0).await.unwrap();
        round += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let now: Vec<String> = c.zrange("z", 0, -1).await.unwrap();
    for m in now.iter().filter(|m| m.starts_with("member:")) {
        assert!(
            seen.contains_key(m),
            "{m} was present throughout but not returned"
        );
    }

    // MATCH filters members; the scores stay paired with them.
    let mut cursor: u64 = 0;
    let mut matched = BTreeSet::new();
    loop {
        let (next, items): (u64, Vec<(String, f64)>) = redis::cmd("ZSCAN")
            .arg("z")
            .arg(cursor)
            .arg("MATCH")
            .arg("member:1?")
            .query_async(&mut c)
            .await
            .unwrap();
        for (m, _) in items {
            assert!(
                m.starts_with("member:1") && m.len() == "member:1x".len(),
                "{m}"
            );
            matched.insert(m);
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert!(matched.len() <= 10);
    node.stop().await;
}

#[tokio::test]
async fn ranges_agree_across_encodings() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    // The same content in both encodings must answer every range the same.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("zset-max-listpack-entries")
        .arg(1000)
        .query_async(&mut c)
        .await
        .unwrap();
    fill(&mut c, "small", 300).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("zset-max-listpack-entries")
        .arg(10)
        .query_async(&mut c)
        .await
        .unwrap();
    fill(&mut c, "big", 300).await;
    for (k, want) in [("small", "listpack"), ("big", "skiplist")] {
        let enc: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(k)
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(enc, want);
    }
    let queries: &[&[&str]] = &[
        &["ZRANGE", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "17", "123", "REV", "WITHSCORES"],
        &["ZRANGE", "(3", "10.25", "BYSCORE", "LIMIT", "5", "40"],
        &["ZRANGE", "+inf", "(7", "BYSCORE", "REV", "LIMIT", "3", "9"],
        &["ZCOUNT", "(2", "12"],
        &["ZRANK", "member:150"],
        &["ZREVRANK", "member:150"],
        &["ZMSCORE", "member:3", "nosuch", "member:299"],
    ];
    for q in queries {
        let run = |key: &'static str| {
            let mut cmd = redis::cmd(q[0]);
            cmd.arg(key);
            for a in &q[1..] {
                cmd.arg(*a);
            }
            cmd
        };
        let a: redis::Value = run("small").query_async(&mut c).await.unwrap();
        let b: redis::Value = run("big").query_async(&mut c).await.unwrap();
        assert_eq!(a, b, "{q:?}");
    }
    node.stop().await;
}
