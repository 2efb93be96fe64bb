/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * What the files of guest-memory fault handling (system/guest-memory-*.c)
 * share among themselves; the rest of QEMU uses
 * include/system/guest-memory-fault.h.
 */

#ifndef SYSTEM_GUEST_MEMORY_INTERNAL_H
#define SYSTEM_GUEST_MEMORY_INTERNAL_H

#include "qemu/queue.h"
#include "system/memory.h"
#include "system/guest-memory-fault.h"

/*
 * A report waiting for the vCPUs to stop: the fault that opened the
 * incident, and every vCPU whose fault was merged into it meanwhile.
 */
typedef struct QueuedReport {
    GuestMemoryFault f;
    GArray *cpus;                   /* int, f.cpu_index first */
    QTAILQ_ENTRY(QueuedReport) next;
} QueuedReport;

/*
 * An I/O region over a lost guest-physical range of a RAM block, so that
 * KVM exits with the address of an access to it (guest-memory-trap.c).
 */
typedef struct GuestMemoryTrap {
    MemoryRegion mr;
    RAMBlock *rb;
    ram_addr_t offset;              /* of the region's start in @rb */
} GuestMemoryTrap;

/* Lost ranges listed in one report line; the event lists up to MAX. */
#define GUEST_MEMORY_LINE_RANGES 4
#define GUEST_MEMORY_MAX_RANGES 64

/* guest-memory-fault.c */
void guest_memory_set_holds_stop(void);
void guest_memory_schedule_report(void);

/* guest-memory-loss.c */
uint64_t guest_memory_page_size(RAMBlock *rb);
bool guest_memory_block_guest_error(RAMBlock *rb);
void guest_memory_mark_lost(RAMBlock *rb, ram_addr_t start, ram_addr_t end);
bool guest_memory_truncated_at(RAMBlock *rb, ram_addr_t *offset,
                               off_t *file_size);
GArray *guest_memory_lost_ranges(RAMBlock *rb);
void guest_memory_append_ranges(GString *s, GArray *ranges, guint max);

/* guest-memory-gpa.c */
void guest_memory_range_to_gpa(RAMBlock *rb, ram_addr_t start,
                               ram_addr_t end, GArray *ranges);
void guest_memory_merge_ranges(GArray *ranges);
bool guest_memory_offset_to_gpa(RAMBlock *rb, ram_addr_t offset,
                                hwaddr *gpa);
RAMBlock *guest_memory_gpa_to_block(hwaddr gpa, ram_addr_t *offset);

/* guest-memory-probe.c */
char *guest_memory_fd_path(int fd);
bool guest_memory_is_guest_memfd(RAMBlock *rb);
bool guest_memory_fs_free(int fd, uint64_t *free_bytes);
bool guest_memory_find_truncated(GuestMemoryFault *f);

/* guest-memory-sigbus.c */
void guest_memory_take_recorded(void);
void guest_memory_sigbus_start(void);

/* guest-memory-fault.c */
bool guest_memory_restore_mapping(RAMBlock *rb, ram_addr_t start,
                                  ram_addr_t end);

/* guest-memory-trap.c */
GuestMemoryTrap *guest_memory_trap_of(const MemoryRegion *mr);
/* Cover @rb's lost pages; returns a count that changes when it did. */
unsigned guest_memory_cover_lost(RAMBlock *rb);
/* Pages [@first, @last) of @rb have their backing mapped again. */
void guest_memory_poison_restored(RAMBlock *rb, uint64_t first,
                                  uint64_t last);
void guest_memory_trap_remove(RAMBlock *rb);
void guest_memory_trap_free(RAMBlock *rb);

/* guest-memory-watch.c */
void guest_memory_watch_start(RAMBlock *rb);
void guest_memory_watch_stop(RAMBlock *rb);
void guest_memory_watch_machine_ready(void);

#endif /* SYSTEM_GUEST_MEMORY_INTERNAL_H */
