#!/bin/bash
# `make demo` as a newcomer runs it: in a terminal (a pty made by script(1)),
# with a window on a display (a private Xvfb stands in for the user's).
# Ctrl-C typed on that terminal stops everything cleanly: "demo: stopped",
# no "make: *** ... Error" line, nothing of the demo left running; and a
# machine without a sound card costs one line of ours, not ALSA's noise.
O=${O:-build}
tmp=$(mktemp -d)
xpid= spid=
cleanup() {
	exec 4>&- 2>/dev/null
	[ -n "$spid" ] && kill "$spid" 2>/dev/null
	[ -n "$xpid" ] && kill "$xpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
result() { # OK NAME
	if [ "$1" = 1 ]; then
		echo "ok - demo: $2"
	else
		echo "not ok - demo: $2"
		tr -d '\r' <"$tmp/demo.log" | sed 's/^/# /' | tail -30
	fi
}
for p in Xvfb xterm xclock script setsid; do
	command -v $p >/dev/null || {
		echo "ok - demo: all # skip $p missing"
		exit 0
	}
done
# shellcheck source=tests/wait.sh
. "$(dirname "$0")/../wait.sh"

exec 3>"$tmp/display"
Xvfb -displayfd 3 -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
xpid=$!
exec 3>&-
wait_log "$tmp/display" 10 '[0-9]' || {
	echo "not ok - demo: all # Xvfb did not start"
	exit 0
}
# the terminal: what is written to fifo "in" is typed on it.  A test runs
# in the background of a script, where SIGINT is ignored (and that is
# inherited): a terminal's user has it at its default.
mkfifo "$tmp/in"
DISPLAY=:$(tr -d '\n' <"$tmp/display") env --default-signal=INT,QUIT script -qefc \
	"make --no-print-directory O='$O' demo" /dev/null \
	<"$tmp/in" >"$tmp/demo.log" 2>&1 &
spid=$!
exec 4>"$tmp/in"
wait_log "$tmp/demo.log" 120 "first frame shown"
shown=$?
result $((shown == 0)) "the viewer window shows the host"
work=$(tr -d '\r' <"$tmp/demo.log" | sed -n 's/^demo: logs in \(.*\) while it runs$/\1/p')
printf '\003' >&4 # Ctrl-C
for ((i = 0; i < 300; i++)); do
	kill -0 "$spid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$spid" 2>/dev/null
result $(($? != 0)) "Ctrl-C stops it within 30 s"
wait "$spid" 2>/dev/null
grep -q 'make.*\*\*\*' "$tmp/demo.log"
nomakeerr=$?
grep -q 'demo: stopped' "$tmp/demo.log"
result $((nomakeerr != 0 && $? == 0)) "a clean stop: 'demo: stopped', no make error"
left=0
if [ -z "$work" ]; then
	left=1
	echo "# the demo did not say where its files are"
else
	for ((i = 0; i < 50; i++)); do
		pgrep -f -- "$work" >/dev/null || [ -e "$work" ] || break
		sleep 0.1
	done
	pgrep -af -- "$work" | sed 's/^/# left running: /'
	pgrep -f -- "$work" >/dev/null && left=1
	[ -e "$work" ] && left=1 && echo "# $work is still there"
fi
result $((left == 0)) "nothing of it left running, its files removed"
# no sound card here: at most one line about it, none of ALSA's
alsa=$(grep -c 'ALSA lib' "$tmp/demo.log")
ours=$(grep -c 'no sound output' "$tmp/demo.log")
echo "# ALSA lines: $alsa, ours: $ours"
result $((alsa == 0 && ours <= 1)) "no sound device: one line of ours, no ALSA noise"
