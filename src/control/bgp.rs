//! VIP announcements through a routing daemon (`[bgp]`).
//!
//! rampart does not speak BGP. It decides *what* is announced and hands the
//! list to a daemon that does (BIRD 2 here; [`Daemon`] is the seam for
//! another). A VIP address is announced, as a /32 or /128, while:
//!
//! - some VIP on the address is in the config (not retired), has a backend
//!   up, and is not drained by the operator (`rampart ctl vip drain`);
//! - every worker is polling (the runtime's heartbeat moved within
//!   [`HEARTBEAT`]);
//! - rampart is not stopping: SIGTERM withdraws everything first, then
//!   keeps forwarding for `[bgp] drain_seconds` while the routers move the
//!   flows elsewhere.
//!
//! The daemon is told whenever the set changes, and again after a failure
//! (every [`RETRY`]) until it takes it. At start the set is empty, which
//! also withdraws what a previous run that died left announced. The daemon
//! is expected to talk to the routers over the kernel path
//! (`[[port]] kernel_interface`), so when rampart dies its interface, and
//! with it the daemon's sessions, go too.
//!
//! BIRD: rampart writes `routes_file`, two static protocols `rampart4` and
//! `rampart6` holding a `route 198.18.100.10/32 blackhole { ... };` per
//! announced address (replaced atomically), which the operator's bird.conf
//! includes at top level and its BGP protocols export
//! (`export where proto = "rampart4"`), then sends `configure` on BIRD's
//! control socket. BIRD reloads only the protocols whose config changed;
//! BGP sessions stay up.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Bgp, BgpDaemon};
use crate::flow::Addr;
use crate::snapshot::Snapshot;

/// A worker whose heartbeat has not moved for this long is not polling.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// How soon a refused update is tried again.
pub const RETRY: Duration = Duration::from_secs(1);

/// How long a daemon's control socket may take to answer.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the daemon did not take an update.
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    #[error("{path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{daemon} control socket {path}: {source}")]
    Socket {
        daemon: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{daemon} refused the update: {reply}")]
    Refused { daemon: &'static str, reply: String },
}

/// What is announced for one address, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub next_hop: Option<Addr>,
    pub med: Option<u32>,
    pub communities: Vec<(u16, u16)>,
}

/// A routing daemon rampart can tell what to announce.
pub trait Daemon: Send {
    /// Makes `addrs` exactly what the daemon announces, each as a host
    /// route with `attrs` of its family.
    fn apply(
        &mut self,
        addrs: &BTreeSet<Addr>,
        v4: &Attributes,
        v6: &Attributes,
    ) -> Result<(), BgpError>;
}

/// BIRD 2 through a routes file and `configure` on its control socket.
pub struct Bird {
    pub socket: PathBuf,
    pub routes_file: PathBuf,
}

impl Daemon for Bird {
    fn apply(
        &mut self,
        addrs: &BTreeSet<Addr>,
        v4: &Attributes,
        v6: &Attributes,
    ) -> Result<(), BgpError> {
        write_atomically(&self.routes_file, &bird_routes(addrs, v4, v6))?;
        bird_command(&self.socket, "configure")
    }
}

/// The routes file bird.conf includes: a static protocol per family.
pub fn bird_routes(addrs: &BTreeSet<Addr>, v4: &Attributes, v6: &Attributes) -> String {
    let mut s = String::from(
        "# Written by rampart: the VIP addresses it announces now. Replaced on every change.\n",
    );
    for (name, channel, fam4, attrs) in [
        ("rampart4", "ipv4", true, v4),
        ("rampart6", "ipv6", false, v6),
    ] {
        s.push_str(&format!("protocol static {name} {{\n  {channel};\n"));
        for a in addrs.iter().filter(|a| a.is_v4() == fam4) {
            let len = if fam4 { 32 } else { 128 };
            let mut set = String::new();
            if let Some(nh) = attrs.next_hop {
                set.push_str(&format!(" bgp_next_hop = {nh};"));
            }
            if let Some(med) = attrs.med {
                set.push_str(&format!(" bgp_med = {med};"));
            }
            for (asn, value) in &attrs.communities {
                set.push_str(&format!(" bgp_community.add(({asn},{value}));"));
            }
            if set.is_empty() {
                s.push_str(&format!("  route {a}/{len} blackhole;\n"));
            } else {
                s.push_str(&format!("  route {a}/{len} blackhole {{{set} }};\n"));
            }
        }
        s.push_str("}\n");
    }
    s
}

fn write_atomically(path: &Path, text: &str) -> Result<(), BgpError> {
    let fail = |source| BgpError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Sends one command on BIRD's control socket and reads its reply: lines
/// `NNNN-text` (more follow), ` text` (continuation) and a last `NNNN text`.
/// Codes 0xxx are success (but 0006, reconfiguration ignored while BIRD
/// shuts down), 8xxx and 9xxx errors.
pub fn bird_command(socket: &Path, command: &str) -> Result<(), BgpError> {
    let sock_err = |source| BgpError::Socket {
        daemon: "bird",
        path: socket.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(sock_err)?;
    stream
        .set_read_timeout(Some(DAEMON_TIMEOUT))
        .map_err(sock_err)?;
    stream
        .set_write_timeout(Some(DAEMON_TIMEOUT))
        .map_err(sock_err)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(sock_err)?);
    // The greeting: 0001 BIRD x.y ready.
    let greeting = final_reply(&mut reader).map_err(sock_err)?;
    if !greeting.starts_with("0001") {
        return Err(BgpError::Refused {
            daemon: "bird",
            reply: greeting,
        });
    }
    stream
        .write_all(format!("{command}\n").as_bytes())
        .map_err(sock_err)?;
    let reply = final_reply(&mut reader).map_err(sock_err)?;
    let ok = reply.starts_with('0') && !reply.starts_with("0006");
    if ok {
        Ok(())
    } else {
        Err(BgpError::Refused {
            daemon: "bird",
            reply,
        })
    }
}

/// Reads reply lines up to the last one (`NNNN text`) and returns it with
/// the error lines before it, if any, appended.
fn final_reply(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut notes = String::new();
    // A reply has a bounded number of lines; a daemon that talks forever
    // is cut off.
    for _ in 0..10_000 {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the daemon closed the socket mid-reply",
            ));
        }
        let line = line.trim_end();
        let b = line.as_bytes();
        let coded = b.len() >= 4 && b.iter().take(4).all(u8::is_ascii_digit);
        if coded && (b.len() == 4 || b.get(4) == Some(&b' ')) {
            if notes.is_empty() {
                return Ok(line.to_string());
            }
            return Ok(format!("{line} ({})", notes.trim()));
        }
        if coded && (b[0] == b'8' || b[0] == b'9') {
            notes.push_str(line.get(5..).unwrap_or(""));
            notes.push(' ');
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "a reply of more than 10000 lines",
    ))
}

/// The announcement state of one VIP, for status and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipAnnouncement {
    pub vip: String,
    pub address: Addr,
    /// The address is announced (by this VIP or another on it).
    pub announced: bool,
    /// Why, in a few words.
    pub reason: &'static str,
}

/// The announcer: what should be announced, what the daemon has, and the
/// operator's drains.
pub struct Announcer {
    daemon: Box<dyn Daemon>,
    v4: Attributes,
    v6: Attributes,
    /// VIPs the operator drained (`ctl vip drain`), by name.
    drained: BTreeSet<String>,
    stopping: bool,
    workers_polling: bool,
    /// What the daemon last took; `None` before the first update.
    applied: Option<BTreeSet<Addr>>,
    /// The last refusal, until an update succeeds.
    pub last_error: Option<String>,
    retry_at_ns: u64,
    vips: Vec<VipAnnouncement>,
}

impl Announcer {
    /// For `cfg`, or `None` when it is disabled.
    pub fn new(cfg: &Bgp) -> Option<Announcer> {
        if !cfg.enabled {
            return None;
        }
        let daemon: Box<dyn Daemon> = match cfg.daemon {
            BgpDaemon::Bird => Box::new(Bird {
                socket: cfg.socket.clone(),
                routes_file: cfg.routes_file.clone(),
            }),
        };
        Some(Announcer::with_daemon(cfg, daemon))
    }

    /// With any daemon (tests).
    pub fn with_daemon(cfg: &Bgp, daemon: Box<dyn Daemon>) -> Announcer {
        let attrs = |next_hop| Attributes {
            next_hop,
            med: cfg.med,
            communities: cfg.communities.clone(),
        };
        Announcer {
            daemon,
            v4: attrs(cfg.next_hop_v4),
            v6: attrs(cfg.next_hop_v6),
            drained: BTreeSet::new(),
            stopping: false,
            workers_polling: false,
            applied: None,
            last_error: None,
            retry_at_ns: 0,
            vips: Vec::new(),
        }
    }

    /// Takes a reloaded `[bgp]`: the daemon and attributes it names; the
    /// drains stay.
    pub fn reconfigure(&mut self, cfg: &Bgp) {
        if let Some(fresh) = Announcer::new(cfg) {
            self.daemon = fresh.daemon;
            self.v4 = fresh.v4;
            self.v6 = fresh.v6;
            // Attributes may have changed: tell the daemon again.
            self.applied = None;
        }
    }

    pub fn set_workers_polling(&mut self, polling: bool) {
        self.workers_polling = polling;
    }

    /// SIGTERM: everything is withdrawn from now on.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Drains (or undrains) VIP `name`; returns whether that changed.
    pub fn drain(&mut self, name: &str, drained: bool) -> bool {
        if drained {
            self.drained.insert(name.to_string())
        } else {
            self.drained.remove(name)
        }
    }

    pub fn is_drained(&self, name: &str) -> bool {
        self.drained.contains(name)
    }

    /// Each VIP's state as of the last [`Announcer::tick`].
    pub fn vips(&self) -> &[VipAnnouncement] {
        &self.vips
    }

    /// Whether the daemon has taken the current set.
    pub fn in_sync(&self) -> bool {
        self.last_error.is_none() && self.applied.is_some()
    }

    /// Works out what `snap` calls for and tells the daemon when that
    /// differs from what it has (or failed last time and [`RETRY`] has
    /// passed).
    pub fn tick(&mut self, snap: &Snapshot, now_ns: u64) {
        let mut serving: BTreeMap<Addr, bool> = BTreeMap::new();
        let mut vips = Vec::with_capacity(snap.vips.len());
        for v in snap.vips.iter().filter(|v| !v.retired) {
            let up = v.weights.iter().any(|&w| w > 0);
            let drained = self.drained.contains(&v.name);
            let reason = if self.stopping {
                "stopping"
            } else if !self.workers_polling {
                "workers not polling"
            } else if drained {
                "drained"
            } else if !up {
                "no backend up"
            } else {
                "serving"
            };
            *serving.entry(v.addr).or_default() |= reason == "serving";
            vips.push((v.name.clone(), v.addr, reason));
        }
        let want: BTreeSet<Addr> = serving
            .iter()
            .filter(|(_, s)| **s)
            .map(|(a, _)| *a)
            .collect();
        self.vips = vips
            .into_iter()
            .map(|(vip, address, reason)| VipAnnouncement {
                vip,
                address,
                announced: want.contains(&address),
                reason: if want.contains(&address) && reason != "serving" {
                    "another VIP on the address serves"
                } else {
                    reason
                },
            })
            .collect();
        let retrying = self.last_error.is_some();
        if !retrying && self.applied.as_ref() == Some(&want) {
            return;
        }
        if retrying && now_ns < self.retry_at_ns {
            return;
        }
        match self.daemon.apply(&want, &self.v4, &self.v6) {
            Ok(()) => {
                let before = self.applied.take().unwrap_or_default();
                for a in want.difference(&before) {
                    log::info!("bgp: announcing {a}");
                }
                for a in before.difference(&want) {
                    log::info!("bgp: withdrawing {a}");
                }
                if self.last_error.take().is_some() {
                    log::info!("bgp: the daemon took the update");
                }
                self.applied = Some(want);
            }
            Err(e) => {
                let msg = e.to_string();
                if self.last_error.as_deref() != Some(msg.as_str()) {
                    log::warn!("bgp: {msg} (trying again every {} s)", RETRY.as_secs());
                }
                self.last_error = Some(msg);
                self.retry_at_ns = now_ns.saturating_add(RETRY.as_nanos() as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests;
