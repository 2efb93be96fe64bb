#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""KVM exit-path cost, patched versus pristine QEMU in the same run.

The test guest does N port-I/O exits (outb to port 0x80) and N MMIO exits
(reads of the HPET counter) in 64-bit mode; each binary runs it several
times, alternating.  Prints exits per second and the ratio
patched/pristine (1.0 = no cost; target >= 0.99).  Prints, never
asserts."""

import argparse
import statistics
import sys

from qemu_harness import Vm, MODE_LONG64

OP_PIO_LOOP, OP_MMIO_LOOP = 5, 6
HPET_COUNTER = 0xfed000f0


def one_run(qemu, image, op, count):
    vm = Vm(qemu, image, "kvm")
    try:
        return count / vm.run_op(MODE_LONG64, op, HPET_COUNTER, count)
    finally:
        vm.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patched", required=True)
    ap.add_argument("--pristine", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--exits", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()

    for name, op, count in (("port I/O", OP_PIO_LOOP, a.exits),
                            ("MMIO", OP_MMIO_LOOP, a.exits // 4)):
        rates = {"patched": [], "pristine": []}
        for _ in range(a.runs):
            for which in ("pristine", "patched"):
                qemu = getattr(a, which)
                rates[which].append(one_run(qemu, a.image, op, count))
        p = statistics.median(rates["patched"])
        u = statistics.median(rates["pristine"])
        print("exit cost, %s (%d exits x %d runs, median): patched %.0f/s, "
              "pristine %.0f/s, ratio %.3f (target >= 0.99)"
              % (name, count, a.runs, p, u, p / u))
    return 0


if __name__ == "__main__":
    sys.exit(main())
