# SPDX-License-Identifier: GPL-2.0-or-later
#
# Shared settings for the project's scripts: where the pinned upstream
# release comes from, where it is cached, and where builds go.  Sourced,
# never run.

UPSTREAM_PKG=qemu
UPSTREAM_DEB_VERSION=1:10.2.2+ds-1
UPSTREAM_VERSION=10.2.2
UPSTREAM_TARBALL=qemu_10.2.2+ds.orig.tar.xz
UPSTREAM_SHA256=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb
UPSTREAM_TOPDIR=qemu-10.2.2

# The repository root (this file lives in scripts/).
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Files at QEMU paths (the overlay): new files, as QEMU will hold them.
OVERLAY=$TOP/qemu

# The cache lives outside the work tree so that a fresh clone reuses it.
CACHE_DIR=${QKM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-kvm-memfault}
BUILD_ROOT=${QKM_BUILD_DIR:-$TOP/build}

# The Debian system interpreter: configure needs its meson and pycotap.
PYTHON=${QKM_PYTHON:-/usr/bin/python3}

die() {
    echo "error: $*" >&2
    exit 1
}

note() {
    echo ">>> $*" >&2
}

# The patch files that DIR/series lists, in order (as scripts/series.py
# reads it: '#' starts a comment, blank lines are skipped).
series_patches() {
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^[[:space:]]*$/d' "$1/series"
}

# The overlay files that DIR/overlay-files lists.
overlay_paths() {
    sed -e 's/#.*//' "$1/overlay-files" | awk 'NF { print $1 }'
}

# configure options of every build of the series (scripts/build.sh, whose
# variants add to them, and scripts/check-bisect.sh).
QEMU_CONFIG_ARGS=(
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-kvm --enable-tcg
    --disable-docs
    --disable-install-blobs
    --disable-download
    --python="$PYTHON"
    # Debian's firmware packages: seabios, ipxe-qemu, qemu-system-data.
    --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
)

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}
