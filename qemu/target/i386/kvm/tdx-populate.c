/*
 * Populating a TD's initial memory (KVM_TDX_INIT_MEM_REGION)
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The kernel contract (docs/devel/kvm-kernel-contract.rst sections 1 and 2):
 *
 * - Linux 6.19 takes kvm->lock, every vCPU mutex and slots_lock: -EBUSY
 *   while a vCPU is being created or the TDX module reports a busy
 *   operand, -EINTR on a signal, and the call blocks while a vCPU sits in
 *   KVM_RUN.  Progress is written back into the struct on success and on
 *   error (gpa and source_addr advance, nr_pages shrinks): re-issuing the
 *   same struct resumes.
 * - -EIO: a KVM_BUG_ON fired or MR.EXTEND failed; the VM is dead.
 *   -EINVAL, -EPERM, -EFAULT, -ENOMEM: see tdx_populate_cause().
 * - Every TDX kernel refuses an unaligned source_addr or gpa (-EINVAL);
 *   Linux 7.0 pins the source page first.
 * - In-place population (not released): the section is written into the
 *   guest_memfd's shared pages, converted to private with
 *   KVM_SET_MEMORY_ATTRIBUTES2, and populated with source_addr = 0
 *   (source_addr is then not advanced).
 *
 * No QEMU state is touched here: the caller passes the ioctls, so that
 * unit tests can run the unit against a model of the contract.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "hw/i386/tdvf.h"
#include "tdx-populate.h"

#define TDX_PAGE_SIZE 4096ULL

const char *tdx_section_type_name(uint32_t type)
{
    switch (type) {
    case TDVF_SECTION_TYPE_BFV:
        return "BFV";
    case TDVF_SECTION_TYPE_CFV:
        return "CFV";
    case TDVF_SECTION_TYPE_TD_HOB:
        return "TD_HOB";
    case TDVF_SECTION_TYPE_TEMP_MEM:
        return "TEMP_MEM";
    default:
        return "unknown";
    }
}

/* What the kernel contract says an errno means here. */
static const char *tdx_populate_cause(int err, bool in_place)
{
    switch (err) {
    case EIO:
        return "the TDX VM is dead: KVM stopped it after an internal error "
               "or a failed TDH.MR.EXTEND; see the host kernel log";
    case EPERM:
        return "a page of the range is write-tracked by KVM";
    case EINVAL:
        return "KVM refused the range: it must be private guest_memfd "
               "memory, page-aligned, with every vCPU through "
               "KVM_TDX_INIT_VCPU, before KVM_TDX_FINALIZE_VM";
    case EFAULT:
        return in_place ? "KVM could not get the guest_memfd pages"
                        : "KVM could not read the source pages (QEMU's copy "
                          "of the section)";
    case ENOMEM:
        return "the host is out of memory for pinning or mapping the pages";
    case EOPNOTSUPP:
        return "this kernel cannot populate from the guest_memfd itself "
               "(source_addr 0)";
    default:
        return "unexpected error from KVM";
    }
}

static void tdx_populate_describe(GString *msg, const TdxPopulateSection *s,
                                  uint32_t flags)
{
    g_string_append_printf(msg, "TDVF section %s (GPA 0x%" PRIx64 "-0x%"
                            PRIx64 ", %" PRIu64 " pages, %s, flags 0x%x)",
                            tdx_section_type_name(s->type), s->gpa,
                            s->gpa + s->size - 1,
                            (uint64_t)(s->size / TDX_PAGE_SIZE),
                            flags & KVM_TDX_MEASURE_MEMORY_REGION ?
                            "measured" : "not measured", flags);
}

static int tdx_populate_check(const TdxPopulateSection *s, bool in_place,
                              uint32_t flags, Error **errp)
{
    g_autoptr(GString) msg = g_string_new("");
    const char *why = NULL;

    if (!s->size || (s->size | s->gpa) & (TDX_PAGE_SIZE - 1) ||
        s->gpa + s->size < s->gpa) {
        why = "GPA range is empty, not 4 KiB-aligned or overflows";
    } else if (in_place && (!s->gmem_map || s->gmem_fd < 0 ||
                            (s->gmem_offset & (TDX_PAGE_SIZE - 1)))) {
        why = "no page-aligned guest_memfd mapping to populate in place";
    } else if (!in_place && !s->data) {
        why = "no source data";
    } else if (!in_place && ((uintptr_t)s->data & (TDX_PAGE_SIZE - 1))) {
        g_string_append_printf(msg, "its data at offset 0x%x of the TDVF "
                               "image is not 4 KiB-aligned, and KVM refuses "
                               "unaligned sources",
                               s->data_offset);
        why = msg->str;
    }
    if (why) {
        g_autoptr(GString) full = g_string_new("cannot populate ");

        tdx_populate_describe(full, s, flags);
        error_setg(errp, "%s: %s", full->str, why);
        return -EINVAL;
    }
    return 0;
}

static void tdx_populate_fail(const TdxPopulateSection *s, uint32_t flags,
                              bool in_place, int r, uint64_t done,
                              uint64_t left, uint64_t hw_error, Error **errp)
{
    g_autoptr(GString) msg = g_string_new("");

    tdx_populate_describe(msg, s, flags);
    error_setg(errp, "KVM_TDX_INIT_MEM_REGION failed for %s after %" PRIu64
               " of %" PRIu64 " pages (%" PRIu64 " remaining): %s (%s; "
               "hw_error 0x%" PRIx64 ")", msg->str, done, done + left, left,
               strerror(-r), tdx_populate_cause(-r, in_place), hw_error);
}

#ifdef CONFIG_KVM_GMEM_IN_PLACE
static int tdx_populate_prepare_in_place(const TdxPopulateOps *ops,
                                         const TdxPopulateSection *s,
                                         uint32_t flags,
                                         TdxPopulateStats *stats,
                                         Error **errp)
{
    Error *local_err = NULL;
    int r;

    /* The image goes straight into the guest_memfd: no bounce buffer. */
    if (s->data) {
        memcpy(s->gmem_map, s->data, s->size);
    } else {
        memset(s->gmem_map, 0, s->size);
    }
    stats->qemu_copied += s->size;
    r = kvm_gmem_set_attributes(ops->set_attributes2, ops->opaque,
                                s->gmem_fd, s->gmem_offset, s->size,
                                KVM_MEMORY_ATTRIBUTE_PRIVATE,
                                &stats->attr_stalls, &local_err);
    if (r < 0) {
        g_autoptr(GString) msg = g_string_new("cannot populate ");

        tdx_populate_describe(msg, s, flags);
        error_propagate_prepend(errp, local_err, "%s in place: ", msg->str);
    }
    return r;
}
#endif

int tdx_populate_section(const TdxPopulateOps *ops,
                         const TdxPopulateSection *s, bool in_place,
                         TdxPopulateStats *stats, Error **errp)
{
    const uint64_t pages = s->size / TDX_PAGE_SIZE;
    const uint32_t flags = s->attributes & TDVF_SECTION_ATTRIBUTES_MR_EXTEND ?
                           KVM_TDX_MEASURE_MEMORY_REGION : 0;
    const uint64_t source = in_place ? 0 : (uintptr_t)s->data;
    struct kvm_tdx_init_mem_region region;
    TdxPopulateStats local_stats = { 0 };
    int64_t start = g_get_monotonic_time();
    unsigned stalled = 0;
    int r;

    /* 6.19 takes every vCPU mutex: a vCPU in KVM_RUN would block us. */
    assert(!ops->vcpus_started || !ops->vcpus_started(ops->opaque));

    if (!stats) {
        stats = &local_stats;
    }
    r = tdx_populate_check(s, in_place, flags, errp);
    if (r < 0) {
        return r;
    }
#ifdef CONFIG_KVM_GMEM_IN_PLACE
    if (in_place) {
        r = tdx_populate_prepare_in_place(ops, s, flags, stats, errp);
        if (r < 0) {
            return r;
        }
    }
#else
    if (in_place) {
        error_setg(errp, "in-place population is not built in");
        return -ENOTSUP;
    }
#endif

    region = (struct kvm_tdx_init_mem_region) {
        .source_addr = source, .gpa = s->gpa, .nr_pages = pages,
    };
    for (;;) {
        uint64_t left = region.nr_pages, done, hw_error = 0;

        r = ops->init_mem_region(ops->opaque, flags, &region, &hw_error);
        stats->ioctls++;
        done = pages - region.nr_pages;
        if (region.nr_pages > left || region.gpa != s->gpa +
            done * TDX_PAGE_SIZE ||
            region.source_addr != (source ? source + done * TDX_PAGE_SIZE
                                          : 0)) {
            g_autoptr(GString) msg = g_string_new("cannot populate ");

            tdx_populate_describe(msg, s, flags);
            error_setg(errp, "%s: KVM_TDX_INIT_MEM_REGION returned %d with "
                       "inconsistent progress (gpa 0x%llx, source 0x%llx, "
                       "%llu pages left)", msg->str, r, region.gpa,
                       region.source_addr, region.nr_pages);
            r = -EPROTO;
            break;
        }
        if (!region.nr_pages && r >= 0) {
            r = 0;
            break;
        }
        if (r >= 0 || r == -EINTR || r == -EAGAIN || r == -EBUSY) {
            /* Interrupted, contended, or a partial success: resume. */
            stats->retries++;
            if (region.nr_pages < left) {
                stalled = 0;
            } else {
                stats->no_progress++;
                if (++stalled > TDX_POPULATE_MAX_NO_PROGRESS) {
                    g_autoptr(GString) msg = g_string_new("cannot populate ");

                    tdx_populate_describe(msg, s, flags);
                    error_setg(errp, "%s: KVM_TDX_INIT_MEM_REGION made no "
                               "progress in %d retries (last: %s) with %"
                               PRIu64 " of %" PRIu64 " pages done; a vCPU "
                               "may be stuck in KVM or the TDX module "
                               "stays busy", msg->str,
                               TDX_POPULATE_MAX_NO_PROGRESS,
                               r < 0 ? strerror(-r) :
                               "success without progress",
                               done, pages);
                    r = -ETIMEDOUT;
                    break;
                }
            }
            if (ops->retrying) {
                ops->retrying(ops->opaque, s, -r, region.nr_pages);
            }
            if (r == -EBUSY) {
                if (ops->delay_us) {
                    ops->delay_us(ops->opaque, TDX_POPULATE_BUSY_DELAY_US);
                } else {
                    g_usleep(TDX_POPULATE_BUSY_DELAY_US);
                }
            }
            continue;
        }
        tdx_populate_fail(s, flags, in_place, r, done, region.nr_pages,
                          hw_error, errp);
        break;
    }
    if (r == 0 && !in_place) {
        stats->kernel_copied += s->size;
    }
    stats->ns += (g_get_monotonic_time() - start) * 1000;
    return r;
}
