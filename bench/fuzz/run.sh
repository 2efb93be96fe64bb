#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make fuzz: build the TDVF metadata fuzz harness (tdvf-fuzz.c) with the
# compile flags QEMU uses for hw/i386/tdvf.c plus ASan and UBSan, and run
# it for QKM_FUZZ_SECONDS (default 120).  Prints executions and crashes;
# a crash leaves its input in build/fuzz/ and fails.

set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

"$TOP/scripts/build.sh" patched libqemuutil.a >&2
out=$BUILD_ROOT/fuzz
mkdir -p "$out"
cmd=$("$PYTHON" - "$BUILD_ROOT/qemu/compile_commands.json" <<'PY'
import json, shlex, sys
for e in json.load(open(sys.argv[1])):
    if e["file"].endswith("hw/i386/tdvf.c"):
        args = shlex.split(e["command"])
        keep, skip = [], False
        for a in args[1:]:
            if skip:
                skip = False
                continue
            if a in ("-o", "-c", "-MF", "-MQ"):
                skip = True
                continue
            if a in ("-MD", "-Werror") or a.endswith(".c"):
                continue
            keep.append(a)
        print(" ".join(shlex.quote(a) for a in keep))
        break
PY
)
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cd "$BUILD_ROOT/qemu"
# $cmd is shell-quoted by the python above
eval "cc $cmd $san -O1 -g -o \"\$out/tdvf-fuzz\" \
    \"\$TOP/bench/fuzz/tdvf-fuzz.c\" ../qemu-src/hw/i386/tdvf.c \
    libqemuutil.a $(pkg-config --libs glib-2.0) -lm -lpthread"
ASAN_OPTIONS=abort_on_error=1:detect_leaks=0 \
UBSAN_OPTIONS=abort_on_error=1:print_stacktrace=1 \
    "$out/tdvf-fuzz" "${QKM_FUZZ_SECONDS:-120}" "$out/crash.bin"
