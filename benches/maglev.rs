//! Maglev table build and lookup costs. The build runs on the control plane
//! at every backend change and must stay well under 10 ms for 1000 backends
//! at the default 65537 slots; lookup is on the datapath for every new flow.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart::flow::Addr;
use rampart::maglev::{build, BackendKey, MaglevBackend, DEFAULT_TABLE_SIZE};

fn backends(n: u32) -> Vec<MaglevBackend> {
    (0..n)
        .map(|i| MaglevBackend {
            key: BackendKey {
                addr: Addr::from_v4([10, 1, (i >> 8) as u8, i as u8]),
                port: 8080,
            },
            weight: 1 + i % 3,
        })
        .collect()
}

fn bench_maglev(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev");

    let set = backends(1000);
    g.bench_function("build_1000x65537", |b| {
        b.iter(|| build(black_box(&set), black_box(DEFAULT_TABLE_SIZE)))
    });

    // Two heavy backends among light ones: the event-queue fill path.
    let mut skewed = backends(1000);
    for b in skewed.iter_mut().take(2) {
        b.weight = 1000;
    }
    g.bench_function("build_1000x65537_skewed", |b| {
        b.iter(|| build(black_box(&skewed), black_box(DEFAULT_TABLE_SIZE)))
    });

    let set = backends(10);
    g.bench_function("build_10x65537", |b| {
        b.iter(|| build(black_box(&set), black_box(DEFAULT_TABLE_SIZE)))
    });

    // 4096 varied flow hashes per iteration, so the slot reads spread over
    // the whole table as real traffic does.
    let table = build(&backends(100), DEFAULT_TABLE_SIZE);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let hashes: Vec<u64> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect();
    g.throughput(Throughput::Elements(hashes.len() as u64));
    g.bench_function("lookup", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &h in black_box(&hashes) {
                acc = acc.wrapping_add(table.lookup(h).unwrap_or(0));
            }
            acc
        })
    });

    g.finish();
}

criterion_group!(benches, bench_maglev);
criterion_main!(benches);
