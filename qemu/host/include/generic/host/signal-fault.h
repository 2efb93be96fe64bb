/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * What a memory-access signal's context says about the access, for hosts
 * that have not taught QEMU to read it: nothing.
 */

#ifndef HOST_SIGNAL_FAULT_H
#define HOST_SIGNAL_FAULT_H

#include "host/include/generic/host/signal-fault-types.h"

/*
 * The access that made a page fault in this thread's own code, from the
 * ucontext_t of an SA_SIGINFO handler, when the host tells.
 */
static inline HostFaultAccess host_signal_fault_access(void *ucontext)
{
    return HOST_FAULT_ACCESS_UNKNOWN;
}

/* The host program counter at the signal, or 0. */
static inline uintptr_t host_signal_fault_pc(void *ucontext)
{
    return 0;
}

#endif
