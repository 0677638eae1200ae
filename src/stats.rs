//! Counters. Every drop has a name in [`DropReason`]; every other datapath
//! event has one in [`Event`]. Workers count into plain arrays in their own
//! cache-padded [`WorkerStats`]; the control side sums them.

use crate::ids::{BackendId, VipId};

/// Why the datapath dropped a packet. One counter per reason per worker.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Frame shorter than its headers claim, or a header etherparse rejects.
    Malformed = 0,
    /// EtherType other than IPv4, IPv6 or ARP.
    UnsupportedEtherType,
    /// More than one VLAN tag (QinQ): not supported on purpose.
    StackedVlan,
    /// IPv4 header with options: not supported on purpose (rare, slow path in every router).
    Ipv4Options,
    /// IPv4 fragment rampart does not forward: of a protocol other than
    /// TCP and UDP, or of a SYN-proxied connection (see [`crate::frag`]).
    Ipv4Fragment,
    /// IPv6 packet with extension headers other than one fragment header
    /// (routing, hop-by-hop, ...): not supported on purpose.
    Ipv6ExtHeader,
    /// Destination MAC is neither ours nor broadcast/multicast.
    NotOurMac,
    /// ARP that is not a request for one of our addresses or VIPs.
    ArpNotForUs,
    /// ICMPv6 neighbor discovery that is not a solicitation for one of our addresses or VIPs.
    NdNotForUs,
    /// ICMP / ICMPv6 message rampart does not handle (echo, errors, router discovery).
    IcmpUnsupported,
    /// IP protocol other than TCP/UDP towards a VIP address.
    UnsupportedProtocol,
    /// Destination is neither a VIP, one of our addresses, nor a tracked reply.
    NoVip,
    /// Destination is a VIP address, but no VIP serves that port and protocol.
    NoService,
    /// Addressed to one of our own addresses and not a FullNAT reply of a tracked connection.
    LocalNotHandled,
    /// Looks like a reply (from a backend) but matches no tracked connection.
    NoConn,
    /// The VIP has no backend with weight > 0.
    NoBackend,
    /// Connection table full and the mode cannot forward without state (FullNAT).
    ConnTableFull,
    /// No free FullNAT local port on this worker for any local address.
    FullnatPortsExhausted,
    /// The reply-direction key of a new connection is already taken by another connection.
    ConnCollision,
    /// DR backend has no static neighbor entry (DR needs L2 adjacency).
    DrNoNeighbor,
    /// SYN proxy: a source over `synproxy.syn_rate_per_source` got no cookie.
    SynRateLimited,
    /// SYN proxy: cookie checks over `synproxy.ack_rate` (an ACK storm).
    AckRateLimited,
    /// SYN proxy: a client packet with no entry and no valid cookie.
    CookieInvalid,
    /// SYN proxy: a valid cookie, but new connections are over `synproxy.conn_rate`.
    ConnRateLimited,
    /// SYN proxy: the backend handshake is pending and the packet found no hold room.
    SynproxyHoldFull,
    /// SYN proxy: a client segment without data while the backend handshake is
    /// pending (a retransmitted ACK); the handshake answers it.
    SynproxyPending,
    /// SYN proxy: a backend SYN-ACK that does not acknowledge the SYN we sent.
    SynproxyBadSynAck,
    /// The worker's queue for packets it originates was full.
    OutboxFull,
    /// A new flow to a VIP that a reload or `vip del` removed (its existing
    /// connections drain).
    VipRemoved,
    /// A packet of a connection being reset (its backend down or removed,
    /// or its VIP removed, under the `reset` policy) that could not be
    /// turned into a RST to the client: a backend's packet, or UDP.
    ConnReset,
    /// A forwarding transform could not rewrite the frame (an address of the
    /// wrong family, ports asked of a protocol without them).
    RewriteFailed,
    /// An encapsulating transform found no room in front of the frame
    /// (a buffer without headroom).
    NoHeadroom,
    /// A tunnel packet over the MTU once wrapped whose ICMP too-big answer
    /// could not be sent (no outbox room, no source address).
    TunnelTooBig,
    /// An IPv4 packet without DF over the MTU once wrapped: rampart does not
    /// fragment, and without DF the client does not expect an ICMP answer.
    TunnelNoDf,
    /// No node address of the backend's family to source a tunnel packet from.
    TunnelNoSource,
    /// An echo request over `icmp.echo_rate`.
    IcmpRateLimited,
    /// An ICMP error whose quoted packet matches no connection or VIP.
    IcmpNoConn,
    /// IPv6 fragment rampart does not forward: of a protocol other than
    /// TCP and UDP, or of a SYN-proxied connection.
    Ipv6Fragment,
    /// A fragment that breaks the rules: data past 65535 bytes, a non-last
    /// fragment not a multiple of 8 bytes, a first fragment without the
    /// whole TCP/UDP header (RFC 7112), a TCP fragment at offset 8 (RFC
    /// 1858), data past the end the last fragment set.
    FragmentMalformed,
    /// A fragment overlapping another of its datagram (RFC 5722): it and
    /// every later fragment of the datagram are dropped.
    FragmentOverlap,
    /// A second copy of a fragment already seen.
    FragmentDuplicate,
    /// A held fragment whose datagram's first fragment did not come within
    /// `fragments.timeout_ms`.
    FragmentTimeout,
    /// No room in the fragment table for another datagram.
    FragmentTableFull,
    /// A fragment that came before its first found no hold room
    /// (`fragments.max_held`), or is too large to hold.
    FragmentHoldFull,
    /// A datagram in more fragments than rampart tracks.
    FragmentTooMany,
    /// A fragment whose datagram's first fragment was dropped.
    FragmentFirstDropped,
    /// A frame for the node's own stack over `dpdk.kernel_rate`.
    KernelRateLimited,
    /// PROXY header: a client segment of a connection whose header could
    /// not be placed in the backend's sequence space (client bytes before
    /// the handshake completed, or a header rampart could not write).
    ProxyUntranslatable,
}

impl DropReason {
    pub const COUNT: usize = DropReason::ProxyUntranslatable as usize + 1;

    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Malformed,
        DropReason::UnsupportedEtherType,
        DropReason::StackedVlan,
        DropReason::Ipv4Options,
        DropReason::Ipv4Fragment,
        DropReason::Ipv6ExtHeader,
        DropReason::NotOurMac,
        DropReason::ArpNotForUs,
        DropReason::NdNotForUs,
        DropReason::IcmpUnsupported,
        DropReason::UnsupportedProtocol,
        DropReason::NoVip,
        DropReason::NoService,
        DropReason::LocalNotHandled,
        DropReason::NoConn,
        DropReason::NoBackend,
        DropReason::ConnTableFull,
        DropReason::FullnatPortsExhausted,
        DropReason::ConnCollision,
        DropReason::DrNoNeighbor,
        DropReason::SynRateLimited,
        DropReason::AckRateLimited,
        DropReason::CookieInvalid,
        DropReason::ConnRateLimited,
        DropReason::SynproxyHoldFull,
        DropReason::SynproxyPending,
        DropReason::SynproxyBadSynAck,
        DropReason::OutboxFull,
        DropReason::VipRemoved,
        DropReason::ConnReset,
        DropReason::RewriteFailed,
        DropReason::NoHeadroom,
        DropReason::TunnelTooBig,
        DropReason::TunnelNoDf,
        DropReason::TunnelNoSource,
        DropReason::IcmpRateLimited,
        DropReason::IcmpNoConn,
        DropReason::Ipv6Fragment,
        DropReason::FragmentMalformed,
        DropReason::FragmentOverlap,
        DropReason::FragmentDuplicate,
        DropReason::FragmentTimeout,
        DropReason::FragmentTableFull,
        DropReason::FragmentHoldFull,
        DropReason::FragmentTooMany,
        DropReason::FragmentFirstDropped,
        DropReason::KernelRateLimited,
        DropReason::ProxyUntranslatable,
    ];

    /// Stable snake_case name used in stats JSON and summaries.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnsupportedEtherType => "unsupported_ethertype",
            DropReason::StackedVlan => "stacked_vlan",
            DropReason::Ipv4Options => "ipv4_options",
            DropReason::Ipv4Fragment => "ipv4_fragment",
            DropReason::Ipv6ExtHeader => "ipv6_ext_header",
            DropReason::NotOurMac => "not_our_mac",
            DropReason::ArpNotForUs => "arp_not_for_us",
            DropReason::NdNotForUs => "nd_not_for_us",
            DropReason::IcmpUnsupported => "icmp_unsupported",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::NoVip => "no_vip",
            DropReason::NoService => "no_service",
            DropReason::LocalNotHandled => "local_not_handled",
            DropReason::NoConn => "no_conn",
            DropReason::NoBackend => "no_backend",
            DropReason::ConnTableFull => "conn_table_full",
            DropReason::FullnatPortsExhausted => "fullnat_ports_exhausted",
            DropReason::ConnCollision => "conn_collision",
            DropReason::DrNoNeighbor => "dr_no_neighbor",
            DropReason::SynRateLimited => "syn_rate_limited",
            DropReason::AckRateLimited => "ack_rate_limited",
            DropReason::CookieInvalid => "cookie_invalid",
            DropReason::ConnRateLimited => "conn_rate_limited",
            DropReason::SynproxyHoldFull => "synproxy_hold_full",
            DropReason::SynproxyPending => "synproxy_pending",
            DropReason::SynproxyBadSynAck => "synproxy_bad_synack",
            DropReason::OutboxFull => "outbox_full",
            DropReason::VipRemoved => "vip_removed",
            DropReason::ConnReset => "conn_reset",
            DropReason::RewriteFailed => "rewrite_failed",
            DropReason::NoHeadroom => "no_headroom",
            DropReason::TunnelTooBig => "tunnel_too_big",
            DropReason::TunnelNoDf => "tunnel_too_big_no_df",
            DropReason::TunnelNoSource => "tunnel_no_source",
            DropReason::IcmpRateLimited => "icmp_rate_limited",
            DropReason::IcmpNoConn => "icmp_no_conn",
            DropReason::Ipv6Fragment => "ipv6_fragment",
            DropReason::FragmentMalformed => "fragment_malformed",
            DropReason::FragmentOverlap => "fragment_overlap",
            DropReason::FragmentDuplicate => "fragment_duplicate",
            DropReason::FragmentTimeout => "fragment_timeout",
            DropReason::FragmentTableFull => "fragment_table_full",
            DropReason::FragmentHoldFull => "fragment_hold_full",
            DropReason::FragmentTooMany => "fragment_too_many",
            DropReason::FragmentFirstDropped => "fragment_first_dropped",
            DropReason::KernelRateLimited => "kernel_rate_limited",
            DropReason::ProxyUntranslatable => "proxy_untranslatable",
        }
    }
}

/// Datapath events that are not drops.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    ArpReply = 0,
    NdAdvert,
    ConnNew,
    ConnExpired,
    /// Connection table full: a new flow went to its Maglev backend without an entry.
    StatelessNew,
    /// A packet of an untracked flow forwarded by Maglev without an entry
    /// (TCP RST, or table full).
    StatelessForward,
    /// A NAT reply with no entry, translated back through its backend's unique
    /// VIP while the table has recently overflowed.
    StatelessReply,
    /// A mid-flow TCP packet with no entry picked up into a new entry.
    MidflowPickup,
    /// SYN proxy: a SYN answered with a cookie SYN-ACK.
    SynCookieSent,
    /// SYN proxy: an ACK carried a valid cookie; the connection was created.
    CookieValid,
    /// SYN proxy: a SYN sent to a backend (first try or retry).
    BackendSyn,
    /// SYN proxy: the backend answered and the connection is spliced.
    SynproxyEstablished,
    /// SYN proxy: a client packet held until the backend answered.
    SynproxyHeld,
    /// SYN proxy: the backend refused (RST) and the client was reset.
    BackendRefused,
    /// SYN proxy: the backend never answered; the client was reset.
    BackendTimeout,
    /// A RST rampart originated towards a client.
    RstSent,
    /// SYN proxy: a held client packet that could not be sent when the
    /// backend answered (no outbox room, or its connection refused it).
    HeldLost,
    /// A health-check SYN sent to a backend.
    ProbeSent,
    /// A health-check probe answered with a SYN-ACK (port open).
    ProbeOpen,
    /// A health-check probe answered with a RST (port closed).
    ProbeRefused,
    /// A connection ended because its backend is down or removed, or its
    /// VIP removed, under the `reset` policy.
    ConnReset,
    /// An echo request to a VIP or node address answered.
    IcmpEchoReply,
    /// A client told its packet is too big for the tunnel (ICMP
    /// fragmentation needed / packet too big).
    IcmpTooBig,
    /// An ICMP error about a connection delivered, translated, to the side
    /// that sent the offending packet.
    IcmpForwarded,
    /// An IP fragment forwarded as its datagram's first fragment decided
    /// (the first fragment included; released held ones are counted here
    /// too).
    FragmentForwarded,
    /// A fragment held until its datagram's first fragment arrives.
    FragmentHeld,
    /// A held fragment released when its first fragment arrived.
    FragmentReleased,
    /// A fragment passed to the worker that owns its datagram's connection.
    FragmentHandedOver,
    /// A held fragment dropped after all (timed out, its datagram spoiled
    /// or its first dropped): counted as consumed when it was held and
    /// again under its drop reason, so `rx_packets = tx_packets + consumed
    /// + drops - fragments_held_dropped`.
    FragmentHeldDropped,
    /// A worker slept after a run of empty polls (`dpdk.idle_sleep_us`).
    IdleSleep,
    /// A frame for the node's own stack passed to the kernel interface.
    KernelPassed,
    /// A new flow scheduled over the backends of its client's
    /// `[[vip.source]]` entry.
    SourceSteered,
    /// A new flow whose client's `[[vip.source]]` entry had no backend
    /// taking connections (all down or drained), scheduled over the whole
    /// VIP instead.
    SourceFallback,
    /// A PROXY header sent to a backend (once per connection).
    ProxyHeaderSent,
    /// A PROXY header sent again because the backend showed it had not
    /// received it (a repeated SYN-ACK, an ACK short of the header).
    ProxyHeaderResent,
}

impl Event {
    pub const COUNT: usize = Event::ProxyHeaderResent as usize + 1;

    pub const ALL: [Event; Event::COUNT] = [
        Event::ArpReply,
        Event::NdAdvert,
        Event::ConnNew,
        Event::ConnExpired,
        Event::StatelessNew,
        Event::StatelessForward,
        Event::StatelessReply,
        Event::MidflowPickup,
        Event::SynCookieSent,
        Event::CookieValid,
        Event::BackendSyn,
        Event::SynproxyEstablished,
        Event::SynproxyHeld,
        Event::BackendRefused,
        Event::BackendTimeout,
        Event::RstSent,
        Event::HeldLost,
        Event::ProbeSent,
        Event::ProbeOpen,
        Event::ProbeRefused,
        Event::ConnReset,
        Event::IcmpEchoReply,
        Event::IcmpTooBig,
        Event::IcmpForwarded,
        Event::FragmentForwarded,
        Event::FragmentHeld,
        Event::FragmentReleased,
        Event::FragmentHandedOver,
        Event::FragmentHeldDropped,
        Event::IdleSleep,
        Event::KernelPassed,
        Event::SourceSteered,
        Event::SourceFallback,
        Event::ProxyHeaderSent,
        Event::ProxyHeaderResent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::ArpReply => "arp_replies",
            Event::NdAdvert => "nd_adverts",
            Event::ConnNew => "conn_new",
            Event::ConnExpired => "conn_expired",
            Event::StatelessNew => "stateless_new",
            Event::StatelessForward => "stateless_forward",
            Event::StatelessReply => "stateless_reply",
            Event::MidflowPickup => "midflow_pickup",
            Event::SynCookieSent => "syn_cookies_sent",
            Event::CookieValid => "cookies_valid",
            Event::BackendSyn => "backend_syns",
            Event::SynproxyEstablished => "synproxy_established",
            Event::SynproxyHeld => "synproxy_held",
            Event::BackendRefused => "backend_refused",
            Event::BackendTimeout => "backend_timeouts",
            Event::RstSent => "rst_sent",
            Event::HeldLost => "held_lost",
            Event::ProbeSent => "probes_sent",
            Event::ProbeOpen => "probes_open",
            Event::ProbeRefused => "probes_refused",
            Event::ConnReset => "conn_resets",
            Event::IcmpEchoReply => "icmp_echo_replies",
            Event::IcmpTooBig => "icmp_too_big_sent",
            Event::IcmpForwarded => "icmp_errors_forwarded",
            Event::FragmentForwarded => "fragments_forwarded",
            Event::FragmentHeld => "fragments_held",
            Event::FragmentReleased => "fragments_released",
            Event::FragmentHandedOver => "fragments_handed_over",
            Event::FragmentHeldDropped => "fragments_held_dropped",
            Event::IdleSleep => "idle_sleeps",
            Event::KernelPassed => "kernel_passed",
            Event::SourceSteered => "source_steered",
            Event::SourceFallback => "source_fallback",
            Event::ProxyHeaderSent => "proxy_headers_sent",
            Event::ProxyHeaderResent => "proxy_headers_resent",
        }
    }
}

/// Packet and connection counts for one VIP or one backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Connections created.
    pub connections: u64,
    /// Connections whose entry went away (expired, closed, reset); active
    /// = `connections - closed`.
    pub closed: u64,
}

impl FlowCounters {
    pub fn add(&mut self, o: &FlowCounters) {
        self.packets_in += o.packets_in;
        self.packets_out += o.packets_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.connections += o.connections;
        self.closed += o.closed;
    }

    /// Connections created and not yet gone.
    pub fn active(&self) -> u64 {
        self.connections.saturating_sub(self.closed)
    }
}

/// One worker's counters. Only its worker writes them.
#[repr(align(64))]
#[derive(Clone, Debug)]
pub struct WorkerStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Received frames the datapath took over without sending or dropping
    /// them (SYN proxy ACKs and held packets, fragments held for their
    /// first or handed to another worker). A held fragment that never
    /// goes out is counted again under its drop reason and in
    /// `fragments_held_dropped`.
    pub consumed: u64,
    /// Frames the worker originated (SYN proxy SYNs, released held
    /// packets, resets); not part of `tx_packets`.
    pub originated_packets: u64,
    pub originated_bytes: u64,
    pub drops: [u64; DropReason::COUNT],
    pub events: [u64; Event::COUNT],
    /// Indexed by VIP index in the snapshot.
    pub vips: Vec<FlowCounters>,
    /// Indexed by backend index in the snapshot's backend registry.
    pub backends: Vec<FlowCounters>,
}

impl WorkerStats {
    /// Counts a frame the worker sent of its own (through the outbox).
    #[inline]
    pub fn originated(&mut self, len: usize) {
        self.originated_packets += 1;
        self.originated_bytes += len as u64;
    }

    /// The counters of VIP `vi` (none for a number past the snapshot the
    /// counters were sized for).
    #[inline]
    pub fn vip_mut(&mut self, vi: VipId) -> Option<&mut FlowCounters> {
        self.vips.get_mut(vi.index())
    }

    /// The counters of backend `b` (none for a number past the registry
    /// the counters were sized for).
    #[inline]
    pub fn backend_mut(&mut self, b: BackendId) -> Option<&mut FlowCounters> {
        self.backends.get_mut(b.index())
    }

    /// Counts a forwarded frame for its VIP and backend, towards the
    /// backend (`Dir::Forward`) or back to the client.
    #[inline]
    pub fn count_flow(
        &mut self,
        vi: VipId,
        backend: BackendId,
        len: u64,
        dir: crate::conntrack::Dir,
    ) {
        let (vip, be) = (
            self.vips.get_mut(vi.index()),
            self.backends.get_mut(backend.index()),
        );
        for c in [vip, be].into_iter().flatten() {
            if dir == crate::conntrack::Dir::Forward {
                c.packets_in += 1;
                c.bytes_in += len;
            } else {
                c.packets_out += 1;
                c.bytes_out += len;
            }
        }
    }

    pub fn new(vips: usize, backends: usize) -> WorkerStats {
        WorkerStats {
            rx_packets: 0,
            tx_packets: 0,
            rx_bytes: 0,
            tx_bytes: 0,
            consumed: 0,
            originated_packets: 0,
            originated_bytes: 0,
            drops: [0; DropReason::COUNT],
            events: [0; Event::COUNT],
            vips: vec![FlowCounters::default(); vips],
            backends: vec![FlowCounters::default(); backends],
        }
    }

    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    /// Counts `n` held fragments dropped under `r` (see
    /// [`Event::FragmentHeldDropped`]).
    pub fn held_dropped(&mut self, r: DropReason, n: u64) {
        self.drops[r as usize] += n;
        self.events[Event::FragmentHeldDropped as usize] += n;
    }

    #[inline]
    pub fn event(&mut self, e: Event) {
        self.event_n(e, 1);
    }

    #[inline]
    pub fn event_n(&mut self, e: Event, n: u64) {
        self.events[e as usize] += n;
    }

    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another worker's counters into this one (control side).
    pub fn merge(&mut self, o: &WorkerStats) {
        self.rx_packets += o.rx_packets;
        self.tx_packets += o.tx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_bytes += o.tx_bytes;
        self.consumed += o.consumed;
        self.originated_packets += o.originated_packets;
        self.originated_bytes += o.originated_bytes;
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        for (a, b) in self.events.iter_mut().zip(o.events.iter()) {
            *a += b;
        }
        if self.vips.len() < o.vips.len() {
            self.vips.resize(o.vips.len(), FlowCounters::default());
        }
        for (a, b) in self.vips.iter_mut().zip(o.vips.iter()) {
            a.add(b);
        }
        if self.backends.len() < o.backends.len() {
            self.backends
                .resize(o.backends.len(), FlowCounters::default());
        }
        for (a, b) in self.backends.iter_mut().zip(o.backends.iter()) {
            a.add(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_tables_are_complete() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }
}
