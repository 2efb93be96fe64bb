#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Tests of the series checker (scripts/check-series.sh): each case breaks
# a copy of patches/ (its topics included) or of the overlay in one way
# and asserts that the
# checker fails, naming the problem.  The real series passing the same
# checker is the test command's own series check.  TAP output.

set -uo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-check-series.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0

# A fresh copy of patches/ and of the overlay files in $tmp/$1.
copy_repo() {
    local d=$tmp/$1
    mkdir -p "$d/overlay"
    cp -a "$TOP/patches" "$d/patches"
    overlay_paths "$TOP/patches" |
        rsync -a --files-from=- "$OVERLAY/" "$d/overlay/"
}

last_patch() {
    series_patches "$1/patches" | tail -n 1
}

# The last patch whose first changed file is upstream's: a change to an
# overlay file must also match the overlay, which an earlier check tests.
last_upstream_patch() {
    local p f
    for p in $(series_patches "$1/patches" | tac); do
        f=$(awk '/^\+\+\+ b\// { print substr($2, 3) }' \
            "$1/patches/$p" | sed -n 1p)
        if ! awk -v f="$f" '$1 == f { found = 1 } END { exit !found }' \
            "$1/patches/overlay-files"; then
            echo "$p"
            return
        fi
    done
}

# The patch that adds the test guest (its hunks and subject the cases
# below rely on), wherever the series has it.
guest_patch() {
    series_patches "$1/patches" | grep 'tests-qtest-add-a-freestanding' | sed -n 1p
}

# expect_failure NAME PATTERN: the checker fails on $tmp/NAME and its
# output matches PATTERN (grep -E).
expect_failure() {
    local name=$1 pattern=$2 out rc
    n=$((n + 1))
    out=$("$TOP/scripts/check-series.sh" --fail-fast \
          --patches "$tmp/$name/patches" --overlay "$tmp/$name/overlay" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] && grep -qE -- "$pattern" <<<"$out"; then
        echo "ok $n - checker rejects: $name"
    else
        echo "not ok $n - checker rejects: $name (exit $rc, wanted /$pattern/)"
        sed 's/^/# /' <<<"$out"
        failed=$((failed + 1))
    fi
}

# 1. A hunk whose context no longer matches pristine 10.2.2.
copy_repo broken-hunk
p=$tmp/broken-hunk/patches/$(guest_patch "$tmp/broken-hunk")
sed -i '0,/^ qtest_executables = {}$/s//  qtest_executables = {}/' "$p"
expect_failure broken-hunk "not ok 3 - every patch applies.*|does not apply"

# 2. No Signed-off-by.
copy_repo no-signoff
p=$tmp/no-signoff/patches/$(guest_patch "$tmp/no-signoff")
sed -i '/^Signed-off-by: /d' "$p"
expect_failure no-signoff "no Signed-off-by: line"

# 3. A subject that is not "subsystem: summary".
copy_repo bad-subject
p=$tmp/bad-subject/patches/$(guest_patch "$tmp/bad-subject")
sed -i 's/^Subject: \[PATCH\] tests\/qtest: /Subject: [PATCH] /' "$p"
expect_failure bad-subject "is not 'subsystem: summary'"

# 4. No body.
copy_repo no-body
p=$tmp/no-body/patches/$(guest_patch "$tmp/no-body")
awk 'BEGIN { skip = 0 }
     /^$/ && !seen { print; skip = 1; seen = 1; next }
     skip && /^Signed-off-by: / { skip = 0 }
     !skip { print }' "$p" > "$p.new" && mv "$p.new" "$p"
expect_failure no-body "no body explaining the change"

# 5. A checkpatch error in an added line (trailing whitespace), in the
# last patch so that no later patch's context changes.
copy_repo checkpatch-error
p=$tmp/checkpatch-error/patches/$(last_upstream_patch "$tmp/checkpatch-error")
awk '!done && /^\+[^+]/ { print $0 "   "; done = 1; next } { print }' \
    "$p" > "$p.new" && mv "$p.new" "$p"
expect_failure checkpatch-error "not ok 4 - checkpatch.*|trailing whitespace"

# 6. A checkpatch error in an overlay file (only the export shows it).
copy_repo overlay-style
f=$tmp/overlay-style/overlay/tests/qtest/guest/guest-qtest.c
printf 'static int overlay_style_error(void) { return 0;}\n' >> "$f"
expect_failure overlay-style "not ok [0-9]+ - checkpatch.pl --strict on the exported series"

# 7. An overlay file that no patch owns.
copy_repo unowned-file
echo '/* stray */' > "$tmp/unowned-file/overlay/tests/qtest/guest/stray.c"
expect_failure unowned-file "tests/qtest/guest/stray.c is an overlay file but no patch owns it"

# 8. A series entry whose file is missing.
copy_repo missing-patch
echo "0099-missing.patch" >> "$tmp/missing-patch/patches/series"
expect_failure missing-patch "lists 0099-missing.patch, which does not exist"

# 9. A topic that starts with a subject no patch has.
copy_repo topic-unknown-first
sed -i '/^topic private$/,/^  first:/s/^  first: .*/  first: kvm: a patch that is not there/' \
    "$tmp/topic-unknown-first/patches/topics"
expect_failure topic-unknown-first "topic private starts with 'kvm: a patch that is not there', which is the subject of no patch"

# 10. A topic based on a topic that is not before it.
copy_repo topic-bad-base
sed -i '0,/^  based-on: faults$/s//  based-on: tdx/' \
    "$tmp/topic-bad-base/patches/topics"
expect_failure topic-bad-base "topic private is based on tdx, which is not a topic before it"

# 11. Topics out of series order.
copy_repo topic-order
python3 - "$tmp/topic-order/patches/topics" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
a = s.index("topic private")
b = s.index("topic tdx")
s = s[:a] + s[b:].rstrip("\n") + "\n\n" + s[a:b].rstrip("\n") + "\n"
open(p, "w").write(s.replace("based-on: private", "based-on: faults", 1))
PY
expect_failure topic-order "topic private starts before the topic listed above it"

echo "1..$n"
echo "series checker tests: $((n - failed)) passed, $failed failed"
[ $failed -eq 0 ]
