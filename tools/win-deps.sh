#!/bin/sh
# The libraries homedesk-host.exe links, cross-built as static Windows
# (x86-64, mingw-w64) libraries from Debian's own source packages, into
# build-win/deps (or $1).  Debian ships none of them prebuilt for mingw.
#
# Usage: tools/win-deps.sh [DEPS_DIR]
#
# The sources are fetched with a private apt configuration under
# DEPS_DIR/apt: deb-src lines made from the system's Debian "deb" sources
# (bookworm, bookworm-updates, bookworm-security), so the machine's own apt
# set-up is never touched.  Each package is pinned to one version (PINS
# below, with a fallback version where a newer security upload replaced the
# pinned one in the archive); the pins are written to DEPS_DIR/stamp after
# a full build, and nothing is rebuilt while the stamp matches.  A finished
# set of libraries (15 MB) is also kept per machine in
# $HD_WIN_DEPS_CACHE (default ~/.cache/homedesk/win-deps), one folder per
# stamp, and copied from there into a new build tree: a fresh clone (as
# CI's) builds them once per machine.  Toolchain and build tools:
# tools/deps.sh win64.
set -eu

D=${1:-build-win/deps}
HOSTT=x86_64-w64-mingw32
JOBS=${HD_WIN_JOBS:-2}

# package  version[|fallback version]
PINS="libuv1 1.44.2-1+deb12u1|1.44.2-1
libsodium 1.0.18-1+deb12u1|1.0.18-1
protobuf-c 1.4.1-1
opus 1.3.1-3
libzstd 1.5.4+dfsg2-5+deb12u1|1.5.4+dfsg2-5
libvpx 1.12.0-1+deb12u5|1.12.0-1+deb12u4|1.12.0-1+deb12u3
libyuv 0.0~git20230123.b2528b0-1
miniupnpc 2.2.4-1"

stamp_text() {
	printf 'mingw %s\n%s\n' "$($HOSTT-gcc -dumpversion)" "$PINS"
	# the recipes below are part of the pin
	sed -n '/^build_one()/,/^}/p' "$0" | cksum
}

# what a package's marker holds: its pins and its recipe (its branch of
# build_one), so changing one recipe rebuilds that package only
marker() {
	printf '%s ' "$2"
	sed -n "/^	$1)\$/,/;;/p" "$0" | cksum
}

mkdir -p "$D"
D=$(cd "$D" && pwd)
if [ -f "$D/stamp" ] && [ "$(stamp_text)" = "$(cat "$D/stamp")" ]; then
	exit 0
fi
CACHE=${HD_WIN_DEPS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/homedesk/win-deps}
C=$CACHE/$(stamp_text | cksum | tr ' ' -)
if [ -f "$C/stamp" ] && [ "$(stamp_text)" = "$(cat "$C/stamp")" ]; then
	rm -rf "$D/prefix"
	cp -a "$C/prefix" "$D/prefix"
	cp "$C/stamp" "$D/stamp"
	echo "win-deps: the libraries for these pins from $C" >&2
	exit 0
fi
command -v $HOSTT-gcc >/dev/null || {
	echo "win-deps: no $HOSTT-gcc; run tools/deps.sh win64 (as root)" >&2
	exit 1
}
rm -f "$D/stamp"
P=$D/prefix
SRC=$D/src
APT=$D/apt
mkdir -p "$P" "$SRC" "$APT/lists/partial" "$APT/cache/archives/partial" \
	"$APT/sources"

# deb-src stanzas from the system's Debian sources (deb822 and one-line)
{
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; ORS = "\n\n" }
			/(^|\n)URIs:[^\n]*debian/ && /(^|\n)Types:[^\n]*deb/ {
				sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f"
	done
} >"$APT/sources/debian-src.sources"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	sed -n 's/^deb \(.*debian.*\)/deb-src \1/p' "$f"
done >"$APT/debian-src.list"

aptc() {
	apt-get -q -o Dir::Etc::SourceList="$APT/debian-src.list" \
		-o Dir::Etc::SourceParts="$APT/sources" \
		-o Dir::State::Lists="$APT/lists" \
		-o Dir::Cache="$APT/cache" -o Debug::NoLocking=1 \
		-o APT::Sandbox::User=root "$@"
}
echo "win-deps: source lists (private apt config in $APT)" >&2
aptc update >"$D/apt.log" 2>&1 || {
	cat "$D/apt.log" >&2
	echo "win-deps: apt-get update with $APT/sources failed" >&2
	exit 1
}

# fetch PKG "VER|VER2": the first version the archive still has, unpacked
# (Debian patches applied) in $SRC/PKG; prints the directory
fetch() {
	pkg=$1
	dir=$SRC/$pkg
	[ -f "$dir/.unpacked" ] && {
		echo "$dir"
		return
	}
	rm -rf "$dir" "$SRC/dl-$pkg"
	mkdir -p "$SRC/dl-$pkg"
	ok=
	for v in $(echo "$2" | tr '|' ' '); do
		if (cd "$SRC/dl-$pkg" && aptc source -d "$pkg=$v") \
			>>"$D/apt.log" 2>&1; then
			ok=$v
			break
		fi
		echo "win-deps: $pkg $v not in the archive; trying the next pin" >&2
	done
	[ -n "$ok" ] || {
		echo "win-deps: no pinned version of $pkg ($2) in the archive;" \
			"see $D/apt.log and update PINS in $0" >&2
		exit 1
	}
	dpkg-source -x --no-check "$SRC/dl-$pkg"/*.dsc "$dir" \
		>>"$D/apt.log" 2>&1
	touch "$dir/.unpacked"
	echo "$dir"
}

CMAKE_WIN="-DCMAKE_SYSTEM_NAME=Windows -DCMAKE_C_COMPILER=$HOSTT-gcc
-DCMAKE_CXX_COMPILER=$HOSTT-g++ -DCMAKE_RC_COMPILER=$HOSTT-windres
-DCMAKE_FIND_ROOT_PATH=$P -DCMAKE_INSTALL_PREFIX=$P
-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF"
CONF_WIN="--host=$HOSTT --prefix=$P --disable-shared --enable-static"

build_one() {
	pkg=$1
	s=$2
	case $pkg in
	libuv1)
		(cd "$s" && ./autogen.sh && ./configure $CONF_WIN &&
			make -j"$JOBS" && make install)
		;;
	libsodium)
		# _FORTIFY_SOURCE needs libssp: the link adds -l:libssp.a
		(cd "$s" && ./autogen.sh -s && ./configure $CONF_WIN &&
			make -j"$JOBS" && make install)
		;;
	protobuf-c)
		(cd "$s" && ./configure $CONF_WIN --disable-protoc &&
			make -j"$JOBS" && make install)
		;;
	opus)
		(cd "$s" && ./configure $CONF_WIN --disable-doc \
			--disable-extra-programs && make -j"$JOBS" && make install)
		;;
	libzstd)
		(cd "$s/lib" && make -j"$JOBS" CC=$HOSTT-gcc AR=$HOSTT-ar \
			libzstd.a && make CC=$HOSTT-gcc AR=$HOSTT-ar \
			PREFIX="$P" install-static install-includes install-pc)
		;;
	libvpx)
		(mkdir -p "$s/out" && cd "$s/out" &&
			CROSS=$HOSTT- ../configure --target=x86_64-win64-gcc \
				--as=nasm --prefix="$P" --disable-examples \
				--disable-tools --disable-docs --disable-unit-tests \
				--enable-static --disable-shared --enable-vp9 \
				--enable-vp8 &&
			make -j"$JOBS" && make install)
		;;
	libyuv)
		(mkdir -p "$s/out" && cd "$s/out" &&
			cmake $CMAKE_WIN -DCMAKE_DISABLE_FIND_PACKAGE_JPEG=ON .. \
				>/dev/null &&
			make -j"$JOBS" yuv &&
			cp libyuv.a "$P/lib/" && cp -r ../include/. "$P/include/")
		;;
	miniupnpc)
		(mkdir -p "$s/out" && cd "$s/out" &&
			cmake $CMAKE_WIN -DUPNPC_BUILD_STATIC=ON \
				-DUPNPC_BUILD_SHARED=OFF -DUPNPC_BUILD_TESTS=OFF \
				-DUPNPC_BUILD_SAMPLE=OFF .. >/dev/null &&
			make -j"$JOBS" && make install)
		;;
	esac
}

while read -r pkg vers; do
	[ -n "$pkg" ] || continue
	if [ -f "$P/.built-$pkg" ] &&
		[ "$(cat "$P/.built-$pkg")" = "$(marker "$pkg" "$vers")" ]; then
		continue
	fi
	t0=$(date +%s)
	s=$(fetch "$pkg" "$vers")
	echo "win-deps: building $pkg ($(cat "$s/debian/changelog" |
		sed -n '1s/.*(\(.*\)).*/\1/p')) for $HOSTT" >&2
	if ! build_one "$pkg" "$s" >"$D/build-$pkg.log" 2>&1; then
		tail -30 "$D/build-$pkg.log" >&2
		echo "win-deps: building $pkg failed; the log is" \
			"$D/build-$pkg.log" >&2
		exit 1
	fi
	marker "$pkg" "$vers" >"$P/.built-$pkg"
	echo "win-deps: $pkg built in $(($(date +%s) - t0)) s" >&2
done <<EOF
$PINS
EOF
stamp_text >"$D/stamp"
# keep them for the next build tree on this machine (best effort)
if mkdir -p "$C" 2>/dev/null && rm -rf "$C/prefix" &&
	cp -a "$P" "$C/prefix" && cp "$D/stamp" "$C/stamp"; then
	echo "win-deps: kept in $C" >&2
fi
