//! Raw (spanned) config → validated [`Config`]. Checks run in file order and
//! the first failure is returned; cross-references (duplicates, conflicts)
//! are reported at the later of the two occurrences and name the earlier one.
//!
//! One file per section: `node` (with `[[neighbor]]`, `[icmp]` and
//! `[fragments]`), `conntrack`, `synproxy`, `control`, `dpdk` (with
//! `[[port]]`), `bgp`
//! and `vip` (backends, health checks, encapsulation, FullNAT local
//! addresses). This file holds the entry point, the cross-section checks
//! and the value parsers every section shares.

mod bgp;
mod conntrack;
mod control;
mod dpdk;
mod node;
mod synproxy;
mod vip;

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;

use super::error::{line_col, ConfigError};
use super::raw::{RawConfig, S};
use super::*;
use crate::flow::Family;

use self::bgp::bgp;
use self::conntrack::conntrack;
use self::control::control;
use self::dpdk::{dpdk, ports};
use self::node::{fragments, icmp, neighbors, node};
use self::synproxy::synproxy;
use self::vip::VipChecker;

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

/// One of a fixed set of names, or an error listing them.
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
    let fragments = match &raw.fragments {
        Some(c) => fragments(&cx, c.get_ref())?,
        None => Fragments::default(),
    };

    let neighbors = neighbors(&cx, &raw.neighbors, &node)?;

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
    let bgp = match &raw.bgp {
        Some(b) => Some(bgp(&cx, b.get_ref())?),
        None => None,
    };

    Ok(Config {
        node,
        conntrack,
        synproxy,
        icmp,
        fragments,
        neighbors,
        vips: out,
        control,
        dpdk,
        bgp,
        ports,
    })
}
