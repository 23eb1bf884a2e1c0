//! Criterion micro-benchmarks of the hot path: request parsing, reply
//! encoding, store GET/SET/expire, and the keyspace hash.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shoal::protocol::{Limits, Out, Parsed, Proto, RequestParser};
use shoal::store::{ManualClock, Store, StoreConfig, Ttl, Value, hash_key};
use std::hint::black_box;

fn pipeline(n: usize, value_len: usize) -> Vec<u8> {
    let v = "x".repeat(value_len);
    let mut b = Vec::new();
    for i in 0..n {
        let k = format!("key:{i:012}");
        b.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .as_bytes(),
        );
    }
    b
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for &vlen in &[3usize, 1024] {
        let buf = pipeline(16, vlen);
        g.throughput(Throughput::Elements(16));
        g.bench_with_input(BenchmarkId::new("set_pipeline16", vlen), &buf, |b, buf| {
            let mut p = RequestParser::new(Limits::default());
            b.iter(|| {
                let mut at = 0;
                let mut n = 0;
                while let Ok(Parsed::Request(len)) = p.parse(&buf[at..]) {
                    n += p.args(&buf[at..]).len();
                    at += len;
                }
                black_box(n)
            })
        });
    }
    let inline = b"SET key:000000000001 xyz\r\n".repeat(16);
    g.bench_function("inline16", |b| {
        let mut p = RequestParser::new(Limits::default());
        b.iter(|| {
            let mut at = 0;
            while let Ok(Parsed::Request(len)) = p.parse(&inline[at..]) {
                at += len;
            }
            black_box(at)
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let v = vec![b'x'; 1024];
    g.throughput(Throughput::Elements(16));
    g.bench_function("bulk1k_x16", |b| {
        let mut out = Out::new(Proto::Resp2);
        b.iter(|| {
            out.buf.clear();
            for _ in 0..16 {
                out.bulk(&v);
            }
            black_box(out.buf.len())
        })
    });
    g.bench_function("ok_int_null_x16", |b| {
        let mut out = Out::new(Proto::Resp3);
        b.iter(|| {
            out.buf.clear();
            for i in 0..16 {
                out.ok();
                out.int(i);
                out.null();
            }
            black_box(out.buf.len())
        })
    });
    g.finish();
}

fn store(c: &mut Criterion) {
    let clock = ManualClock::new(1_000);
    let store = Store::new(
        StoreConfig {
            databases: 1,
            shards: 64,
        },
        clock,
    );
    let ks = store.db(0);
    let keys: Vec<Vec<u8>> = (0..100_000)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect();
    for k in &keys {
        let (h, mut s) = ks.lock(k);
        s.set(h, k, Value::str(b"xyz"), Ttl::At(0), 1_000);
    }
    let mut g = c.benchmark_group("store");
    let mut i = 0usize;
    g.bench_function("get_hit_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let k = &keys[i];
            let (h, mut s) = ks.lock(k);
            black_box(
                s.read(h, k, 1_000, true)
                    .map(|x| s.entry(x).value.heap_size()),
            )
        })
    });
    g.bench_function("set_overwrite_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let k = &keys[i];
            let (h, mut s) = ks.lock(k);
            black_box(s.set(h, k, Value::str(b"abc"), Ttl::At(0), 1_000).is_some())
        })
    });
    g.bench_function("set_with_expire_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let k = &keys[i];
            let (h, mut s) = ks.lock(k);
            black_box(
                s.set(h, k, Value::str(b"abc"), Ttl::At(5_000_000), 1_000)
                    .is_some(),
            )
        })
    });
    g.bench_function("hash_key_16b", |b| {
        b.iter(|| black_box(hash_key(black_box(b"key:000000012345"))))
    });
    g.finish();
}

criterion_group!(benches, parse, encode, store);
criterion_main!(benches);
