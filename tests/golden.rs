//! Golden fixtures: every row of every scenario through the datapath, the
//! verdict and the transmitted frame compared with the expectation built
//! field by field in `rampart_testkit::fixtures`.

use rampart::datapath::{process, Verdict, WorkerState};
use rampart::snapshot::Snapshot;
use rampart_testkit::fixtures::{self, timestamp};

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    format!(
        "lengths {} vs {}, first difference at byte {at}\n   got {:02x?}\nwanted {:02x?}",
        a.len(),
        b.len(),
        &a[at.saturating_sub(4)..(at + 12).min(a.len())],
        &b[at.saturating_sub(4)..(at + 12).min(b.len())],
    )
}

#[test]
fn every_row_of_every_scenario() {
    let snap = Snapshot::build(&fixtures::config());
    let scenarios = fixtures::scenarios();
    assert!(scenarios.len() >= 10);
    let mut rows = 0;
    for sc in scenarios {
        // Each scenario starts from an empty connection table.
        for seed in [1u64, 0xdead_beef] {
            let mut ws = WorkerState::new(&snap, 0, 1, seed);
            for (i, row) in sc.rows.iter().enumerate() {
                ws.set_clock_ns(timestamp(i));
                let mut frame = row.input.clone();
                let v = process(&mut frame, &mut ws, &snap);
                assert_eq!(v, row.verdict, "{} row {i}: {}", sc.name, row.desc);
                let extra: Vec<Vec<u8>> = ws.outbox.iter().map(|(_, f)| f.to_vec()).collect();
                ws.outbox.clear();
                assert_eq!(
                    extra.len(),
                    row.extra.len(),
                    "{} row {i}: {}: originated frames",
                    sc.name,
                    row.desc
                );
                for (n, (got, want)) in extra.iter().zip(row.extra.iter()).enumerate() {
                    assert!(
                        got == want,
                        "{} row {i}: {}: originated frame {n}: {}",
                        sc.name,
                        row.desc,
                        first_difference(got, want)
                    );
                }
                match (&row.output, v) {
                    (Some(want), Verdict::Forward | Verdict::Reply) => {
                        assert!(
                            &frame == want,
                            "{} row {i}: {}: {}",
                            sc.name,
                            row.desc,
                            first_difference(&frame, want)
                        );
                    }
                    (None, Verdict::Drop(_) | Verdict::Consumed) => {}
                    (o, v) => panic!(
                        "{} row {i}: {}: verdict {v:?} with expected output {o:?}",
                        sc.name, row.desc
                    ),
                }
                rows += 1;
            }
        }
    }
    assert!(rows > 100, "only {rows} rows ran");
}

#[test]
fn modes_and_families_are_all_covered() {
    let names: Vec<&str> = fixtures::scenarios().iter().map(|s| s.name).collect();
    for want in [
        "nat-v4",
        "nat-v6",
        "fullnat-v4",
        "fullnat-v6",
        "dr-v4",
        "dr-v6",
        "synproxy-v4",
        "synproxy-v6",
        "tunnel",
        "icmp",
        "source-v4",
        "source-v6",
    ] {
        assert!(names.contains(&want), "missing scenario {want}");
    }
}

/// The burst path (parse and prefetch all, then handle) must give exactly
/// what frame-at-a-time processing gives, whatever the burst boundaries.
#[test]
fn bursts_match_single_frames() {
    use rampart::datapath::process_burst;
    let snap = Snapshot::build(&fixtures::config());
    // One long capture: every scenario's rows back to back, on one worker.
    let rows: Vec<_> = fixtures::scenarios()
        .into_iter()
        .flat_map(|s| s.rows)
        .collect();
    let mut single = WorkerState::new(&snap, 0, 1, 5);
    single.set_clock(100);
    // Each frame's verdict and bytes, then the frames it originated.
    let want: Vec<(Verdict, Vec<u8>, Vec<Vec<u8>>)> = rows
        .iter()
        .map(|r| {
            let mut f = r.input.clone();
            let v = process(&mut f, &mut single, &snap);
            let extra = single.outbox.iter().map(|(_, o)| o.to_vec()).collect();
            single.outbox.clear();
            (v, f, extra)
        })
        .collect();
    for burst in [1usize, 3, 32, 64] {
        let mut ws = WorkerState::new(&snap, 0, 1, 5);
        ws.set_clock(100);
        let mut got = Vec::new();
        for chunk in rows.chunks(burst) {
            let mut frames: Vec<Vec<u8>> = chunk.iter().map(|r| r.input.clone()).collect();
            let mut verdicts = vec![Verdict::Forward; frames.len()];
            assert_eq!(
                process_burst(&mut frames, &mut verdicts, &mut ws, &snap),
                chunk.len()
            );
            let mut extra: Vec<Vec<Vec<u8>>> = vec![Vec::new(); chunk.len()];
            for (after, o) in ws.outbox.iter() {
                extra[after].push(o.to_vec());
            }
            ws.outbox.clear();
            got.extend(
                verdicts
                    .into_iter()
                    .zip(frames)
                    .zip(extra)
                    .map(|((v, f), e)| (v, f, e)),
            );
        }
        assert!(
            got == want,
            "burst size {burst} differs from single-frame processing"
        );
        assert_eq!(ws.stats.drops, single.stats.drops);
        assert_eq!(ws.stats.events, single.stats.events);
    }
}

/// The ICMP rows are counted as the events they are: every echo answered
/// (`icmp_echo_replies`), every error carried to a connection's other side
/// (`icmp_errors_forwarded`), every client told its packet is too big for
/// the tunnel (`icmp_too_big_sent`). Expected counts come from the rows:
/// an ICMP input answered (Reply) or sent on (Forward), a packet consumed
/// with one originated frame.
#[test]
fn icmp_rows_count_their_events() {
    use rampart::flow::proto;
    use rampart::stats::Event;
    let snap = Snapshot::build(&fixtures::config());
    let mut totals = [0u64; 3];
    for name in ["icmp", "tunnel", "refusals"] {
        let Some(sc) = fixtures::scenarios().into_iter().find(|s| s.name == name) else {
            panic!("no scenario {name}")
        };
        let mut ws = WorkerState::new(&snap, 0, 1, 1);
        let mut want = [0u64; 3];
        for (i, row) in sc.rows.iter().enumerate() {
            ws.set_clock_ns(timestamp(i));
            // Refused frames do not parse; none of them is ICMP.
            let icmp = rampart::wire::parse(&row.input)
                .is_ok_and(|d| matches!(d.key.proto, proto::ICMP | proto::ICMPV6));
            match row.verdict {
                Verdict::Reply if icmp => want[0] += 1,
                Verdict::Forward if icmp => want[1] += 1,
                Verdict::Consumed if row.extra.len() == 1 => want[2] += 1,
                _ => {}
            }
            let mut frame = row.input.clone();
            process(&mut frame, &mut ws, &snap);
            ws.outbox.clear();
        }
        let got = [
            ws.stats.events[Event::IcmpEchoReply as usize],
            ws.stats.events[Event::IcmpForwarded as usize],
            ws.stats.events[Event::IcmpTooBig as usize],
        ];
        assert_eq!(
            got, want,
            "{name}: echo replies, errors forwarded, too big sent"
        );
        for (t, g) in totals.iter_mut().zip(got) {
            *t += g;
        }
    }
    assert!(totals.iter().all(|t| *t > 0), "{totals:?}");
}
