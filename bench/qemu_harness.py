# SPDX-License-Identifier: GPL-2.0-or-later
"""Start qemu-system-x86_64 with the test guest under a qtest socket and a
QMP socket, for the benchmarks: write the guest's mailbox, resume, wait.
No QEMU python library needed."""

import json
import os
import socket
import subprocess
import tempfile
import time

MAILBOX = 0x5000
MB_REQ_MODE, MB_DONE, MB_REQ_OP, MB_REQ_ADDR, MB_REQ_COUNT = 0x8, 0xc, 0x10, 0x14, 0x18
MB_STEPS_DONE, MB_SCRIPT, STEP_SIZE = 0x2c, 0x100, 16
GUEST_DONE = 0x454e4f44
MODE_LONG64 = 3


class Vm:
    def __init__(self, qemu, image, accel, extra=(), mem="64M", env=None):
        self.dir = tempfile.mkdtemp(prefix="qkm-bench-")
        qt_path = os.path.join(self.dir, "qtest.sock")
        qmp_path = os.path.join(self.dir, "qmp.sock")
        qt = socket.socket(socket.AF_UNIX)
        qt.bind(qt_path)
        qt.listen(1)
        args = [qemu, "-accel", accel, "-machine", "pc", "-cpu", "max",
                "-m", mem, "-nodefaults", "-display", "none",
                "-bios", image, "-qtest", "unix:" + qt_path,
                "-qmp", "unix:%s,server=on,wait=off" % qmp_path, "-S"]
        args += list(extra)
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        penv = dict(os.environ)
        penv.update(env or {})
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, env=penv)
        qt.settimeout(30)
        conn, _ = qt.accept()
        qt.close()
        self.qt = conn.makefile("rw")
        self.qmp_sock = socket.socket(socket.AF_UNIX)
        for _ in range(300):
            try:
                self.qmp_sock.connect(qmp_path)
                break
            except OSError:
                time.sleep(0.01)
        self.qmp_file = self.qmp_sock.makefile("rw")
        self.qmp_file.readline()
        self.events = []
        self.qmp("qmp_capabilities")

    def qtest(self, cmd):
        self.qt.write(cmd + "\n")
        self.qt.flush()
        line = self.qt.readline().strip()
        if not line.startswith("OK"):
            raise RuntimeError("qtest %r: %r" % (cmd, line))
        return line

    def writel(self, addr, val):
        self.qtest("writel 0x%x 0x%x" % (addr, val))

    def readl(self, addr):
        return int(self.qtest("readl 0x%x" % addr).split()[1], 16)

    def qmp(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.qmp_file.write(json.dumps(msg) + "\n")
        self.qmp_file.flush()
        while True:
            r = json.loads(self.qmp_file.readline())
            if "event" in r:
                self.events.append((time.monotonic(), r))
                continue
            return r

    def wait_event(self, name, timeout=10.0):
        for t, e in self.events:
            if e["event"] == name:
                return t, e
        self.qmp_sock.settimeout(timeout)
        try:
            while True:
                r = json.loads(self.qmp_file.readline())
                if "event" in r:
                    now = time.monotonic()
                    self.events.append((now, r))
                    if r["event"] == name:
                        return now, r
        finally:
            self.qmp_sock.settimeout(None)

    def wait_done(self, timeout=120.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.readl(MAILBOX + MB_DONE) == GUEST_DONE:
                return time.monotonic()
            time.sleep(0.0005)
        raise RuntimeError("guest did not finish")

    def run_op(self, mode, op, addr=0, count=0):
        """Have the guest do @op in @mode; seconds from cont to done."""
        self.writel(MAILBOX + MB_REQ_MODE, mode)
        self.writel(MAILBOX + MB_REQ_OP, op)
        self.writel(MAILBOX + MB_REQ_ADDR, addr)
        self.writel(MAILBOX + MB_REQ_COUNT, count)
        start = time.monotonic()
        self.qmp("cont")
        return self.wait_done() - start

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()
        subprocess.run(["rm", "-rf", self.dir])
