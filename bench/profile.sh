#!/bin/sh
# bench/profile.sh - where mcp-guard's time goes, for a benchmark report.
#
#   sh bench/profile.sh [echo|big|list|everything|http] [perf|callgrind|none] [OUT_FILE]
#   BENCH_PROFILE_C       virtual users (64 for echo, 4 otherwise)
#   BENCH_PROFILE_FAMILY  legacy (default) or modern
#   BENCH_PROFILE_AUTH=1  scenario 2: one API key, rate limiting (never refusing)
#   BENCH_PROFILE_OBS=audit|full  the observability group's (c) or (b): audit to a
#                         file with the hash chain; full adds tracing at sample_rate
#                         0.1 exporting to bench/otlp-sink.mjs on the load core
#   BENCH_PROFILE_OBS=trace  tracing only (audit off), as full exports it
#   BENCH_PROFILE_SAMPLE  tracing.sample_rate with OBS=full or trace (0.1)
#   BENCH_PROFILE_CHAIN   audit.hash_chain with OBS set (true)
#   BENCH_PROFILE_AUDIT_FILE  the audit file with OBS=audit or full (a
#                         scratch file; /dev/null leaves the page cache out)
#   BENCH_PROFILE_AUDIT_TOML  more [audit] lines with OBS=audit or full
#                         (say 'fsync = "never"')
#   BENCH_PROFILE_TRACE_TOML  more [tracing] lines with OBS=trace or full
#                         (say 'otlp_protocol = "http/json"')
#   BENCH_PROFILE_DUR     measured seconds with perf or none (5); longer runs
#                         average out a shared machine's noise
#   BENCH_PROFILE_FREQ    perf's sampling rate in Hz (999)
#   BENCH_PROFILE_BIN     the gateway binary (build/mcp-guard): another
#                         build's, to compare two builds run by run
#   `none` runs no profiler: only the CPU per request, for quick A/B runs
#
# Starts mcp-guard (shared mode, the fast stdio upstream; with `http`, the
# fast upstream over Streamable HTTP behind `transport = "http"`, scenario 4)
# pinned to one core,
# drives it with bench/build/mcpload from the other, and writes a text
# profile: with perf, a cpu-clock sampling profile (hardware counters are
# often missing in VMs; the software clock works) by shared object and by
# symbol; with callgrind, exact instruction counts, inclusive, per function,
# with call counts, so the cost per request can be divided out. The gateway
# is stopped by its PID when done; all traffic is on 127.0.0.1.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
CALL=${1:-echo}
TOOL=${2:-perf}
OUT=${3:-$BENCH/results/profile-$CALL-$TOOL.txt}
PORT=${BENCH_PROFILE_PORT:-20390}
SUT_CPU=${BENCH_SUT_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
WORK=$BENCH/work/profile-$$
mkdir -p "$WORK" "$(dirname "$OUT")"
make -s -C "$BENCH" >/dev/null || exit 1
GUARD=${BENCH_PROFILE_BIN:-$ROOT/build/mcp-guard}
[ -x "$GUARD" ] || { echo "profile: $GUARD missing (make)" >&2; exit 1; }

UP_CMD="$BENCH/build/fast-upstream"
UP_ARGS='["--stdio", "--tools", "5000", "--big-bytes", "1048576"]'
UP_NAME="fast stdio upstream"
UP_HTTP=
case $CALL in
echo) C=64 ARGS=() ;;
big) C=4 ARGS=(--expect-bytes 1048576) ;;
list) C=4 ARGS=(--expect-tools 5000) ;;
everything)
	# tools/call echo on the real server-everything over stdio: where the
	# gateway's share of the tree's CPU goes.
	C=64 ARGS=() CALL=echo
	UP_CMD=$(command -v node) || { echo "profile: node missing" >&2; exit 1; }
	UP_ARGS="[\"$ROOT/node_modules/@modelcontextprotocol/server-everything/dist/index.js\", \"stdio\"]"
	UP_NAME="server-everything over stdio"
	;;
http)
	# tools/call echo through the HTTP upstream path (src/upstream/http.c,
	# src/http/client.c): the fast upstream over Streamable HTTP on the same core.
	C=64 ARGS=() CALL=echo UP_HTTP=$((PORT + 1))
	UP_NAME="fast upstream over Streamable HTTP"
	;;
*) echo "usage: profile.sh [echo|big|list|everything|http] [perf|callgrind|none] [OUT]" >&2; exit 2 ;;
esac
C=${BENCH_PROFILE_C:-$C} # virtual users
if [ -n "$UP_HTTP" ]; then
	UP_TOML="transport = \"http\"
url = \"http://127.0.0.1:$UP_HTTP/mcp\"
allow_private_networks = true"
else
	UP_TOML="transport = \"stdio\"
command = \"$UP_CMD\"
args = $UP_ARGS
protocol = \"legacy\"
mode = \"shared\""
fi
cat >"$WORK/guard.toml" <<EOF
[server]
host = "127.0.0.1"
port = $PORT

[upstream]
$UP_TOML
EOF
OBS=${BENCH_PROFILE_OBS:-}
SINK=
case $OBS in
audit | full | trace)
	if [ "$OBS" = trace ]; then
		printf '\n[audit]\nenabled = false\n' >>"$WORK/guard.toml"
	else
		printf '\n[audit]\nenabled = true\nstdout = false\nfile = "%s"\nhash_chain = %s\n%s\n' "${BENCH_PROFILE_AUDIT_FILE:-$WORK/audit.jsonl}" "${BENCH_PROFILE_CHAIN:-true}" "${BENCH_PROFILE_AUDIT_TOML:-}" >>"$WORK/guard.toml"
	fi
	if [ "$OBS" != audit ]; then
		OTLP=$((PORT + 2))
		printf '\n[tracing]\nenabled = true\notlp_endpoint = "http://127.0.0.1:%s"\nallow_private_networks = true\nsample_rate = %s\n%s\n' "$OTLP" "${BENCH_PROFILE_SAMPLE:-0.1}" "${BENCH_PROFILE_TRACE_TOML:-}" >>"$WORK/guard.toml"
		if [ "${BENCH_PROFILE_NO_SINK:-0}" != 1 ]; then
			taskset -c "$LOAD_CPU" node "$BENCH/otlp-sink.mjs" "$OTLP" 600 >"$WORK/sink.log" 2>&1 &
			SINK=$!
		fi
		for _ in $(seq 1 50); do
			(exec 3<>"/dev/tcp/127.0.0.1/$OTLP") 2>/dev/null && break
			sleep 0.1
		done
	fi
	;;
'') printf '\n[audit]\nenabled = false\n' >>"$WORK/guard.toml" ;;
*) echo "profile: BENCH_PROFILE_OBS is audit, trace or full" >&2; exit 2 ;;
esac
FAMILY=${BENCH_PROFILE_FAMILY:-legacy}
HDR=()
if [ "${BENCH_PROFILE_AUTH:-0}" = 1 ]; then
	KEY=mcp_profile_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	cat >>"$WORK/guard.toml" <<EOF

[[auth.api_keys]]
id = "profile"
key_hash = "$("$GUARD" hash-key "$KEY" | tail -n1)"

[rate_limit]
enabled = true
requests_per_second = 1000000
burst_size = 1000000
EOF
	HDR=(-H "Authorization: Bearer $KEY")
else
	printf '\n[rate_limit]\nenabled = false\n' >>"$WORK/guard.toml"
fi

PID=
UPID=
cleanup() {
	[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	PID=
	[ -n "$UPID" ] && kill -TERM "$UPID" 2>/dev/null && wait "$UPID" 2>/dev/null
	UPID=
	[ -n "$SINK" ] && kill -TERM "$SINK" 2>/dev/null && wait "$SINK" 2>/dev/null
	SINK=
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "$UP_HTTP" ]; then
	taskset -c "$SUT_CPU" "$UP_CMD" --http "$UP_HTTP" >"$WORK/upstream.log" 2>&1 &
	UPID=$!
	for _ in $(seq 1 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$UP_HTTP") 2>/dev/null && break
		sleep 0.1
	done
fi
if [ "$TOOL" = callgrind ]; then
	command -v valgrind >/dev/null || { echo "profile: valgrind missing (apt-get install valgrind)" >&2; exit 1; }
	taskset -c "$SUT_CPU" valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
		"$GUARD" --config "$WORK/guard.toml" run >"$WORK/guard.log" 2>&1 &
	PID=$!
	DUR=4 WARM=1 RUNS=1
elif [ "$TOOL" = none ]; then
	taskset -c "$SUT_CPU" "$GUARD" --config "$WORK/guard.toml" run >"$WORK/guard.log" 2>&1 &
	PID=$!
	DUR=${BENCH_PROFILE_DUR:-5} WARM=0.5
else
	command -v perf >/dev/null || { echo "profile: perf missing (apt-get install linux-perf)" >&2; exit 1; }
	taskset -c "$SUT_CPU" "$GUARD" --config "$WORK/guard.toml" run >"$WORK/guard.log" 2>&1 &
	PID=$!
	DUR=${BENCH_PROFILE_DUR:-5} WARM=0.5
fi
for _ in $(seq 1 150); do
	curl -sf -o /dev/null "http://127.0.0.1:$PORT/ready" && break
	sleep 0.2
done
PERF=
if [ "$TOOL" = perf ]; then
	perf record -e cpu-clock -F "${BENCH_PROFILE_FREQ:-999}" -g -p "$PID" -o "$WORK/perf.data" -- sleep $((DUR + 1)) >"$WORK/perf.log" 2>&1 &
	PERF=$!
fi
taskset -c "$LOAD_CPU" "$BENCH/build/mcpload" --url "http://127.0.0.1:$PORT/mcp" -c "$C" --call "$CALL" \
	--family "$FAMILY" --warmup "$WARM" --duration "$DUR" --sut-pid "$PID" "${ARGS[@]}" "${HDR[@]}" >"$WORK/load.json"
[ -n "$PERF" ] && wait "$PERF"
cleanup

REQ=$(sed -n 's/.*"result":{[^}]*"requests":\([0-9]*\).*/\1/p' "$WORK/load.json")
{
	echo "# mcp-guard profile: tools/call $CALL ($UP_NAME), $FAMILY family, c=$C$([ -n "${HDR[*]}" ] && echo ', API key + rate limiting')$(case $OBS in audit | full) echo ", audit to a file (hash_chain = ${BENCH_PROFILE_CHAIN:-true})" ;; esac)$(case $OBS in full | trace) echo ", tracing at ${BENCH_PROFILE_SAMPLE:-0.1}" ;; esac), $TOOL, $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "# commit $(cd "$ROOT" && git rev-parse --short HEAD), load: $(head -c 400 "$WORK/load.json")"
	node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).result;
if (r && r.requests > 0) console.log(`# CPU per request in the window: tree ${(1e6 * r.sut_cpu_s / r.requests).toFixed(1)} us, gateway process (all its threads) ${(1e6 * r.sut_root_cpu_s / r.requests).toFixed(1)} us; ${r.rps} req/s; neighbours used ${r.others_cpu_pct}% of a core; event loop thread ${(1e6 * r.sut_main_cpu_s / r.requests).toFixed(1)} us`);' "$WORK/load.json" 2>/dev/null
	echo
	if [ "$TOOL" = perf ]; then
		echo "## By thread (self time; the event loop is the thread named mcp-guard)"
		perf report -i "$WORK/perf.data" --stdio --no-children --sort pid -g none 2>/dev/null | grep -E '^ +[0-9]' | head -10
		echo
		echo "## By shared object (self time)"
		perf report -i "$WORK/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep -E '^ +[0-9]' | head -15
		echo
		echo "## By symbol (self time, top 40)"
		perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null |
			grep -E '^ +[0-9]' | sed 's/[[:space:]]*-[[:space:]]*-[[:space:]]*$//' | head -40
	elif [ "$TOOL" = callgrind ]; then
		echo "## Inclusive instruction counts per function (top 60); requests in the measured window: ${REQ:-?}"
		echo "## (the whole run is profiled: start-up, warm-up and the window; divide by the calls shown)"
		callgrind_annotate --inclusive=yes "$WORK/callgrind.out" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -60
		echo
		echo "## Calls into jansson and the allocator"
		callgrind_annotate --tree=caller "$WORK/callgrind.out" 2>/dev/null |
			grep -E '< .*(mg_rpc_parse|mg_json_dump|json_loadb|json_dumps|json_deep_copy) \(' | head -20
	fi
} >"$OUT"
echo "profile: wrote $OUT" >&2
[ -n "${BENCH_PROFILE_KEEP:-}" ] && echo "profile: raw data kept in $WORK" >&2 || rm -rf "$WORK"
