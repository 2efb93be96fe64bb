#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install what the project needs on Debian bookworm: the toolchain and
# libraries for a minimal qemu-system-x86_64, meson >= 1.5 and
# python3-pycotap from bookworm-backports (the suite is added when
# absent), and the firmware packages QEMU loads at run time.  As root it
# installs what is missing; otherwise it prints the one command to run.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

# 'install-deps.sh libvirt': libvirt for tests/libvirt/ instead (11.3
# from bookworm-backports: the daemon, its QEMU driver, virsh).
if [ "${1:-}" = libvirt ]; then
    PACKAGES=()
    BACKPORTS=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)
    MESON_MIN=
else
# Package -> why.
PACKAGES=(
    build-essential     # compiler, make
    pkg-config
    ninja-build
    python3-venv        # configure builds a venv around the system python
    libglib2.0-dev
    libfdt-dev          # without it meson tries to download dtc
    zlib1g-dev
    flex bison
    git                 # tree preparation applies the series with git am
    rsync               # incremental overlay sync into the build tree
    xz-utils
    perl                # scripts/checkpatch.pl
    seabios             # bios-256k.bin
    ipxe-qemu           # efi-*.rom option ROMs
    qemu-system-data    # kvmvapic.bin, linuxboot_dma.bin, ...
    ovmf                # a real TDVF image for the TDX contract tests
    # The KVM box (scripts/kvm-box.sh): Debian's QEMU runs Debian's
    # kernels under TCG; a static busybox is the initramfs.
    qemu-system-x86
    busybox-static
    cpio
)
BACKPORTS=(
    meson               # >= 1.5.0; bookworm has 1.0
    python3-pycotap     # meson's TAP parser for the test harness
)
MESON_MIN=1.5.0
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep '^install ok installed$' >/dev/null ||
        missing+=("$p")
done
bp_missing=()
for p in "${BACKPORTS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep '^install ok installed$' >/dev/null ||
        bp_missing+=("$p")
done
if [ -n "$MESON_MIN" ] && dpkg-query -W -f='${Version}' meson >/dev/null 2>&1; then
    v=$(dpkg-query -W -f='${Version}' meson)
    if dpkg --compare-versions "$v" lt "$MESON_MIN"; then
        bp_missing+=(meson)
    fi
fi

if [ ${#missing[@]} -eq 0 ] && [ ${#bp_missing[@]} -eq 0 ]; then
    exit 0
fi

have_backports() {
    # grep reads to the end (no -q): under pipefail an early exit would
    # fail the pipeline through apt-cache's SIGPIPE.
    apt-cache policy 2>/dev/null | grep ' bookworm-backports/main ' >/dev/null
}

if [ "$(id -u)" -ne 0 ]; then
    cmd="apt-get install -y ${missing[*]}"
    [ ${#bp_missing[@]} -eq 0 ] || cmd="$cmd && apt-get install -y -t bookworm-backports ${bp_missing[*]}"
    have_backports || cmd="echo 'deb <your Debian mirror> bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list && apt-get update && $cmd"
    die "missing packages: ${missing[*]} ${bp_missing[*]}
Run as root:
  $cmd"
fi

export DEBIAN_FRONTEND=noninteractive
if [ ${#bp_missing[@]} -ne 0 ] && ! have_backports; then
    mirror=$(apt-cache policy 2>/dev/null |
        awk '$3 ~ /^bookworm\/main$/ && $2 ~ /^(https?|file):/ && !m { m = $2 } END { if (m) print m }')
    [ -n "$mirror" ] || die "cannot find this machine's Debian bookworm mirror to add bookworm-backports"
    note "adding bookworm-backports ($mirror)"
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<EOT
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
    apt-get update -qq
elif [ ! -d /var/lib/apt/lists ] || [ -z "$(ls /var/lib/apt/lists/*Packages* 2>/dev/null)" ]; then
    apt-get update -qq
fi

note "installing: ${missing[*]} ${bp_missing[*]}"
if [ ${#missing[@]} -ne 0 ]; then
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi
if [ ${#bp_missing[@]} -ne 0 ]; then
    apt-get install -y -qq --no-install-recommends -t bookworm-backports "${bp_missing[@]}" >/dev/null
fi
