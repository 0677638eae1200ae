//! The state machine against scripted answers and timeouts, probe ports,
//! steering and sequence numbers.

use super::*;
use crate::probe::PROBE_PORT_MAX;

const KEY: [u8; 16] = *b"rampart-probekey";
const MS: u64 = NS_PER_MS;

fn params(interval_ms: u32, timeout_ms: u32, rise: u32, fall: u32) -> ProbeParams {
    ProbeParams {
        interval_ms,
        timeout_ms,
        rise,
        fall,
    }
}

fn target(backend: u32, p: ProbeParams) -> Target {
    Target {
        backend: BackendId::new(backend),
        key: BackendKey {
            addr: Addr::from_v4([
                198,
                18,
                1 + (backend / 200) as u8,
                10 + (backend % 200) as u8,
            ]),
            port: 8080,
        },
        params: p,
        src: Addr::from_v4([198, 18, 0, 1]),
        mac: Mac([0x02, 0, 0, 0, 0, 0x0b]),
    }
}

fn target_v6(backend: u32, p: ProbeParams) -> Target {
    let mut a: [u8; 16] = "2001:2:0:1::"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    a[15] = backend as u8;
    Target {
        key: BackendKey {
            addr: Addr::from_v6(a),
            port: 443,
        },
        src: Addr::from("2001:2::1".parse::<std::net::Ipv6Addr>().unwrap()),
        ..target(backend, p)
    }
}

fn poll(c: &mut Checker, now: u64) -> (Vec<ProbeOrder>, Vec<Transition>) {
    let mut orders = Vec::new();
    let t = c.poll(now, &mut orders);
    (orders.into_iter().map(|(_, o)| o).collect(), t)
}

/// One probe round for a single target: issue at `now`, answer with
/// `ok` right away.
fn round(c: &mut Checker, now: u64, ok: bool) -> Option<Transition> {
    let (orders, t) = poll(c, now);
    assert!(t.is_empty());
    assert_eq!(orders.len(), 1, "one probe due at {now}");
    let outcome = if ok {
        ProbeOutcome::Open
    } else {
        ProbeOutcome::Refused
    };
    c.result(
        ProbeResult {
            id: orders[0].id,
            outcome,
        },
        now + MS,
    )
}

#[test]
fn fall_then_rise() {
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, params(100, 50, 2, 3))], 0);
    assert_eq!(c.health(BackendId::new(0)), Some(Health::Up));
    assert_eq!(c.health(BackendId::new(1)), None);
    assert_eq!(round(&mut c, 0, false), None);
    assert_eq!(round(&mut c, 100 * MS, false), None);
    let t = round(&mut c, 200 * MS, false).unwrap();
    assert_eq!(
        t,
        Transition {
            backend: BackendId::new(0),
            key: target(0, params(100, 50, 2, 3)).key,
            up: false,
            reason: "3 consecutive probes failed (last: connection refused (RST))".into(),
        }
    );
    assert_eq!(c.health(BackendId::new(0)), Some(Health::Down));
    assert_eq!(round(&mut c, 300 * MS, false), None, "already down");
    assert_eq!(round(&mut c, 400 * MS, true), None);
    let t = round(&mut c, 500 * MS, true).unwrap();
    assert!(t.up);
    assert_eq!(t.reason, "2 consecutive probes succeeded (SYN-ACK)");
    assert_eq!(c.health(BackendId::new(0)), Some(Health::Up));
    assert_eq!(round(&mut c, 600 * MS, true), None, "already up");
}

#[test]
fn a_success_resets_the_failures_and_back() {
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, params(100, 50, 3, 3))], 0);
    let mut now = 0;
    for ok in [false, false, true, false, false, true, false, false] {
        assert_eq!(round(&mut c, now, ok), None, "at {now}");
        now += 100 * MS;
    }
    assert_eq!(c.health(BackendId::new(0)), Some(Health::Up));
    assert!(
        round(&mut c, now, false).is_some(),
        "third failure in a row"
    );
    now += 100 * MS;
    for ok in [true, true, false, true, true] {
        assert_eq!(round(&mut c, now, ok), None, "at {now}");
        now += 100 * MS;
    }
    assert_eq!(c.health(BackendId::new(0)), Some(Health::Down));
    assert!(round(&mut c, now, true).unwrap().up);
}

#[test]
fn flapping_never_changes_state() {
    for start_down in [false, true] {
        let mut c = Checker::new(1, KEY);
        c.set_targets(vec![target(0, params(100, 50, 2, 2))], 0);
        let mut now = 0;
        if start_down {
            round(&mut c, now, false);
            round(&mut c, now + 100 * MS, false);
            now += 200 * MS;
            assert_eq!(c.health(BackendId::new(0)), Some(Health::Down));
        }
        let before = c.health(BackendId::new(0));
        for i in 0..50 {
            assert_eq!(round(&mut c, now, i % 2 == 0), None);
            now += 100 * MS;
            assert_eq!(c.health(BackendId::new(0)), before);
        }
    }
}

#[test]
fn rise_and_fall_of_one() {
    for zero in [false, true] {
        let n = if zero { 0 } else { 1 };
        let mut c = Checker::new(1, KEY);
        c.set_targets(vec![target(0, params(100, 50, n, n))], 0);
        let t = round(&mut c, 0, false).unwrap();
        assert_eq!(t.reason, "probe failed (connection refused (RST))");
        let t = round(&mut c, 100 * MS, true).unwrap();
        assert_eq!(t.reason, "probe succeeded (SYN-ACK)");
    }
}

#[test]
fn timeouts_are_failures() {
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, params(1000, 1000, 1, 3))], 0);
    let (o, t) = poll(&mut c, 0);
    assert_eq!((o.len(), t.len()), (1, 0));
    let (o, t) = poll(&mut c, 999 * MS);
    assert!(o.is_empty() && t.is_empty(), "neither timed out nor due");
    // Timed out at 1000 ms, and the next probe is due at once.
    let (o, t) = poll(&mut c, 1000 * MS);
    assert_eq!((o.len(), t.len()), (1, 0));
    let (_, t) = poll(&mut c, 2000 * MS);
    assert!(t.is_empty());
    let (_, t) = poll(&mut c, 3000 * MS);
    assert_eq!(
        t,
        vec![Transition {
            backend: BackendId::new(0),
            key: target(0, params(1000, 1000, 1, 3)).key,
            up: false,
            reason: "3 consecutive probes failed (last: timeout after 1000 ms)".into(),
        }]
    );
    assert_eq!(c.health(BackendId::new(0)), Some(Health::Down));
    let (o, _) = poll(&mut c, 3000 * MS);
    assert!(o.is_empty(), "already issued at 3000 ms");
    assert_eq!(c.outstanding(), 1);
}

#[test]
fn schedule_at_every_interval() {
    let mut c = Checker::new(1, KEY);
    c.set_targets(
        vec![
            target(0, params(1000, 300, 2, 2)),
            target(1, params(250, 100, 2, 2)),
        ],
        0,
    );
    let mut sent: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    // A 10 ms control loop; every probe is answered 5 ms later.
    let mut waiting: Vec<(u64, u32)> = Vec::new();
    for tick in 0..=400u64 {
        let now = tick * 10 * MS;
        for (at, id) in std::mem::take(&mut waiting) {
            if at <= now {
                let r = ProbeResult {
                    id,
                    outcome: ProbeOutcome::Open,
                };
                assert_eq!(c.result(r, at), None);
            } else {
                waiting.push((at, id));
            }
        }
        let mut orders = Vec::new();
        assert!(c.poll(now, &mut orders).is_empty());
        for (_, o) in orders {
            let b = u32::from(o.dst.v4_octets()[3] - 10);
            sent.entry(b).or_default().push(now / MS);
            waiting.push((now + 5 * MS, o.id));
        }
    }
    let every = |step: u64, n: u64| (0..n).map(|i| i * step).collect::<Vec<_>>();
    assert_eq!(sent[&0], every(1000, 5));
    assert_eq!(sent[&1], every(250, 17));
}

#[test]
fn one_outstanding_probe_per_backend() {
    // The interval is shorter than the timeout: with no answers, a
    // probe goes out only when the previous one timed out.
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, params(100, 1000, 1, 100))], 0);
    let mut at = Vec::new();
    for tick in 0..=35u64 {
        let now = tick * 100 * MS;
        let (o, _) = poll(&mut c, now);
        assert!(c.outstanding() <= 1);
        if !o.is_empty() {
            at.push(now / MS);
        }
    }
    assert_eq!(at, vec![0, 1000, 2000, 3000]);
    // An answer brings the next probe back to the interval.
    let (o, _) = poll(&mut c, 3050 * MS);
    assert!(o.is_empty());
    let id = c.outstanding.keys().next().copied().unwrap();
    let r = ProbeResult {
        id,
        outcome: ProbeOutcome::Open,
    };
    c.result(r, 3050 * MS);
    let (o, _) = poll(&mut c, 3100 * MS);
    assert_eq!(o.len(), 1);
}

#[test]
fn a_late_answer_is_ignored() {
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, params(1000, 500, 1, 2))], 0);
    let (o, _) = poll(&mut c, 0);
    let late = ProbeResult {
        id: o[0].id,
        outcome: ProbeOutcome::Open,
    };
    // Timed out by poll; the answer after that changes nothing.
    let (_, t) = poll(&mut c, 500 * MS);
    assert!(t.is_empty());
    assert_eq!(c.result(late, 600 * MS), None);
    assert_eq!(c.outstanding(), 0);
    // So the next failure is the second in a row.
    let (o, _) = poll(&mut c, 1000 * MS);
    let r = ProbeResult {
        id: o[0].id,
        outcome: ProbeOutcome::Refused,
    };
    let t = c.result(r, 1001 * MS).unwrap();
    assert_eq!(
        t.reason,
        "2 consecutive probes failed (last: connection refused (RST))"
    );

    // An answer handed in after the deadline but before poll saw it
    // counts as the timeout it is.
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, params(1000, 500, 1, 1))], 0);
    let (o, _) = poll(&mut c, 0);
    let r = ProbeResult {
        id: o[0].id,
        outcome: ProbeOutcome::Open,
    };
    let t = c.result(r, 500 * MS).unwrap();
    assert_eq!(t.reason, "probe failed (timeout after 500 ms)");
    let (_, t) = poll(&mut c, 500 * MS);
    assert!(t.is_empty(), "counted once");
    // Unknown ids are ignored.
    let r = ProbeResult {
        id: 9999,
        outcome: ProbeOutcome::Refused,
    };
    assert_eq!(c.result(r, 600 * MS), None);
}

#[test]
fn orders_go_to_the_worker_that_gets_the_answer() {
    for workers in [1u16, 2, 4] {
        let mut c = Checker::new(workers, KEY);
        let p = params(1000, 500, 1, 1);
        let mut targets: Vec<Target> = (0..16).map(|b| target(b, p)).collect();
        targets.extend((16..32).map(|b| target_v6(b, p)));
        c.set_targets(targets, 0);
        let mut orders = Vec::new();
        c.poll(0, &mut orders);
        assert_eq!(orders.len(), 32);
        let mut seen = vec![false; usize::from(workers)];
        for (w, o) in &orders {
            assert_eq!(*w, steer::client_owner(&o.src, o.sport, workers));
            seen[usize::from(*w)] = true;
        }
        assert!(seen.iter().all(|s| *s), "{workers} workers: {seen:?}");
    }
}

#[test]
fn orders_carry_the_target() {
    let mut c = Checker::new(1, KEY);
    let t4 = target(3, params(1000, 500, 1, 1));
    let t6 = target_v6(7, params(1000, 500, 1, 1));
    c.set_targets(vec![t6.clone(), t4.clone()], 0);
    let (o, _) = poll(&mut c, 0);
    // In backend order, ids from 1, ports from the start of the range.
    for (o, (t, id)) in o.iter().zip([(&t4, 1), (&t6, 2)]) {
        assert_eq!(o.id, id);
        assert_eq!(
            (o.src, o.dst, o.dport, o.dst_mac),
            (t.src, t.key.addr, t.key.port, t.mac)
        );
        assert_eq!(o.sport, PROBE_PORT_MIN + id as u16 - 1);
        assert_eq!(o.isn, isn(&KEY, id, &t.key, o.sport));
    }
}

#[test]
fn isns_depend_on_the_key_only() {
    let run = |key: [u8; 16]| {
        let mut c = Checker::new(2, key);
        c.set_targets(
            (0..4).map(|b| target(b, params(100, 50, 1, 1))).collect(),
            0,
        );
        let mut all = Vec::new();
        for tick in 0..5u64 {
            let mut orders = Vec::new();
            c.poll(tick * 100 * MS, &mut orders);
            all.extend(orders);
        }
        all
    };
    let a = run(KEY);
    assert_eq!(a.len(), 20);
    assert_eq!(a, run(KEY), "same key, same probes");
    let mut other = KEY;
    other[0] ^= 1;
    let b = run(other);
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x.1.isn != y.1.isn && x.1.id == y.1.id));
    let mut isns: Vec<u32> = a.iter().map(|(_, o)| o.isn).collect();
    isns.sort_unstable();
    isns.dedup();
    assert_eq!(isns.len(), 20);
    // A fixed vector, so a change of the hash input shows up here.
    let k = BackendKey {
        addr: Addr::from_v4([198, 18, 1, 10]),
        port: 8080,
    };
    let mut m = Vec::new();
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&k.addr.0);
    m.extend_from_slice(&8080u16.to_le_bytes());
    m.extend_from_slice(&61000u16.to_le_bytes());
    let want = SipHasher13::new_with_key(&KEY).hash(&m) as u32;
    assert_eq!(isn(&KEY, 1, &k, 61000), want);
    assert_eq!(a[0].1.isn, want);
}

#[test]
fn ports_cycle_and_skip_outstanding_ones() {
    let mut c = Checker::new(1, KEY);
    // Backend 0 never answers and holds its port for a long time.
    c.set_targets(
        vec![
            target(0, params(10, 1_000_000, 1, 1)),
            target(1, params(10, 1_000, 1, 1)),
        ],
        0,
    );
    let mut held = None;
    let mut sports = Vec::new();
    for i in 0..(PROBE_PORTS as u64 + 5) {
        let now = i * 10 * MS;
        let (o, _) = poll(&mut c, now);
        for o in o {
            if o.dst == target(0, params(10, 1, 1, 1)).key.addr {
                assert_eq!(held, None, "backend 0 probed twice");
                held = Some(o.sport);
                continue;
            }
            assert_ne!(Some(o.sport), held);
            sports.push(o.sport);
            let r = ProbeResult {
                id: o.id,
                outcome: ProbeOutcome::Open,
            };
            c.result(r, now);
        }
    }
    assert_eq!(held, Some(PROBE_PORT_MIN));
    // Backend 1's probes go around the range, skipping the held port.
    let first: Vec<u16> = sports.iter().copied().take(PROBE_PORTS).collect();
    assert_eq!(first[0], PROBE_PORT_MIN + 1);
    assert_eq!(first[PROBE_PORTS - 2], PROBE_PORT_MAX);
    assert_eq!(first[PROBE_PORTS - 1], PROBE_PORT_MIN + 1);
}

#[test]
fn no_free_port_delays_probes() {
    let mut c = Checker::new(1, KEY);
    let p = params(1000, 1000, 1, 1);
    c.set_targets(
        (0..PROBE_PORTS as u32 + 3).map(|b| target(b, p)).collect(),
        0,
    );
    let (o, _) = poll(&mut c, 0);
    assert_eq!(o.len(), PROBE_PORTS);
    let (o, _) = poll(&mut c, 10 * MS);
    assert!(o.is_empty());
    let r = ProbeResult {
        id: 1,
        outcome: ProbeOutcome::Open,
    };
    c.result(r, 20 * MS);
    let (o, _) = poll(&mut c, 30 * MS);
    assert_eq!(o.len(), 1, "one port came free");
    assert_eq!(o[0].sport, PROBE_PORT_MIN);
}

#[test]
fn set_targets_keeps_unchanged_and_resets_changed() {
    let p = params(1000, 500, 2, 2);
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, p), target(1, p), target(2, p)], 0);
    // All three fail twice: down.
    for now in [0, 1000 * MS] {
        let (o, _) = poll(&mut c, now);
        for o in o {
            let r = ProbeResult {
                id: o.id,
                outcome: ProbeOutcome::Refused,
            };
            c.result(r, now + MS);
        }
    }
    for b in 0..3 {
        assert_eq!(c.health(BackendId::new(b)), Some(Health::Down));
    }
    // Probes out for all three at 2000 ms.
    let (o, _) = poll(&mut c, 2000 * MS);
    assert_eq!(o.len(), 3);

    // 0 unchanged but for its next hop, 1 with new params, 2 gone, 3 new.
    let mut t0 = target(0, p);
    t0.mac = Mac([0x02, 0, 0, 0, 0, 0x0c]);
    let t1 = target(1, params(1000, 500, 1, 2));
    c.set_targets(vec![t0.clone(), t1, target(3, p)], 2500 * MS);
    assert_eq!(c.health(BackendId::new(0)), Some(Health::Down), "kept");
    assert_eq!(c.health(BackendId::new(1)), Some(Health::Up), "reset");
    assert_eq!(c.health(BackendId::new(2)), None, "forgotten");
    assert_eq!(c.health(BackendId::new(3)), Some(Health::Up), "new");

    // The old probes' answers: 0's still counts, 1's and 2's do not.
    for o in &o {
        let r = ProbeResult {
            id: o.id,
            outcome: ProbeOutcome::Open,
        };
        assert_eq!(c.result(r, 2001 * MS + MS), None);
    }
    // 0 kept its schedule (due at 3000 ms); 1 and 3 are due now.
    let (o2, _) = poll(&mut c, 2500 * MS);
    let mut due: Vec<u8> = o2.iter().map(|o| o.dst.v4_octets()[3] - 10).collect();
    due.sort_unstable();
    assert_eq!(due, vec![1, 3]);
    let (o3, _) = poll(&mut c, 3000 * MS);
    assert_eq!(o3.len(), 1);
    assert_eq!(o3[0].dst_mac, t0.mac, "new next hop");
    // One more success for 0 (rise 2, counting the one at 2002 ms).
    let r = ProbeResult {
        id: o3[0].id,
        outcome: ProbeOutcome::Open,
    };
    let t = c.result(r, 3001 * MS).unwrap();
    assert!(t.up && t.backend == BackendId::new(0));
}

/// rampart's own stall is not a backend failure: while held, probes
/// neither time out nor go out, and on release the outstanding probe has
/// its whole timeout still to run; an answer within it counts.
#[test]
fn a_held_checker_times_nothing_out() {
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, params(100, 50, 1, 1))], 0);
    let (orders, _) = poll(&mut c, 0);
    assert_eq!(orders.len(), 1);
    c.hold(true, 10 * MS);
    let (more, t) = poll(&mut c, 800 * MS);
    assert!(more.is_empty() && t.is_empty(), "held: {more:?} {t:?}");
    c.hold(false, 810 * MS);
    // 10 ms of the 50 had run before the hold: 40 remain from 810 ms.
    let (_, t) = poll(&mut c, 849 * MS);
    assert!(t.is_empty(), "{t:?}");
    let answer = ProbeResult {
        id: orders[0].id,
        outcome: ProbeOutcome::Open,
    };
    assert_eq!(c.result(answer, 849 * MS), None);
    assert_eq!(c.health(BackendId::new(0)), Some(Health::Up));

    // Without the hold the same probe times out, and the backend goes down.
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, params(100, 50, 1, 1))], 0);
    poll(&mut c, 0);
    let (_, t) = poll(&mut c, 800 * MS);
    assert_eq!(t.len(), 1);
    assert!(!t[0].up);

    // A late control thread postpones by its lateness.
    let mut c = Checker::new(1, KEY);
    c.set_targets(vec![target(0, params(100, 50, 1, 1))], 0);
    poll(&mut c, 0);
    c.postpone(750 * MS);
    let (_, t) = poll(&mut c, 799 * MS);
    assert!(t.is_empty(), "{t:?}");
    let (_, t) = poll(&mut c, 800 * MS);
    assert_eq!(t.len(), 1);
}
