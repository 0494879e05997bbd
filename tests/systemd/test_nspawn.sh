#!/bin/sh
# The homedesk-server package under a real systemd (issue #17 item 14):
# a Debian 12 tree (tools/nspawn-base.sh) booted with systemd-nspawn -b,
# its own network namespace (only lo: no clash with the machine's ports),
# the .deb of this build installed with dpkg.  Checks: the service is
# active after install (the maintainer scripts enable and start it), its
# key is in the state directory and is the one it announced, homedesk-server
# check passes against it, reload re-reads the lists (blacklist.txt), a
# killed server is restarted (Restart=on-failure), remove stops it and
# keeps the data, purge deletes it.  Needs root and systemd-nspawn (make
# test-systemd installs it); skips otherwise.
O=${O:-build}
cache=$O/nspawn
fail=0
say() { # OK NAME [DETAIL...]
	ok=$1 name=$2
	shift 2
	if [ "$ok" = 1 ]; then
		echo "ok - systemd: $name"
	else
		echo "not ok - systemd: $name"
		fail=1
		for d in "$@"; do
			printf '%s\n' "$d" | sed 's/^/# /' | tail -25
		done
	fi
}
if [ "$(id -u)" != 0 ] || ! command -v systemd-nspawn >/dev/null; then
	echo "ok - systemd: all # skip needs root and systemd-nspawn"
	exit 0
fi
tools/nspawn-base.sh "$cache" || {
	say 0 "a bootable Debian tree"
	exit 1
}
run=$(mktemp -d "$cache/run.XXXXXX")
npid= cpid=
cleanup() {
	if [ -n "$npid" ]; then
		kill "$npid" 2>/dev/null # nspawn shuts the container down
		i=0
		while kill -0 "$npid" 2>/dev/null && [ $i -lt 300 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$npid" 2>/dev/null
	fi
	rm -rf "$run"
}
trap cleanup EXIT
cp -a "$cache/rootfs" "$run/root"
tools/mkdeb.sh "$O" "$run/root/var/tmp" >/dev/null || {
	say 0 "packages built"
	exit 1
}

systemd-nspawn --quiet --register=no --keep-unit --private-network \
	--console=pipe \
	-D "$run/root" -M "hd-$$" -b </dev/null >"$run/console.log" 2>&1 &
npid=$!
# the container's init: the child of nspawn that is systemd
i=0
while [ -z "$cpid" ] && [ $i -lt 300 ]; do
	for c in $(ps -o pid= --ppid "$npid" 2>/dev/null); do
		[ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] && cpid=$c
	done
	[ -z "$cpid" ] && sleep 0.1
	i=$((i + 1))
done
# in_ct CMD: run the shell command CMD inside the container
in_ct() {
	nsenter -t "$cpid" -m -u -i -n -p -- /usr/bin/env -i \
		PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/sh -c "$1"
}
# wait_ct SECS CMD: until CMD succeeds inside, up to SECS seconds
wait_ct() {
	w=0
	while [ $w -lt $(($1 * 10)) ]; do
		in_ct "$2" >/dev/null 2>&1 && return 0
		sleep 0.1
		w=$((w + 1))
	done
	return 1
}
booted=0
[ -n "$cpid" ] && wait_ct 90 'systemctl is-system-running |
	grep -Eq "^(running|degraded)$"' && booted=1
say $booted "Debian 12 boots under systemd-nspawn -b" \
	"$(tail -20 "$run/console.log")"
[ $booted = 1 ] || exit 1

out=$(in_ct 'dpkg -i /var/tmp/homedesk-server_*.deb 2>&1')
st=$?
active=0
[ $st = 0 ] && wait_ct 30 'systemctl is-active -q homedesk-server' && active=1
say $active "dpkg -i: the service is enabled and active" "$out" \
	"$(in_ct 'systemctl status homedesk-server --no-pager 2>&1')"
enabled=$(in_ct 'systemctl is-enabled homedesk-server')
say "$([ "$enabled" = enabled ] && echo 1)" "enabled at boot" "$enabled"

# the key: in the state directory, and the one the start lines announce.
# A simple service is "active" from its fork, before the server has made
# its key or opened its ports: its start lines come after both.
wait_ct 20 "journalctl -u homedesk-server -o cat |
	grep -q 'forward to this machine'"
pub=$(in_ct 'cat /var/lib/homedesk/id_ed25519.pub' 2>&1)
journal() { in_ct 'journalctl -u homedesk-server --no-pager -o cat'; }
ok=0
[ -n "$pub" ] && journal | grep -qF "$pub" &&
	in_ct 'test -f /var/lib/private/homedesk/id_ed25519 &&
		test "$(stat -c %a /var/lib/private/homedesk)" = 700' && ok=1
say $ok "key in /var/lib/homedesk (DynamicUser state), as announced" \
	"pub: $pub" "$(journal | tail -15)"

out=$(in_ct "homedesk-server check 127.0.0.1 --key '$pub' 2>&1")
say "$([ $? = 0 ] && echo 1)" "homedesk-server check passes against it" "$out"

# reload: the lists are read again
in_ct 'printf "192.0.2.1\n192.0.2.2\n" > /var/lib/homedesk/blacklist.txt &&
	systemctl reload homedesk-server'
ok=0
wait_ct 10 'journalctl -u homedesk-server -o cat |
	grep -q "blacklist.txt: 2 addresses"' && ok=1
say $ok "systemctl reload re-reads blacklist.txt (SIGHUP)" "$(journal | tail -8)"

# restart on failure: killed, it comes back with a new PID
pid1=$(in_ct 'systemctl show -P MainPID homedesk-server')
in_ct 'systemctl kill -s KILL homedesk-server'
ok=0
wait_ct 20 "p=\$(systemctl show -P MainPID homedesk-server);
	[ \"\$p\" != 0 ] && [ \"\$p\" != '$pid1' ] &&
	systemctl is-active -q homedesk-server" && ok=1
pid2=$(in_ct 'systemctl show -P MainPID homedesk-server')
say $ok "a killed server is restarted (Restart=on-failure): pid $pid1 -> $pid2" \
	"$(in_ct 'systemctl status homedesk-server --no-pager 2>&1')"
# the new server listens once its start lines say where (as above)
wait_ct 20 "journalctl _PID=$pid2 -o cat | grep -q 'forward to this machine'"
out=$(in_ct "homedesk-server check 127.0.0.1 --key '$pub' 2>&1")
say "$([ $? = 0 ] && echo 1)" "the same key after the restart" "$out"

# remove: stopped, data kept; purge: data gone
out=$(in_ct 'dpkg -r homedesk-server 2>&1')
kept=0
in_ct 'dpkg -s homedesk-server | grep -q "^Status: deinstall ok config-files" &&
	! systemctl is-active -q homedesk-server &&
	test -f /var/lib/private/homedesk/id_ed25519' && kept=1
say $kept "dpkg -r: stopped, the key kept" "$out"
out=$(in_ct 'dpkg -P homedesk-server 2>&1')
ok=0
[ $kept = 1 ] &&
	in_ct '! test -e /var/lib/private/homedesk && ! test -e /var/lib/homedesk' &&
	ok=1
say $ok "dpkg -P: the data directory removed" "$out"
exit $fail
