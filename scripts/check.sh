#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The test command (make check): build the patched QEMU and run
#   - the project's unit tests and qtests,
#   - the qtests' KVM cases on each pinned kernel, in the KVM box
#     (scripts/kvm-box.sh: Debian's kernels under TCG, a real /dev/kvm),
#   - a chosen set of upstream x86 qtests that exercise the code the
#     series touches (the list below says why each is there),
#   - a real Linux guest (tests/linux-guest/: Debian's kernel under TCG
#     recovers from lost RAM with lost-page-action=guest-error),
#   - the docs test (tests/docs/: every command-line example of the
#     guest_memfd and guest-memory fault pages runs),
#   - the libvirt test (tests/libvirt/: a private libvirt daemon runs the
#     patched QEMU from domain XML),
#   - the series checks (scripts/check-series.sh), the tests of the
#     series checker and of the edit/save workflow (tests/series/),
#   - a lint of the project's shell scripts (tests/series/).
# Ends with the skipped subtests and their reasons, then one line
# "check: N passed, N failed, N skipped" counting subtests (each ok/not ok
# line of a TAP test), and exits non-zero when anything failed.

set -uo pipefail
. "$(dirname "$0")/lib.sh"

# The project's own tests (overlay files under tests/).
PROJECT_QTESTS=(
    guest-modes-test    # the test guest reaches every CPU mode, KVM and TCG
    memory-fault-test   # one report for every guest-memory fault
    memory-loss-test    # after it: sticky stop, lost pages stay lost, reset
    memory-error-test   # lost-page-action=guest-error: machine checks
    nested-npt-test     # the test guest as an SVM/NPT L1 hypervisor
    private-memory-test # guest_memfd RAM, sw-protected-vm (real or model)
    tdx-populate-test   # TDX launch and population (real or contract layer)
)
# Unit tests, by build path; meson knows each by its file name.
PROJECT_UNIT_TESTS=(
    tests/qtest/kvm-contract/kvm-contract-test  # the layer's own contract
    tests/unit/test-kvm-gmem-attrs  # in-place guest_memfd conversion retries
    tests/unit/test-tdx-populate    # TDX population unit, on a fake contract
)
# Built for the tests: the KVM kernel-contract layer (LD_PRELOAD).
TEST_LIBS=(tests/qtest/kvm-contract/libkvm-contract.so
           tests/qtest/kvm-contract/libtdx-contract.so)

# Upstream qtests run against the patched binary, and why.
UPSTREAM_QTESTS=(
    test-hmp            # HMP memsave/pmemsave/info mtree: QEMU's own
                        # accesses to guest memory
    qmp-cmd-test        # every query-* command (query-status, query-memdev)
    numa-test           # memory backends and memdev-backed RAM blocks
    vmgenid-test        # boots SeaBIOS on KVM (TCG without it) and reads
                        # guest RAM through qtest: the vCPU run loop
    cpu-plug-test       # vCPU creation: KVM vCPU set-up paths
    q35-test            # PAM/SMRAM remapping: RAM versus ROM/MMIO lookups
    qmp-test            # QMP basics: events, capabilities, errors
    machine-none-test   # start-up without a machine
)

tests_passed=0
tests_failed=0
tests_skipped=0
status=0

targets=(qemu-system-x86_64 "${TEST_LIBS[@]}")
for t in "${PROJECT_QTESTS[@]}" "${UPSTREAM_QTESTS[@]}"; do
    targets+=("tests/qtest/$t")
done
targets+=("${PROJECT_UNIT_TESTS[@]}")
targets+=(tests/qtest/guest/guest.bin)     # firmware of the libvirt test

if ! "$TOP/scripts/build.sh" patched "${targets[@]}"; then
    echo "check: build failed"
    echo "check: 0 passed, 1 failed"
    exit 1
fi

# --- meson tests ---------------------------------------------------------
names=()
for t in "${PROJECT_UNIT_TESTS[@]}"; do names+=("${t##*/}"); done
for t in "${PROJECT_QTESTS[@]}" "${UPSTREAM_QTESTS[@]}"; do
    names+=("qtest-x86_64/$t")
done
note "running ${#names[@]} unit tests and qtests"
(cd "$BUILD_ROOT/qemu" &&
    meson test --no-rebuild --print-errorlogs --num-processes 2 "${names[@]}")
[ $? -eq 0 ] || status=1
json=$BUILD_ROOT/qemu/meson-logs/testlog.json
skipped_list=$BUILD_ROOT/check-skipped.txt
: > "$skipped_list"
if [ -f "$json" ]; then
    # Subtests count, from each test's TAP output; a test without TAP
    # output counts once, by its result.
    read -r p f s < <("$PYTHON" - "$json" "$skipped_list" <<'PY'
import json, re, sys
p = f = s = 0
skips = open(sys.argv[2], "a")
for line in open(sys.argv[1]):
    r = json.loads(line)
    name = r["name"].split(" / ")[-1]
    tap = [l for l in (r.get("stdout") or "").splitlines()
           if re.match(r"(not )?ok ", l)]
    for l in tap:
        if l.startswith("not ok"):
            f += 1
        elif "# SKIP" in l:
            s += 1
            skips.write("%s: %s\n" % (name, l.split(" ", 2)[2]))
        else:
            p += 1
    if not tap:
        if r["result"] in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif r["result"] == "SKIP":
            s += 1
            skips.write("%s: skipped\n" % name)
        else:
            f += 1
    elif r["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and \
            not any(l.startswith("not ok") for l in tap):
        f += 1          # died after its last subtest
skips.close()
print(p, f, s)
PY
)
    tests_passed=$((tests_passed + p))
    tests_failed=$((tests_failed + f))
    tests_skipped=$((tests_skipped + s))
fi

# --- series checks and the checker's own tests ----------------------------
run_tap() {
    local out rc ok bad skip
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\n' "$out"
    ok=$(grep '^ok ' <<<"$out" | grep -vc '# SKIP')
    skip=$(grep -c '^ok .*# SKIP\|^1\.\.0 # SKIP' <<<"$out")
    grep '^ok .*# SKIP\|^1\.\.0 # SKIP' <<<"$out" |
        sed "s|^|$(basename "${*: -1}"): |" >> "$skipped_list"
    bad=$(grep -c '^not ok ' <<<"$out")
    if [ $rc -ne 0 ] && [ "$bad" -eq 0 ]; then
        bad=1       # failed before it could report
    fi
    tests_passed=$((tests_passed + ok))
    tests_skipped=$((tests_skipped + skip))
    tests_failed=$((tests_failed + bad))
    [ $rc -eq 0 ] || status=1
}
note "in-place guest_memfd paths: a build with the in-place UAPI, on the contract layer"
if "$TOP/scripts/build.sh" inplace qemu-system-x86_64; then
    run_tap env QKM_REQUIRE_IN_PLACE=1 \
        QTEST_QEMU_BINARY="$BUILD_ROOT/qemu-inplace/qemu-system-x86_64" \
        "$BUILD_ROOT/qemu/tests/qtest/tdx-populate-test" --tap -k \
        -p /x86_64/x86/tdx/contract/in-place
else
    echo "not ok - build of the in-place variant"
    tests_failed=$((tests_failed + 1))
    status=1
fi

note "real KVM: the KVM cases on Debian's kernels, each in a KVM box (tests/kvm-box/)"
inplace_qemu=$BUILD_ROOT/qemu-inplace/qemu-system-x86_64
[ -x "$inplace_qemu" ] || inplace_qemu=
run_tap env QKM_BOX_INPLACE_QEMU="$inplace_qemu" \
    "$TOP/tests/kvm-box/check-kernels.sh" "$BUILD_ROOT/qemu"

note "a Linux guest recovers from lost RAM (lost-page-action=guest-error, TCG)"
run_tap "$PYTHON" "$TOP/tests/linux-guest/test-memory-error.py" \
    "$BUILD_ROOT/qemu/qemu-system-x86_64"

note "code built only with in-place guest_memfd headers still compiles"
run_tap "$PYTHON" "$TOP/scripts/check-in-place-build.py" "$BUILD_ROOT/qemu" \
    "$BUILD_ROOT/qemu-src"

note "hosts without system/guest-memory-*.c (all but Linux) still link, on stubs/"
run_tap "$PYTHON" "$TOP/scripts/check-stubs-link.py" "$BUILD_ROOT/qemu"

note "docs: every command-line example of the guest_memfd and fault pages runs"
run_tap "$PYTHON" "$TOP/tests/docs/test-doc-examples.py" \
    "$BUILD_ROOT/qemu/qemu-system-x86_64" \
    "$BUILD_ROOT/qemu/tests/qtest/kvm-contract/libkvm-contract.so"

note "libvirt: a private daemon runs the patched QEMU from domain XML"
run_tap "$TOP/tests/libvirt/test-libvirt.sh"

note "series checks"
run_tap "$TOP/scripts/check-series.sh"
note "tests of the series checker"
run_tap "$TOP/tests/series/test-check-series.sh"
note "tests of the edit/save workflow"
run_tap "$TOP/tests/series/test-edit-save.sh"
note "shell scripts: no reader that leaves a pipe early under pipefail"
run_tap "$TOP/tests/series/test-shell-pipelines.sh"

if [ -s "$skipped_list" ]; then
    echo "check: skipped, with the reason each gave:"
    sed 's/^/  /' "$skipped_list"
fi
echo "check: $tests_passed passed, $tests_failed failed, $tests_skipped skipped"
exit $status
