//! The DPDK Environment Abstraction Layer: initialised once per process.
//!
//! `Eal` is a cheap, clonable handle. Every other handle of this crate keeps
//! one, so `rte_eal_cleanup` runs only after the last of them drops, and only
//! if no mbuf of a pool made through [`crate::Mempool`] is still out; if one
//! is, cleanup is skipped (the process keeps its DPDK memory until exit)
//! rather than leaving that mbuf pointing at unmapped memory.
//!
//! DPDK allows one `rte_eal_init` per process, even after `rte_eal_cleanup`
//! or a failed init; [`Eal::init`] refuses a second call.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Error;
use crate::sys;

/// Set by the first `Eal::init` of the process, never cleared.
static EAL_CLAIMED: AtomicBool = AtomicBool::new(false);

/// Handle on the initialised EAL. Clones share one environment.
#[derive(Clone)]
pub struct Eal {
    inner: Arc<EalInner>,
}

struct EalInner {
    /// Owns the strings `argv` points into; EAL may keep pointers to them.
    _args: Vec<CString>,
    _argv: Vec<*mut c_char>,
    registry: Mutex<Registry>,
}

/// Objects handed out through safe handles, checked at cleanup.
#[derive(Default)]
pub(crate) struct Registry {
    /// Mempools that still exist (freed ones are removed), as addresses.
    pub(crate) pools: Vec<usize>,
    /// Ports that have a live `Port` handle.
    pub(crate) ports: Vec<u16>,
}

// SAFETY: the raw pointers in `_argv` point into `_args`, which is never
// mutated after init; nothing else in EalInner is thread-bound.
unsafe impl Send for EalInner {}
// SAFETY: as above; shared access only reads, the registry is behind a Mutex.
unsafe impl Sync for EalInner {}

impl Eal {
    /// Runs `rte_eal_init` with `args` (EAL options, without a program name:
    /// `rampart` is used as argv[0]). Errors if EAL was already initialised
    /// (or tried) in this process, if an argument holds a NUL byte, or with
    /// `rte_errno` from DPDK.
    pub fn init(args: Vec<String>) -> Result<Eal, Error> {
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(CString::from(c"rampart"));
        for a in args {
            match CString::new(a) {
                Ok(c) => owned.push(c),
                Err(_) => {
                    return Err(Error::with_text(
                        "rte_eal_init",
                        libc::EINVAL,
                        "an EAL argument contains a NUL byte",
                    ))
                }
            }
        }
        if EAL_CLAIMED.swap(true, Ordering::SeqCst) {
            return Err(Error::with_text(
                "rte_eal_init",
                libc::EALREADY,
                "EAL was already initialised in this process (DPDK allows one init per process)",
            ));
        }
        let mut argv: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr().cast_mut()).collect();
        let argc = c_int::try_from(argv.len()).unwrap_or(c_int::MAX);
        // SAFETY: argv holds argc pointers to NUL-terminated strings owned by
        // `owned`, which outlives the EAL (kept in EalInner); rte_eal_init may
        // permute the pointer array (getopt), which is ours to permute. The
        // EAL_CLAIMED swap makes this the only call in the process.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(Error::from_rte_errno("rte_eal_init"));
        }
        let eal = Eal {
            inner: Arc::new(EalInner {
                _args: owned,
                _argv: argv,
                registry: Mutex::new(Registry::default()),
            }),
        };
        // Vdevs probed during init (net_pcap) have registered it by now.
        crate::mbuf::lookup_rx_timestamp(&eal);
        Ok(eal)
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Number of lcores EAL runs (`rte_lcore_count`).
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: EAL is initialised (self exists); reads its configuration.
        unsafe { sys::rte_lcore_count() }
    }

    /// The main lcore id (`rte_get_main_lcore`).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised; reads its configuration.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// Whether EAL runs on hugepages (false under `--no-huge`).
    pub fn has_hugepages(&self) -> bool {
        // SAFETY: EAL is initialised; reads its configuration.
        unsafe { sys::rte_eal_has_hugepages() != 0 }
    }
}

impl Drop for EalInner {
    fn drop(&mut self) {
        let registry = self.registry.get_mut().unwrap_or_else(|p| p.into_inner());
        for &pool in &registry.pools {
            let mp = pool as *const sys::rte_mempool;
            // SAFETY: registered pools are live until freed, and freeing
            // removes them from the registry; EAL is still initialised.
            let in_use = unsafe { sys::rte_mempool_in_use_count(mp) };
            if in_use != 0 {
                eprintln!(
                    "dpdk-bindings: {in_use} mbufs still out at EAL shutdown; skipping rte_eal_cleanup"
                );
                return;
            }
        }
        // SAFETY: this is the last handle, so no Port, Mempool, Ring or thread
        // registration of ours exists any more, and no mbuf is out (checked
        // above): nothing can touch DPDK memory after cleanup.
        unsafe {
            sys::rte_eal_cleanup();
        }
    }
}
