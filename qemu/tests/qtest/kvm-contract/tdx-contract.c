/*
 * A TDX kernel-contract layer for tests (LD_PRELOAD)
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Lets the real qemu-system-x86_64 launch a TD up to KVM_TDX_FINALIZE_VM
 * on a KVM without TDX: the TDX-only parts of the KVM ABI are answered as
 * the kernel contract documents them (docs/devel/kvm-kernel-contract.rst
 * sections 1, 2, 6 and 7; Linux 6.19 arch/x86/kvm/vmx/tdx.c), on
 * top of a default VM; everything else goes to the real KVM.  It is never
 * used on a host with KVM_X86_TDX_VM: it then turns itself off.
 *
 * Modelled:
 *   - KVM_CAP_VM_TYPES gains KVM_X86_TDX_VM; KVM_CREATE_VM(TDX) creates a
 *     default VM; KVM_CAP_MEMORY_ATTRIBUTES is PRIVATE and
 *     KVM_SET_MEMORY_ATTRIBUTES records private ranges (flags 0, known
 *     attributes, aligned non-empty range, else EINVAL);
 *   - KVM_CREATE_VCPU before KVM_TDX_INIT_VM: EIO;
 *   - KVM_GET_SUPPORTED_CPUID: 0x80000008 EAX[23:16] (GuestPhysBits) set
 *     to 48 (52 on a CPU with 52 address bits), as a TDX host reports it
 *     (a shadow-paging host like this one reports 0);
 *   - KVM_SET_TSC_KHZ on the VM and KVM_CAP_X86_APIC_BUS_CYCLES_NS:
 *     accepted where this host's KVM lacks them;
 *   - KVM_TDX_CAPABILITIES (VM): -E2BIG with the needed cpuid.nent when
 *     too small; attributes SEPT_VE_DISABLE (and PKS where the CPU has
 *     it), xfam = the CPU's XCR0|XSS bits, configurable CPUID = the real
 *     KVM_GET_SUPPORTED_CPUID without TSX and WAITPKG, 0x80000008
 *     EAX[23:16] = 0xff;
 *   - KVM_TDX_INIT_VM: flags 0, no vCPU yet, once, attributes and xfam
 *     within the supported ones, GPAW 48 or 52, else EINVAL;
 *   - KVM_TDX_GET_CPUID (vCPU): -E2BIG with the needed nent when too
 *     small (the documented contract), else the TD's CPUID;
 *   - KVM_TDX_INIT_VCPU (vCPU): after INIT_VM, once per vCPU;
 *   - KVM_TDX_INIT_MEM_REGION (vCPU): the 6.19 rules: flags only
 *     KVM_TDX_MEASURE_MEMORY_REGION; after INIT_VM and every vCPU's
 *     INIT_VCPU, before FINALIZE; gpa and source_addr page-aligned (7.0),
 *     nr_pages non-zero, no overflow; every page private and inside a
 *     guest_memfd memslot; EINVAL otherwise; an unreadable source page is
 *     EFAULT; progress is written back into the struct on success and on
 *     error; a page already added is EINVAL; a call while a vCPU has
 *     entered KVM_RUN would block forever in the kernel: the layer
 *     aborts instead, so that a test fails rather than hangs;
 *   - KVM_TDX_FINALIZE_VM: flags 0, data 0, after INIT_VM, once;
 *   - KVM_RUN on a TD: no TD can run here, so the first KVM_RUN after
 *     FINALIZE exits with KVM_SYSTEM_EVENT_SHUTDOWN and QEMU exits
 *     normally.
 *
 * QKM_TDX_IN_PLACE=1 models a kernel with in-place guest_memfd conversion
 * (docs/devel/kvm-kernel-contract.rst section 2; not released):
 * KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES is PRIVATE,
 * KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd records private offsets
 * (flags 0, known attributes, aligned non-empty range, else EINVAL), and
 * INIT_MEM_REGION with source_addr 0 takes each page from the guest_memfd
 * itself, which must then be private there (source_addr is not
 * advanced).  The capability number is the test
 * stand-in of tests/unit/gmem-inplace-uapi.h, which this layer is built
 * with; only a QEMU built with the same header asks for it.
 *
 * QKM_TDX_INJECT (comma-separated) injects what the contract allows:
 *   eintr-mid        the first call with >= 2 pages stops halfway, -EINTR
 *   ebusy=N          the first N calls fail with -EBUSY, no progress
 *   eagain-forever   every call fails with -EAGAIN, no progress
 *   eio, eperm, efault, enomem, einval
 *                    the first call adds one page, then fails so
 *   get-cpuid-nent=N the TD has N CPUID entries (KVM_TDX_GET_CPUID)
 * QKM_CONTRACT_LOG=<file> logs every TDX command and its result;
 * QKM_CONTRACT_TIMES=1 adds the monotonic start and end of each
 * INIT_MEM_REGION call, for timing population.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>
#include "contract-common.h"

#define PAGE            4096ULL
#define MAX_GPA         (1ULL << 36)
#define MAX_SLOTS       64
#define MAX_VCPUS       64
#define TDX_ATTR_SEPT_VE_DISABLE (1ULL << 28)
#define TDX_ATTR_PKS    (1ULL << 30)
#define MAX_CPUID       256

typedef struct Slot {
    bool used, gmem;
    uint64_t gpa, size;
    int gmem_fd;
    uint64_t gmem_offset;
} Slot;

/* In-place model: per-guest_memfd private pages (offset / 4 KiB). */
#define MAX_GMEMS       16
#define GMEM_MAX_SIZE   MAX_GPA
typedef struct GmemAttrs {
    int fd;
    uint8_t *private_bits;
} GmemAttrs;

static int (*real_ioctl)(int, unsigned long, ...);
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;
static bool log_times;          /* QKM_CONTRACT_TIMES: call times */
static bool off;                /* the real KVM has TDX */
static int td_fd = -1;
static int kvm_dev_fd = -1;     /* the /dev/kvm that created the TD */
static bool init_vm_done, finalized;
static int vcpu_fds[MAX_VCPUS];
static struct kvm_run *vcpu_runs[MAX_VCPUS];
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static bool vcpu_inited[MAX_VCPUS];
static int nvcpus;
static bool vcpu_ran, shut_down;
static bool in_place;           /* QKM_TDX_IN_PLACE */
static GmemAttrs gmems[MAX_GMEMS];
static Slot slots[MAX_SLOTS];
static uint8_t *private_bits, *added_bits;
static uint64_t measured_pages, added_pages;
static struct kvm_cpuid_entry2 td_cpuid[MAX_CPUID];
static unsigned td_cpuid_nent;
/* injection */
static bool inj_eintr_mid, inj_eagain_forever;
static unsigned inj_ebusy;
static int inj_errno;
static unsigned inj_cpuid_nent;

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
    va_list ap;

    if (!log_file) {
        return;
    }
    va_start(ap, fmt);
    fputs("tdx ", log_file);
    vfprintf(log_file, fmt, ap);
    fputc('\n', log_file);
    va_end(ap);
}

static void __attribute__((constructor)) tdx_contract_init(void)
{
    const char *inj = getenv("QKM_TDX_INJECT");
    const char *log = getenv("QKM_CONTRACT_LOG");

    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
    private_bits = calloc(MAX_GPA / PAGE / 8, 1);
    added_bits = calloc(MAX_GPA / PAGE / 8, 1);
    log_times = getenv("QKM_CONTRACT_TIMES") != NULL;
    in_place = getenv("QKM_TDX_IN_PLACE") != NULL;
    if (log) {
        log_file = fopen(log, "a");
        if (log_file) {
            setvbuf(log_file, NULL, _IOLBF, 0);
        }
    }
    if (inj) {
        char *copy = strdup(inj), *save = NULL;

        for (char *t = strtok_r(copy, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            if (!strcmp(t, "eintr-mid")) {
                inj_eintr_mid = true;
            } else if (!strcmp(t, "eagain-forever")) {
                inj_eagain_forever = true;
            } else if (sscanf(t, "ebusy=%u", &inj_ebusy) == 1) {
                continue;
            } else if (sscanf(t, "get-cpuid-nent=%u", &inj_cpuid_nent) == 1) {
                continue;
            } else if (!strcmp(t, "eio")) {
                inj_errno = EIO;
            } else if (!strcmp(t, "eperm")) {
                inj_errno = EPERM;
            } else if (!strcmp(t, "efault")) {
                inj_errno = EFAULT;
            } else if (!strcmp(t, "enomem")) {
                inj_errno = ENOMEM;
            } else if (!strcmp(t, "einval")) {
                inj_errno = EINVAL;
            } else {
                fprintf(stderr, "tdx-contract: unknown QKM_TDX_INJECT %s\n",
                        t);
                abort();
            }
        }
        free(copy);
    }
}

static bool fd_is(int fd, const char *prefix)
{
    return contract_fd_target_matches(fd, prefix, strlen(prefix));
}

static int vcpu_index(int fd)
{
    for (int i = 0; i < nvcpus; i++) {
        if (vcpu_fds[i] == fd) {
            return i;
        }
    }
    return -1;
}

static bool bit(uint8_t *map, uint64_t gpa)
{
    uint64_t pfn = gpa / PAGE;

    return pfn < MAX_GPA / PAGE && (map[pfn / 8] & (1 << (pfn % 8)));
}

static void set_bit_to(uint8_t *map, uint64_t gpa, bool v)
{
    uint64_t pfn = gpa / PAGE;

    if (v) {
        map[pfn / 8] |= 1 << (pfn % 8);
    } else {
        map[pfn / 8] &= ~(1 << (pfn % 8));
    }
}

static bool in_gmem_slot(uint64_t gpa)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (slots[i].used && slots[i].gmem && gpa >= slots[i].gpa &&
            gpa - slots[i].gpa < slots[i].size) {
            return true;
        }
    }
    return false;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static Slot *slot_of(uint64_t gpa)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (slots[i].used && gpa >= slots[i].gpa &&
            gpa - slots[i].gpa < slots[i].size) {
            return &slots[i];
        }
    }
    return NULL;
}

static GmemAttrs *gmem_attrs(int fd, bool create)
{
    for (int i = 0; i < MAX_GMEMS; i++) {
        if (gmems[i].private_bits && gmems[i].fd == fd) {
            return &gmems[i];
        }
    }
    for (int i = 0; create && i < MAX_GMEMS; i++) {
        if (!gmems[i].private_bits) {
            gmems[i].fd = fd;
            gmems[i].private_bits = calloc(GMEM_MAX_SIZE / PAGE / 8, 1);
            return &gmems[i];
        }
    }
    return NULL;
}

/*
 * Is @gpa private?  By the VM's attributes, or, with in-place conversion,
 * by its guest_memfd's (a kernel with the series keeps both interfaces).
 */
static bool gpa_private(uint64_t gpa)
{
    Slot *sl;
    GmemAttrs *g;

    if (bit(private_bits, gpa) || !in_place) {
        return bit(private_bits, gpa);
    }
    sl = slot_of(gpa);
    g = sl && sl->gmem ? gmem_attrs(sl->gmem_fd, false) : NULL;
    return g && bit(g->private_bits, sl->gmem_offset + (gpa - sl->gpa));
}

static int fail(int err)
{
    errno = err;
    return -1;
}

/*
 * GuestPhysBits as a TDX host reports it: the TD's GPAW, 48 or 52
 * (52 only where the CPU has 52 physical-address bits).
 */
static unsigned phys_bits(void)
{
    unsigned a, b, c, d;

    __cpuid(0x80000008, a, b, c, d);
    return (a & 0xff) >= 52 ? 52 : 48;
}

static int supported_cpuid(struct kvm_cpuid_entry2 *out, unsigned max)
{
    struct {
        struct kvm_cpuid2 c;
        struct kvm_cpuid_entry2 e[MAX_CPUID];
    } buf = { .c.nent = MAX_CPUID };
    unsigned n = 0;
    int r;

    if (kvm_dev_fd < 0) {
        return 0;
    }
    r = real_ioctl(kvm_dev_fd, KVM_GET_SUPPORTED_CPUID, &buf.c);
    if (r < 0) {
        return 0;
    }
    for (unsigned i = 0; i < buf.c.nent && n < max; i++) {
        struct kvm_cpuid_entry2 e = buf.e[i];

        if (e.function == 7 && e.index == 0) {
            e.ebx &= ~((1u << 4) | (1u << 11));     /* HLE, RTM */
            e.ecx &= ~(1u << 5);                    /* WAITPKG */
        }
        if (e.function == 0x80000008) {
            e.eax = (e.eax & ~0xff0000u) | (phys_bits() << 16);
        }
        out[n++] = e;
    }
    return n;
}

/* TD attributes this "TDX module" supports: SEPT_VE_DISABLE, PKS. */
static uint64_t supported_attrs(void)
{
    unsigned a, b, c, d;

    __cpuid_count(7, 0, a, b, c, d);
    return TDX_ATTR_SEPT_VE_DISABLE | (c & (1u << 31) ? TDX_ATTR_PKS : 0);
}

/* XFAM: the CPU's XCR0 and IA32_XSS bits. */
static uint64_t supported_xfam(void)
{
    unsigned a, b, c, d;
    uint64_t xfam;

    __cpuid_count(0xd, 0, a, b, c, d);
    xfam = a | ((uint64_t)d << 32);
    __cpuid_count(0xd, 1, a, b, c, d);
    return xfam | c | ((uint64_t)d << 32);
}

static int tdx_capabilities(struct kvm_tdx_capabilities *caps)
{
    static struct kvm_cpuid_entry2 cfg[MAX_CPUID];
    unsigned n;

    n = supported_cpuid(cfg, MAX_CPUID);
    for (unsigned i = 0; i < n; i++) {
        if (cfg[i].function == 0x80000008) {
            cfg[i].eax |= 0xff0000;
        }
    }
    if (caps->cpuid.nent < n) {
        caps->cpuid.nent = n;
        return fail(E2BIG);
    }
    caps->supported_attrs = supported_attrs();
    caps->supported_xfam = supported_xfam();
    caps->cpuid.nent = n;
    memcpy(caps->cpuid.entries, cfg, n * sizeof(cfg[0]));
    return 0;
}

static int tdx_init_vm(struct kvm_tdx_init_vm *init)
{
    unsigned gpaw = 0;

    if (init_vm_done || nvcpus || (init->attributes & ~supported_attrs()) ||
        (init->xfam & ~supported_xfam())) {
        return fail(EINVAL);
    }
    for (unsigned i = 0; i < init->cpuid.nent; i++) {
        if (init->cpuid.entries[i].function == 0x80000008) {
            gpaw = (init->cpuid.entries[i].eax >> 16) & 0xff;
            if (!gpaw) {
                gpaw = init->cpuid.entries[i].eax & 0xff;
            }
        }
    }
    if (gpaw != 48 && gpaw != 52) {
        note("INIT_VM GPAW %u: EINVAL", gpaw);
        return fail(EINVAL);
    }
    /* The TD's CPUID is what was configured (TD_PARAMS). */
    td_cpuid_nent = init->cpuid.nent < MAX_CPUID ? init->cpuid.nent
                                                  : MAX_CPUID;
    memcpy(td_cpuid, init->cpuid.entries,
           td_cpuid_nent * sizeof(td_cpuid[0]));
    init_vm_done = true;
    return 0;
}

static int tdx_get_cpuid(struct kvm_cpuid2 *c)
{
    unsigned need = inj_cpuid_nent ? inj_cpuid_nent : td_cpuid_nent;

    if (!init_vm_done) {
        return fail(EINVAL);
    }
    if (c->nent < need) {
        c->nent = need;
        return fail(E2BIG);
    }
    for (unsigned i = 0; i < need; i++) {
        if (i < td_cpuid_nent) {
            c->entries[i] = td_cpuid[i];
        } else {
            /* entries this kernel's TD has beyond the host's list */
            memset(&c->entries[i], 0, sizeof(c->entries[i]));
            c->entries[i].function = 0x4fff0000 + i;
        }
    }
    c->nent = need;
    return 0;
}

/* *sum: FNV-1a over the bytes added, for the log. */
static int tdx_init_mem_region(uint32_t flags,
                               struct kvm_tdx_init_mem_region *r,
                               uint64_t *sum)
{
    unsigned todo = r->nr_pages, done = 0;
    int err = 0;

    if (vcpu_ran) {
        fprintf(stderr, "tdx-contract: KVM_TDX_INIT_MEM_REGION while a vCPU "
                "has entered KVM_RUN: Linux 6.19 blocks here forever\n");
        abort();
    }
    if ((flags & ~KVM_TDX_MEASURE_MEMORY_REGION) || !init_vm_done ||
        finalized || !r->nr_pages || (r->gpa & (PAGE - 1)) ||
        (r->source_addr & (PAGE - 1)) || (!r->source_addr && !in_place) ||
        r->gpa + r->nr_pages * PAGE < r->gpa ||
        r->gpa + r->nr_pages * PAGE > MAX_GPA) {
        return fail(EINVAL);
    }
    for (int i = 0; i < nvcpus; i++) {
        if (!vcpu_inited[i]) {
            return fail(EINVAL);
        }
    }
    for (uint64_t gpa = r->gpa; gpa < r->gpa + r->nr_pages * PAGE;
         gpa += PAGE) {
        if (!gpa_private(gpa) || !in_gmem_slot(gpa)) {
            note("INIT_MEM_REGION gpa 0x%" PRIx64 " not private guest_memfd",
                 gpa);
            return fail(EINVAL);
        }
    }
    if (inj_ebusy) {
        inj_ebusy--;
        return fail(EBUSY);
    }
    if (inj_eagain_forever) {
        return fail(EAGAIN);
    }
    while (r->nr_pages) {
        uint8_t page[PAGE];
        struct iovec local = { page, PAGE };
        struct iovec remote = { (void *)(uintptr_t)r->source_addr, PAGE };

        if (inj_eintr_mid && todo >= 2 && done == todo / 2) {
            inj_eintr_mid = false;
            err = EINTR;
            break;
        }
        if (inj_errno && done == 1) {
            err = inj_errno;
            inj_errno = 0;
            break;
        }
        if (bit(added_bits, r->gpa)) {
            err = EINVAL;                   /* TDH.MEM.PAGE.ADD again */
            break;
        }
        if (!r->source_addr) {
            /* In place: the guest_memfd page itself. */
            Slot *sl = slot_of(r->gpa);
            uint8_t *m = real_mmap(NULL, PAGE, PROT_READ, MAP_SHARED,
                                   sl->gmem_fd,
                                   sl->gmem_offset + (r->gpa - sl->gpa));

            if (m == MAP_FAILED) {
                err = EFAULT;
                break;
            }
            memcpy(page, m, PAGE);
            munmap(m, PAGE);
        } else if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) !=
                   PAGE) {
            err = EFAULT;
            break;
        }
        for (unsigned i = 0; i < PAGE; i++) {
            *sum = (*sum ^ page[i]) * 0x100000001b3ULL;
        }
        set_bit_to(added_bits, r->gpa, true);
        added_pages++;
        if (flags & KVM_TDX_MEASURE_MEMORY_REGION) {
            measured_pages++;
        }
        r->gpa += PAGE;
        r->source_addr += r->source_addr ? PAGE : 0;
        r->nr_pages--;
        done++;
    }
    return err ? fail(err) : 0;
}

static int tdx_op(int fd, struct kvm_tdx_cmd *cmd)
{
    int vcpu = vcpu_index(fd);
    bool on_vm = fd == td_fd;
    int r;

    switch (cmd->id) {
    case KVM_TDX_CAPABILITIES:
        r = on_vm && !cmd->flags ?
            tdx_capabilities((void *)(uintptr_t)cmd->data) : fail(EINVAL);
        note("CAPABILITIES -> %d", r < 0 ? -errno : r);
        return r;
    case KVM_TDX_INIT_VM:
        r = on_vm && !cmd->flags ?
            tdx_init_vm((void *)(uintptr_t)cmd->data) : fail(EINVAL);
        note("INIT_VM -> %d", r < 0 ? -errno : r);
        return r;
    case KVM_TDX_GET_CPUID: {
        struct kvm_cpuid2 *c = (void *)(uintptr_t)cmd->data;
        unsigned asked = c->nent;

        r = vcpu >= 0 && !cmd->flags ? tdx_get_cpuid(c) : fail(EINVAL);
        note("GET_CPUID vcpu %d nent %u -> %d nent %u", vcpu, asked,
             r < 0 ? -errno : r, c->nent);
        return r;
    }
    case KVM_TDX_INIT_VCPU:
        if (vcpu < 0 || cmd->flags || !init_vm_done || finalized ||
            vcpu_inited[vcpu]) {
            r = fail(EINVAL);
        } else {
            vcpu_inited[vcpu] = true;
            r = 0;
        }
        note("INIT_VCPU vcpu %d hob 0x%llx -> %d", vcpu,
             (unsigned long long)cmd->data, r < 0 ? -errno : r);
        return r;
    case KVM_TDX_INIT_MEM_REGION: {
        struct kvm_tdx_init_mem_region *m = (void *)(uintptr_t)cmd->data;
        struct kvm_tdx_init_mem_region before = *m;
        uint64_t sum = 0xcbf29ce484222325ULL;
        uint64_t t0 = now_ns(), t1;
        char times[64] = "";

        r = vcpu >= 0 ? tdx_init_mem_region(cmd->flags, m, &sum)
                      : fail(EINVAL);
        t1 = now_ns();
        if (log_times) {
            snprintf(times, sizeof(times), " t0=%" PRIu64 " t1=%" PRIu64,
                     t0, t1);
        }
        note("INIT_MEM_REGION vcpu %d flags 0x%x gpa 0x%llx pages %llu -> "
             "%d gpa 0x%llx pages %llu source+0x%llx fnv 0x%016" PRIx64 "%s",
             vcpu, cmd->flags, before.gpa, before.nr_pages,
             r < 0 ? -errno : r, m->gpa, m->nr_pages,
             m->source_addr - before.source_addr, sum, times);
        return r;
    }
    case KVM_TDX_FINALIZE_VM:
        if (!on_vm || cmd->flags || cmd->data || !init_vm_done ||
            finalized) {
            r = fail(EINVAL);
        } else {
            finalized = true;
            r = 0;
        }
        note("FINALIZE_VM -> %d added %" PRIu64 " measured %" PRIu64,
             r < 0 ? -errno : r, added_pages, measured_pages);
        return r;
    default:
        return fail(EINVAL);
    }
}

/* Returns true with *ret set when the layer answered the call. */
static bool model(int fd, unsigned long req, void *arg, int *ret)
{
    if (off) {
        return false;
    }
    if (req == KVM_CHECK_EXTENSION && fd_is(fd, "/dev/kvm") &&
        (long)arg == KVM_CAP_VM_TYPES) {
        *ret = real_ioctl(fd, req, arg);
        if (*ret >= 0 && (*ret & (1 << KVM_X86_TDX_VM))) {
            off = true;
            note("off: the real KVM has TDX");
            return true;
        }
        /* Before 6.8 there is no such capability: the default VM. */
        *ret = (*ret > 0 ? *ret : 1 << KVM_X86_DEFAULT_VM) |
               1 << KVM_X86_TDX_VM;
        return true;
    }
    if (req == KVM_CHECK_EXTENSION && fd_is(fd, "/dev/kvm") &&
        (long)arg == KVM_CAP_X86_APIC_BUS_CYCLES_NS && td_fd >= 0) {
        *ret = 1;       /* Linux 6.11; a TDX kernel has it */
        return true;
    }
    if (req == KVM_CREATE_VM && (long)arg == KVM_X86_TDX_VM) {
        *ret = real_ioctl(fd, req, (void *)(long)KVM_X86_DEFAULT_VM);
        if (*ret >= 0) {
            td_fd = *ret;
            kvm_dev_fd = fd;
            note("CREATE_VM type %d as a default VM", KVM_X86_TDX_VM);
        }
        return true;
    }
    if (req == KVM_GET_SUPPORTED_CPUID && td_fd >= 0) {
        struct kvm_cpuid2 *c = arg;

        *ret = real_ioctl(fd, req, arg);
        for (unsigned i = 0; *ret >= 0 && i < c->nent; i++) {
            if (c->entries[i].function == 0x80000008 &&
                !(c->entries[i].eax & 0xff0000)) {
                c->entries[i].eax |= phys_bits() << 16;
            }
        }
        return true;
    }
    if (vcpu_index(fd) >= 0) {
        if (req == KVM_MEMORY_ENCRYPT_OP) {
            pthread_mutex_lock(&lock);
            *ret = tdx_op(fd, arg);
            pthread_mutex_unlock(&lock);
            return true;
        }
        if (req == KVM_RUN) {
            struct kvm_run *run = vcpu_runs[vcpu_index(fd)];

            vcpu_ran = true;
            if (!finalized || !run) {
                return false;
            }
            /* No TD can run here: stop it as a guest power-off would. */
            memset(&run->system_event, 0, sizeof(run->system_event));
            run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
            run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
            if (!shut_down) {
                shut_down = true;
                note("KVM_RUN after FINALIZE: shutdown");
            }
            *ret = 0;
            return true;
        }
        return false;
    }
    if (in_place && req == KVM_SET_MEMORY_ATTRIBUTES2 && td_fd >= 0 &&
        contract_fd_is_guest_memfd(fd)) {
        struct kvm_memory_attributes2 *a = arg;
        GmemAttrs *g;

        if (!contract_attributes_valid(a->flags, a->attributes, a->offset,
                                       a->size) ||
            a->offset + a->size > GMEM_MAX_SIZE) {
            *ret = fail(EINVAL);
            return true;
        }
        pthread_mutex_lock(&lock);
        g = gmem_attrs(fd, true);
        for (uint64_t o = a->offset; g && o < a->offset + a->size;
             o += PAGE) {
            set_bit_to(g->private_bits, o, a->attributes != 0);
        }
        pthread_mutex_unlock(&lock);
        note("SET_MEMORY_ATTRIBUTES2 offset 0x%llx size 0x%llx attributes "
             "0x%llx -> %d", a->offset, a->size, a->attributes, g ? 0 : -1);
        *ret = g ? 0 : fail(ENOSPC);
        return true;
    }
    if (fd != td_fd || td_fd < 0) {
        return false;
    }
    switch (req) {
    case KVM_CHECK_EXTENSION:
        if ((long)arg == KVM_CAP_MEMORY_ATTRIBUTES) {
            *ret = KVM_MEMORY_ATTRIBUTE_PRIVATE;
            return true;
        }
        if ((long)arg == KVM_CAP_X86_APIC_BUS_CYCLES_NS) {
            *ret = 1;
            return true;
        }
        if ((long)arg == KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) {
            *ret = in_place ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
            return true;
        }
        /* A TD has both, whatever the kernel below has (6.1: neither). */
        if ((long)arg == KVM_CAP_GUEST_MEMFD ||
            (long)arg == KVM_CAP_USER_MEMORY2) {
            *ret = 1;
            return true;
        }
        return false;
    case KVM_CREATE_GUEST_MEMFD: {
        struct kvm_create_guest_memfd *g = arg;

        /*
         * The TD's private memory: a real guest_memfd where the kernel
         * makes one for a default VM, else a stand-in; either way the
         * layer, not KVM, maps it (see KVM_SET_USER_MEMORY_REGION2).
         */
        /* Not logged: the log is the TDX command sequence. */
        *ret = real_ioctl(fd, req, arg);
        if (*ret < 0) {
            *ret = contract_create_gmem_standin(g->size);
        }
        return true;
    }
    case KVM_ENABLE_CAP: {
        struct kvm_enable_cap *cap = arg;

        if (cap->cap == KVM_CAP_X86_APIC_BUS_CYCLES_NS) {
            *ret = 0;
            return true;
        }
        return false;
    }
    case KVM_SET_TSC_KHZ:
        *ret = real_ioctl(fd, req, arg);
        if (*ret < 0) {
            *ret = 0;       /* the real KVM lacks VM-scoped TSC control */
        }
        return true;
    case KVM_CREATE_VCPU:
        if (!init_vm_done) {
            *ret = fail(EIO);
            return true;
        }
        *ret = real_ioctl(fd, req, arg);
        if (*ret >= 0 && nvcpus < MAX_VCPUS) {
            vcpu_fds[nvcpus++] = *ret;
        }
        return true;
    case KVM_MEMORY_ENCRYPT_OP:
        pthread_mutex_lock(&lock);
        *ret = tdx_op(fd, arg);
        pthread_mutex_unlock(&lock);
        return true;
    case KVM_SET_MEMORY_ATTRIBUTES: {
        struct kvm_memory_attributes *a = arg;

        if (!contract_attributes_valid(a->flags, a->attributes, a->address,
                                       a->size) ||
            a->address + a->size > MAX_GPA) {
            *ret = fail(EINVAL);
            return true;
        }
        pthread_mutex_lock(&lock);
        for (uint64_t g = a->address; g < a->address + a->size; g += PAGE) {
            set_bit_to(private_bits, g, a->attributes != 0);
        }
        pthread_mutex_unlock(&lock);
        *ret = 0;
        return true;
    }
    case KVM_SET_USER_MEMORY_REGION2: {
        struct kvm_userspace_memory_region2 *m = arg;
        /*
         * No TD code ever runs: the real VM maps QEMU's shared memory
         * only, through the original ioctl that every kernel has (a
         * default VM cannot bind a guest_memfd before 6.18).  The layer
         * keeps the guest_memfd binding for INIT_MEM_REGION.
         */
        struct kvm_userspace_memory_region r1 = {
            .slot = m->slot,
            .flags = m->flags & ~KVM_MEM_GUEST_MEMFD,
            .guest_phys_addr = m->guest_phys_addr,
            .memory_size = m->memory_size,
            .userspace_addr = m->userspace_addr,
        };

        *ret = real_ioctl(fd, KVM_SET_USER_MEMORY_REGION, &r1);
        if (*ret >= 0 && (m->slot & 0xffff) < MAX_SLOTS) {
            Slot *s = &slots[m->slot & 0xffff];

            s->used = m->memory_size != 0;
            s->gmem = m->flags & KVM_MEM_GUEST_MEMFD;
            s->gpa = m->guest_phys_addr;
            s->size = m->memory_size;
            s->gmem_fd = m->guest_memfd;
            s->gmem_offset = m->guest_memfd_offset;
        }
        return true;
    }
    default:
        return false;
    }
}

/* Note each vCPU's kvm_run mapping, to stop a TD at its first KVM_RUN. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p;
    int i;

    if (!real_mmap) {
        real_mmap = dlsym(RTLD_NEXT, "mmap");
    }
    p = real_mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && fd >= 0 && off == 0) {
        pthread_mutex_lock(&lock);
        i = vcpu_index(fd);
        if (i >= 0) {
            vcpu_runs[i] = p;
        }
        pthread_mutex_unlock(&lock);
    }
    return p;
}

int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    void *arg;
    int ret;

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);
    if (!real_ioctl) {
        real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    }
    if (model(fd, req, arg, &ret)) {
        return ret;
    }
    return real_ioctl(fd, req, arg);
}
