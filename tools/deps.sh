#!/bin/sh
# Install the Debian packages homedesk needs to build and test.
#
# Usage: tools/deps.sh [build|test|bench|arm64|docker|systemd|win64]
#        (default: test)
# Each of build, test, bench includes the previous one; arm64 is the cross
# toolchain, the server's arm64 libraries (Debian multiarch: the arm64
# architecture is added first) and qemu-user, for make server-arm64;
# docker is Debian's docker engine, docker-compose v1 and debootstrap, for
# make test-docker; systemd is systemd-nspawn and debootstrap, for make
# test-systemd.
# win64 is the mingw-w64 cross toolchain, the tools that build Debian's
# source packages as static Windows libraries (tools/win-deps.sh) and
# Wine, for make host-win and make test-win.
# librust-wayland-protocols-dev is there for its XML files: Debian 12 has no
# wlr-protocols package, and the Rust crate ships the wlroots protocols.
# libwslay-dev cannot be installed for two architectures at once: the
# native one gives the headers, libwslay1:arm64 the library; likewise
# libmicrohttpd12:arm64 (its arm64 -dev would pull GnuTLS's arm64 -dev
# tree).  mutter, pipewire and wireplumber are for tests/e2e/e2e_gnome
# (a headless GNOME compositor and the PipeWire daemon its screen cast
# needs).  chromium is for tests/integration/test_admin (the admin page in
# a headless browser).  Only missing packages are installed;
# when every package is present this costs one dpkg-query call.  As root it
# runs apt-get itself (update first, as a fresh machine has no lists); as
# another user it prints the exact command and fails.
set -eu

set_name=${1:-test}

build_pkgs="gcc make pkg-config clang clang-format libclang-rt-14-dev
libfuzzer-14-dev libsodium-dev libuv1-dev libprotobuf-c-dev
protobuf-c-compiler libsqlite3-dev libvpx-dev libopus-dev libsdl2-dev
libyuv-dev libxcb1-dev libxcb-shm0-dev libxcb-damage0-dev libxcb-xfixes0-dev
libxcb-xtest0-dev libxcb-randr0-dev libzstd-dev libwslay-dev nettle-dev
libminiupnpc-dev libpng-dev libpulse-dev libwayland-dev libpipewire-0.3-dev
libdbus-1-dev
libxkbcommon-dev wayland-protocols librust-wayland-protocols-dev
libsdl2-ttf-dev fonts-dejavu-core libmicrohttpd-dev"
test_pkgs="xvfb xauth xdotool xclip x11-apps x11-utils x11-xserver-utils
x11-xkb-utils xterm
nftables iproute2
miniupnpd-nftables
iptables sqlite3 procps psmisc pulseaudio pulseaudio-utils sway grim wtype
wl-clipboard fail2ban chromium mutter pipewire wireplumber"
bench_pkgs="ffmpeg valgrind tigervnc-scraping-server tigervnc-viewer"
docker_pkgs="docker.io docker-compose debootstrap"
systemd_pkgs="systemd-container debootstrap"
win64_pkgs="gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 mingw-w64-tools nasm
dpkg-dev autoconf automake libtool cmake make pkg-config protobuf-c-compiler
wine wine64 xvfb xauth xdotool xclip"
arm64_pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user pkg-config
protobuf-c-compiler libsodium-dev:arm64 libuv1-dev:arm64
libprotobuf-c-dev:arm64 libsqlite3-dev:arm64 nettle-dev:arm64
libwslay1:arm64 libwslay-dev libmicrohttpd12:arm64"

case "$set_name" in
build) want="$build_pkgs" ;;
test) want="$build_pkgs $test_pkgs" ;;
bench) want="$build_pkgs $test_pkgs $bench_pkgs" ;;
arm64) want="$arm64_pkgs" ;;
docker) want="$docker_pkgs" ;;
systemd) want="$systemd_pkgs" ;;
win64) want="$win64_pkgs" ;;
*)
	echo "usage: $0 [build|test|bench|arm64|docker|systemd|win64]" >&2
	exit 2
	;;
esac

# Installed for the right architecture: the native one (or "all") unless
# the name says which (libsodium-dev:arm64); with the arm64 architecture
# added, a plain name matches both.
native=$(dpkg --print-architecture)
missing=""
for p in $want; do
	case $p in
	*:*) arch=${p#*:} ;;
	*) arch=$native ;;
	esac
	s=$(dpkg-query -W -f='${Architecture} ${db:Status-Status}\n' "$p" \
		2>/dev/null || true)
	printf '%s\n' "$s" | grep -Eq "^($arch|all) installed$" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root: apt-get update && $cmd" >&2
	exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if [ "$set_name" = arm64 ] && ! dpkg --print-foreign-architectures |
	grep -qx arm64; then
	dpkg --add-architecture arm64
fi
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
