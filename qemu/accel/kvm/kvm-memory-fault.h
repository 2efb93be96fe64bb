/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * KVM_RUN outcomes that can mean "guest memory without host backing",
 * turned into the one guest-memory fault report
 * (include/system/guest-memory-fault.h).  Internal to accel/kvm.
 */

#ifndef ACCEL_KVM_MEMORY_FAULT_H
#define ACCEL_KVM_MEMORY_FAULT_H

#include <linux/kvm.h>
#include "exec/memattrs.h"
#include "system/guest-memory-fault.h"

/* What the fault handling remembers of a vCPU (in its AccelCPUState). */
typedef struct KVMMemoryFaultVcpu {
    /* The last KVM_EXIT_MEMORY_FAULT that QEMU resolved by converting. */
    bool has_converted;
    uint64_t conv_gpa, conv_size, conv_flags;
    uint64_t conv_generation;       /* conversions so far, after it */
    const char *conv_noop;          /* it was already so: why, if again */
    /* The trap regions this vCPU entered again for, after a bare EFAULT. */
    unsigned trap_generation;
} KVMMemoryFaultVcpu;

/*
 * KVM_RUN failed with bare EFAULT: find and report what is unbacked, and
 * return false.  Returns true, reporting nothing, when the vCPU is to
 * enter again so that the access exits with its address (see
 * guest_memory_fault_trap()).
 */
bool kvm_memory_fault_on_efault(CPUState *cpu);

/*
 * A SIGBUS @code at @addr that reached @cpu's thread in KVM_RUN, with the
 * BQL: if it is for a page QEMU made poison (guest_memory_fault_trap()),
 * raise the error in the guest and return EXCP_INTERRUPT, or report it
 * and return -1 when the guest cannot be told (the VM stops).  0 if it is
 * not QEMU's poison: hardware's, for kvm_arch_on_sigbus_vcpu().
 */
int kvm_memory_fault_on_poison(CPUState *cpu, int code, void *addr);

/* What kvm_memory_fault_check_mmio() found. */
typedef enum KVMMemoryFaultMMIO {
    KVM_MEMORY_FAULT_MMIO_NONE,     /* an ordinary exit: serve it */
    KVM_MEMORY_FAULT_MMIO_REPORTED, /* reported: the VM stops */
    KVM_MEMORY_FAULT_MMIO_TO_GUEST, /* raised in the guest: enter again */
} KVMMemoryFaultMMIO;

/*
 * Before serving an MMIO exit at @gpa: if @gpa is RAM whose page has no
 * backing, report it (the exit must not be served: that would fault in
 * QEMU); for lost RAM of a memory backend with
 * lost-page-action=guest-error, complete the exit and raise the error
 * in the guest instead.  NONE for everything else, at the cost of one
 * flatview lookup.
 */
KVMMemoryFaultMMIO kvm_memory_fault_check_mmio(CPUState *cpu, uint64_t gpa,
                                               bool is_write,
                                               MemTxAttrs attrs);

/*
 * An emulation failure: returns true if it was an instruction fetch from
 * unbacked RAM (reported).
 */
bool kvm_memory_fault_on_emulation_failure(CPUState *cpu,
                                           struct kvm_run *run);

/*
 * KVM_EXIT_MEMORY_FAULT: convert the range when that is a real
 * private/shared conversion request QEMU can satisfy (returns 0);
 * otherwise report it and return -1, or EXCP_INTERRUPT when the error
 * was raised in the guest (lost-page-action=guest-error): the vCPU
 * enters again to take it.
 */
int kvm_memory_fault_exit(CPUState *cpu, struct kvm_run *run);

/*
 * After a fault stopped @cpu: let KVM complete the exit it left half
 * done (KVM_RUN with immediate_exit), keeping QEMU's copy of the
 * registers at the fault.  A reset then really starts over.
 */
void kvm_memory_fault_complete_exit(CPUState *cpu);

/*
 * kvm_convert_memory() ran: a memory-fault exit that follows is not the
 * same fault coming back (for any vCPU).
 */
void kvm_memory_fault_conversion_done(void);

#endif /* ACCEL_KVM_MEMORY_FAULT_H */
