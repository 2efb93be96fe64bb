#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run inside the KVM box (scripts/kvm-box.sh): the KVM cases of the
# project's qtests, each case in its own run of its test binary (an
# assertion aborts the binary; one failure must not hide the others),
# as one TAP stream whose lines name the kernel:
#
#   run-cases.sh KERNEL SPEC...
#
#   BINARY:PATH[:QEMU[:VAR=VALUE]]
#       every case of BINARY under the GLib test path PATH; the case list
#       is taken in the box, since a test registers some cases only where
#       the kernel has what they need.  QTEST_QEMU_BINARY must be set;
#       QEMU, when given, replaces it for that spec, with VAR=VALUE in the
#       environment too.
#   tap:SCRIPT[:ARG]
#       a TAP script (tests/libvirt/test-libvirt.sh), run once with ARG;
#       its lines are named kvm@KERNEL DIR: (DIR: the script's directory).

set -u
kernel=$1
shift
n=0
failed=0
log=$(mktemp)
caseout=$(mktemp)

# limited SECONDS CMD...: CMD's stdout into $caseout (a file, not a pipe:
# a QEMU that outlives a killed test and keeps the pipe open would hold
# the run up), stderr into $log; killed after SECONDS (status 124).  A
# killed case's QEMUs go too, whatever process group they are in.
limited() {
    local rc
    timeout --kill-after=10 "$@" >"$caseout" 2>"$log" </dev/null
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        pkill -KILL -f -- '-qtest unix:' 2>/dev/null
    fi
    return $rc
}

# print_time T0 T1: the TCG time inside the box between two
# ${EPOCHREALTIME/./} readings, for finding slow cases, not a result.
print_time() {
    local t=$((($2 - $1) / 100000))
    echo "# time $((t / 10)).$((t % 10)) s"
}

echo "# kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) vCPUs"
default_qemu=$QTEST_QEMU_BINARY
# run_tap SCRIPT ARG: a TAP script's lines, renumbered into ours
run_tap() {
    local name line rc t0 t1 out
    name=$(basename "$(dirname "$1")")
    t0=${EPOCHREALTIME/./}
    limited 900 "$1" ${2:+"$2"}
    rc=$?
    out=$(<"$caseout")
    t1=${EPOCHREALTIME/./}
    while IFS= read -r line; do
        case "$line" in
        "ok "*|"not ok "*)
            n=$((n + 1))
            rest=${line#not }
            rest=${rest#ok }
            rest=${rest#* }
            rest=${rest#- }
            if [ "${line#not ok}" != "$line" ]; then
                echo "not ok $n - kvm@$kernel $name: $rest"
                failed=1
            else
                echo "ok $n - kvm@$kernel $name: $rest"
            fi
            ;;
        "1..0 # SKIP"*)
            n=$((n + 1))
            echo "ok $n - kvm@$kernel $name # SKIP${line#1..0 # SKIP}"
            ;;
        1..*) ;;
        *) echo "$line" ;;
        esac
    done <<<"$out"
    if [ $rc -ne 0 ] && ! grep -q '^not ok ' <<<"$out"; then
        n=$((n + 1))
        echo "not ok $n - kvm@$kernel $name # exit status $rc"
        tail -n 25 "$log" | sed 's/^/# /'
        failed=1
    fi
    print_time "$t0" "$t1"
}

for spec in "$@"; do
    case "$spec" in
    tap:*)
        IFS=: read -r _ script arg <<<"$spec"
        run_tap "$script" "$arg"
        continue
        ;;
    esac
    IFS=: read -r bin prefix qemu var <<<"$spec"
    export QTEST_QEMU_BINARY=${qemu:-$default_qemu}
    [ -z "$var" ] || export "${var?}"
    if ! cases=$("$bin" -l 2>"$log"); then
        n=$((n + 1))
        echo "not ok $n - kvm@$kernel $prefix # cannot list the cases of ${bin##*/}"
        sed 's/^/# /' "$log" | tail -n 10
        failed=1
        continue
    fi
    matched=$(grep -e "^$prefix/" -e "^$prefix\$" <<<"$cases")
    if [ -z "$matched" ]; then
        # A wrong path must not pass as "nothing to run".
        n=$((n + 1))
        echo "not ok $n - kvm@$kernel $prefix # ${bin##*/} has no case there"
        failed=1
    fi
    # Per case, only builtins but for the test itself and timeout(1):
    # each process started in the box costs TCG time.
    for c in $matched; do
        n=$((n + 1))
        t0=${EPOCHREALTIME/./}
        limited 300 "$bin" --tap -p "$c"
        rc=$?
        out=$(<"$caseout")
        t1=${EPOCHREALTIME/./}
        line= msgs= none=
        while IFS= read -r l; do
            case "$l" in
            "ok "*|"not ok "*) [ -n "$line" ] || line=$l ;;
            "1..0"*) none=1 ;;
            "# random seed"*|"# Start of"*|"# End of"*|"# SKIP"*|"# starting QEMU"*) ;;
            "# "*) msgs+=$l$'\n' ;;
            esac
        done <<<"$out"
        if [ -z "$line" ] && [ $rc -eq 0 ] && [ -n "$none" ]; then
            # The binary registered nothing at this path here.
            line="ok 1 $c # SKIP not registered on this kernel"
        fi
        case "$line" in
        "ok "*"# SKIP"*)
            echo "ok $n - kvm@$kernel $c # SKIP${line#*# SKIP}"
            ;;
        "ok "*)
            if [ $rc -eq 0 ]; then
                echo "ok $n - kvm@$kernel $c"
            else
                echo "not ok $n - kvm@$kernel $c # exit status $rc after its result"
                failed=1
            fi
            ;;
        *)
            why="exit status $rc"
            [ $rc -ne 124 ] && [ $rc -ne 137 ] || why="killed after 300 s"
            echo "not ok $n - kvm@$kernel $c # $why"
            failed=1
            ;;
        esac
        # What the case reports (g_test_message), such as counts.
        printf '%s' "$msgs"
        print_time "$t0" "$t1"
        if [ $rc -ne 0 ] || [ "${line#not ok}" != "$line" ]; then
            { grep '^Bail out\|^#.*\(ERROR\|assert\)' <<<"$out"; tail -n 25 "$log"; } |
                sed 's/^/# /'
        fi
    done
    [ -z "$var" ] || unset "${var%%=*}"
done
rm -f "$log" "$caseout"
echo "1..$n"
exit $failed
