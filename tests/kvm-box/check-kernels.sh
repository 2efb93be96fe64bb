#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The KVM cases of the project's qtests on every pinned kernel
# (tests/kvm-box/kernels), each in its own KVM box (scripts/kvm-box.sh),
# all boxes at once (each box has one vCPU).  Prints one TAP stream:
# each case once per kernel, named kvm@KERNEL; a box that cannot start
# or does not finish is a failure with its reason.  Exits non-zero when
# anything failed.
#
#   check-kernels.sh BUILD_DIR [KERNEL...]     (default: every pinned one)
#
# QKM_BOX_KERNELS (space-separated) overrides the list, for a quicker run;
# QKM_BOX_LIBVIRT names the kernels whose box also runs the libvirt test
# (default 7.2; empty: none); QKM_BOX_LINUX_GUEST those whose box also
# runs the Linux-guest test on KVM, the box's kernel as the guest's
# (tests/linux-guest/test-memory-error-kvm.sh; default 7.2; empty: none).

set -uo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: check-kernels.sh BUILD_DIR [KERNEL...]}
shift
kernels=("$@")
if [ ${#kernels[@]} -eq 0 ]; then
    if [ -n "${QKM_BOX_KERNELS:-}" ]; then
        read -r -a kernels <<<"$QKM_BOX_KERNELS"
    else
        mapfile -t kernels < <("$TOP/scripts/kvm-box.sh" list)
    fi
fi

# Test binary : GLib test path of its KVM cases.  private-memory-test,
# tdx-populate-test and the kernel-contract layer's own test need KVM in
# every case (the layers run on top of the real KVM).
Q=$build/tests/qtest
CASES=(
    "$Q/guest-modes-test:/x86_64/x86/guest-lib/kvm"
    "$Q/memory-fault-test:/x86_64/x86/memory-fault/kvm"
    "$Q/memory-loss-test:/x86_64/x86/memory-loss/kvm"
    "$Q/memory-error-test:/x86_64/x86/memory-error/kvm"
    "$Q/nested-npt-test:/x86_64/x86/nested-npt/kvm"
    "$Q/private-memory-test:/x86_64/x86/private-memory"
    "$Q/tdx-populate-test:/x86_64/x86/tdx"
    "$Q/kvm-contract/kvm-contract-test:/kvm-contract"
)
# The in-place guest_memfd build (scripts/build.sh inplace), where there
# is one: its TDX in-place cases, which must run, not skip.
inplace=${QKM_BOX_INPLACE_QEMU:-}
if [ -n "$inplace" ]; then
    CASES+=("$Q/tdx-populate-test:/x86_64/x86/tdx/contract/in-place:$inplace:QKM_REQUIRE_IN_PLACE=1")
fi

# The libvirt test's domains, on KVM as libvirt's users run them: in the
# boxes of QKM_BOX_LIBVIRT (default the newest kernel, 7.2).
libvirt_kernels=${QKM_BOX_LIBVIRT-7.2}
linux_guest_kernels=${QKM_BOX_LINUX_GUEST-7.2}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run_kernel() {
    local k=$1 start=$SECONDS rc=0 specs=("${CASES[@]}") prio=5 dir
    if [[ " $libvirt_kernels " == *" $k "* ]]; then
        specs+=("tap:$TOP/tests/libvirt/test-libvirt.sh:$build/qemu-system-x86_64")
        # The longest box: the others yield to it (three boxes, two
        # cores), so that all end at about the same time.
        prio=0
    fi
    # Fetch and build the initramfs first, so that a failure to get the
    # kernel is reported as such.
    if ! dir=$("$TOP/scripts/kvm-box.sh" prepare "$k" 2>"$out/$k.err"); then
        echo "not ok 0 - kvm@$k the box: $(tail -n 1 "$out/$k.err")" > "$out/$k.tap"
        return
    fi
    if [[ " $linux_guest_kernels " == *" $k "* ]]; then
        specs+=("tap:$TOP/tests/linux-guest/test-memory-error-kvm.sh:$dir/vmlinuz")
    fi
    (cd "$build" && nice -n "$prio" "$TOP/scripts/kvm-box.sh" run --timeout 1200 \
        --env QTEST_QEMU_BINARY="$build/qemu-system-x86_64" "$k" -- \
        "$TOP/tests/kvm-box/run-cases.sh" "$k" "${specs[@]}") \
        > "$out/$k.tap" 2> "$out/$k.err" || rc=$?
    if [ $rc -eq 125 ]; then
        echo "not ok 0 - kvm@$k the box: $(grep -m1 '^kvm-box:' "$out/$k.err")" >> "$out/$k.tap"
    fi
    echo "# kvm@$k: $((SECONDS - start)) s" >> "$out/$k.tap"
}

# All at once by default (QKM_BOX_JOBS): a box is one TCG vCPU thread
# plus its 9p I/O, so three boxes keep two cores busier than two boxes
# and then one.
jobs=${QKM_BOX_JOBS:-${#kernels[@]}}
pids=()
for k in "${kernels[@]}"; do
    run_kernel "$k" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}"
        pids=("${pids[@]:1}")
    fi
done
wait

status=0
n=0
for k in "${kernels[@]}"; do
    while IFS= read -r line; do
        case "$line" in
        "ok "*|"not ok "*)
            n=$((n + 1))
            # Renumber: one stream for all kernels.
            rest=${line#ok }
            rest=${rest#not ok }
            rest=${rest#* }
            if [ "${line#not ok}" != "$line" ]; then
                echo "not ok $n $rest"
                status=1
            else
                echo "ok $n $rest"
            fi
            ;;
        1..*) ;;
        *) echo "$line" ;;
        esac
    done < "$out/$k.tap"
    if [ -s "$out/$k.err" ]; then
        grep -v '^kvm-box: kept' "$out/$k.err" | tail -n 20 | sed "s/^/# kvm@$k stderr: /"
    fi
done
echo "1..$n"
exit $status
