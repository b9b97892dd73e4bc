#!/bin/sh
# Builds bench/auth-bench.c against $BUILD/libmg.a (default build/) and runs
# it: RS256 verifies/s per core, and what the authentication chain costs per
# request (JWT cache miss, warm token cache, API key). Loopback only; bounded.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
CC=${CC:-cc}
LIB=$BUILD/libmg.a
if [ ! -f "$LIB" ]; then
	make --no-print-directory BUILD="$BUILD" "$LIB" || exit 1
fi
# libcurl: headers only, as in the Makefile (src/http/client.c dlopen()s it).
LIBS="libevent libevent_openssl libevent_pthreads openssl jansson hiredis yaml-0.1"
PKGS="$LIBS libcurl"
BIN=$BUILD/auth-bench
# shellcheck disable=SC2046,SC2086
$CC -std=c17 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc \
	$(pkg-config --cflags $PKGS) -o "$BIN" bench/auth-bench.c "$LIB" \
	$(pkg-config --libs $LIBS) -lpthread -lm || exit 1
exec "$BIN"
