/*
 * Populating a TD's initial memory (KVM_TDX_INIT_MEM_REGION)
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef I386_TDX_POPULATE_H
#define I386_TDX_POPULATE_H

#include <linux/kvm.h>
#include "system/kvm-gmem-attrs.h"

/*
 * Retries of one section that made no progress (-EINTR, -EAGAIN, -EBUSY
 * with nr_pages unchanged) before population gives up.
 */
#define TDX_POPULATE_MAX_NO_PROGRESS 100
/* Pause before retrying -EBUSY (a vCPU being created, a busy operand). */
#define TDX_POPULATE_BUSY_DELAY_US   1000

typedef struct TdxPopulateSection TdxPopulateSection;

typedef struct TdxPopulateOps {
    /*
     * KVM_MEMORY_ENCRYPT_OP(KVM_TDX_INIT_MEM_REGION, @flags) on a vCPU
     * with @region as data: returns 0 or -errno; the kernel advances
     * @region in place and may set *@hw_error.
     */
    int (*init_mem_region)(void *opaque, uint32_t flags,
                           struct kvm_tdx_init_mem_region *region,
                           uint64_t *hw_error);
#ifdef CONFIG_KVM_GMEM_IN_PLACE
    /* KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd (in-place mode). */
    KvmGmemAttrsIoctl set_attributes2;
#endif
    /* Has a vCPU entered KVM_RUN yet?  NULL: cannot tell. */
    bool (*vcpus_started)(void *opaque);
    /* Waits before a retry; NULL: g_usleep(). */
    void (*delay_us)(void *opaque, unsigned us);
    /* Told of each retry (for tracing); may be NULL. */
    void (*retrying)(void *opaque, const TdxPopulateSection *s,
                     int err, uint64_t pages_left);
    void *opaque;
} TdxPopulateOps;

struct TdxPopulateSection {
    uint32_t type;              /* TDVF_SECTION_TYPE_* */
    uint32_t attributes;        /* TDVF_SECTION_ATTRIBUTES_*: MR_EXTEND */
    uint64_t gpa;
    uint64_t size;              /* bytes */
    uint32_t data_offset;       /* in the TDVF image, for messages */
    /* The contents, @size bytes (copy mode: the kernel's source). */
    const void *data;
    /*
     * In-place mode: the guest_memfd range behind @gpa and a shared,
     * writable mapping of it.  The contents are written there, the range
     * is converted to private and populated from itself.
     */
    int gmem_fd;
    uint64_t gmem_offset;
    void *gmem_map;
};

typedef struct TdxPopulateStats {
    unsigned ioctls;            /* KVM_TDX_INIT_MEM_REGION calls */
    unsigned retries;           /* of them, re-issued after a retryable error */
    unsigned no_progress;       /* of those, retries that made no progress */
    unsigned attr_stalls;       /* KVM_SET_MEMORY_ATTRIBUTES2 -EAGAIN stalls */
    uint64_t qemu_copied;       /* bytes QEMU copied into guest memory */
    uint64_t kernel_copied;     /* bytes the kernel copied from a source */
    int64_t ns;                 /* time spent */
} TdxPopulateStats;

const char *tdx_section_type_name(uint32_t type);

/**
 * tdx_populate_section:
 * @ops: the kernel interface
 * @s: the section
 * @in_place: populate from the guest_memfd itself (source_addr 0)
 * @stats: where to add what it took (may be NULL)
 * @errp: error object
 *
 * Populates (and, with TDVF_SECTION_ATTRIBUTES_MR_EXTEND, measures) the
 * section's pages.  Re-issues the same struct after -EINTR, -EAGAIN and
 * -EBUSY, so that the kernel's in-place progress resumes the copy; more
 * than TDX_POPULATE_MAX_NO_PROGRESS retries in a row without progress
 * are an error.  Must run before any vCPU enters KVM_RUN.
 *
 * Returns: 0, or a negative errno with @errp set to a message naming the
 * section, its GPA range, the pages done and remaining, the flags and
 * the likely cause.
 */
int tdx_populate_section(const TdxPopulateOps *ops,
                         const TdxPopulateSection *s, bool in_place,
                         TdxPopulateStats *stats, Error **errp);

#endif
