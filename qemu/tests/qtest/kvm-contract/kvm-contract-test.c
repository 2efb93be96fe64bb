/*
 * Tests of the KVM kernel-contract layer itself
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Each behaviour the layer models (kvm-contract.c) is checked here by
 * calling the ioctls directly, without QEMU, against the contract it
 * cites (docs/devel/kvm-kernel-contract.rst; Linux 6.18 virt/kvm/kvm_main.c,
 * virt/kvm/guest_memfd.c): capabilities, KVM_CREATE_VM of the modelled
 * type, KVM_SET_MEMORY_ATTRIBUTES argument checks, guest_memfd flags,
 * memslot flag checks, QKM_KVM_HIDE_CAP, and the layer turning itself off
 * where the real kernel has the VM type.  The behaviours that need a
 * running guest (private faults, the hypercall exit, data placement) are
 * checked through QEMU by private-memory-test.
 *
 * The binary re-executes itself with LD_PRELOAD=KVM_CONTRACT_LIB and
 * QKM_KVM_MODEL=sw-protected-vm; cases that need other settings run in a
 * subprocess.  Without a usable /dev/kvm every case skips, saying so.
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <linux/kvm.h>

static int kvm_fd = -1;
static bool real_has_type;      /* the kernel has SW_PROTECTED_VM itself */

static bool usable(void)
{
    if (kvm_fd < 0) {
        g_test_skip("/dev/kvm is not usable here");
        return false;
    }
    return true;
}

static int create_model_vm(void)
{
    int vm = ioctl(kvm_fd, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);

    g_assert_cmpint(vm, >=, 0);
    return vm;
}

/* Returns errno of a failing ioctl, 0 on success. */
static int ioctl_errno(int fd, unsigned long req, void *arg)
{
    return ioctl(fd, req, arg) < 0 ? errno : 0;
}

/* KVM_CAP_VM_TYPES gains the type, KVM_CREATE_VM of it works. */
static void test_vm_type(void)
{
    int types, vm;

    if (!usable()) {
        return;
    }
    types = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
    g_assert_cmpint(types, >=, 0);
    g_assert_true(types & (1 << KVM_X86_SW_PROTECTED_VM));
    g_assert_true(types & (1 << KVM_X86_DEFAULT_VM));
    vm = create_model_vm();
    close(vm);
}

/*
 * The modelled VM reports KVM_MEMORY_ATTRIBUTE_PRIVATE and guest_memfd
 * flags MMAP only; a default VM keeps the real kernel's answers.
 */
static void test_vm_caps(void)
{
    int vm, dflt;

    if (!usable()) {
        return;
    }
    vm = create_model_vm();
    g_assert_cmpint(ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_MEMORY_ATTRIBUTES),
                    ==, KVM_MEMORY_ATTRIBUTE_PRIVATE);
    if (!real_has_type) {
        g_assert_cmpint(ioctl(vm, KVM_CHECK_EXTENSION,
                              KVM_CAP_GUEST_MEMFD_FLAGS),
                        ==, GUEST_MEMFD_FLAG_MMAP);
    }
    dflt = ioctl(kvm_fd, KVM_CREATE_VM, KVM_X86_DEFAULT_VM);
    g_assert_cmpint(dflt, >=, 0);
    if (!real_has_type) {
        /* This kernel: no attributes for a default VM (section 6). */
        g_assert_cmpint(ioctl(dflt, KVM_CHECK_EXTENSION,
                              KVM_CAP_MEMORY_ATTRIBUTES), ==, 0);
    }
    close(dflt);
    close(vm);
}

/* kvm_vm_ioctl_set_mem_attributes(): argument checks, EINVAL each. */
static void test_set_attributes_checks(void)
{
    static const struct {
        const char *what;
        struct kvm_memory_attributes a;
    } bad[] = {
        { "flags", { 0x100000, 0x1000, KVM_MEMORY_ATTRIBUTE_PRIVATE, 1 } },
        { "unknown attribute", { 0x100000, 0x1000, 1, 0 } },
        { "empty range", { 0x100000, 0, KVM_MEMORY_ATTRIBUTE_PRIVATE, 0 } },
        { "unaligned address",
          { 0x100800, 0x1000, KVM_MEMORY_ATTRIBUTE_PRIVATE, 0 } },
        { "unaligned size",
          { 0x100000, 0x800, KVM_MEMORY_ATTRIBUTE_PRIVATE, 0 } },
        { "overflow",
          { ~0xfffULL, 0x2000, KVM_MEMORY_ATTRIBUTE_PRIVATE, 0 } },
    };
    struct kvm_memory_attributes good = {
        0x100000, 0x2000, KVM_MEMORY_ATTRIBUTE_PRIVATE, 0,
    };
    int vm;

    if (!usable()) {
        return;
    }
    vm = create_model_vm();
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        struct kvm_memory_attributes a = bad[i].a;

        g_test_message("KVM_SET_MEMORY_ATTRIBUTES, %s", bad[i].what);
        g_assert_cmpint(ioctl_errno(vm, KVM_SET_MEMORY_ATTRIBUTES, &a), ==,
                        EINVAL);
    }
    g_assert_cmpint(ioctl_errno(vm, KVM_SET_MEMORY_ATTRIBUTES, &good), ==, 0);
    good.attributes = 0;
    g_assert_cmpint(ioctl_errno(vm, KVM_SET_MEMORY_ATTRIBUTES, &good), ==, 0);
    close(vm);
}

/*
 * guest_memfd: INIT_SHARED is refused for a VM with private memory;
 * memslots refuse dirty logging and read-only with KVM_MEM_GUEST_MEMFD
 * (check_memory_region_flags()) and a range past the guest_memfd's end.
 */
static void test_gmem_slot_checks(void)
{
    struct kvm_create_guest_memfd g = {
        .size = 0x200000,
        .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
    };
    struct kvm_userspace_memory_region2 r = {
        .slot = 3, .guest_phys_addr = 0x100000, .memory_size = 0x200000,
    };
    void *shared;
    int vm, gmem;

    if (!usable()) {
        return;
    }
    vm = create_model_vm();
    if (!real_has_type) {
        g_assert_cmpint(ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g), ==, -1);
        g_assert_cmpint(errno, ==, EINVAL);
    }
    g.flags = GUEST_MEMFD_FLAG_MMAP;
    gmem = ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g);
    g_assert_cmpint(gmem, >=, 0);

    shared = mmap(NULL, r.memory_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_assert_true(shared != MAP_FAILED);
    r.userspace_addr = (uintptr_t)shared;
    r.guest_memfd = gmem;

    r.flags = KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES;
    g_assert_cmpint(ioctl_errno(vm, KVM_SET_USER_MEMORY_REGION2, &r), ==,
                    EINVAL);
    r.flags = KVM_MEM_GUEST_MEMFD | KVM_MEM_READONLY;
    g_assert_cmpint(ioctl_errno(vm, KVM_SET_USER_MEMORY_REGION2, &r), ==,
                    EINVAL);
    r.flags = KVM_MEM_GUEST_MEMFD;
    r.guest_memfd_offset = 0x1000;
    g_assert_cmpint(ioctl_errno(vm, KVM_SET_USER_MEMORY_REGION2, &r), ==,
                    EINVAL);
    r.guest_memfd_offset = 0;
    g_assert_cmpint(ioctl_errno(vm, KVM_SET_USER_MEMORY_REGION2, &r), ==, 0);
    /* Dirty logging stays allowed without guest_memfd. */
    r.slot = 4;
    r.guest_phys_addr = 0x400000;
    r.flags = KVM_MEM_LOG_DIRTY_PAGES;
    g_assert_cmpint(ioctl_errno(vm, KVM_SET_USER_MEMORY_REGION2, &r), ==, 0);

    close(vm);
    close(gmem);
    munmap(shared, r.memory_size);
}

/* QKM_KVM_HIDE_CAP=<n>: KVM_CHECK_EXTENSION(n) answers 0. */
static void test_hide_cap(void)
{
    if (!usable()) {
        return;
    }
    if (g_test_subprocess()) {
        g_assert_cmpint(ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD),
                        ==, 0);
        g_assert_cmpint(ioctl(kvm_fd, KVM_CHECK_EXTENSION,
                              KVM_CAP_USER_MEMORY), >, 0);
        return;
    }
    if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD) <= 0) {
        g_test_skip("no KVM_CAP_GUEST_MEMFD to hide on this kernel");
        return;
    }
    g_setenv("QKM_KVM_HIDE_CAP", G_STRINGIFY(KVM_CAP_GUEST_MEMFD), true);
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_unsetenv("QKM_KVM_HIDE_CAP");
    g_test_trap_assert_passed();
}

/* Without QKM_KVM_MODEL the layer passes VM types through untouched. */
static void test_model_unset(void)
{
    int types;

    if (!usable()) {
        return;
    }
    if (g_test_subprocess()) {
        types = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
        g_assert_cmpint(!!(types & (1 << KVM_X86_SW_PROTECTED_VM)), ==,
                        real_has_type);
        if (!real_has_type) {
            g_assert_cmpint(ioctl(kvm_fd, KVM_CREATE_VM,
                                  KVM_X86_SW_PROTECTED_VM), ==, -1);
            g_assert_cmpint(errno, ==, EINVAL);
        }
        return;
    }
    g_unsetenv("QKM_KVM_MODEL");
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_setenv("QKM_KVM_MODEL", "sw-protected-vm", true);
    g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
    const char *preload = getenv("LD_PRELOAD");
    const char *real = getenv("QKM_TEST_REAL_VM_TYPES");

    /* Load the layer: re-execute once with it preloaded. */
    if (!preload || !strstr(preload, KVM_CONTRACT_LIB)) {
        /* The real kernel's answer, before the layer is there. */
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        int types = fd < 0 ? 0 : ioctl(fd, KVM_CHECK_EXTENSION,
                                       KVM_CAP_VM_TYPES);
        g_autofree char *t = g_strdup_printf("%d", types < 0 ? 0 : types);

        g_setenv("QKM_TEST_REAL_VM_TYPES", t, true);
        g_setenv("LD_PRELOAD", KVM_CONTRACT_LIB, true);
        g_setenv("QKM_KVM_MODEL", "sw-protected-vm", true);
        execv("/proc/self/exe", argv);
        perror("kvm-contract-test: execv /proc/self/exe");
        return 1;
    }
    real_has_type = real && (atoi(real) & (1 << KVM_X86_SW_PROTECTED_VM));
    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    g_test_init(&argc, &argv, NULL);
    if (real_has_type) {
        g_test_message("the kernel has KVM_X86_SW_PROTECTED_VM: the layer "
                       "is off and these cases check the real kernel");
    }
    g_test_add_func("/kvm-contract/sw-protected-vm/vm-type", test_vm_type);
    g_test_add_func("/kvm-contract/sw-protected-vm/vm-caps", test_vm_caps);
    g_test_add_func("/kvm-contract/sw-protected-vm/set-attributes-checks",
                    test_set_attributes_checks);
    g_test_add_func("/kvm-contract/sw-protected-vm/gmem-slot-checks",
                    test_gmem_slot_checks);
    g_test_add_func("/kvm-contract/hide-cap", test_hide_cap);
    g_test_add_func("/kvm-contract/model-unset", test_model_unset);
    return g_test_run();
}
