#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Guest memory-touch throughput: RAM in a guest_memfd versus RAM in a
memfd, the same patched binary in the same run (pristine QEMU on memfd RAM
as a reference).

The test guest fills N MiB of RAM it has never touched with rep stosq in
64-bit mode (GUEST_OP_FILL), so the time covers KVM faulting every page
in plus the stores.  Each configuration runs several times, alternating;
prints MiB/s (median) and the ratio guest_memfd/memfd (target >= 0.95).
Prints, never asserts."""

import argparse
import statistics
import sys

from qemu_harness import Vm, MODE_LONG64

OP_FILL = 8
FILL_BASE = 0x1000000   # 16 MiB: above the guest and its page tables


def one_run(qemu, image, mib, gmem):
    size = mib + 32
    backend = "memory-backend-memfd,id=ram0,size=%dM,share=on" % size
    if gmem:
        backend += ",guest-memfd=on"
    vm = Vm(qemu, image, "kvm", mem="%dM" % size,
            extra=["-object", backend, "-machine", "memory-backend=ram0"])
    try:
        return mib / vm.run_op(MODE_LONG64, OP_FILL, FILL_BASE, mib << 20)
    finally:
        vm.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patched", required=True)
    ap.add_argument("--pristine", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()

    try:
        one_run(a.patched, a.image, 1, True)
    except Exception as e:   # noqa: BLE001 - report why and go on
        print("memory touch: skipped (guest_memfd RAM unusable here: %s)" % e)
        return 0
    rates = {"gmem": [], "memfd": [], "pristine": []}
    for _ in range(a.runs):
        rates["pristine"].append(one_run(a.pristine, a.image, a.mib, False))
        rates["memfd"].append(one_run(a.patched, a.image, a.mib, False))
        rates["gmem"].append(one_run(a.patched, a.image, a.mib, True))
    g, m, u = (statistics.median(rates[k]) for k in ("gmem", "memfd",
                                                       "pristine"))
    print("memory touch, first touch of %d MiB x %d runs (median): "
          "guest_memfd %.0f MiB/s, memfd %.0f MiB/s, ratio %.3f "
          "(target >= 0.95); pristine memfd %.0f MiB/s, patched/pristine "
          "%.3f" % (a.mib, a.runs, g, m, g / m, u, m / u))
    return 0


if __name__ == "__main__":
    sys.exit(main())
