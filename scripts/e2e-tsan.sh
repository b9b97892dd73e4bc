#!/bin/sh
# The end-to-end tests that drive the gateway's own threads (the audit writer
# and its file syncer, the span exporter, the pins writer, reloads, the
# per-request log context) against a ThreadSanitizer build of the binary.
# TSan writes each report to a file of its own (log_path) rather than to
# stderr, where a test would not look: any report fails the run. Bounded
# in time; e2e.sh's --test-force-exit keeps a failed after() from hanging
# a file (a planted race hung logctx.test.mjs that way before).
# Usage: e2e-tsan.sh BIN
set -eu
cd "$(dirname "$0")/.."
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
# gcc 12's TSan refuses the mappings of kernels with more mmap entropy:
# without address randomization when the host allows it (as check-tsan).
run=""
if setarch "$(uname -m)" -R true 2>/dev/null; then run="setarch $(uname -m) -R"; fi
status=0
TSAN_OPTIONS="log_path=$reports/race second_deadlock_stack=1" MCP_GUARD_BIN=$bin E2E_REPORTER=dot \
	timeout -k 10 600 $run sh scripts/e2e.sh tests/e2e/audit.test.mjs tests/e2e/tracing.test.mjs \
	tests/e2e/metrics.test.mjs tests/e2e/logctx.test.mjs tests/e2e/reload.test.mjs \
	tests/e2e/tools-cli.test.mjs || status=$?
echo # (the dot reporter ends without a newline)
if ls "$reports"/race* >/dev/null 2>&1; then
	cat "$reports"/race*
	echo "e2e-tsan: ThreadSanitizer reported the race(s) above" >&2
	exit 1
fi
[ "$status" = 0 ] || { echo "e2e-tsan: the tests failed (exit $status)" >&2; exit "$status"; }
echo "e2e-tsan: no race reported"
