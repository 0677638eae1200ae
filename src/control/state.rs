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
//! only: the next reload of the file replaces them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

use super::bgp::Announcer;
use super::health::{Checker, ProbeParams, Target, Transition};
use super::link::{self, ControlLink, SnapshotStore, WorkerLink};
use super::model::{self, code, ApiError, Request};
use crate::config::{self, Config, HealthKind};
use crate::flow::{proto, Addr};
use crate::maglev::BackendKey;
use crate::snapshot::{BackendState, Snapshot};
use crate::stats::{DropReason, Event, FlowCounters};

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
}

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

fn err(code: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        code: code.to_string(),
        message: message.into(),
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
    ) -> Result<(Control, Vec<WorkerLink>), String> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| format!("config as TOML: {e}"))?;
        let snap = Snapshot::derive(&cfg, None, |_| BackendState::Up, 0);
        let (link, ends) = link::links(workers);
        let mut c = Control {
            config_path,
            doc,
            cfg,
            store: Arc::new(ArcSwap::from_pointee(snap)),
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
                    backend: id as u32,
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
    ) -> Result<model::ReloadReport, ApiError> {
        if new.synproxy.secret.is_none() {
            new.synproxy.secret = self.cfg.synproxy.secret;
        }
        if let Some(why) = needs_restart(&self.cfg, &new) {
            return Err(err(
                code::INVALID_CONFIG,
                format!("{why}; that takes a restart of rampart"),
            ));
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
                (Some(cfg), _) => self.bgp = Announcer::new(cfg),
                (None, _) => self.bgp = None,
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
    pub fn reload(&mut self, now_ns: u64) -> Result<model::ReloadReport, ApiError> {
        let r = self.reload_inner(now_ns);
        self.record_reload(r)
    }

    /// Counts and logs a reload's outcome.
    fn record_reload(
        &mut self,
        r: Result<model::ReloadReport, ApiError>,
    ) -> Result<model::ReloadReport, ApiError> {
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
                self.last_reload_error = Some(e.message.clone());
                log::error!("reload refused, the running config stays: {}", e.message);
            }
        }
        r
    }

    fn reload_inner(&mut self, now_ns: u64) -> Result<model::ReloadReport, ApiError> {
        let Some(path) = self.config_path.clone() else {
            return Err(err(code::FAILED, "this run has no config file to reload"));
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| err(code::FAILED, format!("{}: {e}", path.display())))?;
        let cfg = config::parse(&text, &path.display().to_string())
            .map_err(|e| err(code::INVALID_CONFIG, e.to_string()))?;
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err(code::INVALID_CONFIG, e.to_string()))?;
        self.adopt(cfg, doc, now_ns)
    }

    /// Replaces the running config with `cfg` (a replay's scheduled reload),
    /// counted and logged as a reload of the file is.
    pub fn reload_with(
        &mut self,
        cfg: Config,
        text: &str,
        now_ns: u64,
    ) -> Result<model::ReloadReport, ApiError> {
        let r = text
            .parse()
            .map_err(|e: toml::de::Error| err(code::INVALID_CONFIG, e.to_string()))
            .and_then(|doc| self.adopt(cfg, doc, now_ns));
        self.record_reload(r)
    }

    /// Validates an edited TOML tree as a config file and adopts it.
    fn apply_doc(
        &mut self,
        doc: toml::Table,
        now_ns: u64,
    ) -> Result<model::ReloadReport, ApiError> {
        let text = toml::to_string(&doc).map_err(|e| err(code::FAILED, e.to_string()))?;
        let cfg = config::parse(&text, "request").map_err(|e| {
            // Line numbers would point into the generated text, not the
            // operator's file: they go.
            let text = without_line_refs(e.message());
            let msg = match e.key() {
                Some(k) => format!("{k}: {text}"),
                None => text,
            };
            err(code::INVALID_CONFIG, msg)
        })?;
        self.adopt(cfg, doc, now_ns)
    }

    /// Executes one API request.
    pub fn handle(&mut self, req: Request) -> Result<Value, ApiError> {
        let now_ns = self.started.elapsed().as_nanos() as u64;
        match req {
            Request::Status => Ok(to_json(&self.status())),
            Request::VipList => Ok(to_json(&self.vip_list())),
            Request::Stats => Ok(to_json(&self.stats())),
            Request::Reload => self.reload(now_ns).map(|r| to_json(&r)),
            Request::VipDrain { name, drain } => {
                if self.cfg.vip(&name).is_none() {
                    return Err(err(code::NOT_FOUND, format!("no VIP named `{name}`")));
                }
                let Some(b) = self.bgp.as_mut() else {
                    return Err(err(
                        code::BAD_REQUEST,
                        "no [bgp] section is enabled: nothing is announced, so there is nothing to drain".to_string(),
                    ));
                };
                if b.drain(&name, drain) {
                    log::info!(
                        "VIP {name}: {} by the operator",
                        if drain {
                            "drained (withdrawn unless another VIP on its address serves)"
                        } else {
                            "undrained"
                        }
                    );
                }
                b.tick(&self.store.load_full(), now_ns);
                let a = self.announcements().into_iter().find(|a| a.vip == name);
                Ok(serde_json::json!({
                    "vip": name,
                    "drained": drain,
                    "announced": a.as_ref().is_some_and(|a| a.announced),
                    "reason": a.map(|a| a.reason).unwrap_or_default(),
                }))
            }
            Request::Conns { vip, limit } => self.conns(vip.as_deref(), limit).map(|r| to_json(&r)),
            Request::VipAdd { vip } => {
                let mut doc = self.doc.clone();
                vips_mut(&mut doc)?.push(toml::Value::Table(vip));
                self.apply_doc(doc, now_ns).map(|r| to_json(&r))
            }
            Request::VipDel { name } => {
                let mut doc = self.doc.clone();
                let vips = vips_mut(&mut doc)?;
                let before = vips.len();
                vips.retain(|v| v.get("name").and_then(toml::Value::as_str) != Some(name.as_str()));
                if vips.len() == before {
                    return Err(err(code::NOT_FOUND, format!("no VIP named `{name}`")));
                }
                self.apply_doc(doc, now_ns).map(|r| to_json(&r))
            }
            Request::BackendAdd {
                vip,
                backend,
                weight,
            } => {
                let (addr, port) = parse_backend(&backend)?;
                let mut doc = self.doc.clone();
                let t = vip_table(&mut doc, &vip)?;
                let mut b = toml::Table::new();
                b.insert("address".into(), toml::Value::String(addr.to_string()));
                if let Some(p) = port {
                    b.insert("port".into(), toml::Value::Integer(i64::from(p)));
                }
                if let Some(w) = weight {
                    b.insert("weight".into(), toml::Value::Integer(i64::from(w)));
                }
                backends_mut(t)?.push(toml::Value::Table(b));
                self.apply_doc(doc, now_ns).map(|r| to_json(&r))
            }
            Request::BackendDel { vip, backend } => {
                let target = self.backend_key(&vip, &backend)?;
                let mut doc = self.doc.clone();
                let vport = self.vip_port(&vip);
                let t = vip_table(&mut doc, &vip)?;
                backends_mut(t)?.retain(|b| backend_of(b, vport) != Some(target));
                self.apply_doc(doc, now_ns).map(|r| to_json(&r))
            }
            Request::BackendWeight {
                vip,
                backend,
                weight,
            } => {
                let target = self.backend_key(&vip, &backend)?;
                let mut doc = self.doc.clone();
                let vport = self.vip_port(&vip);
                let t = vip_table(&mut doc, &vip)?;
                for b in backends_mut(t)?.iter_mut() {
                    if backend_of(b, vport) == Some(target) {
                        if let Some(bt) = b.as_table_mut() {
                            bt.insert("weight".into(), toml::Value::Integer(i64::from(weight)));
                        }
                    }
                }
                self.apply_doc(doc, now_ns).map(|r| to_json(&r))
            }
            Request::BackendState { backend, state } => {
                let (addr, port) = parse_backend(&backend)?;
                let Some(port) = port else {
                    return Err(err(
                        code::BAD_REQUEST,
                        format!("`{backend}`: give the backend as ADDR:PORT"),
                    ));
                };
                let key = BackendKey { addr, port };
                let known = self.cfg.vips.iter().any(|v| {
                    v.backends
                        .iter()
                        .any(|b| b.address == addr && b.port == port)
                });
                if !known {
                    return Err(err(
                        code::NOT_FOUND,
                        format!("no VIP has backend {backend}"),
                    ));
                }
                let name = endpoint(&addr, port);
                if state == "clear" {
                    self.overrides.remove(&key);
                    log::info!("backend {name}: override cleared, health checks decide");
                } else {
                    let Some(s) = BackendState::from_name(&state) else {
                        return Err(err(
                            code::BAD_REQUEST,
                            format!("state `{state}`: expected one of up, down, drain, clear"),
                        ));
                    };
                    self.overrides.insert(key, s);
                    log::info!("backend {name} set {} by the operator", s.name());
                }
                self.publish();
                Ok(
                    serde_json::json!({ "backend": name, "state": self.state_of(&key).name(), "generation": self.generation }),
                )
            }
        }
    }

    fn vip_port(&self, vip: &str) -> u16 {
        self.cfg.vip(vip).map_or(0, |v| v.port)
    }

    /// The (address, port) of `backend` on VIP `vip`, which must have it.
    fn backend_key(&self, vip: &str, backend: &str) -> Result<BackendKey, ApiError> {
        let v = self
            .cfg
            .vip(vip)
            .ok_or_else(|| err(code::NOT_FOUND, format!("no VIP named `{vip}`")))?;
        let (addr, port) = parse_backend(backend)?;
        let port = port.unwrap_or(v.port);
        if !v
            .backends
            .iter()
            .any(|b| b.address == addr && b.port == port)
        {
            return Err(err(
                code::NOT_FOUND,
                format!("VIP `{vip}` has no backend {}", endpoint(&addr, port)),
            ));
        }
        Ok(BackendKey { addr, port })
    }

    pub fn status(&self) -> model::StatusReport {
        let snap = self.store.load_full();
        let published = self.link.published();
        let live: Vec<_> = snap.backends.iter().filter(|b| !b.removed).collect();
        model::StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs_f64(),
            config: self
                .config_path
                .as_ref()
                .map_or_else(|| "-".to_string(), |p| p.display().to_string()),
            generation: self.generation,
            reloads: self.reloads,
            reload_failures: self.reload_failures,
            last_reload_error: self.last_reload_error.clone(),
            workers: published.len() as u32,
            vips: snap.vips.iter().filter(|v| !v.retired).count() as u32,
            backends_up: live.iter().filter(|b| b.state == BackendState::Up).count() as u32,
            backends_total: live.len() as u32,
            active_conns: published.iter().map(|p| u64::from(p.active)).sum(),
            rx_packets: published.iter().map(|p| p.stats.rx_packets).sum(),
            tx_packets: published
                .iter()
                .map(|p| p.stats.tx_packets + p.stats.originated_packets)
                .sum(),
            dropped: published.iter().map(|p| p.stats.dropped_total()).sum(),
            announcements: self.announcements(),
            bgp_error: self.bgp.as_ref().and_then(|b| b.last_error.clone()),
        }
    }

    pub fn vip_list(&self) -> Vec<model::VipEntry> {
        let snap = self.store.load_full();
        snap.vips
            .iter()
            .map(|v| model::VipEntry {
                name: v.name.clone(),
                address: endpoint(&v.addr, v.port),
                protocol: proto_name(v.proto).to_string(),
                mode: v.mode.name().to_string(),
                scheduler: v.sched.name().to_string(),
                synproxy: v.synproxy,
                retired: v.retired,
                backends: v
                    .backends
                    .iter()
                    .zip(&v.config_weights)
                    .filter_map(|(id, w)| {
                        let b = snap.backends.get(*id as usize)?;
                        Some(model::VipBackend {
                            address: endpoint(&b.key.addr, b.key.port),
                            weight: *w,
                            state: b.state.name().to_string(),
                        })
                    })
                    .collect(),
            })
            .collect()
    }

    fn conns(&self, vip: Option<&str>, limit: Option<u32>) -> Result<model::ConnsReport, ApiError> {
        let snap = self.store.load_full();
        let vi = match vip {
            Some(name) => Some(
                snap.vips
                    .iter()
                    .position(|v| v.name == name)
                    .ok_or_else(|| err(code::NOT_FOUND, format!("no VIP named `{name}`")))?
                    as u16,
            ),
            None => None,
        };
        let limit = limit.unwrap_or(model::DEFAULT_CONNS_LIMIT);
        if limit > model::MAX_CONNS_LIMIT {
            return Err(err(
                code::BAD_REQUEST,
                format!("limit {limit} is over {}", model::MAX_CONNS_LIMIT),
            ));
        }
        let chunks = self.link.conns(vi, limit, CONNS_WAIT);
        let mut report = model::ConnsReport::default();
        for c in chunks {
            report.total += c.total;
            for r in c.rows {
                if report.conns.len() >= limit as usize {
                    break;
                }
                let v = snap.vips.get(r.vip as usize);
                let b = snap.backends.get(r.backend as usize);
                report.conns.push(model::ConnEntryReport {
                    worker: c.worker,
                    vip: v.map_or_else(|| "?".into(), |v| v.name.clone()),
                    protocol: proto_name(r.proto).to_string(),
                    client: endpoint(&r.client.0, r.client.1),
                    backend: b.map_or_else(|| "?".into(), |b| endpoint(&b.key.addr, b.key.port)),
                    local: r.local.and_then(|(a, p)| {
                        snap.local_addrs.get(a as usize).map(|a| endpoint(a, p))
                    }),
                    state: if r.proto == proto::UDP {
                        "udp".to_string()
                    } else {
                        r.state.name().to_string()
                    },
                    expires_in: r.expires_in,
                });
            }
        }
        Ok(report)
    }

    fn sample_rates(&mut self, now: Instant) {
        if self
            .rates
            .at
            .is_some_and(|t| now.duration_since(t) < RATE_PERIOD)
        {
            return;
        }
        let published = self.link.published();
        let workers: Vec<u64> = published
            .iter()
            .map(|p| p.stats.vips.iter().map(|c| c.connections).sum())
            .collect();
        let mut vips: Vec<u64> = Vec::new();
        let mut backends: Vec<u64> = Vec::new();
        for p in &published {
            add_counts(&mut vips, &p.stats.vips);
            add_counts(&mut backends, &p.stats.backends);
        }
        if let Some(at) = self.rates.at {
            let secs = now.duration_since(at).as_secs_f64();
            let rate = |new: &[u64], old: &[u64]| -> Vec<f64> {
                new.iter()
                    .enumerate()
                    .map(|(i, n)| n.saturating_sub(old.get(i).copied().unwrap_or(0)) as f64 / secs)
                    .collect()
            };
            self.rates.worker_rate = rate(&workers, &self.rates.workers);
            self.rates.vip_rate = rate(&vips, &self.rates.vips);
            self.rates.backend_rate = rate(&backends, &self.rates.backends);
        }
        self.rates.at = Some(now);
        self.rates.workers = workers;
        self.rates.vips = vips;
        self.rates.backends = backends;
    }

    pub fn stats(&self) -> model::StatsReport {
        let snap = self.store.load_full();
        let published = self.link.published();
        let mut vips = vec![FlowCounters::default(); snap.vips.len()];
        let mut backends = vec![FlowCounters::default(); snap.backends.len()];
        for p in &published {
            for (a, b) in vips.iter_mut().zip(&p.stats.vips) {
                a.add(b);
            }
            for (a, b) in backends.iter_mut().zip(&p.stats.backends) {
                a.add(b);
            }
        }
        let rate = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(0.0);
        model::StatsReport {
            uptime_secs: self.started.elapsed().as_secs_f64(),
            generation: self.generation,
            reloads: self.reloads,
            reload_failures: self.reload_failures,
            workers: published
                .iter()
                .enumerate()
                .map(|(w, p)| {
                    let s = &p.stats;
                    model::WorkerReport {
                        worker: w as u16,
                        rx_packets: s.rx_packets,
                        tx_packets: s.tx_packets,
                        rx_bytes: s.rx_bytes,
                        tx_bytes: s.tx_bytes,
                        consumed: s.consumed,
                        originated_packets: s.originated_packets,
                        handovers_out: p.handovers_out,
                        handovers_in: p.handovers_in,
                        active_conns: u64::from(p.active),
                        new_conns_per_sec: rate(&self.rates.worker_rate, w),
                        drops: DropReason::ALL
                            .iter()
                            .map(|r| {
                                (
                                    r.name().to_string(),
                                    s.drops.get(*r as usize).copied().unwrap_or(0),
                                )
                            })
                            .collect(),
                        events: Event::ALL
                            .iter()
                            .map(|e| {
                                (
                                    e.name().to_string(),
                                    s.events.get(*e as usize).copied().unwrap_or(0),
                                )
                            })
                            .collect(),
                    }
                })
                .collect(),
            vips: snap
                .vips
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let c = vips.get(i).copied().unwrap_or_default();
                    let live = v
                        .backends
                        .iter()
                        .filter(|b| snap.backends.get(**b as usize).is_some());
                    model::VipReport {
                        name: v.name.clone(),
                        address: endpoint(&v.addr, v.port),
                        protocol: proto_name(v.proto).to_string(),
                        mode: v.mode.name().to_string(),
                        retired: v.retired,
                        packets_in: c.packets_in,
                        packets_out: c.packets_out,
                        bytes_in: c.bytes_in,
                        bytes_out: c.bytes_out,
                        conns_total: c.connections,
                        conns_active: c.active(),
                        new_conns_per_sec: rate(&self.rates.vip_rate, i),
                        backends_up: v.weights.iter().filter(|w| **w > 0).count() as u32,
                        backends_total: live.count() as u32,
                    }
                })
                .collect(),
            backends: snap
                .backends
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let c = backends.get(i).copied().unwrap_or_default();
                    let checked = self.checker.health(i as u32);
                    model::BackendReport {
                        address: endpoint(&b.key.addr, b.key.port),
                        vips: snap
                            .vips
                            .iter()
                            .filter(|v| !v.retired && v.backends.contains(&(i as u32)))
                            .map(|v| v.name.clone())
                            .collect(),
                        state: b.state.name().to_string(),
                        health: match checked {
                            None => "unchecked",
                            Some(super::health::Health::Up) => "up",
                            Some(super::health::Health::Down) => "down",
                        }
                        .to_string(),
                        admin: self.overrides.get(&b.key).map(|s| s.name().to_string()),
                        packets_in: c.packets_in,
                        packets_out: c.packets_out,
                        bytes_in: c.bytes_in,
                        bytes_out: c.bytes_out,
                        conns_total: c.connections,
                        conns_active: c.active(),
                        new_conns_per_sec: rate(&self.rates.backend_rate, i),
                    }
                })
                .collect(),
        }
    }
}

fn add_counts(acc: &mut Vec<u64>, c: &[FlowCounters]) {
    if acc.len() < c.len() {
        acc.resize(c.len(), 0);
    }
    for (a, b) in acc.iter_mut().zip(c) {
        *a += b.connections;
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

/// "ADDR:PORT", "[V6]:PORT", or a bare address (the VIP's port).
fn parse_backend(s: &str) -> Result<(Addr, Option<u16>), ApiError> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok((Addr::from(sa.ip()), Some(sa.port())));
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok((Addr::from(ip), None));
    }
    Err(err(
        code::BAD_REQUEST,
        format!("`{s}` is not ADDR:PORT ([ADDR]:PORT for IPv6) or an address"),
    ))
}

/// The `[[vip]]` array of a config tree (created if absent).
fn vips_mut(doc: &mut toml::Table) -> Result<&mut Vec<toml::Value>, ApiError> {
    doc.entry("vip")
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| err(code::FAILED, "the running config's `vip` is not an array"))
}

fn vip_table<'a>(doc: &'a mut toml::Table, name: &str) -> Result<&'a mut toml::Table, ApiError> {
    vips_mut(doc)?
        .iter_mut()
        .filter_map(toml::Value::as_table_mut)
        .find(|t| t.get("name").and_then(toml::Value::as_str) == Some(name))
        .ok_or_else(|| err(code::NOT_FOUND, format!("no VIP named `{name}`")))
}

/// The `[[vip.backend]]` array of a VIP table (created if absent).
fn backends_mut(vip: &mut toml::Table) -> Result<&mut Vec<toml::Value>, ApiError> {
    vip.entry("backend")
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| err(code::FAILED, "the VIP's `backend` is not an array"))
}

/// The (address, port) a `[[vip.backend]]` table names; `vip_port` when it
/// has no port.
fn backend_of(b: &toml::Value, vip_port: u16) -> Option<BackendKey> {
    let t = b.as_table()?;
    let addr: IpAddr = t.get("address")?.as_str()?.trim().parse().ok()?;
    let port = match t.get("port") {
        Some(p) => u16::try_from(p.as_integer()?).ok()?,
        None => vip_port,
    };
    Some(BackendKey {
        addr: Addr::from(addr),
        port,
    })
}

/// A report as a JSON value; these plain structs always serialize.
fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
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
