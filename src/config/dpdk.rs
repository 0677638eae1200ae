//! `[dpdk]` and `[[port]]`: what only `rampart run` reads.

use std::fmt;
use std::net::IpAddr;

/// `[dpdk]`: how `rampart run` sets up DPDK. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dpdk {
    /// EAL arguments (without a program name), e.g. `["--no-huge", "-m",
    /// "512"]`. `rampart run` adds `-l CONTROL`, and `--vdev` / `-a` for each
    /// `[[port]]`; arguments after `--` on its command line replace these.
    pub eal_args: Vec<String>,
    /// Worker threads, one per CPU; each polls queue `worker` of every port.
    pub workers: u16,
    /// CPUs the workers are pinned to (one each, distinct); empty: chosen at
    /// start from the CPUs the process may use, after the control CPU.
    pub lcores: Vec<u32>,
    /// CPU of the main (control) thread, EAL's main lcore; `None`: the first
    /// allowed CPU that is not a worker's.
    pub control_lcore: Option<u32>,
    /// Mbufs in the packet pool (shared by every port and queue).
    pub mempool_size: u32,
    /// Per-lcore mbuf cache of the pool (0..=512, at most 2/3 of the pool).
    pub mempool_cache: u32,
    /// Descriptors per rx / tx queue (the driver may adjust them).
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    /// Extra tx bursts for frames the NIC did not take at once; what is
    /// still unsent after them is freed and counted (`tx_dropped`).
    pub tx_retries: u32,
    /// Seconds between rate lines on stdout; 0 = none.
    pub stats_interval: u32,
    /// Stop after rx has been idle this long (ms); 0 = never. `None`: 1000
    /// when every port is a finite net_pcap vdev (an `rx_pcap` file without
    /// `infinite_rx`), else never.
    pub idle_exit_ms: Option<u32>,
    /// Microseconds a worker sleeps after [`Dpdk::idle_polls`] empty polls
    /// in a row, and after every further empty poll until traffic comes
    /// back; 0 = pure polling (the default).
    pub idle_sleep_us: u32,
    /// Empty polls in a row before a worker starts sleeping (with
    /// `idle_sleep_us` set).
    pub idle_polls: u32,
    /// Frames per second each worker may pass to the kernel interfaces
    /// (`[[port]] kernel_interface`), in bursts of up to `kernel_burst`;
    /// the rest are dropped (`kernel_rate_limited`).
    pub kernel_rate: u32,
    pub kernel_burst: u32,
}

impl Default for Dpdk {
    fn default() -> Dpdk {
        Dpdk {
            eal_args: Vec::new(),
            workers: 1,
            lcores: Vec::new(),
            control_lcore: None,
            mempool_size: 16_383,
            mempool_cache: 256,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            tx_retries: 4,
            stats_interval: 1,
            idle_exit_ms: None,
            idle_sleep_us: 0,
            idle_polls: 1024,
            kernel_rate: 20_000,
            kernel_burst: 512,
        }
    }
}

/// Idle time after which a run whose ports are all finite pcap files stops.
pub const DEFAULT_PCAP_IDLE_EXIT_MS: u32 = 1000;

impl Dpdk {
    /// The idle-exit time in force for `ports` (see [`Dpdk::idle_exit_ms`]);
    /// 0 = never.
    pub fn idle_exit_ms_for(&self, ports: &[Port]) -> u32 {
        match self.idle_exit_ms {
            Some(ms) => ms,
            None if !ports.is_empty() && ports.iter().all(Port::is_finite_pcap) => {
                DEFAULT_PCAP_IDLE_EXIT_MS
            }
            None => 0,
        }
    }
}

/// `[[port]]`: one DPDK port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// A PCI address (`0000:01:00.0`, optionally with `,devargs`) or a vdev
    /// string (`net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap`).
    pub name: String,
    /// Destinations behind this port: a frame leaves by the port with the
    /// longest matching prefix, else by the port it came in on.
    pub subnets: Vec<Subnet>,
    /// This port's L3 MTU, when it differs from `node.mtu`.
    pub mtu: Option<u16>,
    /// The kernel interface `rampart run` creates for this port (a TAP
    /// device with the port's MAC): the node's own traffic that the
    /// datapath does not handle goes to the kernel through it, and what the
    /// kernel sends on it leaves by this port.
    pub kernel_interface: Option<String>,
}

impl Port {
    /// The ethdev name DPDK gives the device: the part before the first `,`
    /// (for a PCI address, in its full `DDDD:BB:DD.F` form).
    pub fn device_name(&self) -> String {
        let dev = self.name.split(',').next().unwrap_or("");
        if is_pci_address(dev) && dev.matches(':').count() == 1 {
            format!("0000:{dev}")
        } else {
            dev.to_string()
        }
    }

    /// Whether the name is a PCI address (else a vdev).
    pub fn is_pci(&self) -> bool {
        is_pci_address(self.name.split(',').next().unwrap_or(""))
    }

    /// The value of a vdev argument (`rx_pcap` of `net_pcap0,rx_pcap=x`),
    /// the first if repeated.
    pub fn vdev_arg<'a>(&'a self, key: &'a str) -> Option<&'a str> {
        self.vdev_args(key).next()
    }

    /// Every value of a vdev argument, in order.
    pub fn vdev_args<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.name
            .split(',')
            .skip(1)
            .filter_map(move |kv| kv.split_once('=').filter(|(k, _)| *k == key))
            .map(|(_, v)| v)
    }

    /// A net_pcap vdev that reads `rx_pcap` files once (no `infinite_rx`,
    /// no live interface): its input ends.
    pub fn is_finite_pcap(&self) -> bool {
        self.device_name().starts_with("net_pcap")
            && self.vdev_arg("rx_pcap").is_some()
            && self.vdev_arg("infinite_rx").is_none_or(|v| v.trim() == "0")
    }
}

/// `DDDD:BB:DD.F` or `BB:DD.F`, hex digits.
pub(crate) fn is_pci_address(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split(':').collect();
    let (bus, devfn) = match parts.as_slice() {
        [domain, bus, devfn] if hex(domain, 4) => (*bus, *devfn),
        [bus, devfn] => (*bus, *devfn),
        _ => return false,
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    hex(bus, 2) && hex(dev, 2) && func.len() == 1 && matches!(func.as_bytes()[0], b'0'..=b'7')
}

/// An IP prefix, `198.18.1.0/24` or `2001:2::/48`; host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl Subnet {
    /// Whether `ip` is inside the prefix (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = prefix_mask_v4(self.prefix_len);
                u32::from(a) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = prefix_mask_v6(self.prefix_len);
                u128::from(a) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// The network mask of an IPv4 prefix length (0..=32).
pub fn prefix_mask_v4(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

/// The network mask of an IPv6 prefix length (0..=128).
pub fn prefix_mask_v6(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}
