#!/bin/bash
# NAT lab, IPv6 where both sides have it (issue 5, DESIGN.md section 5):
# both LANs and the internet get IPv6 (tests/nat/lab.sh lab_ipv6), the
# routers forward it without NAT behind a stateful firewall (new inbound
# connections dropped, as home routers do), and both IPv4 NATs are
# symmetric, which over IPv4 leaves only the relay.  The viewer sends its
# own IPv6 address (PunchHoleRequest.socket_addr_v6), the host punches to
# it and answers its own (PunchHoleSent.socket_addr_v6), and the
# simultaneous open passes both firewalls: the session must come up
# `direct` over IPv6 (the viewer reaches the server over IPv6: the server
# passes its address on only then, and the same pair over IPv4 to the
# server takes the relay).  Also checked: the firewall does drop a plain
# inbound IPv6 connection to the host's --listen port, and without IPv6 in
# the viewer's LAN the same pair takes the relay.  Skips (exit 0) when
# not root, without namespaces, or while a program is not built.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/nat/lab.sh
. "$here/lab.sh"

build=${HD_BUILD_DIR:-build}
frames=5
fails=0

ok() { echo "ok - ipv6: $*"; }
notok() {
	echo "not ok - ipv6: $*"
	fails=$((fails + 1))
}

if ! lab_check; then
	echo "ok - ipv6: IPv6 scenarios # skip $LAB_WHY"
	exit 0
fi
for p in homedesk-server homedesk-host homedesk-viewer; do
	if [ ! -x "$build/$p" ]; then
		echo "ok - ipv6: IPv6 scenarios # skip $p not built"
		exit 0
	fi
done
if ! lab_up || ! lab_ipv6 || ! lab_server_start; then
	notok "lab with IPv6"
	exit 1
fi
lab_nat "$LAB_RA" symmetric && lab_nat "$LAB_RB" symmetric || {
	notok "nft"
	exit 1
}

# run NAME WANT PATTERN [VIEWER OPTIONS]: viewer in LAN B to the host in
# LAN A; asserts the path and that the viewer's log has PATTERN
run() {
	local name=$1 want=$2 pat=$3 stats got ms
	shift 3
	if ! lab_host_start "$LAB_A" "host-$name"; then
		notok "$name: host started"
		return
	fi
	sleep 1
	stats=$(lab_viewer_run "$LAB_B" "viewer-$name" "host-$name" "$LAB_HOST_ID" $frames "$@")
	got=$(sed -n 's/.* path=\([a-z]*\).*/\1/p' <<<"$stats")
	ms=$(sed -n 's/.* connect_ms=\([0-9]*\).*/\1/p' <<<"$stats")
	echo "# $name: $stats"
	if [[ $stats == "stats: frames=$frames "* ]] && [ "$got" = "$want" ] &&
		grep -q -- "$pat" "$LAB_TMP/viewer-$name/viewer.log"; then
		ok "$name: $frames frames over path=$got in ${ms} ms ($pat)"
	else
		notok "$name: $frames frames over path=$want, '$pat' (got: ${stats:-no stats line})"
		sed 's/^/#   /' "$LAB_TMP/viewer-$name/viewer.log" | tail -n 12
		sed 's/^/#   /' "$LAB_TMP/host-$name/host.log" | tail -n 8
	fi
}

# The viewer reaches the server over IPv6 (a server name with an AAAA
# record, in effect): the server passes the viewer's IPv6 address to the
# host only when it saw the viewer there (issue 11 finding 1)
run v6-symmetric-symmetric direct "direct (IPv6) path won" --server "[2001:db8::10]"

# the firewall is stateful: a new inbound connection to the host is dropped
if lab_exec "$LAB_B" timeout 2 bash -c 'exec 3<>/dev/tcp/2001:db8:1::10/21120' 2>/dev/null; then
	notok "router A drops new inbound IPv6 connections (one got through)"
else
	ok "router A drops new inbound IPv6 connections"
fi
kill "$LAB_HOST_PID" 2>/dev/null
wait "$LAB_HOST_PID" 2>/dev/null

# Over IPv4 to the server the viewer's IPv6 address is unproven: not
# passed to the host (it would aim SYNs wherever the viewer said), so the
# pair takes the relay
run v6-unproven relay "relay path won"
if grep -q "socket_addr_v6 not the address seen" "$LAB_TMP/server.log"; then
	ok "v6-unproven: the server did not pass the IPv6 address on"
else
	notok "v6-unproven: the server did not pass the IPv6 address on"
fi
kill "$LAB_HOST_PID" 2>/dev/null
wait "$LAB_HOST_PID" 2>/dev/null

# no IPv6 in the viewer's LAN: the same pair needs the relay
ip -n "$LAB_B" -6 route del default 2>/dev/null
run v4-only-viewer relay "relay path won"
kill "$LAB_HOST_PID" 2>/dev/null
wait "$LAB_HOST_PID" 2>/dev/null

pfx=$LAB_PFX
lab_down
left=$(ip netns list | grep -c "^$pfx-")
if [ "$left" = 0 ]; then ok "lab removed"; else notok "lab removed ($left left)"; fi
[ "$fails" -eq 0 ]
