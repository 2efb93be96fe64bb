#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make check-pristine: run the project's qtests, case by case, against
# pristine QEMU 10.2.2 (the same test binaries, QTEST_QEMU_BINARY pointed
# at build/pristine), and the libvirt test with the pristine binary, and
# list what fails there.  Every case that tests a
# fixed path must fail on pristine; README.md keeps the list.
# Informational: exits 0 unless something could not be built or run.

set -uo pipefail
. "$(dirname "$0")/lib.sh"

TESTS=(guest-modes-test memory-fault-test memory-loss-test nested-npt-test
       private-memory-test tdx-populate-test)

targets=(tests/qtest/kvm-contract/libkvm-contract.so
         tests/qtest/kvm-contract/libtdx-contract.so)
for t in "${TESTS[@]}"; do targets+=("tests/qtest/$t"); done
"$TOP/scripts/build.sh" patched "${targets[@]}" >&2 || exit 1
"$TOP/scripts/build.sh" pristine qemu-system-x86_64 >&2 || exit 1

pristine=$BUILD_ROOT/pristine/qemu-system-x86_64
export QTEST_QEMU_BINARY=$pristine
cd "$BUILD_ROOT/qemu" || exit 1

pass=0 fail=0 skip=0
for t in "${TESTS[@]}"; do
    while read -r path; do
        [ -n "$path" ] || continue
        out=$(timeout 60 "./tests/qtest/$t" --tap -p "$path" 2>&1)
        rc=$?
        if [ $rc -eq 0 ] && grep -q "^ok .*# SKIP" <<<"$out"; then
            why=$(grep -m1 "# SKIP" <<<"$out" | sed 's/.*# SKIP *//')
            echo "SKIP $t $path ($why)"
            skip=$((skip + 1))
        elif [ $rc -eq 0 ]; then
            echo "PASS $t $path"
            pass=$((pass + 1))
        else
            why=$(grep -m1 -E "ERROR|Bail out|assert|died|killed|Broken pipe" <<<"$out" |
                  sed 's/^# //' | cut -c1-120)
            [ $rc -eq 124 ] && why="timed out after 60 s"
            echo "FAIL $t $path (${why:-exit $rc})"
            fail=$((fail + 1))
        fi
    done < <("./tests/qtest/$t" -l 2>/dev/null | grep '^/')
done
# The libvirt test with the pristine binary: what a libvirt user gets.
"$TOP/scripts/build.sh" patched tests/qtest/guest/guest.bin >&2 || exit 1
while read -r line; do
    case "$line" in
    "ok "*"# SKIP"*|"1..0 # SKIP"*) echo "SKIP libvirt ${line#* - }"; skip=$((skip + 1)) ;;
    "ok "*) echo "PASS libvirt ${line#* - }"; pass=$((pass + 1)) ;;
    "not ok "*) echo "FAIL libvirt ${line#* - }"; fail=$((fail + 1)) ;;
    "#"*) echo "     libvirt $line" ;;
    esac
done < <("$TOP/tests/libvirt/test-libvirt.sh" "$pristine" 2>&1)
echo "pristine $UPSTREAM_VERSION: $pass pass, $fail fail, $skip skipped"
