#!/bin/sh
# The Debian packages (tools/mkdeb.sh) built from this build tree: three
# packages, Depends naming the libraries each program links, the files
# where they belong (the unit, hbbs/hbbr links), and the packaged
# (stripped) programs working: the server's rendezvous integration tests
# pass against the binary taken out of the package.
O=${O:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
suite=deb
# shellcheck source=tests/packaging/check.sh
. "$(dirname "$0")/check.sh"
if ! command -v dpkg-deb >/dev/null || ! command -v objdump >/dev/null; then
	echo "ok - deb: all # skip dpkg-deb or objdump missing"
	exit 0
fi
v=$(sed -n 's/^VERSION := //p' Makefile)
a=$(dpkg --print-architecture)
server=$tmp/deb/homedesk-server_${v}_$a.deb
host=$tmp/deb/homedesk-host_${v}_$a.deb
viewer=$tmp/deb/homedesk-viewer_${v}_$a.deb

check "three packages built" sh -c "tools/mkdeb.sh '$O' '$tmp/deb' &&
	test -f '$server' && test -f '$host' && test -f '$viewer'"
check "server depends on its libraries" sh -c "dpkg-deb -f '$server' Depends |
	grep -q 'libsodium23' && dpkg-deb -f '$server' Depends | grep -q libwslay1 &&
	dpkg-deb -f '$server' Depends | grep -q libmicrohttpd12 &&
	! dpkg-deb -f '$server' Depends | grep -q libvpx"
check "host and viewer depend on theirs" sh -c "
	dpkg-deb -f '$host' Depends | grep -q libvpx7 &&
	dpkg-deb -f '$host' Depends | grep -q libxcb-xtest0 &&
	dpkg-deb -f '$viewer' Depends | grep -q libsdl2-2.0-0 &&
	dpkg-deb -f '$viewer' Depends | grep -q libsdl2-ttf-2.0-0 &&
	dpkg-deb -f '$viewer' Depends | grep -q fonts-dejavu-core"
check "viewer files: program and its desktop menu entry" sh -c "
	dpkg-deb -c '$viewer' > '$tmp/cv' &&
	grep -q ' ./usr/share/applications/homedesk-viewer.desktop$' '$tmp/cv'"
check "server files: program, unit, hbbs/hbbr links" sh -c "
	dpkg-deb -c '$server' > '$tmp/c' &&
	grep -q ' ./usr/bin/homedesk-server$' '$tmp/c' &&
	grep -q ' ./lib/systemd/system/homedesk-server.service$' '$tmp/c' &&
	grep -q ' ./usr/lib/homedesk/hbbs -> ../../bin/homedesk-server$' '$tmp/c'"
check "maintainer, copyright, server Depends procps (the unit's kill)" sh -c "
	dpkg-deb -f '$server' Maintainer | grep -v -q '@localhost' &&
	dpkg-deb -f '$server' Depends | grep -q procps &&
	for p in '$server' '$host' '$viewer'; do
		n=\$(dpkg-deb -f \$p Package)
		dpkg-deb -c \$p | grep -q \" ./usr/share/doc/\$n/copyright\$\" || exit 1
	done"
check "server maintainer scripts: enable+start, stop, purge data" sh -c "
	dpkg-deb -e '$server' '$tmp/ctl' &&
	grep -q 'deb-systemd-invoke start homedesk-server' '$tmp/ctl/postinst' &&
	grep -q 'deb-systemd-invoke stop homedesk-server' '$tmp/ctl/prerm' &&
	grep -q 'rm -rf /var/lib/private/homedesk /var/lib/homedesk' '$tmp/ctl/postrm' &&
	sh -n '$tmp/ctl/postinst' && sh -n '$tmp/ctl/prerm' && sh -n '$tmp/ctl/postrm'"
check "host user unit and autostart example, viewer .desktop" sh -c "
	dpkg-deb -c '$host' | grep -q ' ./usr/lib/systemd/user/homedesk-host.service$' &&
	dpkg-deb -c '$host' | grep -q 'examples/homedesk-host-autostart.desktop$' &&
	dpkg-deb -c '$viewer' | grep -q ' ./usr/share/applications/homedesk-viewer.desktop$'"
check "man pages: server(8), host(1), viewer(1), compressed" sh -c "
	dpkg-deb -c '$server' | grep -q ' ./usr/share/man/man8/homedesk-server.8.gz$' &&
	dpkg-deb -c '$host' | grep -q ' ./usr/share/man/man1/homedesk-host.1.gz$' &&
	dpkg-deb -c '$viewer' | grep -q ' ./usr/share/man/man1/homedesk-viewer.1.gz$'"
check "packaged programs run (stripped)" sh -c "
	dpkg-deb -x '$server' '$tmp/x' && dpkg-deb -x '$host' '$tmp/x' &&
	dpkg-deb -x '$viewer' '$tmp/x' &&
	'$tmp/x/usr/bin/homedesk-server' --version | grep -q 'homedesk-server $v' &&
	'$tmp/x/usr/bin/homedesk-host' --version | grep -q 'homedesk-host $v' &&
	'$tmp/x/usr/bin/homedesk-viewer' --version | grep -q 'homedesk-viewer $v' &&
	'$tmp/x/usr/lib/homedesk/hbbs' --help | grep -q hbbs &&
	! objdump -h '$tmp/x/usr/bin/homedesk-server' | grep -q debug_info &&
	objdump -h '$O/homedesk-server' | grep -q debug_info"
check "the packaged server passes the rendezvous tests" sh -c "
	test -x '$O/tests/integration/test_rendezvous' &&
	HD_BUILD_DIR='$tmp/x/usr/bin' '$O/tests/integration/test_rendezvous' \
		> '$tmp/r' 2>&1; grep -q ' 0 failed' '$tmp/r' &&
	! grep -q '^not ok' '$tmp/r' || { cat '$tmp/r'; false; }"
