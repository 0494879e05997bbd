#!/bin/sh
# Make the base image debian:bookworm-slim without a registry: debootstrap
# (minbase) from the Debian mirror this machine's apt uses, trimmed like
# Debian's slim images (no documentation, manual pages or locales), then
# `docker import`.  The tarball is cached in CACHE_DIR, so a second run
# only imports it (or does nothing when the daemon already has the image).
#
# Usage: tools/docker-base.sh CACHE_DIR
# Needs root, debootstrap, and a docker CLI reaching the daemon
# ($DOCKER, default docker; DOCKER_HOST as usual).
set -eu

cache=${1:?usage: $0 CACHE_DIR}
docker=${DOCKER:-docker}
tag=debian:bookworm-slim
tarball=$cache/debian-bookworm-slim.tar

if $docker image inspect $tag >/dev/null 2>&1; then
	exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
	# the mirror apt uses for bookworm here (no other network may exist)
	mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' \
		'Identifier: Packages' | awk '$2 == "bookworm" { print $1; exit }')
	if [ -z "$mirror" ]; then
		echo "docker-base: no bookworm mirror in this machine's apt" \
			"sources (/etc/apt/sources.list*); run apt-get update" >&2
		exit 1
	fi
	root=$cache/rootfs.tmp
	rm -rf "$root"
	echo "docker-base: debootstrap bookworm from $mirror (a few minutes)" >&2
	if ! debootstrap --variant=minbase bookworm "$root" "$mirror" \
		>"$cache/debootstrap.log" 2>&1; then
		echo "docker-base: debootstrap failed, see $cache/debootstrap.log" >&2
		tail -n 5 "$cache/debootstrap.log" >&2
		exit 1
	fi
	rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* \
		"$root"/usr/share/info/* "$root"/usr/share/locale/* \
		"$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
		"$root"/var/lib/apt/lists/*
	cat >"$root"/etc/dpkg/dpkg.cfg.d/docker-slim <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
	tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$root"
fi
$docker import --change 'CMD ["bash"]' "$tarball" $tag >/dev/null
echo "docker-base: $tag imported from $tarball" >&2
