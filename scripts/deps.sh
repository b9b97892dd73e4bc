#!/bin/sh
# Installs what the build (`run`) or the test suite (`test`) needs and is
# missing: Debian packages through apt-get, npm packages from the committed
# lockfile into ./node_modules. Safe to run again: it does nothing when all
# is present. Usage: deps.sh run|test
set -eu
mode=${1:-run}
cd "$(dirname "$0")/.."

build_pkgs="make gcc pkg-config libevent-dev libcurl4-openssl-dev zlib1g-dev libssl-dev libjansson-dev \
libhiredis-dev libyaml-dev nodejs npm"
test_pkgs="libcmocka-dev clang libclang-rt-14-dev cppcheck clang-format redis-server \
procps curl systemd man-db groff-base"

pkgs=$build_pkgs
[ "$mode" = test ] && pkgs="$build_pkgs $test_pkgs"

missing=""
for p in $pkgs; do
	# node and npm may come from elsewhere than Debian (nvm, nodesource).
	case $p in
	nodejs) command -v node >/dev/null 2>&1 && continue ;;
	npm) command -v npm >/dev/null 2>&1 && continue ;;
	esac
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $status in *" installed") ;; *) missing="$missing $p" ;; esac
done

if [ -n "$missing" ]; then
	echo "deps: installing Debian packages:$missing"
	if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
		echo "deps: need root (or sudo) to run: apt-get install -y$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm packages: reinstall only when the lockfile changed since the last install.
stamp=node_modules/.mcp-guard-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
	echo "deps: installing npm packages (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	cp package-lock.json "$stamp"
fi
