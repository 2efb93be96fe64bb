#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The patched QEMU under a real libvirt daemon (Debian's libvirt 11.3
# from bookworm-backports, installed by scripts/install-deps.sh libvirt
# when missing), as a libvirt user meets a guest-memory fault.
#
#   tests/libvirt/test-libvirt.sh [QEMU]     TAP on stdout
#
# The daemons run with their own configuration, state, logs and sockets:
# the script re-executes itself in a private mount namespace (unshare)
# with tmpfs over /run, /etc/libvirt, /var/lib/libvirt, /var/log/libvirt
# and /var/cache/libvirt, so that it never sees or touches a libvirt of
# the host, installed or running.  It starts virtlogd and libvirtd there
# as its own children, talks to them with virsh -c qemu:///system, and
# stops and reaps both at the end; when the namespace ends its mounts go
# with it.
#
# The domains: the XML blocks of docs/system/libvirt.rst, verbatim (the test
# reads it from the page, so the page shows what ran), type kvm where
# /dev/kvm works (else qemu), <emulator> the QEMU under test, the
# project's test guest (tests/qtest/guest/) as <loader type='rom'>, its
# request block put into guest RAM by QEMU's generic loader device and
# its debugcon in a file, both through <qemu:commandline>; RAM in a
# shared file on a 40 MiB tmpfs the test owns (memory_backing_dir).
#
#   - truncation: the guest spins reading RAM at 32 MiB; the backing file
#     is cut to 16 MiB: the domain is paused (libvirt's reason for QEMU's
#     internal-error is "unknown"), virsh qemu-monitor-event sees
#     GUEST_MEMORY_FAULT with its fields, the domain log holds the two
#     report lines, virsh resume is refused, virsh destroy works;
#   - a full tmpfs: the guest fills 48 MiB of its 64 MiB on the 40 MiB
#     tmpfs: the same, with cause no-space (the page named where the
#     exit names it; after a bare -EFAULT, the released SVM and VMX
#     kernels' answer, only the block);
#   - guest_memfd RAM and backing-watch, which libvirt does not model,
#     through <qemu:commandline> (the page's second XML): the domain
#     starts, the guest runs on that RAM (KVM only);
#   - TDX (no TDX here, so only libvirt's schema is asked, with
#     virt-xml-validate): <launchSecurity type='tdx'> is rejected before
#     libvirt 11.6 (expected valid from 11.6: not run), and a tdx-guest
#     with populate-in-place through <qemu:commandline> is valid;
#   - nothing is left: no QEMU process, no RAM file.
#
# With a pristine QEMU (make check-pristine) the same test shows the
# difference: QEMU dies of SIGBUS, the domain is gone ("crashed").

set -uo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/scripts/lib.sh"

QEMU=${1:-$BUILD_ROOT/qemu/qemu-system-x86_64}
IMAGE=$BUILD_ROOT/qemu/tests/qtest/guest/guest.bin
DOC=$OVERLAY/docs/system/libvirt.rst

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $*"; }
check() {   # check DESCRIPTION COMMAND...: ok if COMMAND succeeds
    local what=$1
    shift
    if "$@" 2>>"${W:-/tmp}/check-errors"; then ok "$what"; else not_ok "$what"; fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 0; }

if [ -z "${QKM_LIBVIRT_NS:-}" ]; then
    [ "$(id -u)" -eq 0 ] || skip_all "needs root (a private mount namespace for the daemons)"
    [ -x "$QEMU" ] || { echo "1..1"; echo "not ok 1 - $QEMU is not built"; exit 1; }
    [ -f "$IMAGE" ] || { echo "1..1"; echo "not ok 1 - $IMAGE is not built"; exit 1; }
    if ! out=$("$TOP/scripts/install-deps.sh" libvirt 2>&1); then
        skip_all "libvirt cannot be installed here: $(tail -n 1 <<<"$out")"
    fi
    command -v unshare >/dev/null || skip_all "no unshare(1)"
    unshare --mount --propagation private true 2>/dev/null ||
        skip_all "no private mount namespace here (unshare --mount failed)"
    exec env QKM_LIBVIRT_NS=1 unshare --mount --propagation private \
        "$0" "$QEMU"
fi

# --- inside the private namespace ----------------------------------------
W=$(mktemp -d /tmp/qkm-libvirt.XXXXXX)
daemons_started=0
cleanup() {
    if [ $daemons_started -eq 1 ]; then
        [ -n "${watcher:-}" ] && kill "$watcher" 2>/dev/null
        for d in $(virsh -c qemu:///system list --name 2>/dev/null); do
            virsh -c qemu:///system destroy "$d" >/dev/null 2>&1
        done
        kill "$libvirtd_pid" "$virtlogd_pid" 2>/dev/null
        wait "$libvirtd_pid" "$virtlogd_pid" 2>/dev/null
    fi
    umount "$W/ram" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/etc" "$W/ram"
cp -a /etc/libvirt/. "$W/etc/"
for d in /run /var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
    mkdir -p "$d"
    mount -t tmpfs -o mode=0755 tmpfs "$d" ||
        { echo "1..1"; echo "not ok 1 - cannot mount a private $d"; exit 1; }
done
mount --bind "$W/etc" /etc/libvirt
mount -t tmpfs -o size=40m tmpfs "$W/ram"

accel_type=qemu accel=tcg
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    accel_type=kvm accel=kvm
fi
# The report's first line: KVM's, or the accelerator-neutral one.
if [ "$accel" = kvm ]; then
    headline="error: kvm run failed Bad address"
else
    headline="error: guest memory fault"
fi

cat > /etc/libvirt/qemu.conf <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
memory_backing_dir = "$W/ram"
EOF

# Children of this script (not -d): it reaps them when it stops them.
virtlogd > "$W/virtlogd.out" 2>&1 &
virtlogd_pid=$!
libvirtd > "$W/libvirtd.out" 2>&1 &
libvirtd_pid=$!
daemons_started=1
V="virsh -q -c qemu:///system"
for _ in $(seq 1 100); do
    $V version >/dev/null 2>&1 && break
    sleep 0.2
done

check "libvirtd answers on its private socket" \
    bash -c "$V version >/dev/null"

# One watcher for every domain's QEMU events, from now to the end, as a
# management application listens: an event sent before a per-domain
# watcher had registered would be missed (the fault can come within a
# second of the domain's start, and sooner than virsh registers in a
# TCG box).  watcher_ready below tells when it listens.
$V qemu-monitor-event --loop --timeout 1800 > "$W/events" 2>&1 &
watcher=$!

# doc_xml N: the Nth 'code-block:: xml' of docs/system/libvirt.rst.
doc_xml() {
    "$PYTHON" - "$DOC" "$1" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
want, seen, out, inside = int(sys.argv[2]), 0, [], False
for l in lines:
    if not inside and l.strip() == ".. code-block:: xml":
        seen += 1
        inside = seen == want
        continue
    if inside:
        if l and not l.startswith("   "):
            if out:
                break
            continue
        out.append(l[3:])
print("\n".join(out).strip())
PY
}
xml_template=$(doc_xml 1)
case "$xml_template" in
*"<domain"*) ok "docs/system/libvirt.rst has the domain XML" ;;
*) not_ok "docs/system/libvirt.rst has the domain XML"; exit 1 ;;
esac

# The guest's request block (tests/qtest/guest/guest-abi.h): long mode,
# then op @1 on address @2 for @3 bytes, or a script of one step.
mailbox() {
    "$PYTHON" - "$@" <<'PY'
import struct, sys
out, op, addr, count = sys.argv[1], int(sys.argv[2]), \
    int(sys.argv[3], 0), int(sys.argv[4], 0)
mb = bytearray(0x200)
struct.pack_into("<I", mb, 0x08, 3)             # MB_REQ_MODE: long64
if op == 7:                                     # GUEST_OP_SCRIPT
    struct.pack_into("<I", mb, 0x10, 7)
    # STEP_WAIT32: spin reading @addr until it holds @count (never)
    struct.pack_into("<IIII", mb, 0x100, 5, addr, count, 0)
else:
    struct.pack_into("<III", mb, 0x10, op, addr, count)
open(out, "wb").write(mb)
PY
}

# start_domain NAME MAILBOX: a transient domain from the page's XML
start_domain() {
    local name=$1 mb=$2 xml=$W/$1.xml
    sed -e "s|@NAME@|$name|g" -e "s|@TYPE@|$accel_type|g" \
        -e "s|@QEMU@|$QEMU|g" -e "s|@GUEST@|$IMAGE|g" \
        -e "s|@MAILBOX@|$mb|g" -e "s|@DEBUGCON@|$W/$name.debugcon|g" \
        <<<"$xml_template" > "$xml"
    $V create "$xml" > "$W/$name.create" 2>&1
}

debugcon_has() {   # debugcon_has NAME TEXT: within 20 s
    for _ in $(seq 1 100); do
        grep -q "$2" "$W/$1.debugcon" 2>/dev/null && return 0
        sleep 0.2
    done
    return 1
}

ram_file() {
    find "$W/ram" -type f -print -quit
}

# watcher_ready NAME: the watcher has seen NAME's events.  NAME's guest
# must be running; it is suspended and resumed (STOP, RESUME) until the
# watcher prints the RESUME, within 30 s.
watcher_ready() {
    for _ in $(seq 1 15); do
        $V suspend "$1" >/dev/null 2>&1 && $V resume "$1" >/dev/null 2>&1
        for _ in $(seq 1 10); do
            grep -q "^event RESUME at .* for domain '$1'" "$W/events" &&
                return 0
            sleep 0.2
        done
    done
    return 1
}

# domain_events NAME: NAME's GUEST_MEMORY_FAULT events, once the first
# has come (within 30 s)
domain_events() {
    local pattern="^event GUEST_MEMORY_FAULT at .* for domain '$1'"

    for _ in $(seq 1 150); do
        grep -q "$pattern" "$W/events" && break
        sleep 0.2
    done
    grep "$pattern" "$W/events"
}

# fault_case NAME CAUSE LOST: after the guest met the fault; LOST is the
# start of the event's "lost" list, or - when the event must have none
fault_case() {
    local name=$1 cause=$2 lost=$3 log=/var/log/libvirt/qemu/$1.log
    local events=$W/$name.events state

    domain_events "$name" > "$events"
    sed 's/^/#   /' "$events"
    check "$name: GUEST_MEMORY_FAULT reaches virsh qemu-monitor-event" \
        grep -q '^event GUEST_MEMORY_FAULT at ' "$events"
    check "$name: the event says cause $cause and names RAM block pc.ram" \
        bash -c "grep -q '\"cause\": *\"$cause\"' '$events' &&
                 grep -q '\"block\": *\"pc.ram\"' '$events'"
    for _ in $(seq 1 50); do
        state=$($V domstate --reason "$name" 2>&1)
        [ "${state%% *}" = paused ] && break
        sleep 0.2
    done
    echo "# $name: virsh domstate --reason: $state"
    if [ "${state%% *}" != paused ]; then
        echo "# $name: the end of $log:"
        tail -n 3 "$log" 2>/dev/null | sed 's/^/#   /'
    fi
    check "$name: the domain is paused (libvirt's reason: unknown)" \
        test "$state" = "paused (unknown)"
    check "$name: the domain log has '$headline'" \
        grep -qx "$headline" "$log"
    check "$name: the domain log has the detail line with the cause" \
        grep -q "^guest memory fault: .*RAM block pc.ram[ ,].*cause: " "$log"
    grep -A1 -x "$headline" "$log" 2>/dev/null |
        sed 's/^/#   /'
    if [ "$lost" = - ]; then
        check "$name: the event lists no lost range" \
            bash -c "grep -q '\"cause\"' '$events' &&
                     ! grep -qF '\"lost\":' '$events'"
    else
        check "$name: the event lists the lost ranges ($lost)" \
            grep -qF "\"lost\":[$lost" "$events"
    fi
    if $V resume "$name" > "$W/$name.resume" 2>&1 ||
       [ "$($V domstate "$name" 2>&1)" != paused ]; then
        not_ok "$name: virsh resume is refused, the domain stays paused"
    else
        ok "$name: virsh resume is refused, the domain stays paused"
        sed 's/^/# /' "$W/$name.resume"
    fi
    check "$name: QEMU says internal-error" \
        bash -c "$V qemu-monitor-command '$name' '{\"execute\":\"query-status\"}' |
                 grep -q '\"status\":\"internal-error\"'"
    check "$name: virsh destroy" $V destroy "$name"
}

# --- a truncated backing file ---------------------------------------------
mailbox "$W/spin.bin" 7 0x2000000 1
if start_domain qkm-trunc "$W/spin.bin"; then
    ok "qkm-trunc: virsh create"
else
    not_ok "qkm-trunc: virsh create"
    sed 's/^/# /' "$W/qkm-trunc.create"
    exit 1
fi
check "qkm-trunc: the guest runs (debugcon: long mode)" \
    debugcon_has qkm-trunc "64-bit long mode"
check "qkm-trunc: virsh qemu-monitor-event listens (suspend/resume seen)" \
    watcher_ready qkm-trunc
f=$(ram_file)
echo "# qkm-trunc: RAM file $f"
check "qkm-trunc: the RAM file is in memory_backing_dir" test -n "$f"
truncate -s 16M "$f"
# 48 MiB lost from 16 MiB on
fault_case qkm-trunc backing-truncated '{"size":50331648,"gpa":16777216}]'

# --- a full tmpfs ---------------------------------------------------------
mailbox "$W/fill.bin" 8 0x200000 0x3000000
check "qkm-full: virsh create" start_domain qkm-full "$W/fill.bin"
check "qkm-full: the guest runs (debugcon: long mode)" \
    debugcon_has qkm-full "64-bit long mode"
# The one page the tmpfs had no room for, where the exit names it (an
# MMIO exit, a SIGBUS).  A bare -EFAULT from KVM_RUN (the released SVM
# and VMX kernels: the failed host page fault carries no GPA) names
# only the block: no page, no offset, nothing lost.
domain_events qkm-full > "$W/qkm-full.first"
if grep -qF '"path":"vcpu-run"' "$W/qkm-full.first"; then
    check "qkm-full: a bare -EFAULT: the event has no gpa and no offset" \
        bash -c "! grep -qF '\"gpa\":' '$W/qkm-full.first' &&
                 ! grep -qF '\"offset\":' '$W/qkm-full.first' &&
                 grep -qF 'the page is not known' '$W/qkm-full.first'"
    fault_case qkm-full no-space -
else
    fault_case qkm-full no-space '{"size":4096,"gpa":'
fi

# --- guest_memfd RAM and backing-watch through <qemu:commandline> --------
# An ordinary VM's RAM in a guest_memfd needs KVM_CAP_GUEST_MEMFD_FLAGS
# MMAP|INIT_SHARED (3) on a VM: Linux 6.18 and later.
gmem_flags=0
if [ "$accel_type" = kvm ]; then
    gmem_flags=$("$PYTHON" - <<'PY'
import fcntl, os
fd = os.open("/dev/kvm", os.O_RDWR)
try:
    vm = fcntl.ioctl(fd, 0xae01, 0)                  # KVM_CREATE_VM
    print(fcntl.ioctl(vm, 0xae03, 244))             # GUEST_MEMFD_FLAGS
except OSError:
    print(0)
PY
)
fi
if [ "$accel_type" = kvm ] && [ $((gmem_flags & 3)) -eq 3 ]; then
    xml_template=$(doc_xml 2)
    check "qkm-gmem: virsh create (the page's second XML)" \
        start_domain qkm-gmem "$W/spin.bin"
    check "qkm-gmem: the guest runs (debugcon: long mode)" \
        debugcon_has qkm-gmem "64-bit long mode"
    check "qkm-gmem: the RAM the guest sees is gmem0" \
        bash -c "$V qemu-monitor-command qkm-gmem --hmp 'info mtree -f' |
                 grep -q '(prio 0, ram): gmem0'"
    check "qkm-gmem: gmem0 has guest-memfd on" \
        bash -c "$V qemu-monitor-command qkm-gmem '{\"execute\":\"qom-get\",
                 \"arguments\":{\"path\":\"/objects/gmem0\",
                 \"property\":\"guest-memfd\"}}' | grep '\"return\":true' >/dev/null"
    check "qkm-gmem: the domain is running" \
        test "$($V domstate qkm-gmem 2>&1)" = running
    check "qkm-gmem: virsh destroy" $V destroy qkm-gmem
else
    n=$((n + 1))
    if [ "$accel_type" = kvm ]; then
        echo "ok $n - qkm-gmem # SKIP KVM_CAP_GUEST_MEMFD_FLAGS lacks MMAP|INIT_SHARED (Linux 6.18+ needed)"
    else
        echo "ok $n - qkm-gmem # SKIP guest_memfd RAM needs KVM (/dev/kvm)"
    fi
fi

# --- TDX XML: validated against libvirt's schema only (no TDX here) ------
tdx_xml() {   # tdx_xml N FILE: the page's Nth XML, filled in
    doc_xml "$1" | sed -e "s|@NAME@|qkm-tdx|g" -e "s|@QEMU@|$QEMU|g" \
        -e "s|@TDVF@|/usr/share/ovmf/OVMF.fd|g" > "$2"
}
lv_version=$(virsh --version 2>/dev/null)
tdx_xml 3 "$W/tdx-launchsecurity.xml"
if virt-xml-validate "$W/tdx-launchsecurity.xml" domain \
        > "$W/tdx-validate.out" 2>&1; then
    tdx_valid=yes
else
    tdx_valid=no
fi
head -n 3 "$W/tdx-validate.out" | sed 's/^/# /'
if dpkg --compare-versions "$lv_version" ge 11.6; then
    check "TDX: libvirt $lv_version validates <launchSecurity type='tdx'>" \
        test $tdx_valid = yes
else
    check "TDX: libvirt $lv_version rejects <launchSecurity type='tdx'> (before 11.6)" \
        test $tdx_valid = no
fi
tdx_xml 4 "$W/tdx-commandline.xml"
check "TDX: libvirt $lv_version validates tdx-guest through <qemu:commandline>" \
    bash -c "virt-xml-validate '$W/tdx-commandline.xml' domain >/dev/null"

# --- nothing left ---------------------------------------------------------
sleep 0.5
no_qemu_left() {
    ! pgrep -f -- "-name guest=qkm-" >/dev/null
}
check "no QEMU process left" no_qemu_left
check "no RAM file left" bash -c "[ -z \"\$(find '$W/ram' -type f)\" ]"
echo "1..$n"
exit $failed
