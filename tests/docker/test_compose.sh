#!/bin/bash
# Docker for real: our image in the usual hbbs + hbbr docker-compose.
#
# Starts its own dockerd (Debian's docker.io: overlay2, --iptables=false
# --ip-forward=false --bridge=none, so the host's firewall and forwarding
# are left alone; data root in $O/docker/data, kept as the cache), makes
# the base image debian:bookworm-slim with debootstrap from this machine's
# Debian mirror (tools/docker-base.sh, cached in $O/docker/base), builds
# our image from the repo (packaging/docker/Dockerfile), and runs
# tests/docker/seed-compose.yml with only the image swapped and the ports
# published on 127.0.0.1.  Then: `homedesk-server check` passes every
# probe, the relay included; our host and viewer connect by ID directly
# and through the relay; the key and the IDs survive `restart` and
# `down` + `up`; an hbbs killed inside its container comes back
# (restart: unless-stopped).  At the end the containers, the network and
# the dockerd it started are gone.  HD_KEEP_RUN=DIR keeps a copy of the run's
# files (logs of the host, viewers, dockerd) in DIR.
#
# Root only (skipped otherwise).  Run by `make test-docker` through
# tools/run-tests.sh (suite docker); a cold cache (debootstrap, apt inside
# the build) costs most of the time.
set -u
O=${O:-build}
src=$(pwd)
DOCKER=/usr/bin/docker
COMPOSE=/usr/bin/docker-compose
project=hdtest
image=homedesk/server:test
t_start=$(date +%s)

pass() { echo "ok - docker: $*"; }
fail() { echo "not ok - docker: $*"; }
say() { echo "# $*"; }
# Print a file's last lines as diagnostics.
show() { [ -f "$1" ] && tail -n "${2:-15}" "$1" | sed 's/^/#   /'; }
took() { say "$1 took $(($(date +%s) - $2)) s (load: $(cut -d' ' -f1-3 /proc/loadavg))"; }

if [ "$(id -u)" != 0 ]; then
	echo "ok - docker: compose with our image # skip needs root (dockerd)"
	exit 0
fi
for p in dockerd $DOCKER $COMPOSE debootstrap sqlite3; do
	if ! command -v "$p" >/dev/null; then
		fail "$p is not installed (make test-docker installs it: tools/deps.sh docker)"
		exit 1
	fi
done

bin=$(cd "$O" && pwd)
srv=$bin/homedesk-server
host=$bin/homedesk-host
viewer=$bin/homedesk-viewer
mkdir -p "$O/docker"
cache=$(cd "$O/docker" && pwd)
run=$(mktemp -d /tmp/hd-docker.XXXXXX)
dpid= hpid=
export DOCKER_HOST=unix://$run/docker.sock DOCKER_BUILDKIT=0
export COMPOSE_PROJECT_NAME=$project

cleanup() {
	if [ -n "$hpid" ] && kill -0 "$hpid" 2>/dev/null; then
		kill "$hpid"
		wait "$hpid" 2>/dev/null
	fi
	if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
		(cd "$run/compose" 2>/dev/null &&
			$COMPOSE down --remove-orphans >/dev/null 2>&1)
		stop_dockerd
	fi
	[ -n "${HD_KEEP_RUN:-}" ] && cp -r "$run" "$HD_KEEP_RUN" 2>/dev/null
	rm -rf "$run"
}

# Stop the dockerd we started and unmount what it leaves in its exec root
# (the nsfs of its network namespace); its exit status.
stop_dockerd() {
	local st
	kill "$dpid"
	wait "$dpid" 2>/dev/null
	st=$?
	dpid=
	grep " $run/" /proc/mounts | cut -d' ' -f2 | xargs -r umount
	return $st
}
trap cleanup EXIT

# wait_until SECONDS CMD...: run CMD until it succeeds, at most SECONDS.
wait_until() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.2
	done
}

# ---- dockerd ----
# A dockerd left by a run that was killed (same data root) is ours: stop it.
if [ -f "$cache/dockerd.pid" ]; then
	old=$(cat "$cache/dockerd.pid")
	if [ -n "$old" ] && grep -qs dockerd "/proc/$old/comm"; then
		say "stopping the dockerd a killed run left (pid $old)"
		kill "$old"
		wait_until 30 sh -c "! kill -0 $old 2>/dev/null"
	fi
fi
t=$(date +%s)
dockerd --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
	--storage-driver=overlay2 --data-root "$cache/data" \
	--exec-root "$run/x" --pidfile "$cache/dockerd.pid" \
	-H "$DOCKER_HOST" >"$run/dockerd.log" 2>&1 &
dpid=$!
if wait_until 120 $DOCKER version >/dev/null 2>&1 &&
	[ "$($DOCKER info --format '{{.Driver}}' 2>/dev/null)" = overlay2 ]; then
	pass "dockerd runs here (overlay2, no iptables, data root $cache/data)"
else
	fail "dockerd runs here (overlay2, no iptables)"
	show "$run/dockerd.log" 30
	exit 1
fi
took "dockerd start" "$t"

# ---- base image ----
t=$(date +%s)
if DOCKER=$DOCKER tools/docker-base.sh "$cache/base" >"$run/base.log" 2>&1 &&
	$DOCKER image inspect debian:bookworm-slim >/dev/null 2>&1; then
	pass "base image debian:bookworm-slim from debootstrap (cached in $cache/base)"
	show "$run/base.log" 3
else
	fail "base image debian:bookworm-slim from debootstrap"
	show "$run/base.log"
	exit 1
fi
took "base image" "$t"

# ---- our image ----
# The build stage is tagged too, so pruning old images keeps its apt layer.
t=$(date +%s)
if $DOCKER build --network host -f packaging/docker/Dockerfile \
	--target build -t homedesk/server-build:test . >"$run/build.log" 2>&1 &&
	$DOCKER build --network host -f packaging/docker/Dockerfile \
		-t $image . >>"$run/build.log" 2>&1; then
	# "Sending build context to Docker daemon  2.081MB": in kB
	ctx=$(tr '\r' '\n' <"$run/build.log" |
		sed -n 's/^Sending build context to Docker daemon *//p' | tail -n 1)
	kb=$(echo "$ctx" | awk '/kB$/ { print int($1) } /MB$/ { print int($1 * 1000) }
		/GB$/ { print int($1 * 1000000) } /[0-9]B$/ { print 0 }')
	say "build context: $ctx"
	if [ -n "$kb" ] && [ "$kb" -lt 8000 ]; then
		pass "image built from the repo (context $ctx: .dockerignore keeps build trees out)"
	else
		fail "image built from the repo: context '$ctx' (is .dockerignore missing?)"
	fi
else
	fail "image built from the repo"
	show "$run/build.log" 25
	exit 1
fi
$DOCKER image prune -f >/dev/null 2>&1
took "image build" "$t"

# ---- the seed's compose, only the image swapped ----
mkdir -p "$run/compose"
sed -e "s#image: rustdesk/rustdesk-server:latest#image: $image#" \
	-e 's#^\( *- \)\(211[0-9][0-9]:\)#\1127.0.0.1:\2#' \
	tests/docker/seed-compose.yml >"$run/compose/docker-compose.yml"
changed=$(diff tests/docker/seed-compose.yml "$run/compose/docker-compose.yml" |
	grep -c '^>')
cd "$run/compose" || exit 1
pkfile=$run/compose/apps/rustdesk/hbbs/id_ed25519.pub
pk=
check_ok() {
	[ -s "$pkfile" ] || return 1
	pk=$(cat "$pkfile")
	"$srv" check 127.0.0.1 --key "$pk" >"$run/check.out" 2>&1 &&
		[ "$(grep -c '^  \[ ok \]' "$run/check.out")" = 6 ]
}
t=$(date +%s)
if [ "$changed" = 8 ] && $COMPOSE up -d >"$run/up.log" 2>&1 &&
	wait_until 60 check_ok; then
	pass "the seed's compose runs our image (8 lines changed: 2 images, 6 ports on 127.0.0.1)"
	pass "homedesk-server check passes every probe, the relay included"
	show "$run/check.out" 8
else
	fail "the seed's compose runs our image ($changed lines changed)"
	fail "homedesk-server check passes every probe, the relay included"
	show "$run/up.log"
	show "$run/check.out"
	$COMPOSE logs --no-color 2>&1 | tail -n 30 | sed 's/^/#   /'
	exit 1
fi
took "compose up until check passes" "$t"
if [ ! -e apps/rustdesk/hbbr/id_ed25519 ] &&
	$DOCKER logs rustdesk-hbbr 2>&1 | grep -q 'key check: off'; then
	pass "hbbr made no key of its own and checks none (as RustDesk's hbbr)"
else
	fail "hbbr made no key of its own and checks none"
	$DOCKER logs rustdesk-hbbr 2>&1 | tail -n 10 | sed 's/^/#   /'
fi
say "hbbs says: $($DOCKER logs rustdesk-hbbs 2>&1 | grep -m1 'forward to')"

# ---- host and viewer by ID ----
pw=docker-$RANDOM$RANDOM
"$host" --server 127.0.0.1 --key "$pk" --password "$pw" \
	--no-one-time-password --capture fake --input none --no-audio \
	--no-clipboard --no-upnp --config-dir "$run/host" \
	>"$run/host.out" 2>"$run/host.log" &
hpid=$!
id=
wait_until 30 grep -q '^id: ' "$run/host.out" &&
	id=$(sed -n 's/^id: //p' "$run/host.out" | head -n 1)
wait_until 30 grep -q 'registered ID' "$run/host.log"
say "host ID $id"

# view NAME [OPTION...]: a headless viewer by ID; sets path (lan, direct,
# udp, relay) from its stats line, or empty.
path=
view() {
	local name=$1
	shift
	path=
	HOMEDESK_PASSWORD=$pw "$viewer" --server 127.0.0.1 --key "$pk" \
		--config-dir "$run/viewer" --headless --frames 3 --timeout 30 \
		--out "$run/out-$name" --no-audio --no-clipboard "$@" "$id" \
		>"$run/$name.out" 2>"$run/$name.err" </dev/null
	path=$(sed -n 's/^stats: frames=3 .* path=\([a-z]*\) .*/\1/p' \
		"$run/$name.out")
	[ -n "$path" ] || { show "$run/$name.err" 12 && show "$run/host.log" 8; }
	[ -n "$path" ]
}
direct_ok() { view "$1" && [ "$path" != relay ]; }

if [ -n "$id" ] && direct_ok direct; then
	pass "host and viewer connect by ID without the relay (path $path)"
else
	fail "host and viewer connect by ID without the relay (path '$path')"
fi
if ! "$viewer" --help 2>&1 | grep -q -- '--force-relay'; then
	echo "ok - docker: host and viewer connect by ID through the relay" \
		"# skip this viewer has no --force-relay/--relay HOST (issue 12 item 7)"
elif [ -n "$id" ] && view relay --force-relay && [ "$path" = relay ]; then
	pass "host and viewer connect by ID through the relay (hbbs hands out rustdesk-hbbr:21117)"
	grep -h 'relay' "$run/relay.err" "$run/host.log" | grep -m2 -i 'resolve' | sed 's/^/#   /'
else
	fail "host and viewer connect by ID through the relay (path '$path')"
fi

# ---- key and IDs survive ----
pk0=$pk
db=$run/compose/apps/rustdesk/hbbs/db_v2.sqlite3
# survives WHAT SINCE: same key, the ID still in the database, a viewer
# reaches the host by ID again (once the host's next heartbeat reached the
# new hbbs: a quick restart may go unnoticed by the host), and hbbs did not
# take it for a new ID.  SINCE is the time just before the restart, to the
# nanosecond: docker logs --since with whole seconds also showed the host's
# first registration when it fell in the same second as the restart (seen
# in CI: "registered new id" from before the restart failed the case).
survives() {
	local what=$1 since=$2 tries=0 why= n
	reach() { tries=$((tries + 1)) && direct_ok "after-$what-$tries"; }
	if ! wait_until 90 check_ok; then
		why="check does not pass 90 s after it"
	elif [ "$pk" != "$pk0" ]; then
		why="key $pk, was $pk0"
	elif n=$(sqlite3 "$db" "select count(*) from peer where id = '$id'" 2>&1)
		[ "$n" != 1 ]; then
		why="ID $id is in the database $n times"
	elif ! wait_until 90 reach; then
		why="no viewer reached ID $id in 90 s ($tries tries)"
	elif ! $DOCKER logs --since "$since" rustdesk-hbbs >"$run/since.log" 2>&1 ||
		! grep -q 'homedesk-server ' "$run/since.log"; then
		why="docker logs --since $since shows no start of hbbs"
	elif grep -q "registered new id $id" "$run/since.log"; then
		why="hbbs took $id for a new ID"
	fi
	if [ -z "$why" ]; then
		say "a viewer reached the host by ID on try $tries"
		pass "key and IDs survive $what"
	else
		fail "key and IDs survive $what: $why"
		show "$run/check.out"
		$DOCKER logs --since "$since" rustdesk-hbbs 2>&1 | tail -n 12 | sed 's/^/#   /'
	fi
}
now_ns() { date -u +%Y-%m-%dT%H:%M:%S.%NZ; }
t=$(date +%s)
since=$(now_ns)
$COMPOSE restart >"$run/restart.log" 2>&1
survives "docker-compose restart" "$since"
took "restart" "$t"
t=$(date +%s)
since=$(now_ns)
$COMPOSE down >"$run/down.log" 2>&1 && $COMPOSE up -d >>"$run/down.log" 2>&1
survives "docker-compose down + up" "$since"
took "down + up" "$t"

# ---- a killed hbbs comes back ----
t=$(date +%s)
count0=$($DOCKER inspect -f '{{.RestartCount}}' rustdesk-hbbs)
spid=$($DOCKER inspect -f '{{.State.Pid}}' rustdesk-hbbs)
back() {
	[ "$($DOCKER inspect -f '{{.RestartCount}} {{.State.Running}}' \
		rustdesk-hbbs)" = "$((count0 + 1)) true" ]
}
if [ -n "$spid" ] && [ "$spid" != 0 ] && kill -KILL "$spid" &&
	wait_until 60 back && wait_until 60 check_ok && [ "$pk" = "$pk0" ]; then
	pass "an hbbs killed in its container comes back (restart: unless-stopped)"
else
	fail "an hbbs killed in its container comes back (pid $spid)"
	$DOCKER ps -a | sed 's/^/#   /'
fi
took "kill and come back" "$t"

# ---- everything stopped and removed ----
kill "$hpid"
wait "$hpid" 2>/dev/null
hpid=
net=$($DOCKER network ls -q --filter "name=${project}_rustdesk-net")
$COMPOSE down --remove-orphans >"$run/down.log" 2>&1
left=$($DOCKER ps -aq)
nets=$($DOCKER network ls -q --filter "name=${project}")
stop_dockerd
dstatus=$?
mounts=$(grep -c " $cache/data" /proc/mounts)
if [ -z "$left" ] && [ -z "$nets" ] && [ "$mounts" = 0 ] &&
	! ip link show "br-${net:0:12}" >/dev/null 2>&1 &&
	! pgrep -f "$cache/data" >/dev/null; then
	pass "containers, network and our dockerd stopped and removed (dockerd exit $dstatus)"
else
	fail "containers, network and our dockerd stopped and removed" \
		"(containers '$left', networks '$nets', mounts $mounts)"
fi
took "the whole docker test" "$t_start"
