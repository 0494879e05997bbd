#!/bin/sh
# The source layout's limits (issue 13): no file over 800 lines and no
# function over 120 in server/ host/ client/ common/ but the exceptions
# tools/layout.allow lists, each no longer than it says (tools/layout.sh
# --check); and the check itself fails on a file that grows past them.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
suite=layout
# shellcheck source=tests/packaging/check.sh
. "$(dirname "$0")/check.sh"

check "sizes within the limits and tools/layout.allow" tools/layout.sh --check
# the check can fail: a file of 801 lines, a function of 121
mkdir -p "$tmp/big"
awk 'BEGIN { for (i = 0; i < 801; i++) print "int x" i ";" }' \
	>"$tmp/big/file.c"
awk 'BEGIN { print "int f(void)"; print "{";
	for (i = 0; i < 119; i++) print "    (void)0;"; print "}" }' \
	>"$tmp/big/func.c"
# fails KIND: the check fails on $tmp/big and names the KIND that is over
fails() {
	! HD_LAYOUT_ALLOW=/dev/null tools/layout.sh --check "$tmp/big" \
		>"$tmp/big.out" && grep -q "$1" "$tmp/big.out"
}
check "a file over 800 lines fails it" fails 'file.c: 801 lines'
check "a function over 120 lines fails it" fails 'f() has 121 lines'
