#!/bin/sh
# Integration test of the Redis rate limiter against a real redis-server.
#
#   sh tests/redis/run.sh            build against $BUILD/libmg.a (default build/) and run
#   sh tests/redis/run.sh --bench    throughput instead of the test cases
#
# The test program starts its own redis-server on 127.0.0.1 (a free port)
# and records its PID in a file; whatever happens, that PID is stopped here.
# A libmg.a built with ASan/UBSan is detected and linked accordingly
# (BUILD=build-asan sh tests/redis/run.sh). VALGRIND=1 runs under valgrind.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
CC=${CC:-cc}
LIB=$BUILD/libmg.a

if ! command -v redis-server >/dev/null 2>&1; then
	echo "FAIL redis: redis-server is not installed (make deps-test)"
	exit 1
fi
if [ ! -f "$LIB" ]; then
	make --no-print-directory BUILD="$BUILD" "$LIB" || exit 1
fi

SAN=${SAN-}
if [ -z "$SAN" ] && nm "$LIB" 2>/dev/null | grep -q '__asan_'; then
	SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
fi
# libcurl: headers only, as in the Makefile (src/http/client.c dlopen()s it).
LIBS="libevent libevent_openssl libevent_pthreads openssl jansson hiredis yaml-0.1"
PKGS="$LIBS libcurl"
BIN=$BUILD/rl-redis-test
# shellcheck disable=SC2046,SC2086
if ! $CC -std=c17 -O1 -g -Wall -Wextra -Werror $SAN -D_GNU_SOURCE -Isrc \
	$(pkg-config --cflags $PKGS) -o "$BIN" tests/redis/rl-redis-test.c "$LIB" \
	$(pkg-config --libs $LIBS) -lpthread -lm; then
	echo "FAIL redis: cannot build $BIN"
	exit 1
fi

pidfile=$(mktemp /tmp/mg-rl-redis-pid.XXXXXX)
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	pid=$(cat "$pidfile" 2>/dev/null)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -CONT "$pid" 2>/dev/null
		kill "$pid" 2>/dev/null
	fi
	rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run=""
if [ "${VALGRIND:-0}" = 1 ]; then
	run="valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
fi
RL_REDIS_PIDFILE=$pidfile $run "$BIN" "$@"
rc=$?
[ $rc = 0 ] && echo "ok   redis rate limiter" || echo "FAIL redis rate limiter (exit $rc)"
exit $rc
