//! What `rampart ctl` prints: pure `format_*` functions over the report
//! types of [`crate::control::model`], so the tables are tested without a
//! socket. Output is in the manner of `ipvsadm -Ln`: a header row, columns
//! two spaces apart, no trailing blanks.
//!
//! Counters are printed as exact integers (no human units), rates with one
//! decimal; numbers are right-aligned, text left-aligned.

use serde_json::Value;

use super::args::{BackendCmd, CtlCmd, VipCmd};
use crate::control::model::{
    ConnsReport, ReloadReport, StatsReport, StatusReport, VipEntry, WorkerReport,
};

/// What a mutation did, in words.
pub(super) fn describe_change(cmd: &CtlCmd) -> String {
    match cmd {
        CtlCmd::Reload => "reloaded".into(),
        CtlCmd::Vip {
            cmd: VipCmd::Add(a),
        } => format!("added vip {} ({})", a.name, a.address),
        CtlCmd::Vip {
            cmd: VipCmd::Del { name },
        } => format!("removed vip {name}"),
        CtlCmd::Vip {
            cmd: VipCmd::Drain { name },
        } => format!("drained vip {name}"),
        CtlCmd::Vip {
            cmd: VipCmd::Undrain { name },
        } => format!("undrained vip {name}"),
        CtlCmd::Backend { cmd } => match cmd {
            BackendCmd::Add { vip, backend, .. } => format!("added backend {backend} to {vip}"),
            BackendCmd::Del { vip, backend } => format!("removed backend {backend} from {vip}"),
            BackendCmd::Weight {
                vip,
                backend,
                weight,
            } => format!("set weight of {backend} on {vip} to {weight}"),
            BackendCmd::Drain { backend } => format!("draining backend {backend}"),
            BackendCmd::Up { backend } => format!("forced backend {backend} up"),
            BackendCmd::Down { backend } => format!("forced backend {backend} down"),
            BackendCmd::Clear { backend } => {
                format!("cleared the override of backend {backend}")
            }
        },
        other => format!("{other:?}"),
    }
}

/// One-line confirmation of a change: `reloaded: generation 4, added web2,
/// removed -, changed -`.
pub fn format_change(action: &str, result: &Value) -> String {
    if result.is_null() {
        return format!("{action}\n");
    }
    match serde_json::from_value::<ReloadReport>(result.clone()) {
        Ok(r) => format!(
            "{action}: generation {}, added {}, removed {}, changed {}\n",
            r.generation,
            name_list(&r.vips_added),
            name_list(&r.vips_removed),
            name_list(&r.vips_changed),
        ),
        Err(_) => format!("{action}: {result}\n"),
    }
}

fn name_list(names: &[String]) -> String {
    if names.is_empty() {
        "-".into()
    } else {
        names.join(",")
    }
}

/// `status`: one "key  value" line each.
pub fn format_status(s: &StatusReport) -> String {
    let mut pairs = vec![
        ("version", s.version.clone()),
        ("uptime", format_uptime(s.uptime_secs)),
        ("config", s.config.clone()),
        ("generation", s.generation.to_string()),
        (
            "reloads",
            format!("{} ({} failed)", s.reloads, s.reload_failures),
        ),
    ];
    if let Some(e) = &s.last_reload_error {
        pairs.push(("last reload error", e.clone()));
    }
    pairs.extend([
        ("workers", s.workers.to_string()),
        ("vips", s.vips.to_string()),
        (
            "backends up",
            format!("{} of {}", s.backends_up, s.backends_total),
        ),
        ("active conns", s.active_conns.to_string()),
        ("rx packets", s.rx_packets.to_string()),
        ("tx packets", s.tx_packets.to_string()),
        ("dropped", s.dropped.to_string()),
    ]);
    if let Some(e) = &s.bgp_error {
        pairs.push(("bgp error", e.clone()));
    }
    let mut out = key_values(&pairs, "", Align::Left);
    if !s.announcements.is_empty() {
        let mut table = Table::new(&[
            ("VIP", Align::Left),
            ("ADDRESS", Align::Left),
            ("BGP", Align::Left),
            ("WHY", Align::Left),
        ]);
        for a in &s.announcements {
            table.row(vec![
                a.vip.clone(),
                a.address.clone(),
                if a.announced {
                    "announced"
                } else {
                    "withdrawn"
                }
                .to_string(),
                a.reason.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    out
}

/// `vip list`: a row per VIP, its backends indented under it.
pub fn format_vips(vips: &[VipEntry]) -> String {
    if vips.is_empty() {
        return "no VIPs\n".into();
    }
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("ADDRESS", Align::Left),
        ("PROTO", Align::Left),
        ("MODE", Align::Left),
        ("SCHED", Align::Left),
        ("SYNPROXY", Align::Left),
        ("STATE", Align::Left),
    ]);
    for v in vips {
        table.row(vec![
            v.name.clone(),
            v.address.clone(),
            v.protocol.clone(),
            v.mode.clone(),
            v.scheduler.clone(),
            yes_no(v.synproxy).into(),
            if v.retired { "retired" } else { "active" }.into(),
        ]);
    }
    let backends = vips.iter().flat_map(|v| &v.backends);
    let addr_w = backends
        .clone()
        .map(|b| width(&b.address))
        .max()
        .unwrap_or(0);
    let weight_w = backends
        .map(|b| width(&b.weight.to_string()))
        .max()
        .unwrap_or(0);

    let mut lines = table.lines().into_iter();
    let mut out = String::new();
    push_line(&mut out, lines.next().unwrap_or_default());
    for (v, line) in vips.iter().zip(lines) {
        push_line(&mut out, line);
        if v.backends.is_empty() {
            push_line(&mut out, "  -> (no backends)".into());
        }
        for b in &v.backends {
            push_line(
                &mut out,
                format!(
                    "  -> {:<addr_w$}  weight {:>weight_w$}  state {}",
                    b.address, b.weight, b.state
                ),
            );
        }
    }
    out
}

/// `conns`: a row per connection, then how many of how many.
pub fn format_conns(c: &ConnsReport) -> String {
    let mut out = String::new();
    if !c.conns.is_empty() {
        let mut table = Table::new(&[
            ("VIP", Align::Left),
            ("PROTO", Align::Left),
            ("CLIENT", Align::Left),
            ("BACKEND", Align::Left),
            ("LOCAL", Align::Left),
            ("STATE", Align::Left),
            ("EXPIRES", Align::Right),
            ("WORKER", Align::Right),
        ]);
        for e in &c.conns {
            table.row(vec![
                e.vip.clone(),
                e.protocol.clone(),
                e.client.clone(),
                e.backend.clone(),
                e.local.clone().unwrap_or_else(|| "-".into()),
                e.state.clone(),
                e.expires_in.to_string(),
                e.worker.to_string(),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push_str(&format!("{} of {} connections\n", c.conns.len(), c.total));
    out
}

/// `stats`: totals, then per worker, per VIP, per backend, and the drop
/// reasons that counted anything.
pub fn format_stats(s: &StatsReport) -> String {
    let dropped = |w: &WorkerReport| w.drops.values().sum::<u64>();
    let sum = |f: &dyn Fn(&WorkerReport) -> u64| s.workers.iter().map(f).sum::<u64>();
    let mut out = format!(
        "uptime {}, generation {}, reloads {} ({} failed)\n\n",
        format_uptime(s.uptime_secs),
        s.generation,
        s.reloads,
        s.reload_failures
    );
    out.push_str("totals\n");
    out.push_str(&key_values(
        &[
            ("rx packets", sum(&|w| w.rx_packets).to_string()),
            ("rx bytes", sum(&|w| w.rx_bytes).to_string()),
            ("tx packets", sum(&|w| w.tx_packets).to_string()),
            ("tx bytes", sum(&|w| w.tx_bytes).to_string()),
            ("dropped", sum(&dropped).to_string()),
            ("active conns", sum(&|w| w.active_conns).to_string()),
            (
                "new conns/s",
                rate(s.workers.iter().map(|w| w.new_conns_per_sec).sum()),
            ),
        ],
        "  ",
        Align::Right,
    ));

    if !s.workers.is_empty() {
        let mut t = Table::new(&[
            ("WORKER", Align::Right),
            ("RX_PKTS", Align::Right),
            ("TX_PKTS", Align::Right),
            ("RX_BYTES", Align::Right),
            ("TX_BYTES", Align::Right),
            ("DROPPED", Align::Right),
            ("ACTIVE", Align::Right),
            ("NEW/S", Align::Right),
        ]);
        for w in &s.workers {
            t.row(vec![
                w.worker.to_string(),
                w.rx_packets.to_string(),
                w.tx_packets.to_string(),
                w.rx_bytes.to_string(),
                w.tx_bytes.to_string(),
                dropped(w).to_string(),
                w.active_conns.to_string(),
                rate(w.new_conns_per_sec),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }

    if !s.vips.is_empty() {
        let mut t = Table::new(&[
            ("NAME", Align::Left),
            ("PKTS_IN", Align::Right),
            ("PKTS_OUT", Align::Right),
            ("BYTES_IN", Align::Right),
            ("BYTES_OUT", Align::Right),
            ("CONNS", Align::Right),
            ("ACTIVE", Align::Right),
            ("NEW/S", Align::Right),
            ("UP/TOTAL", Align::Right),
        ]);
        for v in &s.vips {
            let name = if v.retired {
                format!("{} (retired)", v.name)
            } else {
                v.name.clone()
            };
            t.row(vec![
                name,
                v.packets_in.to_string(),
                v.packets_out.to_string(),
                v.bytes_in.to_string(),
                v.bytes_out.to_string(),
                v.conns_total.to_string(),
                v.conns_active.to_string(),
                rate(v.new_conns_per_sec),
                format!("{}/{}", v.backends_up, v.backends_total),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }

    if !s.backends.is_empty() {
        let mut t = Table::new(&[
            ("ADDRESS", Align::Left),
            ("STATE", Align::Left),
            ("HEALTH", Align::Left),
            ("ADMIN", Align::Left),
            ("PKTS_IN", Align::Right),
            ("PKTS_OUT", Align::Right),
            ("CONNS", Align::Right),
            ("ACTIVE", Align::Right),
            ("NEW/S", Align::Right),
        ]);
        for b in &s.backends {
            t.row(vec![
                b.address.clone(),
                b.state.clone(),
                b.health.clone(),
                b.admin.clone().unwrap_or_else(|| "-".into()),
                b.packets_in.to_string(),
                b.packets_out.to_string(),
                b.conns_total.to_string(),
                b.conns_active.to_string(),
                rate(b.new_conns_per_sec),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }

    let mut drops = std::collections::BTreeMap::<&str, u64>::new();
    for w in &s.workers {
        for (reason, n) in &w.drops {
            *drops.entry(reason).or_default() += n;
        }
    }
    let mut drops: Vec<(&str, u64)> = drops.into_iter().filter(|&(_, n)| n > 0).collect();
    out.push('\n');
    if drops.is_empty() {
        out.push_str("no drops\n");
    } else {
        // Largest first; ties by name (the sort is stable over BTreeMap order).
        drops.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        let mut t = Table::new(&[("DROP_REASON", Align::Left), ("PACKETS", Align::Right)]);
        for (reason, n) in drops {
            t.row(vec![reason.into(), n.to_string()]);
        }
        out.push_str(&t.render());
    }
    out
}

/// "3d 04:05:06", or "04:05:06" under a day.
pub fn format_uptime(secs: f64) -> String {
    // `as` saturates: negative or NaN is 0.
    let total = secs as u64;
    let (d, h, m, s) = (
        total / 86400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// "YYYY-MM-DD HH:MM:SS UTC" for seconds since the Unix epoch.
pub fn utc_timestamp(unix_secs: u64) -> String {
    let (year, month, day) = civil_date(unix_secs);
    let rem = unix_secs % 86400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The (year, month, day) of seconds since the Unix epoch (proleptic
/// Gregorian calendar, H. Hinnant's `civil_from_days`).
pub fn civil_date(unix_secs: u64) -> (i64, i64, i64) {
    let days = (unix_secs / 86400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn rate(r: f64) -> String {
    format!("{r:.1}")
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Display width of a cell (no wide characters expected in names and
/// addresses).
fn width(s: &str) -> usize {
    s.chars().count()
}

fn push_line(out: &mut String, line: String) {
    out.push_str(&line);
    out.push('\n');
}

/// "key  value" lines, keys padded to the widest.
fn key_values(pairs: &[(&str, String)], indent: &str, values: Align) -> String {
    let kw = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let vw = pairs.iter().map(|(_, v)| width(v)).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let line = match values {
            Align::Left => format!("{indent}{k:<kw$}  {v}"),
            Align::Right => format!("{indent}{k:<kw$}  {v:>vw$}"),
        };
        push_line(&mut out, line.trim_end().to_string());
    }
    out
}

/// A header row and rows, columns two spaces apart: a comfy-table without
/// borders, two blanks right of every column but the last, trailing blanks
/// trimmed.
struct Table(comfy_table::Table);

impl Table {
    fn new(columns: &[(&'static str, Align)]) -> Table {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::NOTHING)
            .set_header(columns.iter().map(|(h, _)| *h));
        let last = columns.len().saturating_sub(1);
        for (i, (column, (_, align))) in table.column_iter_mut().zip(columns).enumerate() {
            column.set_padding((0, if i == last { 0 } else { 2 }));
            column.set_cell_alignment(match align {
                Align::Left => comfy_table::CellAlignment::Left,
                Align::Right => comfy_table::CellAlignment::Right,
            });
        }
        Table(table)
    }

    fn row(&mut self, cells: Vec<String>) {
        self.0.add_row(cells);
    }

    /// The header line, then one line per row; no trailing blanks.
    fn lines(&self) -> Vec<String> {
        self.0.lines().map(|l| l.trim_end().to_string()).collect()
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for line in self.lines() {
            push_line(&mut out, line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::fixtures::small_stats;
    use super::*;
    use crate::control::model::{ConnEntryReport, VipBackend};

    #[test]
    fn status_lines() {
        let s = StatusReport {
            version: "0.1.0".into(),
            uptime_secs: 93784.9,
            config: "/etc/rampart/rampart.toml".into(),
            generation: 4,
            reloads: 3,
            reload_failures: 1,
            last_reload_error: Some("vip web: no backend".into()),
            workers: 2,
            vips: 3,
            backends_up: 5,
            backends_total: 6,
            active_conns: 1234,
            rx_packets: 1000,
            tx_packets: 990,
            dropped: 10,
            announcements: Vec::new(),
            bgp_error: None,
        };
        let want = "\
version            0.1.0
uptime             1d 02:03:04
config             /etc/rampart/rampart.toml
generation         4
reloads            3 (1 failed)
last reload error  vip web: no backend
workers            2
vips               3
backends up        5 of 6
active conns       1234
rx packets         1000
tx packets         990
dropped            10
";
        assert_eq!(format_status(&s), want);

        let mut s = s;
        s.bgp_error = Some("bird refused the update: 8002 syntax error".into());
        s.announcements = crate::control::model::sample_announcements();
        let out = format_status(&s);
        assert!(
            out.contains("bgp error          bird refused the update: 8002 syntax error\n"),
            "{out}"
        );
        assert!(
            out.ends_with(
                "\nVIP  ADDRESS        BGP        WHY\nweb  198.18.100.10  announced  serving\napi  198.18.100.20  withdrawn  drained\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn vip_list_table() {
        let vips = vec![
            VipEntry {
                name: "web".into(),
                address: "198.18.100.10:80".into(),
                protocol: "tcp".into(),
                mode: "nat".into(),
                scheduler: "maglev".into(),
                synproxy: true,
                retired: false,
                backends: vec![
                    VipBackend {
                        address: "198.18.1.11:8080".into(),
                        weight: 1,
                        state: "up".into(),
                    },
                    VipBackend {
                        address: "198.18.1.12:8080".into(),
                        weight: 10,
                        state: "drain".into(),
                    },
                ],
            },
            VipEntry {
                name: "dns6".into(),
                address: "[2001:2::53]:53".into(),
                protocol: "udp".into(),
                mode: "dr".into(),
                scheduler: "rr".into(),
                synproxy: false,
                retired: true,
                backends: vec![],
            },
        ];
        let want = "\
NAME  ADDRESS           PROTO  MODE  SCHED   SYNPROXY  STATE
web   198.18.100.10:80  tcp    nat   maglev  yes       active
  -> 198.18.1.11:8080  weight  1  state up
  -> 198.18.1.12:8080  weight 10  state drain
dns6  [2001:2::53]:53   udp    dr    rr      no        retired
  -> (no backends)
";
        assert_eq!(format_vips(&vips), want);
        assert_eq!(format_vips(&[]), "no VIPs\n");
    }

    #[test]
    fn conns_table() {
        let c = ConnsReport {
            total: 7,
            conns: vec![
                ConnEntryReport {
                    worker: 0,
                    vip: "web".into(),
                    protocol: "tcp".into(),
                    client: "198.19.0.1:40000".into(),
                    backend: "198.18.1.11:8080".into(),
                    local: None,
                    state: "established".into(),
                    expires_in: 899,
                },
                ConnEntryReport {
                    worker: 11,
                    vip: "api".into(),
                    protocol: "tcp".into(),
                    client: "198.19.0.2:5".into(),
                    backend: "198.18.1.21:8443".into(),
                    local: Some("198.18.200.1:1025".into()),
                    state: "syn_sent".into(),
                    expires_in: 5,
                },
            ],
        };
        let want = "\
VIP  PROTO  CLIENT            BACKEND           LOCAL              STATE        EXPIRES  WORKER
web  tcp    198.19.0.1:40000  198.18.1.11:8080  -                  established      899       0
api  tcp    198.19.0.2:5      198.18.1.21:8443  198.18.200.1:1025  syn_sent           5      11
2 of 7 connections
";
        assert_eq!(format_conns(&c), want);
        assert_eq!(
            format_conns(&ConnsReport::default()),
            "0 of 0 connections\n"
        );
    }

    #[test]
    fn stats_tables() {
        let want = "\
uptime 00:01:01, generation 2, reloads 1 (0 failed)

totals
  rx packets      105
  rx bytes      15500
  tx packets       95
  tx bytes       9500
  dropped          10
  active conns      3
  new conns/s     1.8

WORKER  RX_PKTS  TX_PKTS  RX_BYTES  TX_BYTES  DROPPED  ACTIVE  NEW/S
     0      100       90     15000      9000        9       3    1.8
     1        5        5       500       500        1       0    0.0

NAME  PKTS_IN  PKTS_OUT  BYTES_IN  BYTES_OUT  CONNS  ACTIVE  NEW/S  UP/TOTAL
web        95        90     14000       9000     12       3    1.8       1/2

ADDRESS           STATE  HEALTH     ADMIN  PKTS_IN  PKTS_OUT  CONNS  ACTIVE  NEW/S
198.18.1.11:8080  up     unchecked  -           50        45      6       2    0.5

DROP_REASON  PACKETS
no_vip             8
no_conn            2
";
        assert_eq!(format_stats(&small_stats()), want);

        let empty = format_stats(&StatsReport::default());
        assert!(empty.ends_with("\nno drops\n"), "{empty}");
        assert!(!empty.contains("WORKER"), "{empty}");
    }

    #[test]
    fn change_confirmations() {
        let r = json!({"generation": 4, "vips_added": ["web2"], "vips_removed": [],
                       "vips_changed": ["web", "dns"]});
        assert_eq!(
            format_change("reloaded", &r),
            "reloaded: generation 4, added web2, removed -, changed web,dns\n"
        );
        assert_eq!(
            format_change("removed vip web", &Value::Null),
            "removed vip web\n"
        );
        assert_eq!(
            format_change("draining backend 198.18.1.11:8080", &json!({"vips": 2})),
            "draining backend 198.18.1.11:8080: {\"vips\":2}\n"
        );
    }

    #[test]
    fn time_formats() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_timestamp(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(format_uptime(0.0), "00:00:00");
        assert_eq!(format_uptime(-5.0), "00:00:00");
        assert_eq!(format_uptime(86399.99), "23:59:59");
        assert_eq!(format_uptime(86400.0 * 12.0 + 3661.0), "12d 01:01:01");
    }
}
