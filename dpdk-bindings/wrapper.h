/* Everything the bindings cover. Compiled by bindgen and, through the
 * generated static-inline wrappers, by the cc crate, both with the raw
 * `pkg-config --cflags libdpdk` tokens (which -include rte_config.h). */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_ring.h>
#include <rte_cycles.h>
#include <rte_thread.h>

/* shim.c: values that are macros in DPDK. */
int rampart_rte_errno(void);
void rampart_rte_errno_set(int value);
