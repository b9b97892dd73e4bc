#!/bin/sh
# Runs the end-to-end suite (node:test) against $MCP_GUARD_BIN; with
# arguments, those test files only. E2E_REPORTER: node's reporter (spec).
set -eu
cd "$(dirname "$0")/.."
: "${MCP_GUARD_BIN:=$(pwd)/build/mcp-guard}"
export MCP_GUARD_BIN
# --test-force-exit: a test file ends when its tests and hooks have run, even
# when a failed hook left a server of the test open (an after() whose
# gw.stop() throws on a sanitizer report never reaches its receiver.close():
# without the flag that file, and the suite, hang instead of failing). Node
# has it from 20.14 (and 22); an older node runs without it.
force=""
if node --test-force-exit -e 0 >/dev/null 2>&1; then force=--test-force-exit; fi
echo "e2e: $MCP_GUARD_BIN"
[ $# -gt 0 ] || set -- tests/e2e/
exec node --test $force --test-reporter="${E2E_REPORTER:-spec}" "$@"
