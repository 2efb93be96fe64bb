#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""TDX initial-memory population through the TDX kernel-contract layer
(tests/qtest/kvm-contract/tdx-contract.c), patched versus pristine QEMU
in the same run.

A generated TDVF image (8 MiB) has a measured 4 MiB BFV, a CFV, a TD_HOB
and a TEMP_MEM.  QEMU launches it with the layer up to KVM_TDX_FINALIZE_VM
(the layer then stops the TD), once undisturbed and once with an -EINTR
injected halfway through the BFV.  Printed from the layer's log: ioctls
per section (goal: 1, plus 1 per retry), bytes the kernel copied from
QEMU's buffers per populated byte (copy mode: 1; in-place mode, with the
in-place build when given: 0), and the BFV's population
time (first to last KVM_TDX_INIT_MEM_REGION of it), median of several
runs, patched versus pristine.  Prints, never asserts."""

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile

FOOTER = bytes.fromhex("de82b596b21ff745baeaa366c55a082d")
TDX = bytes.fromhex("35657ae44a989847865e4685a7bf8ec2")
MIB = 1 << 20
SIZE = 8 * MIB
SECTIONS = [  # data offset, raw size, GPA, size, type, attributes
    (4 * MIB, 4 * MIB, (1 << 32) - 4 * MIB, 4 * MIB, 0, 1),
    (0, 0x10000, (1 << 32) - SIZE, 0x10000, 1, 0),
    (0, 0, 0x800000, 0x2000, 2, 0),
    (0, 0, 0x900000, 0x10000, 3, 0),
]
NAMES = ["BFV", "CFV", "TD_HOB", "TEMP_MEM"]


def image(path):
    img = bytearray(os.urandom(SIZE))
    md = 0x10000
    img[md:md + 16] = struct.pack("<4I", 0x46564454, 16 + 32 * len(SECTIONS),
                                  1, len(SECTIONS))
    for i, s in enumerate(SECTIONS):
        img[md + 16 + 32 * i:md + 48 + 32 * i] = struct.pack("<IIQQII", *s)
    t = SIZE - 48
    img[t:t + 16] = FOOTER
    img[t - 2:t] = struct.pack("<H", 40)
    img[t - 18:t - 2] = TDX
    img[t - 20:t - 18] = struct.pack("<H", 22)
    img[t - 24:t - 20] = struct.pack("<I", SIZE - md)
    with open(path, "wb") as f:
        f.write(img)


def launch(qemu, lib, img, inject, in_place=False):
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "log")
        env = dict(os.environ, LD_PRELOAD=lib, QKM_CONTRACT_LOG=log,
                   QKM_CONTRACT_TIMES="1")
        if inject:
            env["QKM_TDX_INJECT"] = inject
        props = "tdx-guest,id=tdx0"
        if in_place:
            env["QKM_TDX_IN_PLACE"] = "1"
            props += ",populate-in-place=on"
        r = subprocess.run(
            ["timeout", "60", qemu, "-accel", "kvm", "-machine",
             "q35,confidential-guest-support=tdx0", "-object",
             props, "-cpu", "host", "-m", "1G", "-bios", img,
             "-nodefaults", "-display", "none"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode:
            raise RuntimeError("%s exited %d" % (qemu, r.returncode))
        calls = []
        for line in open(log):
            w = line.split()
            if len(w) > 2 and w[1] == "INIT_MEM_REGION":
                calls.append({"gpa": int(w[7], 16), "ret": int(w[11]),
                              "copied": int(w[16].split("+")[1], 16),
                              "t0": int(w[-2].split("=")[1]),
                              "t1": int(w[-1].split("=")[1])})
        return calls


def per_section(calls):
    out = []
    for s in SECTIONS:
        mine = [c for c in calls if s[2] <= c["gpa"] < s[2] + s[3]]
        out.append(mine)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patched", required=True)
    ap.add_argument("--pristine", required=True)
    ap.add_argument("--contract-lib", required=True)
    ap.add_argument("--in-place",
                    help="a QEMU built with the in-place UAPI (optional)")
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    lib = os.path.abspath(a.contract_lib)

    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "tdvf.fd")
        image(img)
        for inject in (None, "eintr-mid"):
            secs = per_section(launch(a.patched, lib, img, inject))
            print("tdx population%s: ioctls per section: %s (goal: 1 plus "
                  "retries)" % (", -EINTR injected mid-BFV" if inject else "",
                                ", ".join("%s %d" % (n, len(c)) for n, c in
                                          zip(NAMES, secs))))
        secs = per_section(launch(a.patched, lib, img, None))
        populated = sum(s[3] for s in SECTIONS)
        copied = sum(c["copied"] for sec in secs for c in sec)
        print("tdx population, copy mode: the kernel copies %.2f bytes from "
              "QEMU's buffers per populated byte (goal 1, no bounce buffer)"
              % (copied / populated))
        if a.in_place:
            secs = per_section(launch(a.in_place, lib, img, None, True))
            copied = sum(c["copied"] for sec in secs for c in sec)
            print("tdx population, in-place mode (in-place build, layer's "
                  "in-place kernel model): ioctls per section: %s; the kernel "
                  "copies %.2f bytes from QEMU's buffers per populated byte "
                  "(goal 0: QEMU writes the image into the guest_memfd once)"
                  % (", ".join("%s %d" % (n, len(c)) for n, c in
                               zip(NAMES, secs)), copied / populated))
        times = {"patched": [], "pristine": []}
        for _ in range(a.runs):
            for which in ("pristine", "patched"):
                bfv = per_section(launch(getattr(a, which), lib, img,
                                         None))[0]
                times[which].append((bfv[-1]["t1"] - bfv[0]["t0"]) / 1e3)
        p = statistics.median(times["patched"])
        u = statistics.median(times["pristine"])
        print("tdx population, 4 MiB BFV (median of %d): patched %.0f us, "
              "pristine %.0f us, ratio %.2f" % (a.runs, p, u, p / u))
    return 0


if __name__ == "__main__":
    sys.exit(main())
