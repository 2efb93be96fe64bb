/*
 * Converting guest_memfd ranges in place (KVM_SET_MEMORY_ATTRIBUTES2)
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_KVM_GMEM_ATTRS_H
#define SYSTEM_KVM_GMEM_ATTRS_H

#include <linux/kvm.h>

/*
 * The in-place conversion API (the guest_memfd in-place conversion
 * series) is not in a released kernel; its capability number changed
 * between revisions.  QEMU uses it only when its synced linux-headers
 * define it, never with a number of its own.
 */
#if defined(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) && \
    defined(KVM_SET_MEMORY_ATTRIBUTES2)
#define CONFIG_KVM_GMEM_IN_PLACE 1

/*
 * How often a range whose pages still have transient references
 * (-EAGAIN without progress) is retried, 1 ms apart, before giving up.
 */
#define KVM_GMEM_ATTRS_MAX_STALLS 100

/* ioctl() on a guest_memfd, or a test's stand-in for it. */
typedef int (*KvmGmemAttrsIoctl)(void *opaque, int fd,
                                 struct kvm_memory_attributes2 *attrs);

/* The real one: KVM_SET_MEMORY_ATTRIBUTES2 on @fd; 0 or -errno. */
int kvm_gmem_attrs_ioctl(void *opaque, int fd,
                         struct kvm_memory_attributes2 *attrs);

/**
 * kvm_gmem_set_attributes:
 * @fn: issues KVM_SET_MEMORY_ATTRIBUTES2 and returns 0 or -errno
 * @opaque: for @fn
 * @fd: the guest_memfd
 * @offset, @size: the range in it, page-aligned
 * @attributes: KVM_MEMORY_ATTRIBUTE_PRIVATE or 0 (shared)
 * @stalls: if not NULL, counts retries that made no progress
 * @errp: on failure, an error naming the range and the offset reached
 *
 * Sets the attributes of the range.  -EAGAIN with error_offset (pages
 * with unexpected references) resumes from error_offset; a bounded
 * number of retries without progress is an error, as is any other errno.
 *
 * Returns: 0, or a negative errno with @errp set.
 */
int kvm_gmem_set_attributes(KvmGmemAttrsIoctl fn, void *opaque, int fd,
                            uint64_t offset, uint64_t size,
                            uint64_t attributes, unsigned *stalls,
                            Error **errp);
#endif

#endif
