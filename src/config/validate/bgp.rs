//! `[bgp]`: the routing daemon rampart tells what to announce.

use super::*;
use crate::config::raw::RawBgp;

pub(super) fn bgp(cx: &Ctx, r: &RawBgp) -> Res<Bgp> {
    let mut o = Bgp::default();
    if let Some(v) = &r.enabled {
        o.enabled = *v.get_ref();
    }
    if let Some(v) = &r.daemon {
        o.daemon = choice(
            cx,
            v,
            "bgp.daemon",
            "routing daemon rampart drives",
            BgpDaemon::NAMES,
            BgpDaemon::from_name,
        )?;
    }
    if let Some(v) = &r.socket {
        o.socket = path(cx, v, "bgp.socket", MAX_SOCKET_PATH)?;
    }
    if let Some(v) = &r.routes_file {
        o.routes_file = path(cx, v, "bgp.routes_file", 4096)?;
    }
    for (v, key, v4) in [
        (&r.next_hop_v4, "bgp.next_hop_v4", true),
        (&r.next_hop_v6, "bgp.next_hop_v6", false),
    ] {
        let Some(v) = v else { continue };
        let a = cx.addr(v, key)?;
        if a.is_v4() != v4 {
            return cx.err(
                v.span(),
                key,
                format!("{a} is not an {} address", if v4 { "IPv4" } else { "IPv6" }),
            );
        }
        if v4 {
            o.next_hop_v4 = Some(a);
        } else {
            o.next_hop_v6 = Some(a);
        }
    }
    if let Some(v) = &r.med {
        o.med = Some(cx.int(v, "bgp.med", 0, u32::MAX, "")?);
    }
    if let Some(list) = &r.communities {
        for (i, c) in list.get_ref().iter().enumerate() {
            let key = format!("bgp.communities[{i}]");
            let parsed = c
                .get_ref()
                .split_once(':')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
            match parsed {
                Some(pair) => o.communities.push(pair),
                None => {
                    return cx.err(
                        c.span(),
                        &key,
                        format!(
                            "`{}` is not a community: write ASN:VALUE, each 0..=65535 (e.g. \"65000:100\")",
                            c.get_ref()
                        ),
                    )
                }
            }
        }
    }
    if let Some(v) = &r.drain_seconds {
        o.drain_seconds = cx.int(v, "bgp.drain_seconds", 0, 3600, " seconds")?;
    }
    Ok(o)
}

/// An absolute path of at most `max` bytes without NUL.
fn path(cx: &Ctx, v: &S<String>, key: &str, max: usize) -> Res<PathBuf> {
    let p = v.get_ref();
    if !p.starts_with('/') || p.contains('\0') || p.len() > max {
        return cx.err(
            v.span(),
            key,
            format!("`{p}` is not a usable path: an absolute path of at most {max} bytes"),
        );
    }
    Ok(PathBuf::from(p))
}
