//! Persistence through a real node, against every compiled backend: a
//! model-based run with restarts, LOADING, memory as a cache over disk,
//! expiry across restarts, structural commands, refusal of foreign data
//! directories, durability of `appendfsync always` replies.
mod common;

use common::{TestNode, WAIT};
use rand::{Rng, SeedableRng, rngs::StdRng};
use redis::AsyncCommands;
use shoal::Config;
use shoal::persist::Kind;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// The compiled backends; empty (and the tests skip, saying so) in a build
/// without the persistence features.
fn backends() -> Vec<Kind> {
    let v = Kind::compiled();
    if v.is_empty() {
        eprintln!("skipped: no persistence backend compiled in (features persistence-sled/redb)");
    }
    v
}

async fn start(kind: Kind, dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestNode {
    let node = TestNode::start_with(|c| {
        c.persistence = kind;
        c.dir = dir.to_string_lossy().into_owned();
        tweak(c);
    })
    .await;
    wait_loaded(&node).await;
    node
}

async fn info_persistence(c: &mut redis::aio::MultiplexedConnection) -> String {
    redis::cmd("INFO")
        .arg("persistence")
        .query_async(c)
        .await
        .expect("INFO persistence")
}

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

async fn wait_loaded(node: &TestNode) {
    let mut c = node.client().await;
    let start = Instant::now();
    loop {
        let info = info_persistence(&mut c).await;
        if field(&info, "loading") == Some("0") {
            return;
        }
        assert!(start.elapsed() < WAIT, "still loading after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a database holds, in a comparable form.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Str(Vec<u8>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    List(Vec<Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    ZSet(BTreeMap<Vec<u8>, i64>),
}

type Model = Vec<BTreeMap<String, Val>>;

async fn dump(c: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<Val> {
    let t: String = redis::cmd("TYPE").arg(key).query_async(c).await.ok()?;
    Some(match t.as_str() {
        "none" => return None,
        "string" => Val::Str(c.get(key).await.ok()?),
        "hash" => Val::Hash(c.hgetall(key).await.ok()?),
        "list" => Val::List(c.lrange(key, 0, -1).await.ok()?),
        "set" => Val::Set(c.smembers(key).await.ok()?),
        "zset" => {
            let v: Vec<(Vec<u8>, i64)> = c.zrange_withscores(key, 0, -1).await.ok()?;
            Val::ZSet(v.into_iter().collect())
        }
        other => panic!("unexpected type {other} of {key}"),
    })
}

/// Every key of the model has its value on the node, and nothing else
/// exists: DBSIZE matches, or, when memory is a cache over disk (DBSIZE
/// counts what is in memory), every other possible key name is absent.
async fn check(node: &TestNode, model: &Model, when: &str, cache: bool) {
    let mut c = node.client().await;
    for (db, keys) in model.iter().enumerate() {
        run(&mut c, redis::cmd("SELECT").arg(db)).await;
        if !cache {
            let size = run(&mut c, &redis::cmd("DBSIZE")).await;
            assert_eq!(
                size,
                redis::Value::Int(keys.len() as i64),
                "{when}: DBSIZE of db {db}"
            );
        }
        for (k, v) in keys {
            assert_eq!(
                dump(&mut c, k).await.as_ref(),
                Some(v),
                "{when}: db {db} key {k}"
            );
        }
        if cache {
            for prefix in ["s", "h", "l", "t", "z", "i"] {
                for n in 0..12 {
                    let k = format!("{prefix}:{n}");
                    if !keys.contains_key(&k) {
                        assert_eq!(
                            dump(&mut c, &k).await,
                            None,
                            "{when}: db {db} key {k} should not exist"
                        );
                    }
                }
            }
        }
    }
}

/// Runs `cmd`; an OOM (dirty data waiting for the writer cannot be evicted
/// yet, which happens at the tiny cap of the cache variant) is retried.
async fn run(c: &mut redis::aio::MultiplexedConnection, cmd: &redis::Cmd) -> redis::Value {
    let start = Instant::now();
    loop {
        match cmd.query_async::<redis::Value>(c).await {
            Ok(v) => return v,
            Err(e) if e.to_string().contains("OOM") && start.elapsed() < WAIT => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("{:?}: {e}", cmd.args_iter().collect::<Vec<_>>()),
        }
    }
}

async fn read_throughs(c: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info = info_persistence(c).await;
    field(&info, "persistence_read_through")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Random writes of every type against a map model, with restarts (a
/// graceful stop writes everything), SAVE, FLUSHDB, SWAPDB and expiry.
/// With `cache`, maxmemory is tiny so most keys live only on disk and every
/// read goes through eviction captures, read-through and the queued
/// FLUSH/SWAPDB translation.
async fn model_run(kind: Kind, seed: u64, cache: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model: Model = vec![BTreeMap::new(); 3];
    let tweak = move |c: &mut Config| {
        if cache {
            c.maxmemory = 1024 * 1024 + 32 * 1024;
            c.maxmemory_policy = "allkeys-random".into();
            c.keyspace_shards = 4;
        }
    };
    let mut node = start(kind, dir.path(), tweak).await;
    let mut c = node.client().await;
    let mut db = 0usize;
    let mut restarts = 0;
    let mut total_reads = 0;
    let pad = if cache { 1000 } else { 0 };
    for step in 0..1500 {
        let n = rng.random_range(0..12);
        let mut val = format!("v{}", rng.random_range(0..1000)).into_bytes();
        val.resize(val.len() + pad, b'.');
        let field = format!("f{}", rng.random_range(0..8)).into_bytes();
        let roll = rng.random_range(0..1000);
        let m = &mut model[db];
        match roll {
            0..=149 => {
                let k = format!("s:{n}");
                run(&mut c, redis::cmd("SET").arg(&k).arg(&val)).await;
                m.insert(k, Val::Str(val));
            }
            150..=229 => {
                let k = format!("h:{n}");
                run(&mut c, redis::cmd("HSET").arg(&k).arg(&field).arg(&val)).await;
                match m.entry(k).or_insert_with(|| Val::Hash(BTreeMap::new())) {
                    Val::Hash(h) => {
                        h.insert(field, val);
                    }
                    other => panic!("model type {other:?}"),
                }
            }
            230..=269 => {
                let k = format!("h:{n}");
                run(&mut c, redis::cmd("HDEL").arg(&k).arg(&field)).await;
                if let Some(Val::Hash(h)) = m.get_mut(&k) {
                    h.remove(&field);
                    if h.is_empty() {
                        m.remove(&k);
                    }
                }
            }
            270..=359 => {
                let k = format!("l:{n}");
                run(&mut c, redis::cmd("RPUSH").arg(&k).arg(&val)).await;
                match m.entry(k).or_insert_with(|| Val::List(Vec::new())) {
                    Val::List(l) => l.push(val),
                    other => panic!("model type {other:?}"),
                }
            }
            360..=399 => {
                let k = format!("l:{n}");
                run(&mut c, redis::cmd("LPOP").arg(&k)).await;
                if let Some(Val::List(l)) = m.get_mut(&k) {
                    l.remove(0);
                    if l.is_empty() {
                        m.remove(&k);
                    }
                }
            }
            400..=479 => {
                let k = format!("t:{n}");
                run(&mut c, redis::cmd("SADD").arg(&k).arg(&val)).await;
                match m.entry(k).or_insert_with(|| Val::Set(BTreeSet::new())) {
                    Val::Set(s) => {
                        s.insert(val);
                    }
                    other => panic!("model type {other:?}"),
                }
            }
            480..=559 => {
                let k = format!("z:{n}");
                let score = rng.random_range(-50..50i64);
                run(&mut c, redis::cmd("ZADD").arg(&k).arg(score).arg(&field)).await;
                match m.entry(k).or_insert_with(|| Val::ZSet(BTreeMap::new())) {
                    Val::ZSet(z) => {
                        z.insert(field, score);
                    }
                    other => panic!("model type {other:?}"),
                }
            }
            560..=639 => {
                let k = format!("i:{n}");
                let by = rng.random_range(-5..20i64);
                let old = match m.get(&k) {
                    Some(Val::Str(v)) => String::from_utf8_lossy(v).parse::<i64>().expect("int"),
                    _ => 0,
                };
                let got = run(&mut c, redis::cmd("INCRBY").arg(&k).arg(by)).await;
                assert_eq!(got, redis::Value::Int(old + by), "INCRBY {k} from {old}");
                m.insert(k, Val::Str((old + by).to_string().into_bytes()));
            }
            640..=719 => {
                let prefix = ["s", "h", "l", "t", "z", "i"][rng.random_range(0..6)];
                let k = format!("{prefix}:{n}");
                run(&mut c, redis::cmd("DEL").arg(&k)).await;
                m.remove(&k);
            }
            720..=739 => {
                // An expiry in the past deletes through the expiry path.
                let k = format!("s:{n}");
                run(&mut c, redis::cmd("PEXPIREAT").arg(&k).arg(1)).await;
                m.remove(&k);
            }
            740..=759 => {
                // RENAME moves a key between shards in one command.
                let (from, to) = (format!("s:{n}"), format!("s:{}", rng.random_range(0..12)));
                if m.contains_key(&from) {
                    run(&mut c, redis::cmd("RENAME").arg(&from).arg(&to)).await;
                    if let Some(v) = m.remove(&from) {
                        m.insert(to, v);
                    }
                }
            }
            760..=799 => {
                // A long TTL survives restarts.
                let k = format!("s:{n}");
                run(
                    &mut c,
                    redis::cmd("SET").arg(&k).arg(&val).arg("PX").arg(3_600_000),
                )
                .await;
                m.insert(k, Val::Str(val));
            }
            800..=899 => {
                db = rng.random_range(0..3);
                run(&mut c, redis::cmd("SELECT").arg(db)).await;
            }
            900..=919 | 950..=974 => {
                run(&mut c, &redis::cmd("SAVE")).await;
            }
            920..=929 => {
                run(&mut c, &redis::cmd("FLUSHDB")).await;
                m.clear();
            }
            930..=949 => {
                let (a, b) = (rng.random_range(0..3), rng.random_range(0..3));
                run(&mut c, redis::cmd("SWAPDB").arg(a).arg(b)).await;
                model.swap(a, b);
            }
            _ => {
                total_reads += read_throughs(&mut c).await;
                node.stop().await;
                node = start(kind, dir.path(), tweak).await;
                restarts += 1;
                let when = format!("{kind:?} seed {seed} cache {cache} restart at step {step}");
                check(&node, &model, &when, cache).await;
                c = node.client().await;
                run(&mut c, redis::cmd("SELECT").arg(db)).await;
            }
        }
        if cache && step % 100 == 99 {
            let when = format!("{kind:?} seed {seed} cache step {step}");
            check(&node, &model, &when, cache).await;
            run(&mut c, redis::cmd("SELECT").arg(db)).await;
        }
    }
    assert!(restarts > 10, "only {restarts} restarts");
    total_reads += read_throughs(&mut c).await;
    if cache {
        assert!(
            total_reads > 50,
            "the cache variant read through only {total_reads} times"
        );
    }
    node.stop().await;
    let node = start(kind, dir.path(), tweak).await;
    check(
        &node,
        &model,
        &format!("{kind:?} seed {seed} cache {cache} final"),
        cache,
    )
    .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_with_restarts_on_every_backend() {
    for kind in backends() {
        for seed in [1, 2] {
            model_run(kind, seed, false).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_as_a_cache_over_disk_on_every_backend() {
    for kind in backends() {
        model_run(kind, 3, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_answers_loading_until_done_and_node_id_survives() {
    for kind in backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = start(kind, dir.path(), |_| {}).await;
        let mut c = node.client().await;
        for i in 0..2000 {
            let _: () = c.set(format!("k{i}"), i).await.expect("SET");
        }
        let id1 = field(&info_persistence(&mut c).await, "persistence_node_id")
            .expect("node id")
            .to_string();
        assert_eq!(id1.len(), 40, "{id1}");
        node.stop().await;
        // 2000 keys at 1 ms each: two seconds of loading.
        let node = TestNode::start_with(|c| {
            c.persistence = kind;
            c.dir = dir.path().to_string_lossy().into_owned();
            c.key_load_delay = 1000;
        })
        .await;
        let mut c = node.client().await;
        let mut raw = node.raw().await;
        let got = raw.cmd(&[b"GET", b"k1"]).await;
        assert_eq!(got, b"-LOADING Redis is loading the dataset in memory\r\n");
        let info = info_persistence(&mut c).await;
        assert_eq!(field(&info, "loading"), Some("1"), "{info}");
        wait_loaded(&node).await;
        let v: Option<i64> = c.get("k1999").await.expect("GET after loading");
        assert_eq!(v, Some(1999));
        let info = info_persistence(&mut c).await;
        assert_eq!(field(&info, "persistence_node_id"), Some(id1.as_str()));
        assert_eq!(field(&info, "loading_loaded_keys"), Some("2000"));
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_three_times_maxmemory_stays_readable() {
    const KEYS: usize = 30_000;
    for kind in backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = start(kind, dir.path(), |c| {
            c.maxmemory = 4 * 1024 * 1024;
            c.maxmemory_policy = "allkeys-lru".into();
        })
        .await;
        let mut c = node.client().await;
        let value = vec![b'x'; 400];
        // ~12 MB of values: three times the cap.
        for i in 0..KEYS {
            let mut v = value.clone();
            v.extend_from_slice(i.to_string().as_bytes());
            let _: () = c.set(format!("key:{i}"), v).await.expect("SET");
        }
        let info: String = redis::cmd("INFO")
            .arg("all")
            .query_async(&mut c)
            .await
            .expect("INFO");
        let evicted: u64 = field(&info, "evicted_keys")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            evicted > KEYS as u64 / 2,
            "{kind:?}: only {evicted} evicted: the test did not exceed memory"
        );
        let used: u64 = field(&info, "used_memory")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            used <= 4 * 1024 * 1024 * 105 / 100,
            "{kind:?}: used_memory {used} over the cap"
        );
        for i in (0..KEYS).step_by(7) {
            let got: Option<Vec<u8>> = c.get(format!("key:{i}")).await.expect("GET");
            let mut want = value.clone();
            want.extend_from_slice(i.to_string().as_bytes());
            assert_eq!(got.as_deref(), Some(&want[..]), "{kind:?}: key:{i} lost");
        }
        // Deleted and overwritten keys that were evicted stay deleted / new.
        let _: i64 = c.del("key:3").await.expect("DEL");
        let _: () = c.set("key:5", "new").await.expect("SET");
        for i in (0..KEYS).step_by(13) {
            let _: Option<Vec<u8>> = c.get(format!("key:{i}")).await.expect("GET");
        }
        let gone: Option<Vec<u8>> = c.get("key:3").await.expect("GET");
        assert_eq!(gone, None, "{kind:?}: a deleted key came back");
        let new: Option<String> = c.get("key:5").await.expect("GET");
        assert_eq!(new.as_deref(), Some("new"));
        node.stop().await;
        // After a restart (loading stops at the cap), still every key.
        let node = start(kind, dir.path(), |c| {
            c.maxmemory = 4 * 1024 * 1024;
            c.maxmemory_policy = "allkeys-lru".into();
        })
        .await;
        let mut c = node.client().await;
        for i in (1..KEYS).step_by(11) {
            let got: Option<Vec<u8>> = c.get(format!("key:{i}")).await.expect("GET");
            if i == 5 {
                assert_eq!(got.as_deref(), Some(&b"new"[..]));
                continue;
            }
            let mut want = value.clone();
            want.extend_from_slice(i.to_string().as_bytes());
            assert_eq!(
                got.as_deref(),
                Some(&want[..]),
                "{kind:?}: key:{i} lost after restart"
            );
        }
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_are_not_resurrected_and_ttls_survive() {
    for kind in backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = start(kind, dir.path(), |_| {}).await;
        let mut c = node.client().await;
        let _: () = redis::cmd("SET")
            .arg("short")
            .arg("v")
            .arg("PX")
            .arg(300)
            .query_async(&mut c)
            .await
            .expect("SET");
        let _: () = redis::cmd("SET")
            .arg("long")
            .arg("v")
            .arg("EX")
            .arg(1000)
            .query_async(&mut c)
            .await
            .expect("SET");
        let _: () = redis::cmd("SAVE").query_async(&mut c).await.expect("SAVE");
        node.stop().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let node = start(kind, dir.path(), |_| {}).await;
        let mut c = node.client().await;
        let short: Option<String> = c.get("short").await.expect("GET");
        assert_eq!(short, None, "{kind:?}: an expired key came back");
        let ttl: i64 = c.ttl("long").await.expect("TTL");
        assert!((990..=1000).contains(&ttl), "{kind:?}: TTL {ttl}");
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appendfsync_always_acknowledges_after_the_write_is_durable() {
    for kind in backends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = start(kind, dir.path(), |c| {
            c.appendfsync = shoal::persist::Fsync::Always
        })
        .await;
        let mut c = node.client().await;
        for i in 0..200 {
            let _: () = c.set(format!("a{i}"), i).await.expect("SET");
            // Acknowledged means written and synced: nothing is pending and
            // nothing changed since the last durable write.
            let info = info_persistence(&mut c).await;
            assert_eq!(
                field(&info, "persistence_pending_keys"),
                Some("0"),
                "{info}"
            );
            assert_eq!(
                field(&info, "rdb_changes_since_last_save"),
                Some("0"),
                "{info}"
            );
        }
        let info = info_persistence(&mut c).await;
        assert_eq!(
            field(&info, "rdb_changes_since_last_save"),
            Some("0"),
            "{info}"
        );
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_another_backend_or_version_is_refused() {
    let kinds = backends();
    if kinds.is_empty() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(kinds[0], dir.path(), |_| {}).await;
    node.stop().await;
    if let Some(&other) = kinds.get(1) {
        let r = shoal::Node::start(Config {
            port: 0,
            persistence: other,
            dir: dir.path().to_string_lossy().into_owned(),
            ..Config::default()
        })
        .await;
        let e = r.expect_err("another backend's directory must be refused");
        let msg = e.to_string();
        assert!(
            msg.contains(kinds[0].name()) && msg.contains(other.name()),
            "{msg}"
        );
    }
    // A future format version.
    let marker = dir.path().join("SHOAL-FORMAT");
    let text = std::fs::read_to_string(&marker).expect("marker");
    std::fs::write(
        &marker,
        text.replace("shoal-data-format 1", "shoal-data-format 999"),
    )
    .expect("write");
    let r = shoal::Node::start(Config {
        port: 0,
        persistence: kinds[0],
        dir: dir.path().to_string_lossy().into_owned(),
        ..Config::default()
    })
    .await;
    let msg = r.expect_err("a newer format must be refused").to_string();
    assert!(msg.contains("999"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_lastsave_and_bgsave_without_persistence_say_so() {
    let node = TestNode::start().await;
    let mut c = node.client().await;
    let e = redis::cmd("SAVE")
        .query_async::<()>(&mut c)
        .await
        .expect_err("SAVE");
    assert!(e.to_string().contains("persistence is off"), "{e}");
    let last: i64 = redis::cmd("LASTSAVE")
        .query_async(&mut c)
        .await
        .expect("LASTSAVE");
    assert!(last > 1_700_000_000);
    node.stop().await;
    let Some(&kind) = backends().first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(kind, dir.path(), |_| {}).await;
    let mut c = node.client().await;
    let before: i64 = redis::cmd("LASTSAVE")
        .query_async(&mut c)
        .await
        .expect("LASTSAVE");
    let _: () = c.set("k", "v").await.expect("SET");
    let started: String = redis::cmd("BGSAVE")
        .query_async(&mut c)
        .await
        .expect("BGSAVE");
    assert_eq!(started, "Background saving started");
    let _: () = redis::cmd("SAVE").query_async(&mut c).await.expect("SAVE");
    let after: i64 = redis::cmd("LASTSAVE")
        .query_async(&mut c)
        .await
        .expect("LASTSAVE");
    assert!(after >= before);
    let info = info_persistence(&mut c).await;
    assert_eq!(
        field(&info, "rdb_changes_since_last_save"),
        Some("0"),
        "{info}"
    );
    assert_eq!(field(&info, "aof_enabled"), Some("1"), "{info}");
    node.stop().await;
}
