#!/bin/sh
# toml-test.sh DECODER - runs the toml-test corpus against a toml-test decoder.
#
# The corpus is ../shared/toml-test next to the repository (override with
# TOML_TEST_DIR). Every valid/**/*.toml must decode (exit 0) to JSON equal
# to the .json beside it (compared by scripts/toml-compare.mjs, one node
# process for all cases); every invalid/**/*.toml must exit 1 with a located
# error "file:line:col: message" on stderr. Prints a summary and the name of
# each failure; exits 1 if anything failed.
set -u

dec=${1:?usage: toml-test.sh DECODER}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
dir=${TOML_TEST_DIR:-$(dirname "$repo")/shared/toml-test}
case $dec in /*) ;; *) dec=$(pwd)/$dec ;; esac

if [ ! -x "$dec" ]; then
	echo "toml-test: decoder $dec is not executable" >&2
	exit 2
fi
if ! command -v node >/dev/null 2>&1; then
	echo "toml-test: node is needed to compare JSON" >&2
	exit 2
fi
if [ ! -d "$dir/valid" ] || [ ! -d "$dir/invalid" ]; then
	echo "toml-test: no corpus at $dir (set TOML_TEST_DIR)" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/toml-test.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# A hung decoder must not hang the gate.
limit=""
if command -v timeout >/dev/null 2>&1; then
	limit="timeout 20"
fi

: >"$tmp/list"
: >"$tmp/fail"
n=0
(cd "$dir" && find valid -name '*.toml' | LC_ALL=C sort) >"$tmp/valid"
(cd "$dir" && find invalid -name '*.toml' | LC_ALL=C sort) >"$tmp/invalid"

while IFS= read -r f; do
	n=$((n + 1))
	name=${f%.toml}
	out="$tmp/out.$n.json"
	$limit "$dec" <"$dir/$f" >"$out" 2>"$tmp/err.$n"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "FAIL $name: exit $rc: $(head -c 300 "$tmp/err.$n")" >>"$tmp/fail"
	else
		printf '%s\t%s\t%s\n' "$name" "$dir/$name.json" "$out" >>"$tmp/list"
	fi
done <"$tmp/valid"

if ! node "$here/toml-compare.mjs" "$tmp/list" >>"$tmp/fail"; then
	echo "FAIL scripts/toml-compare.mjs did not finish" >>"$tmp/fail"
fi

while IFS= read -r f; do
	n=$((n + 1))
	name=${f%.toml}
	$limit "$dec" <"$dir/$f" >/dev/null 2>"$tmp/err.$n"
	rc=$?
	if [ "$rc" -ne 1 ]; then
		echo "FAIL $name: expected exit 1, got $rc" >>"$tmp/fail"
	elif ! head -n 1 "$tmp/err.$n" | grep -Eq '^<stdin>:[1-9][0-9]*:[1-9][0-9]*: .+'; then
		echo "FAIL $name: error is not 'file:line:col: message': $(head -c 300 "$tmp/err.$n")" >>"$tmp/fail"
	fi
done <"$tmp/invalid"

valid_total=$(wc -l <"$tmp/valid" | tr -d ' ')
invalid_total=$(wc -l <"$tmp/invalid" | tr -d ' ')
valid_fail=$(grep -c '^FAIL valid/' "$tmp/fail")
invalid_fail=$(grep -c '^FAIL invalid/' "$tmp/fail")

cat "$tmp/fail"
echo "toml-test: $((valid_total - valid_fail))/$valid_total valid, $((invalid_total - invalid_fail))/$invalid_total invalid"
[ -s "$tmp/fail" ] && exit 1
exit 0
