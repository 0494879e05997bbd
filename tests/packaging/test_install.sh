#!/bin/sh
# make install into a DESTDIR, as a distribution or a user with PREFIX
# would: the programs, hbbs/hbbr links, man pages, systemd units (their
# ExecStart naming the installed program), the viewer's .desktop file and
# the docs where they belong; the installed programs run; each man page
# renders with man -l without a groff warning, has its hand-written
# sections and every option of the program's --help; and systemd-analyze
# verify finds both units clean, their Documentation= man pages included.
O=${O:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
suite=install
# shellcheck source=tests/packaging/check.sh
. "$(dirname "$0")/check.sh"
if ! command -v man >/dev/null || ! command -v groff >/dev/null; then
	echo "ok - install: all # skip man or groff missing"
	exit 0
fi
v=$(sed -n 's/^VERSION := //p' Makefile)
r=$tmp/root

check "make install PREFIX=/usr DESTDIR=..." sh -c "
	make --no-print-directory O='$O' PREFIX=/usr DESTDIR='$r' install &&
	cd '$r' && for f in usr/bin/homedesk-server usr/bin/homedesk-host \
		usr/bin/homedesk-viewer usr/share/man/man8/homedesk-server.8 \
		usr/share/man/man1/homedesk-host.1 \
		usr/share/man/man1/homedesk-viewer.1 \
		usr/lib/systemd/system/homedesk-server.service \
		usr/lib/systemd/user/homedesk-host.service \
		usr/share/applications/homedesk-viewer.desktop \
		usr/share/doc/homedesk/LICENSE usr/share/doc/homedesk/README.md \
		usr/share/doc/homedesk/examples/homedesk-host-autostart.desktop; do
		test -f \$f || { echo missing \$f; exit 1; }
	done &&
	test \"\$(readlink usr/lib/homedesk/hbbs)\" = ../../bin/homedesk-server &&
	test -x usr/bin/homedesk-viewer &&
	grep -q '^ExecStart=/usr/bin/homedesk-server ' \
		usr/lib/systemd/system/homedesk-server.service"
check "installed programs run (hbbs through its link)" sh -c "
	'$r/usr/bin/homedesk-server' --version | grep -qx 'homedesk-server $v' &&
	'$r/usr/bin/homedesk-host' --version | grep -qx 'homedesk-host $v' &&
	'$r/usr/bin/homedesk-viewer' --version | grep -qx 'homedesk-viewer $v' &&
	'$r/usr/lib/homedesk/hbbs' --help | grep -q 'Usage: hbbs'"

# render PAGE: the page as man shows it on an 80-column terminal, groff's
# warnings (and man's) in $tmp/warn
render() {
	MANWIDTH=80 MAN_KEEP_FORMATTING= man --warnings -l "$1" \
		2>"$tmp/warn" | col -b
}
# page_ok PROGRAM PAGE SECTION...: renders clean, names the version, has
# the sections, and every option --help lists
page_ok() {
	prog=$1 page=$2
	shift 2
	render "$page" >"$tmp/page" || return 1
	if [ -s "$tmp/warn" ]; then
		echo "warnings from man/groff:"
		cat "$tmp/warn"
		return 1
	fi
	grep -q "homedesk $v" "$tmp/page" || {
		echo "no 'homedesk $v' in the footer"
		return 1
	}
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS "$@"; do
		grep -q "^$s" "$tmp/page" || {
			echo "no section $s"
			return 1
		}
	done
	"$prog" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u >"$tmp/opts"
	[ "$(wc -l <"$tmp/opts")" -gt 10 ] || {
		echo "too few options in --help"
		return 1
	}
	while read -r o; do
		grep -q -- "$o" "$tmp/page" || {
			echo "option $o of --help is not in the man page"
			return 1
		}
	done <"$tmp/opts"
	! grep -q -- '--help-man' "$tmp/page" || {
		echo "the hidden --help-man is in the page"
		return 1
	}
}
m=$r/usr/share/man
check "homedesk-server(8) renders, all options, FILES, SIGNALS, hbbs" \
	page_ok "$r/usr/bin/homedesk-server" "$m/man8/homedesk-server.8" \
	FILES SIGNALS "HBBS AND HBBR" "EXIT STATUS" "REPORTING BUGS" "SEE ALSO"
check "homedesk-host(1) renders, all options, FILES" \
	page_ok "$r/usr/bin/homedesk-host" "$m/man1/homedesk-host.1" \
	FILES "REPORTING BUGS" "SEE ALSO"
check "homedesk-viewer(1) renders, all options, the window's keys" \
	page_ok "$r/usr/bin/homedesk-viewer" "$m/man1/homedesk-viewer.1" \
	"KEYS IN THE WINDOW" FILES "EXIT STATUS" "SEE ALSO"
check "the viewer's keys in its page as in --help" sh -c "
	render() { MANWIDTH=80 man -l \"\$1\" 2>/dev/null | col -b; }
	render '$m/man1/homedesk-viewer.1' > '$tmp/vpage' &&
	for k in F11 Ctrl+Alt+S Ctrl+Alt+G Ctrl+Alt+O Ctrl+Alt+Q; do
		'$r/usr/bin/homedesk-viewer' --help | grep -q \"^  \$k\" &&
		grep -q \"^ *\$k\" '$tmp/vpage' || { echo \"key \$k\"; exit 1; }
	done"

# systemd-analyze verify: each unit's ExecStart and its Documentation=
# man page must resolve.  It looks for them on this machine, so the tree
# is installed with PREFIX inside $tmp (no DESTDIR); without our man pages
# on MANPATH the same verify must complain (the check can fail).
check "systemd-analyze verify: both units clean, man pages found" sh -c "
	command -v systemd-analyze >/dev/null || { echo no systemd-analyze; exit 1; }
	p='$tmp/pfx'
	make --no-print-directory O='$O' PREFIX=\$p install >/dev/null &&
	mkdir -m 0700 '$tmp/xdg' &&
	MANPATH=\$p/share/man systemd-analyze verify \
		\$p/lib/systemd/system/homedesk-server.service > '$tmp/v' 2>&1 &&
	MANPATH=\$p/share/man XDG_RUNTIME_DIR='$tmp/xdg' systemd-analyze --user \
		verify \$p/lib/systemd/user/homedesk-host.service >> '$tmp/v' 2>&1
	st=\$?; cat '$tmp/v'; [ \$st -eq 0 ] && ! [ -s '$tmp/v' ] &&
	MANPATH='$tmp/none' systemd-analyze verify \
		\$p/lib/systemd/system/homedesk-server.service 2>&1 |
		grep -q 'man homedesk-server(8)'"

# PREFIX: the units name the program where it went
check "PREFIX=/opt/hd: units' ExecStart, hbbs link, man pages there" sh -c "
	make --no-print-directory O='$O' PREFIX=/opt/hd DESTDIR='$tmp/opt' \
		install >/dev/null &&
	cd '$tmp/opt/opt/hd' &&
	grep -q '^ExecStart=/opt/hd/bin/homedesk-server ' \
		lib/systemd/system/homedesk-server.service &&
	grep -q '^ExecStart=/opt/hd/bin/homedesk-host' \
		lib/systemd/user/homedesk-host.service &&
	test -x \"\$(readlink -f lib/homedesk/hbbr)\" &&
	test -f share/man/man8/homedesk-server.8 && ! test -e '$tmp/opt/usr'"
