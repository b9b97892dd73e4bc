#!/bin/sh
# Offline checks of deploy/ (tests/deploy/check.mjs): install layout, systemd
# unit, man pages, Kubernetes manifests, Docker build context.
set -eu
cd "$(dirname "$0")/.."
exec node tests/deploy/check.mjs
