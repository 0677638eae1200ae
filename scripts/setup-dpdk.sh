#!/usr/bin/env bash
# Install DPDK (Debian's 22.11 LTS packages) and the toolchain the
# dpdk-bindings crate needs (pkg-config, clang/libclang for bindgen, libpcap),
# then reserve 2 MiB hugepages. Idempotent: safe to run again; apt is touched
# only when a package is missing, hugepages are only ever raised.
#
# Run as root:  sudo scripts/setup-dpdk.sh
# Environment:  RAMPART_HUGEPAGES (default 256) = number of 2 MiB pages wanted.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(libdpdk-dev dpdk dpdk-dev pkg-config clang libclang-dev libpcap-dev)
WANT_PAGES="${RAMPART_HUGEPAGES:-256}"
HUGE_DIR=/dev/hugepages

log() { printf 'setup-dpdk: %s\n' "$*" >&2; }

if [[ "$(id -u)" -ne 0 ]]; then
    log "must run as root (apt-get install, /proc/sys/vm/nr_hugepages, mount)"
    exit 1
fi

# --- packages -----------------------------------------------------------
missing=()
for pkg in "${PACKAGES[@]}"; do
    # `dpkg-query -W -f '${Status}'` prints "install ok installed" when present.
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    log "installing: ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "packages already installed"
fi

if ! pkg-config --exists libdpdk; then
    log "pkg-config cannot find libdpdk after install; check PKG_CONFIG_PATH"
    exit 1
fi

# --- hugepages ----------------------------------------------------------
huge_ok=1
nr_file=/proc/sys/vm/nr_hugepages
current="$(cat "$nr_file" 2>/dev/null || echo 0)"
if ((current < WANT_PAGES)); then
    if ! echo "$WANT_PAGES" >"$nr_file" 2>/dev/null; then
        log "could not write $nr_file"
        huge_ok=0
    fi
fi

if ! mkdir -p "$HUGE_DIR" 2>/dev/null; then
    log "could not create $HUGE_DIR"
    huge_ok=0
elif ! mountpoint -q "$HUGE_DIR"; then
    if ! mount -t hugetlbfs nodev "$HUGE_DIR" 2>/dev/null; then
        log "could not mount hugetlbfs on $HUGE_DIR"
        huge_ok=0
    fi
fi

total="$(awk '/^HugePages_Total:/ {print $2}' /proc/meminfo)"
free="$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)"
total="${total:-0}"
free="${free:-0}"
if ((total == 0)); then
    huge_ok=0
elif ((total < WANT_PAGES)); then
    log "only $total of $WANT_PAGES hugepages could be reserved (memory fragmented?)"
fi
if ((huge_ok == 0)); then
    log "hugepages unavailable; DPDK still runs with EAL args: --no-huge -m 512 --no-shconf"
fi

printf 'DPDK %s (pkg-config libdpdk); hugepages 2MiB total=%s free=%s mounted=%s\n' \
    "$(pkg-config --modversion libdpdk)" "$total" "$free" \
    "$(mountpoint -q "$HUGE_DIR" && echo "$HUGE_DIR" || echo no)"
