/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Watching RAM backing files: a truncation is noticed (inotify) before
 * the guest touches the lost pages, and a filesystem that cannot hold
 * the RAM it backs is said at start-up.
 */

#include "qemu/osdep.h"
#include <sys/inotify.h>
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qom/object.h"
#include "qapi/qapi-events-run-state.h"
#include "qemu/cutils.h"
#include "system/guest-memory-fault.h"
#include "system/hostmem.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "guest-memory-internal.h"
#include "trace.h"

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
    if (!guest_memory_truncated_at(rb, &offset, &size)) {
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

void guest_memory_watch_start(RAMBlock *rb)
{
    g_autofree char *proc = NULL;
    GuestMemoryLoss *loss = rb->memory_loss;

    if (!loss || rb->fd < 0 || !backing_watch_enabled(rb) ||
        guest_memory_is_guest_memfd(rb)) {
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

void guest_memory_watch_stop(RAMBlock *rb)
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

    if (rb->fd < 0 || !qemu_ram_is_shared(rb) ||
        guest_memory_is_guest_memfd(rb) || fstat(rb->fd, &st) < 0 ||
        !guest_memory_fs_free(rb->fd, &free_bytes)) {
        return 0;
    }
    allocated = (uint64_t)st.st_blocks * 512;
    needed = rb->used_length > allocated ? rb->used_length - allocated : 0;
    if (free_bytes < needed) {
        g_autofree char *path = guest_memory_fd_path(rb->fd);
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
        guest_memory_watch_start(rb);
    }
    return 0;
}

/* At machine-init-done: the blocks made so far. */
void guest_memory_watch_machine_ready(void)
{
    qemu_ram_foreach_block(check_free_space_cb, NULL);
    /* Blocks made before the machine: watched from now on. */
    qemu_ram_foreach_block(watch_block_cb, NULL);
}
