#!/bin/bash
# NAT lab benchmark (make bench, issue 5): for every pair of NAT kinds
# (host in LAN A, viewer in LAN B) and for a viewer in the host's LAN,
# run the headless viewer HD_BENCH_NAT_RUNS times (default 20) against
# one host and print, per pair, how many runs took each path and the
# viewer's connect time (ID to logged in) p50 / p90 / max.  The expected
# path is shown beside it: p2p (direct TCP or UDP, whichever won the race)
# whenever one side is not symmetric, relay for symmetric <-> symmetric.
# Skips when not root or without network namespaces.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/nat/lab.sh
. "$here/lab.sh"

build=${HD_BUILD_DIR:-build}
runs=${HD_BENCH_NAT_RUNS:-20}
kinds=(cone restricted symmetric)

if ! lab_check; then
	echo "bench_matrix: skipped ($LAB_WHY)"
	exit 0
fi
for p in homedesk-server homedesk-host homedesk-viewer; do
	if [ ! -x "$build/$p" ]; then
		echo "bench_matrix: skipped ($p not built)"
		exit 0
	fi
done
lab_up && lab_server_start || {
	echo "bench_matrix: lab failed" >&2
	exit 1
}

want_of() {
	case $1-$2 in
	symmetric-symmetric) echo relay ;;
	lan) echo lan ;;
	*) echo p2p ;;
	esac
}

# pct P VALUES...: the P-th percentile (nearest rank) of sorted values
pct() {
	local p=$1 n i
	shift
	n=$#
	[ "$n" -eq 0 ] && {
		echo -
		return
	}
	i=$(((p * n + 99) / 100))
	[ "$i" -lt 1 ] && i=1
	echo "${!i}"
}

printf '%-24s %-7s %7s %7s %7s %7s %7s   %s\n' "host-viewer" want tcp udp lan relay fail \
	"connect_ms p50/p90/max"
status=0
pair() { # NAME KIND_A KIND_B VIEWER_NS
	local name=$1 ka=$2 kb=$3 vns=$4 i stats path ms want
	local -A count=([direct]=0 [udp]=0 [lan]=0 [relay]=0 [fail]=0)
	local times=()
	lab_nat "$LAB_RA" "$ka" && lab_nat "$LAB_RB" "$kb" || return 1
	lab_host_start "$LAB_A" "host-$name" || return 1
	sleep 1
	for ((i = 0; i < runs; i++)); do
		stats=$(lab_viewer_run "$vns" "viewer-$name-$i" "host-$name" "$LAB_HOST_ID" 1)
		path=$(sed -n 's/.* path=\([a-z]*\).*/\1/p' <<<"$stats")
		ms=$(sed -n 's/.* connect_ms=\([0-9]*\).*/\1/p' <<<"$stats")
		# at least the one frame asked for (a second may be decoded before
		# the viewer stops)
		if [[ $stats =~ ^stats:\ frames=[1-9] ]] && [ -n "$path" ]; then
			count[$path]=$((${count[$path]:-0} + 1))
			times+=("$ms")
		else
			count[fail]=$((count[fail] + 1))
		fi
	done
	kill "$LAB_HOST_PID" 2>/dev/null
	wait "$LAB_HOST_PID" 2>/dev/null
	want=$([ "$name" = same-lan ] && echo lan || want_of "$ka" "$kb")
	mapfile -t times < <(printf '%s\n' "${times[@]}" | sort -n)
	printf '%-24s %-7s %4d/%-2d %4d/%-2d %4d/%-2d %4d/%-2d %4d/%-2d   %s/%s/%s\n' "$name" "$want" \
		"${count[direct]}" "$runs" "${count[udp]}" "$runs" "${count[lan]}" "$runs" "${count[relay]}" "$runs" \
		"${count[fail]}" "$runs" "$(pct 50 "${times[@]}")" "$(pct 90 "${times[@]}")" \
		"$(pct 100 "${times[@]}")"
	if [ "$want" = p2p ]; then
		[ $((count[direct] + count[udp])) -eq "$runs" ] || status=1
	else
		[ "${count[$want]}" -eq "$runs" ] || status=1
	fi
}

pair same-lan restricted restricted "$LAB_A2"
for ka in "${kinds[@]}"; do
	for kb in "${kinds[@]}"; do
		pair "$ka-$kb" "$ka" "$kb" "$LAB_B"
	done
done
lab_down
echo "bench_matrix: $([ $status = 0 ] && echo "every pair took its expected path in every run" || echo "some runs missed the expected path")"
exit 0
