#!/bin/bash
# NAT lab: the real homedesk-server on a namespace "internet", peers
# (tests/nat/hd-natprobe) in two LANs behind nftables NAT routers of each
# kind (tests/nat/lab.sh).  Checks, for issue 5 (connect by ID through any
# NAT):
#   - the NAT type test of PROTOCOL.md section 4 tells cone and
#     port-restricted cone (ASYMMETRIC) from symmetric (SYMMETRIC);
#   - a host registers over UDP from behind every kind, under its router's
#     WAN address, and a viewer's punch request reaches it through its NAT
#     (PunchHole over UDP) and gets a PunchHoleResponse with the host's
#     public address and the server-signed key; a viewer in the same LAN
#     gets the host's LAN address instead (FetchLocalAddr/LocalAddr);
#   - two peers behind symmetric NATs meet on the relay and move 1 MiB
#     each way;
#   - TCP hole punching between the LANs for every pair of kinds, by
#     same-port simultaneous connect() alone and with a listener on the
#     port as well (two matrices, printed as "# " lines), and the
#     reference's listen-after-SYN with strict and liberal conntrack;
#   - heartbeats keep the UDP mapping open when the router's UDP conntrack
#     timeout is short, and it closes without them;
#   - hairpinning needs the explicit DNAT+MASQUERADE pair.
# Prints "ok - nat: ..." lines; skips (exit 0) when not root or when
# network namespaces are not usable.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/nat/lab.sh
. "$here/lab.sh"

build=${HD_BUILD_DIR:-build}
probe=$build/tests/nat/hd-natprobe
kinds=(cone restricted symmetric)
fails=0

ok() { echo "ok - nat: $*"; }
notok() {
	echo "not ok - nat: $*"
	fails=$((fails + 1))
}
# check NAME COMMAND...: ok when COMMAND succeeds
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else notok "$name"; fi
}
# has FILE REGEX: the file has a line matching REGEX (diagnostics if not)
has() {
	if grep -Eq "$2" "$1" 2>/dev/null; then return 0; fi
	echo "# $(basename "$1") lacks /$2/:"
	sed 's/^/#   /' "$1" 2>/dev/null | tail -n 8
	return 1
}
probe_in() { # NS ARGS...: run the probe in a namespace, bounded
	local ns=$1
	shift
	lab_exec "$ns" timeout -k 2 60 "$probe" "$@"
}
probe_bg() { # NS LOG ARGS...
	local ns=$1 log=$2
	shift 2
	lab_bg "$ns" "$log" timeout -k 2 60 "$probe" "$@"
}

if ! lab_check; then
	echo "ok - nat: NAT lab # skip $LAB_WHY"
	exit 0
fi
for f in "$probe" "$build/homedesk-server"; do
	if [ ! -x "$f" ]; then
		notok "NAT lab: $f not built"
		exit 1
	fi
done
if ! lab_up; then
	notok "NAT lab: namespaces"
	exit 1
fi
if ! lab_server_start; then
	notok "NAT lab: homedesk-server in the lab"
	exit 1
fi
T=$LAB_TMP
db=$LAB_SERVER_DIR/db_v2.sqlite3

# ---- NAT type test, registration and punch under each kind --------------
n=0
for k in "${kinds[@]}"; do
	n=$((n + 1))
	lab_nat "$LAB_RA" "$k" && lab_nat "$LAB_RB" "$k" || notok "nft $k"
	want=ASYMMETRIC
	[ "$k" = symmetric ] && want=SYMMETRIC
	for h in a a2 b; do
		case $h in a) ns=$LAB_A ;; a2) ns=$LAB_A2 ;; b) ns=$LAB_B ;; esac
		probe_in "$ns" nat-type "$LAB_SERVER" >"$T/nat-$k-$h.log" 2>&1
		check "$k NAT: type test from LAN host $h says $want" \
			has "$T/nat-$k-$h.log" "nat_type=$want\$"
	done

	# hosts in both LANs; viewers from the other LAN and from the same LAN
	ida=10000${n}001 idb=10000${n}002
	probe_bg "$LAB_A" "$T/host-$k-a.log" register "$LAB_SERVER" "$ida" 5 1
	pa=$LAB_LAST_PID
	probe_bg "$LAB_B" "$T/host-$k-b.log" register "$LAB_SERVER" "$idb" 5 1
	pb=$LAB_LAST_PID
	sleep 1.5
	probe_bg "$LAB_B" "$T/view-$k-ba.log" punch "$LAB_SERVER" "$ida" "$LAB_KEY" 3000
	v1=$LAB_LAST_PID
	probe_bg "$LAB_A2" "$T/view-$k-ab.log" punch "$LAB_SERVER" "$idb" "$LAB_KEY" 3000
	v2=$LAB_LAST_PID
	probe_bg "$LAB_A2" "$T/view-$k-aa.log" punch "$LAB_SERVER" "$ida" "$LAB_KEY" 3000
	v3=$LAB_LAST_PID
	wait "$pa" "$pb" "$v1" "$v2" "$v3"

	check "$k NAT: host in LAN A registers (RegisterPk OK)" \
		has "$T/host-$k-a.log" "register_pk_response result=0"
	check "$k NAT: host in LAN B registers (RegisterPk OK)" \
		has "$T/host-$k-b.log" "register_pk_response result=0"
	ipa=$(sqlite3 "$db" "select json_extract(info,'\$.ip') from peer where id='$ida'" 2>&1)
	ipb=$(sqlite3 "$db" "select json_extract(info,'\$.ip') from peer where id='$idb'" 2>&1)
	check "$k NAT: registered addresses are the routers' WAN addresses ($ipa, $ipb)" \
		test "$ipa,$ipb" = "$LAB_WAN_A,$LAB_WAN_B"
	check "$k NAT: PunchHole from LAN B reaches the host in LAN A over UDP" \
		has "$T/host-$k-a.log" "^punch_hole peer=$LAB_WAN_B:"
	check "$k NAT: viewer in LAN B gets PunchHoleResponse with A's WAN address, signed key" \
		eval 'has "$T/view-$k-ba.log" "^punch_hole_response host=$LAB_WAN_A:[0-9]+ nat_type=1 is_local=0" &&
			has "$T/view-$k-ba.log" "^signed_pk=ok id=$ida pk_len=32"'
	check "$k NAT: PunchHole from LAN A reaches the host in LAN B; viewer answered" \
		eval 'has "$T/host-$k-b.log" "^punch_hole peer=$LAB_WAN_A:" &&
			has "$T/view-$k-ab.log" "^punch_hole_response host=$LAB_WAN_B:"'
	check "$k NAT: viewer in the host's LAN gets its LAN address (FetchLocalAddr)" \
		eval 'has "$T/host-$k-a.log" "^fetch_local_addr peer=$LAB_WAN_A:.* local_addr=$LAB_IP_A:" &&
			has "$T/view-$k-aa.log" "^punch_hole_response host=$LAB_IP_A:[0-9]+ nat_type=-1 is_local=1"'
done

# ---- relay between two symmetric NATs -----------------------------------
lab_nat "$LAB_RA" symmetric && lab_nat "$LAB_RB" symmetric
uuid=lab-$$-relay
# the server logs a relay uuid (a bearer secret) only as its BLAKE2b-64
uuid_hash=$(printf %s "$uuid" | b2sum -l 64 | cut -d' ' -f1)
probe_bg "$LAB_A" "$T/relay-a.log" relay-pair "$LAB_SERVER:21117" "$uuid" "$LAB_KEY"
ra=$LAB_LAST_PID
probe_bg "$LAB_B" "$T/relay-b.log" relay-pair "$LAB_SERVER:21117" "$uuid" "$LAB_KEY"
rb=$LAB_LAST_PID
wait "$ra" "$rb"
check "relay: peers behind two symmetric NATs move 1 MiB each way" \
	eval 'has "$T/relay-a.log" "sent=1048576 received=1048576 corrupt=0" &&
		has "$T/relay-b.log" "sent=1048576 received=1048576 corrupt=0" &&
		has "$T/server.log" "relay: paired ($LAB_WAN_A|$LAB_WAN_B):[0-9]+ <-> ($LAB_WAN_A|$LAB_WAN_B):[0-9]+ \\(uuid hash $uuid_hash\\)"'

# ---- TCP hole punching: the matrix -------------------------------------------
# Both sides talk to the server (TestNatRequest tells each its mapped
# port), learn the other's mapped address, then connect() to it from the
# same local port at the same time (the server connection stays open).
# simopen KIND_A KIND_B [MODE_A MODE_B] -> 0 when the connection came up
# on both sides (modes: see hd-natprobe simopen)
simopen() {
	local ka=$1 kb=$2 ma=${3:-connect} mb=${4:-connect} i pa pb d
	d=$T/so-$ka-$kb-$ma-$mb
	rm -rf "$d" && mkdir -p "$d"
	lab_nat "$LAB_RA" "$ka" && lab_nat "$LAB_RB" "$kb" || return 1
	probe_bg "$LAB_A" "$d/a.log" simopen "$LAB_SERVER" "$d/a.port" "$d/a.peer" 4 "$ma"
	pa=$LAB_LAST_PID
	probe_bg "$LAB_B" "$d/b.log" simopen "$LAB_SERVER" "$d/b.port" "$d/b.peer" 4 "$mb"
	pb=$LAB_LAST_PID
	for ((i = 0; i < 100; i++)); do
		[ -s "$d/a.port" ] && [ -s "$d/b.port" ] && break
		sleep 0.05
	done
	if [ -s "$d/a.port" ] && [ -s "$d/b.port" ]; then
		echo "$LAB_WAN_B:$(cat "$d/b.port")" >"$d/a.peer.tmp"
		echo "$LAB_WAN_A:$(cat "$d/a.port")" >"$d/b.peer.tmp"
		mv "$d/a.peer.tmp" "$d/a.peer"
		mv "$d/b.peer.tmp" "$d/b.peer"
	fi
	wait "$pa" "$pb"
	grep -q "result=ok" "$d/a.log" && grep -q "result=ok" "$d/b.log"
}
declare -A matrix
# run_matrix MODE TITLE: every pair of kinds, printed as "# " lines
run_matrix() {
	local mode=$1 ka kb
	for ka in "${kinds[@]}"; do
		for kb in "${kinds[@]}"; do
			if simopen "$ka" "$kb" "$mode" "$mode"; then
				matrix[$mode,$ka,$kb]=direct
			else
				matrix[$mode,$ka,$kb]=fail
			fi
		done
	done
	echo "# TCP hole punching between LAN A and LAN B, $2:"
	printf '# %-12s' 'A \ B'
	printf ' %-10s' "${kinds[@]}"
	echo
	for ka in "${kinds[@]}"; do
		printf '# %-12s' "$ka"
		for kb in "${kinds[@]}"; do printf ' %-10s' "${matrix[$mode,$ka,$kb]}"; done
		echo
	done
}
run_matrix connect "same-port simultaneous connect() only"
# DESIGN.md: same-socket simultaneous connect() works through masquerade
# (endpoint-independent mapping, port-restricted filtering).  With a full
# cone on a side, a SYN that arrives before the peer's own SYN left is
# forwarded to a port with no listener and reset, which can repeat in
# lock step: so cone pairs are recorded here, asserted with "both" below.
check "simultaneous connect restricted <-> restricted connects directly" \
	test "${matrix[connect,restricted,restricted]}" = direct
# Symmetric NATs on both sides map the connection to the peer to ports
# neither side could learn: only the relay joins them.
check "simultaneous connect symmetric <-> symmetric fails (relay needed)" \
	test "${matrix[connect,symmetric,symmetric]}" = fail
run_matrix both "simultaneous connect() plus a listener on the same port"
for ka in cone restricted; do
	for kb in cone restricted; do
		check "connect+listen $ka <-> $kb connects directly" \
			test "${matrix[both,$ka,$kb]}" = direct
	done
done
check "connect+listen symmetric <-> symmetric fails (relay needed)" \
	test "${matrix[both,symmetric,symmetric]}" = fail

# The reference host's listen-after-SYN (B fires a SYN from the port, then
# listens on it; A connects): DESIGN.md says strict conntrack lets the
# host's SYN-ACK leave un-NATed unless nf_conntrack_tcp_be_liberal=1.
for lib in 0 1; do
	lab_liberal "$LAB_RA" $lib && lab_liberal "$LAB_RB" $lib
	if simopen restricted restricted late listen; then r=direct; else r=fail; fi
	echo "# listen-after-SYN restricted <-> restricted, tcp_be_liberal=$lib: $r"
	want=fail
	[ $lib = 1 ] && want=direct
	check "listen-after-SYN through strict conntrack (be_liberal=$lib): $want" \
		test "$r" = "$want"
done
lab_liberal "$LAB_RA" 0 && lab_liberal "$LAB_RB" 0

# ---- keepalive: short UDP conntrack timeout in the router ------------------
lab_nat "$LAB_RA" restricted && lab_nat "$LAB_RB" restricted
if lab_udp_timeout "$LAB_RA" 5; then
	# hd-a beats every 2 s; hd-a2 registers once and stays quiet (its next
	# heartbeat would come after 60 s).  The server still counts both as
	# online when the viewer asks, 11 s later (> 2 x the timeout).
	probe_bg "$LAB_A" "$T/ka-beat.log" register "$LAB_SERVER" 100009001 14 2
	k1=$LAB_LAST_PID
	probe_bg "$LAB_A2" "$T/ka-quiet.log" register "$LAB_SERVER" 100009002 14 60
	k2=$LAB_LAST_PID
	sleep 11
	probe_in "$LAB_B" punch "$LAB_SERVER" 100009001 "$LAB_KEY" 2500 >"$T/ka-v1.log" 2>&1 &
	k3=$!
	probe_in "$LAB_B" punch "$LAB_SERVER" 100009002 "$LAB_KEY" 2500 >"$T/ka-v2.log" 2>&1
	wait "$k1" "$k2" "$k3"
	check "keepalive: heartbeats every 2 s keep a 5 s UDP mapping open (PunchHole arrives after 11 s)" \
		eval 'has "$T/ka-beat.log" "^punch_hole peer=$LAB_WAN_B:" &&
			has "$T/ka-v1.log" "^punch_hole_response host=$LAB_WAN_A:"'
	check "keepalive: without heartbeats the mapping expires (PunchHole lost)" \
		eval 'has "$T/ka-quiet.log" "register_pk_response result=0" &&
			! grep -q "^punch_hole" "$T/ka-quiet.log"'
	lab_udp_timeout "$LAB_RA" 30
else
	echo "ok - nat: keepalive # skip nf_conntrack_udp_timeout not settable in a namespace"
fi

# ---- hairpin ------------------------------------------------------------------
lab_nat "$LAB_RA" restricted
probe_bg "$LAB_A" "$T/hp-l1.log" listen 40000 4
h1=$LAB_LAST_PID
sleep 0.3
probe_in "$LAB_A2" connect "$LAB_WAN_A:40000" >"$T/hp-c1.log" 2>&1
lab_hairpin "$LAB_RA"
probe_in "$LAB_A2" connect "$LAB_WAN_A:40000" >"$T/hp-c2.log" 2>&1
wait "$h1"
check "hairpin: LAN A cannot reach its own WAN address without the DNAT+MASQUERADE pair" \
	has "$T/hp-c1.log" "connected=0"
check "hairpin: with the pair, LAN A reaches a LAN A host through 203.0.113.2" \
	eval 'has "$T/hp-c2.log" "connected=1" && has "$T/hp-l1.log" "accepted from=10.1.0.1:"'

# ---- netem ---------------------------------------------------------------------
lab_netem "$LAB_RA" wan delay 30ms loss 1%
case $? in
0)
	probe_in "$LAB_A" nat-type "$LAB_SERVER" >"$T/netem.log" 2>&1
	check "netem: the NAT type test works over 30 ms delay and 1% loss" \
		has "$T/netem.log" "nat_type=ASYMMETRIC"
	;;
2) echo "ok - nat: netem delay/loss # skip the kernel has no sch_netem" ;;
*) notok "netem: tc qdisc netem" ;;
esac

# ---- cleanup ----------------------------------------------------------------------
pfx=$LAB_PFX
lab_down
left=$(ip netns list | grep -c "^$pfx-")
check "lab removed: no namespaces left ($left)" test "$left" = 0
[ "$fails" -eq 0 ]
