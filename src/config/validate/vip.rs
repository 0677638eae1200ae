//! `[[vip]]`: the service, its backends, health checks, tunnel
//! encapsulation and FullNAT local addresses, with the cross-VIP checks
//! (names, services, addresses) reported at the later occurrence.

use super::*;
use crate::config::raw::{RawBackend, RawHealth, RawSource, RawVip};

pub(super) struct VipChecker<'a> {
    pub(super) cx: &'a Ctx<'a>,
    pub(super) node: &'a Node,
    /// name → line
    pub(super) names: HashMap<String, usize>,
    /// (address, port, protocol) → (name, line)
    pub(super) services: HashMap<(Addr, u16, Protocol), (String, usize)>,
    /// VIP address → (name, line)
    pub(super) addresses: HashMap<Addr, (String, usize)>,
    /// FullNAT local address → (name, line)
    pub(super) locals: HashMap<Addr, (String, usize)>,
}

impl VipChecker<'_> {
    pub(super) fn vip(&mut self, i: usize, sv: &S<RawVip>) -> Res<Vip> {
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

        let proxy_protocol = match &v.proxy_protocol {
            Some(pp) => {
                let choice = choice(
                    cx,
                    pp,
                    &k("proxy_protocol"),
                    "proxy_protocol",
                    ProxyProtocol::NAMES,
                    ProxyProtocol::from_name,
                )?;
                if choice != ProxyProtocol::Off {
                    if matches!(mode, Mode::Dr | Mode::Tunnel) {
                        return cx.err(
                            pp.span(),
                            &k("proxy_protocol"),
                            format!("proxy_protocol needs nat or fullnat: in {} mode the backend answers the client directly, so rampart could not keep the two sides' sequence numbers apart by the header's length", mode.name()),
                        );
                    }
                    if protocol != Protocol::Tcp {
                        return cx.err(
                            pp.span(),
                            &k("proxy_protocol"),
                            format!("proxy_protocol is for TCP (a header at the start of a byte stream); this VIP is {}", protocol.name()),
                        );
                    }
                }
                choice
            }
            None => ProxyProtocol::Off,
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
            proxy_protocol,
            encap,
            health: HealthCheck::default(),
            sources: Vec::new(),
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
        vip.sources = self.sources(i, sv, &vip)?;
        Ok(vip)
    }

    /// The `[[vip.source]]` entries of VIP `i`; `vip` holds its other
    /// values, backends included, checked.
    fn sources(&self, i: usize, sv: &S<RawVip>, vip: &Vip) -> Res<Vec<Source>> {
        let cx = self.cx;
        let v = sv.get_ref();
        if let Some(extra) = v.sources.get(MAX_SOURCES) {
            return cx.err(
                extra.span(),
                &format!("vip[{i}].source[{MAX_SOURCES}]"),
                format!("a VIP has at most {MAX_SOURCES} source entries (each has a Maglev table of its own); put more prefixes in fewer entries"),
            );
        }
        let mut out = Vec::with_capacity(v.sources.len());
        // prefix -> where it is first written, over all of the VIP's
        // entries (a byte offset: lines are counted only for a message, so
        // 100,000 prefixes cost no more than reading them)
        let mut seen: HashMap<Subnet, usize> = HashMap::new();
        let mut total = 0usize;
        for (j, raw) in v.sources.iter().enumerate() {
            let r: &RawSource = raw.get_ref();
            let k = |field: &str| format!("vip[{i}].source[{j}].{field}");
            let list = r.prefixes.get_ref();
            if list.is_empty() {
                return cx.err(
                    r.prefixes.span(),
                    &k("prefixes"),
                    "list at least one client prefix, e.g. [\"198.19.0.0/16\"]".to_string(),
                );
            }
            total += list.len();
            if total > MAX_SOURCE_PREFIXES {
                return cx.err(
                    r.prefixes.span(),
                    &k("prefixes"),
                    format!("a VIP has at most {MAX_SOURCE_PREFIXES} source prefixes over all its source entries; this entry brings the count to {total}"),
                );
            }
            let mut prefixes = Vec::with_capacity(list.len());
            for (n, p) in list.iter().enumerate() {
                let key = format!("vip[{i}].source[{j}].prefixes[{n}]");
                let subnet = cx.subnet(p, &key)?;
                if subnet.addr.is_ipv4() != vip.address.is_v4() {
                    let (this, that) = if subnet.addr.is_ipv4() {
                        ("IPv4", "IPv6")
                    } else {
                        ("IPv6", "IPv4")
                    };
                    return cx.err(
                        p.span(),
                        &key,
                        format!(
                            "{subnet} is {this} but the VIP {} is {that}: its clients are {that} (rampart does not translate between address families)",
                            vip.address
                        ),
                    );
                }
                if let Some(&at) = seen.get(&subnet) {
                    let line = cx.line(&(at..at));
                    return cx.err(
                        p.span(),
                        &key,
                        format!("{subnet} is already listed for this VIP (line {line}); a prefix belongs to one source entry"),
                    );
                }
                seen.insert(subnet, p.span().start);
                prefixes.push(subnet);
            }
            let list = r.backends.get_ref();
            if list.is_empty() {
                return cx.err(
                    r.backends.span(),
                    &k("backends"),
                    "list at least one of the VIP's backends, e.g. [\"198.18.1.11:8080\"]"
                        .to_string(),
                );
            }
            let mut backends: Vec<usize> = Vec::with_capacity(list.len());
            for (n, b) in list.iter().enumerate() {
                let key = format!("vip[{i}].source[{j}].backends[{n}]");
                let idx = source_backend(cx, b, &key, vip)?;
                if backends.contains(&idx) {
                    return cx.err(
                        b.span(),
                        &key,
                        format!(
                            "{} is listed twice in this source entry",
                            b.get_ref().trim()
                        ),
                    );
                }
                backends.push(idx);
            }
            out.push(Source { prefixes, backends });
        }
        Ok(out)
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

/// Which of `vip`'s backends a `[[vip.source]]` backend string names:
/// `ADDRESS:PORT` (`[ADDRESS]:PORT` for IPv6), or a bare address that
/// only one backend has.
fn source_backend(cx: &Ctx, v: &S<String>, key: &str, vip: &Vip) -> Res<usize> {
    let s = v.get_ref().trim();
    let (addr, port) = match (s.parse::<std::net::SocketAddr>(), s.parse::<IpAddr>()) {
        (Ok(sa), _) => (Addr::from(sa.ip()), Some(sa.port())),
        (_, Ok(ip)) => (Addr::from(ip), None),
        _ => {
            return cx.err(
                v.span(),
                key,
                format!("`{s}` is not a backend: write ADDRESS:PORT as the VIP's [[vip.backend]] has it, e.g. 198.18.1.11:8080 or [2001:2::11]:8080"),
            )
        }
    };
    let found: Vec<usize> = vip
        .backends
        .iter()
        .enumerate()
        .filter(|(_, b)| b.address == addr && port.is_none_or(|p| p == b.port))
        .map(|(n, _)| n)
        .collect();
    match found.as_slice() {
        [n] => Ok(*n),
        [] => {
            let known: Vec<String> = vip
                .backends
                .iter()
                .map(|b| socket(b.address, b.port))
                .collect();
            let known = if known.is_empty() {
                "it has none".to_string()
            } else {
                format!("its backends are {}", known.join(", "))
            };
            cx.err(
                v.span(),
                key,
                format!("{s} is not a backend of this VIP ({known}); a source entry chooses among the VIP's own backends"),
            )
        }
        _ => cx.err(
            v.span(),
            key,
            format!("{addr} is the address of several backends of this VIP; write ADDRESS:PORT"),
        ),
    }
}
