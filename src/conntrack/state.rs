//! Connection states and the transitions that packets cause.
//!
//! A simplified TCP state machine in the spirit of IPVS/DPVS `proto_tcp`:
//! the load balancer is a middlebox, so it follows both directions' flags
//! instead of running a TCP endpoint. Every state has its own timeout; an
//! entry's expiry is pushed forward on every packet by the timeout of the
//! state it is in after that packet.

use crate::flow::tcp_flags::{ACK, FIN, RST, SYN};

/// Which way a packet crosses the load balancer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client towards the VIP (and on to the backend).
    Forward,
    /// Backend's answer on its way back to the client.
    Reverse,
}

#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// The client's SYN went to the backend.
    SynSent = 0,
    /// The backend answered with SYN-ACK.
    SynRecv,
    Established,
    /// The client sent FIN first.
    FinWait,
    /// The backend sent FIN first.
    CloseWait,
    /// Both sides sent FIN.
    TimeWait,
    /// Reset seen: kept briefly so late packets still find their backend.
    Close,
    /// A UDP association (one state, one timeout).
    Udp,
}

impl ConnState {
    pub const COUNT: usize = ConnState::Udp as usize + 1;

    pub fn from_u8(v: u8) -> ConnState {
        match v {
            0 => ConnState::SynSent,
            1 => ConnState::SynRecv,
            2 => ConnState::Established,
            3 => ConnState::FinWait,
            4 => ConnState::CloseWait,
            5 => ConnState::TimeWait,
            6 => ConnState::Close,
            _ => ConnState::Udp,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConnState::SynSent => "syn_sent",
            ConnState::SynRecv => "syn_recv",
            ConnState::Established => "established",
            ConnState::FinWait => "fin_wait",
            ConnState::CloseWait => "close_wait",
            ConnState::TimeWait => "time_wait",
            ConnState::Close => "close",
            ConnState::Udp => "udp",
        }
    }

    /// States in which a fresh SYN from the client starts a new connection
    /// instead of continuing the old one (port reuse after close).
    pub fn is_closing(self) -> bool {
        matches!(self, ConnState::TimeWait | ConnState::Close)
    }

    /// The state for a connection's first packet.
    pub fn initial(is_tcp: bool, flags: u8) -> ConnState {
        if !is_tcp {
            ConnState::Udp
        } else if flags & SYN != 0 && flags & ACK == 0 {
            ConnState::SynSent
        } else {
            // Picked up mid-flow (after a restart, or a flow first seen by
            // another box behind the same ECMP group).
            ConnState::Established
        }
    }

    /// The state after a packet with TCP `flags` travelling in `dir`.
    /// Inlined into every caller: every tracked packet takes it.
    #[inline(always)]
    pub fn next(self, dir: Dir, flags: u8) -> ConnState {
        use ConnState::*;
        if self == Udp {
            return Udp;
        }
        if flags & RST != 0 {
            return Close;
        }
        match dir {
            Dir::Forward => {
                if flags & SYN != 0 {
                    return match self {
                        TimeWait | Close => SynSent,
                        s => s,
                    };
                }
                if flags & FIN != 0 {
                    return match self {
                        SynSent | SynRecv | Established => FinWait,
                        CloseWait | TimeWait => TimeWait,
                        s => s,
                    };
                }
                match self {
                    // DR never sees the backend's SYN-ACK: the client's ACK
                    // is the first sign that the handshake completed.
                    SynSent | SynRecv if flags & ACK != 0 => Established,
                    s => s,
                }
            }
            Dir::Reverse => {
                if flags & SYN != 0 && flags & ACK != 0 {
                    return match self {
                        SynSent => SynRecv,
                        s => s,
                    };
                }
                if flags & FIN != 0 {
                    return match self {
                        SynRecv | Established => CloseWait,
                        FinWait | TimeWait => TimeWait,
                        s => s,
                    };
                }
                self
            }
        }
    }
}

/// Per-state timeouts in seconds, indexed by state. Built from the config's
/// `[conntrack]` timeouts (whose defaults live in `config::Timeouts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateTimeouts(pub [u32; ConnState::COUNT]);

impl StateTimeouts {
    #[inline]
    pub fn get(&self, s: ConnState) -> u32 {
        self.0[s as usize]
    }

    /// The shortest of the timeouts, in seconds.
    #[inline]
    pub fn shortest(&self) -> u32 {
        self.0.iter().copied().min().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::ConnState::*;
    use super::Dir::*;
    use super::*;
    use crate::flow::tcp_flags::PSH;

    #[test]
    fn full_handshake_and_close_client_first() {
        let mut s = ConnState::initial(true, SYN);
        assert_eq!(s, SynSent);
        s = s.next(Reverse, SYN | ACK);
        assert_eq!(s, SynRecv);
        s = s.next(Forward, ACK);
        assert_eq!(s, Established);
        s = s.next(Forward, ACK | PSH);
        assert_eq!(s, Established);
        s = s.next(Forward, FIN | ACK);
        assert_eq!(s, FinWait);
        s = s.next(Reverse, ACK);
        assert_eq!(s, FinWait);
        s = s.next(Reverse, FIN | ACK);
        assert_eq!(s, TimeWait);
    }

    #[test]
    fn backend_closes_first() {
        let s = Established.next(Reverse, FIN | ACK);
        assert_eq!(s, CloseWait);
        assert_eq!(s.next(Forward, FIN | ACK), TimeWait);
    }

    #[test]
    fn dr_sees_only_the_client() {
        let s = ConnState::initial(true, SYN);
        assert_eq!(s.next(Forward, ACK), Established);
    }

    #[test]
    fn reset_closes_and_syn_reopens() {
        assert_eq!(Established.next(Reverse, RST), Close);
        assert_eq!(Established.next(Forward, RST | ACK), Close);
        assert_eq!(Close.next(Forward, SYN), SynSent);
        assert_eq!(TimeWait.next(Forward, SYN), SynSent);
        assert!(Close.is_closing());
    }

    #[test]
    fn midflow_and_udp() {
        assert_eq!(ConnState::initial(true, ACK), Established);
        assert_eq!(ConnState::initial(false, 0), Udp);
        assert_eq!(Udp.next(Reverse, RST), Udp);
    }

    #[test]
    fn state_codes_round_trip() {
        for v in 0..ConnState::COUNT as u8 {
            assert_eq!(ConnState::from_u8(v) as u8, v);
        }
    }
}
