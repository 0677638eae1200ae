//! Every input a fuzz target ever crashed on (`fuzz/regressions/TARGET/`),
//! and every seed of every target, through the same functions the targets
//! run (`rampart_testkit::harness` for the datapath, `rampart_testkit::fuzz`
//! for the others): none may panic again.

use rampart_testkit::{fixtures, fuzz, harness};

#[test]
fn seeds_run_clean() {
    let seeds = fixtures::fuzz_seeds();
    assert!(seeds.len() > 50);
    for (name, data) in seeds {
        let r = std::panic::catch_unwind(|| harness::run(&data));
        assert!(r.is_ok(), "seed {name} panicked");
    }
}

/// The harness runs at the fixtures' clock, so a SYN proxy seed's cookies
/// are live and the fuzzer starts from spliced connections, not only from
/// refused ACKs.
#[test]
fn synproxy_seeds_reach_the_splice() {
    // The FullNAT seed's second backend answers the local port worker 0 of
    // 1 hands out; the harness is worker 0 of 256, so only the first splices.
    for (name, want) in [("synproxy-v4-all", 2), ("synproxy-v6-all", 1)] {
        let (_, data) = fixtures::fuzz_seeds()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap();
        let stats = harness::run(&data);
        let established = stats.events[rampart::stats::Event::SynproxyEstablished as usize];
        assert_eq!(established, want, "{name}");
    }
}

/// The seeds of the targets other than the datapath (whose seeds are
/// above): each runs clean, and each target has some.
#[test]
fn other_targets_seeds_run_clean() {
    for target in fuzz::TARGETS.into_iter().filter(|t| *t != "datapath") {
        let seeds = fuzz::seeds(target);
        assert!(seeds.len() >= 8, "{target}: only {} seeds", seeds.len());
        for (name, data) in seeds {
            let r = std::panic::catch_unwind(|| fuzz::run(target, &data));
            assert!(r.is_ok(), "{target} seed {name} panicked");
        }
    }
}

#[test]
fn checked_in_crashes_stay_fixed() {
    let dir = rampart_testkit::common::root().join("fuzz/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            assert!(
                p.extension().is_some_and(|e| e == "md"),
                "{}: a regression input belongs in the directory of its target",
                p.display()
            );
            continue;
        }
        let target = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            fuzz::TARGETS.contains(&target.as_str()),
            "{}: no fuzz target of that name",
            p.display()
        );
        for case in std::fs::read_dir(&p).unwrap() {
            let case = case.unwrap().path();
            let data = std::fs::read(&case).unwrap();
            let r = std::panic::catch_unwind(|| fuzz::run(&target, &data));
            assert!(r.is_ok(), "{} panics again", case.display());
            n += 1;
        }
    }
    eprintln!("{n} regression inputs replayed");
}

#[test]
fn harness_detects_broken_invariants() {
    // Splitting is total: any bytes give frames, never a panic.
    assert_eq!(harness::frames(&[0]).len(), 0);
    assert_eq!(harness::frames(&[0, 5, 1, 2]), vec![&[1u8, 2][..]]);
    let joined = harness::join(&[&[1, 2, 3], &[], &[4]]);
    assert_eq!(
        harness::frames(&joined),
        vec![&[1u8, 2, 3][..], &[][..], &[4][..]]
    );
}
