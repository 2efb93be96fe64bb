/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * What a memory-access signal's context says about the access, x86
 * Linux (the layout of ucontext_t is the OS's).
 */

#ifndef CONFIG_LINUX
#include "host/include/generic/host/signal-fault.h"
#elif !defined(HOST_SIGNAL_FAULT_H)
#define HOST_SIGNAL_FAULT_H

#include "host/include/generic/host/signal-fault-types.h"

/*
 * The access that made a page fault in this thread's own code, from the
 * ucontext_t of an SA_SIGINFO handler: the trap is a page fault (14),
 * and its error code has bit 1 for a write and bit 4 for an instruction
 * fetch.  Only a signal the CPU's page fault raised (BUS_ADRERR, say)
 * says anything: one the kernel sends from inside a system call carries
 * a stale trap number and error code, and callers must not ask then.
 */
static inline HostFaultAccess host_signal_fault_access(void *ucontext)
{
    ucontext_t *uc = ucontext;
    greg_t err;

    if (!uc || uc->uc_mcontext.gregs[REG_TRAPNO] != 14) {
        return HOST_FAULT_ACCESS_UNKNOWN;
    }
    err = uc->uc_mcontext.gregs[REG_ERR];
    if (err & (1 << 4)) {
        return HOST_FAULT_ACCESS_FETCH;
    }
    return (err & (1 << 1)) ? HOST_FAULT_ACCESS_WRITE : HOST_FAULT_ACCESS_READ;
}

/* The host program counter at the signal, or 0. */
static inline uintptr_t host_signal_fault_pc(void *ucontext)
{
    ucontext_t *uc = ucontext;

    if (!uc) {
        return 0;
    }
#if defined(REG_RIP)
    return uc->uc_mcontext.gregs[REG_RIP];
#else
    return uc->uc_mcontext.gregs[REG_EIP];
#endif
}

#endif
