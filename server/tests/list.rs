//! List command tests beyond the differential script: a 100k-element list
//! checked against a `VecDeque` model, moves onto expired keys, and
//! concurrent pushes and moves that must not lose or duplicate elements.
mod common;

use common::TestNode;
use redis::aio::MultiplexedConnection;
use shoal::store::ManualClock;
use std::collections::VecDeque;

/// Small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

async fn lrange(c: &mut MultiplexedConnection, key: &str, s: i64, e: i64) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(key)
        .arg(s)
        .arg(e)
        .query_async(c)
        .await
        .expect("LRANGE")
}

/// Redis's LRANGE window on the model.
fn model_range(m: &VecDeque<String>, s: i64, e: i64) -> Vec<String> {
    let len = m.len() as i64;
    let s = if s < 0 { len + s } else { s }.max(0);
    let e = if e < 0 { len + e } else { e };
    if s > e || s >= len {
        return Vec::new();
    }
    let e = e.min(len - 1);
    m.range(s as usize..=e as usize).cloned().collect()
}

async fn check_all(c: &mut MultiplexedConnection, key: &str, m: &VecDeque<String>) {
    let len: usize = redis::cmd("LLEN")
        .arg(key)
        .query_async(c)
        .await
        .expect("LLEN");
    assert_eq!(len, m.len());
    // In windows: one 100k-element reply is slow to decode in a debug build.
    let mut s = 0;
    while s < m.len() {
        let e = (s + 5000).min(m.len()) - 1;
        let part = lrange(c, key, s as i64, e as i64).await;
        assert!(part.iter().eq(m.range(s..=e)), "LRANGE {s} {e} differs");
        s = e + 1;
    }
}

#[tokio::test]
async fn big_list_matches_a_model() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let mut m: VecDeque<String> = VecDeque::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // 100k elements: values repeat (mod 97) so LREM/LPOS have work to do,
    // and some are long enough to live on the heap.
    for batch in 0..100 {
        let vals: Vec<String> = (0..1000)
            .map(|i| {
                let n = batch * 1000 + i;
                if n % 13 == 0 {
                    format!("long-element-{:040}", n % 97)
                } else {
                    format!("v{}", n % 97)
                }
            })
            .collect();
        let len: usize = redis::cmd("RPUSH")
            .arg("big")
            .arg(&vals)
            .query_async(&mut c)
            .await
            .unwrap();
        m.extend(vals);
        assert_eq!(len, m.len());
    }
    check_all(&mut c, "big", &m).await;

    for round in 0..300 {
        let len = m.len() as i64;
        match round % 8 {
            0 => {
                let i = rng.below(m.len() * 2) as i64 - len;
                let got: Option<String> = redis::cmd("LINDEX")
                    .arg("big")
                    .arg(i)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                let at = if i < 0 { len + i } else { i };
                let want = (0..len).contains(&at).then(|| m[at as usize].clone());
                assert_eq!(got, want, "LINDEX {i}");
            }
            1 => {
                let s = rng.below(m.len() + 10) as i64 - 5;
                let e = s + rng.below(300) as i64;
                let (s, e) = if round % 3 == 0 {
                    (s - len, e - len)
                } else {
                    (s, e)
                };
                assert_eq!(lrange(&mut c, "big", s, e).await, model_range(&m, s, e));
            }
            2 => {
                let i = rng.below(m.len());
                let v = format!("set{round}");
                let _: () = redis::cmd("LSET")
                    .arg("big")
                    .arg(i)
                    .arg(&v)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                m[i] = v;
            }
            3 => {
                let pivot = format!("v{}", rng.below(97));
                let after = rng.below(2) == 0;
                let v = format!("ins{round}");
                let got: i64 = redis::cmd("LINSERT")
                    .arg("big")
                    .arg(if after { "AFTER" } else { "BEFORE" })
                    .arg(&pivot)
                    .arg(&v)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                match m.iter().position(|x| *x == pivot) {
                    Some(p) => {
                        m.insert(p + after as usize, v);
                        assert_eq!(got, m.len() as i64);
                    }
                    None => assert_eq!(got, -1),
                }
            }
            4 => {
                let v = format!("v{}", rng.below(97));
                let count = rng.below(7) as i64 - 3;
                let got: usize = redis::cmd("LREM")
                    .arg("big")
                    .arg(count)
                    .arg(&v)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                let limit = if count == 0 {
                    usize::MAX
                } else {
                    count.unsigned_abs() as usize
                };
                let mut removed = 0;
                if count < 0 {
                    let mut i = m.len();
                    while i > 0 && removed < limit {
                        i -= 1;
                        if m[i] == v {
                            m.remove(i);
                            removed += 1;
                        }
                    }
                } else {
                    let mut i = 0;
                    while i < m.len() && removed < limit {
                        if m[i] == v {
                            m.remove(i);
                            removed += 1;
                        } else {
                            i += 1;
                        }
                    }
                }
                assert_eq!(got, removed, "LREM {count} {v}");
            }
            5 => {
                // Trim a little from both ends (the list stays large).
                let s = rng.below(50) as i64;
                let e = -(rng.below(50) as i64) - 1;
                let _: () = redis::cmd("LTRIM")
                    .arg("big")
                    .arg(s)
                    .arg(e)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                m = model_range(&m, s, e).into();
            }
            6 => {
                let n = rng.below(20);
                let front = rng.below(2) == 0;
                let got: Vec<String> = redis::cmd(if front { "LPOP" } else { "RPOP" })
                    .arg("big")
                    .arg(n)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                let want: Vec<String> = (0..n)
                    .filter_map(|_| if front { m.pop_front() } else { m.pop_back() })
                    .collect();
                assert_eq!(got, want);
            }
            _ => {
                let v = format!("v{}", rng.below(97));
                let rank = if rng.below(2) == 0 { 1 } else { -1 };
                let got: Vec<usize> = redis::cmd("LPOS")
                    .arg("big")
                    .arg(&v)
                    .arg("RANK")
                    .arg(rank)
                    .arg("COUNT")
                    .arg(5)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                let idx = m
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| **x == v)
                    .map(|(i, _)| i);
                let want: Vec<usize> = if rank > 0 {
                    idx.take(5).collect()
                } else {
                    idx.rev().take(5).collect()
                };
                assert_eq!(got, want, "LPOS {v} RANK {rank}");
            }
        }
        if round % 50 == 49 {
            check_all(&mut c, "big", &m).await;
        }
    }
    check_all(&mut c, "big", &m).await;

    // Trimming to nothing deletes the key.
    let _: () = redis::cmd("LTRIM")
        .arg("big")
        .arg(1)
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    let exists: i64 = redis::cmd("EXISTS")
        .arg("big")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(exists, 0);
    node.stop().await;
}

#[tokio::test]
async fn moves_onto_an_expired_destination_start_a_new_list() {
    let clock = ManualClock::new(1_700_000_000_000);
    let node = TestNode::start_with_clock(clock.clone()).await;
    let mut c = node.client().await;
    let _: () = redis::cmd("RPUSH")
        .arg("src")
        .arg(&["a", "b"])
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("dst")
        .arg("string")
        .arg("PX")
        .arg(100)
        .query_async(&mut c)
        .await
        .unwrap();
    let err = redis::cmd("LMOVE")
        .arg(&["src", "dst", "LEFT", "LEFT"])
        .query_async::<String>(&mut c)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    clock.advance(200);
    let moved: String = redis::cmd("LMOVE")
        .arg(&["src", "dst", "LEFT", "LEFT"])
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(moved, "a");
    assert_eq!(lrange(&mut c, "dst", 0, -1).await, vec!["a"]);
    let ttl: i64 = redis::cmd("PTTL")
        .arg("dst")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(ttl, -1);
    // An expired source is missing: nothing moves.
    let _: () = redis::cmd("PEXPIRE")
        .arg("src")
        .arg(10)
        .query_async(&mut c)
        .await
        .unwrap();
    clock.advance(20);
    let none: Option<String> = redis::cmd("RPOPLPUSH")
        .arg(&["src", "dst"])
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(none, None);
    assert_eq!(lrange(&mut c, "dst", 0, -1).await, vec!["a"]);
    node.stop().await;
}

#[tokio::test]
async fn concurrent_moves_keep_every_element() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let total = 2000usize;
    let vals: Vec<String> = (0..total).map(|i| format!("e{i}")).collect();
    let _: () = redis::cmd("RPUSH")
        .arg("a")
        .arg(&vals)
        .query_async(&mut c)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..4usize {
        let mut c = node.client().await;
        tasks.push(tokio::spawn(async move {
            for i in 0..300usize {
                let (src, dst) = match (i + t) % 3 {
                    0 => ("a", "b"),
                    1 => ("b", "a"),
                    _ => ("a", "a"),
                };
                let _: Option<String> = redis::cmd("LMOVE")
                    .arg(&[src, dst, "RIGHT", "LEFT"])
                    .query_async(&mut c)
                    .await
                    .unwrap();
                let _: Option<(String, String)> = redis::cmd("BLPOP")
                    .arg(&[dst, "0"])
                    .query_async(&mut c)
                    .await
                    .unwrap();
                let _: i64 = redis::cmd("RPUSH")
                    .arg(&[src, "back"])
                    .query_async(&mut c)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every BLPOP was paired with an RPUSH of "back": the element count is
    // unchanged, and every original element still appears at most once.
    let mut left = lrange(&mut c, "a", 0, -1).await;
    left.extend(lrange(&mut c, "b", 0, -1).await);
    assert_eq!(left.len(), total);
    let mut seen = std::collections::HashSet::new();
    for v in left.iter().filter(|v| *v != "back") {
        assert!(seen.insert(v.clone()), "{v} duplicated");
        assert!(vals.contains(v));
    }
    node.stop().await;
}

#[tokio::test]
async fn packed_and_big_lists_answer_alike() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    for (key, limit) in [("small", "-5"), ("tiny", "1")] {
        let _: () = redis::cmd("CONFIG")
            .arg(&["SET", "list-max-listpack-size", limit])
            .query_async(&mut c)
            .await
            .unwrap();
        for i in 0..50 {
            let _: () = redis::cmd(if i % 2 == 0 { "LPUSH" } else { "RPUSH" })
                .arg(key)
                .arg(format!("x{i}"))
                .query_async(&mut c)
                .await
                .unwrap();
        }
    }
    assert_eq!(
        lrange(&mut c, "small", 0, -1).await,
        lrange(&mut c, "tiny", 0, -1).await
    );
    let enc: String = redis::cmd("OBJECT")
        .arg(&["ENCODING", "tiny"])
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(enc, "quicklist");
    node.stop().await;
}
