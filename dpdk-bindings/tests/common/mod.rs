//! Shared by the integration tests. Each test file is its own process and
//! initialises EAL once (DPDK allows one init per process).

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dpdk_bindings::{Eal, Mbuf, MbufBatch, Mempool, Port, SOCKET_ANY};

/// EAL arguments for a test process: no PCI scan, no telemetry socket, no
/// shared config, a file prefix unique to this process, and either plain
/// memory (`--no-huge -m 512`) or hugepages (`--in-memory`: no files left in
/// /dev/hugepages).
pub fn eal_args(tag: &str, hugepages: bool, vdevs: &[String]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--no-pci".into(),
        "--no-telemetry".into(),
        "--file-prefix".into(),
        file_prefix(tag),
        "-l".into(),
        "0".into(),
        "--log-level".into(),
        "lib.eal:warning".into(),
    ];
    if hugepages {
        args.push("--in-memory".into());
    } else {
        args.extend(["--no-shconf", "--no-huge", "-m", "512"].map(String::from));
    }
    for v in vdevs {
        args.push("--vdev".into());
        args.push(v.clone());
    }
    args
}

/// The EAL file prefix of this test process.
pub fn file_prefix(tag: &str) -> String {
    format!("rampart-bindings-test-{tag}-{}", std::process::id())
}

/// Removes the (empty) runtime directory EAL leaves behind for this process's
/// file prefix even with --no-shconf / --in-memory; a unique prefix per run
/// would otherwise pile them up in /var/run/dpdk.
pub fn remove_runtime_dir(tag: &str) {
    let base = if is_root() {
        PathBuf::from("/var/run/dpdk")
    } else {
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) => PathBuf::from(d).join("dpdk"),
            None => PathBuf::from("/tmp/dpdk"),
        }
    };
    let _ = fs::remove_dir(base.join(file_prefix(tag)));
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        .unwrap_or(false)
}

/// A scratch directory for this process.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-bindings-{tag}-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Free 2 MiB hugepages on the machine.
pub fn free_hugepages() -> u64 {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A few Ethernet frames of different sizes (minimum, small, full MTU), each
/// with its index in the payload so order and content are checked.
pub fn sample_frames() -> Vec<Vec<u8>> {
    [60usize, 98, 342, 1514, 64]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let mut f = Vec::with_capacity(len);
            f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // dst MAC
            f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // src MAC
            f.extend_from_slice(&[0x88, 0xb5]); // local experimental EtherType
            while f.len() < len {
                f.push((f.len() * 7 + i * 31) as u8);
            }
            f[14] = i as u8;
            f
        })
        .collect()
}

/// Writes a classic pcap (microsecond timestamps, LINKTYPE_ETHERNET).
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microseconds
    out.extend_from_slice(&2u16.to_le_bytes()); // version major
    out.extend_from_slice(&4u16.to_le_bytes()); // version minor
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&1_700_000_000u32.to_le_bytes()); // ts_sec
        out.extend_from_slice(&(i as u32 * 10).to_le_bytes()); // ts_usec
        out.extend_from_slice(&(f.len() as u32).to_le_bytes()); // incl_len
        out.extend_from_slice(&(f.len() as u32).to_le_bytes()); // orig_len
        out.extend_from_slice(f);
    }
    fs::write(path, out).expect("write pcap");
}

/// Reads the frames of a little-endian pcap (micro- or nanosecond magic).
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let data = fs::read(path).expect("read pcap");
    assert!(
        data.len() >= 24,
        "pcap {} shorter than its global header",
        path.display()
    );
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    assert!(
        magic == 0xa1b2_c3d4 || magic == 0xa1b2_3c4d,
        "unexpected pcap magic {magic:#x}"
    );
    let linktype = u32::from_le_bytes(data[20..24].try_into().unwrap());
    assert_eq!(linktype, 1, "pcap link type is not Ethernet");
    let mut frames = Vec::new();
    let mut off = 24;
    while off < data.len() {
        assert!(
            off + 16 <= data.len(),
            "truncated pcap record header at {off}"
        );
        let incl = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(data[off + 12..off + 16].try_into().unwrap()) as usize;
        assert_eq!(
            incl,
            orig,
            "record {} was cut by the snap length",
            frames.len()
        );
        off += 16;
        assert!(off + incl <= data.len(), "truncated pcap record at {off}");
        frames.push(data[off..off + incl].to_vec());
        off += incl;
    }
    frames
}

/// The vdev spec of a pcap port reading `rx` and writing `tx`.
pub fn pcap_vdev(name: &str, rx: &Path, tx: &Path) -> String {
    format!("{name},rx_pcap={},tx_pcap={}", rx.display(), tx.display())
}

/// Receives every frame of the port's rx pcap and sends each back unchanged,
/// then stops the port and checks its tx pcap holds the same frames.
pub fn pcap_loopback(
    eal: &Eal,
    port_name: &str,
    pool_name: &str,
    frames: &[Vec<u8>],
    tx_path: &Path,
) {
    let pool = Mempool::new(
        eal,
        pool_name,
        1023,
        32,
        dpdk_bindings::sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
        SOCKET_ANY,
    )
    .expect("mempool");

    assert!(Port::count(eal) >= 1);
    let mut port = Port::by_name(eal, port_name).expect("port by name");
    assert_eq!(port.name().unwrap(), port_name);
    assert_eq!(port.driver_name().unwrap(), "net_pcap");
    assert!(
        Port::by_name(eal, port_name).is_err(),
        "a second handle of one port must be refused"
    );

    port.configure(1, 1, true).expect("configure");
    // net_pcap hashes nothing, so asking for RSS leaves it off.
    assert_eq!(port.rss_hf(), 0);
    let rx_desc = port.rx_queue_setup(0, 512, &pool).expect("rx queue setup");
    let tx_desc = port.tx_queue_setup(0, 512).expect("tx queue setup");
    assert!(rx_desc > 0 && tx_desc > 0);
    port.start().expect("start");
    port.promiscuous_enable().expect("promiscuous");
    let link = port.link().expect("link");
    assert!(link.up, "pcap port link is up once started: {link:?}");
    let _mac = port.mac().expect("mac");

    let mut rxq = port.rx_queue(0).expect("rx queue handle");
    let mut txq = port.tx_queue(0).expect("tx queue handle");
    assert!(port.rx_queue(0).is_err(), "one handle per queue");
    assert_eq!(
        port.stop().unwrap_err().code(),
        libc_ebusy(),
        "stop must wait for queue handles"
    );

    let mut received: Vec<Vec<u8>> = Vec::new();
    let mut sent = 0usize;
    let mut batch = MbufBatch::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.len() < frames.len() && Instant::now() < deadline {
        // The first burst is capped at two frames (the pcap holds five).
        let n = if received.is_empty() {
            rxq.rx_burst_max(&mut batch, 2)
        } else {
            rxq.rx_burst(&mut batch)
        };
        if n == 0 {
            continue;
        }
        if received.is_empty() {
            assert_eq!(n, 2, "rx_burst_max takes at most `max`");
        }
        for m in batch.iter() {
            assert!(m.is_contiguous());
            assert_eq!(m.len(), m.data().len());
            // net_pcap stores the capture time in microseconds (write_pcap:
            // 1_700_000_000 s + 10 us per frame).
            let i = received.len() as u64;
            assert_eq!(
                m.rx_timestamp(),
                Some(1_700_000_000 * 1_000_000 + i * 10),
                "rx timestamp of frame {i}"
            );
            received.push(m.data().to_vec());
        }
        let out = txq.send(&mut batch, 4);
        assert_eq!(out.dropped, 0, "pcap tx never refuses");
        sent += out.sent;
        assert!(batch.is_empty());
    }
    assert_eq!(
        received, frames,
        "rx yields the pcap's frames in order, unchanged"
    );
    assert_eq!(sent, frames.len());

    let stats = port.stats().expect("stats");
    assert_eq!(stats.ipackets, frames.len() as u64);
    assert_eq!(stats.opackets, frames.len() as u64);
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!(stats.ibytes, bytes);
    assert_eq!(stats.obytes, bytes);
    assert_eq!(
        (stats.imissed, stats.ierrors, stats.oerrors, stats.rx_nombuf),
        (0, 0, 0, 0)
    );

    drop(rxq);
    drop(txq);
    port.stop().expect("stop");
    assert_eq!(read_pcap(tx_path), frames, "tx pcap holds the frames sent");
    port.close().expect("close");

    mbuf_editing(&pool);
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
}

fn libc_ebusy() -> i32 {
    16
}

/// Single-mbuf edits on a fresh mbuf from `pool`.
pub fn mbuf_editing(pool: &Mempool) {
    let mut m: Mbuf = pool.alloc().expect("alloc");
    assert!(m.is_empty());
    assert_eq!(m.rx_timestamp(), None, "a fresh mbuf has no rx timestamp");
    if m.set_rx_timestamp(42) {
        assert_eq!(m.rx_timestamp(), Some(42));
    }
    let headroom = m.headroom();
    assert_eq!(headroom, dpdk_bindings::sys::RTE_PKTMBUF_HEADROOM as usize);
    m.append(100).expect("append").copy_from_slice(&[0xab; 100]);
    assert_eq!(m.len(), 100);
    m.prepend(4)
        .expect("prepend")
        .copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(&m.data()[..5], &[1, 2, 3, 4, 0xab]);
    assert_eq!(m.headroom(), headroom - 4);
    assert!(m.adj(4));
    assert_eq!(m.data(), &[0xab; 100][..]);
    m.data_mut()[0] = 0xcd;
    m.truncate(10);
    assert_eq!(m.len(), 10);
    assert_eq!(m.data()[0], 0xcd);
    m.truncate(50); // longer than the packet: no-op
    assert_eq!(m.len(), 10);
    assert!(m.append(100_000).is_none());
    assert!(!m.adj(11));

    let raw = m.into_raw();
    // SAFETY: `raw` came from into_raw just above and has no other owner.
    let m = unsafe { Mbuf::from_raw(raw) };
    assert_eq!(m.len(), 10);

    let mut batch = MbufBatch::new();
    batch.push(m).expect("push");
    assert!(pool.alloc_bulk(&mut batch, 10));
    assert_eq!(batch.len(), 11);
    assert!(
        !pool.alloc_bulk(&mut batch, 64),
        "more than the batch holds"
    );
    let last = batch.pop().expect("pop");
    assert!(last.is_empty());
    drop(last);
    let mut drained = batch.drain();
    assert_eq!(drained.next().map(|m| m.len()), Some(10));
    drop(drained); // frees the other nine
    assert!(batch.is_empty());
    assert!(pool.alloc_bulk(&mut batch, 64));
    assert!(batch.is_full());
    assert_eq!(batch.clear(), 64);
    assert_eq!(pool.in_use(), 0);
}
