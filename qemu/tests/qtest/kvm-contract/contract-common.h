/*
 * Helpers for the kernel-contract layers (LD_PRELOAD libraries for tests)
 *
 * Copyright (c) 2026 The qemu-kvm-memfault authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef KVM_CONTRACT_COMMON_H
#define KVM_CONTRACT_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

/* @fd's /proc/self/fd link into @target (@size bytes, NUL included). */
static inline bool contract_fd_target(int fd, char *target, size_t size)
{
    char proc[64];
    ssize_t n;

    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, target, size - 1);
    if (n < 0) {
        return false;
    }
    target[n] = '\0';
    return true;
}

/*
 * Do the first @len bytes of @fd's /proc/self/fd link (with its NUL)
 * equal @want?  @len = strlen(@want) compares a prefix, sizeof the
 * whole name.
 */
static inline bool contract_fd_target_matches(int fd, const char *want,
                                              size_t len)
{
    char target[128];

    return contract_fd_target(fd, target, sizeof(target)) &&
           !strncmp(target, want, len);
}

/*
 * Is @fd a KVM guest_memfd?  Its /proc/self/fd link names "[kvm-gmem]":
 * "anon_inode:[kvm-gmem]" up to Linux 6.17, "/[kvm-gmem] (deleted)" once
 * guest_memfd has inodes of its own (6.18, virt/kvm/guest_memfd.c).
 */
static inline bool contract_fd_is_guest_memfd(int fd)
{
    char target[128];

    return contract_fd_target(fd, target, sizeof(target)) &&
           strstr(target, "[kvm-gmem]") != NULL;
}

/*
 * The argument checks of kvm_vm_ioctl_set_mem_attributes() (Linux 6.18),
 * which the in-place series keeps for KVM_SET_MEMORY_ATTRIBUTES2: no
 * flags, known attributes, a page-aligned, non-empty range that does
 * not wrap.  Failing them is EINVAL.
 */
static inline bool contract_attributes_valid(uint64_t flags,
                                             uint64_t attributes,
                                             uint64_t start, uint64_t size)
{
    return !flags && !(attributes & ~(uint64_t)KVM_MEMORY_ATTRIBUTE_PRIVATE) &&
           size && !((start | size) & 0xfff) && start + size > start;
}

/*
 * A stand-in for a guest_memfd on a kernel that cannot give the layer
 * one it can map (KVM_CREATE_GUEST_MEMFD before 6.8; MMAP before 6.18;
 * none for a default VM's memslots before 6.18): a memfd of @size.  Its
 * /proc/self/fd link names "[kvm-gmem]", as a guest_memfd's does.  The
 * layers only map it, read it and punch holes in it, which a memfd does
 * alike.
 * Returns the fd, or -1 with errno set.
 */
static inline int contract_create_gmem_standin(uint64_t size)
{
    int fd = memfd_create("[kvm-gmem]", MFD_CLOEXEC);

    if (fd >= 0 && ftruncate(fd, size) < 0) {
        int err = errno;

        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

#endif
