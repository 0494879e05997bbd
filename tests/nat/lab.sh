# shellcheck shell=bash
# NAT lab: network namespaces that model two homes behind NAT routers and a
# server on "the internet", for tests/nat/test_*.sh.  Source it, then:
#
#   lab_check || skip         root, `ip netns` and nft usable? (why in $LAB_WHY)
#   lab_up                    build the namespaces (below); installs a trap
#                             that runs lab_down on EXIT, INT and TERM
#   lab_nat ROUTER KIND       NAT on $LAB_RA / $LAB_RB: cone, restricted,
#                             symmetric (replaces the previous kind)
#   lab_ipv6                  add IPv6 (below) to the lab; off until called
#   lab_hairpin ROUTER [IP]   let the LAN reach the router's WAN address:
#                             DNAT to IP (default the first LAN host) +
#                             MASQUERADE of LAN->LAN
#   lab_liberal ROUTER 0|1    nf_conntrack_tcp_be_liberal in that router
#   lab_udp_timeout ROUTER S  UDP conntrack timeouts (plain and stream)
#   lab_netem NS DEV ARGS     tc netem on a device ("delay 30ms loss 1%");
#                             returns 2 when the kernel has no sch_netem
#   lab_loss ROUTER PCT       random loss on what a router forwards (nft)
#   lab_server_start [ARGS]   homedesk-server in $LAB_INET at $LAB_SERVER,
#                             temp data dir; sets LAB_KEY (its public key)
#   lab_exec NS CMD...        run a command in a namespace
#   lab_bg NS LOG CMD...      start CMD in NS in the background, output to
#                             LOG; its pid goes to $LAB_LAST_PID and is
#                             killed by lab_down
#   lab_host_start NS NAME    homedesk-host (fake capture) in NS; sets
#                             LAB_HOST_ID once it printed "id: N"
#   lab_viewer_run NS NAME HOST ID FRAMES
#                             homedesk-viewer --headless; prints its stats
#   lab_down                  kill what lab_bg started, delete everything
#
# Topology (names get a per-run prefix, hd<pid>-, so parallel runs cannot
# collide; interface names live inside the namespaces, so they are short
# and fixed):
#
#   $LAB_INET  bridge br0 203.0.113.10/24 (the server; 203.0.113.0/24 is
#              the internet, TEST-NET-3, never routed anywhere real)
#   $LAB_RA    wan 203.0.113.2/24, lan (bridge) 10.1.0.1/24, forwarding on
#   $LAB_RB    wan 203.0.113.3/24, lan (bridge) 10.2.0.1/24, forwarding on
#   $LAB_A     eth0 10.1.0.10/24 via 10.1.0.1       (LAN A)
#   $LAB_A2    eth0 10.1.0.11/24 via 10.1.0.1       (LAN A, hairpin/LAN cases)
#   $LAB_B     eth0 10.2.0.10/24 via 10.2.0.1       (LAN B)
#
# IPv6 (lab_ipv6; 2001:db8::/32 is the documentation prefix): the internet
# 2001:db8::/64 (server ::10, rA wan ::2, rB wan ::3), LAN A 2001:db8:1::/64
# (router ::1, a ::10, a2 ::11), LAN B 2001:db8:2::/64 (router ::1, b
# ::10).  Routers forward IPv6 without NAT, through the home router's
# stateful firewall: replies (conntrack established/related) and what the
# LAN sends go through, new inbound connections are dropped.
#
# Nothing is connected to the root namespace: traffic never leaves the lab.
# NAT kinds (DESIGN.md section 6, facts seen on this kind of machine):
#   restricted  masquerade: endpoint-independent mapping (ports preserved),
#               port-restricted filtering (only replies come in)
#   cone        masquerade plus a PREROUTING DNAT of every mapped port
#               (1024-65535) to the first LAN host: full cone
#   symmetric   masquerade fully-random: a new port per destination
# Every router also filters like a home router: inbound traffic that is not
# a reply (conntrack) or DNATed is dropped, on input and forward.

LAB_PFX=${LAB_PFX:-hd$$}
LAB_INET=$LAB_PFX-inet
LAB_RA=$LAB_PFX-rA
LAB_RB=$LAB_PFX-rB
LAB_A=$LAB_PFX-a
LAB_A2=$LAB_PFX-a2
LAB_B=$LAB_PFX-b
LAB_SERVER=203.0.113.10
LAB_WAN_A=203.0.113.2
LAB_WAN_B=203.0.113.3
LAB_IP_A=10.1.0.10
LAB_IP_A2=10.1.0.11
LAB_IP_B=10.2.0.10
LAB_NSS=()     # namespaces created, for lab_down
LAB_PIDS=()    # background processes started by lab_bg
LAB_TMP=       # scratch directory (logs, server data)
LAB_KEY=       # the server's public key (lab_server_start)
LAB_LAST_PID=
LAB_WHY=

# Can this machine run the lab?  0 when yes; else 1 and $LAB_WHY says why.
lab_check() {
	local ns=$LAB_PFX-chk
	if [ "$(id -u)" != 0 ]; then
		LAB_WHY="not root"
		return 1
	fi
	for t in ip nft; do
		if ! command -v $t >/dev/null 2>&1; then
			LAB_WHY="$t not installed"
			return 1
		fi
	done
	if ! ip netns add "$ns" 2>/dev/null; then
		LAB_WHY="ip netns not usable here"
		return 1
	fi
	if ! ip netns exec "$ns" nft add table ip hdchk 2>/dev/null; then
		ip netns del "$ns" 2>/dev/null
		LAB_WHY="nftables not usable in a namespace"
		return 1
	fi
	ip netns del "$ns"
	return 0
}

lab_exec() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

lab_sysctl() {
	ip netns exec "$1" sysctl -qw "$2" >/dev/null
}

# veth pair: lab_veth NS1 NAME1 NS2 NAME2 (created straight inside the
# namespaces, so the root namespace never sees the names)
lab_veth() {
	ip link add name "$2" netns "$1" type veth peer name "$4" netns "$3" &&
		ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

lab_ns() {
	ip netns add "$1" || return 1
	LAB_NSS+=("$1")
	ip -n "$1" link set lo up
	# IPv4 only: no IPv6 DAD noise or link-local surprises
	lab_sysctl "$1" net.ipv6.conf.all.disable_ipv6=1
	lab_sysctl "$1" net.ipv6.conf.default.disable_ipv6=1
}

lab_router() { # NS WANIP LANIP
	local r=$1
	lab_sysctl "$r" net.ipv4.ip_forward=1 || return 1
	ip -n "$r" addr add "$2/24" dev wan || return 1
	ip -n "$r" link add lan type bridge || return 1
	ip -n "$r" link set lan up
	ip -n "$r" addr add "$3/24" dev lan || return 1
	# load conntrack in this namespace so its sysctls exist
	lab_nat "$r" restricted
}

lab_host() { # NS ROUTER PORTNAME IP GW
	lab_ns "$1" || return 1
	lab_veth "$1" eth0 "$2" "$3" || return 1
	ip -n "$2" link set "$3" master lan || return 1
	ip -n "$1" addr add "$4/24" dev eth0 || return 1
	ip -n "$1" route add default via "$5"
}

# Build the lab.  Returns 0, or 1 (after tearing down what was built).
lab_up() {
	trap 'lab_down' EXIT
	trap 'lab_down; trap - INT; kill -INT $$' INT
	trap 'lab_down; trap - TERM; kill -TERM $$' TERM
	LAB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/hd-natlab.XXXXXX") || return 1
	if ! {
		lab_ns "$LAB_INET" &&
			ip -n "$LAB_INET" link add br0 type bridge &&
			ip -n "$LAB_INET" link set br0 up &&
			ip -n "$LAB_INET" addr add "$LAB_SERVER/24" dev br0 &&
			lab_ns "$LAB_RA" && lab_ns "$LAB_RB" &&
			lab_veth "$LAB_RA" wan "$LAB_INET" rA &&
			lab_veth "$LAB_RB" wan "$LAB_INET" rB &&
			ip -n "$LAB_INET" link set rA master br0 &&
			ip -n "$LAB_INET" link set rB master br0 &&
			lab_router "$LAB_RA" "$LAB_WAN_A" 10.1.0.1 &&
			lab_router "$LAB_RB" "$LAB_WAN_B" 10.2.0.1 &&
			lab_host "$LAB_A" "$LAB_RA" a1 "$LAB_IP_A" 10.1.0.1 &&
			lab_host "$LAB_A2" "$LAB_RA" a2 "$LAB_IP_A2" 10.1.0.1 &&
			lab_host "$LAB_B" "$LAB_RB" b1 "$LAB_IP_B" 10.2.0.1
	}; then
		echo "lab: building the namespaces failed" >&2
		lab_down
		return 1
	fi
	return 0
}

# Turn IPv6 on in every namespace of the lab (no DAD, no router
# advertisements: static addresses and routes), see the top of this file.
lab_ipv6() {
	local ns i busy
	# DAD off everywhere first: an address still tentative (link-local
	# ones too) delays neighbour discovery, and so the first connections
	for ns in "${LAB_NSS[@]}"; do
		ip netns exec "$ns" sh -c 'cd /proc/sys/net/ipv6/conf &&
			for c in *; do echo 0 >$c/accept_dad; echo 0 >$c/accept_ra; done &&
			for c in *; do echo 0 >$c/disable_ipv6; done' || return 1
	done
	for ((i = 0; i < 30; i++)); do
		busy=
		for ns in "${LAB_NSS[@]}"; do
			[ -n "$(ip -n "$ns" -6 addr show tentative)" ] && busy=1
		done
		[ -z "$busy" ] && break
		sleep 0.1
	done
	ip -n "$LAB_INET" addr add 2001:db8::10/64 dev br0 nodad &&
		ip -n "$LAB_INET" -6 route add 2001:db8:1::/64 via 2001:db8::2 &&
		ip -n "$LAB_INET" -6 route add 2001:db8:2::/64 via 2001:db8::3 &&
		lab_router6 "$LAB_RA" 2001:db8::2 2001:db8:1::1 2001:db8:2::/64 2001:db8::3 &&
		lab_router6 "$LAB_RB" 2001:db8::3 2001:db8:2::1 2001:db8:1::/64 2001:db8::2 &&
		lab_host6 "$LAB_A" 2001:db8:1::10 2001:db8:1::1 &&
		lab_host6 "$LAB_A2" 2001:db8:1::11 2001:db8:1::1 &&
		lab_host6 "$LAB_B" 2001:db8:2::10 2001:db8:2::1
}

lab_router6() { # NS WANIP LANIP OTHER_LAN OTHER_WAN
	local r=$1
	lab_sysctl "$r" net.ipv6.conf.all.forwarding=1 &&
		ip -n "$r" addr add "$2/64" dev wan nodad &&
		ip -n "$r" addr add "$3/64" dev lan nodad &&
		ip -n "$r" -6 route add "$4" via "$5" || return 1
	ip netns exec "$r" nft -f - <<EOF
table ip6 hdfw6
delete table ip6 hdfw6
table ip6 hdfw6 {
	chain forward_filter {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" accept
	}
}
EOF
}

lab_host6() { # NS IP GW
	ip -n "$1" addr add "$2/64" dev eth0 nodad &&
		ip -n "$1" -6 route add default via "$3"
}

# The router's WAN address and first LAN host, by namespace.
lab_wan_of() { [ "$1" = "$LAB_RA" ] && echo "$LAB_WAN_A" || echo "$LAB_WAN_B"; }
lab_host_of() { [ "$1" = "$LAB_RA" ] && echo "$LAB_IP_A" || echo "$LAB_IP_B"; }
lab_lan_of() { [ "$1" = "$LAB_RA" ] && echo 10.1.0.0/24 || echo 10.2.0.0/24; }

# lab_nat ROUTER cone|restricted|symmetric
lab_nat() {
	local r=$1 kind=$2 masq dnat=
	case $kind in
	restricted) masq=masquerade ;;
	symmetric) masq="masquerade fully-random" ;;
	cone)
		masq=masquerade
		dnat="iifname \"wan\" meta l4proto { tcp, udp } th dport 1024-65535 dnat to $(lab_host_of "$r")"
		;;
	*)
		echo "lab_nat: unknown kind $kind" >&2
		return 2
		;;
	esac
	ip netns exec "$r" nft -f - <<EOF
table ip hdnat
delete table ip hdnat
table ip hdnat {
	chain prerouting_nat {
		type nat hook prerouting priority dstnat; policy accept;
		$dnat
	}
	chain postrouting_nat {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan" $masq
	}
	chain forward_filter {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		ct status dnat accept
		iifname "lan" accept
	}
	chain input_filter {
		type filter hook input priority filter; policy drop;
		iifname "lo" accept
		ct state established,related accept
		iifname "lan" accept
	}
}
EOF
}

# lab_hairpin ROUTER [LANHOST]: added to the current kind (lab_nat resets it)
lab_hairpin() {
	local r=$1 to=${2:-$(lab_host_of "$1")} wan lan
	wan=$(lab_wan_of "$r")
	lan=$(lab_lan_of "$r")
	ip netns exec "$r" nft -f - <<EOF
add rule ip hdnat prerouting_nat iifname "lan" ip daddr $wan meta l4proto { tcp, udp } th dport 1024-65535 dnat to $to
add rule ip hdnat postrouting_nat oifname "lan" ip saddr $lan masquerade
EOF
}

lab_liberal() {
	lab_sysctl "$1" "net.netfilter.nf_conntrack_tcp_be_liberal=$2"
}

# UDP conntrack timeouts (seconds) inside ROUTER only.  Returns 1 when the
# kernel does not offer them per namespace.
lab_udp_timeout() {
	lab_sysctl "$1" "net.netfilter.nf_conntrack_udp_timeout=$2" &&
		lab_sysctl "$1" "net.netfilter.nf_conntrack_udp_timeout_stream=$2"
}

# lab_netem NS DEV "delay 30ms loss 1%": 0, 1 on a bad argument, 2 when
# the kernel lacks sch_netem (the caller skips).
lab_netem() {
	local ns=$1 dev=$2 out
	shift 2
	# shellcheck disable=SC2086
	if out=$(ip netns exec "$ns" tc qdisc replace dev "$dev" root netem $* 2>&1); then
		return 0
	fi
	case $out in
	*"unknown"* | *"No such file"* | *"not supported"*) return 2 ;;
	esac
	echo "lab_netem: $out" >&2
	return 1
}

# lab_loss ROUTER PCT: drop PCT % of the packets the router forwards, both
# ways: one in every 100/PCT, evenly spread (nftables numgen inc: works
# without sch_netem).  Not at random: a short session through a random 5 %
# sometimes lost nothing at all, and the test that loss happened failed
# (about once in a dozen runs).  PCT 0 removes the rule.  lab_nat keeps it
# (a table of its own).
# lab_loss_dropped ROUTER prints how many packets the rule dropped.
lab_loss() {
	local r=$1 pct=$2
	ip netns exec "$r" nft -f - <<EOF
table inet hdloss
delete table inet hdloss
table inet hdloss {
	chain forward {
		type filter hook forward priority -10; policy accept;
		$([ "$pct" -gt 0 ] && echo "numgen inc mod $((100 / pct)) == $((100 / pct / 2)) counter drop")
	}
}
EOF
}

lab_loss_dropped() {
	ip netns exec "$1" nft list table inet hdloss 2>/dev/null |
		sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | head -n 1
}

# lab_bg NS LOG CMD...: background process inside NS.
lab_bg() {
	local ns=$1 log=$2
	shift 2
	ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
	LAB_LAST_PID=$!
	LAB_PIDS+=("$LAB_LAST_PID")
}

# Start homedesk-server inside $LAB_INET (binary from $HD_BUILD_DIR,
# default build).  Extra arguments are passed on.  Returns 0 once the
# rendezvous, NAT-test and relay ports answer, else 1.
lab_server_start() {
	local bin=${HD_BUILD_DIR:-build}/homedesk-server i
	LAB_SERVER_DIR=$LAB_TMP/server
	mkdir -p "$LAB_SERVER_DIR"
	[ -x "$bin" ] || {
		echo "lab: $bin not built" >&2
		return 1
	}
	lab_bg "$LAB_INET" "$LAB_TMP/server.log" "$bin" --data-dir "$LAB_SERVER_DIR" \
		-r "$LAB_SERVER" "$@"
	LAB_SERVER_PID=$LAB_LAST_PID
	for ((i = 0; i < 100; i++)); do
		if [ -s "$LAB_SERVER_DIR/id_ed25519.pub" ] &&
			ip netns exec "$LAB_INET" bash -c \
				"exec 3<>/dev/tcp/$LAB_SERVER/21116 && exec 4<>/dev/tcp/$LAB_SERVER/21115 && exec 5<>/dev/tcp/$LAB_SERVER/21117" 2>/dev/null; then
			LAB_KEY=$(tr -d '\n\r' <"$LAB_SERVER_DIR/id_ed25519.pub")
			return 0
		fi
		kill -0 "$LAB_SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "lab: homedesk-server did not come up; log:" >&2
	tail -n 20 "$LAB_TMP/server.log" >&2
	return 1
}

# ---- host and viewer (the scenarios of tests/nat/test_connect.sh) ---------

# lab_host_start NS NAME [ARGS]: homedesk-host in NS with the fake capture
# and input backends, its own config dir and password file under $LAB_TMP,
# registered with the lab server.  Waits up to 10 s for its "id: N" line;
# sets LAB_HOST_ID and LAB_HOST_PID.  Returns 0 or 1.
lab_host_start() {
	local ns=$1 name=$2 bin=${HD_BUILD_DIR:-build}/homedesk-host i
	shift 2
	mkdir -p "$LAB_TMP/$name"
	echo "lab-password-$name" >"$LAB_TMP/$name/password"
	lab_bg "$ns" "$LAB_TMP/$name/host.log" "$bin" --server "$LAB_SERVER" \
		--key "$LAB_KEY" --password-file "$LAB_TMP/$name/password" \
		--no-one-time-password --capture fake --input fake \
		--config-dir "$LAB_TMP/$name/config" "$@"
	LAB_HOST_PID=$LAB_LAST_PID
	LAB_HOST_ID=
	for ((i = 0; i < 100; i++)); do
		LAB_HOST_ID=$(sed -n 's/^id: \([0-9]*\)$/\1/p' "$LAB_TMP/$name/host.log" 2>/dev/null | head -n 1)
		[ -n "$LAB_HOST_ID" ] && return 0
		kill -0 "$LAB_HOST_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "lab: homedesk-host $name printed no id; log:" >&2
	tail -n 20 "$LAB_TMP/$name/host.log" >&2
	return 1
}

# lab_viewer_run NS NAME HOSTNAME ID FRAMES [ARGS]: homedesk-viewer
# --headless in NS, bounded by 25 s, with the password of host HOSTNAME.
# Prints its "stats: ..." line (empty when none); returns its status.
lab_viewer_run() {
	local ns=$1 name=$2 host=$3 id=$4 frames=$5 rc
	local bin=${HD_BUILD_DIR:-build}/homedesk-viewer
	shift 5
	mkdir -p "$LAB_TMP/$name/out"
	ip netns exec "$ns" timeout -k 2 25 "$bin" --server "$LAB_SERVER" \
		--key "$LAB_KEY" --password-file "$LAB_TMP/$host/password" \
		--config-dir "$LAB_TMP/$name/config" --headless --frames "$frames" \
		--out "$LAB_TMP/$name/out" "$@" "$id" >"$LAB_TMP/$name/viewer.log" 2>&1
	rc=$?
	grep '^stats: ' "$LAB_TMP/$name/viewer.log" | tail -n 1
	return $rc
}

# Tear everything down; safe to call twice and from traps.
lab_down() {
	local p ns i
	for p in "${LAB_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${LAB_PIDS[@]}"; do
		for ((i = 0; i < 20; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	LAB_PIDS=()
	for ns in "${LAB_NSS[@]}"; do
		# anything still running inside one of our namespaces was started
		# by this run (lab_bg or lab_exec)
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	LAB_NSS=()
	if [ -n "$LAB_TMP" ] && [ -z "${LAB_KEEP:-}" ]; then
		rm -rf "$LAB_TMP"
	fi
	LAB_TMP=
}
