//! `[conntrack]`: the table size and the per-state timeouts.

use super::*;
use crate::config::raw::RawConntrack;

pub(super) fn conntrack(cx: &Ctx, c: &RawConntrack) -> Res<Conntrack> {
    let mut out = Conntrack::default();
    if let Some(cap) = &c.capacity {
        out.capacity = cx.int(
            cap,
            "conntrack.capacity",
            1,
            MAX_CONNTRACK_CAPACITY,
            " entries",
        )?;
    }
    let t = &mut out.timeouts;
    let mut fields: [(&Option<S<i64>>, &mut u32, &str); 8] = [
        (
            &c.tcp_syn_sent,
            &mut t.tcp_syn_sent,
            "conntrack.tcp_syn_sent",
        ),
        (
            &c.tcp_syn_recv,
            &mut t.tcp_syn_recv,
            "conntrack.tcp_syn_recv",
        ),
        (
            &c.tcp_established,
            &mut t.tcp_established,
            "conntrack.tcp_established",
        ),
        (
            &c.tcp_fin_wait,
            &mut t.tcp_fin_wait,
            "conntrack.tcp_fin_wait",
        ),
        (
            &c.tcp_close_wait,
            &mut t.tcp_close_wait,
            "conntrack.tcp_close_wait",
        ),
        (
            &c.tcp_time_wait,
            &mut t.tcp_time_wait,
            "conntrack.tcp_time_wait",
        ),
        (&c.tcp_close, &mut t.tcp_close, "conntrack.tcp_close"),
        (&c.udp, &mut t.udp, "conntrack.udp"),
    ];
    // Report the earliest bad timeout in the file, not in field order.
    fields.sort_by_key(|(v, _, _)| v.as_ref().map_or(usize::MAX, |v| v.span().start));
    for (value, slot, key) in fields {
        if let Some(v) = value {
            *slot = cx.int(v, key, 1, MAX_TIMEOUT_SECS, " seconds")?;
        }
    }
    Ok(out)
}
