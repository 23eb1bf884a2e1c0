//! Three in-process nodes in multi-node cluster mode (gossip over UDP on
//! 127.0.0.1, redirect mode): they converge to one slot map, CLUSTER
//! commands report every node, keys owned elsewhere get -MOVED, the redis-rs
//! cluster client follows the redirects, and a node shut down leaves the map.

mod common;

use common::{Raw, TestNode, WAIT};
use redis::AsyncCommands;
use shoal::command::cluster::key_slot;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Bound for convergence and failure detection.
const CONVERGE: Duration = Duration::from_secs(10);

async fn start_node(seed: Option<SocketAddr>) -> TestNode {
    TestNode::start_with(|c| {
        c.cluster_enabled = true;
        c.cluster_gossip_port = Some(0);
        c.cluster_seeds = seed.map(|s| s.to_string()).into_iter().collect();
    })
    .await
}

fn gossip_addr(n: &TestNode) -> SocketAddr {
    n.handle
        .as_ref()
        .and_then(|h| h.shared().gossip.get().map(|g| g.gossip_addr()))
        .expect("gossip running")
}

async fn start_cluster(n: usize) -> Vec<TestNode> {
    let first = start_node(None).await;
    let seed = gossip_addr(&first);
    let mut nodes = vec![first];
    for _ in 1..n {
        nodes.push(start_node(Some(seed)).await);
    }
    nodes
}

async fn cmd(node: &TestNode, args: &[&str]) -> redis::Value {
    let mut con = node.client().await;
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    tokio::time::timeout(WAIT, c.query_async::<redis::Value>(&mut con))
        .await
        .expect("reply in time")
        .unwrap_or_else(|e| redis::Value::SimpleString(format!("error: {e}")))
}

async fn nodes_text(node: &TestNode) -> String {
    match cmd(node, &["CLUSTER", "NODES"]).await {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("CLUSTER NODES: {other:?}"),
    }
}

/// CLUSTER SLOTS as (start, end, ip, port, id), sorted.
async fn slots(node: &TestNode) -> Vec<(i64, i64, String, i64, String)> {
    let redis::Value::Array(ranges) = cmd(node, &["CLUSTER", "SLOTS"]).await else {
        panic!("CLUSTER SLOTS is an array");
    };
    let mut out = Vec::new();
    for r in ranges {
        let redis::Value::Array(r) = r else {
            panic!("range")
        };
        let (redis::Value::Int(a), redis::Value::Int(b), redis::Value::Array(m)) =
            (&r[0], &r[1], &r[2])
        else {
            panic!("range shape {r:?}")
        };
        let (redis::Value::BulkString(ip), redis::Value::Int(port), redis::Value::BulkString(id)) =
            (&m[0], &m[1], &m[2])
        else {
            panic!("master shape {m:?}")
        };
        out.push((
            *a,
            *b,
            String::from_utf8_lossy(ip).into_owned(),
            *port,
            String::from_utf8_lossy(id).into_owned(),
        ));
    }
    out.sort();
    out
}

fn known_nodes(nodes_text: &str) -> usize {
    nodes_text.lines().filter(|l| !l.is_empty()).count()
}

/// Waits until every node knows `n` nodes and all report the same slots.
async fn converge(nodes: &[&TestNode], n: usize) -> Vec<(i64, i64, String, i64, String)> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let mut all = Vec::new();
        let mut ok = true;
        for node in nodes {
            if known_nodes(&nodes_text(node).await) != n {
                ok = false;
            }
            all.push(slots(node).await);
        }
        if ok && all.windows(2).all(|w| w[0] == w[1]) {
            return all.swap_remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "no convergence to {n} nodes within {CONVERGE:?}: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn check_cover(slots: &[(i64, i64, String, i64, String)]) {
    let mut next = 0;
    for (a, b, ..) in slots {
        assert_eq!(*a, next, "ranges cover every slot exactly once: {slots:?}");
        assert!(b >= a);
        next = b + 1;
    }
    assert_eq!(next, 16384);
}

fn owner_of(slots: &[(i64, i64, String, i64, String)], slot: u16) -> (String, i64, String) {
    let slot = i64::from(slot);
    slots
        .iter()
        .find(|(a, b, ..)| *a <= slot && slot <= *b)
        .map(|(_, _, ip, port, id)| (ip.clone(), *port, id.clone()))
        .expect("slot covered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_converge_redirect_and_lose_a_node() {
    let mut nodes = start_cluster(3).await;
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let map = converge(&refs, 3).await;
    check_cover(&map);
    let ids: HashSet<&str> = map.iter().map(|r| r.4.as_str()).collect();
    assert_eq!(ids.len(), 3, "every node owns slots");
    for (_, _, ip, port, _) in &map {
        assert_eq!(ip, "127.0.0.1");
        assert!(nodes.iter().any(|n| i64::from(n.addr.port()) == *port));
    }

    // CLUSTER INFO / SHARDS agree.
    for n in &nodes {
        let info = match cmd(n, &["CLUSTER", "INFO"]).await {
            redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            redis::Value::VerbatimString { text, .. } => text,
            other => panic!("{other:?}"),
        };
        assert!(info.contains("cluster_known_nodes:3\r\n"), "{info}");
        assert!(info.contains("cluster_size:3\r\n"), "{info}");
        let redis::Value::Array(shards) = cmd(n, &["CLUSTER", "SHARDS"]).await else {
            panic!("shards")
        };
        assert_eq!(shards.len(), 3);
        let text = nodes_text(n).await;
        assert_eq!(text.matches("myself,master").count(), 1, "{text}");
    }

    // A key's GET on a non-owner answers MOVED to the owner; the owner serves it.
    let key = "somekey";
    let slot = key_slot(key.as_bytes());
    let (ip, port, _) = owner_of(&map, slot);
    let owner = nodes
        .iter()
        .find(|n| i64::from(n.addr.port()) == port)
        .expect("owner");
    let other = nodes
        .iter()
        .find(|n| i64::from(n.addr.port()) != port)
        .expect("non-owner");
    let mut raw = Raw::connect(other.addr).await;
    let reply = raw.cmd(&[b"GET", key.as_bytes()]).await;
    assert_eq!(
        String::from_utf8_lossy(&reply),
        format!("-MOVED {slot} {ip}:{port}\r\n")
    );
    let mut raw_owner = Raw::connect(owner.addr).await;
    assert_eq!(raw_owner.cmd(&[b"GET", key.as_bytes()]).await, b"$-1\r\n");
    // Keys of two slots: CROSSSLOT, wherever they are sent.
    let reply = raw.cmd(&[b"MGET", b"a", b"b"]).await;
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "-CROSSSLOT Keys in a request don't hash to the same slot\r\n"
    );
    // Inside MULTI the redirect is the queuing reply and EXEC aborts, as Redis.
    assert_eq!(raw.cmd(&[b"MULTI"]).await, b"+OK\r\n");
    let reply = raw.cmd(&[b"SET", key.as_bytes(), b"v"]).await;
    assert!(reply.starts_with(b"-MOVED "), "{reply:?}");
    let reply = raw.cmd(&[b"EXEC"]).await;
    assert!(reply.starts_with(b"-EXECABORT"), "{reply:?}");
    // Keys of one slot (a hash tag) on its owner run there.
    let tagged = format!("{{{key}}}:a");
    assert_eq!(
        raw_owner
            .cmd(&[b"MSET", key.as_bytes(), b"1", tagged.as_bytes(), b"2"])
            .await,
        b"+OK\r\n"
    );
    assert_eq!(
        raw_owner
            .cmd(&[b"DEL", key.as_bytes(), tagged.as_bytes()])
            .await,
        b":2\r\n"
    );
    // Keyless commands run anywhere.
    assert_eq!(raw.cmd(&[b"PING"]).await, b"+PONG\r\n");

    // The redis-rs cluster client follows the map: 1000 keys in and out.
    let client = redis::cluster::ClusterClient::builder(
        nodes
            .iter()
            .map(|n| format!("redis://{}/", n.addr))
            .collect::<Vec<_>>(),
    )
    .connection_timeout(WAIT)
    .response_timeout(WAIT)
    .build()
    .expect("cluster client");
    let mut con = tokio::time::timeout(WAIT, client.get_async_connection())
        .await
        .expect("connect in time")
        .expect("connect");
    for i in 0..1000 {
        let () = con.set(format!("k:{i}"), i).await.expect("set");
    }
    for i in 0..1000 {
        let v: i64 = con.get(format!("k:{i}")).await.expect("get");
        assert_eq!(v, i);
    }
    // The keys are spread over the three nodes.
    let mut per_node: BTreeMap<u16, i64> = BTreeMap::new();
    for n in &nodes {
        let redis::Value::Int(k) = cmd(n, &["DBSIZE"]).await else {
            panic!("dbsize")
        };
        per_node.insert(n.addr.port(), k);
    }
    assert!(per_node.values().all(|&k| k > 100), "{per_node:?}");
    assert_eq!(per_node.values().sum::<i64>(), 1000);

    // Shut down one node: the others drop it and take over its slots.
    let gone = nodes.remove(2);
    let gone_port = i64::from(gone.addr.port());
    gone.stop().await;
    let refs: Vec<&TestNode> = nodes.iter().collect();
    let map = converge(&refs, 2).await;
    check_cover(&map);
    assert!(map.iter().all(|r| r.3 != gone_port), "{map:?}");
    for n in &nodes {
        assert!(!nodes_text(n).await.contains(&format!(":{gone_port}@")));
    }
    for n in nodes {
        n.stop().await;
    }
}
