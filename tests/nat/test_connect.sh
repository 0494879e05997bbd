#!/bin/bash
# NAT lab, end to end (issue 5: connect by ID through any NAT): the real
# homedesk-server, homedesk-host (fake capture/input) in LAN A and
# homedesk-viewer --headless in LAN B or LAN A, for each NAT kind of
# tests/nat/lab.sh.  Each scenario asserts the path the viewer reports
# (lan, direct, relay) and that frames flow, and the relayed ones that the
# relay was chosen quickly.  Skips (exit 0) when not
# root, when network namespaces are not usable, or while the host or the
# viewer is not built.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/nat/lab.sh
. "$here/lab.sh"

build=${HD_BUILD_DIR:-build}
frames=10
fails=0

ok() { echo "ok - nat: $*"; }
notok() {
	echo "not ok - nat: $*"
	fails=$((fails + 1))
}

if ! lab_check; then
	echo "ok - nat: host/viewer scenarios # skip $LAB_WHY"
	exit 0
fi
for p in homedesk-server homedesk-host homedesk-viewer; do
	if [ ! -x "$build/$p" ]; then
		echo "ok - nat: host/viewer scenarios # skip $p not built"
		exit 0
	fi
done
if ! lab_up || ! lab_server_start; then
	notok "host/viewer scenarios: lab"
	exit 1
fi

# scenario NAME KIND_A KIND_B VIEWER_NS PATH [MAX_MS [VIEWER_ARGS...]]:
# PATH is lan|direct|udp|relay, "p2p" for direct or udp (TCP and UDP
# punching race; either may win), or "any"; MAX_MS (may be empty) bounds
# the viewer's connect time (ID to logged in)
scenario() {
	local name=$1 ka=$2 kb=$3 vns=$4 want=$5 max=${6:-} stats got ms
	shift 5
	[ $# -gt 0 ] && shift
	lab_nat "$LAB_RA" "$ka" && lab_nat "$LAB_RB" "$kb" || {
		notok "$name: nft"
		return
	}
	if ! lab_host_start "$LAB_A" "host-$name"; then
		notok "$name: host started and registered"
		return
	fi
	sleep 1 # first heartbeat answered
	stats=$(lab_viewer_run "$vns" "viewer-$name" "host-$name" "$LAB_HOST_ID" $frames "$@")
	got=$(sed -n 's/.* path=\([a-z]*\).*/\1/p' <<<"$stats")
	ms=$(sed -n 's/.* connect_ms=\([0-9]*\).*/\1/p' <<<"$stats")
	echo "# $name: $stats"
	if [[ $stats == "stats: frames=$frames "* ]] &&
		{ [ "$want" = any ] || [ "$got" = "$want" ] ||
			{ [ "$want" = p2p ] && [[ $got == @(direct|udp) ]]; }; } &&
		{ [ -z "$max" ] || [ "${ms:-99999}" -le "$max" ]; }; then
		ok "$name: $frames frames over path=$got (want $want${max:+, connected in ${ms} ms <= $max})"
	else
		notok "$name: $frames frames over path=$want${max:+ within $max ms} (got: ${stats:-no stats line})"
		sed 's/^/#   /' "$LAB_TMP/viewer-$name/viewer.log" | tail -n 10
		sed 's/^/#   /' "$LAB_TMP/host-$name/host.log" | tail -n 10
	fi
	kill "$LAB_HOST_PID" 2>/dev/null
	wait "$LAB_HOST_PID" 2>/dev/null
}

# (host NAT first, viewer NAT second; tests/nat/bench_matrix.sh runs
# every pair many times)
scenario same-lan restricted restricted "$LAB_A2" lan
scenario cone-cone cone cone "$LAB_B" p2p
scenario restricted-restricted restricted restricted "$LAB_B" p2p
# one symmetric side: the other side's full cone lets the SYN from the
# symmetric side in (the host's listener, or the viewer's), or the UDP
# probes
scenario cone-symmetric cone symmetric "$LAB_B" p2p
scenario symmetric-cone symmetric cone "$LAB_B" p2p
# UDP alone (--no-tcp): plain punching between two port-restricted NATs,
# and peer-reflexive learning (the symmetric viewer's probes come from
# another port than the one the server saw)
scenario udp-restricted-restricted restricted restricted "$LAB_B" udp "" --no-tcp
scenario udp-cone-symmetric cone symmetric "$LAB_B" udp "" --no-tcp
# port-restricted <-> symmetric: only UDP gets through, by the birthday
# search (a fan of sockets on the symmetric side, guessed ports from the
# other), within the relay's head start
scenario restricted-symmetric restricted symmetric "$LAB_B" udp 1500
scenario symmetric-restricted symmetric restricted "$LAB_B" udp 1500
# 5 % random loss both ways at the viewer's router (nftables; this kernel
# has no sch_netem for delay): the UDP punch and its reliable stream carry
# the session anyway
lab_loss "$LAB_RB" 5
scenario udp-lossy restricted restricted "$LAB_B" udp "" --no-tcp
dropped=$(lab_loss_dropped "$LAB_RB")
if [ "${dropped:-0}" -gt 0 ]; then ok "udp-lossy: the router dropped $dropped packets"; else notok "udp-lossy: the router dropped packets (${dropped:-none})"; fi
lab_loss "$LAB_RB" 0
# no direct path: the relay, decided within 1.5 s
scenario symmetric-symmetric symmetric symmetric "$LAB_B" relay 1500

pfx=$LAB_PFX
lab_down
left=$(ip netns list | grep -c "^$pfx-")
if [ "$left" = 0 ]; then ok "host/viewer lab removed"; else notok "host/viewer lab removed ($left left)"; fi
[ "$fails" -eq 0 ]
