//! The fuzz targets other than the datapath ([`crate::harness`]): what each
//! does with its bytes, the invariants it checks, and its seeds from the
//! repository's own data. The targets in `fuzz/fuzz_targets/` call these,
//! and `tests/fuzz_regressions.rs` replays every seed and every checked-in
//! crash through them, so a fix stays a fix.
//!
//! Every function here takes any bytes; it panics only when rampart breaks
//! an invariant (or panics itself).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart::config;
use rampart::control::api::{self, Handler};
use rampart::control::model::{ApiError, Request};
use rampart::control::prom;
use rampart::control::state::{Control, Shared};
use rampart::io::pcap::{PcapReader, MAX_PACKET_LEN};
use rampart::io::RxPacket;
use rampart::snapshot::Snapshot;

use crate::common::root;

/// The fuzz targets, by the name of their directory under `fuzz/corpus`
/// and `fuzz/regressions`.
pub const TARGETS: [&str; 5] = [
    "datapath",
    "config",
    "control_request",
    "http_request",
    "pcap",
];

/// Runs `data` through the target named `target` (one of [`TARGETS`]).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "datapath" => {
            crate::harness::run(data);
        }
        "config" => config(data),
        "control_request" => control_request(data),
        "http_request" => http_request(data),
        "pcap" => pcap(data),
        other => panic!("no fuzz target named {other}"),
    }
}

/// The seeds of the target named `target`.
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "datapath" => crate::fixtures::fuzz_seeds(),
        "config" => config_seeds(),
        "control_request" => control_seeds(),
        "http_request" => http_seeds(),
        "pcap" => pcap_seeds(),
        other => panic!("no fuzz target named {other}"),
    }
}

/// Writes every target's seeds into `dir/TARGET/`.
pub fn write_corpora(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for t in TARGETS {
        let d = dir.join(t);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for (name, data) in seeds(t) {
            let p = d.join(name);
            std::fs::write(&p, data).map_err(|e| format!("{}: {e}", p.display()))?;
            written.push(p);
        }
    }
    Ok(written)
}

// --- config ---------------------------------------------------------------

/// Maglev entries summed over VIPs above which a valid config is not also
/// built into a snapshot (a handful of maximal tables would make one input
/// take seconds; the table builder is the datapath target's business).
const SNAPSHOT_ENTRIES: u64 = 2_000_000;

/// Bytes as a config file, through what `rampart check-config` runs: parse
/// and validate, then the error's message (which quotes the file), or the
/// snapshot a valid config publishes.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text, "fuzz.toml") {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("fuzz.toml"),
                "a config error does not name the file: {msg}"
            );
        }
        Ok(cfg) => {
            let entries: u64 = cfg.vips.iter().map(|v| u64::from(v.table_size)).sum();
            if entries <= SNAPSHOT_ENTRIES {
                let snap = Snapshot::build(&cfg);
                assert_eq!(snap.vips.len(), cfg.vips.len());
            }
        }
    }
}

/// `configs/*.toml` and every TOML example in the docs.
pub fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let dir = root().join("configs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for p in files {
        if p.extension().is_some_and(|e| e == "toml") {
            if let (Some(stem), Ok(data)) = (p.file_stem(), std::fs::read(&p)) {
                seeds.push((format!("configs-{}", stem.to_string_lossy()), data));
            }
        }
    }
    for doc in ["README.md", "docs/configuration.md", "docs/operations.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap_or_default();
        let stem = doc.trim_end_matches(".md").replace('/', "-");
        for (i, block) in fenced(&text, "```toml").into_iter().enumerate() {
            seeds.push((format!("{stem}-{i:02}"), block.into_bytes()));
        }
    }
    seeds
}

/// The bodies of the fenced blocks opened by `fence` (e.g. "```toml").
fn fenced(text: &str, fence: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        match &mut cur {
            None if line.trim_start() == fence => cur = Some(String::new()),
            None => {}
            Some(_) if line.trim_start() == "```" => out.extend(cur.take()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
        }
    }
    out
}

// --- control_request ------------------------------------------------------

/// Request lines per input at most.
const MAX_LINES: usize = 16;

/// Maglev table size of every VIP of the fuzzed control state: each edit
/// rebuilds every table, and at the default size that is most of an
/// input's time.
const CONTROL_TABLE_SIZE: u32 = 251;

/// `configs/rampart.toml` with every VIP's table at [`CONTROL_TABLE_SIZE`],
/// written once per process to a file in the temporary directory so
/// `reload` reads it, and parsed once (most of an input's time otherwise).
fn control_config() -> &'static (PathBuf, String, config::Config) {
    static CFG: std::sync::OnceLock<(PathBuf, String, config::Config)> = std::sync::OnceLock::new();
    CFG.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("configs/rampart.toml"))
            .expect("configs/rampart.toml");
        let mut small = String::new();
        for line in text.lines() {
            if line.trim_start().starts_with("table_size") {
                continue;
            }
            small.push_str(line);
            small.push('\n');
            if line.trim() == "[[vip]]" {
                small.push_str(&format!("table_size = {CONTROL_TABLE_SIZE}\n"));
            }
        }
        // One file for every process (the same text each time), replaced
        // whole by a rename so a reload never reads half of it.
        let path = std::env::temp_dir().join("rampart-fuzz-control.toml");
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, &small).expect("write the fuzzed control config");
        std::fs::rename(&tmp, &path).expect("move the fuzzed control config into place");
        let cfg = config::parse(&small, "rampart.toml").expect("the reference config is valid");
        (path, small, cfg)
    })
}

/// The control state of `configs/rampart.toml` (small tables, see
/// [`control_config`]), reloadable from its file, with one worker that
/// never answers (its end of the link is dropped, so `conns` returns at
/// once with nothing instead of waiting).
pub fn control_state() -> Shared {
    let (path, text, cfg) = control_config();
    let (control, links) = Control::new(cfg.clone(), text, Some(path.clone()), 1, [7u8; 16], 0)
        .expect("control over rampart.toml");
    drop(links);
    Shared(Arc::new(std::sync::Mutex::new(control)))
}

/// A fresh control state per input, then each line (split at `\n`, at most
/// [`MAX_LINES`]) through the function the control socket answers a line
/// with. Each answer is one JSON line, `ok` true or an error with a code;
/// the handler never panics (the server would answer `failed` with an
/// internal error: that counts as a crash here).
pub fn control_request(data: &[u8]) {
    let shared = control_state();
    let handler: &dyn Handler = &shared;
    for line in data.split(|b| *b == b'\n').take(MAX_LINES) {
        let Some(answer) = api::answer(handler, line, &"fuzz") else {
            assert!(line.iter().all(u8::is_ascii_whitespace));
            continue;
        };
        let (last, body) = answer.split_last().expect("an answer is not empty");
        assert_eq!(*last, b'\n', "an answer is one line");
        assert!(!body.contains(&b'\n'), "an answer is one line");
        let v: serde_json::Value = serde_json::from_slice(body).expect("an answer is JSON");
        match v.get("ok").and_then(serde_json::Value::as_bool) {
            Some(true) => assert!(v.get("result").is_some(), "ok without a result: {v}"),
            Some(false) => {
                let err: ApiError =
                    serde_json::from_value(v["error"].clone()).unwrap_or_else(|e| {
                        panic!("an error answer without code and message ({e}): {v}")
                    });
                assert!(
                    !err.message.starts_with("internal error"),
                    "the handler panicked: {}",
                    err.message
                );
            }
            None => panic!("an answer without `ok`: {v}"),
        }
    }
    // The state still answers after whatever came before.
    let status = shared.handle(Request::Status);
    assert!(status.is_ok(), "status fails after the input: {status:?}");
}

/// One line per command, the examples of docs/operations.md, and a few
/// malformed lines; each a seed, and all of them together as one.
pub fn control_seeds() -> Vec<(String, Vec<u8>)> {
    let mut lines: Vec<String> = [
        r#"{"cmd":"status"}"#,
        r#"{"cmd":"vip_list"}"#,
        r#"{"cmd":"stats"}"#,
        r#"{"cmd":"reload"}"#,
        r#"{"cmd":"conns"}"#,
        r#"{"cmd":"conns","vip":"web","limit":5}"#,
        r#"{"cmd":"vip_del","name":"web6"}"#,
        r#"{"cmd":"backend_add","vip":"web","backend":"198.18.1.14:8080","weight":3}"#,
        r#"{"cmd":"backend_add","vip":"web6","backend":"2001:2:0:1::14"}"#,
        r#"{"cmd":"backend_del","vip":"web","backend":"198.18.1.11:8080"}"#,
        r#"{"cmd":"backend_weight","vip":"web","backend":"198.18.1.12:8080","weight":0}"#,
        r#"{"cmd":"backend_state","backend":"198.18.1.13:8080","state":"down"}"#,
        r#"{"cmd":"backend_state","backend":"[2001:2:0:1::11]:8080","state":"clear"}"#,
        r#"{"cmd":"vip_drain","name":"web","drain":true}"#,
        r#"{"cmd":"status","extra":1}"#,
        r#"{"cmd":"nope"}"#,
        r#"["status"]"#,
        "{\"cmd\":\"st\u{e9}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let ops = std::fs::read_to_string(root().join("docs/operations.md")).unwrap_or_default();
    for l in ops.lines() {
        let mut rest = l;
        while let Some(i) = rest.find("'{\"cmd\"") {
            let tail = &rest[i + 1..];
            let Some(j) = tail.find("}'") else { break };
            lines.push(tail[..=j].to_string());
            rest = &tail[j + 1..];
        }
    }
    let mut seeds: Vec<(String, Vec<u8>)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("line-{i:02}"), l.clone().into_bytes()))
        .collect();
    seeds.push(("all".into(), lines.join("\n").into_bytes()));
    seeds
}

// --- http_request ---------------------------------------------------------

/// A request head as the metrics server reads it: the first byte is the
/// size of each read (1 to 256 bytes), the rest what the client sends; the
/// parser sees the bytes read so far after every read, up to the server's
/// head limit, and a complete head is routed (with a fixed metrics body).
pub fn http_request(data: &[u8]) {
    let Some((first, sent)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(*first) + 1;
    let source: prom::MetricsSource = Arc::new(|| "rampart_up 1\n".to_string());
    let mut len = 0;
    while len < sent.len().min(prom::MAX_HEAD_BYTES) {
        len = (len + chunk).min(sent.len()).min(prom::MAX_HEAD_BYTES);
        match prom::parse_head(&sent[..len]) {
            Ok(None) => continue,
            Ok(Some(head)) => {
                assert!(
                    head.path.starts_with('/'),
                    "a path not from the root: {head:?}"
                );
                assert!(
                    !head.path.contains(['?', '#']),
                    "query or fragment left in the path: {head:?}"
                );
                let reply = prom::route(&head, &source);
                assert!(reply.starts_with(b"HTTP/1.1 "), "not an HTTP response");
                return;
            }
            Err(_) => return,
        }
    }
}

/// The requests Prometheus, curl and a browser send, and a few wrong ones.
pub fn http_seeds() -> Vec<(String, Vec<u8>)> {
    let heads: [(&str, &[u8]); 9] = [
        (
            "prometheus",
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9185\r\nUser-Agent: Prometheus/2.53.0\r\n\
              Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\
              Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
        ),
        (
            "curl-head",
            b"HEAD / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
        ),
        (
            "absolute-form",
            b"GET http://127.0.0.1:9185/metrics?x=1#y HTTP/1.1\r\nHost: a\r\n\r\n",
        ),
        ("http10-bare-lf", b"GET /?a=b HTTP/1.0\n\n"),
        (
            "post",
            b"POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi",
        ),
        ("not-found", b"GET /nope HTTP/1.1\r\n\r\n"),
        ("partial", b"GET /metrics HTTP/1.1\r\nHost: x\r\n"),
        ("tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
        ("obs-text", b"GET /m\xe9trics HTTP/1.1\r\nX: \xff\r\n\r\n"),
    ];
    let mut seeds = Vec::new();
    for (name, head) in heads {
        // Whole in one read, and a byte at a time.
        for (tag, chunk) in [("whole", 255u8), ("bytes", 0u8)] {
            let mut d = vec![chunk];
            d.extend_from_slice(head);
            seeds.push((format!("{name}-{tag}"), d));
        }
    }
    seeds
}

// --- pcap -----------------------------------------------------------------

/// Packets read per input at most.
const MAX_PACKETS: u64 = 100_000;

/// Bytes as a capture file, read to the end or to the first error; every
/// packet within the length limit, the count as delivered, nothing after
/// an error.
pub fn pcap(data: &[u8]) {
    let Ok(mut r) = PcapReader::from_reader(Cursor::new(data), "fuzz.pcap") else {
        return;
    };
    let mut pkt = RxPacket::default();
    let mut n = 0u64;
    loop {
        match r.next_into(&mut pkt) {
            Ok(true) => {
                n += 1;
                assert!(
                    pkt.data.len() <= MAX_PACKET_LEN as usize,
                    "a packet over the limit"
                );
                assert!(r.offset() <= data.len() as u64, "read past the end");
                if n >= MAX_PACKETS {
                    break;
                }
            }
            Ok(false) => break,
            Err(e) => {
                let _ = e.to_string();
                assert!(
                    matches!(r.next_into(&mut pkt), Ok(false)),
                    "a packet after an error"
                );
                break;
            }
        }
    }
    assert_eq!(r.packets(), n);
    assert!(r.snapped() <= n);
}

/// The small replay fixtures as they are (classic pcap, little-endian,
/// microseconds), with nanosecond timestamps, big-endian, and as pcapng.
pub fn pcap_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = root().join("pcap-fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut seeds = Vec::new();
    for p in files {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(stem) = name.strip_suffix(".in.pcap") else {
            continue;
        };
        let Ok(data) = std::fs::read(&p) else {
            continue;
        };
        if data.len() > 2048 {
            continue;
        }
        let frames = crate::common::frames(&p);
        seeds.push((format!("{stem}-pcap-us-le"), data));
        seeds.push((format!("{stem}-pcap-ns-be"), classic_be_ns(&frames)));
        seeds.push((format!("{stem}-pcapng"), pcapng(&frames)));
    }
    seeds
}

/// A classic big-endian pcap with nanosecond timestamps.
fn classic_be_ns(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_3c4du32.to_be_bytes());
    out.extend_from_slice(&2u16.to_be_bytes());
    out.extend_from_slice(&4u16.to_be_bytes());
    for v in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        let ts = crate::fixtures::timestamp(i);
        for v in [
            (ts / 1_000_000_000) as u32,
            (ts % 1_000_000_000) as u32,
            f.len() as u32,
            f.len() as u32,
        ] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}

/// A pcapng file: a section, one Ethernet interface with nanosecond
/// resolution, a name resolution block to skip, an Enhanced Packet Block per
/// frame and a Simple Packet Block for the last one.
fn pcapng(frames: &[Vec<u8>]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend_from_slice(&len.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65535u32.to_le_bytes());
    // if_tsresol = 9 (nanoseconds), then the end of options.
    idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
    block(&mut out, 1, &idb);
    // A Name Resolution Block with only its end record.
    block(&mut out, 4, &[0, 0, 0, 0]);
    for (i, f) in frames.iter().enumerate() {
        let ts = crate::fixtures::timestamp(i);
        let mut epb = Vec::new();
        for v in [
            0u32,
            (ts >> 32) as u32,
            ts as u32,
            f.len() as u32,
            f.len() as u32,
        ] {
            epb.extend_from_slice(&v.to_le_bytes());
        }
        epb.extend_from_slice(f);
        block(&mut out, 6, &epb);
    }
    if let Some(f) = frames.last() {
        let mut spb = (f.len() as u32).to_le_bytes().to_vec();
        spb.extend_from_slice(f);
        block(&mut out, 3, &spb);
    }
    out
}
