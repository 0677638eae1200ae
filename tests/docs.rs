//! The documentation checked against the code, so neither can drift:
//!
//! * `docs/configuration.md` lists, for every config table, exactly the keys
//!   the loader accepts. The loader is asked, not a copy of its schema: a
//!   config with an unknown key in the table is refused with "unknown key
//!   `...`, expected one of a, b, c", and that list is the truth.
//! * Every drop reason and every event has its name in docs/.
//! * Every metric the Grafana dashboard (`dist/grafana/rampart.json`)
//!   queries is written by the Prometheus exposition, with the labels and
//!   label values the queries select on.
//! * Every relative link in the README and docs/ reaches a file, and every
//!   `#anchor` a heading of that file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rampart::config;
use rampart::control::prom;
use rampart::control::state::Control;
use rampart::stats::{DropReason, Event};
use serde_json::Value;

use rampart_testkit::common::root;
use rampart_testkit::toml::{self, Vip};

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every markdown file of docs/, as (path relative to the root, text).
fn docs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = root().join("docs");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("docs/ entry").path();
        if path.extension().is_some_and(|x| x == "md") {
            let rel = format!("docs/{}", path.file_name().expect("name").to_string_lossy());
            let text = read(&rel);
            out.push((rel, text));
        }
    }
    out.sort();
    out
}

/// Lines outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// The names written in backticks in `s`.
fn backticked(s: &str) -> Vec<&str> {
    s.split('`').skip(1).step_by(2).collect()
}

// ---------------------------------------------------------------------------
// Configuration reference

/// A config that sets every table once, each header alone on its line so a
/// key can be put right after it.
fn every_table() -> String {
    let node = toml::node(&["198.18.0.1"], &["198.18.1.11"]);
    let web = Vip::new("web", "198.18.100.10", 80, "tcp", "nat")
        .health("kind = \"tcp\"")
        .backends(&["198.18.1.11"], 8080);
    format!(
        "{node}
[conntrack]
capacity = 1024

[synproxy]
mss = 1460

[icmp]
echo_rate = 10

[fragments]
timeout_ms = 500

[control]
socket = \"\"
{web}
[vip.backend.health]
fall = 5

[[vip.source]]
prefixes = [\"198.19.0.0/16\"]
backends = [\"198.18.1.11:8080\"]

[dpdk]
workers = 1

[[port]]
name = \"net_null0\"
"
    )
}

/// The config tables: (header in the file, heading in configuration.md
/// whose key table lists its keys).
const TABLES: &[(&str, &str)] = &[
    ("[node]", "## `[node]`"),
    ("[conntrack]", "## `[conntrack]`"),
    ("[synproxy]", "## `[synproxy]`"),
    ("[icmp]", "## `[icmp]`"),
    ("[fragments]", "## `[fragments]`"),
    ("[control]", "## `[control]`"),
    ("[[neighbor]]", "## `[[neighbor]]`"),
    ("[[vip]]", "## `[[vip]]`"),
    ("[vip.health]", "## `[vip.health]`"),
    ("[[vip.backend]]", "## `[[vip.backend]]`"),
    // Documented as "the keys of [vip.health]": the loader must agree.
    ("[vip.backend.health]", "## `[vip.health]`"),
    ("[[vip.source]]", "## `[[vip.source]]`"),
    ("[dpdk]", "## `[dpdk]`"),
    ("[[port]]", "## `[[port]]`"),
];

const UNKNOWN: &str = "zz_no_such_key";

/// The keys the loader accepts in the table under `header`, from its own
/// refusal of a key it does not know.
fn accepted_keys(header: &str) -> BTreeSet<String> {
    let every_table = every_table();
    let at = every_table
        .find(&format!("\n{header}\n"))
        .unwrap_or_else(|| panic!("{header} is not in every_table()"))
        + header.len()
        + 2;
    let mut text = every_table;
    text.insert_str(at, &format!("{UNKNOWN} = 1\n"));
    let err = match config::parse(&text, "docs-test.toml") {
        Ok(_) => panic!("{header}: the loader took an unknown key"),
        Err(e) => e,
    };
    let message = err.message();
    let list = message
        .strip_prefix(&format!("unknown key `{UNKNOWN}`, expected one of "))
        .unwrap_or_else(|| panic!("{header}: not an unknown-key error: {err}"));
    list.split(", ").map(str::to_string).collect()
}

/// The keys the first key table after `heading` lists: every backticked
/// name in the first column of its rows.
fn documented_keys(doc: &str, heading: &str) -> BTreeSet<String> {
    let lines = prose_lines(doc);
    let start = lines
        .iter()
        .position(|(_, l)| *l == heading)
        .unwrap_or_else(|| panic!("docs/configuration.md has no heading {heading:?}"));
    let mut keys = BTreeSet::new();
    let mut in_table = false;
    for (_, line) in &lines[start + 1..] {
        if line.starts_with("## ") {
            break;
        }
        if line.starts_with("| key |") {
            in_table = true;
            continue;
        }
        if in_table {
            let Some(row) = line.strip_prefix('|') else {
                break;
            };
            let first = row.split('|').next().unwrap_or("");
            if first.trim_start().starts_with("---") {
                continue;
            }
            keys.extend(backticked(first).into_iter().map(str::to_string));
        }
    }
    assert!(!keys.is_empty(), "{heading}: no key table found");
    keys
}

#[test]
fn configuration_reference_lists_exactly_the_keys_the_loader_accepts() {
    let doc = read("docs/configuration.md");
    assert!(
        config::parse(&every_table(), "docs-test.toml").is_ok(),
        "the test's config is valid: {:?}",
        config::parse(&every_table(), "docs-test.toml").err()
    );
    let mut wrong = Vec::new();
    for &(header, heading) in TABLES {
        let code = accepted_keys(header);
        let documented = documented_keys(&doc, heading);
        let missing: Vec<_> = code.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&code).collect();
        if !missing.is_empty() || !stale.is_empty() {
            wrong.push(format!(
                "{header}: accepted but not documented {missing:?}; documented but not accepted {stale:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn every_drop_reason_and_event_is_documented() {
    let all: String = docs().into_iter().map(|(_, t)| t).collect();
    let mut missing: Vec<String> = DropReason::ALL
        .iter()
        .map(|r| r.name())
        .filter(|n| !all.contains(&format!("`{n}`")))
        .map(|n| format!("drop reason {n}"))
        .collect();
    missing.extend(
        Event::ALL
            .iter()
            .map(|e| e.name())
            .filter(|n| !all.contains(&format!("`{n}`")))
            .map(|n| format!("event {n}")),
    );
    assert!(missing.is_empty(), "not in docs/: {missing:?}");
}

// ---------------------------------------------------------------------------
// Grafana dashboard against the exposition

/// What the exposition writes: every sample's metric name with the label
/// names and the values each label takes, and the families' names.
#[derive(Default)]
struct Exposition {
    samples: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    families: BTreeSet<String>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or("");
                e.families.insert(name.to_string());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..end];
            let labels = e.samples.entry(name.to_string()).or_default();
            if line[end..].starts_with('{') {
                for (k, v) in parse_labels(&line[end + 1..]) {
                    labels.entry(k).or_default().insert(v);
                }
            }
        }
        e
    }

    /// The labels of `metric`'s samples, or `None` when the exposition has
    /// no such metric. A name the dashboard writes without `_total`,
    /// `_bucket`, `_sum` or `_count` (or with one the family name lacks)
    /// is looked up both ways.
    fn labels(&self, metric: &str) -> Option<&BTreeMap<String, BTreeSet<String>>> {
        if let Some(l) = self.samples.get(metric) {
            return Some(l);
        }
        for suffix in ["_total", "_bucket", "_sum", "_count"] {
            if let Some(l) = self.samples.get(&format!("{metric}{suffix}")) {
                return Some(l);
            }
            if let Some(base) = metric.strip_suffix(suffix) {
                if self.families.contains(base) {
                    if let Some(l) = self.samples.get(base) {
                        return Some(l);
                    }
                }
            }
        }
        None
    }
}

/// `k="v",k2="v2"}` -> pairs, undoing the format's escapes.
fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let key = key.trim_start_matches(',').trim().to_string();
        if key.is_empty() || key.starts_with('}') {
            break;
        }
        if chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((key, value));
        if chars.peek() == Some(&'}') {
            break;
        }
    }
    out
}

/// The exposition of a live control state over the reference config: two
/// workers, every VIP and backend of `configs/rampart.toml`.
fn exposition() -> Exposition {
    let text = read("configs/rampart.toml");
    let cfg = config::parse(&text, "configs/rampart.toml").expect("reference config");
    let (control, _links) = Control::new(cfg, &text, None, 2, [7u8; 16], 0).expect("control");
    Exposition::parse(&prom::render(&control.stats()))
}

/// Labels Prometheus adds to every series it scrapes.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

/// Every PromQL string of the dashboard: targets' `expr`, variables'
/// `query` and `definition`.
fn queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// One metric reference in a query: its name and the matchers in braces
/// right after it (`label`, `op`, `value`).
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

fn selectors(q: &str) -> Vec<Selector> {
    let mut out = Vec::new();
    let mut rest = q;
    while let Some(at) = rest.find("rampart_") {
        let before_ok = rest[..at].chars().last().is_none_or(|c| !is_ident(c));
        let tail = &rest[at..];
        let len = tail.find(|c: char| !is_ident(c)).unwrap_or(tail.len());
        let metric = &tail[..len];
        rest = &tail[len..];
        if !before_ok {
            continue;
        }
        let mut matchers = Vec::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let close = inner.find('}').expect("closed selector");
            for m in inner[..close].split(',').filter(|m| !m.trim().is_empty()) {
                let op_at = m.find(['=', '!']).expect("a matcher operator");
                let label = m[..op_at].trim().to_string();
                let op: String = m[op_at..].chars().take_while(|&c| c != '"').collect();
                let value = m[op_at + op.len()..].trim().trim_matches('"').to_string();
                matchers.push((label, op.trim().to_string(), value));
            }
        }
        out.push(Selector {
            metric: metric.to_string(),
            matchers,
        });
    }
    out
}

/// Label names in `by (...)` / `without (...)` clauses and in
/// `label_values(..., label)`.
fn grouping_labels(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    for kw in ["by (", "without ("] {
        for part in q.split(kw).skip(1) {
            let list = part.split(')').next().unwrap_or("");
            out.extend(list.split(',').map(|l| l.trim().to_string()));
        }
    }
    if let Some(args) = q.strip_prefix("label_values(") {
        if let Some(label) = args.trim_end_matches(')').rsplit(',').next() {
            out.push(label.trim().to_string());
        }
    }
    out.retain(|l| !l.is_empty());
    out
}

#[test]
fn grafana_dashboard_queries_only_what_the_exposition_writes() {
    let expo = exposition();
    let dashboard: Value =
        serde_json::from_str(&read("dist/grafana/rampart.json")).expect("dashboard JSON");
    let mut qs = Vec::new();
    queries(&dashboard, &mut qs);
    assert!(qs.len() > 20, "the dashboard has its queries: {qs:?}");

    let mut wrong = Vec::new();
    let mut used = BTreeSet::new();
    for q in &qs {
        let sels = selectors(q);
        let mut in_query: BTreeSet<&str> = TARGET_LABELS.into_iter().collect();
        for s in &sels {
            let Some(labels) = expo.labels(&s.metric) else {
                wrong.push(format!("{}: not in the exposition ({q})", s.metric));
                continue;
            };
            used.insert(s.metric.clone());
            in_query.extend(labels.keys().map(String::as_str));
            for (label, op, value) in &s.matchers {
                if TARGET_LABELS.contains(&label.as_str()) {
                    continue;
                }
                let Some(values) = labels.get(label) else {
                    wrong.push(format!("{}: no label `{label}` ({q})", s.metric));
                    continue;
                };
                // Literal values (not a variable, not a pattern) must be
                // ones the exposition writes.
                let literal = value.chars().all(|c| is_ident(c) || c == '|');
                if literal && (op == "=" || op == "=~") {
                    for v in value.split('|') {
                        if !values.contains(v) {
                            wrong.push(format!(
                                "{}{{{label}=\"{v}\"}}: never written ({q})",
                                s.metric
                            ));
                        }
                    }
                }
            }
        }
        for label in grouping_labels(q) {
            if !in_query.contains(label.as_str()) {
                wrong.push(format!(
                    "grouping by `{label}`, which no metric of the query has ({q})"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));

    // The brief of the dashboard: rx/tx/drops, VIPs, backends, workers.
    for metric in [
        "rampart_rx_packets_total",
        "rampart_tx_packets_total",
        "rampart_drops_total",
        "rampart_vip_packets_total",
        "rampart_vip_bytes_total",
        "rampart_vip_connections_total",
        "rampart_backend_packets_total",
        "rampart_backend_bytes_total",
        "rampart_backend_connections_total",
        "rampart_backend_state",
        "rampart_handovers_out_total",
    ] {
        assert!(used.contains(metric), "the dashboard shows {metric}");
    }
}

#[test]
fn the_test_reads_selectors_and_labels_as_promql_writes_them() {
    let s = selectors(
        r#"sum by (vip, direction) (rate(rampart_vip_packets_total{instance=~"$instance",vip=~"web|api"}[5m])) / rampart_x"#,
    );
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].metric, "rampart_vip_packets_total");
    assert_eq!(
        s[0].matchers,
        vec![
            ("instance".into(), "=~".into(), "$instance".into()),
            ("vip".into(), "=~".into(), "web|api".into())
        ]
    );
    assert_eq!(s[1].metric, "rampart_x");
    assert_eq!(
        grouping_labels("sum by (vip, direction) (x)"),
        ["vip", "direction"]
    );
    assert_eq!(
        grouping_labels(r#"label_values(rampart_backend_up{instance=~"$instance"}, backend)"#),
        ["backend"]
    );
    assert_eq!(
        parse_labels(r#"a="x\"y",b="z"} 1"#),
        [("a".into(), "x\"y".into()), ("b".into(), "z".into())]
    );
}

// ---------------------------------------------------------------------------
// Links

/// GitHub's anchor for a heading: lower case, punctuation other than `-`
/// and `_` dropped, spaces to `-`; a repeated anchor gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// Link targets of a markdown text, with their line numbers: `[text](target)`
/// outside code blocks and code spans.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        if line.starts_with("    ") {
            continue; // an indented code block
        }
        let prose: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join("");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let tail = &rest[at + 2..];
            let end = tail.find(')').unwrap_or(tail.len());
            out.push((n, tail[..end].to_string()));
            rest = &tail[end..];
        }
    }
    out
}

#[test]
fn relative_links_and_anchors_resolve() {
    let mut files = vec![("README.md".to_string(), read("README.md"))];
    files.extend(docs());
    let mut broken = Vec::new();
    let mut checked = 0;
    for (file, text) in &files {
        let dir = Path::new(file).parent().unwrap_or(Path::new(""));
        for (line, target) in links(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                PathBuf::from(file)
            } else {
                dir.join(path)
            };
            let full = root().join(&resolved);
            if !full.exists() {
                broken.push(format!(
                    "{file}:{line}: {target}: no file {}",
                    resolved.display()
                ));
                continue;
            }
            if let Some(anchor) = anchor {
                let target_text = std::fs::read_to_string(&full).unwrap_or_default();
                if !anchors(&target_text).contains(anchor) {
                    broken.push(format!("{file}:{line}: {target}: no heading for #{anchor}"));
                }
            }
        }
    }
    assert!(checked > 30, "the links were found ({checked})");
    assert!(broken.is_empty(), "\n{}", broken.join("\n"));
}

#[test]
fn anchors_follow_github() {
    let a =
        anchors("# A b\n## `[[vip.backend]]`\n### rampart run on DPDK\n## A b\n```\n# not\n```\n");
    let want: BTreeSet<String> = ["a-b", "vipbackend", "rampart-run-on-dpdk", "a-b-1"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(a, want);
}
