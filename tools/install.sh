#!/bin/sh
# Install the built programs and what goes with them (make install):
#   $BINDIR           homedesk-server, homedesk-host, homedesk-viewer
#   $LIBEXECDIR       hbbs and hbbr links to homedesk-server (not in
#                     $BINDIR, where a RustDesk server package puts its own)
#   $MANDIR           homedesk-server.8, homedesk-host.1, homedesk-viewer.1
#   $SYSTEMDDIR       homedesk-server.service (system unit)
#   $SYSTEMDUSERDIR   homedesk-host.service (user unit)
#   $APPDIR           homedesk-viewer.desktop
#   $DOCDIR           README, LICENSE, packaging notes, examples (the host's
#                     XDG autostart file, the launchd plist, fail2ban files)
# each under $DESTDIR; the units' ExecStart names $BINDIR.  STRIP=1 strips
# the programs (the .deb), GZIP_MAN=1 compresses the man pages.
#
# Usage: O=build PREFIX=/usr/local DESTDIR= tools/install.sh
set -eu
O=${O:-build}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-$PREFIX/bin}
LIBEXECDIR=${LIBEXECDIR:-$PREFIX/lib/homedesk}
MANDIR=${MANDIR:-$PREFIX/share/man}
SYSTEMDDIR=${SYSTEMDDIR:-$PREFIX/lib/systemd/system}
SYSTEMDUSERDIR=${SYSTEMDUSERDIR:-$PREFIX/lib/systemd/user}
APPDIR=${APPDIR:-$PREFIX/share/applications}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/homedesk}
d=$DESTDIR

for f in homedesk-server homedesk-host homedesk-viewer man/homedesk-server.8 \
	man/homedesk-host.1 man/homedesk-viewer.1; do
	[ -f "$O/$f" ] || {
		echo "install: $O/$f is missing: run make (O=$O) first" >&2
		exit 1
	}
done
install -d "$d$BINDIR" "$d$LIBEXECDIR" "$d$MANDIR/man1" "$d$MANDIR/man8" \
	"$d$SYSTEMDDIR" "$d$SYSTEMDUSERDIR" "$d$APPDIR" "$d$DOCDIR/examples"
for p in homedesk-server homedesk-host homedesk-viewer; do
	if [ "${STRIP:-0}" = 1 ]; then
		objcopy --strip-unneeded "$O/$p" "$d$BINDIR/$p"
		chmod 0755 "$d$BINDIR/$p"
	else
		install -m 0755 "$O/$p" "$d$BINDIR/$p"
	fi
done
# relative links, so that the tree works wherever DESTDIR puts it
rel=$(realpath -m --relative-to="$LIBEXECDIR" "$BINDIR/homedesk-server")
ln -sfn "$rel" "$d$LIBEXECDIR/hbbs"
ln -sfn "$rel" "$d$LIBEXECDIR/hbbr"
for m in homedesk-host.1 homedesk-viewer.1 homedesk-server.8; do
	dir=$d$MANDIR/man${m##*.}
	install -m 0644 "$O/man/$m" "$dir/$m"
	if [ "${GZIP_MAN:-0}" = 1 ]; then
		gzip -9nf "$dir/$m"
	fi
done
sed "s|/usr/bin/|$BINDIR/|g" packaging/systemd/homedesk-server.service \
	>"$d$SYSTEMDDIR/homedesk-server.service"
sed "s|/usr/bin/|$BINDIR/|g" packaging/systemd/homedesk-host.service \
	>"$d$SYSTEMDUSERDIR/homedesk-host.service"
chmod 0644 "$d$SYSTEMDDIR/homedesk-server.service" \
	"$d$SYSTEMDUSERDIR/homedesk-host.service"
install -m 0644 packaging/desktop/homedesk-viewer.desktop "$d$APPDIR/"
install -m 0644 README.md LICENSE "$d$DOCDIR/"
install -m 0644 packaging/README.md "$d$DOCDIR/packaging.md"
install -m 0644 packaging/desktop/homedesk-host-autostart.desktop \
	packaging/launchd/org.homedesk.server.plist "$d$DOCDIR/examples/"
cp -R packaging/fail2ban "$d$DOCDIR/examples/"
echo "installed under ${DESTDIR:-/}: programs in $BINDIR, man pages in $MANDIR"
