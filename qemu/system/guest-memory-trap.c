/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Trap regions over lost guest RAM, for memory backends with
 * lost-page-action=guest-error under KVM.  KVM tells QEMU of a guest
 * access to a page it cannot map (a truncated backing file) with a bare
 * EFAULT from KVM_RUN, which does not say which page (Linux up to 7.2
 * fills in KVM_EXIT_MEMORY_FAULT only for private memory; see
 * docs/devel/kvm-kernel-contract.rst).  To raise the error on the right
 * page, the lost pages of the block are covered with I/O regions, one
 * per run of lost pages, as subregions of the block's own region: KVM
 * then has no memory slot there, and the access exits as KVM_EXIT_MMIO
 * with its address, which kvm_memory_fault_check_mmio() recognises.
 *
 * The regions stand for the RAM they cover: where a reader asks what is
 * at such an address (guest_memory_range_to_gpa(),
 * guest_memory_gpa_to_block(), guest_memory_check_gpa_range(),
 * guest_memory_region_lost()) the answer is the lost RAM block; reads
 * through the memory API fail (all ones) and writes fail.
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/main-loop.h"
#include "system/address-spaces.h"
#include "system/guest-memory-fault.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "guest-memory-internal.h"
#include "trace.h"

/* Changed whenever regions are made; under the BQL. */
unsigned guest_memory_trap_generation;

static MemTxResult trap_read(void *opaque, hwaddr addr, uint64_t *data,
                             unsigned size, MemTxAttrs attrs)
{
    /* What the memory API gives for lost RAM: all ones, and an error. */
    *data = MAKE_64BIT_MASK(0, size * 8);
    return MEMTX_ERROR;
}

static MemTxResult trap_write(void *opaque, hwaddr addr, uint64_t data,
                              unsigned size, MemTxAttrs attrs)
{
    return MEMTX_ERROR;
}

static const MemoryRegionOps trap_ops = {
    .read_with_attrs = trap_read,
    .write_with_attrs = trap_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid.min_access_size = 1,
    .valid.max_access_size = 8,
    .impl.min_access_size = 1,
    .impl.max_access_size = 8,
};

bool guest_memory_fault_trapping(void)
{
    return qatomic_read(&guest_memory_trap_generation) != 0;
}

GuestMemoryTrap *guest_memory_trap_of(const MemoryRegion *mr)
{
    return mr && mr->ops == &trap_ops ? mr->opaque : NULL;
}

bool guest_memory_fault_trapped(MemoryRegion *mr, hwaddr xlat,
                                GuestMemoryFault *f)
{
    GuestMemoryTrap *t = guest_memory_trap_of(mr);

    if (!t) {
        return false;
    }
    f->block = t->rb;
    f->offset = t->offset + xlat;
    return true;
}

void guest_memory_trap_remove(RAMBlock *rb)
{
    GuestMemoryLoss *loss = rb->memory_loss;

    if (!loss || !loss->trapped_pages) {
        return;
    }
    memory_region_transaction_begin();
    for (guint i = 0; loss->traps && i < loss->traps->len; i++) {
        GuestMemoryTrap *t = g_ptr_array_index(loss->traps, i);

        /* A block going away has lost its subregions already. */
        if (t->mr.container == rb->mr) {
            memory_region_del_subregion(rb->mr, &t->mr);
        }
    }
    memory_region_transaction_commit();
    loss->trapped_pages = 0;
    trace_guest_memory_trap(qemu_ram_get_idstr(rb), 0);
}

/*
 * A region without an owner is not referenced by the flat views that
 * include it: free them only with the block (RCU, long after).
 */
void guest_memory_trap_free(RAMBlock *rb)
{
    GuestMemoryLoss *loss = rb->memory_loss;

    for (guint i = 0; loss->traps && i < loss->traps->len; i++) {
        GuestMemoryTrap *t = g_ptr_array_index(loss->traps, i);

        object_unparent(OBJECT(&t->mr));
        g_free(t);
    }
    g_clear_pointer(&loss->traps, g_ptr_array_unref);
}

void guest_memory_trap_lost(RAMBlock *rb)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    uint64_t page = guest_memory_page_size(rb);
    uint64_t p = 0, q;
    unsigned long lost;
    guint n = 0;

    assert(bql_locked());
    lost = loss ? qatomic_read(&loss->lost_pages) : 0;
    if (!lost || lost == loss->trapped_pages) {
        /* Nothing lost, or covered already: nothing new to trap. */
        return;
    }
    guest_memory_trap_remove(rb);
    if (!loss->traps) {
        loss->traps = g_ptr_array_new();
    }
    /*
     * Subregions of the block's own region: they appear wherever the
     * block does (every alias), and go where it goes (unplug, PAM).
     */
    memory_region_transaction_begin();
    while (n < GUEST_MEMORY_MAX_RANGES) {
        GuestMemoryTrap *t;
        ram_addr_t end;

        p = find_next_bit(loss->lost, loss->nr_pages, p);
        if (p >= loss->nr_pages || p * page >= rb->used_length) {
            break;
        }
        q = find_next_zero_bit(loss->lost, loss->nr_pages, p);
        end = MIN(q * page, rb->used_length);
        t = g_new0(GuestMemoryTrap, 1);
        t->rb = rb;
        t->offset = p * page;
        memory_region_init_io(&t->mr, NULL, &trap_ops, t, "lost-ram-trap",
                              end - t->offset);
        memory_region_add_subregion_overlap(rb->mr, t->offset, &t->mr, 1);
        g_ptr_array_add(loss->traps, t);
        n++;
        p = q;
    }
    memory_region_transaction_commit();
    loss->trapped_pages = lost;
    qatomic_inc(&guest_memory_trap_generation);
    trace_guest_memory_trap(qemu_ram_get_idstr(rb), n);
}
