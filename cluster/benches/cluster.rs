//! Micro-benchmarks of the cluster core: key_slot on the request path, and building a slot map on every membership change.

use criterion::{Criterion, criterion_group, criterion_main};
use shoal_cluster::{NodeId, Rendezvous, SlotMap, key_slot};
use std::hint::black_box;

fn slots(c: &mut Criterion) {
    c.bench_function("key_slot/short", |b| {
        b.iter(|| key_slot(black_box(b"user:1000")))
    });
    c.bench_function("key_slot/tagged", |b| {
        b.iter(|| key_slot(black_box(b"{user1000}.following")))
    });
    c.bench_function("key_slot/64B", |b| {
        b.iter(|| key_slot(black_box(&[b'x'; 64])))
    });
}

fn maps(c: &mut Criterion) {
    for n in [3usize, 10, 100] {
        let nodes: Vec<NodeId> = (0..n)
            .filter_map(|i| NodeId::new(&format!("shoal-{i}")).ok())
            .collect();
        c.bench_function(&format!("slot_map_build/{n}_nodes_r2"), |b| {
            b.iter(|| SlotMap::new(black_box(nodes.clone()), 2, &Rendezvous))
        });
    }
}

criterion_group!(benches, slots, maps);
criterion_main!(benches);
