#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Fetch the pinned upstream QEMU release, Debian's
# qemu_10.2.2+ds.orig.tar.xz, with apt from Debian's source archive, using
# a private apt configuration (the machine's own sources are not touched).
# The tarball is cached outside the work tree and its sha256 is verified
# on every use.  Prints the tarball's path on stdout.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

tarball=$CACHE_DIR/$UPSTREAM_TARBALL

verify() {
    local got
    got=$(sha256_of "$1")
    [ "$got" = "$UPSTREAM_SHA256" ]
}

if [ -f "$tarball" ]; then
    if verify "$tarball"; then
        echo "$tarball"
        exit 0
    fi
    note "cached $tarball has the wrong sha256; fetching it again"
    rm -f "$tarball"
fi

# The Debian mirror this machine already uses for bookworm; no host name
# is written into the project.
mirror=${QKM_DEBIAN_MIRROR:-$(apt-cache policy 2>/dev/null |
    awk '$3 ~ /^bookworm\/main$/ && $2 ~ /^(https?|file):/ && !m { m = $2 } END { if (m) print m }')}
[ -n "$mirror" ] || die "cannot find this machine's Debian bookworm mirror in 'apt-cache policy'; set QKM_DEBIAN_MIRROR to a Debian archive URI"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || die "$keyring is missing (package debian-archive-keyring)"

apt_dir=$CACHE_DIR/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$CACHE_DIR"
tried=""
for suite in ${QKM_SOURCE_SUITES:-sid trixie-backports forky}; do
    echo "deb-src [signed-by=$keyring] $mirror $suite main" > "$apt_dir/sources.list"
    apt_opts=(
        -o "Dir::Etc::sourcelist=$apt_dir/sources.list"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$apt_dir/lists"
        -o "Dir::Cache::archives=$apt_dir/archives"
        -o "APT::Get::List-Cleanup=0"
        -o "Acquire::Retries=3"
    )
    tried="$tried
  deb-src $mirror $suite main: "
    if ! apt-get "${apt_opts[@]}" update >"$apt_dir/update-$suite.log" 2>&1; then
        tried="${tried}apt-get update failed (see $apt_dir/update-$suite.log)"
        continue
    fi
    workdir=$(mktemp -d "$CACHE_DIR/download.XXXXXX")
    if (cd "$workdir" &&
        apt-get "${apt_opts[@]}" source --download-only \
            "$UPSTREAM_PKG=$UPSTREAM_DEB_VERSION") \
            >"$apt_dir/source-$suite.log" 2>&1 &&
       [ -f "$workdir/$UPSTREAM_TARBALL" ]; then
        if verify "$workdir/$UPSTREAM_TARBALL"; then
            mv "$workdir/$UPSTREAM_TARBALL" "$tarball"
            rm -rf "$workdir"
            echo "$tarball"
            exit 0
        fi
        tried="${tried}downloaded, but sha256 $(sha256_of "$workdir/$UPSTREAM_TARBALL") is not $UPSTREAM_SHA256"
    else
        tried="${tried}'apt-get source --download-only $UPSTREAM_PKG=$UPSTREAM_DEB_VERSION' failed: $(tail -n 1 "$apt_dir/source-$suite.log")"
    fi
    rm -rf "$workdir"
done

die "could not obtain $UPSTREAM_TARBALL (sha256 $UPSTREAM_SHA256).
Tried, with a private apt configuration under $apt_dir:$tried
Place a verified copy at $tarball to proceed."
