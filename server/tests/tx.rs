//! Transactions with several clients: WATCH sees other clients' writes,
//! expiry and flushes; EXEC runs without interleaving; queued errors abort.
mod common;

use common::{Raw, TestNode};
use shoal::store::ManualClock;

async fn q(r: &mut Raw, line: &str) -> String {
    let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
    String::from_utf8_lossy(&Box::pin(r.cmd(&args)).await).into_owned()
}

const OK: &str = "+OK\r\n";
const QUEUED: &str = "+QUEUED\r\n";
const T0: u64 = 1_700_000_000_000;

#[tokio::test]
async fn watch_fails_exec_after_another_clients_write() {
    let node = TestNode::start().await;
    let mut a = node.raw().await;
    let mut b = node.raw().await;
    assert_eq!(q(&mut a, "SET k 1").await, OK);
    assert_eq!(q(&mut a, "WATCH k").await, OK);
    assert_eq!(q(&mut b, "INCR k").await, ":2\r\n");
    assert_eq!(q(&mut a, "MULTI").await, OK);
    assert_eq!(q(&mut a, "SET k 100").await, QUEUED);
    assert_eq!(q(&mut a, "EXEC").await, "*-1\r\n");
    assert_eq!(q(&mut a, "GET k").await, "$1\r\n2\r\n");
    // A write to another key, or a read of the watched one, changes nothing.
    assert_eq!(q(&mut a, "WATCH k").await, OK);
    assert_eq!(q(&mut b, "SET other 1").await, OK);
    assert_eq!(q(&mut b, "GET k").await, "$1\r\n2\r\n");
    assert_eq!(q(&mut a, "MULTI").await, OK);
    assert_eq!(q(&mut a, "SET k 100").await, QUEUED);
    assert_eq!(q(&mut a, "EXEC").await, "*1\r\n+OK\r\n");
    // Deleting, expiring and overwriting a missing watched key all count.
    for change in ["EXPIRE k 100", "DEL k", "SET fresh 1"] {
        let key = if change.contains("fresh") {
            "fresh"
        } else {
            "k"
        };
        assert_eq!(q(&mut a, &format!("WATCH {key}")).await, OK);
        q(&mut b, change).await;
        assert_eq!(q(&mut a, "MULTI").await, OK);
        assert_eq!(q(&mut a, "PING").await, QUEUED);
        assert_eq!(q(&mut a, "EXEC").await, "*-1\r\n", "after {change}");
    }
    node.stop().await;
}

#[tokio::test]
async fn watched_key_that_expires_fails_exec() {
    let clock = ManualClock::new(T0);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut a = node.raw().await;
    assert_eq!(q(&mut a, "SET k v PX 100").await, OK);
    assert_eq!(q(&mut a, "WATCH k").await, OK);
    clock.advance(200);
    assert_eq!(q(&mut a, "MULTI").await, OK);
    assert_eq!(q(&mut a, "PING").await, QUEUED);
    assert_eq!(q(&mut a, "EXEC").await, "*-1\r\n");
    // A key already expired when watched is not a change when it goes.
    assert_eq!(q(&mut a, "SET j v PX 100").await, OK);
    clock.advance(200);
    assert_eq!(q(&mut a, "WATCH j").await, OK);
    assert_eq!(q(&mut a, "MULTI").await, OK);
    assert_eq!(q(&mut a, "PING").await, QUEUED);
    assert_eq!(q(&mut a, "EXEC").await, "*1\r\n+PONG\r\n");
    node.stop().await;
}

#[tokio::test]
async fn swapdb_touches_watched_keys_that_exist() {
    let node = TestNode::start().await;
    let mut a = node.raw().await;
    let mut b = node.raw().await;
    assert_eq!(q(&mut a, "SET k 1").await, OK);
    assert_eq!(q(&mut a, "WATCH k nothere").await, OK);
    assert_eq!(q(&mut b, "SWAPDB 0 1").await, OK);
    assert_eq!(q(&mut a, "MULTI").await, OK);
    assert_eq!(q(&mut a, "PING").await, QUEUED);
    assert_eq!(q(&mut a, "EXEC").await, "*-1\r\n");
    assert_eq!(q(&mut a, "WATCH nothere").await, OK);
    assert_eq!(q(&mut b, "SWAPDB 0 1").await, OK);
    assert_eq!(q(&mut a, "MULTI").await, OK);
    assert_eq!(q(&mut a, "PING").await, QUEUED);
    assert_eq!(q(&mut a, "EXEC").await, "*1\r\n+PONG\r\n");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_is_not_interleaved_with_other_clients() {
    let node = TestNode::start().await;
    let addr = node.addr;
    // A writer hammers the key while transactions reset and count it up.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let s2 = stop.clone();
            tokio::spawn(async move {
                let mut w = Raw::connect(addr).await;
                let mut n = 0u64;
                while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                    q(&mut w, "SET k 1000000").await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut a = node.client().await;
    for _ in 0..100 {
        let mut p = redis::pipe();
        p.atomic().cmd("SET").arg("k").arg(0).ignore();
        for _ in 0..200 {
            p.cmd("INCR").arg("k").ignore();
        }
        p.cmd("GET").arg("k");
        let (v,): (i64,) = p.query_async(&mut a).await.expect("EXEC");
        assert_eq!(v, 200, "another client's SET ran inside EXEC");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        let writes = tokio::time::timeout(std::time::Duration::from_secs(10), w)
            .await
            .expect("writer stops")
            .expect("writer task");
        assert!(writes > 0);
    }
    node.stop().await;
}

#[tokio::test]
async fn disconnect_releases_watches_and_transactions() {
    let node = TestNode::start().await;
    {
        let mut a = node.raw().await;
        assert_eq!(q(&mut a, "WATCH k").await, OK);
        assert_eq!(q(&mut a, "MULTI").await, OK);
    }
    let mut b = node.raw().await;
    assert_eq!(q(&mut b, "WATCH k").await, OK);
    assert_eq!(q(&mut b, "MULTI").await, OK);
    assert_eq!(q(&mut b, "SET k 1").await, QUEUED);
    // CLIENT LIST shows the transaction (it is queued, like any command).
    assert_eq!(q(&mut b, "CLIENT INFO").await, QUEUED);
    let exec = q(&mut b, "EXEC").await;
    assert!(exec.starts_with("*2\r\n+OK\r\n$"), "{exec}");
    assert!(
        exec.contains(" flags=x ") && exec.contains(" multi=2 "),
        "{exec}"
    );
    node.stop().await;
}
