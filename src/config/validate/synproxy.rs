//! `[synproxy]`: the SYN cookie secret, the per-source limiter and the
//! resends towards the backend.

use super::*;
use crate::config::raw::RawSynproxy;

/// Largest per-worker hold pool: 2^20 buffers of 2 KiB (2 GiB).
const MAX_HOLD_SLOTS: u32 = 1 << 20;
/// Largest per-source limiter: 2^24 buckets (256 MiB).
const MAX_SOURCE_SLOTS: u32 = 1 << 24;

pub(super) fn synproxy(cx: &Ctx, r: &RawSynproxy) -> Res<Synproxy> {
    let mut o = Synproxy::default();
    let int = |v: &Option<S<i64>>, key: &str, lo: u32, hi: u32, unit: &str, slot: &mut u32| {
        if let Some(v) = v {
            *slot = cx.int(v, &format!("synproxy.{key}"), lo, hi, unit)?;
        }
        Ok::<(), ConfigError>(())
    };
    let mut n = u32::from(o.mss);
    int(&r.mss, "mss", 536, 9000, " bytes", &mut n)?;
    o.mss = n as u16;
    let mut n = u32::from(o.wscale);
    int(&r.wscale, "wscale", 0, 14, " (RFC 7323)", &mut n)?;
    o.wscale = n as u8;
    let mut n = u32::from(o.window);
    int(&r.window, "window", 1, 65_535, " bytes", &mut n)?;
    o.window = n as u16;
    let mut n = u32::from(o.ttl);
    int(&r.ttl, "ttl", 1, 255, "", &mut n)?;
    o.ttl = n as u8;
    int(
        &r.secret_rotate,
        "secret_rotate",
        1,
        86_400,
        " seconds",
        &mut o.secret_rotate,
    )?;
    let mut n = u32::from(o.syn_retries);
    int(&r.syn_retries, "syn_retries", 0, 10, "", &mut n)?;
    o.syn_retries = n as u8;
    int(
        &r.syn_retry_interval,
        "syn_retry_interval",
        1,
        60,
        " seconds",
        &mut o.syn_retry_interval,
    )?;
    let mut n = u32::from(o.hold_packets);
    int(&r.hold_packets, "hold_packets", 0, 64, " packets", &mut n)?;
    o.hold_packets = n as u8;
    int(
        &r.hold_slots,
        "hold_slots",
        1,
        MAX_HOLD_SLOTS,
        " buffers",
        &mut o.hold_slots,
    )?;
    let rate_max = 1_000_000_000;
    int(
        &r.syn_rate_per_source,
        "syn_rate_per_source",
        0,
        rate_max,
        " per second",
        &mut o.syn_rate_per_source,
    )?;
    int(
        &r.syn_burst_per_source,
        "syn_burst_per_source",
        1,
        rate_max,
        "",
        &mut o.syn_burst_per_source,
    )?;
    int(
        &r.source_slots,
        "source_slots",
        1,
        MAX_SOURCE_SLOTS,
        "",
        &mut o.source_slots,
    )?;
    if let Some(v) = &r.source_slots {
        if !o.source_slots.is_power_of_two() {
            return cx.err(
                v.span(),
                "synproxy.source_slots",
                format!(
                    "{} is not a power of two (e.g. {})",
                    o.source_slots,
                    o.source_slots.next_power_of_two()
                ),
            );
        }
    }
    int(
        &r.conn_rate,
        "conn_rate",
        0,
        rate_max,
        " per second",
        &mut o.conn_rate,
    )?;
    int(
        &r.conn_burst,
        "conn_burst",
        1,
        rate_max,
        "",
        &mut o.conn_burst,
    )?;
    int(
        &r.ack_rate,
        "ack_rate",
        0,
        rate_max,
        " per second",
        &mut o.ack_rate,
    )?;
    int(&r.ack_burst, "ack_burst", 1, rate_max, "", &mut o.ack_burst)?;
    // A burst left out allows one second's worth.
    for (burst, rate) in [
        (&mut o.syn_burst_per_source, o.syn_rate_per_source),
        (&mut o.conn_burst, o.conn_rate),
        (&mut o.ack_burst, o.ack_rate),
    ] {
        if *burst == 0 {
            *burst = rate;
        }
    }
    for (v, slot) in [
        (&r.sack, &mut o.sack),
        (&r.timestamps, &mut o.timestamps),
        (&r.rst_invalid_ack, &mut o.rst_invalid_ack),
    ] {
        if let Some(v) = v {
            *slot = *v.get_ref();
        }
    }
    if let Some(v) = &r.secret {
        o.secret = Some(parse_secret(v.get_ref()).ok_or(()).or_else(|()| {
            cx.err(
                v.span(),
                "synproxy.secret",
                "expected 32 hex digits (a 128-bit key); leave it out to draw the key from the OS random source"
                    .to_string(),
            )
        })?);
    }
    Ok(o)
}

fn parse_secret(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}
