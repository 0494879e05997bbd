# Shell helpers shared by the test scripts (sourced, bash or sh).

# wait_log FILE SECS PATTERN: wait up to SECS seconds for FILE to contain a
# line matching the grep pattern PATTERN; status 0 when it did.
wait_log() {
	_w=0
	while [ "$_w" -lt $(($2 * 10)) ]; do
		grep -q -- "$3" "$1" 2>/dev/null && return 0
		sleep 0.1
		_w=$((_w + 1))
	done
	return 1
}
