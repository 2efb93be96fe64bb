#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# lost-page-action=guest-error with a real Linux guest: Debian's kernel
# (the KVM box's pinned 7.2, scripts/kvm-box.sh prepare) and a small
# initramfs (static busybox, eater.c), under TCG on this host or on KVM
# in the KVM box.  The
# guest's init starts a process that fills memory, finds the
# guest-physical pages it holds and prints the highest run of pages that
# are all its own; the test cuts the backing file of the RAM there, in a
# pc-dimm the kernel onlined as movable memory (memhp_default_state=
# online_movable: no kernel data lives there).  The process reads its
# memory again, takes the machine check QEMU raises, and the guest's
# kernel recovers: it kills that process ("Memory failure: ... recovery
# action for dirty LRU page: Recovered"), init reaps it with SIGBUS,
# and goes on answering; QEMU reports one GUEST_MEMORY_FAULT with action
# machine-check and the VM stays running.  TAP on stdout.
#
#   tests/linux-guest/test-memory-error.py QEMU [--accel=kvm]
#                                          [--kernel=VMLINUZ] [--cpu=MODEL]
#
# Under TCG (the default) the guest's CPU is -cpu max with an Intel
# vendor: Linux recovers from a machine check on AMD only with SUCCOR,
# which TCG does not offer.  Under KVM (in the KVM box, through
# test-memory-error-kvm.sh) it is qemu64 with SUCCOR, which QEMU offers
# there: the box's CPU is TCG's AMD one, on which Linux 7.2 as a nested
# guest panics at boot with -cpu max or host (fpstate_reset()).
# --kernel names the guest's kernel instead of the one scripts/kvm-box.sh
# prepares.

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
KERNEL = "7.2"
DIMM_MB = 128
EATER_MB = 200         # at most
CUT = 4096             # one page, the eater's, at the top of the DIMM
BOOT_TIMEOUT = 300     # TCG: the guest boots at TCG speed
BUSYBOX = "/bin/busybox"

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "INIT up"
# Nothing else allocates until the eater holds its memory: no fork here.
mkfifo /ready
/eater %d %d &
pid=$!
read ready < /ready
i=0
while :; do
    sleep 1
    i=$((i + 1))
    echo "INIT alive $i"
    if [ -n "$pid" ] && ! kill -0 $pid 2>/dev/null; then
        wait $pid
        echo "INIT eater exit $?"
        pid=
    fi
done
""" % (EATER_MB, 2 * CUT >> 10)

tests = 0
failed = 0


def tap(ok, name, why=""):
    global tests, failed
    tests += 1
    if not ok:
        failed += 1
    print("%sok %d - %s%s" % ("" if ok else "not ", tests, name,
                              (" # " + why) if why else ""))
    sys.stdout.flush()


def skip_all(why):
    print("1..0 # SKIP %s" % why)
    sys.exit(0)


def build_initramfs(work):
    root = os.path.join(work, "root")
    for d in ("bin", "proc", "sys", "dev"):
        os.makedirs(os.path.join(root, d))
    shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
    subprocess.run(["cc", "-static", "-O2", "-Wall", "-Werror", "-o",
                    os.path.join(root, "eater"),
                    os.path.join(TOP, "tests", "linux-guest", "eater.c")],
                   check=True)
    with open(os.path.join(root, "init"), "w") as f:
        f.write(INIT)
    os.chmod(os.path.join(root, "init"), 0o755)
    img = os.path.join(work, "initrd.img")
    files = subprocess.run(["find", "."], cwd=root, check=True,
                           capture_output=True).stdout
    with open(img, "wb") as out:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root,
                       input=files, stdout=out, check=True)
    return img


class Qmp:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        for _ in range(500):
            try:
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.02)
        self.f = self.sock.makefile("rw")
        self.f.readline()
        self.events = []
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "event" in r:
                self.events.append(r)
                continue
            return r

    def poll_events(self):
        self.cmd("query-status")
        ev, self.events = self.events, []
        return ev


def wait_console(path, pattern, timeout, proc):
    end = time.time() + timeout
    while time.time() < end:
        with open(path, errors="replace") as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        if proc.poll() is not None:
            return None
        time.sleep(0.5)
    return None


def console_tail(path, n=15):
    with open(path, errors="replace") as f:
        return " | ".join(f.read().splitlines()[-n:])


def main():
    qemu = sys.argv[1]
    opts = {}
    for a in sys.argv[2:]:
        name, _, value = a.partition("=")
        if name not in ("--accel", "--kernel", "--cpu") or not value:
            print("usage: %s QEMU [--accel=tcg|kvm] [--kernel=VMLINUZ] "
                  "[--cpu=MODEL]; not %r" % (sys.argv[0], a), file=sys.stderr)
            return 2
        opts[name[2:]] = value
    accel = opts.get("accel", "tcg")
    cpu = opts.get("cpu", "max,vendor=GenuineIntel" if accel == "tcg"
                   else "qemu64,+succor")
    if not os.path.exists(BUSYBOX) or not shutil.which("cpio") or \
       not shutil.which("cc"):
        skip_all("needs static busybox, cpio and cc (scripts/install-deps.sh)")
    if accel == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip_all("no usable /dev/kvm")
    if "kernel" in opts:
        vmlinuz = opts["kernel"]
    else:
        prep = subprocess.run([os.path.join(TOP, "scripts", "kvm-box.sh"),
                               "prepare", KERNEL], capture_output=True,
                              text=True)
        if prep.returncode:
            print("1..1")
            tap(False, "Debian's kernel %s" % KERNEL,
                prep.stderr.strip().splitlines()[-1:] or "prepare failed")
            return 1
        vmlinuz = os.path.join(prep.stdout.strip(), "vmlinuz")
    print("1..6")
    work = tempfile.mkdtemp(prefix="qkm-linux-guest-")
    proc = None
    try:
        initrd = build_initramfs(work)
        dimm = os.path.join(work, "dimm")
        console = os.path.join(work, "console.log")
        qmp_path = os.path.join(work, "qmp.sock")
        stderr = open(os.path.join(work, "stderr"), "w+")
        args = [qemu, "-accel", accel, "-machine", "pc",
                "-cpu", cpu, "-smp", "1",
                "-m", "128M,slots=2,maxmem=1G",
                "-object", "memory-backend-file,id=dimm0,size=%dM,"
                "mem-path=%s,share=on,lost-page-action=guest-error"
                % (DIMM_MB, dimm),
                "-device", "pc-dimm,id=d0,memdev=dimm0",
                # Above it: the kernel's reserve of free movable memory.
                "-object", "memory-backend-ram,id=dimm1,size=%dM" % DIMM_MB,
                "-device", "pc-dimm,id=d1,memdev=dimm1",
                "-kernel", vmlinuz, "-initrd", initrd,
                "-append", "console=ttyS0 quiet loglevel=4 panic=-1 "
                "memhp_default_state=online_movable",
                "-nodefaults", "-display", "none", "-no-reboot",
                "-serial", "file:" + console,
                "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
        open(console, "w").close()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                stderr=stderr)
        qmp = Qmp(qmp_path)

        m = wait_console(console, r"EATER run (0x[0-9a-f]+) (0x[0-9a-f]+)\s+"
                         r"EATER ready|INIT eater exit", BOOT_TIMEOUT, proc)
        if m and not m.group(1):
            m = None
        tap(m is not None, "the guest boots and its process fills memory",
            "" if m else "console: " + console_tail(console))
        if not m:
            return 1
        lo, hi = int(m.group(1), 16), int(m.group(2), 16)
        dev = [d["data"] for d in qmp.cmd("query-memory-devices")["return"]
               if d["data"]["memdev"].endswith("/dimm0")][0]
        base, size = dev["addr"], dev["size"]
        # Only the process's pages may be cut: its run must reach the top.
        own = hi == base + size and hi - lo >= 2 * CUT
        tap(own, "the process holds the top of the DIMM's memory",
            "" if own else "its run 0x%x-0x%x, the DIMM 0x%x-0x%x"
            % (lo, hi, base, base + size))
        if not own:
            return 1
        os.truncate(dimm, hi - CUT - base)

        m = wait_console(console, r"INIT eater exit (\d+)", 300, proc)
        killed = m is not None and m.group(1) == "135"
        tap(killed, "the guest's kernel kills the process with SIGBUS",
            "" if killed else "console: " + console_tail(console))
        log = open(console, errors="replace").read()
        rec = re.search(r"Memory failure: 0x[0-9a-f]+: recovery action for "
                        r"[^:]*: Recovered", log)
        tap(rec is not None, "the guest's kernel says Recovered",
            rec.group(0) if rec else "console: " + console_tail(console))
        # The guest keeps answering: init counts on.
        n = len(re.findall(r"INIT alive", log))
        alive = wait_console(console, r"(?:INIT alive \d+\s+){3}$", 120,
                             proc) is not None
        log = open(console, errors="replace").read()
        alive = alive and len(re.findall(r"INIT alive", log)) >= n + 3
        status = qmp.cmd("query-status")["return"]["status"]
        tap(alive and status == "running", "the guest answers on, running",
            "" if alive and status == "running" else
            "status %s; console: %s" % (status, console_tail(console)))
        # The backing-file watch may see the cut first (action none).
        ev = [e["data"] for e in qmp.poll_events()
              if e["event"] == "GUEST_MEMORY_FAULT"]
        mc = [d for d in ev if d["action"] == "machine-check"]
        good = len(mc) == 1 and mc[0]["block"] == "dimm0" and \
            mc[0]["gpa"] == hi - CUT and \
            all(d["action"] == "none" for d in ev if d not in mc) and \
            len(ev) <= 2
        tap(good, "one GUEST_MEMORY_FAULT with action machine-check for "
            "the page", "" if good else json.dumps(ev))
        qmp.cmd("quit")
        proc.wait(30)
        return 0 if failed == 0 else 1
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
