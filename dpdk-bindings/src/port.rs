//! Ethernet ports (ethdev) and their queues.
//!
//! DPDK's rule: control calls (configure, queue setup, start, stop, close)
//! must not run while any thread polls the port, and one queue is polled by
//! one thread at a time. The layer enforces both:
//!
//! - [`Port`] is the only control handle of a port id in the process; its
//!   control calls take `&mut self` and fail with `EBUSY` while an
//!   [`RxQueue`] / [`TxQueue`] handle of the port exists.
//! - Queue handles are handed out once per queue ([`Port::rx_queue`],
//!   [`Port::tx_queue`]); they are `Send` but not `Sync`, and burst through
//!   `&mut self`. Dropping one makes its queue available again.
//!
//! A port configured through a `Port` is stopped and closed when the last of
//! the `Port` and its queue handles drops (a port only inspected is left
//! alone). Rx queues keep a clone of the [`Mempool`] they draw from.

use std::ffi::{c_char, CStr, CString};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::eal::Eal;
use crate::error::Error;
use crate::mbuf::MbufBatch;
use crate::mempool::Mempool;
use crate::sys;

/// RSS hash types asked for when RSS is on: IPv4/IPv6, with TCP/UDP ports.
const RSS_HF_WANTED: u64 =
    sys::RTE_ETH_RSS_IP as u64 | sys::RTE_ETH_RSS_TCP as u64 | sys::RTE_ETH_RSS_UDP as u64;

/// Control handle of one ethdev port.
pub struct Port {
    shared: Arc<PortShared>,
}

struct PortShared {
    id: u16,
    eal: Eal,
    state: Mutex<PortState>,
}

#[derive(Default)]
struct PortState {
    /// Configured through this handle: the port is ours to close on drop.
    configured: bool,
    started: bool,
    closed: bool,
    rss_hf: u64,
    rx_taken: Vec<bool>,
    tx_taken: Vec<bool>,
    /// Pools the rx queues draw from, kept alive with the port.
    pools: Vec<Mempool>,
}

/// Link state (`rte_eth_link_get_nowait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Carrier up.
    pub up: bool,
    /// Speed in Mbit/s; 0 when none or unknown.
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic port counters (`rte_eth_stats_get`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the NIC dropped because rx queues were full.
    pub imissed: u64,
    /// Erroneous packets received.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// Rx mbuf allocation failures.
    pub rx_nombuf: u64,
}

impl Port {
    /// Ports available (`rte_eth_dev_count_avail`).
    pub fn count(_eal: &Eal) -> u16 {
        // SAFETY: EAL is initialised (an Eal exists); reads ethdev state.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// The port DPDK named `name` (a vdev name such as `net_pcap0`, or a PCI
    /// address). Fails with ENODEV if there is none, EBUSY if a `Port`
    /// handle for it already exists.
    pub fn by_name(eal: &Eal, name: &str) -> Result<Port, Error> {
        let cname = CString::new(name).map_err(|_| {
            Error::with_text(
                "rte_eth_dev_get_port_by_name",
                libc::EINVAL,
                "port name contains a NUL byte",
            )
        })?;
        let mut id: u16 = 0;
        // SAFETY: EAL is initialised; cname is a valid C string and `id` a
        // valid out-pointer for the call.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_dev_get_port_by_name", ret));
        }
        Port::from_id(eal, id)
    }

    /// The port with id `id`. Fails with ENODEV if it is not valid, EBUSY if
    /// a `Port` handle for it already exists.
    pub fn from_id(eal: &Eal, id: u16) -> Result<Port, Error> {
        // SAFETY: EAL is initialised; any id is accepted.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(Error::new("rte_eth_dev_is_valid_port", libc::ENODEV));
        }
        {
            let mut reg = eal.registry();
            if reg.ports.contains(&id) {
                return Err(Error::with_text(
                    "Port::from_id",
                    libc::EBUSY,
                    format!("port {id} already has a handle"),
                ));
            }
            reg.ports.push(id);
        }
        Ok(Port {
            shared: Arc::new(PortShared {
                id,
                eal: eal.clone(),
                state: Mutex::new(PortState::default()),
            }),
        })
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.shared.id
    }

    fn state(&self) -> MutexGuard<'_, PortState> {
        self.shared.state()
    }

    /// EBUSY unless this is the only handle of the port (no queue handle out).
    fn exclusive(&self, op: &'static str) -> Result<(), Error> {
        if Arc::strong_count(&self.shared) == 1 {
            Ok(())
        } else {
            Err(Error::with_text(
                op,
                libc::EBUSY,
                "queue handles of the port are still in use",
            ))
        }
    }

    fn info(&self) -> Result<sys::rte_eth_dev_info, Error> {
        // SAFETY: rte_eth_dev_info is a plain C struct (integers, pointers,
        // arrays) for which all-zero is a valid value.
        let mut info: sys::rte_eth_dev_info = unsafe { std::mem::zeroed() };
        // SAFETY: valid port id (checked at construction) and out-pointer.
        let ret = unsafe { sys::rte_eth_dev_info_get(self.shared.id, &mut info) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_dev_info_get", ret));
        }
        Ok(info)
    }

    /// The PMD's name, e.g. `net_pcap`.
    pub fn driver_name(&self) -> Result<String, Error> {
        let info = self.info()?;
        if info.driver_name.is_null() {
            return Ok(String::new());
        }
        // SAFETY: a non-null driver_name is a static NUL-terminated string of
        // the driver.
        Ok(unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned())
    }

    /// The device name (what [`Port::by_name`] takes).
    pub fn name(&self) -> Result<String, Error> {
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf has RTE_ETH_NAME_MAX_LEN bytes, the size the call
        // requires; valid port id.
        let ret = unsafe { sys::rte_eth_dev_get_name_by_port(self.shared.id, buf.as_mut_ptr()) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_dev_get_name_by_port", ret));
        }
        // SAFETY: on success buf holds a NUL-terminated name.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// The NUMA socket of the device, or [`crate::SOCKET_ANY`] if unknown.
    pub fn socket_id(&self) -> i32 {
        // SAFETY: valid port id.
        unsafe { sys::rte_eth_dev_socket_id(self.shared.id) }
    }

    /// Configures `n_rx` rx and `n_tx` tx queues. With `rss`, turns on RSS
    /// over IP/TCP/UDP masked to what the PMD can hash (off if it can hash
    /// nothing); see [`Port::rss_hf`]. The port must be stopped.
    pub fn configure(&mut self, n_rx: u16, n_tx: u16, rss: bool) -> Result<(), Error> {
        const OP: &str = "rte_eth_dev_configure";
        self.exclusive(OP)?;
        if self.state().started {
            return Err(Error::with_text(
                OP,
                libc::EBUSY,
                "port is started; stop it first",
            ));
        }
        let info = self.info()?;
        if n_rx == 0 || n_tx == 0 || n_rx > info.max_rx_queues || n_tx > info.max_tx_queues {
            return Err(Error::with_text(
                OP,
                libc::EINVAL,
                format!(
                    "asked for {n_rx} rx / {n_tx} tx queues; the PMD allows 1..={} rx, 1..={} tx",
                    info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        let rss_hf = if rss {
            RSS_HF_WANTED & info.flow_type_rss_offloads
        } else {
            0
        };
        // SAFETY: rte_eth_conf is a plain C struct; all-zero is DPDK's
        // documented default for every field.
        let mut conf: sys::rte_eth_conf = unsafe { std::mem::zeroed() };
        if rss_hf != 0 {
            conf.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        // SAFETY: valid port id, stopped, no queue handles out (checked), and
        // conf is a fully initialised struct that DPDK copies.
        let ret = unsafe { sys::rte_eth_dev_configure(self.shared.id, n_rx, n_tx, &conf) };
        if ret != 0 {
            return Err(Error::from_ret(OP, ret));
        }
        let mut st = self.state();
        st.configured = true;
        st.rss_hf = rss_hf;
        st.rx_taken = vec![false; usize::from(n_rx)];
        st.tx_taken = vec![false; usize::from(n_tx)];
        st.pools.clear();
        Ok(())
    }

    /// RSS hash types in effect since [`Port::configure`] (0 = RSS off).
    pub fn rss_hf(&self) -> u64 {
        self.state().rss_hf
    }

    /// Sets up rx queue `queue` with about `nb_desc` descriptors (adjusted to
    /// the PMD's limits; the count used is returned), filled from `pool`.
    pub fn rx_queue_setup(
        &mut self,
        queue: u16,
        nb_desc: u16,
        pool: &Mempool,
    ) -> Result<u16, Error> {
        const OP: &str = "rte_eth_rx_queue_setup";
        self.exclusive(OP)?;
        let (mut rx, mut tx) = (nb_desc, 0u16);
        // SAFETY: valid port id, valid out-pointers.
        let ret =
            unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.shared.id, &mut rx, &mut tx) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        // SAFETY: valid port id, no queue handle out (checked); NULL rx_conf
        // means the PMD default; the pool is live and the port keeps a clone
        // of it below for as long as the queue can draw from it.
        let ret = unsafe {
            sys::rte_eth_rx_queue_setup(
                self.shared.id,
                queue,
                rx,
                self.socket(),
                std::ptr::null(),
                pool.as_ptr(),
            )
        };
        if ret != 0 {
            return Err(Error::from_ret(OP, ret));
        }
        self.state().pools.push(pool.clone());
        Ok(rx)
    }

    /// Sets up tx queue `queue` with about `nb_desc` descriptors (adjusted;
    /// the count used is returned).
    pub fn tx_queue_setup(&mut self, queue: u16, nb_desc: u16) -> Result<u16, Error> {
        const OP: &str = "rte_eth_tx_queue_setup";
        self.exclusive(OP)?;
        let (mut rx, mut tx) = (0u16, nb_desc);
        // SAFETY: valid port id, valid out-pointers.
        let ret =
            unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.shared.id, &mut rx, &mut tx) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        // SAFETY: valid port id, no queue handle out; NULL tx_conf = default.
        let ret = unsafe {
            sys::rte_eth_tx_queue_setup(self.shared.id, queue, tx, self.socket(), std::ptr::null())
        };
        if ret != 0 {
            return Err(Error::from_ret(OP, ret));
        }
        Ok(tx)
    }

    /// Socket for queue memory: the device's, or any.
    fn socket(&self) -> u32 {
        // SOCKET_ID_ANY (-1) becomes the unsigned value DPDK expects for it.
        self.socket_id() as u32
    }

    /// Starts the port.
    pub fn start(&mut self) -> Result<(), Error> {
        const OP: &str = "rte_eth_dev_start";
        self.exclusive(OP)?;
        // SAFETY: valid port id; no queue handle out, so nobody polls.
        let ret = unsafe { sys::rte_eth_dev_start(self.shared.id) };
        if ret != 0 {
            return Err(Error::from_ret(OP, ret));
        }
        self.state().started = true;
        Ok(())
    }

    /// Stops the port (drivers flush their output here, e.g. net_pcap's
    /// tx file). Fails with EBUSY while queue handles are out.
    pub fn stop(&mut self) -> Result<(), Error> {
        const OP: &str = "rte_eth_dev_stop";
        self.exclusive(OP)?;
        if !self.state().started {
            return Ok(());
        }
        // SAFETY: valid port id; no queue handle out, so nobody polls.
        let ret = unsafe { sys::rte_eth_dev_stop(self.shared.id) };
        if ret != 0 {
            return Err(Error::from_ret(OP, ret));
        }
        self.state().started = false;
        Ok(())
    }

    /// Stops and closes the port now. With queue handles still out it fails
    /// with EBUSY, and the port closes when the last of them drops.
    pub fn close(self) -> Result<(), Error> {
        self.exclusive("rte_eth_dev_close")?;
        let ret = self.shared.stop_and_close();
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_dev_close", ret));
        }
        Ok(())
    }

    /// Enables promiscuous mode; a PMD without it (ENOTSUP) is not an error.
    pub fn promiscuous_enable(&self) -> Result<(), Error> {
        // SAFETY: valid port id; a control call DPDK allows while running.
        let ret = unsafe { sys::rte_eth_promiscuous_enable(self.shared.id) };
        if ret != 0 && ret != -libc::ENOTSUP {
            return Err(Error::from_ret("rte_eth_promiscuous_enable", ret));
        }
        Ok(())
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], Error> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid port id and out-pointer.
        let ret = unsafe { sys::rte_eth_macaddr_get(self.shared.id, &mut addr) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_macaddr_get", ret));
        }
        Ok(addr.addr_bytes)
    }

    /// Sets the port's MAC address (`rte_eth_dev_default_mac_addr_set`;
    /// for a TAP port, the kernel interface's address).
    pub fn set_mac(&self, mac: [u8; 6]) -> Result<(), Error> {
        let mut addr = sys::rte_ether_addr { addr_bytes: mac };
        // SAFETY: valid port id; DPDK copies the address before returning.
        let ret = unsafe { sys::rte_eth_dev_default_mac_addr_set(self.shared.id, &mut addr) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_dev_default_mac_addr_set", ret));
        }
        Ok(())
    }

    /// Link state, without waiting for negotiation.
    pub fn link(&self) -> Result<Link, Error> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: valid port id and out-pointer.
        let ret = unsafe { sys::rte_eth_link_get_nowait(self.shared.id, &mut link) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_link_get_nowait", ret));
        }
        let speed = link.link_speed;
        Ok(Link {
            up: u32::from(link.link_status()) == sys::RTE_ETH_LINK_UP,
            speed_mbps: if speed == sys::RTE_ETH_SPEED_NUM_UNKNOWN {
                0
            } else {
                speed
            },
            full_duplex: u32::from(link.link_duplex()) == sys::RTE_ETH_LINK_FULL_DUPLEX,
        })
    }

    /// Port counters.
    pub fn stats(&self) -> Result<PortStats, Error> {
        Port::stats_of(&self.shared.eal, self.shared.id)
    }

    /// The counters of port `id`, read without a handle of the port (from
    /// a thread that does not own it, while workers poll it). DPDK checks
    /// the id: a port that does not exist is ENODEV. The caller must not
    /// call it while the port is being closed (a driver may free what its
    /// counters live in).
    pub fn stats_of(_eal: &Eal, id: u16) -> Result<PortStats, Error> {
        // SAFETY: rte_eth_stats is integers only; all-zero is valid.
        let mut s: sys::rte_eth_stats = unsafe { std::mem::zeroed() };
        // SAFETY: EAL is initialised (an Eal exists); DPDK validates the
        // port id; the out-pointer is valid.
        let ret = unsafe { sys::rte_eth_stats_get(id, &mut s) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_stats_get", ret));
        }
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Zeroes the port counters.
    pub fn reset_stats(&self) -> Result<(), Error> {
        // SAFETY: valid port id.
        let ret = unsafe { sys::rte_eth_stats_reset(self.shared.id) };
        if ret != 0 {
            return Err(Error::from_ret("rte_eth_stats_reset", ret));
        }
        Ok(())
    }

    /// The handle for polling rx queue `queue`; EBUSY if one is out already,
    /// EINVAL if the queue was not configured.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue, Error> {
        take(&mut self.state().rx_taken, queue, "Port::rx_queue")?;
        Ok(RxQueue {
            port: Arc::clone(&self.shared),
            queue,
            _not_sync: PhantomData,
        })
    }

    /// The handle for sending on tx queue `queue`; EBUSY if one is out
    /// already, EINVAL if the queue was not configured.
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue, Error> {
        take(&mut self.state().tx_taken, queue, "Port::tx_queue")?;
        Ok(TxQueue {
            port: Arc::clone(&self.shared),
            queue,
            _not_sync: PhantomData,
        })
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port").field("id", &self.shared.id).finish()
    }
}

fn take(taken: &mut [bool], queue: u16, op: &'static str) -> Result<(), Error> {
    match taken.get_mut(usize::from(queue)) {
        None => Err(Error::with_text(
            op,
            libc::EINVAL,
            format!("queue {queue} is not configured"),
        )),
        Some(true) => Err(Error::with_text(
            op,
            libc::EBUSY,
            format!("queue {queue} already has a handle"),
        )),
        Some(t) => {
            *t = true;
            Ok(())
        }
    }
}

impl PortShared {
    fn state(&self) -> MutexGuard<'_, PortState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops (if started) and closes the device, once; returns close's result.
    fn stop_and_close(&self) -> i32 {
        let mut st = self.state();
        if st.closed {
            return 0;
        }
        st.closed = true;
        if st.started {
            // SAFETY: valid port id; called with no queue handle polling
            // (from close() with exclusivity, or from the last handle's drop).
            unsafe { sys::rte_eth_dev_stop(self.id) };
            st.started = false;
        }
        st.rx_taken.clear();
        st.tx_taken.clear();
        drop(st);
        // SAFETY: as above; after this the id is not used by this handle.
        unsafe { sys::rte_eth_dev_close(self.id) }
    }
}

impl Drop for PortShared {
    fn drop(&mut self) {
        // Last handle of the port: nobody polls it any more. A port that was
        // only looked at (never configured) is left as it was.
        if self.state().configured {
            self.stop_and_close();
        }
        self.eal.registry().ports.retain(|&p| p != self.id);
        // The pools (in state) drop after this, once the device no longer
        // draws from them.
    }
}

/// The polling handle of one rx queue. `Send`, not `Sync`: one thread polls.
pub struct RxQueue {
    port: Arc<PortShared>,
    queue: u16,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl RxQueue {
    /// Receives up to the batch's free space; returns how many arrived (they
    /// are appended to `batch`).
    #[inline]
    pub fn rx_burst(&mut self, batch: &mut MbufBatch) -> usize {
        let room = batch.free_space();
        if room == 0 {
            return 0;
        }
        // SAFETY: this handle is the only poller of (port, queue) (taken once,
        // not Sync, &mut self), the port outlives it (Arc). DPDK writes at most
        // `room` non-null mbuf pointers into the batch's spare slots, each a
        // fresh packet we now own; set_len adopts exactly those.
        unsafe {
            let n = sys::rte_eth_rx_burst(self.port.id, self.queue, batch.spare_ptr(), room as u16);
            let n = usize::from(n);
            batch.set_len(batch.len() + n);
            n
        }
    }

    /// Like [`RxQueue::rx_burst`], but receives at most `max` packets, so a
    /// caller that works in bursts of 32 never takes more than it processes
    /// (a finite source such as net_pcap then yields the same bursts on
    /// every run).
    #[inline]
    pub fn rx_burst_max(&mut self, batch: &mut MbufBatch, max: usize) -> usize {
        let room = batch.free_space().min(max);
        if room == 0 {
            return 0;
        }
        // SAFETY: as in rx_burst; `room` is at most the batch's free space,
        // so DPDK writes only into spare slots, and set_len adopts exactly
        // the n it returned.
        unsafe {
            let n = sys::rte_eth_rx_burst(self.port.id, self.queue, batch.spare_ptr(), room as u16);
            let n = usize::from(n);
            batch.set_len(batch.len() + n);
            n
        }
    }

    /// The queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port.id
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        if let Some(t) = self.port.state().rx_taken.get_mut(usize::from(self.queue)) {
            *t = false;
        }
    }
}

/// What [`TxQueue::send`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxOutcome {
    /// Mbufs the driver accepted.
    pub sent: usize,
    /// Mbufs still unsent after the last attempt, freed.
    pub dropped: usize,
}

/// The sending handle of one tx queue. `Send`, not `Sync`: one thread sends.
pub struct TxQueue {
    port: Arc<PortShared>,
    queue: u16,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl TxQueue {
    /// One `rte_eth_tx_burst` of the whole batch: the accepted mbufs leave the
    /// batch (the driver frees them once sent), the unsent stay at its front,
    /// in order. Returns how many were accepted.
    #[inline]
    pub fn tx_burst(&mut self, batch: &mut MbufBatch) -> usize {
        let len = batch.len();
        if len == 0 {
            return 0;
        }
        // SAFETY: this handle is the only sender on (port, queue); the batch's
        // first `len` slots are owned mbufs. DPDK takes ownership of the first
        // n it returns and leaves the others untouched; consume_front forgets
        // exactly those n.
        let n =
            unsafe { sys::rte_eth_tx_burst(self.port.id, self.queue, batch.raw_ptr(), len as u16) };
        let n = usize::from(n);
        batch.consume_front(n);
        n
    }

    /// Sends the batch with at most `attempts` bursts (at least one), then
    /// frees whatever is still unsent. The batch is empty afterwards.
    #[inline]
    pub fn send(&mut self, batch: &mut MbufBatch, attempts: u32) -> TxOutcome {
        let mut sent = 0;
        for _ in 0..attempts.max(1) {
            sent += self.tx_burst(batch);
            if batch.is_empty() {
                break;
            }
        }
        TxOutcome {
            sent,
            dropped: batch.clear(),
        }
    }

    /// The queue id.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// The port id.
    pub fn port_id(&self) -> u16 {
        self.port.id
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        if let Some(t) = self.port.state().tx_taken.get_mut(usize::from(self.queue)) {
            *t = false;
        }
    }
}
