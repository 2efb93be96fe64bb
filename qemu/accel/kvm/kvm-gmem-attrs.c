/*
 * Converting guest_memfd ranges in place (KVM_SET_MEMORY_ATTRIBUTES2)
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * No QEMU state here: the caller passes the ioctl (kvm_gmem_attrs_ioctl()
 * or a stand-in), so that unit tests can drive the retry rules with a
 * model of the kernel contract (docs/devel/kvm-kernel-contract.rst
 * section 2: -EAGAIN with error_offset when a page has unexpected
 * references).
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include "qapi/error.h"
#include "system/kvm-gmem-attrs.h"

#ifdef CONFIG_KVM_GMEM_IN_PLACE
int kvm_gmem_attrs_ioctl(void *opaque, int fd,
                         struct kvm_memory_attributes2 *attrs)
{
    return ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, attrs) < 0 ? -errno : 0;
}

int kvm_gmem_set_attributes(KvmGmemAttrsIoctl fn, void *opaque, int fd,
                            uint64_t offset, uint64_t size,
                            uint64_t attributes, unsigned *stalls,
                            Error **errp)
{
    const uint64_t end = offset + size;
    const char *what = attributes ? "private" : "shared";
    uint64_t pos = offset;
    unsigned stalled = 0;
    int ret;

    if (!size || end < offset || ((offset | size) & 0xfff)) {
        error_setg(errp, "cannot convert guest_memfd range 0x%" PRIx64
                   "+0x%" PRIx64 " to %s: not a page-aligned range",
                   offset, size, what);
        return -EINVAL;
    }
    for (;;) {
        struct kvm_memory_attributes2 a = {
            .offset = pos, .size = end - pos, .attributes = attributes,
        };

        ret = fn(opaque, fd, &a);
        if (ret != -EAGAIN) {
            break;
        }
        if (a.error_offset > pos && a.error_offset < end &&
            !(a.error_offset & 0xfff)) {
            pos = a.error_offset;       /* done up to there: resume */
            stalled = 0;
            continue;
        }
        if (stalls) {
            (*stalls)++;
        }
        if (++stalled > KVM_GMEM_ATTRS_MAX_STALLS) {
            error_setg(errp, "cannot convert guest_memfd range 0x%" PRIx64
                       "+0x%" PRIx64 " to %s: the page at offset 0x%" PRIx64
                       " is still in use after %d retries (-EAGAIN); "
                       "something holds a reference to it", offset, size,
                       what, pos, KVM_GMEM_ATTRS_MAX_STALLS);
            return -EAGAIN;
        }
        g_usleep(1000);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot convert guest_memfd range 0x%"
                         PRIx64 "+0x%" PRIx64 " to %s (stopped at offset 0x%"
                         PRIx64 ", KVM_SET_MEMORY_ATTRIBUTES2)", offset, size,
                         what, pos);
    }
    return ret;
}
#endif
