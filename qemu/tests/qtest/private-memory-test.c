/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Private (guest_memfd) memory, driven by the freestanding test guest
 * (tests/qtest/guest):
 *
 * - RAM in a shared guest_memfd (memory-backend-memfd,guest-memfd=on):
 *   runs on the real KVM wherever KVM_CAP_GUEST_MEMFD_FLAGS has
 *   MMAP|INIT_SHARED (Linux 6.18+), and is skipped with the reason
 *   elsewhere.  Start-up errors, discard, query-memdev and migration to a
 *   file.
 * - sw-protected-vm: conversions through KVM_HC_MAP_GPA_RANGE, where data
 *   lives, a genuine private-memory fault, an implicit conversion.  Runs
 *   on the real KVM where KVM_CAP_VM_TYPES has KVM_X86_SW_PROTECTED_VM,
 *   and otherwise against the kernel-contract layer's model of that VM
 *   type (tests/qtest/kvm-contract, documented contract:
 *   docs/devel/kvm-kernel-contract.rst sections 3-4 and the kernel
 *   sources cited there); the test log says which.  The
 *   fault-injection cases always use the layer: no real kernel fails a
 *   guest_memfd page on demand.
 * - Start-up errors, one case each, and "-accel kvm -accel tcg" falling
 *   back to TCG where KVM is missing or refuses.
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/kvm.h>
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "guest/guest-qtest.h"

#define RAM_SIZE        (64 * 1024 * 1024)
#define PAGE_A          0x200000    /* converted to shared */
#define PAGE_B          0x201000    /* stays private */
#define PAGE_C          0x202000    /* private -> shared -> private */
#define HOST_A          0x0a0a0a0a  /* written through QEMU's (shared) view */
#define HOST_B          0x0b0b0b0b
#define HOST_C          0x0c0c0c0c
#define GUEST_A         0xa1a1a1a1  /* written by the guest */
#define GUEST_B         0xb1b1b1b1
#define GUEST_C         0xc1c1c1c1

#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#define KVM_CAP_GUEST_MEMFD_FLAGS 244
#endif

/* --- capabilities of the real KVM --- */

static int kvm_cap(bool on_vm, long cap)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int fd, ret;

    if (kvm < 0) {
        return -1;
    }
    fd = on_vm ? ioctl(kvm, KVM_CREATE_VM, 0) : kvm;
    ret = fd < 0 ? -1 : ioctl(fd, KVM_CHECK_EXTENSION, cap);
    if (on_vm && fd >= 0) {
        close(fd);
    }
    close(kvm);
    return ret;
}

static bool guest_memfd_ram_usable(void)
{
    const char *reason;
    int flags;

    if (!guest_accel_usable("kvm", &reason)) {
        g_test_skip(reason);
        return false;
    }
    flags = kvm_cap(true, KVM_CAP_GUEST_MEMFD_FLAGS);
    if (flags < 0 || (flags & 3) != 3) {
        g_test_skip("KVM_CAP_GUEST_MEMFD_FLAGS lacks MMAP|INIT_SHARED "
                    "(Linux 6.18+ needed)");
        return false;
    }
    return true;
}

static bool real_sw_protected_vm(void)
{
    int types = kvm_cap(false, KVM_CAP_VM_TYPES);

    return types > 0 && (types & (1 << KVM_X86_SW_PROTECTED_VM));
}

/* Wait for the guest; on a timeout, show what it and QEMU said. */
static void wait_guest_done(GuestVM *vm)
{
    if (!guest_vm_wait_done(vm, 10000)) {
        g_autofree char *con = guest_vm_debugcon(vm);
        g_autofree char *err = vm->stderr_path ? guest_vm_stderr(vm) : NULL;

        g_test_message("guest console: %s", con);
        g_test_message("QEMU stderr: %s", err ? err : "");
        g_assert_not_reached();
    }
}

static bool str_has_line(const char *text, const char *line)
{
    g_autofree char *needle = g_strdup_printf("\n%s\n", line);
    g_autofree char *hay = g_strdup_printf("\n%s", text);

    return strstr(hay, needle) != NULL;
}

/* @err has lines ending in each of the NULL-terminated @lines, in order. */
static void assert_lines_in_order(const char *err, const char *const *lines)
{
    const char *at = err;

    for (int i = 0; lines[i]; i++) {
        g_autofree char *needle = g_strdup_printf("%s\n", lines[i]);
        const char *found = strstr(at, needle);

        if (!found) {
            g_test_message("stderr: %s", err);
            g_test_message("missing, in order: \"%s\"", lines[i]);
        }
        g_assert_nonnull(found);
        at = found + strlen(needle);
    }
}

/* Run QEMU to a start-up error; return its stderr. */
static char *startup_error(const char *accel, const char *args,
                           const char *env)
{
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    char *err = NULL;
    int status;

    cmd = g_strdup_printf("env %s %s -accel %s -machine pc -m 64M "
                          "-nodefaults -display none -S %s", env ? env : "",
                          qtest_qemu_binary(NULL), accel, args);
    g_assert_true(g_spawn_command_line_sync(cmd, &out, &err, &status, NULL));
    g_assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return err;
}

/* Let the guest read the byte at @addr in long mode; return it. */
static uint32_t guest_read_byte(GuestVM *vm, uint32_t addr)
{
    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_LONG64);
    guest_vm_request(vm, MB_REQ_OP, GUEST_OP_READ);
    guest_vm_request(vm, MB_REQ_ADDR, addr);
    guest_vm_resume(vm);
    wait_guest_done(vm);
    return qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_OP_VALUE);
}

/* --- RAM in a shared guest_memfd --- */

#define FILL_BASE 0x1000000
#define FILL_SIZE 0x100000

/* Ask the guest to fill @count bytes from @addr in long mode. */
static void guest_fill_request(GuestVM *vm, uint32_t addr, uint32_t count)
{
    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_LONG64);
    guest_vm_request(vm, MB_REQ_OP, GUEST_OP_FILL);
    guest_vm_request(vm, MB_REQ_ADDR, addr);
    guest_vm_request(vm, MB_REQ_COUNT, count);
}

#define GMEM_RAM "memory-backend-memfd,id=ram0,size=64M,share=on,guest-memfd=on"

static GuestVM *start_gmem_vm(const char *extra)
{
    GuestVMConfig cfg = {
        .accel = "kvm", .memory = GMEM_RAM, .extra_args = extra,
        .capture_stderr = true,
    };

    return guest_vm_start_config(&cfg);
}

/* The guest reads what QEMU wrote and writes what QEMU then reads. */
static void test_gmem_ram_access(void)
{
    GuestVM *vm;
    g_autofree char *err = NULL;

    if (!guest_memfd_ram_usable()) {
        return;
    }
    vm = start_gmem_vm(NULL);
    qtest_writeb(vm->qts, PAGE_A, 0x77);
    g_assert_cmphex(guest_read_byte(vm, PAGE_A), ==, 0x77);
    guest_vm_free(vm);

    vm = start_gmem_vm(NULL);
    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_USER64);
    guest_vm_request(vm, MB_REQ_OP, GUEST_OP_WRITE);
    guest_vm_request(vm, MB_REQ_ADDR, PAGE_B);
    guest_vm_resume(vm);
    wait_guest_done(vm);
    g_assert_cmphex(qtest_readb(vm->qts, PAGE_B), ==, GUEST_WRITE_BYTE);
    /* No free-space warning: a guest_memfd has no filesystem. */
    err = guest_vm_stderr(vm);
    g_assert_null(strstr(err, "free"));
    guest_vm_free(vm);

    /* A guest fill of 1 MiB lands in every page (the benchmark's op). */
    vm = start_gmem_vm(NULL);
    guest_fill_request(vm, FILL_BASE, FILL_SIZE);
    guest_vm_resume(vm);
    wait_guest_done(vm);
    for (uint32_t off = 0; off < FILL_SIZE; off += 0x3ff8) {
        g_assert_cmphex(qtest_readq(vm->qts, FILL_BASE + off), ==,
                        GUEST_FILL_PATTERN);
    }
    g_assert_cmphex(qtest_readq(vm->qts, FILL_BASE + FILL_SIZE), ==, 0);
    guest_vm_free(vm);
}

/* Find QEMU's guest_memfd and punch a hole in it, as a discard does. */
static void punch_qemu_gmem(QTestState *qts, off_t offset)
{
    pid_t pid = qtest_pid(qts);
    g_autofree char *dir = g_strdup_printf("/proc/%d/fd", pid);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    int pidfd, fd = -1;

    g_assert_nonnull(d);
    pidfd = syscall(SYS_pidfd_open, pid, 0);
    g_assert_cmpint(pidfd, >=, 0);
    while ((name = g_dir_read_name(d)) && fd < 0) {
        g_autofree char *link = g_strdup_printf("%s/%s", dir, name);
        g_autofree char *target = g_file_read_link(link, NULL);

        /* "anon_inode:[kvm-gmem]", or "/[kvm-gmem] (deleted)" (6.18+) */
        if (target && strstr(target, "[kvm-gmem]")) {
            fd = syscall(SYS_pidfd_getfd, pidfd, atoi(name), 0);
        }
    }
    close(pidfd);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                              offset, 4096), ==, 0);
    close(fd);
}

static void test_gmem_ram_discard(void)
{
    GuestVM *vm;

    if (!guest_memfd_ram_usable()) {
        return;
    }
    vm = start_gmem_vm(NULL);
    qtest_writel(vm->qts, PAGE_A, HOST_A);
    g_assert_cmphex(qtest_readl(vm->qts, PAGE_A), ==, HOST_A);
    punch_qemu_gmem(vm->qts, PAGE_A);
    g_assert_cmphex(qtest_readl(vm->qts, PAGE_A), ==, 0);

    /* The guest sees the discarded page as zero too. */
    qtest_writeb(vm->qts, PAGE_B, 0x55);
    punch_qemu_gmem(vm->qts, PAGE_B);
    g_assert_cmphex(guest_read_byte(vm, PAGE_B), ==, 0);
    guest_vm_free(vm);
}

static void test_gmem_ram_query_memdev(void)
{
    g_autofree char *desc = NULL;
    g_autofree char *help = NULL;
    g_autofree char *line = NULL;
    GuestVM *vm;
    QDict *rsp;
    QList *list;
    QDict *m;

    if (!guest_memfd_ram_usable()) {
        return;
    }
    vm = start_gmem_vm("-object memory-backend-memfd,id=plain,size=4M");
    /* The option is described, in QMP and in -object ...,help. */
    desc = guest_qom_description(vm->qts, "memory-backend-memfd",
                                 "guest-memfd");
    g_assert_nonnull(desc);
    g_assert_cmpstr(desc, !=, "");
    help = guest_object_help("memory-backend-memfd");
    line = g_strdup_printf("  guest-memfd=<bool>     - %s", desc);
    g_assert_nonnull(strstr(help, line));
    rsp = qtest_qmp(vm->qts, "{ 'execute': 'query-memdev' }");
    list = qdict_get_qlist(rsp, "return");
    g_assert_cmpint(qlist_size(list), ==, 2);
    for (const QListEntry *e = qlist_first(list); e; e = qlist_next(e)) {
        m = qobject_to(QDict, qlist_entry_obj(e));
        g_assert_true(qdict_haskey(m, "guest-memfd"));
        g_assert_cmpint(qdict_get_bool(m, "guest-memfd"), ==,
                        !strcmp(qdict_get_str(m, "id"), "ram0"));
    }
    qobject_unref(rsp);
    guest_vm_free(vm);
}

/* Wait for @qts's migration to end; returns its final query-migrate. */
static QDict *wait_migration_end(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    const char *status;
    QDict *rsp, *ret;

    do {
        rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
        ret = qdict_get_qdict(rsp, "return");
        status = qdict_get_try_str(ret, "status");
        if (status && (!strcmp(status, "completed") ||
                       !strcmp(status, "failed"))) {
            qobject_ref(ret);
            qobject_unref(rsp);
            return ret;
        }
        qobject_unref(rsp);
        g_usleep(10000);
    } while (g_get_monotonic_time() < deadline);
    g_assert_not_reached();
}

static void wait_migration(QTestState *qts)
{
    QDict *ret = wait_migration_end(qts);

    g_assert_cmpstr(qdict_get_str(ret, "status"), ==, "completed");
    qobject_unref(ret);
}

static const char *run_state(QTestState *qts)
{
    static char state[32];
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");

    g_strlcpy(state, qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
              sizeof(state));
    qobject_unref(rsp);
    return state;
}

/* All of the guest's RAM as QEMU sees it, into @path. */
static void save_ram(QTestState *qts, const char *path)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'pmemsave', 'arguments': "
                             "{ 'val': 0, 'size': %u, 'filename': %s } }",
                             RAM_SIZE, path);
}

static void assert_same_ram(const char *src, const char *dst)
{
    g_autofree char *a = NULL, *b = NULL;
    gsize alen, blen;

    g_assert_true(g_file_get_contents(src, &a, &alen, NULL));
    g_assert_true(g_file_get_contents(dst, &b, &blen, NULL));
    g_assert_cmpuint(alen, ==, RAM_SIZE);
    g_assert_cmpuint(blen, ==, RAM_SIZE);
    for (gsize off = 0; off < RAM_SIZE; off += 4096) {
        if (memcmp(a + off, b + off, 4096)) {
            g_test_message("destination RAM differs at 0x%zx", off);
            g_assert_not_reached();
        }
    }
}

/*
 * A guest that wrote to its RAM (through KVM) and whose RAM QEMU wrote
 * too, paused: returns it.
 */
static GuestVM *start_written_gmem_vm(void)
{
    GuestVM *vm = start_gmem_vm(NULL);

    guest_fill_request(vm, FILL_BASE, FILL_SIZE);
    qtest_writel(vm->qts, PAGE_A, HOST_A);
    qtest_writel(vm->qts, RAM_SIZE - 4, HOST_B);
    guest_vm_resume(vm);
    wait_guest_done(vm);
    return vm;
}

/*
 * Migrate a paused guest to @uri, with @dst (a QEMU started -incoming)
 * or a new QEMU loading the file; the destination's RAM must be the
 * source's, byte for byte, the guest's own writes included.
 */
static void migrate_paused_and_compare(const char *dir, bool to_file,
                                       bool cpr_reboot)
{
    g_autofree char *file = g_build_filename(dir, "state", NULL);
    g_autofree char *sock = g_build_filename(dir, "sock", NULL);
    g_autofree char *src_ram = g_build_filename(dir, "src.ram", NULL);
    g_autofree char *dst_ram = g_build_filename(dir, "dst.ram", NULL);
    g_autofree char *uri = g_strdup_printf("%s:%s", to_file ? "file" : "unix",
                                           to_file ? file : sock);
    g_autofree char *incoming = g_strdup_printf("-incoming %s",
                                                cpr_reboot ? "defer" : uri);
    GuestVM *vm, *dst = NULL;

    vm = start_written_gmem_vm();
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'stop' }");
    if (cpr_reboot) {
        qtest_qmp_assert_success(vm->qts, "{ 'execute': "
                                 "'migrate-set-parameters', 'arguments': "
                                 "{ 'mode': 'cpr-reboot' } }");
    }
    if (!to_file) {
        dst = start_gmem_vm(incoming);
    }
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'migrate', 'arguments':"
                             " { 'uri': %s } }", uri);
    wait_migration(vm->qts);
    save_ram(vm->qts, src_ram);
    guest_vm_free(vm);

    if (to_file) {
        dst = start_gmem_vm(incoming);
    }
    if (cpr_reboot) {
        qtest_qmp_assert_success(dst->qts, "{ 'execute': "
                                 "'migrate-set-parameters', 'arguments': "
                                 "{ 'mode': 'cpr-reboot' } }");
        qtest_qmp_assert_success(dst->qts, "{ 'execute': "
                                 "'migrate-incoming', 'arguments': "
                                 "{ 'uri': %s } }", uri);
    }
    wait_migration(dst->qts);
    save_ram(dst->qts, dst_ram);
    g_assert_cmphex(qtest_readl(dst->qts, PAGE_A), ==, HOST_A);
    g_assert_cmphex(qtest_readl(dst->qts, RAM_SIZE - 4), ==, HOST_B);
    g_assert_cmphex(qtest_readq(dst->qts, FILL_BASE + FILL_SIZE - 8), ==,
                    GUEST_FILL_PATTERN);
    g_assert_cmphex(qtest_readl(dst->qts, GUEST_MAILBOX_GPA + MB_DONE), ==,
                    GUEST_DONE);
    guest_vm_free(dst);
    assert_same_ram(src_ram, dst_ram);
    unlink(file);
    unlink(src_ram);
    unlink(dst_ram);
}

/* Save to a file with the guest paused, load into a new QEMU. */
static void test_gmem_ram_migrate_file(void)
{
    g_autofree char *dir = NULL;

    if (!guest_memfd_ram_usable()) {
        return;
    }
    dir = g_dir_make_tmp("qtest-gmem-XXXXXX", NULL);
    migrate_paused_and_compare(dir, true, false);
    rmdir(dir);
}

/* The same over a socket to a second QEMU. */
static void test_gmem_ram_migrate_socket(void)
{
    g_autofree char *dir = NULL;

    if (!guest_memfd_ram_usable()) {
        return;
    }
    dir = g_dir_make_tmp("qtest-gmem-XXXXXX", NULL);
    migrate_paused_and_compare(dir, false, false);
    rmdir(dir);
}

/* cpr-reboot: a file with the guest paused, loaded by a new QEMU. */
static void test_gmem_ram_cpr_reboot(void)
{
    g_autofree char *dir = NULL;

    if (!guest_memfd_ram_usable()) {
        return;
    }
    dir = g_dir_make_tmp("qtest-gmem-XXXXXX", NULL);
    migrate_paused_and_compare(dir, true, true);
    rmdir(dir);
}

/*
 * cpr-transfer hands the new QEMU this one's memory file descriptors;
 * a guest_memfd belongs to the VM that created it: refused, naming the
 * RAM block.  (aux-ram-share=on, so that nothing else blocks first.)
 */
static void test_gmem_ram_cpr_transfer(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *main_sock = NULL;
    g_autofree char *cpr_sock = NULL;
    GuestVM *vm;
    QDict *rsp;

    if (!guest_memfd_ram_usable()) {
        return;
    }
    dir = g_dir_make_tmp("qtest-gmem-XXXXXX", NULL);
    main_sock = g_build_filename(dir, "main", NULL);
    cpr_sock = g_build_filename(dir, "cpr", NULL);
    vm = start_gmem_vm("-machine aux-ram-share=on");
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'stop' }");
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'migrate-set-parameters',"
                             " 'arguments': { 'mode': 'cpr-transfer' } }");
    rsp = qtest_qmp(vm->qts, "{ 'execute': 'migrate', 'arguments': { "
                    "'channels': [ { 'channel-type': 'main', 'addr': { "
                    "'transport': 'socket', 'type': 'unix', 'path': %s } }, "
                    "{ 'channel-type': 'cpr', 'addr': { 'transport': "
                    "'socket', 'type': 'unix', 'path': %s } } ] } }",
                    main_sock, cpr_sock);
    g_assert_nonnull(qdict_get_qdict(rsp, "error"));
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"), ==,
                    "Memory region ram0 is a guest_memfd, which is not "
                    "supported with CPR.");
    qobject_unref(rsp);
    guest_vm_free(vm);
    rmdir(dir);
}

/*
 * The default pc and q35 machines have SMM: KVM's second address space
 * maps the same RAM again.  KVM refuses to bind a guest_memfd range to a
 * second memslot, so an ordinary VM's guest_memfd RAM is mapped like any
 * RAM (QEMU once aborted here at start-up).  With SMM on and off, the
 * guest runs and its write lands in the guest_memfd.
 */
static void test_gmem_ram_machine(gconstpointer opaque)
{
    const char *machine = opaque;
    g_autofree char *args = g_strdup_printf("-machine %s", machine);
    g_autofree char *err = NULL;
    QDict *rsp;
    GuestVM *vm;

    if (!guest_memfd_ram_usable()) {
        return;
    }
    vm = start_gmem_vm(args);
    rsp = qtest_qmp(vm->qts, "{ 'execute': 'qom-get', 'arguments': { "
                    "'path': '/machine', 'property': 'smm' } }");
    g_assert_cmpstr(qdict_get_str(rsp, "return"), ==,
                    strstr(machine, "smm=on") ? "on" : "off");
    qobject_unref(rsp);
    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_LONG64);
    guest_vm_request(vm, MB_REQ_OP, GUEST_OP_WRITE);
    guest_vm_request(vm, MB_REQ_ADDR, PAGE_B);
    guest_vm_resume(vm);
    wait_guest_done(vm);
    g_assert_cmphex(qtest_readb(vm->qts, PAGE_B), ==, GUEST_WRITE_BYTE);
    g_assert_cmpstr(run_state(vm->qts), ==, "running");
    err = guest_vm_stderr(vm);
    g_assert_null(strstr(err, "error"));
    guest_vm_free(vm);
}

/* Bytes of RAM a running migration has sent so far. */
static uint64_t migration_transferred(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
    QDict *ret = qdict_get_qdict(rsp, "return");
    QDict *ram = qdict_get_qdict(ret, "ram");
    uint64_t n = ram ? qdict_get_uint(ram, "transferred") : 0;

    qobject_unref(rsp);
    return n;
}

/*
 * Live migration of a running guest to a second QEMU.  An ordinary VM's
 * guest_memfd RAM is mapped by KVM like any RAM, so KVM logs the guest's
 * writes to it: the guest fills 32 MiB (sent slowly), then, while that is
 * being sent, reboots and fills RAM the migration has already sent (zero
 * pages, sent first).  Only a working dirty log gets those pages to the
 * destination: its RAM must end as the source's, byte for byte.
 */
static void test_gmem_ram_migrate_live(void)
{
    g_autofree char *dir = NULL;
    g_autofree char *uri = NULL;
    g_autofree char *incoming = NULL;
    g_autofree char *src_ram = NULL;
    g_autofree char *dst_ram = NULL;
    gint64 deadline;
    GuestVM *vm, *dst;

    if (!guest_memfd_ram_usable()) {
        return;
    }
    dir = g_dir_make_tmp("qtest-gmem-XXXXXX", NULL);
    uri = g_strdup_printf("unix:%s/sock", dir);
    incoming = g_strdup_printf("-incoming %s", uri);
    src_ram = g_build_filename(dir, "src.ram", NULL);
    dst_ram = g_build_filename(dir, "dst.ram", NULL);

    vm = start_gmem_vm(NULL);
    guest_fill_request(vm, FILL_BASE, 32 * 1024 * 1024);
    guest_vm_resume(vm);
    wait_guest_done(vm);
    dst = start_gmem_vm(incoming);
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'migrate-set-parameters',"
                             " 'arguments': { 'max-bandwidth': %d } }",
                             4 * 1024 * 1024);
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'migrate', 'arguments':"
                             " { 'uri': %s } }", uri);
    /* Into the filled range: everything below it has been sent. */
    deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    while (migration_transferred(vm->qts) < 4 * 1024 * 1024) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20000);
    }
    g_assert_cmpstr(run_state(vm->qts), ==, "running");

    /* Reboot the guest into a fill of [4 MiB, 12 MiB): sent, as zeros. */
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'stop' }");
    guest_vm_request(vm, MB_REQ_ADDR, 4 * 1024 * 1024);
    guest_vm_request(vm, MB_REQ_COUNT, 8 * 1024 * 1024);
    qtest_writel(vm->qts, GUEST_MAILBOX_GPA + MB_DONE, 0);
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'system_reset' }");
    guest_vm_resume(vm);
    wait_guest_done(vm);

    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'migrate-set-parameters',"
                             " 'arguments': { 'max-bandwidth': %d } }",
                             1024 * 1024 * 1024);
    wait_migration(vm->qts);
    save_ram(vm->qts, src_ram);
    wait_migration(dst->qts);
    save_ram(dst->qts, dst_ram);
    g_assert_cmphex(qtest_readq(dst->qts, 12 * 1024 * 1024 - 8), ==,
                    GUEST_FILL_PATTERN);
    g_assert_cmphex(qtest_readq(dst->qts, FILL_BASE + 32 * 1024 * 1024 - 8),
                    ==, GUEST_FILL_PATTERN);
    guest_vm_free(dst);
    guest_vm_free(vm);
    assert_same_ram(src_ram, dst_ram);
    unlink(src_ram);
    unlink(dst_ram);
    rmdir(dir);
}

/* Start-up errors of guest-memfd=on name what was wrong. */
typedef struct GmemRamError {
    const char *name, *size, *opts, *accel, *expect;
} GmemRamError;

static const GmemRamError gmem_ram_errors[] = {
    { "share-off", "64M", ",share=off", "kvm",
      "guest-memfd=on needs share=on" },
    { "seal", "64M", ",seal=on", "kvm", "cannot be combined with seal=on" },
    { "hugetlb", "64M", ",hugetlb=on", "kvm",
      "cannot be combined with hugetlb=on" },
    { "tcg", "64M", "", "tcg",
      "guest-memfd=on needs the KVM accelerator (guest_memfd is a KVM "
      "object), not tcg" },
    /* Not the kernel's bare EINVAL. */
    { "size", "67108865", "", "kvm",
      "guest-memfd=on needs a size that is a multiple of the host page "
      "size (0x1000 bytes); 0x4000001 is not" },
};

static void test_gmem_ram_error(const void *data)
{
    const GmemRamError *c = data;
    g_autofree char *args = g_strdup_printf(
        "-object memory-backend-memfd,id=ram0,size=%s,guest-memfd=on%s "
        "-machine memory-backend=ram0", c->size, c->opts);
    g_autofree char *err = NULL;
    const char *reason;

    if (!guest_accel_usable(c->accel, &reason)) {
        g_test_skip(reason);
        return;
    }
    if (strstr(c->opts, "hugetlb") &&
        !g_file_test("/sys/kernel/mm/hugepages", G_FILE_TEST_IS_DIR)) {
        g_test_skip("no hugetlb pages on this host");
        return;
    }
    err = startup_error(c->accel, args, NULL);
    g_test_message("%s -> %s", c->opts, err);
    g_assert_nonnull(strstr(err, "memory backend 'ram0': "));
    g_assert_nonnull(strstr(err, c->expect));
}

/*
 * A kernel without a mappable, shared guest_memfd for an ordinary VM:
 * QEMU does not start, and says what is missing and which Linux has it.
 * Where this kernel has it, the kernel-contract layer hides
 * KVM_CAP_GUEST_MEMFD_FLAGS; where it does not (Linux 6.1 and 6.12 have
 * no guest_memfd for an ordinary VM), the real kernel answers.
 */
static void test_gmem_ram_old_kernel(void)
{
    g_autofree char *env = NULL;
    g_autofree char *err = NULL;
    g_autofree char *expect = NULL;
    const char *reason;
    int gmem, flags;

    if (!guest_accel_usable("kvm", &reason)) {
        g_test_skip(reason);
        return;
    }
    gmem = kvm_cap(true, KVM_CAP_GUEST_MEMFD);
    flags = kvm_cap(true, KVM_CAP_GUEST_MEMFD_FLAGS);
    if (gmem > 0 && flags > 0 && (flags & 3) == 3) {
        env = g_strdup_printf("LD_PRELOAD=%s QKM_KVM_HIDE_CAP=%d",
                              KVM_CONTRACT_LIB, KVM_CAP_GUEST_MEMFD_FLAGS);
        flags = 0;
    }
    if (gmem <= 0) {
        expect = g_strdup("memory backend 'ram0': KVM cannot give an "
                          "ordinary VM a guest_memfd (KVM_CAP_GUEST_MEMFD is "
                          "0 for it; Linux 6.18 or later needed)");
    } else {
        expect = g_strdup_printf("memory backend 'ram0': KVM cannot create a "
                                 "mappable, shared guest_memfd "
                                 "(KVM_CAP_GUEST_MEMFD_FLAGS is 0x%x, lacks "
                                 "MMAP|INIT_SHARED; Linux 6.18 or later "
                                 "needed)", flags < 0 ? 0 : flags);
    }
    g_test_message("KVM_CAP_GUEST_MEMFD %d, KVM_CAP_GUEST_MEMFD_FLAGS %d%s",
                   gmem, flags, env ? " (hidden by the layer)" : "");
    err = startup_error("kvm",
                        "-object " GMEM_RAM " -machine memory-backend=ram0",
                        env);
    g_assert_nonnull(strstr(err, expect));
}

/* --- sw-protected-vm --- */

#define SWP_ARGS "-machine confidential-guest-support=p0 " \
                 "-object sw-protected-vm,id=p0 -trace kvm_set_memory_attributes"

static const char *model_env(void)
{
    return real_sw_protected_vm() ? NULL : "sw-protected-vm";
}

static GuestVM *start_swp_vm_args(const char *inject, uint64_t gpa,
                                  const char *extra)
{
    g_autofree char *args = g_strdup_printf("%s %s", SWP_ARGS,
                                            extra ? extra : "");
    g_autofree char *gpa_str = g_strdup_printf("0x%" PRIx64, gpa);
    const char *const env[] = {
        "LD_PRELOAD", model_env() || inject ? KVM_CONTRACT_LIB : NULL,
        "QKM_KVM_MODEL", model_env(),
        "QKM_KVM_CONTRACT", inject,
        "QKM_CONTRACT_GPA", inject ? gpa_str : NULL,
        NULL,
    };
    GuestVMConfig cfg = {
        .accel = "kvm", .extra_args = args, .capture_stderr = true,
        .env = env,
    };

    if (model_env()) {
        g_test_message("no KVM_X86_SW_PROTECTED_VM in this kernel: running "
                       "against the kernel-contract layer's model of it");
    } else {
        g_test_message("running on the real KVM_X86_SW_PROTECTED_VM");
    }
    if (inject) {
        g_test_message("injecting %s at 0x%" PRIx64 " (kernel-contract "
                       "layer)", inject, gpa);
    }
    return guest_vm_start_config(&cfg);
}

static GuestVM *start_swp_vm(const char *inject, uint64_t gpa)
{
    return start_swp_vm_args(inject, gpa, NULL);
}

static uint32_t step_result(GuestVM *vm, int i)
{
    return qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_SCRIPT +
                       i * STEP_SIZE + STEP_RESULT);
}

static void start_script(GuestVM *vm)
{
    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_LONG64);
    guest_vm_request(vm, MB_REQ_OP, GUEST_OP_SCRIPT);
    guest_vm_resume(vm);
}

static bool swp_usable(void)
{
    const char *reason;

    if (!guest_accel_usable("kvm", &reason)) {
        g_test_skip(reason);
        return false;
    }
    return true;
}

/*
 * Some cases read trace events from QEMU's stderr (-trace
 * kvm_set_memory_attributes): only the "log" trace backend prints them
 * there.  Skip those cases, with the reason, in a QEMU built without it.
 */
static bool trace_log_usable(void)
{
    static int usable = -1;

    if (usable < 0) {
        g_autofree char *cmd = g_strdup_printf(
            "sh -c 'echo quit | %s -machine none -nodefaults -display none "
            "-monitor stdio -trace qemu_system_shutdown_request'",
            qtest_qemu_binary(NULL));
        g_autofree char *out = NULL, *err = NULL;
        int status;

        usable = g_spawn_command_line_sync(cmd, &out, &err, &status, NULL) &&
                 strstr(err, "qemu_system_shutdown_request") != NULL;
    }
    if (!usable) {
        g_test_skip("this QEMU does not print trace events on stderr (the "
                    "\"log\" trace backend is not built in)");
    }
    return usable;
}

static char *attr_line(uint64_t gpa, uint32_t attrs)
{
    return g_strdup_printf("kvm_set_memory_attributes start 0x%" PRIx64
                           " size 0x1000 attributes 0x%x ret 0", gpa, attrs);
}

/*
 * The guest converts pages and writes patterns; private contents stay out
 * of QEMU's shared view, and each conversion discards the other copy.
 */
static void test_swp_conversions(void)
{
    g_autofree char *err = NULL;
    g_autofree char *a_shared = attr_line(PAGE_A, 0);
    g_autofree char *c_shared = attr_line(PAGE_C, 0);
    g_autofree char *c_private = attr_line(PAGE_C,
                                           KVM_MEMORY_ATTRIBUTE_PRIVATE);
    g_autofree char *mb_shared = attr_line(GUEST_MAILBOX_GPA, 0);
    g_autofree char *b_any = g_strdup_printf("start 0x%x size 0x1000", PAGE_B);
    GuestVM *vm;
    int n = 0;

    if (!swp_usable() || !trace_log_usable()) {
        return;
    }
    vm = start_swp_vm(NULL, 0);
    qtest_writel(vm->qts, PAGE_A, HOST_A);
    qtest_writel(vm->qts, PAGE_B, HOST_B);
    qtest_writel(vm->qts, PAGE_C, HOST_C);
    guest_vm_script_step(vm, n++, STEP_MAP_SHARED, PAGE_A, 1);       /* 0 */
    guest_vm_script_step(vm, n++, STEP_READ32, PAGE_A, 0);       /* 1: HOST_A */
    guest_vm_script_step(vm, n++, STEP_WRITE32, PAGE_A, GUEST_A);
    guest_vm_script_step(vm, n++, STEP_READ32, PAGE_B, 0);           /* 3: 0 */
    guest_vm_script_step(vm, n++, STEP_WRITE32, PAGE_B, GUEST_B);
    guest_vm_script_step(vm, n++, STEP_READ32, PAGE_B, 0);      /* 5: GUEST_B */
    guest_vm_script_step(vm, n++, STEP_WRITE32, PAGE_C, GUEST_C);  /* private */
    guest_vm_script_step(vm, n++, STEP_MAP_SHARED, PAGE_C, 1);       /* 7 */
    guest_vm_script_step(vm, n++, STEP_READ32, PAGE_C, 0);       /* 8: HOST_C */
    guest_vm_script_step(vm, n++, STEP_MAP_PRIVATE, PAGE_C, 1);      /* 9 */
    guest_vm_script_step(vm, n++, STEP_READ32, PAGE_C, 0);           /* 10: 0 */
    guest_vm_script_step(vm, n++, STEP_END, 0, 0);
    start_script(vm);
    wait_guest_done(vm);
    g_assert_cmpuint(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_STEPS_DONE),
                     ==, n - 1);

    g_assert_cmphex(step_result(vm, 0), ==, 0);
    g_assert_cmphex(step_result(vm, 1), ==, HOST_A);
    g_assert_cmphex(step_result(vm, 3), ==, 0);         /* not HOST_B */
    g_assert_cmphex(step_result(vm, 5), ==, GUEST_B);
    g_assert_cmphex(step_result(vm, 7), ==, 0);
    g_assert_cmphex(step_result(vm, 8), ==, HOST_C);    /* not GUEST_C */
    g_assert_cmphex(step_result(vm, 9), ==, 0);
    g_assert_cmphex(step_result(vm, 10), ==, 0);        /* GUEST_C is gone */

    /* QEMU's view: shared data only, never the private copy. */
    g_assert_cmphex(qtest_readl(vm->qts, PAGE_A), ==, GUEST_A);
    g_assert_cmphex(qtest_readl(vm->qts, PAGE_B), ==, HOST_B);
    g_assert_cmphex(qtest_readl(vm->qts, PAGE_C), ==, 0);

    /* Exactly the conversions the guest asked for, once each. */
    err = guest_vm_stderr(vm);
    g_assert_cmpuint(guest_count_lines(err, mb_shared), ==, 1);
    g_assert_cmpuint(guest_count_lines(err, a_shared), ==, 1);
    g_assert_cmpuint(guest_count_lines(err, c_shared), ==, 1);
    g_assert_cmpuint(guest_count_lines(err, c_private), ==, 1);
    g_assert_null(strstr(err, b_any));
    guest_vm_free(vm);
}

/* A page of the legacy area that the test guest does not use. */
#define LEGACY_PAGE     0x80000

/* Firmware is shared, RAM private, from the start and after a reset. */
static void test_swp_initial_layout(void)
{
    g_autofree char *err = NULL;
    g_autofree char *bios_shared = g_strdup_printf(
        "kvm_set_memory_attributes start 0x%x size 0x%x attributes 0x0 ret 0",
        GUEST_IMAGE_BASE, GUEST_IMAGE_SIZE);
    GuestVM *vm;

    if (!swp_usable() || !trace_log_usable()) {
        return;
    }
    vm = start_swp_vm(NULL, 0);
    qtest_writel(vm->qts, PAGE_A, HOST_A);
    /* The guest reads its private page, not what QEMU wrote. */
    g_assert_cmphex(guest_read_byte(vm, PAGE_A), ==, 0);
    err = guest_vm_stderr(vm);
    g_assert_cmpuint(guest_count_lines(err, bios_shared), >=, 1);
    g_assert_true(str_has_line(err, "kvm_set_memory_attributes start 0x0 "
                               "size 0x4000000 attributes 0x8 ret 0"));
    guest_vm_free(vm);

    /* The legacy area (first MiB) is shared: the guest reads QEMU's. */
    vm = start_swp_vm(NULL, 0);
    qtest_writel(vm->qts, LEGACY_PAGE, HOST_B);
    g_assert_cmphex(guest_read_byte(vm, LEGACY_PAGE), ==, HOST_B & 0xff);
    guest_vm_free(vm);
}

/*
 * A kernel that offers the VM type but lacks a capability it needs (the
 * contract layer's model, with the capability hidden): a line that names
 * it, and with "-accel kvm -accel tcg" the next accelerator is tried.
 */
typedef struct SwpMissingCap {
    const char *name;
    int cap;
    const char *expect;
} SwpMissingCap;

static const SwpMissingCap swp_missing_caps[] = {
    { "memory-attributes", KVM_CAP_MEMORY_ATTRIBUTES,
      "sw-protected-vm: KVM has no private memory attribute "
      "(KVM_CAP_MEMORY_ATTRIBUTES is 0x0)" },
    { "guest-memfd", KVM_CAP_GUEST_MEMFD,
      "sw-protected-vm: KVM does not support guest_memfd "
      "(KVM_CAP_GUEST_MEMFD is 0)" },
    { "exit-hypercall", KVM_CAP_EXIT_HYPERCALL,
      "sw-protected-vm: KVM cannot pass the guest's KVM_HC_MAP_GPA_RANGE "
      "hypercall to QEMU (KVM_CAP_EXIT_HYPERCALL)" },
};

static void test_swp_missing_cap(const void *data)
{
    const SwpMissingCap *c = data;
    g_autofree char *env = g_strdup_printf(
        "LD_PRELOAD=%s QKM_KVM_MODEL=sw-protected-vm QKM_KVM_HIDE_CAP=%d",
        KVM_CONTRACT_LIB, c->cap);
    g_autofree char *reason_line = g_strdup_printf("-accel kvm: %s",
                                                   c->expect);
    const char *const lines[] = {
        reason_line,
        "failed to initialize kvm: Operation not supported",
        "falling back to tcg",
        "cannot set up private guest memory for sw-protected-vm: KVM required",
        NULL
    };
    g_autofree char *err = NULL;
    const char *reason;

    if (!guest_accel_usable("kvm", &reason) ||
        !guest_accel_usable("tcg", &reason)) {
        g_test_skip(reason);
        return;
    }
    err = startup_error("kvm -accel tcg", "-machine confidential-guest-"
                        "support=p0 -object sw-protected-vm,id=p0", env);
    g_test_message("capability %d hidden: %s", c->cap, err);
    assert_lines_in_order(err, lines);
}

/*
 * No KVM at all (its device node missing): "-accel kvm -accel tcg" falls
 * back to TCG, which says why it cannot run what was asked.
 */
#define NO_KVM "kvm,device=/nonexistent/kvm -accel tcg"

static void test_fallback(const char *args, const char *tcg_error)
{
    const char *const lines[] = {
        "Could not access KVM kernel module: No such file or directory",
        "failed to initialize kvm: No such file or directory",
        "falling back to tcg",
        tcg_error,
        NULL
    };
    g_autofree char *err = NULL;
    const char *reason;

    if (!guest_accel_usable("tcg", &reason)) {
        g_test_skip(reason);
        return;
    }
    err = startup_error(NO_KVM, args, NULL);
    assert_lines_in_order(err, lines);
}

static void test_fallback_swp(void)
{
    test_fallback("-machine confidential-guest-support=p0 "
                  "-object sw-protected-vm,id=p0",
                  "cannot set up private guest memory for sw-protected-vm: "
                  "KVM required");
}

static void test_fallback_gmem_ram(void)
{
    test_fallback("-object " GMEM_RAM " -machine memory-backend=ram0",
                  "memory backend 'ram0': guest-memfd=on needs the KVM "
                  "accelerator (guest_memfd is a KVM object), not tcg");
}

/*
 * Legacy firmware on a software-protected VM: it knows nothing of private
 * memory.  It must find itself at F000:xxxx (the ISA BIOS alias below
 * 1 MiB), shadow itself into 0xc0000-0xfffff through PAM, and share its
 * low-memory buffers with QEMU's devices: the first MiB stays shared.
 */
static const char *const firmware_machines[] = { "pc", "q35" };

#define FAR_JUMP_BYTE   0x600       /* written by the flat image */

/*
 * A flat 64 KiB -bios image that starts as legacy firmware does: its
 * reset vector far-jumps to F000:0000, where it writes 0x5a to 0x600 and
 * prints 'F' on the test guest's debug console.
 */
static char *write_far_jump_bios(void)
{
    static const uint8_t entry[] = {
        0xc6, 0x06, 0x00, 0x06, 0x5a,   /* movb $0x5a, 0x600 */
        0xba, GUEST_DEBUGCON_PORT, 0x00, /* mov $port, %dx */
        0xb0, 'F',                      /* mov $'F', %al */
        0xee,                           /* out %al, (%dx) */
        0xf4,                           /* 1: hlt */
        0xeb, 0xfd,                     /* jmp 1b */
    };
    static const uint8_t reset[] = {
        0xea, 0x00, 0x00, 0x00, 0xf0,   /* ljmp $0xf000, $0x0000 */
    };
    g_autofree uint8_t *image = g_malloc0(64 * 1024);
    g_autoptr(GError) err = NULL;
    char *path;
    int fd;

    memcpy(image, entry, sizeof(entry));
    memcpy(image + 0xfff0, reset, sizeof(reset));
    fd = g_file_open_tmp("qtest-farjump-XXXXXX.bin", &path, &err);
    g_assert_no_error(err);
    g_assert_cmpint(write(fd, image, 64 * 1024), ==, 64 * 1024);
    close(fd);
    return path;
}

static bool wait_debugcon(GuestVM *vm, const char *path, const char *text,
                          unsigned timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000LL;

    do {
        g_autofree char *out = NULL;

        if (g_file_get_contents(path, &out, NULL, NULL) &&
            strstr(out, text)) {
            return true;
        }
        g_usleep(20 * 1000);
    } while (g_get_monotonic_time() < deadline);
    return false;
}

static void assert_no_emulation_failure(GuestVM *vm)
{
    g_autofree char *err = guest_vm_stderr(vm);

    g_assert_null(strstr(err, "emulation failure"));
    g_assert_null(strstr(err, "KVM internal error"));
}

static void test_swp_firmware_far_jump(void)
{
    g_autofree char *bios = NULL;

    if (!swp_usable()) {
        return;
    }
    bios = write_far_jump_bios();
    for (int i = 0; i < ARRAY_SIZE(firmware_machines); i++) {
        g_autofree char *args = g_strdup_printf("-machine %s -bios %s",
                                                firmware_machines[i], bios);
        GuestVM *vm = start_swp_vm_args(NULL, 0, args);

        g_test_message("machine %s", firmware_machines[i]);
        guest_vm_resume(vm);
        for (int pass = 0; pass < 2; pass++) {
            g_autofree char *want = g_strnfill(pass + 1, 'F');

            g_assert_true(wait_debugcon(vm, vm->debugcon_path, want, 10000));
            /* The byte it wrote below 1 MiB is in the shared copy. */
            g_assert_cmphex(qtest_readb(vm->qts, FAR_JUMP_BYTE), ==, 0x5a);
            /* And the same after a reset, which lays memory out again. */
            qtest_writeb(vm->qts, FAR_JUMP_BYTE, 0);
            qtest_qmp_assert_success(vm->qts,
                                     "{ 'execute': 'system_reset' }");
        }
        assert_no_emulation_failure(vm);
        guest_vm_free(vm);
    }
    unlink(bios);
}

/* The default firmware (SeaBIOS) runs to its boot menu's last word. */
static void test_swp_firmware_seabios(void)
{
    if (!swp_usable()) {
        return;
    }
    if (!qtest_has_machine("q35")) {
        g_test_skip("no q35 machine in this QEMU");
        return;
    }
    for (int i = 0; i < ARRAY_SIZE(firmware_machines); i++) {
        g_autofree char *log = NULL;
        g_autofree char *args = NULL;
        g_autofree char *out = NULL;
        g_autoptr(GError) err = NULL;
        GuestVM *vm;
        int fd;

        fd = g_file_open_tmp("qtest-seabios-XXXXXX.log", &log, &err);
        g_assert_no_error(err);
        close(fd);
        /* bios-256k.bin: the default firmware of both machines */
        args = g_strdup_printf("-machine %s -bios bios-256k.bin "
                               "-chardev file,id=seabios,path=%s "
                               "-device isa-debugcon,iobase=0x402,"
                               "chardev=seabios", firmware_machines[i], log);
        vm = start_swp_vm_args(NULL, 0, args);
        g_test_message("machine %s", firmware_machines[i]);
        guest_vm_resume(vm);
        if (!wait_debugcon(vm, log, "No bootable device.", 30000)) {
            g_file_get_contents(log, &out, NULL, NULL);
            g_test_message("SeaBIOS said: %s", out ? out : "");
            g_assert_not_reached();
        }
        assert_no_emulation_failure(vm);
        guest_vm_free(vm);
        unlink(log);
    }
}

/*
 * A private page whose guest_memfd page the kernel cannot get
 * (kvm_gmem_get_pfn() failing): KVM_EXIT_MEMORY_FAULT for a page that
 * is private already.  Not a conversion: reported once, VM stopped, no
 * conversion attempted, no loop.
 */
static void test_swp_private_fault(void)
{
    g_autofree char *err = NULL;
    g_autofree char *b_any = g_strdup_printf("start 0x%x size 0x1000", PAGE_B);
    QDict *ev, *data, *rsp;
    GuestVM *vm;

    if (!swp_usable()) {
        return;
    }
    vm = start_swp_vm("memory-fault-private", PAGE_B);
    guest_vm_script_step(vm, 0, STEP_READ32, PAGE_B, 0);
    guest_vm_script_step(vm, 1, STEP_END, 0, 0);
    start_script(vm);
    ev = qtest_qmp_eventwait_ref(vm->qts, "GUEST_MEMORY_FAULT");
    qtest_qmp_eventwait(vm->qts, "STOP");
    data = qdict_get_qdict(ev, "data");
    g_assert_true(qdict_get_bool(data, "private"));
    g_assert_cmphex(qdict_get_uint(data, "gpa"), ==, PAGE_B);
    g_assert_cmphex(qdict_get_uint(data, "size"), ==, 0x1000);
    g_assert_cmpstr(qdict_get_str(data, "path"), ==, "memory-fault-exit");
    g_assert_cmpstr(qdict_get_str(data, "backing"), ==, "guest-memfd");
    qobject_unref(ev);
    rsp = qtest_qmp(vm->qts, "{ 'execute': 'query-status' }");
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(rsp, "return"), "status"),
                    ==, "internal-error");
    qobject_unref(rsp);
    g_assert_cmpuint(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_STEPS_DONE),
                     ==, 0);
    err = guest_vm_stderr(vm);
    g_assert_true(str_has_line(err, "error: kvm run failed Bad address"));
    g_assert_nonnull(strstr(err, "private memory"));
    g_assert_null(strstr(err, b_any));
    guest_vm_free(vm);
}

/*
 * A vCPU's KVM_EXIT_MEMORY_FAULT can race another vCPU's conversion: it
 * asks for a page that is already as requested by the time QEMU looks.
 * The layer gives one private fault for a page that is private already
 * and then maps the page: QEMU enters the guest again, and the access
 * completes; no report, no conversion.  (The race is the layer's: on a
 * kernel with KVM_X86_SW_PROTECTED_VM the case does not arise here.)
 */
static void test_swp_stale_fault(void)
{
    g_autofree char *err = NULL;
    g_autofree char *b_any = g_strdup_printf("start 0x%x size 0x1000", PAGE_B);
    GuestVM *vm;

    if (!swp_usable()) {
        return;
    }
    if (!model_env()) {
        g_test_skip("the race is produced by the kernel-contract layer's "
                    "model, which is off on a kernel with "
                    "KVM_X86_SW_PROTECTED_VM");
        return;
    }
    vm = start_swp_vm("memory-fault-private-once", PAGE_B);
    guest_vm_script_step(vm, 0, STEP_READ32, PAGE_B, 0);
    guest_vm_script_step(vm, 1, STEP_READ32, PAGE_B, 0);
    guest_vm_script_step(vm, 2, STEP_END, 0, 0);
    start_script(vm);
    wait_guest_done(vm);
    g_assert_cmpuint(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_STEPS_DONE),
                     ==, 2);
    /* The guest_memfd page: private, never written, zero. */
    g_assert_cmphex(step_result(vm, 0), ==, 0);
    g_assert_cmphex(step_result(vm, 1), ==, 0);
    g_assert_null(qtest_qmp_event_ref(vm->qts, "GUEST_MEMORY_FAULT"));
    err = guest_vm_stderr(vm);
    g_assert_null(strstr(err, "Bad address"));
    g_assert_null(strstr(err, b_any));
    guest_vm_free(vm);
}

/*
 * Implicit conversion: the kernel reports a shared access to a private
 * page with KVM_EXIT_MEMORY_FAULT (flags 0), as TDX and SNP kernels do;
 * QEMU converts the page and the guest's access completes.
 */
static void test_swp_implicit_conversion(void)
{
    g_autofree char *err = NULL;
    g_autofree char *b_shared = attr_line(PAGE_B, 0);
    GuestVM *vm;

    if (!swp_usable() || !trace_log_usable()) {
        return;
    }
    vm = start_swp_vm("memory-fault", PAGE_B);
    qtest_writel(vm->qts, PAGE_B, HOST_B);
    guest_vm_script_step(vm, 0, STEP_READ32, PAGE_B, 0);
    guest_vm_script_step(vm, 1, STEP_END, 0, 0);
    start_script(vm);
    wait_guest_done(vm);
    g_assert_cmphex(step_result(vm, 0), ==, HOST_B);
    err = guest_vm_stderr(vm);
    g_assert_cmpuint(guest_count_lines(err, b_shared), ==, 1);
    g_assert_null(strstr(err, "Bad address"));
    guest_vm_free(vm);
}

/*
 * A healthy guest: a shared access to a private page is converted (an
 * implicit conversion), the guest makes the page private again with
 * MapGPA, and touches it as shared again.  The second memory-fault exit
 * is the same gpa, size and flags as the first, but a conversion came in
 * between: it is converted again, not stopped as a conversion loop.
 */
static void test_swp_convert_back_and_fault_again(void)
{
    g_autofree char *err = NULL;
    g_autofree char *b_shared = attr_line(PAGE_B, 0);
    g_autofree char *b_private = attr_line(PAGE_B,
                                           KVM_MEMORY_ATTRIBUTE_PRIVATE);
    GuestVM *vm;

    if (!swp_usable() || !trace_log_usable()) {
        return;
    }
    vm = start_swp_vm("memory-fault", PAGE_B);
    qtest_writel(vm->qts, PAGE_B, HOST_B);
    guest_vm_script_step(vm, 0, STEP_READ32, PAGE_B, 0);     /* fault, shared */
    guest_vm_script_step(vm, 1, STEP_MAP_PRIVATE, PAGE_B, 1);
    guest_vm_script_step(vm, 2, STEP_READ32, PAGE_B, 0);    /* the same fault */
    guest_vm_script_step(vm, 3, STEP_END, 0, 0);
    start_script(vm);
    wait_guest_done(vm);
    g_assert_cmpuint(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_STEPS_DONE),
                     ==, 3);
    g_assert_cmphex(step_result(vm, 0), ==, HOST_B);
    g_assert_cmphex(step_result(vm, 1), ==, 0);
    /* Made private in between: the shared copy was discarded. */
    g_assert_cmphex(step_result(vm, 2), ==, 0);
    g_assert_null(qtest_qmp_event_ref(vm->qts, "GUEST_MEMORY_FAULT"));
    err = guest_vm_stderr(vm);
    g_assert_cmpuint(guest_count_lines(err, b_shared), ==, 2);
    g_assert_cmpuint(guest_count_lines(err, b_private), ==, 1);
    g_assert_null(strstr(err, "Bad address"));
    guest_vm_free(vm);
}

/*
 * A KVM without the VM type: QEMU says what is missing, and with
 * "-accel kvm -accel tcg" the next accelerator is tried (and refuses the
 * confidential guest, which only KVM runs).
 */
static void test_swp_refused(void)
{
    static const char *const lines[] = {
        "vm-type SW-protected not supported by KVM",
        "KVM_CAP_VM_TYPES lacks KVM_X86_SW_PROTECTED_VM: it needs Linux 6.8 "
        "or later built with CONFIG_KVM_SW_PROTECTED_VM, and the TDP MMU",
        "failed to initialize kvm: Invalid argument",
        "falling back to tcg",
        "cannot set up private guest memory for sw-protected-vm: KVM required",
        NULL
    };
    g_autofree char *err = NULL;
    const char *reason;

    if (!guest_accel_usable("kvm", &reason) ||
        !guest_accel_usable("tcg", &reason)) {
        g_test_skip(reason);
        return;
    }
    if (real_sw_protected_vm()) {
        g_test_skip("this kernel has KVM_X86_SW_PROTECTED_VM");
        return;
    }
    err = startup_error("kvm -accel tcg", "-machine confidential-guest-"
                        "support=p0 -object sw-protected-vm,id=p0", NULL);
    assert_lines_in_order(err, lines);
}

/* guest-memfd=on is refused by a VM whose private memory needs its own. */
static void test_swp_refuses_gmem_ram(void)
{
    g_autofree char *env = g_strdup_printf(
        "LD_PRELOAD=%s QKM_KVM_MODEL=sw-protected-vm", KVM_CONTRACT_LIB);
    g_autofree char *err = NULL;

    if (!swp_usable()) {
        return;
    }
#ifdef KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES
    int in_place = kvm_cap(true, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);

    if (real_sw_protected_vm() && in_place > 0 &&
        (in_place & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
        g_test_skip("KVM converts guest_memfd in place: guest-memfd=on RAM "
                    "is allowed for sw-protected-vm");
        return;
    }
#endif
    err = startup_error("kvm", "-machine confidential-guest-support=p0 "
                        "-object sw-protected-vm,id=p0 -object " GMEM_RAM
                        " -machine memory-backend=ram0",
                        real_sw_protected_vm() ? NULL : env);
    g_assert_nonnull(strstr(err, "guest-memfd=on is refused by confidential "
                            "guest 'sw-protected-vm'"));
    /* ... and says what would allow it. */
    g_assert_nonnull(strstr(err, "KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/x86/private-memory/guest-memfd-ram/access",
                   test_gmem_ram_access);
    qtest_add_data_func("/x86/private-memory/guest-memfd-ram/machine/pc-smm",
                        "pc,smm=on", test_gmem_ram_machine);
    qtest_add_data_func("/x86/private-memory/guest-memfd-ram/machine/pc-no-smm",
                        "pc,smm=off", test_gmem_ram_machine);
    qtest_add_data_func("/x86/private-memory/guest-memfd-ram/machine/q35-smm",
                        "q35,smm=on", test_gmem_ram_machine);
    qtest_add_data_func("/x86/private-memory/guest-memfd-ram/machine/"
                        "q35-no-smm", "q35,smm=off", test_gmem_ram_machine);
    qtest_add_func("/x86/private-memory/guest-memfd-ram/discard",
                   test_gmem_ram_discard);
    qtest_add_func("/x86/private-memory/guest-memfd-ram/query-memdev",
                   test_gmem_ram_query_memdev);
    qtest_add_func("/x86/private-memory/guest-memfd-ram/migrate-file",
                   test_gmem_ram_migrate_file);
    qtest_add_func("/x86/private-memory/guest-memfd-ram/migrate-socket",
                   test_gmem_ram_migrate_socket);
    qtest_add_func("/x86/private-memory/guest-memfd-ram/cpr-reboot",
                   test_gmem_ram_cpr_reboot);
    qtest_add_func("/x86/private-memory/guest-memfd-ram/cpr-transfer",
                   test_gmem_ram_cpr_transfer);
    qtest_add_func("/x86/private-memory/guest-memfd-ram/migrate-live",
                   test_gmem_ram_migrate_live);
    for (int i = 0; i < ARRAY_SIZE(gmem_ram_errors); i++) {
        g_autofree char *path = g_strdup_printf(
            "/x86/private-memory/guest-memfd-ram/errors/%s",
            gmem_ram_errors[i].name);

        qtest_add_data_func(path, &gmem_ram_errors[i], test_gmem_ram_error);
    }
    qtest_add_func("/x86/private-memory/guest-memfd-ram/contract/old-kernel",
                   test_gmem_ram_old_kernel);
    qtest_add_func("/x86/private-memory/sw-protected-vm/contract/"
                   "convert-back-and-fault-again",
                   test_swp_convert_back_and_fault_again);
    qtest_add_func("/x86/private-memory/sw-protected-vm/refused",
                   test_swp_refused);
    qtest_add_func("/x86/private-memory/sw-protected-vm/initial-layout",
                   test_swp_initial_layout);
    for (int i = 0; i < ARRAY_SIZE(swp_missing_caps); i++) {
        g_autofree char *path = g_strdup_printf(
            "/x86/private-memory/sw-protected-vm/contract/missing-cap/%s",
            swp_missing_caps[i].name);

        qtest_add_data_func(path, &swp_missing_caps[i], test_swp_missing_cap);
    }
    qtest_add_func("/x86/private-memory/fallback/sw-protected-vm",
                   test_fallback_swp);
    qtest_add_func("/x86/private-memory/fallback/guest-memfd-ram",
                   test_fallback_gmem_ram);
    qtest_add_func("/x86/private-memory/sw-protected-vm/firmware/far-jump",
                   test_swp_firmware_far_jump);
    qtest_add_func("/x86/private-memory/sw-protected-vm/firmware/seabios",
                   test_swp_firmware_seabios);
    qtest_add_func("/x86/private-memory/sw-protected-vm/conversions",
                   test_swp_conversions);
    qtest_add_func("/x86/private-memory/sw-protected-vm/refuses-gmem-ram",
                   test_swp_refuses_gmem_ram);
    qtest_add_func("/x86/private-memory/sw-protected-vm/contract/"
                   "private-fault", test_swp_private_fault);
    qtest_add_func("/x86/private-memory/sw-protected-vm/contract/"
                   "implicit-conversion", test_swp_implicit_conversion);
    qtest_add_func("/x86/private-memory/sw-protected-vm/contract/"
                   "stale-fault", test_swp_stale_fault);
    return g_test_run();
}
