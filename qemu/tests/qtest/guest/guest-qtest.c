/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qtest-side helpers for the freestanding test guest; see guest-qtest.h.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "guest-qtest.h"
#include "guest/guest-image.h"

bool guest_accel_usable(const char *accel, const char **reason)
{
    if (!qtest_has_accel(accel)) {
        *reason = g_str_equal(accel, "kvm") ?
            "KVM is not compiled in or /dev/kvm is missing" :
            "this QEMU has no such accelerator";
        return false;
    }
    if (g_str_equal(accel, "kvm") && access("/dev/kvm", R_OK | W_OK) != 0) {
        *reason = "/dev/kvm is not accessible to this user";
        return false;
    }
    return true;
}

bool guest_accel_ok(const char *accel)
{
    const char *reason;

    if (!guest_accel_usable(accel, &reason)) {
        g_test_skip(reason);
        return false;
    }
    return true;
}

GuestVM *guest_vm_start(const char *accel, const char *extra_args)
{
    GuestVMConfig cfg = { .accel = accel, .extra_args = extra_args };

    return guest_vm_start_config(&cfg);
}

GuestVM *guest_vm_start_config(const GuestVMConfig *cfg)
{
    GuestVM *vm = g_new0(GuestVM, 1);
    g_autoptr(GError) err = NULL;
    g_autofree char *memory = NULL;
    g_autofree char *redirect = NULL;
    int fd;

    fd = g_file_open_tmp("qtest-guest-XXXXXX.bin", &vm->image_path, &err);
    g_assert_no_error(err);
    g_assert_cmpint(write(fd, guest_image, sizeof(guest_image)), ==,
                    sizeof(guest_image));
    close(fd);

    fd = g_file_open_tmp("qtest-guest-XXXXXX.log", &vm->debugcon_path, &err);
    g_assert_no_error(err);
    close(fd);

    if (cfg->capture_stderr) {
        fd = g_file_open_tmp("qtest-guest-XXXXXX.err", &vm->stderr_path,
                             &err);
        g_assert_no_error(err);
        close(fd);
        /* libqtest runs QEMU through sh -c: a redirection works. */
        redirect = g_strdup_printf("2>%s", vm->stderr_path);
    }
    if (cfg->memory) {
        memory = g_strdup_printf("-object %s -machine memory-backend=ram0",
                                 cfg->memory);
    }

    vm->accel = cfg->accel;
    for (const char *const *e = cfg->env; e && e[0]; e += 2) {
        if (e[1]) {
            g_setenv(e[0], e[1], true);
        }
    }
    vm->qts = qtest_initf("-accel %s -machine pc -cpu max -m 64M %s "
                          "-nodefaults -display none -bios %s "
                          "-chardev file,id=guest-dbg,path=%s "
                          "-device isa-debugcon,iobase=0x%x,chardev=guest-dbg "
                          "-S %s %s",
                          cfg->accel, memory ? memory : "", vm->image_path,
                          vm->debugcon_path, GUEST_DEBUGCON_PORT,
                          cfg->extra_args ? cfg->extra_args : "",
                          redirect ? redirect : "");
    for (const char *const *e = cfg->env; e && e[0]; e += 2) {
        g_unsetenv(e[0]);
    }
    return vm;
}

char *guest_vm_stderr(GuestVM *vm)
{
    g_autoptr(GError) err = NULL;
    char *text = NULL;

    g_assert(vm->stderr_path);
    g_file_get_contents(vm->stderr_path, &text, NULL, &err);
    g_assert_no_error(err);
    return text;
}

void guest_vm_request(GuestVM *vm, uint32_t field, uint32_t value)
{
    qtest_writel(vm->qts, GUEST_MAILBOX_GPA + field, value);
}

void guest_vm_script_step(GuestVM *vm, int i, uint32_t op, uint32_t addr,
                          uint32_t arg)
{
    uint32_t step = MB_SCRIPT + i * STEP_SIZE;

    g_assert_cmpint(i, <, MB_SCRIPT_STEPS);
    guest_vm_request(vm, step + STEP_OP, op);
    guest_vm_request(vm, step + STEP_ADDR, addr);
    guest_vm_request(vm, step + STEP_ARG, arg);
    guest_vm_request(vm, step + STEP_RESULT, GUEST_STEP_UNSET);
}

void guest_vm_resume(GuestVM *vm)
{
    qtest_qmp_assert_success(vm->qts, "{ 'execute': 'cont' }");
}

bool guest_vm_wait_done(GuestVM *vm, unsigned timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000LL;

    do {
        if (qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_DONE) == GUEST_DONE) {
            return true;
        }
        g_usleep(1000);
    } while (g_get_monotonic_time() < deadline);
    return false;
}

char *guest_vm_debugcon(GuestVM *vm)
{
    g_autoptr(GError) err = NULL;
    char *text = NULL;

    g_file_get_contents(vm->debugcon_path, &text, NULL, &err);
    g_assert_no_error(err);
    return text;
}

QDict *guest_qmp_wait_event(QTestState *qts, const char *name,
                            unsigned timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000LL;
    QDict *ev, *rsp;

    do {
        rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
        qobject_unref(rsp);
        ev = qtest_qmp_event_ref(qts, name);
        if (ev) {
            return ev;
        }
        g_usleep(2000);
    } while (g_get_monotonic_time() < deadline);
    return NULL;
}

int guest_count_events(QTestState *qts, const char *name)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    QDict *ev;
    int n = 0;

    qobject_unref(rsp);
    while ((ev = qtest_qmp_event_ref(qts, name))) {
        qobject_unref(ev);
        n++;
    }
    return n;
}

const char *guest_run_status(QTestState *qts, char **buf)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");

    g_free(*buf);
    *buf = g_strdup(qdict_get_str(qdict_get_qdict(rsp, "return"),
                                  "status"));
    qobject_unref(rsp);
    return *buf;
}

GArray *guest_mtree_ranges(QTestState *qts, const char *block,
                           uint64_t start, uint64_t end)
{
    g_autofree char *text = qtest_hmp(qts, "info mtree -f");
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autofree char *tag = g_strdup_printf("): %s", block);
    GArray *pairs = g_array_new(false, false, sizeof(uint64_t));
    bool in_memory = false;

    for (int i = 0; lines[i]; i++) {
        const char *l = lines[i];
        uint64_t lo, hi, off = 0, a, b;
        const char *at, *t;

        if (g_str_has_prefix(l, "FlatView")) {
            in_memory = false;
        } else if (strstr(l, "AS \"memory\"")) {
            in_memory = true;
        }
        /* "  <lo>-<hi> (prio 0, ram): <block>[ @<offset>][ KVM]" */
        t = strstr(l, tag);
        if (!in_memory || !t || !strchr(" \r", t[strlen(tag)]) ||
            sscanf(l, " %" SCNx64 "-%" SCNx64, &lo, &hi) != 2) {
            continue;
        }
        at = strchr(t, '@');
        if (at) {
            off = g_ascii_strtoull(at + 1, NULL, 16);
        }
        a = MAX(start, off);
        b = MIN(end, off + (hi - lo + 1));
        if (a < b) {
            uint64_t gpa = lo + (a - off), size = b - a;

            g_array_append_val(pairs, gpa);
            g_array_append_val(pairs, size);
        }
    }
    return pairs;
}

const char *guest_fault_headline(const char *accel)
{
    return g_str_equal(accel, "kvm") ? "error: kvm run failed Bad address"
                                     : "error: guest memory fault";
}

unsigned guest_count_lines(const char *text, const char *line)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    unsigned n = 0;

    for (int i = 0; lines[i]; i++) {
        n += !strcmp(lines[i], line);
    }
    return n;
}

static void assert_status_internal_error(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-status' }");
    QDict *ret = qdict_get_qdict(rsp, "return");

    g_assert(ret);
    g_assert_cmpstr(qdict_get_str(ret, "status"), ==, "internal-error");
    g_assert_false(qdict_get_bool(ret, "running"));
    qobject_unref(rsp);
}

void guest_vm_assert_internal_error(QTestState *qts)
{
    QDict *rsp;

    assert_status_internal_error(qts);
    /* It must not run again without a reset. */
    rsp = qtest_qmp(qts, "{ 'execute': 'cont' }");
    g_assert(qdict_haskey(rsp, "error"));
    qobject_unref(rsp);
    assert_status_internal_error(qts);
}

/* The description qom-list-properties gives @prop of @type, or NULL. */
char *guest_qom_description(QTestState *qts, const char *type,
                           const char *prop)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-list-properties', "
                           "'arguments': { 'typename': %s } }", type);
    QListEntry *e;
    char *desc = NULL;

    QLIST_FOREACH_ENTRY(qdict_get_qlist(rsp, "return"), e) {
        QDict *p = qobject_to(QDict, qlist_entry_obj(e));

        if (g_str_equal(qdict_get_str(p, "name"), prop)) {
            desc = g_strdup(qdict_get_try_str(p, "description") ?: "");
        }
    }
    qobject_unref(rsp);
    return desc;
}

/* What -object @type,help prints. */
char *guest_object_help(const char *type)
{
    g_autofree char *cmd = g_strdup_printf("%s -object %s,help",
                                           qtest_qemu_binary(NULL), type);
    char *out = NULL;
    int status;

    g_assert_true(g_spawn_command_line_sync(cmd, &out, NULL, &status, NULL));
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return out;
}

void guest_vm_free(GuestVM *vm)
{
    qtest_quit(vm->qts);
    unlink(vm->image_path);
    unlink(vm->debugcon_path);
    if (vm->stderr_path) {
        unlink(vm->stderr_path);
    }
    g_free(vm->image_path);
    g_free(vm->debugcon_path);
    g_free(vm->stderr_path);
    g_free(vm);
}
