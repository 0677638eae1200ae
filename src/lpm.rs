//! Longest-prefix match from an address to a number: which `[[vip.source]]`
//! entry a client belongs to.
//!
//! The structure is a poptrie (Asai and Ohara, "Poptrie: A Compressed Trie
//! with Population Count for Fast and Scalable Software IP Routing Table
//! Lookup", SIGCOMM 2015) without its direct-pointing array: a multibit
//! trie of stride 6, whose nodes keep two 64-bit maps instead of 64
//! pointers. One map says which of the 64 slots continue in a child node;
//! the children of a node sit next to each other, so a child's place is the
//! node's base plus the number of child bits below its slot (a population
//! count). The other map marks where a run of equal answers starts among
//! the slots (leaf pushing: every slot holds the answer of the longest
//! prefix that covers it, so a lookup never backtracks); the answers are
//! stored once per run, found the same way.
//!
//! A lookup reads one node per 6 bits of the longest prefix on its path and
//! one answer: at most 6 nodes for IPv4 and 22 for IPv6, however many
//! prefixes the table holds. The table is built once on the control plane
//! ([`Lpm::new`], which allocates) and only read by workers
//! ([`Lpm::lookup`], which does not). IPv4 and IPv6 prefixes live in two
//! tries; an address is only ever matched against prefixes of its family.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::IpAddr;

use crate::config::Subnet;
use crate::flow::Addr;

/// Bits consumed per trie level.
const STRIDE: u32 = 6;
/// Slots per node (`1 << STRIDE`, one bit each in a `u64` map).
const FANOUT: usize = 64;
/// The stored answer of a slot no prefix covers.
const NONE: u32 = u32::MAX;

/// One trie node: 64 slots in two maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Node {
    /// Bit `s` set: slot `s` continues in a child node.
    children: u64,
    /// Bit `s` set: slot `s` starts a run of slots with the same answer.
    /// Bit 0 is always set.
    runs: u64,
    /// Index of the first child in [`Trie::nodes`].
    child_base: u32,
    /// Index of the first run's answer in [`Trie::answers`].
    answer_base: u32,
}

/// One family's trie over addresses held left-aligned in a `u128` (an
/// IPv4 address in the top 32 bits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Trie {
    /// `nodes[0]` is the root; empty for a trie without prefixes.
    nodes: Vec<Node>,
    answers: Vec<u32>,
}

/// A prefix as the build sees it: left-aligned network bits, length, answer.
#[derive(Clone, Copy, Debug)]
struct Entry {
    net: u128,
    len: u32,
    value: u32,
}

/// The slot of `key` in a node at bit offset `off` (bits past the end of
/// the key read as zero).
#[inline(always)]
fn slot(key: u128, off: u32) -> u32 {
    (key.checked_shl(off).unwrap_or(0) >> (128 - STRIDE)) as u32
}

impl Trie {
    fn build(mut entries: Vec<Entry>) -> Trie {
        let mut t = Trie::default();
        if entries.is_empty() {
            return t;
        }
        // Network order keeps the prefixes under one slot contiguous at
        // every level; among equal networks the longer one comes last. A
        // stable sort keeps the input order of duplicates (the later wins).
        entries.sort_by_key(|e| (e.net, e.len));
        t.nodes.push(Node::default());
        t.fill(0, &entries, 0, NONE);
        t
    }

    /// Fills node `at`, at bit offset `off`, with `entries`: the prefixes
    /// under it longer than `off`, in network order. `inherited` is the
    /// answer of the longest prefix of `off` bits or fewer on the path.
    fn fill(&mut self, at: usize, entries: &[Entry], off: u32, inherited: u32) {
        let end = off + STRIDE;
        let mut answer = [inherited; FANOUT];
        // Prefixes that end in this node cover a run of slots; painted
        // shortest first, the longest prefix of a slot has the last word.
        let mut ending: Vec<&Entry> = entries.iter().filter(|e| e.len <= end).collect();
        ending.sort_by_key(|e| e.len);
        for e in ending {
            let first = slot(e.net, off) as usize;
            let n = 1usize << (end - e.len);
            for a in answer.iter_mut().skip(first).take(n) {
                *a = e.value;
            }
        }
        // Longer prefixes go down into the child of their slot.
        let mut groups: Vec<(u32, Vec<Entry>)> = Vec::new();
        for e in entries.iter().filter(|e| e.len > end) {
            let s = slot(e.net, off);
            match groups.last_mut() {
                Some((last, g)) if *last == s => g.push(*e),
                _ => groups.push((s, vec![*e])),
            }
        }
        let mut node = Node {
            child_base: self.nodes.len() as u32,
            answer_base: self.answers.len() as u32,
            ..Node::default()
        };
        let mut prev = None;
        for (s, &a) in answer.iter().enumerate() {
            if prev != Some(a) {
                node.runs |= 1 << s;
                self.answers.push(a);
                prev = Some(a);
            }
        }
        for (s, _) in &groups {
            node.children |= 1 << s;
        }
        self.nodes
            .resize(self.nodes.len() + groups.len(), Node::default());
        if let Some(n) = self.nodes.get_mut(at) {
            *n = node;
        }
        for (i, (s, g)) in groups.iter().enumerate() {
            let inherited = answer.get(*s as usize).copied().unwrap_or(NONE);
            self.fill(node.child_base as usize + i, g, end, inherited);
        }
    }

    #[inline]
    fn lookup(&self, key: u128) -> Option<u32> {
        let mut node = self.nodes.first()?;
        let mut off = 0;
        loop {
            let bit = 1u64 << slot(key, off);
            if node.children & bit == 0 {
                // Runs started at or before the slot, counting from one.
                let run = (node.runs & (bit << 1).wrapping_sub(1)).count_ones();
                let i = node.answer_base.wrapping_add(run).wrapping_sub(1);
                return self.answers.get(i as usize).copied().filter(|&a| a != NONE);
            }
            let i = node.child_base + (node.children & (bit - 1)).count_ones();
            node = self.nodes.get(i as usize)?;
            off += STRIDE;
        }
    }

    fn bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<Node>() + self.answers.len() * 4
    }
}

/// A longest-prefix-match table from IPv4 and IPv6 prefixes to numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lpm {
    v4: Trie,
    v6: Trie,
    len: usize,
}

impl Lpm {
    /// The table of `prefixes`, each with its answer. Host bits of a
    /// prefix are ignored; of two equal prefixes the later one holds.
    /// Allocates: control plane only.
    pub fn new(prefixes: impl IntoIterator<Item = (Subnet, u32)>) -> Lpm {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (s, value) in prefixes {
            match s.addr {
                IpAddr::V4(a) => {
                    let len = u32::from(s.prefix_len.min(32));
                    let net = u128::from(u32::from(a)) << 96;
                    v4.push(Entry {
                        net: net & mask(len),
                        len,
                        value,
                    });
                }
                IpAddr::V6(a) => {
                    let len = u32::from(s.prefix_len.min(128));
                    v6.push(Entry {
                        net: u128::from(a) & mask(len),
                        len,
                        value,
                    });
                }
            }
        }
        let len = v4.len() + v6.len();
        Lpm {
            v4: Trie::build(v4),
            v6: Trie::build(v6),
            len,
        }
    }

    /// The answer of the longest prefix that holds `a`, if any does.
    #[inline]
    pub fn lookup(&self, a: &Addr) -> Option<u32> {
        let key = u128::from_be_bytes(a.0);
        if a.is_v4() {
            self.v4.lookup(key << 96)
        } else {
            self.v6.lookup(key)
        }
    }

    /// Number of prefixes the table was built from.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Memory held by the tries, in bytes.
    pub fn bytes(&self) -> usize {
        self.v4.bytes() + self.v6.bytes()
    }
}

/// The top `len` bits of a `u128`.
fn mask(len: u32) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - l.min(128)),
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn subnet(s: &str) -> Subnet {
        let (a, l) = s.split_once('/').unwrap();
        Subnet {
            addr: a.parse().unwrap(),
            prefix_len: l.parse().unwrap(),
        }
    }

    fn addr(s: &str) -> Addr {
        Addr::from(s.parse::<IpAddr>().unwrap())
    }

    /// The reference: every prefix checked, the longest match kept (the
    /// later one among equal lengths, as [`Lpm::new`] promises).
    fn naive(prefixes: &[(Subnet, u32)], a: &Addr) -> Option<u32> {
        let ip = a.to_ip();
        let mut best: Option<(u8, u32)> = None;
        for (s, v) in prefixes {
            let net = Subnet {
                addr: match s.addr {
                    IpAddr::V4(x) => IpAddr::V4(
                        (u32::from(x) & crate::config::prefix_mask_v4(s.prefix_len)).into(),
                    ),
                    IpAddr::V6(x) => IpAddr::V6(
                        (u128::from(x) & crate::config::prefix_mask_v6(s.prefix_len)).into(),
                    ),
                },
                prefix_len: s.prefix_len,
            };
            if net.contains(ip) && best.is_none_or(|(l, _)| s.prefix_len >= l) {
                best = Some((s.prefix_len, *v));
            }
        }
        best.map(|(_, v)| v)
    }

    #[test]
    fn empty_matches_nothing() {
        let t = Lpm::new([]);
        assert!(t.is_empty());
        assert_eq!(t.lookup(&addr("198.18.0.1")), None);
        assert_eq!(t.lookup(&addr("2001:2::1")), None);
    }

    #[test]
    fn longest_prefix_wins_at_every_depth() {
        let p = [
            (subnet("198.19.0.0/16"), 1),
            (subnet("198.19.128.0/17"), 2),
            (subnet("198.19.200.0/24"), 3),
            (subnet("198.19.200.7/32"), 4),
            (subnet("0.0.0.0/0"), 5),
            (subnet("2001:2:0:8000::/49"), 6),
            (subnet("2001:2:0:8000::17/128"), 7),
        ];
        let t = Lpm::new(p.iter().copied());
        assert_eq!(t.len(), 7);
        for (a, want) in [
            ("198.19.1.1", Some(1)),
            ("198.19.128.1", Some(2)),
            ("198.19.200.1", Some(3)),
            ("198.19.200.7", Some(4)),
            ("198.19.200.8", Some(3)),
            ("198.18.0.1", Some(5)),
            ("2001:2:0:8000::1", Some(6)),
            ("2001:2:0:ffff::1", Some(6)),
            ("2001:2:0:8000::17", Some(7)),
            ("2001:2:0:7fff::17", None),
            ("2001:2::1", None),
        ] {
            assert_eq!(t.lookup(&addr(a)), want, "{a}");
            assert_eq!(naive(&p, &addr(a)), want, "reference, {a}");
        }
    }

    #[test]
    fn families_never_mix() {
        // ::/0 covers every IPv6 address and no IPv4 one, also not the
        // IPv4-mapped form an IPv4 address is stored in.
        let t = Lpm::new([(subnet("::/0"), 1)]);
        assert_eq!(t.lookup(&addr("2001:2::1")), Some(1));
        assert_eq!(t.lookup(&addr("198.18.0.1")), None);
        let t = Lpm::new([(subnet("0.0.0.0/0"), 2)]);
        assert_eq!(t.lookup(&addr("198.18.0.1")), Some(2));
        assert_eq!(t.lookup(&addr("::ffff:198.18.0.1")), Some(2));
        assert_eq!(t.lookup(&addr("2001:2::1")), None);
    }

    #[test]
    fn edges_of_a_prefix() {
        let t = Lpm::new([
            (subnet("198.18.4.0/22"), 1),
            (subnet("2001:2:0:8000::/49"), 2),
        ]);
        assert_eq!(t.lookup(&addr("198.18.3.255")), None);
        assert_eq!(t.lookup(&addr("198.18.4.0")), Some(1));
        assert_eq!(t.lookup(&addr("198.18.7.255")), Some(1));
        assert_eq!(t.lookup(&addr("198.18.8.0")), None);
        assert_eq!(t.lookup(&addr("2001:2:0:7fff:ffff:ffff:ffff:ffff")), None);
        assert_eq!(t.lookup(&addr("2001:2:0:8000::")), Some(2));
        assert_eq!(
            t.lookup(&addr("2001:2:0:ffff:ffff:ffff:ffff:ffff")),
            Some(2)
        );
        assert_eq!(t.lookup(&addr("2001:2:1::")), None);
    }

    #[test]
    fn host_bits_are_ignored_and_the_later_duplicate_holds() {
        let t = Lpm::new([(subnet("198.18.4.9/24"), 1), (subnet("198.18.4.0/24"), 2)]);
        assert_eq!(t.lookup(&addr("198.18.4.200")), Some(2));
    }

    /// 10,000 prefixes: a lookup still reads at most 6 nodes (IPv4), and the
    /// table stays small.
    #[test]
    fn ten_thousand_prefixes() {
        let mut p = Vec::new();
        let mut x = 0x1234_5678_u64;
        for i in 0..10_000u32 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = 8 + (x >> 59) as u8 % 25;
            let a = Ipv4Addr::from((x >> 16) as u32);
            let net = u32::from(a) & crate::config::prefix_mask_v4(len);
            p.push((
                Subnet {
                    addr: IpAddr::V4(net.into()),
                    prefix_len: len,
                },
                i,
            ));
        }
        let t = Lpm::new(p.iter().copied());
        assert!(t.bytes() < 16 << 20, "{} bytes", t.bytes());
        for i in 0..4_000u32 {
            let probe = if i % 2 == 0 {
                // An address inside a listed prefix.
                let (s, _) = p[(i / 2) as usize % p.len()];
                let IpAddr::V4(n) = s.addr else {
                    unreachable!()
                };
                Addr::from(Ipv4Addr::from(
                    u32::from(n)
                        | (i.wrapping_mul(2_654_435_761)
                            & !crate::config::prefix_mask_v4(s.prefix_len)),
                ))
            } else {
                Addr::from(Ipv4Addr::from(i.wrapping_mul(2_654_435_761)))
            };
            assert_eq!(t.lookup(&probe), naive(&p, &probe), "{probe}");
        }
    }

    fn v4_prefix() -> impl Strategy<Value = Subnet> {
        // Clustered networks, so prefixes nest and overlap often.
        (0u32..64, any::<u32>(), 0u8..=32).prop_map(|(hi, lo, len)| {
            let a = (hi << 26) | (lo >> 6);
            Subnet {
                addr: IpAddr::V4((a & crate::config::prefix_mask_v4(len)).into()),
                prefix_len: len,
            }
        })
    }

    fn v6_prefix() -> impl Strategy<Value = Subnet> {
        (0u128..16, any::<u128>(), 0u8..=128).prop_map(|(hi, lo, len)| {
            let a = (hi << 124) | (lo >> 4);
            Subnet {
                addr: IpAddr::V6((a & crate::config::prefix_mask_v6(len)).into()),
                prefix_len: len,
            }
        })
    }

    /// Probes near the prefixes' networks and anywhere.
    fn probes(p: &[(Subnet, u32)], salt: &[u128]) -> Vec<Addr> {
        let mut out = Vec::new();
        for (i, (s, _)) in p.iter().enumerate() {
            let k = salt.get(i % salt.len().max(1)).copied().unwrap_or(0);
            match s.addr {
                IpAddr::V4(n) => {
                    let n = u32::from(n);
                    for d in [0, 1, k as u32, n.wrapping_neg()] {
                        out.push(Addr::from(Ipv4Addr::from(n ^ (d >> (s.prefix_len % 32)))));
                        out.push(Addr::from(Ipv4Addr::from(n.wrapping_sub(1))));
                    }
                }
                IpAddr::V6(n) => {
                    let n = u128::from(n);
                    for d in [0, 1, k] {
                        out.push(Addr::from(Ipv6Addr::from(n ^ (d >> (s.prefix_len % 128)))));
                        out.push(Addr::from(Ipv6Addr::from(n.wrapping_sub(1))));
                    }
                }
            }
        }
        for k in salt {
            out.push(Addr::from(Ipv6Addr::from(*k)));
            out.push(Addr::from(Ipv4Addr::from(*k as u32)));
        }
        out
    }

    proptest! {
        #[test]
        fn matches_the_reference(
            v4 in proptest::collection::vec(v4_prefix(), 0..60),
            v6 in proptest::collection::vec(v6_prefix(), 0..60),
            salt in proptest::collection::vec(any::<u128>(), 1..20),
        ) {
            let p: Vec<(Subnet, u32)> = v4
                .into_iter()
                .chain(v6)
                .enumerate()
                .map(|(i, s)| (s, i as u32))
                .collect();
            let t = Lpm::new(p.iter().copied());
            for a in probes(&p, &salt) {
                prop_assert_eq!(t.lookup(&a), naive(&p, &a), "{}", a);
            }
        }
    }
}
