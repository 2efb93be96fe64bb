/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A test-only LD_PRELOAD layer between QEMU and the real /dev/kvm that
 * models outcomes of KVM_RUN which the documented kernel contract allows
 * but this project's host kernel does not produce.  Everything passes
 * through to the real KVM, except the memslots of the VM: the layer
 * builds them itself out of real memslots, leaving the page named by
 * QKM_CONTRACT_GPA without one, so that a guest access to it exits to
 * userspace with KVM_EXIT_MMIO on every kernel (VMX, SVM, shadow or
 * nested paging: a GPA without a memslot is emulated MMIO).  That exit
 * is rewritten, as QKM_KVM_CONTRACT says:
 *
 *   efault          KVM_RUN fails with bare EFAULT and run->exit_reason
 *                   stale, as on VMX/SVM hosts when a RAM page cannot be
 *                   faulted in (docs/devel/kvm-kernel-contract.rst
 *                   section 4).
 *   sigbus          SIGBUS (BUS_ADRERR, si_addr = QEMU's address of the
 *                   page) reaches the vCPU thread during KVM_RUN, which
 *                   then fails with EINTR ("other kernels may deliver
 *                   SIGBUS during KVM_RUN", section 6).
 *   memory-fault    KVM_RUN fails with EFAULT and KVM_EXIT_MEMORY_FAULT
 *   memory-fault-private
 *                   { flags (KVM_MEMORY_EXIT_FLAG_PRIVATE or 0), gpa of
 *                   the page, size 4096 } (section 4).
 *   emulation-failure-repeat
 *                   KVM_EXIT_INTERNAL_ERROR, emulation failure without
 *                   instruction bytes (section 4), that the kernel keeps
 *                   reporting on every KVM_RUN without entering the
 *                   guest: an instruction KVM can never emulate.
 *   memory-fault-repeat
 *                   a shared KVM_EXIT_MEMORY_FAULT that the kernel keeps
 *                   reporting on every KVM_RUN, without entering the
 *                   guest: the "convert to shared, fault again" loop of
 *                   upstream QEMU 10.2.2, which answers a shared
 *                   KVM_EXIT_MEMORY_FAULT on RAM that is not in a
 *                   guest_memfd with kvm_convert_memory() and KVM_RUN
 *                   again.  After
 *                   REPEAT_LIMIT repeats the layer gives up and passes
 *                   through, so a QEMU that loops shows up as a test
 *                   failure, not as a hang.
 *
 * QKM_KVM_MODEL=sw-protected-vm adds a model of KVM_X86_SW_PROTECTED_VM
 * (Linux 6.18: virt/kvm/kvm_main.c, virt/kvm/guest_memfd.c,
 * arch/x86/kvm/x86.c, arch/x86/kvm/mmu/mmu.c) on top of a default VM,
 * for a kernel that lacks it (docs/devel/kvm-kernel-contract.rst section 3);
 * it turns itself off when the real KVM has the VM type:
 *
 *   - KVM_CAP_VM_TYPES on /dev/kvm has BIT(KVM_X86_SW_PROTECTED_VM);
 *     KVM_CREATE_VM of that type creates a default VM underneath;
 *   - KVM_CAP_MEMORY_ATTRIBUTES is KVM_MEMORY_ATTRIBUTE_PRIVATE
 *     (kvm_supported_mem_attributes() for a VM with private memory), and
 *     KVM_CAP_GUEST_MEMFD_FLAGS is GUEST_MEMFD_FLAG_MMAP only
 *     (kvm_arch_supports_gmem_init_shared() is false for such a VM);
 *   - KVM_SET_MEMORY_ATTRIBUTES checks its argument as
 *     kvm_vm_ioctl_set_mem_attributes() does (flags 0, known attributes,
 *     page-aligned non-empty range without overflow: else EINVAL) and
 *     records the private ranges;
 *   - KVM_SET_USER_MEMORY_REGION2 refuses KVM_MEM_LOG_DIRTY_PAGES and
 *     KVM_MEM_READONLY together with KVM_MEM_GUEST_MEMFD (EINVAL,
 *     check_memory_region_flags());
 *   - the attributes are the source of truth for the access type of a
 *     software-protected VM (kvm_mmu_page_fault() sets
 *     PFERR_PRIVATE_ACCESS from kvm_mem_is_private()): a private page of
 *     a guest_memfd slot is the guest_memfd's page, a shared page the
 *     userspace_addr page.  The layer builds each of QEMU's memslots out
 *     of real memslots accordingly: private runs point at its own
 *     mapping of the guest_memfd (created MMAP|INIT_SHARED underneath,
 *     QEMU never sees that; a memfd stands in where the kernel cannot
 *     make such a guest_memfd, before 6.18), shared runs at QEMU's
 *     memory.  KVM_CAP_GUEST_MEMFD and KVM_CAP_USER_MEMORY2 are 1 on
 *     such a VM, whatever the kernel (6.1 has neither): the model
 *     provides both;
 *   - a private page with no guest_memfd behind it (no memslot, or a
 *     memslot without KVM_MEM_GUEST_MEMFD) is left unmapped; the access
 *     then exits (KVM_EXIT_MMIO: no memslot) and the layer turns it into
 *     what kvm_mmu_prepare_memory_fault_exit() produces: KVM_RUN fails
 *     with EFAULT, KVM_EXIT_MEMORY_FAULT { KVM_MEMORY_EXIT_FLAG_PRIVATE,
 *     gpa of the page, size 4096 }.  With QKM_KVM_CONTRACT
 *     memory-fault-private, the QKM_CONTRACT_GPA page is left unmapped
 *     while private as well: a guest_memfd page the kernel cannot get
 *     (kvm_gmem_get_pfn() failing), reported the same way.  With
 *     memory-fault-private-once that happens once: the page is then
 *     mapped from the guest_memfd, a private fault for a page that is
 *     private already (a vCPU whose exit raced another's conversion).
 *
 *   - KVM_HC_MAP_GPA_RANGE: a KVM without the VM type need not pass the
 *     hypercall to userspace (a PVM KVM never exits on VMCALL), so the
 *     layer marks CPUID 0x40000001 EDX bit 30 (a test-only bit,
 *     tests/qtest/guest/guest-abi.h) and the test guest traps with an
 *     OUTL to port 0xe4 instead.  The layer answers as
 *     __kvm_emulate_hypercall() does: -KVM_EINVAL for an unaligned GPA,
 *     zero pages or an overflow, -KVM_ENOSYS for other hypercalls,
 *     otherwise KVM_EXIT_HYPERCALL { nr 12, args gpa/npages/attributes,
 *     ret 0, flags KVM_EXIT_HYPERCALL_LONG_MODE in 64-bit mode }, and on
 *     the next KVM_RUN puts hypercall.ret into RAX
 *     (complete_hypercall_exit()).
 *
 * QKM_KVM_HIDE_CAP=<n> makes KVM_CHECK_EXTENSION(n) answer 0, as a
 * kernel without that capability does.
 *
 * Punching holes in guest_memfd is the real kernel's.  Every modelled call
 * is logged to QKM_CONTRACT_LOG when set.
 *
 * Never used where the real capability exists: the tests load it only to
 * reach these paths on a host that lacks them, and say so.
 *
 * Its own tests, calling the ioctls without QEMU: kvm-contract-test.c;
 * the behaviours that need a running guest are tested through QEMU by
 * memory-fault-test and private-memory-test.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kvm.h>
#include "contract-common.h"

#define MAX_SLOTS       64
#define MAX_VCPUS       64
#define REPEAT_LIMIT    1000
#define PAGE_MASK_4K    (~(uint64_t)0xfff)

typedef struct Slot {
    bool used;
    uint32_t flags;
    uint64_t gpa, size, hva;
} Slot;

typedef struct Vcpu {
    int fd;
    struct kvm_run *run;
    uint32_t last_exit_reason;
    unsigned repeats;
    bool hypercall_pending;     /* KVM_EXIT_HYPERCALL given to QEMU */
    bool restart_pending;       /* an MMIO exit turned into a fault */
    struct kvm_regs restart_regs;
} Vcpu;

enum Mode {
    MODE_OFF,
    MODE_EFAULT,
    MODE_SIGBUS,
    MODE_MEMORY_FAULT,
    MODE_MEMORY_FAULT_PRIVATE,
    MODE_MEMORY_FAULT_PRIVATE_ONCE,
    MODE_MEMORY_FAULT_REPEAT,
    MODE_EMULATION_FAILURE_REPEAT,
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Slot slots[MAX_SLOTS];
static Vcpu vcpus[MAX_VCPUS];
static enum Mode mode = MODE_OFF;
static uint64_t trigger_page;  /* hex, with or without 0x */
static int (*real_ioctl)(int, unsigned long, ...);

/* --- the software-protected VM model --- */

#define MODEL_MAX_GPA       (64ULL << 30)
#define MODEL_MAX_QSLOTS    128
#define MODEL_MAX_GMEM      64
#define MODEL_RUNS_PER_SLOT 64
#define MODEL_REAL_SLOT_BASE 1024

/* The trapped hypercall (see the header and guest-abi.h). */
#define CONTRACT_HC_PORT        0xe4
#define CONTRACT_HC_CPUID_BIT   30
#define HC_MAP_GPA_RANGE        12
#define HC_ENOSYS               1000
#define HC_EINVAL               22


typedef struct QSlot {
    bool used;
    uint32_t slot;              /* QEMU's: as_id << 16 | id */
    uint32_t flags;
    uint64_t gpa, size, hva;
    int gmem_fd;
    uint64_t gmem_offset;
    unsigned nreal;             /* real memslots currently built */
    uint64_t real_gpa[MODEL_RUNS_PER_SLOT];
    uint64_t real_size[MODEL_RUNS_PER_SLOT];
} QSlot;

typedef struct Gmem {
    int fd;
    uint64_t size;
    uint8_t *map;               /* the layer's own mapping */
} Gmem;

static bool model_wanted;
static bool model_off;          /* the real KVM has the VM type */
static int model_vm_fd = -1;
/*
 * The VM whose memslots the layer builds out of real memslots itself
 * (QSlot): the modelled software-protected VM, or, with a
 * QKM_KVM_CONTRACT mode, any VM, so that the QKM_CONTRACT_GPA page has
 * no real memslot and every kernel exits to userspace with KVM_EXIT_MMIO
 * at it (an access to a GPA without a memslot).
 */
static int slots_vm_fd = -1;
static QSlot qslots[MODEL_MAX_QSLOTS];
static Gmem gmems[MODEL_MAX_GMEM];
static uint8_t *private_bits;   /* one bit per 4 KiB page below MAX_GPA */
static FILE *model_log;
static long hidden_cap = -1;
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

static void __attribute__((constructor)) contract_init(void)
{
    const char *m = getenv("QKM_KVM_CONTRACT");
    const char *g = getenv("QKM_CONTRACT_GPA");

    const char *model = getenv("QKM_KVM_MODEL");
    const char *log = getenv("QKM_CONTRACT_LOG");
    const char *hide = getenv("QKM_KVM_HIDE_CAP");

    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
    if (model) {
        if (strcmp(model, "sw-protected-vm")) {
            fprintf(stderr, "kvm-contract: unknown QKM_KVM_MODEL=%s\n", model);
            abort();
        }
        model_wanted = true;
        private_bits = calloc(MODEL_MAX_GPA >> 15, 1);
    }
    if (hide && sscanf(hide, "%li", &hidden_cap) != 1) {
        fprintf(stderr, "kvm-contract: bad QKM_KVM_HIDE_CAP=%s\n", hide);
        abort();
    }
    if (log) {
        model_log = fopen(log, "a");
        if (model_log) {
            setvbuf(model_log, NULL, _IOLBF, 0);
        }
    }
    if (!m || !g) {
        return;
    }
    if (sscanf(g, "%" SCNx64, &trigger_page) != 1) {
        fprintf(stderr, "kvm-contract: bad QKM_CONTRACT_GPA=%s\n", g);
        abort();
    }
    trigger_page &= PAGE_MASK_4K;
    if (!strcmp(m, "efault")) {
        mode = MODE_EFAULT;
    } else if (!strcmp(m, "sigbus")) {
        mode = MODE_SIGBUS;
    } else if (!strcmp(m, "memory-fault")) {
        mode = MODE_MEMORY_FAULT;
    } else if (!strcmp(m, "memory-fault-private")) {
        mode = MODE_MEMORY_FAULT_PRIVATE;
    } else if (!strcmp(m, "memory-fault-private-once")) {
        mode = MODE_MEMORY_FAULT_PRIVATE_ONCE;
    } else if (!strcmp(m, "memory-fault-repeat")) {
        mode = MODE_MEMORY_FAULT_REPEAT;
    } else if (!strcmp(m, "emulation-failure-repeat")) {
        mode = MODE_EMULATION_FAILURE_REPEAT;
    } else {
        fprintf(stderr, "kvm-contract: unknown QKM_KVM_CONTRACT=%s\n", m);
        abort();
    }
}

static bool is_vcpu_fd(int fd)
{
    static const char prefix[] = "anon_inode:kvm-vcpu:";

    return contract_fd_target_matches(fd, prefix, strlen(prefix));
}

static Vcpu *find_vcpu(int fd)
{
    for (int i = 0; i < MAX_VCPUS; i++) {
        if (vcpus[i].run && vcpus[i].fd == fd) {
            return &vcpus[i];
        }
    }
    return NULL;
}

/* QEMU maps each vCPU's kvm_run at offset 0 of the vCPU fd. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = real_mmap(addr, len, prot, flags, fd, off);

    if (p != MAP_FAILED && fd >= 0 && off == 0 && is_vcpu_fd(fd)) {
        pthread_mutex_lock(&lock);
        for (int i = 0; i < MAX_VCPUS; i++) {
            if (!vcpus[i].run) {
                vcpus[i].fd = fd;
                vcpus[i].run = p;
                break;
            }
        }
        pthread_mutex_unlock(&lock);
    }
    return p;
}

static void record_slot(uint32_t slot, uint32_t flags, uint64_t gpa,
                        uint64_t size, uint64_t hva)
{
    uint32_t id = slot & 0xffff;

    if (id >= MAX_SLOTS) {
        return;
    }
    pthread_mutex_lock(&lock);
    slots[id].used = size != 0;
    slots[id].flags = flags;
    slots[id].gpa = gpa;
    slots[id].size = size;
    slots[id].hva = hva;
    pthread_mutex_unlock(&lock);
}

/* QEMU's address of @gpa, if a writable memslot covers it. */
static bool gpa_to_hva(uint64_t gpa, uint64_t *hva)
{
    bool found = false;

    pthread_mutex_lock(&lock);
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (slots[i].used && !(slots[i].flags & KVM_MEM_READONLY) &&
            gpa >= slots[i].gpa && gpa - slots[i].gpa < slots[i].size) {
            *hva = slots[i].hva + (gpa - slots[i].gpa);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return found;
}

static void set_memory_fault(struct kvm_run *run, uint64_t flags)
{
    run->exit_reason = KVM_EXIT_MEMORY_FAULT;
    run->memory_fault.flags = flags;
    run->memory_fault.gpa = trigger_page;
    run->memory_fault.size = 0x1000;
}

static void set_emulation_failure(struct kvm_run *run)
{
    run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    run->internal.ndata = 0;
}

static bool once_done;         /* memory-fault-private-once injected */

static bool page_private(uint64_t gpa)
{
    uint64_t pfn = gpa >> 12;

    return private_bits && gpa < MODEL_MAX_GPA &&
           (private_bits[pfn >> 3] & (1 << (pfn & 7)));
}

static void __attribute__((format(printf, 1, 2)))
model_note(const char *fmt, ...)
{
    va_list ap;

    if (!model_log) {
        return;
    }
    va_start(ap, fmt);
    vfprintf(model_log, fmt, ap);
    va_end(ap);
    fputc('\n', model_log);
}

/*
 * An exit at a private page the model left unmapped: what
 * kvm_mmu_prepare_memory_fault_exit() reports for a private access
 * without a guest_memfd page behind it.
 */
static bool model_exit_is_private_fault(struct kvm_run *run)
{
    uint64_t page = run->mmio.phys_addr & PAGE_MASK_4K;

    if (model_vm_fd < 0 || !page_private(page)) {
        return false;
    }
    run->exit_reason = KVM_EXIT_MEMORY_FAULT;
    run->memory_fault.flags = KVM_MEMORY_EXIT_FLAG_PRIVATE;
    run->memory_fault.gpa = page;
    run->memory_fault.size = 0x1000;
    model_note("memory-fault private gpa 0x%" PRIx64, page);
    return true;
}

static Gmem *find_gmem(int fd)
{
    for (int i = 0; i < MODEL_MAX_GMEM; i++) {
        if (gmems[i].map && gmems[i].fd == fd) {
            return &gmems[i];
        }
    }
    return NULL;
}

static uint32_t real_slot_id(QSlot *q, unsigned k)
{
    return (q->slot & 0xffff0000) |
           (MODEL_REAL_SLOT_BASE + (q - qslots) * MODEL_RUNS_PER_SLOT + k);
}

/* Does the real VM map this page of @q, and from where? */
static int page_kind(QSlot *q, uint64_t gpa)
{
    bool hole_when_private = gpa == trigger_page &&
                             (mode == MODE_MEMORY_FAULT ||
                              mode == MODE_MEMORY_FAULT_PRIVATE ||
                              (mode == MODE_MEMORY_FAULT_PRIVATE_ONCE &&
                               !once_done));

    if (slots_vm_fd != model_vm_fd) {
        /* A QKM_KVM_CONTRACT mode on an ordinary VM: carve the page out. */
        return gpa == trigger_page ? 0 : 1;
    }
    if (!page_private(gpa)) {
        return 1;                               /* QEMU's shared memory */
    }
    if (!(q->flags & KVM_MEM_GUEST_MEMFD) || !find_gmem(q->gmem_fd) ||
        hole_when_private) {
        return 0;                               /* unmapped */
    }
    return 2;                                   /* the guest_memfd page */
}

/* Rebuild the real memslots behind QEMU's slot @q.  Called locked. */
static int realize_qslot(QSlot *q)
{
    /*
     * The real memslots never bind a guest_memfd (the layer maps it
     * itself), so the original ioctl serves every kernel, 6.1 included.
     */
    struct kvm_userspace_memory_region r;
    unsigned n = 0;
    uint64_t off, start;
    int kind, ret;

    for (unsigned k = 0; k < q->nreal; k++) {
        memset(&r, 0, sizeof(r));
        r.slot = real_slot_id(q, k);
        r.guest_phys_addr = q->real_gpa[k];
        ret = real_ioctl(slots_vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
        if (ret < 0) {
            return ret;
        }
    }
    q->nreal = 0;
    if (!q->used) {
        return 0;
    }
    for (off = 0; off < q->size; ) {
        kind = page_kind(q, q->gpa + off);
        start = off;
        do {
            off += 0x1000;
        } while (off < q->size && page_kind(q, q->gpa + off) == kind);
        if (kind == 0) {
            continue;
        }
        if (n == MODEL_RUNS_PER_SLOT) {
            fprintf(stderr, "kvm-contract: memslot 0x%x split too finely\n",
                    q->slot);
            abort();
        }
        memset(&r, 0, sizeof(r));
        r.slot = real_slot_id(q, n);
        r.flags = q->flags & ~KVM_MEM_GUEST_MEMFD;
        r.guest_phys_addr = q->gpa + start;
        r.memory_size = off - start;
        r.userspace_addr = kind == 1 ? q->hva + start :
            (uint64_t)(uintptr_t)find_gmem(q->gmem_fd)->map +
            q->gmem_offset + start;
        ret = real_ioctl(slots_vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
        if (ret < 0) {
            return ret;
        }
        q->real_gpa[n] = r.guest_phys_addr;
        q->real_size[n] = r.memory_size;
        n++;
        q->nreal = n;
    }
    return 0;
}

static int model_set_region(struct kvm_userspace_memory_region2 *r)
{
    QSlot *q = NULL, *free_q = NULL;
    Gmem *g = NULL;
    int ret;

    /* check_memory_region_flags(): no dirty log or RO on guest_memfd */
    if ((r->flags & KVM_MEM_GUEST_MEMFD) &&
        (r->flags & (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY))) {
        errno = EINVAL;
        return -1;
    }
    if (r->flags & KVM_MEM_GUEST_MEMFD) {
        g = find_gmem(r->guest_memfd);
    }
    if ((r->flags & KVM_MEM_GUEST_MEMFD) && r->memory_size &&
        (!g || r->guest_memfd_offset + r->memory_size > g->size)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MODEL_MAX_QSLOTS; i++) {
        if (qslots[i].used && qslots[i].slot == r->slot) {
            q = &qslots[i];
        } else if (!qslots[i].used && !qslots[i].nreal && !free_q) {
            free_q = &qslots[i];
        }
    }
    if (!q) {
        q = free_q;
    }
    if (!q) {
        pthread_mutex_unlock(&lock);
        errno = ENOSPC;
        return -1;
    }
    q->used = r->memory_size != 0;
    q->slot = r->slot;
    q->flags = r->flags;
    q->gpa = r->guest_phys_addr;
    q->size = r->memory_size;
    q->hva = r->userspace_addr;
    q->gmem_fd = (r->flags & KVM_MEM_GUEST_MEMFD) ? (int)r->guest_memfd : -1;
    q->gmem_offset = r->guest_memfd_offset;
    ret = realize_qslot(q);
    pthread_mutex_unlock(&lock);
    if (ret == 0) {
        record_slot(r->slot, r->flags, r->guest_phys_addr, r->memory_size,
                    r->userspace_addr);
    }
    return ret;
}

static int model_set_attributes(struct kvm_memory_attributes *a)
{
    int ret = 0;

    /* kvm_vm_ioctl_set_mem_attributes() */
    if (!contract_attributes_valid(a->flags, a->attributes, a->address,
                                   a->size)) {
        model_note("set-memory-attributes gpa 0x%llx size 0x%llx "
                   "attributes 0x%llx: EINVAL", a->address, a->size,
                   a->attributes);
        errno = EINVAL;
        return -1;
    }
    if (a->address + a->size > MODEL_MAX_GPA) {
        errno = ENOMEM;
        return -1;
    }
    pthread_mutex_lock(&lock);
    for (uint64_t pfn = a->address >> 12;
         pfn < (a->address + a->size) >> 12; pfn++) {
        if (a->attributes) {
            private_bits[pfn >> 3] |= 1 << (pfn & 7);
        } else {
            private_bits[pfn >> 3] &= ~(1 << (pfn & 7));
        }
    }
    for (int i = 0; i < MODEL_MAX_QSLOTS && !ret; i++) {
        QSlot *q = &qslots[i];

        if (q->used && q->gpa < a->address + a->size &&
            a->address < q->gpa + q->size) {
            ret = realize_qslot(q);
        }
    }
    pthread_mutex_unlock(&lock);
    model_note("set-memory-attributes gpa 0x%llx size 0x%llx "
               "attributes 0x%llx", a->address, a->size, a->attributes);
    return ret;
}

static int model_create_gmem(struct kvm_create_guest_memfd *g)
{
    struct kvm_create_guest_memfd real = *g;
    void *map;
    int fd;

    /* No INIT_SHARED for a VM with private memory (see the header). */
    if (g->flags & ~(uint64_t)GUEST_MEMFD_FLAG_MMAP) {
        errno = EINVAL;
        return -1;
    }
    real.flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
    fd = real_ioctl(model_vm_fd, KVM_CREATE_GUEST_MEMFD, &real);
    if (fd < 0) {
        /*
         * A kernel without a mappable guest_memfd (before 6.18) or
         * without guest_memfd (before 6.8): a memfd holds the model's
         * private pages instead.  QEMU only maps it through the model's
         * memslots and punches holes in it, which a memfd does alike.
         */
        fd = contract_create_gmem_standin(g->size);
        if (fd < 0) {
            return fd;
        }
        model_note("create-guest-memfd: the kernel has no mappable "
                   "guest_memfd, a memfd stands in");
    }
    map = real_mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int err = errno;

        close(fd);
        errno = err;
        return -1;
    }
    pthread_mutex_lock(&lock);
    for (int i = 0; i < MODEL_MAX_GMEM; i++) {
        if (!gmems[i].map) {
            gmems[i].fd = fd;
            gmems[i].size = g->size;
            gmems[i].map = map;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    model_note("create-guest-memfd size 0x%llx flags 0x%llx", g->size,
               g->flags);
    return fd;
}

/* Dirty logs of a QEMU slot built from exactly one real slot. */
static bool model_translate_dirty_slot(uint32_t *slot)
{
    bool ok = false;

    pthread_mutex_lock(&lock);
    for (int i = 0; i < MODEL_MAX_QSLOTS; i++) {
        QSlot *q = &qslots[i];

        if (q->used && q->slot == *slot && q->nreal == 1 &&
            q->real_size[0] == q->size) {
            *slot = real_slot_id(q, 0);
            ok = true;
        }
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

static bool is_dev_kvm(int fd)
{
    static const char name[] = "/dev/kvm";

    return contract_fd_target_matches(fd, name, sizeof(name));
}

/* A dirty-log ioctl @d of QEMU's slot *@slot, passed on for its real one. */
static int dirty_log_ioctl(int fd, unsigned long req, void *d,
                           uint32_t *slot)
{
    if (!model_translate_dirty_slot(slot)) {
        errno = ENOENT;
        return -1;
    }
    return real_ioctl(fd, req, d);
}

/* QEMU's memslot ioctls on the VM whose memslots the layer builds. */
static bool slots_ioctl(int fd, unsigned long req, void *arg, int *ret)
{
    if (fd != slots_vm_fd || slots_vm_fd < 0) {
        return false;
    }
    switch (req) {
    case KVM_SET_USER_MEMORY_REGION: {
        struct kvm_userspace_memory_region *r1 = arg;
        struct kvm_userspace_memory_region2 r2 = {
            .slot = r1->slot, .flags = r1->flags,
            .guest_phys_addr = r1->guest_phys_addr,
            .memory_size = r1->memory_size,
            .userspace_addr = r1->userspace_addr,
        };
        *ret = model_set_region(&r2);
        return true;
    }
    case KVM_SET_USER_MEMORY_REGION2:
        *ret = model_set_region(arg);
        return true;
    case KVM_GET_DIRTY_LOG: {
        struct kvm_dirty_log d = *(struct kvm_dirty_log *)arg;

        *ret = dirty_log_ioctl(fd, req, &d, &d.slot);
        return true;
    }
    case KVM_CLEAR_DIRTY_LOG: {
        struct kvm_clear_dirty_log d = *(struct kvm_clear_dirty_log *)arg;

        *ret = dirty_log_ioctl(fd, req, &d, &d.slot);
        return true;
    }
    default:
        return false;
    }
}

/*
 * The model's share of ioctl(): returns true with *ret set when it
 * answered the call itself.
 */
static bool model_ioctl(int fd, unsigned long req, void *arg, int *ret)
{
    if (req == KVM_CHECK_EXTENSION && hidden_cap >= 0 &&
        (long)arg == hidden_cap) {
        *ret = 0;
        return true;
    }
    if (slots_ioctl(fd, req, arg, ret)) {
        return true;
    }
    if (!model_wanted && mode != MODE_OFF && req == KVM_CREATE_VM &&
        is_dev_kvm(fd)) {
        *ret = real_ioctl(fd, req, arg);
        if (*ret >= 0 && slots_vm_fd < 0) {
            slots_vm_fd = *ret;
            model_note("create-vm type %ld, fd %d: page 0x%" PRIx64
                       " without a memslot", (long)arg, *ret, trigger_page);
        }
        return true;
    }
    if (!model_wanted || model_off) {
        return false;
    }
    if (req == KVM_CHECK_EXTENSION && is_dev_kvm(fd)) {
        long cap = (long)arg;

        if (cap == KVM_CAP_VM_TYPES) {
            *ret = real_ioctl(fd, req, arg);
            if (*ret >= 0 && (*ret & (1 << KVM_X86_SW_PROTECTED_VM))) {
                model_off = true;
                model_note("model off: the real KVM has SW_PROTECTED_VM");
                return true;
            }
            /* Before 6.8 there is no such capability: the default VM. */
            *ret = (*ret > 0 ? *ret : 1 << KVM_X86_DEFAULT_VM) |
                   1 << KVM_X86_SW_PROTECTED_VM;
            return true;
        }
        if (cap == KVM_CAP_MEMORY_ATTRIBUTES) {
            *ret = KVM_MEMORY_ATTRIBUTE_PRIVATE;
            return true;
        }
        return false;
    }
    if (req == KVM_CREATE_VM && (long)arg == KVM_X86_SW_PROTECTED_VM &&
        is_dev_kvm(fd)) {
        *ret = real_ioctl(fd, req, (void *)(long)KVM_X86_DEFAULT_VM);
        if (*ret >= 0) {
            model_vm_fd = *ret;
            slots_vm_fd = *ret;
            model_note("create-vm type %d as a default VM, fd %d",
                       KVM_X86_SW_PROTECTED_VM, *ret);
        }
        return true;
    }
    if (req == KVM_SET_CPUID2 && model_vm_fd >= 0) {
        struct kvm_cpuid2 *c = arg;

        for (uint32_t i = 0; i < c->nent; i++) {
            if (c->entries[i].function == 0x40000001) {
                c->entries[i].edx |= 1u << CONTRACT_HC_CPUID_BIT;
            }
        }
        return false;
    }
    if (fd != model_vm_fd || model_vm_fd < 0) {
        return false;
    }
    switch (req) {
    case KVM_CHECK_EXTENSION:
        if ((long)arg == KVM_CAP_MEMORY_ATTRIBUTES) {
            *ret = KVM_MEMORY_ATTRIBUTE_PRIVATE;
            return true;
        }
        if ((long)arg == KVM_CAP_GUEST_MEMFD_FLAGS) {
            *ret = GUEST_MEMFD_FLAG_MMAP;
            return true;
        }
        /* The model provides both, whatever the kernel has. */
        if ((long)arg == KVM_CAP_GUEST_MEMFD ||
            (long)arg == KVM_CAP_USER_MEMORY2) {
            *ret = 1;
            return true;
        }
        /*
         * The model rebuilds real memslots at each conversion, which a
         * real VM with private memory does not; Linux 6.12's
         * KVM_PRE_FAULT_MEMORY right after that spun in the kernel for
         * good (seen in the KVM box).  QEMU's pre-fault after a
         * conversion is opportunistic: hide the capability.
         */
        if ((long)arg == KVM_CAP_PRE_FAULT_MEMORY) {
            *ret = 0;
            return true;
        }
        return false;
    case KVM_SET_MEMORY_ATTRIBUTES:
        *ret = model_set_attributes(arg);
        return true;
    case KVM_CREATE_GUEST_MEMFD:
        *ret = model_create_gmem(arg);
        return true;
    default:
        return false;
    }
}

/* The guest's trapped hypercall, as the kernel would present it. */
static bool model_hypercall_exit(Vcpu *v, int fd)
{
    struct kvm_run *run = v->run;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    uint64_t gpa, npages, attrs;
    bool lm;

    if (model_vm_fd < 0 || run->exit_reason != KVM_EXIT_IO ||
        run->io.port != CONTRACT_HC_PORT ||
        run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 ||
        real_ioctl(fd, KVM_GET_REGS, &regs) < 0 ||
        real_ioctl(fd, KVM_GET_SREGS, &sregs) < 0) {
        return false;
    }
    lm = (sregs.efer & (1 << 10)) && sregs.cs.l;
    if (!lm) {
        regs.rax &= 0xffffffff;
        regs.rbx &= 0xffffffff;
        regs.rcx &= 0xffffffff;
        regs.rdx &= 0xffffffff;
    }
    gpa = regs.rbx;
    npages = regs.rcx;
    attrs = regs.rdx;
    if (regs.rax != HC_MAP_GPA_RANGE ||
        (gpa & 0xfff) || !npages || (gpa >> 12) + npages <= (gpa >> 12)) {
        regs.rax = regs.rax != HC_MAP_GPA_RANGE ? -HC_ENOSYS : -HC_EINVAL;
        real_ioctl(fd, KVM_SET_REGS, &regs);
        model_note("hypercall nr 0x%llx gpa 0x%" PRIx64 " npages 0x%" PRIx64
                   ": answered %lld in the kernel", regs.rax, gpa, npages,
                   (long long)regs.rax);
        run->exit_reason = KVM_EXIT_INTR;     /* re-entered by the caller */
        return true;
    }
    run->exit_reason = KVM_EXIT_HYPERCALL;
    memset(&run->hypercall, 0, sizeof(run->hypercall));
    run->hypercall.nr = HC_MAP_GPA_RANGE;
    run->hypercall.args[0] = gpa;
    run->hypercall.args[1] = npages;
    run->hypercall.args[2] = attrs;
    run->hypercall.flags = lm ? KVM_EXIT_HYPERCALL_LONG_MODE : 0;
    run->hypercall.ret = 0;
    v->hypercall_pending = true;
    model_note("hypercall map-gpa-range gpa 0x%" PRIx64 " npages 0x%" PRIx64
               " attributes 0x%" PRIx64, gpa, npages, attrs);
    return true;
}

/* complete_hypercall_exit(): the result goes to RAX. */
static void model_hypercall_complete(Vcpu *v, int fd)
{
    struct kvm_regs regs;

    v->hypercall_pending = false;
    if (real_ioctl(fd, KVM_GET_REGS, &regs) == 0) {
        regs.rax = v->run->hypercall.ret;
        real_ioctl(fd, KVM_SET_REGS, &regs);
    }
}

/*
 * memory-fault-private-once: the fault is given; from now on the page is
 * the guest_memfd's, as if another vCPU's conversion had raced the exit.
 */
static void model_map_trigger_page(void)
{
    pthread_mutex_lock(&lock);
    once_done = true;
    for (int i = 0; i < MODEL_MAX_QSLOTS; i++) {
        QSlot *q = &qslots[i];

        if (q->used && trigger_page >= q->gpa &&
            trigger_page - q->gpa < q->size && realize_qslot(q) < 0) {
            fprintf(stderr, "kvm-contract: cannot map 0x%" PRIx64 "\n",
                    trigger_page);
            abort();
        }
    }
    pthread_mutex_unlock(&lock);
}

static int rewrite_run(Vcpu *v, int fd, unsigned long req)
{
    struct kvm_run *run = v->run;
    uint64_t hva;
    siginfo_t si;
    int ret;

    if (v->hypercall_pending) {
        model_hypercall_complete(v, fd);
    }
    if (v->restart_pending) {
        /*
         * The kernel would re-execute the faulting access: let it finish
         * the MMIO it started (immediate_exit), then rewind.
         */
        v->restart_pending = false;
        run->immediate_exit = 1;
        real_ioctl(fd, req, 0);
        run->immediate_exit = 0;
        real_ioctl(fd, KVM_SET_REGS, &v->restart_regs);
    }

    if (mode == MODE_MEMORY_FAULT_REPEAT && v->repeats &&
        v->repeats < REPEAT_LIMIT) {
        /* The kernel reports the same fault again, without entering. */
        v->repeats++;
        set_memory_fault(run, 0);
        errno = EFAULT;
        return -1;
    }
    if (mode == MODE_EMULATION_FAILURE_REPEAT && v->repeats &&
        v->repeats < REPEAT_LIMIT) {
        v->repeats++;
        set_emulation_failure(run);
        return 0;
    }

    ret = real_ioctl(fd, req, 0);
    while (ret == 0 && model_hypercall_exit(v, fd)) {
        if (run->exit_reason == KVM_EXIT_HYPERCALL) {
            return 0;
        }
        ret = real_ioctl(fd, req, 0);
    }
    if (ret == 0 && run->exit_reason == KVM_EXIT_MMIO &&
        !(mode != MODE_OFF &&
          (run->mmio.phys_addr & PAGE_MASK_4K) == trigger_page) &&
        model_exit_is_private_fault(run)) {
        v->restart_pending =
            real_ioctl(fd, KVM_GET_REGS, &v->restart_regs) == 0;
        errno = EFAULT;
        return -1;
    }
    if (mode == MODE_OFF || ret < 0 || run->exit_reason != KVM_EXIT_MMIO ||
        (run->mmio.phys_addr & PAGE_MASK_4K) != trigger_page) {
        if (ret == 0) {
            v->last_exit_reason = run->exit_reason;
        }
        return ret;
    }

    switch (mode) {
    case MODE_EFAULT:
        /* memory_fault is not filled; exit_reason is stale. */
        run->exit_reason = v->last_exit_reason;
        errno = EFAULT;
        return -1;
    case MODE_SIGBUS:
        if (!gpa_to_hva(run->mmio.phys_addr, &hva)) {
            return ret;
        }
        memset(&si, 0, sizeof(si));
        si.si_signo = SIGBUS;
        si.si_code = BUS_ADRERR;
        si.si_addr = (void *)(uintptr_t)hva;
        syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGBUS, &si);
        errno = EINTR;
        return -1;
    case MODE_MEMORY_FAULT_PRIVATE_ONCE:
        if (once_done) {
            return ret;
        }
        model_map_trigger_page();
        model_note("memory-fault private gpa 0x%" PRIx64 " once, then mapped",
                   trigger_page);
        /* fall through */
    case MODE_MEMORY_FAULT:
    case MODE_MEMORY_FAULT_PRIVATE:
        v->restart_pending =
            real_ioctl(fd, KVM_GET_REGS, &v->restart_regs) == 0;
        set_memory_fault(run, mode == MODE_MEMORY_FAULT ? 0 :
                              KVM_MEMORY_EXIT_FLAG_PRIVATE);
        errno = EFAULT;
        return -1;
    case MODE_MEMORY_FAULT_REPEAT:
        v->repeats = 1;
        set_memory_fault(run, 0);
        errno = EFAULT;
        return -1;
    case MODE_EMULATION_FAILURE_REPEAT:
        v->repeats = 1;
        set_emulation_failure(run);
        return 0;
    default:
        return ret;
    }
}

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    void *arg;
    Vcpu *v;

    int ret;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);

    if (model_ioctl(fd, req, arg, &ret)) {
        return ret;
    }

    if (req == KVM_SET_USER_MEMORY_REGION) {
        struct kvm_userspace_memory_region *r = arg;
        ret = real_ioctl(fd, req, arg);

        if (ret == 0) {
            record_slot(r->slot, r->flags, r->guest_phys_addr,
                        r->memory_size, r->userspace_addr);
        }
        return ret;
    }
#ifdef KVM_SET_USER_MEMORY_REGION2
    if (req == KVM_SET_USER_MEMORY_REGION2) {
        struct kvm_userspace_memory_region2 *r = arg;
        ret = real_ioctl(fd, req, arg);

        if (ret == 0) {
            record_slot(r->slot, r->flags, r->guest_phys_addr,
                        r->memory_size, r->userspace_addr);
        }
        return ret;
    }
#endif
    if (req == KVM_RUN && (mode != MODE_OFF || model_vm_fd >= 0)) {
        pthread_mutex_lock(&lock);
        v = find_vcpu(fd);
        pthread_mutex_unlock(&lock);
        if (v) {
            return rewrite_run(v, fd, req);
        }
    }
    return real_ioctl(fd, req, arg);
}
