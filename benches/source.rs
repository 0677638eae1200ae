//! Source-prefix steering costs: the prefix lookup a new flow of a VIP with
//! `[[vip.source]]` entries pays, with 10 and with 10,000 prefixes per
//! family (the cost must not grow with the count), and the table build
//! the control plane pays at a reload.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rampart::config::{prefix_mask_v4, prefix_mask_v6, Subnet};
use rampart::flow::Addr;
use rampart::lpm::Lpm;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// `n` prefixes of each family, lengths 16..=32 (IPv4) and 32..=64 (IPv6),
/// all inside 198.18.0.0/15 and 2001:2::/48 so that probes hit often.
fn prefixes(n: u32) -> Vec<(Subnet, u32)> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut out = Vec::new();
    for i in 0..n {
        let r = xorshift(&mut x);
        let len = 16 + (r % 17) as u8;
        let a = 0xc612_0000u32 | (r >> 32) as u32 & 0x1_ffff;
        out.push((
            Subnet {
                addr: IpAddr::V4((a & prefix_mask_v4(len)).into()),
                prefix_len: len,
            },
            i,
        ));
        let len = 48 + (r % 17) as u8;
        let a = (0x2001_0002_0000u128 << 80) | u128::from(r) << 16;
        out.push((
            Subnet {
                addr: IpAddr::V6((a & prefix_mask_v6(len)).into()),
                prefix_len: len,
            },
            i,
        ));
    }
    out
}

/// 4096 client addresses of each family, in the prefixes' ranges.
fn clients() -> (Vec<Addr>, Vec<Addr>) {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let v4 = (0..4096)
        .map(|_| {
            let r = xorshift(&mut x);
            Addr::from(Ipv4Addr::from(0xc612_0000u32 | (r as u32 & 0x1_ffff)))
        })
        .collect();
    let v6 = (0..4096)
        .map(|_| {
            let r = xorshift(&mut x);
            Addr::from(Ipv6Addr::from(
                (0x2001_0002_0000u128 << 80) | u128::from(r) << 16 | u128::from(r & 0xffff),
            ))
        })
        .collect();
    (v4, v6)
}

fn bench_source(c: &mut Criterion) {
    let mut g = c.benchmark_group("source");
    let (v4, v6) = clients();
    for n in [10u32, 10_000] {
        let table = Lpm::new(prefixes(n));
        for (family, probes) in [("v4", &v4), ("v6", &v6)] {
            g.throughput(Throughput::Elements(probes.len() as u64));
            g.bench_function(format!("lookup_{n}_{family}"), |b| {
                b.iter(|| {
                    let mut hits = 0u32;
                    for a in probes.iter() {
                        hits += u32::from(table.lookup(black_box(a)).is_some());
                    }
                    hits
                })
            });
        }
    }
    let p = prefixes(10_000);
    g.throughput(Throughput::Elements(p.len() as u64));
    g.bench_function("build_20000", |b| {
        b.iter(|| Lpm::new(black_box(p.iter().copied())))
    });
    g.finish();
}

criterion_group!(benches, bench_source);
criterion_main!(benches);
