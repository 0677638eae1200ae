//! `[bgp]`: the announcements a routing daemon makes for rampart.

use std::path::PathBuf;

use crate::flow::Addr;

/// `[bgp]`: what rampart tells a routing daemon to announce. rampart does
/// not speak BGP: it decides which VIP addresses are announced (a /32 or
/// /128 while some VIP on the address has a backend up and the workers
/// poll) and hands the daemon the list; the daemon speaks BGP to the
/// routers, over the kernel path (`[[port]] kernel_interface`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bgp {
    /// `enabled = false` keeps the section but announces nothing.
    pub enabled: bool,
    pub daemon: BgpDaemon,
    /// The daemon's control socket (BIRD: `bird.ctl`).
    pub socket: PathBuf,
    /// The file rampart writes the routes to (BIRD: two static protocols,
    /// `rampart4` and `rampart6`, which bird.conf includes at top level
    /// and its BGP protocols export).
    pub routes_file: PathBuf,
    /// Next hop to set on the announcements, per family; `None`: the
    /// daemon's own (BGP: its session address).
    pub next_hop_v4: Option<Addr>,
    pub next_hop_v6: Option<Addr>,
    /// BGP MULTI_EXIT_DISC to set, if any.
    pub med: Option<u32>,
    /// Standard communities `(ASN, value)` to add.
    pub communities: Vec<(u16, u16)>,
    /// After SIGTERM: withdraw everything, keep forwarding this long, exit.
    pub drain_seconds: u32,
}

/// The routing daemons rampart can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgpDaemon {
    /// BIRD 2: a routes file of static protocols included by bird.conf,
    /// applied with `configure` on its control socket.
    Bird,
}

impl BgpDaemon {
    pub const NAMES: &'static [&'static str] = &["bird"];

    pub fn from_name(s: &str) -> Option<BgpDaemon> {
        match s {
            "bird" => Some(BgpDaemon::Bird),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BgpDaemon::Bird => "bird",
        }
    }
}

/// Default `[bgp]` paths.
pub const DEFAULT_BGP_SOCKET: &str = "/run/bird/bird.ctl";
pub const DEFAULT_BGP_ROUTES_FILE: &str = "/run/rampart/bird-vips.conf";

impl Default for Bgp {
    fn default() -> Bgp {
        Bgp {
            enabled: true,
            daemon: BgpDaemon::Bird,
            socket: PathBuf::from(DEFAULT_BGP_SOCKET),
            routes_file: PathBuf::from(DEFAULT_BGP_ROUTES_FILE),
            next_hop_v4: None,
            next_hop_v6: None,
            med: None,
            communities: Vec::new(),
            drain_seconds: 5,
        }
    }
}
