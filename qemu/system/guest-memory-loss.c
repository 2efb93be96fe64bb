/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Guest RAM that lost its backing: which pages of a RAM block are lost
 * (the block's GuestMemoryLoss bitmap), and the checks with which QEMU's
 * own readers refuse them instead of reading what stands in for them.
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "system/address-spaces.h"
#include "system/guest-memory-fault.h"
#include "system/hostmem.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "guest-memory-internal.h"

/* --- lost pages --- */

uint64_t guest_memory_page_size(RAMBlock *rb)
{
    return rb->page_size ? rb->page_size : qemu_real_host_page_size();
}

/* Mark [@start, @end) of @rb lost.  Async-signal-safe. */
void guest_memory_mark_lost(RAMBlock *rb, ram_addr_t start, ram_addr_t end)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    uint64_t page = guest_memory_page_size(rb);
    uint64_t p, last;

    if (!loss || end <= start) {
        return;
    }
    last = MIN(DIV_ROUND_UP(end, page), loss->nr_pages);
    for (p = start / page; p < last; p++) {
        unsigned long mask = BIT_MASK(p);
        unsigned long old = qatomic_fetch_or(&loss->lost[BIT_WORD(p)], mask);

        if (!(old & mask)) {
            qatomic_inc(&loss->lost_pages);
        }
    }
}

/*
 * The first offset of @rb past the end of its backing file, if the file
 * is shorter than the block (fstat only: async-signal-safe).
 */
bool guest_memory_truncated_at(RAMBlock *rb, ram_addr_t *offset,
                               off_t *file_size)
{
    struct stat st;
    uint64_t page = guest_memory_page_size(rb);
    uint64_t end = rb->fd_offset + rb->used_length;

    if (rb->fd < 0 || fstat(rb->fd, &st) < 0 ||
        (uint64_t)st.st_size >= end) {
        return false;
    }
    if ((uint64_t)st.st_size <= rb->fd_offset) {
        *offset = 0;
    } else {
        *offset = QEMU_ALIGN_DOWN(st.st_size - rb->fd_offset, page);
    }
    *file_size = st.st_size;
    return true;
}

bool guest_memory_ram_lost_slow(RAMBlock *rb, ram_addr_t offset,
                                ram_addr_t len)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    uint64_t page = guest_memory_page_size(rb);
    uint64_t first = offset / page, last;

    if (!loss || !len || first >= loss->nr_pages) {
        return false;
    }
    last = MIN((offset + len - 1) / page, loss->nr_pages - 1);
    return find_next_bit(loss->lost, last + 1, first) <= last;
}

/*
 * Does @rb's memory backend hand lost pages to the guest (property
 * lost-page-action)?  Any thread, the SIGBUS thread included: a copy in
 * the block, which the property's setter updates.
 */
bool guest_memory_block_guest_error(RAMBlock *rb)
{
    return rb->memory_loss && qatomic_read(&rb->memory_loss->guest_error);
}

void guest_memory_loss_set_guest_error(RAMBlock *rb, bool on)
{
    if (rb->memory_loss) {
        qatomic_set(&rb->memory_loss->guest_error, on);
    }
}

void guest_memory_loss_block_added(RAMBlock *rb)
{
    GuestMemoryLoss *loss = g_new0(GuestMemoryLoss, 1);
    HostMemoryBackend *backend;

    loss->nr_pages = DIV_ROUND_UP(rb->max_length, guest_memory_page_size(rb));
    loss->lost = bitmap_new(loss->nr_pages);
    loss->wd = -1;
    backend = (HostMemoryBackend *)
        object_dynamic_cast(memory_region_owner(rb->mr), TYPE_MEMORY_BACKEND);
    loss->guest_error = backend && backend->lost_page_action ==
                                   MEMORY_BACKEND_LOST_PAGE_ACTION_GUEST_ERROR;
    rb->memory_loss = loss;
    if (phase_check(PHASE_MACHINE_READY)) {
        /* Hot-plugged memory: watched from the start. */
        guest_memory_watch_start(rb);
    }
}

void guest_memory_loss_block_removed(RAMBlock *rb)
{
    QueuedReport *q = rb->memory_loss ? rb->memory_loss->incident_report
                                      : NULL;

    /* Unplugged: no more watching (the bitmap goes with the block). */
    guest_memory_watch_stop(rb);
    if (q) {
        /* Reported without the block, which is going. */
        q->f.block = NULL;
        rb->memory_loss->incident_report = NULL;
    }
}

void guest_memory_loss_block_free(RAMBlock *rb)
{
    if (rb->memory_loss) {
        guest_memory_trap_free(rb);
        g_free(rb->memory_loss->lost);
        g_free(rb->memory_loss);
        rb->memory_loss = NULL;
    }
}

/* --- lost ranges, and QEMU's readers --- */

/* The guest-physical ranges of the lost pages of @rb. */
GArray *guest_memory_lost_ranges(RAMBlock *rb)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    GArray *ranges = g_array_new(false, false, sizeof(GuestMemoryRange));
    uint64_t page = guest_memory_page_size(rb);
    uint64_t p = 0, q;

    while (loss && ranges->len < GUEST_MEMORY_MAX_RANGES) {
        p = find_next_bit(loss->lost, loss->nr_pages, p);
        if (p >= loss->nr_pages) {
            break;
        }
        q = find_next_zero_bit(loss->lost, loss->nr_pages, p);
        guest_memory_range_to_gpa(rb, p * page, MIN(q * page, rb->used_length),
                                  ranges);
        p = q;
    }
    guest_memory_merge_ranges(ranges);
    return ranges;
}

void guest_memory_append_ranges(GString *s, GArray *ranges, guint max)
{
    for (guint i = 0; i < ranges->len && i < max; i++) {
        GuestMemoryRange *r = &g_array_index(ranges, GuestMemoryRange, i);

        g_string_append_printf(s, "%s0x%" PRIx64 "-0x%" PRIx64,
                               i ? ", " : "", r->gpa, r->gpa + r->size - 1);
    }
    if (ranges->len > max) {
        g_string_append_printf(s, " and %u more", ranges->len - max);
    }
}

static bool block_error(RAMBlock *rb, Error **errp)
{
    g_autoptr(GArray) ranges = guest_memory_lost_ranges(rb);
    g_autoptr(GString) s = g_string_new(NULL);

    guest_memory_append_ranges(s, ranges, GUEST_MEMORY_LINE_RANGES);
    error_setg(errp, "guest RAM block %s has lost its host backing at GPA "
               "%s (%lu pages of 0x%" PRIx64 " bytes); its contents "
               "there are gone and are not read as guest data",
               qemu_ram_get_idstr(rb), ranges->len ? s->str : "(unmapped)",
               qatomic_read(&rb->memory_loss->lost_pages),
               guest_memory_page_size(rb));
    return false;
}

typedef struct CheckLost {
    RAMBlock *found;
} CheckLost;

static int check_lost_cb(RAMBlock *rb, void *opaque)
{
    CheckLost *s = opaque;

    if (rb->memory_loss && qatomic_read(&rb->memory_loss->lost_pages)) {
        s->found = rb;
        return 1;
    }
    return 0;
}

bool guest_memory_check_lost(RAMBlock *rb, Error **errp)
{
    CheckLost s = { NULL };

    if (rb) {
        if (rb->memory_loss && qatomic_read(&rb->memory_loss->lost_pages)) {
            return block_error(rb, errp);
        }
        return true;
    }
    qemu_ram_foreach_block(check_lost_cb, &s);
    return s.found ? block_error(s.found, errp) : true;
}

bool guest_memory_as_range_lost(AddressSpace *as, hwaddr addr, hwaddr len)
{
    MemoryRegion *mr;
    hwaddr xlat, l = len;

    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(as, addr, &xlat, &l, false,
                                 MEMTXATTRS_UNSPECIFIED);
    if (guest_memory_trap_of(mr)) {
        /* Lost RAM covered for KVM's sake. */
        return true;
    }
    return memory_region_is_ram(mr) && mr->ram_block &&
           guest_memory_ram_lost(mr->ram_block, xlat, l);
}

bool guest_memory_check_gpa_range(hwaddr gpa, hwaddr len, Error **errp)
{
    while (len) {
        MemoryRegionSection sec;
        hwaddr l;
        bool lost = false;

        sec = memory_region_find(get_system_memory(), gpa, len);
        if (!sec.mr) {
            return true;
        }
        l = int128_get64(sec.size);
        if (sec.offset_within_address_space > gpa) {
            /* A hole before the next section. */
            l = sec.offset_within_address_space - gpa;
        } else if (memory_region_is_ram(sec.mr) && sec.mr->ram_block) {
            lost = guest_memory_ram_lost(sec.mr->ram_block,
                                         sec.offset_within_region, l);
        } else {
            /* Lost RAM covered for KVM's sake is lost all the same. */
            lost = guest_memory_trap_of(sec.mr) != NULL;
        }
        memory_region_unref(sec.mr);
        if (lost) {
            error_setg(errp, "guest memory at 0x%016" HWADDR_PRIx " is not "
                       "backed by host memory (see the GUEST_MEMORY_FAULT "
                       "event)", gpa);
            return false;
        }
        if (!l) {
            return true;
        }
        gpa += l;
        len -= MIN(len, l);
    }
    return true;
}
