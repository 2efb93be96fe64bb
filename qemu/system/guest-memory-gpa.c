/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Between RAM block offsets and guest-physical addresses: the ranges of
 * the system address space where a part of a RAM block is mapped (a
 * block may be mapped at several places, or at none), and the RAM block
 * behind a guest-physical address.
 */

#include "qemu/osdep.h"
#include "qemu/rcu.h"
#include "system/address-spaces.h"
#include "system/guest-memory-fault.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "guest-memory-internal.h"

/* --- guest-physical ranges of a RAM block --- */

typedef struct CollectGpa {
    const MemoryRegion *mr;
    ram_addr_t start, end;          /* in the block */
    GArray *ranges;                 /* GuestMemoryRange */
} CollectGpa;

static bool collect_gpa_cb(Int128 start, Int128 len, const MemoryRegion *mr,
                           hwaddr offset_in_region, void *opaque)
{
    CollectGpa *s = opaque;
    GuestMemoryTrap *t;
    uint64_t lo, hi;
    GuestMemoryRange r;

    if (mr != s->mr) {
        /* A region that covers lost RAM of the block stands for it. */
        t = guest_memory_trap_of(mr);
        if (!t || t->rb->mr != s->mr) {
            return false;
        }
        offset_in_region += t->offset;
    }
    lo = MAX(s->start, offset_in_region);
    hi = MIN(s->end, offset_in_region + int128_get64(len));
    if (lo < hi) {
        r.gpa = int128_get64(start) + (lo - offset_in_region);
        r.size = hi - lo;
        g_array_append_val(s->ranges, r);
    }
    return false;
}

static gint range_cmp(gconstpointer a, gconstpointer b)
{
    const GuestMemoryRange *x = a, *y = b;

    return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/*
 * Where [@start, @end) of @rb appears in the guest-physical address space
 * (every alias: below and above 4 GiB, holes excluded), appended to
 * @ranges; guest_memory_merge_ranges() sorts and merges them.
 */
void guest_memory_range_to_gpa(RAMBlock *rb, ram_addr_t start,
                               ram_addr_t end, GArray *ranges)
{
    CollectGpa s = { .mr = rb->mr, .start = start, .end = end,
                     .ranges = ranges };

    WITH_RCU_READ_LOCK_GUARD() {
        flatview_for_each_range(
            address_space_to_flatview(&address_space_memory),
            collect_gpa_cb, &s);
    }
}

void guest_memory_merge_ranges(GArray *ranges)
{
    guint out = 0;

    g_array_sort(ranges, range_cmp);
    for (guint i = 0; i < ranges->len; i++) {
        GuestMemoryRange *r = &g_array_index(ranges, GuestMemoryRange, i);
        GuestMemoryRange *o = &g_array_index(ranges, GuestMemoryRange, out);

        if (i && o->gpa + o->size == r->gpa) {
            o->size += r->size;
        } else if (i) {
            out++;
            g_array_index(ranges, GuestMemoryRange, out) = *r;
        }
    }
    if (ranges->len) {
        g_array_set_size(ranges, out + 1);
    }
}

/* --- from a RAM block offset to a guest physical address --- */

bool guest_memory_offset_to_gpa(RAMBlock *rb, ram_addr_t offset,
                                hwaddr *gpa)
{
    g_autoptr(GArray) ranges = g_array_new(false, false,
                                           sizeof(GuestMemoryRange));

    guest_memory_range_to_gpa(rb, offset, offset + 1, ranges);
    if (!ranges->len) {
        return false;
    }
    *gpa = g_array_index(ranges, GuestMemoryRange, 0).gpa;
    return true;
}

RAMBlock *guest_memory_gpa_to_block(hwaddr gpa, ram_addr_t *offset)
{
    MemoryRegionSection section;
    RAMBlock *rb = NULL;
    GuestMemoryTrap *t;

    section = memory_region_find(get_system_memory(), gpa, 1);
    if (!section.mr) {
        return NULL;
    }
    t = guest_memory_trap_of(section.mr);
    if (memory_region_is_ram(section.mr) && section.mr->ram_block) {
        rb = section.mr->ram_block;
        *offset = section.offset_within_region;
    } else if (t) {
        /* Lost RAM covered for KVM's sake (guest-memory-trap.c). */
        rb = t->rb;
        *offset = t->offset + section.offset_within_region;
    }
    memory_region_unref(section.mr);
    return rb;
}
