#!/bin/sh
# Runs the end-to-end suite (node:test) against $MCP_GUARD_BIN.
set -eu
cd "$(dirname "$0")/.."
: "${MCP_GUARD_BIN:=$(pwd)/build/mcp-guard}"
export MCP_GUARD_BIN
echo "e2e: $MCP_GUARD_BIN"
exec node --test --test-reporter=spec tests/e2e/
