//! The DPDK backend's bounds under pressure, with real mbufs, rings and
//! ports (net_ring vdevs: each queue is a loopback ring of its own, so a
//! frame sent on queue `q` is received on queue `q`, and nothing drains the
//! ring unless this test polls it):
//!
//! - **A full tx ring**: more frames than the ring holds are sent; what the
//!   ring refuses after the retries is freed and counted (`tx_dropped`),
//!   no mbuf is lost, and once the ring is drained frames go out again.
//! - **An exhausted mempool**: a pool of 255 mbufs, all of them parked in
//!   the port's ring; frames the worker originates find no mbuf and are
//!   counted (`tx_alloc_failed`); once the ring is drained the pool refills
//!   and originating works again.
//! - **A full hand-over ring**: a worker receives frames whose connection
//!   another worker owns and hands them to that worker's ring, which holds
//!   40; the rest are freed and counted (`handover_dropped`); once the
//!   owner has taken its ring in, hand-overs go through again.
//!
//! Every call returns (nothing waits on a full ring), and at the end every
//! mbuf is back in its pool. EAL initialises once per process, so the three
//! run in one test, one port and pool each. Needs the `dpdk` feature (DPDK
//! and its net_ring driver), as CI has; no root, no hugepages.
#![cfg(feature = "dpdk")]

use rampart::dpdk_bindings::{
    Access, Eal, Mbuf, Mempool, Port, Ring, RxQueue, TxQueue, SOCKET_ANY,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rampart::config::Config;
use rampart::flow::{proto, tcp_flags, Addr, Mac};
use rampart::gen::{self, Eth, TcpSeg};
use rampart::io::dpdk::{DpdkIo, Handover, RxPort};
use rampart::io::route::Routes;
use rampart::io::{steer, PacketIo};
use rampart::snapshot::{self, Snapshot};
use rampart::workload::reference_config;

/// Data room of every pool: a 1518-byte frame and the headroom.
const DATA_ROOM: u16 = 2176;
/// Capacity of the hand-over ring in the third case.
const HANDOVER_RING: u32 = 40;

fn eal() -> Eal {
    let prefix = format!("rampart-pressure-{}", std::process::id());
    let mut args: Vec<String> = [
        "--no-pci",
        "--no-telemetry",
        "--no-shconf",
        "--no-huge",
        "-m",
        "256",
        "-l",
        "0",
        "--log-level",
        "lib.eal:warning",
        "--file-prefix",
        &prefix,
    ]
    .map(String::from)
    .to_vec();
    for i in 0..3 {
        args.extend(["--vdev".to_string(), format!("net_ring{i}")]);
    }
    let eal = Eal::init(args).expect("EAL init with three net_ring vdevs");
    // EAL leaves an empty runtime directory per file prefix.
    for base in ["/var/run/dpdk", "/tmp/dpdk"] {
        let _ = std::fs::remove_dir_all(std::path::Path::new(base).join(&prefix));
    }
    eal
}

/// Port `name` with `queues` rx and tx queues drawing on `pool`, started.
fn port(eal: &Eal, name: &str, queues: u16, pool: &Mempool) -> (Port, Vec<RxQueue>, Vec<TxQueue>) {
    let mut p = Port::by_name(eal, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    p.configure(queues, queues, false).expect("configure");
    for q in 0..queues {
        p.rx_queue_setup(q, 1024, pool).expect("rx queue");
        p.tx_queue_setup(q, 1024).expect("tx queue");
    }
    p.start().expect("start");
    let rx = (0..queues)
        .map(|q| p.rx_queue(q).expect("rx handle"))
        .collect();
    let tx = (0..queues)
        .map(|q| p.tx_queue(q).expect("tx handle"))
        .collect();
    (p, rx, tx)
}

fn rx_port(queue: RxQueue) -> RxPort {
    RxPort {
        queue,
        pcap_timestamps: false,
    }
}

/// One worker's backend over queue 0 of the one-queue port `name`, drawing
/// on a new pool of `mbufs` mbufs (no cache, so `in_use` is exact).
fn one_queue_io(eal: &Eal, name: &str, pool_name: &str, mbufs: u32) -> (Port, Mempool, DpdkIo) {
    let pool = Mempool::new(eal, pool_name, mbufs, 0, DATA_ROOM, SOCKET_ANY).expect("pool");
    let (p, rx, tx) = port(eal, name, 1, &pool);
    let io = DpdkIo::new(
        rx.into_iter().map(rx_port).collect(),
        tx,
        pool.clone(),
        Routes::default(),
        2,
    );
    (p, pool, io)
}

/// A client's ACK to `cfg`'s first TCP VIP, from `sport`.
fn client_frame(cfg: &Config, sport: u16) -> Vec<u8> {
    let vip = cfg
        .vips
        .iter()
        .find(|v| v.protocol.number() == proto::TCP)
        .expect("a TCP VIP in the reference config");
    let eth = Eth {
        src: Mac([0x02, 0, 0, 0, 0, 0x99]),
        dst: cfg.node.mac,
        vlan: None,
    };
    let client: IpAddr = if vip.address.is_v4() {
        Ipv4Addr::new(198, 18, 0, 10).into()
    } else {
        "2001:2::10".parse::<Ipv6Addr>().expect("address").into()
    };
    let seg = TcpSeg {
        sport,
        dport: vip.port,
        seq: 1,
        ack: 1,
        flags: tcp_flags::ACK,
        window: 1024,
        ..TcpSeg::default()
    };
    gen::tcp(&eth, Addr::from(client), vip.address, 64, 1, &seg)
}

/// Receives until the queues are empty; returns how many frames came in
/// and frees them (none was sent on).
fn drain(io: &mut DpdkIo) -> usize {
    let mut bufs: Vec<Mbuf> = Vec::new();
    let mut got = 0;
    for _ in 0..10_000 {
        let n = io.rx_burst(&mut bufs, 32).expect("rx");
        if n == 0 {
            return got;
        }
        got += n;
        io.flush_burst(&mut bufs).expect("flush");
    }
    panic!("the queues did not run dry after 10,000 bursts")
}

/// Polls `io` `bursts` times, freeing what it receives; returns how many
/// frames it kept (a worker hands over the frames others own, which
/// `drain` cannot tell from an empty queue).
fn poll(io: &mut DpdkIo, bursts: usize) -> usize {
    let mut bufs: Vec<Mbuf> = Vec::new();
    let mut kept = 0;
    for _ in 0..bursts {
        kept += io.rx_burst(&mut bufs, 32).expect("rx");
        io.flush_burst(&mut bufs).expect("flush");
    }
    kept
}

/// Originates `n` copies of `frame` in bursts of 32, as a worker does.
fn originate(io: &mut DpdkIo, frame: &[u8], n: usize) {
    let mut bufs: Vec<Mbuf> = Vec::new();
    for i in 0..n {
        io.tx_frame(frame, 0).expect("tx_frame");
        if i % 32 == 31 {
            io.flush_burst(&mut bufs).expect("flush");
        }
    }
    io.flush_burst(&mut bufs).expect("flush");
}

#[test]
fn full_rings_and_an_empty_pool_are_counted_drops_and_pass() {
    let eal = eal();
    let cfg = reference_config();
    let frame = client_frame(&cfg, 40_000);

    // --- a full tx ring -------------------------------------------------
    let (_p0, pool, mut io) = one_queue_io(&eal, "net_ring0", "pressure_tx", 4095);
    originate(&mut io, &frame, 4000);
    let s = io.stats();
    let c = io.counters();
    assert!(
        c.tx_dropped > 0,
        "4000 frames into one loopback ring nobody drains: the ring must fill ({s:?})"
    );
    assert_eq!(s.tx_packets + c.tx_dropped, 4000, "{s:?}");
    assert_eq!(c.tx_alloc_failed, 0, "{c:?}");
    let held = s.tx_packets as usize;
    assert_eq!(
        pool.in_use() as usize,
        held,
        "the ring holds the frames it took; the refused ones are back in the pool"
    );
    assert_eq!(drain(&mut io), held, "the ring gives back what it took");
    assert_eq!(pool.in_use(), 0);
    // The pressure is gone: frames go out again, and none is refused.
    originate(&mut io, &frame, 100);
    assert_eq!(
        io.counters().tx_dropped,
        c.tx_dropped,
        "no drop once drained"
    );
    assert_eq!(drain(&mut io), 100);
    assert_eq!(pool.in_use(), 0);

    // --- an exhausted pool ------------------------------------------------
    let (_p1, small, mut io) = one_queue_io(&eal, "net_ring1", "pressure_pool", 255);
    originate(&mut io, &frame, 400);
    let c = io.counters();
    assert_eq!(
        c.tx_alloc_failed, 145,
        "255 mbufs for 400 frames: 145 found none ({c:?})"
    );
    assert_eq!(io.stats().tx_packets, 255);
    assert_eq!(
        c.tx_dropped, 0,
        "the ring takes every frame that had an mbuf"
    );
    assert_eq!(small.in_use(), 255, "every mbuf is parked in the ring");
    assert_eq!(drain(&mut io), 255);
    assert_eq!(small.in_use(), 0, "draining the ring refills the pool");
    originate(&mut io, &frame, 100);
    assert_eq!(
        io.counters().tx_alloc_failed,
        145,
        "no failure once refilled"
    );
    assert_eq!(drain(&mut io), 100);

    // --- a full hand-over ring -------------------------------------------
    // Worker 0 polls queue 0 of net_ring2; every frame there belongs to
    // worker 1, whose ring holds HANDOVER_RING frames. Worker 1 polls no
    // port queue, only its ring.
    let pool = Mempool::new(&eal, "pressure_ho", 1023, 0, DATA_ROOM, SOCKET_ANY).expect("pool");
    let (_p2, mut rx, mut tx) = port(&eal, "net_ring2", 2, &pool);
    let snap = Snapshot::build(&cfg);
    let for_worker_1: Vec<Vec<u8>> = (1024u16..)
        .map(|sport| client_frame(&cfg, sport))
        .filter(|f| {
            let mut d = rampart::flow::FlowDesc::default();
            steer::owner(f, &snap, 2, &mut d) == Some(1)
        })
        .take(200)
        .collect();
    let store = snapshot::store(snap);
    let rings: Vec<Ring> = (0..2)
        .map(|w| {
            Ring::new(
                &eal,
                &format!("pressure_ho{w}"),
                HANDOVER_RING,
                SOCKET_ANY,
                Access::Multi,
                Access::Single,
            )
            .expect("ring")
        })
        .collect();
    let handover = |me: usize| Handover {
        me: me as u16,
        workers: 2,
        snap: store.clone(),
        to: (0..2)
            .map(|w| (w != me).then(|| rings[w].producer().expect("producer")))
            .collect(),
        from: rings[me].consumer().expect("consumer"),
    };
    let tx1 = tx.pop().expect("tx queue 1");
    let tx0 = tx.pop().expect("tx queue 0");
    let _rx1 = rx.pop();
    let rx0 = rx.pop().expect("rx queue 0");
    let mut w0 = DpdkIo::new(
        vec![rx_port(rx0)],
        vec![tx0],
        pool.clone(),
        Routes::default(),
        2,
    )
    .with_handover(handover(0));
    let mut w1 = DpdkIo::new(Vec::new(), vec![tx1], pool.clone(), Routes::default(), 2)
        .with_handover(handover(1));

    // The frames reach worker 0's queue (sent on queue 0, looped back).
    for f in &for_worker_1 {
        w0.tx_frame(f, 0).expect("tx_frame");
    }
    w0.flush_burst(&mut Vec::new()).expect("flush");
    assert_eq!(w0.stats().tx_packets, 200);
    // Worker 0 keeps none of them: each burst goes to worker 1's ring.
    assert_eq!(poll(&mut w0, 16), 0, "worker 0 owns none of these frames");
    assert_eq!(w0.stats().rx_packets, 200, "worker 0 took every frame in");
    let c = w0.counters();
    assert_eq!(c.handovers_out, u64::from(HANDOVER_RING), "{c:?}");
    assert_eq!(c.handover_dropped, 200 - u64::from(HANDOVER_RING), "{c:?}");
    assert_eq!(
        pool.in_use(),
        HANDOVER_RING,
        "only the ring's frames are out"
    );
    // Worker 1 takes its ring in, frames in the order they were handed over.
    let mut bufs: Vec<Mbuf> = Vec::new();
    assert_eq!(w1.rx_burst(&mut bufs, 32).expect("rx"), 32);
    assert_eq!(
        bufs[0].data(),
        &for_worker_1[0][..],
        "the first frame first"
    );
    w1.flush_burst(&mut bufs).expect("flush");
    assert_eq!(drain(&mut w1), HANDOVER_RING as usize - 32);
    assert_eq!(w1.counters().handovers_in, u64::from(HANDOVER_RING));
    assert_eq!(pool.in_use(), 0);
    // With the ring empty again, hand-overs pass.
    for f in &for_worker_1[..30] {
        w0.tx_frame(f, 0).expect("tx_frame");
    }
    w0.flush_burst(&mut Vec::new()).expect("flush");
    assert_eq!(poll(&mut w0, 4), 0);
    assert_eq!(w0.stats().rx_packets, 230);
    assert_eq!(
        w0.counters().handover_dropped,
        c.handover_dropped,
        "no drop once drained"
    );
    assert_eq!(drain(&mut w1), 30);
    assert_eq!(pool.in_use(), 0, "every mbuf is back in its pool");
}
