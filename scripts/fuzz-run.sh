#!/bin/sh
# Runs each libFuzzer target for SECONDS on a scratch copy of its seed corpus.
# Usage: fuzz-run.sh SECONDS build-fuzz/fuzz_x ...
set -eu
secs=$1; shift
cd "$(dirname "$0")/.."
for bin in "$@"; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	work=$(mktemp -d)
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
	echo "fuzz: $name for ${secs}s"
	"$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 "$work" 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' || true
	rm -rf "$work"
done
