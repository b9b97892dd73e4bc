#!/bin/sh
# Runs each libFuzzer target for SECONDS on a scratch copy of its seed corpus
# and fails if any target finds a crash, leak, timeout or out-of-memory.
# Usage: fuzz-run.sh SECONDS build-fuzz/fuzz_x ...
set -u
secs=$1; shift
cd "$(dirname "$0")/.."
fail=0
for bin in "$@"; do
	name=$(basename "$bin" | sed 's/^fuzz_//')
	work=$(mktemp -d)
	[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
	log="$work.log"
	# Findings (crash-*, leak-*) are written to the scratch dir, not the repo.
	"$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$work/" -print_final_stats=1 "$work" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ $rc -ne 0 ]; then
		echo "fuzz: $name FAILED after ${execs:-?} runs (exit $rc)"
		grep -E 'ERROR|SUMMARY|==[0-9]+==' "$log" | head -n 20
		ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null
		fail=1
	else
		echo "fuzz: $name ok, ${execs:-?} runs in ${secs}s"
		rm -rf "$work" "$log"
	fi
done
exit $fail
