/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One report for every guest-memory fault: guest RAM that is no longer
 * backed by host memory (a truncated backing file, a full tmpfs or
 * hugetlbfs, a missing memory slot, a private/shared mismatch, a hardware
 * memory error), however it reaches QEMU: a failed KVM_RUN, an MMIO exit
 * at a RAM address, KVM_EXIT_MEMORY_FAULT, an emulation failure, a SIGBUS
 * on a vCPU or on QEMU's own access, or the backing-file watch.
 */

#ifndef SYSTEM_GUEST_MEMORY_FAULT_H
#define SYSTEM_GUEST_MEMORY_FAULT_H

#include "exec/hwaddr.h"
#include "exec/cpu-common.h"
#include "qapi/qapi-types-run-state.h"

typedef struct GuestMemoryFault {
    GuestMemoryFaultPath path;      /* how QEMU learnt of it */
    int cpu_index;                  /* -1: not a vCPU */
    bool has_gpa;
    hwaddr gpa;                     /* first byte of the faulting range */
    uint64_t size;                  /* 0: unknown */
    GuestMemoryAccess access;
    bool is_private;
    int sigbus_code;                /* si_code of a SIGBUS, else 0 */
    void *host_addr;                /* QEMU's address of the page, if known */

    /* Filled in by guest_memory_fault_probe(). */
    RAMBlock *block;
    ram_addr_t offset;              /* offset of gpa in block */
    GuestMemoryBacking backing;
    char *backing_path;
    GuestMemoryFaultCause cause;
    char *cause_detail;
} GuestMemoryFault;

/*
 * Initialize @f for a fault found through @path by vCPU @cpu_index
 * (-1 when no vCPU is involved).
 */
void guest_memory_fault_init(GuestMemoryFault *f, GuestMemoryFaultPath path,
                             int cpu_index);

/* Set the guest-physical range of @f. */
void guest_memory_fault_set_gpa(GuestMemoryFault *f, hwaddr gpa,
                                uint64_t size);

/*
 * Find the RAM block, backing and cause of @f without touching guest
 * memory.  Returns true if the page is known to be unbacked (cause is
 * not "unknown").
 */
bool guest_memory_fault_probe(GuestMemoryFault *f);

/*
 * Without touching it: is the host page behind @gpa unbacked?  Returns
 * true and fills @f (already initialized) when it is.  False for
 * addresses that are not RAM and for pages that are backed.
 */
bool guest_memory_gpa_is_unbacked(hwaddr gpa, GuestMemoryFault *f);

/*
 * Search every RAM block for a range whose backing is gone (file or
 * memfd shorter than the block, or a full filesystem under a hole).
 * Fills @f and returns true for the first one found.
 */
bool guest_memory_find_unbacked(GuestMemoryFault *f);

/*
 * Print "error: <accel> run failed Bad address" and the detail line,
 * emit GUEST_MEMORY_FAULT, trace.  The caller dumps registers and stops
 * the VM (RUN_STATE_INTERNAL_ERROR).
 */
void guest_memory_fault_report(GuestMemoryFault *f);

/* Report, dump @cpu (if any) and stop the VM: for non-vCPU paths. */
void guest_memory_fault_report_and_stop(GuestMemoryFault *f, CPUState *cpu);

/* Free what probing allocated. */
void guest_memory_fault_cleanup(GuestMemoryFault *f);

/*
 * SIGBUS (BUS_ADRERR, or an action-required hardware error) at @addr,
 * from signal context.  If @addr is guest RAM: replace the page in QEMU's
 * mapping by an anonymous zero page so that the faulting access can
 * complete instead of faulting forever, record the fault for
 * guest_memory_fault_take_pending(), and arrange for it to be reported
 * (a KVM vCPU notices it when KVM_RUN returns; otherwise a bottom half in
 * the main loop reports it and stops the VM).  Returns false if @addr is
 * not guest RAM: the caller must then die as before, after printing what
 * it knows.
 */
bool guest_memory_fault_on_sigbus(int code, void *addr, void *ucontext,
                                  CPUState *cpu);

/*
 * If a SIGBUS recorded a fault on vCPU @cpu, move it into @f (and
 * return true).  Cheap: one atomic load when nothing is pending.
 */
bool guest_memory_fault_take_pending(CPUState *cpu, GuestMemoryFault *f);

/* Number of guest-memory faults seen so far (for QEMU's own accesses). */
#ifdef CONFIG_LINUX
unsigned guest_memory_fault_count(void);
#else
static inline unsigned guest_memory_fault_count(void)
{
    return 0;
}
#endif

/*
 * At machine-init-done: warn about file-backed shared RAM on a
 * filesystem with less free space than it needs, and start watching
 * backing files for truncation.
 */
void guest_memory_fault_machine_ready(void);

#endif /* SYSTEM_GUEST_MEMORY_FAULT_H */
