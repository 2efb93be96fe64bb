#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Series checks, run by the test command:
#   1. every patch has a "subsystem: summary" subject, a body and
#      Signed-off-by;
#   2. the overlay and patches/overlay-files agree;
#   3. every patch applies, in order, to pristine 10.2.2 (after the
#      overlay is copied in);
#   4. scripts/checkpatch.pl --strict passes on every stored patch;
#   5. the exported series (overlay files included) passes checkpatch,
#      applies to pristine 10.2.2 and gives exactly the prepared tree;
#   6. each topic series (patches/topics) applies to pristine 10.2.2
#      after the topics before it and gives the prepared tree at its last
#      patch;
#   7. an edit/save round trip with no edits leaves patches/ and the
#      overlay byte-identical.
#
#   scripts/check-series.sh [--patches DIR] [--overlay DIR] [--fail-fast]
#
# Prints one TAP line per check; exits non-zero when any check failed.

set -uo pipefail
. "$(dirname "$0")/lib.sh"

patches=$TOP/patches
overlay=$OVERLAY
fail_fast=0
while [ $# -gt 0 ]; do
    case "$1" in
    --patches) patches=$(cd "$2" && pwd); shift 2 ;;
    --overlay) overlay=$(cd "$2" && pwd); shift 2 ;;
    --fail-fast) fail_fast=1; shift ;;
    *) die "unknown option $1" ;;
    esac
done

export QKM_UPSTREAM_REPO QKM_SPARSE_TREES=1
QKM_UPSTREAM_REPO=$("$TOP/scripts/upstream-repo.sh") || exit 1
series() {
    "$PYTHON" "$TOP/scripts/series.py" --patches "$patches" \
        --overlay "$overlay" "$@"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-series.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
check() {
    local what=$1 log=$tmp/log.$((n + 1))
    shift
    n=$((n + 1))
    if "$@" >"$log" 2>&1; then
        echo "ok $n - $what"
    else
        echo "not ok $n - $what"
        sed 's/^/# /' "$log"
        failed=$((failed + 1))
        if [ $fail_fast -eq 1 ]; then
            echo "1..$n"
            exit 1
        fi
    fi
}

checkpatch_all() {
    local tree=$1 rc=0 p
    shift
    for p in "$@"; do
        case "$(basename "$p")" in
        0000-cover-letter.patch) continue ;;
        esac
        if ! (cd "$tree" && ./scripts/checkpatch.pl --strict --no-color \
                --summary-file "$p"); then
            rc=1
        fi
    done
    return $rc
}

patch_files() {
    series_patches "$patches" | sed "s|^|$patches/|"
}

# The patches of an exported series directory, cover letter excluded.
exported_patches() {
    ls "$1"/0*.patch | grep -v /0000-cover-letter.patch
}

# A fresh work tree of pristine upstream QEMU at $1.
pristine_clone() {
    rm -rf "$1"
    git clone -q --shared --no-checkout "$QKM_UPSTREAM_REPO" "$1" || return 1
    git -C "$1" sparse-checkout set --no-cone '/*' '!/roms/'
    git -C "$1" -c advice.detachedHead=false checkout -q upstream
}

# git am the exported series in directory $2 onto the work tree $1.
am_exported() {
    (cd "$1" &&
        GIT_COMMITTER_NAME=check GIT_COMMITTER_EMAIL=check@localhost \
        git am -q --keep-cr $(exported_patches "$2"))
}

export_matches_prepared() {
    series export "$tmp/export" >/dev/null || return 1
    pristine_clone "$tmp/exported" || return 1
    am_exported "$tmp/exported" "$tmp/export" || return 1
    local a b
    a=$(series tree-id "$tmp/prepared") || return 1
    b=$(series tree-id "$tmp/exported") || return 1
    if [ "$a" != "$b" ]; then
        echo "the exported series gives tree $b, the prepared tree is $a:"
        git -C "$tmp/exported" diff --stat "$a" "$b"
        return 1
    fi
}

topics_apply_in_order() {
    # Each topic export, applied to pristine QEMU after the topics it is
    # based on (recursively), applies; where those are all the patches
    # before it, the result is the prepared tree at the topic's last patch.
    series export --topic all "$tmp/topics" >/dev/null || return 1
    local -A base_of first_of
    local name base first last title chain t want got rc=0 covered p
    while read -r name base first last title; do
        base_of[$name]=$base
        first_of[$name]=$first
        chain=$name
        t=$base
        while [ "$t" != - ]; do
            chain="$t $chain"
            t=${base_of[$t]}
        done
        pristine_clone "$tmp/bytopic" || return 1
        covered=0
        for t in $chain; do
            am_exported "$tmp/bytopic" "$tmp/topics/$t" ||
                { echo "topic $name: $t does not apply (chain: $chain)"
                  return 1; }
            p=$(exported_patches "$tmp/topics/$t" | wc -l)
            [ "${first_of[$t]}" -eq $((covered + 1)) ] &&
                covered=$((covered + p))
        done
        if [ "$base" != - ] &&
           ! grep -q "^Based on the \"$base\" series" \
               "$tmp/topics/$name/0000-cover-letter.patch"; then
            echo "topic $name: its cover letter does not name $base"
            rc=1
        fi
        if [ $covered -eq "$last" ]; then
            want=$(git -C "$tmp/prepared" rev-parse \
                   "$(git -C "$tmp/prepared" rev-list --reverse upstream..HEAD |
                      sed -n "${last}p")^{tree}") || return 1
            got=$(series tree-id "$tmp/bytopic") || return 1
            if [ "$want" != "$got" ]; then
                echo "topic $name (chain: $chain) gives tree $got, the" \
                     "prepared tree at patch $last is $want"
                rc=1
                continue
            fi
            echo "topic $name, patches $first-$last (chain: $chain): applies, prepared tree at patch $last"
        else
            echo "topic $name, patches $first-$last (chain: $chain): applies"
        fi
    done < <(series topics)
    return $rc
}

round_trip_is_identity() {
    # Copy patches/ and the overlay, edit, save, compare byte for byte.
    mkdir -p "$tmp/rt/overlay"
    cp -a "$patches" "$tmp/rt/patches"
    overlay_paths "$patches" |
        rsync -a --files-from=- "$overlay/" "$tmp/rt/overlay/"
    "$PYTHON" "$TOP/scripts/series.py" --patches "$tmp/rt/patches" \
        --overlay "$tmp/rt/overlay" edit "$tmp/rt/tree" || return 1
    "$PYTHON" "$TOP/scripts/series.py" --patches "$tmp/rt/patches" \
        --overlay "$tmp/rt/overlay" save "$tmp/rt/tree" >/dev/null || return 1
    diff -r "$patches" "$tmp/rt/patches" || return 1
    local f rc=0
    while read -r f; do
        cmp "$overlay/$f" "$tmp/rt/overlay/$f" || rc=1
        [ "$(stat -c %a "$overlay/$f")" = "$(stat -c %a "$tmp/rt/overlay/$f")" ] ||
            { echo "$f: mode changed"; rc=1; }
    done < <(overlay_paths "$patches")
    # No file appeared or vanished.
    diff <(cd "$tmp/rt/overlay" && find . -type f | sed 's|^\./||' | sort) \
         <(overlay_paths "$patches" | sort) ||
        rc=1
    return $rc
}

check "patch format: subject, body, Signed-off-by" series check-format
check "overlay files and patches/overlay-files agree" series check-overlay
check "every patch applies in order to pristine $UPSTREAM_VERSION" \
    series prepare "$tmp/prepared"
if [ -d "$tmp/prepared/.git" ] && [ -x "$tmp/prepared/scripts/checkpatch.pl" ]; then
    mapfile -t stored < <(patch_files)
    check "checkpatch.pl --strict on patches/" \
        checkpatch_all "$tmp/prepared" "${stored[@]}"
    check "export applies to pristine $UPSTREAM_VERSION and equals the prepared tree" \
        export_matches_prepared
    check "each topic export applies on the topics before it and gives the prepared tree at its end" \
        topics_apply_in_order
    if [ -d "$tmp/export" ]; then
        check "checkpatch.pl --strict on the exported series" \
            checkpatch_all "$tmp/prepared" "$tmp"/export/0*.patch
    fi
fi
check "edit/save round trip leaves patches/ and the overlay byte-identical" \
    round_trip_is_identity

echo "1..$n"
echo "series checks: $((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
