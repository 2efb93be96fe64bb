#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Check that QEMU links where system/guest-memory-*.c are not built
(every host but Linux): relink qemu-system-x86_64 from the build's own
objects without those files' objects, so that stubs/guest-memory-fault.c
(in libqemuutil.a) must answer every call.  What stays undefined must be
called only from code that is itself built on Linux only (LINUX_ONLY
below); any other undefined reference fails the check, naming the
object and the symbol.  The binary goes to a temporary directory, the
build is not touched.

This host is Linux, so code under "#ifdef CONFIG_LINUX" in files built
everywhere still calls in here; system/cpus.c's SIGBUS handler is such
code and is listed.

Usage: check-stubs-link.py BUILD_DIR"""

import os
import re
import shlex
import subprocess
import sys
import tempfile

TARGET = "qemu-system-x86_64"
# The objects of system/guest-memory-*.c (built on Linux only).
LEFT_OUT = re.compile(r"(^|/)[^/]*system_guest-memory-[a-z]+\.c\.o$")
LEFT_OUT_NAME = "system/guest-memory-*.c"

# Objects of code built on Linux only (KVM needs Linux; cpus.c calls in
# from its CONFIG_LINUX SIGBUS handler only).
LINUX_ONLY = (
    re.compile(r"(^|/)accel_kvm_"),
    re.compile(r"(^|/)target_i386_kvm_"),
    re.compile(r"(^|/)system_cpus\.c\.o$"),
)


def link_command(build):
    """The inputs and link arguments ninja uses for TARGET."""
    with open(os.path.join(build, "build.ninja")) as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if line.startswith("build %s: " % TARGET):
            inputs = line.split(":", 1)[1].split("|")[0].split()[1:]
            for follow in lines[i + 1:]:
                if not follow.startswith(" "):
                    break
                key, _, value = follow.strip().partition(" = ")
                if key == "LINK_ARGS":
                    return inputs, shlex.split(value)
    raise SystemExit("Bail out! no link rule for %s in build.ninja" % TARGET)


def main():
    build = sys.argv[1]
    inputs, link_args = link_command(build)
    objects = [o for o in inputs if not LEFT_OUT.search(o)]
    print("1..2")
    if len(objects) == len(inputs):
        print("not ok 1 - %s is not linked into %s"
              % (LEFT_OUT_NAME, TARGET))
        print("not ok 2 - nothing to check # SKIP")
        return 1
    print("ok 1 - %s linked without %s (%d objects, %d left out)"
          % (TARGET, LEFT_OUT_NAME, len(objects),
             len(inputs) - len(objects)))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["cc", "-m64", "-o", os.path.join(tmp, TARGET)] + objects + \
            link_args
        r = subprocess.run(cmd, cwd=build, capture_output=True, text=True)
    where = None
    bad = []
    seen = set()
    for line in r.stderr.split("\n"):
        m = re.search(r"ld: (\S+\.o): in function", line)
        if m:
            where = m.group(1)
            continue
        m = re.search(r"undefined reference to `([^']+)'", line)
        if m:
            sym = m.group(1)
            if where and any(p.search(where) for p in LINUX_ONLY):
                continue
            if (where, sym) not in seen:
                seen.add((where, sym))
                bad.append("%s: %s" % (where, sym))
    others = [l for l in r.stderr.split("\n")
              if "error" in l and "undefined reference" not in l and
              "collect2" not in l and "ld returned" not in l]
    if bad or others:
        print("not ok 2 - code built on every host calls what only Linux "
              "defines")
        for b in bad + others:
            print("#   %s" % b)
        return 1
    print("ok 2 - every other call is answered by "
          "stubs/guest-memory-fault.c%s"
          % ("" if r.returncode == 0 else
             " (the rest comes from Linux-only code)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
