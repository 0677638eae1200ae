//! The free-running runtime over in-memory backends: the same code as
//! `rampart run` without DPDK.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::control::state::{Control, Shared};
use crate::flow::FlowDesc;
use crate::io::{steer, MemoryIo, PcapReader};
use crate::workload;

const KEY: [u8; 16] = *b"rampart-runtime!";

/// The frames of a synthetic capture of `flows` NAT connections.
fn traffic(flows: u32, per_flow: u32) -> Vec<Vec<u8>> {
    let path = std::env::temp_dir().join(format!(
        "rampart-runtime-{}-{flows}-{per_flow}.pcap",
        std::process::id()
    ));
    workload::write_traffic(&path, flows, per_flow).expect("write the capture");
    let mut reader = PcapReader::open(&path).expect("open the capture");
    let mut frames = Vec::new();
    let mut p = crate::io::RxPacket::default();
    while reader.next_into(&mut p).expect("read the capture") {
        frames.push(p.data.clone());
    }
    let _ = std::fs::remove_file(&path);
    frames
}

fn control(workers: u16) -> (Shared, SnapshotStore, Vec<WorkerLink>) {
    let (control, links) = Control::new(
        workload::reference_config(),
        workload::CONFIG_TEXT,
        Some(workload::CONFIG_PATH.into()),
        workers,
        KEY,
        0,
    )
    .expect("the reference config loads");
    let store = control.store();
    (
        Shared(Arc::new(std::sync::Mutex::new(control))),
        store,
        links,
    )
}

/// Splits `frames` by owner, as the DPDK workers' steering does.
fn steered(frames: &[Vec<u8>], store: &SnapshotStore, workers: u16) -> Vec<Vec<Vec<u8>>> {
    let snap = store.load();
    let mut d = FlowDesc::default();
    let mut shares = vec![Vec::new(); usize::from(workers)];
    for f in frames {
        let w = steer::owner(f, &snap, workers, &mut d).unwrap_or(0);
        shares[usize::from(w)].push(f.clone());
    }
    shares
}

/// Waits (bounded) until every worker has received `want` frames.
fn wait_for_rx<R: Send + 'static>(pool: &Pool<R>, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.totals().0 < want {
        assert!(
            Instant::now() < deadline,
            "workers stalled at {:?}",
            pool.totals()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn free_running_workers_forward_what_one_worker_does() {
    let frames = traffic(256, 8);
    // One worker, driven by hand.
    let (_c1, store1, links1) = control(1);
    let mut one = Worker::new(
        &store1,
        links1.into_iter().next().expect("a link"),
        0,
        1,
        7,
        MemoryIo::new(frames.clone(), 1).keep_tx(),
    );
    while !one.exhausted() {
        one.poll(&store1, &Clock::Packets, BURST)
            .expect("memory I/O");
    }
    let (end1, io1) = one.finish();
    let mut want: Vec<Vec<u8>> = io1.sent().iter().map(|p| p.data.clone()).collect();
    want.sort();

    // Two free-running workers, each given the frames it owns.
    let (_c2, store2, links2) = control(2);
    let specs = steered(&frames, &store2, 2)
        .into_iter()
        .zip(links2)
        .enumerate()
        .map(|(w, (share, link))| WorkerSpec {
            io: MemoryIo::new(share, 1).keep_tx(),
            link,
            cpu: None,
            seed: 7 + w as u64,
            clock: Clock::Packets,
            idle: None,
        })
        .collect();
    let pool = Pool::start(
        &store2,
        specs,
        |_| Ok(()),
        |io: &MemoryIo| io.sent().iter().map(|p| p.data.clone()).collect::<Vec<_>>(),
    )
    .expect("workers start");
    wait_for_rx(&pool, frames.len() as u64);
    let ends = pool.join().expect("no worker failed");
    assert_eq!(ends.len(), 2);
    assert!(
        ends.iter().all(|(e, _)| e.stats.rx_packets > 0),
        "both workers had a share"
    );
    let mut got: Vec<Vec<u8>> = ends.iter().flat_map(|(_, sent)| sent.clone()).collect();
    got.sort();
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "the two workers sent other frames than one worker"
    );

    let snap = store2.load();
    let t = Totals::of(
        ends.iter().map(|(e, _)| e),
        snap.vips.len(),
        snap.backends.len(),
    );
    assert_eq!(t.stats.rx_packets, end1.stats.rx_packets);
    assert_eq!(t.stats.tx_packets, end1.stats.tx_packets);
    assert_eq!(t.stats.dropped_total(), end1.stats.dropped_total());
    assert_eq!(t.active, end1.active);
    assert_eq!(t.active, 256);
    assert_eq!(t.capacity, 2 * end1.capacity);
}

/// A live port with no traffic: never exhausted, never a frame.
struct Silent;

impl PacketIo for Silent {
    type Buf = crate::io::RxPacket;
    fn rx_burst(&mut self, bufs: &mut Vec<Self::Buf>, _max: usize) -> io::Result<usize> {
        bufs.clear();
        Ok(0)
    }
    fn tx(&mut self, _idx: usize, _pkt: &Self::Buf) -> io::Result<()> {
        Ok(())
    }
    fn tx_frame(&mut self, _frame: &[u8], _ts_ns: u64) -> io::Result<()> {
        Ok(())
    }
}

/// A quiet live port for each link.
fn silent_specs(links: Vec<WorkerLink>, idle: Option<IdleSleep>) -> Vec<WorkerSpec<Silent>> {
    links
        .into_iter()
        .map(|link| WorkerSpec {
            io: Silent,
            link,
            cpu: None,
            seed: 1,
            clock: Clock::Monotonic(Instant::now()),
            idle,
        })
        .collect()
}

fn silent_pool(workers: u16) -> (Shared, Pool<()>) {
    silent_pool_resting(workers, None)
}

fn silent_pool_resting(workers: u16, idle: Option<IdleSleep>) -> (Shared, Pool<()>) {
    let (control, store, links) = control(workers);
    let specs = silent_specs(links, idle);
    let pool = Pool::start(&store, specs, |_| Ok(()), |_: &Silent| ()).expect("workers start");
    (control, pool)
}

#[test]
fn the_control_loop_stops_on_idle_input() {
    let (control, pool) = silent_pool(2);
    let policy = LoopPolicy {
        idle_exit: Duration::from_millis(50),
        stats_interval: Duration::from_millis(20),
        drain: Duration::ZERO,
        stall_log: Duration::ZERO,
    };
    let begun = Instant::now();
    let (why, _) = pool.control_loop(&control, &Signals::none(), &policy);
    assert_eq!(why, Stopped::Idle);
    assert!(begun.elapsed() >= Duration::from_millis(50));
    assert_eq!(pool.join().map(|e| e.len()).ok(), Some(2));
}

#[test]
fn the_control_loop_stops_on_a_signal_and_reloads_on_hup() {
    let (control, pool) = silent_pool(1);
    let signals = Signals::none();
    signals.hup.store(true, Ordering::Relaxed);
    let stop = Arc::clone(&signals.stop);
    let hup = Arc::clone(&signals.hup);
    let poker = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while hup.load(Ordering::Relaxed) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let policy = LoopPolicy {
        idle_exit: Duration::ZERO,
        stats_interval: Duration::ZERO,
        drain: Duration::ZERO,
        stall_log: Duration::ZERO,
    };
    let (why, _) = pool.control_loop(&control, &signals, &policy);
    poker.join().expect("the signalling thread");
    assert_eq!(why, Stopped::Signal);
    assert_eq!(control.lock().status().reloads, 1, "SIGHUP reloaded once");
    assert!(pool.join().is_ok());
}

#[test]
fn a_finite_input_ends_its_worker_and_the_loop() {
    let (control, store, links) = control(1);
    let specs = links
        .into_iter()
        .map(|link| WorkerSpec {
            io: MemoryIo::new(traffic(4, 4), 1),
            link,
            cpu: None,
            seed: 1,
            clock: Clock::Packets,
            idle: None,
        })
        .collect();
    let pool = Pool::start(&store, specs, |_| Ok(()), |io: &MemoryIo| io.rx_packets())
        .expect("workers start");
    let policy = LoopPolicy {
        idle_exit: Duration::from_secs(60),
        stats_interval: Duration::ZERO,
        drain: Duration::ZERO,
        stall_log: Duration::ZERO,
    };
    let (why, _) = pool.control_loop(&control, &Signals::none(), &policy);
    assert_eq!(why, Stopped::WorkerExit);
    let ends = pool.join().expect("no worker failed");
    assert_eq!(ends[0].1, 16);
    assert_eq!(ends[0].0.stats.rx_packets, 16);
}

#[test]
fn a_failed_start_stops_the_workers_already_started() {
    let (_control, store, links) = control(2);
    let specs = silent_specs(links, None);
    let refused = Pool::start(
        &store,
        specs,
        |w| {
            if w == 1 {
                Err(format!("worker {w}: refused"))
            } else {
                Ok(())
            }
        },
        |_: &Silent| (),
    );
    assert_eq!(
        refused.err().map(|e| e.to_string()).as_deref(),
        Some("worker 1: refused")
    );
}

#[test]
fn an_idle_worker_sleeps_after_its_empty_polls() {
    let idle = IdleSleep::from_config(2000, 16);
    assert_eq!(IdleSleep::from_config(0, 16), None, "0 us is pure polling");
    let start = std::time::Instant::now();
    let (_control, pool) = silent_pool_resting(1, idle);
    std::thread::sleep(Duration::from_millis(100));
    let ends = pool.join().expect("no worker failed");
    let lived = start.elapsed().as_millis() as u64;
    let sleeps = ends[0].0.stats.events[Event::IdleSleep as usize];
    // 2 ms sleeps: at most one per 2 ms the worker lived (100 ms and
    // more on a loaded machine), and some.
    assert!(
        (5..=lived / 2 + 1).contains(&sleeps),
        "{sleeps} sleeps in {lived} ms"
    );
}

/// A worker's heartbeat standing still across ticks of the control thread
/// for `stall_log` is a stall, logged once it moves again; a control
/// thread that slept through the same time without a tick never takes a
/// moving heartbeat for a stall.
#[test]
fn a_heartbeat_still_across_ticks_is_a_stall_and_a_late_tick_is_not() {
    let live = vec![CachePadded::new(Live::default())];
    let mut beats = Heartbeats::new(1, Duration::from_millis(30));
    live[0].polls.store(1, Ordering::Relaxed);
    assert!(beats.all_beating(&live));
    // Still for 40 ms, seen by ticks every 5 ms.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(40) {
        std::thread::sleep(Duration::from_millis(5));
        beats.all_beating(&live);
    }
    assert!(beats.any_still(), "still for 40 ms: health probes are held");
    live[0].polls.store(2, Ordering::Relaxed);
    beats.all_beating(&live);
    assert!(!beats.any_still(), "moving again: probes run");
    assert_eq!(beats.stalls, 1);
    // The control thread late by 40 ms: no tick saw the heartbeat still.
    std::thread::sleep(Duration::from_millis(40));
    live[0].polls.store(3, Ordering::Relaxed);
    beats.all_beating(&live);
    assert_eq!(beats.stalls, 1);
    // Turned off.
    let mut off = Heartbeats::new(1, Duration::ZERO);
    off.all_beating(&live);
    std::thread::sleep(Duration::from_millis(10));
    off.all_beating(&live);
    live[0].polls.store(4, Ordering::Relaxed);
    off.all_beating(&live);
    assert_eq!(off.stalls, 0);
}
