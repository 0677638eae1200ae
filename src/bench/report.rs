//! What `rampart bench` reports: per-workload samples over the rounds,
//! their medians and spreads, the table it prints, the JSON document
//! (`--json`) and the chart (`--svg`).

use std::fmt::Write as _;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One workload's per-round rates, in Mpps; round `i` of every column ran
/// back to back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    pub io: Vec<f64>,
    pub macswap: Vec<f64>,
    pub rampart: Vec<f64>,
    /// Two-worker workload only: rampart with one worker over the same
    /// queues, in the same round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_worker: Vec<f64>,
}

/// One workload as measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub workload: String,
    /// Frames in the capture (all queues).
    pub frames: u64,
    /// Frames of one connection's whole life, for workloads where every
    /// connection opens and closes in the capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_per_connection: Option<u32>,
    /// rampart's worker threads in this workload's runs.
    pub workers: u16,
    pub samples: Samples,
}

/// The median of a set of samples with its spread.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no samples. The median of an even count is the mean of
    /// the middle two.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut s: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Some(Summary {
            median: round6(median),
            min: round6(s[0]),
            max: round6(s[n - 1]),
        })
    }

    /// Per-round ratios `a[i] / b[i]` (rounds where `b` is 0 left out).
    pub fn of_ratios(a: &[f64], b: &[f64]) -> Option<Summary> {
        let r: Vec<f64> = a
            .iter()
            .zip(b)
            .filter(|(_, d)| **d > 0.0)
            .map(|(n, d)| n / d)
            .collect();
        Summary::of(&r)
    }

    fn scaled(self, k: f64) -> Summary {
        Summary {
            median: round6(self.median * k),
            min: round6(self.min * k),
            max: round6(self.max * k),
        }
    }
}

/// `v` to six decimals: more than the measurements hold, and short enough
/// that the JSON reads back the same number.
fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// A row with its medians: what the table, the JSON and the chart show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowReport {
    #[serde(flatten)]
    pub row: Row,
    pub io: Option<Summary>,
    pub macswap: Option<Summary>,
    pub rampart: Option<Summary>,
    /// rampart's ns per packet at its median rate.
    pub rampart_ns_per_packet: Option<f64>,
    /// The median of the per-round ratios rampart / macswap.
    pub ratio_to_macswap: Option<Summary>,
    /// Connections per second (rampart's rate / frames per connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_per_second: Option<Summary>,
    /// Two workers: the median of the per-round ratios to one worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_worker: Option<Summary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_to_one_worker: Option<Summary>,
}

impl RowReport {
    pub fn new(row: Row) -> RowReport {
        let s = &row.samples;
        let rampart = Summary::of(&s.rampart);
        RowReport {
            io: Summary::of(&s.io),
            macswap: Summary::of(&s.macswap),
            rampart,
            rampart_ns_per_packet: rampart.filter(|r| r.median > 0.0).map(|r| 1e3 / r.median),
            ratio_to_macswap: Summary::of_ratios(&s.rampart, &s.macswap),
            connections_per_second: row
                .frames_per_connection
                .and_then(|f| Some(rampart?.scaled(1e6 / f64::from(f)))),
            one_worker: Summary::of(&s.one_worker),
            ratio_to_one_worker: Summary::of_ratios(&s.rampart, &s.one_worker),
            row,
        }
    }
}

/// The options of a run, as the JSON records them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub seconds: u32,
    pub rounds: u32,
    pub core: usize,
    pub control: usize,
    pub flows: u32,
    pub new_conns: u32,
    pub syns: u32,
    pub live_conns: u32,
    pub lifecycle_conns: u32,
    pub no_huge: bool,
}

/// The whole `--json` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date: String,
    /// `pkg-config --modversion libdpdk`, when it answers.
    pub dpdk_version: Option<String>,
    pub rampart_version: String,
    pub options: RunInfo,
    pub rows: Vec<RowReport>,
}

impl Report {
    pub fn new(
        options: RunInfo,
        rows: Vec<Row>,
        date: String,
        dpdk_version: Option<String>,
    ) -> Report {
        Report {
            date,
            dpdk_version,
            rampart_version: env!("CARGO_PKG_VERSION").to_string(),
            options,
            rows: rows.into_iter().map(RowReport::new).collect(),
        }
    }

    pub fn to_json(&self) -> String {
        match serde_json::to_string_pretty(self) {
            Ok(s) => s + "\n",
            // Plain numbers, strings and options: nothing here fails to
            // serialise.
            Err(e) => unreachable!("bench report: {e}"),
        }
    }

    /// The table `rampart bench` prints (Markdown).
    pub fn table(&self) -> String {
        let o = &self.options;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "worker on CPU {} (two workers: CPUs {} and {}, the control thread on the first allowed CPU), {} s per run, {} round(s) alternating testpmd io, macswap, rampart; net_pcap infinite_rx (tx dropped), hugepages {}{}",
            o.core,
            o.core,
            o.control,
            o.seconds,
            o.rounds,
            if o.no_huge { "no" } else { "yes" },
            self.dpdk_version.as_deref().map(|v| format!(", DPDK {v}")).unwrap_or_default()
        );
        out.push_str("medians over the rounds, (min-max) when more than one round\n");
        out.push_str(
            "| workload | frames in capture | testpmd io Mpps | testpmd macswap Mpps | rampart Mpps | rampart ns/packet | ratio to macswap | |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---|\n");
        for r in &self.rows {
            let ns = r
                .rampart_ns_per_packet
                .map_or("-".into(), |v| format!("{v:.1}"));
            let mut note = String::new();
            if let Some(c) = r.connections_per_second {
                let _ = write!(note, "{} M connections/s", fmt(Some(c.scaled(1e-6)), 2));
            }
            if let (Some(x), Some(one)) = (r.ratio_to_one_worker, r.one_worker) {
                let _ = write!(
                    note,
                    "{} x one worker ({} Mpps)",
                    fmt(Some(x), 2),
                    fmt(Some(one), 2)
                );
            }
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {ns} | {} | {note} |",
                r.row.workload,
                r.row.frames,
                fmt(r.io, 2),
                fmt(r.macswap, 2),
                fmt(r.rampart, 2),
                fmt(r.ratio_to_macswap, 2),
            );
        }
        out
    }

    /// The chart: per workload, testpmd io, testpmd macswap and rampart
    /// Mpps side by side (medians), whiskers from the lowest to the highest
    /// round.
    pub fn svg(&self) -> Result<String, String> {
        let mut text = String::new();
        draw(self, &mut text).map_err(|e| format!("bench chart: {e}"))?;
        Ok(text)
    }
}

/// `median (min-max)`, or `-`.
fn fmt(s: Option<Summary>, digits: usize) -> String {
    match s {
        None => "-".into(),
        Some(s) if s.min == s.max => format!("{:.*}", digits, s.median),
        Some(s) => format!(
            "{:.*} ({:.*}-{:.*})",
            digits, s.median, digits, s.min, digits, s.max
        ),
    }
}

/// Picks one column's summary out of a row.
type Column = fn(&RowReport) -> Option<Summary>;

const IO_COLOR: RGBColor = RGBColor(150, 150, 150);
const MACSWAP_COLOR: RGBColor = RGBColor(70, 110, 180);
const RAMPART_COLOR: RGBColor = RGBColor(225, 120, 30);

fn draw(report: &Report, out: &mut String) -> Result<(), Box<dyn std::error::Error>> {
    let n = report.rows.len().max(1);
    let width = (140 * n as u32 + 140).max(640);
    let root = SVGBackend::with_string(out, (width, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = report
        .rows
        .iter()
        .flat_map(|r| [r.io, r.macswap, r.rampart])
        .flatten()
        .map(|s| s.max)
        .fold(1.0f64, f64::max);
    let title = format!(
        "rampart bench, {} ({} s per run, {} rounds)",
        report.date, report.options.seconds, report.options.rounds
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..n as f64, 0.0..top * 1.3)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .x_labels(0)
        .y_desc("Mpps (median over the rounds)")
        .draw()?;
    let series: [(&'static str, RGBColor, Column); 3] = [
        ("testpmd io", IO_COLOR, |r| r.io),
        ("testpmd macswap", MACSWAP_COLOR, |r| r.macswap),
        ("rampart", RAMPART_COLOR, |r| r.rampart),
    ];
    let bar = 0.26;
    for (k, (label, color, get)) in series.into_iter().enumerate() {
        let x0 = |i: usize| i as f64 + 0.11 + bar * k as f64;
        let bars = report.rows.iter().enumerate().filter_map(|(i, r)| {
            let s = get(r)?;
            Some(Rectangle::new(
                [(x0(i), 0.0), (x0(i) + bar * 0.9, s.median)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
        let whiskers = report.rows.iter().enumerate().filter_map(|(i, r)| {
            let s = get(r).filter(|s| s.max > s.min)?;
            Some(ErrorBar::new_vertical(
                x0(i) + bar * 0.45,
                s.min,
                s.median,
                s.max,
                BLACK.stroke_width(1),
                8,
            ))
        });
        chart.draw_series(whiskers)?;
    }
    // Ratio to macswap above each group, workload names below the axis.
    for (i, r) in report.rows.iter().enumerate() {
        let x = i as f64 + 0.5;
        if let (Some(ratio), Some(top_bar)) = (
            r.ratio_to_macswap,
            [r.io, r.macswap, r.rampart]
                .iter()
                .flatten()
                .map(|s| s.max)
                .reduce(f64::max),
        ) {
            let (px, py) = chart.backend_coord(&(x, top_bar));
            root.draw(&Text::new(
                format!("{:.2} of macswap", ratio.median),
                (px - 42, py - 18),
                ("sans-serif", 13).into_font().color(&BLACK),
            ))?;
        }
        let (px, py) = chart.backend_coord(&(x, 0.0));
        for (l, line) in wrap(&r.row.workload, 16).iter().enumerate() {
            let w = (line.chars().count() as i32) * 3;
            root.draw(&Text::new(
                line.clone(),
                (px - w, py + 8 + 15 * l as i32),
                ("sans-serif", 12).into_font().color(&BLACK),
            ))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// `text` in lines of at most about `width` characters, at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(l) if l.len() + 1 + word.len() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Now, UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Unix time `secs` as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(secs: u64) -> String {
    let (year, month, day) = crate::control::ctl::civil_date(secs);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        let row = |name: &str, io: &[f64], mac: &[f64], r: &[f64]| Row {
            workload: name.into(),
            frames: 65536,
            frames_per_connection: None,
            workers: 1,
            samples: Samples {
                io: io.to_vec(),
                macswap: mac.to_vec(),
                rampart: r.to_vec(),
                one_worker: Vec::new(),
            },
        };
        let mut lifecycle = row(
            "connection lifecycle",
            &[30.0, 32.0],
            &[29.0, 31.0],
            &[8.0, 8.0],
        );
        lifecycle.frames_per_connection = Some(8);
        let mut two = row("two workers", &[40.0, 44.0], &[38.0, 40.0], &[20.0, 22.0]);
        two.workers = 2;
        two.samples.one_worker = vec![11.0, 11.0];
        vec![
            row(
                "established NAT",
                &[30.0, 34.0, 32.0],
                &[30.0, 20.0, 36.0],
                &[10.0, 8.0, 12.0],
            ),
            lifecycle,
            two,
        ]
    }

    fn report() -> Report {
        let info = RunInfo {
            seconds: 3,
            rounds: 3,
            core: 1,
            control: 0,
            flows: 4096,
            new_conns: 32768,
            syns: 65536,
            live_conns: 1 << 20,
            lifecycle_conns: 16384,
            no_huge: false,
        };
        Report::new(info, rows(), utc(1_764_948_600), Some("22.11.11".into()))
    }

    #[test]
    fn medians_spreads_and_ratios() {
        assert_eq!(Summary::of(&[]), None);
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Summary::of(&[1.0, 4.0]).unwrap().median, 2.5);
        let r = report();
        let est = &r.rows[0];
        assert_eq!(est.rampart.unwrap().median, 10.0);
        // Ratios per round: 1/3, 0.4, 1/3: the median is a round's, not
        // the ratio of the medians (10 / 30).
        let ratio = est.ratio_to_macswap.unwrap();
        assert!((ratio.median - 1.0 / 3.0).abs() < 1e-6, "{ratio:?}");
        assert!((ratio.max - 0.4).abs() < 1e-6);
        assert!((est.rampart_ns_per_packet.unwrap() - 100.0).abs() < 1e-9);
        let cps = r.rows[1].connections_per_second.unwrap();
        assert_eq!(cps.median, 1e6);
        let x = r.rows[2].ratio_to_one_worker.unwrap();
        assert!((x.median - 21.0 / 11.0).abs() < 1e-6, "{x:?}");
    }

    #[test]
    fn json_round_trips() {
        let r = report();
        let text = r.to_json();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["date"], "2025-12-05T15:30:00Z");
        assert_eq!(v["dpdk_version"], "22.11.11");
        assert_eq!(v["options"]["rounds"], 3);
        assert_eq!(v["rows"][0]["workload"], "established NAT");
        assert_eq!(v["rows"][0]["samples"]["rampart"][2], 12.0);
        assert_eq!(v["rows"][0]["rampart"]["median"], 10.0);
        assert!(v["rows"][0].get("connections_per_second").is_none());
        assert_eq!(v["rows"][1]["connections_per_second"]["median"], 1e6);
        assert_eq!(v["rows"][2]["workers"], 2);
    }

    #[test]
    fn table_shows_medians_and_spreads() {
        let t = report().table();
        assert!(
            t.contains("| established NAT | 65536 | 32.00 (30.00-34.00) | 30.00 (20.00-36.00) | 10.00 (8.00-12.00) | 100.0 | 0.33 (0.33-0.40) |"),
            "{t}"
        );
        assert!(t.contains("| 1.00 M connections/s |"), "{t}");
        assert!(
            t.contains("1.91 (1.82-2.00) x one worker (11.00 Mpps)"),
            "{t}"
        );
    }

    #[test]
    fn svg_draws_every_workload() {
        let svg = report().svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for name in [
            "established",
            "lifecycle",
            "workers",
            "testpmd macswap",
            "rampart",
        ] {
            assert!(svg.contains(name), "{name} in the chart");
        }
        // Three bars per workload, and a legend swatch per series.
        assert!(svg.matches("<rect").count() >= 9 + 3, "{svg}");
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
