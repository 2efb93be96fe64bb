/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 * What a memory-access signal's context says about the access: the
 * answers of host/signal-fault.h.
 */

#ifndef HOST_SIGNAL_FAULT_TYPES_H
#define HOST_SIGNAL_FAULT_TYPES_H

typedef enum HostFaultAccess {
    HOST_FAULT_ACCESS_UNKNOWN,
    HOST_FAULT_ACCESS_READ,
    HOST_FAULT_ACCESS_WRITE,
    HOST_FAULT_ACCESS_FETCH,
} HostFaultAccess;

#endif
