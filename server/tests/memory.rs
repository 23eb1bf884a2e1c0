//! maxmemory: every policy keeps used_memory at the cap while four times the
//! cap is written; volatile policies evict only keys with a TTL; noeviction
//! refuses writes with OOM and loses nothing; LRU keeps hot keys; LFU counts.
mod common;

use common::{Raw, TestNode, WAIT, encode, reply_len};
use tokio::io::AsyncReadExt;

const CAP: u64 = 50 * 1024 * 1024;
const VALUE: usize = 4096;

/// Sends `cmds` pipelined and returns their replies.
async fn pipeline(r: &mut Raw, cmds: &[Vec<Vec<u8>>]) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    for c in cmds {
        let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
        buf.extend(encode(&args));
    }
    r.send(&buf).await;
    let mut got = Vec::new();
    let mut acc: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    while got.len() < cmds.len() {
        while let Some(n) = reply_len(&acc) {
            got.push(acc.drain(..n).collect());
            if got.len() == cmds.len() {
                return got;
            }
        }
        let n = tokio::time::timeout(WAIT, r.stream.read(&mut chunk))
            .await
            .expect("replies in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        acc.extend_from_slice(&chunk[..n]);
    }
    got
}

/// The first complete reply on the stream (more may follow; they are dropped).
async fn first_reply(r: &mut Raw) -> Vec<u8> {
    let mut acc = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        if let Some(n) = reply_len(&acc) {
            acc.truncate(n);
            return acc;
        }
        let n = tokio::time::timeout(WAIT, r.stream.read(&mut chunk))
            .await
            .expect("a message in time")
            .expect("read");
        assert!(n > 0, "connection closed");
        acc.extend_from_slice(&chunk[..n]);
    }
}

async fn q(r: &mut Raw, line: &str) -> String {
    let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
    String::from_utf8_lossy(&Box::pin(r.cmd(&args)).await).into_owned()
}

async fn info_field(r: &mut Raw, field: &str) -> u64 {
    let info = q(r, "INFO").await;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO"))
}

fn set_cmd(i: usize, ttl: bool) -> Vec<Vec<u8>> {
    let mut c = vec![
        b"SET".to_vec(),
        format!("{}:{i:08}", if ttl { "ttl" } else { "keep" }).into_bytes(),
        vec![b'v'; VALUE],
    ];
    if ttl {
        c.extend([b"EX".to_vec(), b"100000".to_vec()]);
    }
    c
}

/// Writes 4x the cap (every other key with a TTL for volatile policies) and
/// checks used_memory after every batch. Returns (OK replies, OOM replies,
/// keys without TTL written).
async fn fill(node: &TestNode, volatile: bool) -> (usize, usize, usize) {
    let mut r = node.raw().await;
    let total = (4 * CAP as usize) / VALUE;
    let (mut ok, mut oom, mut kept) = (0, 0, 0);
    let mut i = 0;
    while i < total {
        let batch: Vec<Vec<Vec<u8>>> = (i..(i + 256).min(total))
            .map(|k| set_cmd(k, volatile && k % 2 == 0))
            .collect();
        for (k, rep) in (i..).zip(pipeline(&mut r, &batch).await) {
            if rep == b"+OK\r\n" {
                ok += 1;
                if !(volatile && k % 2 == 0) {
                    kept += 1;
                }
            } else {
                assert_eq!(
                    rep,
                    b"-OOM command not allowed when used memory > 'maxmemory'.\r\n".to_vec()
                );
                oom += 1;
            }
        }
        i += batch.len();
        let used = info_field(&mut r, "used_memory").await;
        assert!(
            used <= CAP + CAP / 20,
            "used_memory {used} over the cap {CAP} by more than 5% after {i} writes"
        );
    }
    (ok, oom, kept)
}

async fn node_with(policy: &'static str) -> TestNode {
    TestNode::start_with(|c| {
        c.maxmemory = CAP;
        c.maxmemory_policy = policy.into();
    })
    .await
}

async fn allkeys(policy: &'static str) {
    let node = node_with(policy).await;
    let (ok, oom, _) = fill(&node, false).await;
    assert_eq!(oom, 0, "{policy} refused writes");
    let mut r = node.raw().await;
    let keys = info_field(&mut r, "evicted_keys").await as usize;
    let dbsize: usize = q(&mut r, "DBSIZE").await.trim()[1..]
        .parse()
        .expect("dbsize");
    assert_eq!(
        dbsize + keys,
        ok,
        "{policy}: every write is either present or evicted"
    );
    assert!(keys > ok / 2, "{policy} evicted only {keys} of {ok}");
    node.stop().await;
}

async fn volatile(policy: &'static str) {
    let node = node_with(policy).await;
    let (_, _, kept) = fill(&node, true).await;
    let mut r = node.raw().await;
    // Every key without a TTL that was acknowledged is still there.
    let mut present = 0;
    for chunk in (0..(4 * CAP as usize) / VALUE)
        .filter(|k| k % 2 == 1)
        .collect::<Vec<_>>()
        .chunks(512)
    {
        let cmds: Vec<Vec<Vec<u8>>> = chunk
            .iter()
            .map(|k| vec![b"EXISTS".to_vec(), format!("keep:{k:08}").into_bytes()])
            .collect();
        present += pipeline(&mut r, &cmds)
            .await
            .iter()
            .filter(|rep| rep.as_slice() == b":1\r\n")
            .count();
    }
    assert_eq!(present, kept, "{policy} evicted keys without a TTL");
    assert!(info_field(&mut r, "evicted_keys").await > 0);
    node.stop().await;
}

#[tokio::test]
async fn allkeys_lru_stays_under_the_cap() {
    allkeys("allkeys-lru").await;
}

#[tokio::test]
async fn allkeys_lfu_stays_under_the_cap() {
    allkeys("allkeys-lfu").await;
}

#[tokio::test]
async fn allkeys_random_stays_under_the_cap() {
    allkeys("allkeys-random").await;
}

#[tokio::test]
async fn volatile_lru_evicts_only_keys_with_ttl() {
    volatile("volatile-lru").await;
}

#[tokio::test]
async fn volatile_lfu_evicts_only_keys_with_ttl() {
    volatile("volatile-lfu").await;
}

#[tokio::test]
async fn volatile_random_evicts_only_keys_with_ttl() {
    volatile("volatile-random").await;
}

#[tokio::test]
async fn volatile_ttl_evicts_only_keys_with_ttl() {
    volatile("volatile-ttl").await;
}

#[tokio::test]
async fn noeviction_refuses_writes_and_loses_nothing() {
    let node = node_with("noeviction").await;
    let (ok, oom, _) = fill(&node, false).await;
    assert!(oom > 0, "noeviction never refused a write");
    let mut r = node.raw().await;
    let dbsize: usize = q(&mut r, "DBSIZE").await.trim()[1..]
        .parse()
        .expect("dbsize");
    assert_eq!(dbsize, ok, "an acknowledged write was lost");
    // Over the cap, MULTI queues nothing (as Redis: queuing could grow without bound).
    assert_eq!(q(&mut r, "MULTI").await, "+OK\r\n");
    assert_eq!(
        q(&mut r, "GET keep:00000000").await,
        "-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    );
    assert_eq!(
        q(&mut r, "EXEC").await,
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(q(&mut r, "MULTI").await, "+OK\r\n");
    assert_eq!(q(&mut r, "DISCARD").await, "+OK\r\n");
    // Reads and deletes keep working; a delete makes room again.
    assert_eq!(q(&mut r, "GET keep:00000000").await.len(), VALUE + 9);
    assert_eq!(q(&mut r, "DEL keep:00000000 keep:00000001").await, ":2\r\n");
    for k in 2..64 {
        q(&mut r, &format!("DEL keep:{k:08}")).await;
    }
    assert_eq!(q(&mut r, "SET small v").await, "+OK\r\n");
    assert_eq!(info_field(&mut r, "evicted_keys").await, 0);
    node.stop().await;
}

#[tokio::test]
async fn lru_keeps_the_hot_keys() {
    // A manual clock: the LRU clock has one-second resolution, so each round
    // of cold writes happens a second after the hot keys were last read.
    let clock = shoal::store::ManualClock::new(1_700_000_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut r = node.raw().await;
    assert_eq!(
        q(&mut r, &format!("CONFIG SET maxmemory {CAP}")).await,
        "+OK\r\n"
    );
    assert_eq!(
        q(&mut r, "CONFIG SET maxmemory-policy allkeys-lru").await,
        "+OK\r\n"
    );
    let hot_n = 200;
    let hot: Vec<Vec<Vec<u8>>> = (0..hot_n).map(|k| set_cmd(k, false)).collect();
    pipeline(&mut r, &hot).await;
    let total = (3 * CAP as usize) / VALUE;
    let mut i = hot_n;
    while i < total {
        let batch: Vec<Vec<Vec<u8>>> = (i..(i + 512).min(total))
            .map(|k| set_cmd(k, false))
            .collect();
        pipeline(&mut r, &batch).await;
        i += batch.len();
        clock.advance(1000);
        let gets: Vec<Vec<Vec<u8>>> = (0..hot_n)
            .map(|k| vec![b"GET".to_vec(), format!("keep:{k:08}").into_bytes()])
            .collect();
        pipeline(&mut r, &gets).await;
    }
    let exists: Vec<Vec<Vec<u8>>> = (0..hot_n)
        .map(|k| vec![b"EXISTS".to_vec(), format!("keep:{k:08}").into_bytes()])
        .collect();
    let present = pipeline(&mut r, &exists)
        .await
        .iter()
        .filter(|rep| rep.as_slice() == b":1\r\n")
        .count();
    assert!(
        present * 100 >= hot_n * 95,
        "only {present} of {hot_n} hot keys kept"
    );
    assert!(info_field(&mut r, "evicted_keys").await as usize > total / 2);
    node.stop().await;
}

#[tokio::test]
async fn lfu_counters_grow_with_hits_and_evictions_are_notified() {
    let node = node_with("allkeys-lfu").await;
    let mut r = node.raw().await;
    assert_eq!(q(&mut r, "SET k v").await, "+OK\r\n");
    assert_eq!(q(&mut r, "OBJECT FREQ k").await, ":5\r\n");
    let gets: Vec<Vec<Vec<u8>>> = (0..2000)
        .map(|_| vec![b"GET".to_vec(), b"k".to_vec()])
        .collect();
    pipeline(&mut r, &gets).await;
    let freq: u64 = q(&mut r, "OBJECT FREQ k").await.trim()[1..]
        .parse()
        .expect("freq");
    assert!(freq > 10, "freq {freq} after 2000 hits");
    assert!(
        q(&mut r, "OBJECT IDLETIME k")
            .await
            .starts_with("-ERR An LFU maxmemory policy is selected, idle time not tracked")
    );
    // Evictions publish `evicted` events.
    assert_eq!(
        q(&mut r, "CONFIG SET notify-keyspace-events Ee").await,
        "+OK\r\n"
    );
    let mut sub = node.raw().await;
    q(&mut sub, "SUBSCRIBE __keyevent@0__:evicted").await;
    assert_eq!(q(&mut r, "CONFIG SET maxmemory 2mb").await, "+OK\r\n");
    let batch: Vec<Vec<Vec<u8>>> = (0..1024).map(|k| set_cmd(k, false)).collect();
    pipeline(&mut r, &batch).await;
    let msg = String::from_utf8_lossy(&first_reply(&mut sub).await).into_owned();
    assert!(msg.contains("__keyevent@0__:evicted"), "{msg}");
    node.stop().await;
}

#[tokio::test]
async fn client_buffers_count_in_used_memory() {
    let node = TestNode::start().await;
    let mut r = node.raw().await;
    let before = info_field(&mut r, "used_memory").await;
    // Half of a 4 MB bulk string sits in the other client's query buffer.
    let mut big = node.raw().await;
    let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4194304\r\n".to_vec();
    req.extend(vec![b'x'; 2 * 1024 * 1024]);
    big.send(&req).await;
    let start = std::time::Instant::now();
    loop {
        let now = info_field(&mut r, "used_memory").await;
        if now >= before + 2 * 1024 * 1024 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "used_memory {now} never counted the 2 MB buffer (was {before})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Closing the client gives it back.
    drop(big);
    loop {
        let now = info_field(&mut r, "used_memory").await;
        if now < before + 1024 * 1024 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "used_memory {now} kept the closed client's buffer"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    node.stop().await;
}

#[tokio::test]
async fn pubsub_messages_waiting_for_a_slow_subscriber_count_in_used_memory() {
    let node = TestNode::start_with(|c| {
        c.client_output_buffer_limit[2] = Default::default();
    })
    .await;
    let mut r = node.raw().await;
    // A subscriber that does not read: messages queue up for it.
    let mut sub = node.raw().await;
    let subscribed = sub.cmd(&[b"SUBSCRIBE", b"ch"]).await;
    assert!(subscribed.starts_with(b"*3"), "{subscribed:?}");
    let before = info_field(&mut r, "used_memory").await;
    // 32 MB: loopback socket buffers absorb several MB, the rest must queue.
    let payload = vec![b'm'; 256 * 1024];
    for _ in 0..128 {
        let n = r.cmd(&[b"PUBLISH", b"ch", &payload]).await;
        assert_eq!(n, b":1\r\n");
    }
    let queued = info_field(&mut r, "used_memory").await;
    assert!(
        queued >= before + 8 * 1024 * 1024,
        "used_memory {queued} does not count the queued messages (was {before})"
    );
    // Reading them all gives the memory back.
    let mut got = 0usize;
    let mut chunk = vec![0u8; 1 << 16];
    while got < 128 * payload.len() {
        let n = tokio::time::timeout(WAIT, sub.stream.read(&mut chunk))
            .await
            .expect("messages in time")
            .expect("read");
        assert!(n > 0, "subscriber closed");
        got += n;
    }
    let start = std::time::Instant::now();
    loop {
        let now = info_field(&mut r, "used_memory").await;
        if now < before + 512 * 1024 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "used_memory {now} kept delivered messages (was {before})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    node.stop().await;
}
