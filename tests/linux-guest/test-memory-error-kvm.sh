#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Linux-guest test (test-memory-error.py) on KVM, for the KVM box
# (tests/kvm-box/check-kernels.sh): QEMU from QTEST_QEMU_BINARY, the
# guest's kernel the vmlinuz named by $1.  TAP on stdout.
exec python3 "$(dirname "$0")/test-memory-error.py" \
    "${QTEST_QEMU_BINARY:?}" --accel=kvm --kernel="${1:?usage: $0 VMLINUZ}"
