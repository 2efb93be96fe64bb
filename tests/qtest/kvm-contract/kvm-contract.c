/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A test-only LD_PRELOAD layer between QEMU and the real /dev/kvm that
 * models outcomes of KVM_RUN which the documented kernel contract allows
 * but this project's host kernel does not produce.  Everything passes
 * through to the real KVM; only an MMIO exit at the page named by
 * QKM_CONTRACT_GPA is rewritten, as QKM_KVM_CONTRACT says:
 *
 *   efault          KVM_RUN fails with bare EFAULT and run->exit_reason
 *                   stale, as on VMX/SVM hosts when a RAM page cannot be
 *                   faulted in (../shared/KERNEL-API.md section 4).
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
 *                   upstream QEMU (QEMU-FACTS.md, outcome 2).  After
 *                   REPEAT_LIMIT repeats the layer gives up and passes
 *                   through, so a QEMU that loops shows up as a test
 *                   failure, not as a hang.
 *
 * Never used where the real capability exists: the tests load it only to
 * reach these paths on a host that lacks them, and say so.
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kvm.h>

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
} Vcpu;

enum Mode {
    MODE_OFF,
    MODE_EFAULT,
    MODE_SIGBUS,
    MODE_MEMORY_FAULT,
    MODE_MEMORY_FAULT_PRIVATE,
    MODE_MEMORY_FAULT_REPEAT,
    MODE_EMULATION_FAILURE_REPEAT,
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Slot slots[MAX_SLOTS];
static Vcpu vcpus[MAX_VCPUS];
static enum Mode mode = MODE_OFF;
static uint64_t trigger_page;  /* hex, with or without 0x */
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

static void __attribute__((constructor)) contract_init(void)
{
    const char *m = getenv("QKM_KVM_CONTRACT");
    const char *g = getenv("QKM_CONTRACT_GPA");

    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
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
    char proc[64], target[128];
    ssize_t n;

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, target, sizeof(target) - 1);
    if (n < 0) {
        return false;
    }
    target[n] = '\0';
    return !strncmp(target, "anon_inode:kvm-vcpu:", 20);
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

static int rewrite_run(Vcpu *v, int fd, unsigned long req)
{
    struct kvm_run *run = v->run;
    uint64_t hva;
    siginfo_t si;
    int ret;

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
    if (ret < 0 || run->exit_reason != KVM_EXIT_MMIO ||
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
    case MODE_MEMORY_FAULT:
    case MODE_MEMORY_FAULT_PRIVATE:
        set_memory_fault(run, mode == MODE_MEMORY_FAULT_PRIVATE ?
                              KVM_MEMORY_EXIT_FLAG_PRIVATE : 0);
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

    va_start(ap, req);
    arg = va_arg(ap, void *);
    va_end(ap);

    if (req == KVM_SET_USER_MEMORY_REGION) {
        struct kvm_userspace_memory_region *r = arg;
        int ret = real_ioctl(fd, req, arg);

        if (ret == 0) {
            record_slot(r->slot, r->flags, r->guest_phys_addr,
                        r->memory_size, r->userspace_addr);
        }
        return ret;
    }
#ifdef KVM_SET_USER_MEMORY_REGION2
    if (req == KVM_SET_USER_MEMORY_REGION2) {
        struct kvm_userspace_memory_region2 *r = arg;
        int ret = real_ioctl(fd, req, arg);

        if (ret == 0) {
            record_slot(r->slot, r->flags, r->guest_phys_addr,
                        r->memory_size, r->userspace_addr);
        }
        return ret;
    }
#endif
    if (req == KVM_RUN && mode != MODE_OFF) {
        pthread_mutex_lock(&lock);
        v = find_vcpu(fd);
        pthread_mutex_unlock(&lock);
        if (v) {
            return rewrite_run(v, fd, req);
        }
    }
    return real_ioctl(fd, req, arg);
}
