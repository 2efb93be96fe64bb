/*
 * The guest_memfd in-place conversion UAPI, for compile and unit tests only
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * As documented for the series under review (docs/devel/kvm-kernel-contract.rst
 * section 2; lore 20260618-gmem-inplace-conversion-v8).  Force-included
 * (-include) when the unit tests and the in-place compile check build
 * code that QEMU compiles only against linux-headers that have this API.
 * The capability number moved between revisions; the value here is a
 * stand-in that no shipped binary uses.
 */

#ifndef TESTS_GMEM_INPLACE_UAPI_H
#define TESTS_GMEM_INPLACE_UAPI_H

#include <linux/kvm.h>

#ifndef KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES
#define KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES 0x7fff0001

struct kvm_memory_attributes2 {
    union {
        __u64 address;
        __u64 offset;
    };
    __u64 size;
    __u64 attributes;
    __u64 flags;
    __u64 error_offset;
    __u64 reserved[11];
};

#define KVM_SET_MEMORY_ATTRIBUTES2 \
    _IOWR(KVMIO, 0xd2, struct kvm_memory_attributes2)
#endif

#endif
