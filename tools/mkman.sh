#!/bin/sh
# A man page from its hand-written source: the line @OPTIONS@ becomes the
# program's generated sections (PROGRAM --help-man: the same option table
# as --help), @VERSION@ the version.
#
# Usage: tools/mkman.sh PROGRAM SOURCE.in OUT VERSION
set -eu
prog=$1 src=$2 out=$3 version=$4
"$prog" --help-man >"$out.gen"
awk -v v="$version" -v gen="$out.gen" '
	$0 == "@OPTIONS@" {
		while ((getline line < gen) > 0)
			print line
		next
	}
	{ gsub(/@VERSION@/, v); print }' "$src" >"$out.tmp"
rm -f "$out.gen"
mv "$out.tmp" "$out"
