//! The start-up steps of `rampart run`: the CPU plan, EAL's arguments and
//! its failure hints, the ports and their kernel interfaces, and each
//! worker's queues.

use std::sync::Arc;

use dpdk_bindings::{Eal, Mempool, Port as EthPort, Ring};

use crate::config::{Dpdk, Port};
use crate::control::link::SnapshotStore;
use crate::io::dpdk::{DpdkIo, Handover, KernelQueues, RxPort};
use crate::io::route::Routes;

/// CPUs of the control thread and of each worker.
pub(super) struct CpuPlan {
    pub(super) control: usize,
    pub(super) workers: Vec<usize>,
}

pub(super) fn cpu_plan(d: &Dpdk) -> Result<CpuPlan, String> {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if allowed.is_empty() {
        return Err("cannot read the CPUs this process may run on (sched_getaffinity)".into());
    }
    let check = |cpu: usize, key: &str| {
        if allowed.contains(&cpu) {
            Ok(cpu)
        } else {
            Err(format!(
                "dpdk.{key}: CPU {cpu} is not available to this process (allowed: {})",
                join(allowed.iter())
            ))
        }
    };
    let workers: Vec<usize> = if d.lcores.is_empty() {
        Vec::new()
    } else {
        d.lcores
            .iter()
            .map(|&c| check(c as usize, "lcores"))
            .collect::<Result<_, _>>()?
    };
    let control = match d.control_lcore {
        Some(c) => check(c as usize, "control_lcore")?,
        None => allowed
            .iter()
            .copied()
            .find(|c| !workers.contains(c))
            .unwrap_or(allowed[0]),
    };
    if !workers.is_empty() {
        return Ok(CpuPlan { control, workers });
    }
    // Chosen here: the CPUs other than the control CPU first, then (more
    // workers than CPUs) round again over all of them.
    let mut order: Vec<usize> = allowed.iter().copied().filter(|&c| c != control).collect();
    order.extend(allowed.iter().copied());
    let n = usize::from(d.workers);
    let workers: Vec<usize> = order.iter().copied().cycle().take(n).collect();
    if n > allowed.len().saturating_sub(1).max(1) {
        eprintln!(
            "warning: {n} workers on {} CPUs: some share a CPU (set dpdk.lcores to choose)",
            allowed.len()
        );
    }
    Ok(CpuPlan { control, workers })
}

/// The EAL command line: the configured (or overriding) arguments, `-l`
/// for the control CPU unless they set lcores themselves, and the ports.
pub(super) fn eal_args(
    d: &Dpdk,
    over: Option<&[String]>,
    ports: &[Port],
    control: usize,
) -> Vec<String> {
    let base: Vec<String> = over.map_or_else(|| d.eal_args.clone(), <[String]>::to_vec);
    let sets_lcores = base.iter().any(|a| {
        a == "-l" || a == "-c" || a.starts_with("--lcores") || (a.starts_with("-l") && a.len() > 2)
    });
    let mut args = Vec::with_capacity(base.len() + 2 + 2 * ports.len());
    if !sets_lcores {
        args.push("-l".to_string());
        args.push(control.to_string());
    }
    args.extend(base);
    for p in ports {
        args.push(if p.is_pci() { "-a" } else { "--vdev" }.to_string());
        args.push(p.name.clone());
    }
    for (i, p) in ports.iter().enumerate() {
        if let Some(ifname) = &p.kernel_interface {
            args.push("--vdev".to_string());
            args.push(format!("{},iface={ifname}", kernel_device(i)));
        }
    }
    args
}

/// The TAP vdev of port `i`'s kernel interface.
pub(super) fn kernel_device(i: usize) -> String {
    format!("net_tap_kernel{i}")
}

/// Port `i`'s kernel interface: a TAP port with `mac` (the port's own),
/// one queue pair per worker, started (which brings the kernel interface
/// up). Closing it, or the process ending however it ends, removes the
/// interface.
pub(super) fn setup_kernel_port(
    eal: &Eal,
    pool: &Mempool,
    d: &Dpdk,
    i: usize,
    ifname: &str,
    mac: [u8; 6],
    workers: usize,
) -> Result<EthPort, String> {
    let dev = kernel_device(i);
    let what = format!("port[{i}].kernel_interface {ifname}");
    let mut port = EthPort::by_name(eal, &dev).map_err(|e| {
        format!("{what}: the TAP device was not created ({e}) (hint: EAL's log above has the reason: /dev/net/tun missing, no CAP_NET_ADMIN, or an interface of that name already exists)")
    })?;
    let q = u16::try_from(workers).unwrap_or(u16::MAX);
    port.configure(q, q, false)
        .map_err(|e| format!("{what}: {e}"))?;
    for queue in 0..q {
        port.rx_queue_setup(queue, d.rx_descriptors, pool)
            .map_err(|e| format!("{what}: rx queue {queue}: {e}"))?;
        port.tx_queue_setup(queue, d.tx_descriptors)
            .map_err(|e| format!("{what}: tx queue {queue}: {e}"))?;
    }
    port.set_mac(mac)
        .map_err(|e| format!("{what}: cannot give it the port's MAC: {e}"))?;
    port.start()
        .map_err(|e| format!("{what}: does not start: {e}"))?;
    Ok(port)
}

/// A net_pcap port that reads a missing file fails deep inside EAL's
/// device probe; say which file instead.
pub(super) fn check_port_files(ports: &[Port]) -> Result<(), String> {
    for (i, p) in ports.iter().enumerate() {
        for f in p.vdev_args("rx_pcap") {
            if std::fs::metadata(f).is_err() {
                return Err(format!(
                    "port[{i}] {}: rx_pcap file `{f}` cannot be read (paths are relative to the working directory)",
                    p.device_name()
                ));
            }
        }
    }
    Ok(())
}

/// One line for a failed `rte_eal_init`, with the likeliest fix.
pub(super) fn eal_failure(e: &dpdk_bindings::Error, args: &[String]) -> String {
    let no_huge = args.iter().any(|a| a == "--no-huge");
    let root = is_root();
    let code = e.code();
    let hint = if !no_huge && (hugepages_free() == Some(0) || (root && code == libc::EACCES)) {
        "no usable hugepages: run `sudo scripts/setup-dpdk.sh`, or run without them: `rampart run --config FILE -- --no-huge -m 512 --no-shconf`"
    } else if !root && (code == libc::EACCES || code == libc::EPERM) {
        "EAL needs root (hugepages, /var/run/dpdk); run as root"
    } else if code == libc::EALREADY {
        "another DPDK process uses this file prefix; add --file-prefix NAME to the EAL arguments"
    } else if code == libc::ENODEV {
        "a device EAL was given does not parse or has no driver: check the [[port]] names (net_pcap0, net_ring0, net_af_packet0, ... and their arguments)"
    } else {
        "EAL's own log above names the step that failed; check dpdk.eal_args (or the arguments after --)"
    };
    format!("EAL init failed: {e} (hint: {hint})")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn hugepages_free() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Finds, configures and starts port `i`.
pub(super) fn setup_port(
    eal: &Eal,
    pool: &Mempool,
    d: &Dpdk,
    i: usize,
    p: &Port,
    workers: usize,
) -> Result<EthPort, String> {
    let dev = p.device_name();
    let what = format!("port[{i}] {dev}");
    let mut port = EthPort::by_name(eal, &dev).map_err(|e| {
        let hint = if p.is_pci() {
            "a PCI port must be bound to a DPDK driver (vfio-pci, or the NIC's own PMD) and not hidden by --no-pci or -b in the EAL arguments"
        } else {
            "the vdev was not created: EAL's log above has the driver's reason (e.g. a net_pcap tx_pcap directory that does not exist)"
        };
        format!(
            "{what}: not found ({e}; DPDK has {} port(s)) (hint: {hint})",
            EthPort::count(eal)
        )
    })?;
    let q = u16::try_from(workers).unwrap_or(u16::MAX);
    port.configure(q, q, workers > 1).map_err(|e| {
        let pcap = if dev.starts_with("net_pcap") {
            "; a net_pcap vdev has one rx queue per rx_pcap= and one tx queue per tx_pcap="
        } else {
            ""
        };
        format!("{what}: {e} (hint: every port needs one rx and one tx queue per worker, {workers} here{pcap})")
    })?;
    for queue in 0..q {
        port.rx_queue_setup(queue, d.rx_descriptors, pool)
            .map_err(|e| {
                format!(
                    "{what}: rx queue {queue}: {e} (hint: dpdk.rx_descriptors, or a larger dpdk.mempool_size: an infinite_rx pcap needs the whole file in mbufs per queue)"
                )
            })?;
        port.tx_queue_setup(queue, d.tx_descriptors)
            .map_err(|e| format!("{what}: tx queue {queue}: {e} (hint: dpdk.tx_descriptors)"))?;
    }
    port.start().map_err(|e| {
        format!("{what}: the port does not start: {e} (hint: EAL's log above has the driver's reason; a net_pcap tx_pcap directory must be writable)")
    })?;
    if let Err(e) = port.promiscuous_enable() {
        eprintln!("warning: {what}: {e} (continuing without promiscuous mode)");
    }
    Ok(port)
}

/// Worker `w`'s queues: queue `w` of every port.
pub(super) fn worker_io(
    ports: &[EthPort],
    cfg_ports: &[Port],
    pool: &Mempool,
    routes: &Routes,
    d: &Dpdk,
    w: usize,
) -> Result<DpdkIo, String> {
    let q = u16::try_from(w).unwrap_or(u16::MAX);
    let mut rx = Vec::with_capacity(ports.len());
    let mut tx = Vec::with_capacity(ports.len());
    for (i, (port, p)) in ports.iter().zip(cfg_ports.iter()).enumerate() {
        let queue = port
            .rx_queue(q)
            .map_err(|e| format!("port[{i}]: rx queue {w}: {e}"))?;
        rx.push(RxPort {
            queue,
            pcap_timestamps: p.device_name().starts_with("net_pcap"),
        });
        tx.push(
            port.tx_queue(q)
                .map_err(|e| format!("port[{i}]: tx queue {w}: {e}"))?,
        );
    }
    Ok(DpdkIo::new(
        rx,
        tx,
        pool.clone(),
        routes.clone(),
        d.tx_retries,
    ))
}

/// Worker `w`'s queues on the ports' kernel interfaces.
pub(super) fn with_kernel(
    mut io: DpdkIo,
    kernel: &[Option<EthPort>],
    w: usize,
) -> Result<DpdkIo, String> {
    let q = u16::try_from(w).unwrap_or(u16::MAX);
    for (i, k) in kernel.iter().enumerate() {
        let Some(k) = k else { continue };
        io = io.with_kernel(KernelQueues {
            port: i,
            rx: k
                .rx_queue(q)
                .map_err(|e| format!("port[{i}] kernel interface: rx queue {w}: {e}"))?,
            tx: k
                .tx_queue(q)
                .map_err(|e| format!("port[{i}] kernel interface: tx queue {w}: {e}"))?,
        });
    }
    Ok(io)
}

/// Worker `w`'s ends of the hand-over rings (none with one worker).
pub(super) fn with_handover(
    io: DpdkIo,
    rings: &[Ring],
    w: usize,
    snap: &SnapshotStore,
) -> Result<DpdkIo, String> {
    if rings.len() < 2 {
        return Ok(io);
    }
    let mut to = Vec::with_capacity(rings.len());
    for (i, r) in rings.iter().enumerate() {
        to.push(if i == w {
            None
        } else {
            Some(
                r.producer()
                    .map_err(|e| format!("hand-over ring {i}: {e}"))?,
            )
        });
    }
    let from = rings
        .get(w)
        .ok_or_else(|| format!("no hand-over ring for worker {w}"))?
        .consumer()
        .map_err(|e| format!("hand-over ring {w}: {e}"))?;
    Ok(io.with_handover(Handover {
        me: w as u16,
        workers: rings.len() as u16,
        snap: Arc::clone(snap),
        to,
        from,
    }))
}

pub(super) fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}
