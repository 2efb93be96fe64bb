/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * What is behind guest memory, found without touching it: the RAM block,
 * its backing (anonymous, file, hugetlbfs, guest_memfd) and, for a file,
 * whether a page is still there and why not (truncated, the filesystem
 * full, a hole).
 */

#include "qemu/osdep.h"
#include <sys/vfs.h>
#include <linux/magic.h>
#include "qemu/units.h"
#include "qapi/qapi-events-run-state.h"
#include "qemu/cutils.h"
#include "system/guest-memory-fault.h"
#include "system/ramblock.h"
#include "guest-memory-internal.h"

char *guest_memory_fd_path(int fd)
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
bool guest_memory_is_guest_memfd(RAMBlock *rb)
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
bool guest_memory_fs_free(int fd, uint64_t *free_bytes)
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
        f->backing_path = guest_memory_fd_path(rb->guest_memfd);
    } else if (rb->fd < 0) {
        f->backing = GUEST_MEMORY_BACKING_ANONYMOUS;
    } else {
        f->backing_path = guest_memory_fd_path(rb->fd);
        if (guest_memory_is_guest_memfd(rb)) {
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
        set_cause(f, GUEST_MEMORY_FAULT_CAUSE_BACKING_TRUNCATED,
                  g_strdup_printf("backing file truncated to 0x%" PRIx64
                                  " bytes", (uint64_t)st.st_size));
        return;
    }
    data = lseek(fd, pos, SEEK_DATA);
    if ((data < 0 && errno == ENXIO) || (data >= 0 && (uint64_t)data > pos)) {
        if (guest_memory_fs_free(fd, &free_bytes) && free_bytes < page) {
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

            page = guest_memory_page_size(rb);
            f->block = rb;
            f->offset = QEMU_ALIGN_DOWN(offset, page);
            if (!f->has_gpa && guest_memory_offset_to_gpa(rb, offset, &gpa)) {
                guest_memory_fault_set_gpa(f, QEMU_ALIGN_DOWN(gpa, page),
                                           page);
            }
        }
    }
    if (!f->block && f->has_gpa) {
        rb = guest_memory_gpa_to_block(f->gpa, &offset);
        if (rb) {
            f->block = rb;
            f->offset = offset;
        }
    }
    probe_backing(f);

    /* Not for a page QEMU made poison itself: the backing tells. */
    if ((f->sigbus_code == BUS_MCEERR_AR ||
         f->sigbus_code == BUS_MCEERR_AO) &&
        !(f->host_addr && guest_memory_fault_poisoned(f->host_addr))) {
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
    page = guest_memory_page_size(rb);
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
    RAMBlock *rb = guest_memory_gpa_to_block(gpa, &offset);

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

    if (s->found || !guest_memory_truncated_at(rb, &offset, &size)) {
        return 0;
    }
    s->found = true;
    s->f->block = rb;
    s->f->offset = offset;
    return 1;
}

/*
 * The first RAM block whose backing file is shorter than the block: the
 * block, and the first offset past the end of the file, go into @f.
 */
bool guest_memory_find_truncated(GuestMemoryFault *f)
{
    FindUnbacked s = { .f = f };

    qemu_ram_foreach_block(find_unbacked_cb, &s);
    return s.found;
}

/* A block whose backing filesystem has no room for another page. */
static int find_full_fs_cb(RAMBlock *rb, void *opaque)
{
    FindUnbacked *s = opaque;
    uint64_t free_bytes;

    if (s->found || rb->fd < 0 || guest_memory_is_guest_memfd(rb) ||
        !guest_memory_fs_free(rb->fd, &free_bytes) ||
        free_bytes >= guest_memory_page_size(rb)) {
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

    if (guest_memory_find_truncated(f)) {
        guest_memory_fault_probe(f);
        return true;
    }
    qemu_ram_foreach_block(find_full_fs_cb, &s);
    if (s.found) {
        probe_backing(f);
        guest_memory_fs_free(f->block->fd, &free_bytes);
        set_cause(f, GUEST_MEMORY_FAULT_CAUSE_NO_SPACE,
                  g_strdup_printf("no space left on the backing filesystem "
                                  "(0x%" PRIx64 " bytes free); the page is "
                                  "not known", free_bytes));
    }
    return s.found;
}
