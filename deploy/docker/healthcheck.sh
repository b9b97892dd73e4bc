#!/bin/bash
# Docker HEALTHCHECK: GET /live on the gateway's port without curl (the
# runtime image has none): bash's /dev/tcp. Healthy when the answer is 200.
# The port is MCP_GUARD_SERVER__PORT, else 3000. Plain HTTP only: with
# server.tls.enabled, replace the HEALTHCHECK (docs/deployment.md).
set -eu
port=${MCP_GUARD_SERVER__PORT:-3000}
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
read -r -t 5 status <&3
case $status in
"HTTP/1.1 200"*) exit 0 ;;
*) exit 1 ;;
esac
