# Sourced by the packaging tests: check NAME COMMAND... runs COMMAND and
# prints "ok - $suite: NAME", or "not ok" with the last 30 lines of its
# output; $suite and $tmp (a scratch directory) are the caller's.
check() {
	name=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		echo "ok - $suite: $name"
	else
		echo "not ok - $suite: $name"
		sed 's/^/# /' "$tmp/out" | tail -30
	fi
}
