#!/bin/bash
# make demo: the whole suite on this machine, with default settings.
#
# Starts homedesk-server (default ports when free), a private Xvfb desktop
# with an xterm and a clock on it, homedesk-host sharing that desktop, and
# homedesk-viewer connected to the host by its ID through the server: in a
# window on $DISPLAY when there is one, otherwise headless, printing where
# its screenshot is and the session's statistics.  Ctrl-C stops everything.
#
# Ctrl-C reaches only the viewer, this script and make: the other programs
# run in sessions of their own (setsid), so the host's desktop does not
# vanish under the viewer before it quits, and they are stopped here in
# order.  A stop by Ctrl-C is a clean exit (status 0, "demo: stopped").
set -u
O=${O:-build}
bin=$(cd "$O" && pwd)
work=$(mktemp -d /tmp/homedesk-demo.XXXXXX)
pids=()

say() { printf 'demo: %s\n' "$*"; }
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
# Ctrl-C is how the demo is meant to end: a clean stop, status 0 (make
# would otherwise report "*** [demo] Error")
trap 'say stopped; exit 0' INT TERM

# Wait up to $2 seconds for file $1 to contain $3.
wait_for() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -q "$3" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# 1. The server: default ports, or the next free block if they are taken.
for port in 21116 31116 41116; do
	setsid "$bin/homedesk-server" --data-dir "$work/server" --port "$port" \
		>"$work/server.log" 2>&1 &
	spid=$!
	if wait_for "$work/server.log" 5 "public key:"; then
		pids+=("$spid")
		break
	fi
	kill "$spid" 2>/dev/null
	port=
done
[ -n "$port" ] || { cat "$work/server.log"; exit 1; }
say "logs in $work while it runs"
key=$(cat "$work/server/id_ed25519.pub")
say "server on port $port (log: server.log), key $key"

# 2. A private desktop for the host, with real X clients on it.
exec 3>"$work/xvfb.display"
setsid Xvfb -displayfd 3 -screen 0 1280x720x24 -nolisten tcp >/dev/null 2>&1 &
pids+=($!)
exec 3>&-
wait_for "$work/xvfb.display" 5 '[0-9]' || { say "Xvfb did not start"; exit 1; }
hostdpy=:$(tr -d '\n' <"$work/xvfb.display")
DISPLAY=$hostdpy setsid xterm -geometry 90x28+30+30 -fa Monospace -fs 11 \
	-e sh -c 'echo "homedesk demo: this xterm is on the host"; exec sh' &
pids+=($!)
DISPLAY=$hostdpy setsid xclock -geometry 240x240+900+60 -update 1 &
pids+=($!)
say "host desktop is Xvfb $hostdpy (xterm + xclock)"

# 3. The host, sharing that desktop.
head -c 12 /dev/urandom | base64 | tr -d '/+=' >"$work/password"
setsid "$bin/homedesk-host" --server "127.0.0.1:$port" --key "$key" \
	--password-file "$work/password" --display "$hostdpy" \
	--config-dir "$work/host" >"$work/host.out" 2>"$work/host.log" &
pids+=($!)
wait_for "$work/host.out" 10 '^id: ' || { cat "$work/host.log"; exit 1; }
id=$(sed -n 's/^id: //p' "$work/host.out" | head -1)
wait_for "$work/server.log" 10 "id $id" || true
say "host registered as ID $id"

# 4. The viewer, by ID through the server.
if [ -n "${DISPLAY:-}" ]; then
	say "opening the viewer on $DISPLAY (Ctrl-C here to stop everything)"
	HOMEDESK_PASSWORD=$(cat "$work/password") "$bin/homedesk-viewer" \
		--server "127.0.0.1:$port" --key "$key" \
		--config-dir "$work/viewer" "$id"
	st=$?
	# 0: closed or Ctrl-C (the viewer takes it as "quit")
	[ "$st" -eq 0 ] || [ "$st" -eq 130 ] || {
		tail -5 "$work/host.log"
		exit "$st"
	}
	say stopped
else
	out=$PWD/$O/demo
	mkdir -p "$out"
	say "no \$DISPLAY: running the viewer headless"
	HOMEDESK_PASSWORD=$(cat "$work/password") "$bin/homedesk-viewer" \
		--server "127.0.0.1:$port" --key "$key" \
		--config-dir "$work/viewer" --headless --frames 5 --out "$out" \
		"$id" ||
		{ tail -5 "$work/host.log"; exit 1; }
	say "screenshot of the host's desktop as the viewer saw it: $out/frame.png"
fi
