use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};

use super::*;
use crate::config;
use crate::maglev::BackendKey;
use crate::snapshot::BackendState;

/// Records every update; refuses while `fail` is set.
#[derive(Clone, Default)]
struct Fake {
    updates: Arc<Mutex<Vec<BTreeSet<Addr>>>>,
    fail: Arc<Mutex<bool>>,
}

impl Daemon for Fake {
    fn apply(
        &mut self,
        addrs: &BTreeSet<Addr>,
        _: &Attributes,
        _: &Attributes,
    ) -> Result<(), BgpError> {
        if *self.fail.lock().unwrap() {
            return Err(BgpError::Refused {
                daemon: "fake",
                reply: "9001 no".into(),
            });
        }
        self.updates.lock().unwrap().push(addrs.clone());
        Ok(())
    }
}

impl Fake {
    fn last(&self) -> Option<Vec<String>> {
        self.updates
            .lock()
            .unwrap()
            .last()
            .map(|s| s.iter().map(|a| a.to_string()).collect())
    }
    fn count(&self) -> usize {
        self.updates.lock().unwrap().len()
    }
}

const CONFIG: &str = r#"
[node]
mac = "02:00:00:00:00:01"
addresses = ["198.18.0.1"]
gateway_mac = "02:00:00:00:00:fe"

[[vip]]
name = "web"
address = "198.18.100.10"
port = 80
protocol = "tcp"
mode = "nat"
[[vip.backend]]
address = "198.18.1.11"
port = 8080

[[vip]]
name = "web-tls"
address = "198.18.100.10"
port = 443
protocol = "tcp"
mode = "nat"
[[vip.backend]]
address = "198.18.1.12"
port = 8443

[[vip]]
name = "api6"
address = "2001:2:0:100::20"
port = 443
protocol = "tcp"
mode = "nat"
[[vip.backend]]
address = "2001:2::11"
port = 8443

[bgp]
med = 50
communities = ["65000:100"]
"#;

fn snap(down: &[&str]) -> Snapshot {
    let cfg = config::parse(CONFIG, "bgp.toml").expect("valid");
    let down: Vec<Addr> = down
        .iter()
        .map(|s| s.parse::<std::net::IpAddr>().unwrap().into())
        .collect();
    Snapshot::derive(
        &cfg,
        None,
        |k: &BackendKey| {
            if down.contains(&k.addr) {
                BackendState::Down
            } else {
                BackendState::Up
            }
        },
        0,
    )
}

fn announcer() -> (Announcer, Fake) {
    let cfg = config::parse(CONFIG, "bgp.toml").expect("valid");
    let fake = Fake::default();
    let a = Announcer::with_daemon(cfg.bgp.as_ref().expect("[bgp]"), Box::new(fake.clone()));
    (a, fake)
}

fn reason(a: &Announcer, vip: &str) -> (bool, &'static str) {
    let v = a.vips().iter().find(|v| v.vip == vip).expect("the VIP");
    (v.announced, v.reason)
}

#[test]
fn announces_while_serving_and_polling_withdraws_otherwise() {
    let (mut a, fake) = announcer();
    let s = snap(&[]);
    // At start: nothing (and the daemon is told so, clearing a past run's).
    a.tick(&s, 0);
    assert_eq!(fake.last(), Some(vec![]));
    assert_eq!(reason(&a, "web"), (false, "workers not polling"));
    a.set_workers_polling(true);
    a.tick(&s, 1);
    assert_eq!(
        fake.last(),
        Some(vec![
            "198.18.100.10".to_string(),
            "2001:2:0:100::20".to_string()
        ])
    );
    assert!(a.in_sync());
    // Nothing changed: the daemon is not told again.
    a.tick(&s, 2);
    assert_eq!(fake.count(), 2);

    // One of two VIPs on the address drained: the other keeps it announced.
    assert!(a.drain("web", true));
    a.tick(&s, 3);
    assert_eq!(fake.count(), 2);
    assert_eq!(
        reason(&a, "web"),
        (true, "another VIP on the address serves")
    );
    assert!(a.drain("web-tls", true));
    a.tick(&s, 4);
    assert_eq!(fake.last(), Some(vec!["2001:2:0:100::20".to_string()]));
    assert_eq!(reason(&a, "web-tls"), (false, "drained"));
    a.drain("web", false);
    a.drain("web-tls", false);

    // Every backend of the IPv6 VIP down: withdrawn.
    a.tick(&snap(&["2001:2::11"]), 5);
    assert_eq!(fake.last(), Some(vec!["198.18.100.10".to_string()]));
    assert_eq!(reason(&a, "api6"), (false, "no backend up"));

    // Workers stalled, then back.
    a.set_workers_polling(false);
    a.tick(&s, 6);
    assert_eq!(fake.last(), Some(vec![]));
    a.set_workers_polling(true);
    a.tick(&s, 7);
    assert_eq!(fake.last().map(|v| v.len()), Some(2));

    // SIGTERM: everything withdrawn, for good.
    a.stop();
    a.tick(&s, 8);
    assert_eq!(fake.last(), Some(vec![]));
    assert_eq!(reason(&a, "web"), (false, "stopping"));
}

#[test]
fn a_refused_update_is_tried_again() {
    let (mut a, fake) = announcer();
    a.set_workers_polling(true);
    *fake.fail.lock().unwrap() = true;
    let s = snap(&[]);
    a.tick(&s, 0);
    assert!(a
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("9001 no")));
    assert!(!a.in_sync());
    *fake.fail.lock().unwrap() = false;
    // Not before RETRY has passed...
    a.tick(&s, 1);
    assert_eq!(fake.count(), 0);
    // ... then again.
    a.tick(&s, RETRY.as_nanos() as u64 + 1);
    assert_eq!(fake.count(), 1);
    assert!(a.in_sync());
}

#[test]
fn bird_route_files() {
    let none = Attributes {
        next_hop: None,
        med: None,
        communities: vec![],
    };
    let a: Addr = "198.18.100.10".parse::<std::net::IpAddr>().unwrap().into();
    let b: Addr = "2001:2:0:100::20"
        .parse::<std::net::IpAddr>()
        .unwrap()
        .into();
    let set: BTreeSet<Addr> = [a, b].into_iter().collect();
    let v6 = Attributes {
        next_hop: Some("2001:2::2".parse::<std::net::IpAddr>().unwrap().into()),
        med: Some(50),
        communities: vec![(65000, 100), (65000, 7)],
    };
    let text = bird_routes(&set, &none, &v6);
    let want = "\
protocol static rampart4 {
  ipv4;
  route 198.18.100.10/32 blackhole;
}
protocol static rampart6 {
  ipv6;
  route 2001:2:0:100::20/128 blackhole { bgp_next_hop = 2001:2::2; bgp_med = 50; bgp_community.add((65000,100)); bgp_community.add((65000,7)); };
}
";
    assert!(text.starts_with('#') && text.ends_with(want), "{text}");
    let empty = bird_routes(&BTreeSet::new(), &none, &none);
    assert!(
        empty.ends_with(
            "protocol static rampart4 {\n  ipv4;\n}\nprotocol static rampart6 {\n  ipv6;\n}\n"
        ),
        "{empty}"
    );
}

/// BIRD itself parses what rampart writes.
#[test]
#[ignore = "needs BIRD 2 (apt-get install bird2); CI installs it and runs this"]
fn bird_parses_the_routes_file() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("vips.conf");
    let a: Addr = "198.18.100.10".parse::<std::net::IpAddr>().unwrap().into();
    let b: Addr = "2001:2:0:100::20"
        .parse::<std::net::IpAddr>()
        .unwrap()
        .into();
    let attrs = Attributes {
        next_hop: None,
        med: Some(7),
        communities: vec![(65000, 100)],
    };
    std::fs::write(
        &routes,
        bird_routes(&[a, b].into_iter().collect(), &attrs, &attrs),
    )
    .unwrap();
    let conf = dir.path().join("bird.conf");
    std::fs::write(
        &conf,
        format!(
            "router id 198.18.1.2;\nprotocol device {{}}\ninclude \"{}\";\n\
             protocol bgp uplink {{ local 198.18.1.2 as 65001; neighbor 198.18.1.1 as 65000;\n\
             ipv4 {{ import none; export where proto = \"rampart4\"; }}; }}\n",
            routes.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new("bird")
        .arg("-p")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A stand-in for BIRD's control socket: greets, reads one command, answers
/// with `reply` (lines as BIRD writes them).
fn fake_bird(reply: &'static str) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bird.ctl");
    let listener = UnixListener::bind(&path).unwrap();
    let h = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"0001 BIRD 2.0.12 ready.\n").unwrap();
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        s.write_all(reply.as_bytes()).unwrap();
        line
    });
    (dir, path, h)
}

#[test]
fn the_bird_control_protocol() {
    let (_d, path, h) =
        fake_bird("0002-Reading configuration from /etc/bird/bird.conf\n0003 Reconfigured\n");
    bird_command(&path, "configure").expect("reconfigured");
    assert_eq!(h.join().unwrap(), "configure\n");

    let (_d, path, h) = fake_bird(
        "0002-Reading configuration from /etc/bird/bird.conf\n8002 /run/rampart/bgp-v4.conf:2:7 syntax error\n",
    );
    let e = bird_command(&path, "configure")
        .expect_err("refused")
        .to_string();
    assert!(e.contains("8002") && e.contains("syntax error"), "{e}");
    h.join().unwrap();

    let (_d, path, h) = fake_bird("0006 Reconfiguration ignored, shutting down\n");
    assert!(bird_command(&path, "configure").is_err());
    h.join().unwrap();

    let gone = std::env::temp_dir().join("rampart-no-such-bird.ctl");
    let e = bird_command(&gone, "configure")
        .expect_err("no socket")
        .to_string();
    assert!(
        e.contains("bird control socket") && e.contains("rampart-no-such-bird.ctl"),
        "{e}"
    );
}
