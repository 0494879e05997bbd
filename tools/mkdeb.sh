#!/bin/sh
# Debian packages from a build tree: homedesk-server (with the systemd
# unit, and hbbs/hbbr links in /usr/lib/homedesk so as not to clash with a
# RustDesk server package), homedesk-host and homedesk-viewer.  Depends
# lists the packages that hold the shared libraries each program links
# (found with ldd and dpkg -S) and what the server's unit runs (kill, from
# procps); programs are stripped.  Each package has a copyright file; the
# server's maintainer scripts (packaging/debian/) enable and start its
# service on install, stop it on remove and delete its data only on purge.
# The host brings a systemd user unit and an XDG autostart example, the
# viewer a .desktop file; each its man page.  The files come from make
# install's tools/install.sh.  Maintainer: DEB_MAINTAINER, else the author of
# the tree's last commit.
#
# Usage: tools/mkdeb.sh [BUILD_DIR [OUT_DIR]]   (default build, BUILD_DIR/deb)
set -eu
O=${1:-build}
out=${2:-$O/deb}
version=$(sed -n 's/^VERSION := //p' Makefile)
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
maintainer=${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || true)}
[ -n "$maintainer" ] || maintainer="homedesk developers <homedesk@localhost>"

# The packages that hold the shared libraries the given programs link
# directly (their NEEDED entries, where ldd finds them).
depends() {
	for b in "$@"; do
		objdump -p "$b" | awk '$1 == "NEEDED" { print $2 }' |
			while read -r so; do
				ldd "$b" | awk -v so="$so" '$1 == so && $2 == "=>" { print $3 }'
			done
	done | sort -u | while read -r lib; do
		real=$(readlink -f "$lib")
		for p in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" \
			"${real#/usr}"; do
			pkg=$(dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1) || true
			[ -n "$pkg" ] && break
		done
		[ -n "$pkg" ] && echo "$pkg"
	done | sort -u | paste -sd, | sed 's/,/, /g'
}

# Everything goes through make install's script into a staging tree
# (stripped programs, compressed man pages, the system unit in /lib as
# Debian 12 keeps it); each package then takes its part of it.
stage=$work/stage
O=$O PREFIX=/usr DESTDIR=$stage SYSTEMDDIR=/lib/systemd/system STRIP=1 \
	GZIP_MAN=1 tools/install.sh >/dev/null

# package NAME DESCRIPTION EXTRA_DEPENDS PROGRAM...: the control file, the
# programs, README and copyright
package() {
	name=$1 desc=$2 extra=$3
	shift 3
	root=$work/$name
	mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$name"
	for p in "$@"; do
		take "$name" "usr/bin/$p"
	done
	cp README.md "$root/usr/share/doc/$name/README.md"
	cp packaging/debian/copyright "$root/usr/share/doc/$name/copyright"
	{
		echo "Package: $name"
		echo "Version: $version"
		echo "Architecture: $arch"
		echo "Maintainer: $maintainer"
		echo "Section: net"
		echo "Priority: optional"
		echo "Depends: $(cd "$O" && depends "$@")$extra"
		echo "Description: $desc"
		echo " homedesk: a self-hosted remote desktop (RustDesk compatible)."
	} >"$root/DEBIAN/control"
}

# take NAME PATH [TO]: move PATH of the staging tree into package NAME
# (at TO, default the same path)
take() {
	to=$work/$1/${3:-$2}
	mkdir -p "$(dirname "$to")"
	mv "$stage/$2" "$to"
}

mkdir -p "$out"
package homedesk-server \
	"rendezvous and relay server, a drop-in for RustDesk's hbbs/hbbr" \
	", procps" homedesk-server
for s in postinst prerm postrm; do
	install -m 0755 "packaging/debian/server.$s" \
		"$work/homedesk-server/DEBIAN/$s"
done
take homedesk-server usr/lib/homedesk
take homedesk-server lib/systemd/system/homedesk-server.service
take homedesk-server usr/share/man/man8/homedesk-server.8.gz
take homedesk-server usr/share/doc/homedesk/packaging.md \
	usr/share/doc/homedesk-server/packaging.md
package homedesk-host "the agent on the computer to be reached (X11)" "" \
	homedesk-host
take homedesk-host usr/lib/systemd/user/homedesk-host.service
take homedesk-host usr/share/man/man1/homedesk-host.1.gz
take homedesk-host \
	usr/share/doc/homedesk/examples/homedesk-host-autostart.desktop \
	usr/share/doc/homedesk-host/examples/homedesk-host-autostart.desktop
package homedesk-viewer "the viewer: reach a homedesk or RustDesk host" "" \
	homedesk-viewer
take homedesk-viewer usr/share/applications/homedesk-viewer.desktop
take homedesk-viewer usr/share/man/man1/homedesk-viewer.1.gz
# the connect window reads its font at run time
sed -i 's/^Depends: .*/&, fonts-dejavu-core/' \
	"$work/homedesk-viewer/DEBIAN/control"
for name in homedesk-server homedesk-host homedesk-viewer; do
	dpkg-deb --root-owner-group --build "$work/$name" \
		"$out/${name}_${version}_$arch.deb" >/dev/null
	echo "$out/${name}_${version}_$arch.deb"
done
