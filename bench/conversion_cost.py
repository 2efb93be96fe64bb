#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Private/shared conversion round trip through QEMU, sw-protected-vm.

The test guest asks for N round trips (KVM_HC_MAP_GPA_RANGE to shared,
then back to private) of 4 KiB and of 2 MiB at GPA 2 MiB; QEMU converts
each with KVM_SET_MEMORY_ATTRIBUTES and a discard.  A run with an empty
script is subtracted, so the figure is the cost of one round trip (two
exits, two conversions).  On a kernel without KVM_X86_SW_PROTECTED_VM it
runs against the kernel-contract layer's model (stated in the output), so
it then measures QEMU plus the model, not a kernel.  Pristine QEMU has no
sw-protected-vm: a report, not a ratio; never asserts."""

import argparse
import fcntl
import os
import statistics
import sys

from qemu_harness import Vm, MAILBOX, MB_STEPS_DONE, MB_SCRIPT, \
    STEP_SIZE, MODE_LONG64

OP_SCRIPT = 7
STEP_END, STEP_MAP_PRIVATE, STEP_MAP_SHARED = 0, 3, 4
GPA = 0x200000
MAX_STEPS = 32
KVM_CHECK_EXTENSION = 0xae03
KVM_CAP_VM_TYPES = 235
KVM_X86_SW_PROTECTED_VM = 1


def kernel_has_sw_protected_vm():
    with open("/dev/kvm", "rb") as kvm:
        types = fcntl.ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES)
    return bool(types & (1 << KVM_X86_SW_PROTECTED_VM))


def one_run(qemu, image, env, pages, trips):
    vm = Vm(qemu, image, "kvm", env=env,
            extra=["-machine", "confidential-guest-support=p0",
                   "-object", "sw-protected-vm,id=p0"])
    try:
        n = 0
        for _ in range(trips):
            for op in (STEP_MAP_SHARED, STEP_MAP_PRIVATE):
                base = MAILBOX + MB_SCRIPT + n * STEP_SIZE
                vm.writel(base, op)
                vm.writel(base + 4, GPA)
                vm.writel(base + 8, pages)
                n += 1
        vm.writel(MAILBOX + MB_SCRIPT + n * STEP_SIZE, STEP_END)
        elapsed = vm.run_op(MODE_LONG64, OP_SCRIPT)
        if vm.readl(MAILBOX + MB_STEPS_DONE) != n:
            raise RuntimeError("the guest did %d of %d conversions"
                               % (vm.readl(MAILBOX + MB_STEPS_DONE), n))
        return elapsed
    finally:
        vm.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patched", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--contract-lib", required=True)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()

    trips = (MAX_STEPS - 1) // 2
    env = {}
    where = "real KVM_X86_SW_PROTECTED_VM"
    if not kernel_has_sw_protected_vm():
        env = {"LD_PRELOAD": os.path.abspath(a.contract_lib),
               "QKM_KVM_MODEL": "sw-protected-vm"}
        where = "kernel-contract model (no KVM_X86_SW_PROTECTED_VM here)"
    for label, pages in (("4 KiB", 1), ("2 MiB", 512)):
        try:
            base = statistics.median(
                one_run(a.patched, a.image, env, pages, 0)
                for _ in range(a.runs))
            full = statistics.median(
                one_run(a.patched, a.image, env, pages, trips)
                for _ in range(a.runs))
        except Exception as e:   # noqa: BLE001 - report why and go on
            print("conversion round trip: skipped (%s)" % e)
            return 0
        print("conversion round trip, %s, %s (%d trips x %d runs, median): "
              "%.1f us" % (label, where, trips, a.runs,
                           (full - base) / trips * 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
