//! `[dpdk]` and `[[port]]`: EAL arguments, mempools, queues and the NICs.

use super::*;
use crate::config::raw::{RawDpdk, RawPort};

/// Most mbufs a pool may have: 2^24 (32 GiB of 2 KiB buffers).
const MAX_MEMPOOL: u32 = 1 << 24;
/// DPDK's per-lcore cache ceiling (RTE_MEMPOOL_CACHE_MAX_SIZE).
const MAX_MEMPOOL_CACHE: u32 = 512;

pub(super) fn dpdk(cx: &Ctx, r: &RawDpdk) -> Res<Dpdk> {
    let mut o = Dpdk::default();
    if let Some(list) = &r.eal_args {
        for (i, a) in list.get_ref().iter().enumerate() {
            let key = format!("dpdk.eal_args[{i}]");
            let arg = a.get_ref();
            if arg.is_empty() {
                return cx.err(a.span(), &key, "an EAL argument is empty".to_string());
            }
            if arg.contains('\0') {
                return cx.err(
                    a.span(),
                    &key,
                    "an EAL argument contains a NUL byte".to_string(),
                );
            }
            o.eal_args.push(arg.clone());
        }
    }
    if let Some(w) = &r.workers {
        o.workers = cx.int(w, "dpdk.workers", 1, MAX_WORKERS, " worker threads")? as u16;
    }
    if let Some(list) = &r.lcores {
        if list.get_ref().is_empty() {
            return cx.err(
                list.span(),
                "dpdk.lcores",
                "list at least one CPU, or leave lcores out to have them chosen at start"
                    .to_string(),
            );
        }
        for (i, c) in list.get_ref().iter().enumerate() {
            let key = format!("dpdk.lcores[{i}]");
            let cpu = cx.int(c, &key, 0, MAX_CPU, "")?;
            if o.lcores.contains(&cpu) {
                return cx.err(
                    c.span(),
                    &key,
                    format!("CPU {cpu} is listed twice; each worker needs a CPU of its own"),
                );
            }
            if o.lcores.len() as u32 == MAX_WORKERS {
                return cx.err(
                    c.span(),
                    &key,
                    format!("at most {MAX_WORKERS} workers (one per CPU listed)"),
                );
            }
            o.lcores.push(cpu);
        }
        match &r.workers {
            Some(w) if usize::from(o.workers) != o.lcores.len() => {
                return cx.err(
                    w.span(),
                    "dpdk.workers",
                    format!(
                        "{} workers but lcores lists {} CPUs; one worker runs per CPU in lcores (leave workers out)",
                        o.workers,
                        o.lcores.len()
                    ),
                );
            }
            _ => o.workers = o.lcores.len() as u16,
        }
    }
    if let Some(c) = &r.control_lcore {
        let cpu = cx.int(c, "dpdk.control_lcore", 0, MAX_CPU, "")?;
        if o.lcores.contains(&cpu) {
            return cx.err(
                c.span(),
                "dpdk.control_lcore",
                format!(
                    "CPU {cpu} is also in lcores; the control thread stays off the worker CPUs"
                ),
            );
        }
        o.control_lcore = Some(cpu);
    }
    if let Some(v) = &r.mempool_size {
        o.mempool_size = cx.int(v, "dpdk.mempool_size", 255, MAX_MEMPOOL, " mbufs")?;
    }
    if let Some(v) = &r.mempool_cache {
        o.mempool_cache = cx.int(v, "dpdk.mempool_cache", 0, MAX_MEMPOOL_CACHE, " mbufs")?;
    }
    // DPDK refuses a cache larger than the pool divided by 1.5.
    if u64::from(o.mempool_cache) * 3 > u64::from(o.mempool_size) * 2 {
        let (span, key) = match (&r.mempool_cache, &r.mempool_size) {
            (Some(c), _) => (c.span(), "dpdk.mempool_cache"),
            (None, Some(p)) => (p.span(), "dpdk.mempool_size"),
            (None, None) => (0..0, ""),
        };
        return cx.err(
            span,
            key,
            format!(
                "a cache of {} mbufs needs a pool of at least {} (DPDK allows a per-lcore cache of at most 2/3 of the pool)",
                o.mempool_cache,
                (o.mempool_cache * 3).div_ceil(2)
            ),
        );
    }
    if let Some(v) = &r.rx_descriptors {
        o.rx_descriptors = cx.int(v, "dpdk.rx_descriptors", 32, 32_768, "")? as u16;
    }
    if let Some(v) = &r.tx_descriptors {
        o.tx_descriptors = cx.int(v, "dpdk.tx_descriptors", 32, 32_768, "")? as u16;
    }
    if let Some(v) = &r.tx_retries {
        o.tx_retries = cx.int(v, "dpdk.tx_retries", 0, 1000, " bursts")?;
    }
    if let Some(v) = &r.stats_interval {
        o.stats_interval = cx.int(v, "dpdk.stats_interval", 0, 3600, " seconds (0 = off)")?;
    }
    if let Some(v) = &r.idle_exit_ms {
        o.idle_exit_ms = Some(cx.int(
            v,
            "dpdk.idle_exit_ms",
            0,
            86_400_000,
            " milliseconds (0 = never)",
        )?);
    }
    if let Some(v) = &r.idle_sleep_us {
        o.idle_sleep_us = cx.int(
            v,
            "dpdk.idle_sleep_us",
            0,
            100_000,
            " microseconds (0 = pure polling)",
        )?;
    }
    if let Some(v) = &r.idle_polls {
        o.idle_polls = cx.int(v, "dpdk.idle_polls", 1, 1_000_000, " empty polls")?;
    }
    if let Some(v) = &r.kernel_rate {
        o.kernel_rate = cx.int(v, "dpdk.kernel_rate", 1, 10_000_000, " frames per second")?;
    }
    if let Some(v) = &r.kernel_burst {
        o.kernel_burst = cx.int(v, "dpdk.kernel_burst", 1, 65_536, " frames")?;
    }
    Ok(o)
}

pub(super) fn ports(cx: &Ctx, raw: &[S<RawPort>]) -> Res<Vec<Port>> {
    let mut out: Vec<Port> = Vec::with_capacity(raw.len());
    // device name -> line; subnet -> (port index, line)
    let mut devices: HashMap<String, usize> = HashMap::new();
    let mut subnets: HashMap<Subnet, (usize, usize)> = HashMap::new();
    // kernel interface name -> line
    let mut kernel: HashMap<String, usize> = HashMap::new();
    for (i, p) in raw.iter().enumerate() {
        let p = p.get_ref();
        let key = format!("port[{i}].name");
        let name = p.name.get_ref().trim().to_string();
        let dev = name.split(',').next().unwrap_or("");
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return cx.err(
                p.name.span(),
                &key,
                format!("`{name}` is not a port: write a PCI address (0000:01:00.0) or a vdev string without spaces (net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap)"),
            );
        }
        if !is_pci_address(dev) && !dev.starts_with("net_") {
            return cx.err(
                p.name.span(),
                &key,
                format!("`{dev}` is neither a PCI address (0000:01:00.0) nor an ethdev vdev (net_pcap0, net_ring0, net_af_packet0, net_af_xdp0, ...)"),
            );
        }
        let mtu = match &p.mtu {
            Some(m) => Some(cx.int(
                m,
                &format!("port[{i}].mtu"),
                MIN_MTU.into(),
                MAX_MTU.into(),
                " bytes",
            )? as u16),
            None => None,
        };
        let kernel_interface = match &p.kernel_interface {
            Some(k) => {
                let key = format!("port[{i}].kernel_interface");
                let ifname = k.get_ref().as_str();
                let valid = (1..16).contains(&ifname.len())
                    && ifname != "."
                    && ifname != ".."
                    && ifname
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !valid {
                    return cx.err(
                        k.span(),
                        &key,
                        format!("`{ifname}` is not an interface name: 1 to 15 characters of letters, digits, '-', '_' and '.'"),
                    );
                }
                if let Some(line) = kernel.get(ifname) {
                    return cx.err(
                        k.span(),
                        &key,
                        format!("kernel interface `{ifname}` is already the one of the port at line {line}"),
                    );
                }
                kernel.insert(ifname.to_string(), cx.line(&k.span()));
                Some(ifname.to_string())
            }
            None => None,
        };
        let port = Port {
            name: name.clone(),
            subnets: Vec::new(),
            mtu,
            kernel_interface,
        };
        let device = port.device_name();
        if let Some(line) = devices.get(&device) {
            return cx.err(
                p.name.span(),
                &key,
                format!("device `{device}` is already port (line {line}); each port needs its own device"),
            );
        }
        devices.insert(device, cx.line(&p.name.span()));
        let mut port = port;
        if let Some(list) = &p.subnets {
            for (j, sn) in list.get_ref().iter().enumerate() {
                let key = format!("port[{i}].subnets[{j}]");
                let subnet = cx.subnet(sn, &key)?;
                if let Some((other, line)) = subnets.get(&subnet) {
                    let whose = if *other == i {
                        "this port".to_string()
                    } else {
                        format!("port[{other}]")
                    };
                    return cx.err(
                        sn.span(),
                        &key,
                        format!("{subnet} is already behind {whose} (line {line})"),
                    );
                }
                subnets.insert(subnet, (i, cx.line(&sn.span())));
                port.subnets.push(subnet);
            }
        }
        out.push(port);
    }
    Ok(out)
}
