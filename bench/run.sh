#!/bin/sh
# bench/run.sh - mcp-guard against direct access and peer gateways, in one run.
#
#   make bench                 the standard set (about 10 minutes), results in bench/results/
#   BENCH_QUICK=1 make bench   a smoke run (~2 minutes), report left in bench/work/<stamp>/
#
# What it does: builds bench/build/{fast-upstream,mcpload}, installs the npm
# peers (npm ci --prefix bench) and the Debian tools that are missing
# (bench/deps.sh), starts every system under test pinned to one core
# (taskset, BENCH_SUT_CPU) and runs the load generator on the other
# (BENCH_LOAD_CPU). Each point waits (bounded) for an idle machine, is
# repeated BENCH_REPS times, interleaved across systems so that a noisy
# moment does not fall on one system only, and the report takes medians and
# ratios between systems measured in this run (bench/report.mjs).
#
# Every process it starts is recorded by PID and stopped by PID (SIGTERM, then
# SIGKILL for it and the descendants it had) on exit, error or interrupt. All
# traffic goes to 127.0.0.1. A time budget (BENCH_BUDGET seconds) skips the
# remaining points, reported as skipped, rather than run over.
#
# Systems that answer a few hundred requests a second (the Node peers, anything
# in front of server-everything, 1 MiB answers) get a longer warm-up and window
# (BENCH_SLOW_WARMUP, BENCH_SLOW_DURATION) so that their percentiles rest on
# enough samples and Node's JIT is warm.
#
# Knobs (environment): BENCH_QUICK, BENCH_REPS, BENCH_WARMUP, BENCH_DURATION,
# BENCH_CONC, BENCH_EV_CONC, BENCH_RATE, BENCH_RATE_REPS, BENCH_IDLE_SESSIONS, BENCH_IDLE_PCT,
# BENCH_IDLE_MAX, BENCH_IDLE_BUDGET, BENCH_BUDGET, BENCH_PORT_BASE, BENCH_ONLY
# (space-separated groups: fast http big rate everything idle obs fed), BENCH_HTTP_CONC,
# BENCH_HTTP_RATE, BENCH_OBS_CONC, BENCH_OBS_RATE, BENCH_NO_DOCS=1, BENCH_GUARD (the gateway
# binary: build/mcp-guard; another build's to compare two builds).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# The whole script is one brace group: bash reads all of it before running
# any, so editing this file while a run is going on cannot derail that run.
{
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
cd "$ROOT" || exit 1

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	REPS=${BENCH_REPS:-1}
	WARMUP=${BENCH_WARMUP:-0.3}
	DURATION=${BENCH_DURATION:-1}
	SLOW_WARMUP=${BENCH_SLOW_WARMUP:-0.3}
	SLOW_DURATION=${BENCH_SLOW_DURATION:-1}
	CONC=${BENCH_CONC:-1 64}
	EV_CONC=${BENCH_EV_CONC:-64}
	BIG_CONC=${BENCH_BIG_CONC:-16}
	IDLE_SESSIONS=${BENCH_IDLE_SESSIONS:-2000}
	BUDGET=${BENCH_BUDGET:-150}
	IDLE_MAX=${BENCH_IDLE_MAX:-1}
	IDLE_BUDGET=${BENCH_IDLE_BUDGET:-10}
	SUFFIX=-quick
else
	REPS=${BENCH_REPS:-3}
	WARMUP=${BENCH_WARMUP:-0.3}
	DURATION=${BENCH_DURATION:-1}
	SLOW_WARMUP=${BENCH_SLOW_WARMUP:-0.5}
	SLOW_DURATION=${BENCH_SLOW_DURATION:-1.5}
	CONC=${BENCH_CONC:-1 16 64 256}
	EV_CONC=${BENCH_EV_CONC:-1 16 64}
	BIG_CONC=${BENCH_BIG_CONC:-16}
	IDLE_SESSIONS=${BENCH_IDLE_SESSIONS:-10000}
	BUDGET=${BENCH_BUDGET:-600}
	IDLE_MAX=${BENCH_IDLE_MAX:-2}
	IDLE_BUDGET=${BENCH_IDLE_BUDGET:-30}
	SUFFIX=
fi
RATE=${BENCH_RATE:-15000}
# Tail latency suffers most from neighbours' bursts: more windows for the
# fixed-rate test, so that a quiet one is among them.
RATE_REPS=${BENCH_RATE_REPS:-$((REPS < 5 ? (REPS == 1 ? 1 : 5) : REPS))}
IDLE_PCT=${BENCH_IDLE_PCT:-15}
# Both the system under test and the load generator run at this nice value
# (needs root; 0 to disable): on a machine shared with other people's builds,
# a busy neighbour then gets about a tenth of the pinned core instead of half,
# while it still has the rest of the other core. Recorded in the report.
NICE=${BENCH_NICE:--10}
nice -n "$NICE" true 2>/dev/null || NICE=0
SUT_CPU=${BENCH_SUT_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
PORT_BASE=${BENCH_PORT_BASE:-20300} # below the ephemeral range: no client socket can hold it
ONLY=${BENCH_ONLY:-fast http big rate everything idle obs fed}
HTTP_CONC=${BENCH_HTTP_CONC:-1 64} # scenario 4; its fixed rate defaults to half nginx's c=64 throughput
HTTP_RATE=${BENCH_HTTP_RATE:-}
TOOLS=5000
BIG_BYTES=1048576

DATE=$(date +%Y-%m-%d)
WORK=$BENCH/work/$(date +%Y%m%d-%H%M%S)
RESULTS=$BENCH/results
[ "$QUICK" = 1 ] && RESULTS=$WORK # a smoke run does not replace the committed results
JSONL=$WORK/results.jsonl
FAST=$BENCH/build/fast-upstream
LOAD=$BENCH/build/mcpload
GUARD=${BENCH_GUARD:-$ROOT/build/mcp-guard}
EVERYTHING=$ROOT/node_modules/@modelcontextprotocol/server-everything/dist/index.js
NODE=$(command -v node || true)
mkdir -p "$WORK" "$RESULTS"
# Keep the work directories (logs, configurations, audit files) of the last 5 runs.
ls -dt "$BENCH"/work/2*/ 2>/dev/null | tail -n +6 | while read -r d; do rm -rf "$d"; done
: >"$JSONL"

log() { printf '[bench %3ds] %s\n' "$SECONDS" "$*" >&2; }
want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- preparation ------------------------------------------------------------------------

log "work directory $WORK"
sh "$BENCH/deps.sh" || log "some tools are missing: the systems that need them are skipped"
make -s -C "$BENCH" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; exit 1; }
[ -x "$GUARD" ] || { log "build/mcp-guard missing: run make first"; exit 1; }
# Measure one binary for the whole run, even if build/ is rebuilt meanwhile.
cp "$GUARD" "$WORK/mcp-guard" && GUARD=$WORK/mcp-guard
GUARD_COMMIT=$("$GUARD" version 2>/dev/null | sed -n 's/^commit: *//p' | head -n1)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(nproc)" -lt 2 ]; then
	log "fewer than 2 cores: the system under test and the load generator share one"
	LOAD_CPU=$SUT_CPU
fi

# ---- processes ----------------------------------------------------------------------------

declare -A PID URL STATUS KIND LOGF
STARTED=()

descendants() {
	local p
	for p in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$p"
		descendants "$p"
	done
}

# start NAME KIND PORT CMD... : starts CMD on the SUT core; KIND is how to tell
# it is ready: guard (GET /ready), port (accepts TCP).
start() {
	local name=$1 kind=$2 port=$3
	shift 3
	LOGF[$name]=$WORK/$name.log
	nice -n "$NICE" taskset -c "$SUT_CPU" "$@" >"${LOGF[$name]}" 2>&1 &
	PID[$name]=$!
	KIND[$name]=$kind
	URL[$name]=http://127.0.0.1:$port/mcp
	STARTED+=("$name")
	local deadline=$((SECONDS + 30))
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "${PID[$name]}" 2>/dev/null; then
			wait "${PID[$name]}" 2>/dev/null
			local rc=$?
			local why
			why=$(grep -m1 -E 'ERROR|[Ee]rror' "${LOGF[$name]}" | sed 's/^[0-9TZ:.-]* *//' | cut -c1-300)
			[ -n "$why" ] || why=$(tail -n1 "${LOGF[$name]}" | cut -c1-300)
			STATUS[$name]="exited with status $rc at start: $why"
			log "$name: ${STATUS[$name]}"
			PID[$name]=
			return 1
		fi
		if [ "$kind" = guard ]; then
			curl -sf -o /dev/null "http://127.0.0.1:$port/ready" && break
		elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if [ $SECONDS -ge $deadline ]; then
		STATUS[$name]="not ready within 30 s"
		log "$name: ${STATUS[$name]}"
		stop "$name"
		return 1
	fi
	STATUS[$name]=ok
	log "$name: ready (pid ${PID[$name]}, ${URL[$name]})"
	return 0
}

# Stops a system and every descendant it had, by PID: SIGTERM, up to 12 s,
# then SIGKILL for whatever is left.
stop() {
	local name=$1 pid=${PID[$1]:-}
	[ -n "$pid" ] || return 0
	local kids
	kids=$(descendants "$pid")
	kill -TERM "$pid" 2>/dev/null
	local i
	for i in $(seq 1 120); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name: still running 12 s after SIGTERM, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	local k left=
	for k in $kids; do
		kill -0 "$k" 2>/dev/null && left="$left $k"
	done
	if [ -n "$left" ]; then
		sleep 1
		for k in $left; do
			kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null && log "$name: killed leftover pid $k"
		done
	fi
	PID[$name]=
}

cleanup() {
	local i
	for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
		stop "${STARTED[$i]}"
	done
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- configuration of the systems ---------------------------------------------------------

P_UP=$((PORT_BASE + 0))     # fast upstream, Streamable HTTP (direct access)
P_NGINX=$((PORT_BASE + 1))  # nginx in front of it
P_GUARD=$((PORT_BASE + 2))  # mcp-guard, stdio fast upstream, shared
P_PS=$((PORT_BASE + 3))     # mcp-guard, per_session
P_SG=$((PORT_BASE + 4))     # supergateway
P_MP=$((PORT_BASE + 5))     # mcp-proxy
P_AUTH=$((PORT_BASE + 6))   # mcp-guard, scenario 2
P_JWT=$((PORT_BASE + 7))    # mcp-guard, scenario 3
P_HTTP=$((PORT_BASE + 8))   # mcp-guard, scenario 4
P_EV_GUARD=$((PORT_BASE + 10))
P_EV_SG=$((PORT_BASE + 11))
P_EV_MP=$((PORT_BASE + 12))
P_EV_DIRECT=$((PORT_BASE + 13))
P_IDLE=$((PORT_BASE + 14))
# PORT_BASE + 15: the feature probe
P_OBS_OFF=$((PORT_BASE + 16))   # observability group: (a) audit and tracing off
P_OBS_FULL=$((PORT_BASE + 17))  # (b) audit to a file (hash chain) + tracing at sample_rate 0.1
P_OBS_AUDIT=$((PORT_BASE + 18)) # (c) audit to a file only
P_OTLP=$((PORT_BASE + 19))      # the loopback OTLP/HTTP receiver (bench/otlp-sink.mjs)
P_FED=$((PORT_BASE + 20))       # several upstreams: three servers, paths and federation
P_OBS_PLAIN=$((PORT_BASE + 21)) # (d) audit to a file at its defaults (no hash chain) + tracing 0.1
P_OBS_NULL=$((PORT_BASE + 22))  # (e) as (d), the audit file /dev/null (a diagnostic)

for p in $(seq "$PORT_BASE" $((PORT_BASE + 22))); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		log "port $p is in use: set BENCH_PORT_BASE to a free range"
		exit 1
	fi
done

# guard_config FILE PORT UPSTREAM_TOML [EXTRA_TOML]
guard_config() {
	cat >"$1" <<EOF
[server]
host = "127.0.0.1"
port = $2
max_connections = 20000
max_sessions = 20000

$3
$4
EOF
}
FAST_STDIO="transport = \"stdio\"
command = \"$FAST\"
args = [\"--stdio\", \"--tools\", \"$TOOLS\", \"--big-bytes\", \"$BIG_BYTES\"]
protocol = \"legacy\""
PLAIN="[rate_limit]
enabled = false

[audit]
enabled = false"

API_KEY=mcp_bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
API_HASH=$("$GUARD" hash-key "$API_KEY" 2>/dev/null | tail -n1)
"$NODE" "$BENCH/jwt.mjs" "$WORK" mcp-guard-bench mcp-guard-bench 2>>"$WORK/jwt.log" ||
	log "could not create the JWT scenario's keys (node missing?)"
TOKEN=$(cat "$WORK/token" 2>/dev/null || echo none)

guard_config "$WORK/guard.toml" "$P_GUARD" "[upstream]
$FAST_STDIO
mode = \"shared\"" "$PLAIN"
guard_config "$WORK/guard-per-session.toml" "$P_PS" "[upstream]
$FAST_STDIO
mode = \"per_session\"
max_processes = 300
idle_timeout_secs = 600" "$PLAIN"
guard_config "$WORK/guard-auth.toml" "$P_AUTH" "[upstream]
$FAST_STDIO
mode = \"shared\"" "[[auth.api_keys]]
id = \"bench\"
key_hash = \"$API_HASH\"

[rate_limit]
enabled = true
requests_per_second = 1000000
burst_size = 1000000

[audit]
enabled = true
stdout = false
file = \"$WORK/audit.log\""
guard_config "$WORK/guard-jwt.toml" "$P_JWT" "[upstream]
$FAST_STDIO
mode = \"shared\"" "[auth.jwt]
mode = \"jwks\"
jwks_url = \"http://127.0.0.1:$P_UP/jwks.json\"
allow_private_networks = true
algorithms = [\"RS256\"]
issuer = \"mcp-guard-bench\"
audience = [\"mcp-guard-bench\"]

$PLAIN"
# Scenario 4: the HTTP upstream behind the full pipeline (API key + rate limit
# high enough never to refuse); no audit, as nginx writes no access log here.
guard_config "$WORK/guard-http.toml" "$P_HTTP" "[upstream]
transport = \"http\"
url = \"http://127.0.0.1:$P_UP/mcp\"
allow_private_networks = true" "[[auth.api_keys]]
id = \"bench\"
key_hash = \"$API_HASH\"

[rate_limit]
enabled = true
requests_per_second = 1000000
burst_size = 1000000

[audit]
enabled = false"
# Observability group: scenario 2's pipeline (stdio fast upstream, API key,
# rate limit never refusing) three ways. Audit is on (to stdout) by default,
# so (a) turns it off explicitly; tracing is off by default, said anyway.
OBS_PIPE="[[auth.api_keys]]
id = \"bench\"
key_hash = \"$API_HASH\"

[rate_limit]
enabled = true
requests_per_second = 1000000
burst_size = 1000000"
OBS_TRACING="[tracing]
enabled = true
otlp_endpoint = \"http://127.0.0.1:$P_OTLP\"
allow_private_networks = true
sample_rate = 0.1"
OBS_AUDIT_FILE() { # FILE [HASH_CHAIN]
	printf '[audit]\nenabled = true\nstdout = false\nfile = "%s"\nhash_chain = %s\noverflow = "drop"\n' "$1" "${2:-true}"
}
guard_config "$WORK/guard-obs-off.toml" "$P_OBS_OFF" "[upstream]
$FAST_STDIO
mode = \"shared\"" "$OBS_PIPE

[audit]
enabled = false

[tracing]
enabled = false"
guard_config "$WORK/guard-obs-full.toml" "$P_OBS_FULL" "[upstream]
$FAST_STDIO
mode = \"shared\"" "$OBS_PIPE

$(OBS_AUDIT_FILE "$WORK/obs-full-audit.jsonl")

$OBS_TRACING"
guard_config "$WORK/guard-obs-plain.toml" "$P_OBS_PLAIN" "[upstream]
$FAST_STDIO
mode = \"shared\"" "$OBS_PIPE

$(OBS_AUDIT_FILE "$WORK/obs-plain-audit.jsonl" false)

$OBS_TRACING"
guard_config "$WORK/guard-obs-null.toml" "$P_OBS_NULL" "[upstream]
$FAST_STDIO
mode = \"shared\"" "$OBS_PIPE

$(OBS_AUDIT_FILE /dev/null false)

$OBS_TRACING"
guard_config "$WORK/guard-obs-audit.toml" "$P_OBS_AUDIT" "[upstream]
$FAST_STDIO
mode = \"shared\"" "$OBS_PIPE

$(OBS_AUDIT_FILE "$WORK/obs-audit-audit.jsonl")

[tracing]
enabled = false"
guard_config "$WORK/guard-everything.toml" "$P_EV_GUARD" "[upstream]
transport = \"stdio\"
command = \"$NODE\"
args = [\"$EVERYTHING\", \"stdio\"]
mode = \"shared\"
protocol = \"legacy\"" "$PLAIN"
guard_config "$WORK/guard-idle.toml" "$P_IDLE" "[upstream]
$FAST_STDIO
mode = \"shared\"" "$PLAIN"

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<EOF
# nginx as a plain HTTP reverse proxy: the floor a proxy cannot beat.
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 20000; }
http {
	access_log off;
	client_body_temp_path $WORK/nginx/body;
	proxy_temp_path $WORK/nginx/proxy;
	fastcgi_temp_path $WORK/nginx/fastcgi;
	uwsgi_temp_path $WORK/nginx/uwsgi;
	scgi_temp_path $WORK/nginx/scgi;
	keepalive_requests 10000000;
	keepalive_timeout 300s;
	upstream fast {
		server 127.0.0.1:$P_UP;
		keepalive 512;
		keepalive_requests 10000000;
	}
	server {
		listen 127.0.0.1:$P_NGINX;
		client_max_body_size 64m;
		location / {
			proxy_pass http://fast;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
EOF

SG_JS=$BENCH/node_modules/supergateway/dist/index.js
MP_JS=$BENCH/node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs

# ---- measuring ----------------------------------------------------------------------------

IDLE_WAITED=0
SKIPPED=0
SLOW=(--warmup "$SLOW_WARMUP" --duration "$SLOW_DURATION")

# point GROUP SERIES SYSTEM FAMILY CALL C REP [mcpload args...]
point() {
	local group=$1 series=$2 sys=$3 family=$4 call=$5 c=$6 rep=$7
	shift 7
	local head="{\"group\":\"$group\",\"series\":\"$series\",\"system\":\"$sys\",\"family\":\"$family\",\"call\":\"$call\",\"c\":$c,\"rep\":$rep"
	if [ "${STATUS[$sys]:-}" != ok ]; then
		return 0
	fi
	if [ $SECONDS -ge "$BUDGET" ]; then
		SKIPPED=$((SKIPPED + 1))
		echo "$head,\"skipped\":\"time budget of ${BUDGET} s spent\"}" >>"$JSONL"
		return 0
	fi
	local imax=$IDLE_MAX
	[ "$IDLE_WAITED" -lt "$IDLE_BUDGET" ] || imax=0
	local out
	out=$(nice -n "$NICE" taskset -c "$LOAD_CPU" "$LOAD" --url "${URL[$sys]}" -c "$c" --warmup "$WARMUP" \
		--duration "$DURATION" --family "$family" --call "$call" --sut-pid "${PID[$sys]}" \
		--wait-idle "$IDLE_PCT" --wait-idle-max "$imax" "$@" 2>>"$WORK/mcpload.err")
	if [ -z "$out" ]; then
		echo "$head,\"failed\":\"the load generator gave no result (see mcpload.err)\"}" >>"$JSONL"
		log "$series c=$c rep $rep: no result"
	else
		echo "$head,\"r\":$out}" >>"$JSONL"
		local w
		w=$(printf '%s' "$out" | sed -n 's/.*"waited_s":\([0-9]*\).*/\1/p')
		IDLE_WAITED=$((IDLE_WAITED + ${w:-0}))
		local rps p99 errs
		rps=$(printf '%s' "$out" | sed -n 's/.*"result":{[^}]*"rps":\([0-9.]*\).*/\1/p')
		p99=$(printf '%s' "$out" | sed -n 's/.*"result":{[^}]*"p99":\([0-9.]*\).*/\1/p')
		errs=$(printf '%s' "$out" | sed -n 's/.*"result":.*"total":\([0-9]*\)}.*/\1/p')
		log "$series c=$c rep $rep: ${rps:-?} req/s, p99 ${p99:-?} us, errors ${errs:-?}"
	fi
	if [ -n "${PID[$sys]}" ] && ! kill -0 "${PID[$sys]}" 2>/dev/null; then
		wait "${PID[$sys]}" 2>/dev/null
		STATUS[$sys]="crashed during the run (status $?): $(tail -n2 "${LOGF[$sys]}" | tr '\n' ' ' | cut -c1-300)"
		log "$sys: ${STATUS[$sys]}"
		PID[$sys]=
	fi
}

status_record() {
	local sys=$1 scenario=$2
	printf '{"status":"%s","scenario":"%s","state":%s}\n' "$sys" "$scenario" \
		"$("$NODE" -e 'console.log(JSON.stringify(process.argv[1]))' "${STATUS[$sys]:-not started}")" >>"$JSONL"
}

# Which parts of scenario 2's pipeline this build enforces: a gateway with one
# API key, 1 request/s (burst 1) and an audit file gets a wrong key (expects
# 401), then four requests with the right one (expects a 429 among them) and
# must have written audit lines. Recorded as {"feature": ..., "active": ...}.
probe_features() {
	local port=$((PORT_BASE + 15)) url cfg=$WORK/guard-probe.toml h
	guard_config "$cfg" "$port" "[upstream]
$FAST_STDIO
mode = \"shared\"" "[[auth.api_keys]]
id = \"probe\"
key_hash = \"$API_HASH\"

[rate_limit]
enabled = true
requests_per_second = 1
burst_size = 1

[audit]
enabled = true
stdout = false
file = \"$WORK/probe-audit.log\""
	start mcp-guard-probe guard "$port" "$GUARD" --config "$cfg" run || {
		printf '{"feature":"auth","active":false,"note":%s}\n' \
			"$("$NODE" -e 'console.log(JSON.stringify(process.argv[1]))' "${STATUS[mcp-guard-probe]}")" >>"$JSONL"
		return 0
	}
	url=${URL[mcp-guard-probe]}
	h=(-s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json'
		-H 'Accept: application/json, text/event-stream')
	local wrong codes="" sid i
	wrong=$(curl "${h[@]}" -H "Authorization: Bearer mcp_wrong_key" -X POST "$url" \
		-d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}')
	sid=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
		-H "Authorization: Bearer $API_KEY" -X POST "$url" \
		-d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}' |
		tr -d '\r' | sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: //p')
	for i in 2 3 4 5; do
		codes="$codes $(curl "${h[@]}" -H "Authorization: Bearer $API_KEY" -H "Mcp-Session-Id: $sid" \
			-H 'MCP-Protocol-Version: 2025-11-25' -X POST "$url" \
			-d '{"jsonrpc":"2.0","id":'$i',"method":"tools/call","params":{"name":"echo","arguments":{"message":"p"}}}')"
	done
	stop mcp-guard-probe
	local audit=false ratelimit=false auth=false
	[ "$wrong" = 401 ] && auth=true
	case "$codes" in *429*) ratelimit=true ;; esac
	[ -s "$WORK/probe-audit.log" ] && audit=true
	printf '{"feature":"auth","active":%s,"note":"wrong API key answered %s"}\n' "$auth" "$wrong" >>"$JSONL"
	printf '{"feature":"rate_limit","active":%s,"note":"4 calls at 1/s, burst 1, answered%s"}\n' "$ratelimit" "$codes" >>"$JSONL"
	printf '{"feature":"audit","active":%s,"note":"audit file %s"}\n' "$audit" \
		"$([ "$audit" = true ] && echo written || echo 'not written')" >>"$JSONL"
	log "scenario 2 pipeline in this build: auth=$auth rate_limit=$ratelimit audit=$audit"
}

# ---- group: fast upstream (scenarios 1-4, 6 and the fixed-rate latency) --------------------

if want fast || want rate; then
	log "starting the systems in front of the fast upstream"
	start upstream-http port "$P_UP" "$FAST" --http "$P_UP" --tools "$TOOLS" --big-bytes "$BIG_BYTES" --jwks "$WORK/jwks.json"
	if command -v nginx >/dev/null 2>&1; then
		start nginx port "$P_NGINX" nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx.conf"
	else
		STATUS[nginx]="nginx is not installed (apt-get install nginx-light)"
	fi
	start mcp-guard guard "$P_GUARD" "$GUARD" --config "$WORK/guard.toml" run
	start mcp-guard-per-session guard "$P_PS" "$GUARD" --config "$WORK/guard-per-session.toml" run
	start mcp-guard-auth guard "$P_AUTH" "$GUARD" --config "$WORK/guard-auth.toml" run
	start mcp-guard-jwt guard "$P_JWT" "$GUARD" --config "$WORK/guard-jwt.toml" run
	if [ -f "$SG_JS" ]; then
		start supergateway port "$P_SG" "$NODE" "$SG_JS" --stdio "$FAST --stdio --tools $TOOLS --big-bytes $BIG_BYTES" \
			--outputTransport streamableHttp --stateful --port "$P_SG" --logLevel none
	else
		STATUS[supergateway]="not installed (npm ci --prefix bench)"
	fi
	if [ -f "$MP_JS" ]; then
		start mcp-proxy port "$P_MP" "$NODE" "$MP_JS" --port "$P_MP" --server stream -- \
			"$FAST" --stdio --tools "$TOOLS" --big-bytes "$BIG_BYTES"
	else
		STATUS[mcp-proxy]="not installed (npm ci --prefix bench)"
	fi
	for s in upstream-http nginx mcp-guard mcp-guard-per-session supergateway mcp-proxy; do
		status_record "$s" 1
	done
	status_record mcp-guard-auth 2
	probe_features
	status_record mcp-guard-jwt 3

	if want fast; then
		log "scenario 1-4: tools/call echo, concurrency $CONC, $REPS repetition(s)"
		for rep in $(seq 1 "$REPS"); do
			for c in $CONC; do
				point fast direct upstream-http legacy echo "$c" "$rep"
				point fast nginx nginx legacy echo "$c" "$rep"
				point fast mcp-guard mcp-guard legacy echo "$c" "$rep"
				point fast mcp-guard-modern mcp-guard modern echo "$c" "$rep"
				point fast mcp-guard-per-session mcp-guard-per-session legacy echo "$c" "$rep"
				point fast supergateway supergateway legacy echo "$c" "$rep" "${SLOW[@]}"
				point fast mcp-proxy mcp-proxy legacy echo "$c" "$rep" "${SLOW[@]}"
				point fast mcp-guard-auth mcp-guard-auth legacy echo "$c" "$rep" -H "Authorization: Bearer $API_KEY"
				point fast mcp-guard-jwt mcp-guard-jwt legacy echo "$c" "$rep" -H "Authorization: Bearer $TOKEN"
			done
		done
	fi
	if want rate; then
		log "fixed rate: $RATE requests/s at concurrency 64 (added latency)"
		for rep in $(seq 1 "$RATE_REPS"); do
			point rate direct upstream-http legacy echo 64 "$rep" --rate "$RATE"
			point rate nginx nginx legacy echo 64 "$rep" --rate "$RATE"
			point rate mcp-guard mcp-guard legacy echo 64 "$rep" --rate "$RATE"
			point rate mcp-guard-auth mcp-guard-auth legacy echo 64 "$rep" --rate "$RATE" -H "Authorization: Bearer $API_KEY"
		done
	fi
	log "stopping the fast-upstream systems"
	cleanup
	STARTED=()
fi

# ---- group: HTTP upstream (scenario 4) -------------------------------------------------------
# mcp-guard with `transport = "http"` and the full pipeline (API key, rate
# limit) against nginx proxying the same upstream, direct access as the floor;
# closed loop at $HTTP_CONC, then a fixed rate at half nginx's c=64 throughput
# measured just before (or BENCH_HTTP_RATE) for the added latency.

# median_rps GROUP SERIES C: the median req/s of that point so far in this run.
median_rps() {
	"$NODE" -e '
const [file, g, s, c] = process.argv.slice(1);
const v = require("fs").readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l))
	.filter((p) => p.group === g && p.series === s && p.c === Number(c) && p.r?.result).map((p) => p.r.result.rps).sort((a, b) => a - b);
if (v.length) console.log(Math.round(v[Math.floor((v.length - 1) / 2)]));' "$JSONL" "$1" "$2" "$3"
}

if want http; then
	log "scenario 4: starting the HTTP upstream, nginx and mcp-guard (transport = http, API key + rate limit)"
	start upstream-http port "$P_UP" "$FAST" --http "$P_UP" --tools "$TOOLS" --big-bytes "$BIG_BYTES" --jwks "$WORK/jwks.json"
	if command -v nginx >/dev/null 2>&1; then
		start nginx port "$P_NGINX" nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx.conf"
	else
		STATUS[nginx]="nginx is not installed (apt-get install nginx-light)"
	fi
	start mcp-guard-http guard "$P_HTTP" "$GUARD" --config "$WORK/guard-http.toml" run
	status_record mcp-guard-http 4
	want fast || { status_record upstream-http 4; status_record nginx 4; }
	log "scenario 4: tools/call echo, concurrency $HTTP_CONC, $REPS repetition(s)"
	for rep in $(seq 1 "$REPS"); do
		for c in $HTTP_CONC; do
			point http direct upstream-http legacy echo "$c" "$rep"
			point http nginx nginx legacy echo "$c" "$rep"
			point http mcp-guard-http mcp-guard-http legacy echo "$c" "$rep" -H "Authorization: Bearer $API_KEY"
		done
	done
	hr=$HTTP_RATE
	[ -n "$hr" ] || { hr=$(median_rps http nginx 64); [ -n "$hr" ] && hr=$((hr / 2)); }
	[ -n "$hr" ] && [ "$hr" -gt 0 ] || hr=$RATE
	# The same at half the gateway's own c=64 throughput: its latency at half
	# of what it can do, whatever nginx does.
	ho=$(median_rps http mcp-guard-http 64)
	[ -n "$ho" ] && ho=$((ho / 2))
	echo "{\"http_rate\":$hr,\"http_rate_own\":${ho:-0}}" >>"$JSONL"
	log "scenario 4: fixed rates $hr (half nginx) and ${ho:-?} (half mcp-guard) requests/s at concurrency 64 (added latency), $RATE_REPS repetition(s)"
	for rep in $(seq 1 "$RATE_REPS"); do
		point http-rate direct upstream-http legacy echo 64 "$rep" --rate "$hr"
		point http-rate nginx nginx legacy echo 64 "$rep" --rate "$hr"
		point http-rate mcp-guard-http mcp-guard-http legacy echo 64 "$rep" --rate "$hr" -H "Authorization: Bearer $API_KEY"
		[ -n "$ho" ] && [ "$ho" -gt 0 ] || continue
		point http-rate-own direct upstream-http legacy echo 64 "$rep" --rate "$ho"
		point http-rate-own nginx nginx legacy echo 64 "$rep" --rate "$ho"
		point http-rate-own mcp-guard-http mcp-guard-http legacy echo 64 "$rep" --rate "$ho" -H "Authorization: Bearer $API_KEY"
	done
	cleanup
	STARTED=()
fi

# ---- group: server-everything over stdio -----------------------------------------------------

if want everything; then
	log "starting the systems in front of server-everything"
	if [ -f "$EVERYTHING" ] && [ -n "$NODE" ]; then
		start mcp-guard-everything guard "$P_EV_GUARD" "$GUARD" --config "$WORK/guard-everything.toml" run
		[ -f "$SG_JS" ] && start supergateway-everything port "$P_EV_SG" "$NODE" "$SG_JS" \
			--stdio "$NODE $EVERYTHING stdio" --outputTransport streamableHttp --stateful \
			--port "$P_EV_SG" --logLevel none
		[ -f "$MP_JS" ] && start mcp-proxy-everything port "$P_EV_MP" "$NODE" "$MP_JS" \
			--port "$P_EV_MP" --server stream -- "$NODE" "$EVERYTHING" stdio
		start direct-everything port "$P_EV_DIRECT" env PORT="$P_EV_DIRECT" "$NODE" "$EVERYTHING" streamableHttp
	else
		STATUS[mcp-guard-everything]="server-everything is not installed (make deps)"
	fi
	for s in mcp-guard-everything supergateway-everything mcp-proxy-everything direct-everything; do
		status_record "$s" 1
	done
	log "server-everything: tools/call echo, concurrency $EV_CONC, $REPS repetition(s)"
	for rep in $(seq 1 "$REPS"); do
		for c in $EV_CONC; do
			point everything direct direct-everything legacy echo "$c" "$rep" "${SLOW[@]}"
			point everything mcp-guard mcp-guard-everything legacy echo "$c" "$rep" "${SLOW[@]}"
			point everything supergateway supergateway-everything legacy echo "$c" "$rep" "${SLOW[@]}"
			point everything mcp-proxy mcp-proxy-everything legacy echo "$c" "$rep" "${SLOW[@]}"
		done
	done
	cleanup
	STARTED=()
fi

# ---- group: idle sessions (scenario 5) --------------------------------------------------------

if want idle; then
	log "scenario 5: $IDLE_SESSIONS idle sessions with open GET streams"
	if start mcp-guard-idle guard "$P_IDLE" "$GUARD" --config "$WORK/guard-idle.toml" run; then
		point idle mcp-guard mcp-guard-idle legacy echo 64 1 --idle-sessions "$IDLE_SESSIONS" \
			--setup-timeout 90
	fi
	status_record mcp-guard-idle 5
	cleanup
	STARTED=()
fi

# ---- group: observability (issue 12: audit + tracing within 10% of audit off) -------------
# Scenario 2's pipeline (API key + rate limit, stdio fast upstream) three ways,
# all started at once and measured interleaved in one run, the order rotated
# every repetition: (a) audit and tracing off; (b) audit to a file with the
# hash chain and tracing at sample_rate 0.1 exporting OTLP/HTTP to a loopback
# receiver (bench/otlp-sink.mjs, on the load generator's core: a collector is
# not the gateway's cost); (c) audit to a file only; (d) as (b) with the audit
# file at its defaults (hash_chain = false), the issue's literal setting;
# (e) as (d) writing to /dev/null, a diagnostic with no target: what (d)
# costs without the page cache and the disk (fsync = "batch" makes the
# gateway's own thread pay the disk's writeback). Closed loop at $OBS_CONC,
# then a fixed rate (BENCH_OBS_RATE, default half of (a)'s c=64 throughput in
# this run, at most BENCH_RATE). During every window /metrics is sampled
# every 0.2 s (all four alike) for the largest audit and trace queue seen;
# after it, the counters are read (dropped, queue depth, written, exported).

OBS_SYSTEMS="mcp-guard-obs-off mcp-guard-obs-full mcp-guard-obs-audit mcp-guard-obs-plain mcp-guard-obs-null"
OBS_METRICS="mcp_guard_audit_queue_depth mcp_guard_audit_queue_size mcp_guard_audit_events_total mcp_guard_audit_written_total mcp_guard_audit_dropped_total mcp_guard_audit_write_errors_total mcp_guard_trace_queue_spans mcp_guard_trace_queue_size mcp_guard_trace_spans_exported_total mcp_guard_trace_spans_dropped_total mcp_guard_trace_export_failures_total mcp_guard_requests_total"

# metrics_json PORT: the OBS_METRICS of that gateway as one JSON object (the
# sum over label sets; absent metrics are left out).
metrics_json() {
	curl -s -m 2 -H "Authorization: Bearer $API_KEY" "http://127.0.0.1:$1/metrics" |
		awk -v want="$OBS_METRICS" 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) ok[w[i]] = 1 }
			/^#/ { next }
			{ name = $1; sub(/\{.*/, "", name); if (name in ok) { v[name] += $NF; seen[name] = 1 } }
			END { printf "{"; sep = ""; for (i = 1; i <= n; i++) if (w[i] in seen) { printf "%s\"%s\":%.17g", sep, w[i], v[w[i]]; sep = "," } printf "}" }'
}

# obs_point GROUP SERIES SYSTEM C REP [mcpload args...]: a point with /metrics
# sampled during it (at most 600 samples, stopped through a file), then read.
obs_point() {
	local group=$1 series=$2 sys=$3 c=$4 rep=$5 port
	shift 5
	[ "${STATUS[$sys]:-}" = ok ] || return 0
	port=${URL[$sys]#http://127.0.0.1:}
	port=${port%/mcp}
	local samples=$WORK/obs-samples-$series-$group-$rep.txt stopf=$WORK/obs-stop
	rm -f "$stopf"
	: >"$samples"
	nice -n "$NICE" taskset -c "$LOAD_CPU" bash -c '
		for i in $(seq 1 600); do
			[ -e "$1" ] && exit 0
			curl -s -m 1 -H "Authorization: Bearer $3" "http://127.0.0.1:$2/metrics" |
				awk "/^mcp_guard_audit_queue_depth /{a=\$NF} /^mcp_guard_trace_queue_spans /{t=\$NF} END{print a+0, t+0}" >>"$4"
			sleep 0.2
		done' _ "$stopf" "$port" "$API_KEY" "$samples" &
	local spid=$!
	point "$group" "$series" "$sys" legacy echo "$c" "$rep" -H "Authorization: Bearer $API_KEY" "$@"
	touch "$stopf"
	wait "$spid" 2>/dev/null
	[ "${STATUS[$sys]:-}" = ok ] || return 0
	local amax tmax n
	read -r amax tmax n < <(awk 'BEGIN{a=0;t=0} {if ($1>a) a=$1; if ($2>t) t=$2; n++} END{print a+0, t+0, n+0}' "$samples")
	echo "{\"obs_metrics\":{\"group\":\"$group\",\"series\":\"$series\",\"c\":$c,\"rep\":$rep,\"samples\":$n,\"audit_depth_max\":$amax,\"trace_queue_max\":$tmax,\"after\":$(metrics_json "$port")}}" >>"$JSONL"
}

OBS_GO=
if want obs; then
	log "observability: starting the OTLP receiver and five scenario 2 gateways (off, audit + tracing 0.1, audit, audit without chain + tracing 0.1, the same to /dev/null)"
	start otlp-sink port "$P_OTLP" taskset -c "$LOAD_CPU" "$NODE" "$BENCH/otlp-sink.mjs" "$P_OTLP" 1800
	if [ "${STATUS[otlp-sink]:-}" = ok ]; then
		OBS_GO=1
	else
		# Without a receiver every export fails at once: the tracing
		# configurations would measure a cheaper gateway than a real one.
		log "observability: group skipped: the OTLP receiver did not start (npm ci in the repository root?)"
		status_record otlp-sink obs
	fi
fi
if [ -n "$OBS_GO" ]; then
	OBS_CONC=${BENCH_OBS_CONC:-64}
	start mcp-guard-obs-off guard "$P_OBS_OFF" "$GUARD" --config "$WORK/guard-obs-off.toml" run
	start mcp-guard-obs-full guard "$P_OBS_FULL" "$GUARD" --config "$WORK/guard-obs-full.toml" run
	start mcp-guard-obs-audit guard "$P_OBS_AUDIT" "$GUARD" --config "$WORK/guard-obs-audit.toml" run
	start mcp-guard-obs-plain guard "$P_OBS_PLAIN" "$GUARD" --config "$WORK/guard-obs-plain.toml" run
	start mcp-guard-obs-null guard "$P_OBS_NULL" "$GUARD" --config "$WORK/guard-obs-null.toml" run
	for s in $OBS_SYSTEMS; do status_record "$s" obs; done
	status_record otlp-sink obs
	order=(obs-off:mcp-guard-obs-off obs-full:mcp-guard-obs-full obs-audit:mcp-guard-obs-audit obs-plain:mcp-guard-obs-plain obs-null:mcp-guard-obs-null)
	log "observability: tools/call echo, concurrency $OBS_CONC, $REPS repetition(s), order rotated"
	for rep in $(seq 1 "$REPS"); do
		for c in $OBS_CONC; do
			for k in "${!order[@]}"; do
				sp=${order[$(((k + rep - 1) % ${#order[@]}))]}
				obs_point obs "${sp%%:*}" "${sp#*:}" "$c" "$rep"
			done
		done
	done
	orate=${BENCH_OBS_RATE:-}
	if [ -z "$orate" ]; then
		orate=$(median_rps obs obs-off 64)
		[ -n "$orate" ] && orate=$((orate / 2))
		[ -n "$orate" ] && [ "$orate" -gt 0 ] && [ "$orate" -lt "$RATE" ] || orate=$RATE
	fi
	echo "{\"obs_rate\":$orate}" >>"$JSONL"
	log "observability: fixed rate $orate requests/s at concurrency 64, $RATE_REPS repetition(s)"
	# (e) is a CPU diagnostic: the fixed rate leaves it out
	rate_order=("${order[@]:0:4}")
	for rep in $(seq 1 "$RATE_REPS"); do
		for k in "${!rate_order[@]}"; do
			sp=${rate_order[$(((k + rep - 1) % ${#rate_order[@]}))]}
			obs_point obs-rate "${sp%%:*}" "${sp#*:}" 64 "$rep" --rate "$orate"
		done
	done
	# Stop the gateways first (a graceful stop flushes both queues), then
	# read what the receiver got and check the audit files.
	for s in $OBS_SYSTEMS; do stop "$s"; done
	if [ "${STATUS[otlp-sink]:-}" = ok ]; then
		echo "{\"obs_sink\":$(curl -s -m 2 "http://127.0.0.1:$P_OTLP/stats" || echo null)}" >>"$JSONL"
	fi
	for f in full audit plain; do
		af=$WORK/obs-$f-audit.jsonl
		[ -f "$af" ] || continue
		lines=$(wc -l <"$af")
		bytes=$(stat -c %s "$af")
		if [ "$f" = plain ]; then # no hash chain: nothing to verify
			echo "no hash chain (hash_chain = false)" >"$WORK/obs-$f-verify.txt"
			vrc=null
		else
			nice -n 10 taskset -c "$LOAD_CPU" timeout 120 "$GUARD" audit verify "$af" >"$WORK/obs-$f-verify.txt" 2>&1
			vrc=$?
		fi
		verify=$(tail -n1 "$WORK/obs-$f-verify.txt" | cut -c1-200)
		echo "{\"obs_audit_file\":{\"series\":\"obs-$f\",\"lines\":$lines,\"bytes\":$bytes,\"verify_status\":$vrc,\"verify\":$("$NODE" -e 'console.log(JSON.stringify(process.argv[1]))' "$verify")}}" >>"$JSONL"
		log "observability: obs-$f audit file: $lines records, $bytes bytes, verify: $verify"
		rm -f "$af" # can be hundreds of MB; what it held is recorded above
	done
	cleanup
	STARTED=()
fi

# ---- group: several upstreams (issue 11) ----------------------------------------------------
# One gateway, three fast stdio upstreams of 20, 50 and 100 tools at /s1, /s2,
# /s3 and federated at /mcp (no auth, no limits, no audit: the routing is
# what is measured). Interleaved in one run: tools/list of each server at its
# own path against the federated tools/list (all 170 tools: every server
# asked in parallel, merged, renamed); tools/call echo at /s1 against the
# same call at /mcp as s1__echo. Targets: the federated list within 2x the
# slowest single list (req/s ratio >= 0.5), the federated call within 10%.

if want fed; then
	FED_CONC=${BENCH_FED_CONC:-16}
	fed_server() {
		printf '[[upstream.servers]]\nname = "%s"\npath_prefix = "/%s"\ntransport = "stdio"\ncommand = "%s"\nargs = ["--stdio", "--tools", "%s", "--big-bytes", "1024"]\nprotocol = "legacy"\n\n' "$1" "$1" "$FAST" "$2"
	}
	guard_config "$WORK/guard-fed.toml" "$P_FED" "[upstream]
federation = true

$(fed_server s1 20)
$(fed_server s2 50)
$(fed_server s3 100)" "$PLAIN"
	log "several upstreams: starting one gateway with three servers"
	start mcp-guard-fed guard "$P_FED" "$GUARD" --config "$WORK/guard-fed.toml" run
	status_record mcp-guard-fed fed
	# The same gateway under a name per path (point() reads URL, PID, STATUS).
	for p in s1 s2 s3; do
		URL[fed-$p]=http://127.0.0.1:$P_FED/$p
		PID[fed-$p]=${PID[mcp-guard-fed]:-}
		STATUS[fed-$p]=${STATUS[mcp-guard-fed]:-}
	done
	URL[fed-mcp]=http://127.0.0.1:$P_FED/mcp
	PID[fed-mcp]=${PID[mcp-guard-fed]:-}
	STATUS[fed-mcp]=${STATUS[mcp-guard-fed]:-}
	log "several upstreams: tools/list and tools/call, concurrency $FED_CONC, $REPS repetition(s)"
	for rep in $(seq 1 "$REPS"); do
		point fed list-s1 fed-s1 legacy list "$FED_CONC" "$rep" --expect-tools 20
		point fed list-s2 fed-s2 legacy list "$FED_CONC" "$rep" --expect-tools 50
		point fed list-s3 fed-s3 legacy list "$FED_CONC" "$rep" --expect-tools 100
		point fed list-federated fed-mcp legacy list "$FED_CONC" "$rep" --expect-tools 170
		point fed call-s1 fed-s1 legacy echo "$FED_CONC" "$rep"
		point fed call-federated fed-mcp legacy echo "$FED_CONC" "$rep" --tool s1__echo
	done
	for p in s1 s2 s3 mcp; do PID[fed-$p]=; STATUS[fed-$p]=; done
	cleanup
	STARTED=()
fi

# ---- group: large messages (scenario 6), last: the time budget cuts it first --------------

if want big; then
	log "starting the systems for the large messages"
	start upstream-http port "$P_UP" "$FAST" --http "$P_UP" --tools "$TOOLS" --big-bytes "$BIG_BYTES" --jwks "$WORK/jwks.json"
	command -v nginx >/dev/null 2>&1 &&
		start nginx port "$P_NGINX" nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx" -c "$WORK/nginx.conf"
	start mcp-guard guard "$P_GUARD" "$GUARD" --config "$WORK/guard.toml" run
	start mcp-guard-http guard "$P_HTTP" "$GUARD" --config "$WORK/guard-http.toml" run
	log "scenario 6: 1 MiB tools/call answer and a $TOOLS-tool tools/list, concurrency $BIG_CONC"
	for rep in $(seq 1 "$REPS"); do
		for c in $BIG_CONC; do
			for s in direct:upstream-http nginx:nginx mcp-guard:mcp-guard mcp-guard-http:mcp-guard-http; do
				auth=()
				[ "${s#*:}" = mcp-guard-http ] && auth=(-H "Authorization: Bearer $API_KEY")
				point big "${s%%:*}" "${s#*:}" legacy big "$c" "$rep" --expect-bytes "$BIG_BYTES" "${SLOW[@]}" "${auth[@]}"
				point big "${s%%:*}" "${s#*:}" legacy list "$c" "$rep" --expect-tools "$TOOLS" "${SLOW[@]}" "${auth[@]}"
			done
		done
	done
	cleanup
	STARTED=()
fi

# ---- report --------------------------------------------------------------------------------

log "measuring done in $SECONDS s ($SKIPPED point(s) skipped by the time budget)"
meta() {
	printf '{"meta":{"date":"%s","quick":%s,"reps":%s,"warmup_s":%s,"duration_s":%s,' \
		"$DATE" "$([ "$QUICK" = 1 ] && echo true || echo false)" "$REPS" "$WARMUP" "$DURATION"
	printf '"slow_warmup_s":%s,"slow_duration_s":%s,' "$SLOW_WARMUP" "$SLOW_DURATION"
	printf '"rate":%s,"idle_pct":%s,"idle_max_s":%s,"sut_cpu":%s,"load_cpu":%s,"seconds":%s,"nice":%s,' \
		"$RATE" "$IDLE_PCT" "$IDLE_MAX" "$SUT_CPU" "$LOAD_CPU" "$SECONDS" "$NICE"
	printf '"skipped":%s,"tools":%s,"big_bytes":%s,"idle_sessions":%s,' "$SKIPPED" "$TOOLS" "$BIG_BYTES" "$IDLE_SESSIONS"
	printf '"commit":"%s","dirty":%s,"cpu":"%s","cores":%s,"kernel":"%s",' \
		"${GUARD_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null)}" \
		"$(case $GUARD_COMMIT in *-dirty) echo true ;; *) echo false ;; esac)" \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" "$(nproc)" "$(uname -r)"
	printf '"nginx":"%s","node":"%s","gateway":"%s"}}\n' \
		"$(nginx -v 2>&1 | sed 's/.*nginx\///')" "$("$NODE" --version 2>/dev/null)" \
		"$("$GUARD" version 2>/dev/null | head -n1)"
}
meta >>"$JSONL"
[ "$RESULTS" = "$WORK" ] || cp "$JSONL" "$RESULTS/$DATE$SUFFIX.jsonl"
DOCS=$ROOT/docs/performance.md
[ "$QUICK" = 1 ] || [ "${BENCH_NO_DOCS:-0}" = 1 ] && DOCS=
[ "$RESULTS" = "$WORK" ] && cp "$JSONL" "$WORK/$DATE$SUFFIX.jsonl"
"$NODE" "$BENCH/report.mjs" --in "$RESULTS/$DATE$SUFFIX.jsonl" --out "$RESULTS" \
	--name "$DATE$SUFFIX" --work "$WORK" ${DOCS:+--docs "$DOCS"} || exit 1
log "wrote $RESULTS/$DATE$SUFFIX.md${DOCS:+ and updated docs/performance.md}"
exit 0
}
