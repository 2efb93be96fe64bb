/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qtest-side helpers for the freestanding test guest: pick the
 * accelerators a test can run on, start QEMU with the guest image and a
 * debug console, drive the guest through its RAM mailbox and collect what
 * it printed.
 */

#ifndef TESTS_QTEST_GUEST_QTEST_H
#define TESTS_QTEST_GUEST_QTEST_H

#include "libqtest.h"
#include "guest-abi.h"

typedef struct GuestVM {
    QTestState *qts;
    const char *accel;
    char *image_path;
    char *debugcon_path;
    char *stderr_path;          /* NULL unless stderr is captured */
} GuestVM;

typedef struct GuestVMConfig {
    const char *accel;          /* "kvm" or "tcg" */
    /*
     * A memory backend with id=ram0 to use as the machine's RAM (64 MiB),
     * e.g. "memory-backend-file,id=ram0,size=64M,mem-path=...,share=on";
     * NULL for the default.
     */
    const char *memory;
    const char *extra_args;
    bool capture_stderr;        /* QEMU's stderr into a file */
    /*
     * Environment for QEMU only (e.g. LD_PRELOAD of a kernel-contract
     * layer): pairs of name and value, NULL-terminated; a NULL value is
     * skipped.
     */
    const char *const *env;
} GuestVMConfig;

/*
 * Whether @accel ("kvm" or "tcg") can run the guest on this host.  When
 * it cannot, *@reason says why, for g_test_skip().
 */
bool guest_accel_usable(const char *accel, const char **reason);

/* guest_accel_usable(), or g_test_skip() with the reason and false. */
bool guest_accel_ok(const char *accel);

/*
 * Start QEMU paused (-S) on @accel with the guest as its -bios image, a
 * debug console on port GUEST_DEBUGCON_PORT and @extra_args appended.
 */
GuestVM *guest_vm_start(const char *accel, const char *extra_args);

/* The same, with a memory backend and stderr capture. */
GuestVM *guest_vm_start_config(const GuestVMConfig *cfg);

/* What QEMU wrote to stderr so far (capture_stderr only). */
char *guest_vm_stderr(GuestVM *vm);

/* Write a mailbox field while the VM is paused. */
void guest_vm_request(GuestVM *vm, uint32_t field, uint32_t value);

/*
 * What a GUEST_OP_SCRIPT step's result field holds until the guest
 * writes it.
 */
#define GUEST_STEP_UNSET        0x5e171e15u

/*
 * Fill in step @i of the guest's script (guest-abi.h), its result
 * preset to GUEST_STEP_UNSET, while the VM is paused.
 */
void guest_vm_script_step(GuestVM *vm, int i, uint32_t op, uint32_t addr,
                          uint32_t arg);

/* Let the guest run. */
void guest_vm_resume(GuestVM *vm);

/*
 * Wait up to @timeout_ms for the guest to set MB_DONE.  Returns false on
 * timeout, so that a test fails instead of hanging.
 */
bool guest_vm_wait_done(GuestVM *vm, unsigned timeout_ms);

/* Everything the guest has written to its debug console so far. */
char *guest_vm_debugcon(GuestVM *vm);

/*
 * Wait up to @timeout_ms for QMP event @name (polling with query-status,
 * which also collects events).  Returns the event, or NULL if it never
 * came, so that a test fails instead of hanging.
 */
QDict *guest_qmp_wait_event(QTestState *qts, const char *name,
                            unsigned timeout_ms);

/* How many QMP events @name are queued now (they are consumed). */
int guest_count_events(QTestState *qts, const char *name);

/*
 * The VM's run state (query-status), kept in *@buf (freed and replaced
 * on each call; the caller frees it at the end).
 */
const char *guest_run_status(QTestState *qts, char **buf);

/*
 * Where [@start, @end) of RAM block @block appears in the guest-physical
 * address space, read from "info mtree -f" (the flat view of address
 * space "memory"): a GArray of uint64_t pairs (gpa, size), in address
 * order.
 */
GArray *guest_mtree_ranges(QTestState *qts, const char *block,
                           uint64_t start, uint64_t end);

/* How many lines of @text are exactly @line. */
unsigned guest_count_lines(const char *text, const char *line);

/*
 * The first line of a guest-memory fault report under @accel: KVM keeps
 * the line its users know, other accelerators have no run that failed.
 */
const char *guest_fault_headline(const char *accel);

/*
 * The VM is stopped with run state internal-error and stays so: cont is
 * refused without a reset.
 */
void guest_vm_assert_internal_error(QTestState *qts);

/*
 * The description qom-list-properties gives property @prop of QOM type
 * @type ("" when it has none), or NULL when @type has no such property.
 */
char *guest_qom_description(QTestState *qts, const char *type,
                            const char *prop);

/* What "-object @type,help" prints (QEMU must exit 0). */
char *guest_object_help(const char *type);

/* Quit QEMU and remove the temporary files. */
void guest_vm_free(GuestVM *vm);

#endif /* TESTS_QTEST_GUEST_QTEST_H */
