#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Time from truncating a running guest's backing file to the
GUEST_MEMORY_FAULT event (the backing-file watch), over N runs: median and
p99 (target p99 <= 10 ms).  Pristine QEMU has no watch: the guest keeps
running until it touches a lost page, and then QEMU dies.  Prints, never
asserts."""

import argparse
import os
import statistics
import sys
import tempfile
import time

from qemu_harness import Vm

RAM = 64 * 1024 * 1024


def one_run(qemu, image, accel, path):
    if os.path.exists(path):
        os.unlink(path)
    vm = Vm(qemu, image, accel, [
        "-object", "memory-backend-file,id=ram0,size=%d,mem-path=%s,"
        "share=on" % (RAM, path), "-machine", "memory-backend=ram0"])
    try:
        vm.qmp("cont")
        vm.wait_done()
        start = time.monotonic()
        os.truncate(path, 0x100000)
        try:
            t, _ = vm.wait_event("GUEST_MEMORY_FAULT", timeout=5.0)
        except (TimeoutError, OSError):
            return None
        return t - start
    finally:
        vm.close()
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patched", required=True)
    ap.add_argument("--pristine", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--accel", default="kvm")
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()

    path = os.path.join(tempfile.gettempdir(), "qkm-bench-ram-%d" % os.getpid())
    lat = [one_run(a.patched, a.image, a.accel, path) for _ in range(a.runs)]
    got = sorted(x for x in lat if x is not None)
    if got:
        p99 = got[min(len(got) - 1, int(round(0.99 * (len(got) - 1))))]
        print("truncation -> GUEST_MEMORY_FAULT (%s, %d runs): median %.2f ms,"
              " p99 %.2f ms, max %.2f ms (target p99 <= 10 ms); %d runs "
              "without an event"
              % (a.accel, a.runs, statistics.median(got) * 1000, p99 * 1000,
                 got[-1] * 1000, a.runs - len(got)))
    else:
        print("truncation -> GUEST_MEMORY_FAULT: no event in %d runs"
              % a.runs)
    miss = one_run(a.pristine, a.image, a.accel, path)
    print("pristine 10.2.2: %s" % ("no event within 5 s (no watch; the guest "
                                   "runs on until it touches a lost page, "
                                   "then QEMU dies of SIGBUS)"
                                   if miss is None else
                                   "event after %.2f ms?" % (miss * 1000)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
