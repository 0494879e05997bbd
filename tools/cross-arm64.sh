#!/bin/sh
# homedesk-server for 64-bit ARM (NAS boxes, Raspberry Pi OS 64-bit, any
# arm64 Debian): cross-built with Debian's aarch64 toolchain against
# Debian's arm64 libraries, in build-arm64/ (tools/deps.sh arm64 installs
# both), and tested by running the x86-64 integration tests of the server
# (rendezvous, relay, hbbs/hbbr compatibility) against the arm64 binary
# under qemu-user.
#
# Usage: tools/cross-arm64.sh build|test
set -eu
O=build-arm64
LIBDIR=/usr/lib/aarch64-linux-gnu

build() {
	mkdir -p "$O"
	if [ ! -f "$O/config.mk" ] || [ tools/configure.sh -nt "$O/config.mk" ]; then
		PKG_CONFIG_LIBDIR=$LIBDIR/pkgconfig:/usr/share/pkgconfig \
			tools/configure.sh "$O/config.mk" --server-only
		# no arm64 libwslay-dev nor libmicrohttpd-dev (see
		# tools/deps.sh): the libraries themselves
		sed -i -e "s/-lwslay/-l:libwslay.so.1/" \
			-e "s/-lmicrohttpd/-l:libmicrohttpd.so.12/" "$O/config.mk"
	fi
	make --no-print-directory O="$O" CC=aarch64-linux-gnu-gcc \
		"$O/homedesk-server" "$O/hbbs" "$O/hbbr"
}

case ${1:-build} in
build)
	build
	file "$O/homedesk-server" 2>/dev/null || true
	;;
test)
	build
	make --no-print-directory build/tests/integration/test_rendezvous \
		build/tests/integration/test_relay build/tests/integration/test_compat
	# the test programs start $HD_BUILD_DIR/homedesk-server (or hbbs,
	# hbbr): here, the arm64 one under qemu, under the name it was called
	run=$O/qemu
	mkdir -p "$run"
	for n in homedesk-server hbbs hbbr; do
		printf '#!/bin/sh\nexec qemu-aarch64 -0 "$0" "%s/homedesk-server" "$@"\n' \
			"$(pwd)/$O" >"$run/$n"
		chmod +x "$run/$n"
	done
	qemu-aarch64 "$O/homedesk-server" --version
	pass=0 fail=0
	for t in test_rendezvous test_relay test_compat; do
		out=$(HD_BUILD_DIR=$run "build/tests/integration/$t" 2>&1) || true
		printf '%s\n' "$out" | grep -E '^(not )?ok ' || true
		p=$(printf '%s\n' "$out" | grep -c '^ok ' || true)
		f=$(printf '%s\n' "$out" | grep -c '^not ok ' || true)
		[ "$p" -gt 0 ] || f=$((f + 1)) # printed nothing: crashed
		pass=$((pass + p))
		fail=$((fail + f))
	done
	echo "arm64 server under qemu: $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	;;
*)
	echo "usage: $0 build|test" >&2
	exit 2
	;;
esac
