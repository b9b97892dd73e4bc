#!/bin/sh
# Validates documentation examples and runs documented commands (tests/docs/check.mjs).
set -eu
cd "$(dirname "$0")/.."
exec node tests/docs/check.mjs
