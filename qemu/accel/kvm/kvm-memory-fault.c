/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The KVM side of the guest-memory fault report (system/
 * guest-memory-*.c): how each KVM_RUN outcome that can mean "this
 * guest memory has no host backing" is recognised, given the details KVM
 * provides, and turned into the one report.  Called from kvm_cpu_exec()
 * on the vCPU thread, without the BQL.
 */

#include "qemu/osdep.h"
#include <linux/kvm.h>
#include "qemu/rcu.h"
#include "hw/core/cpu.h"
#include "hw/core/sysemu-cpu-ops.h"
#include "system/address-spaces.h"
#include "system/guest-memory-fault.h"
#include "system/kvm.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "kvm-cpus.h"
#include "trace.h"

/* Conversions so far, by anybody (fault exits, hypercalls, reset). */
static uint64_t conversion_generation;
/* KVM_CAP_EXIT_ON_EMULATION_FAILURE is on: see kvm_memory_fault_on_efault. */
static bool exit_on_emulation_failure;

static KVMMemoryFaultVcpu *get_state(CPUState *cpu)
{
    return &cpu->accel->fault;
}

static void set_page_range(GuestMemoryFault *f, hwaddr gpa)
{
    uint64_t page = f->block ? qemu_ram_pagesize(f->block)
                             : qemu_real_host_page_size();

    f->gpa = QEMU_ALIGN_DOWN(gpa, page);
    f->offset = QEMU_ALIGN_DOWN(f->offset, page);
    f->size = page;
    f->has_gpa = true;
}

bool kvm_memory_fault_on_efault(CPUState *cpu)
{
    GuestMemoryFault f;

    /*
     * KVM says nothing but EFAULT (kvm_run's exit fields are stale): look
     * for RAM whose backing is gone, without touching it.
     */
    guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_VCPU_RUN,
                            cpu->cpu_index);
    if (!guest_memory_find_unbacked(&f)) {
        guest_memory_fault_cleanup(&f);
        guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_VCPU_RUN,
                                cpu->cpu_index);
        f.cause_detail = g_strdup("KVM_RUN failed with EFAULT and no "
                                  "RAM block has lost its backing");
    } else if (guest_memory_fault_trap(&f,
                                       &get_state(cpu)->trap_generation)) {
        /*
         * The guest is to be told: find out which page it touched.  An
         * access KVM cannot emulate there is to exit too, rather than
         * raise #UD in a guest process.
         */
        if (!exit_on_emulation_failure &&
            kvm_check_extension(kvm_state,
                                KVM_CAP_EXIT_ON_EMULATION_FAILURE)) {
            exit_on_emulation_failure =
                !kvm_vm_enable_cap(kvm_state,
                                   KVM_CAP_EXIT_ON_EMULATION_FAILURE, 0, 1);
        }
        trace_kvm_memory_fault_trap(cpu->cpu_index,
                                    qemu_ram_get_idstr(f.block));
        guest_memory_fault_cleanup(&f);
        return true;
    }
    guest_memory_fault_report(&f);
    guest_memory_fault_cleanup(&f);
    return false;
}

int kvm_memory_fault_on_poison(CPUState *cpu, int code, void *addr)
{
    GuestMemoryFault f;
    int ret = -1;

    if (code != BUS_MCEERR_AR) {
        return 0;
    }
    /*
     * KVM met the poison before the access was made: the vCPU is at the
     * instruction, which did nothing.  What the page lost is told by its
     * backing, not by the signal (no sigbus_code: not hardware's).
     */
    if (!guest_memory_fault_poisoned(addr)) {
        return 0;
    }
    guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_VCPU_RUN,
                            cpu->cpu_index);
    f.host_addr = addr;
    guest_memory_fault_probe(&f);
    if (guest_memory_fault_report_vcpu(&f, cpu)) {
        ret = EXCP_INTERRUPT;
    }
    trace_kvm_memory_fault_poison(cpu->cpu_index, f.gpa, ret);
    guest_memory_fault_cleanup(&f);
    return ret;
}

/* Exits an instruction may take at trap regions: see complete_trapped(). */
#define TRAPPED_EXITS_MAX 16

/*
 * KVM finishes the instruction of an MMIO exit when the vCPU enters
 * again: let it, with the registers from before it put back afterwards
 * (a read loads nothing).  One instruction may need more exits (a
 * 16-byte load, a read across two pages, a string instruction's next
 * element): each is served with all ones, never with stale data, and
 * none reaches a device.  A copy to memory would store what a read is
 * served with: it is served with what its destination holds, which the
 * store then leaves as it was (SysemuCPUOps::copy_source_data).  False
 * if KVM still wants more after TRAPPED_EXITS_MAX, or cannot be entered
 * without running the guest.
 */
static bool complete_trapped(CPUState *cpu)
{
    const SysemuCPUOps *ops = cpu->cc->sysemu_ops;
    struct kvm_run *run = cpu->kvm_run;
    unsigned element = 0;
    int ret;

    kvm_cpu_synchronize_state(cpu);
    if (!kvm_check_extension(kvm_state, KVM_CAP_IMMEDIATE_EXIT)) {
        return false;
    }
    for (int i = 0; i < TRAPPED_EXITS_MAX; i++) {
        if (!run->mmio.is_write) {
            memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
            if (ops->copy_source_data &&
                ops->copy_source_data(cpu, &element, run->mmio.phys_addr,
                                      run->mmio.len, run->mmio.data)) {
                trace_kvm_memory_fault_copy_served(cpu->cpu_index,
                                                   run->mmio.phys_addr,
                                                   element);
            }
        }
        qatomic_set(&run->immediate_exit, 1);
        ret = kvm_vcpu_ioctl(cpu, KVM_RUN, 0);
        qatomic_set(&run->immediate_exit, 0);
        trace_kvm_memory_fault_complete_exit(cpu->cpu_index, ret);
        if (ret == -EINTR) {
            return true;
        }
        if (ret != 0 || run->exit_reason != KVM_EXIT_MMIO) {
            return false;
        }
    }
    return false;
}

/*
 * An MMIO exit at lost RAM of a memory backend with
 * lost-page-action=guest-error (covered by guest_memory_fault_trap(), or
 * RAM a KVM host reports so itself): raise the error in the guest.
 */
static KVMMemoryFaultMMIO mmio_to_guest(CPUState *cpu, GuestMemoryFault *f,
                                        bool is_write)
{
    KVMMemoryFaultMMIO ret = KVM_MEMORY_FAULT_MMIO_REPORTED;

    /* KVM completes a write before it exits: the vCPU is past it. */
    f->insn_done = is_write;
    if (!complete_trapped(cpu)) {
        guest_memory_fault_report(f);
    } else if (guest_memory_fault_report_vcpu(f, cpu)) {
        ret = KVM_MEMORY_FAULT_MMIO_TO_GUEST;
    }
    guest_memory_fault_cleanup(f);
    return ret;
}

KVMMemoryFaultMMIO kvm_memory_fault_check_mmio(CPUState *cpu, uint64_t gpa,
                                               bool is_write,
                                               MemTxAttrs attrs)
{
    GuestMemoryFault f;
    MemoryRegion *mr;
    hwaddr xlat, len = 1;
    bool trapped = false;

    /*
     * The ordinary MMIO exit hits a device: one flatview lookup, and out.
     * Only an exit at a RAM address (how some KVM hosts report an access
     * to a RAM page they could not fault in; also memslot-update races and
     * writes to ROM) or at lost RAM covered by a trap goes further.
     */
    WITH_RCU_READ_LOCK_GUARD() {
        mr = address_space_translate(&address_space_memory, gpa, &xlat,
                                     &len, is_write, attrs);
        if (likely(!memory_region_is_ram(mr))) {
            if (likely(!guest_memory_fault_trapping())) {
                return KVM_MEMORY_FAULT_MMIO_NONE;
            }
            guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_MMIO_EXIT,
                                    cpu->cpu_index);
            trapped = guest_memory_fault_trapped(mr, xlat, &f);
            if (!trapped) {
                return KVM_MEMORY_FAULT_MMIO_NONE;
            }
        }
    }
    if (!trapped) {
        guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_MMIO_EXIT,
                                cpu->cpu_index);
    }
    f.access = is_write ? GUEST_MEMORY_ACCESS_WRITE : GUEST_MEMORY_ACCESS_READ;
    if (trapped) {
        guest_memory_fault_set_gpa(&f, gpa, 0);
        guest_memory_fault_probe(&f);
        set_page_range(&f, gpa);
        return mmio_to_guest(cpu, &f, is_write);
    }
    if (!guest_memory_gpa_is_unbacked(gpa, &f)) {
        /* Backed: a legitimate exit, served as usual. */
        trace_kvm_memory_fault_mmio_in_ram(gpa, is_write);
        return KVM_MEMORY_FAULT_MMIO_NONE;
    }
    set_page_range(&f, gpa);
    if (guest_memory_fault_guest_error(&f)) {
        return mmio_to_guest(cpu, &f, is_write);
    }
    guest_memory_fault_report(&f);
    guest_memory_fault_cleanup(&f);
    return KVM_MEMORY_FAULT_MMIO_REPORTED;
}

bool kvm_memory_fault_on_emulation_failure(CPUState *cpu,
                                           struct kvm_run *run)
{
    GuestMemoryFault f;
    MemTxAttrs attrs;
    hwaddr phys;
    vaddr pc;

    if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION) {
        return false;
    }
    kvm_cpu_synchronize_state(cpu);
    pc = cpu->cc->get_pc(cpu);

    if (run->internal.ndata >= 2 &&
        (run->internal.data[0] &
         KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
        run->internal.data[1] != 0) {
        if (guest_memory_fault_trapping()) {
            /*
             * Lost RAM is covered by regions without a memory slot, and
             * KVM could not emulate an access there (SSE, AVX, ...): which
             * page, it does not say.  The VM stops.
             */
            guest_memory_fault_init(&f,
                                    GUEST_MEMORY_FAULT_PATH_EMULATION_FAILURE,
                                    cpu->cpu_index);
            guest_memory_find_unbacked(&f);
            guest_memory_fault_report(&f);
            guest_memory_fault_cleanup(&f);
            return true;
        }
        /* KVM fetched the instruction: not a fetch from unbacked RAM. */
        return false;
    }
    phys = cpu_get_phys_page_attrs_debug(cpu, pc, &attrs);
    if (phys == -1) {
        return false;
    }
    guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_EMULATION_FAILURE,
                            cpu->cpu_index);
    f.access = GUEST_MEMORY_ACCESS_FETCH;
    if (!guest_memory_gpa_is_unbacked(phys, &f)) {
        return false;
    }
    set_page_range(&f, phys);
    guest_memory_fault_report(&f);
    guest_memory_fault_cleanup(&f);
    return true;
}

/* Does the guest_memfd page at @offset of @rb differ from @to_private? */
static bool attribute_differs(RAMBlock *rb, ram_addr_t offset,
                              bool to_private)
{
    RamBlockAttributes *attr = rb->attributes;
    unsigned long bit;
    bool shared;

    if (!attr || !attr->bitmap) {
        return true;
    }
    bit = offset / qemu_real_host_page_size();
    if (bit >= attr->bitmap_size) {
        return true;
    }
    shared = test_bit(bit, attr->bitmap);
    return to_private ? shared : !shared;
}

/* Remember a fault QEMU resolved, to notice it coming straight back. */
static void remember_conversion(KVMMemoryFaultVcpu *s, uint64_t gpa,
                                uint64_t size, uint64_t flags)
{
    s->has_converted = true;
    s->conv_gpa = gpa;
    s->conv_size = size;
    s->conv_flags = flags;
    s->conv_generation = qatomic_read(&conversion_generation);
    s->conv_noop = NULL;
}

void kvm_memory_fault_conversion_done(void)
{
    qatomic_inc(&conversion_generation);
}

void kvm_memory_fault_complete_exit(CPUState *cpu)
{
    struct kvm_run *run = cpu->kvm_run;
    int ret;

    kvm_cpu_synchronize_state(cpu);
    if (!kvm_check_extension(kvm_state, KVM_CAP_IMMEDIATE_EXIT)) {
        /* Without it KVM_RUN would run the guest: leave the exit be. */
        return;
    }
    qatomic_set(&run->immediate_exit, 1);
    ret = kvm_vcpu_ioctl(cpu, KVM_RUN, 0);
    qatomic_set(&run->immediate_exit, 0);
    trace_kvm_memory_fault_complete_exit(cpu->cpu_index, ret);
}

int kvm_memory_fault_exit(CPUState *cpu, struct kvm_run *run)
{
    KVMMemoryFaultVcpu *s = get_state(cpu);
    uint64_t gpa = run->memory_fault.gpa;
    uint64_t size = run->memory_fault.size;
    uint64_t flags = run->memory_fault.flags;
    bool to_private = flags & KVM_MEMORY_EXIT_FLAG_PRIVATE;
    MemoryRegionSection section;
    GuestMemoryFault f;
    const char *why = NULL;
    bool repeat;
    int ret;

    /* Only if nothing was converted since, by this vCPU or another. */
    repeat = s->has_converted && s->conv_gpa == gpa &&
             s->conv_size == size && s->conv_flags == flags &&
             s->conv_generation == qatomic_read(&conversion_generation);
    s->has_converted = false;

    guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_MEMORY_FAULT_EXIT,
                            cpu->cpu_index);
    guest_memory_fault_set_gpa(&f, gpa, size);
    f.is_private = to_private;

    section = memory_region_find(get_system_memory(), gpa, size ? size : 1);
    if (flags & ~KVM_MEMORY_EXIT_FLAG_PRIVATE) {
        why = "KVM_EXIT_MEMORY_FAULT with flags QEMU does not know";
    } else if (repeat) {
        why = s->conv_noop ? s->conv_noop :
              "the same fault came back right after QEMU converted the "
              "range";
    } else if (!section.mr) {
        if (!to_private) {
            /*
             * Guests (TDX OVMF) ask for MMIO ranges to be shared: nothing
             * to do, and a repeat is caught above.
             */
            remember_conversion(s, gpa, size, flags);
            return 0;
        }
        why = "no RAM at this guest physical address";
    } else if (!memory_region_has_guest_memfd(section.mr)) {
        if (!to_private && !memory_region_is_ram(section.mr) &&
            !memory_region_is_ram_device(section.mr) &&
            !memory_region_is_rom(section.mr) &&
            !memory_region_is_romd(section.mr)) {
            /* MMIO asked to be shared, as above. */
            memory_region_unref(section.mr);
            remember_conversion(s, gpa, size, flags);
            return 0;
        }
        why = "the memory is not backed by guest_memfd, so it cannot be "
              "converted between private and shared";
    } else if (!attribute_differs(section.mr->ram_block,
                                  section.offset_within_region, to_private)) {
        /*
         * Another vCPU may have converted the range after KVM produced
         * this exit: enter the guest again.  The same fault straight
         * back, with no conversion in between, is a real one.
         */
        memory_region_unref(section.mr);
        remember_conversion(s, gpa, size, flags);
        s->conv_noop = to_private ? "the memory is already private" :
                                    "the memory is already shared";
        trace_kvm_memory_fault_already(gpa, size, to_private);
        return 0;
    }
    if (section.mr) {
        memory_region_unref(section.mr);
    }

    if (!why) {
        trace_kvm_memory_fault_convert(gpa, size, to_private);
        ret = kvm_convert_memory(gpa, size, to_private);
        if (ret == 0) {
            remember_conversion(s, gpa, size, flags);
            return 0;
        }
        why = "converting the range failed";
    }

    guest_memory_fault_probe(&f);
    if (f.cause == GUEST_MEMORY_FAULT_CAUSE_UNKNOWN ||
        f.cause == GUEST_MEMORY_FAULT_CAUSE_NO_MEMSLOT) {
        if (f.block) {
            f.cause = GUEST_MEMORY_FAULT_CAUSE_PRIVATE_SHARED_MISMATCH;
        }
        g_free(f.cause_detail);
        f.cause_detail = g_strdup(why);
    }
    /* KVM left the guest before the access: it is made again. */
    if (guest_memory_fault_report_vcpu(&f, cpu)) {
        /* Enter again with the error: kvm_arch_process_async_events(). */
        guest_memory_fault_cleanup(&f);
        return EXCP_INTERRUPT;
    }
    guest_memory_fault_cleanup(&f);
    return -1;
}
