#!/bin/sh
# Regenerates the reference embedded in the mcp-guard.toml(5) man page, between
# the lines `.\" BEGIN GENERATED REFERENCE` and `.\" END GENERATED REFERENCE`,
# from `mcp-guard config-reference --man` (the schema table). `make
# man-reference` runs it; docs-check fails when the page is stale.
# Usage: man-reference.sh BIN PAGE
set -eu
bin=$1
page=$2
tmp=$(mktemp)
ref=$(mktemp)
trap 'rm -f "$tmp" "$ref"' EXIT
"$bin" config-reference --man >"$ref"
awk -v ref="$ref" '
	/^\.\\" BEGIN GENERATED REFERENCE/ { print; while ((getline l < ref) > 0) print l; skip = 1; next }
	/^\.\\" END GENERATED REFERENCE/ { skip = 0 }
	!skip { print }
' "$page" >"$tmp"
grep -q '^\.\\" END GENERATED REFERENCE' "$tmp" || { echo "man-reference: markers missing in $page" >&2; exit 1; }
cat "$tmp" >"$page"
