//! One error type for the safe layer: the DPDK call that failed, its errno
//! (from `rte_errno` or a negative return value) and the text DPDK gives for
//! it (`rte_strerror`), captured when the error is made. Errors come only
//! from control-path calls; burst functions return counts.

use std::ffi::CStr;
use std::fmt;

use crate::sys;

/// A failed DPDK call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    op: &'static str,
    code: i32,
    text: String,
}

impl Error {
    /// An error with errno `code`, described by `rte_strerror`.
    pub(crate) fn new(op: &'static str, code: i32) -> Error {
        Error {
            op,
            code,
            text: strerror(code),
        }
    }

    /// An error with our own description (misuse caught before calling DPDK).
    pub(crate) fn with_text(op: &'static str, code: i32, text: impl Into<String>) -> Error {
        Error {
            op,
            code,
            text: text.into(),
        }
    }

    /// For calls that report failure through `rte_errno` (NULL or -1 returns).
    pub(crate) fn from_rte_errno(op: &'static str) -> Error {
        Error::new(op, rte_errno())
    }

    /// For ethdev-style calls that return `-errno`.
    pub(crate) fn from_ret(op: &'static str, ret: i32) -> Error {
        Error::new(op, ret.saturating_neg())
    }

    /// The DPDK function (or safe-layer operation) that failed.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// The errno value (a libc errno, or one of DPDK's `E_RTE_*`).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The description of the errno, as `rte_strerror` put it.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {} (errno {})", self.op, self.text, self.code)
    }
}

impl std::error::Error for Error {}

/// The calling thread's `rte_errno`.
pub(crate) fn rte_errno() -> i32 {
    // SAFETY: reads a thread-local int through the C shim; no preconditions.
    unsafe { sys::rampart_rte_errno() }
}

/// `rte_strerror(code)` copied into an owned string.
pub(crate) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror accepts any int and returns a NUL-terminated string
    // (a static or a per-thread buffer) that stays valid until the next call on
    // this thread; it is copied before anything else runs here.
    unsafe {
        let p = sys::rte_strerror(code);
        if p.is_null() {
            return format!("errno {code}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}
