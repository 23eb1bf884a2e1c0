//! One test suite run against every compiled backend.
//!
//! Each case is a function of the backend [`Kind`]; `per_backend!` generates
//! one `#[test]` per case and compiled backend (`on_sled::…`, `on_redb::…`),
//! so a failure names the backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// A build without backends runs only the backend-independent tests below.
#![cfg_attr(
    not(any(feature = "persistence-sled", feature = "persistence-redb")),
    allow(dead_code, unused_imports)
)]

use super::marker::{self, MARKER_FILE, NODE_ID_FILE};
use super::portable;
use super::{Backend, Kind, Op, PersistError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::Path;
use tempfile::TempDir;

type Record = (u32, Vec<u8>, Vec<u8>);

fn open(kind: Kind, dir: &Path) -> Box<dyn Backend> {
    super::open(kind, dir)
        .unwrap_or_else(|e| panic!("open {kind:?} {}: {e}", dir.display()))
        .expect("a backend for a non-none kind")
}

fn put(db: u32, key: &str, record: &str) -> Op {
    Op::Put {
        db,
        key: key.as_bytes().to_vec(),
        record: record.as_bytes().to_vec(),
    }
}

fn del(db: u32, key: &str) -> Op {
    Op::Del {
        db,
        key: key.as_bytes().to_vec(),
    }
}

fn get(b: &dyn Backend, db: u32, key: &str) -> Option<String> {
    b.get(db, key.as_bytes())
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

fn dump(b: &dyn Backend) -> Vec<Record> {
    let mut out = Vec::new();
    b.for_each(&mut |db, k, v| {
        out.push((db, k.to_vec(), v.to_vec()));
        true
    })
    .unwrap();
    out
}

/// `dump` with string keys and records, for readable assertions.
fn dump_str(b: &dyn Backend) -> Vec<(u32, String, String)> {
    dump(b)
        .into_iter()
        .map(|(db, k, v)| {
            (
                db,
                String::from_utf8(k).unwrap(),
                String::from_utf8(v).unwrap(),
            )
        })
        .collect()
}

fn rec(db: u32, k: &str, v: &str) -> (u32, String, String) {
    (db, k.to_string(), v.to_string())
}

/// The other compiled backend, or the same one in a one-backend build.
fn other_compiled(kind: Kind) -> Kind {
    Kind::compiled()
        .into_iter()
        .find(|k| *k != kind)
        .unwrap_or(kind)
}

/// A backend that is not `kind`, compiled or not (the marker check runs
/// before the engine is chosen, so it need not be compiled).
fn other_kind(kind: Kind) -> Kind {
    if kind == Kind::Sled {
        Kind::Redb
    } else {
        Kind::Sled
    }
}

macro_rules! per_backend {
    ($($case:ident),* $(,)?) => {
        #[cfg(feature = "persistence-sled")]
        mod on_sled {
            $( #[test] fn $case() { super::$case(super::Kind::Sled) } )*
        }
        #[cfg(feature = "persistence-redb")]
        mod on_redb {
            $( #[test] fn $case() { super::$case(super::Kind::Redb) } )*
        }
    };
}

per_backend!(
    put_get_overwrite_delete,
    ops_apply_in_order_within_a_batch,
    flushdb_clears_only_its_db,
    flushall_clears_everything,
    swapdb_swaps_and_twice_restores,
    for_each_orders_by_db_then_key_and_stops,
    len_and_is_empty,
    reopen_keeps_durable_applies,
    reopen_keeps_non_durable_after_sync,
    reopen_after_clean_drop_keeps_non_durable,
    model_random_ops_with_reopens,
    marker_written_on_first_open,
    marker_other_backend_is_refused,
    marker_other_version_is_refused,
    marker_garbage_is_corrupt,
    unmarked_non_empty_dir_is_refused,
    fresh_dir_with_only_node_id_opens,
    node_id_stable_across_calls_and_reopen,
    export_import_into_other_backend,
    export_refuses_db_reserved_for_end_frame,
    damaged_export_is_refused,
    export_dir_refuses_missing_dir,
    second_open_of_same_dir_fails_cleanly,
    reopen_right_after_drop,
    crash_keeps_durable_and_synced_batches,
    corrupt_engine_file_is_an_error,
);

fn put_get_overwrite_delete(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let b = open(kind, tmp.path());
    assert_eq!(b.kind(), kind);
    assert_eq!(get(&*b, 0, "k"), None);
    b.apply(&[put(0, "k", "v1"), put(1, "k", "other db")], false)
        .unwrap();
    assert_eq!(get(&*b, 0, "k").as_deref(), Some("v1"));
    assert_eq!(get(&*b, 1, "k").as_deref(), Some("other db"));
    b.apply(&[put(0, "k", "v2")], true).unwrap();
    assert_eq!(get(&*b, 0, "k").as_deref(), Some("v2"));
    b.apply(&[del(0, "k"), del(0, "never there")], false)
        .unwrap();
    assert_eq!(get(&*b, 0, "k"), None);
    assert_eq!(get(&*b, 1, "k").as_deref(), Some("other db"));
    // Empty keys and records, binary bytes, the last db.
    b.apply(
        &[
            put(2, "", ""),
            Op::Put {
                db: u32::MAX,
                key: vec![0xff, 0, 0xff],
                record: vec![0, 1, 2],
            },
        ],
        false,
    )
    .unwrap();
    assert_eq!(get(&*b, 2, "").as_deref(), Some(""));
    assert_eq!(
        b.get(u32::MAX, &[0xff, 0, 0xff]).unwrap(),
        Some(vec![0, 1, 2])
    );
    // An empty apply is fine either way.
    b.apply(&[], false).unwrap();
    b.apply(&[], true).unwrap();
    b.sync().unwrap();
    assert!(b.disk_bytes() > 0, "{kind:?} reports no disk usage");
}

fn ops_apply_in_order_within_a_batch(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let b = open(kind, tmp.path());
    b.apply(&[put(0, "old", "x")], false).unwrap();
    b.apply(
        &[
            put(0, "a", "1"),
            Op::FlushDb(0), // clears "old" and the "a" just put
            put(0, "b", "2"),
            put(1, "c", "3"),
            Op::SwapDb(0, 1), // b moves to 1, c to 0
            put(0, "d", "4"),
            del(1, "b"),
            put(1, "b", "5"),
            Op::SwapDb(1, 1), // no-op
        ],
        false,
    )
    .unwrap();
    assert_eq!(
        dump_str(&*b),
        vec![rec(0, "c", "3"), rec(0, "d", "4"), rec(1, "b", "5")]
    );
}

fn flushdb_clears_only_its_db(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let b = open(kind, tmp.path());
    b.apply(
        &[
            put(0, "a", "0"),
            put(1, "a", "1"),
            put(1, "", "empty key"),
            put(2, "a", "2"),
            put(u32::MAX - 1, "a", "m-1"),
            put(u32::MAX, "a", "m"),
        ],
        false,
    )
    .unwrap();
    b.apply(&[Op::FlushDb(1)], false).unwrap();
    assert_eq!(
        dump_str(&*b),
        vec![
            rec(0, "a", "0"),
            rec(2, "a", "2"),
            rec(u32::MAX - 1, "a", "m-1"),
            rec(u32::MAX, "a", "m")
        ]
    );
    // The last db's range has no upper bound; the one before must survive it.
    b.apply(&[Op::FlushDb(u32::MAX)], true).unwrap();
    assert_eq!(
        dump_str(&*b),
        vec![
            rec(0, "a", "0"),
            rec(2, "a", "2"),
            rec(u32::MAX - 1, "a", "m-1")
        ]
    );
    b.apply(&[Op::FlushDb(7)], false).unwrap(); // empty db: nothing to do
    assert_eq!(b.len().unwrap(), 3);
}

fn flushall_clears_everything(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let b = open(kind, tmp.path());
    let ops: Vec<Op> = (0..200)
        .map(|i| put(i % 5, &format!("k{i}"), "v"))
        .collect();
    b.apply(&ops, false).unwrap();
    b.apply(&[Op::FlushAll, put(3, "after", "v")], true)
        .unwrap();
    assert_eq!(dump_str(&*b), vec![rec(3, "after", "v")]);
    b.apply(&[Op::FlushAll], false).unwrap();
    assert_eq!(b.len().unwrap(), 0);
    assert!(dump(&*b).is_empty());
}

fn swapdb_swaps_and_twice_restores(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let b = open(kind, tmp.path());
    b.apply(
        &[
            put(0, "a", "0a"),
            put(0, "shared", "0s"),
            put(1, "b", "1b"),
            put(1, "shared", "1s"),
            put(2, "c", "2c"),
        ],
        false,
    )
    .unwrap();
    let before = dump_str(&*b);
    b.apply(&[Op::SwapDb(0, 1)], false).unwrap();
    assert_eq!(
        dump_str(&*b),
        vec![
            rec(0, "b", "1b"),
            rec(0, "shared", "1s"),
            rec(1, "a", "0a"),
            rec(1, "shared", "0s"),
            rec(2, "c", "2c"),
        ]
    );
    b.apply(&[Op::SwapDb(1, 0)], true).unwrap();
    assert_eq!(dump_str(&*b), before);
    // Swapping with an empty db moves everything; twice in one batch restores.
    b.apply(&[Op::SwapDb(2, 9)], false).unwrap();
    assert_eq!(get(&*b, 9, "c").as_deref(), Some("2c"));
    assert_eq!(get(&*b, 2, "c"), None);
    b.apply(
        &[
            Op::SwapDb(2, 9),
            Op::SwapDb(0, u32::MAX),
            Op::SwapDb(0, u32::MAX),
        ],
        false,
    )
    .unwrap();
    assert_eq!(dump_str(&*b), before);
}

fn for_each_orders_by_db_then_key_and_stops(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let b = open(kind, tmp.path());
    b.apply(
        &[
            put(2, "a", "x"),
            put(0, "b", "x"),
            put(0, "a", "x"),
            put(1, "", "x"),
            put(256, "a", "x"), // big-endian db: 256 sorts after 2
            put(0, "ab", "x"),
        ],
        false,
    )
    .unwrap();
    let order: Vec<(u32, String)> = dump_str(&*b).into_iter().map(|(d, k, _)| (d, k)).collect();
    let expected: Vec<(u32, String)> =
        [(0, "a"), (0, "ab"), (0, "b"), (1, ""), (2, "a"), (256, "a")]
            .into_iter()
            .map(|(d, k)| (d, k.to_string()))
            .collect();
    assert_eq!(order, expected);
    let mut seen = 0;
    b.for_each(&mut |_, _, _| {
        seen += 1;
        seen < 3
    })
    .unwrap();
    assert_eq!(seen, 3, "for_each must stop when f returns false");
}

fn len_and_is_empty(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let b = open(kind, tmp.path());
    assert_eq!(b.len().unwrap(), 0);
    assert!(b.is_empty().unwrap());
    b.apply(
        &[put(0, "a", "1"), put(0, "a", "2"), put(1, "a", "3")],
        false,
    )
    .unwrap();
    assert_eq!(b.len().unwrap(), 2);
    assert!(!b.is_empty().unwrap());
    b.apply(&[del(0, "a"), del(0, "zzz")], false).unwrap();
    assert_eq!(b.len().unwrap(), 1);
    b.apply(&[Op::FlushAll], false).unwrap();
    assert!(b.is_empty().unwrap());
}

fn reopen_keeps_durable_applies(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    {
        let b = open(kind, tmp.path());
        b.apply(&[put(0, "a", "1"), put(3, "b", "2")], true)
            .unwrap();
        b.apply(&[del(0, "a"), put(0, "c", "3")], true).unwrap();
    }
    let b = open(kind, tmp.path());
    assert_eq!(dump_str(&*b), vec![rec(0, "c", "3"), rec(3, "b", "2")]);
}

fn reopen_keeps_non_durable_after_sync(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    {
        let b = open(kind, tmp.path());
        for i in 0..50 {
            b.apply(&[put(i % 3, &format!("k{i}"), &format!("v{i}"))], false)
                .unwrap();
        }
        b.apply(&[Op::FlushDb(2)], false).unwrap();
        b.sync().unwrap();
    }
    let b = open(kind, tmp.path());
    assert_eq!(b.len().unwrap(), 34);
    assert_eq!(get(&*b, 1, "k49").as_deref(), Some("v49"));
    assert_eq!(get(&*b, 2, "k2"), None);
}

/// Both engines write out pending non-durable work when closed cleanly.
fn reopen_after_clean_drop_keeps_non_durable(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    {
        let b = open(kind, tmp.path());
        b.apply(&[put(0, "a", "1"), put(1, "b", "2")], false)
            .unwrap();
    }
    let b = open(kind, tmp.path());
    assert_eq!(dump_str(&*b), vec![rec(0, "a", "1"), rec(1, "b", "2")]);
}

/// Random Put/Del/FlushDb/FlushAll/SwapDb batches, syncs and reopens against
/// a BTreeMap model. `SHOAL_PERSIST_SEED` replays another seed.
fn model_random_ops_with_reopens(kind: Kind) {
    let seed: u64 = std::env::var("SHOAL_PERSIST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0001);
    eprintln!("model test {kind:?} seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = TempDir::new().unwrap();
    let mut b = open(kind, tmp.path());
    let mut model: BTreeMap<(u32, Vec<u8>), Vec<u8>> = BTreeMap::new();
    const DBS: [u32; 5] = [0, 1, 2, 3, u32::MAX];
    let keys: Vec<Vec<u8>> = (0..30u8)
        .map(|i| match i {
            0 => Vec::new(),
            1 => vec![0xff, 0xff],
            2 => vec![0],
            _ => format!("key{i}").into_bytes(),
        })
        .collect();
    let check_all = |b: &dyn Backend, model: &BTreeMap<(u32, Vec<u8>), Vec<u8>>, step: usize| {
        let want: Vec<Record> = model
            .iter()
            .map(|((db, k), v)| (*db, k.clone(), v.clone()))
            .collect();
        assert_eq!(
            dump(b),
            want,
            "{kind:?} seed {seed}: contents differ at op {step}"
        );
        assert_eq!(b.len().unwrap(), want.len() as u64, "seed {seed} op {step}");
    };
    let mut done = 0usize;
    let mut reopens = 0;
    while done < 3000 {
        let n = rng.random_range(1..=20);
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            let db = DBS[rng.random_range(0..DBS.len())];
            let key = keys[rng.random_range(0..keys.len())].clone();
            let op = match rng.random_range(0..100) {
                0..55 => {
                    let len = rng.random_range(0..40);
                    let record: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                    model.insert((db, key.clone()), record.clone());
                    Op::Put { db, key, record }
                }
                55..85 => {
                    model.remove(&(db, key.clone()));
                    Op::Del { db, key }
                }
                85..90 => {
                    model.retain(|(d, _), _| *d != db);
                    Op::FlushDb(db)
                }
                90..99 => {
                    let other = DBS[rng.random_range(0..DBS.len())];
                    model = model
                        .into_iter()
                        .map(|((d, k), v)| {
                            let d = if d == db {
                                other
                            } else if d == other {
                                db
                            } else {
                                d
                            };
                            ((d, k), v)
                        })
                        .collect();
                    Op::SwapDb(db, other)
                }
                _ => {
                    model.clear();
                    Op::FlushAll
                }
            };
            ops.push(op);
        }
        done += n;
        b.apply(&ops, rng.random_bool(0.1)).unwrap();
        for _ in 0..3 {
            let db = DBS[rng.random_range(0..DBS.len())];
            let key = &keys[rng.random_range(0..keys.len())];
            assert_eq!(
                b.get(db, key).unwrap().as_ref(),
                model.get(&(db, key.clone())),
                "{kind:?} seed {seed}: get({db}, {key:?}) at op {done}"
            );
        }
        match rng.random_range(0..100) {
            0..3 => {
                check_all(&*b, &model, done);
                drop(b);
                b = open(kind, tmp.path());
                reopens += 1;
                check_all(&*b, &model, done);
            }
            3..8 => b.sync().unwrap(),
            _ => {}
        }
    }
    check_all(&*b, &model, done);
    assert!(
        reopens > 0,
        "seed {seed} never reopened; pick another default"
    );
}

fn marker_written_on_first_open(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("nested").join("data");
    drop(open(kind, &dir));
    let text = std::fs::read_to_string(dir.join(MARKER_FILE)).unwrap();
    assert_eq!(
        text,
        format!("shoal-data-format 1\nbackend {}\n", kind.name())
    );
    assert!(!dir.join(format!("{MARKER_FILE}.tmp")).exists());
    drop(open(kind, &dir)); // and it is accepted
}

fn marker_other_backend_is_refused(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    drop(open(kind, tmp.path()));
    let other = other_kind(kind);
    // Through `open` when the other backend is compiled; the marker check
    // alone either way (`open` refuses an uncompiled backend before it).
    if Kind::compiled().contains(&other) {
        assert!(matches!(
            super::open(other, tmp.path()),
            Err(PersistError::BackendMismatch { .. })
        ));
    }
    match marker::check_or_create(tmp.path(), other) {
        Err(PersistError::BackendMismatch {
            dir,
            found,
            expected,
        }) => {
            assert_eq!(dir, tmp.path());
            assert_eq!(found, kind.name());
            assert_eq!(expected, other.name());
        }
        Err(e) => panic!("expected BackendMismatch, got {e}"),
        Ok(()) => panic!("{other:?} accepted a {kind:?} directory"),
    }
    // The directory is untouched and still opens with its own backend.
    drop(open(kind, tmp.path()));
}

fn marker_other_version_is_refused(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    drop(open(kind, tmp.path()));
    let m = tmp.path().join(MARKER_FILE);
    std::fs::write(
        &m,
        format!("shoal-data-format 999\nbackend {}\n", kind.name()),
    )
    .unwrap();
    match super::open(kind, tmp.path()) {
        Err(PersistError::Version {
            found, expected, ..
        }) => {
            assert_eq!(found, "999");
            assert_eq!(expected, marker::FORMAT_VERSION);
        }
        Err(e) => panic!("expected Version, got {e}"),
        Ok(_) => panic!("format 999 was opened"),
    }
    // The version is checked before the backend name.
    std::fs::write(&m, "shoal-data-format 2\nbackend rocks\n").unwrap();
    assert!(matches!(
        super::open(kind, tmp.path()),
        Err(PersistError::Version { .. })
    ));
}

fn marker_garbage_is_corrupt(kind: Kind) {
    for garbage in [
        &b"\x00\xffgarbage"[..],
        b"",
        b"hello\n",
        b"shoal-data-format one\nbackend sled\n",
        b"shoal-data-format 1\n",
        b"shoal-data-format 1\nbackend \n",
        b"shoal-data-format 1\nbackend sled\nbackend redb\n",
    ] {
        let tmp = TempDir::new().unwrap();
        drop(open(kind, tmp.path()));
        std::fs::write(tmp.path().join(MARKER_FILE), garbage).unwrap();
        match super::open(kind, tmp.path()) {
            Err(PersistError::Corrupt { dir, detail }) => {
                assert_eq!(dir, tmp.path());
                assert!(detail.contains(MARKER_FILE), "{detail}");
            }
            Err(e) => panic!("{garbage:?}: expected Corrupt, got {e}"),
            Ok(_) => panic!("{garbage:?}: opened"),
        }
    }
}

fn unmarked_non_empty_dir_is_refused(kind: Kind) {
    // A stray file, and an engine's file left without its marker.
    for name in ["notes.txt", "data.redb", "sled"] {
        let tmp = TempDir::new().unwrap();
        std::fs::write(tmp.path().join(name), b"someone's data").unwrap();
        match super::open(kind, tmp.path()) {
            Err(PersistError::Corrupt { detail, .. }) => {
                assert!(detail.contains(name), "{detail}");
            }
            Err(e) => panic!("expected Corrupt, got {e}"),
            Ok(_) => panic!("opened a non-empty directory without a marker"),
        }
        assert!(!tmp.path().join(MARKER_FILE).exists());
        assert_eq!(
            std::fs::read(tmp.path().join(name)).unwrap(),
            b"someone's data"
        );
    }
}

fn fresh_dir_with_only_node_id_opens(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let id = marker::node_id(tmp.path()).unwrap();
    // An interrupted marker write leaves a temporary file: still fresh.
    std::fs::write(tmp.path().join(format!("{MARKER_FILE}.tmp")), b"shoal-da").unwrap();
    drop(open(kind, tmp.path()));
    assert_eq!(marker::node_id(tmp.path()).unwrap(), id);
}

fn node_id_stable_across_calls_and_reopen(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let id = {
        let _b = open(kind, tmp.path());
        let id = marker::node_id(tmp.path()).unwrap();
        assert_eq!(id.len(), 40);
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_eq!(marker::node_id(tmp.path()).unwrap(), id);
        id
    };
    let _b = open(kind, tmp.path());
    assert_eq!(marker::node_id(tmp.path()).unwrap(), id);
    let other = TempDir::new().unwrap();
    assert_ne!(marker::node_id(other.path()).unwrap(), id);
    for bad in [&b"XYZ"[..], b"", &[b'A'; 40], &[b'a'; 41]] {
        std::fs::write(tmp.path().join(NODE_ID_FILE), bad).unwrap();
        match marker::node_id(tmp.path()) {
            Err(PersistError::Corrupt { detail, .. }) => assert!(detail.contains(NODE_ID_FILE)),
            other => panic!("{bad:?}: expected Corrupt, got {other:?}"),
        }
    }
}

/// Records covering the awkward shapes: empty key and record, binary,
/// several dbs, a record bigger than a typical buffer.
fn sample_records() -> Vec<Op> {
    let mut ops: Vec<Op> = (0..2500u32)
        .map(|i| Op::Put {
            db: i % 4,
            key: format!("key:{i}").into_bytes(),
            record: i.to_le_bytes().repeat((i % 7) as usize),
        })
        .collect();
    ops.push(put(9, "", ""));
    ops.push(Op::Put {
        db: u32::MAX - 1,
        key: vec![0, 0xff],
        record: vec![0xab; 100_000],
    });
    ops
}

fn export_import_into_other_backend(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let src_dir = tmp.path().join("src");
    let src = open(kind, &src_dir);
    src.apply(&sample_records(), true).unwrap();
    let want = dump(&*src);

    // Streams, into every compiled backend.
    let mut bytes = Vec::new();
    assert_eq!(
        portable::export(&*src, &mut bytes).unwrap(),
        want.len() as u64
    );
    assert!(bytes.starts_with(portable::HEADER));
    assert_eq!(
        portable::verify(&mut &bytes[..]).unwrap(),
        want.len() as u64
    );
    for target in Kind::compiled() {
        let dst_dir = tmp.path().join(format!("stream-{}", target.name()));
        let dst = open(target, &dst_dir);
        assert_eq!(
            portable::import(&*dst, &mut &bytes[..]).unwrap(),
            want.len() as u64
        );
        assert_eq!(dump(&*dst), want, "{kind:?} -> {target:?}");
    }
    drop(src);

    // Files, through the subcommands' entry points, into the other backend.
    let target = other_compiled(kind);
    let file = tmp.path().join("dump.shoal");
    assert_eq!(
        portable::export_dir(kind, &src_dir, &file).unwrap(),
        want.len() as u64
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "export is deterministic"
    );
    let dst_dir = tmp.path().join("dst");
    assert_eq!(
        portable::import_dir(target, &dst_dir, &file).unwrap(),
        want.len() as u64
    );
    let dst = open(target, &dst_dir);
    assert_eq!(dump(&*dst), want);
    drop(dst);

    // An empty backend exports a valid, empty file.
    let empty = open(kind, &tmp.path().join("empty"));
    let mut bytes = Vec::new();
    assert_eq!(portable::export(&*empty, &mut bytes).unwrap(), 0);
    assert_eq!(portable::verify(&mut &bytes[..]).unwrap(), 0);
}

fn export_refuses_db_reserved_for_end_frame(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let b = open(kind, tmp.path());
    b.apply(&[put(u32::MAX, "k", "v")], false).unwrap();
    let mut out = Vec::new();
    match portable::export(&*b, &mut out) {
        Err(PersistError::Export { detail, .. }) => assert!(detail.contains("reserved")),
        other => panic!("expected Export, got {other:?}"),
    }
}

fn damaged_export_is_refused(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let src = open(kind, &tmp.path().join("src"));
    src.apply(
        &[put(0, "a", "alpha"), put(1, "bb", ""), put(2, "", "gamma")],
        false,
    )
    .unwrap();
    let mut good = Vec::new();
    portable::export(&*src, &mut good).unwrap();
    drop(src);

    let refused = |bytes: &[u8], what: &str| match portable::verify(&mut &bytes[..]) {
        Err(PersistError::Export { .. }) => {}
        other => panic!("{what}: expected an Export error, got {other:?}"),
    };
    // Every truncation, every flipped bit of every byte, trailing garbage.
    for len in 0..good.len() {
        refused(&good[..len], &format!("truncated to {len}"));
    }
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[i] ^= 1 << bit;
            refused(&bad, &format!("bit {bit} of byte {i} flipped"));
        }
    }
    let mut long = good.clone();
    long.push(0);
    refused(&long, "trailing byte");
    let mut v2 = good.clone();
    v2[13] = b'2';
    match portable::verify(&mut &v2[..]) {
        Err(PersistError::Export { detail, .. }) => assert!(detail.contains("export format")),
        other => panic!("expected a version complaint, got {other:?}"),
    }

    // import_dir verifies first: a damaged file leaves the target untouched
    // (here: not even created).
    let file = tmp.path().join("bad.shoal");
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    std::fs::write(&file, &bad).unwrap();
    let dst_dir = tmp.path().join("dst");
    assert!(matches!(
        portable::import_dir(kind, &dst_dir, &file),
        Err(PersistError::Export { .. })
    ));
    assert!(!dst_dir.exists());
    std::fs::write(&file, &good[..good.len() - 1]).unwrap();
    assert!(matches!(
        portable::import_dir(kind, &dst_dir, &file),
        Err(PersistError::Export { .. })
    ));
    assert!(!dst_dir.exists());

    // A streaming import stops at a frame that does not parse.
    let b = open(kind, &tmp.path().join("stream"));
    assert!(portable::import(&*b, &mut &good[..good.len() - 9]).is_err());
    assert!(portable::import(&*b, &mut &b"SHOAL-EXPORT 1\n\0\0\0\0\xff\xff\xff\xff"[..]).is_err());
    assert_eq!(b.len().unwrap(), 0);
}

fn export_dir_refuses_missing_dir(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("typo");
    let file = tmp.path().join("out.shoal");
    assert!(matches!(
        portable::export_dir(kind, &missing, &file),
        Err(PersistError::Export { .. })
    ));
    assert!(!missing.exists(), "export created the directory it read");
    assert!(!file.exists());
}

/// Drop and reopen at once, from several threads at a time: the engine's
/// file lock must be free when the drop returns (sled needs the wait in
/// `SledBackend::open` for this).
fn reopen_right_after_drop(kind: Kind) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for round in 0..15 {
                    let tmp = TempDir::new().unwrap();
                    let b = open(kind, tmp.path());
                    let ops: Vec<Op> = (0..300)
                        .map(|i| put(0, &format!("k{i}"), &format!("{t}/{round}")))
                        .collect();
                    b.apply(&ops, round % 2 == 0).unwrap();
                    drop(b);
                    let b = open(kind, tmp.path());
                    assert_eq!(b.len().unwrap(), 300);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Both engines lock their files (flock, per open file description), so a
/// second handle on the same directory fails even within one process.
fn second_open_of_same_dir_fails_cleanly(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let first = open(kind, tmp.path());
    first.apply(&[put(0, "a", "1")], true).unwrap();
    match super::open(kind, tmp.path()) {
        Err(PersistError::Backend { backend, detail }) => {
            assert_eq!(backend, kind.name());
            eprintln!("{kind:?} second open: {detail}");
        }
        Err(e) => panic!("expected a Backend error, got {e}"),
        Ok(_) => panic!("{kind:?}: a second handle opened a directory in use"),
    }
    // The first handle is unaffected, and the directory reopens after it.
    first.apply(&[put(0, "b", "2")], false).unwrap();
    drop(first);
    let again = open(kind, tmp.path());
    assert_eq!(again.len().unwrap(), 2);
}

#[test]
fn none_opens_nothing() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    assert!(super::open(Kind::None, &dir).unwrap().is_none());
    assert!(!dir.exists());
}

#[test]
fn uncompiled_backend_is_refused_before_touching_the_dir() {
    for kind in [Kind::Sled, Kind::Redb] {
        if Kind::compiled().contains(&kind) {
            continue;
        }
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("data");
        assert!(matches!(
            super::open(kind, &dir),
            Err(PersistError::NotCompiled(name)) if name == kind.name()
        ));
        assert!(!dir.exists());
    }
}

const CRASH_DIR: &str = "SHOAL_PERSIST_CRASH_DIR";
const CRASH_KIND: &str = "SHOAL_PERSIST_CRASH_KIND";

/// Child half of `crash_keeps_durable_and_synced_batches`: a no-op unless the
/// parent set the environment. Writes, then aborts with no clean close.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(kind)) = (std::env::var(CRASH_DIR), std::env::var(CRASH_KIND)) else {
        return;
    };
    let kind = Kind::parse(&kind).unwrap();
    let b = open(kind, Path::new(&dir));
    let batch = |tag: &str| -> Vec<Op> {
        (0..100)
            .map(|i| put(0, &format!("{tag}{i}"), tag))
            .collect()
    };
    b.apply(&batch("durable"), true).unwrap();
    b.apply(&batch("synced"), false).unwrap();
    b.sync().unwrap();
    b.apply(&batch("pending"), false).unwrap();
    std::process::abort();
}

/// Crashes a child process right after a durable batch, a non-durable batch
/// followed by a sync, and a non-durable batch without sync. The first two must survive;
/// the third may or may not, but whole or not at all.
fn crash_keeps_durable_and_synced_batches(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "persist::tests::crash_child", "--test-threads=1"])
        .env(CRASH_DIR, tmp.path())
        .env(CRASH_KIND, kind.name())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child should have aborted");
    let b = open(kind, tmp.path());
    let count = |tag: &str| {
        (0..100)
            .filter(|i| get(&*b, 0, &format!("{tag}{i}")).as_deref() == Some(tag))
            .count()
    };
    assert_eq!(count("durable"), 100, "{kind:?} lost durable writes");
    assert_eq!(count("synced"), 100, "{kind:?} lost synced writes");
    let pending = count("pending");
    assert!(
        pending == 0 || pending == 100,
        "{kind:?} recovered {pending} of one batch's 100 puts"
    );
    eprintln!("{kind:?}: unsynced batch after a crash: {pending}/100 recovered");
}

/// A damaged engine file must give an error, not a panic or silent emptiness.
fn corrupt_engine_file_is_an_error(kind: Kind) {
    let tmp = TempDir::new().unwrap();
    {
        let b = open(kind, tmp.path());
        let ops: Vec<Op> = (0..300)
            .map(|i| put(0, &format!("k{i}"), &"v".repeat(50)))
            .collect();
        b.apply(&ops, true).unwrap();
    }
    let file = match kind {
        Kind::Redb => tmp.path().join("data.redb"),
        _ => tmp.path().join("sled").join("db"),
    };
    // Not a database at all.
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    std::fs::write(&file, vec![0x5a; len]).unwrap();
    match super::open(kind, tmp.path()) {
        Err(e @ (PersistError::Corrupt { .. } | PersistError::Backend { .. })) => {
            eprintln!("{kind:?} garbage file: {e}");
        }
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(None) => panic!("no backend"),
        Ok(Some(b)) => panic!("{kind:?} opened a garbage file, {:?} records", b.len()),
    }
    eprintln!(
        "{kind:?}: garbage file of {len} bytes is {} bytes after the failed open",
        std::fs::metadata(&file).unwrap().len()
    );
}

/// redb: a byte flipped inside a real database file gives an error or an
/// open with every record intact (a flip in free space or in the inactive
/// commit slot), never a panic or a silent loss (redb is opened with its
/// integrity check).
#[cfg(feature = "persistence-redb")]
#[test]
fn redb_flipped_bytes_never_panic() {
    let tmp = TempDir::new().unwrap();
    {
        let b = open(Kind::Redb, tmp.path());
        let ops: Vec<Op> = (0..300)
            .map(|i| put(i % 3, &format!("k{i}"), &"v".repeat(50)))
            .collect();
        b.apply(&ops, true).unwrap();
    }
    let file = tmp.path().join("data.redb");
    let good = std::fs::read(&file).unwrap();
    let (mut errors, mut opened) = (0, 0);
    // The header and commit slots densely, the rest sampled.
    let step = (good.len() / 97).max(1);
    let positions = (0..good.len().min(4096))
        .step_by(16)
        .chain((0..good.len()).step_by(step));
    for pos in positions {
        let mut bad = good.clone();
        bad[pos] ^= 0x55;
        std::fs::write(&file, &bad).unwrap();
        let r = std::panic::catch_unwind(|| match super::open(Kind::Redb, tmp.path()) {
            Ok(Some(b)) => {
                // Whatever it opened must read without panicking.
                let _ = b.len();
                let mut n = 0;
                let walked = b.for_each(&mut |_, _, _| {
                    n += 1;
                    true
                });
                assert!(
                    walked.is_ok() && n == 300,
                    "flip at {pos}: opened, but the walk gave {walked:?} with {n} of 300 records"
                );
                true
            }
            Ok(None) => unreachable!(),
            Err(_) => false,
        });
        match r {
            Ok(true) => opened += 1,
            Ok(false) => errors += 1,
            Err(_) => panic!("redb panicked on a byte flipped at {pos} of {}", good.len()),
        }
    }
    eprintln!("redb flipped bytes: {errors} refused, {opened} opened");
}
