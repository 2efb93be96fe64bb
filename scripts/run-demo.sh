#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The main job: build the patched qemu-system-x86_64 and boot the
# project's demo guest (tests/qtest/guest/, a flat -bios image that walks
# from real mode to long mode) on KVM when /dev/kvm works, else on TCG.
# Prints the QEMU version, the series applied and what the guest printed.
# Then the guest loses most of its RAM on KVM (scripts/demo-fault.py):
# on this machine's KVM, or where /dev/kvm is missing on Linux 7.2 in the
# KVM box (scripts/kvm-box.sh); prints the report, the event and the
# run state a user would see.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

"$TOP/scripts/build.sh" patched qemu-system-x86_64 tests/qtest/guest/guest.bin >&2
qemu=$BUILD_ROOT/qemu/qemu-system-x86_64
image=$BUILD_ROOT/qemu/tests/qtest/guest/guest.bin

echo "== QEMU"
"$qemu" --version | sed -n 1p
echo "== Series applied to pristine $UPSTREAM_VERSION (patches/series)"
git -C "$BUILD_ROOT/qemu-src" log --reverse --format='  %s' upstream..HEAD |
    grep -v "^  overlay: add the project's new files$" || true

run_guest() {
    # GUEST_EXIT_OK (0x10) written to isa-debug-exit ends QEMU with 33.
    timeout 60 "$qemu" -accel "$1" -machine pc -cpu max -m 64M \
        -nodefaults -display none -bios "$image" \
        -chardev stdio,id=guest-dbg \
        -device isa-debugcon,iobase=0xe9,chardev=guest-dbg \
        -device isa-debug-exit,iobase=0xf4,iosize=4
}

accel=tcg
why="/dev/kvm is missing or not accessible"
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    accel=kvm
fi
echo "== Guest output ($accel)"
set +e
out=$(run_guest "$accel" 2>"$BUILD_ROOT/demo-qemu.log")
status=$?
set -e
if [ "$accel" = kvm ] && [ "$status" -ne 33 ] &&
   grep -q "failed to initialize kvm\|Could not access KVM" "$BUILD_ROOT/demo-qemu.log"; then
    why="KVM did not initialize: $(head -n 1 "$BUILD_ROOT/demo-qemu.log")"
    accel=tcg
    echo "   (KVM unusable, falling back to TCG: $why)"
    set +e
    out=$(run_guest tcg 2>"$BUILD_ROOT/demo-qemu.log")
    status=$?
    set -e
fi
[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/  /'
if [ "$status" -ne 33 ]; then
    cat "$BUILD_ROOT/demo-qemu.log" >&2
    case $status in
    124) die "the demo guest did not finish within 60 s on $accel" ;;
    *) die "QEMU exited with status $status on $accel (33 means the guest finished)" ;;
    esac
fi
[ "$accel" = kvm ] || echo "   (ran on TCG: $why)"
echo "== Demo guest finished on $accel"

echo "== A guest loses its RAM on KVM"
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    "$PYTHON" "$TOP/scripts/demo-fault.py" "$qemu" "$image" ||
        die "the guest-memory fault demo failed on this machine's KVM"
else
    kernel=$("$TOP/scripts/kvm-box.sh" list | sed -n 1p)
    echo "   (no /dev/kvm here: on Debian's Linux $kernel in the KVM box)"
    "$TOP/scripts/kvm-box.sh" run --timeout 300 "$kernel" -- \
        "$PYTHON" "$TOP/scripts/demo-fault.py" "$qemu" "$image" ||
        die "the guest-memory fault demo failed in the KVM box (Linux $kernel)"
fi
