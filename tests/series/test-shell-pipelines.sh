#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The project's shell scripts run with 'set -o pipefail'.  A reader that
# stops before the end of its input (head, grep -q, grep -m, awk's exit)
# makes the writer die of SIGPIPE whenever the writer has more to say
# than one pipe buffer, and pipefail turns that into a failed pipeline:
# under set -e the script ends without a word, at random (a 4 KiB
# patches/series was enough).  This test fails on such a reader after a
# pipe in any script that sets pipefail; read to the end instead
# (sed -n 1p, grep ... >/dev/null, find -print -quit).
# TAP output.

set -uo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

n=0
fail=0
# The case itself: the pattern catches the failure it is about.
probe=$(mktemp)
trap 'rm -f "$probe"' EXIT
printf 'set -o pipefail\nx=$(seq 100000 | head -n 1)\n' > "$probe"

early_readers() {
    # Lines piping into a reader that may stop early.
    grep -nE '\|[[:space:]]*(head([[:space:]]|$)|grep[[:space:]]+(-[a-zA-Z]*[qm]|--quiet|--max-count)|awk[[:space:]].*[{;][[:space:]]*exit)' "$1"
}

n=$((n + 1))
if early_readers "$probe" >/dev/null; then
    echo "ok $n - the check finds 'seq | head -n 1'"
else
    echo "not ok $n - the check finds 'seq | head -n 1'"
    fail=1
fi

self=$(realpath "$0")
while read -r f; do
    # This file shows the pattern on purpose (the probe above).
    [ "$(realpath "$f")" != "$self" ] || continue
    grep -q 'pipefail' "$f" || continue
    n=$((n + 1))
    found=$(early_readers "$f")
    if [ -z "$found" ]; then
        echo "ok $n - ${f#"$TOP"/}: no early-exit reader after a pipe"
    else
        echo "not ok $n - ${f#"$TOP"/}: early-exit reader after a pipe"
        sed 's/^/#   /' <<<"$found"
        fail=1
    fi
done < <(cd "$TOP" && git ls-files -z -- '*.sh' .ci/run | tr '\0' '\n' |
         sed "s|^|$TOP/|")
echo "1..$n"
exit $fail
