#!/bin/bash
# NAT lab, port mapping (issue 5): the host sits behind a symmetric NAT
# whose router offers NAT-PMP, the viewer behind a restricted NAT.  Without
# a mapping this pair has no direct TCP path (the viewer runs with
# --no-udp: UDP's birthday search would get through, see
# tests/nat/test_connect.sh); with the router's mapping of the
# host's --listen port the viewer must connect `direct` to
# router_public_ip:upnp_port, and the host must remove the mapping when it
# stops.
#
# The router's NAT-PMP server is tests/nat/hd-natpmpd (real nft DNAT rules
# in the router's namespace).  Debian's miniupnpd (2.3.1, nftables build)
# is tried first when installed: it answers SSDP, serves its description
# and speaks NAT-PMP inside the lab, but refuses every mapping because the
# lab's "internet" is TEST-NET-3 (203.0.113.0/24), which it treats as a
# reserved address ("Port forwarding is impossible"); the lab may use no
# other addresses, so that part is reported as a skip with its log line.
# Skips (exit 0) when not root, without namespaces, or while a program is
# not built.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/nat/lab.sh
. "$here/lab.sh"
# tools/run-tests.sh turns mapping off for every other test
unset HOMEDESK_NO_UPNP

build=${HD_BUILD_DIR:-build}
frames=5
fails=0

ok() { echo "ok - upnp: $*"; }
notok() {
	echo "not ok - upnp: $*"
	fails=$((fails + 1))
}

if ! lab_check; then
	echo "ok - upnp: port mapping scenarios # skip $LAB_WHY"
	exit 0
fi
for p in homedesk-server homedesk-host homedesk-viewer tests/nat/hd-natpmpd; do
	if [ ! -x "$build/$p" ]; then
		echo "ok - upnp: port mapping scenarios # skip $p not built"
		exit 0
	fi
done
if ! lab_up || ! lab_server_start; then
	notok "lab"
	exit 1
fi
lab_nat "$LAB_RA" symmetric && lab_nat "$LAB_RB" restricted || {
	notok "nft"
	exit 1
}

# shellcheck source=tests/wait.sh
. "$here/../wait.sh"

stop_host() {
	kill "$LAB_HOST_PID" 2>/dev/null
	wait "$LAB_HOST_PID" 2>/dev/null
}

# run NAME WANT [HOST ARGS]: host in LAN A, viewer in LAN B; asserts the
# path; leaves the host running
run() {
	local name=$1 want=$2 stats got ms
	shift 2
	if ! lab_host_start "$LAB_A" "host-$name" "$@"; then
		notok "$name: host started"
		return 1
	fi
	sleep 1
	if [ "$want" = direct ] &&
		! wait_log "$LAB_TMP/host-$name/host.log" 5 "port mapping: public port"; then
		notok "$name: host mapped its port"
		sed 's/^/#   /' "$LAB_TMP/host-$name/host.log" | tail -n 5
		return 1
	fi
	# --no-udp: UDP's birthday search gets through this pair too
	# (test_connect.sh); here only the TCP paths count
	stats=$(lab_viewer_run "$LAB_B" "viewer-$name" "host-$name" "$LAB_HOST_ID" $frames --no-udp)
	got=$(sed -n 's/.* path=\([a-z]*\).*/\1/p' <<<"$stats")
	ms=$(sed -n 's/.* connect_ms=\([0-9]*\).*/\1/p' <<<"$stats")
	echo "# $name: $stats"
	if [[ $stats == "stats: frames=$frames "* ]] && [ "$got" = "$want" ]; then
		ok "$name: $frames frames over path=$got in ${ms} ms (want $want)"
	else
		notok "$name: $frames frames over path=$want (got: ${stats:-no stats line})"
		sed 's/^/#   /' "$LAB_TMP/viewer-$name/viewer.log" | tail -n 10
		sed 's/^/#   /' "$LAB_TMP/host-$name/host.log" | tail -n 10
		return 1
	fi
}

# 1. no mapping: symmetric host, restricted viewer -> relay
run no-mapping relay --no-upnp
stop_host

# 2. miniupnpd (Debian's nftables build) in router A, when installed
if command -v miniupnpd >/dev/null 2>&1; then
	lab_exec "$LAB_RA" nft -f - <<EOF
table inet filter {
	chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
	chain miniupnpd { }
	chain prerouting { type nat hook prerouting priority dstnat; policy accept; jump prerouting_miniupnpd; }
	chain postrouting { type nat hook postrouting priority srcnat; policy accept; jump postrouting_miniupnpd; }
	chain prerouting_miniupnpd { }
	chain postrouting_miniupnpd { }
}
EOF
	cat >"$LAB_TMP/miniupnpd.conf" <<EOF
ext_ifname=wan
listening_ip=lan
port=5000
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
uuid=6f1a4c2e-3b7d-4e8a-9c0f-2d5e8b1a7c3f
allow 1024-65535 10.1.0.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
	lab_bg "$LAB_RA" "$LAB_TMP/miniupnpd.log" miniupnpd -d -f "$LAB_TMP/miniupnpd.conf" \
		-P "$LAB_TMP/miniupnpd.pid"
	mpid=$LAB_LAST_PID
	if lab_host_start "$LAB_A" host-miniupnpd &&
		wait_log "$LAB_TMP/host-miniupnpd/host.log" 8 "port mapping"; then
		line=$(grep -m1 "port mapping" "$LAB_TMP/host-miniupnpd/host.log")
		echo "# miniupnpd: host: ${line#*] }"
		if grep -q "Port forwarding is impossible" "$LAB_TMP/miniupnpd.log"; then
			ok "miniupnpd mapping # skip miniupnpd 2.3.1 refuses a reserved WAN address ($(grep -m1 -o 'Reserved.*' "$LAB_TMP/miniupnpd.log"))"
		elif grep -q "port mapping: public port" "$LAB_TMP/host-miniupnpd/host.log"; then
			ok "miniupnpd mapped the host's port"
		else
			notok "miniupnpd: neither a mapping nor its known refusal"
		fi
	else
		notok "miniupnpd: the host logged no mapping outcome"
	fi
	stop_host
	kill "$mpid" 2>/dev/null
	wait "$mpid" 2>/dev/null
	lab_exec "$LAB_RA" nft delete table inet filter
else
	ok "miniupnpd mapping # skip miniupnpd not installed"
fi

# 3. NAT-PMP in router A: the mapping makes the pair direct
lab_bg "$LAB_RA" "$LAB_TMP/natpmpd.log" "$build/tests/nat/hd-natpmpd" 10.1.0.1 \
	"$LAB_WAN_A" 120 3600
wait_log "$LAB_TMP/natpmpd.log" 5 ready || notok "hd-natpmpd started"
if run natpmp direct; then
	grep -q "direct (mapped port) path won" "$LAB_TMP/viewer-natpmp/viewer.log" &&
		ok "natpmp: the viewer won over the mapped port" ||
		notok "natpmp: the viewer won over the mapped port"
	grep -q "^map tcp $LAB_IP_A:21120 <- " "$LAB_TMP/natpmpd.log" &&
		ok "natpmp: router mapped $LAB_IP_A:21120" ||
		notok "natpmp: router mapped $LAB_IP_A:21120"
	stop_host
	if wait_log "$LAB_TMP/natpmpd.log" 3 "^unmap tcp $LAB_IP_A:21120"; then
		ok "natpmp: the host removed its mapping when it stopped"
	else
		notok "natpmp: the host removed its mapping when it stopped"
		sed 's/^/#   /' "$LAB_TMP/natpmpd.log"
	fi
else
	stop_host
fi

pfx=$LAB_PFX
lab_down
left=$(ip netns list | grep -c "^$pfx-")
if [ "$left" = 0 ]; then ok "lab removed"; else notok "lab removed ($left left)"; fi
[ "$fails" -eq 0 ]
