//! Raw (spanned) config → validated [`Config`]. Checks run in file order and
//! the first failure is returned; cross-references (duplicates, conflicts)
//! are reported at the later of the two occurrences and name the earlier one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;

use super::error::{line_col, ConfigError};
use super::raw::{
    RawBackend, RawConfig, RawConntrack, RawControl, RawDpdk, RawHealth, RawIcmp, RawNode, RawPort,
    RawSynproxy, RawVip, S,
};
use super::*;
use crate::flow::Family;

type Res<T> = Result<T, ConfigError>;

struct Ctx<'a> {
    text: &'a str,
    file: &'a str,
}

impl Ctx<'_> {
    fn err<T>(&self, span: Range<usize>, key: &str, message: String) -> Res<T> {
        let key = (!key.is_empty()).then(|| key.to_string());
        Err(ConfigError::at(
            self.text, self.file, span.start, key, message,
        ))
    }

    fn line(&self, span: &Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }

    fn addr(&self, v: &S<String>, key: &str) -> Res<Addr> {
        let s = v.get_ref().trim();
        let ip: IpAddr = match s.parse() {
            Ok(ip) => ip,
            Err(_) => {
                let hint = if s.contains('/') {
                    " (write a single address, without a prefix length)"
                } else if s.contains(':') && s.contains('.') && !s.starts_with("::ffff:") {
                    " (write the address without a port)"
                } else {
                    ""
                };
                return self.err(
                    v.span(),
                    key,
                    format!("`{s}` is not an IPv4 or IPv6 address{hint}"),
                );
            }
        };
        let bad = match ip {
            IpAddr::V4(a) => {
                if a.is_unspecified() {
                    Some("the unspecified address")
                } else if a.is_multicast() {
                    Some("a multicast address")
                } else if a.is_broadcast() {
                    Some("the broadcast address")
                } else {
                    None
                }
            }
            IpAddr::V6(a) => {
                if a.is_unspecified() {
                    Some("the unspecified address")
                } else if a.is_multicast() {
                    Some("a multicast address")
                } else {
                    None
                }
            }
        };
        if let Some(what) = bad {
            return self.err(
                v.span(),
                key,
                format!("{s} is {what}; a unicast address is needed here"),
            );
        }
        Ok(Addr::from(ip))
    }

    fn mac(&self, v: &S<String>, key: &str) -> Res<Mac> {
        let s = v.get_ref().trim();
        let mac: Mac = match s.parse() {
            Ok(m) => m,
            Err(why) => {
                return self.err(
                    v.span(),
                    key,
                    format!("`{s}` is not a MAC address ({why}, e.g. 02:00:00:00:00:01)"),
                )
            }
        };
        if mac.is_multicast() {
            return self.err(
                v.span(),
                key,
                format!("{mac} is a multicast/broadcast MAC; a unicast MAC is needed here"),
            );
        }
        Ok(mac)
    }

    /// `a.b.c.d/len` or `x::/len`, host bits zero.
    fn subnet(&self, v: &S<String>, key: &str) -> Res<Subnet> {
        let s = v.get_ref().trim();
        let Some((a, l)) = s.split_once('/') else {
            return self.err(
                v.span(),
                key,
                format!("`{s}` is not a subnet: write an address and a prefix length, e.g. 198.18.1.0/24 or 2001:2::/48"),
            );
        };
        let Ok(addr) = a.parse::<IpAddr>() else {
            return self.err(
                v.span(),
                key,
                format!("`{a}` is not an IPv4 or IPv6 address"),
            );
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return self.err(
                    v.span(),
                    key,
                    format!("`/{l}` is not a prefix length: must be 0..={max} for this address"),
                )
            }
        };
        let net = match addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & prefix_mask_v4(len)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & prefix_mask_v6(len)).into()),
        };
        if net != addr {
            return self.err(
                v.span(),
                key,
                format!("{s} has host bits set; the subnet is {net}/{len}"),
            );
        }
        Ok(Subnet {
            addr,
            prefix_len: len,
        })
    }

    fn int(&self, v: &S<i64>, key: &str, lo: u32, hi: u32, unit: &str) -> Res<u32> {
        let n = *v.get_ref();
        if n < i64::from(lo) || n > i64::from(hi) {
            return self.err(
                v.span(),
                key,
                format!(
                    "{n} is out of range: {key_tail} must be {lo}..={hi}{unit}",
                    key_tail = tail(key)
                ),
            );
        }
        Ok(n as u32)
    }
}

/// The error at the earliest position in the file among `errors`, so that
/// checks run in field order still report in file order.
fn earliest<'e>(errors: impl IntoIterator<Item = Option<&'e ConfigError>>) -> Res<()> {
    match errors
        .into_iter()
        .flatten()
        .min_by_key(|e| (e.line(), e.column()))
    {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    }
}

/// Last component of a key path, without index: `vip[0].port` → `port`.
fn tail(key: &str) -> &str {
    let last = key.rsplit('.').next().unwrap_or(key);
    last.split('[').next().unwrap_or(last)
}

fn family_name(a: Addr) -> &'static str {
    match a.family() {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3u32;
    while d.saturating_mul(d) <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// The smallest prime `>= n`.
pub(crate) fn next_prime(n: u32) -> u32 {
    let mut p = n.max(2);
    while !is_prime(p) {
        p += 1;
    }
    p
}

/// `addr:port`, with brackets around IPv6.
fn socket(a: Addr, port: u16) -> String {
    match a.family() {
        Family::V4 => format!("{a}:{port}"),
        Family::V6 => format!("[{a}]:{port}"),
    }
}

pub(crate) fn validate(text: &str, file: &str, raw: &RawConfig) -> Res<Config> {
    let cx = Ctx { text, file };
    let node = node(&cx, raw.node.get_ref())?;
    let conntrack = match &raw.conntrack {
        Some(c) => conntrack(&cx, c.get_ref())?,
        None => Conntrack::default(),
    };
    let synproxy = match &raw.synproxy {
        Some(s) => synproxy(&cx, s.get_ref())?,
        None => Synproxy::default(),
    };
    let control = match &raw.control {
        Some(c) => control(&cx, c.get_ref())?,
        None => ControlConfig::default(),
    };
    let icmp = match &raw.icmp {
        Some(c) => icmp(&cx, c.get_ref())?,
        None => Icmp::default(),
    };

    let mut neighbors = Vec::with_capacity(raw.neighbors.len());
    let mut seen_neighbors: HashMap<Addr, usize> = HashMap::new();
    for (i, n) in raw.neighbors.iter().enumerate() {
        let n = n.get_ref();
        let key = format!("neighbor[{i}].address");
        let address = cx.addr(&n.address, &key)?;
        if node.addresses.contains(&address) {
            return cx.err(
                n.address.span(),
                &key,
                format!("{address} is one of node.addresses; neighbor entries are for other hosts"),
            );
        }
        if let Some(line) = seen_neighbors.get(&address) {
            return cx.err(
                n.address.span(),
                &key,
                format!("{address} already has a neighbor entry (line {line})"),
            );
        }
        seen_neighbors.insert(address, cx.line(&n.address.span()));
        let mac = cx.mac(&n.mac, &format!("neighbor[{i}].mac"))?;
        neighbors.push(Neighbor { address, mac });
    }

    let mut vips = VipChecker {
        cx: &cx,
        node: &node,
        names: HashMap::new(),
        services: HashMap::new(),
        addresses: HashMap::new(),
        locals: HashMap::new(),
    };
    let mut out = Vec::with_capacity(raw.vips.len());
    for (i, v) in raw.vips.iter().enumerate() {
        out.push(vips.vip(i, v)?);
    }

    // A proxied connection waits for its backend in state syn_sent; the
    // resends must be over (and the client reset) before that entry expires.
    let waiting = u32::from(synproxy.syn_retries) * synproxy.syn_retry_interval;
    if out.iter().any(|v| v.synproxy) && waiting >= conntrack.timeouts.tcp_syn_sent {
        let (span, key) = match &raw.synproxy {
            Some(s) => (s.span(), "synproxy.syn_retries"),
            None => match &raw.conntrack {
                Some(c) => (c.span(), "conntrack.tcp_syn_sent"),
                None => (0..0, ""),
            },
        };
        return cx.err(
            span,
            key,
            format!(
                "syn_retries x syn_retry_interval is {waiting} s, not below conntrack.tcp_syn_sent ({} s): a proxied connection's entry would expire before its backend is given up on and the client reset",
                conntrack.timeouts.tcp_syn_sent
            ),
        );
    }

    let dpdk = match &raw.dpdk {
        Some(d) => Some(dpdk(&cx, d.get_ref())?),
        None => None,
    };
    let ports = ports(&cx, &raw.ports)?;

    Ok(Config {
        node,
        conntrack,
        synproxy,
        icmp,
        neighbors,
        vips: out,
        control,
        dpdk,
        ports,
    })
}

fn control(cx: &Ctx, r: &RawControl) -> Res<ControlConfig> {
    let policy = |v: &S<String>, key: &str| {
        choice(
            cx,
            v,
            key,
            "policy",
            ConnPolicy::NAMES,
            ConnPolicy::from_name,
        )
    };
    let socket = r.socket.as_ref().map(|v| socket_path(cx, v)).transpose();
    let prometheus = r
        .prometheus
        .as_ref()
        .map(|v| listen_addr(cx, v, "control.prometheus"))
        .transpose();
    let removed_vip = r
        .removed_vip
        .as_ref()
        .map(|v| policy(v, "control.removed_vip"))
        .transpose();
    let removed_backend = r
        .removed_backend
        .as_ref()
        .map(|v| policy(v, "control.removed_backend"))
        .transpose();
    earliest([
        socket.as_ref().err(),
        prometheus.as_ref().err(),
        removed_vip.as_ref().err(),
        removed_backend.as_ref().err(),
    ])?;
    let mut o = ControlConfig::default();
    if let Some(v) = socket? {
        o.socket = v;
    }
    if let Some(v) = prometheus? {
        o.prometheus = v;
    }
    if let Some(v) = removed_vip? {
        o.removed_vip = v;
    }
    if let Some(v) = removed_backend? {
        o.removed_backend = v;
    }
    Ok(o)
}

/// `control.socket`: `""` is off; otherwise a path that fits `sun_path`.
fn socket_path(cx: &Ctx, v: &S<String>) -> Res<Option<PathBuf>> {
    let path = v.get_ref();
    if path.is_empty() {
        return Ok(None);
    }
    if path.contains('\0') {
        return cx.err(
            v.span(),
            "control.socket",
            "the path contains a NUL byte, which a unix socket path cannot hold".to_string(),
        );
    }
    if path.len() > MAX_SOCKET_PATH {
        return cx.err(
            v.span(),
            "control.socket",
            format!(
                "the path is {} bytes; a unix socket path is at most {MAX_SOCKET_PATH} bytes (sun_path), so pick a shorter one (e.g. {DEFAULT_SOCKET})",
                path.len()
            ),
        );
    }
    Ok(Some(PathBuf::from(path)))
}

/// An `ADDR:PORT` to listen on (IPv6 in brackets); `""` is off.
fn listen_addr(cx: &Ctx, v: &S<String>, key: &str) -> Res<Option<SocketAddr>> {
    let s = v.get_ref().trim();
    if v.get_ref().is_empty() {
        return Ok(None);
    }
    let addr: SocketAddr = match s.parse() {
        Ok(a) => a,
        Err(_) => {
            let hint = if s.matches(':').count() > 1 && !s.starts_with('[') {
                "; write an IPv6 address in brackets, e.g. [::1]:9185"
            } else {
                ""
            };
            return cx.err(
                v.span(),
                key,
                format!("`{s}` is not ADDR:PORT (e.g. {DEFAULT_PROMETHEUS}){hint}"),
            );
        }
    };
    if addr.port() == 0 {
        return cx.err(
            v.span(),
            key,
            format!("port 0 is refused: give the port to listen on, e.g. {DEFAULT_PROMETHEUS}"),
        );
    }
    Ok(Some(addr))
}

/// Most mbufs a pool may have: 2^24 (32 GiB of 2 KiB buffers).
const MAX_MEMPOOL: u32 = 1 << 24;
/// DPDK's per-lcore cache ceiling (RTE_MEMPOOL_CACHE_MAX_SIZE).
const MAX_MEMPOOL_CACHE: u32 = 512;

fn dpdk(cx: &Ctx, r: &RawDpdk) -> Res<Dpdk> {
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
    Ok(o)
}

fn ports(cx: &Ctx, raw: &[S<RawPort>]) -> Res<Vec<Port>> {
    let mut out: Vec<Port> = Vec::with_capacity(raw.len());
    // device name -> line; subnet -> (port index, line)
    let mut devices: HashMap<String, usize> = HashMap::new();
    let mut subnets: HashMap<Subnet, (usize, usize)> = HashMap::new();
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
        let port = Port {
            name: name.clone(),
            subnets: Vec::new(),
            mtu,
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

fn node(cx: &Ctx, n: &RawNode) -> Res<Node> {
    let mac = cx.mac(&n.mac, "node.mac")?;
    let list = n.addresses.get_ref();
    if list.is_empty() {
        return cx.err(
            n.addresses.span(),
            "node.addresses",
            "at least one address is needed (rampart answers ARP/ND for them and sources probes from them)"
                .to_string(),
        );
    }
    let mut addresses: Vec<Addr> = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let key = format!("node.addresses[{i}]");
        let addr = cx.addr(a, &key)?;
        if addresses.contains(&addr) {
            return cx.err(a.span(), &key, format!("{addr} is listed twice"));
        }
        addresses.push(addr);
    }
    let gateway_mac = cx.mac(&n.gateway_mac, "node.gateway_mac")?;
    let mtu = match &n.mtu {
        Some(m) => cx.int(m, "node.mtu", MIN_MTU.into(), MAX_MTU.into(), " bytes")? as u16,
        None => DEFAULT_MTU,
    };
    Ok(Node {
        mac,
        addresses,
        gateway_mac,
        mtu,
    })
}

fn icmp(cx: &Ctx, r: &RawIcmp) -> Res<Icmp> {
    let mut out = Icmp::default();
    if let Some(v) = &r.echo_rate {
        out.echo_rate = cx.int(
            v,
            "icmp.echo_rate",
            0,
            10_000_000,
            " per second (0 = no limit)",
        )?;
        out.echo_burst = out.echo_rate;
    }
    if let Some(v) = &r.echo_burst {
        out.echo_burst = cx.int(v, "icmp.echo_burst", 1, 10_000_000, "")?;
    }
    Ok(out)
}

fn conntrack(cx: &Ctx, c: &RawConntrack) -> Res<Conntrack> {
    let mut out = Conntrack::default();
    if let Some(cap) = &c.capacity {
        out.capacity = cx.int(
            cap,
            "conntrack.capacity",
            1,
            MAX_CONNTRACK_CAPACITY,
            " entries",
        )?;
    }
    let t = &mut out.timeouts;
    let mut fields: [(&Option<S<i64>>, &mut u32, &str); 8] = [
        (
            &c.tcp_syn_sent,
            &mut t.tcp_syn_sent,
            "conntrack.tcp_syn_sent",
        ),
        (
            &c.tcp_syn_recv,
            &mut t.tcp_syn_recv,
            "conntrack.tcp_syn_recv",
        ),
        (
            &c.tcp_established,
            &mut t.tcp_established,
            "conntrack.tcp_established",
        ),
        (
            &c.tcp_fin_wait,
            &mut t.tcp_fin_wait,
            "conntrack.tcp_fin_wait",
        ),
        (
            &c.tcp_close_wait,
            &mut t.tcp_close_wait,
            "conntrack.tcp_close_wait",
        ),
        (
            &c.tcp_time_wait,
            &mut t.tcp_time_wait,
            "conntrack.tcp_time_wait",
        ),
        (&c.tcp_close, &mut t.tcp_close, "conntrack.tcp_close"),
        (&c.udp, &mut t.udp, "conntrack.udp"),
    ];
    // Report the earliest bad timeout in the file, not in field order.
    fields.sort_by_key(|(v, _, _)| v.as_ref().map_or(usize::MAX, |v| v.span().start));
    for (value, slot, key) in fields {
        if let Some(v) = value {
            *slot = cx.int(v, key, 1, MAX_TIMEOUT_SECS, " seconds")?;
        }
    }
    Ok(out)
}

/// Largest per-worker hold pool: 2^20 buffers of 2 KiB (2 GiB).
const MAX_HOLD_SLOTS: u32 = 1 << 20;
/// Largest per-source limiter: 2^24 buckets (256 MiB).
const MAX_SOURCE_SLOTS: u32 = 1 << 24;

fn synproxy(cx: &Ctx, r: &RawSynproxy) -> Res<Synproxy> {
    let mut o = Synproxy::default();
    let int = |v: &Option<S<i64>>, key: &str, lo: u32, hi: u32, unit: &str, slot: &mut u32| {
        if let Some(v) = v {
            *slot = cx.int(v, &format!("synproxy.{key}"), lo, hi, unit)?;
        }
        Ok::<(), ConfigError>(())
    };
    let mut n = u32::from(o.mss);
    int(&r.mss, "mss", 536, 9000, " bytes", &mut n)?;
    o.mss = n as u16;
    let mut n = u32::from(o.wscale);
    int(&r.wscale, "wscale", 0, 14, " (RFC 7323)", &mut n)?;
    o.wscale = n as u8;
    let mut n = u32::from(o.window);
    int(&r.window, "window", 1, 65_535, " bytes", &mut n)?;
    o.window = n as u16;
    let mut n = u32::from(o.ttl);
    int(&r.ttl, "ttl", 1, 255, "", &mut n)?;
    o.ttl = n as u8;
    int(
        &r.secret_rotate,
        "secret_rotate",
        1,
        86_400,
        " seconds",
        &mut o.secret_rotate,
    )?;
    let mut n = u32::from(o.syn_retries);
    int(&r.syn_retries, "syn_retries", 0, 10, "", &mut n)?;
    o.syn_retries = n as u8;
    int(
        &r.syn_retry_interval,
        "syn_retry_interval",
        1,
        60,
        " seconds",
        &mut o.syn_retry_interval,
    )?;
    let mut n = u32::from(o.hold_packets);
    int(&r.hold_packets, "hold_packets", 0, 64, " packets", &mut n)?;
    o.hold_packets = n as u8;
    int(
        &r.hold_slots,
        "hold_slots",
        1,
        MAX_HOLD_SLOTS,
        " buffers",
        &mut o.hold_slots,
    )?;
    let rate_max = 1_000_000_000;
    int(
        &r.syn_rate_per_source,
        "syn_rate_per_source",
        0,
        rate_max,
        " per second",
        &mut o.syn_rate_per_source,
    )?;
    int(
        &r.syn_burst_per_source,
        "syn_burst_per_source",
        1,
        rate_max,
        "",
        &mut o.syn_burst_per_source,
    )?;
    int(
        &r.source_slots,
        "source_slots",
        1,
        MAX_SOURCE_SLOTS,
        "",
        &mut o.source_slots,
    )?;
    if let Some(v) = &r.source_slots {
        if !o.source_slots.is_power_of_two() {
            return cx.err(
                v.span(),
                "synproxy.source_slots",
                format!(
                    "{} is not a power of two (e.g. {})",
                    o.source_slots,
                    o.source_slots.next_power_of_two()
                ),
            );
        }
    }
    int(
        &r.conn_rate,
        "conn_rate",
        0,
        rate_max,
        " per second",
        &mut o.conn_rate,
    )?;
    int(
        &r.conn_burst,
        "conn_burst",
        1,
        rate_max,
        "",
        &mut o.conn_burst,
    )?;
    int(
        &r.ack_rate,
        "ack_rate",
        0,
        rate_max,
        " per second",
        &mut o.ack_rate,
    )?;
    int(&r.ack_burst, "ack_burst", 1, rate_max, "", &mut o.ack_burst)?;
    // A burst left out allows one second's worth.
    for (burst, rate) in [
        (&mut o.syn_burst_per_source, o.syn_rate_per_source),
        (&mut o.conn_burst, o.conn_rate),
        (&mut o.ack_burst, o.ack_rate),
    ] {
        if *burst == 0 {
            *burst = rate;
        }
    }
    for (v, slot) in [
        (&r.sack, &mut o.sack),
        (&r.timestamps, &mut o.timestamps),
        (&r.rst_invalid_ack, &mut o.rst_invalid_ack),
    ] {
        if let Some(v) = v {
            *slot = *v.get_ref();
        }
    }
    if let Some(v) = &r.secret {
        o.secret = Some(parse_secret(v.get_ref()).ok_or(()).or_else(|()| {
            cx.err(
                v.span(),
                "synproxy.secret",
                "expected 32 hex digits (a 128-bit key); leave it out to draw the key from the OS random source"
                    .to_string(),
            )
        })?);
    }
    Ok(o)
}

fn parse_secret(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

struct VipChecker<'a> {
    cx: &'a Ctx<'a>,
    node: &'a Node,
    /// name → line
    names: HashMap<String, usize>,
    /// (address, port, protocol) → (name, line)
    services: HashMap<(Addr, u16, Protocol), (String, usize)>,
    /// VIP address → (name, line)
    addresses: HashMap<Addr, (String, usize)>,
    /// FullNAT local address → (name, line)
    locals: HashMap<Addr, (String, usize)>,
}

fn choice<T: Copy>(
    cx: &Ctx,
    v: &S<String>,
    key: &str,
    what: &str,
    names: &[&str],
    from: fn(&str) -> Option<T>,
) -> Res<T> {
    match from(v.get_ref()) {
        Some(t) => Ok(t),
        None => cx.err(
            v.span(),
            key,
            format!(
                "`{}` is not a {what}; expected one of {}",
                v.get_ref(),
                names.join(", ")
            ),
        ),
    }
}

impl VipChecker<'_> {
    fn vip(&mut self, i: usize, sv: &S<RawVip>) -> Res<Vip> {
        let cx = self.cx;
        let v = sv.get_ref();
        let k = |field: &str| format!("vip[{i}].{field}");

        // name
        let name = v.name.get_ref().clone();
        let name_ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !name_ok {
            return cx.err(
                v.name.span(),
                &k("name"),
                format!("`{name}` is not a valid VIP name: use 1..={MAX_NAME_LEN} characters of A-Z a-z 0-9 _ - ."),
            );
        }
        if let Some(line) = self.names.get(&name) {
            return cx.err(
                v.name.span(),
                &k("name"),
                format!("VIP name `{name}` is already used (line {line})"),
            );
        }
        self.names.insert(name.clone(), cx.line(&v.name.span()));

        // address
        let address = cx.addr(&v.address, &k("address"))?;
        if self.node.addresses.contains(&address) {
            return cx.err(
                v.address.span(),
                &k("address"),
                format!("{address} is one of node.addresses; a VIP needs an address of its own"),
            );
        }
        if let Some((other, line)) = self.locals.get(&address) {
            return cx.err(
                v.address.span(),
                &k("address"),
                format!("{address} is a local address of VIP `{other}` (line {line}); a VIP needs an address of its own"),
            );
        }

        let port = cx.int(&v.port, &k("port"), 1, 65_535, "")? as u16;
        let protocol = choice(
            cx,
            &v.protocol,
            &k("protocol"),
            "protocol",
            Protocol::NAMES,
            Protocol::from_name,
        )?;
        let mode = choice(
            cx,
            &v.mode,
            &k("mode"),
            "mode",
            Mode::NAMES,
            Mode::from_name,
        )?;
        let scheduler = match &v.scheduler {
            Some(s) => choice(
                cx,
                s,
                &k("scheduler"),
                "scheduler",
                SchedKind::NAMES,
                SchedKind::parse,
            )?,
            None => SchedKind::default(),
        };

        if let Some((other, line)) = self.services.get(&(address, port, protocol)) {
            return cx.err(
                v.address.span(),
                &k("address"),
                format!(
                    "{} {} is already served by VIP `{other}` (line {line})",
                    protocol.name(),
                    socket(address, port)
                ),
            );
        }
        let here = (name.clone(), cx.line(&v.address.span()));
        self.services
            .insert((address, port, protocol), here.clone());
        self.addresses.entry(address).or_insert(here);

        let table_size = match &v.table_size {
            Some(t) => {
                let n = cx.int(t, &k("table_size"), MIN_TABLE_SIZE, MAX_TABLE_SIZE, "")?;
                if !is_prime(n) {
                    return cx.err(
                        t.span(),
                        &k("table_size"),
                        format!(
                            "{n} is not prime (Maglev needs a prime table size, e.g. {})",
                            next_prime(n)
                        ),
                    );
                }
                n
            }
            None => DEFAULT_TABLE_SIZE,
        };

        let synproxy = match &v.synproxy {
            Some(sp) if *sp.get_ref() => {
                if matches!(mode, Mode::Dr | Mode::Tunnel) {
                    return cx.err(
                        sp.span(),
                        &k("synproxy"),
                        format!("synproxy needs nat or fullnat: in {} mode the backend answers the client directly, so rampart never sees the backend's SYN-ACK to complete the handshake", mode.name()),
                    );
                }
                if protocol != Protocol::Tcp {
                    return cx.err(
                        sp.span(),
                        &k("synproxy"),
                        format!("synproxy is for TCP; this VIP is {}", protocol.name()),
                    );
                }
                true
            }
            _ => false,
        };

        let encap = self.encap(i, v, mode)?;
        let local_addresses = self.local_addresses(i, sv, address, mode)?;
        let mut vip = Vip {
            name,
            address,
            port,
            protocol,
            mode,
            scheduler,
            table_size,
            local_addresses,
            backends: Vec::new(),
            synproxy,
            encap,
            health: HealthCheck::default(),
        };
        // Checked before the backends, which inherit from it, even where
        // the table follows them in the file.
        if let Some(h) = &v.health {
            vip.health = self.health(h.get_ref(), &k("health"), &vip, None)?;
        }
        let backends = self.backends(i, v, &vip)?;

        if backends.len() > table_size as usize {
            let (span, key) = match &v.table_size {
                Some(t) => (t.span(), k("table_size")),
                None => (sv.span(), format!("vip[{i}]")),
            };
            return cx.err(
                span,
                &key,
                format!(
                    "table_size {table_size} is smaller than the number of backends ({}); Maglev needs at least one slot per backend",
                    backends.len()
                ),
            );
        }

        vip.backends = backends;
        Ok(vip)
    }

    /// Applies the keys of a `[vip.health]` or `[vip.backend.health]` table
    /// (at `key`, e.g. `vip[0].health`) over `vip.health`, which for a VIP's
    /// own table are the defaults. `parent` names the table a backend
    /// inherits from, for messages about values it did not set.
    fn health(
        &self,
        r: &RawHealth,
        key: &str,
        vip: &Vip,
        parent: Option<&str>,
    ) -> Res<HealthCheck> {
        let cx = self.cx;
        let k = |field: &str| format!("{key}.{field}");
        let ms = |v: &S<i64>, field: &str, lo: u32| {
            cx.int(v, &k(field), lo, MAX_HEALTH_MS, " milliseconds")
        };
        let count = |v: &S<i64>, field: &str| cx.int(v, &k(field), 1, MAX_HEALTH_COUNT, "");
        let kind = r
            .kind
            .as_ref()
            .map(|v| {
                choice(
                    cx,
                    v,
                    &k("kind"),
                    "health check kind",
                    HealthKind::NAMES,
                    HealthKind::from_name,
                )
            })
            .transpose();
        let interval = r
            .interval_ms
            .as_ref()
            .map(|v| ms(v, "interval_ms", MIN_HEALTH_INTERVAL_MS))
            .transpose();
        let timeout = r
            .timeout_ms
            .as_ref()
            .map(|v| ms(v, "timeout_ms", MIN_HEALTH_TIMEOUT_MS))
            .transpose();
        let rise = r.rise.as_ref().map(|v| count(v, "rise")).transpose();
        let fall = r.fall.as_ref().map(|v| count(v, "fall")).transpose();
        let down = r
            .down
            .as_ref()
            .map(|v| {
                choice(
                    cx,
                    v,
                    &k("down"),
                    "policy",
                    ConnPolicy::NAMES,
                    ConnPolicy::from_name,
                )
            })
            .transpose();
        earliest([
            kind.as_ref().err(),
            interval.as_ref().err(),
            timeout.as_ref().err(),
            rise.as_ref().err(),
            fall.as_ref().err(),
            down.as_ref().err(),
        ])?;

        let mut o = vip.health;
        o.kind = kind?.unwrap_or(o.kind);
        o.interval_ms = interval?.unwrap_or(o.interval_ms);
        o.timeout_ms = timeout?.unwrap_or(o.timeout_ms);
        o.rise = rise?.unwrap_or(o.rise);
        o.fall = fall?.unwrap_or(o.fall);
        o.down = down?.unwrap_or(o.down);

        // Only a table that names `kind` can make the check tcp: an
        // inherited kind was checked at the VIP.
        let kind_err = match &r.kind {
            Some(v) if o.kind == HealthKind::Tcp => {
                if vip.protocol != Protocol::Tcp {
                    cx.err::<()>(
                        v.span(),
                        &k("kind"),
                        format!(
                            "tcp probes need a tcp VIP; this VIP is {} (leave kind out or set it to \"none\")",
                            vip.protocol.name()
                        ),
                    )
                    .err()
                } else if vip.mode != Mode::Tunnel
                    && !self
                        .node
                        .addresses
                        .iter()
                        .any(|a| a.family() == vip.address.family())
                {
                    let family = family_name(vip.address);
                    cx.err::<()>(
                        v.span(),
                        &k("kind"),
                        format!(
                            "tcp probes are sent from a node address of the VIP's family, and node.addresses has no {family} address; add one"
                        ),
                    )
                    .err()
                } else {
                    None
                }
            }
            _ => None,
        };

        // One probe at a time per backend: each ends before the next is sent.
        let why = "a probe has to time out before the next one is sent";
        let inherited = |field: &str, set_here: bool| match parent {
            Some(p) if !set_here => format!("; this backend takes {field} from {p}"),
            _ => String::new(),
        };
        let order_err = if o.timeout_ms < o.interval_ms {
            None
        } else {
            match (&r.timeout_ms, &r.interval_ms) {
                (Some(t), iv) => cx
                    .err::<()>(
                        t.span(),
                        &k("timeout_ms"),
                        format!(
                            "{} must be below interval_ms ({}): {why}{}",
                            o.timeout_ms,
                            o.interval_ms,
                            inherited("interval_ms", iv.is_some())
                        ),
                    )
                    .err(),
                (None, Some(iv)) => cx
                    .err::<()>(
                        iv.span(),
                        &k("interval_ms"),
                        format!(
                            "{} must be above timeout_ms ({}): {why}{}",
                            o.interval_ms,
                            o.timeout_ms,
                            inherited("timeout_ms", false)
                        ),
                    )
                    .err(),
                // Neither set here: the values came checked from the VIP.
                (None, None) => None,
            }
        };
        earliest([kind_err.as_ref(), order_err.as_ref()])?;
        Ok(o)
    }

    fn local_addresses(
        &mut self,
        i: usize,
        sv: &S<RawVip>,
        vip_addr: Addr,
        mode: Mode,
    ) -> Res<Vec<Addr>> {
        let cx = self.cx;
        let v = sv.get_ref();
        let key = format!("vip[{i}].local_addresses");
        let list = match (&v.local_addresses, mode) {
            (None, Mode::FullNat) => {
                return cx.err(
                    sv.span(),
                    &key,
                    "required key is missing: fullnat needs local_addresses (our source addresses toward the backends)"
                        .to_string(),
                )
            }
            (None, _) => return Ok(Vec::new()),
            (Some(list), Mode::FullNat) => list,
            (Some(list), other) => {
                return cx.err(
                    list.span(),
                    &key,
                    format!(
                        "only fullnat uses local_addresses; remove it or set mode = \"fullnat\" (this VIP is {})",
                        other.name()
                    ),
                )
            }
        };
        if list.get_ref().is_empty() {
            return cx.err(
                list.span(),
                &key,
                "fullnat needs at least one local address (our source addresses toward the backends)"
                    .to_string(),
            );
        }
        let mut out: Vec<Addr> = Vec::with_capacity(list.get_ref().len());
        for (j, a) in list.get_ref().iter().enumerate() {
            let key = format!("vip[{i}].local_addresses[{j}]");
            let addr = cx.addr(a, &key)?;
            if addr.family() != vip_addr.family() {
                return cx.err(
                    a.span(),
                    &key,
                    format!(
                        "{addr} is {} but the VIP {vip_addr} is {} (rampart does not translate between address families)",
                        family_name(addr),
                        family_name(vip_addr)
                    ),
                );
            }
            if let Some((other, line)) = self.addresses.get(&addr) {
                return cx.err(
                    a.span(),
                    &key,
                    format!("{addr} is the address of VIP `{other}` (line {line}); a local address must not be a VIP"),
                );
            }
            if out.contains(&addr) {
                return cx.err(a.span(), &key, format!("{addr} is listed twice"));
            }
            out.push(addr);
            let here = (v.name.get_ref().clone(), cx.line(&a.span()));
            self.locals.entry(addr).or_insert(here);
        }
        Ok(out)
    }

    /// `encap` and `gue_port`: tunnel VIPs only, `gue_port` only with gue.
    fn encap(&self, i: usize, v: &RawVip, mode: Mode) -> Res<Option<Encap>> {
        let cx = self.cx;
        let k = |field: &str| format!("vip[{i}].{field}");
        if mode != Mode::Tunnel {
            if let Some(e) = &v.encap {
                return cx.err(
                    e.span(),
                    &k("encap"),
                    format!("only tunnel VIPs encapsulate; remove encap or set mode = \"tunnel\" (this VIP is {})", mode.name()),
                );
            }
            if let Some(p) = &v.gue_port {
                return cx.err(
                    p.span(),
                    &k("gue_port"),
                    format!(
                        "only tunnel VIPs with encap = \"gue\" use gue_port (this VIP is {})",
                        mode.name()
                    ),
                );
            }
            return Ok(None);
        }
        let gue = match &v.encap {
            Some(e) => choice(cx, e, &k("encap"), "encap", Encap::NAMES, |n| {
                Some(n == "gue").filter(|_| Encap::NAMES.contains(&n))
            })?,
            None => false,
        };
        match (&v.gue_port, gue) {
            (Some(p), false) => cx.err(
                p.span(),
                &k("gue_port"),
                "gue_port is for encap = \"gue\"; this VIP uses ipip".to_string(),
            ),
            (Some(p), true) => Ok(Some(Encap::Gue {
                port: cx.int(p, &k("gue_port"), 1, 65_535, "")? as u16,
            })),
            (None, true) => Ok(Some(Encap::Gue {
                port: DEFAULT_GUE_PORT,
            })),
            (None, false) => Ok(Some(Encap::Ipip)),
        }
    }

    /// The backends of VIP `i`; `vip` holds its other values, checked.
    fn backends(&mut self, i: usize, v: &RawVip, vip: &Vip) -> Res<Vec<Backend>> {
        let cx = self.cx;
        let (vip_addr, vip_port, mode) = (vip.address, vip.port, vip.mode);
        let locals = &vip.local_addresses;
        let parent = format!("vip[{i}].health");
        let mut out: Vec<Backend> = Vec::with_capacity(v.backends.len());
        let mut seen: HashMap<(Addr, u16), usize> = HashMap::new();
        for (j, b) in v.backends.iter().enumerate() {
            let b: &RawBackend = b.get_ref();
            let k = |field: &str| format!("vip[{i}].backend[{j}].{field}");
            let address = cx.addr(&b.address, &k("address"))?;
            if mode == Mode::Tunnel {
                // The outer header follows the backend's family, the inner
                // the client's: any mix works, given a source of ours.
                if !self
                    .node
                    .addresses
                    .iter()
                    .any(|a| a.family() == address.family())
                {
                    return cx.err(
                        b.address.span(),
                        &k("address"),
                        format!(
                            "tunnel packets to {address} come from a node address of its family, and node.addresses has no {} address; add one",
                            family_name(address)
                        ),
                    );
                }
            } else if address.family() != vip_addr.family() {
                return cx.err(
                    b.address.span(),
                    &k("address"),
                    format!(
                        "{address} is {} but the VIP {vip_addr} is {} (rampart does not translate between address families)",
                        family_name(address),
                        family_name(vip_addr)
                    ),
                );
            }
            if address == vip_addr || locals.contains(&address) {
                return cx.err(
                    b.address.span(),
                    &k("address"),
                    format!("{address} is an address of this VIP; a backend must be another host"),
                );
            }
            if self.node.addresses.contains(&address) {
                return cx.err(
                    b.address.span(),
                    &k("address"),
                    format!("{address} is one of node.addresses; a backend must be another host"),
                );
            }
            let port = match (&b.port, mode) {
                (None, _) => vip_port,
                (Some(p), Mode::Dr | Mode::Tunnel) => {
                    if *p.get_ref() != i64::from(vip_port) {
                        return cx.err(
                            p.span(),
                            &k("port"),
                            format!(
                                "{} does not rewrite ports: the backend port must equal the VIP port ({vip_port}) or be omitted, got {}",
                                mode.name(),
                                p.get_ref()
                            ),
                        );
                    }
                    vip_port
                }
                (Some(p), _) => cx.int(p, &k("port"), 1, 65_535, "")? as u16,
            };
            let weight = match &b.weight {
                Some(w) => cx.int(w, &k("weight"), 0, MAX_WEIGHT, " (0 = drained)")?,
                None => 1,
            };
            if let Some(line) = seen.get(&(address, port)) {
                return cx.err(
                    b.address.span(),
                    &k("address"),
                    format!(
                        "backend {} is listed twice in this VIP (first at line {line})",
                        socket(address, port)
                    ),
                );
            }
            seen.insert((address, port), cx.line(&b.address.span()));
            let health = match &b.health {
                Some(h) => self.health(h.get_ref(), &k("health"), vip, Some(&parent))?,
                None => vip.health,
            };
            out.push(Backend {
                address,
                port,
                weight,
                health,
            });
        }
        Ok(out)
    }
}
