/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Guest-memory faults: whatever takes away the host backing of guest RAM
 * and however the access reaches QEMU, QEMU prints a first line (on KVM
 * "error: kvm run failed Bad address", on TCG "error: guest memory
 * fault") and one detail line, emits GUEST_MEMORY_FAULT with
 * the exact page, block, offset, backing and cause, stops the VM with
 * run state internal-error, and keeps answering QMP.  Pristine QEMU
 * 10.2.2 dies with SIGBUS (or prints a misleading emulation failure) in
 * every one of these cases.
 *
 * Matrix: cause (backing file truncated; tmpfs full, in a private mount
 * namespace, root only; memfd truncated) x access (read, write,
 * instruction fetch, rep insb) x CPU mode (real, 32-bit protected, 64-bit
 * long, 64-bit user mode at CPL 3) x accelerator (KVM when /dev/kvm
 * works, TCG).  Also: QEMU's own
 * access (pmemsave, memsave, a qtest read, dump-guest-memory) after
 * truncation, the backing-file watch (on by
 * default, off by option, bad option value), and the start-up warning
 * for a filesystem with too little space.
 *
 * The path a fault takes depends on the host kernel: VMX/SVM kernels
 * fail KVM_RUN with a bare EFAULT (no GPA: the report names the lost
 * range), a PVM-backed KVM turns the access into an MMIO exit at the RAM
 * address (or an emulation failure for a fetch), TCG takes SIGBUS.  The
 * test accepts each documented path and checks the fields that path can
 * know (docs/devel/kvm-kernel-contract.rst section 4).
 *
 * The /contract/ cases are kernel-contract tests: the outcomes no
 * released kernel gives for an ordinary VM (SIGBUS during KVM_RUN,
 * KVM_EXIT_MEMORY_FAULT, the same memory fault reported again and again)
 * are produced by the LD_PRELOAD layer in kvm-contract/, which leaves the
 * page under test without a memslot and rewrites the real KVM's MMIO exit
 * there exactly as that section describes.
 */

#include "qemu/osdep.h"
#include <sys/mount.h>
#include <sys/statvfs.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "guest/guest-qtest.h"

#define RAM_SIZE            (64 * 1024 * 1024)
/* What is left of the backing: the guest's own pages (stack, tables). */
#define KEEP_SIZE           0x80000
#define TARGET_REAL         0x90000     /* below 1 MiB for real mode */
#define TARGET_PAGED        0x200000
#define PAGE_SIZE_4K        0x1000
#define TMPFS_SIZE          "2m"

typedef enum Cause {
    CAUSE_FILE_TRUNCATED,
    CAUSE_TMPFS_FULL,
    CAUSE_MEMFD_TRUNCATED,
} Cause;

static const char *const cause_names[] = {
    [CAUSE_FILE_TRUNCATED] = "file-truncated",
    [CAUSE_TMPFS_FULL] = "tmpfs-full",
    [CAUSE_MEMFD_TRUNCATED] = "memfd-truncated",
};

static const char *const op_names[] = {
    [GUEST_OP_READ] = "read",
    [GUEST_OP_WRITE] = "write",
    [GUEST_OP_FETCH] = "fetch",
    [GUEST_OP_INSB] = "insb",
};

static const char *const mode_names[] = {
    [GUEST_MODE_REAL] = "real",
    [GUEST_MODE_PROT32] = "prot32",
    [GUEST_MODE_LONG64] = "long64",
    [GUEST_MODE_USER64] = "user64",
};

typedef struct FaultCase {
    const char *accel;
    Cause cause;
    uint32_t mode;
    uint32_t op;
} FaultCase;

/*
 * Whether this QEMU has the backing-file watch (and so its option): the
 * same test binary also runs against pristine QEMU, to show what fails
 * there (scripts/pristine-qtests.sh).
 */
static bool have_backing_watch;

static bool detect_backing_watch(void)
{
    QTestState *qts = qtest_init("-machine none");
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-list-properties', "
                           "'arguments': { 'typename': "
                           "'memory-backend-file' } }");
    QListEntry *e;
    bool found = false;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *prop = qobject_to(QDict, qlist_entry_obj(e));

        found |= g_str_equal(qdict_get_str(prop, "name"), "backing-watch");
    }
    qobject_unref(rsp);
    qtest_quit(qts);
    return found;
}

/* ",backing-watch=off" where the option exists. */
static const char *watch_off(void)
{
    return have_backing_watch ? ",backing-watch=off" : "";
}

/* A small tmpfs in a private mount namespace, if we could make one. */
static char *tmpfs_dir;
static const char *tmpfs_skip_reason;
static char *work_dir;

static void setup_tmpfs(void)
{
    if (geteuid() != 0) {
        tmpfs_skip_reason = "mounting a small tmpfs needs root";
        return;
    }
    if (unshare(CLONE_NEWNS) < 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        tmpfs_skip_reason = "cannot create a private mount namespace";
        return;
    }
    tmpfs_dir = g_build_filename(work_dir, "tmpfs", NULL);
    g_assert_cmpint(mkdir(tmpfs_dir, 0700), ==, 0);
    if (mount("tmpfs", tmpfs_dir, "tmpfs", 0, "size=" TMPFS_SIZE) < 0) {
        tmpfs_skip_reason = "cannot mount a tmpfs";
        g_free(tmpfs_dir);
        tmpfs_dir = NULL;
    }
}

/* Fill @dir's filesystem completely. */
static char *fill_filesystem(const char *dir)
{
    char *path = g_build_filename(dir, "filler", NULL);
    static char block[65536];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    struct statvfs vfs;

    g_assert_cmpint(fd, >=, 0);
    memset(block, 0xaa, sizeof(block));
    while (write(fd, block, sizeof(block)) > 0) {
        /* until ENOSPC */
    }
    while (write(fd, block, 4096) > 0) {
        /* the last partial chunk */
    }
    close(fd);
    g_assert_cmpint(statvfs(dir, &vfs), ==, 0);
    g_assert_cmpuint((uint64_t)vfs.f_bavail * vfs.f_frsize, <, 4096);
    return path;
}

/* Truncate the memfd backing guest RAM through /proc/<qemu>/fd. */
static bool truncate_qemu_memfd(QTestState *qts, off_t size)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", qtest_pid(qts));
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    g_assert(d);
    while ((name = g_dir_read_name(d))) {
        g_autofree char *link = g_build_filename(dir, name, NULL);
        g_autofree char *target = g_file_read_link(link, NULL);
        struct stat st;
        int fd;

        if (!target || !g_str_has_prefix(target, "/memfd:")) {
            continue;
        }
        fd = open(link, O_RDWR);
        g_assert_cmpint(fd, >=, 0);
        if (fstat(fd, &st) < 0 || st.st_size != RAM_SIZE) {
            close(fd);
            continue;
        }
        if (ftruncate(fd, size) < 0) {
            close(fd);
            return false;
        }
        close(fd);
        return true;
    }
    return false;
}

static bool str_has_line(const char *text, const char *line)
{
    g_autofree char *needle = g_strdup_printf("\n%s\n", line);
    g_autofree char *hay = g_strdup_printf("\n%s", text);

    return strstr(hay, needle) != NULL;
}

/* A line of @text starts with @prefix (the report may list lost ranges). */
static bool str_has_line_prefix(const char *text, const char *prefix)
{
    g_autofree char *needle = g_strdup_printf("\n%s", prefix);
    g_autofree char *hay = g_strdup_printf("\n%s", text);
    const char *p = strstr(hay, needle);

    return p && (p[strlen(needle)] == '\n' || p[strlen(needle)] == ';');
}

/*
 * The event's "lost" ranges are exactly where the lost part [@start,
 * @end) of ram0 appears in the memory map (holes excluded, every alias).
 */
static void assert_lost_as_mapped(QTestState *qts, QDict *data,
                                  uint64_t start, uint64_t end)
{
    g_autoptr(GArray) want = guest_mtree_ranges(qts, "ram0", start, end);
    QList *lost = qdict_get_qlist(data, "lost");
    QListEntry *e;
    guint i = 0;

    g_assert_nonnull(lost);
    g_assert_cmpuint(want->len, >, 0);
    QLIST_FOREACH_ENTRY(lost, e) {
        QDict *r = qobject_to(QDict, qlist_entry_obj(e));

        g_assert_cmpuint(i + 1, <, want->len);
        g_assert_cmphex(qdict_get_uint(r, "gpa"), ==,
                        g_array_index(want, uint64_t, i));
        g_assert_cmphex(qdict_get_uint(r, "size"), ==,
                        g_array_index(want, uint64_t, i + 1));
        i += 2;
    }
    g_assert_cmpuint(i, ==, want->len);
}

/* Still running, and no GUEST_MEMORY_FAULT so far. */
static void assert_vm_running_without_fault(QTestState *qts)
{
    QDict *rsp;

    /* query-status also collects any event that arrived meanwhile. */
    rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
                    ==, "running");
    qobject_unref(rsp);
    g_assert_null(qtest_qmp_event_ref(qts, "GUEST_MEMORY_FAULT"));
}

/*
 * Wait for GUEST_MEMORY_FAULT, or for the guest to finish its access
 * without one; fail instead of hanging.  Returns the event or NULL.
 */
static QDict *wait_fault_or_done(GuestVM *vm, unsigned timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000LL;
    gint64 done_at = 0;
    QDict *ev = NULL, *rsp;

    do {
        /* Any QMP command also collects the events that arrived. */
        rsp = qtest_qmp(vm->qts, "{ 'execute': 'query-status' }");
        qobject_unref(rsp);
        ev = qtest_qmp_event_ref(vm->qts, "GUEST_MEMORY_FAULT");
        if (ev) {
            return ev;
        }
        if (!done_at &&
            qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_DONE) == GUEST_DONE) {
            done_at = g_get_monotonic_time();
        }
        /*
         * A TCG vCPU may finish its translation block after the SIGBUS
         * before the main loop reports: give the report a second.
         */
        if (done_at && g_get_monotonic_time() - done_at > G_USEC_PER_SEC) {
            return NULL;
        }
        g_usleep(2000);
    } while (g_get_monotonic_time() < deadline);
    g_assert_not_reached();     /* neither a report nor the guest: a hang */
}

static const char *expected_access(const FaultCase *c)
{
    switch (c->op) {
    case GUEST_OP_READ:
        return "read";
    case GUEST_OP_FETCH:
        return "fetch";
    default:
        return "write";     /* rep insb stores into RAM */
    }
}

static void test_guest_fault(const void *opaque)
{
    const FaultCase *c = opaque;
    uint64_t target = c->mode == GUEST_MODE_REAL ? TARGET_REAL : TARGET_PAGED;
    g_autofree char *ram_path = NULL;
    g_autofree char *memory = NULL;
    g_autofree char *filler = NULL;
    g_autofree char *err_text = NULL;
    g_autofree char *line = NULL;
    g_autofree char *backing_words = NULL;
    const char *first = guest_fault_headline(c->accel);
    GuestVMConfig cfg = { .accel = c->accel, .capture_stderr = true };
    const char *reason;
    const char *path, *access;
    QDict *ev, *data;
    GuestVM *vm;

    if (!guest_accel_usable(c->accel, &reason)) {
        g_test_skip(reason);
        return;
    }
    switch (c->cause) {
    case CAUSE_FILE_TRUNCATED:
        ram_path = g_build_filename(work_dir, "ram", NULL);
        break;
    case CAUSE_TMPFS_FULL:
        if (!tmpfs_dir) {
            g_test_skip(tmpfs_skip_reason);
            return;
        }
        ram_path = g_build_filename(tmpfs_dir, "ram", NULL);
        break;
    case CAUSE_MEMFD_TRUNCATED:
        break;
    }
    if (ram_path) {
        unlink(ram_path);
        memory = g_strdup_printf("memory-backend-file,id=ram0,size=%d,"
                                 "mem-path=%s,share=on%s",
                                 RAM_SIZE, ram_path, watch_off());
    } else {
        memory = g_strdup_printf("memory-backend-memfd,id=ram0,size=%d,"
                                 "share=on,seal=off%s",
                                 RAM_SIZE, watch_off());
    }
    cfg.memory = memory;

    vm = guest_vm_start_config(&cfg);
    if (c->cause == CAUSE_TMPFS_FULL) {
        /* Allocate the guest's own pages while there is room. */
        qtest_memset(vm->qts, 0, 0, KEEP_SIZE);
    }
    guest_vm_request(vm, MB_REQ_MODE, c->mode);
    guest_vm_request(vm, MB_REQ_OP, c->op);
    guest_vm_request(vm, MB_REQ_ADDR, target);
    guest_vm_request(vm, MB_REQ_COUNT, 16);

    /* Take the backing of the target page away. */
    switch (c->cause) {
    case CAUSE_FILE_TRUNCATED:
        g_assert_cmpint(truncate(ram_path, KEEP_SIZE), ==, 0);
        break;
    case CAUSE_MEMFD_TRUNCATED:
        if (!truncate_qemu_memfd(vm->qts, KEEP_SIZE)) {
            guest_vm_free(vm);
            g_test_skip("this kernel does not let the memfd be truncated");
            return;
        }
        break;
    case CAUSE_TMPFS_FULL:
        filler = fill_filesystem(tmpfs_dir);
        break;
    }

    guest_vm_resume(vm);
    ev = wait_fault_or_done(vm, 20000);
    if (!ev) {
        /*
         * Only a read of a hole may succeed: the kernel may map the zero
         * page without allocating on the full filesystem.
         */
        g_assert_true(c->cause == CAUSE_TMPFS_FULL && c->op == GUEST_OP_READ);
        g_assert_cmphex(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_OP_VALUE),
                        ==, 0);
        g_test_message("a read of a hole on a full tmpfs succeeded (zero "
                       "page): no fault to report");
        guest_vm_free(vm);
        unlink(filler);
        unlink(ram_path);
        return;
    }
    data = qdict_get_qdict(ev, "data");
    path = qdict_get_str(data, "path");
    access = qdict_get_str(data, "access");

    g_assert_cmpstr(qdict_get_str(data, "accel"), ==, c->accel);
    g_assert_cmpint(qdict_get_int(data, "cpu-index"), ==, 0);
    g_assert_false(qdict_get_bool(data, "private"));
    g_assert_cmpstr(qdict_get_str(data, "block"), ==, "ram0");
    if (ram_path) {
        g_assert_cmpstr(qdict_get_str(data, "backing"), ==, "file");
        g_assert_cmpstr(qdict_get_str(data, "backing-path"), ==, ram_path);
        backing_words = g_strdup_printf("backed by file %s", ram_path);
    } else {
        g_assert_cmpstr(qdict_get_str(data, "backing"), ==, "memfd");
        g_assert_true(g_str_has_prefix(qdict_get_str(data, "backing-path"),
                                       "/memfd:"));
        backing_words = g_strdup_printf("backed by memfd %s",
                                        qdict_get_str(data, "backing-path"));
    }
    g_assert_cmpint(qdict_get_int(data, "count"), ==, 1);
    if (c->cause == CAUSE_TMPFS_FULL) {
        g_assert_cmpstr(qdict_get_str(data, "cause"), ==, "no-space");
        g_assert_true(g_str_has_prefix(qdict_get_str(data, "detail"),
                      "no space left on the backing filesystem"));
    } else {
        g_assert_cmpstr(qdict_get_str(data, "cause"), ==,
                        "backing-truncated");
        g_assert_cmpstr(qdict_get_str(data, "detail"), ==,
                        "backing file truncated to 0x80000 bytes");
        /* Everything past the end of the file, where the guest sees it. */
        assert_lost_as_mapped(vm->qts, data, KEEP_SIZE, RAM_SIZE);
    }

    if (g_str_equal(path, "vcpu-run")) {
        /* A VMX/SVM host: bare EFAULT, the whole lost range. */
        g_assert_cmpstr(c->accel, ==, "kvm");
        g_assert_cmpstr(access, ==, "unknown");
    } else {
        /* The exact page, and how it was touched. */
        if (g_str_equal(c->accel, "tcg")) {
            g_assert_cmpstr(path, ==, "sigbus");
        } else if (c->op == GUEST_OP_FETCH) {
            g_assert_true(g_str_equal(path, "emulation-failure") ||
                          g_str_equal(path, "sigbus"));
        } else {
            g_assert_true(g_str_equal(path, "mmio-exit") ||
                          g_str_equal(path, "sigbus"));
        }
        g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, target);
        g_assert_cmphex(qdict_get_uint(data, "size"), ==, PAGE_SIZE_4K);
        g_assert_cmphex(qdict_get_uint(data, "offset"), ==, target);
        g_assert_cmpstr(access, ==, expected_access(c));

        line = g_strdup_printf("guest memory fault: vCPU 0, GPA 0x%" PRIx64
                               "-0x%" PRIx64 ", %s, RAM "
                               "block ram0 offset 0x%" PRIx64 ", %s, "
                               "cause: %s (found by %s)", target,
                               target + PAGE_SIZE_4K - 1,
                               c->op == GUEST_OP_FETCH ? "instruction fetch"
                                                       : access,
                               target, backing_words,
                               qdict_get_str(data, "detail"), path);
    }
    qobject_unref(ev);

    /* The VM stops (after the event), QEMU is alive and answers. */
    qobject_unref(guest_qmp_wait_event(vm->qts, "STOP", 10000));
    guest_vm_assert_internal_error(vm->qts);
    /*
     * The vCPU never completed the access: KVM does not, and TCG leaves
     * the translation block at the faulting instruction.
     */
    g_assert_cmphex(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_OP_DONE),
                    !=, GUEST_OP_MARK);

    err_text = guest_vm_stderr(vm);
    g_assert_true(str_has_line(err_text, first));
    if (line) {
        g_assert_true(str_has_line_prefix(err_text, line));
    }
    if (c->cause == CAUSE_TMPFS_FULL) {
        /* The start-up warning about the small filesystem. */
        g_assert_nonnull(strstr(err_text, "RAM block ram0: its backing"));
        g_assert_nonnull(strstr(err_text, "short); the guest will stop"));
    }
    guest_vm_free(vm);
    if (filler) {
        unlink(filler);
    }
    if (ram_path) {
        unlink(ram_path);
    }
}

#ifdef KVM_CONTRACT_LIB
/*
 * Start QEMU on KVM under the kernel-contract layer in @mode, rewriting
 * MMIO exits at @gpa; RAM in a file truncated to KEEP_SIZE if @truncated.
 * The guest reads @gpa in @guest_mode.
 */
static GuestVM *start_contract_vm(const char *mode, uint64_t gpa,
                                  bool truncated, uint32_t guest_mode,
                                  char **ram_path)
{
    g_autofree char *gpa_str = g_strdup_printf("0x%" PRIx64, gpa);
    g_autofree char *memory = NULL;
    const char *const env[] = {
        "LD_PRELOAD", KVM_CONTRACT_LIB, "QKM_KVM_CONTRACT", mode,
        "QKM_CONTRACT_GPA", gpa_str, NULL,
    };
    GuestVMConfig cfg = {
        .accel = "kvm", .capture_stderr = true, .env = env,
    };
    GuestVM *vm;

    *ram_path = g_build_filename(work_dir, "ram-c", NULL);
    unlink(*ram_path);
    memory = g_strdup_printf("memory-backend-file,id=ram0,size=%d,"
                             "mem-path=%s,share=on%s",
                             RAM_SIZE, *ram_path, watch_off());
    cfg.memory = memory;
    vm = guest_vm_start_config(&cfg);

    guest_vm_request(vm, MB_REQ_MODE, guest_mode);
    guest_vm_request(vm, MB_REQ_OP, GUEST_OP_READ);
    guest_vm_request(vm, MB_REQ_ADDR, gpa);
    if (truncated) {
        g_assert_cmpint(truncate(*ram_path, KEEP_SIZE), ==, 0);
    }
    guest_vm_resume(vm);
    return vm;
}

/* Wait for the report; check the fields every path knows. */
static QDict *contract_report(GuestVM *vm, const char *path)
{
    QDict *ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 10000);
    QDict *data;

    g_assert_nonnull(ev);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpstr(qdict_get_str(data, "path"), ==, path);
    g_assert_cmpstr(qdict_get_str(data, "accel"), ==, "kvm");
    g_assert_cmpint(qdict_get_int(data, "cpu-index"), ==, 0);
    g_assert_cmpstr(qdict_get_str(data, "access"), ==, "unknown");
    qobject_unref(guest_qmp_wait_event(vm->qts, "STOP", 10000));
    guest_vm_assert_internal_error(vm->qts);
    return ev;
}

static bool contract_usable(void)
{
    const char *reason;

    if (!guest_accel_usable("kvm", &reason)) {
        g_test_skip(reason);
        return false;
    }
    return true;
}

/* KVM_RUN fails with bare EFAULT: the lost range is found by probing. */
static void test_contract_efault(void)
{
    g_autofree char *ram_path = NULL;
    g_autofree char *err_text = NULL;
    QDict *ev, *data;
    GuestVM *vm;

    if (!contract_usable()) {
        return;
    }
    vm = start_contract_vm("efault", TARGET_PAGED, true,
                           GUEST_MODE_LONG64, &ram_path);
    ev = contract_report(vm, "vcpu-run");
    data = qdict_get_qdict(ev, "data");
    /* The first range the guest lost, from the memory map. */
    g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, KEEP_SIZE);
    g_assert_cmphex(qdict_get_uint(data, "size"), ==, 0xc0000 - KEEP_SIZE);
    g_assert_cmphex(qdict_get_uint(data, "offset"), ==, KEEP_SIZE);
    g_assert_cmpstr(qdict_get_str(data, "block"), ==, "ram0");
    g_assert_cmpstr(qdict_get_str(data, "cause"), ==, "backing-truncated");
    assert_lost_as_mapped(vm->qts, data, KEEP_SIZE, RAM_SIZE);
    qobject_unref(ev);

    err_text = guest_vm_stderr(vm);
    g_assert_true(str_has_line(err_text, "error: kvm run failed Bad address"));
    g_assert_nonnull(strstr(err_text, "guest memory fault: vCPU 0, GPA "
                            "0x80000-0xbffff, access unknown, RAM block "
                            "ram0 offset 0x80000"));
    g_assert_nonnull(strstr(err_text, "; lost: GPA 0x80000-0xbffff, "));
    guest_vm_free(vm);
    unlink(ram_path);
}

/* SIGBUS on the vCPU thread during KVM_RUN: reported, QEMU survives. */
static void test_contract_sigbus(void)
{
    g_autofree char *ram_path = NULL;
    QDict *ev, *data;
    GuestVM *vm;

    if (!contract_usable()) {
        return;
    }
    vm = start_contract_vm("sigbus", TARGET_PAGED, true,
                           GUEST_MODE_LONG64, &ram_path);
    ev = contract_report(vm, "sigbus");
    data = qdict_get_qdict(ev, "data");
    g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, TARGET_PAGED);
    g_assert_cmphex(qdict_get_uint(data, "size"), ==, PAGE_SIZE_4K);
    g_assert_cmpstr(qdict_get_str(data, "block"), ==, "ram0");
    g_assert_cmpstr(qdict_get_str(data, "cause"), ==, "backing-truncated");
    qobject_unref(ev);
    guest_vm_free(vm);
    unlink(ram_path);
}

/*
 * KVM_EXIT_MEMORY_FAULT on RAM that is not guest_memfd-backed: not a
 * conversion QEMU can make, so it is reported (upstream prints "Convert
 * non guest_memfd backed memory region" and stops without a report).
 */
static void test_contract_memory_fault(const void *opaque)
{
    bool private = opaque != NULL;
    g_autofree char *ram_path = NULL;
    g_autofree char *err_text = NULL;
    QDict *ev, *data;
    GuestVM *vm;

    if (!contract_usable()) {
        return;
    }
    vm = start_contract_vm(private ? "memory-fault-private" : "memory-fault",
                           TARGET_PAGED, true, GUEST_MODE_LONG64, &ram_path);
    ev = contract_report(vm, "memory-fault-exit");
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpint(qdict_get_bool(data, "private"), ==, private);
    g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, TARGET_PAGED);
    g_assert_cmphex(qdict_get_uint(data, "size"), ==, PAGE_SIZE_4K);
    g_assert_cmpstr(qdict_get_str(data, "block"), ==, "ram0");
    g_assert_cmpstr(qdict_get_str(data, "cause"), ==, "backing-truncated");
    qobject_unref(ev);
    err_text = guest_vm_stderr(vm);
    g_assert_null(strstr(err_text, "Convert non guest_memfd"));
    /* Private memory is named; nothing else is ("shared" is an option). */
    g_assert_true(!!strstr(err_text, ", private memory, RAM block") ==
                  private);
    g_assert_null(strstr(err_text, "shared memory"));
    guest_vm_free(vm);
    unlink(ram_path);
}

/*
 * A shared memory fault outside RAM that the kernel keeps reporting after
 * QEMU "converted" it: upstream loops forever; the loop must end in a
 * report.
 */
static void test_contract_memory_fault_repeat(void)
{
    const uint64_t unassigned = 0xd0000000;
    g_autofree char *ram_path = NULL;
    QDict *ev, *data;
    GuestVM *vm;

    if (!contract_usable()) {
        return;
    }
    vm = start_contract_vm("memory-fault-repeat", unassigned, false,
                           GUEST_MODE_LONG64, &ram_path);
    ev = contract_report(vm, "memory-fault-exit");
    data = qdict_get_qdict(ev, "data");
    g_assert_false(qdict_get_bool(data, "private"));
    g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, unassigned);
    g_assert_false(qdict_haskey(data, "block"));
    g_assert_cmpstr(qdict_get_str(data, "backing"), ==, "none");
    g_assert_cmpstr(qdict_get_str(data, "cause"), ==, "no-memslot");
    g_assert_cmpstr(qdict_get_str(data, "detail"), ==,
                    "the same fault came back right after QEMU converted "
                    "the range");
    qobject_unref(ev);
    guest_vm_free(vm);
    unlink(ram_path);
}

/*
 * An emulation failure that KVM reports again and again at CPL 3, where
 * QEMU re-enters instead of stopping: upstream loops forever; the VM must
 * stop after a bounded number of repeats.  Not a memory fault: no event.
 */
static void test_contract_emulation_failure_cpl3(void)
{
    const uint64_t unassigned = 0xd0000000;
    g_autofree char *ram_path = NULL;
    g_autofree char *err_text = NULL;
    QDict *ev;
    GuestVM *vm;

    if (!contract_usable()) {
        return;
    }
    vm = start_contract_vm("emulation-failure-repeat", unassigned, false,
                           GUEST_MODE_USER64, &ram_path);
    ev = guest_qmp_wait_event(vm->qts, "STOP", 10000);
    g_assert_nonnull(ev);
    qobject_unref(ev);
    guest_vm_assert_internal_error(vm->qts);
    g_assert_cmpuint(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_STAGE), ==,
                     GUEST_MODE_USER64);
    g_assert_null(qtest_qmp_event_ref(vm->qts, "GUEST_MEMORY_FAULT"));
    err_text = guest_vm_stderr(vm);
    g_assert_nonnull(strstr(err_text, "emulation failure"));
    g_assert_nonnull(strstr(err_text, "the same emulation failure keeps "
                            "recurring at the same address: stopping"));
    guest_vm_free(vm);
    unlink(ram_path);
}
#endif

/*
 * QEMU's own access to a truncated range, from the main loop: pmemsave,
 * memsave (both must fail with a clear error, and report), a qtest read
 * (reports), and dump-guest-memory (which hands QEMU's mapping to
 * write(2): the kernel answers EFAULT, no SIGBUS, so the dump fails
 * cleanly at the first lost page).  None may kill QEMU.
 */
typedef struct AccessCase {
    const char *accel;
    const char *kind;
} AccessCase;

static void test_qemu_access(const void *opaque)
{
    const AccessCase *c = opaque;
    g_autofree char *ram_path = g_build_filename(work_dir, "ram-pm", NULL);
    g_autofree char *out = g_build_filename(work_dir, "access.out", NULL);
    g_autofree char *memory = NULL;
    GuestVMConfig cfg = { .accel = c->accel, .capture_stderr = true };
    g_autofree char *err_text = NULL;
    const char *first = guest_fault_headline(c->accel);
    g_autofree char *line = NULL;
    const uint64_t gpa = TARGET_PAGED;
    const char *reason;
    QDict *rsp = NULL, *ev, *data;
    GuestVM *vm;

    if (!guest_accel_usable(c->accel, &reason)) {
        g_test_skip(reason);
        return;
    }
    memory = g_strdup_printf("memory-backend-file,id=ram0,size=%d,"
                             "mem-path=%s,share=on%s",
                             RAM_SIZE, ram_path, watch_off());
    cfg.memory = memory;
    vm = guest_vm_start_config(&cfg);
    g_assert_cmpint(truncate(ram_path, KEEP_SIZE), ==, 0);

    if (g_str_equal(c->kind, "pmemsave")) {
        rsp = qtest_qmp(vm->qts, "{ 'execute': 'pmemsave', 'arguments': "
                        "{ 'val': %d, 'size': %d, 'filename': %s } }",
                        TARGET_PAGED, PAGE_SIZE_4K, out);
    } else if (g_str_equal(c->kind, "memsave")) {
        /* Paging is off at reset: virtual equals physical. */
        rsp = qtest_qmp(vm->qts, "{ 'execute': 'memsave', 'arguments': "
                        "{ 'val': %d, 'size': %d, 'filename': %s } }",
                        TARGET_PAGED, PAGE_SIZE_4K, out);
    } else if (g_str_equal(c->kind, "qtest-read")) {
        /*
         * QEMU reads the page on the main thread: lost, it reads as all
         * ones (memory that is not there), not as a fabricated zero.
         */
        g_assert_cmphex(qtest_readl(vm->qts, TARGET_PAGED), ==, UINT32_MAX);
    } else {
        g_autofree char *proto = g_strdup_printf("file:%s", out);

        rsp = qtest_qmp(vm->qts, "{ 'execute': 'dump-guest-memory', "
                        "'arguments': { 'paging': false, 'protocol': %s } }",
                        proto);
        g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                              "desc"), "Bad address"));
        qobject_unref(rsp);
        ev = guest_qmp_wait_event(vm->qts, "DUMP_COMPLETED", 10000);
        g_assert_nonnull(ev);
        data = qdict_get_qdict(qdict_get_qdict(ev, "data"), "result");
        g_assert_cmpstr(qdict_get_str(data, "status"), ==, "failed");
        g_assert_cmphex(qdict_get_uint(data, "completed"), ==, KEEP_SIZE);
        qobject_unref(ev);
        rsp = qtest_qmp(vm->qts, "{ 'execute': 'query-status' }");
        g_assert(qdict_haskey(rsp, "return"));
        qobject_unref(rsp);
        guest_vm_free(vm);
        unlink(ram_path);
        unlink(out);
        return;
    }
    if (g_str_equal(c->kind, "pmemsave") || g_str_equal(c->kind, "memsave")) {
        g_assert(qdict_haskey(rsp, "error"));
        g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                              "desc"),
                                "is not backed by host memory"));
    }
    qobject_unref(rsp);

    ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 10000);
    g_assert_nonnull(ev);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpstr(qdict_get_str(data, "path"), ==, "qemu-access");
    g_assert_false(qdict_haskey(data, "cpu-index"));
    g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, gpa);
    g_assert_cmphex(qdict_get_uint(data, "size"), ==, PAGE_SIZE_4K);
    g_assert_cmpstr(qdict_get_str(data, "block"), ==, "ram0");
    g_assert_cmphex(qdict_get_uint(data, "offset"), ==, gpa);
    g_assert_cmpstr(qdict_get_str(data, "cause"), ==, "backing-truncated");
    qobject_unref(ev);
    guest_vm_assert_internal_error(vm->qts);

    err_text = guest_vm_stderr(vm);
    g_assert_true(str_has_line(err_text, first));
    line = g_strdup_printf("guest memory fault: QEMU's own access, GPA "
                           "0x%" PRIx64 "-0x%" PRIx64 ", ", gpa,
                           gpa + PAGE_SIZE_4K - 1);
    g_assert_nonnull(strstr(err_text, line));
    guest_vm_free(vm);
    unlink(ram_path);
    unlink(out);
}

/*
 * A legitimate MMIO exit at a RAM address: a write to the BIOS ROM (a
 * read-only memslot on KVM) is served as before -- ignored -- and the
 * guest goes on; no report, the VM keeps running.
 */
static void test_rom_write_served(const void *opaque)
{
    const char *accel = opaque;
    GuestVMConfig cfg = { .accel = accel };
    const char *reason;
    uint32_t before;
    GuestVM *vm;

    if (!guest_accel_usable(accel, &reason)) {
        g_test_skip(reason);
        return;
    }
    vm = guest_vm_start_config(&cfg);
    before = qtest_readl(vm->qts, GUEST_IMAGE_BASE);
    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_LONG64);
    guest_vm_request(vm, MB_REQ_OP, GUEST_OP_WRITE);
    guest_vm_request(vm, MB_REQ_ADDR, GUEST_IMAGE_BASE);
    guest_vm_resume(vm);
    g_assert_true(guest_vm_wait_done(vm, 20000));
    g_assert_cmphex(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_OP_DONE), ==,
                    GUEST_OP_MARK);
    g_assert_cmphex(qtest_readl(vm->qts, GUEST_IMAGE_BASE), ==, before);

    assert_vm_running_without_fault(vm->qts);
    guest_vm_free(vm);
}

/*
 * The backing-file watch stops the VM before the guest touches anything:
 * under -accel @accel_args, which leaves @accel running.
 */
static void backing_watch_stops(const char *accel_args, const char *accel)
{
    g_autofree char *ram_path = g_build_filename(work_dir, "ram-w", NULL);
    g_autofree char *memory = NULL;
    GuestVMConfig cfg = { .accel = accel_args };
    QDict *ev, *data;
    GuestVM *vm;

    memory = g_strdup_printf("memory-backend-file,id=ram0,size=%d,"
                             "mem-path=%s,share=on", RAM_SIZE, ram_path);
    cfg.memory = memory;
    vm = guest_vm_start_config(&cfg);
    guest_vm_resume(vm);
    g_assert_true(guest_vm_wait_done(vm, 20000));

    g_assert_cmpint(truncate(ram_path, 0x100000), ==, 0);
    ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 10000);
    g_assert_nonnull(ev);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpstr(qdict_get_str(data, "accel"), ==, accel);
    g_assert_cmpstr(qdict_get_str(data, "path"), ==, "backing-watch");
    g_assert_cmpstr(qdict_get_str(data, "access"), ==, "unknown");
    g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, 0x100000);
    g_assert_cmphex(qdict_get_uint(data, "size"), ==, RAM_SIZE - 0x100000);
    g_assert_cmpstr(qdict_get_str(data, "cause"), ==, "backing-truncated");
    g_assert_cmpstr(qdict_get_str(data, "detail"), ==,
                    "backing file truncated to 0x100000 bytes");
    qobject_unref(ev);
    qobject_unref(guest_qmp_wait_event(vm->qts, "STOP", 10000));
    guest_vm_assert_internal_error(vm->qts);
    guest_vm_free(vm);
    unlink(ram_path);
}

static void test_backing_watch(const void *opaque)
{
    const char *accel = opaque;
    const char *reason;

    if (!guest_accel_usable(accel, &reason)) {
        g_test_skip(reason);
        return;
    }
    backing_watch_stops(accel, accel);
}

/*
 * "-accel kvm -accel tcg" on a host without KVM (its device node
 * missing): QEMU falls back to TCG and the watch works there.
 */
static void test_backing_watch_fallback(void)
{
    const char *reason;

    if (!guest_accel_usable("tcg", &reason)) {
        g_test_skip(reason);
        return;
    }
    backing_watch_stops("kvm,device=/nonexistent/kvm -accel tcg", "tcg");
}

/* backing-watch=off: truncation alone does not stop the VM. */
static void test_backing_watch_off(const void *opaque)
{
    const char *accel = opaque;
    g_autofree char *ram_path = g_build_filename(work_dir, "ram-o", NULL);
    g_autofree char *memory = NULL;
    GuestVMConfig cfg = { .accel = accel };
    const char *reason;
    GuestVM *vm;

    if (!guest_accel_usable(accel, &reason)) {
        g_test_skip(reason);
        return;
    }
    /* The option exists (pristine QEMU has none). */
    g_assert_true(have_backing_watch);
    memory = g_strdup_printf("memory-backend-file,id=ram0,size=%d,"
                             "mem-path=%s,share=on%s",
                             RAM_SIZE, ram_path, watch_off());
    cfg.memory = memory;
    vm = guest_vm_start_config(&cfg);
    guest_vm_resume(vm);
    g_assert_true(guest_vm_wait_done(vm, 20000));
    g_assert_cmpint(truncate(ram_path, 0x100000), ==, 0);
    g_usleep(500 * 1000);

    assert_vm_running_without_fault(vm->qts);
    guest_vm_free(vm);
    unlink(ram_path);
}

/* A bad value for the option is a clear start-up error. */
static void test_backing_watch_bad_value(void)
{
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL, *err = NULL;
    const char *qemu = g_getenv("QTEST_QEMU_BINARY");
    int status;

    g_assert(qemu);
    cmd = g_strdup_printf("%s -machine none -nodefaults -display none "
                          "-object memory-backend-memfd,id=m,size=1M,"
                          "backing-watch=maybe", qemu);
    g_assert_true(g_spawn_command_line_sync(cmd, &out, &err, &status, NULL));
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), !=, 0);
    g_assert_nonnull(strstr(err, "backing-watch"));
    g_assert_nonnull(strstr(err, "'on' or 'off'"));
}

/*
 * share=off (a private file mapping) does not protect the guest: pages
 * it has not written still come from the file, so a truncated backing
 * stops it with the same report as share=on.
 */
static void test_share_off(const void *opaque)
{
    const char *accel = opaque;
    g_autofree char *ram_path = g_build_filename(work_dir, "ram-p", NULL);
    g_autofree char *memory = NULL;
    GuestVMConfig cfg = { .accel = accel };
    const char *reason;
    QDict *ev, *data;
    GuestVM *vm;

    if (!guest_accel_usable(accel, &reason)) {
        g_test_skip(reason);
        return;
    }
    memory = g_strdup_printf("memory-backend-file,id=ram0,size=%d,"
                             "mem-path=%s,share=off%s", RAM_SIZE, ram_path,
                             watch_off());
    cfg.memory = memory;
    vm = guest_vm_start_config(&cfg);
    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_LONG64);
    guest_vm_request(vm, MB_REQ_OP, GUEST_OP_READ);
    guest_vm_request(vm, MB_REQ_ADDR, 0x200000);
    g_assert_cmpint(truncate(ram_path, 0x100000), ==, 0);
    guest_vm_resume(vm);
    ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 10000);
    g_assert_nonnull(ev);
    data = qdict_get_qdict(ev, "data");
    if (g_str_equal(qdict_get_str(data, "path"), "vcpu-run")) {
        /*
         * Bare -EFAULT from KVM_RUN, as every released VMX/SVM kernel
         * gives it: no GPA, so the report names the whole lost range.
         */
        g_assert_cmpstr(accel, ==, "kvm");
        g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, 0x100000);
        g_assert_cmphex(qdict_get_uint(data, "size"), ==,
                        RAM_SIZE - 0x100000);
    } else {
        /* The exact page: TCG, or a KVM that exits at the page. */
        g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, 0x200000);
        g_assert_cmphex(qdict_get_uint(data, "size"), ==, 0x1000);
    }
    g_assert_cmpstr(qdict_get_str(data, "cause"), ==, "backing-truncated");
    qobject_unref(ev);
    qobject_unref(guest_qmp_wait_event(vm->qts, "STOP", 10000));
    guest_vm_assert_internal_error(vm->qts);
    guest_vm_free(vm);
    unlink(ram_path);
}

/*
 * backing-watch exists where RAM has a backing file descriptor (file,
 * memfd, shm), with a description that -object TYPE,help prints too; not
 * on memory-backend-ram, where nothing could be watched.
 */
static void test_backing_watch_property(void)
{
    static const char *const with[] = {
        "memory-backend-file", "memory-backend-memfd", "memory-backend-shm",
    };
    QTestState *qts = qtest_init("-machine none");
    g_autofree char *ram_desc = NULL;
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL, *err = NULL;
    int status;

    for (int i = 0; i < ARRAY_SIZE(with); i++) {
        g_autofree char *desc = guest_qom_description(qts, with[i],
                                                     "backing-watch");
        g_autofree char *help = guest_object_help(with[i]);
        g_autofree char *line = g_strdup_printf("  backing-watch=<bool>   - %s",
                                                desc ? desc : "?");

        g_test_message("%s: %s", with[i], desc ? desc : "(none)");
        g_assert_nonnull(desc);
        g_assert_nonnull(strstr(desc, "backing file shrinks"));
        g_assert_nonnull(strstr(help, line));
    }
    ram_desc = guest_qom_description(qts, "memory-backend-ram",
                                    "backing-watch");
    g_assert_null(ram_desc);
    qtest_quit(qts);

    cmd = g_strdup_printf("%s -machine none -nodefaults -display none "
                          "-object memory-backend-ram,id=m,size=1M,"
                          "backing-watch=off", qtest_qemu_binary(NULL));
    g_assert_true(g_spawn_command_line_sync(cmd, &out, &err, &status, NULL));
    g_assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Its QAPI type has no such member: -object refuses it by name. */
    g_assert_nonnull(strstr(err, "Invalid parameter 'backing-watch'"));
}

/*
 * The watch is set up when the RAM block is made: qom-set afterwards is
 * an error that says so, and the value stays.  Before (object-add with the
 * option) it is taken.
 */
static void test_backing_watch_qom_set(void)
{
    g_autofree char *path = g_build_filename(work_dir, "ram-q", NULL);
    QTestState *qts;
    QDict *rsp;

    qts = qtest_initf("-machine none -object memory-backend-file,id=m0,"
                      "size=1M,mem-path=%s,share=on", path);
    rsp = qtest_qmp(qts, "{ 'execute': 'qom-set', 'arguments': { 'path': "
                    "'/objects/m0', 'property': 'backing-watch', "
                    "'value': false } }");
    g_assert_nonnull(qdict_get_qdict(rsp, "error"));
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "cannot change property 'backing-watch' of memory "
                    "backend 'm0' once it is in use: set it when creating "
                    "the backend");
    qobject_unref(rsp);
    rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': { 'path': "
                    "'/objects/m0', 'property': 'backing-watch' } }");
    g_assert_true(qdict_get_bool(rsp, "return"));
    qobject_unref(rsp);

    qtest_qmp_assert_success(qts, "{ 'execute': 'object-add', 'arguments': "
                             "{ 'qom-type': 'memory-backend-memfd', "
                             "'id': 'm1', 'size': 1048576, "
                             "'backing-watch': false } }");
    rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': { 'path': "
                    "'/objects/m1', 'property': 'backing-watch' } }");
    g_assert_false(qdict_get_bool(rsp, "return"));
    qobject_unref(rsp);
    qtest_quit(qts);
    unlink(path);
}

int main(int argc, char **argv)
{
    static const char *const accels[] = { "kvm", "tcg" };
    static const char *const access_kinds[] = {
        "pmemsave", "memsave", "qtest-read", "dump-guest-memory",
    };
    g_autoptr(GError) err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    work_dir = g_dir_make_tmp("memory-fault-test-XXXXXX", &err);
    g_assert_no_error(err);
    setup_tmpfs();
    have_backing_watch = detect_backing_watch();

    /*
     * A fetch is a read: from a hole the kernel may hand out the zero
     * page, and the guest would execute zeros instead of faulting.
     */
    g_test_message("not registered: tmpfs-full fetch cases (a fetch from "
                   "a hole on a full tmpfs need not fault, the kernel may "
                   "map the zero page; the truncation causes cover "
                   "fetches)");
    for (int a = 0; a < ARRAY_SIZE(accels); a++) {
        g_autofree char *p2 = NULL, *p3 = NULL, *p4 = NULL, *p5 = NULL;

        for (int cause = 0; cause < ARRAY_SIZE(cause_names); cause++) {
            for (uint32_t m = GUEST_MODE_REAL; m <= GUEST_MODE_USER64; m++) {
                for (uint32_t op = GUEST_OP_READ; op <= GUEST_OP_MAX; op++) {
                    FaultCase *c;
                    g_autofree char *p = NULL;

                    if (cause == CAUSE_TMPFS_FULL && op == GUEST_OP_FETCH) {
                        continue;       /* see below */
                    }
                    c = g_new0(FaultCase, 1);

                    c->accel = accels[a];
                    c->cause = cause;
                    c->mode = m;
                    c->op = op;
                    p = g_strdup_printf("/x86/memory-fault/%s/%s/%s/%s",
                                        accels[a], cause_names[cause],
                                        mode_names[m], op_names[op]);
                    qtest_add_data_func_full(p, c, test_guest_fault, g_free);
                }
            }
        }
        for (int k = 0; k < ARRAY_SIZE(access_kinds); k++) {
            AccessCase *ac = g_new0(AccessCase, 1);
            g_autofree char *p = NULL;

            ac->accel = accels[a];
            ac->kind = access_kinds[k];
            p = g_strdup_printf("/x86/memory-fault/%s/qemu-access/%s",
                                accels[a], access_kinds[k]);
            qtest_add_data_func_full(p, ac, test_qemu_access, g_free);
        }
        p5 = g_strdup_printf("/x86/memory-fault/%s/share-off", accels[a]);
        qtest_add_data_func(p5, accels[a], test_share_off);
        p4 = g_strdup_printf("/x86/memory-fault/%s/rom-write-served",
                             accels[a]);
        qtest_add_data_func(p4, accels[a], test_rom_write_served);
        p2 = g_strdup_printf("/x86/memory-fault/%s/backing-watch",
                             accels[a]);
        qtest_add_data_func(p2, accels[a], test_backing_watch);
        p3 = g_strdup_printf("/x86/memory-fault/%s/backing-watch-off",
                             accels[a]);
        qtest_add_data_func(p3, accels[a], test_backing_watch_off);
    }
    qtest_add_func("/x86/memory-fault/fallback/backing-watch",
                   test_backing_watch_fallback);
    qtest_add_func("/x86/memory-fault/backing-watch-property",
                   test_backing_watch_property);
    qtest_add_func("/x86/memory-fault/backing-watch-qom-set",
                   test_backing_watch_qom_set);
    qtest_add_func("/x86/memory-fault/backing-watch-bad-value",
                   test_backing_watch_bad_value);
#ifdef KVM_CONTRACT_LIB
    qtest_add_func("/x86/memory-fault/kvm/contract/efault",
                   test_contract_efault);
    qtest_add_func("/x86/memory-fault/kvm/contract/sigbus-in-vcpu-run",
                   test_contract_sigbus);
    qtest_add_data_func("/x86/memory-fault/kvm/contract/memory-fault-shared",
                        NULL, test_contract_memory_fault);
    qtest_add_data_func("/x86/memory-fault/kvm/contract/"
                        "memory-fault-private", "private",
                        test_contract_memory_fault);
    qtest_add_func("/x86/memory-fault/kvm/contract/memory-fault-repeat",
                   test_contract_memory_fault_repeat);
    qtest_add_func("/x86/memory-fault/kvm/contract/"
                   "emulation-failure-repeat-cpl3",
                   test_contract_emulation_failure_cpl3);
#endif

    ret = g_test_run();
    if (tmpfs_dir) {
        umount(tmpfs_dir);
        rmdir(tmpfs_dir);
    }
    rmdir(work_dir);
    return ret;
}
