#!/bin/bash
# Run homedesk's test programs and print one summary line.
#
# Usage: O=build tools/run-tests.sh [SUITE...]
#        suites: unit integration e2e nat packaging (the default), docker
#        (make test-docker: tests/docker, root and a dockerd of its own),
#        systemd (make test-systemd: tests/systemd, root, systemd-nspawn)
#        win (make test-win: the Windows host under Wine, tests/win and
#        tests/e2e/test_win_*.sh)
#        tools/run-tests.sh --total FILE: the summary of the runs that
#        appended their counts to FILE (HD_TEST_TALLY, see below)
# Every test program prints "ok - ..." / "not ok - ..." lines (see
# tests/harness.h); this script runs them (HD_TEST_JOBS at a time, default
# 2), prints their lines numbered in a stable order, counts a program that
# crashed or printed nothing as a failure, and ends with
# "N passed, N failed[, N skipped]".  Exit status 1 on any failure.
# With HD_TEST_TALLY=FILE it also appends "PASSED FAILED SKIPPED" to FILE,
# so that .ci/run can close make test and make test-docker with one line.
set -u
O=${O:-build}

# summary PASSED FAILED SKIPPED: the closing line
summary() {
	if [ "$3" -gt 0 ]; then
		echo "$1 passed, $2 failed, $3 skipped"
	else
		echo "$1 passed, $2 failed"
	fi
}

if [ "${1:-}" = --total ]; then
	p=0 f=0 s=0
	while read -r a b c; do
		p=$((p + a)) f=$((f + b)) s=$((s + c))
	done <"$2"
	summary $p $f $s
	[ $f -eq 0 ]
	exit
fi
jobs=${HD_TEST_JOBS:-2}
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit integration e2e nat packaging)

progs=()
for s in "${suites[@]}"; do
	case $s in
	unit | integration)
		for p in "$O"/tests/$s/test_*; do
			[ -x "$p" ] && [ "${p%.[od]}" = "$p" ] && progs+=("$p")
		done
		;;
	e2e | nat | packaging | docker | systemd)
		for p in tests/$s/test_*.sh; do
			[ -f "$p" ] && progs+=("$p")
		done
		;;
	win)
		for p in tests/win/test_*.sh tests/e2e/test_win_*.sh; do
			[ -f "$p" ] && progs+=("$p")
		done
		;;
	*)
		echo "run-tests: unknown suite $s" >&2
		exit 2
		;;
	esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export O HD_BUILD_DIR="$O"
# no test may ask the router of the machine running it for a port mapping
# (tests/nat/test_upnp.sh turns it on inside its lab)
export HOMEDESK_NO_UPNP=1

run_one() {
	local i=$1 p=$2 t=${HD_TEST_TIMEOUT:-900}
	timeout -k 10 "$t" "$p" >"$tmp/$i.out" 2>"$tmp/$i.err" </dev/null
	echo $? >"$tmp/$i.rc"
}

running=0
for i in "${!progs[@]}"; do
	run_one "$i" "${progs[$i]}" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

n=0 pass=0 fail=0 skip=0
for i in "${!progs[@]}"; do
	p=${progs[$i]}
	rc=$(cat "$tmp/$i.rc")
	got=0 bad=0
	while IFS= read -r line; do
		case $line in
		"not ok"*)
			n=$((n + 1)) fail=$((fail + 1)) got=1 bad=1
			echo "not ok $n${line#not ok}"
			;;
		"ok"*"# skip"*)
			n=$((n + 1)) skip=$((skip + 1)) got=1
			echo "ok $n${line#ok}"
			;;
		"ok"*)
			n=$((n + 1)) pass=$((pass + 1)) got=1
			echo "ok $n${line#ok}"
			;;
		*) echo "$line" ;;
		esac
	done <"$tmp/$i.out"
	if [ "$rc" != 0 ] && [ $bad = 0 ] || [ $got = 0 ]; then
		n=$((n + 1)) fail=$((fail + 1))
		echo "not ok $n - $p: exited with status $rc"
	fi
	if [ "$rc" != 0 ] && [ -s "$tmp/$i.err" ]; then
		echo "# stderr of $p (last 40 lines):"
		tail -n 40 "$tmp/$i.err" | sed 's/^/#   /'
	fi
done

[ -n "${HD_TEST_TALLY:-}" ] && echo "$pass $fail $skip" >>"$HD_TEST_TALLY"
summary $pass $fail $skip
[ $fail -eq 0 ]
