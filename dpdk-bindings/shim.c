/* C for what DPDK offers only as macros. Each function is a single access to
 * the macro, so the Rust side never guesses at a macro's expansion. */
#include "wrapper.h"

/* rte_errno is a per-lcore (thread-local) variable behind a macro. */
int rampart_rte_errno(void)
{
	return rte_errno;
}

void rampart_rte_errno_set(int value)
{
	rte_errno = value;
}
