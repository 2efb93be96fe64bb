/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * lost-page-action=guest-error: a guest access to a page of guest RAM
 * that lost its host backing raises an action-required machine check in
 * the guest, as hardware does for consumed poison, and the VM keeps
 * running.  The freestanding test guest installs a #MC handler that
 * records MCG_STATUS and the valid bank's MCi_STATUS, MCi_ADDR and
 * MCi_MISC, and resumes after the access (guest-abi.h, MB_REQ_MCE):
 *
 * - the exact fields, for a read, a write and a copy to RAM (rep movsq),
 *   on one and on two vCPUs, for the AMD layout (-cpu max) and, under
 *   TCG, the Intel one;
 * - every access raises it again, and one GUEST_MEMORY_FAULT (action
 *   machine-check) stands for them all; the VM stays running;
 * - nothing fabricated: the copy's destination keeps what it held; the
 *   page stays lost for qtest reads, pmemsave and migration, which
 *   refuses, and the VM goes on running;
 * - a reset by management keeps the page lost while the backing is
 *   short: the guest meets it again, reported again;
 * - a guest that did not enable machine checks, or has none, gets a
 *   processor shutdown (handled as -action reboot says), reported with
 *   action shutdown; when it meets the page again after the reset, the
 *   VM stops instead of resetting forever;
 * - the policy can be set with qom-set while the VM runs;
 * - the backing-file watch reports the loss with action none and the VM
 *   keeps running.
 *
 * Under KVM the access reaches QEMU as a bare EFAULT, which does not
 * say which page; QEMU makes the lost pages poison where the kernel can
 * (Linux 6.6+), and the access comes back as KVM's SIGBUS for the page
 * (event path vcpu-run); elsewhere it covers them with regions KVM has
 * no memory slot for, and the access exits again as MMIO with its
 * address (path mmio-exit), as it does on KVM hosts that report lost RAM
 * so themselves.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "guest/guest-qtest.h"

#define RAM_SIZE        (64 * 1024 * 1024)
#define KEEP_SIZE       0x80000     /* mailbox, stack, page tables kept */
#define TARGET          0x200000    /* a page past KEEP_SIZE */
#define TOUCHES         3

/* Architectural bits (Intel SDM vol. 3B 16.3.2, AMD APM vol. 2 9.3). */
#define MCG_STATUS_RIPV     (1ull << 0)
#define MCG_STATUS_EIPV     (1ull << 1)
#define MCG_STATUS_MCIP     (1ull << 2)
#define MCI_STATUS_VAL      (1ull << 63)
#define MCI_STATUS_UC       (1ull << 61)
#define MCI_STATUS_EN       (1ull << 60)
#define MCI_STATUS_MISCV    (1ull << 59)
#define MCI_STATUS_ADDRV    (1ull << 58)
#define MCI_STATUS_S        (1ull << 56)
#define MCI_STATUS_AR       (1ull << 55)
#define MCI_STATUS_POISON   (1ull << 43)
/* An uncorrectable error consumed: Intel's data-load MCA code 0x134. */
#define STATUS_COMMON       (MCI_STATUS_VAL | MCI_STATUS_UC | MCI_STATUS_EN | \
                             MCI_STATUS_MISCV | MCI_STATUS_ADDRV)
#define STATUS_AMD          (STATUS_COMMON | MCI_STATUS_POISON)
#define STATUS_INTEL        (STATUS_COMMON | MCI_STATUS_S | MCI_STATUS_AR | \
                             0x134)
/* MCi_MISC: physical address mode (2), address valid from bit 12. */
#define MISC_PAGE           ((2ull << 6) | 12)

static char *work_dir;

typedef struct ErrorCase {
    const char *accel;
    int smp;
    bool write;
    bool intel;
    bool copy;
} ErrorCase;

/* What GUEST_COPY_DST holds before the copy. */
#define COPY_PATTERN(i) (0x5150415454455230ull + (i))

static char *ram_file(const char *name)
{
    char *path = g_build_filename(work_dir, name, NULL);

    unlink(path);
    return path;
}

static void assert_running(QTestState *qts)
{
    g_autofree char *status = NULL;

    g_assert_cmpstr(guest_run_status(qts, &status), ==, "running");
}

/*
 * A guest on file-backed RAM with lost-page-action @action (NULL: the
 * default), long mode, machine checks on when @touches, doing @op on
 * TARGET @touches times (once if 0).  Paused before it starts.
 */
static GuestVM *start_vm(const char *accel, const char *path,
                         const char *action, const char *extra,
                         uint32_t op, uint32_t touches, int smp)
{
    g_autofree char *memory = g_strdup_printf(
        "memory-backend-file,id=ram0,size=%d,mem-path=%s,share=on,"
        "backing-watch=off%s%s", RAM_SIZE, path,
        action ? ",lost-page-action=" : "", action ? action : "");
    g_autofree char *args = g_strdup_printf("-smp %d %s", smp,
                                            extra ? extra : "");
    GuestVMConfig cfg = {
        .accel = accel, .memory = memory, .extra_args = args,
        .capture_stderr = true,
    };
    GuestVM *vm = guest_vm_start_config(&cfg);

    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_LONG64);
    guest_vm_request(vm, MB_REQ_OP, op);
    guest_vm_request(vm, MB_REQ_ADDR, TARGET);
    guest_vm_request(vm, MB_REQ_MCE, touches);
    guest_vm_request(vm, MB_REQ_APS, smp - 1);
    return vm;
}

static uint64_t record64(GuestVM *vm, int apic_id, uint32_t field)
{
    return qtest_readq(vm->qts,
                       GUEST_MAILBOX_GPA + MCE_RECORD(apic_id) + field);
}

static uint32_t record32(GuestVM *vm, int apic_id, uint32_t field)
{
    return qtest_readl(vm->qts,
                       GUEST_MAILBOX_GPA + MCE_RECORD(apic_id) + field);
}

/* Wait until every vCPU has made its @touches accesses. */
static void wait_touches(GuestVM *vm, int smp, uint32_t touches)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (int i = 0; i < smp; i++) {
        while (record32(vm, i, MCE_TOUCHES) < touches) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(1000);
        }
    }
}

/*
 * The event of the first machine check: TARGET, on one of the vCPUs.
 * Sets *@emulated if KVM's emulator met the access (an MMIO exit).
 */
static QDict *wait_error_event(GuestVM *vm, int smp, bool *emulated)
{
    QDict *ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 60000);
    QDict *data;

    g_assert_nonnull(ev);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpstr(qdict_get_str(data, "action"), ==, "machine-check");
    g_assert_cmphex(qdict_get_int(data, "gpa"), ==, TARGET);
    g_assert_cmpstr(qdict_get_str(data, "block"), ==, "ram0");
    g_assert_cmpstr(qdict_get_str(data, "cause"), ==, "backing-truncated");
    g_assert_cmpint(qdict_get_int(data, "cpu-index"), <, smp);
    if (emulated) {
        *emulated = !strcmp(qdict_get_str(data, "path"), "mmio-exit");
    }
    return ev;
}

/*
 * Each vCPU touches the lost page TOUCHES times: each touch is a machine
 * check with the exact fields, the instruction does not complete (a
 * copy stores nothing), the VM runs on, one event stands for all.
 */
static void test_machine_check(const void *opaque)
{
    const ErrorCase *c = opaque;
    g_autofree char *path = ram_file("ram-mce");
    g_autofree char *err = NULL;
    g_autofree char *extra = NULL;
    uint64_t status = c->intel ? STATUS_INTEL : STATUS_AMD;
    uint32_t op = c->copy ? GUEST_OP_COPY :
                  c->write ? GUEST_OP_WRITE : GUEST_OP_READ;
    bool emulated, after;
    GuestVM *vm;

    if (!guest_accel_ok(c->accel)) {
        return;
    }
    /* The vendor says the layout (KVM's -cpu max is the host's). */
    extra = g_strdup_printf("-cpu max,vendor=%s",
                            c->intel ? "GenuineIntel" : "AuthenticAMD");
    vm = start_vm(c->accel, path, "guest-error", extra, op, TOUCHES, c->smp);
    for (int i = 0; i < GUEST_COPY_QWORDS; i++) {
        qtest_writeq(vm->qts, GUEST_COPY_DST + i * 8, COPY_PATTERN(i));
    }
    g_assert_cmpint(truncate(path, KEEP_SIZE), ==, 0);
    guest_vm_resume(vm);
    qobject_unref(wait_error_event(vm, c->smp, &emulated));
    /*
     * KVM completes a write to what it takes for MMIO before it exits:
     * the machine check comes right after the store (which stored
     * nothing), EIPV clear.  Everything else is taken at the access.
     */
    after = c->write && emulated;
    wait_touches(vm, c->smp, TOUCHES);
    g_assert_true(guest_vm_wait_done(vm, 20000));

    for (int i = 0; i < c->smp; i++) {
        /* Every access raised it, none completed. */
        g_assert_cmpuint(record32(vm, i, MCE_COUNT), ==, TOUCHES);
        g_assert_cmpuint(record32(vm, i, MCE_BANK), ==, 9);
        g_assert_cmphex(record64(vm, i, MCE_MCG_STATUS), ==,
                        MCG_STATUS_RIPV | MCG_STATUS_MCIP |
                        (after ? 0 : MCG_STATUS_EIPV));
        g_assert_cmphex(record64(vm, i, MCE_STATUS), ==, status);
        g_assert_cmphex(record64(vm, i, MCE_ADDR), ==, TARGET);
        g_assert_cmphex(record64(vm, i, MCE_MISC), ==, MISC_PAGE);
        g_assert_cmphex(record64(vm, i, MCE_RIP), ==,
                        qtest_readl(vm->qts, GUEST_MAILBOX_GPA +
                                    (after ? MB_OP_PC_END : MB_OP_PC)));
    }
    assert_running(vm->qts);
    g_assert_cmpint(guest_count_events(vm->qts, "GUEST_MEMORY_FAULT"), ==, 0);
    g_assert_cmpint(guest_count_events(vm->qts, "STOP"), ==, 0);
    g_assert_cmpint(guest_count_events(vm->qts, "RESET"), ==, 0);
    /* The copy stored nothing, not even data QEMU served for the page. */
    for (int i = 0; i < GUEST_COPY_QWORDS; i++) {
        g_assert_cmphex(qtest_readq(vm->qts, GUEST_COPY_DST + i * 8), ==,
                        COPY_PATTERN(i));
    }
    /* QEMU's readers: still lost. */
    g_assert_cmphex(qtest_readl(vm->qts, TARGET), ==, UINT32_MAX);
    err = guest_vm_stderr(vm);
    g_assert_cmpuint(guest_count_lines(err, guest_fault_headline(c->accel)),
                     ==, 0);
    g_assert_nonnull(strstr(err, "; action: machine check raised in the "
                            "guest, the VM keeps running"));
    guest_vm_free(vm);
    unlink(path);
}

/*
 * After the machine check: pmemsave and migration refuse the lost page
 * and the VM goes on running; a reset by management keeps the page lost
 * (the backing is still short), and the guest meets it again: a new
 * incident, reported again.
 */
static void test_readers_and_reset(const void *opaque)
{
    const char *accel = opaque;
    g_autofree char *path = ram_file("ram-reset");
    g_autofree char *out = ram_file("reset.out");
    g_autofree char *uri = NULL;
    GuestVM *vm;
    QDict *ev, *rsp;

    if (!guest_accel_ok(accel)) {
        return;
    }
    vm = start_vm(accel, path, "guest-error", NULL, GUEST_OP_READ, 1, 1);
    g_assert_cmpint(truncate(path, KEEP_SIZE), ==, 0);
    guest_vm_resume(vm);
    qobject_unref(wait_error_event(vm, 1, NULL));
    g_assert_true(guest_vm_wait_done(vm, 20000));

    rsp = qtest_qmp(vm->qts, "{ 'execute': 'pmemsave', 'arguments': "
                    "{ 'val': %d, 'size': 4096, 'filename': %s } }",
                    TARGET, out);
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"),
                            "is not backed by host memory"));
    qobject_unref(rsp);

    uri = g_strdup_printf("file:%s", out);
    rsp = qtest_qmp(vm->qts, "{ 'execute': 'migrate', 'arguments': "
                    "{ 'uri': %s } }", uri);
    qobject_unref(rsp);
    for (;;) {
        const char *st;

        rsp = qtest_qmp(vm->qts, "{ 'execute': 'query-migrate' }");
        st = qdict_get_try_str(qdict_get_qdict(rsp, "return"), "status");
        if (st && !strcmp(st, "failed")) {
            g_assert_nonnull(strstr(qdict_get_str(
                qdict_get_qdict(rsp, "return"), "error-desc"),
                "has lost its host backing"));
            qobject_unref(rsp);
            break;
        }
        g_assert_true(!st || strcmp(st, "completed"));
        qobject_unref(rsp);
        g_usleep(10 * 1000);
    }
    assert_running(vm->qts);

    /* Reset by management: the guest runs again and meets the page. */
    qtest_writel(vm->qts, GUEST_MAILBOX_GPA + MB_DONE, 0);
    qtest_writel(vm->qts, GUEST_MAILBOX_GPA + MCE_RECORD(0) + MCE_COUNT, 0);
    qtest_writel(vm->qts, GUEST_MAILBOX_GPA + MCE_RECORD(0) + MCE_TOUCHES,
                 0);
    qobject_unref(qtest_qmp(vm->qts, "{ 'execute': 'system_reset' }"));
    ev = wait_error_event(vm, 1, NULL);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "action"), ==,
                    "machine-check");
    qobject_unref(ev);
    g_assert_true(guest_vm_wait_done(vm, 20000));
    g_assert_cmpuint(record32(vm, 0, MCE_COUNT), ==, 1);
    g_assert_cmphex(qtest_readl(vm->qts, TARGET), ==, UINT32_MAX);
    assert_running(vm->qts);
    guest_vm_free(vm);
    unlink(path);
    unlink(out);
}

typedef struct NoMceCase {
    const char *accel;
    const char *cpu;            /* extra -cpu, or NULL */
    const char *why;            /* in the report line */
} NoMceCase;

/*
 * A guest that cannot take a machine check: the processor shuts down,
 * here (-action reboot=shutdown,shutdown=pause) a SHUTDOWN that pauses.
 */
static void test_no_mce(const void *opaque)
{
    const NoMceCase *c = opaque;
    g_autofree char *path = ram_file("ram-nomce");
    g_autofree char *status = NULL;
    g_autofree char *err = NULL;
    g_autofree char *extra = g_strdup_printf(
        "-action reboot=shutdown,shutdown=pause%s%s",
        c->cpu ? " -cpu " : "", c->cpu ? c->cpu : "");
    g_autofree char *line = g_strdup_printf(
        "; action: processor shutdown (triple fault): %s", c->why);
    GuestVM *vm;
    QDict *ev, *data;

    if (!guest_accel_ok(c->accel)) {
        return;
    }
    vm = start_vm(c->accel, path, "guest-error", extra, GUEST_OP_READ, 0, 1);
    g_assert_cmpint(truncate(path, KEEP_SIZE), ==, 0);
    guest_vm_resume(vm);
    ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 60000);
    g_assert_nonnull(ev);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpstr(qdict_get_str(data, "action"), ==, "shutdown");
    g_assert_cmphex(qdict_get_int(data, "gpa"), ==, TARGET);
    qobject_unref(ev);
    ev = guest_qmp_wait_event(vm->qts, "SHUTDOWN", 20000);
    g_assert_nonnull(ev);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "reason"), ==,
                    "guest-reset");
    qobject_unref(ev);
    g_assert_cmpstr(guest_run_status(vm->qts, &status), ==, "shutdown");
    err = guest_vm_stderr(vm);
    g_assert_nonnull(strstr(err, line));
    guest_vm_free(vm);
    unlink(path);
}

/*
 * The same guest, with the default reboot action: the shutdown resets
 * it, it meets the page again before it could take a machine check, and
 * the VM stops rather than reset forever (a second event, action stop).
 */
static void test_no_mce_reset(const void *opaque)
{
    const char *accel = opaque;
    g_autofree char *path = ram_file("ram-nomce-reset");
    GuestVM *vm;
    QDict *ev;

    if (!guest_accel_ok(accel)) {
        return;
    }
    vm = start_vm(accel, path, "guest-error", NULL, GUEST_OP_READ, 0, 1);
    g_assert_cmpint(truncate(path, KEEP_SIZE), ==, 0);
    guest_vm_resume(vm);
    ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 60000);
    g_assert_nonnull(ev);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "action"), ==,
                    "shutdown");
    qobject_unref(ev);
    qobject_unref(guest_qmp_wait_event(vm->qts, "RESET", 20000));
    ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 60000);
    g_assert_nonnull(ev);
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(ev, "data"), "action"), ==,
                    "stop");
    qobject_unref(ev);
    qobject_unref(guest_qmp_wait_event(vm->qts, "STOP", 20000));
    guest_vm_assert_internal_error(vm->qts);
    g_assert_cmpint(guest_count_events(vm->qts, "RESET"), ==, 0);
    guest_vm_free(vm);
    unlink(path);
}

/* qom-set while paused: the default (stop) is replaced before the run. */
static void test_qom_set(const void *opaque)
{
    const char *accel = opaque;
    g_autofree char *path = ram_file("ram-qom");
    GuestVM *vm;
    QDict *rsp;

    if (!guest_accel_ok(accel)) {
        return;
    }
    vm = start_vm(accel, path, NULL, NULL, GUEST_OP_READ, 1, 1);
    rsp = qtest_qmp(vm->qts, "{ 'execute': 'qom-get', 'arguments': "
                    "{ 'path': '/objects/ram0', "
                    "'property': 'lost-page-action' } }");
    g_assert_cmpstr(qdict_get_str(rsp, "return"), ==, "stop");
    qobject_unref(rsp);
    rsp = qtest_qmp(vm->qts, "{ 'execute': 'qom-set', 'arguments': "
                    "{ 'path': '/objects/ram0', "
                    "'property': 'lost-page-action', "
                    "'value': 'guest-error' } }");
    g_assert_true(qdict_haskey(rsp, "return"));
    qobject_unref(rsp);
    rsp = qtest_qmp(vm->qts, "{ 'execute': 'qom-set', 'arguments': "
                    "{ 'path': '/objects/ram0', "
                    "'property': 'lost-page-action', 'value': 'zero' } }");
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"),
                            "zero"));
    qobject_unref(rsp);
    g_assert_cmpint(truncate(path, KEEP_SIZE), ==, 0);
    guest_vm_resume(vm);
    qobject_unref(wait_error_event(vm, 1, NULL));
    g_assert_true(guest_vm_wait_done(vm, 20000));
    g_assert_cmpuint(record32(vm, 0, MCE_COUNT), ==, 1);
    assert_running(vm->qts);
    guest_vm_free(vm);
    unlink(path);
}

/* The watch finds the loss first: action none, the VM keeps running. */
static void test_watch(const void *opaque)
{
    const char *accel = opaque;
    g_autofree char *path = ram_file("ram-watch");
    g_autofree char *memory = g_strdup_printf(
        "memory-backend-file,id=ram0,size=%d,mem-path=%s,share=on,"
        "lost-page-action=guest-error", RAM_SIZE, path);
    GuestVMConfig cfg = {
        .accel = accel, .memory = memory, .capture_stderr = true,
    };
    GuestVM *vm;
    QDict *ev, *data;

    if (!guest_accel_ok(accel)) {
        return;
    }
    vm = guest_vm_start_config(&cfg);
    guest_vm_request(vm, MB_REQ_MODE, GUEST_MODE_LONG64);
    guest_vm_resume(vm);
    g_assert_true(guest_vm_wait_done(vm, 20000));
    g_assert_cmpint(truncate(path, KEEP_SIZE), ==, 0);
    ev = guest_qmp_wait_event(vm->qts, "GUEST_MEMORY_FAULT", 20000);
    g_assert_nonnull(ev);
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpstr(qdict_get_str(data, "action"), ==, "none");
    g_assert_cmpstr(qdict_get_str(data, "path"), ==, "backing-watch");
    qobject_unref(ev);
    g_usleep(100 * 1000);
    assert_running(vm->qts);
    g_assert_cmpint(guest_count_events(vm->qts, "STOP"), ==, 0);
    g_assert_cmphex(qtest_readl(vm->qts, TARGET), ==, UINT32_MAX);
    guest_vm_free(vm);
    unlink(path);
}

int main(int argc, char **argv)
{
    static const char *const accels[] = { "tcg", "kvm" };
    static const struct {
        const char *name;
        ErrorCase c;
    } mce[] = {
        { "read", { NULL, 1, false, false, false } },
        { "write", { NULL, 1, true, false, false } },
        { "copy", { NULL, 1, false, false, true } },
        { "read-smp2", { NULL, 2, false, false, false } },
        { "write-smp2", { NULL, 2, true, false, false } },
        { "copy-smp2", { NULL, 2, false, false, true } },
    };
    static const struct {
        const char *name;
        GTestDataFunc fn;
    } simple[] = {
        { "readers-and-reset", test_readers_and_reset },
        { "no-mce-reset", test_no_mce_reset },
        { "qom-set", test_qom_set },
        { "watch", test_watch },
    };
    static const struct {
        const char *name;
        NoMceCase c;
    } no_mce[] = {
        { "no-mce", { NULL, NULL,
                      "the guest has not enabled machine checks (CR4.MCE)" } },
        { "no-mca", { NULL, "max,mca=off",
                      "the vCPU has no machine-check bank 9" } },
    };
    g_autoptr(GError) err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    work_dir = g_dir_make_tmp("memory-error-test-XXXXXX", &err);
    g_assert_no_error(err);

    for (int a = 0; a < ARRAY_SIZE(accels); a++) {
        for (int i = 0; i < ARRAY_SIZE(mce); i++) {
            ErrorCase *c = g_new0(ErrorCase, 1);
            g_autofree char *p = g_strdup_printf(
                "/x86/memory-error/%s/machine-check/%s", accels[a],
                mce[i].name);

            *c = mce[i].c;
            c->accel = accels[a];
            qtest_add_data_func_full(p, c, test_machine_check, g_free);
        }
        for (int i = 0; i < ARRAY_SIZE(simple); i++) {
            g_autofree char *p = g_strdup_printf("/x86/memory-error/%s/%s",
                                                 accels[a], simple[i].name);

            qtest_add_data_func(p, (void *)accels[a], simple[i].fn);
        }
        for (int i = 0; i < ARRAY_SIZE(no_mce); i++) {
            NoMceCase *c = g_new0(NoMceCase, 1);
            g_autofree char *p = g_strdup_printf("/x86/memory-error/%s/%s",
                                                 accels[a], no_mce[i].name);

            *c = no_mce[i].c;
            c->accel = accels[a];
            qtest_add_data_func_full(p, c, test_no_mce, g_free);
        }
    }
    /* Intel's status layout: TCG can give the guest an Intel vendor. */
    for (int i = 0; i < 2; i++) {
        ErrorCase *c = g_new0(ErrorCase, 1);
        g_autofree char *p = g_strdup_printf(
            "/x86/memory-error/tcg/machine-check/intel-%s",
            i ? "write" : "read");

        c->accel = "tcg";
        c->smp = 1;
        c->write = i;
        c->intel = true;
        qtest_add_data_func_full(p, c, test_machine_check, g_free);
    }

    ret = g_test_run();
    rmdir(work_dir);
    return ret;
}
