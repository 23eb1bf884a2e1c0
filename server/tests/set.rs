//! Set commands whose replies are random or too large for the differential
//! scripts: SPOP / SRANDMEMBER (sizes, distinctness, membership), SSCAN over
//! big hashtable sets (full iteration, cursor 0 at the end), big set algebra.
mod common;

use common::TestNode;
use redis::aio::MultiplexedConnection;
use std::collections::BTreeSet;

async fn q<T: redis::FromRedisValue>(c: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await.expect("command succeeds")
}

async fn fill(c: &mut MultiplexedConnection, key: &str, members: impl Iterator<Item = String>) {
    let mut cmd = redis::cmd("SADD");
    cmd.arg(key);
    for m in members {
        cmd.arg(m);
    }
    let _: i64 = cmd.query_async(c).await.expect("sadd");
}

async fn members(c: &mut MultiplexedConnection, key: &str) -> BTreeSet<String> {
    q::<Vec<String>>(c, &["SMEMBERS", key])
        .await
        .into_iter()
        .collect()
}

#[tokio::test]
async fn spop_and_srandmember_on_both_encodings() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    for (key, enc, n) in [("ints", "intset", 300usize), ("strs", "hashtable", 1000)] {
        let mk = |i: usize| {
            if enc == "intset" {
                i.to_string()
            } else {
                format!("m:{i}")
            }
        };
        fill(&mut c, key, (0..n).map(mk)).await;
        assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", key]).await, enc);
        let all = members(&mut c, key).await;
        assert_eq!(all.len(), n);

        // SRANDMEMBER: positive counts are distinct members, capped at the size.
        for count in [1usize, 5, n / 3, n / 2, n - 1, n, n + 10] {
            let got: Vec<String> = q(&mut c, &["SRANDMEMBER", key, &count.to_string()]).await;
            assert_eq!(got.len(), count.min(n), "count {count}");
            let uniq: BTreeSet<&String> = got.iter().collect();
            assert_eq!(uniq.len(), got.len(), "distinct for count {count}");
            assert!(got.iter().all(|m| all.contains(m)));
        }
        // Negative counts repeat: exactly |count| members, all from the set.
        let got: Vec<String> = q(&mut c, &["SRANDMEMBER", key, "-2000"]).await;
        assert_eq!(got.len(), 2000);
        assert!(got.iter().all(|m| all.contains(m)));
        let one: String = q(&mut c, &["SRANDMEMBER", key]).await;
        assert!(all.contains(&one));
        // SRANDMEMBER changes nothing.
        assert_eq!(q::<usize>(&mut c, &["SCARD", key]).await, n);

        // SPOP: removes what it returns, nothing else.
        let mut left = all.clone();
        let one: String = q(&mut c, &["SPOP", key]).await;
        assert!(left.remove(&one));
        for count in [1usize, 7, 50, 100] {
            let got: Vec<String> = q(&mut c, &["SPOP", key, &count.to_string()]).await;
            assert_eq!(got.len(), count);
            for m in &got {
                assert!(left.remove(m), "{m} popped twice or never there");
            }
            assert_eq!(members(&mut c, key).await, left);
        }
        let rest: Vec<String> = q(&mut c, &["SPOP", key, &n.to_string()]).await;
        assert_eq!(rest.into_iter().collect::<BTreeSet<_>>(), left);
        assert_eq!(q::<i64>(&mut c, &["EXISTS", key]).await, 0);
    }
    node.stop().await;
}

#[tokio::test]
async fn spop_pops_every_member_once() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    fill(&mut c, "s", (0..200).map(|i| format!("x{i}"))).await;
    let mut seen = BTreeSet::new();
    while let Some(m) = q::<Option<String>>(&mut c, &["SPOP", "s"]).await {
        assert!(seen.insert(m));
    }
    assert_eq!(seen.len(), 200);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s"]).await, 0);
    node.stop().await;
}

#[tokio::test]
async fn sscan_iterates_a_big_set_fully() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let n = 5000;
    fill(&mut c, "big", (0..n).map(|i| format!("member:{i}"))).await;
    // Holes from deletions must not break the iteration.
    for i in (0..n).step_by(3) {
        let _: i64 = q(&mut c, &["SREM", "big", &format!("member:{i}")]).await;
    }
    let want = members(&mut c, "big").await;
    for count in ["1", "10", "1000"] {
        let mut seen = BTreeSet::new();
        let mut cursor = "0".to_string();
        let mut rounds = 0;
        loop {
            let (next, batch): (String, Vec<String>) =
                q(&mut c, &["SSCAN", "big", &cursor, "COUNT", count]).await;
            seen.extend(batch);
            rounds += 1;
            assert!(rounds < 100_000);
            if next == "0" {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen, want, "COUNT {count}");
    }
    // MATCH filters within the walk.
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, batch): (String, Vec<String>) =
            q(&mut c, &["SSCAN", "big", &cursor, "MATCH", "member:1*"]).await;
        seen.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    let want_match: BTreeSet<String> = want
        .iter()
        .filter(|m| m.starts_with("member:1"))
        .cloned()
        .collect();
    assert_eq!(seen, want_match);

    // An intset answers everything at once with cursor 0, whatever the cursor.
    fill(&mut c, "ints", (0..100).map(|i| i.to_string())).await;
    let (next, batch): (String, Vec<String>) = q(&mut c, &["SSCAN", "ints", "42"]).await;
    assert_eq!(next, "0");
    assert_eq!(batch.len(), 100);
    node.stop().await;
}

#[tokio::test]
async fn algebra_on_big_sets_matches_a_model() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let a: BTreeSet<String> = (0..3000)
        .filter(|i| i % 2 == 0)
        .map(|i| i.to_string())
        .collect();
    let b: BTreeSet<String> = (0..3000)
        .filter(|i| i % 3 == 0)
        .map(|i| i.to_string())
        .collect();
    let cc: BTreeSet<String> = (0..600)
        .map(|i| format!("s{i}"))
        .chain(["6".to_string()])
        .collect();
    fill(&mut c, "a", a.iter().cloned()).await;
    fill(&mut c, "b", b.iter().cloned()).await;
    fill(&mut c, "c", cc.iter().cloned()).await;
    let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();

    let inter: BTreeSet<String> = a.intersection(&b).cloned().collect();
    assert_eq!(set(q(&mut c, &["SINTER", "a", "b"]).await), inter);
    assert_eq!(
        q::<usize>(&mut c, &["SINTERCARD", "2", "a", "b"]).await,
        inter.len()
    );
    assert_eq!(
        q::<usize>(&mut c, &["SINTERCARD", "2", "a", "b", "LIMIT", "10"]).await,
        10
    );
    assert_eq!(
        set(q(&mut c, &["SINTER", "a", "b", "c"]).await),
        set(vec!["6".into()])
    );

    let union: BTreeSet<String> = a.union(&b).chain(cc.iter()).cloned().collect();
    assert_eq!(set(q(&mut c, &["SUNION", "a", "b", "c"]).await), union);
    assert_eq!(
        q::<usize>(&mut c, &["SUNIONSTORE", "u", "a", "b", "c"]).await,
        union.len()
    );
    assert_eq!(members(&mut c, "u").await, union);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "u"]).await,
        "hashtable"
    );

    let diff: BTreeSet<String> = a
        .difference(&b)
        .filter(|m| !cc.contains(*m))
        .cloned()
        .collect();
    assert_eq!(set(q(&mut c, &["SDIFF", "a", "b", "c"]).await), diff);
    assert_eq!(
        q::<usize>(&mut c, &["SDIFFSTORE", "a", "a", "b", "c"]).await,
        diff.len()
    );
    assert_eq!(members(&mut c, "a").await, diff);

    // A small integer result is stored as an intset.
    assert_eq!(q::<usize>(&mut c, &["SINTERSTORE", "d", "b", "c"]).await, 1);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "d"]).await,
        "intset"
    );
    node.stop().await;
}

#[tokio::test]
async fn smove_between_encodings_keeps_both_sides_true() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    fill(&mut c, "src", (0..100).map(|i| i.to_string())).await;
    fill(&mut c, "dst", ["a".to_string()].into_iter()).await;
    for i in 0..100 {
        let moved: i64 = q(&mut c, &["SMOVE", "src", "dst", &i.to_string()]).await;
        assert_eq!(moved, 1);
    }
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "src"]).await, 0);
    assert_eq!(q::<usize>(&mut c, &["SCARD", "dst"]).await, 101);
    node.stop().await;
}

#[tokio::test]
async fn expired_sets_are_missing_everywhere() {
    let clock = shoal::store::ManualClock::new(1_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut c = node.client().await;
    fill(&mut c, "a", ["1", "2", "3"].into_iter().map(String::from)).await;
    fill(&mut c, "b", ["2", "3", "4"].into_iter().map(String::from)).await;
    fill(&mut c, "d", ["x"].into_iter().map(String::from)).await;
    let _: i64 = q(&mut c, &["PEXPIRE", "a", "100"]).await;
    let _: i64 = q(&mut c, &["PEXPIRE", "d", "100000"]).await;
    assert_eq!(q::<usize>(&mut c, &["SINTERSTORE", "d", "a", "b"]).await, 2);
    // A STORE replaces the destination and its TTL.
    assert_eq!(q::<i64>(&mut c, &["TTL", "d"]).await, -1);
    clock.advance(200);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SINTER", "a", "b"]).await,
        Vec::<String>::new()
    );
    assert_eq!(q::<usize>(&mut c, &["SINTERCARD", "2", "a", "b"]).await, 0);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SUNION", "a", "b"]).await,
        ["2", "3", "4"]
    );
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "a", "b", "1"]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "a"]).await, 0);
    assert_eq!(q::<usize>(&mut c, &["SDIFFSTORE", "d", "a", "b"]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "d"]).await, 0);
    assert_eq!(q::<i64>(&mut c, &["SADD", "a", "9"]).await, 1);
    assert_eq!(q::<Vec<String>>(&mut c, &["SMEMBERS", "a"]).await, ["9"]);
    assert_eq!(q::<i64>(&mut c, &["TTL", "a"]).await, -1);
    node.stop().await;
}
