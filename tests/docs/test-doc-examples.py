#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs every command-line example of the series' user documentation
# (docs/system/guest-memfd.rst, docs/system/guest-memory-faults.rst) with
# the patched QEMU, and checks that QEMU starts the guest and keeps it
# running.  TAP on stdout.
#
#   tests/docs/test-doc-examples.py QEMU CONTRACT_LIB [DOC...]
#
# An example is a literal block (after "::") whose first line is a
# qemu-system-x86_64 command or a command-line fragment ("-object ...").
# What the page leaves to the reader is filled in, and nothing else:
#
#   - "..." becomes "-display none -nodefaults" and a QMP socket; the
#     firmware is QEMU's default (SeaBIOS), as for a user;
#   - a fragment is run on "qemu-system-x86_64 -accel kvm", and a memory
#     backend it defines becomes the machine's RAM ("-machine
#     memory-backend=ID -m SIZE") when the fragment does not say so;
#   - a path under /dev/shm/ is moved into this test's directory.
#
# An example that needs KVM is skipped with the reason when /dev/kvm
# cannot run a guest.  One that needs KVM_X86_SW_PROTECTED_VM runs on the
# real VM type where KVM_CAP_VM_TYPES has it, and otherwise against the
# kernel-contract layer's model of it (CONTRACT_LIB, QKM_KVM_MODEL=
# sw-protected-vm: tests/qtest/kvm-contract/kvm-contract.c documents the
# kernel behaviour it models, Linux 6.18 virt/kvm/guest_memfd.c and
# arch/x86/kvm/x86.c), and says so.

import fcntl
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DEFAULT_DOCS = ("qemu/docs/system/guest-memfd.rst",
                "qemu/docs/system/guest-memory-faults.rst")

KVM_CHECK_EXTENSION = 0xae03
KVM_CAP_VM_TYPES = 235
KVM_X86_SW_PROTECTED_VM = 1
KVM_CREATE_VM = 0xae01
KVM_CAP_GUEST_MEMFD_FLAGS = 244
GUEST_MEMFD_MMAP_INIT_SHARED = 3


def examples(path):
    """(line number, command text) of each command-line example."""
    lines = open(path).read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        if not lines[i].rstrip().endswith("::"):
            i += 1
            continue
        i += 1
        while i < len(lines) and not lines[i].strip():
            i += 1
        start = i
        block = []
        while i < len(lines) and (not lines[i].strip() or
                                  lines[i].startswith(" ")):
            block.append(lines[i].strip())
            i += 1
        text = " ".join(b[:-1].strip() if b.endswith("\\") else b
                        for b in block if b)
        if text.startswith("qemu-system-x86_64 ") or text.startswith("-"):
            out.append((start + 1, text))
    return out


def kvm_works(qemu):
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        return "no usable /dev/kvm (%s)" % e.strerror
    return None


def real_sw_protected_vm():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    try:
        types = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES)
    except OSError:
        types = 0
    os.close(fd)
    return types > 0 and bool(types & (1 << KVM_X86_SW_PROTECTED_VM))


def guest_memfd_ram_works():
    """None when an ordinary VM can have RAM in a guest_memfd, else why."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError as e:
        return "no usable /dev/kvm (%s)" % e.strerror
    try:
        vm = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        try:
            flags = fcntl.ioctl(vm, KVM_CHECK_EXTENSION,
                                KVM_CAP_GUEST_MEMFD_FLAGS)
        finally:
            os.close(vm)
    except OSError:
        flags = 0
    finally:
        os.close(fd)
    if flags & GUEST_MEMFD_MMAP_INIT_SHARED != GUEST_MEMFD_MMAP_INIT_SHARED:
        return ("KVM_CAP_GUEST_MEMFD_FLAGS lacks MMAP|INIT_SHARED "
                "(Linux 6.18+ needed)")
    return None


def build_argv(qemu, text, tmp, qmp_path):
    args = shlex.split(text)
    if args[0] == "qemu-system-x86_64":
        args = args[1:]
    else:
        args = ["-accel", "kvm"] + args
    args = [re.sub(r"/dev/shm/", tmp + "/", a) for a in args]
    filled = ["-display", "none", "-nodefaults",
              "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
    if "..." in args:
        i = args.index("...")
        args[i:i + 1] = filled
    else:
        args += filled
    joined = " ".join(args)
    if "memory-backend=" not in joined:
        m = re.search(r"memory-backend-\w+,id=(\w+),size=(\w+)", joined)
        if m:
            args += ["-machine", "memory-backend=" + m.group(1),
                     "-m", m.group(2)]
    return [qemu] + args


def qmp(path, commands, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            break
        except OSError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    f = s.makefile("rw")
    f.readline()                        # greeting
    answers = []
    for cmd in ["qmp_capabilities"] + commands:
        f.write(json.dumps({"execute": cmd}) + "\n")
        f.flush()
        while True:
            msg = json.loads(f.readline())
            if "event" not in msg:
                break
        answers.append(msg)
    s.close()
    return answers[1:]


def run_example(n, doc, line, text, qemu, lib, tmp):
    name = "%s:%d: %s" % (doc, line, text)
    if "kvm" in text or text.startswith("-"):
        reason = kvm_works(qemu)
        if not reason and "guest-memfd=on" in text:
            reason = guest_memfd_ram_works()
        if reason:
            print("ok %d - %s # SKIP %s" % (n, name, reason))
            return True
    env = dict(os.environ)
    if "sw-protected-vm" in text and not real_sw_protected_vm():
        print("# %s: this KVM lacks KVM_X86_SW_PROTECTED_VM: running "
              "against the kernel-contract layer's model of it" % doc)
        env["LD_PRELOAD"] = lib
        env["QKM_KVM_MODEL"] = "sw-protected-vm"
    qmp_path = os.path.join(tmp, "qmp-%d" % n)
    argv = build_argv(qemu, text, tmp, qmp_path)
    print("# " + " ".join(shlex.quote(a) for a in argv))
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    ok = False
    why = ""
    try:
        time.sleep(1)
        first = qmp(qmp_path, ["query-status"])[0]["return"]["status"]
        time.sleep(1)
        second = qmp(qmp_path, ["query-status", "quit"])[0]
        second = second["return"]["status"]
        ok = first == "running" and second == "running"
        why = "run state %s, then %s" % (first, second)
    except (OSError, ValueError, KeyError) as e:
        why = "no QMP answer: %s" % e
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        ok = False
        why += "; QEMU did not quit"
    errors = [l for l in err.splitlines()
              if l and "warning: host doesn't support requested feature"
              not in l]
    if errors:
        ok = False
        why += "; stderr: " + " | ".join(errors)
    if ok and p.returncode != 0:
        ok = False
        why += "; exit status %d" % p.returncode
    print("%s %d - %s" % ("ok" if ok else "not ok", n, name))
    if not ok:
        print("# " + why)
    return ok


def main():
    if len(sys.argv) < 3:
        print("usage: %s QEMU CONTRACT_LIB [DOC...]" % sys.argv[0],
              file=sys.stderr)
        return 2
    qemu, lib = sys.argv[1], sys.argv[2]
    docs = sys.argv[3:] or [os.path.join(TOP, d) for d in DEFAULT_DOCS]
    found = []
    for doc in docs:
        rel = os.path.relpath(doc, TOP)
        for line, text in examples(doc):
            found.append((rel, line, text))
    print("1..%d" % len(found))
    if not found:
        print("# no examples found")
        return 1
    failed = 0
    with tempfile.TemporaryDirectory(prefix="qkm-doc-") as tmp:
        for n, (doc, line, text) in enumerate(found, 1):
            if not run_example(n, doc, line, text, qemu, lib, tmp):
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
