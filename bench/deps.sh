#!/bin/sh
# Installs what bench/run.sh needs and is missing: Debian tools through
# apt-get (nginx as the proxy floor, gnuplot for the charts, taskset, ps,
# curl) and the npm peers from bench/package-lock.json (npm ci --prefix bench).
# Safe to run again: it does nothing when all is present. A missing piece is
# reported; run.sh then skips what needs it.
set -u
cd "$(dirname "$0")" || exit 1
fail=0

missing=""
for p in nginx-light gnuplot-nox util-linux procps curl; do
	case $p in
	nginx-light) command -v nginx >/dev/null 2>&1 && continue ;;
	gnuplot-nox) command -v gnuplot >/dev/null 2>&1 && continue ;;
	esac
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $status in *" installed") ;; *) missing="$missing $p" ;; esac
done
if [ -n "$missing" ]; then
	echo "bench deps: installing Debian packages:$missing" >&2
	if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
		echo "bench deps: need root (or sudo) for: apt-get install -y$missing" >&2
		sudo=none
	fi
	if [ "$sudo" != none ]; then
		export DEBIAN_FRONTEND=noninteractive
		# shellcheck disable=SC2086
		{ $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 ||
			{ $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null; }; } ||
			fail=1
	else
		fail=1
	fi
fi

# The npm peers: reinstall only when the lockfile changed since the last install.
stamp=node_modules/.mcp-guard-bench-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
	echo "bench deps: installing the npm peers (npm ci --prefix bench)" >&2
	if npm ci --prefix . --no-audit --no-fund --loglevel=error >&2; then
		cp package-lock.json "$stamp"
	else
		fail=1
	fi
fi
exit $fail
