/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Covers over lost guest RAM, for memory backends with
 * lost-page-action=guest-error under KVM.  KVM tells QEMU of a guest
 * access to a page it cannot map (a truncated backing file) with a bare
 * EFAULT from KVM_RUN, which does not say which page (Linux up to 7.2
 * fills in KVM_EXIT_MEMORY_FAULT only for private memory; see
 * docs/devel/kvm-kernel-contract.rst).  To raise the error on the right
 * page, QEMU covers the block's lost pages so that the next access says
 * where it is, in one of two ways.
 *
 * Poison, where the kernel has UFFDIO_POISON (Linux 6.6 and later): each
 * run of lost pages is mapped again as anonymous memory whose page
 * table entries are poison markers (mm/userfaultfd.c,
 * mfill_atomic_pte_poison()).  KVM's fault on such a page gets
 * -EHWPOISON from get_user_pages(), and KVM sends the vCPU thread a
 * SIGBUS with BUS_MCEERR_AR and the host address, before the guest
 * instruction has done anything (virt/kvm/kvm_main.c, hva_to_pfn();
 * arch/x86/kvm/mmu/mmu.c, kvm_handle_error_pfn()).  The memory slots
 * stay as they are.
 *
 * Regions, elsewhere: the runs of lost pages are covered with I/O
 * regions, as subregions of the block's own region: KVM then has no
 * memory slot there, and the access exits as KVM_EXIT_MMIO with its
 * address, which kvm_memory_fault_check_mmio() recognises.  KVM's
 * emulator has begun the instruction by then: see
 * docs/system/guest-memory-faults.rst for what that costs.
 *
 * The regions stand for the RAM they cover: where a reader asks what is
 * at such an address (guest_memory_range_to_gpa(),
 * guest_memory_gpa_to_block(), guest_memory_check_gpa_range(),
 * guest_memory_region_lost()) the answer is the lost RAM block; reads
 * through the memory API fail (all ones) and writes fail.  Poisoned
 * pages are lost pages like any other to QEMU's readers, which do not
 * touch them.
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include "qemu/bitops.h"
#include "qemu/main-loop.h"
#include "qemu/userfaultfd.h"
#include "system/address-spaces.h"
#include "system/guest-memory-fault.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "guest-memory-internal.h"
#include "trace.h"

/* Changed whenever regions are made; under the BQL. */
static unsigned trap_generation;
/* Changed whenever pages are made poison; under the BQL. */
static unsigned poison_generation;
/* For UFFDIO_POISON: -1 until tried, -2 if the kernel cannot. */
static int poison_uffd = -1;

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
    return qatomic_read(&trap_generation) != 0;
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

    g_clear_pointer(&loss->poisoned, g_free);

    for (guint i = 0; loss->traps && i < loss->traps->len; i++) {
        GuestMemoryTrap *t = g_ptr_array_index(loss->traps, i);

        object_unparent(OBJECT(&t->mr));
        g_free(t);
    }
    g_clear_pointer(&loss->traps, g_ptr_array_unref);
}

static void trap_lost(RAMBlock *rb)
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
    qatomic_inc(&trap_generation);
    trace_guest_memory_trap(qemu_ram_get_idstr(rb), n);
}

/*
 * A userfaultfd that can make poison, kept open; false if the kernel
 * cannot (before Linux 6.6, or no userfaultfd for QEMU).  It only ever
 * registers ranges nothing can fault in meanwhile (PROT_NONE), so
 * UFFD_USER_MODE_ONLY, which needs no privilege, is enough.
 */
static bool poison_open(void)
{
    struct uffdio_api api = {
        .api = UFFD_API,
        .features = UFFD_FEATURE_POISON,
    };
    int fd;

    if (poison_uffd != -1) {
        return poison_uffd >= 0;
    }
    poison_uffd = -2;
    fd = uffd_open(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0) {
        trace_guest_memory_poison_unsupported("userfaultfd", errno);
        return false;
    }
    if (ioctl(fd, UFFDIO_API, &api)) {
        trace_guest_memory_poison_unsupported("UFFD_FEATURE_POISON", errno);
        close(fd);
        return false;
    }
    if (!(api.features & UFFD_FEATURE_POISON)) {
        trace_guest_memory_poison_unsupported("UFFD_FEATURE_POISON", 0);
        close(fd);
        return false;
    }
    poison_uffd = fd;
    return true;
}

/*
 * Map [@start, @end) of @rb again as poison.  Nothing faults in a page
 * there meanwhile: the range is PROT_NONE until the userfaultfd has it,
 * and then a fault waits for the poison (QEMU's own threads), or fails
 * (KVM, which then tries again).  On failure the backing is mapped
 * there again, as before.
 */
static bool poison_run(RAMBlock *rb, ram_addr_t start, ram_addr_t end)
{
    void *host = rb->host + start;
    uint64_t len = end - start, ioctls = 0;
    int prot = rb->flags & RAM_READONLY ? PROT_READ : PROT_READ | PROT_WRITE;
    struct uffdio_poison poison = {
        .range = { .start = (uintptr_t)host, .len = len },
    };
    const char *failed = NULL;

    if (mmap(host, len, PROT_NONE,
             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0) == MAP_FAILED) {
        failed = "mmap";
    } else if (uffd_register_memory(poison_uffd, host, len,
                                    UFFDIO_REGISTER_MODE_MISSING, &ioctls)) {
        failed = "UFFDIO_REGISTER";
    } else {
        if (!(ioctls & BIT_ULL(_UFFDIO_POISON))) {
            errno = 0;
            failed = "UFFDIO_POISON";
        } else if (mprotect(host, len, prot)) {
            failed = "mprotect";
        } else if (ioctl(poison_uffd, UFFDIO_POISON, &poison)) {
            failed = "UFFDIO_POISON";
        }
        /* The markers stay in the page tables without it. */
        uffd_unregister_memory(poison_uffd, host, len);
    }
    if (failed) {
        trace_guest_memory_poison_failed(qemu_ram_get_idstr(rb), start,
                                         failed, errno);
        guest_memory_restore_mapping(rb, start, end);
        return false;
    }
    return true;
}

/*
 * Make every lost page of @rb that is not yet poison; false if the
 * kernel or the block cannot (anonymous RAM has no backing to map again
 * at reset).
 */
static bool poison_lost(RAMBlock *rb)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    uint64_t page = guest_memory_page_size(rb);
    uint64_t p = 0, q;
    guint n = 0;

    if (rb->fd < 0 || !poison_open()) {
        return false;
    }
    if (!loss->poisoned) {
        loss->poisoned = bitmap_new(loss->nr_pages);
    }
    for (;;) {
        p = find_next_bit(loss->lost, loss->nr_pages, p);
        if (p >= loss->nr_pages || p * page >= rb->used_length) {
            break;
        }
        if (test_bit(p, loss->poisoned)) {
            p++;
            continue;
        }
        for (q = p + 1; q < loss->nr_pages && test_bit(q, loss->lost) &&
                        !test_bit(q, loss->poisoned); q++) {
            continue;
        }
        if (!poison_run(rb, p * page, MIN(q * page, rb->used_length))) {
            return false;
        }
        bitmap_set(loss->poisoned, p, q - p);
        n++;
        p = q;
    }
    if (n) {
        poison_generation++;
        trace_guest_memory_poison(qemu_ram_get_idstr(rb), n);
    }
    return true;
}

void guest_memory_poison_restored(RAMBlock *rb, uint64_t first,
                                  uint64_t last)
{
    GuestMemoryLoss *loss = rb->memory_loss;

    if (loss->poisoned) {
        bitmap_clear(loss->poisoned, first, last - first);
    }
}

bool guest_memory_fault_poisoned(void *host)
{
    ram_addr_t offset;
    RAMBlock *rb;

    RCU_READ_LOCK_GUARD();
    rb = qemu_ram_block_from_host(host, false, &offset);
    return rb && rb->memory_loss && rb->memory_loss->poisoned &&
           test_bit(offset / guest_memory_page_size(rb),
                    rb->memory_loss->poisoned);
}

unsigned guest_memory_cover_lost(RAMBlock *rb)
{
    assert(bql_locked());
    if (!poison_lost(rb)) {
        trap_lost(rb);
    }
    return trap_generation + poison_generation;
}
