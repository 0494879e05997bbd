#!/bin/sh
# The OS layer's rule (common/os.h): common/ and the host's platform-neutral
# files include no POSIX-only header (sockets, poll, pwd, eventfd, rlimit,
# mmap, ...) nor a display or sound system's header; only the OS layer's
# POSIX file and the backends do.  A backend is any file in a folder of
# host/ (capture/, input/, clipboard/, audio/, ...) other than the folder's
# interface (NAME.c, NAME.h) and its fake; host/monitors.c (RandR; its
# Windows twin is host/monitors_win.c) counts as a backend.
# Prints each offending line and exits 1; prints nothing and exits 0 when
# the tree is clean.  Run by tests/packaging/test_portable.sh.
cd "$(dirname "$0")/.." || exit 2
posix='arpa/|net/|netinet/|netdb\.h|sys/socket\.h|sys/un\.h|poll\.h|pwd\.h|grp\.h|sys/eventfd\.h|sys/epoll\.h|sys/resource\.h|sys/mman\.h|sys/ipc\.h|sys/shm\.h|sys/wait\.h|sys/ioctl\.h|sys/select\.h|sys/uio\.h|sys/utsname\.h|termios\.h|dlfcn\.h|syslog\.h|xcb/|X11/|wayland-|xkbcommon/|pulse/'
neutral() {
	for f in common/*.[ch] common/nat/*.[ch] host/*.[ch] host/*/*.[ch]; do
		[ -f "$f" ] || continue
		case $f in
		common/os.h | common/os_posix.c | host/monitors.c)
			continue
			;;
		host/*/*)
			d=$(basename "$(dirname "$f")")
			b=$(basename "$f")
			case $b in
			"$d.c" | "$d.h" | fake.c) ;;
			*) continue ;;
			esac
			;;
		esac
		echo "$f"
	done
}
# shellcheck disable=SC2046
bad=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<($posix)" \
	$(neutral) /dev/null)
[ -z "$bad" ] && exit 0
printf '%s\n' "$bad"
echo "check-headers: POSIX-only or display headers outside the OS layer and" \
	"the backends: use common/os.h (or move the code into a backend)" >&2
exit 1
