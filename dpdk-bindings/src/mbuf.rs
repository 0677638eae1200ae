//! Owned packet buffers and fixed-size batches of them.
//!
//! An [`Mbuf`] owns one packet (the head of an mbuf chain, reference count
//! one as far as this layer is concerned) and frees it on drop. Its layout is
//! exactly a non-null `*mut rte_mbuf`, so an [`MbufBatch`] is an array that
//! `rte_eth_rx_burst`, `rte_eth_tx_burst` and the ring functions read and
//! write directly.
//!
//! Ownership rule of every burst that sends (tx, ring enqueue): it takes the
//! mbufs it accepted from the front of the batch and leaves exactly the
//! unsent ones, in order, at the front. Retrying is calling it again;
//! giving up is [`MbufBatch::clear`], which frees them and says how many.

use std::mem::MaybeUninit;
use std::ptr::{self, NonNull};
use std::slice;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::sys;

/// DPDK's name of the Rx timestamp dynamic field (`RTE_MBUF_DYNFIELD_TIMESTAMP_NAME`).
const TIMESTAMP_FIELD: &std::ffi::CStr = c"rte_dynfield_timestamp";
/// DPDK's name of the flag that says an mbuf carries one (`RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME`).
const TIMESTAMP_FLAG: &std::ffi::CStr = c"rte_dynflag_rx_timestamp";

/// Byte offset of the Rx timestamp field inside `struct rte_mbuf`, once a
/// driver registered it (see [`lookup_rx_timestamp`]).
static TS_OFFSET: AtomicUsize = AtomicUsize::new(0);
/// `ol_flags` bit of the Rx timestamp; 0 = no field registered. Stored after
/// `TS_OFFSET` with Release, so a thread that sees the flag sees the offset.
static TS_FLAG: AtomicU64 = AtomicU64::new(0);

/// Looks up the Rx timestamp dynamic field and flag (`rte_mbuf_timestamp_t`,
/// a u64 whose unit is the driver's: net_pcap writes the capture time in
/// microseconds). Drivers register them at probe (net_pcap) or when the
/// timestamp offload is configured, so call this after EAL init and again
/// after configuring ports; [`crate::Eal::init`] calls it once. Returns
/// whether the field exists.
pub fn lookup_rx_timestamp(_eal: &crate::Eal) -> bool {
    let mut params = sys::rte_mbuf_dynfield::default();
    // SAFETY: EAL is initialised (an Eal exists); the name is a valid C
    // string and params a valid out-pointer for the call.
    let off = unsafe { sys::rte_mbuf_dynfield_lookup(TIMESTAMP_FIELD.as_ptr(), &mut params) };
    // SAFETY: as above; no out-pointer.
    let bit = unsafe { sys::rte_mbuf_dynflag_lookup(TIMESTAMP_FLAG.as_ptr(), ptr::null_mut()) };
    let (Ok(off), Ok(bit)) = (usize::try_from(off), u32::try_from(bit)) else {
        return false;
    };
    // The field must be a u64 inside the mbuf: what every read below relies on.
    if params.size != 8 || off + 8 > std::mem::size_of::<sys::rte_mbuf>() || bit >= 64 {
        return false;
    }
    TS_OFFSET.store(off, Ordering::Relaxed);
    TS_FLAG.store(1u64 << bit, Ordering::Release);
    true
}

/// One packet in DPDK memory, owned.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<sys::rte_mbuf>,
}

// SAFETY: an Mbuf is the only reference to its packet; DPDK allows an mbuf to
// be used and freed from any thread (pool put is MT-safe).
unsafe impl Send for Mbuf {}
// SAFETY: &Mbuf only reads the packet.
unsafe impl Sync for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid packet mbuf (head of its chain) from a pool that
    /// outlives the returned value (e.g. one made through [`crate::Mempool`]),
    /// with no other owner: nothing else may free it or access it while the
    /// `Mbuf` lives, and its reference count must be 1.
    #[inline]
    pub unsafe fn from_raw(raw: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    /// Gives up ownership without freeing; [`Mbuf::from_raw`] takes it back.
    #[inline]
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    /// The raw mbuf, still owned by `self`.
    #[inline]
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.raw.as_ptr()
    }

    #[inline]
    fn head(&self) -> &sys::rte_mbuf {
        // SAFETY: `raw` is a valid mbuf owned by self (type invariant).
        unsafe { self.raw.as_ref() }
    }

    /// The bytes of the first segment (the whole packet when
    /// [`Mbuf::is_contiguous`]).
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.head();
        // SAFETY: DPDK keeps data_off + data_len within the segment buffer at
        // buf_addr; the bytes are ours while &self lives.
        unsafe {
            let p = m.buf_addr.cast::<u8>().add(usize::from(m.data_off));
            slice::from_raw_parts(p, usize::from(m.data_len))
        }
    }

    /// The bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw.as_ptr();
        // SAFETY: as in `data`; &mut self makes the access exclusive, and an
        // Mbuf is the packet's only owner (refcnt 1), so nothing aliases it.
        unsafe {
            let p = (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off));
            slice::from_raw_parts_mut(p, usize::from((*m).data_len))
        }
    }

    /// Packet length over all segments (`pkt_len`).
    #[inline]
    pub fn len(&self) -> usize {
        self.head().pkt_len as usize
    }

    /// Whether the packet has no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head().pkt_len == 0
    }

    /// Number of segments in the chain.
    #[inline]
    pub fn segments(&self) -> u16 {
        self.head().nb_segs
    }

    /// Whether the whole packet is in the first segment, i.e. [`Mbuf::data`]
    /// is all of it.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.head().nb_segs == 1
    }

    /// Free bytes in front of the data (first segment).
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.head().data_off)
    }

    /// Free bytes after the data, in the last segment.
    pub fn tailroom(&self) -> usize {
        // SAFETY: valid mbuf; rte_pktmbuf_tailroom reads the last segment only
        // after rte_pktmbuf_lastseg, which walks a well-formed chain.
        unsafe {
            let last = sys::rte_pktmbuf_lastseg(self.raw.as_ptr());
            usize::from(sys::rte_pktmbuf_tailroom(last))
        }
    }

    /// The port the packet arrived on.
    #[inline]
    pub fn port(&self) -> u16 {
        self.head().port
    }

    /// The NIC's RSS hash, when the driver set one.
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.head();
        if m.ol_flags & u64::from(sys::RTE_MBUF_F_RX_RSS_HASH) == 0 {
            return None;
        }
        // SAFETY: with RTE_MBUF_F_RX_RSS_HASH set, the hash union holds `rss`;
        // every variant is plain integers, so any bit pattern is valid.
        Some(unsafe { m.__bindgen_anon_2.hash.rss })
    }

    /// The Rx timestamp the driver stored, in the driver's unit, if it stored
    /// one (its flag is set) and the field was found by
    /// [`lookup_rx_timestamp`].
    #[inline]
    pub fn rx_timestamp(&self) -> Option<u64> {
        let flag = TS_FLAG.load(Ordering::Acquire);
        if flag == 0 || self.head().ol_flags & flag == 0 {
            return None;
        }
        let off = TS_OFFSET.load(Ordering::Relaxed);
        // SAFETY: a non-zero flag means lookup_rx_timestamp found a u64
        // field at `off` with off + 8 within struct rte_mbuf (checked there),
        // and the mbuf is valid and ours; the read is unaligned-safe.
        Some(unsafe { ptr::read_unaligned(self.raw.as_ptr().cast::<u8>().add(off).cast::<u64>()) })
    }

    /// Stores `ts` as the Rx timestamp and sets its flag (a backend that
    /// converts a driver's unit to nanoseconds). Returns false, changing
    /// nothing, if no driver registered the field.
    #[inline]
    pub fn set_rx_timestamp(&mut self, ts: u64) -> bool {
        let flag = TS_FLAG.load(Ordering::Acquire);
        if flag == 0 {
            return false;
        }
        let off = TS_OFFSET.load(Ordering::Relaxed);
        let m = self.raw.as_ptr();
        // SAFETY: as in rx_timestamp; &mut self makes the write exclusive.
        unsafe {
            ptr::write_unaligned(m.cast::<u8>().add(off).cast::<u64>(), ts);
            (*m).ol_flags |= flag;
        }
        true
    }

    /// Shortens the packet to `len` bytes, freeing segments past the cut.
    /// Does nothing if the packet is not longer than `len`.
    pub fn truncate(&mut self, len: usize) {
        let head = self.raw.as_ptr();
        // SAFETY: we own the whole chain; the walk follows `next` links of a
        // well-formed chain whose data_len sum is pkt_len, and stops at the
        // segment holding byte `len`, so `seg` is never null when read. The
        // cut-off tail is a chain we own and free exactly once.
        unsafe {
            if len >= (*head).pkt_len as usize {
                return;
            }
            let mut seg = head;
            let mut left = len;
            let mut segs: u16 = 1;
            loop {
                let dl = usize::from((*seg).data_len);
                if left <= dl || (*seg).next.is_null() {
                    // min(): a chain shorter than pkt_len claims is cut at its end.
                    (*seg).data_len = left.min(dl) as u16;
                    let rest = (*seg).next;
                    (*seg).next = ptr::null_mut();
                    if !rest.is_null() {
                        sys::rte_pktmbuf_free(rest);
                    }
                    break;
                }
                left -= dl;
                seg = (*seg).next;
                segs += 1;
            }
            (*head).pkt_len = len as u32;
            (*head).nb_segs = segs;
        }
    }

    /// Extends the packet by `len` bytes at the end of the last segment and
    /// returns them (uninitialised packet memory, whatever the buffer held),
    /// or `None` if the tailroom is too small.
    pub fn append(&mut self, len: usize) -> Option<&mut [u8]> {
        let n = u16::try_from(len).ok()?;
        // SAFETY: we own the mbuf; rte_pktmbuf_append checks the tailroom and
        // returns NULL without changing anything when it is too small.
        unsafe {
            let p = sys::rte_pktmbuf_append(self.raw.as_ptr(), n);
            if p.is_null() {
                return None;
            }
            Some(slice::from_raw_parts_mut(p.cast::<u8>(), len))
        }
    }

    /// Extends the packet by `len` bytes in front (into the headroom) and
    /// returns them, or `None` if the headroom is too small.
    pub fn prepend(&mut self, len: usize) -> Option<&mut [u8]> {
        let n = u16::try_from(len).ok()?;
        // SAFETY: we own the mbuf; rte_pktmbuf_prepend checks the headroom and
        // returns NULL without changing anything when it is too small.
        unsafe {
            let p = sys::rte_pktmbuf_prepend(self.raw.as_ptr(), n);
            if p.is_null() {
                return None;
            }
            Some(slice::from_raw_parts_mut(p.cast::<u8>(), len))
        }
    }

    /// Removes `len` bytes from the front of the first segment (e.g. a
    /// tunnel header). Returns false, changing nothing, if it is shorter.
    pub fn adj(&mut self, len: usize) -> bool {
        let Ok(n) = u16::try_from(len) else {
            return false;
        };
        // SAFETY: we own the mbuf; rte_pktmbuf_adj checks data_len and returns
        // NULL without changing anything when it is too short.
        unsafe { !sys::rte_pktmbuf_adj(self.raw.as_ptr(), n).is_null() }
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the chain and never use it again.
        unsafe { sys::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("segments", &self.segments())
            .field("port", &self.port())
            .finish()
    }
}

/// Capacity of an [`MbufBatch`].
pub const BATCH_CAPACITY: usize = 64;

/// Up to [`BATCH_CAPACITY`] owned mbufs, in order. Dropping the batch frees
/// what it holds.
pub struct MbufBatch {
    len: usize,
    slots: [MaybeUninit<Mbuf>; BATCH_CAPACITY],
}

impl MbufBatch {
    /// An empty batch.
    pub const fn new() -> MbufBatch {
        MbufBatch {
            len: 0,
            slots: [const { MaybeUninit::uninit() }; BATCH_CAPACITY],
        }
    }

    /// Number of mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the batch is at capacity.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BATCH_CAPACITY
    }

    /// Room left.
    #[inline]
    pub fn free_space(&self) -> usize {
        BATCH_CAPACITY - self.len
    }

    /// The mbufs held.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots[..len] are initialised (type invariant).
        unsafe { slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// The mbufs held, mutable (to edit packets in place).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: slots[..len] are initialised (type invariant).
        unsafe { slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Iterates over the mbufs held.
    pub fn iter(&self) -> slice::Iter<'_, Mbuf> {
        self.as_slice().iter()
    }

    /// Iterates mutably over the mbufs held.
    pub fn iter_mut(&mut self) -> slice::IterMut<'_, Mbuf> {
        self.as_mut_slice().iter_mut()
    }

    /// Appends `m`, or hands it back when the batch is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BATCH_CAPACITY {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside the live
        // range, so it is read exactly once.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// Moves every mbuf out, front to back; the batch is empty afterwards
    /// (mbufs the iterator did not yield are freed when it drops).
    pub fn drain(&mut self) -> Drain<'_> {
        let end = self.len;
        // Leak-safe: if the Drain is forgotten, the mbufs leak, never double-free.
        self.len = 0;
        Drain {
            batch: self,
            next: 0,
            end,
        }
    }

    /// Frees every mbuf held and returns how many that was.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        if n == 0 {
            return 0;
        }
        self.len = 0;
        // SAFETY: slots[..n] hold n owned mbufs, no longer counted as live, so
        // rte_pktmbuf_free_bulk frees each exactly once. n <= 64 fits u32.
        unsafe {
            sys::rte_pktmbuf_free_bulk(
                self.slots.as_mut_ptr().cast::<*mut sys::rte_mbuf>(),
                n as u32,
            )
        };
        n
    }

    /// Pointer to the first live slot, as DPDK's `struct rte_mbuf **`.
    #[inline]
    pub(crate) fn raw_ptr(&mut self) -> *mut *mut sys::rte_mbuf {
        self.slots.as_mut_ptr().cast::<*mut sys::rte_mbuf>()
    }

    /// Pointer to the first free slot.
    #[inline]
    pub(crate) fn spare_ptr(&mut self) -> *mut *mut sys::rte_mbuf {
        // SAFETY: len <= BATCH_CAPACITY, so the offset is within (or one past)
        // the array.
        unsafe { self.raw_ptr().add(self.len) }
    }

    /// Sets the number of live mbufs.
    ///
    /// # Safety
    /// `new_len <= BATCH_CAPACITY`, and slots `[old len, new_len)` must hold
    /// owned, valid mbufs (non-null) that nothing else owns.
    #[inline]
    pub(crate) unsafe fn set_len(&mut self, new_len: usize) {
        debug_assert!(new_len <= BATCH_CAPACITY);
        self.len = new_len;
    }

    /// Forgets the first `n` mbufs (their ownership passed to DPDK) and moves
    /// the rest to the front.
    #[inline]
    pub(crate) fn consume_front(&mut self, n: usize) {
        let n = n.min(self.len);
        let rest = self.len - n;
        if n > 0 && rest > 0 {
            // SAFETY: both ranges are inside the array; ptr::copy allows
            // overlap. The first n slots are given up, not dropped.
            unsafe { ptr::copy(self.slots.as_ptr().add(n), self.slots.as_mut_ptr(), rest) };
        }
        self.len = rest;
    }
}

impl Default for MbufBatch {
    fn default() -> Self {
        MbufBatch::new()
    }
}

impl Drop for MbufBatch {
    fn drop(&mut self) {
        self.clear();
    }
}

impl std::fmt::Debug for MbufBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbufBatch").field("len", &self.len).finish()
    }
}

/// Iterator from [`MbufBatch::drain`].
pub struct Drain<'a> {
    batch: &'a mut MbufBatch,
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        // SAFETY: slots[next..end] were live when the drain began and each is
        // read exactly once.
        Some(unsafe { self.batch.slots[i].assume_init_read() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Drain<'_> {}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}
