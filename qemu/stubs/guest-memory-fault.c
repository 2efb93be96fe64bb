/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Guest-memory faults on hosts without system/guest-memory-*.c (they
 * are built on Linux only): no RAM page is ever tracked as lost, and no
 * fault holds a vCPU or the VM.  Only what code built on every host
 * calls is here; the rest of include/system/guest-memory-fault.h is
 * used by Linux-only code (accelerators, the SIGBUS handler).
 */

#include "qemu/osdep.h"
#include "system/guest-memory-fault.h"

bool guest_memory_fault_vcpu_held(CPUState *cpu)
{
    return false;
}

bool guest_memory_fault_holds_stop(void)
{
    return false;
}

bool guest_memory_fault_check_guest_request(const char *what, int cpu_index)
{
    return false;
}

void guest_memory_fault_system_reset(bool guest)
{
}

void guest_memory_fault_vcpu_unwound(CPUState *cpu)
{
}

void guest_memory_loss_set_guest_error(RAMBlock *rb, bool on)
{
}

void guest_memory_loss_block_added(RAMBlock *rb)
{
}

void guest_memory_loss_block_removed(RAMBlock *rb)
{
}

void guest_memory_loss_block_free(RAMBlock *rb)
{
}

bool guest_memory_ram_lost_slow(RAMBlock *rb, ram_addr_t offset,
                                ram_addr_t len)
{
    return false;
}

bool guest_memory_check_lost(RAMBlock *rb, Error **errp)
{
    return true;
}

bool guest_memory_check_gpa_range(hwaddr gpa, hwaddr len, Error **errp)
{
    return true;
}

bool guest_memory_as_range_lost(AddressSpace *as, hwaddr addr, hwaddr len)
{
    return false;
}

bool guest_memory_fault_check_backing(Error **errp)
{
    return false;
}
