/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * sw-protected-vm: a confidential-guest-support object for KVM's
 * software-protected VM type (KVM_X86_SW_PROTECTED_VM).  The guest gets
 * private memory without CoCo hardware: RAM lives in guest_memfd and is
 * private by default, the guest converts pages with the KVM_HC_MAP_GPA_RANGE
 * hypercall, and KVM_EXIT_MEMORY_FAULT requests implicit conversions.
 * Nothing is encrypted: this is for developing and testing private-memory
 * code paths (Linux 6.8+, CONFIG_KVM_SW_PROTECTED_VM, TDP MMU).
 *
 * Firmware images are loaded by QEMU into the shared view, so firmware
 * regions are made shared at start-up and on every reset; memory-backend
 * RAM is made private again (its contents discarded) on reset.
 */

#include "qemu/osdep.h"
#include <linux/kvm_para.h>
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "system/system.h"
#include "qom/object_interfaces.h"
#include "system/kvm.h"
#include "system/memory.h"
#include "system/address-spaces.h"
#include "system/hostmem.h"
#include "system/ramblock.h"
#include "system/reset.h"
#include "system/runstate.h"
#include "hw/boards.h"
#include "cpu.h"
#include "confidential-guest.h"
#include "kvm_i386.h"
#include "trace.h"

#define TYPE_SW_PROTECTED_VM "sw-protected-vm"
OBJECT_DECLARE_SIMPLE_TYPE(SwProtectedVm, SW_PROTECTED_VM)

struct SwProtectedVm {
    X86ConfidentialGuest parent_obj;

    Notifier machine_done;
    bool layout_failed;
};

/* Is @mr guest RAM from a memory backend (as opposed to firmware)? */
static bool sw_protected_vm_is_backend_ram(MemoryRegion *mr)
{
    Object *owner = memory_region_owner(mr);

    return owner && object_dynamic_cast(owner, TYPE_MEMORY_BACKEND);
}

static bool sw_protected_vm_apply_section(Int128 start, Int128 len,
                                          const MemoryRegion *cmr,
                                          hwaddr offset_in_region,
                                          void *opaque)
{
    SwProtectedVm *spv = opaque;
    MemoryRegion *mr = (MemoryRegion *)cmr;
    hwaddr gpa = int128_get64(start);
    uint64_t size = int128_get64(len);
    bool to_private;

    if (!memory_region_has_guest_memfd(mr) &&
        !(mr->ram_block && (mr->ram_block->flags & RAM_GUEST_MEMFD_MMAP))) {
        return false;
    }
    to_private = sw_protected_vm_is_backend_ram(mr);
    trace_sw_protected_vm_initial_state(memory_region_name(mr), gpa, size,
                                        to_private);
    if (kvm_convert_memory(gpa, size, to_private)) {
        spv->layout_failed = true;
        return true;
    }
    return false;
}

/*
 * The initial private/shared layout: every guest_memfd-backed range is
 * private if it is memory-backend RAM and shared otherwise (firmware).
 */
static void sw_protected_vm_apply_layout(SwProtectedVm *spv)
{
    FlatView *fv;

    spv->layout_failed = false;
    RCU_READ_LOCK_GUARD();
    fv = address_space_to_flatview(&address_space_memory);
    flatview_for_each_range(fv, sw_protected_vm_apply_section, spv);
    if (spv->layout_failed) {
        error_report("sw-protected-vm: cannot set up the initial "
                     "private/shared memory layout");
        qemu_system_shutdown_request(SHUTDOWN_CAUSE_HOST_ERROR);
    }
}

static void sw_protected_vm_machine_done(Notifier *n, void *unused)
{
    sw_protected_vm_apply_layout(container_of(n, SwProtectedVm,
                                              machine_done));
}

static void sw_protected_vm_reset(void *opaque)
{
    sw_protected_vm_apply_layout(opaque);
}

static int sw_protected_vm_kvm_init(ConfidentialGuestSupport *cgs,
                                    Error **errp)
{
    SwProtectedVm *spv = SW_PROTECTED_VM(cgs);
    KVMState *s = KVM_STATE(current_accel());
    int attrs;

    /* kvm_get_vm_type() has checked KVM_CAP_VM_TYPES already. */
    attrs = kvm_vm_check_extension(s, KVM_CAP_MEMORY_ATTRIBUTES);
    if (!(attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
        error_setg(errp, "sw-protected-vm: KVM has no private memory "
                   "attribute (KVM_CAP_MEMORY_ATTRIBUTES is 0x%x)", attrs);
        return -1;
    }
    if (!kvm_vm_check_extension(s, KVM_CAP_GUEST_MEMFD)) {
        error_setg(errp, "sw-protected-vm: KVM does not support guest_memfd "
                   "(KVM_CAP_GUEST_MEMFD is 0)");
        return -1;
    }
    if (!(kvm_vm_check_extension(s, KVM_CAP_EXIT_HYPERCALL) &
          BIT_ULL(KVM_HC_MAP_GPA_RANGE)) ||
        !kvm_enable_hypercall(BIT_ULL(KVM_HC_MAP_GPA_RANGE))) {
        error_setg(errp, "sw-protected-vm: KVM cannot pass the guest's "
                   "KVM_HC_MAP_GPA_RANGE hypercall to QEMU "
                   "(KVM_CAP_EXIT_HYPERCALL)");
        return -1;
    }

    spv->machine_done.notify = sw_protected_vm_machine_done;
    qemu_add_machine_init_done_notifier(&spv->machine_done);
    qemu_register_reset(sw_protected_vm_reset, spv);
    cgs->ready = true;
    return 0;
}

/*
 * The guest requests conversions with KVM_HC_MAP_GPA_RANGE itself (no
 * hardware protocol synthesizes them), so tell it the hypercall exists.
 */
static uint32_t sw_protected_vm_adjust_cpuid_features(X86ConfidentialGuest *cg,
                                                      uint32_t feature,
                                                      uint32_t index, int reg,
                                                      uint32_t value)
{
    if (feature == KVM_CPUID_FEATURES && reg == R_EAX) {
        value |= 1U << KVM_FEATURE_HC_MAP_GPA_RANGE;
    }
    return value;
}

static int sw_protected_vm_kvm_type(X86ConfidentialGuest *cg)
{
    return KVM_X86_SW_PROTECTED_VM;
}

static void sw_protected_vm_init(Object *obj)
{
    ConfidentialGuestSupport *cgs = CONFIDENTIAL_GUEST_SUPPORT(obj);

    cgs->require_guest_memfd = true;
}

static void sw_protected_vm_class_init(ObjectClass *oc, const void *data)
{
    ConfidentialGuestSupportClass *klass = CONFIDENTIAL_GUEST_SUPPORT_CLASS(oc);
    X86ConfidentialGuestClass *x86_klass = X86_CONFIDENTIAL_GUEST_CLASS(oc);

    klass->kvm_init = sw_protected_vm_kvm_init;
    x86_klass->kvm_type = sw_protected_vm_kvm_type;
    x86_klass->adjust_cpuid_features = sw_protected_vm_adjust_cpuid_features;
}

static const TypeInfo sw_protected_vm_info = {
    .name = TYPE_SW_PROTECTED_VM,
    .parent = TYPE_X86_CONFIDENTIAL_GUEST,
    .instance_size = sizeof(SwProtectedVm),
    .instance_init = sw_protected_vm_init,
    .class_init = sw_protected_vm_class_init,
    .interfaces = (const InterfaceInfo[]) {
        { TYPE_USER_CREATABLE },
        { }
    },
};

static void sw_protected_vm_register_types(void)
{
    type_register_static(&sw_protected_vm_info);
}

type_init(sw_protected_vm_register_types);
