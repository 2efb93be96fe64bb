#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The demo's second part (scripts/run-demo.sh): a guest loses part of its
# RAM on KVM, and this prints what a user and management see.  The test
# guest (tests/qtest/guest/) runs from a file-backed RAM whose file is
# cut to 16 KiB before the guest starts (its mailbox, at 0x5000, is then
# gone) (backing-watch=off, so that it is
# the guest's own access through KVM that finds the loss); QMP is
# connected before the guest runs, as libvirt does.
#
#   demo-fault.py QEMU GUEST_IMAGE
#
# Prints QEMU's report (stderr), the GUEST_MEMORY_FAULT event and the run
# state; exits non-zero when any of them is missing.

import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def qmp_lines(sock):
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


def main():
    qemu, image = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="qkm-demo-") as tmp:
        ram = os.path.join(tmp, "guest-ram")
        qmp_path = os.path.join(tmp, "qmp")
        with open(ram, "wb") as f:
            f.truncate(64 << 20)
        args = [qemu, "-accel", "kvm", "-machine", "pc", "-cpu", "max",
                "-m", "64M", "-nodefaults", "-display", "none",
                "-object", "memory-backend-file,id=ram0,size=64M,"
                "mem-path=%s,share=on,backing-watch=off" % ram,
                "-machine", "memory-backend=ram0", "-bios", image,
                "-qmp", "unix:%s,server=on,wait=off" % qmp_path, "-S"]
        print("$ " + " ".join(args))
        proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(qmp_path):
                if proc.poll() is not None or time.monotonic() > deadline:
                    sys.exit("QEMU did not start: " + proc.stderr.read())
                time.sleep(0.05)
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(qmp_path)
            sock.settimeout(60)
            msgs = qmp_lines(sock)
            next(msgs)                              # greeting

            def command(name):
                sock.sendall(json.dumps({"execute": name}).encode() + b"\n")
                for m in msgs:
                    if "return" in m or "error" in m:
                        return m
                    events.append(m)

            events = []
            command("qmp_capabilities")
            print("$ truncate -s 16K %s   # all but its first 16 KiB of RAM"
                  % ram)
            os.truncate(ram, 16 << 10)
            print("(QMP) cont")
            command("cont")
            fault = None
            while fault is None:
                for m in events:
                    if m.get("event") == "GUEST_MEMORY_FAULT":
                        fault = m
                events.clear()
                if fault is None:
                    events.append(next(msgs))
            status = command("query-status")["return"]["status"]
            command("quit")
            proc.wait(timeout=30)
        except (StopIteration, socket.timeout):
            proc.kill()
            sys.exit("no GUEST_MEMORY_FAULT event came: " +
                     proc.stderr.read())
        err = proc.stderr.read()
        print("== QEMU's report (stderr)")
        for line in err.splitlines():
            print("  " + line)
        print("== The event management receives")
        print("  " + json.dumps(fault["data"], indent=2).replace("\n", "\n  "))
        print("== query-status: %s" % status)
        if "kvm run failed Bad address" not in err or \
                status != "internal-error":
            sys.exit("the report or the stop is missing")


if __name__ == "__main__":
    main()
