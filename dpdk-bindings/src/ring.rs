//! Lock-free rings of mbufs (`rte_ring`), for handing packets between
//! workers (software steering to the worker that owns a flow).
//!
//! A single-producer (or single-consumer) ring must have at most one thread
//! enqueueing (dequeueing) at a time. The layer makes that a property of the
//! handles: [`Ring::producer`] / [`Ring::consumer`] hand out one handle per
//! single side, any number per multi side; handles are `Send`, not `Sync`,
//! and work through `&mut self`. Mbufs left in the ring when the last handle
//! drops are freed.

use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::eal::Eal;
use crate::error::Error;
use crate::mbuf::{Mbuf, MbufBatch, BATCH_CAPACITY};
use crate::sys;

/// How many threads may use one side of a ring at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// One handle, one thread (cheapest: no atomic compare-and-swap).
    Single,
    /// Any number of handles on any threads.
    Multi,
}

/// A ring of mbufs. Clones share the ring.
#[derive(Clone)]
pub struct Ring {
    inner: Arc<RingInner>,
}

struct RingInner {
    raw: NonNull<sys::rte_ring>,
    producers: Access,
    consumers: Access,
    producer_out: AtomicBool,
    consumer_out: AtomicBool,
    _eal: Eal,
}

// SAFETY: the ring's own synchronisation covers multi sides; single sides are
// guarded by handing out one handle (producer_out / consumer_out). Reading
// counts is safe from any thread.
unsafe impl Send for RingInner {}
// SAFETY: as above.
unsafe impl Sync for RingInner {}

impl Ring {
    /// Creates a ring that holds up to `capacity` mbufs (any count: the ring
    /// is made with RING_F_EXACT_SZ) on NUMA `socket`. `name` must be unique.
    pub fn new(
        eal: &Eal,
        name: &str,
        capacity: u32,
        socket: i32,
        producers: Access,
        consumers: Access,
    ) -> Result<Ring, Error> {
        let cname = CString::new(name).map_err(|_| {
            Error::with_text(
                "rte_ring_create",
                libc::EINVAL,
                "ring name contains a NUL byte",
            )
        })?;
        let mut flags = sys::RING_F_EXACT_SZ;
        if producers == Access::Single {
            flags |= sys::RING_F_SP_ENQ;
        }
        if consumers == Access::Single {
            flags |= sys::RING_F_SC_DEQ;
        }
        // SAFETY: EAL is initialised; cname is valid for the call (copied).
        let raw = unsafe { sys::rte_ring_create(cname.as_ptr(), capacity, socket, flags) };
        let raw = NonNull::new(raw).ok_or_else(|| Error::from_rte_errno("rte_ring_create"))?;
        Ok(Ring {
            inner: Arc::new(RingInner {
                raw,
                producers,
                consumers,
                producer_out: AtomicBool::new(false),
                consumer_out: AtomicBool::new(false),
                _eal: eal.clone(),
            }),
        })
    }

    /// A handle for enqueueing; EBUSY if the producer side is single and its
    /// handle is out.
    pub fn producer(&self) -> Result<RingProducer, Error> {
        if self.inner.producers == Access::Single
            && self.inner.producer_out.swap(true, Ordering::AcqRel)
        {
            return Err(Error::with_text(
                "Ring::producer",
                libc::EBUSY,
                "single-producer ring already has its producer",
            ));
        }
        Ok(RingProducer {
            ring: Arc::clone(&self.inner),
            _not_sync: PhantomData,
        })
    }

    /// A handle for dequeueing; EBUSY if the consumer side is single and its
    /// handle is out.
    pub fn consumer(&self) -> Result<RingConsumer, Error> {
        if self.inner.consumers == Access::Single
            && self.inner.consumer_out.swap(true, Ordering::AcqRel)
        {
            return Err(Error::with_text(
                "Ring::consumer",
                libc::EBUSY,
                "single-consumer ring already has its consumer",
            ));
        }
        Ok(RingConsumer {
            ring: Arc::clone(&self.inner),
            _not_sync: PhantomData,
        })
    }

    /// Mbufs in the ring now.
    pub fn len(&self) -> usize {
        // SAFETY: the ring is live; reading its indices is always allowed.
        unsafe { sys::rte_ring_count(self.inner.raw.as_ptr()) as usize }
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many mbufs the ring can hold.
    pub fn capacity(&self) -> usize {
        // SAFETY: the ring is live.
        unsafe { sys::rte_ring_get_capacity(self.inner.raw.as_ptr()) as usize }
    }
}

impl Drop for RingInner {
    fn drop(&mut self) {
        let r = self.raw.as_ptr();
        let mut batch = MbufBatch::new();
        loop {
            // SAFETY: last handle, so no other thread uses the ring; it only
            // ever holds owned mbufs put there by RingProducer, which the
            // batch adopts (and frees on clear).
            let n = unsafe {
                let n = sys::rte_ring_dequeue_burst(
                    r,
                    batch.raw_ptr().cast::<*mut c_void>(),
                    BATCH_CAPACITY as u32,
                    std::ptr::null_mut(),
                );
                batch.set_len(n as usize);
                n
            };
            batch.clear();
            if n == 0 {
                break;
            }
        }
        // SAFETY: the ring is empty and unused; freed once.
        unsafe { sys::rte_ring_free(r) };
    }
}

/// Enqueueing handle. `Send`, not `Sync`.
pub struct RingProducer {
    ring: Arc<RingInner>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl RingProducer {
    /// Enqueues as many mbufs from the front of `batch` as fit; they leave the
    /// batch, the rest stay at its front. Returns how many were enqueued.
    #[inline]
    pub fn enqueue_burst(&mut self, batch: &mut MbufBatch) -> usize {
        let len = batch.len();
        if len == 0 {
            return 0;
        }
        // SAFETY: the producer side is ours (one handle for a single side,
        // MP-safe otherwise); the first `len` slots are owned mbufs, the ring
        // takes the first n returned, consume_front forgets exactly those.
        let n = unsafe {
            sys::rte_ring_enqueue_burst(
                self.ring.raw.as_ptr(),
                batch.raw_ptr().cast::<*mut c_void>().cast_const(),
                len as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        batch.consume_front(n);
        n
    }

    /// Enqueues one mbuf, or hands it back if the ring is full.
    #[inline]
    pub fn enqueue(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        let p = m.into_raw();
        let obj = [p.as_ptr().cast::<c_void>()];
        // SAFETY: as in enqueue_burst, for one pointer we own.
        let n = unsafe {
            sys::rte_ring_enqueue_burst(
                self.ring.raw.as_ptr(),
                obj.as_ptr(),
                1,
                std::ptr::null_mut(),
            )
        };
        if n == 1 {
            Ok(())
        } else {
            // SAFETY: the ring refused it, so `p` is still ours alone.
            Err(unsafe { Mbuf::from_raw(p) })
        }
    }
}

impl Drop for RingProducer {
    fn drop(&mut self) {
        if self.ring.producers == Access::Single {
            self.ring.producer_out.store(false, Ordering::Release);
        }
    }
}

/// Dequeueing handle. `Send`, not `Sync`.
pub struct RingConsumer {
    ring: Arc<RingInner>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl RingConsumer {
    /// Dequeues up to the batch's free space, appending to `batch`; returns
    /// how many.
    #[inline]
    pub fn dequeue_burst(&mut self, batch: &mut MbufBatch) -> usize {
        let room = batch.free_space();
        if room == 0 {
            return 0;
        }
        // SAFETY: the consumer side is ours; the ring holds owned mbufs only,
        // written into the batch's spare slots and adopted by set_len.
        unsafe {
            let n = sys::rte_ring_dequeue_burst(
                self.ring.raw.as_ptr(),
                batch.spare_ptr().cast::<*mut c_void>(),
                room as u32,
                std::ptr::null_mut(),
            ) as usize;
            batch.set_len(batch.len() + n);
            n
        }
    }

    /// Like [`RingConsumer::dequeue_burst`], but takes at most `max`.
    #[inline]
    pub fn dequeue_burst_max(&mut self, batch: &mut MbufBatch, max: usize) -> usize {
        let room = batch.free_space().min(max);
        if room == 0 {
            return 0;
        }
        // SAFETY: as in dequeue_burst; `room` is at most the batch's free
        // space, and set_len adopts exactly the n mbufs written.
        unsafe {
            let n = sys::rte_ring_dequeue_burst(
                self.ring.raw.as_ptr(),
                batch.spare_ptr().cast::<*mut c_void>(),
                room as u32,
                std::ptr::null_mut(),
            ) as usize;
            batch.set_len(batch.len() + n);
            n
        }
    }

    /// Dequeues one mbuf.
    #[inline]
    pub fn dequeue(&mut self) -> Option<Mbuf> {
        let mut obj: *mut c_void = std::ptr::null_mut();
        // SAFETY: as in dequeue_burst, for one slot.
        let n = unsafe {
            sys::rte_ring_dequeue_burst(self.ring.raw.as_ptr(), &mut obj, 1, std::ptr::null_mut())
        };
        if n != 1 {
            return None;
        }
        // SAFETY: the ring held an owned, non-null mbuf; it is now ours.
        NonNull::new(obj.cast::<sys::rte_mbuf>()).map(|p| unsafe { Mbuf::from_raw(p) })
    }
}

impl Drop for RingConsumer {
    fn drop(&mut self) {
        if self.ring.consumers == Access::Single {
            self.ring.consumer_out.store(false, Ordering::Release);
        }
    }
}
