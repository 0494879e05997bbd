#!/bin/bash
# Run every benchmark program in $O/tests/bench (make bench).  Each prints
# its figures next to a baseline measured in the same run.  Benchmarks are
# never part of make test: their numbers depend on the machine.
set -u
O=${O:-build}
export HD_BUILD_DIR="$O"
status=0
for b in "$O"/tests/bench/bench_*; do
	[ -x "$b" ] && [ "${b%.[od]}" = "$b" ] || continue
	echo "== ${b##*/}"
	"$b" || status=1
done
exit $status
