#!/bin/sh
# Run homedesk's benchmarks (make bench; never part of make test).
#
# Usage: O=build tools/run-bench.sh [NAME...]   (default: every
# $O/tests/bench/bench_* program).  Each benchmark prints its own figures
# next to a baseline measured in the same run; this script runs them one
# after the other (they time themselves, so never in parallel) and fails
# if one fails.  HD_BENCH_ARGS is passed to every program.  The NAT lab
# matrix (tests/nat/bench_matrix.sh: root only, skips otherwise) runs
# last, or alone as NAME bench_matrix; HD_BENCH_NAT_RUNS sets its runs.
set -u
O=${O:-build}
export HD_BUILD_DIR="$O"
export HOMEDESK_NO_UPNP=1 # (see tools/run-tests.sh)
status=0
if [ $# -gt 0 ]; then
	progs=""
	for n in "$@"; do
		case $n in
		bench_matrix) progs="$progs tests/nat/bench_matrix.sh" ;;
		*) progs="$progs $O/tests/bench/$n" ;;
		esac
	done
else
	progs="$(ls "$O"/tests/bench/bench_* 2>/dev/null | grep -v '\.[od]$')
tests/nat/bench_matrix.sh"
fi
for p in $progs; do
	[ -x "$p" ] || continue
	echo "== $(basename "$p")"
	case $p in
	*.sh) args= ;;
	*) args=${HD_BENCH_ARGS:-} ;;
	esac
	# shellcheck disable=SC2086
	if ! "$p" $args; then
		echo "bench: $p failed" >&2
		status=1
	fi
	echo
done
exit $status
