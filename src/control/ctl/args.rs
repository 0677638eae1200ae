//! The `rampart ctl` command line: the clap arguments and the value
//! parsers behind them (`ADDR:PORT`, `[V6ADDR]:PORT`, `ADDR:PORT@WEIGHT`,
//! the watch interval). Parsing refuses what the control API would refuse,
//! so a typo fails here with the input quoted rather than at the socket.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::PossibleValuesParser;

use crate::config::{Mode, Protocol, SchedKind};
use crate::control::model::MAX_CONNS_LIMIT;

/// `rampart ctl`: query and change a running `rampart run`.
#[derive(clap::Args, Debug)]
pub struct CtlArgs {
    /// Control socket (default: /run/rampart/rampart.sock).
    #[arg(long, short, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the raw JSON result instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: CtlCmd,
}

#[derive(clap::Subcommand, Debug, Clone, PartialEq)]
pub enum CtlCmd {
    /// Version, uptime, config generation and totals.
    Status,
    /// List, add or remove VIPs.
    Vip {
        #[command(subcommand)]
        cmd: VipCmd,
    },
    /// Add, remove, reweight or override backends.
    Backend {
        #[command(subcommand)]
        cmd: BackendCmd,
    },
    /// Tracked connections.
    Conns {
        /// Only connections of this VIP.
        #[arg(long, value_name = "NAME")]
        vip: Option<String>,
        /// Show at most N connections (default 100).
        #[arg(long, value_name = "N",
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONNS_LIMIT)))]
        limit: Option<u32>,
    },
    /// Counters and rates: totals, per worker, per VIP, per backend, drops.
    Stats {
        /// Refresh until stopped (Ctrl-C, --count, or 3600 refreshes).
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes.
        #[arg(long, value_name = "SECS", default_value = "1", requires = "watch",
              value_parser = parse_interval)]
        interval: f64,
        /// Stop after N refreshes (0: after 3600).
        #[arg(long, value_name = "N", default_value_t = 0, requires = "watch")]
        count: u64,
    },
    /// Re-read the config file.
    Reload,
}

#[derive(clap::Subcommand, Debug, Clone, PartialEq)]
pub enum VipCmd {
    /// Every VIP with its backends.
    List,
    /// Add a VIP (as a `[[vip]]` table of the config file would).
    Add(VipAddArgs),
    /// Remove a VIP; its connections drain (or are reset under `[control] removed_vip = "reset"`).
    Del { name: String },
    /// Withdraw a VIP's BGP announcement (`[bgp]`), unless another VIP on
    /// its address serves; its connections are untouched.
    Drain { name: String },
    /// Give a drained VIP its announcement back.
    Undrain { name: String },
}

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct VipAddArgs {
    /// Name of the new VIP.
    pub name: String,
    // Help set as a string: rustdoc would read the brackets as a link.
    #[arg(
        value_name = "ADDR:PORT",
        help = "Address and port: ADDR:PORT, or [ADDR]:PORT for IPv6"
    )]
    pub address: Endpoint,
    /// Transport protocol.
    #[arg(long, default_value = "tcp",
          value_parser = PossibleValuesParser::new(Protocol::NAMES.iter().copied()))]
    pub protocol: String,
    /// Forwarding mode.
    #[arg(long, default_value = "nat",
          value_parser = PossibleValuesParser::new(Mode::NAMES.iter().copied()))]
    pub mode: String,
    /// Backend scheduler.
    #[arg(long, value_name = "NAME", default_value = "maglev",
          value_parser = PossibleValuesParser::new(SchedKind::NAMES.iter().copied()))]
    pub scheduler: String,
    /// Maglev lookup table size (a prime).
    #[arg(long, value_name = "N")]
    pub table_size: Option<u32>,
    /// FullNAT local address towards the backends (repeatable).
    #[arg(long = "local", value_name = "ADDR")]
    pub local: Vec<IpAddr>,
    /// Answer SYNs with SYN cookies before choosing a backend.
    #[arg(long)]
    pub synproxy: bool,
    /// Tunnel mode: how the client's packet is wrapped.
    #[arg(long, value_parser = PossibleValuesParser::new(["ipip", "gue"]))]
    pub encap: Option<String>,
    /// Tunnel mode with GUE: the outer UDP destination port.
    #[arg(long, value_name = "PORT")]
    pub gue_port: Option<u16>,
    /// A backend (repeatable).
    #[arg(long = "backend", value_name = "ADDR:PORT[@WEIGHT]")]
    pub backends: Vec<BackendSpec>,
}

#[derive(clap::Subcommand, Debug, Clone, PartialEq)]
pub enum BackendCmd {
    /// Add BACKEND (ADDR:PORT, or ADDR for the VIP's port) to VIP.
    Add {
        vip: String,
        backend: String,
        #[arg(long, value_name = "W")]
        weight: Option<u32>,
    },
    /// Remove BACKEND from VIP.
    Del { vip: String, backend: String },
    /// Set BACKEND's weight on VIP.
    Weight {
        vip: String,
        backend: String,
        weight: u32,
    },
    /// Stop new connections to BACKEND on every VIP; existing ones continue.
    Drain { backend: String },
    /// Force BACKEND up on every VIP, whatever health checks say.
    Up { backend: String },
    /// Force BACKEND down on every VIP.
    Down { backend: String },
    /// Drop the override: health checks decide again.
    Clear { backend: String },
}

/// An address and port, `ADDR:PORT` or `[V6ADDR]:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Endpoint, String> {
        let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: missing ']' after the IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| format!("{s:?}: missing \":PORT\" after ']'"))?;
            let addr = Ipv6Addr::from_str(addr)
                .map_err(|_| format!("{s:?}: {addr:?} is not an IPv6 address"))?;
            (IpAddr::V6(addr), port)
        } else {
            let (addr, port) = s
                .rsplit_once(':')
                .ok_or_else(|| format!("{s:?}: expected ADDR:PORT"))?;
            if addr.contains(':') {
                return Err(format!(
                    "{s:?}: write an IPv6 address in brackets: [ADDR]:PORT"
                ));
            }
            let addr = Ipv4Addr::from_str(addr)
                .map_err(|_| format!("{s:?}: {addr:?} is not an IPv4 address"))?;
            (IpAddr::V4(addr), port)
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("{s:?}: port must be 1-65535, not {port:?}")),
        };
        Ok(Endpoint { addr, port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// `--backend ADDR:PORT[@WEIGHT]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    pub endpoint: Endpoint,
    pub weight: Option<u32>,
}

impl FromStr for BackendSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<BackendSpec, String> {
        let (ep, weight) = match s.split_once('@') {
            Some((ep, w)) => {
                let w = w
                    .parse::<u32>()
                    .map_err(|_| format!("{s:?}: weight {w:?} is not a non-negative integer"))?;
                (ep, Some(w))
            }
            None => (s, None),
        };
        Ok(BackendSpec {
            endpoint: ep.parse()?,
            weight,
        })
    }
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=86400.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?}: expected seconds between 0.1 and 86400")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    #[test]
    fn endpoint_parsing() {
        assert_eq!(
            ep("198.18.0.10:80"),
            Endpoint {
                addr: "198.18.0.10".parse().unwrap(),
                port: 80
            }
        );
        assert_eq!(
            ep("[2001:2::10]:443"),
            Endpoint {
                addr: "2001:2::10".parse().unwrap(),
                port: 443
            }
        );
        assert_eq!(ep("[2001:2::10]:443").to_string(), "[2001:2::10]:443");
        assert_eq!(ep("198.18.0.10:65535").to_string(), "198.18.0.10:65535");

        let cases = [
            ("198.18.0.10", "expected ADDR:PORT"),
            ("198.18.0.10:", "port must be 1-65535"),
            ("198.18.0.10:0", "port must be 1-65535"),
            ("198.18.0.10:65536", "port must be 1-65535"),
            ("198.18.0.10:http", "port must be 1-65535"),
            ("198.18.0.300:80", "is not an IPv4 address"),
            ("web:80", "is not an IPv4 address"),
            ("2001:2::10:80", "in brackets"),
            ("[2001:2::10]", "missing \":PORT\""),
            ("[2001:2::10:80", "missing ']'"),
            ("[198.18.0.10]:80", "is not an IPv6 address"),
            ("", "expected ADDR:PORT"),
        ];
        for (input, want) in cases {
            let err = input.parse::<Endpoint>().unwrap_err();
            assert!(err.contains(want), "{input:?}: {err:?} lacks {want:?}");
            assert!(
                err.contains(&format!("{input:?}")),
                "{err:?} does not quote the input"
            );
        }

        let b: BackendSpec = "[2001:2::11]:8080@3".parse().unwrap();
        assert_eq!((b.endpoint, b.weight), (ep("[2001:2::11]:8080"), Some(3)));
        let b: BackendSpec = "198.18.1.11:8080".parse().unwrap();
        assert_eq!(b.weight, None);
        let err = "198.18.1.11:8080@heavy".parse::<BackendSpec>().unwrap_err();
        assert!(err.contains("weight \"heavy\""), "{err}");
    }
}
