/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One report for every guest-memory fault.  Guest RAM whose host backing
 * is gone reaches QEMU in many shapes (a failed vCPU run, an MMIO exit
 * at a RAM address, a memory-fault exit, an emulation failure: whatever
 * the accelerator reports; a SIGBUS on a vCPU or on QEMU's own access);
 * this file finds what is behind the faulting address without touching
 * it (RAM block, backing, cause), prints one report (a first line the
 * accelerator may word as its users know it, and a detail line), emits
 * GUEST_MEMORY_FAULT, recovers from SIGBUS without dying or looping, and
 * watches backing files so that a truncation is noticed before the guest
 * touches the lost pages.
 *
 * Nothing lost, nothing fabricated:
 * - every page known to have lost its backing is marked in the block's
 *   GuestMemoryLoss bitmap (from the SIGBUS handler, or from the report
 *   for a truncated tail); migration, snapshots, dump, memsave/pmemsave
 *   and device DMA consult it and fail instead of reading the anonymous
 *   page that keeps QEMU alive after a SIGBUS;
 * - one report per incident: the first fault on a block is reported,
 *   later ones are merged into it until management resets the VM; a cap
 *   bounds the reports of a pathological guest;
 * - the stop is sticky: from the report until a reset by management,
 *   guest-originated resets, shutdowns and suspends are dropped
 *   (system/runstate.c asks guest_memory_fault_holds_stop());
 * - a reset by management restores QEMU's mapping of the backing; pages
 *   the backing has again are forgotten, the others stay lost.
 */

#include "qemu/osdep.h"
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/inotify.h>
#include <linux/magic.h>
#include "qemu/bitops.h"
#include "qemu/error-report.h"
#include "qemu/futex.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/units.h"
#include "qemu/accel.h"
#include "qapi/error.h"
#include "qom/object.h"
#include "qapi/qapi-events-run-state.h"
#include "hw/core/cpu.h"
#include "hw/qdev-core.h"
#include "qemu/cutils.h"
#include "accel/accel-cpu-ops.h"
#include "system/address-spaces.h"
#include "system/cpus.h"
#include "system/guest-memory-fault.h"
#include "system/hw_accel.h"
#include "system/hostmem.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "system/runstate.h"
#include "trace.h"
#include "host/signal-fault.h"

/*
 * Faults recorded by the SIGBUS handler, reported outside signal context.
 * A slot goes EMPTY -> FILLING (handler) -> READY -> TAKING (reporter) ->
 * EMPTY, each step by compare-and-swap, so that no two threads fill or
 * report the same slot.  When every slot is busy the fault is still
 * marked lost and counted in pending_overflow; the report says so.
 */
#define PENDING_SLOTS 64

enum {
    PENDING_EMPTY,
    PENDING_FILLING,
    PENDING_READY,
    PENDING_TAKING,
};

typedef struct PendingFault {
    int state;
    int cpu_index;
    int code;
    void *addr;
    GuestMemoryAccess access;
} PendingFault;

static PendingFault pending[PENDING_SLOTS];
static unsigned pending_overflow;
/* Slots READY or being filled: zero on every exit but a fault's. */
static unsigned pending_busy;

static QEMUBH *report_bh;

/* From the first report until a reset by management. */
static bool holds_stop;
/* Reports printed since the last reset by management. */
static unsigned reports_since_reset;
/* More than this many incidents without a reset are only counted. */
#define REPORT_CAP 16

/*
 * A report waiting for the vCPUs to stop: the fault that opened the
 * incident, and every vCPU whose fault was merged into it meanwhile.
 */
typedef struct QueuedReport {
    GuestMemoryFault f;
    GArray *cpus;                   /* int, f.cpu_index first */
    QTAILQ_ENTRY(QueuedReport) next;
} QueuedReport;

static QTAILQ_HEAD(, QueuedReport) queued_reports =
    QTAILQ_HEAD_INITIALIZER(queued_reports);
static bool emitting;

/* Lost ranges listed in one report line; the event lists up to MAX. */
#define LINE_RANGES 4
#define MAX_RANGES 64

void guest_memory_fault_init(GuestMemoryFault *f, GuestMemoryFaultPath path,
                             int cpu_index)
{
    memset(f, 0, sizeof(*f));
    f->path = path;
    f->cpu_index = cpu_index;
    f->count = 1;
    f->access = GUEST_MEMORY_ACCESS_UNKNOWN;
    f->backing = GUEST_MEMORY_BACKING_NONE;
    f->cause = GUEST_MEMORY_FAULT_CAUSE_UNKNOWN;
}

void guest_memory_fault_set_gpa(GuestMemoryFault *f, hwaddr gpa,
                                uint64_t size)
{
    f->has_gpa = true;
    f->gpa = gpa;
    f->size = size;
}

void guest_memory_fault_cleanup(GuestMemoryFault *f)
{
    g_free(f->backing_path);
    g_free(f->cause_detail);
    f->backing_path = NULL;
    f->cause_detail = NULL;
}

bool guest_memory_fault_holds_stop(void)
{
    return qatomic_read(&holds_stop);
}

/* --- lost pages --- */

static void watch_block_start(RAMBlock *rb);
static void watch_block_stop(RAMBlock *rb);

static uint64_t block_page_size(RAMBlock *rb)
{
    return rb->page_size ? rb->page_size : qemu_real_host_page_size();
}

/* Mark [@start, @end) of @rb lost.  Async-signal-safe. */
static void mark_lost(RAMBlock *rb, ram_addr_t start, ram_addr_t end)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    uint64_t page = block_page_size(rb);
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
static bool block_truncated_at(RAMBlock *rb, ram_addr_t *offset,
                               off_t *file_size)
{
    struct stat st;
    uint64_t page = block_page_size(rb);
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
    uint64_t page = block_page_size(rb);
    uint64_t first = offset / page, last;

    if (!loss || !len || first >= loss->nr_pages) {
        return false;
    }
    last = MIN((offset + len - 1) / page, loss->nr_pages - 1);
    return find_next_bit(loss->lost, last + 1, first) <= last;
}

void guest_memory_loss_block_added(RAMBlock *rb)
{
    GuestMemoryLoss *loss = g_new0(GuestMemoryLoss, 1);

    loss->nr_pages = DIV_ROUND_UP(rb->max_length, block_page_size(rb));
    loss->lost = bitmap_new(loss->nr_pages);
    loss->wd = -1;
    rb->memory_loss = loss;
    if (phase_check(PHASE_MACHINE_READY)) {
        /* Hot-plugged memory: watched from the start. */
        watch_block_start(rb);
    }
}

void guest_memory_loss_block_removed(RAMBlock *rb)
{
    QueuedReport *q = rb->memory_loss ? rb->memory_loss->incident_report
                                      : NULL;

    /* Unplugged: no more watching (the bitmap goes with the block). */
    watch_block_stop(rb);
    if (q) {
        /* Reported without the block, which is going. */
        q->f.block = NULL;
        rb->memory_loss->incident_report = NULL;
    }
}

void guest_memory_loss_block_free(RAMBlock *rb)
{
    if (rb->memory_loss) {
        g_free(rb->memory_loss->lost);
        g_free(rb->memory_loss);
        rb->memory_loss = NULL;
    }
}

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
    uint64_t lo, hi;
    GuestMemoryRange r;

    if (mr != s->mr) {
        return false;
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
 * @ranges (sorted, adjacent ranges merged).
 */
static void block_range_to_gpa(RAMBlock *rb, ram_addr_t start,
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

static void sort_merge_ranges(GArray *ranges)
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

/* The guest-physical ranges of the lost pages of @rb. */
static GArray *lost_gpa_ranges(RAMBlock *rb)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    GArray *ranges = g_array_new(false, false, sizeof(GuestMemoryRange));
    uint64_t page = block_page_size(rb);
    uint64_t p = 0, q;

    while (loss && ranges->len < MAX_RANGES) {
        p = find_next_bit(loss->lost, loss->nr_pages, p);
        if (p >= loss->nr_pages) {
            break;
        }
        q = find_next_zero_bit(loss->lost, loss->nr_pages, p);
        block_range_to_gpa(rb, p * page, MIN(q * page, rb->used_length),
                           ranges);
        p = q;
    }
    sort_merge_ranges(ranges);
    return ranges;
}

static void append_ranges(GString *s, GArray *ranges, guint max)
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
    g_autoptr(GArray) ranges = lost_gpa_ranges(rb);
    g_autoptr(GString) s = g_string_new(NULL);

    append_ranges(s, ranges, LINE_RANGES);
    error_setg(errp, "guest RAM block %s has lost its host backing at GPA "
               "%s (%" PRIu64 " pages of 0x%" PRIx64 " bytes); its contents "
               "there are gone and are not read as guest data",
               qemu_ram_get_idstr(rb), ranges->len ? s->str : "(unmapped)",
               qatomic_read(&rb->memory_loss->lost_pages),
               block_page_size(rb));
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

/* --- from a RAM block offset to a guest physical address --- */

static bool ram_block_offset_to_gpa(RAMBlock *rb, ram_addr_t offset,
                                    hwaddr *gpa)
{
    g_autoptr(GArray) ranges = g_array_new(false, false,
                                           sizeof(GuestMemoryRange));

    block_range_to_gpa(rb, offset, offset + 1, ranges);
    if (!ranges->len) {
        return false;
    }
    *gpa = g_array_index(ranges, GuestMemoryRange, 0).gpa;
    return true;
}

static RAMBlock *gpa_to_ram_block(hwaddr gpa, ram_addr_t *offset)
{
    MemoryRegionSection section;
    RAMBlock *rb = NULL;

    section = memory_region_find(get_system_memory(), gpa, 1);
    if (!section.mr) {
        return NULL;
    }
    if (memory_region_is_ram(section.mr) && section.mr->ram_block) {
        rb = section.mr->ram_block;
        *offset = section.offset_within_region;
    }
    memory_region_unref(section.mr);
    return rb;
}

/* --- probing, without touching guest memory --- */

static char *fd_path(int fd)
{
    g_autofree char *proc = g_strdup_printf("/proc/self/fd/%d", fd);
    char buf[PATH_MAX];
    ssize_t n = readlink(proc, buf, sizeof(buf) - 1);

    if (n < 0) {
        return NULL;
    }
    buf[n] = '\0';
    return g_strdup(buf);
}

/*
 * Does rb->fd hold a guest_memfd?  RAM can live in one that QEMU maps
 * (memory-backend-memfd,guest-memfd=on); it has a fixed size and no
 * filesystem, so it is neither watched nor checked for free space.
 */
static bool block_fd_is_guest_memfd(RAMBlock *rb)
{
    return rb->flags & RAM_GUEST_MEMFD_MMAP;
}

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

/*
 * Free bytes of the filesystem under @fd; false when it has no limit.
 * tmpfs with size=0 and memfd's internal mount report f_blocks == 0: no
 * limit.  hugetlbfs without a size= limit reports f_blocks == 0 too, but
 * is bounded by the free huge pages of its page size.
 */
static bool fs_free_bytes(int fd, uint64_t *free_bytes)
{
    struct statfs sfs;

    if (fstatfs(fd, &sfs) < 0) {
        return false;
    }
    if (sfs.f_type == HUGETLBFS_MAGIC && sfs.f_blocks == 0) {
        g_autofree char *path = NULL;
        g_autofree char *text = NULL;
        uint64_t pages;

        path = g_strdup_printf("/sys/kernel/mm/hugepages/hugepages-%"
                               PRIu64 "kB/free_hugepages",
                               (uint64_t)sfs.f_bsize / KiB);
        if (!g_file_get_contents(path, &text, NULL, NULL) ||
            qemu_strtou64(g_strstrip(text), NULL, 10, &pages) < 0) {
            return false;
        }
        *free_bytes = pages * sfs.f_bsize;
        return true;
    }
    if (sfs.f_blocks == 0) {
        return false;
    }
    *free_bytes = (uint64_t)sfs.f_bavail * sfs.f_bsize;
    return true;
}

static void probe_backing(GuestMemoryFault *f)
{
    RAMBlock *rb = f->block;

    if (!rb) {
        f->backing = GUEST_MEMORY_BACKING_NONE;
        return;
    }
    if (f->is_private && rb->guest_memfd >= 0) {
        f->backing = GUEST_MEMORY_BACKING_GUEST_MEMFD;
        f->backing_path = fd_path(rb->guest_memfd);
    } else if (rb->fd < 0) {
        f->backing = GUEST_MEMORY_BACKING_ANONYMOUS;
    } else {
        f->backing_path = fd_path(rb->fd);
        if (block_fd_is_guest_memfd(rb)) {
            f->backing = GUEST_MEMORY_BACKING_GUEST_MEMFD;
        } else if (f->backing_path &&
                   g_str_has_prefix(f->backing_path, "/memfd:")) {
            f->backing = GUEST_MEMORY_BACKING_MEMFD;
        } else {
            f->backing = GUEST_MEMORY_BACKING_FILE;
        }
    }
}

static void set_cause(GuestMemoryFault *f, GuestMemoryFaultCause cause,
                      char *detail)
{
    f->cause = cause;
    g_free(f->cause_detail);
    f->cause_detail = detail;
}

/*
 * Is the page at @pos of @fd backed?  A page past the end of the file is
 * not; a hole in a file on a filesystem with no room left for a page is
 * not either (tmpfs and hugetlbfs answer the fault with SIGBUS/EFAULT).
 */
static void probe_fd_page(GuestMemoryFault *f, int fd, uint64_t pos,
                          uint64_t page)
{
    struct stat st;
    uint64_t free_bytes;
    off_t data;

    if (fstat(fd, &st) < 0) {
        set_cause(f, GUEST_MEMORY_FAULT_CAUSE_UNKNOWN,
                  g_strdup_printf("cannot stat the backing: %s",
                                  strerror(errno)));
        return;
    }
    if ((uint64_t)st.st_size < pos + page) {
        f->backing_size = st.st_size;
        set_cause(f, GUEST_MEMORY_FAULT_CAUSE_BACKING_TRUNCATED,
                  g_strdup_printf("backing file truncated to 0x%" PRIx64
                                  " bytes", (uint64_t)st.st_size));
        return;
    }
    data = lseek(fd, pos, SEEK_DATA);
    if ((data < 0 && errno == ENXIO) || (data >= 0 && (uint64_t)data > pos)) {
        if (fs_free_bytes(fd, &free_bytes) && free_bytes < page) {
            set_cause(f, GUEST_MEMORY_FAULT_CAUSE_NO_SPACE,
                      g_strdup_printf("no space left on the backing "
                                      "filesystem (0x%" PRIx64 " bytes "
                                      "free, page size 0x%" PRIx64 ")",
                                      free_bytes, page));
            return;
        }
    }
    set_cause(f, GUEST_MEMORY_FAULT_CAUSE_UNKNOWN,
              g_strdup("the backing page exists; cause unknown"));
}

bool guest_memory_fault_probe(GuestMemoryFault *f)
{
    RAMBlock *rb;
    ram_addr_t offset = 0;
    uint64_t page;

    if (!f->block && f->host_addr) {
        rb = qemu_ram_block_from_host(f->host_addr, false, &offset);
        if (rb) {
            hwaddr gpa;

            page = block_page_size(rb);
            f->block = rb;
            f->offset = QEMU_ALIGN_DOWN(offset, page);
            if (!f->has_gpa && ram_block_offset_to_gpa(rb, offset, &gpa)) {
                guest_memory_fault_set_gpa(f, QEMU_ALIGN_DOWN(gpa, page),
                                           page);
            }
        }
    }
    if (!f->block && f->has_gpa) {
        rb = gpa_to_ram_block(f->gpa, &offset);
        if (rb) {
            f->block = rb;
            f->offset = offset;
        }
    }
    probe_backing(f);

    if (f->sigbus_code == BUS_MCEERR_AR || f->sigbus_code == BUS_MCEERR_AO) {
        set_cause(f, GUEST_MEMORY_FAULT_CAUSE_HARDWARE_ERROR,
                  g_strdup("hardware memory error (poisoned page)"));
        return true;
    }
    if (!f->block) {
        set_cause(f, GUEST_MEMORY_FAULT_CAUSE_NO_MEMSLOT,
                  g_strdup("no RAM at this guest physical address"));
        return f->has_gpa;
    }

    rb = f->block;
    page = block_page_size(rb);
    if (f->backing == GUEST_MEMORY_BACKING_GUEST_MEMFD && f->is_private) {
        probe_fd_page(f, rb->guest_memfd,
                      QEMU_ALIGN_DOWN(f->offset, page), page);
    } else if (rb->fd >= 0) {
        probe_fd_page(f, rb->fd,
                      rb->fd_offset + QEMU_ALIGN_DOWN(f->offset, page), page);
    } else {
        set_cause(f, GUEST_MEMORY_FAULT_CAUSE_UNKNOWN,
                  g_strdup("anonymous memory; cause unknown"));
    }
    return f->cause != GUEST_MEMORY_FAULT_CAUSE_UNKNOWN;
}

bool guest_memory_gpa_is_unbacked(hwaddr gpa, GuestMemoryFault *f)
{
    ram_addr_t offset;
    RAMBlock *rb = gpa_to_ram_block(gpa, &offset);

    if (!rb || (rb->fd < 0 && !(f->is_private && rb->guest_memfd >= 0))) {
        /* Not RAM, or anonymous RAM: nothing to check without touching. */
        return false;
    }
    if (!f->has_gpa) {
        guest_memory_fault_set_gpa(f, gpa, 0);
    }
    f->block = rb;
    f->offset = offset;
    if (guest_memory_fault_probe(f)) {
        return true;
    }
    guest_memory_fault_cleanup(f);
    return false;
}

typedef struct FindUnbacked {
    GuestMemoryFault *f;
    bool found;
} FindUnbacked;

static int find_unbacked_cb(RAMBlock *rb, void *opaque)
{
    FindUnbacked *s = opaque;
    ram_addr_t offset;
    off_t size;

    if (s->found || !block_truncated_at(rb, &offset, &size)) {
        return 0;
    }
    s->found = true;
    s->f->block = rb;
    s->f->offset = offset;
    return 1;
}

/* A block whose backing filesystem has no room for another page. */
static int find_full_fs_cb(RAMBlock *rb, void *opaque)
{
    FindUnbacked *s = opaque;
    uint64_t free_bytes;

    if (s->found || rb->fd < 0 || block_fd_is_guest_memfd(rb) ||
        !fs_free_bytes(rb->fd, &free_bytes) ||
        free_bytes >= block_page_size(rb)) {
        return 0;
    }
    s->found = true;
    s->f->block = rb;
    s->f->offset = 0;
    s->f->page_unknown = true;
    return 1;
}

bool guest_memory_find_unbacked(GuestMemoryFault *f)
{
    FindUnbacked s = { .f = f };
    uint64_t free_bytes = 0;

    qemu_ram_foreach_block(find_unbacked_cb, &s);
    if (s.found) {
        guest_memory_fault_probe(f);
        return true;
    }
    qemu_ram_foreach_block(find_full_fs_cb, &s);
    if (s.found) {
        probe_backing(f);
        fs_free_bytes(f->block->fd, &free_bytes);
        set_cause(f, GUEST_MEMORY_FAULT_CAUSE_NO_SPACE,
                  g_strdup_printf("no space left on the backing filesystem "
                                  "(0x%" PRIx64 " bytes free); the page is "
                                  "not known", free_bytes));
    }
    return s.found;
}

bool guest_memory_fault_check_guest_request(const char *what,
                                            int cpu_index)
{
    GuestMemoryFault f;
    FindUnbacked s = { .f = &f };

    /*
     * Only a truncated backing: a full filesystem loses no page by
     * itself, and a healthy guest must still be able to reboot.
     */
    guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_GUEST_REQUEST,
                            cpu_index);
    qemu_ram_foreach_block(find_unbacked_cb, &s);
    if (!s.found) {
        guest_memory_fault_cleanup(&f);
        return false;
    }
    f.request = what;
    guest_memory_fault_probe(&f);
    guest_memory_fault_report_and_stop(&f);
    guest_memory_fault_cleanup(&f);
    return true;
}

/* --- the report --- */

static const char *access_words(GuestMemoryAccess access)
{
    switch (access) {
    case GUEST_MEMORY_ACCESS_READ:
        return "read";
    case GUEST_MEMORY_ACCESS_WRITE:
        return "write";
    case GUEST_MEMORY_ACCESS_FETCH:
        return "instruction fetch";
    default:
        return "access unknown";
    }
}

static char *backing_words(GuestMemoryFault *f)
{
    const char *path = f->backing_path ? f->backing_path : "?";

    switch (f->backing) {
    case GUEST_MEMORY_BACKING_FILE:
        return g_strdup_printf("backed by file %s", path);
    case GUEST_MEMORY_BACKING_MEMFD:
        return g_strdup_printf("backed by memfd %s", path);
    case GUEST_MEMORY_BACKING_GUEST_MEMFD:
        return g_strdup_printf("backed by guest_memfd %s", path);
    case GUEST_MEMORY_BACKING_ANONYMOUS:
        return g_strdup("backed by anonymous memory");
    default:
        return g_strdup("not RAM");
    }
}

/* The accelerator's name, for the event. */
static char *accel_name(void)
{
    const char *name = current_accel_name();

    return g_ascii_strdown(name ? name : "none", -1);
}

/* The report's first line, as the accelerator's users know it. */
static char *report_headline(void)
{
    const AccelOpsClass *ops = cpus_get_accel();

    if (ops && ops->guest_memory_fault_headline) {
        return ops->guest_memory_fault_headline();
    }
    return g_strdup("guest memory fault");
}

/* What of the block @f names is lost, given its cause. */
static void mark_fault_lost(GuestMemoryFault *f)
{
    RAMBlock *rb = f->block;
    uint64_t page;
    ram_addr_t start;
    off_t size;

    if (!rb) {
        return;
    }
    page = block_page_size(rb);
    switch (f->cause) {
    case GUEST_MEMORY_FAULT_CAUSE_BACKING_TRUNCATED:
        /* Everything past the end of the file. */
        if (block_truncated_at(rb, &start, &size)) {
            mark_lost(rb, start, rb->used_length);
        }
        break;
    case GUEST_MEMORY_FAULT_CAUSE_NO_SPACE:
    case GUEST_MEMORY_FAULT_CAUSE_HARDWARE_ERROR:
        if (f->has_gpa || f->host_addr) {
            start = QEMU_ALIGN_DOWN(f->offset, page);
            mark_lost(rb, start, start + MAX(f->size, page));
        }
        break;
    default:
        /* A mismatch or a missing slot loses no data. */
        break;
    }
}

static void queued_add_cpu(QueuedReport *q, int cpu_index)
{
    if (cpu_index < 0) {
        return;
    }
    for (guint i = 0; i < q->cpus->len; i++) {
        if (g_array_index(q->cpus, int, i) == cpu_index) {
            return;
        }
    }
    g_array_append_val(q->cpus, cpu_index);
}

static void queued_free(QueuedReport *q)
{
    guest_memory_fault_cleanup(&q->f);
    g_array_free(q->cpus, true);
    g_free(q);
}

bool guest_memory_fault_report(GuestMemoryFault *f)
{
    GuestMemoryLoss *loss;
    QueuedReport *q;
    bool locked = bql_locked();
    bool opened = false;
    const char *block;

    /* vCPU threads report without the BQL; events and the monitor want it. */
    if (!locked) {
        bql_lock();
    }
    if (!f->cause_detail) {
        guest_memory_fault_probe(f);
    }
    qatomic_set(&holds_stop, true);
    mark_fault_lost(f);
    block = f->block ? qemu_ram_get_idstr(f->block) : NULL;
    loss = f->block ? f->block->memory_loss : NULL;

    if (loss && loss->incident_open) {
        /* The same incident: one truncation, one pass, several vCPUs. */
        loss->incident_faults += f->count;
        q = loss->incident_report;
        if (q) {
            /* Not printed yet: the report names this vCPU too. */
            q->f.count += f->count;
            queued_add_cpu(q, f->cpu_index);
        }
        trace_guest_memory_fault_merged(GuestMemoryFaultPath_str(f->path),
                                        f->cpu_index, block,
                                        loss->incident_faults);
        goto out;
    }
    if (reports_since_reset >= REPORT_CAP) {
        if (reports_since_reset++ == REPORT_CAP) {
            error_report("guest memory fault: %u incidents since the last "
                         "reset; further ones are not reported until the "
                         "VM is reset", REPORT_CAP);
        }
        trace_guest_memory_fault_merged(GuestMemoryFaultPath_str(f->path),
                                        f->cpu_index, block ? block : "-", 0);
        goto out;
    }
    reports_since_reset++;

    q = g_new0(QueuedReport, 1);
    q->f = *f;
    q->f.backing_path = g_strdup(f->backing_path);
    q->f.cause_detail = g_strdup(f->cause_detail);
    q->cpus = g_array_new(false, false, sizeof(int));
    queued_add_cpu(q, f->cpu_index);
    QTAILQ_INSERT_TAIL(&queued_reports, q, next);
    if (loss) {
        loss->incident_open = true;
        loss->incident_faults = f->count;
        loss->incident_report = q;
    }
    opened = true;
out:
    if (!locked) {
        bql_unlock();
    }
    return opened;
}

/* Print the report lines and send the event for @q. */
static void print_report(QueuedReport *q)
{
    GuestMemoryFault *f = &q->f;
    g_autoptr(GString) line = g_string_new("guest memory fault: ");
    g_autoptr(GArray) ranges = NULL;
    g_autofree char *backing = NULL;
    g_autofree char *accel = accel_name();
    g_autofree char *headline = report_headline();
    GuestMemoryRangeList *event_ranges = NULL, **tail = &event_ranges;
    intList *event_cpus = NULL, **cpu_tail = &event_cpus;
    GuestMemoryLoss *loss = f->block ? f->block->memory_loss : NULL;
    const char *block = f->block ? qemu_ram_get_idstr(f->block) : NULL;
    /* Other vCPUs met the same loss before they stopped. */
    bool several = q->cpus->len > (f->cpu_index >= 0 ? 1 : 0);

    if (loss && qatomic_read(&loss->lost_pages)) {
        ranges = lost_gpa_ranges(f->block);
    } else {
        ranges = g_array_new(false, false, sizeof(GuestMemoryRange));
    }
    if (ranges->len && (!f->has_gpa || !f->size ||
                        f->path == GUEST_MEMORY_FAULT_PATH_BACKING_WATCH ||
                        f->path == GUEST_MEMORY_FAULT_PATH_GUEST_REQUEST)) {
        /* No access yet: the first range the guest lost. */
        GuestMemoryRange *r = &g_array_index(ranges, GuestMemoryRange, 0);

        guest_memory_fault_set_gpa(f, r->gpa, r->size);
    }
    backing = backing_words(f);

    if (f->cpu_index >= 0) {
        g_string_append_printf(line, "vCPU %d, ", f->cpu_index);
    } else if (f->path == GUEST_MEMORY_FAULT_PATH_BACKING_WATCH) {
        g_string_append(line, "no access yet, ");
    } else if (f->path != GUEST_MEMORY_FAULT_PATH_GUEST_REQUEST) {
        g_string_append(line, "QEMU's own access, ");
    }
    if (several) {
        g_string_append(line, "also vCPU");
        for (guint i = f->cpu_index >= 0; i < q->cpus->len; i++) {
            g_string_append_printf(line, " %d", g_array_index(q->cpus, int,
                                                              i));
        }
        g_string_append(line, ", ");
    }
    if (f->path == GUEST_MEMORY_FAULT_PATH_GUEST_REQUEST) {
        g_string_append_printf(line, "found at a guest %s request, ",
                               f->request);
    }
    if (f->has_gpa && f->size) {
        g_string_append_printf(line, "GPA 0x%" HWADDR_PRIx "-0x%" HWADDR_PRIx
                               ", ", f->gpa, f->gpa + f->size - 1);
    } else if (f->has_gpa) {
        g_string_append_printf(line, "GPA 0x%" HWADDR_PRIx ", ", f->gpa);
    } else {
        g_string_append(line, "GPA unknown, ");
    }
    /*
     * Only private memory is named: "shared" would read as the backend's
     * share option, which has nothing to do with it.
     */
    g_string_append_printf(line, "%s, %s", access_words(f->access),
                           f->is_private ? "private memory, " : "");
    if (block && f->page_unknown) {
        g_string_append_printf(line, "RAM block %s, ", block);
    } else if (block) {
        g_string_append_printf(line, "RAM block %s offset 0x%" PRIx64 ", ",
                               block, (uint64_t)f->offset);
    }
    g_string_append_printf(line, "%s, cause: %s (found by %s)", backing,
                           f->cause_detail,
                           GuestMemoryFaultPath_str(f->path));
    if (ranges->len) {
        g_string_append(line, "; lost: GPA ");
        append_ranges(line, ranges, LINE_RANGES);
    }
    if (f->count > 1) {
        g_string_append_printf(line, "; %u faults", f->count);
    }

    trace_guest_memory_fault_report(GuestMemoryFaultPath_str(f->path),
                                    f->cpu_index, f->has_gpa ? f->gpa : -1,
                                    f->size,
                                    GuestMemoryAccess_str(f->access),
                                    GuestMemoryFaultCause_str(f->cause));
    fprintf(stderr, "error: %s\n", headline);
    fprintf(stderr, "%s\n", line->str);

    for (guint i = 0; i < ranges->len; i++) {
        GuestMemoryRange *r = g_new(GuestMemoryRange, 1);

        *r = g_array_index(ranges, GuestMemoryRange, i);
        QAPI_LIST_APPEND(tail, r);
    }
    for (guint i = 0; several && i < q->cpus->len; i++) {
        QAPI_LIST_APPEND(cpu_tail, g_array_index(q->cpus, int, i));
    }
    qapi_event_send_guest_memory_fault(accel, f->path,
                                       f->cpu_index >= 0, f->cpu_index,
                                       event_cpus != NULL, event_cpus,
                                       f->has_gpa, f->gpa,
                                       f->size != 0, f->size,
                                       f->access, f->is_private,
                                       block,
                                       block != NULL && !f->page_unknown,
                                       f->offset,
                                       f->backing, f->backing_path,
                                       f->cause, f->cause_detail,
                                       f->count, event_ranges != NULL,
                                       event_ranges);
    qapi_free_GuestMemoryRangeList(event_ranges);
    qapi_free_intList(event_cpus);
}

static void take_recorded_faults(void);

/*
 * In the main loop, with the BQL: stop every vCPU, so that no fault is
 * still on its way, then print what is queued, dump the registers of
 * the vCPU each report is for (exact now: stopped, and unwound to the
 * faulting instruction where the accelerator can), and stop the VM.
 */
static void emit_reports(void)
{
    QueuedReport *q;
    CPUState *cpu;

    if (emitting) {
        return;
    }
    emitting = true;
    pause_all_vcpus();
    /* What the vCPUs recorded in signal handlers before they stopped. */
    take_recorded_faults();
    while ((q = QTAILQ_FIRST(&queued_reports))) {
        QTAILQ_REMOVE(&queued_reports, q, next);
        if (q->f.block && q->f.block->memory_loss &&
            q->f.block->memory_loss->incident_report == q) {
            q->f.block->memory_loss->incident_report = NULL;
        }
        print_report(q);
        cpu = q->f.cpu_index >= 0 ? qemu_get_cpu(q->f.cpu_index) : NULL;
        if (cpu) {
            /* The code bytes may be what is unbacked: do not read them. */
            cpu_synchronize_state(cpu);
            cpu_dump_state(cpu, stderr, 0);
        }
        queued_free(q);
    }
    if (runstate_is_live(runstate_get())) {
        vm_stop(RUN_STATE_INTERNAL_ERROR);
    } else {
        /*
         * Already stopped: still, it must not be resumed without a reset
         * (runstate_needs_reset() says so while holds_stop is set, even
         * where internal-error cannot be entered).
         */
        runstate_try_set(RUN_STATE_INTERNAL_ERROR);
    }
    emitting = false;
}

static void report_bh_cb(void *opaque)
{
    emit_reports();
}

void guest_memory_fault_hold_vcpu(CPUState *cpu)
{
    /* Out of the guest until the VM stops; the main loop stops it. */
    cpu_stop_current();
    qemu_bh_schedule(report_bh);
}

bool guest_memory_fault_vcpu_held(CPUState *cpu)
{
    if (!qatomic_read(&holds_stop)) {
        return false;
    }
    guest_memory_fault_hold_vcpu(cpu);
    return true;
}

void guest_memory_fault_report_and_stop(GuestMemoryFault *f)
{
    guest_memory_fault_report(f);
    if (qemu_in_vcpu_thread()) {
        guest_memory_fault_hold_vcpu(current_cpu);
    } else {
        emit_reports();
    }
}

/* --- reset by management --- */

/* Map the backing again over [@start, @end) of @rb. */
static void restore_mapping(RAMBlock *rb, ram_addr_t start, ram_addr_t end)
{
    int flags = MAP_FIXED | (qemu_ram_is_shared(rb) ? MAP_SHARED
                                                    : MAP_PRIVATE);

    if (mmap(rb->host + start, end - start, PROT_READ | PROT_WRITE, flags,
             rb->fd, rb->fd_offset + start) == MAP_FAILED) {
        warn_report("RAM block %s: cannot map its backing again at offset "
                    "0x%" PRIx64 ": %s", qemu_ram_get_idstr(rb),
                    (uint64_t)start, strerror(errno));
    }
}

static int reset_block_cb(RAMBlock *rb, void *opaque)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    uint64_t page = block_page_size(rb);
    uint64_t p = 0, q, backed_pages = loss ? loss->nr_pages : 0;
    ram_addr_t trunc;
    off_t size;

    if (!loss) {
        return 0;
    }
    loss->incident_open = false;
    loss->incident_faults = 0;
    if (rb->fd >= 0 && block_truncated_at(rb, &trunc, &size)) {
        backed_pages = trunc / page;
    }
    /* The watch fires again once the backing is whole and shrinks again. */
    loss->watch_reported = backed_pages < loss->nr_pages &&
                           rb->fd >= 0 &&
                           backed_pages * page < rb->used_length;

    while (qatomic_read(&loss->lost_pages)) {
        p = find_next_bit(loss->lost, loss->nr_pages, p);
        if (p >= loss->nr_pages) {
            break;
        }
        q = find_next_zero_bit(loss->lost, loss->nr_pages, p);
        if (rb->fd >= 0) {
            /* Drop the anonymous stand-ins: the backing again, or a fault. */
            restore_mapping(rb, p * page, MIN(q * page, rb->max_length));
        }
        for (; p < q; p++) {
            /* Anonymous RAM: the page was replaced, as for poisoned pages. */
            if (rb->fd < 0 || p < backed_pages) {
                clear_bit(p, loss->lost);
                qatomic_dec(&loss->lost_pages);
            }
        }
    }
    trace_guest_memory_fault_reset(qemu_ram_get_idstr(rb),
                                   qatomic_read(&loss->lost_pages));
    return 0;
}

void guest_memory_fault_system_reset(bool guest)
{
    if (guest) {
        return;
    }
    qemu_ram_foreach_block(reset_block_cb, NULL);
    reports_since_reset = 0;
    qatomic_set(&holds_stop, false);
}

/* --- SIGBUS --- */

/*
 * The access, if the signal context tells (host/signal-fault.h).  Only a
 * BUS_ADRERR comes from a page fault of this thread's own access; a
 * signal the kernel sends from inside a system call (a poisoned page met
 * while running a vCPU) says nothing about it.
 */
static GuestMemoryAccess sigbus_access(int code, void *ucontext)
{
    if (code != BUS_ADRERR) {
        return GUEST_MEMORY_ACCESS_UNKNOWN;
    }
    switch (host_signal_fault_access(ucontext)) {
    case HOST_FAULT_ACCESS_READ:
        return GUEST_MEMORY_ACCESS_READ;
    case HOST_FAULT_ACCESS_WRITE:
        return GUEST_MEMORY_ACCESS_WRITE;
    case HOST_FAULT_ACCESS_FETCH:
        return GUEST_MEMORY_ACCESS_FETCH;
    default:
        return GUEST_MEMORY_ACCESS_UNKNOWN;
    }
}

/*
 * Make @cpu leave guest code and stay out until the VM stops.  The
 * accelerator may unwind @cpu to the faulting guest instruction, and
 * then this does not return.
 */
static void hold_vcpu_from_signal(CPUState *cpu, void *ucontext)
{
    const AccelOpsClass *ops = cpus_get_accel();

    qatomic_set(&cpu->stop, true);
    if (ops && ops->exit_vcpu_from_signal) {
        ops->exit_vcpu_from_signal(cpu, host_signal_fault_pc(ucontext));
    } else {
        qatomic_store_release(&cpu->exit_request, true);
    }
}

/*
 * The SIGBUS handler does only async-signal-safe work: it hands the fault
 * to the SIGBUS thread with write(2) and waits on a futex for the answer.
 * That thread does the rest in thread context: it finds the RAM block,
 * marks the page lost, sets the hold and kicks the other vCPUs, records
 * the fault for the report and maps the stand-in page.  The faulting
 * thread may hold any lock (the BQL, the RAM list's), so the SIGBUS thread
 * takes none of QEMU's: RCU reads and atomics only.
 */
typedef enum SigbusOp {
    SIGBUS_RECORD,          /* is it guest RAM?  then record it */
    SIGBUS_STAND_IN,        /* map the stand-in page at its address */
} SigbusOp;

typedef struct SigbusRequest {
    SigbusOp op;
    int code;
    void *addr;
    int cpu_index;          /* -1: not a vCPU */
    GuestMemoryAccess access;
    int *answer;            /* the asker's futex: -1 until 0 (no), 1 (yes) */
} SigbusRequest;

/* Requests are smaller than PIPE_BUF: each write(2) is atomic. */
QEMU_BUILD_BUG_ON(sizeof(SigbusRequest) > PIPE_BUF);

static int sigbus_fds[2] = { -1, -1 };
static QemuThread sigbus_thread;
/* On the SIGBUS thread: a SIGBUS there cannot be answered. */
static __thread bool on_sigbus_thread;

/* SIGBUS_RECORD, in thread context: false if @r->addr is not guest RAM. */
static bool sigbus_record(const SigbusRequest *r)
{
    ram_addr_t offset, trunc;
    RAMBlock *rb;
    size_t page;
    CPUState *other;
    off_t size;
    bool tail;
    int i;

    RCU_READ_LOCK_GUARD();
    rb = qemu_ram_block_from_host(r->addr, false, &offset);
    if (!rb || !rb->memory_loss) {
        return false;
    }
    page = block_page_size(rb);
    offset = QEMU_ALIGN_DOWN(offset, page);
    /* Before the faulting page is marked: it may be the first one past. */
    tail = block_truncated_at(rb, &trunc, &size) &&
           !test_bit(trunc / page, rb->memory_loss->lost);
    mark_lost(rb, offset, offset + page);
    /*
     * From here until management resets the VM no vCPU enters the guest
     * (each holds itself at its next entry, see guest_memory_fault_
     * vcpu_held()) and nothing starts the VM: the stand-in page must not
     * reach the guest as its data before the VM stops.
     */
    qatomic_set(&holds_stop, true);
    CPU_FOREACH(other) {
        if (other->cpu_index != r->cpu_index) {
            qemu_cpu_kick_from_signal(other);
        }
    }
    if (tail) {
        /*
         * Everything past the end of the file is gone too; once marked,
         * the next faults of a pass over the tail need not mark it again.
         */
        mark_lost(rb, trunc, rb->used_length);
    }
    for (i = 0; i < PENDING_SLOTS; i++) {
        PendingFault *p = &pending[i];

        if (qatomic_cmpxchg(&p->state, PENDING_EMPTY, PENDING_FILLING) ==
            PENDING_EMPTY) {
            qatomic_inc(&pending_busy);
            p->cpu_index = r->cpu_index;
            p->code = r->code;
            p->addr = r->addr;
            p->access = r->access;
            qatomic_store_release(&p->state, PENDING_READY);
            break;
        }
    }
    if (i == PENDING_SLOTS) {
        /* Marked lost and counted: the report still covers it. */
        qatomic_inc(&pending_overflow);
        qatomic_inc(&pending_busy);
    }
    /*
     * The main loop reports whatever the faulting vCPU does not take
     * itself (guest_memory_fault_take_pending()) when it leaves the
     * guest.  It dumps the vCPU's registers only once it has stopped.
     */
    if (report_bh) {
        qemu_bh_schedule(report_bh);
    }
    return true;
}

/*
 * SIGBUS_STAND_IN: returning from the handler re-executes the faulting
 * access, which would fault again forever.  A private anonymous page in
 * its place lets the access complete; the page is marked lost, so that
 * no reader takes what it holds for guest data, and the VM stops before
 * the guest runs on.
 */
static bool sigbus_stand_in(const SigbusRequest *r)
{
    RAMBlock *rb;
    ram_addr_t offset;
    size_t page;

    RCU_READ_LOCK_GUARD();
    rb = qemu_ram_block_from_host(r->addr, false, &offset);
    if (!rb || !rb->memory_loss) {
        return false;
    }
    page = block_page_size(rb);
    if (!test_bit(offset / page, rb->memory_loss->lost)) {
        /* A reset by management made it whole meanwhile: re-execute. */
        return true;
    }
    return mmap((void *)QEMU_ALIGN_DOWN((uintptr_t)r->addr, page), page,
                PROT_READ | PROT_WRITE,
                MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED;
}

static void *sigbus_thread_fn(void *opaque)
{
    SigbusRequest r;

    on_sigbus_thread = true;
    rcu_register_thread();
    /* Each request was one write(2) of a whole one: reads get it whole. */
    while (RETRY_ON_EINTR(read(sigbus_fds[0], &r, sizeof(r))) ==
           sizeof(r)) {
        bool yes = r.op == SIGBUS_RECORD ? sigbus_record(&r)
                                         : sigbus_stand_in(&r);

        qatomic_store_release(r.answer, yes);
        qemu_futex_wake_all(r.answer);
    }
    /* Askers would wait forever. */
    abort();
}

/*
 * Async-signal-safe (write(2) and the futex system call): ask the SIGBUS
 * thread; false if it said no or cannot be asked.
 */
static bool sigbus_ask(SigbusRequest *r)
{
    int answer = -1;
    int fd = qatomic_read(&sigbus_fds[1]);

    if (fd < 0 || on_sigbus_thread) {
        return false;
    }
    r->answer = &answer;
    if (RETRY_ON_EINTR(write(fd, r, sizeof(*r))) != sizeof(*r)) {
        return false;
    }
    while (qatomic_load_acquire(&answer) < 0) {
        qemu_futex_wait(&answer, -1);
    }
    return answer;
}

bool guest_memory_fault_on_sigbus(int code, void *addr, void *ucontext,
                                  CPUState *cpu)
{
    SigbusRequest r = {
        .op = SIGBUS_RECORD,
        .code = code,
        .addr = addr,
        .cpu_index = cpu ? cpu->cpu_index : -1,
        .access = sigbus_access(code, ucontext),
    };
    int saved_errno = errno;
    bool ok;

    ok = sigbus_ask(&r);
    if (ok && cpu) {
        /* A vCPU unwound to the faulting instruction does not return. */
        hold_vcpu_from_signal(cpu, ucontext);
    }
    if (ok) {
        /* A vCPU that is unwound needs no stand-in. */
        r.op = SIGBUS_STAND_IN;
        ok = sigbus_ask(&r);
    }
    errno = saved_errno;
    return ok;
}

bool guest_memory_fault_check_backing(Error **errp)
{
    GuestMemoryFault f = { 0 };
    FindUnbacked s = { .f = &f };
    RAMBlock *rb;

    RCU_READ_LOCK_GUARD();
    qemu_ram_foreach_block(find_unbacked_cb, &s);
    rb = f.block;
    if (s.found && rb->memory_loss &&
        !test_bit(f.offset / block_page_size(rb), rb->memory_loss->lost)) {
        /* What a SIGBUS of QEMU's own read of that page would record. */
        SigbusRequest r = {
            .code = BUS_ADRERR,
            .addr = rb->host + f.offset,
            .cpu_index = -1,
            .access = GUEST_MEMORY_ACCESS_UNKNOWN,
        };

        if (sigbus_record(&r)) {
            sigbus_stand_in(&r);
        }
    }
    return !guest_memory_check_lost(NULL, errp);
}

/*
 * Take one recorded fault: of vCPU @cpu_index, or of anybody when
 * @any_cpu.  Faults of the same vCPU on the same block recorded
 * meanwhile are merged into it (@f->count); another vCPU's are left
 * for the report to name.
 */
static bool take_pending(int cpu_index, bool any_cpu, GuestMemoryFault *f)
{
    bool taken = false;
    RAMBlock *rb = NULL;

    /* An accelerator may ask on every exit: one load when nothing is. */
    if (likely(!qatomic_read(&pending_busy))) {
        return false;
    }
    for (int i = 0; i < PENDING_SLOTS; i++) {
        PendingFault *p = &pending[i];
        ram_addr_t offset;
        RAMBlock *prb;

        if (qatomic_read(&p->state) != PENDING_READY ||
            qatomic_cmpxchg(&p->state, PENDING_READY, PENDING_TAKING) !=
            PENDING_READY) {
            continue;
        }
        /* Ours now: nobody else reads or refills it until EMPTY. */
        prb = qemu_ram_block_from_host(p->addr, false, &offset);
        if ((!taken && !any_cpu && p->cpu_index != cpu_index) ||
            (taken && (prb != rb || p->cpu_index != f->cpu_index))) {
            /* Another vCPU's, or another block's: leave it. */
            qatomic_store_release(&p->state, PENDING_READY);
            continue;
        }
        if (!taken) {
            guest_memory_fault_init(f, p->cpu_index >= 0 ?
                                    GUEST_MEMORY_FAULT_PATH_SIGBUS :
                                    GUEST_MEMORY_FAULT_PATH_QEMU_ACCESS,
                                    p->cpu_index);
            f->sigbus_code = p->code;
            f->host_addr = p->addr;
            f->access = p->access;
            rb = prb;
            taken = true;
        } else {
            f->count++;
        }
        qatomic_store_release(&p->state, PENDING_EMPTY);
        qatomic_dec(&pending_busy);
    }
    if (taken) {
        unsigned overflow = qatomic_xchg(&pending_overflow, 0);

        f->count += overflow;
        qatomic_sub(&pending_busy, overflow);
    }
    return taken;
}

bool guest_memory_fault_take_pending(CPUState *cpu, GuestMemoryFault *f)
{
    return take_pending(cpu->cpu_index, false, f);
}

/*
 * A vCPU may read guest code with ordinary host loads (an accelerator
 * that translates it does): if the faulting page holds the vCPU's
 * program counter, the read was an instruction fetch (a data access to
 * that page would need the fetch to succeed first).
 */
static void classify_fetch(GuestMemoryFault *f, CPUState *cpu)
{
    MemTxAttrs attrs;
    hwaddr pc_page;
    uint64_t page;

    if (!cpu || f->access != GUEST_MEMORY_ACCESS_READ || !f->has_gpa ||
        !f->size || !cpu->cc->get_pc) {
        return;
    }
    page = f->size;
    pc_page = cpu_get_phys_page_attrs_debug(cpu, cpu->cc->get_pc(cpu),
                                            &attrs);
    if (pc_page != -1 &&
        QEMU_ALIGN_DOWN(pc_page, page) == QEMU_ALIGN_DOWN(f->gpa, page)) {
        f->access = GUEST_MEMORY_ACCESS_FETCH;
    }
}

static void take_recorded_faults(void)
{
    GuestMemoryFault f;
    CPUState *cpu;

    while (take_pending(-1, true, &f)) {
        cpu = f.cpu_index >= 0 ? qemu_get_cpu(f.cpu_index) : NULL;
        guest_memory_fault_probe(&f);
        classify_fetch(&f, cpu);
        guest_memory_fault_report(&f);
        guest_memory_fault_cleanup(&f);
    }
}

/* --- watching backing files --- */

static int inotify_fd = -1;

static bool backing_watch_enabled(RAMBlock *rb)
{
    Object *owner = memory_region_owner(rb->mr);
    HostMemoryBackend *backend;

    backend = (HostMemoryBackend *)object_dynamic_cast(owner,
                                                       TYPE_MEMORY_BACKEND);
    return !backend || backend->backing_watch;
}

static int check_watched_cb(RAMBlock *rb, void *opaque)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    GuestMemoryFault f;
    ram_addr_t offset;
    off_t size;

    if (!loss || loss->wd < 0) {
        return 0;
    }
    if (!block_truncated_at(rb, &offset, &size)) {
        /* Whole again: a later truncation is a new loss. */
        loss->watch_reported = false;
        return 0;
    }
    if (loss->watch_reported) {
        return 0;
    }
    loss->watch_reported = true;
    trace_guest_memory_fault_backing_shrunk(qemu_ram_get_idstr(rb), size);
    guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_BACKING_WATCH, -1);
    f.block = rb;
    f.offset = offset;
    guest_memory_fault_report_and_stop(&f);
    guest_memory_fault_cleanup(&f);
    return 0;
}

static void inotify_read(void *opaque)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

    while (read(inotify_fd, buf, sizeof(buf)) > 0) {
        /* Any event: re-check every watched block (cheap fstat each). */
    }
    qemu_ram_foreach_block(check_watched_cb, NULL);
}

static void watch_block_start(RAMBlock *rb)
{
    g_autofree char *proc = NULL;
    GuestMemoryLoss *loss = rb->memory_loss;

    if (!loss || rb->fd < 0 || !backing_watch_enabled(rb) ||
        block_fd_is_guest_memfd(rb)) {
        return;
    }
    if (inotify_fd < 0) {
        inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (inotify_fd < 0) {
            warn_report("cannot watch RAM backing files for truncation: %s",
                        strerror(errno));
            return;
        }
        qemu_set_fd_handler(inotify_fd, inotify_read, NULL, NULL);
    }
    proc = g_strdup_printf("/proc/self/fd/%d", rb->fd);
    loss->wd = inotify_add_watch(inotify_fd, proc, IN_MODIFY | IN_ATTRIB);
    if (loss->wd < 0) {
        warn_report("cannot watch the backing of RAM block %s for "
                    "truncation: %s", qemu_ram_get_idstr(rb),
                    strerror(errno));
        return;
    }
    trace_guest_memory_fault_watch(qemu_ram_get_idstr(rb), rb->fd);
}

typedef struct SameWatch {
    RAMBlock *self;
    int wd;
    bool shared;
} SameWatch;

static int same_watch_cb(RAMBlock *rb, void *opaque)
{
    SameWatch *s = opaque;

    if (rb != s->self && rb->memory_loss && rb->memory_loss->wd == s->wd) {
        s->shared = true;
    }
    return 0;
}

static void watch_block_stop(RAMBlock *rb)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    SameWatch s = { .self = rb };

    if (!loss || loss->wd < 0) {
        return;
    }
    /* inotify gives one watch per inode: keep it for another block. */
    s.wd = loss->wd;
    qemu_ram_foreach_block(same_watch_cb, &s);
    if (!s.shared && inotify_fd >= 0) {
        inotify_rm_watch(inotify_fd, loss->wd);
    }
    trace_guest_memory_fault_unwatch(qemu_ram_get_idstr(rb));
    loss->wd = -1;
}

/*
 * Start-up: file-backed shared RAM on a filesystem with less free space
 * than the part of the RAM block not yet allocated.  Sparse files are
 * legitimate, so this is a warning, once per block.
 */
static int check_free_space_cb(RAMBlock *rb, void *opaque)
{
    struct stat st;
    uint64_t allocated, needed, free_bytes;

    if (rb->fd < 0 || !qemu_ram_is_shared(rb) || block_fd_is_guest_memfd(rb) ||
        fstat(rb->fd, &st) < 0 || !fs_free_bytes(rb->fd, &free_bytes)) {
        return 0;
    }
    allocated = (uint64_t)st.st_blocks * 512;
    needed = rb->used_length > allocated ? rb->used_length - allocated : 0;
    if (free_bytes < needed) {
        g_autofree char *path = fd_path(rb->fd);
        g_autofree char *need_s = size_to_str(needed);
        g_autofree char *free_s = size_to_str(free_bytes);
        g_autofree char *short_s = size_to_str(needed - free_bytes);

        warn_report("RAM block %s: its backing %s needs up to %s more but "
                    "the filesystem has %s free (%s short); the guest will "
                    "stop with 'Bad address' if it fills the filesystem",
                    qemu_ram_get_idstr(rb), path ? path : "?", need_s,
                    free_s, short_s);
    }
    return 0;
}

static int watch_block_cb(RAMBlock *rb, void *opaque)
{
    if (rb->memory_loss && rb->memory_loss->wd < 0) {
        watch_block_start(rb);
    }
    return 0;
}

void guest_memory_fault_machine_ready(void)
{
    if (!report_bh) {
        report_bh = qemu_bh_new(report_bh_cb, NULL);
    }
    if (sigbus_fds[1] < 0) {
        g_autoptr(GError) gerr = NULL;
        int fds[2];

        if (!g_unix_open_pipe(fds, FD_CLOEXEC, &gerr)) {
            /* Without it a lost page would kill QEMU: say so now. */
            error_report("cannot start the SIGBUS thread of guest-memory "
                         "fault handling: %s", gerr->message);
            exit(1);
        }
        sigbus_fds[0] = fds[0];
        qemu_thread_create(&sigbus_thread, "sigbus", sigbus_thread_fn, NULL,
                           QEMU_THREAD_DETACHED);
        /* From now on the handler asks. */
        qatomic_set(&sigbus_fds[1], fds[1]);
    }
    qemu_ram_foreach_block(check_free_space_cb, NULL);
    /* Blocks made before the machine: watched from now on. */
    qemu_ram_foreach_block(watch_block_cb, NULL);
}
