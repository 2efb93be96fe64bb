#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Compile the code QEMU builds only against linux-headers that have the
guest_memfd in-place conversion API (CONFIG_KVM_GMEM_IN_PLACE), with the
documented UAPI force-included (tests/unit/gmem-inplace-uapi.h), so that
it cannot rot while released headers lack it.  One TAP line per file;
the objects go to a temporary directory, the build is not touched.

Usage: check-in-place-build.py BUILD_DIR SOURCE_DIR"""

import json
import os
import shlex
import subprocess
import sys
import tempfile

FILES = (
    "accel/kvm/kvm-all.c",
    "accel/kvm/kvm-gmem-attrs.c",
    "backends/hostmem-memfd.c",
    "target/i386/kvm/sw-protected-vm.c",
    "target/i386/kvm/tdx.c",
    "target/i386/kvm/tdx-populate.c",
)


def main():
    build, src = sys.argv[1], os.path.abspath(sys.argv[2])
    uapi = os.path.join(src, "tests/unit/gmem-inplace-uapi.h")
    cmds = {}
    with open(os.path.join(build, "compile_commands.json")) as f:
        for e in json.load(f):
            rel = os.path.relpath(os.path.join(e["directory"], e["file"]),
                                  src)
            cmds[rel] = e
    wanted = [f for f in FILES if os.path.exists(os.path.join(src, f))]
    print("1..%d" % len(wanted))
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n, rel in enumerate(wanted, 1):
            e = cmds.get(rel)
            if not e:
                print("not ok %d - %s: not in compile_commands.json" % (n, rel))
                failed += 1
                continue
            args = shlex.split(e["command"])
            out = []
            skip = False
            for i, a in enumerate(args):
                if skip:
                    skip = False
                    continue
                if a in ("-o", "-MF", "-MQ"):
                    skip = True
                    continue
                if a == "-MD":
                    continue
                out.append(a)
            out += ["-include", uapi, "-DQKM_IN_PLACE_CHECK",
                    "-o", os.path.join(tmp, "%d.o" % n)]
            r = subprocess.run(out, cwd=e["directory"], capture_output=True,
                               text=True)
            if r.returncode:
                print("not ok %d - %s compiles with the in-place UAPI"
                      % (n, rel))
                sys.stdout.write("".join("# " + line + "\n"
                                         for line in r.stderr.splitlines()))
                failed += 1
            else:
                print("ok %d - %s compiles with the in-place UAPI" % (n, rel))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
