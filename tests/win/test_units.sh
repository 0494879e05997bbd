#!/bin/sh
# The unit tests of common/ cross-built for Windows (make test-win builds
# build-win/tests/unit/test_*.exe) run under Wine, each case reported as
# "ok - win: ..." beside the native runs.  Skipped when none is built or
# Wine cannot run a program here.
W=${HD_WIN_BUILD_DIR:-build-win}
set -- "$W"/tests/unit/test_*.exe
if [ ! -f "$1" ]; then
	echo "ok - win: unit tests # skip none built (make test-win)"
	exit 0
fi
WINEPREFIX=$(cd "$W" && pwd)/wine
WINEDEBUG=-all
WINEDLLOVERRIDES=mscoree,mshtml=
export WINEPREFIX WINEDEBUG WINEDLLOVERRIDES
if ! wine cmd /c exit 0 >/dev/null 2>&1; then
	echo "ok - win: unit tests # skip wine cannot run a program here"
	exit 0
fi
for t in "$@"; do
	out=$(wine "$t" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed -n 's/^\(not \)\{0,1\}ok - /&win: /p'
	printf '%s\n' "$out" | grep -q '^ok - ' ||
		echo "not ok - win: $(basename "$t") printed no result (status $rc)"
	[ "$rc" -eq 0 ] || printf '%s\n' "$out" | grep '^#' | tail -20
done
