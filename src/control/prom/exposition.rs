//! The text exposition: a [`model::StatsReport`] as prometheus-client
//! constant metrics, one family block per name (see the module above for
//! the invariants of the text).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::control::model::{self, BackendReport, VipReport, WorkerReport};

/// The exposition's content type.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// A sample value: counters stay exact integers, rates are floats.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(u64),
    Float(f64),
}

impl From<u64> for Num {
    fn from(v: u64) -> Num {
        Num::Int(v)
    }
}

impl From<u32> for Num {
    fn from(v: u32) -> Num {
        Num::Int(u64::from(v))
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Num {
        Num::Float(v)
    }
}

impl From<bool> for Num {
    fn from(v: bool) -> Num {
        Num::Int(u64::from(v))
    }
}

type Labels<'a> = [(&'a str, &'a str)];

/// Starts a family. Names are written here as they are exposed; a
/// counter's `_total` comes off because the encoder adds it.
fn family<'e>(
    e: &'e mut DescriptorEncoder<'_>,
    name: &'e str,
    kind: Kind,
    help: &str,
) -> Result<MetricEncoder<'e>, std::fmt::Error> {
    let (name, ty) = match kind {
        Kind::Counter => (
            name.strip_suffix("_total").unwrap_or(name),
            MetricType::Counter,
        ),
        Kind::Gauge => (name, MetricType::Gauge),
    };
    e.encode_descriptor(name, help, None, ty)
}

fn sample(m: &mut MetricEncoder<'_>, kind: Kind, labels: &Labels, v: Num) -> std::fmt::Result {
    let m = m.encode_family(&labels)?;
    match (kind, v) {
        (Kind::Counter, Num::Int(v)) => ConstCounter::new(v).encode(m),
        (Kind::Counter, Num::Float(v)) => ConstCounter::new(v).encode(m),
        (Kind::Gauge, Num::Int(v)) => ConstGauge::new(v).encode(m),
        (Kind::Gauge, Num::Float(v)) => ConstGauge::new(v).encode(m),
    }
}

type WorkerField = fn(&WorkerReport) -> Num;
type VipField = fn(&VipReport) -> Num;
type BackendField = fn(&BackendReport) -> Num;

/// Per-worker families with a `worker` label only.
const WORKER_FAMILIES: &[(&str, Kind, &str, WorkerField)] = &[
    (
        "rampart_rx_packets_total",
        Kind::Counter,
        "Frames the worker received.",
        |w| w.rx_packets.into(),
    ),
    (
        "rampart_tx_packets_total",
        Kind::Counter,
        "Frames the worker transmitted.",
        |w| w.tx_packets.into(),
    ),
    (
        "rampart_rx_bytes_total",
        Kind::Counter,
        "Bytes of the frames the worker received.",
        |w| w.rx_bytes.into(),
    ),
    (
        "rampart_tx_bytes_total",
        Kind::Counter,
        "Bytes of the frames the worker transmitted.",
        |w| w.tx_bytes.into(),
    ),
    (
        "rampart_consumed_packets_total",
        Kind::Counter,
        "Frames the SYN proxy took over (neither sent nor dropped).",
        |w| w.consumed.into(),
    ),
    (
        "rampart_originated_packets_total",
        Kind::Counter,
        "Frames the worker originated (SYN proxy, resets, health probes).",
        |w| w.originated_packets.into(),
    ),
    (
        "rampart_handovers_out_total",
        Kind::Counter,
        "Frames handed to another worker's queue.",
        |w| w.handovers_out.into(),
    ),
    (
        "rampart_handovers_in_total",
        Kind::Counter,
        "Frames received from another worker's queue.",
        |w| w.handovers_in.into(),
    ),
    (
        "rampart_handover_dropped_total",
        Kind::Counter,
        "Frames for another worker dropped because its ring was full.",
        |w| w.handover_dropped.into(),
    ),
    (
        "rampart_tx_dropped_total",
        Kind::Counter,
        "Frames a tx queue still refused after every attempt (full tx ring).",
        |w| w.tx_dropped.into(),
    ),
    (
        "rampart_tx_alloc_failed_total",
        Kind::Counter,
        "Originated or handed-over frames lost because the mempool had no free mbuf.",
        |w| w.tx_alloc_failed.into(),
    ),
    (
        "rampart_rx_multiseg_total",
        Kind::Counter,
        "Received frames spread over several mbufs, dropped.",
        |w| w.rx_multiseg.into(),
    ),
    (
        "rampart_kernel_dropped_total",
        Kind::Counter,
        "Frames for the kernel that came in on a port without a kernel interface, dropped.",
        |w| w.kernel_dropped.into(),
    ),
    (
        "rampart_active_connections",
        Kind::Gauge,
        "Connections in the worker's connection table.",
        |w| w.active_conns.into(),
    ),
    (
        "rampart_new_connections_per_second",
        Kind::Gauge,
        "Connections the worker created per second over the last sampling period.",
        |w| w.new_conns_per_sec.into(),
    ),
];

/// Per-VIP families whose only labels are the VIP's.
const VIP_FAMILIES: &[(&str, Kind, &str, VipField)] = &[
    (
        "rampart_vip_connections_total",
        Kind::Counter,
        "Connections the VIP created.",
        |v| v.conns_total.into(),
    ),
    (
        "rampart_vip_active_connections",
        Kind::Gauge,
        "Connections of the VIP not yet closed or expired.",
        |v| v.conns_active.into(),
    ),
    (
        "rampart_vip_new_connections_per_second",
        Kind::Gauge,
        "Connections the VIP created per second over the last sampling period.",
        |v| v.new_conns_per_sec.into(),
    ),
    (
        "rampart_vip_backends_up",
        Kind::Gauge,
        "Backends of the VIP the scheduler may pick.",
        |v| v.backends_up.into(),
    ),
    (
        "rampart_vip_backends",
        Kind::Gauge,
        "Backends configured for the VIP.",
        |v| v.backends_total.into(),
    ),
    (
        "rampart_vip_retired",
        Kind::Gauge,
        "1 when the VIP was removed and its connections are draining.",
        |v| v.retired.into(),
    ),
];

/// Per-backend families whose only label is the backend's.
const BACKEND_FAMILIES: &[(&str, Kind, &str, BackendField)] = &[
    (
        "rampart_backend_connections_total",
        Kind::Counter,
        "Connections scheduled to the backend.",
        |b| b.conns_total.into(),
    ),
    (
        "rampart_backend_active_connections",
        Kind::Gauge,
        "Connections to the backend not yet closed or expired.",
        |b| b.conns_active.into(),
    ),
    (
        "rampart_backend_new_connections_per_second",
        Kind::Gauge,
        "Connections scheduled to the backend per second over the last sampling period.",
        |b| b.new_conns_per_sec.into(),
    ),
    (
        "rampart_backend_up",
        Kind::Gauge,
        "1 when schedulers may pick the backend (state up).",
        |b| (b.state == "up").into(),
    ),
];

/// The states `rampart_backend_state` enumerates.
pub(super) const BACKEND_STATES: [&str; 3] = ["up", "down", "drain"];
/// The health check results `rampart_backend_health` enumerates.
const HEALTH_STATES: [&str; 3] = ["up", "down", "unchecked"];

/// The exposition of one stats report, text format 0.0.4.
pub fn render(stats: &model::StatsReport) -> String {
    let mut report = stats.clone();
    report.vips = merge_vips(&stats.vips);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Report(report)));
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail, and neither can the collector.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// One scrape's snapshot, its VIPs merged.
#[derive(Debug)]
struct Report(model::StatsReport);

impl Collector for Report {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let s = &self.0;
        encode_process(&mut e, s)?;
        encode_workers(&mut e, &s.workers)?;
        encode_vips(&mut e, &s.vips)?;
        encode_backends(&mut e, &s.backends)?;
        encode_announcements(&mut e, &s.announcements)?;
        encode_refusals(&mut e, &s.refusals)?;
        encode_ports(&mut e, &s.ports)
    }
}

type PortField = fn(&model::PortReport) -> u64;

/// Per-port families of `rampart run`, with a `port` label.
const PORT_FAMILIES: [(&str, &str, PortField); 4] = [
    (
        "rampart_port_rx_missed_total",
        "Frames the NIC dropped because an rx ring was full.",
        |p| p.rx_missed,
    ),
    (
        "rampart_port_rx_nombuf_total",
        "Frames lost because the mempool had no mbuf to receive them into.",
        |p| p.rx_nombuf,
    ),
    (
        "rampart_port_rx_errors_total",
        "Erroneous frames the port received.",
        |p| p.rx_errors,
    ),
    (
        "rampart_port_tx_errors_total",
        "Transmissions the port failed.",
        |p| p.tx_errors,
    ),
];

/// The ports' NIC counters (no family without ports, as in a replay).
fn encode_ports(e: &mut DescriptorEncoder<'_>, ports: &[model::PortReport]) -> std::fmt::Result {
    if ports.is_empty() {
        return Ok(());
    }
    let c = Kind::Counter;
    for (name, help, field) in PORT_FAMILIES {
        let mut m = family(e, name, c, help)?;
        for p in ports {
            sample(&mut m, c, &[("port", p.port.as_str())], field(p).into())?;
        }
    }
    Ok(())
}

/// What the control socket and the metrics endpoint turned away.
fn encode_refusals(
    e: &mut DescriptorEncoder<'_>,
    refusals: &[model::RefusalReport],
) -> std::fmt::Result {
    let c = Kind::Counter;
    let help = "Clients the control socket or the metrics endpoint turned away, by reason.";
    let mut m = family(e, "rampart_listener_refusals_total", c, help)?;
    for r in refusals {
        let l = [
            ("listener", r.listener.as_str()),
            ("reason", r.reason.as_str()),
        ];
        sample(&mut m, c, &l, r.count.into())?;
    }
    Ok(())
}

fn encode_process(e: &mut DescriptorEncoder<'_>, s: &model::StatsReport) -> std::fmt::Result {
    let families: [(&str, Kind, &str, Num); 4] = [
        (
            "rampart_uptime_seconds",
            Kind::Gauge,
            "Seconds since rampart started.",
            s.uptime_secs.into(),
        ),
        (
            "rampart_config_generation",
            Kind::Gauge,
            "Generation of the published snapshot (bumped by reloads, API changes, health).",
            s.generation.into(),
        ),
        (
            "rampart_reloads_total",
            Kind::Counter,
            "Config reloads that succeeded.",
            s.reloads.into(),
        ),
        (
            "rampart_reload_failures_total",
            Kind::Counter,
            "Config reloads that failed (the running config stayed).",
            s.reload_failures.into(),
        ),
    ];
    for (name, kind, help, v) in families {
        sample(&mut family(e, name, kind, help)?, kind, &[], v)?;
    }
    Ok(())
}

fn encode_workers(e: &mut DescriptorEncoder<'_>, workers: &[WorkerReport]) -> std::fmt::Result {
    let ids: Vec<String> = workers.iter().map(|w| w.worker.to_string()).collect();
    for &(name, kind, help, field) in WORKER_FAMILIES {
        let mut m = family(e, name, kind, help)?;
        for (w, id) in workers.iter().zip(&ids) {
            sample(&mut m, kind, &[("worker", id)], field(w))?;
        }
    }
    let c = Kind::Counter;
    let help = "Frames the worker dropped, by reason.";
    let mut m = family(e, "rampart_drops_total", c, help)?;
    for (w, id) in workers.iter().zip(&ids) {
        for (reason, &n) in &w.drops {
            sample(&mut m, c, &[("worker", id), ("reason", reason)], n.into())?;
        }
    }
    let help = "Datapath events of the worker, by name.";
    let mut m = family(e, "rampart_events_total", c, help)?;
    for (w, id) in workers.iter().zip(&ids) {
        for (event, &n) in &w.events {
            sample(&mut m, c, &[("worker", id), ("event", event)], n.into())?;
        }
    }
    Ok(())
}

fn vip_labels(v: &VipReport) -> [(&'static str, &str); 4] {
    [
        ("vip", &v.name),
        ("address", &v.address),
        ("protocol", &v.protocol),
        ("mode", &v.mode),
    ]
}

/// Families with one sample per direction: (name, help, in, out).
type DirectedFamily<'a, T> = (&'a str, &'a str, fn(&T) -> (u64, u64));

const VIP_DIRECTED: [DirectedFamily<VipReport>; 2] = [
    (
        "rampart_vip_packets_total",
        "Frames forwarded for the VIP: in = client to backend, out = backend to client.",
        |v| (v.packets_in, v.packets_out),
    ),
    (
        "rampart_vip_bytes_total",
        "Bytes of the frames forwarded for the VIP: in = client to backend, out = backend to client.",
        |v| (v.bytes_in, v.bytes_out),
    ),
];

const BACKEND_DIRECTED: [DirectedFamily<BackendReport>; 2] = [
    (
        "rampart_backend_packets_total",
        "Frames forwarded for the backend: in = client to backend, out = backend to client.",
        |b| (b.packets_in, b.packets_out),
    ),
    (
        "rampart_backend_bytes_total",
        "Bytes of the frames forwarded for the backend: in = client to backend, out = backend to client.",
        |b| (b.bytes_in, b.bytes_out),
    ),
];

fn encode_vips(e: &mut DescriptorEncoder<'_>, vips: &[VipReport]) -> std::fmt::Result {
    let c = Kind::Counter;
    for (name, help, field) in VIP_DIRECTED {
        let mut m = family(e, name, c, help)?;
        for v in vips {
            let [a, b, cc, d] = vip_labels(v);
            let (n_in, n_out) = field(v);
            sample(&mut m, c, &[a, b, cc, d, ("direction", "in")], n_in.into())?;
            sample(
                &mut m,
                c,
                &[a, b, cc, d, ("direction", "out")],
                n_out.into(),
            )?;
        }
    }
    for &(name, kind, help, field) in VIP_FAMILIES {
        let mut m = family(e, name, kind, help)?;
        for v in vips {
            sample(&mut m, kind, &vip_labels(v), field(v))?;
        }
    }
    Ok(())
}

/// Families with a sample for each value a backend's field can take, 1 for
/// the current one: (name, help, label, values, field).
type OneOfFamily = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    fn(&BackendReport) -> &str,
);

const BACKEND_ONE_OF: [OneOfFamily; 2] = [
    (
        "rampart_backend_state",
        "What schedulers see of the backend (operator override, else health): 1 for the current state.",
        "state",
        &BACKEND_STATES,
        |b| &b.state,
    ),
    (
        "rampart_backend_health",
        "The backend's health check result: 1 for the current one.",
        "health",
        &HEALTH_STATES,
        |b| &b.health,
    ),
];

fn encode_backends(e: &mut DescriptorEncoder<'_>, backends: &[BackendReport]) -> std::fmt::Result {
    let c = Kind::Counter;
    for (name, help, field) in BACKEND_DIRECTED {
        let mut m = family(e, name, c, help)?;
        for b in backends {
            let l = ("backend", b.address.as_str());
            let (n_in, n_out) = field(b);
            sample(&mut m, c, &[l, ("direction", "in")], n_in.into())?;
            sample(&mut m, c, &[l, ("direction", "out")], n_out.into())?;
        }
    }
    for &(name, kind, help, field) in BACKEND_FAMILIES {
        let mut m = family(e, name, kind, help)?;
        for b in backends {
            sample(&mut m, kind, &[("backend", &b.address)], field(b))?;
        }
    }
    let g = Kind::Gauge;
    for (name, help, label, values, current) in BACKEND_ONE_OF {
        let mut m = family(e, name, g, help)?;
        for b in backends {
            for &value in values {
                let l = [("backend", b.address.as_str()), (label, value)];
                sample(&mut m, g, &l, (current(b) == value).into())?;
            }
        }
    }
    Ok(())
}

/// `[bgp]`: 1 while a VIP's address is announced (no family without it).
fn encode_announcements(
    e: &mut DescriptorEncoder<'_>,
    announcements: &[model::Announcement],
) -> std::fmt::Result {
    if announcements.is_empty() {
        return Ok(());
    }
    let g = Kind::Gauge;
    let help = "1 while the VIP's address is announced to the routers ([bgp]).";
    let mut m = family(e, "rampart_vip_announced", g, help)?;
    for a in announcements {
        let l = [("vip", a.vip.as_str()), ("address", a.address.as_str())];
        sample(&mut m, g, &l, a.announced.into())?;
    }
    Ok(())
}

/// One report per label set: counters and connection counts of VIPs with
/// equal labels are summed; their backend counts and `retired` are those of
/// the live one (the first if all are retired).
fn merge_vips(vips: &[VipReport]) -> Vec<VipReport> {
    let mut out: Vec<VipReport> = Vec::with_capacity(vips.len());
    for v in vips {
        let same = out.iter_mut().find(|o| vip_labels(o) == vip_labels(v));
        let Some(o) = same else {
            out.push(v.clone());
            continue;
        };
        o.packets_in = o.packets_in.saturating_add(v.packets_in);
        o.packets_out = o.packets_out.saturating_add(v.packets_out);
        o.bytes_in = o.bytes_in.saturating_add(v.bytes_in);
        o.bytes_out = o.bytes_out.saturating_add(v.bytes_out);
        o.conns_total = o.conns_total.saturating_add(v.conns_total);
        o.conns_active = o.conns_active.saturating_add(v.conns_active);
        o.new_conns_per_sec += v.new_conns_per_sec;
        if o.retired && !v.retired {
            o.retired = false;
            o.backends_up = v.backends_up;
            o.backends_total = v.backends_total;
        }
    }
    out
}
