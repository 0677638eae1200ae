//! lcore identity, thread registration and the TSC.
//!
//! A worker thread must be an EAL lcore for per-lcore mempool caches (and
//! `rte_lcore_id`) to work: either launched by EAL, or a plain thread that
//! registers itself with [`thread_register`] (`rte_thread_register`), which
//! needs EAL initialised and multi-process disabled (`--no-shconf` or
//! `--in-memory`).

use std::marker::PhantomData;

use crate::eal::Eal;
use crate::error::Error;
use crate::sys;

/// The calling thread's lcore id, or `None` for a thread EAL does not know.
#[inline]
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads a thread-local initialised to LCORE_ID_ANY; valid on any
    // thread, before or after EAL init.
    let id = unsafe { sys::rte_lcore_id() };
    (id != sys::LCORE_ID_ANY).then_some(id)
}

/// NUMA socket of the calling thread (`rte_socket_id`).
#[inline]
pub fn socket_id() -> u32 {
    // SAFETY: reads a thread-local; valid on any thread.
    unsafe { sys::rte_socket_id() }
}

/// TSC frequency in Hz (0 before EAL init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a global EAL sets at init.
    unsafe { sys::rte_get_tsc_hz() }
}

/// The time stamp counter.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: executes rdtsc; no memory access.
    unsafe { sys::rte_rdtsc() }
}

/// Makes the calling thread an lcore until the returned guard drops. A
/// thread that already is one (the main lcore, EAL workers) gets a guard that
/// does nothing.
pub fn thread_register(eal: &Eal) -> Result<ThreadRegistration, Error> {
    if let Some(id) = lcore_id() {
        return Ok(ThreadRegistration {
            _eal: eal.clone(),
            lcore: id,
            registered: false,
            _not_send: PhantomData,
        });
    }
    // SAFETY: EAL is initialised (we hold an Eal); registers the calling
    // thread only.
    let ret = unsafe { sys::rte_thread_register() };
    if ret != 0 {
        return Err(Error::from_rte_errno("rte_thread_register"));
    }
    let lcore = lcore_id().ok_or_else(|| Error::new("rte_thread_register", libc::ENOMEM))?;
    Ok(ThreadRegistration {
        _eal: eal.clone(),
        lcore,
        registered: true,
        _not_send: PhantomData,
    })
}

/// Registration of the current thread as an lcore; unregisters on drop. Not
/// `Send`: it belongs to the thread that registered.
pub struct ThreadRegistration {
    _eal: Eal,
    lcore: u32,
    registered: bool,
    _not_send: PhantomData<*const ()>,
}

impl ThreadRegistration {
    /// The lcore id this thread has.
    pub fn lcore_id(&self) -> u32 {
        self.lcore
    }
}

impl Drop for ThreadRegistration {
    fn drop(&mut self) {
        if self.registered {
            // SAFETY: we are on the registering thread (guard is !Send) and EAL
            // is still up (we hold an Eal); releases this thread's lcore.
            unsafe { sys::rte_thread_unregister() };
        }
    }
}

impl std::fmt::Debug for ThreadRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadRegistration")
            .field("lcore", &self.lcore)
            .finish()
    }
}
