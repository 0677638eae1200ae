//! What each API request does: reports are read, edits are made to the
//! config's TOML tree and adopted as a reload would adopt the file.

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use super::{endpoint, Control, ControlError};
use crate::control::model::{ApiError, Request};
use crate::flow::Addr;
use crate::maglev::BackendKey;
use crate::snapshot::BackendState;

impl Control {
    /// Executes one API request; a refusal is answered with its code and
    /// message ([`ControlError::code`]).
    pub fn handle(&mut self, req: Request) -> Result<Value, ApiError> {
        self.execute(req).map_err(ApiError::from)
    }

    fn execute(&mut self, req: Request) -> Result<Value, ControlError> {
        let now_ns = self.started.elapsed().as_nanos() as u64;
        match req {
            Request::Status => Ok(to_json(&self.status())),
            Request::VipList => Ok(to_json(&self.vip_list())),
            Request::Stats => Ok(to_json(&self.stats())),
            Request::Reload => self.reload(now_ns).map(|r| to_json(&r)),
            Request::VipDrain { name, drain } => {
                if self.cfg.vip(&name).is_none() {
                    return Err(ControlError::NoVip(name));
                }
                let Some(b) = self.bgp.as_mut() else {
                    return Err(ControlError::NoBgp);
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
                    return Err(ControlError::NoVip(name));
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
                    return Err(ControlError::NeedsPort(backend));
                };
                let key = BackendKey { addr, port };
                let known = self.cfg.vips.iter().any(|v| {
                    v.backends
                        .iter()
                        .any(|b| b.address == addr && b.port == port)
                });
                if !known {
                    return Err(ControlError::UnknownBackend(backend));
                }
                let name = endpoint(&addr, port);
                if state == "clear" {
                    self.overrides.remove(&key);
                    log::info!("backend {name}: override cleared, health checks decide");
                } else {
                    let Some(s) = BackendState::from_name(&state) else {
                        return Err(ControlError::BadState(state));
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
    fn backend_key(&self, vip: &str, backend: &str) -> Result<BackendKey, ControlError> {
        let v = self
            .cfg
            .vip(vip)
            .ok_or_else(|| ControlError::NoVip(vip.to_string()))?;
        let (addr, port) = parse_backend(backend)?;
        let port = port.unwrap_or(v.port);
        if !v
            .backends
            .iter()
            .any(|b| b.address == addr && b.port == port)
        {
            return Err(ControlError::NotOnVip {
                vip: vip.to_string(),
                backend: endpoint(&addr, port),
            });
        }
        Ok(BackendKey { addr, port })
    }
}

/// "ADDR:PORT", "[V6]:PORT", or a bare address (the VIP's port).
fn parse_backend(s: &str) -> Result<(Addr, Option<u16>), ControlError> {
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
    Err(ControlError::BadBackend(s.to_string()))
}

/// The `[[vip]]` array of a config tree (created if absent).
fn vips_mut(doc: &mut toml::Table) -> Result<&mut Vec<toml::Value>, ControlError> {
    doc.entry("vip")
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or(ControlError::Shape(
            "the running config's `vip` is not an array",
        ))
}

fn vip_table<'a>(
    doc: &'a mut toml::Table,
    name: &str,
) -> Result<&'a mut toml::Table, ControlError> {
    vips_mut(doc)?
        .iter_mut()
        .filter_map(toml::Value::as_table_mut)
        .find(|t| t.get("name").and_then(toml::Value::as_str) == Some(name))
        .ok_or_else(|| ControlError::NoVip(name.to_string()))
}

/// The `[[vip.backend]]` array of a VIP table (created if absent).
fn backends_mut(vip: &mut toml::Table) -> Result<&mut Vec<toml::Value>, ControlError> {
    vip.entry("backend")
        .or_insert_with(|| toml::Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or(ControlError::Shape("the VIP's `backend` is not an array"))
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
