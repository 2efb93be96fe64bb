#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# make check-bisect: build QEMU and run the project's unit tests at every
# patch of the series, so that a bisect can land on any of them.  The
# series is prepared commit by commit in build/bisect-src (as exported:
# each patch with the overlay files it adds, as they are at that point),
# checked out patch by patch and built incrementally in one build
# directory, build/bisect: a patch rebuilds only what it touches.  At each
# patch: qemu-system-x86_64 builds with -Werror, and each of the project's
# unit tests that exists by then builds and passes.  TAP on stdout, one
# case per patch; QKM_BISECT_FROM=N starts at patch N (1-based),
# QKM_BISECT_TO=M stops after patch M.

set -uo pipefail
. "$(dirname "$0")/lib.sh"

"$TOP/scripts/install-deps.sh" || exit 1
export QKM_UPSTREAM_REPO QKM_SPARSE_TREES=1
QKM_UPSTREAM_REPO=$("$TOP/scripts/upstream-repo.sh") || exit 1

src=$BUILD_ROOT/bisect-src
bld=$BUILD_ROOT/bisect
# The project's unit tests, by build path (see scripts/check.sh).
UNIT_TESTS=(
    tests/unit/test-kvm-gmem-attrs
    tests/unit/test-tdx-populate
    tests/qtest/kvm-contract/kvm-contract-test
)
TEST_LIBS=(
    tests/qtest/kvm-contract/libkvm-contract.so
    tests/qtest/kvm-contract/libtdx-contract.so
)

note "preparing the series commit by commit in $src"
rm -rf "$src"
"$PYTHON" "$TOP/scripts/series.py" prepare "$src" >&2 ||
    { echo "Bail out! the series does not prepare"; exit 1; }
mapfile -t commits < <(git -C "$src" rev-list --reverse upstream..HEAD)
from=${QKM_BISECT_FROM:-1}
to=${QKM_BISECT_TO:-${#commits[@]}}
[ "$to" -le ${#commits[@]} ] || to=${#commits[@]}

# The patched build's options (scripts/build.sh).
config_args=("${QEMU_CONFIG_ARGS[@]}" --enable-werror ${QKM_CONFIGURE_ARGS:-})

echo "1..$(( to - from + 1 ))"
n=0
failed=0
start_all=$(date +%s)
for ((k = from - 1; k < to; k++)); do
    c=${commits[k]}
    n=$((n + 1))
    subject=$(git -C "$src" log -1 --format=%s "$c")
    log=$bld.log.$((k + 1))
    t0=$(date +%s)
    git -C "$src" -c advice.detachedHead=false checkout -q "$c"
    ok=1
    if [ ! -f "$bld/build.ninja" ]; then
        rm -rf "$bld"
        mkdir -p "$bld"
        (cd "$bld" && "$src/configure" "${config_args[@]}") >"$log" 2>&1 ||
            ok=0
    fi
    ran=()
    if [ $ok -eq 1 ]; then
        ninja -C "$bld" qemu-system-x86_64 >>"$log" 2>&1 || ok=0
    fi
    if [ $ok -eq 1 ]; then
        # The kernel-contract layers the tests preload, where they exist.
        for l in "${TEST_LIBS[@]}"; do
            ninja -C "$bld" -t query "$l" >/dev/null 2>&1 || continue
            ninja -C "$bld" "$l" >>"$log" 2>&1 || ok=0
        done
    fi
    if [ $ok -eq 1 ]; then
        for t in "${UNIT_TESTS[@]}"; do
            # Only the tests this patch's tree has.
            ninja -C "$bld" -t query "$t" >/dev/null 2>&1 || continue
            if ninja -C "$bld" "$t" >>"$log" 2>&1 &&
               (cd "$bld" && "./$t" --tap -q) >>"$log" 2>&1; then
                ran+=("${t##*/}")
            else
                ok=0
                ran+=("${t##*/} FAILED")
            fi
        done
    fi
    secs=$(( $(date +%s) - t0 ))
    what="patch $((k + 1)): $subject (${secs} s; unit tests: ${ran[*]:-none yet})"
    if [ $ok -eq 1 ]; then
        echo "ok $n - $what"
    else
        echo "not ok $n - $what"
        # The last lines of the log, each cut short: ninja's FAILED line
        # lists every output of a generator and can run to kilobytes.
        tail -n 30 "$log" | cut -c1-300 | sed 's/^/# /'
        failed=$((failed + 1))
    fi
done
echo "# $n patches in $(( $(date +%s) - start_all )) s"
echo "bisect check: $((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
