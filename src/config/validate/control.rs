//! `[control]`: the control socket, the metrics listener and what a
//! removed VIP does to its connections.

use super::*;
use crate::config::raw::RawControl;

pub(super) fn control(cx: &Ctx, r: &RawControl) -> Res<ControlConfig> {
    let policy = |v: &S<String>, key: &str| {
        choice(
            cx,
            v,
            key,
            "policy",
            ConnPolicy::NAMES,
            ConnPolicy::from_name,
        )
    };
    let socket = r.socket.as_ref().map(|v| socket_path(cx, v)).transpose();
    let prometheus = r
        .prometheus
        .as_ref()
        .map(|v| listen_addr(cx, v, "control.prometheus"))
        .transpose();
    let removed_vip = r
        .removed_vip
        .as_ref()
        .map(|v| policy(v, "control.removed_vip"))
        .transpose();
    let removed_backend = r
        .removed_backend
        .as_ref()
        .map(|v| policy(v, "control.removed_backend"))
        .transpose();
    earliest([
        socket.as_ref().err(),
        prometheus.as_ref().err(),
        removed_vip.as_ref().err(),
        removed_backend.as_ref().err(),
    ])?;
    let mut o = ControlConfig::default();
    if let Some(v) = socket? {
        o.socket = v;
    }
    if let Some(v) = prometheus? {
        o.prometheus = v;
    }
    if let Some(v) = removed_vip? {
        o.removed_vip = v;
    }
    if let Some(v) = removed_backend? {
        o.removed_backend = v;
    }
    Ok(o)
}

/// `control.socket`: `""` is off; otherwise a path that fits `sun_path`.
fn socket_path(cx: &Ctx, v: &S<String>) -> Res<Option<PathBuf>> {
    let path = v.get_ref();
    if path.is_empty() {
        return Ok(None);
    }
    if path.contains('\0') {
        return cx.err(
            v.span(),
            "control.socket",
            "the path contains a NUL byte, which a unix socket path cannot hold".to_string(),
        );
    }
    if path.len() > MAX_SOCKET_PATH {
        return cx.err(
            v.span(),
            "control.socket",
            format!(
                "the path is {} bytes; a unix socket path is at most {MAX_SOCKET_PATH} bytes (sun_path), so pick a shorter one (e.g. {DEFAULT_SOCKET})",
                path.len()
            ),
        );
    }
    Ok(Some(PathBuf::from(path)))
}

/// An `ADDR:PORT` to listen on (IPv6 in brackets); `""` is off.
fn listen_addr(cx: &Ctx, v: &S<String>, key: &str) -> Res<Option<SocketAddr>> {
    let s = v.get_ref().trim();
    if v.get_ref().is_empty() {
        return Ok(None);
    }
    let addr: SocketAddr = match s.parse() {
        Ok(a) => a,
        Err(_) => {
            let hint = if s.matches(':').count() > 1 && !s.starts_with('[') {
                "; write an IPv6 address in brackets, e.g. [::1]:9185"
            } else {
                ""
            };
            return cx.err(
                v.span(),
                key,
                format!("`{s}` is not ADDR:PORT (e.g. {DEFAULT_PROMETHEUS}){hint}"),
            );
        }
    };
    if addr.port() == 0 {
        return cx.err(
            v.span(),
            key,
            format!("port 0 is refused: give the port to listen on, e.g. {DEFAULT_PROMETHEUS}"),
        );
    }
    Ok(Some(addr))
}
