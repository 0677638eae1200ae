//! Packet-buffer pools (`rte_pktmbuf_pool_create`).
//!
//! A `Mempool` is a clonable handle; ports whose rx queues draw from a pool
//! keep a clone. When the last handle drops, the pool is freed if none of its
//! mbufs is out; otherwise it stays until EAL cleanup (which is then skipped
//! while mbufs are out, see [`crate::Eal`]), so an outstanding [`Mbuf`] never
//! points into freed memory.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::eal::Eal;
use crate::error::Error;
use crate::mbuf::{Mbuf, MbufBatch};
use crate::sys;

/// A pool of packet mbufs.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    raw: NonNull<sys::rte_mempool>,
    eal: Eal,
}

// SAFETY: pktmbuf pools use DPDK's default multi-producer/multi-consumer
// ring ops, so get and put are safe from any thread; the pointer is only
// freed by the last handle.
unsafe impl Send for PoolInner {}
// SAFETY: as above; every method takes &self and DPDK synchronises.
unsafe impl Sync for PoolInner {}

impl Mempool {
    /// Creates a pool of `n_mbufs` mbufs with `data_room` bytes of buffer each
    /// (including `RTE_PKTMBUF_HEADROOM`; `RTE_MBUF_DEFAULT_BUF_SIZE` = 2176
    /// fits a 1518-byte frame), a per-lcore cache of `cache` mbufs (at most
    /// 512) on NUMA `socket` ([`crate::SOCKET_ANY`] for any). `name` must be
    /// unique in the process.
    pub fn new(
        eal: &Eal,
        name: &str,
        n_mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool, Error> {
        let cname = CString::new(name).map_err(|_| {
            Error::with_text(
                "rte_pktmbuf_pool_create",
                libc::EINVAL,
                "pool name contains a NUL byte",
            )
        })?;
        // SAFETY: EAL is initialised (we hold an Eal); cname is a valid C
        // string for the duration of the call (DPDK copies the name).
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(cname.as_ptr(), n_mbufs, cache, 0, data_room, socket)
        };
        let raw =
            NonNull::new(raw).ok_or_else(|| Error::from_rte_errno("rte_pktmbuf_pool_create"))?;
        eal.registry().pools.push(raw.as_ptr() as usize);
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                raw,
                eal: eal.clone(),
            }),
        })
    }

    /// Takes one mbuf from the pool (reset: empty, headroom reserved).
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is live (we hold it) and MT-safe.
        let m = unsafe { sys::rte_pktmbuf_alloc(self.inner.raw.as_ptr()) };
        // SAFETY: a non-null result is a fresh mbuf we now own alone.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Fills `batch` up to `n` more mbufs, all or nothing. Returns false (and
    /// leaves `batch` unchanged) if the pool has fewer free, or `n` exceeds the
    /// batch's free space.
    pub fn alloc_bulk(&self, batch: &mut MbufBatch, n: usize) -> bool {
        if n > batch.free_space() {
            return false;
        }
        let Ok(count) = u32::try_from(n) else {
            return false;
        };
        // SAFETY: the spare slots of `batch` have room for n pointers (checked
        // above); on success DPDK writes n fresh mbufs there, which set_len
        // then hands to the batch; on failure it writes nothing we keep.
        unsafe {
            let spare = batch.spare_ptr();
            if sys::rte_pktmbuf_alloc_bulk(self.inner.raw.as_ptr(), spare, count) != 0 {
                return false;
            }
            batch.set_len(batch.len() + n);
        }
        true
    }

    /// Mbufs free in the pool, per-lcore caches included.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is live.
        unsafe { sys::rte_mempool_avail_count(self.inner.raw.as_ptr()) }
    }

    /// Mbufs currently allocated from the pool.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is live.
        unsafe { sys::rte_mempool_in_use_count(self.inner.raw.as_ptr()) }
    }

    /// The pool's name.
    pub fn name(&self) -> String {
        // SAFETY: the pool is live; its name is a NUL-terminated array inside
        // the pool header.
        unsafe {
            CStr::from_ptr((*self.inner.raw.as_ptr()).name.as_ptr())
                .to_string_lossy()
                .into_owned()
        }
    }

    /// The raw pool, for calls this layer does not wrap. Valid while `self`
    /// (or a clone) lives.
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.raw.as_ptr()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let mp = self.raw.as_ptr();
        // SAFETY: the pool is live; this is its last handle, so nothing of
        // ours can allocate from it concurrently (ports keep their own clone).
        let in_use = unsafe { sys::rte_mempool_in_use_count(mp) };
        if in_use != 0 {
            // Mbufs are out: keep the pool (and its registry entry) so they
            // stay valid; EAL shutdown sees it and skips cleanup.
            return;
        }
        self.eal.registry().pools.retain(|&p| p != mp as usize);
        // SAFETY: no mbuf of the pool is out and no handle remains.
        unsafe { sys::rte_mempool_free(mp) };
    }
}
