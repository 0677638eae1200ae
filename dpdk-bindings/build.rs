//! Finds DPDK through pkg-config (`libdpdk`), generates the raw bindings with
//! bindgen, compiles bindgen's wrappers for DPDK's `static inline` functions
//! together with `shim.c` (macros), and links the DPDK libraries dynamically.
//!
//! The compiler flags are the raw `pkg-config --cflags libdpdk` tokens, given
//! unchanged to both clang (bindgen) and the C compiler: they carry
//! `-include rte_config.h` and `-march=...`, without which the headers do not
//! describe the library that is installed.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

/// Oldest DPDK whose API these bindings are written against (LTS).
const MIN_DPDK: &str = "22.11";

/// Structs whose packed/aligned layout bindgen cannot reproduce; nothing here
/// needs their fields.
const OPAQUE: &[&str] = &[
    "rte_arp_ipv4",
    "rte_arp_hdr",
    "rte_l2tpv2_combined_msg_hdr",
    "rte_gtp_psc_generic_hdr",
];

const FUNCTIONS: &[&str] = &[
    "rte_eal_.*",
    "rte_eth_.*",
    "rte_pktmbuf_.*",
    "rte_mbuf_.*",
    "rte_mempool_.*",
    "rte_ring_.*",
    "rte_lcore_.*",
    "rte_get_main_lcore",
    "rte_get_next_lcore",
    "rte_socket_id",
    "rte_strerror",
    "rte_thread_register",
    "rte_thread_unregister",
    "rte_get_tsc_hz",
    "rte_get_tsc_cycles",
    "rte_rdtsc",
    "rte_rdtsc_precise",
    "rampart_.*",
];

const TYPES: &[&str] = &[
    "rte_eth_.*",
    "rte_mbuf",
    "rte_mempool",
    "rte_ring",
    "rte_lcore_.*",
    "rte_ether_addr",
    "lcore_function_t",
];

const VARS: &[&str] = &[
    "RTE_ETH_.*",
    "RTE_MBUF_.*",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_MAX_LCORE",
    "RTE_MAX_ETHPORTS",
    "RTE_ETHDEV_QUEUE_STAT_CNTRS",
    "RTE_ETHER_ADDR_LEN",
    "RTE_MEMPOOL_CACHE_MAX_SIZE",
    "RING_F_.*",
    "LCORE_ID_ANY",
    "SOCKET_ID_ANY",
    "E_RTE_.*",
];

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wrapper = manifest.join("wrapper.h");
    let shim = manifest.join("shim.c");

    for f in ["build.rs", "wrapper.h", "shim.c"] {
        println!("cargo:rerun-if-changed={}", manifest.join(f).display());
    }
    for v in [
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "PKG_CONFIG_SYSROOT_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }

    let dpdk = Dpdk::probe();
    println!("cargo:rustc-env=RAMPART_DPDK_VERSION={}", dpdk.version);
    // For dependents (`links = "dpdk"`): DEP_DPDK_VERSION.
    println!("cargo:version={}", dpdk.version);

    generate_bindings(&wrapper, &out, &dpdk.cflags);
    compile_c(&manifest, &shim, &out, &dpdk.cflags);
    emit_link(&dpdk.libs);
}

/// What pkg-config says about `libdpdk`.
struct Dpdk {
    version: String,
    cflags: Vec<String>,
    libs: Vec<String>,
}

impl Dpdk {
    fn probe() -> Dpdk {
        let version = match pkg_config(&["--modversion", "libdpdk"]) {
            Some(v) => v.trim().to_string(),
            None => fail(
                "DPDK not found: pkg-config has no `libdpdk`. Run `sudo scripts/setup-dpdk.sh` \
                 (Debian packages), or for a DPDK built from source set \
                 PKG_CONFIG_PATH=<prefix>/lib/x86_64-linux-gnu/pkgconfig",
            ),
        };
        if pkg_config(&[&format!("--atleast-version={MIN_DPDK}"), "libdpdk"]).is_none() {
            fail(&format!(
                "DPDK {version} is too old: rampart's bindings need DPDK >= {MIN_DPDK}. \
                 Run `sudo scripts/setup-dpdk.sh` or point PKG_CONFIG_PATH at a newer build"
            ));
        }
        let cflags = pkg_config(&["--cflags", "libdpdk"]).unwrap_or_default();
        let libs = pkg_config(&["--libs", "libdpdk"]).unwrap_or_default();
        Dpdk {
            version,
            cflags: cflags.split_whitespace().map(str::to_owned).collect(),
            libs: libs.split_whitespace().map(str::to_owned).collect(),
        }
    }
}

/// Runs pkg-config (or `$PKG_CONFIG`); `None` when it fails or is missing.
fn pkg_config(args: &[&str]) -> Option<String> {
    let bin = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let output = Command::new(bin).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

/// One clear error line, then stop the build.
fn fail(msg: &str) -> ! {
    println!("cargo::error={msg}");
    exit(1);
}

fn generate_bindings(wrapper: &Path, out: &Path, cflags: &[String]) {
    let mut builder = bindgen::Builder::default()
        .header(wrapper.to_string_lossy())
        .clang_args(cflags)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .wrap_static_fns(true)
        .wrap_static_fns_path(out.join("static_fns"))
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        .impl_debug(false)
        .generate_comments(false)
        .layout_tests(true)
        .merge_extern_blocks(true)
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(out);
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    for t in OPAQUE {
        builder = builder.opaque_type(t);
    }
    // bindgen panics when it cannot load libclang; turn that into one line.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.generate()));
    std::panic::set_hook(default_hook);
    let bindings = match result {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => fail(&format!(
            "bindgen failed on DPDK headers ({}): {e}",
            wrapper.display()
        )),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            fail(&format!(
                "bindgen could not run ({}); install clang and libclang-dev with `sudo scripts/setup-dpdk.sh`",
                why.lines().next().unwrap_or(why)
            ))
        }
    };
    if let Err(e) = bindings.write_to_file(out.join("bindings.rs")) {
        fail(&format!("cannot write bindings.rs: {e}"));
    }
}

fn compile_c(manifest: &Path, shim: &Path, out: &Path, cflags: &[String]) {
    let mut build = cc::Build::new();
    build
        .file(out.join("static_fns.c"))
        .file(shim)
        .include(manifest)
        .opt_level(3)
        // DPDK's headers trip -Wextra in places we do not control.
        .warnings(false);
    for flag in cflags {
        build.flag(flag);
    }
    build.compile("rampart_dpdk_shim");
}

/// Turns `pkg-config --libs libdpdk` into cargo link directives. DPDK stays
/// dynamically linked: Debian's EAL (and any meson build) dlopens its PMDs
/// from RTE_EAL_PMD_PATH at init, and those PMDs need the shared librte_*.
fn emit_link(libs: &[String]) {
    let mut libdirs = Vec::new();
    for tok in libs {
        if let Some(dir) = tok.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
            // A DPDK installed under its own prefix is not on the loader's
            // path; record it so binaries and tests run without LD_LIBRARY_PATH.
            if !is_system_dir(dir) {
                println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
                libdirs.push(dir.to_string());
            }
        } else if let Some(name) = tok.strip_prefix("-l") {
            if let Some(file) = name.strip_prefix(':') {
                println!("cargo:rustc-link-arg=-l:{file}");
            } else {
                println!("cargo:rustc-link-lib=dylib={name}");
            }
        } else if tok.starts_with("-Wl,") || tok.starts_with("-pthread") {
            println!("cargo:rustc-link-arg={tok}");
        }
    }
    // rustc-link-arg reaches only this package's own tests and examples, not
    // the binaries of crates that depend on it: they read DEP_DPDK_LIBDIRS
    // (':'-separated, empty for a system install) and add the rpath themselves.
    println!("cargo:libdirs={}", libdirs.join(":"));
}

fn is_system_dir(dir: &str) -> bool {
    matches!(
        dir.trim_end_matches('/'),
        "/lib"
            | "/usr/lib"
            | "/lib64"
            | "/usr/lib64"
            | "/usr/lib/x86_64-linux-gnu"
            | "/lib/x86_64-linux-gnu"
    )
}
