/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The guest-memory fault report, one per incident: the first fault on a
 * RAM block is reported, later ones are merged into it until management
 * resets the VM, and a cap bounds the reports of a pathological guest.
 * A report marks the lost range in the block's GuestMemoryLoss bitmap,
 * waits in a bottom half until the vCPUs have stopped, prints a first
 * line (the accelerator's to word) and a detail line, emits
 * GUEST_MEMORY_FAULT and stops the VM in internal-error.
 *
 * The stop is sticky: from the report until a reset by management,
 * guest-originated resets, shutdowns and suspends are dropped
 * (system/runstate.c asks guest_memory_fault_holds_stop()).
 *
 * A reset by management maps the backing again over pages that were
 * replaced by stand-ins, forgets the pages the backing has again (the
 * others stay lost) and closes the incidents.
 *
 * A memory backend with lost-page-action=guest-error keeps the VM
 * running instead: a vCPU's access to a lost page at a known address
 * raises the error in the guest (the target's raise_memory_error), on
 * every access; the first one of an incident is printed and sent at
 * once, the others are merged into it.
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/accel.h"
#include "qapi/qapi-events-run-state.h"
#include "hw/core/cpu.h"
#include "accel/accel-cpu-ops.h"
#include "hw/core/sysemu-cpu-ops.h"
#include "system/cpus.h"
#include "system/guest-memory-fault.h"
#include "system/hw_accel.h"
#include "system/kvm.h"
#include "system/ramblock.h"
#include "system/runstate.h"
#include "guest-memory-internal.h"
#include "trace.h"

static QEMUBH *report_bh;

/* From the first report until a reset by management. */
static bool holds_stop;
/* Reports printed since the last reset by management. */
static unsigned reports_since_reset;
/* More than this many incidents without a reset are only counted. */
#define REPORT_CAP 16

static QTAILQ_HEAD(, QueuedReport) queued_reports =
    QTAILQ_HEAD_INITIALIZER(queued_reports);
static bool emitting;

void guest_memory_fault_init(GuestMemoryFault *f, GuestMemoryFaultPath path,
                             int cpu_index)
{
    memset(f, 0, sizeof(*f));
    f->path = path;
    f->cpu_index = cpu_index;
    f->count = 1;
    f->access = GUEST_MEMORY_ACCESS_UNKNOWN;
    f->backing = GUEST_MEMORY_BACKING_NONE;
    f->cause = GUEST_MEMORY_FAULT_CAUSE_UNKNOWN;
}

void guest_memory_fault_set_gpa(GuestMemoryFault *f, hwaddr gpa,
                                uint64_t size)
{
    f->has_gpa = true;
    f->gpa = gpa;
    f->size = size;
}

void guest_memory_fault_cleanup(GuestMemoryFault *f)
{
    g_free(f->backing_path);
    g_free(f->cause_detail);
    f->backing_path = NULL;
    f->cause_detail = NULL;
}

bool guest_memory_fault_holds_stop(void)
{
    return qatomic_read(&holds_stop);
}

/* From now until a reset by management, no vCPU enters the guest. */
void guest_memory_set_holds_stop(void)
{
    qatomic_set(&holds_stop, true);
}

/* Have the main loop report what is queued or pending. */
void guest_memory_schedule_report(void)
{
    QEMUBH *bh = qatomic_read(&report_bh);

    if (bh) {
        qemu_bh_schedule(bh);
    }
}

/* --- the report --- */

static const char *access_words(GuestMemoryAccess access)
{
    switch (access) {
    case GUEST_MEMORY_ACCESS_READ:
        return "read";
    case GUEST_MEMORY_ACCESS_WRITE:
        return "write";
    case GUEST_MEMORY_ACCESS_FETCH:
        return "instruction fetch";
    default:
        return "access unknown";
    }
}

static char *backing_words(GuestMemoryFault *f)
{
    const char *path = f->backing_path ? f->backing_path : "?";

    switch (f->backing) {
    case GUEST_MEMORY_BACKING_FILE:
        return g_strdup_printf("backed by file %s", path);
    case GUEST_MEMORY_BACKING_MEMFD:
        return g_strdup_printf("backed by memfd %s", path);
    case GUEST_MEMORY_BACKING_GUEST_MEMFD:
        return g_strdup_printf("backed by guest_memfd %s", path);
    case GUEST_MEMORY_BACKING_ANONYMOUS:
        return g_strdup("backed by anonymous memory");
    default:
        return g_strdup("not RAM");
    }
}

/* The accelerator's name, for the event. */
static char *accel_name(void)
{
    const char *name = current_accel_name();

    return g_ascii_strdown(name ? name : "none", -1);
}

/* The report's first line, as the accelerator's users know it. */
static char *report_headline(void)
{
    const AccelOpsClass *ops = cpus_get_accel();

    if (ops && ops->guest_memory_fault_headline) {
        return ops->guest_memory_fault_headline();
    }
    return g_strdup("guest memory fault");
}

/* What of the block @f names is lost, given its cause. */
static void mark_fault_lost(GuestMemoryFault *f)
{
    RAMBlock *rb = f->block;
    uint64_t page;
    ram_addr_t start;
    off_t size;

    if (!rb) {
        return;
    }
    page = guest_memory_page_size(rb);
    switch (f->cause) {
    case GUEST_MEMORY_FAULT_CAUSE_BACKING_TRUNCATED:
        /* Everything past the end of the file. */
        if (guest_memory_truncated_at(rb, &start, &size)) {
            guest_memory_mark_lost(rb, start, rb->used_length);
        }
        break;
    case GUEST_MEMORY_FAULT_CAUSE_NO_SPACE:
    case GUEST_MEMORY_FAULT_CAUSE_HARDWARE_ERROR:
        if (f->has_gpa || f->host_addr) {
            start = QEMU_ALIGN_DOWN(f->offset, page);
            guest_memory_mark_lost(rb, start, start + MAX(f->size, page));
        }
        break;
    default:
        /* A mismatch or a missing slot loses no data. */
        break;
    }
}

static void queued_add_cpu(QueuedReport *q, int cpu_index)
{
    if (cpu_index < 0) {
        return;
    }
    for (guint i = 0; i < q->cpus->len; i++) {
        if (g_array_index(q->cpus, int, i) == cpu_index) {
            return;
        }
    }
    g_array_append_val(q->cpus, cpu_index);
}

static void queued_free(QueuedReport *q)
{
    guest_memory_fault_cleanup(&q->f);
    g_array_free(q->cpus, true);
    g_free(q);
}

bool guest_memory_fault_report(GuestMemoryFault *f)
{
    GuestMemoryLoss *loss;
    QueuedReport *q;
    bool locked = bql_locked();
    bool opened = false;
    const char *block;

    /* vCPU threads report without the BQL; events and the monitor want it. */
    if (!locked) {
        bql_lock();
    }
    if (!f->cause_detail) {
        guest_memory_fault_probe(f);
    }
    qatomic_set(&holds_stop, true);
    mark_fault_lost(f);
    block = f->block ? qemu_ram_get_idstr(f->block) : NULL;
    loss = f->block ? f->block->memory_loss : NULL;

    if (loss && loss->incident_open && !loss->incident_running) {
        /* The same incident: one truncation, one pass, several vCPUs. */
        loss->incident_faults += f->count;
        q = loss->incident_report;
        if (q) {
            /* Not printed yet: the report names this vCPU too. */
            q->f.count += f->count;
            queued_add_cpu(q, f->cpu_index);
        }
        trace_guest_memory_fault_merged(GuestMemoryFaultPath_str(f->path),
                                        f->cpu_index, block,
                                        loss->incident_faults);
        goto out;
    }
    if (reports_since_reset >= REPORT_CAP) {
        if (reports_since_reset++ == REPORT_CAP) {
            error_report("guest memory fault: %u incidents since the last "
                         "reset; further ones are not reported until the "
                         "VM is reset", REPORT_CAP);
        }
        trace_guest_memory_fault_merged(GuestMemoryFaultPath_str(f->path),
                                        f->cpu_index, block ? block : "-", 0);
        goto out;
    }
    reports_since_reset++;

    q = g_new0(QueuedReport, 1);
    q->f = *f;
    q->f.backing_path = g_strdup(f->backing_path);
    q->f.cause_detail = g_strdup(f->cause_detail);
    q->cpus = g_array_new(false, false, sizeof(int));
    queued_add_cpu(q, f->cpu_index);
    QTAILQ_INSERT_TAIL(&queued_reports, q, next);
    if (loss) {
        /* After a report that left the VM running: this one stops it. */
        loss->incident_open = true;
        loss->incident_running = false;
        loss->incident_faults = f->count;
        loss->incident_report = q;
    }
    opened = true;
out:
    if (!locked) {
        bql_unlock();
    }
    return opened;
}

/* What the report line says was done, after the fault itself. */
static void append_action(GString *line, GuestMemoryFaultAction action,
                          const char *why)
{
    switch (action) {
    case GUEST_MEMORY_FAULT_ACTION_MACHINE_CHECK:
        g_string_append(line, "; action: machine check raised in the guest, "
                        "the VM keeps running");
        break;
    case GUEST_MEMORY_FAULT_ACTION_SHUTDOWN:
        g_string_append_printf(line, "; action: processor shutdown (triple "
                               "fault): %s", why);
        break;
    case GUEST_MEMORY_FAULT_ACTION_NONE:
        g_string_append(line, "; action: none yet, the VM keeps running and "
                        "the guest gets a machine check when it touches a "
                        "lost page");
        break;
    default:
        break;
    }
}

/*
 * Print the report lines and send the event for @q, telling @action
 * (and @why, for a shutdown).
 */
static void print_report(QueuedReport *q, GuestMemoryFaultAction action,
                         const char *why)
{
    GuestMemoryFault *f = &q->f;
    g_autoptr(GString) line = g_string_new("guest memory fault: ");
    g_autoptr(GArray) ranges = NULL;
    g_autofree char *backing = NULL;
    g_autofree char *accel = accel_name();
    g_autofree char *headline = report_headline();
    GuestMemoryRangeList *event_ranges = NULL, **tail = &event_ranges;
    intList *event_cpus = NULL, **cpu_tail = &event_cpus;
    GuestMemoryLoss *loss = f->block ? f->block->memory_loss : NULL;
    const char *block = f->block ? qemu_ram_get_idstr(f->block) : NULL;
    /* q->cpus holds the reporting vCPU first, if a vCPU reports. */
    guint first_other = f->cpu_index >= 0 ? 1 : 0;
    /* Other vCPUs met the same loss before they stopped. */
    bool several = q->cpus->len > first_other;

    if (loss && qatomic_read(&loss->lost_pages)) {
        ranges = guest_memory_lost_ranges(f->block);
    } else {
        ranges = g_array_new(false, false, sizeof(GuestMemoryRange));
    }
    if (ranges->len && (!f->has_gpa || !f->size ||
                        f->path == GUEST_MEMORY_FAULT_PATH_BACKING_WATCH ||
                        f->path == GUEST_MEMORY_FAULT_PATH_GUEST_REQUEST)) {
        /* No access yet: the first range the guest lost. */
        GuestMemoryRange *r = &g_array_index(ranges, GuestMemoryRange, 0);

        guest_memory_fault_set_gpa(f, r->gpa, r->size);
    }
    backing = backing_words(f);

    if (f->cpu_index >= 0) {
        g_string_append_printf(line, "vCPU %d, ", f->cpu_index);
    } else if (f->path == GUEST_MEMORY_FAULT_PATH_BACKING_WATCH) {
        g_string_append(line, "no access yet, ");
    } else if (f->path != GUEST_MEMORY_FAULT_PATH_GUEST_REQUEST) {
        g_string_append(line, "QEMU's own access, ");
    }
    if (several) {
        g_string_append(line, "also vCPU");
        for (guint i = first_other; i < q->cpus->len; i++) {
            g_string_append_printf(line, " %d", g_array_index(q->cpus, int,
                                                              i));
        }
        g_string_append(line, ", ");
    }
    if (f->path == GUEST_MEMORY_FAULT_PATH_GUEST_REQUEST) {
        g_string_append_printf(line, "found at a guest %s request, ",
                               f->request);
    }
    if (f->has_gpa && f->size) {
        g_string_append_printf(line, "GPA 0x%" HWADDR_PRIx "-0x%" HWADDR_PRIx
                               ", ", f->gpa, f->gpa + f->size - 1);
    } else if (f->has_gpa) {
        g_string_append_printf(line, "GPA 0x%" HWADDR_PRIx ", ", f->gpa);
    } else {
        g_string_append(line, "GPA unknown, ");
    }
    /*
     * Only private memory is named: "shared" would read as the backend's
     * share option, which has nothing to do with it.
     */
    g_string_append_printf(line, "%s, %s", access_words(f->access),
                           f->is_private ? "private memory, " : "");
    if (block && f->page_unknown) {
        g_string_append_printf(line, "RAM block %s, ", block);
    } else if (block) {
        g_string_append_printf(line, "RAM block %s offset 0x%" PRIx64 ", ",
                               block, (uint64_t)f->offset);
    }
    g_string_append_printf(line, "%s, cause: %s (found by %s)", backing,
                           f->cause_detail,
                           GuestMemoryFaultPath_str(f->path));
    if (ranges->len) {
        g_string_append(line, "; lost: GPA ");
        guest_memory_append_ranges(line, ranges, GUEST_MEMORY_LINE_RANGES);
    }
    if (f->count > 1) {
        g_string_append_printf(line, "; %u faults", f->count);
    }
    append_action(line, action, why);

    trace_guest_memory_fault_report(GuestMemoryFaultPath_str(f->path),
                                    f->cpu_index, f->has_gpa ? f->gpa : -1,
                                    f->size,
                                    GuestMemoryAccess_str(f->access),
                                    GuestMemoryFaultCause_str(f->cause));
    if (action == GUEST_MEMORY_FAULT_ACTION_STOP) {
        fprintf(stderr, "error: %s\n", headline);
    } else {
        /* Nothing failed for good: not the accelerator's words. */
        fprintf(stderr, "warning: guest memory fault\n");
    }
    fprintf(stderr, "%s\n", line->str);

    for (guint i = 0; i < ranges->len; i++) {
        GuestMemoryRange *r = g_new(GuestMemoryRange, 1);

        *r = g_array_index(ranges, GuestMemoryRange, i);
        QAPI_LIST_APPEND(tail, r);
    }
    for (guint i = 0; several && i < q->cpus->len; i++) {
        QAPI_LIST_APPEND(cpu_tail, g_array_index(q->cpus, int, i));
    }
    qapi_event_send_guest_memory_fault(accel, f->path,
                                       f->cpu_index >= 0, f->cpu_index,
                                       event_cpus != NULL, event_cpus,
                                       f->has_gpa, f->gpa,
                                       f->size != 0, f->size,
                                       f->access, f->is_private,
                                       block,
                                       block != NULL && !f->page_unknown,
                                       f->offset,
                                       f->backing, f->backing_path,
                                       f->cause, f->cause_detail,
                                       f->count, event_ranges != NULL,
                                       event_ranges, action);
    qapi_free_GuestMemoryRangeList(event_ranges);
    qapi_free_intList(event_cpus);
}

/*
 * In the main loop, with the BQL: stop every vCPU, so that no fault is
 * still on its way, then print what is queued, dump the registers of
 * the vCPU each report is for (exact now: stopped, and unwound to the
 * faulting instruction where the accelerator can), and stop the VM.
 */
static void emit_reports(void)
{
    QueuedReport *q;
    CPUState *cpu;

    if (emitting) {
        return;
    }
    emitting = true;
    pause_all_vcpus();
    /* What the vCPUs recorded in signal handlers before they stopped. */
    guest_memory_take_recorded();
    while ((q = QTAILQ_FIRST(&queued_reports))) {
        QTAILQ_REMOVE(&queued_reports, q, next);
        if (q->f.block && q->f.block->memory_loss &&
            q->f.block->memory_loss->incident_report == q) {
            q->f.block->memory_loss->incident_report = NULL;
        }
        print_report(q, GUEST_MEMORY_FAULT_ACTION_STOP, NULL);
        cpu = q->f.cpu_index >= 0 ? qemu_get_cpu(q->f.cpu_index) : NULL;
        if (cpu) {
            /* The code bytes may be what is unbacked: do not read them. */
            cpu_synchronize_state(cpu);
            cpu_dump_state(cpu, stderr, 0);
        }
        queued_free(q);
    }
    if (runstate_is_live(runstate_get())) {
        vm_stop(RUN_STATE_INTERNAL_ERROR);
    } else {
        /*
         * Already stopped: still, it must not be resumed without a reset
         * (runstate_needs_reset() says so while holds_stop is set, even
         * where internal-error cannot be entered).
         */
        runstate_try_set(RUN_STATE_INTERNAL_ERROR);
    }
    emitting = false;
}

static void report_bh_cb(void *opaque)
{
    emit_reports();
}

void guest_memory_fault_hold_vcpu(CPUState *cpu)
{
    /* Out of the guest until the VM stops; the main loop stops it. */
    cpu_stop_current();
    qemu_bh_schedule(report_bh);
}

bool guest_memory_fault_vcpu_held(CPUState *cpu)
{
    if (!qatomic_read(&holds_stop)) {
        return false;
    }
    guest_memory_fault_hold_vcpu(cpu);
    return true;
}

/* Does @f's cause lose data (rather than a slot or a conversion)? */
static bool fault_loses_data(GuestMemoryFault *f)
{
    return f->cause == GUEST_MEMORY_FAULT_CAUSE_BACKING_TRUNCATED ||
           f->cause == GUEST_MEMORY_FAULT_CAUSE_NO_SPACE ||
           f->cause == GUEST_MEMORY_FAULT_CAUSE_HARDWARE_ERROR;
}

/*
 * With the BQL: report @f, which leaves the VM running (@action), once
 * per incident as guest_memory_fault_report() counts them, printed and
 * sent now: nothing waits for the vCPUs to stop.  An incident that the
 * backing-file watch opened (action none) is reported once more, for
 * the first error raised in the guest, so that management learns it.
 */
static void report_running(GuestMemoryFault *f, GuestMemoryFaultAction action,
                           const char *why)
{
    GuestMemoryLoss *loss = f->block->memory_loss;
    const char *block = qemu_ram_get_idstr(f->block);
    bool raised = action != GUEST_MEMORY_FAULT_ACTION_NONE;
    QueuedReport q = { .f = *f };

    if (loss->incident_open && (!raised || loss->incident_raised)) {
        loss->incident_faults += f->count;
        trace_guest_memory_fault_merged(GuestMemoryFaultPath_str(f->path),
                                        f->cpu_index, block,
                                        loss->incident_faults);
        return;
    }
    if (!loss->incident_open) {
        if (reports_since_reset >= REPORT_CAP) {
            trace_guest_memory_fault_merged(
                GuestMemoryFaultPath_str(f->path), f->cpu_index, block, 0);
            return;
        }
        reports_since_reset++;
        loss->incident_open = true;
        loss->incident_running = true;
        loss->incident_faults = 0;
    }
    loss->incident_faults += f->count;
    loss->incident_raised = raised;
    q.cpus = g_array_new(false, false, sizeof(int));
    queued_add_cpu(&q, f->cpu_index);
    print_report(&q, action, why);
    g_array_free(q.cpus, true);
}

/*
 * If @f's RAM block hands lost pages to the guest and @cpu's access met
 * a lost page at a known address, raise the error in the guest, report
 * it and return true: @cpu goes on.
 */
static bool fault_to_guest(GuestMemoryFault *f, CPUState *cpu)
{
    const SysemuCPUOps *ops = cpu->cc->sysemu_ops;
    GuestMemoryFaultAction action;
    const char *why = NULL;

    if (!f->block || !f->block->memory_loss || !f->has_gpa ||
        !ops->raise_memory_error || !fault_loses_data(f) ||
        !guest_memory_block_guest_error(f->block)) {
        return false;
    }
    mark_fault_lost(f);
    if (ops->raise_memory_error(cpu, f->gpa, !f->insn_done, &why)) {
        action = GUEST_MEMORY_FAULT_ACTION_MACHINE_CHECK;
        f->block->memory_loss->incident_shutdown = false;
    } else if (f->block->memory_loss->incident_shutdown) {
        /*
         * It could not take one before either, and after that shutdown
         * (a reset) it met the loss again before it could: firmware, say.
         * Stop rather than reset forever.
         */
        return false;
    } else {
        /* What the processor does with a machine check it cannot take. */
        action = GUEST_MEMORY_FAULT_ACTION_SHUTDOWN;
        f->block->memory_loss->incident_shutdown = true;
        qemu_system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET);
    }
    trace_guest_memory_fault_to_guest(cpu->cpu_index, f->gpa,
                                      GuestMemoryFaultAction_str(action));
    report_running(f, action, why);
    return true;
}

bool guest_memory_fault_guest_error(GuestMemoryFault *f)
{
    return f->block && guest_memory_block_guest_error(f->block);
}

bool guest_memory_fault_report_vcpu(GuestMemoryFault *f, CPUState *cpu)
{
    bool locked = bql_locked();
    bool handed;

    if (!locked) {
        bql_lock();
    }
    if (!f->cause_detail) {
        guest_memory_fault_probe(f);
    }
    handed = fault_to_guest(f, cpu);
    if (!handed) {
        guest_memory_fault_report(f);
    }
    if (!locked) {
        bql_unlock();
    }
    return handed;
}

bool guest_memory_fault_trap(GuestMemoryFault *f, unsigned *generation)
{
    bool locked = bql_locked();
    bool trapped = false;

    if (!locked) {
        bql_lock();
    }
    if (!f->cause_detail) {
        guest_memory_fault_probe(f);
    }
    if (f->block && f->block->memory_loss && fault_loses_data(f) &&
        guest_memory_block_guest_error(f->block)) {
        unsigned covered;

        mark_fault_lost(f);
        covered = guest_memory_cover_lost(f->block);
        trapped = *generation != covered;
        *generation = covered;
    }
    if (!locked) {
        bql_unlock();
    }
    return trapped;
}

void guest_memory_fault_report_and_stop(GuestMemoryFault *f)
{
    if (f->path == GUEST_MEMORY_FAULT_PATH_BACKING_WATCH && f->block &&
        f->block->memory_loss && guest_memory_block_guest_error(f->block)) {
        /* No access yet: each access will raise the error in the guest. */
        if (!f->cause_detail) {
            guest_memory_fault_probe(f);
        }
        mark_fault_lost(f);
        if (kvm_enabled()) {
            /*
             * Cover the pages now: KVM may never tell of an access (its
             * asynchronous page fault drops the error, and the guest
             * process waits for the page forever).
             */
            guest_memory_cover_lost(f->block);
        }
        report_running(f, GUEST_MEMORY_FAULT_ACTION_NONE, NULL);
        return;
    }
    guest_memory_fault_report(f);
    if (qemu_in_vcpu_thread()) {
        guest_memory_fault_hold_vcpu(current_cpu);
    } else {
        emit_reports();
    }
}

/* The first block of lost-page-action=stop whose backing file is short. */
static int find_stop_truncated_cb(RAMBlock *rb, void *opaque)
{
    GuestMemoryFault *f = opaque;
    ram_addr_t offset;
    off_t size;

    if (guest_memory_block_guest_error(rb) ||
        !guest_memory_truncated_at(rb, &offset, &size)) {
        return 0;
    }
    f->block = rb;
    f->offset = offset;
    return 1;
}

bool guest_memory_fault_check_guest_request(const char *what,
                                            int cpu_index)
{
    GuestMemoryFault f;

    /*
     * Only a truncated backing: a full filesystem loses no page by
     * itself, and a healthy guest must still be able to reboot.
     */
    guest_memory_fault_init(&f, GUEST_MEMORY_FAULT_PATH_GUEST_REQUEST,
                            cpu_index);
    /* With guest-error, each access to a lost page raises the error. */
    if (!qemu_ram_foreach_block(find_stop_truncated_cb, &f)) {
        guest_memory_fault_cleanup(&f);
        return false;
    }
    f.request = what;
    guest_memory_fault_probe(&f);
    guest_memory_fault_report_and_stop(&f);
    guest_memory_fault_cleanup(&f);
    return true;
}

/* --- reset by management --- */

/* Map the backing again over [@start, @end) of @rb; false if it failed. */
bool guest_memory_restore_mapping(RAMBlock *rb, ram_addr_t start,
                                  ram_addr_t end)
{
    /* As the block was mapped (qemu_ram_mmap()). */
    int prot = rb->flags & RAM_READONLY ? PROT_READ : PROT_READ | PROT_WRITE;
    int flags = MAP_FIXED | (qemu_ram_is_shared(rb) ? MAP_SHARED
                                                    : MAP_PRIVATE);

    if (rb->flags & RAM_NORESERVE) {
        flags |= MAP_NORESERVE;
    }
    if (mmap(rb->host + start, end - start, prot, flags,
             rb->fd, rb->fd_offset + start) == MAP_FAILED) {
        warn_report("RAM block %s: cannot map its backing again at offset "
                    "0x%" PRIx64 ": %s", qemu_ram_get_idstr(rb),
                    (uint64_t)start, strerror(errno));
        return false;
    }
    return true;
}

static int reset_block_cb(RAMBlock *rb, void *opaque)
{
    GuestMemoryLoss *loss = rb->memory_loss;
    uint64_t page = guest_memory_page_size(rb);
    uint64_t p = 0, q, backed_pages = loss ? loss->nr_pages : 0;
    ram_addr_t trunc;
    off_t size;

    if (!loss) {
        return 0;
    }
    /* Pages still lost are covered again when KVM meets them. */
    guest_memory_trap_remove(rb);
    loss->incident_open = false;
    loss->incident_running = false;
    loss->incident_faults = 0;
    loss->incident_raised = false;
    loss->incident_shutdown = false;
    if (rb->fd >= 0 && guest_memory_truncated_at(rb, &trunc, &size)) {
        backed_pages = trunc / page;
    }
    /* The watch fires again once the backing is whole and shrinks again. */
    loss->watch_reported = backed_pages < loss->nr_pages &&
                           rb->fd >= 0 &&
                           backed_pages * page < rb->used_length;

    while (qatomic_read(&loss->lost_pages)) {
        p = find_next_bit(loss->lost, loss->nr_pages, p);
        if (p >= loss->nr_pages) {
            break;
        }
        q = find_next_zero_bit(loss->lost, loss->nr_pages, p);
        if (rb->fd >= 0 &&
            guest_memory_restore_mapping(rb, p * page,
                                         MIN(q * page, rb->max_length))) {
            /*
             * The anonymous stand-ins and the poison are gone: the
             * backing again, or a fault.
             */
            guest_memory_poison_restored(rb, p, q);
        }
        for (; p < q; p++) {
            /* Anonymous RAM: the page was replaced, as for poisoned pages. */
            if (rb->fd < 0 || p < backed_pages) {
                clear_bit_atomic(p, loss->lost);
                qatomic_dec(&loss->lost_pages);
            }
        }
    }
    trace_guest_memory_fault_reset(qemu_ram_get_idstr(rb),
                                   qatomic_read(&loss->lost_pages));
    return 0;
}

void guest_memory_fault_system_reset(bool guest)
{
    if (guest) {
        return;
    }
    qemu_ram_foreach_block(reset_block_cb, NULL);
    reports_since_reset = 0;
    qatomic_set(&holds_stop, false);
}

/* --- when the machine is ready --- */

void guest_memory_fault_machine_ready(void)
{
    if (!report_bh) {
        qatomic_set(&report_bh, qemu_bh_new(report_bh_cb, NULL));
    }
    guest_memory_sigbus_start();
    guest_memory_watch_machine_ready();
}
