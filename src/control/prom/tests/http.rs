//! The listener: limits, timeouts and answers over real sockets.

use super::*;
use crate::control::prom::http::{parse_head, Head, HeadError};
use crate::control::server::{ListenerStats, Refusal};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_reply(mut c: TcpStream) -> Reply {
    let mut raw = Vec::new();
    // A reset after the whole response is fine; what was read counts.
    let _ = c.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts.next().unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap();
            (k.to_ascii_lowercase(), v.to_string())
        })
        .collect();
    Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

fn request(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut c = connect(addr);
    // The server may answer (and stop reading) before all of an
    // oversized request is written.
    let _ = c.write_all(raw);
    let _ = c.shutdown(Shutdown::Write);
    read_reply(c)
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n\r\n");
    request(addr, raw.as_bytes())
}

fn server() -> MetricsServer {
    let source: MetricsSource = Arc::new(|| render(&report()));
    MetricsServer::start("127.0.0.1:0".parse().unwrap(), source, ListenerStats::new()).unwrap()
}

fn assert_metrics(addr: SocketAddr) {
    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], CONTENT_TYPE);
    assert_eq!(r.headers["connection"], "close");
    assert_eq!(r.headers["content-length"], r.body.len().to_string());
    let text = String::from_utf8(r.body).unwrap();
    check_strict(&text);
    let s = scrape(&text);
    let web_in = [("vip", "web"), ("direction", "in")];
    assert_eq!(val(&s, "rampart_vip_packets_total", &web_in), 500.0);
}

#[test]
fn serves_metrics_and_refuses_the_rest() {
    let srv = server();
    let addr = srv.local_addr();
    assert_ne!(addr.port(), 0);
    assert_metrics(addr);

    let r = request(
        addr,
        format!("HEAD /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.headers["content-length"],
        render(&report()).len().to_string()
    );

    // Query strings, HTTP/1.0, bare LF line ends and absolute form.
    assert_eq!(get(addr, "/metrics?x=1").status, 200);
    assert_eq!(request(addr, b"GET /metrics HTTP/1.0\n\n").status, 200);
    let abs = format!("GET http://{addr}/metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    assert_eq!(request(addr, abs.as_bytes()).status, 200);

    let r = get(addr, "/");
    assert_eq!(r.status, 200);
    assert!(String::from_utf8(r.body).unwrap().contains("/metrics"));

    assert_eq!(get(addr, "/nope").status, 404);
    assert_eq!(get(addr, "/metrics/extra").status, 404);

    let post = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    let r = request(addr, post);
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, HEAD");
    assert_eq!(request(addr, b"DELETE / HTTP/1.1\r\n\r\n").status, 405);

    for garbage in [
        &b"hello there\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/2.0\r\n\r\n",
        b"GET  /metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
        b"GET /m\xc3\xa9trics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nX: \xff\r\n\r\n",
        b"\r\n\r\n",
    ] {
        let r = request(addr, garbage);
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(garbage));
    }
    // A client that sends half a request line and closes.
    assert_eq!(request(addr, b"GET /met").status, 400);

    let mut big = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nX-Big: ").into_bytes();
    big.extend(std::iter::repeat_n(b'a', 3 * MAX_HEAD_BYTES));
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(request(addr, &big).status, 431);
    assert_eq!(srv.refusals(Refusal::MetricsTooLarge), 1);

    // A client that connects and leaves at once.
    drop(connect(addr));

    assert_metrics(addr);
}

#[test]
fn connections_beyond_the_limit_get_503() {
    let srv = server();
    let addr = srv.local_addr();
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| connect(addr)).collect();
    // Accepted in order: the idle ones take every slot first.
    let extra = connect(addr);
    let r = read_reply(extra);
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(srv.refused(), 1);
    assert_eq!(srv.refusals(Refusal::MetricsBusy), 1);
    drop(idle);
    // Their threads see the close and free the slots.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(addr, "/metrics");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(Instant::now() < deadline, "slots never freed");
        thread::sleep(Duration::from_millis(20));
    }
    assert_metrics(addr);
}

#[test]
fn a_slow_client_does_not_block_a_scrape() {
    let srv = server();
    let addr = srv.local_addr();
    let mut slow = connect(addr);
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
    assert_metrics(addr);
    slow.write_all(b"st: x\r\n\r\n").unwrap();
    assert_eq!(read_reply(slow).status, 200);
}

#[test]
fn a_silent_client_gets_408() {
    let srv = server();
    let addr = srv.local_addr();
    let mut c = connect(addr);
    c.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    let t = Instant::now();
    assert_eq!(read_reply(c).status, 408);
    let waited = t.elapsed();
    assert!(
        waited >= READ_TIMEOUT - Duration::from_millis(100),
        "{waited:?}"
    );
    assert!(waited < READ_TIMEOUT + Duration::from_secs(3), "{waited:?}");
    assert_eq!(srv.refusals(Refusal::MetricsTimeout), 1);
}

#[test]
fn only_addresses_beyond_loopback_are_warned_about() {
    let default: SocketAddr = crate::config::DEFAULT_PROMETHEUS.parse().unwrap();
    assert!(default.ip().is_loopback(), "{default}");
    for quiet in [
        "127.0.0.1:9185",
        "127.3.0.1:9185",
        "[::1]:9185",
        "[::ffff:127.0.0.1]:9185",
    ] {
        assert_eq!(exposure_warning(quiet.parse().unwrap()), None, "{quiet}");
    }
    for open in [
        "0.0.0.0:9185",
        "198.18.0.1:9185",
        "[::]:9185",
        "[2001:2::1]:9185",
    ] {
        let w = exposure_warning(open.parse().unwrap()).unwrap_or_default();
        assert!(
            w.starts_with(&format!(
                "prometheus listens on {open}, which is not a loopback address"
            )),
            "{open}: {w}"
        );
        assert!(w.contains("[control].prometheus"), "{w}");
    }
}

#[test]
fn a_panicking_source_gets_500() {
    let source: MetricsSource = Arc::new(|| panic!("no stats"));
    let srv =
        MetricsServer::start("127.0.0.1:0".parse().unwrap(), source, ListenerStats::new()).unwrap();
    assert_eq!(get(srv.local_addr(), "/metrics").status, 500);
    assert_eq!(get(srv.local_addr(), "/").status, 200);
}

#[test]
fn bind_failure_names_the_address() {
    let srv = server();
    let addr = srv.local_addr();
    let source: MetricsSource = Arc::new(String::new);
    let err = MetricsServer::start(addr, source, ListenerStats::new()).unwrap_err();
    assert!(matches!(err, MetricsError::Listen { .. }), "{err:?}");
    let err = err.to_string();
    assert!(
        err.starts_with(&format!("prometheus listen {addr}: ")),
        "{err}"
    );
    assert!(err.contains("in use"), "{err}");
    assert!(!err.contains("os error"), "{err}");
    assert!(err.ends_with("or \"\" to turn it off)"), "{err}");
}

#[test]
fn drop_stops_the_server() {
    let srv = server();
    let addr = srv.local_addr();
    assert_metrics(addr);
    let t = Instant::now();
    drop(srv);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn head_parsing() {
    let head = |method: &str, path: &str| {
        Ok(Some(Head {
            method: method.into(),
            path: path.into(),
        }))
    };
    assert_eq!(
        parse_head(b"GET /metrics HTTP/1.1\r\n\r\n"),
        head("GET", "/metrics")
    );
    assert_eq!(parse_head(b"HEAD /?a=b#c HTTP/1.0\n\n"), head("HEAD", "/"));
    let abs = b"GET https://h:9/metrics?x HTTP/1.1\r\n\r\n";
    assert_eq!(parse_head(abs), head("GET", "/metrics"));
    assert_eq!(
        parse_head(b"GET http://h HTTP/1.1\r\n\r\n"),
        head("GET", "/")
    );
    assert_eq!(parse_head(b"GET / HTTP/1.1\r\nA: b\r\n"), Ok(None));
    assert_eq!(parse_head(b"GET /met"), Ok(None));
    let e = Err(HeadError::Garbage);
    assert_eq!(parse_head(b"GET * HTTP/1.1\r\n\r\n"), e);
    assert_eq!(parse_head(b"GET h:80 HTTP/1.1\r\n\r\n"), e);
}

#[test]
fn too_many_header_fields_get_431() {
    let srv = server();
    let addr = srv.local_addr();
    let mut raw = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n");
    for i in 1..MAX_HEADERS {
        raw.push_str(&format!("X-{i}: y\r\n"));
    }
    assert_eq!(request(addr, format!("{raw}\r\n").as_bytes()).status, 200);
    raw.push_str("X-Last: y\r\n\r\n");
    assert_eq!(request(addr, raw.as_bytes()).status, 431);
}

#[test]
fn a_client_that_does_not_read_the_response_is_dropped_and_counted() {
    // A response far larger than what the socket buffers hold.
    let source: MetricsSource = Arc::new(|| "# x\n".repeat(16 << 20));
    let srv =
        MetricsServer::start("127.0.0.1:0".parse().unwrap(), source, ListenerStats::new()).unwrap();
    let mut c = connect(srv.local_addr());
    c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let t = Instant::now();
    let deadline = t + WRITE_TIMEOUT + Duration::from_secs(10);
    while srv.refusals(Refusal::MetricsWriteTimeout) == 0 {
        assert!(Instant::now() < deadline, "the write never timed out");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(t.elapsed() >= WRITE_TIMEOUT - Duration::from_millis(100));
    drop(c);
    assert_eq!(get(srv.local_addr(), "/").status, 200);
}
