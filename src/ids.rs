//! Typed numbers for the snapshot's registries.
//!
//! A VIP and a backend are each named by their position in a
//! [`crate::snapshot::Snapshot`] list: `snap.vips[vip]` and
//! `snap.backends[backend]`. Both numbers are stable across reloads (a
//! removed VIP stays retired, a removed backend stays marked removed), so a
//! connection entry keeps them for its whole life. As bare integers they sit
//! side by side in [`crate::conntrack::ConnEntry`], in the counters and in
//! the control API, where passing one for the other compiles and misroutes
//! silently; as types they cannot be swapped.
//!
//! Both are `#[repr(transparent)]` over the integer the entry stores, so the
//! entry keeps its size and the datapath its code. A third number is *not*
//! one of these: the scheduler slot, a backend's position in one VIP's
//! backend list ([`crate::snapshot::VipInfo::backends`] maps it to a
//! [`BackendId`]).

use std::fmt;

/// A VIP's number in the snapshot (`Snapshot::vips`).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VipId(u16);

impl VipId {
    #[inline]
    pub const fn new(n: u16) -> VipId {
        VipId(n)
    }

    /// The number as stored (and as the control API shows it).
    #[inline]
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The position in `Snapshot::vips` and in the per-VIP arrays that
    /// follow it (counters, schedulers).
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of position `i`, if it fits the entry's 16 bits.
    #[inline]
    pub fn from_index(i: usize) -> Option<VipId> {
        u16::try_from(i).ok().map(VipId)
    }
}

impl fmt::Display for VipId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A backend's number in the snapshot's backend registry
/// (`Snapshot::backends`), shared by every VIP that lists the backend.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendId(u32);

impl BackendId {
    #[inline]
    pub const fn new(n: u32) -> BackendId {
        BackendId(n)
    }

    /// The number as stored (and as the control API shows it).
    #[inline]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The position in `Snapshot::backends` and in the per-backend
    /// counters.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of position `i`, if it fits the entry's 32 bits.
    #[inline]
    pub fn from_index(i: usize) -> Option<BackendId> {
        u32::try_from(i).ok().map(BackendId)
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_as_small_as_their_numbers() {
        assert_eq!(std::mem::size_of::<VipId>(), 2);
        assert_eq!(std::mem::size_of::<BackendId>(), 4);
        assert_eq!(VipId::new(7).index(), 7);
        assert_eq!(BackendId::new(9).get(), 9);
        assert_eq!(VipId::from_index(65_536), None);
        assert_eq!(VipId::from_index(65_535), Some(VipId::new(u16::MAX)));
        assert_eq!(BackendId::from_index(3), Some(BackendId::new(3)));
        assert_eq!(BackendId::new(12).to_string(), "12");
    }
}
