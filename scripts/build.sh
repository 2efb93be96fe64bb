#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build qemu-system-x86_64 out of tree.
#
#   scripts/build.sh [patched|pristine] [ninja targets...]
#
# patched (the default): pristine 10.2.2 + the overlay + patches/series,
#   prepared in build/qemu-src, built in build/qemu.
# pristine: pristine 10.2.2 + only the first patch (build adjustments for
#   the +ds tarball, no code change), in build/pristine-src and
#   build/pristine, for comparisons.
# inplace: the patched tree built in build/qemu-inplace with the
#   guest_memfd in-place conversion UAPI force-included
#   (tests/unit/gmem-inplace-uapi.h; not in released headers), so that
#   the in-place code paths can run against the kernel-contract layers.
# asan: the patched tree built in build/qemu-asan with --enable-asan,
#   for make check-asan.
#
# Incremental: the source tree is prepared again only when the series or
# the pinned tarball changed, and then synced file by file, so unchanged
# files keep their timestamps; edited overlay files are synced on every
# run.  A second run with nothing changed only asks ninja, which finds
# nothing to do.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:-patched}
[ $# -eq 0 ] || shift
case "$variant" in
patched)  src=$BUILD_ROOT/qemu-src; bld=$BUILD_ROOT/qemu ;;
pristine) src=$BUILD_ROOT/pristine-src; bld=$BUILD_ROOT/pristine ;;
inplace)  src=$BUILD_ROOT/qemu-src; bld=$BUILD_ROOT/qemu-inplace ;;
asan)     src=$BUILD_ROOT/qemu-src; bld=$BUILD_ROOT/qemu-asan ;;
*) die "unknown build variant '$variant' (expected patched, pristine, inplace or asan)" ;;
esac
targets=("$@")
[ ${#targets[@]} -ne 0 ] || targets=(qemu-system-x86_64)

"$TOP/scripts/install-deps.sh"
export QKM_UPSTREAM_REPO
QKM_UPSTREAM_REPO=$("$TOP/scripts/upstream-repo.sh")
series() { "$PYTHON" "$TOP/scripts/series.py" "$@"; }

# --- the source tree ---------------------------------------------------
# sed -n 1p, not head: head leaves early, and under pipefail the
# writer's SIGPIPE would fail the pipeline (and end this script).
first_patch=$(series_patches "$TOP/patches" | sed -n 1p)
if [ "$variant" != pristine ]; then
    series check-overlay
    stamp_input() {
        echo "$UPSTREAM_SHA256"
        cat "$TOP/patches/series" "$TOP/patches/overlay-files"
        series_patches "$TOP/patches" | while read -r p; do
            cat "$TOP/patches/$p"
        done
    }
else
    stamp_input() {
        echo "$UPSTREAM_SHA256"
        [ -z "$first_patch" ] || cat "$TOP/patches/$first_patch"
    }
fi
want=$(stamp_input | sha256sum | cut -d' ' -f1)
stamp=$src/.qkm-prepared
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    note "preparing $variant source tree in $src"
    mkdir -p "$BUILD_ROOT"
    rm -rf "$src.new"
    if [ "$variant" != pristine ]; then
        series prepare "$src.new"
    else
        series prepare-pristine "$src.new"
    fi
    if [ -d "$src" ]; then
        # Only files whose content changed get new timestamps.
        rsync -a --checksum --delete "$src.new/" "$src/"
        rm -rf "$src.new"
    else
        mv "$src.new" "$src"
    fi
    echo "$want" > "$stamp"
fi
if [ "$variant" != pristine ]; then
    # Overlay files edited in the repository since the tree was prepared.
    overlay_paths "$TOP/patches" |
        rsync -a --checksum --files-from=- "$OVERLAY/" "$src/"
fi

# --- configure -----------------------------------------------------------
config_args=("${QEMU_CONFIG_ARGS[@]}")
[ "$variant" != pristine ] && config_args+=(--enable-werror)
[ "$variant" = asan ] && config_args+=(--enable-asan)
[ "$variant" = inplace ] &&
    config_args+=("--extra-cflags=-include $src/tests/unit/gmem-inplace-uapi.h")
config_args+=(${QKM_CONFIGURE_ARGS:-})
want_config=$(printf '%s\n' "$src" "${config_args[@]}" | sha256sum | cut -d' ' -f1)
if [ ! -f "$bld/build.ninja" ] || [ "$(cat "$bld/.qkm-configured" 2>/dev/null)" != "$want_config" ]; then
    note "configuring $variant build in $bld"
    rm -rf "$bld"
    mkdir -p "$bld"
    (cd "$bld" && "$src/configure" "${config_args[@]}" >configure.log 2>&1) ||
        { tail -n 30 "$bld/configure.log" >&2; die "configure failed; see $bld/configure.log"; }
    echo "$want_config" > "$bld/.qkm-configured"
fi

# --- build -----------------------------------------------------------------
ninja -C "$bld" "${targets[@]}" || die "build of $variant failed"

# Run from the build tree, QEMU looks for firmware under
# <build>/qemu-bundle/<firmwarepath>: point that at Debian's packages.
for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
    link=$bld/qemu-bundle$d
    if [ ! -e "$link" ]; then
        mkdir -p "$(dirname "$link")"
        ln -sfn "$d" "$link"
    fi
done
