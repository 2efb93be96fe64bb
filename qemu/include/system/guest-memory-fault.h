/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * One report for every guest-memory fault: guest RAM that is no longer
 * backed by host memory (a truncated backing file, a full tmpfs or
 * hugetlbfs, a missing memory slot, a private/shared mismatch, a hardware
 * memory error), however it reaches QEMU: what the accelerator reports
 * (a failed vCPU run, an MMIO exit at a RAM address, a memory-fault exit,
 * an emulation failure), a SIGBUS on a vCPU or on QEMU's own access, or
 * the backing-file watch.
 *
 * Lost pages are tracked per RAM block and every QEMU-side reader of
 * guest RAM consults them (migration, snapshots, dump, memsave/pmemsave,
 * device DMA), so that nothing reads fabricated data as guest data.
 *
 * system/guest-memory-*.c implement this on Linux hosts; elsewhere
 * stubs/guest-memory-fault.c answers the calls made from code that every
 * host builds (nothing is ever lost there).
 */

#ifndef SYSTEM_GUEST_MEMORY_FAULT_H
#define SYSTEM_GUEST_MEMORY_FAULT_H

#include "exec/hwaddr.h"
#include "exec/cpu-common.h"
#include "qapi/qapi-types-run-state.h"

typedef struct GuestMemoryFault {
    GuestMemoryFaultPath path;      /* how QEMU learnt of it */
    int cpu_index;                  /* -1: not a vCPU */
    bool has_gpa;
    hwaddr gpa;                     /* first byte of the faulting range */
    uint64_t size;                  /* 0: unknown */
    GuestMemoryAccess access;
    bool is_private;
    int sigbus_code;                /* si_code of a SIGBUS, else 0 */
    void *host_addr;                /* QEMU's address of the page, if known */
    bool insn_done;                 /* the vCPU is past the instruction */
    unsigned count;                 /* faults this report stands for */
    const char *request;            /* guest-request: "reset", ... */

    /* Filled in by guest_memory_fault_probe(). */
    RAMBlock *block;
    ram_addr_t offset;              /* offset of gpa in block */
    bool page_unknown;              /* the block is known, its page not */
    GuestMemoryBacking backing;
    char *backing_path;
    GuestMemoryFaultCause cause;
    char *cause_detail;
} GuestMemoryFault;

/*
 * What of one RAM block has lost its host backing (RAMBlock::memory_loss,
 * allocated with the block).  One bit per page of the block's page size.
 * Bits are set atomically (a fault is recorded on whichever thread meets
 * it) and cleared only by a reset from management, for pages whose
 * backing is back.
 */
typedef struct GuestMemoryLoss {
    unsigned long *lost;
    uint64_t nr_pages;
    unsigned long lost_pages;       /* bits set in @lost; atomic */
    bool guest_error;               /* lost-page-action=guest-error; atomic */
    /* The rest is under the BQL. */
    bool incident_open;             /* reported, not reset since */
    unsigned incident_faults;       /* faults merged into that report */
    bool incident_running;          /* reported with the VM running */
    bool incident_raised;           /* it told of an error in the guest */
    bool incident_shutdown;         /* a guest could not take one */
    void *incident_report;          /* the report, until printed */
    bool watch_reported;            /* the watch saw the backing short */
    int wd;                         /* inotify watch, -1: none */
    GPtrArray *traps;               /* GuestMemoryTrap, see trap_lost() */
    unsigned long trapped_pages;    /* lost_pages when they were made */
    unsigned long *poisoned;        /* lost pages KVM meets as poison */
} GuestMemoryLoss;

/* Linux only: used by accelerators and the SIGBUS handler. */
#ifdef CONFIG_LINUX
/*
 * Initialize @f for a fault found through @path by vCPU @cpu_index
 * (-1 when no vCPU is involved).
 */
void guest_memory_fault_init(GuestMemoryFault *f, GuestMemoryFaultPath path,
                             int cpu_index);

/* Set the guest-physical range of @f. */
void guest_memory_fault_set_gpa(GuestMemoryFault *f, hwaddr gpa,
                                uint64_t size);

/*
 * Find the RAM block, backing and cause of @f without touching guest
 * memory.  Returns true if the page is known to be unbacked (cause is
 * not "unknown").
 */
bool guest_memory_fault_probe(GuestMemoryFault *f);

/*
 * Without touching it: is the host page behind @gpa unbacked?  Returns
 * true and fills @f (already initialized) when it is.  False for
 * addresses that are not RAM and for pages that are backed.
 */
bool guest_memory_gpa_is_unbacked(hwaddr gpa, GuestMemoryFault *f);

/*
 * Search every RAM block for a range whose backing is gone (file or
 * memfd shorter than the block, or a full filesystem under a hole).
 * Fills @f and returns true for the first one found.
 */
bool guest_memory_find_unbacked(GuestMemoryFault *f);

/*
 * Report @f once per incident: the first fault on a RAM block opens it;
 * later faults on the same block, until management resets the VM, are
 * merged into it (counted, traced, and the vCPU named if the report is
 * not printed yet).  Marks the lost range of the block and holds the VM
 * stopped against guest-originated events
 * (guest_memory_fault_holds_stop()).  Printing waits until every vCPU
 * has stopped: the main loop then prints the first line (the
 * accelerator's guest_memory_fault_headline) and the detail line, emits
 * GUEST_MEMORY_FAULT, dumps the registers of the reporting vCPU and
 * stops the VM (RUN_STATE_INTERNAL_ERROR).  A vCPU thread that reports calls
 * guest_memory_fault_hold_vcpu() next.  Returns true if @f opened an
 * incident.
 */
bool guest_memory_fault_report(GuestMemoryFault *f);

/*
 * For a fault of vCPU @cpu's own access, on its thread, where the
 * access will be made again (the accelerator left the guest before it
 * completed): if @f's memory backend has lost-page-action=guest-error
 * and its page is known, raise the error in the guest (or the shutdown
 * of a guest that cannot take it), report it without stopping, and
 * return true: @cpu goes on, and the next entry delivers the error.
 * Otherwise report @f as guest_memory_fault_report() does and return
 * false: the caller holds @cpu.
 */
bool guest_memory_fault_report_vcpu(GuestMemoryFault *f, CPUState *cpu);

/* Does @f's memory backend have lost-page-action=guest-error? */
bool guest_memory_fault_guest_error(GuestMemoryFault *f);

/*
 * On the thread of vCPU @cpu after its fault: leave the guest and stay
 * out; the main loop prints what is reported and stops the VM.
 */
void guest_memory_fault_hold_vcpu(CPUState *cpu);

/*
 * Report, then hold the vCPU or (outside vCPU threads) print and stop;
 * the registers dumped are those of @f's vCPU, if any.
 */
void guest_memory_fault_report_and_stop(GuestMemoryFault *f);

/* Free what probing allocated. */
void guest_memory_fault_cleanup(GuestMemoryFault *f);

/*
 * SIGBUS (BUS_ADRERR, or an action-required hardware error) at @addr,
 * from signal context; only async-signal-safe work is done here: the
 * SIGBUS thread is asked, and answers in thread context.  If @addr is
 * guest RAM, that thread marks the page lost, holds the VM and kicks the
 * other vCPUs, records the fault and schedules the report (a vCPU whose
 * accelerator calls guest_memory_fault_take_pending() reports its own
 * fault; a bottom half in the main loop reports the rest); @cpu (if any)
 * is made to leave the guest and stay out until the VM stops, and where
 * the faulting access will be re-executed the thread maps an anonymous
 * page over the lost one so that it can complete.  Returns false if
 * @addr is not guest RAM: the caller must then die as before, after
 * saying where.
 */
bool guest_memory_fault_on_sigbus(int code, void *addr, void *ucontext,
                                  CPUState *cpu);

/*
 * For an access that KVM could not map and did not name (a bare
 * EFAULT), found to be on @f's block: if the block's memory backend has
 * lost-page-action=guest-error, mark what @f lost and cover the lost
 * pages so that the access tells which page it was, and return true:
 * the vCPU enters the guest again.  Where the kernel can (Linux 6.6 and
 * later, UFFDIO_POISON) the pages' host mapping becomes poison: KVM
 * sends a SIGBUS (BUS_MCEERR_AR) with the host address before the access
 * is made (guest_memory_fault_poisoned()).  Elsewhere they are covered
 * with regions that are not RAM, so that KVM has no memory slot there,
 * and the access exits as KVM_EXIT_MMIO with its address
 * (guest_memory_fault_trapped()).  Also true if they are covered already
 * but the vCPU has not entered again since (its access raced with
 * another vCPU's, which covered them): *@generation, the vCPU's, tells.
 * False if the block does not hand lost pages to the guest, or if the
 * vCPU met the same cover again (something else failed).
 */
bool guest_memory_fault_trap(GuestMemoryFault *f, unsigned *generation);

/* Has any block's lost RAM been covered with regions? */
bool guest_memory_fault_trapping(void);

/* Is @host in a page that guest_memory_fault_trap() made poison? */
bool guest_memory_fault_poisoned(void *host);

/*
 * Is @mr one of those regions?  Then fill in @f's block and offset for
 * the address @xlat into @mr, and return true.
 */
bool guest_memory_fault_trapped(MemoryRegion *mr, hwaddr xlat,
                                GuestMemoryFault *f);

/*
 * If a SIGBUS recorded a fault on vCPU @cpu, move it into @f (and
 * return true).  Cheap: one atomic load when nothing is pending.
 */
bool guest_memory_fault_take_pending(CPUState *cpu, GuestMemoryFault *f);
#endif

/*
 * On vCPU @cpu's thread, once the accelerator has left the guest: if
 * the SIGBUS handler unwound @cpu from an access to a page of a memory
 * backend with lost-page-action=guest-error, raise the error in the
 * guest (guest_memory_fault_report_vcpu()), or hold @cpu where it
 * cannot be raised.  One load of a thread-local variable when there is
 * nothing to do.
 */
void guest_memory_fault_vcpu_unwound(CPUState *cpu);

/*
 * For an accelerator, before vCPU @cpu enters the guest: while a fault
 * holds the VM (it may not be reported yet: a SIGBUS on another thread
 * sets the hold at once), hold @cpu as guest_memory_fault_hold_vcpu()
 * does and return true; the vCPU must not enter the guest.
 */
bool guest_memory_fault_vcpu_held(CPUState *cpu);

/*
 * True while a guest-memory fault holds the VM stopped: from the report
 * until management resets the VM.  Guest-originated resets, shutdowns
 * and suspends are then dropped, so that the run state stays
 * internal-error.
 */
bool guest_memory_fault_holds_stop(void);

/*
 * Before the guest's request @what ("reset", "shutdown", "suspend") is
 * carried out: if a RAM block's backing file is shorter than the block
 * (the guest may have met that in a way QEMU was not told of, such as
 * a triple fault on lost page tables), report it, stop the VM and
 * return true: the request is to be dropped.  @cpu_index is the vCPU
 * that made the request, or -1.
 */
bool guest_memory_fault_check_guest_request(const char *what,
                                            int cpu_index);

/*
 * qemu_system_reset() by management (@guest false): restore QEMU's
 * mapping of the backing over replaced pages, forget the pages whose
 * backing is back (the others stay lost and fault again when touched),
 * close the incidents and re-arm the watch.
 */
void guest_memory_fault_system_reset(bool guest);

/*
 * The memory backend of @rb says lost-page-action=guest-error (@on) or
 * stop; any thread may read it at a fault, without locks.
 */
void guest_memory_loss_set_guest_error(RAMBlock *rb, bool on);

/* RAM block life cycle (system/physmem.c). */
void guest_memory_loss_block_added(RAMBlock *rb);
void guest_memory_loss_block_removed(RAMBlock *rb);
void guest_memory_loss_block_free(RAMBlock *rb);

/* Is any page of [@offset, @offset + @len) of @rb lost? */
bool guest_memory_ram_lost_slow(RAMBlock *rb, ram_addr_t offset,
                                ram_addr_t len);

/*
 * False, with an error naming the block and its lost guest-physical
 * ranges, if @rb has lost pages (any block if @rb is NULL); for readers
 * that must not save fabricated data (migration, snapshots, dump).
 */
bool guest_memory_check_lost(RAMBlock *rb, Error **errp);

/*
 * False, with an error, if a page of guest-physical [@gpa, @gpa + @len)
 * of system memory is lost.
 */
bool guest_memory_check_gpa_range(hwaddr gpa, hwaddr len, Error **errp);

/*
 * Whether [@addr, @addr + @len) of @as starts in guest RAM that lost its
 * backing: why address_space_map() refused it, rather than for want of
 * a bounce buffer.
 */
bool guest_memory_as_range_lost(AddressSpace *as, hwaddr addr, hwaddr len);

/*
 * QEMU's own write(2) of guest RAM (a migration stream) fails where the
 * kernel, not QEMU, met a page whose backing file was cut: EFAULT, no
 * SIGBUS, and nothing knows of the loss yet.  Look for a RAM block whose
 * backing is short and, if one is, record its first lost page as a
 * SIGBUS of QEMU's own read would (reported by the main loop).  Returns
 * true, with @errp set to what is lost, when guest RAM is lost.
 */
bool guest_memory_fault_check_backing(Error **errp);

/*
 * Is any page of [@offset, @offset + @len) of @rb lost?  One load when the
 * block has lost nothing, so it can sit on RAM access paths.
 */
#define guest_memory_ram_lost(rb, offset, len)                          \
    (unlikely((rb)->memory_loss &&                                      \
              qatomic_read(&(rb)->memory_loss->lost_pages)) &&          \
     guest_memory_ram_lost_slow(rb, offset, len))

#ifdef CONFIG_LINUX
/*
 * At machine-init-done: watch the backing files of the RAM blocks made
 * so far, and warn about file-backed shared RAM on a filesystem with
 * less free space than it needs.
 */
void guest_memory_fault_machine_ready(void);
#endif

#endif /* SYSTEM_GUEST_MEMORY_FAULT_H */
