#!/bin/sh
# The layout of homedesk's C sources, and the size limits on it.
#
# Usage: tools/layout.sh [--check] [FOLDER...]   (default: server host
#        client common)
# Without --check: the lines per folder and per file, and the longest
# functions (the house format puts a function's opening and closing brace
# alone in column 0, so a function's length is the distance between them).
# With --check: prints one line per file over HD_MAX_FILE_LINES (800) and
# per function over HD_MAX_FUNC_LINES (120) and exits 1 if there is any;
# tests/packaging/test_layout.sh runs it in make test.  Tests are exempt:
# they live under tests/, which is not a checked folder.  The known
# exceptions are listed in tools/layout.allow ("PATH LINES why" or
# "PATH:FUNCTION LINES why"): such a file or function may be up to LINES
# long, no longer, so an exception cannot grow unnoticed; an entry that is
# no longer needed is reported too, so the list only shrinks.
set -u
max_file=${HD_MAX_FILE_LINES:-800}
max_func=${HD_MAX_FUNC_LINES:-120}
allow=${HD_LAYOUT_ALLOW:-$(dirname "$0")/layout.allow}
check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
[ $# -eq 0 ] && set -- server host client common
files=$(find "$@" -name '*.[ch]' ! -name '*-protocol.h' | sort)

# funcs FILE...: "LINES FILE:LINE NAME" for each function definition
funcs() {
	awk '
	FNR == 1 { prev = ""; start = 0 }
	/^\{/ && prev ~ /\(/ {
		name = prev
		sub(/\(.*/, "", name)
		sub(/.*[ *]/, "", name)
		start = FNR
		next
	}
	/^\}/ && start {
		printf "%d %s:%d %s\n", FNR - start + 1, FILENAME, start, name
		start = 0
	}
	/^[^ \t{}#\/]/ { prev = $0 }
	/^[ \t].*\)$/ && !start { prev = prev $0 }
	' "$@"
}

# allowed KEY: the LINES the exceptions file grants KEY, or nothing
allowed() {
	[ -f "$allow" ] && awk -v k="$1" '$1 == k { print $2; exit }' "$allow"
}

# over KEY WHAT N LIMIT: report WHAT (N lines) unless an exception for
# KEY covers N
over() {
	a=$(allowed "$1")
	used="$used $1"
	if [ -z "$a" ] || [ "$3" -gt "$a" ]; then
		echo "$2 $3 lines (limit $4${a:+, $allow allows $a}): split it" \
			"by responsibility (or, for a reason, give it a line in" \
			"$allow)"
		bad=1
	fi
}

if [ $check = 1 ]; then
	bad=0
	used=""
	for f in $files; do
		n=$(wc -l <"$f")
		[ "$n" -gt "$max_file" ] && over "$f" "$f:" "$n" "$max_file"
	done
	# shellcheck disable=SC2086
	long=$(funcs $files | awk -v m="$max_func" '$1 > m')
	while read -r n where name; do
		[ -n "$n" ] || continue
		over "${where%%:*}:$name" "$where: $name() has" "$n" "$max_func"
	done <<EOF
$long
EOF
	if [ -f "$allow" ]; then
		for key in $(awk '!/^#/ && NF { print $1 }' "$allow"); do
			case " $used " in
			*" $key "*) ;;
			*)
				echo "$allow: $key is within the limits now: remove its line"
				bad=1
				;;
			esac
		done
	fi
	exit $bad
fi

echo "== lines per folder"
for d in "$@"; do
	find "$d" -type d | sort | while read -r sub; do
		# shellcheck disable=SC2046
		set -- $(find "$sub" -maxdepth 1 -name '*.[ch]' ! -name '*-protocol.h')
		[ $# -gt 0 ] || continue
		printf '%6d %3d files  %s/\n' "$(cat "$@" | wc -l)" $# "$sub"
	done
done
echo "== lines per file (largest first)"
# shellcheck disable=SC2086
wc -l $files | grep -v ' total$' | sort -rn | head -${HD_LAYOUT_TOP:-25}
echo "== longest functions"
# shellcheck disable=SC2086
funcs $files | sort -rn | head -${HD_LAYOUT_TOP:-25}
