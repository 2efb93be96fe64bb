#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Reports per incident: GUEST_MEMORY_FAULT events and first report lines
on stderr for one truncation of a 1 GiB backing file (goal: 1 each),
noticed (a) by the watch while the guest writes over the lost range and
(b) without the watch, by a migration to a file that reads every lost
page.  Patched against pristine 10.2.2 (which dies of SIGBUS).  Prints,
never asserts."""

import argparse
import os
import sys
import tempfile
import time

from qemu_harness import Vm, MAILBOX, MB_REQ_MODE, MB_REQ_OP, \
    MB_REQ_ADDR, MB_REQ_COUNT, MODE_LONG64

GIB = 1024 * 1024 * 1024
GUEST_OP_FILL = 8


def count(vm, settle=1.0):
    """Events and report lines once things have settled."""
    end = time.monotonic() + settle
    while time.monotonic() < end and vm.proc.poll() is None:
        try:
            vm.qmp("query-status")
        except (OSError, ValueError):
            break
        time.sleep(0.05)
    events = sum(1 for _, e in vm.events if e["event"] == "GUEST_MEMORY_FAULT")
    vm.stderr.flush()
    vm.stderr.seek(0)
    # KVM's first line, or the one of accelerators without a failed run.
    lines = sum(1 for line in vm.stderr
                if line.rstrip("\n").endswith("run failed Bad address") or
                line.rstrip("\n") == "error: guest memory fault")
    return events, lines, vm.proc.poll() is not None


def run(qemu, image, accel, path, watch, migrate):
    if os.path.exists(path):
        os.unlink(path)
    # None: the binary has no backing-watch option (pristine 10.2.2).
    opts = ",backing-watch=off" if watch is False else ""
    vm = Vm(qemu, image, accel, [
        "-object", "memory-backend-file,id=ram0,size=%d,mem-path=%s,"
        "share=on%s" % (GIB, path, opts), "-machine", "memory-backend=ram0"],
        mem="1G")
    out = path + ".mig"
    try:
        vm.writel(MAILBOX + MB_REQ_MODE, MODE_LONG64)
        if not migrate:
            # The guest writes 256 MiB over what is about to go.
            vm.writel(MAILBOX + MB_REQ_OP, GUEST_OP_FILL)
            vm.writel(MAILBOX + MB_REQ_ADDR, 0x10000000)
            vm.writel(MAILBOX + MB_REQ_COUNT, 0x10000000)
        vm.qmp("cont")
        time.sleep(0.3)
        os.truncate(path, 0x100000)
        if migrate:
            vm.qmp("migrate", uri="file:" + out)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                r = vm.qmp("query-migrate")["return"]
                if r.get("status") in ("completed", "failed", "cancelled"):
                    break
                time.sleep(0.05)
        return count(vm)
    except (OSError, ValueError, RuntimeError):
        return count(vm, 0)
    finally:
        vm.close()
        for p in (path, out):
            if os.path.exists(p):
                os.unlink(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patched", required=True)
    ap.add_argument("--pristine", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--accel", default="kvm")
    a = ap.parse_args()

    path = os.path.join(tempfile.gettempdir(), "qkm-bench-inc-%d" % os.getpid())
    for name, watch, migrate in (("guest writing, watch on", True, False),
                                 ("migration pass, watch off", False, True)):
        ev, ln, dead = run(a.patched, a.image, a.accel, path, watch, migrate)
        print("1 GiB backing truncated, %s (%s): %d events, %d report lines "
              "(goal 1 each)%s" % (name, a.accel, ev, ln,
                                   "; QEMU died" if dead else ""))
        ev, ln, dead = run(a.pristine, a.image, a.accel, path, None, migrate)
        print("  pristine 10.2.2: %d events, %d report lines%s"
              % (ev, ln, "; QEMU died" if dead else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
