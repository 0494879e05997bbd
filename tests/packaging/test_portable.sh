#!/bin/sh
# The OS layer's rule (common/os.h, tools/check-headers.sh): no POSIX-only
# or display header in common/ or the host's platform-neutral files.  The
# check itself is tried on a planted offender first, so a check that
# matches nothing cannot pass silently.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tools" "$tmp/common" "$tmp/host/capture"
cp tools/check-headers.sh "$tmp/tools/"
printf '#include <stdio.h>\n#include <sys/socket.h>\n' >"$tmp/common/bad.c"
printf '#include <xcb/xcb.h>\n' >"$tmp/host/capture/x11.c"
if ! "$tmp/tools/check-headers.sh" >"$tmp/out" 2>&1 &&
	grep -q 'common/bad.c:2' "$tmp/out"; then
	echo "ok - portable: check-headers finds a planted <sys/socket.h>"
else
	echo "not ok - portable: check-headers finds a planted <sys/socket.h>"
fi
grep -q 'x11.c' "$tmp/out" &&
	echo "not ok - portable: a backend may include its display's headers" ||
	echo "ok - portable: a backend may include its display's headers"
if tools/check-headers.sh >"$tmp/out" 2>&1; then
	echo "ok - portable: no POSIX-only header outside the OS layer and backends"
else
	echo "not ok - portable: no POSIX-only header outside the OS layer and backends"
	sed 's/^/# /' "$tmp/out"
fi
