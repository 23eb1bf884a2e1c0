//! Property test of the bitmap commands: random SET/SETBIT/GETBIT/BITCOUNT/
//! BITPOS sequences against a naive bit-vector model that follows Redis 7.0's
//! documented rules one bit at a time.

mod common;

use common::TestNode;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestRunner};

#[derive(Debug, Clone)]
enum Op {
    Set(Vec<u8>),
    SetBit(u64, bool),
    GetBit(u64),
    Count(Option<(i64, i64, bool)>),
    Pos(bool, Option<i64>, Option<i64>, bool),
    Get,
}

fn op() -> impl Strategy<Value = Op> {
    let idx = -60i64..60;
    prop_oneof![
        prop::collection::vec(prop_oneof![Just(0u8), Just(0xff), any::<u8>()], 0..40)
            .prop_map(Op::Set),
        (0u64..400, any::<bool>()).prop_map(|(o, b)| Op::SetBit(o, b)),
        (0u64..400).prop_map(Op::GetBit),
        prop::option::of((idx.clone(), idx.clone(), any::<bool>())).prop_map(Op::Count),
        (
            any::<bool>(),
            prop::option::of(idx.clone()),
            prop::option::of(idx),
            any::<bool>()
        )
            .prop_map(|(b, s, e, unit)| Op::Pos(b, s, e, unit)),
        Just(Op::Get),
    ]
}

fn bit(m: &[u8], i: u64) -> bool {
    m.get((i / 8) as usize)
        .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
}

/// Redis's start/end normalisation over `total` units; None when empty.
fn range(start: i64, end: i64, total: i64) -> Option<(i64, i64)> {
    let s = if start < 0 { total + start } else { start }.max(0);
    let e = if end < 0 { total + end } else { end }
        .max(0)
        .min(total - 1);
    (s <= e).then_some((s, e))
}

/// Bit range of a start/end pair in BYTE or BIT units.
fn bit_range(start: i64, end: i64, len: i64, in_bits: bool) -> Option<(u64, u64)> {
    if in_bits {
        range(start, end, len * 8).map(|(s, e)| (s as u64, e as u64))
    } else {
        range(start, end, len).map(|(s, e)| (s as u64 * 8, e as u64 * 8 + 7))
    }
}

fn model_count(m: &Option<Vec<u8>>, r: Option<(i64, i64, bool)>) -> i64 {
    let Some(m) = m else { return 0 };
    let len = m.len() as i64;
    let (from, to) = match r {
        None => match range(0, len - 1, len) {
            Some((s, e)) => (s as u64 * 8, e as u64 * 8 + 7),
            None => return 0,
        },
        Some((s, e, _)) if s < 0 && e < 0 && s > e => return 0,
        Some((s, e, unit)) => match bit_range(s, e, len, unit) {
            Some(r) => r,
            None => return 0,
        },
    };
    (from..=to).filter(|&i| bit(m, i)).count() as i64
}

fn model_pos(
    m: &Option<Vec<u8>>,
    b: bool,
    start: Option<i64>,
    end: Option<i64>,
    unit: bool,
) -> i64 {
    let Some(m) = m else {
        return if b { -1 } else { 0 };
    };
    let len = m.len() as i64;
    let r = match (start, end) {
        (None, _) => bit_range(0, len - 1, len, false),
        (Some(s), None) => bit_range(s, len - 1, len, false),
        (Some(s), Some(e)) => bit_range(s, e, len, unit),
    };
    let Some((from, to)) = r else { return -1 };
    match (from..=to).find(|&i| bit(m, i) == b) {
        Some(i) => i as i64,
        None if !b && end.is_none() => (to + 1) as i64,
        None => -1,
    }
}

#[test]
fn bitmap_commands_match_a_bit_vector_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let node = rt.block_on(TestNode::start());
    let con = rt.block_on(node.client());
    let mut runner = TestRunner::new(PtConfig {
        cases: 96,
        ..PtConfig::default()
    });
    let strategy = prop::collection::vec(op(), 1..40);
    let result = runner.run(&strategy, |ops| {
        // The multiplexed connection is a cheap handle; the closure must be Fn.
        let mut con = con.clone();
        rt.block_on(async {
            let _: () = redis::cmd("DEL")
                .arg("k")
                .query_async(&mut con)
                .await
                .unwrap();
            let mut model: Option<Vec<u8>> = None;
            for op in &ops {
                match op {
                    Op::Set(v) => {
                        let _: () = redis::cmd("SET")
                            .arg("k")
                            .arg(v.as_slice())
                            .query_async(&mut con)
                            .await
                            .unwrap();
                        model = Some(v.clone());
                    }
                    Op::SetBit(o, on) => {
                        let old: i64 = redis::cmd("SETBIT")
                            .arg("k")
                            .arg(*o)
                            .arg(*on as u8)
                            .query_async(&mut con)
                            .await
                            .unwrap();
                        let m = model.get_or_insert_with(Vec::new);
                        prop_assert_eq!(old, bit(m, *o) as i64, "{:?}", op);
                        let need = (*o / 8 + 1) as usize;
                        if m.len() < need {
                            m.resize(need, 0);
                        }
                        let mask = 0x80u8 >> (*o % 8);
                        if *on {
                            m[(*o / 8) as usize] |= mask;
                        } else {
                            m[(*o / 8) as usize] &= !mask;
                        }
                    }
                    Op::GetBit(o) => {
                        let got: i64 = redis::cmd("GETBIT")
                            .arg("k")
                            .arg(*o)
                            .query_async(&mut con)
                            .await
                            .unwrap();
                        let want = model.as_ref().is_some_and(|m| bit(m, *o)) as i64;
                        prop_assert_eq!(got, want, "{:?}", op);
                    }
                    Op::Count(r) => {
                        let mut c = redis::cmd("BITCOUNT");
                        c.arg("k");
                        if let Some((s, e, unit)) = r {
                            c.arg(*s).arg(*e).arg(if *unit { "BIT" } else { "BYTE" });
                        }
                        let got: i64 = c.query_async(&mut con).await.unwrap();
                        prop_assert_eq!(got, model_count(&model, *r), "{:?} on {:?}", op, model);
                    }
                    Op::Pos(b, s, e, unit) => {
                        let mut c = redis::cmd("BITPOS");
                        c.arg("k").arg(*b as u8);
                        if let Some(s) = s {
                            c.arg(*s);
                            if let Some(e) = e {
                                c.arg(*e).arg(if *unit { "BIT" } else { "BYTE" });
                            }
                        }
                        let got: i64 = c.query_async(&mut con).await.unwrap();
                        let e = if s.is_some() { *e } else { None };
                        let want = model_pos(&model, *b, *s, e, *unit);
                        prop_assert_eq!(got, want, "{:?} on {:?}", op, model);
                    }
                    Op::Get => {
                        let got: Option<Vec<u8>> = redis::cmd("GET")
                            .arg("k")
                            .query_async(&mut con)
                            .await
                            .unwrap();
                        prop_assert_eq!(&got, &model, "{:?}", op);
                    }
                }
            }
            Ok(())
        })
    });
    rt.block_on(node.stop());
    if let Err(e) = result {
        panic!("{e}");
    }
}
