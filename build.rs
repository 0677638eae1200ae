//! Build metadata for the `rampart` binary: the git revision it was built
//! from, shown by `rampart --version`. DPDK bindings live in their own crate;
//! with the `dpdk` feature, a DPDK installed outside the loader's path (a
//! source build under a prefix) is found at run time through an rpath to the
//! library directories that crate reports.
use std::process::Command;

fn main() {
    let rev = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=RAMPART_GIT_REV={rev}");
    // `links = "dpdk"` in dpdk-bindings exports its pkg-config library
    // directories (empty for Debian's packages, which the loader finds).
    if let Ok(dirs) = std::env::var("DEP_DPDK_LIBDIRS") {
        for d in dirs.split(':').filter(|d| !d.is_empty()) {
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{d}");
            println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{d}");
        }
    }
    println!("cargo:rerun-if-env-changed=DEP_DPDK_LIBDIRS");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=build.rs");
}
