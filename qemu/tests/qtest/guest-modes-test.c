/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Boot the freestanding test guest (tests/qtest/guest/) into each CPU
 * mode it supports, on KVM when this host can run it and always on TCG,
 * and check what it reports in its RAM mailbox and on the debug console.
 * Later tests build on this guest, so this one pins down that it really
 * reaches every mode on every accelerator.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "guest/guest-qtest.h"

typedef struct ModeCase {
    const char *accel;
    uint32_t mode;
} ModeCase;

static const char *const mode_lines[] = {
    [GUEST_MODE_REAL] = "guest: real mode\n",
    [GUEST_MODE_PROT32] = "guest: 32-bit protected mode\n",
    [GUEST_MODE_LONG64] = "guest: 64-bit long mode\n",
    [GUEST_MODE_USER64] = "guest: 64-bit user mode (CPL 3)\n",
};

static void test_boot_to_mode(const void *opaque)
{
    const ModeCase *c = opaque;
    const char *reason;
    g_autofree char *output = NULL;
    g_autoptr(GString) expected = g_string_new("");
    GuestVM *vm;

    if (!guest_accel_usable(c->accel, &reason)) {
        g_test_skip(reason);
        return;
    }
    for (uint32_t m = GUEST_MODE_REAL; m <= c->mode; m++) {
        g_string_append(expected, mode_lines[m]);
    }

    vm = guest_vm_start(c->accel, NULL);
    guest_vm_request(vm, MB_REQ_MODE, c->mode);
    guest_vm_resume(vm);
    g_assert_true(guest_vm_wait_done(vm, 20000));

    g_assert_cmphex(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_MAGIC), ==,
                    GUEST_MAGIC);
    g_assert_cmpuint(qtest_readl(vm->qts, GUEST_MAILBOX_GPA + MB_STAGE), ==,
                     c->mode);
    output = guest_vm_debugcon(vm);
    g_assert_cmpstr(output, ==, expected->str);
    guest_vm_free(vm);
}

int main(int argc, char **argv)
{
    static const char *const accels[] = { "kvm", "tcg" };
    static const char *const mode_names[] = {
        [GUEST_MODE_REAL] = "real",
        [GUEST_MODE_PROT32] = "prot32",
        [GUEST_MODE_LONG64] = "long64",
        [GUEST_MODE_USER64] = "user64",
    };

    g_test_init(&argc, &argv, NULL);

    for (int a = 0; a < ARRAY_SIZE(accels); a++) {
        for (uint32_t m = GUEST_MODE_REAL; m <= GUEST_MODE_USER64; m++) {
            ModeCase *c = g_new0(ModeCase, 1);
            g_autofree char *path = g_strdup_printf("/x86/guest-lib/%s/%s",
                                                    accels[a],
                                                    mode_names[m]);
            c->accel = accels[a];
            c->mode = m;
            qtest_add_data_func_full(path, c, test_boot_to_mode, g_free);
        }
    }
    return g_test_run();
}
