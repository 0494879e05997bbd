#!/bin/bash
# Run every libFuzzer target of a build tree for a fixed time.
#
# Usage: tools/run-fuzz.sh BUILD_DIR SECONDS      (called by `make fuzz`)
# Targets are the executables BUILD_DIR/tests/fuzz/fuzz_*, one per
# tests/fuzz/fuzz_NAME.c; a new target needs nothing here.  Each runs alone
# for SECONDS (-max_total_time) on a corpus kept in
# BUILD_DIR/fuzz/corpus/fuzz_NAME (it grows from run to run), seeded from
# tests/fuzz/seeds/fuzz_NAME/*.hex when that folder exists: one input per
# file, written as hex digits (whitespace ignored), turned into binary
# files in BUILD_DIR/fuzz/seeds/fuzz_NAME.  The output of each target goes
# to BUILD_DIR/fuzz/fuzz_NAME.log, crash inputs to
# BUILD_DIR/fuzz/artifacts/fuzz_NAME/ (replay: BUILD_DIR/tests/fuzz/fuzz_NAME
# FILE).  Prints "ok - fuzz: NAME (N runs)" or "not ok - fuzz: NAME ..."
# per target, then "N passed, N failed"; exit status 1 if any target
# crashed, leaked, timed out or found nothing to run.
set -u

usage() {
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
}
[ $# -eq 2 ] || usage
dir=$1 secs=$2
case $secs in
'' | *[!0-9]*) usage ;;
esac
[ "$secs" -gt 0 ] || usage

shopt -s nullglob
targets=()
for b in "$dir"/tests/fuzz/fuzz_*; do
	[ -f "$b" ] && [ -x "$b" ] && [ "${b%.[od]}" = "$b" ] && targets+=("$b")
done
if [ ${#targets[@]} -eq 0 ]; then
	echo "run-fuzz: no fuzz targets in $dir/tests/fuzz" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

# hex file -> binary file (bash's printf %b understands \xHH, NUL included)
unhex() {
	local hex
	hex=$(tr -cd '0-9a-fA-F' <"$1")
	if [ $((${#hex} % 2)) -ne 0 ]; then
		echo "run-fuzz: $1: odd number of hex digits" >&2
		return 1
	fi
	# shellcheck disable=SC2059
	printf '%b' "$(printf '%s' "$hex" | sed 's/../\\x&/g')" >"$2"
}

pass=0 fail=0
work=$dir/fuzz
for b in "${targets[@]}"; do
	name=${b##*/}
	corpus=$work/corpus/$name
	seeds=$work/seeds/$name
	arts=$work/artifacts/$name
	log=$work/$name.log
	mkdir -p "$corpus" "$seeds" "$arts"
	dirs=("$corpus")
	nseeds=0
	for h in tests/fuzz/seeds/"$name"/*.hex; do
		unhex "$h" "$seeds/$(basename "$h" .hex)" && nseeds=$((nseeds + 1))
	done
	[ $nseeds -gt 0 ] && dirs+=("$seeds")

	# New inputs go to the first directory only; seeds stay as written.
	"$b" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$arts/" "${dirs[@]}" \
		>"$log" 2>&1 </dev/null
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	name=${name#fuzz_}
	if [ $rc -eq 0 ] && [ -n "$runs" ]; then
		pass=$((pass + 1))
		echo "ok - fuzz: $name ($runs runs)"
	else
		fail=$((fail + 1))
		echo "not ok - fuzz: $name (exit status $rc, ${runs:-0} runs)"
		echo "# log: $log; inputs: $arts/"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" |
			head -n 5 | sed 's/^/#   /'
		for a in "$arts"/*; do
			echo "# replay: $b $a"
		done
	fi
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
