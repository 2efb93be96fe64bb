#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Tests of the editing workflow (scripts/series.py edit/save) on a copy of
# patches/ and the overlay: an edit in the work tree reaches patches/ and
# the overlay; save refuses to overwrite an overlay file that was changed
# in the repository after 'edit'; a later commit may change an overlay
# file an earlier patch adds; a commit that changes no upstream file and no
# earlier file is refused; 'make series' exports the series, and each
# topic (TOPIC=).  TAP output.

set -uo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/scripts/lib.sh"
export QKM_UPSTREAM_REPO QKM_SPARSE_TREES=1
QKM_UPSTREAM_REPO=$("$TOP/scripts/upstream-repo.sh") || exit 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-edit-save.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0
ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}
not_ok() {
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
    [ -z "${2:-}" ] || sed 's/^/# /' <<<"$2"
}

mkdir -p "$tmp/repo/overlay"
cp -a "$TOP/patches" "$tmp/repo/patches"
overlay_paths "$TOP/patches" |
    rsync -a --files-from=- "$OVERLAY/" "$tmp/repo/overlay/"
series() {
    "$PYTHON" "$TOP/scripts/series.py" --patches "$tmp/repo/patches" \
        --overlay "$tmp/repo/overlay" "$@"
}
g() {
    git -C "$tmp/tree" -c user.name=Test -c user.email=test@example.com "$@"
}
overlay_file=$(overlay_paths "$TOP/patches" | grep '\.c$' | sed -n 1p)
owner=$(awk -v f="$overlay_file" '$1 == f { print $2 }' \
        "$TOP/patches/overlay-files")

series edit "$tmp/tree" >/dev/null 2>&1 || { echo "Bail out! edit failed"; exit 1; }

# 1. An overlay edit made in the repository meanwhile is not clobbered.
echo "/* edited in the repository */" >> "$tmp/repo/overlay/$overlay_file"
out=$(series save "$tmp/tree" 2>&1)
if [ $? -ne 0 ] && grep -q "changed in the repository since the work tree was made" <<<"$out" &&
   grep -q "edited in the repository" "$tmp/repo/overlay/$overlay_file"; then
    ok "save refuses to overwrite an overlay file edited in the repository"
else
    not_ok "save refuses to overwrite an overlay file edited in the repository" "$out"
fi

# 2. The same edit made in the work tree (amending its owner) is saved.
cp "$tmp/repo/overlay/$overlay_file" "$tmp/tree/$overlay_file"
subject=$(grep -m1 '^Subject: ' "$tmp/repo/patches/$owner" |
          sed 's/^Subject: \[PATCH\] //')
g add -A && g commit -q -m "fixup! $subject" &&
    GIT_SEQUENCE_EDITOR=: g rebase -q -i --autosquash upstream
out=$(series save "$tmp/tree" 2>&1)
if [ $? -eq 0 ] && grep -q "edited in the repository" "$tmp/repo/overlay/$overlay_file" &&
   diff -q "$TOP/patches/series" "$tmp/repo/patches/series" >/dev/null; then
    ok "an overlay edit committed in the work tree is saved"
else
    not_ok "an overlay edit committed in the work tree is saved" "$out"
fi

# 3. An upstream-file edit in the work tree reaches its patch.
printf '# test edit\n' >> "$tmp/tree/tests/qtest/meson.build"
g add -A && g commit -q -m "fixup! $subject" &&
    GIT_SEQUENCE_EDITOR=: g rebase -q -i --autosquash upstream
out=$(series save "$tmp/tree" 2>&1)
if [ $? -eq 0 ] && grep -q "^+# test edit" "$tmp/repo/patches/$owner"; then
    ok "an upstream-file edit in the work tree reaches its patch"
else
    not_ok "an upstream-file edit in the work tree reaches its patch" "$out"
fi

# 4. A later commit may change an overlay file that an earlier patch adds:
# the change is stored in the later patch as a diff, the repository has the
# final file, the earlier patch still adds the file as it was, and the
# series prepares to the work tree.
# The file as the patch that adds it adds it (later patches may change it).
added_in=$(g log --format=%H --diff-filter=A -- "$overlay_file")
before=$(g show "$added_in:$overlay_file" | sha256sum)
echo "/* changed by a later patch */" >> "$tmp/tree/$overlay_file"
g add -A && g commit -q -m "tests: a later change to an overlay file

Why: to see it stored as a diff.

Signed-off-by: Test <test@example.com>"
out=$(series save "$tmp/tree" 2>&1)
last=$(series_patches "$tmp/repo/patches" | tail -1)
series prepare "$tmp/prepared" >/dev/null 2>&1
added_by=$(git -C "$tmp/prepared" log --format=%H --diff-filter=A -- "$overlay_file")
if grep -q "^diff --git a/$overlay_file b/$overlay_file" "$tmp/repo/patches/$last" &&
   tail -1 "$tmp/repo/overlay/$overlay_file" | grep "changed by a later patch" >/dev/null &&
   [ "$(git -C "$tmp/prepared" show "$added_by:$overlay_file" | sha256sum)" = "$before" ] &&
   [ "$(git -C "$tmp/prepared" rev-parse 'HEAD^{tree}')" = "$(g rev-parse 'HEAD^{tree}')" ]; then
    ok "a later patch changes an overlay file an earlier one adds"
else
    not_ok "a later patch changes an overlay file an earlier one adds" "$out"
fi

# 5. A commit that only adds a new file is refused.
mkdir -p "$tmp/tree/tests/qtest"
echo "/* new */" > "$tmp/tree/tests/qtest/lonely.c"
g add -A && g commit -q -m "tests/qtest: add a lonely file"
out=$(series save "$tmp/tree" 2>&1)
if [ $? -ne 0 ] && grep -q "changes no upstream file" <<<"$out"; then
    ok "a commit that changes no upstream file is refused"
else
    not_ok "a commit that changes no upstream file is refused" "$out"
fi

# 6. make series (the Makefile glue): cover letter plus one file a patch.
# git format-patch pads the cover letter's number: [PATCH 00/13].
out=$(make -s -C "$TOP" series SERIES_DIR="$tmp/series" 2>&1)
want=$(( $(series_patches "$TOP/patches" | wc -l) + 1 ))
got=$(ls "$tmp/series" 2>/dev/null | grep -c '\.patch$')
if [ "$got" -eq "$want" ] &&
   grep -q '^Subject: \[PATCH 0\+/' "$tmp/series/0000-cover-letter.patch"; then
    ok "make series writes a cover letter and every patch"
else
    not_ok "make series writes a cover letter and every patch ($got of $want)" "$out"
fi

# 7. make series TOPIC=...: one topic, numbered from 1, its cover letter
# naming the topic it is based on; an unknown topic is an error that
# lists the topics.
while read -r name base first last title; do
    rm -rf "$tmp/topic"
    out=$(make -s -C "$TOP" series TOPIC="$name" SERIES_DIR="$tmp/topic/s" 2>&1)
    d=$tmp/topic/s-$name
    got=$(ls "$d" 2>/dev/null | grep -v '^0000-' | grep -c '\.patch$')
    cl=$d/0000-cover-letter.patch
    if [ "$got" -eq $((last - first + 1)) ] &&
       grep -qF "$title" "$cl" 2>/dev/null &&
       grep -q '^Subject: \[PATCH 0*1/' "$d"/0001-*.patch 2>/dev/null &&
       { [ "$base" = - ] && grep -q "applies to QEMU .* on its own" "$cl" ||
         grep -q "^Based on the \"$base\" series" "$cl"; }; then
        ok "make series TOPIC=$name: patches $first-$last, based on $base"
    else
        not_ok "make series TOPIC=$name: patches $first-$last, based on $base ($got patches)" "$out"
    fi
done < <("$PYTHON" "$TOP/scripts/series.py" topics)
out=$(make -s -C "$TOP" series TOPIC=nosuch SERIES_DIR="$tmp/topic/s" 2>&1)
if [ $? -ne 0 ] && grep -q "no topic 'nosuch'; the topics are: fixes, faults" <<<"$out"; then
    ok "make series TOPIC=nosuch fails, listing the topics"
else
    not_ok "make series TOPIC=nosuch fails, listing the topics" "$out"
fi

echo "1..$n"
echo "edit/save tests: $((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
