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
 * regions are made shared at start-up and on every reset, and so is the
 * first MiB of the machine's RAM, where legacy firmware works; the rest of
 * memory-backend RAM is made private again (its contents discarded) on
 * reset.
 */

#include "qemu/osdep.h"
#include <linux/kvm_para.h>
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/units.h"
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

/*
 * The legacy area: the first MiB of the machine's RAM (GPA 0 - 1 MiB on
 * x86 PCs).  Legacy firmware (SeaBIOS, a flat -bios image) runs there in
 * real mode without knowing of private memory: it shadows itself into
 * 0xc0000-0xfffff through PAM (QEMU writes those pages' shared copy) and
 * hands buffers there to QEMU's devices (fw_cfg DMA).  It stays shared.
 */
#define SW_PROTECTED_VM_LEGACY_END (1 * MiB)

/* Is @mr guest RAM from a memory backend (as opposed to firmware)? */
static bool sw_protected_vm_is_backend_ram(MemoryRegion *mr)
{
    Object *owner = memory_region_owner(mr);

    return owner && object_dynamic_cast(owner, TYPE_MEMORY_BACKEND);
}

/* How much of @rb, from its start, is the shared legacy area. */
static uint64_t sw_protected_vm_legacy_size(RAMBlock *rb)
{
    MemoryRegion *ram = current_machine->ram;

    if (!ram || ram->ram_block != rb) {
        return 0;
    }
    return MIN(rb->used_length, SW_PROTECTED_VM_LEGACY_END);
}

/*
 * The state QEMU tracks for every page of a guest_memfd block, mapped or
 * not: the legacy area of the machine RAM is also mapped only when the
 * firmware enables its PAM RAM, and the memslot made then takes its state
 * from here.
 */
static int sw_protected_vm_track_block(RAMBlock *rb, void *opaque)
{
    SwProtectedVm *spv = opaque;
    uint64_t legacy = sw_protected_vm_legacy_size(rb);
    bool private = sw_protected_vm_is_backend_ram(rb->mr);

    if (!rb->attributes) {
        return 0;
    }
    if ((legacy &&
         ram_block_attributes_state_change(rb->attributes, 0, legacy,
                                           false)) ||
        (rb->used_length > legacy &&
         ram_block_attributes_state_change(rb->attributes, legacy,
                                           rb->used_length - legacy,
                                           private))) {
        spv->layout_failed = true;
    }
    return 0;
}

static bool sw_protected_vm_convert(SwProtectedVm *spv, MemoryRegion *mr,
                                    hwaddr gpa, uint64_t size, bool private)
{
    if (!size) {
        return false;
    }
    trace_sw_protected_vm_initial_state(memory_region_name(mr), gpa, size,
                                        private);
    if (kvm_convert_memory(gpa, size, private)) {
        spv->layout_failed = true;
        return true;
    }
    return false;
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
    uint64_t legacy = 0;

    if (!memory_region_has_guest_memfd(mr) &&
        !(mr->ram_block && (mr->ram_block->flags & RAM_GUEST_MEMFD_MMAP))) {
        /*
         * Firmware in ordinary ROM (the ISA BIOS alias, flash).  KVM keeps
         * attributes per GPA, not per memslot: where private RAM was
         * mapped before, the ROM would inherit the private attribute and
         * every access to it would fault.
         */
        if (!memory_region_is_ram(mr) && !memory_region_is_romd(mr)) {
            return false;
        }
        trace_sw_protected_vm_initial_state(memory_region_name(mr), gpa,
                                            size, false);
        if (kvm_set_memory_attributes_shared(gpa, size)) {
            spv->layout_failed = true;
            return true;
        }
        return false;
    }
    if (!sw_protected_vm_is_backend_ram(mr)) {
        return sw_protected_vm_convert(spv, mr, gpa, size, false);
    }
    legacy = sw_protected_vm_legacy_size(mr->ram_block);
    if (offset_in_region < legacy) {
        legacy = MIN(legacy - offset_in_region, size);
    } else {
        legacy = 0;
    }
    return sw_protected_vm_convert(spv, mr, gpa, legacy, false) ||
           sw_protected_vm_convert(spv, mr, gpa + legacy, size - legacy,
                                   true);
}

/*
 * The initial private/shared layout: memory-backend RAM is private,
 * except the legacy area; firmware (-bios, option ROMs) is shared.
 */
static void sw_protected_vm_apply_layout(SwProtectedVm *spv)
{
    FlatView *fv;

    spv->layout_failed = false;
    qemu_ram_foreach_block(sw_protected_vm_track_block, spv);
    RCU_READ_LOCK_GUARD();
    fv = address_space_to_flatview(&address_space_memory);
    if (!spv->layout_failed) {
        flatview_for_each_range(fv, sw_protected_vm_apply_section, spv);
    }
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
        return -ENOTSUP;
    }
    if (!kvm_vm_check_extension(s, KVM_CAP_GUEST_MEMFD)) {
        error_setg(errp, "sw-protected-vm: KVM does not support guest_memfd "
                   "(KVM_CAP_GUEST_MEMFD is 0)");
        return -ENOTSUP;
    }
    if (!(kvm_vm_check_extension(s, KVM_CAP_EXIT_HYPERCALL) &
          BIT_ULL(KVM_HC_MAP_GPA_RANGE)) ||
        !kvm_enable_hypercall(BIT_ULL(KVM_HC_MAP_GPA_RANGE))) {
        error_setg(errp, "sw-protected-vm: KVM cannot pass the guest's "
                   "KVM_HC_MAP_GPA_RANGE hypercall to QEMU "
                   "(KVM_CAP_EXIT_HYPERCALL)");
        return -ENOTSUP;
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
    cgs->shared_firmware = true;
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
