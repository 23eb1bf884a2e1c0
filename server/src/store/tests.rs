//! Model-based test of the store: random operations against a HashMap model.
//!
//! Operations include writes with and without expiry, deletes, clock moves,
//! active expiry cycles, SWAPDB and FLUSHALL; after every step, every key the
//! model knows is checked against the store (value, TTL, existence), and the
//! key counts must agree once expired keys are reclaimed.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Op {
    Set {
        db: usize,
        key: u8,
        val: u8,
        ttl: Option<u16>,
    },
    SetKeepTtl {
        db: usize,
        key: u8,
        val: u8,
    },
    Del {
        db: usize,
        key: u8,
    },
    Expire {
        db: usize,
        key: u8,
        ttl: u16,
    },
    Persist {
        db: usize,
        key: u8,
    },
    Append {
        db: usize,
        key: u8,
        len: u8,
    },
    Advance(u16),
    ActiveExpire,
    SwapDb,
    FlushAll,
}

fn op() -> impl Strategy<Value = Op> {
    let db = 0..2usize;
    let key = 0..40u8;
    prop_oneof![
        4 => (db.clone(), key.clone(), any::<u8>(), proptest::option::of(1..2000u16))
            .prop_map(|(db, key, val, ttl)| Op::Set { db, key, val, ttl }),
        1 => (db.clone(), key.clone(), any::<u8>()).prop_map(|(db, key, val)| Op::SetKeepTtl { db, key, val }),
        2 => (db.clone(), key.clone()).prop_map(|(db, key)| Op::Del { db, key }),
        1 => (db.clone(), key.clone(), 1..2000u16).prop_map(|(db, key, ttl)| Op::Expire { db, key, ttl }),
        1 => (db.clone(), key.clone()).prop_map(|(db, key)| Op::Persist { db, key }),
        1 => (db, key, 0..40u8).prop_map(|(db, key, len)| Op::Append { db, key, len }),
        2 => (0..1500u16).prop_map(Op::Advance),
        1 => Just(Op::ActiveExpire),
        1 => Just(Op::SwapDb),
        1 => Just(Op::FlushAll),
    ]
}

/// The model: per db, key -> (value, absolute expiry ms or 0).
type Model = Vec<HashMap<Vec<u8>, (Vec<u8>, u64)>>;

fn key_name(k: u8) -> Vec<u8> {
    // Mix short (inline) and long (heap) keys.
    if k.is_multiple_of(3) {
        format!("a-long-key-name-that-does-not-fit-inline-{k}").into_bytes()
    } else {
        format!("k{k}").into_bytes()
    }
}

fn live(model: &Model, db: usize, key: &[u8], now: u64) -> Option<(Vec<u8>, u64)> {
    model[db]
        .get(key)
        .filter(|(_, at)| *at == 0 || now <= *at)
        .cloned()
}

fn check(store: &Store, model: &Model, now: u64) -> Result<(), TestCaseError> {
    for (db, m) in model.iter().enumerate() {
        let ks = store.db(db);
        for k in 0..40u8 {
            let key = key_name(k);
            let want = live(model, db, &key, now);
            let (h, mut shard) = ks.lock(&key);
            let got = shard.lookup(h, &key, now).map(|i| {
                let e = shard.entry(i);
                (
                    e.value
                        .as_str()
                        .map(|s| s.as_slice().to_vec())
                        .unwrap_or_default(),
                    e.expire_at().unwrap_or(0),
                )
            });
            prop_assert_eq!(
                got,
                want,
                "db {} key {:?}",
                db,
                String::from_utf8_lossy(&key)
            );
        }
        let live_count = m.values().filter(|(_, at)| *at == 0 || now <= *at).count();
        prop_assert!(ks.len() >= live_count);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        let clock = ManualClock::new(1_000_000);
        let store = Store::new(StoreConfig { databases: 2, shards: 4 }, clock.clone());
        let mut model: Model = vec![HashMap::new(), HashMap::new()];
        for op in ops {
            let now = clock.now_ms();
            match op {
                Op::Set { db, key, val, ttl } => {
                    let k = key_name(key);
                    let v = vec![val; (val % 50) as usize];
                    let at = ttl.map(|t| now + t as u64).unwrap_or(0);
                    let ks = store.db(db);
                    let (h, mut s) = ks.lock(&k);
                    s.set(h, &k, Value::str(&v), Ttl::At(at), now);
                    model[db].insert(k, (v, at));
                }
                Op::SetKeepTtl { db, key, val } => {
                    let k = key_name(key);
                    let v = vec![val; 3];
                    let at = live(&model, db, &k, now).map(|(_, at)| at).unwrap_or(0);
                    let ks = store.db(db);
                    let (h, mut s) = ks.lock(&k);
                    s.set(h, &k, Value::str(&v), Ttl::Keep, now);
                    model[db].insert(k, (v, at));
                }
                Op::Del { db, key } => {
                    let k = key_name(key);
                    let ks = store.db(db);
                    let (h, mut s) = ks.lock(&k);
                    let got = s.remove(h, &k, now).is_some();
                    let want = live(&model, db, &k, now).is_some();
                    model[db].remove(&k);
                    prop_assert_eq!(got, want);
                }
                Op::Expire { db, key, ttl } => {
                    let k = key_name(key);
                    let ks = store.db(db);
                    let (h, mut s) = ks.lock(&k);
                    if let Some(i) = s.lookup(h, &k, now) {
                        s.set_expire(i, now + ttl as u64);
                        if let Some(e) = model[db].get_mut(&k) {
                            e.1 = now + ttl as u64;
                        }
                    } else {
                        prop_assert!(live(&model, db, &k, now).is_none());
                        model[db].remove(&k);
                    }
                }
                Op::Persist { db, key } => {
                    let k = key_name(key);
                    let ks = store.db(db);
                    let (h, mut s) = ks.lock(&k);
                    if let Some(i) = s.lookup(h, &k, now) {
                        s.set_expire(i, 0);
                        if let Some(e) = model[db].get_mut(&k) {
                            e.1 = 0;
                        }
                    } else {
                        model[db].remove(&k);
                    }
                }
                Op::Append { db, key, len } => {
                    let k = key_name(key);
                    let more = vec![b'x'; len as usize];
                    let ks = store.db(db);
                    let (h, mut s) = ks.lock(&k);
                    match s.lookup(h, &k, now) {
                        Some(i) => {
                            s.value_mut(i, |v| {
                                if let Some(b) = v.as_str_mut() {
                                    b.extend(&more);
                                }
                            });
                            if let Some(e) = model[db].get_mut(&k) {
                                e.0.extend_from_slice(&more);
                            }
                        }
                        None => {
                            s.set(h, &k, Value::str(&more), Ttl::At(0), now);
                            model[db].insert(k, (more, 0));
                        }
                    }
                }
                Op::Advance(ms) => clock.advance(ms as u64),
                Op::ActiveExpire => {
                    store.active_expire_cycle(20, std::time::Duration::from_millis(50));
                }
                Op::SwapDb => {
                    store.swap_db(0, 1);
                    model.swap(0, 1);
                }
                Op::FlushAll => {
                    store.flush_all();
                    for m in model.iter_mut() {
                        m.clear();
                    }
                }
            }
            check(&store, &model, clock.now_ms())?;
        }
        // After enough active expiry, no expired key is left behind.
        let now = clock.now_ms();
        for _ in 0..200 {
            store.active_expire_cycle(20, std::time::Duration::from_millis(50));
        }
        for (db, m) in model.iter().enumerate() {
            let live_count = m.values().filter(|(_, at)| *at == 0 || now <= *at).count();
            prop_assert_eq!(store.db(db).len(), live_count, "db {} after active expiry", db);
        }
    }
}

#[test]
fn used_memory_returns_after_delete() {
    let clock = ManualClock::new(0);
    let store = Store::new(
        StoreConfig {
            databases: 1,
            shards: 4,
        },
        clock,
    );
    let base = store.used_memory();
    let ks = store.db(0);
    let big = vec![b'v'; 1000];
    for i in 0..10_000u32 {
        let k = format!("key:{i}");
        let (h, mut s) = ks.lock(k.as_bytes());
        s.set(h, k.as_bytes(), Value::str(&big), Ttl::At(0), 0);
    }
    let full = store.used_memory();
    assert!(full > base + 10_000 * 1000, "accounts for values: {full}");
    for i in 0..10_000u32 {
        let k = format!("key:{i}");
        let (h, mut s) = ks.lock(k.as_bytes());
        s.remove(h, k.as_bytes(), 0);
    }
    let after = store.used_memory();
    assert!(
        after < full / 10,
        "memory returned after deletes: {after} vs {full}"
    );
}
