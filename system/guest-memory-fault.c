/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One report for every guest-memory fault.  Guest RAM whose host backing
 * is gone reaches QEMU in many shapes (a failed KVM_RUN, an MMIO exit at
 * a RAM address, KVM_EXIT_MEMORY_FAULT, an emulation failure, a SIGBUS
 * on a vCPU or on QEMU's own access); this file finds what is behind
 * the faulting address without touching it (RAM block, backing, cause),
 * prints the one report users know ("error: kvm run failed Bad address"
 * plus a detail line), emits GUEST_MEMORY_FAULT, recovers from SIGBUS
 * without dying or looping, and watches backing files so that a
 * truncation is noticed before the guest touches the lost pages.
 */

#include "qemu/osdep.h"
#include <sys/statvfs.h>
#include <sys/inotify.h>
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/units.h"
#include "qemu/accel.h"
#include "qom/object.h"
#include "qapi/qapi-events-run-state.h"
#include "hw/core/cpu.h"
#include "qemu/cutils.h"
#include "system/address-spaces.h"
#include "system/guest-memory-fault.h"
#include "system/hostmem.h"
#include "system/kvm.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "system/runstate.h"
#include "trace.h"

/* A fault recorded by the SIGBUS handler, reported outside signal context. */
enum {
    PENDING_EMPTY,
    PENDING_FILLING,
    PENDING_READY,
};

static struct {
    int state;
    int cpu_index;
    int code;
    void *addr;
    GuestMemoryAccess access;
} pending;

static unsigned fault_count;
static QEMUBH *report_bh;

void guest_memory_fault_init(GuestMemoryFault *f, GuestMemoryFaultPath path,
                             int cpu_index)
{
    memset(f, 0, sizeof(*f));
    f->path = path;
    f->cpu_index = cpu_index;
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

/* --- from a RAM block offset to a guest physical address --- */

typedef struct FindGpa {
    const MemoryRegion *mr;
    hwaddr offset;
    hwaddr gpa;
    bool found;
} FindGpa;

static bool find_gpa_cb(Int128 start, Int128 len, const MemoryRegion *mr,
                        hwaddr offset_in_region, void *opaque)
{
    FindGpa *s = opaque;

    if (mr == s->mr && s->offset >= offset_in_region &&
        s->offset - offset_in_region < int128_get64(len)) {
        s->gpa = int128_get64(start) + (s->offset - offset_in_region);
        s->found = true;
        return true;
    }
    return false;
}

static bool ram_block_offset_to_gpa(RAMBlock *rb, ram_addr_t offset,
                                    hwaddr *gpa)
{
    FindGpa s = { .mr = rb->mr, .offset = offset };

    RCU_READ_LOCK_GUARD();
    flatview_for_each_range(address_space_to_flatview(&address_space_memory),
                            find_gpa_cb, &s);
    *gpa = s.gpa;
    return s.found;
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
 * Is @fd a KVM guest_memfd?  RAM can live in one that QEMU maps
 * (memory-backend-memfd,guest-memfd=on); it has a fixed size and no
 * filesystem, so it is neither watched nor checked for free space.
 */
static bool path_is_guest_memfd(const char *path)
{
    return path && !strcmp(path, "anon_inode:[kvm-gmem]");
}

static bool fd_is_guest_memfd(int fd)
{
    g_autofree char *path = fd_path(fd);

    return path_is_guest_memfd(path);
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
        if (path_is_guest_memfd(f->backing_path)) {
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
    struct statvfs vfs;
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
        if (fstatvfs(fd, &vfs) == 0 &&
            (uint64_t)vfs.f_bavail * vfs.f_frsize < page) {
            set_cause(f, GUEST_MEMORY_FAULT_CAUSE_NO_SPACE,
                      g_strdup_printf("no space left on the backing "
                                      "filesystem (0x%" PRIx64 " bytes "
                                      "free, page size 0x%" PRIx64 ")",
                                      (uint64_t)vfs.f_bavail * vfs.f_frsize,
                                      page));
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

            f->block = rb;
            f->offset = offset;
            if (!f->has_gpa && ram_block_offset_to_gpa(rb, offset, &gpa)) {
                page = qemu_ram_pagesize(rb);
                guest_memory_fault_set_gpa(f, QEMU_ALIGN_DOWN(gpa, page),
                                           page);
                f->offset = QEMU_ALIGN_DOWN(offset, page);
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
    page = qemu_ram_pagesize(rb);
    if (f->backing == GUEST_MEMORY_BACKING_GUEST_MEMFD) {
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

/* The first page of @rb past the end of its backing file, if any. */
static bool ram_block_truncated_at(RAMBlock *rb, ram_addr_t *offset,
                                   off_t *file_size)
{
    struct stat st;
    uint64_t page = qemu_ram_pagesize(rb);
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

typedef struct FindUnbacked {
    GuestMemoryFault *f;
    bool found;
} FindUnbacked;

static int find_unbacked_cb(RAMBlock *rb, void *opaque)
{
    FindUnbacked *s = opaque;
    ram_addr_t offset;
    off_t size;
    hwaddr gpa;

    if (s->found || !ram_block_truncated_at(rb, &offset, &size)) {
        return 0;
    }
    s->found = true;
    s->f->block = rb;
    s->f->offset = offset;
    if (ram_block_offset_to_gpa(rb, offset, &gpa)) {
        guest_memory_fault_set_gpa(s->f, gpa, rb->used_length - offset);
    }
    return 1;
}

/* A block whose backing filesystem has no room for another page. */
static int find_full_fs_cb(RAMBlock *rb, void *opaque)
{
    FindUnbacked *s = opaque;
    struct statvfs vfs;

    if (s->found || rb->fd < 0 || fstatvfs(rb->fd, &vfs) < 0 ||
        (uint64_t)vfs.f_bavail * vfs.f_frsize >= qemu_ram_pagesize(rb)) {
        return 0;
    }
    s->found = true;
    s->f->block = rb;
    s->f->offset = 0;
    return 1;
}

bool guest_memory_find_unbacked(GuestMemoryFault *f)
{
    FindUnbacked s = { .f = f };

    qemu_ram_foreach_block(find_unbacked_cb, &s);
    if (s.found) {
        guest_memory_fault_probe(f);
        return true;
    }
    qemu_ram_foreach_block(find_full_fs_cb, &s);
    if (s.found) {
        struct statvfs vfs;

        probe_backing(f);
        fstatvfs(f->block->fd, &vfs);
        set_cause(f, GUEST_MEMORY_FAULT_CAUSE_NO_SPACE,
                  g_strdup_printf("no space left on the backing filesystem "
                                  "(0x%" PRIx64 " bytes free); the page is "
                                  "not known",
                                  (uint64_t)vfs.f_bavail * vfs.f_frsize));
    }
    return s.found;
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

/* "kvm", "tcg": the word in "error: kvm run failed Bad address". */
static char *accel_name(void)
{
    const char *name = current_accel_name();

    return g_ascii_strdown(name ? name : "kvm", -1);
}

void guest_memory_fault_report(GuestMemoryFault *f)
{
    g_autoptr(GString) line = g_string_new("guest memory fault: ");
    g_autofree char *backing = NULL;
    g_autofree char *accel = accel_name();
    bool locked = bql_locked();
    const char *block;

    /* vCPU threads report without the BQL; events and the monitor want it. */
    if (!locked) {
        bql_lock();
    }
    if (!f->cause_detail) {
        guest_memory_fault_probe(f);
    }
    backing = backing_words(f);
    block = f->block ? qemu_ram_get_idstr(f->block) : NULL;

    if (f->cpu_index >= 0) {
        g_string_append_printf(line, "vCPU %d, ", f->cpu_index);
    } else if (f->path == GUEST_MEMORY_FAULT_PATH_BACKING_WATCH) {
        g_string_append(line, "no access yet, ");
    } else {
        g_string_append(line, "QEMU's own access, ");
    }
    if (f->has_gpa && f->size) {
        g_string_append_printf(line, "GPA 0x%" HWADDR_PRIx "-0x%" HWADDR_PRIx
                               ", ", f->gpa, f->gpa + f->size - 1);
    } else if (f->has_gpa) {
        g_string_append_printf(line, "GPA 0x%" HWADDR_PRIx ", ", f->gpa);
    } else {
        g_string_append(line, "GPA unknown, ");
    }
    g_string_append_printf(line, "%s, %s memory, ", access_words(f->access),
                           f->is_private ? "private" : "shared");
    if (block) {
        g_string_append_printf(line, "RAM block %s offset 0x%" PRIx64 ", ",
                               block, (uint64_t)f->offset);
    }
    g_string_append_printf(line, "%s, cause: %s (found by %s)", backing,
                           f->cause_detail,
                           GuestMemoryFaultPath_str(f->path));

    trace_guest_memory_fault_report(GuestMemoryFaultPath_str(f->path),
                                    f->cpu_index, f->has_gpa ? f->gpa : -1,
                                    f->size,
                                    GuestMemoryAccess_str(f->access),
                                    GuestMemoryFaultCause_str(f->cause));
    fprintf(stderr, "error: %s run failed %s\n", accel, strerror(EFAULT));
    fprintf(stderr, "%s\n", line->str);

    qapi_event_send_guest_memory_fault(accel, f->path,
                                       f->cpu_index >= 0, f->cpu_index,
                                       f->has_gpa, f->gpa,
                                       f->size != 0, f->size,
                                       f->access, f->is_private,
                                       block, block != NULL, f->offset,
                                       f->backing, f->backing_path,
                                       f->cause, f->cause_detail);
    if (!locked) {
        bql_unlock();
    }
}

void guest_memory_fault_report_and_stop(GuestMemoryFault *f, CPUState *cpu)
{
    guest_memory_fault_report(f);
    if (cpu) {
        /* The code bytes may be what is unbacked: do not read them. */
        cpu_dump_state(cpu, stderr, 0);
    }
    if (runstate_check(RUN_STATE_PRELAUNCH) ||
        runstate_check(RUN_STATE_PAUSED)) {
        /* Already stopped: still, it must not be resumed without a reset. */
        runstate_set(RUN_STATE_INTERNAL_ERROR);
    } else {
        vm_stop(RUN_STATE_INTERNAL_ERROR);
    }
}

/* --- SIGBUS --- */

/*
 * The x86 page-fault error code of the access, if the signal context has
 * it: bit 1 write, bit 4 instruction fetch.
 */
static GuestMemoryAccess sigbus_access(void *ucontext)
{
#ifdef REG_ERR  /* x86 hosts: the page-fault error code */
    ucontext_t *uc = ucontext;

    if (uc) {
        greg_t err = uc->uc_mcontext.gregs[REG_ERR];

        if (err & (1 << 4)) {
            return GUEST_MEMORY_ACCESS_FETCH;
        }
        return (err & (1 << 1)) ? GUEST_MEMORY_ACCESS_WRITE
                                : GUEST_MEMORY_ACCESS_READ;
    }
#endif
    return GUEST_MEMORY_ACCESS_UNKNOWN;
}

bool guest_memory_fault_on_sigbus(int code, void *addr, void *ucontext,
                                  CPUState *cpu)
{
    ram_addr_t offset;
    RAMBlock *rb;
    size_t page;
    void *page_addr;

    rb = qemu_ram_block_from_host(addr, false, &offset);
    if (!rb) {
        return false;
    }
    if (!cpu && !report_bh) {
        /* Before the main loop runs nothing could report it. */
        return false;
    }
    /*
     * Returning from the handler re-executes the faulting access, which
     * would fault again forever.  A private anonymous page in its place
     * lets the access complete; the VM is stopped before the guest can
     * rely on what it reads, and is not resumed without a reset.
     */
    page = qemu_ram_pagesize(rb);
    page_addr = (void *)QEMU_ALIGN_DOWN((uintptr_t)addr, page);
    if (mmap(page_addr, page, PROT_READ | PROT_WRITE,
             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED) {
        return false;
    }
    qatomic_inc(&fault_count);

    if (qatomic_cmpxchg(&pending.state, PENDING_EMPTY, PENDING_FILLING) ==
        PENDING_EMPTY) {
        pending.cpu_index = cpu ? cpu->cpu_index : -1;
        pending.code = code;
        pending.addr = addr;
        /*
         * On a KVM vCPU the signal may come from inside KVM_RUN, where the
         * signal frame says nothing about the guest's access.
         */
        pending.access = cpu && kvm_enabled() ? GUEST_MEMORY_ACCESS_UNKNOWN
                                              : sigbus_access(ucontext);
        qatomic_store_release(&pending.state, PENDING_READY);
    }
    if (cpu) {
        /* Leave the guest at the next opportunity... */
        qatomic_store_release(&cpu->exit_request, true);
        qatomic_set(&cpu->neg.icount_decr.u16.high, -1);
        if (!kvm_enabled()) {
            /* ...and do not go back in before the VM stops. */
            qatomic_set(&cpu->stop, true);
        }
    }
    if (report_bh && !(cpu && kvm_enabled())) {
        /* A KVM vCPU reports it itself when KVM_RUN returns. */
        qemu_bh_schedule(report_bh);
    }
    return true;
}

static bool take_pending(int cpu_index, bool any_cpu, GuestMemoryFault *f)
{
    if (qatomic_load_acquire(&pending.state) != PENDING_READY) {
        return false;
    }
    if (!any_cpu && pending.cpu_index != cpu_index) {
        return false;
    }
    guest_memory_fault_init(f, pending.cpu_index >= 0 ?
                            GUEST_MEMORY_FAULT_PATH_SIGBUS :
                            GUEST_MEMORY_FAULT_PATH_QEMU_ACCESS,
                            pending.cpu_index);
    f->sigbus_code = pending.code;
    f->host_addr = pending.addr;
    f->access = pending.access;
    qatomic_store_release(&pending.state, PENDING_EMPTY);
    return true;
}

bool guest_memory_fault_take_pending(CPUState *cpu, GuestMemoryFault *f)
{
    return take_pending(cpu->cpu_index, false, f);
}

unsigned guest_memory_fault_count(void)
{
    return qatomic_read(&fault_count);
}

/*
 * A TCG vCPU reads guest code with ordinary host loads: if the faulting
 * page holds the vCPU's program counter, the read was an instruction
 * fetch (a data access to that page would need the fetch to succeed
 * first).
 */
static void classify_tcg_fetch(GuestMemoryFault *f, CPUState *cpu)
{
    MemTxAttrs attrs;
    hwaddr pc_page;
    uint64_t page;

    if (!cpu || f->access == GUEST_MEMORY_ACCESS_WRITE || !f->has_gpa ||
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

static void report_pending_bh(void *opaque)
{
    GuestMemoryFault f;
    CPUState *cpu;

    if (!take_pending(-1, true, &f)) {
        return;
    }
    cpu = f.cpu_index >= 0 ? qemu_get_cpu(f.cpu_index) : NULL;
    guest_memory_fault_probe(&f);
    if (!kvm_enabled()) {
        classify_tcg_fetch(&f, cpu);
    }
    guest_memory_fault_report_and_stop(&f, cpu);
    guest_memory_fault_cleanup(&f);
}

/* --- watching backing files --- */

typedef struct WatchedBlock {
    RAMBlock *rb;
    int wd;
    bool reported;
} WatchedBlock;

static GArray *watched;
static int inotify_fd = -1;

static bool backing_watch_enabled(RAMBlock *rb)
{
    Object *owner = memory_region_owner(rb->mr);
    HostMemoryBackend *backend;

    backend = (HostMemoryBackend *)object_dynamic_cast(owner,
                                                       TYPE_MEMORY_BACKEND);
    return !backend || backend->backing_watch;
}

static void check_watched_blocks(void)
{
    for (guint i = 0; watched && i < watched->len; i++) {
        WatchedBlock *w = &g_array_index(watched, WatchedBlock, i);
        GuestMemoryFault f;
        ram_addr_t offset;
        off_t size;
        hwaddr gpa;

        if (w->reported || !ram_block_truncated_at(w->rb, &offset, &size)) {
            continue;
        }
        w->reported = true;
        trace_guest_memory_fault_backing_shrunk(qemu_ram_get_idstr(w->rb),
                                                size);
        guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_BACKING_WATCH,
                                -1);
        f.block = w->rb;
        f.offset = offset;
        if (ram_block_offset_to_gpa(w->rb, offset, &gpa)) {
            guest_memory_fault_set_gpa(&f, gpa, w->rb->used_length - offset);
        }
        guest_memory_fault_report_and_stop(&f, NULL);
        guest_memory_fault_cleanup(&f);
    }
}

static void inotify_read(void *opaque)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

    while (read(inotify_fd, buf, sizeof(buf)) > 0) {
        /* Any event: re-check every watched block (cheap fstat each). */
    }
    check_watched_blocks();
}

static int watch_block_cb(RAMBlock *rb, void *opaque)
{
    g_autofree char *proc = NULL;
    WatchedBlock w = { .rb = rb, .wd = -1 };

    if (rb->fd < 0 || !backing_watch_enabled(rb) ||
        fd_is_guest_memfd(rb->fd)) {
        return 0;
    }
    proc = g_strdup_printf("/proc/self/fd/%d", rb->fd);
    w.wd = inotify_add_watch(inotify_fd, proc, IN_MODIFY | IN_ATTRIB);
    if (w.wd < 0) {
        warn_report("cannot watch the backing of RAM block %s for "
                    "truncation: %s", qemu_ram_get_idstr(rb),
                    strerror(errno));
        return 0;
    }
    trace_guest_memory_fault_watch(qemu_ram_get_idstr(rb), rb->fd);
    g_array_append_val(watched, w);
    return 0;
}

/*
 * Start-up: file-backed shared RAM on a filesystem with less free space
 * than the part of the RAM block not yet allocated.  Sparse files are
 * legitimate, so this is a warning, once per block.
 */
static int check_free_space_cb(RAMBlock *rb, void *opaque)
{
    struct stat st;
    struct statvfs vfs;
    uint64_t allocated, needed, free_bytes;

    if (rb->fd < 0 || !qemu_ram_is_shared(rb) || fd_is_guest_memfd(rb->fd) ||
        fstat(rb->fd, &st) < 0 || fstatvfs(rb->fd, &vfs) < 0) {
        return 0;
    }
    allocated = (uint64_t)st.st_blocks * 512;
    needed = rb->used_length > allocated ? rb->used_length - allocated : 0;
    free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
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

void guest_memory_fault_machine_ready(void)
{
    if (!report_bh) {
        report_bh = qemu_bh_new(report_pending_bh, NULL);
    }
    qemu_ram_foreach_block(check_free_space_cb, NULL);

    if (watched) {
        return;
    }
    watched = g_array_new(false, true, sizeof(WatchedBlock));
    inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd < 0) {
        warn_report("cannot watch RAM backing files for truncation: %s",
                    strerror(errno));
        return;
    }
    qemu_ram_foreach_block(watch_block_cb, NULL);
    if (watched->len) {
        qemu_set_fd_handler(inotify_fd, inotify_read, NULL, NULL);
    } else {
        close(inotify_fd);
        inotify_fd = -1;
    }
}
