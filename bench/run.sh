#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Benchmarks (make bench): build patched and pristine QEMU, then print
# each target as a ratio or a latency measured in the same run.  Nothing
# here asserts; KVM benchmarks are skipped, with the reason, without a
# usable /dev/kvm.

set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

"$TOP/scripts/build.sh" patched qemu-system-x86_64 tests/qtest/guest/guest.bin \
    tests/qtest/kvm-contract/libkvm-contract.so \
    tests/qtest/kvm-contract/libtdx-contract.so >&2
"$TOP/scripts/build.sh" pristine qemu-system-x86_64 >&2
"$TOP/scripts/build.sh" inplace qemu-system-x86_64 >&2
patched=$BUILD_ROOT/qemu/qemu-system-x86_64
pristine=$BUILD_ROOT/pristine/qemu-system-x86_64
image=$BUILD_ROOT/qemu/tests/qtest/guest/guest.bin
cd "$TOP/bench"

if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    "$PYTHON" exit_cost.py --patched "$patched" --pristine "$pristine" \
        --image "$image" --exits "${QKM_BENCH_EXITS:-1000000}"
    "$PYTHON" memory_touch.py --patched "$patched" --pristine "$pristine" \
        --image "$image"
    "$PYTHON" conversion_cost.py --patched "$patched" --image "$image" \
        --contract-lib "$BUILD_ROOT/qemu/tests/qtest/kvm-contract/libkvm-contract.so"
    "$PYTHON" tdx_population.py --patched "$patched" --pristine "$pristine" \
        --in-place "$BUILD_ROOT/qemu-inplace/qemu-system-x86_64" \
        --contract-lib "$BUILD_ROOT/qemu/tests/qtest/kvm-contract/libtdx-contract.so"
    accel=kvm
else
    echo "exit cost, memory touch, conversion round trip, tdx population:" \
        "skipped (/dev/kvm is not usable)"
    accel=tcg
fi
"$PYTHON" truncation_latency.py --patched "$patched" --pristine "$pristine" \
    --image "$image" --accel "$accel"
"$PYTHON" incident_reports.py --patched "$patched" --pristine "$pristine" \
    --image "$image" --accel "$accel"
