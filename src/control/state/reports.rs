//! The reports `status`, `vip list`, `conns` and `stats` answer with, and
//! the connection rates they show.

use std::time::Instant;

use super::{endpoint, proto_name, Control, ControlError, CONNS_WAIT, RATE_PERIOD};
use crate::control::model;
use crate::control::server::Refusal;
use crate::flow::proto;
use crate::ids::{BackendId, VipId};
use crate::snapshot::BackendState;
use crate::stats::{DropReason, Event, FlowCounters};

impl Control {
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
                        let b = snap.backends.get(id.index())?;
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

    pub(super) fn conns(
        &self,
        vip: Option<&str>,
        limit: Option<u32>,
    ) -> Result<model::ConnsReport, ControlError> {
        let snap = self.store.load_full();
        let vi = match vip {
            Some(name) => Some(VipId::new(
                snap.vips
                    .iter()
                    .position(|v| v.name == name)
                    .ok_or_else(|| ControlError::NoVip(name.to_string()))? as u16,
            )),
            None => None,
        };
        let limit = limit.unwrap_or(model::DEFAULT_CONNS_LIMIT);
        if limit > model::MAX_CONNS_LIMIT {
            return Err(ControlError::LimitTooHigh {
                limit,
                max: model::MAX_CONNS_LIMIT,
            });
        }
        let chunks = self.link.conns(vi, limit, CONNS_WAIT);
        let mut report = model::ConnsReport::default();
        for c in chunks {
            report.total += c.total;
            for r in c.rows {
                if report.conns.len() >= limit as usize {
                    break;
                }
                let v = snap.vips.get(r.vip.index());
                let b = snap.backends.get(r.backend.index());
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

    pub(super) fn sample_rates(&mut self, now: Instant) {
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
            announcements: self.announcements(),
            ports: self.ports.as_ref().map(|read| read()).unwrap_or_default(),
            refusals: Refusal::ALL
                .iter()
                .map(|&r| model::RefusalReport {
                    listener: r.listener().into(),
                    reason: r.reason().into(),
                    count: self.listeners.get(r),
                })
                .collect(),
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
                        handovers_out: p.io.handovers_out,
                        handovers_in: p.io.handovers_in,
                        handover_dropped: p.io.handover_dropped,
                        tx_dropped: p.io.tx_dropped,
                        tx_alloc_failed: p.io.tx_alloc_failed,
                        rx_multiseg: p.io.rx_multiseg,
                        kernel_dropped: p.io.kernel_dropped,
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
                        .filter(|b| snap.backends.get(b.index()).is_some());
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
                    let id = BackendId::new(i as u32);
                    let checked = self.checker.health(id);
                    model::BackendReport {
                        address: endpoint(&b.key.addr, b.key.port),
                        vips: snap
                            .vips
                            .iter()
                            .filter(|v| !v.retired && v.backends.contains(&id))
                            .map(|v| v.name.clone())
                            .collect(),
                        state: b.state.name().to_string(),
                        health: match checked {
                            None => "unchecked",
                            Some(crate::control::health::Health::Up) => "up",
                            Some(crate::control::health::Health::Down) => "down",
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
