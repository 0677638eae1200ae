//! The control state: the running config, the snapshot it publishes, the
//! health checker and the operator's overrides, and what every API request
//! does to them.
//!
//! Every change — a reload of the file, an API edit, a health transition,
//! an override — ends the same way: a new [`Snapshot`] derived from the
//! config and the backend states, with the previous one's VIP and backend
//! numbers kept ([`Snapshot::derive`]), published through the store the
//! workers load once per burst. Nothing is remapped: connections name their
//! VIP and backend by number and keep them; only new connections see the
//! new tables.
//!
//! API edits (`vip add`, `backend weight`, ...) are edits of the config as
//! a TOML tree, which is then validated exactly as a file is, so an edit is
//! refused with the same messages `check-config` gives. They live in memory
//! only: the next reload of the file replaces them.//!
//! The requests themselves are in `requests.rs` (dispatch and config
//! edits) and the reports they answer with in `reports.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

use super::bgp::Announcer;
use super::health::{Checker, ProbeParams, Target, Transition};
use super::link::{self, ControlLink, SnapshotStore, WorkerLink};
use super::model::{self, ApiError, Request};
use super::server::ListenerStats;
use crate::config::{self, Config, HealthKind};
use crate::flow::{proto, Addr};
use crate::ids::BackendId;
use crate::maglev::BackendKey;
use crate::snapshot::{BackendState, Snapshot};

mod error;
mod reports;
mod requests;

pub use error::ControlError;

/// How long `conns` waits for the workers' answers.
const CONNS_WAIT: Duration = Duration::from_secs(2);

/// Rates are taken over at least this long.
const RATE_PERIOD: Duration = Duration::from_secs(1);

pub struct Control {
    config_path: Option<PathBuf>,
    doc: toml::Table,
    cfg: Config,
    store: SnapshotStore,
    link: ControlLink,
    checker: Checker,
    /// Backends the health checks found down.
    health_down: FxHashSet<BackendKey>,
    /// The operator's word, which wins over health checks until cleared.
    overrides: FxHashMap<BackendKey, BackendState>,
    generation: u64,
    reloads: u64,
    reload_failures: u64,
    last_reload_error: Option<String>,
    started: Instant,
    rates: Rates,
    /// Health transitions not yet taken by [`Control::take_health_events`].
    events: Vec<HealthEvent>,
    /// `[bgp]`: the VIP announcements, when enabled.
    bgp: Option<Announcer>,
    /// What the control socket and the metrics endpoint refused.
    listeners: Arc<ListenerStats>,
    /// Reads the ports' NIC counters (`rampart run`), for [`Control::stats`].
    ports: Option<PortStatsSource>,
}

/// Reads every port's NIC counters; called with the control state locked.
pub type PortStatsSource = Box<dyn Fn() -> Vec<model::PortReport> + Send>;

/// A health transition, as a replay reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    /// On the clock health checks run on (the capture's, in a replay).
    pub time_ns: u64,
    /// "ADDR:PORT".
    pub backend: String,
    pub up: bool,
    pub reason: String,
}

/// Transitions kept for [`Control::take_health_events`]; older ones go.
const MAX_HEALTH_EVENTS: usize = 10_000;

/// Connection counts at the last rate sample, and the rates it gave.
#[derive(Default)]
struct Rates {
    at: Option<Instant>,
    workers: Vec<u64>,
    vips: Vec<u64>,
    backends: Vec<u64>,
    worker_rate: Vec<f64>,
    vip_rate: Vec<f64>,
    backend_rate: Vec<f64>,
}

/// Locks the control state for an API thread.
#[derive(Clone)]
pub struct Shared(pub Arc<Mutex<Control>>);

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl super::api::Handler for Shared {
    fn handle(&self, req: Request) -> Result<Value, ApiError> {
        self.lock().handle(req)
    }
}

/// "ADDR:PORT", IPv6 in brackets.
pub fn endpoint(a: &Addr, port: u16) -> String {
    SocketAddr::new(a.to_ip(), port).to_string()
}

fn proto_name(p: u8) -> &'static str {
    match p {
        proto::TCP => "tcp",
        proto::UDP => "udp",
        _ => "other",
    }
}

impl Control {
    /// Control over `cfg` (read from `text`, the file at `config_path` if
    /// any) for `workers` workers. `probe_key` keys the probes' sequence
    /// numbers (fixed in a replay, random on a live box); `now_ns` is the
    /// clock health checks run on.
    pub fn new(
        cfg: Config,
        text: &str,
        config_path: Option<PathBuf>,
        workers: u16,
        probe_key: [u8; 16],
        now_ns: u64,
    ) -> Result<(Control, Vec<WorkerLink>), ControlError> {
        let doc: toml::Table = text.parse().map_err(ControlError::StartToml)?;
        let snap = Snapshot::derive(&cfg, None, |_| BackendState::Up, 0);
        let (link, ends) = link::links(workers);
        let mut c = Control {
            config_path,
            doc,
            cfg,
            store: crate::snapshot::store(snap),
            link,
            checker: Checker::new(workers, probe_key),
            health_down: FxHashSet::default(),
            overrides: FxHashMap::default(),
            generation: 0,
            reloads: 0,
            reload_failures: 0,
            last_reload_error: None,
            started: Instant::now(),
            rates: Rates::default(),
            events: Vec::new(),
            bgp: None,
            listeners: ListenerStats::new(),
            ports: None,
        };
        c.bgp = c.cfg.bgp.as_ref().and_then(Announcer::new);
        c.retarget(now_ns);
        Ok((c, ends))
    }

    /// The store workers load their snapshot from.
    pub fn store(&self) -> SnapshotStore {
        Arc::clone(&self.store)
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.store.load_full()
    }

    /// The counters the control socket and the metrics endpoint count
    /// their refusals in (given to [`ApiServer::start`](super::api::ApiServer::start)
    /// and [`MetricsServer::start`](super::prom::MetricsServer::start));
    /// [`Control::stats`] reports them.
    pub fn listener_stats(&self) -> Arc<ListenerStats> {
        Arc::clone(&self.listeners)
    }

    /// Where [`Control::stats`] reads the ports' counters from; `None`
    /// stops reading them. Since `stats` runs with the control state
    /// locked, once this returns no read of the previous source is under
    /// way (`rampart run` clears it before it closes the ports).
    pub fn set_port_stats(&mut self, source: Option<PortStatsSource>) {
        self.ports = source;
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// One step of the control loop: probe results in, transitions applied,
    /// timed-out and due probes handled, rates sampled.
    pub fn tick(&mut self, now_ns: u64) {
        let mut changed = false;
        let results: Vec<_> = self.link.results().collect();
        for (_, r) in results {
            if let Some(t) = self.checker.result(r, now_ns) {
                self.transition(t, now_ns);
                changed = true;
            }
        }
        let mut orders = Vec::new();
        for t in self.checker.poll(now_ns, &mut orders) {
            self.transition(t, now_ns);
            changed = true;
        }
        for (w, o) in orders {
            self.link.probe(w, o);
        }
        if changed {
            self.publish();
        }
        self.sample_rates(Instant::now());
        if let Some(b) = self.bgp.as_mut() {
            b.tick(&self.store.load_full(), now_ns);
        }
    }

    /// Whether every worker is polling (the runtime's heartbeat): VIPs are
    /// announced only while they are.
    pub fn set_workers_polling(&mut self, polling: bool) {
        if let Some(b) = self.bgp.as_mut() {
            b.set_workers_polling(polling);
        }
    }

    /// Whether some worker has stood still (its heartbeat) long enough to
    /// call it a stall, and how long the control thread itself was late
    /// for this tick: health probes wait for both (see
    /// [`Checker::hold`]), so rampart's own stall never marks a backend
    /// down.
    pub fn set_stalled(&mut self, worker_stalled: bool, control_late_ns: u64, now_ns: u64) {
        if control_late_ns > 0 {
            self.checker.postpone(control_late_ns);
        }
        self.checker.hold(worker_stalled, now_ns);
    }

    /// Stopping (SIGTERM): withdraws every announcement now. Returns
    /// whether there were announcements to withdraw (`[bgp]` enabled).
    pub fn stop_announcing(&mut self, now_ns: u64) -> bool {
        let Some(b) = self.bgp.as_mut() else {
            return false;
        };
        b.stop();
        b.tick(&self.store.load_full(), now_ns);
        true
    }

    /// Each VIP's announcement, when `[bgp]` is enabled.
    pub fn announcements(&self) -> Vec<model::Announcement> {
        let Some(b) = self.bgp.as_ref() else {
            return Vec::new();
        };
        b.vips()
            .iter()
            .map(|v| model::Announcement {
                vip: v.vip.clone(),
                address: v.address.to_string(),
                announced: v.announced,
                reason: v.reason.to_string(),
                drained: b.is_drained(&v.vip),
            })
            .collect()
    }

    /// Health transitions since the last call, oldest first.
    pub fn take_health_events(&mut self) -> Vec<HealthEvent> {
        std::mem::take(&mut self.events)
    }

    /// Records and logs a health transition (the caller republishes).
    fn transition(&mut self, t: Transition, now_ns: u64) {
        let name = endpoint(&t.key.addr, t.key.port);
        if self.events.len() >= MAX_HEALTH_EVENTS {
            self.events.remove(0);
        }
        self.events.push(HealthEvent {
            time_ns: now_ns,
            backend: name.clone(),
            up: t.up,
            reason: t.reason.clone(),
        });
        let overridden = self.overrides.get(&t.key).map(|s| s.name());
        if t.up {
            log::info!("backend {name} is up: {}", t.reason);
            self.health_down.remove(&t.key);
        } else {
            log::warn!("backend {name} is down: {}", t.reason);
            self.health_down.insert(t.key);
        }
        if let Some(o) = overridden {
            log::info!("backend {name} stays {o}: the operator's override wins");
        }
    }

    fn state_of(&self, key: &BackendKey) -> BackendState {
        if let Some(s) = self.overrides.get(key) {
            return *s;
        }
        if self.health_down.contains(key) {
            BackendState::Down
        } else {
            BackendState::Up
        }
    }

    /// Derives and publishes the snapshot of the current config and states.
    fn publish(&mut self) {
        self.generation += 1;
        let prev = self.store.load_full();
        let snap = Snapshot::derive(
            &self.cfg,
            Some(&prev),
            |k| self.state_of(k),
            self.generation,
        );
        self.store.store(Arc::new(snap));
    }

    /// Health targets of the current config: every backend of a live VIP
    /// whose check is `tcp`, probed once whichever VIPs it serves (the
    /// first VIP in file order sets its parameters).
    fn retarget(&mut self, now_ns: u64) {
        let snap = self.store.load_full();
        let mut targets: Vec<Target> = Vec::new();
        let mut seen = FxHashSet::default();
        for v in &self.cfg.vips {
            for b in &v.backends {
                let key = BackendKey {
                    addr: b.address,
                    port: b.port,
                };
                if b.health.kind != HealthKind::Tcp || !seen.insert(key) {
                    continue;
                }
                let Some(src) = self
                    .cfg
                    .node
                    .addresses
                    .iter()
                    .find(|a| a.is_v4() == b.address.is_v4())
                else {
                    continue;
                };
                let Some((id, info)) = snap.backends.iter().enumerate().find(|(_, x)| x.key == key)
                else {
                    continue;
                };
                targets.push(Target {
                    backend: BackendId::new(id as u32),
                    key,
                    params: ProbeParams {
                        interval_ms: b.health.interval_ms,
                        timeout_ms: b.health.timeout_ms,
                        rise: b.health.rise,
                        fall: b.health.fall,
                    },
                    src: *src,
                    mac: info.mac,
                });
            }
        }
        // A backend no longer checked is no longer down for its checks.
        self.health_down.retain(|k| seen.contains(k));
        self.checker.set_targets(targets, now_ns);
    }

    /// Takes `new` (validated) as the running config.
    fn adopt(
        &mut self,
        mut new: Config,
        doc: toml::Table,
        now_ns: u64,
    ) -> Result<model::ReloadReport, ControlError> {
        if new.synproxy.secret.is_none() {
            new.synproxy.secret = self.cfg.synproxy.secret;
        }
        if let Some(why) = needs_restart(&self.cfg, &new) {
            return Err(ControlError::NeedsRestart(why));
        }
        let names = |c: &Config| -> Vec<String> { c.vips.iter().map(|v| v.name.clone()).collect() };
        let old_names = names(&self.cfg);
        let new_names = names(&new);
        let report = model::ReloadReport {
            generation: self.generation + 1,
            vips_added: new_names
                .iter()
                .filter(|n| !old_names.contains(n))
                .cloned()
                .collect(),
            vips_removed: old_names
                .iter()
                .filter(|n| !new_names.contains(n))
                .cloned()
                .collect(),
            vips_changed: new
                .vips
                .iter()
                .filter(|v| self.cfg.vip(&v.name).is_some_and(|o| o != *v))
                .map(|v| v.name.clone())
                .collect(),
        };
        if self.cfg.bgp != new.bgp {
            match (&new.bgp, self.bgp.as_mut()) {
                (Some(cfg), Some(b)) if cfg.enabled => b.reconfigure(cfg),
                (cfg, old) => {
                    // Turned off or removed: what was announced is withdrawn
                    // before the announcer goes.
                    if let Some(b) = old {
                        b.stop();
                        b.tick(&self.store.load_full(), now_ns);
                    }
                    self.bgp = cfg.as_ref().and_then(Announcer::new);
                }
            }
        }
        self.cfg = new;
        self.doc = doc;
        self.publish();
        self.retarget(now_ns);
        Ok(report)
    }

    /// Re-reads the config file. An invalid file is refused with
    /// check-config's message and the running config stays.
    pub fn reload(&mut self, now_ns: u64) -> Result<model::ReloadReport, ControlError> {
        let r = self.reload_inner(now_ns);
        self.record_reload(r)
    }

    /// Counts and logs a reload's outcome.
    fn record_reload(
        &mut self,
        r: Result<model::ReloadReport, ControlError>,
    ) -> Result<model::ReloadReport, ControlError> {
        match &r {
            Ok(rep) => {
                self.reloads += 1;
                self.last_reload_error = None;
                log::info!(
                    "reloaded: generation {}, VIPs added [{}], removed [{}], changed [{}]",
                    rep.generation,
                    rep.vips_added.join(", "),
                    rep.vips_removed.join(", "),
                    rep.vips_changed.join(", ")
                );
            }
            Err(e) => {
                self.reload_failures += 1;
                self.last_reload_error = Some(e.to_string());
                log::error!("reload refused, the running config stays: {e}");
            }
        }
        r
    }

    fn reload_inner(&mut self, now_ns: u64) -> Result<model::ReloadReport, ControlError> {
        let Some(path) = self.config_path.clone() else {
            return Err(ControlError::NoConfigFile);
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ControlError::ReadConfig {
            path: path.display().to_string(),
            source,
        })?;
        let cfg = config::parse(&text, &path.display().to_string())?;
        let doc: toml::Table = text.parse().map_err(ControlError::ConfigToml)?;
        self.adopt(cfg, doc, now_ns)
    }

    /// Replaces the running config with `cfg` (a replay's scheduled reload),
    /// counted and logged as a reload of the file is.
    pub fn reload_with(
        &mut self,
        cfg: Config,
        text: &str,
        now_ns: u64,
    ) -> Result<model::ReloadReport, ControlError> {
        let r = text
            .parse()
            .map_err(ControlError::ConfigToml)
            .and_then(|doc| self.adopt(cfg, doc, now_ns));
        self.record_reload(r)
    }

    /// Validates an edited TOML tree as a config file and adopts it.
    fn apply_doc(
        &mut self,
        doc: toml::Table,
        now_ns: u64,
    ) -> Result<model::ReloadReport, ControlError> {
        let text = toml::to_string(&doc).map_err(ControlError::WriteToml)?;
        let cfg = config::parse(&text, "request").map_err(|e| {
            // Line numbers would point into the generated text, not the
            // operator's file: they go.
            let text = without_line_refs(e.message());
            let msg = match e.key() {
                Some(k) => format!("{k}: {text}"),
                None => text,
            };
            ControlError::InvalidEdit(msg)
        })?;
        self.adopt(cfg, doc, now_ns)
    }
}

/// `msg` without its parenthesised line references (" (line N)",
/// " (first at line N)").
fn without_line_refs(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(" (") {
        let inner = &rest[i + 2..];
        let Some(close) = inner.find(')') else {
            break;
        };
        let body = &inner[..close];
        let digits = body.bytes().rev().take_while(u8::is_ascii_digit).count();
        let is_ref = digits > 0 && body[..body.len() - digits].ends_with("line ");
        out.push_str(&rest[..i]);
        if !is_ref {
            out.push_str(&rest[i..i + 2 + close + 1]);
        }
        rest = &inner[close + 1..];
    }
    out.push_str(rest);
    out
}

/// What a reload cannot change in a running process, or `None`.
fn needs_restart(old: &Config, new: &Config) -> Option<String> {
    if old.conntrack.capacity != new.conntrack.capacity {
        return Some(format!(
            "conntrack.capacity changed from {} to {}",
            old.conntrack.capacity, new.conntrack.capacity
        ));
    }
    if old.synproxy != new.synproxy {
        return Some("[synproxy] changed".to_string());
    }
    if old.dpdk != new.dpdk {
        return Some("[dpdk] changed".to_string());
    }
    if old.ports != new.ports {
        return Some("[[port]] changed".to_string());
    }
    if old.control.socket != new.control.socket {
        return Some("control.socket changed".to_string());
    }
    if old.control.prometheus != new.control.prometheus {
        return Some("control.prometheus changed".to_string());
    }
    if old.node.mac != new.node.mac {
        return Some("node.mac changed".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_references_are_dropped() {
        assert_eq!(
            super::without_line_refs("already served by VIP `web` (line 37)"),
            "already served by VIP `web`"
        );
        assert_eq!(
            super::without_line_refs("a (line x) b (line 2) c"),
            "a (line x) b c"
        );
    }
}
