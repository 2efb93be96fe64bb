/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * SIGBUS on guest RAM: the handler only records the fault and hands it
 * to a thread of its own; that thread marks the page lost and maps a
 * stand-in page so that the faulting access can complete; the faults are
 * reported outside signal context.  A vCPU's access to a memory backend
 * with lost-page-action=guest-error is unwound instead, where the
 * accelerator can, and the vCPU reports it itself: no stand-in, and the
 * VM keeps running.
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/error-report.h"
#include "qemu/futex.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "qapi/qapi-events-run-state.h"
#include "hw/core/cpu.h"
#include "accel/accel-cpu-ops.h"
#include "system/cpus.h"
#include "system/guest-memory-fault.h"
#include "system/ramblock.h"
#include "host/signal-fault.h"
#include "guest-memory-internal.h"

/*
 * Faults recorded by the SIGBUS handler, reported outside signal context.
 * A slot goes EMPTY -> FILLING (handler) -> READY -> TAKING (reporter) ->
 * EMPTY, each step by compare-and-swap, so that no two threads fill or
 * report the same slot.  When every slot is busy the fault is still
 * marked lost and counted in pending_overflow; the report says so.
 */
#define PENDING_SLOTS 64

enum {
    PENDING_EMPTY,
    PENDING_FILLING,
    PENDING_READY,
    PENDING_TAKING,
};

typedef struct PendingFault {
    int state;
    int cpu_index;
    int code;
    void *addr;
    GuestMemoryAccess access;
} PendingFault;

static PendingFault pending[PENDING_SLOTS];
static unsigned pending_overflow;
/* Slots READY or being filled: zero on every exit but a fault's. */
static unsigned pending_busy;

/*
 * The access, if the signal context tells (host/signal-fault.h).  Only a
 * BUS_ADRERR comes from a page fault of this thread's own access; a
 * signal the kernel sends from inside a system call (a poisoned page met
 * while running a vCPU) says nothing about it.
 */
static GuestMemoryAccess sigbus_access(int code, void *ucontext)
{
    if (code != BUS_ADRERR) {
        return GUEST_MEMORY_ACCESS_UNKNOWN;
    }
    switch (host_signal_fault_access(ucontext)) {
    case HOST_FAULT_ACCESS_READ:
        return GUEST_MEMORY_ACCESS_READ;
    case HOST_FAULT_ACCESS_WRITE:
        return GUEST_MEMORY_ACCESS_WRITE;
    case HOST_FAULT_ACCESS_FETCH:
        return GUEST_MEMORY_ACCESS_FETCH;
    default:
        return GUEST_MEMORY_ACCESS_UNKNOWN;
    }
}

/*
 * Make @cpu leave guest code and stay out until the VM stops.  The
 * accelerator may unwind @cpu to the faulting guest instruction, and
 * then this does not return.
 */
static void hold_vcpu_from_signal(CPUState *cpu, void *ucontext)
{
    const AccelOpsClass *ops = cpus_get_accel();

    qatomic_set(&cpu->stop, true);
    if (ops && ops->exit_vcpu_from_signal) {
        ops->exit_vcpu_from_signal(cpu, host_signal_fault_pc(ucontext));
    } else {
        qatomic_store_release(&cpu->exit_request, true);
    }
}

/*
 * The SIGBUS handler does only async-signal-safe work: it hands the fault
 * to the SIGBUS thread with write(2) and waits on a futex for the answer.
 * That thread does the rest in thread context: it finds the RAM block,
 * marks the page lost, sets the hold and kicks the other vCPUs, records
 * the fault for the report and maps the stand-in page.  The faulting
 * thread may hold any lock (the BQL, the RAM list's), so the SIGBUS thread
 * takes none of QEMU's: RCU reads and atomics only.
 */
typedef enum SigbusOp {
    SIGBUS_RECORD,          /* is it guest RAM?  then record it */
    SIGBUS_STAND_IN,        /* map the stand-in page at its address */
} SigbusOp;

typedef struct SigbusRequest {
    SigbusOp op;
    bool stop;              /* record it for the stop whatever the backend */
    int code;
    void *addr;
    int cpu_index;          /* -1: not a vCPU */
    GuestMemoryAccess access;
    int *answer;            /* the asker's futex: -1 until SIGBUS_* */
} SigbusRequest;

/* Answers. */
enum {
    SIGBUS_NO,              /* not guest RAM (or not done) */
    SIGBUS_YES,             /* done */
    SIGBUS_TO_GUEST,        /* marked lost only: for the guest, if unwound */
};

/* Requests are smaller than PIPE_BUF: each write(2) is atomic. */
QEMU_BUILD_BUG_ON(sizeof(SigbusRequest) > PIPE_BUF);

static int sigbus_fds[2] = { -1, -1 };
static QemuThread sigbus_thread;
/* On the SIGBUS thread: a SIGBUS there cannot be answered. */
static __thread bool on_sigbus_thread;

/*
 * SIGBUS_RECORD, in thread context: SIGBUS_NO if @r->addr is not guest
 * RAM.  A vCPU's access to a block whose backend hands lost pages to the
 * guest is only marked lost (SIGBUS_TO_GUEST): the VM keeps running if
 * the vCPU can be unwound, and is asked again with @r->stop if not.
 */
static int sigbus_record(const SigbusRequest *r)
{
    ram_addr_t offset, trunc;
    RAMBlock *rb;
    size_t page;
    CPUState *other;
    off_t size;
    bool tail;
    int i;

    RCU_READ_LOCK_GUARD();
    rb = qemu_ram_block_from_host(r->addr, false, &offset);
    if (!rb || !rb->memory_loss) {
        return SIGBUS_NO;
    }
    page = guest_memory_page_size(rb);
    offset = QEMU_ALIGN_DOWN(offset, page);
    /* Before the faulting page is marked: it may be the first one past. */
    tail = guest_memory_truncated_at(rb, &trunc, &size) &&
           !test_bit(trunc / page, rb->memory_loss->lost);
    guest_memory_mark_lost(rb, offset, offset + page);
    if (r->cpu_index >= 0 && !r->stop && guest_memory_block_guest_error(rb)) {
        /* The vCPU reports it itself (guest_memory_fault_vcpu_unwound()). */
        return SIGBUS_TO_GUEST;
    }
    /*
     * From here until management resets the VM no vCPU enters the guest
     * (each holds itself at its next entry, see
     * guest_memory_fault_vcpu_held()) and nothing starts the VM: the
     * stand-in page must not reach the guest as its data before the VM
     * stops.
     */
    guest_memory_set_holds_stop();
    CPU_FOREACH(other) {
        if (other->cpu_index != r->cpu_index) {
            qemu_cpu_kick_from_signal(other);
        }
    }
    if (tail) {
        /*
         * Everything past the end of the file is gone too; once marked,
         * the next faults of a pass over the tail need not mark it again.
         */
        guest_memory_mark_lost(rb, trunc, rb->used_length);
    }
    for (i = 0; i < PENDING_SLOTS; i++) {
        PendingFault *p = &pending[i];

        if (qatomic_cmpxchg(&p->state, PENDING_EMPTY, PENDING_FILLING) ==
            PENDING_EMPTY) {
            qatomic_inc(&pending_busy);
            p->cpu_index = r->cpu_index;
            p->code = r->code;
            p->addr = r->addr;
            p->access = r->access;
            qatomic_store_release(&p->state, PENDING_READY);
            break;
        }
    }
    if (i == PENDING_SLOTS) {
        /* Marked lost and counted: the report still covers it. */
        qatomic_inc(&pending_overflow);
        qatomic_inc(&pending_busy);
    }
    /*
     * The main loop reports whatever the faulting vCPU does not take
     * itself (guest_memory_fault_take_pending()) when it leaves the
     * guest.  It dumps the vCPU's registers only once it has stopped.
     */
    guest_memory_schedule_report();
    return SIGBUS_YES;
}

/*
 * SIGBUS_STAND_IN: returning from the handler re-executes the faulting
 * access, which would fault again forever.  A private anonymous page in
 * its place lets the access complete; the page is marked lost, so that
 * no reader takes what it holds for guest data, and the VM stops before
 * the guest runs on.
 */
static int sigbus_stand_in(const SigbusRequest *r)
{
    RAMBlock *rb;
    ram_addr_t offset;
    size_t page;

    RCU_READ_LOCK_GUARD();
    rb = qemu_ram_block_from_host(r->addr, false, &offset);
    if (!rb || !rb->memory_loss) {
        return SIGBUS_NO;
    }
    page = guest_memory_page_size(rb);
    if (!test_bit(offset / page, rb->memory_loss->lost)) {
        /* A reset by management made it whole meanwhile: re-execute. */
        return SIGBUS_YES;
    }
    return mmap((void *)QEMU_ALIGN_DOWN((uintptr_t)r->addr, page), page,
                PROT_READ | PROT_WRITE,
                MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED
           ? SIGBUS_YES : SIGBUS_NO;
}

static void *sigbus_thread_fn(void *opaque)
{
    SigbusRequest r;

    on_sigbus_thread = true;
    rcu_register_thread();
    /* Each request was one write(2) of a whole one: reads get it whole. */
    while (RETRY_ON_EINTR(read(sigbus_fds[0], &r, sizeof(r))) ==
           sizeof(r)) {
        int answer = r.op == SIGBUS_RECORD ? sigbus_record(&r)
                                           : sigbus_stand_in(&r);

        qatomic_store_release(r.answer, answer);
        qemu_futex_wake_all(r.answer);
    }
    /* Askers would wait forever. */
    abort();
}

/*
 * Async-signal-safe (write(2) and the futex system call): ask the SIGBUS
 * thread; SIGBUS_NO if it said no or cannot be asked.
 */
static int sigbus_ask(SigbusRequest *r)
{
    int answer = -1;
    int fd = qatomic_read(&sigbus_fds[1]);

    if (fd < 0 || on_sigbus_thread) {
        return SIGBUS_NO;
    }
    r->answer = &answer;
    if (RETRY_ON_EINTR(write(fd, r, sizeof(*r))) != sizeof(*r)) {
        return SIGBUS_NO;
    }
    while (qatomic_load_acquire(&answer) < 0) {
        qemu_futex_wait(&answer, -1);
    }
    return answer;
}

/*
 * A vCPU's fault on a block that hands lost pages to the guest, recorded
 * by the SIGBUS handler of the vCPU's own thread just before it unwinds
 * the vCPU; taken by guest_memory_fault_vcpu_unwound() on that thread.
 */
typedef struct UnwoundFault {
    bool valid;
    int code;
    void *addr;
    GuestMemoryAccess access;
} UnwoundFault;

static __thread UnwoundFault unwound_fault;

/*
 * Hand @r's fault on @cpu to the guest: unwind @cpu to the faulting
 * instruction, which then does not return.  Returns if the accelerator
 * cannot unwind @cpu here (an access made by QEMU's own code).
 */
static void unwind_to_guest(CPUState *cpu, SigbusRequest *r, void *ucontext)
{
    const AccelOpsClass *ops = cpus_get_accel();

    if (!ops || !ops->exit_vcpu_from_signal) {
        return;
    }
    unwound_fault.code = r->code;
    unwound_fault.addr = r->addr;
    unwound_fault.access = r->access;
    signal_barrier();
    unwound_fault.valid = true;
    signal_barrier();
    ops->exit_vcpu_from_signal(cpu, host_signal_fault_pc(ucontext));
    unwound_fault.valid = false;
}

bool guest_memory_fault_on_sigbus(int code, void *addr, void *ucontext,
                                  CPUState *cpu)
{
    SigbusRequest r = {
        .op = SIGBUS_RECORD,
        .code = code,
        .addr = addr,
        .cpu_index = cpu ? cpu->cpu_index : -1,
        .access = sigbus_access(code, ucontext),
    };
    int saved_errno = errno;
    int ok;

    ok = sigbus_ask(&r);
    if (ok == SIGBUS_TO_GUEST) {
        unwind_to_guest(cpu, &r, ucontext);
        /* Not unwound: QEMU's own access, which must complete. */
        r.stop = true;
        ok = sigbus_ask(&r);
    }
    if (ok && cpu) {
        /* A vCPU unwound to the faulting instruction does not return. */
        hold_vcpu_from_signal(cpu, ucontext);
    }
    if (ok) {
        /* A vCPU that is unwound needs no stand-in. */
        r.op = SIGBUS_STAND_IN;
        ok = sigbus_ask(&r);
    }
    errno = saved_errno;
    return ok != SIGBUS_NO;
}

bool guest_memory_fault_check_backing(Error **errp)
{
    GuestMemoryFault f = { 0 };
    RAMBlock *rb;
    bool found;

    RCU_READ_LOCK_GUARD();
    found = guest_memory_find_truncated(&f);
    rb = f.block;
    if (found && rb->memory_loss &&
        !test_bit(f.offset / guest_memory_page_size(rb),
                  rb->memory_loss->lost)) {
        /* What a SIGBUS of QEMU's own read of that page would record. */
        SigbusRequest r = {
            .code = BUS_ADRERR,
            .addr = rb->host + f.offset,
            .cpu_index = -1,
            .access = GUEST_MEMORY_ACCESS_UNKNOWN,
        };

        if (sigbus_record(&r)) {
            sigbus_stand_in(&r);
        }
    }
    return !guest_memory_check_lost(NULL, errp);
}

/*
 * Take one recorded fault: of vCPU @cpu_index, or of anybody when
 * @any_cpu.  Faults of the same vCPU on the same block recorded
 * meanwhile are merged into it (@f->count); another vCPU's are left
 * for the report to name.
 */
static bool take_pending(int cpu_index, bool any_cpu, GuestMemoryFault *f)
{
    bool taken = false;
    RAMBlock *rb = NULL;

    /* An accelerator may ask on every exit: one load when nothing is. */
    if (likely(!qatomic_read(&pending_busy))) {
        return false;
    }
    for (int i = 0; i < PENDING_SLOTS; i++) {
        PendingFault *p = &pending[i];
        ram_addr_t offset;
        RAMBlock *prb;

        if (qatomic_read(&p->state) != PENDING_READY ||
            qatomic_cmpxchg(&p->state, PENDING_READY, PENDING_TAKING) !=
            PENDING_READY) {
            continue;
        }
        /* Ours now: nobody else reads or refills it until EMPTY. */
        prb = qemu_ram_block_from_host(p->addr, false, &offset);
        if ((!taken && !any_cpu && p->cpu_index != cpu_index) ||
            (taken && (prb != rb || p->cpu_index != f->cpu_index))) {
            /* Another vCPU's, or another block's: leave it. */
            qatomic_store_release(&p->state, PENDING_READY);
            continue;
        }
        if (!taken) {
            guest_memory_fault_init(f, p->cpu_index >= 0 ?
                                    GUEST_MEMORY_FAULT_PATH_SIGBUS :
                                    GUEST_MEMORY_FAULT_PATH_QEMU_ACCESS,
                                    p->cpu_index);
            f->sigbus_code = p->code;
            f->host_addr = p->addr;
            f->access = p->access;
            rb = prb;
            taken = true;
        } else {
            f->count++;
        }
        qatomic_store_release(&p->state, PENDING_EMPTY);
        qatomic_dec(&pending_busy);
    }
    if (taken) {
        unsigned overflow = qatomic_xchg(&pending_overflow, 0);

        f->count += overflow;
        qatomic_sub(&pending_busy, overflow);
    }
    return taken;
}

bool guest_memory_fault_take_pending(CPUState *cpu, GuestMemoryFault *f)
{
    return take_pending(cpu->cpu_index, false, f);
}

/*
 * A vCPU may read guest code with ordinary host loads (an accelerator
 * that translates it does): if the faulting page holds the vCPU's
 * program counter, the read was an instruction fetch (a data access to
 * that page would need the fetch to succeed first).
 */
static void classify_fetch(GuestMemoryFault *f, CPUState *cpu)
{
    MemTxAttrs attrs;
    hwaddr pc_page;
    uint64_t page;

    if (!cpu || f->access != GUEST_MEMORY_ACCESS_READ || !f->has_gpa ||
        !f->size || !cpu->cc->get_pc) {
        return;
    }
    page = f->size;
    pc_page = cpu_get_phys_page_attrs_debug(cpu, cpu->cc->get_pc(cpu),
                                            &attrs);
    if (pc_page != -1 &&
        QEMU_ALIGN_DOWN(pc_page, page) == QEMU_ALIGN_DOWN(f->gpa, page)) {
        f->access = GUEST_MEMORY_ACCESS_FETCH;
    }
}

void guest_memory_fault_vcpu_unwound(CPUState *cpu)
{
    GuestMemoryFault f;

    if (likely(!unwound_fault.valid)) {
        return;
    }
    unwound_fault.valid = false;
    guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_SIGBUS,
                            cpu->cpu_index);
    f.sigbus_code = unwound_fault.code;
    f.host_addr = unwound_fault.addr;
    f.access = unwound_fault.access;
    guest_memory_fault_probe(&f);
    classify_fetch(&f, cpu);
    if (!guest_memory_fault_report_vcpu(&f, cpu)) {
        guest_memory_fault_hold_vcpu(cpu);
    }
    guest_memory_fault_cleanup(&f);
}

void guest_memory_take_recorded(void)
{
    GuestMemoryFault f;
    CPUState *cpu;

    while (take_pending(-1, true, &f)) {
        cpu = f.cpu_index >= 0 ? qemu_get_cpu(f.cpu_index) : NULL;
        guest_memory_fault_probe(&f);
        classify_fetch(&f, cpu);
        guest_memory_fault_report(&f);
        guest_memory_fault_cleanup(&f);
    }
}

/* Start the thread that does the SIGBUS handler's work. */
void guest_memory_sigbus_start(void)
{
    g_autoptr(GError) gerr = NULL;
    int fds[2];

    if (sigbus_fds[1] >= 0) {
        return;
    }
    if (!g_unix_open_pipe(fds, FD_CLOEXEC, &gerr)) {
        /* Without it a lost page would kill QEMU: say so now. */
        error_report("cannot start the SIGBUS thread of guest-memory "
                     "fault handling: %s", gerr->message);
        exit(1);
    }
    sigbus_fds[0] = fds[0];
    qemu_thread_create(&sigbus_thread, "sigbus", sigbus_thread_fn, NULL,
                       QEMU_THREAD_DETACHED);
    /* From now on the handler asks. */
    qatomic_set(&sigbus_fds[1], fds[1]);
}
