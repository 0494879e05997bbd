#!/bin/sh
# A Debian 12 tree that boots under systemd-nspawn, for make test-systemd:
# debootstrap (minbase) from the Debian mirror this machine's apt uses,
# with systemd as init and the libraries the homedesk-server package
# depends on (so that dpkg -i needs no network inside).  Made once into
# CACHE_DIR/rootfs; later runs copy it.
#
# Usage: tools/nspawn-base.sh CACHE_DIR        (root, debootstrap)
set -eu
cache=${1:?usage: $0 CACHE_DIR}
root=$cache/rootfs
# the server package's libraries: a cached tree made with another list is
# made again (dpkg -i inside has no network to fetch a new one)
pkgs=systemd,systemd-sysv,dbus,procps,libnettle8,libprotobuf-c1,libsodium23,libsqlite3-0,libuv1,libwslay1,libmicrohttpd12
[ -x "$root/lib/systemd/systemd" ] &&
	[ "$(cat "$cache/rootfs.pkgs" 2>/dev/null)" = "$pkgs" ] && exit 0
rm -rf "$root"
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' \
	'Identifier: Packages' | awk '$2 == "bookworm" { print $1; exit }')
if [ -z "$mirror" ]; then
	echo "nspawn-base: no bookworm mirror in this machine's apt sources" \
		"(/etc/apt/sources.list*); run apt-get update" >&2
	exit 1
fi
mkdir -p "$cache"
rm -rf "$root.tmp"
echo "nspawn-base: debootstrap bookworm from $mirror (a few minutes)" >&2
if ! debootstrap --variant=minbase \
	--include="$pkgs" \
	bookworm "$root.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
	echo "nspawn-base: debootstrap failed, see $cache/debootstrap.log" >&2
	tail -n 5 "$cache/debootstrap.log" >&2
	exit 1
fi
rm -rf "$root.tmp"/var/cache/apt/archives/*.deb
echo homedesk-test >"$root.tmp/etc/hostname"
mv "$root.tmp" "$root"
echo "$pkgs" >"$cache/rootfs.pkgs"
