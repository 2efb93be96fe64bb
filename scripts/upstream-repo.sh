#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Make (once) a bare git repository holding pristine upstream QEMU 10.2.2,
# unpacked from the verified tarball, as the commit tagged 'upstream'.
# Every tree the project prepares is cloned from it.  The commit has a
# fixed author and date, so its id is the same on every machine.
# Prints the repository's path.

set -euo pipefail
. "$(dirname "$0")/lib.sh"

tarball=$("$TOP/scripts/fetch-upstream.sh")
repo=$CACHE_DIR/upstream-$UPSTREAM_VERSION.git
stamp=$repo/qkm-tarball-sha256

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$UPSTREAM_SHA256" ] &&
   git --git-dir="$repo" rev-parse -q --verify upstream >/dev/null; then
    echo "$repo"
    exit 0
fi

note "unpacking $UPSTREAM_TARBALL into $repo"
rm -rf "$repo" "$repo.tmp"
work=$(mktemp -d "$CACHE_DIR/unpack.XXXXXX")
trap 'rm -rf "$work" "$repo.tmp"' EXIT
tar --no-same-owner -xJf "$tarball" -C "$work"
[ -d "$work/$UPSTREAM_TOPDIR" ] || die "$UPSTREAM_TARBALL has no $UPSTREAM_TOPDIR/"
export GIT_AUTHOR_NAME="QEMU upstream" GIT_AUTHOR_EMAIL="qemu-devel@nongnu.org"
export GIT_COMMITTER_NAME="QEMU upstream" GIT_COMMITTER_EMAIL="qemu-devel@nongnu.org"
export GIT_AUTHOR_DATE="2026-01-01T00:00:00+0000"
export GIT_COMMITTER_DATE="2026-01-01T00:00:00+0000"
git init -q --bare "$repo.tmp"
g() { git --git-dir="$repo.tmp" --work-tree="$work/$UPSTREAM_TOPDIR" -c core.autocrlf=false "$@"; }
g add -A -f .
g commit -q -m "QEMU $UPSTREAM_VERSION (Debian $UPSTREAM_TARBALL)

sha256 $UPSTREAM_SHA256"
g tag upstream
# One pack instead of ~37000 loose objects: much faster to clone from.
git --git-dir="$repo.tmp" repack -a -d -q --window=0
echo "$UPSTREAM_SHA256" > "$repo.tmp/qkm-tarball-sha256"
mv "$repo.tmp" "$repo"
echo "$repo"
