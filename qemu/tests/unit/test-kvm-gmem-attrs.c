/*
 * Unit tests of kvm_gmem_set_attributes() (in-place guest_memfd conversion)
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Contract test: the fake KVM_SET_MEMORY_ATTRIBUTES2 below follows the
 * documented kernel contract (docs/devel/kvm-kernel-contract.rst section 2; the
 * in-place conversion series, not released): -EAGAIN with error_offset
 * at the first page that still has unexpected references, the pages
 * before it converted.  Built with tests/unit/gmem-inplace-uapi.h
 * force-included, since released headers lack the API.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "system/kvm-gmem-attrs.h"

typedef struct FakeGmem {
    uint64_t busy_offset;   /* a page with references; ~0 = none */
    unsigned busy_calls;    /* ... for that many calls */
    int fail_errno;         /* other error, at once */
    unsigned calls;
    uint64_t converted_to;  /* end of the range converted so far */
    uint64_t first_offsets[8];
} FakeGmem;

static int fake_ioctl(void *opaque, int fd, struct kvm_memory_attributes2 *a)
{
    FakeGmem *g = opaque;

    g_assert_cmpint(fd, ==, 42);
    g_assert_cmphex(a->attributes, ==, KVM_MEMORY_ATTRIBUTE_PRIVATE);
    g_assert_cmphex(a->flags, ==, 0);
    if (g->calls < G_N_ELEMENTS(g->first_offsets)) {
        g->first_offsets[g->calls] = a->offset;
    }
    g->calls++;
    if (g->fail_errno) {
        return -g->fail_errno;
    }
    if (g->busy_calls && g->busy_offset >= a->offset &&
        g->busy_offset < a->offset + a->size) {
        g->busy_calls--;
        g->converted_to = g->busy_offset;
        a->error_offset = g->busy_offset;
        return -EAGAIN;
    }
    g->converted_to = a->offset + a->size;
    return 0;
}

static void test_at_once(void)
{
    FakeGmem g = { 0 };
    unsigned stalls = 0;

    g_assert_cmpint(kvm_gmem_set_attributes(fake_ioctl, &g, 42, 0x10000,
                                            0x200000,
                                            KVM_MEMORY_ATTRIBUTE_PRIVATE,
                                            &stalls, &error_abort), ==, 0);
    g_assert_cmpuint(g.calls, ==, 1);
    g_assert_cmpuint(stalls, ==, 0);
    g_assert_cmphex(g.converted_to, ==, 0x210000);
}

/* -EAGAIN at a page: resume from error_offset, not from the start. */
static void test_eagain_resumes(void)
{
    FakeGmem g = { .busy_offset = 0x13000, .busy_calls = 1 };
    unsigned stalls = 0;

    g_assert_cmpint(kvm_gmem_set_attributes(fake_ioctl, &g, 42, 0x10000,
                                            0x10000,
                                            KVM_MEMORY_ATTRIBUTE_PRIVATE,
                                            &stalls, &error_abort), ==, 0);
    /* first call from 0x10000, stops at 0x13000; then the same page again */
    g_assert_cmpuint(g.calls, ==, 2);
    g_assert_cmphex(g.first_offsets[0], ==, 0x10000);
    g_assert_cmphex(g.first_offsets[1], ==, 0x13000);
    g_assert_cmphex(g.converted_to, ==, 0x20000);
}

/* The busy page at the start: no progress, retried, then fine. */
static void test_eagain_stall_then_ok(void)
{
    FakeGmem g = { .busy_offset = 0x10000, .busy_calls = 3 };
    unsigned stalls = 0;

    g_assert_cmpint(kvm_gmem_set_attributes(fake_ioctl, &g, 42, 0x10000,
                                            0x4000,
                                            KVM_MEMORY_ATTRIBUTE_PRIVATE,
                                            &stalls, &error_abort), ==, 0);
    g_assert_cmpuint(g.calls, ==, 4);
    g_assert_cmpuint(stalls, ==, 3);
}

/* A page that never becomes free: a bounded number of retries, an error. */
static void test_eagain_forever(void)
{
    FakeGmem g = { .busy_offset = 0x12000, .busy_calls = UINT_MAX };
    Error *err = NULL;
    unsigned stalls = 0;

    g_assert_cmpint(kvm_gmem_set_attributes(fake_ioctl, &g, 42, 0x10000,
                                            0x4000,
                                            KVM_MEMORY_ATTRIBUTE_PRIVATE,
                                            &stalls, &err), ==, -EAGAIN);
    g_assert_cmpuint(stalls, ==, KVM_GMEM_ATTRS_MAX_STALLS + 1);
    /* one call that progressed, then the stalled ones */
    g_assert_cmpuint(g.calls, ==, KVM_GMEM_ATTRS_MAX_STALLS + 2);
    g_assert_nonnull(strstr(error_get_pretty(err), "the page at offset "
                            "0x12000 is still in use"));
    g_assert_nonnull(strstr(error_get_pretty(err), "0x10000+0x4000"));
    error_free(err);
}

static void test_other_errno(void)
{
    FakeGmem g = { .fail_errno = EINVAL };
    Error *err = NULL;

    g_assert_cmpint(kvm_gmem_set_attributes(fake_ioctl, &g, 42, 0x10000,
                                            0x1000,
                                            KVM_MEMORY_ATTRIBUTE_PRIVATE,
                                            NULL, &err), ==, -EINVAL);
    g_assert_cmpuint(g.calls, ==, 1);
    g_assert_nonnull(strstr(error_get_pretty(err), "to private (stopped at "
                            "offset 0x10000, KVM_SET_MEMORY_ATTRIBUTES2)"));
    g_assert_nonnull(strstr(error_get_pretty(err), strerror(EINVAL)));
    error_free(err);
}

/* Bad ranges never reach the kernel. */
static void test_bad_range(void)
{
    static const uint64_t bad[][2] = {
        { 0x10800, 0x1000 }, { 0x10000, 0x800 }, { 0x10000, 0 },
        { ~0xfffULL, 0x2000 },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        FakeGmem g = { 0 };
        Error *err = NULL;

        g_assert_cmpint(kvm_gmem_set_attributes(fake_ioctl, &g, 42, bad[i][0],
                                                bad[i][1],
                                                KVM_MEMORY_ATTRIBUTE_PRIVATE,
                                                NULL, &err), ==, -EINVAL);
        g_assert_cmpuint(g.calls, ==, 0);
        g_assert_nonnull(strstr(error_get_pretty(err),
                                "not a page-aligned range"));
        error_free(err);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm-gmem-attrs/at-once", test_at_once);
    g_test_add_func("/kvm-gmem-attrs/eagain-resumes", test_eagain_resumes);
    g_test_add_func("/kvm-gmem-attrs/eagain-stall-then-ok",
                    test_eagain_stall_then_ok);
    g_test_add_func("/kvm-gmem-attrs/eagain-forever", test_eagain_forever);
    g_test_add_func("/kvm-gmem-attrs/other-errno", test_other_errno);
    g_test_add_func("/kvm-gmem-attrs/bad-range", test_bad_range);
    return g_test_run();
}
