#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make check-asan: the fault qtests (memory-loss-test, memory-fault-test,
# nested-npt-test) against a patched QEMU built with AddressSanitizer
# (build/qemu-asan, about 15 minutes to build on 2 cores; not part of
# make check for that reason).  QEMU aborts on the first ASan report, so
# a use after free (a RAM block unplugged while watched, a report queued
# for a freed vCPU) fails its case.  Leak checking is off: QEMU leaks by
# design at exit.  The kernel-contract cases of memory-fault-test are
# skipped: their LD_PRELOAD layer cannot come before the ASan runtime.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

TESTS=(memory-loss-test memory-fault-test nested-npt-test)
targets=(qemu-system-x86_64)
for t in "${TESTS[@]}"; do targets+=("tests/qtest/$t"); done
"$TOP/scripts/build.sh" asan "${targets[@]}"

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export QTEST_QEMU_BINARY=./qemu-system-x86_64
cd "$BUILD_ROOT/qemu-asan"
rc=0
for t in "${TESTS[@]}"; do
    skips=()
    while read -r path; do
        case "$path" in */contract/*) skips+=(-s "$path") ;; esac
    done < <("./tests/qtest/$t" -l 2>/dev/null | grep '^/')
    note "running $t under ASan"
    if ! timeout 1800 "./tests/qtest/$t" --tap "${skips[@]}" \
            > "$t.asan.log" 2>&1; then
        grep -m5 -E "ERROR|AddressSanitizer|Bail out" "$t.asan.log" >&2 || true
        echo "check-asan: $t failed; see $BUILD_ROOT/qemu-asan/$t.asan.log" >&2
        rc=1
    fi
    echo "$t: $(grep '^ok' "$t.asan.log" | grep -vc '# SKIP') ok," \
         "$(grep -c '^ok .*# SKIP' "$t.asan.log") skipped," \
         "$(grep -c '^not ok' "$t.asan.log") not ok"
done
exit $rc
