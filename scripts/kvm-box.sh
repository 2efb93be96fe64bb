#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The KVM box: a real Linux KVM on a host without /dev/kvm.  Debian's
# own kernels (pinned in tests/kvm-box/kernels) boot in Debian's
# qemu-system-x86_64 under TCG with an AMD CPU that has SVM and nested
# paging, load kvm_amd, and run a command of the host's against that
# kernel's /dev/kvm: the host's / is mounted read-only through 9p under
# a tmpfs overlay, so the command sees the same binaries at the same
# paths.  Timings inside are TCG's; behaviour and counts are the kernel's.
#
#   kvm-box.sh list                  the pinned kernels' names
#   kvm-box.sh prepare NAME          fetch and cache NAME's kernel and
#                                    initramfs (prints its directory)
#   kvm-box.sh run [OPTIONS] NAME -- COMMAND [ARG...]
#       run COMMAND in the current directory inside the box; its stdout
#       and stderr are ours, its exit status is ours.  Options:
#       --timeout SECONDS  the box is killed after this (default 600)
#       --env NAME=VALUE   set in COMMAND's environment (repeatable)
#       --smp N, --mem SIZE  the box's vCPUs (1) and memory (4G)
#
# A box that cannot start, or ends without COMMAND's status, is an error
# (exit 125) with its reason and the end of the box's console: never a
# silent success.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

PINS=$TOP/tests/kvm-box/kernels
BOX_CACHE=$CACHE_DIR/kvm-box
OUTER_QEMU=${QKM_BOX_QEMU:-/usr/bin/qemu-system-x86_64}
BUSYBOX=/bin/busybox
# Loaded in dependency order (each module's depends= comes first); a
# module the kernel has built in is simply absent from its package.
BOX_MODULES=(virtio_pci 9pnet_virtio 9p overlay kvm-amd)

pin_line() {
    awk -v n="$1" '!/^#/ && NF && $1 == n' "$PINS"
}

kernel_names() {
    awk '!/^#/ && NF { print $1 }' "$PINS"
}

# The Debian mirrors this machine already uses; no host name is written
# into the project.
mirror_for() {
    local suite=$1 want=bookworm/main
    case "$suite" in
    *-security) want=bookworm-security/main ;;
    esac
    apt-cache policy 2>/dev/null |
        awk -v w="$want" '$3 == w && $2 ~ /^(https?|file):/ { print $2; exit }'
}

# fetch_debs NAME: the pinned packages of NAME into $BOX_CACHE/debs,
# each checked against its sha256 (again on every use).
fetch_debs() {
    local name=$1 line suite mirror keyring apt_dir
    line=$(pin_line "$name")
    [ -n "$line" ] || die "no kernel '$name' in $PINS (pinned: $(kernel_names | xargs))"
    set -- $line
    suite=$2
    shift 2
    mkdir -p "$BOX_CACHE/debs"
    local missing=() pkgs=() sums=()
    while [ $# -ge 2 ]; do
        pkgs+=("$1")
        sums+=("$2")
        shift 2
    done
    local i deb
    for i in "${!pkgs[@]}"; do
        deb=$BOX_CACHE/debs/$(deb_file "${pkgs[$i]}")
        if [ -f "$deb" ] && [ "$(sha256_of "$deb")" = "${sums[$i]}" ]; then
            continue
        fi
        rm -f "$deb"
        missing+=("${pkgs[$i]}")
    done
    [ ${#missing[@]} -gt 0 ] || return 0

    mirror=${QKM_DEBIAN_MIRROR:-$(mirror_for "$suite")}
    [ -n "$mirror" ] || die "cannot find this machine's Debian mirror for $suite in 'apt-cache policy'; set QKM_DEBIAN_MIRROR to a Debian archive URI"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -f "$keyring" ] || die "$keyring is missing (package debian-archive-keyring)"
    apt_dir=$BOX_CACHE/apt-$suite
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
    echo "deb [signed-by=$keyring arch=amd64] $mirror $suite main" > "$apt_dir/sources.list"
    local apt_opts=(
        -o "Dir::Etc::sourcelist=$apt_dir/sources.list"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache::archives=$apt_dir/archives"
        -o "Dir::State::status=/dev/null"
        -o "APT::Get::List-Cleanup=0"
        -o "APT::Sandbox::User=root"
        -o "Acquire::Retries=3"
    )
    note "kvm-box: fetching ${missing[*]} ($suite)"
    local tried="deb $mirror $suite main"
    if ! apt-get "${apt_opts[@]}" update >"$apt_dir/update.log" 2>&1; then
        die "could not fetch kernel $name: apt-get update failed for '$tried' (see $apt_dir/update.log)"
    fi
    local work
    work=$(mktemp -d "$BOX_CACHE/download.XXXXXX")
    if ! (cd "$work" && apt-get "${apt_opts[@]}" download "${missing[@]}") \
            >"$apt_dir/download.log" 2>&1; then
        rm -rf "$work"
        die "could not fetch kernel $name: 'apt-get download ${missing[*]}' from '$tried' failed: $(grep -v '^W:' "$apt_dir/download.log" | tail -n 1)
The pins are in $PINS; place verified packages in $BOX_CACHE/debs to proceed."
    fi
    for i in "${!pkgs[@]}"; do
        deb=$(deb_file "${pkgs[$i]}")
        [ -f "$work/$deb" ] || continue
        if [ "$(sha256_of "$work/$deb")" != "${sums[$i]}" ]; then
            rm -rf "$work"
            die "kernel $name: $deb from '$tried' has sha256 $(sha256_of "$work/$deb" 2>/dev/null), not the pinned ${sums[$i]}"
        fi
        mv "$work/$deb" "$BOX_CACHE/debs/$deb"
    done
    rm -rf "$work"
    for i in "${!pkgs[@]}"; do
        [ -f "$BOX_CACHE/debs/$(deb_file "${pkgs[$i]}")" ] ||
            die "kernel $name: ${pkgs[$i]} was not among what 'apt-get download' fetched from '$tried'"
    done
}

# PACKAGE=VERSION -> the file name apt gives it (an epoch's ':' is %3a).
deb_file() {
    local p=${1%%=*} v=${1#*=}
    echo "${p}_${v//:/%3a}_amd64.deb"
}

# prepare NAME: vmlinuz and initrd.img of NAME in $BOX_CACHE/NAME,
# rebuilt when the pins, /init or busybox change.
prepare() {
    local name=$1 dir stamp want
    dir=$BOX_CACHE/$name
    want=$( (pin_line "$name"; cat "$TOP/tests/kvm-box/init";
             echo "${BOX_MODULES[*]}"; sha256_of "$BUSYBOX") | sha256sum | cut -d' ' -f1)
    if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$want" ] &&
       [ -f "$dir/vmlinuz" ] && [ -f "$dir/initrd.img" ]; then
        echo "$dir"
        return
    fi
    [ -x "$BUSYBOX" ] && "$BUSYBOX" --list | grep -x insmod >/dev/null ||
        die "$BUSYBOX is not a static busybox with insmod (package busybox-static; run scripts/install-deps.sh)"
    fetch_debs "$name"
    local line x
    line=$(pin_line "$name")
    rm -rf "$dir"
    mkdir -p "$dir"
    x=$dir/x
    mkdir -p "$x"
    set -- $line
    shift 2
    while [ $# -ge 2 ]; do
        dpkg-deb -x "$BOX_CACHE/debs/$(deb_file "$1")" "$x"
        shift 2
    done
    local vmlinuz
    vmlinuz=$(find "$x" \( -name 'vmlinuz-*' -o -name vmlinuz \) -type f -print -quit)
    [ -n "$vmlinuz" ] || die "kernel $name: no vmlinuz in its packages"
    cp "$vmlinuz" "$dir/vmlinuz"

    local root=$dir/initramfs
    mkdir -p "$root"/{bin,modules,proc,sys,dev}
    cp "$BUSYBOX" "$root/bin/busybox"
    cp "$TOP/tests/kvm-box/init" "$root/init"
    chmod 755 "$root/init"
    : > "$root/modules.load"
    local -A done=()
    add_module() {
        local m=$1 f deps d
        [ -z "${done[$m]:-}" ] || return 0
        done[$m]=1
        f=$(find "$x" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" \
                 -o -name "${m//-/_}.ko" -o -name "${m//-/_}.ko.xz" \) -print -quit)
        [ -n "$f" ] || return 0         # built in
        case "$f" in
        *.xz) xz -dc "$f" > "$root/modules/$m.ko" ;;
        *.zst) zstd -qdc "$f" > "$root/modules/$m.ko" ;;
        *) cp "$f" "$root/modules/$m.ko" ;;
        esac
        deps=$(grep -a -o 'depends=[^[:cntrl:]]*' "$root/modules/$m.ko" | sed -n 1p)
        deps=${deps#depends=}
        for d in ${deps//,/ }; do
            add_module "$d"
        done
        echo "$m" >> "$root/modules.load"
    }
    for m in "${BOX_MODULES[@]}"; do
        add_module "$m"
    done
    grep -qx kvm-amd "$root/modules.load" || die "kernel $name: no kvm-amd module in its packages"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$dir/initrd.img"
    rm -rf "$x" "$root"
    echo "$want" > "$dir/stamp"
    echo "$dir"
}

run() {
    local timeout=600 smp=1 mem=4G envs=()
    while [ $# -gt 0 ]; do
        case "$1" in
        --timeout) timeout=$2; shift 2 ;;
        --env) envs+=("$2"); shift 2 ;;
        --smp) smp=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --) shift; break ;;
        -*) die "kvm-box run: unknown option $1" ;;
        *) break ;;
        esac
    done
    local name=${1:-}
    [ -n "$name" ] || die "usage: kvm-box.sh run [OPTIONS] NAME -- COMMAND [ARG...]"
    shift
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || die "kvm-box run: no command"
    [ -x "$OUTER_QEMU" ] ||
        die "$OUTER_QEMU is missing (package qemu-system-x86; run scripts/install-deps.sh)"

    local dir io
    dir=$(prepare "$name") || exit 125
    io=$(mktemp -d "${TMPDIR:-/tmp}/kvm-box.XXXXXX")
    chmod 755 "$io"
    {
        echo "cd $(printf %q "$PWD") || exit 125"
        local e
        for e in "${envs[@]}"; do
            echo "export $(printf %q "$e")"
        done
        printf '%q ' "$@"
        echo "> $(printf %q "$io/stdout") 2> $(printf %q "$io/stderr")"
        echo "echo \$? > $(printf %q "$io/rc.tmp") && mv $(printf %q "$io/rc.tmp") $(printf %q "$io/rc")"
    } > "$io/cmd.sh"
    : > "$io/stdout"
    : > "$io/stderr"

    # Debian's QEMU, not the binary under test.  EPYC with svm: kvm_amd
    # needs SVM and uses TCG's nested paging; phys-bits=48 so that the
    # box's KVM reports a 48-bit guest physical address width.
    timeout --kill-after=10 "$timeout" "$OUTER_QEMU" \
        -accel tcg -cpu EPYC,svm=on,phys-bits=48 -smp "$smp" -m "$mem" \
        -display none -no-reboot -nodefaults -serial "file:$io/console" \
        -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" \
        -append "console=ttyS0 quiet panic=-1 qkm.io=$io" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -virtfs "local,path=$io,mount_tag=boxio,security_model=none" \
        > "$io/outer.log" 2>&1 &
    local qpid=$! qrc=0
    tail -n +1 -f --pid="$qpid" "$io/stdout" 2>/dev/null &
    local tpid=$!
    wait "$qpid" || qrc=$?
    wait "$tpid" 2>/dev/null || true
    cat "$io/stderr" >&2
    if [ ! -f "$io/rc" ]; then
        local why="the box ended without the command's exit status"
        [ "$qrc" -ne 124 ] && [ "$qrc" -ne 137 ] ||
            why="the box was killed after ${timeout} s"
        {
            echo "kvm-box: kernel $name: $why (outer QEMU status $qrc)"
            grep -v 'TCG doesn.t support requested feature' "$io/outer.log" |
                tail -n 5 || true
            echo "kvm-box: end of the box's console:"
            # What init and the kernel said went wrong, then the end.
            grep -a 'kvm-box:\|Kernel panic\|insmod\|Oops\|BUG' "$io/console" |
                head -n 10 || true
            tail -n 5 "$io/console" || true
        } >&2
        if [ -n "${QKM_BOX_KEEP:-}" ]; then
            echo "kvm-box: kept $io" >&2
        else
            rm -rf "$io"
        fi
        return 125
    fi
    local rc
    rc=$(cat "$io/rc")
    rm -rf "$io"
    return "$rc"
}

case "${1:-}" in
list) kernel_names ;;
prepare) [ $# -eq 2 ] || die "usage: kvm-box.sh prepare NAME"; prepare "$2" ;;
run) shift; run "$@" ;;
*) die "usage: kvm-box.sh list | prepare NAME | run [OPTIONS] NAME -- COMMAND [ARG...]" ;;
esac
