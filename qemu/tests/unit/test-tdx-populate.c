/*
 * Unit tests of the TDX population unit (target/i386/kvm/tdx-populate.c)
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Contract test: no TDX hardware is involved.  FakeTd below implements
 * KVM_TDX_INIT_MEM_REGION and KVM_SET_MEMORY_ATTRIBUTES2 as
 * docs/devel/kvm-kernel-contract.rst sections 1 and 2 document them: progress
 * written back into the struct on success and on error (gpa and
 * source_addr advance, nr_pages shrinks; source_addr 0 is not advanced),
 * -EINTR/-EBUSY/-EAGAIN, -EIO for a dead VM, -EPERM for a write-tracked
 * page, -EINVAL after finalize or for a range that is not private,
 * page-aligned sources (every TDX kernel), -EOPNOTSUPP for source_addr 0
 * on a 7.0 kernel, and -EAGAIN with error_offset from ATTRIBUTES2.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/memalign.h"
#include "hw/i386/tdvf.h"
#include "../../target/i386/kvm/tdx-populate.h"

#define PAGE        4096
#define GPA_BASE    0xffc00000ULL
#define NPAGES      16

typedef struct FakeTd {
    /* The TD's private memory for GPA_BASE.. and its state */
    uint8_t mem[NPAGES * PAGE];
    bool populated[NPAGES];
    bool private[NPAGES];       /* in-place: per-page attribute */
    uint32_t flags_seen[64];
    struct kvm_tdx_init_mem_region calls[64];
    unsigned ncalls;
    /* Behaviour */
    unsigned pages_per_call;    /* 0: all; else -EINTR after that many */
    unsigned busy;              /* -EBUSY, no progress, that many times */
    bool again_forever;         /* -EAGAIN, no progress, always */
    int fail_errno;             /* at page fail_page */
    unsigned fail_page;
    bool finalized;
    bool kernel_7_0;            /* source_addr 0: -EOPNOTSUPP */
    bool overshoot;             /* reports more progress than it made */
    /* In place */
    uint8_t *gmem;              /* the guest_memfd's pages, shared view */
    unsigned attr_busy_page;    /* ATTRIBUTES2 -EAGAIN at that page, once */
    bool attr_busy;
    unsigned attr_calls;
    unsigned delays;
    bool vcpus_started;
} FakeTd;

static int fake_init_mem_region(void *opaque, uint32_t flags,
                                struct kvm_tdx_init_mem_region *r,
                                uint64_t *hw_error)
{
    FakeTd *td = opaque;
    unsigned n = 0;

    if (td->ncalls < G_N_ELEMENTS(td->calls)) {
        td->calls[td->ncalls] = *r;
        td->flags_seen[td->ncalls] = flags;
    }
    td->ncalls++;
    if (td->finalized || flags & ~KVM_TDX_MEASURE_MEMORY_REGION ||
        !r->nr_pages || (r->gpa & (PAGE - 1))) {
        return -EINVAL;
    }
    if (r->source_addr & (PAGE - 1)) {
        return -EINVAL;             /* 7.0: page-aligned sources only */
    }
    if (!r->source_addr && td->kernel_7_0) {
        return -EOPNOTSUPP;
    }
    if (td->busy) {
        td->busy--;
        return -EBUSY;
    }
    if (td->again_forever) {
        return -EAGAIN;
    }
    while (r->nr_pages) {
        unsigned page = (r->gpa - GPA_BASE) / PAGE;

        g_assert_cmpuint(page, <, NPAGES);
        if (td->fail_errno && page == td->fail_page) {
            *hw_error = td->fail_errno == EIO ? 0xc0000b0800000001ULL : 0;
            return -td->fail_errno;
        }
        if (td->pages_per_call && n == td->pages_per_call) {
            return -EINTR;
        }
        if (r->source_addr) {
            memcpy(td->mem + page * PAGE, (void *)(uintptr_t)r->source_addr,
                   PAGE);
            r->source_addr += PAGE;
        } else {
            /* In place: the guest_memfd page itself, which is private. */
            if (!td->gmem || !td->private[page]) {
                return -EINVAL;
            }
            memcpy(td->mem + page * PAGE, td->gmem + page * PAGE, PAGE);
        }
        td->populated[page] = true;
        r->gpa += PAGE;
        r->nr_pages--;
        n++;
    }
    if (td->overshoot) {
        r->gpa += PAGE;
    }
    return 0;
}

#ifdef CONFIG_KVM_GMEM_IN_PLACE
static int fake_set_attributes2(void *opaque, int fd,
                                struct kvm_memory_attributes2 *a)
{
    FakeTd *td = opaque;

    td->attr_calls++;
    g_assert_cmpint(fd, ==, 7);
    g_assert_cmphex(a->attributes, ==, KVM_MEMORY_ATTRIBUTE_PRIVATE);
    for (uint64_t off = a->offset; off < a->offset + a->size; off += PAGE) {
        if (td->attr_busy && off / PAGE == td->attr_busy_page) {
            td->attr_busy = false;
            a->error_offset = off;
            return -EAGAIN;
        }
        td->private[off / PAGE] = true;
    }
    return 0;
}
#endif

static bool fake_vcpus_started(void *opaque)
{
    return ((FakeTd *)opaque)->vcpus_started;
}

static void fake_delay(void *opaque, unsigned us)
{
    g_assert_cmpuint(us, ==, TDX_POPULATE_BUSY_DELAY_US);
    ((FakeTd *)opaque)->delays++;
}

static TdxPopulateOps fake_ops(FakeTd *td)
{
    return (TdxPopulateOps) {
        .init_mem_region = fake_init_mem_region,
#ifdef CONFIG_KVM_GMEM_IN_PLACE
        .set_attributes2 = fake_set_attributes2,
#endif
        .vcpus_started = fake_vcpus_started,
        .delay_us = fake_delay,
        .opaque = td,
    };
}

/* Page-aligned section contents, a distinct byte per page. */
static uint8_t *image(unsigned pages)
{
    uint8_t *p = qemu_memalign(PAGE, pages * PAGE);

    for (unsigned i = 0; i < pages; i++) {
        memset(p + i * PAGE, 0xa0 + i, PAGE);
    }
    return p;
}

static TdxPopulateSection bfv(const void *data, unsigned pages)
{
    return (TdxPopulateSection) {
        .type = TDVF_SECTION_TYPE_BFV,
        .attributes = TDVF_SECTION_ATTRIBUTES_MR_EXTEND,
        .gpa = GPA_BASE, .size = pages * PAGE, .data = data,
        .data_offset = 0x1000, .gmem_fd = -1,
    };
}

static void assert_populated(FakeTd *td, const uint8_t *data, unsigned pages)
{
    for (unsigned i = 0; i < pages; i++) {
        g_assert_true(td->populated[i]);
    }
    g_assert_cmpmem(td->mem, pages * PAGE, data, pages * PAGE);
}

static void test_at_once(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(NPAGES);
    TdxPopulateSection s = bfv(data, NPAGES);
    TdxPopulateStats st = { 0 };

    g_assert_cmpint(tdx_populate_section(&ops, &s, false, &st, &error_abort),
                    ==, 0);
    g_assert_cmpuint(td->ncalls, ==, 1);
    g_assert_cmpuint(st.ioctls, ==, 1);
    g_assert_cmpuint(st.retries, ==, 0);
    g_assert_cmphex(td->flags_seen[0], ==, KVM_TDX_MEASURE_MEMORY_REGION);
    g_assert_cmphex(td->calls[0].source_addr, ==, (uintptr_t)data);
    g_assert_cmphex(td->calls[0].gpa, ==, GPA_BASE);
    g_assert_cmpuint(td->calls[0].nr_pages, ==, NPAGES);
    g_assert_cmpuint(st.kernel_copied, ==, NPAGES * PAGE);
    g_assert_cmpuint(st.qemu_copied, ==, 0);
    assert_populated(td, data, NPAGES);
    qemu_vfree(data);
}

/* Partial progress then -EINTR: the same struct, resumed where it stopped. */
static void test_partial_eintr(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(10);
    TdxPopulateSection s = bfv(data, 10);
    TdxPopulateStats st = { 0 };

    td->pages_per_call = 4;
    g_assert_cmpint(tdx_populate_section(&ops, &s, false, &st, &error_abort),
                    ==, 0);
    g_assert_cmpuint(td->ncalls, ==, 3);
    g_assert_cmpuint(st.retries, ==, 2);
    g_assert_cmpuint(st.no_progress, ==, 0);
    g_assert_cmphex(td->calls[1].gpa, ==, GPA_BASE + 4 * PAGE);
    g_assert_cmphex(td->calls[1].source_addr, ==, (uintptr_t)data + 4 * PAGE);
    g_assert_cmpuint(td->calls[1].nr_pages, ==, 6);
    g_assert_cmphex(td->calls[2].gpa, ==, GPA_BASE + 8 * PAGE);
    g_assert_cmpuint(td->calls[2].nr_pages, ==, 2);
    g_assert_cmphex(td->flags_seen[2], ==, KVM_TDX_MEASURE_MEMORY_REGION);
    assert_populated(td, data, 10);
    qemu_vfree(data);
}

static void test_ebusy_then_ok(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(2);
    TdxPopulateSection s = bfv(data, 2);
    TdxPopulateStats st = { 0 };

    td->busy = 3;
    g_assert_cmpint(tdx_populate_section(&ops, &s, false, &st, &error_abort),
                    ==, 0);
    g_assert_cmpuint(td->ncalls, ==, 4);
    g_assert_cmpuint(st.no_progress, ==, 3);
    g_assert_cmpuint(td->delays, ==, 3);
    assert_populated(td, data, 2);
    qemu_vfree(data);
}

/* No progress forever: a bounded number of retries, then an error. */
static void test_no_progress_bounded(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(2);
    TdxPopulateSection s = bfv(data, 2);
    TdxPopulateStats st = { 0 };
    Error *err = NULL;

    td->again_forever = true;
    g_assert_cmpint(tdx_populate_section(&ops, &s, false, &st, &err), ==,
                    -ETIMEDOUT);
    g_assert_cmpuint(td->ncalls, ==, TDX_POPULATE_MAX_NO_PROGRESS + 1);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "cannot populate TDVF section BFV (GPA 0xffc00000-"
                    "0xffc01fff, 2 pages, measured, flags 0x1): "
                    "KVM_TDX_INIT_MEM_REGION made no progress in 100 retries "
                    "(last: Resource temporarily unavailable) with 0 of 2 "
                    "pages done; a vCPU may be stuck in KVM or the TDX "
                    "module stays busy");
    error_free(err);
    qemu_vfree(data);
}

static void test_eio(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(4);
    TdxPopulateSection s = bfv(data, 4);
    Error *err = NULL;

    td->fail_errno = EIO;
    td->fail_page = 1;
    g_assert_cmpint(tdx_populate_section(&ops, &s, false, NULL, &err), ==,
                    -EIO);
    g_assert_cmpuint(td->ncalls, ==, 1);        /* never retried */
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "KVM_TDX_INIT_MEM_REGION failed for TDVF section BFV "
                    "(GPA 0xffc00000-0xffc03fff, 4 pages, measured, flags "
                    "0x1) after 1 of 4 pages (3 remaining): Input/output "
                    "error (the TDX VM is dead: KVM stopped it after an "
                    "internal error or a failed TDH.MR.EXTEND; see the host "
                    "kernel log; hw_error 0xc0000b0800000001)");
    error_free(err);
    qemu_vfree(data);
}

static void test_eperm(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(4);
    TdxPopulateSection s = bfv(data, 4);
    Error *err = NULL;

    s.type = TDVF_SECTION_TYPE_CFV;
    s.attributes = 0;
    td->fail_errno = EPERM;
    td->fail_page = 2;
    g_assert_cmpint(tdx_populate_section(&ops, &s, false, NULL, &err), ==,
                    -EPERM);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "KVM_TDX_INIT_MEM_REGION failed for TDVF section CFV "
                    "(GPA 0xffc00000-0xffc03fff, 4 pages, not measured, "
                    "flags 0x0) after 2 of 4 pages (2 remaining): Operation "
                    "not permitted (a page of the range is write-tracked by "
                    "KVM; hw_error 0x0)");
    error_free(err);
    qemu_vfree(data);
}

static void test_einval_after_finalize(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(1);
    TdxPopulateSection s = bfv(data, 1);
    Error *err = NULL;

    td->finalized = true;
    g_assert_cmpint(tdx_populate_section(&ops, &s, false, NULL, &err), ==,
                    -EINVAL);
    g_assert_cmpuint(td->ncalls, ==, 1);
    g_assert_nonnull(strstr(error_get_pretty(err), "after 0 of 1 pages (1 "
                            "remaining): Invalid argument (KVM refused the "
                            "range: it must be private guest_memfd memory, "
                            "page-aligned, with every vCPU through "
                            "KVM_TDX_INIT_VCPU, before KVM_TDX_FINALIZE_VM"));
    error_free(err);
    qemu_vfree(data);
}

/* An unaligned source never reaches the kernel, and the error names it. */
static void test_unaligned_source(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(3);
    TdxPopulateSection s = bfv(data + 0x200, 2);
    Error *err = NULL;

    s.data_offset = 0x1200;
    g_assert_cmpint(tdx_populate_section(&ops, &s, false, NULL, &err), ==,
                    -EINVAL);
    g_assert_cmpuint(td->ncalls, ==, 0);
    g_assert_cmpstr(error_get_pretty(err), ==,
                    "cannot populate TDVF section BFV (GPA 0xffc00000-"
                    "0xffc01fff, 2 pages, measured, flags 0x1): its data at "
                    "offset 0x1200 of the TDVF image is not 4 KiB-aligned, "
                    "and KVM refuses unaligned sources");
    error_free(err);
    qemu_vfree(data);
}

/* TD_HOB and TEMP_MEM without MR_EXTEND: flags 0 on every call. */
static void test_unmeasured(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(6);
    TdxPopulateSection s = bfv(data, 6);

    s.type = TDVF_SECTION_TYPE_TEMP_MEM;
    s.attributes = 0;
    td->pages_per_call = 5;
    g_assert_cmpint(tdx_populate_section(&ops, &s, false, NULL, &error_abort),
                    ==, 0);
    g_assert_cmpuint(td->ncalls, ==, 2);
    g_assert_cmphex(td->flags_seen[0], ==, 0);
    g_assert_cmphex(td->flags_seen[1], ==, 0);
    qemu_vfree(data);
}

/* Progress the kernel cannot have made is an error, not a loop. */
static void test_inconsistent_progress(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(2);
    TdxPopulateSection s = bfv(data, 2);
    Error *err = NULL;

    td->overshoot = true;
    g_assert_cmpint(tdx_populate_section(&ops, &s, false, NULL, &err), ==,
                    -EPROTO);
    g_assert_nonnull(strstr(error_get_pretty(err), "inconsistent progress"));
    error_free(err);
    qemu_vfree(data);
}

/* 6.19 takes every vCPU mutex: populating after vCPUs ran is a bug. */
static void test_vcpus_started_asserts(void)
{
    if (g_test_subprocess()) {
        FakeTd *td = g_new0(FakeTd, 1);
        TdxPopulateOps ops = fake_ops(td);
        uint8_t *data = image(1);
        TdxPopulateSection s = bfv(data, 1);

        td->vcpus_started = true;
        tdx_populate_section(&ops, &s, false, NULL, &error_abort);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*vcpus_started*");
}

#ifdef CONFIG_KVM_GMEM_IN_PLACE
/*
 * In place: the image is written into the guest_memfd's shared pages,
 * converted (ATTRIBUTES2 -EAGAIN at a busy page resumes from
 * error_offset), populated with source_addr 0: no kernel copy from QEMU.
 */
static void test_in_place(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(8);
    uint8_t *gmem = qemu_memalign(PAGE, NPAGES * PAGE);
    TdxPopulateSection s = bfv(data, 8);
    TdxPopulateStats st = { 0 };

    td->gmem = gmem;
    td->attr_busy = true;
    td->attr_busy_page = 5;
    td->pages_per_call = 3;
    s.gmem_fd = 7;
    s.gmem_offset = 0;
    s.gmem_map = gmem;
    g_assert_cmpint(tdx_populate_section(&ops, &s, true, &st, &error_abort),
                    ==, 0);
    g_assert_cmpuint(td->attr_calls, ==, 2);
    g_assert_cmpuint(st.attr_stalls, ==, 0);    /* it made progress */
    g_assert_cmpuint(td->ncalls, ==, 3);
    for (unsigned i = 0; i < td->ncalls; i++) {
        g_assert_cmphex(td->calls[i].source_addr, ==, 0);
    }
    g_assert_cmphex(td->calls[1].gpa, ==, GPA_BASE + 3 * PAGE);
    g_assert_cmpuint(st.qemu_copied, ==, 8 * PAGE);
    g_assert_cmpuint(st.kernel_copied, ==, 0);
    assert_populated(td, data, 8);
    qemu_vfree(gmem);
    qemu_vfree(data);
}

/* Linux 7.0 has no source_addr 0: the error says so. */
static void test_in_place_unsupported(void)
{
    g_autofree FakeTd *td = g_new0(FakeTd, 1);
    TdxPopulateOps ops = fake_ops(td);
    uint8_t *data = image(1);
    uint8_t *gmem = qemu_memalign(PAGE, NPAGES * PAGE);
    TdxPopulateSection s = bfv(data, 1);
    Error *err = NULL;

    td->gmem = gmem;
    td->kernel_7_0 = true;
    s.gmem_fd = 7;
    s.gmem_map = gmem;
    g_assert_cmpint(tdx_populate_section(&ops, &s, true, NULL, &err), ==,
                    -EOPNOTSUPP);
    g_assert_nonnull(strstr(error_get_pretty(err), "this kernel cannot "
                            "populate from the guest_memfd itself"));
    error_free(err);
    qemu_vfree(gmem);
    qemu_vfree(data);
}
#endif

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tdx-populate/copy/at-once", test_at_once);
    g_test_add_func("/tdx-populate/copy/partial-eintr", test_partial_eintr);
    g_test_add_func("/tdx-populate/copy/ebusy-then-ok", test_ebusy_then_ok);
    g_test_add_func("/tdx-populate/copy/no-progress-bounded",
                    test_no_progress_bounded);
    g_test_add_func("/tdx-populate/copy/eio", test_eio);
    g_test_add_func("/tdx-populate/copy/eperm", test_eperm);
    g_test_add_func("/tdx-populate/copy/einval-after-finalize",
                    test_einval_after_finalize);
    g_test_add_func("/tdx-populate/copy/unaligned-source",
                    test_unaligned_source);
    g_test_add_func("/tdx-populate/copy/unmeasured", test_unmeasured);
    g_test_add_func("/tdx-populate/copy/inconsistent-progress",
                    test_inconsistent_progress);
    g_test_add_func("/tdx-populate/vcpus-started-asserts",
                    test_vcpus_started_asserts);
#ifdef CONFIG_KVM_GMEM_IN_PLACE
    g_test_add_func("/tdx-populate/in-place/flow", test_in_place);
    g_test_add_func("/tdx-populate/in-place/unsupported",
                    test_in_place_unsupported);
#endif
    return g_test_run();
}
