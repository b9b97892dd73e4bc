#!/usr/bin/env node
// MCP conformance harness for mcp-guard.
//
//   node tests/conformance/run.mjs                          # direct baseline only
//   MCP_GUARD_BIN=build/mcp-guard node tests/conformance/run.mjs
//   CONFORMANCE_REPORT=/tmp/conformance.md ...              # also write Markdown
//
// 1. Starts tests/conformance/upstream.mjs over Streamable HTTP on a free
//    loopback port and runs the official server conformance suite
//    (@modelcontextprotocol/conformance, run with the Node >= 22 binary from the
//    `node` npm package) directly against it:
//      * leg "2025-11-25": `--requirements 2025-11-25` (stateful 2025 wire),
//      * leg "2026-07-28": `--requirements 2026-07-28` (stateless 2026 wire),
//      * leg "extensions": every server scenario neither requirement set names
//        (today the SEP-2640 skills extension), one `--scenario` run each, at
//        the wire the suite infers for it.
//    A requirement set runs its scored scenarios *and* its not_scored ones
//    (pending, extension, added-after-release), so the three legs together
//    cover every server scenario the suite ships, each at the wire(s) it
//    belongs to, without running a scenario twice on the same wire.
// 2. If MCP_GUARD_BIN is set, for each gateway target (CONFORMANCE_TARGETS,
//    default "stdio http"):
//      * "stdio": `$MCP_GUARD_BIN --config <tmp>/mcp-guard.toml run` with the
//        upstream spawned over stdio,
//      * "http": a fresh upstream.mjs over Streamable HTTP on another loopback
//        port and `$MCP_GUARD_BIN --config <tmp>/mcp-guard-http.toml run` in
//        front of it (`transport = "http"`),
//    waits for GET /ready == 200 and runs the same legs against
//    http://127.0.0.1:<port>/mcp.
// 3. Compares per check and per target: every check that passed (SUCCESS)
//    directly must pass through the gateway. Prints a table per target,
//    optionally writes Markdown to $CONFORMANCE_REPORT, exits 1 on any
//    regression (or harness error), else 0.
//
// Everything binds 127.0.0.1; every child is stopped by PID in a finally
// block; results go to a temp dir (never into the repo); the whole run is
// bounded by a hard deadline (CONFORMANCE_TIMEOUT_MS, default 10 minutes).

import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '..', '..');
export const UPSTREAM = path.join(HERE, 'upstream.mjs');
const CONFORMANCE_PKG = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'conformance');
const CONFORMANCE_CLI = path.join(CONFORMANCE_PKG, 'dist', 'index.js');
const NODE22 = path.join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node');

export const REQUIREMENT_SETS = ['2025-11-25', '2026-07-28'];
const DEFAULT_DEADLINE_MS = 10 * 60 * 1000;
const SCENARIO_TIMEOUT_MS = 20000; // the CLI's per-scenario --timeout
const READY_TIMEOUT_MS = 20000;
const STOP_GRACE_MS = 10000;

// Checks whose scenario reports INFO for an equally valid behaviour: e.g.
// server-sse-streams-functional is INFO when a server answers concurrent POSTs
// with JSON instead of SSE ("SSE streaming is optional"). Such an INFO through
// the gateway is a difference, not a regression.
const INFO_IS_VALID = new Set(['server-sse-streams-functional']);

// Checks that cannot pass through a stdio upstream, each with the reason.
// They are reported as known differences, never silently dropped; keep this
// list short and true.
const KNOWN_DIFFERENCES_STDIO = new Map([
    // The scenario's test_reconnection tool closes its own HTTP SSE stream
    // mid-call (SEP-1699 polling). A stdio server has no stream to close, so
    // the gateway answers the call directly: the priming/retry/resume checks
    // are never reached. The gateway does send priming events and replays on
    // Last-Event-ID for the streams it opens (tests/e2e).
    ['server-sse-polling/server-sse-priming-event', 'stdio upstream cannot close the client stream (SEP-1699)'],
    ['server-sse-polling/server-sse-retry-field', 'stdio upstream cannot close the client stream (SEP-1699)'],
    ['server-sse-polling/server-sse-disconnect-resume', 'stdio upstream cannot close the client stream (SEP-1699)'],
]);

// Checks that cannot pass through the same upstream served over Streamable
// HTTP (`transport = "http"`), each with the reason; same rule as above.
const KNOWN_DIFFERENCES_HTTP = new Map([
    // test_reconnection makes the upstream close its POST SSE stream after a
    // priming event (SEP-1699 polling). That stream is the gateway's, not the
    // client's: the gateway resumes it itself (GET with Last-Event-ID, as a
    // client would), gets the result and answers the client's POST with JSON,
    // so the scenario reports "JSON instead of SSE - priming event tests not
    // applicable" (INFO) and never reaches these three checks.
    ['server-sse-polling/server-sse-priming-event', 'the gateway resumes the upstream stream itself and answers with JSON (SEP-1699)'],
    ['server-sse-polling/server-sse-retry-field', 'the gateway resumes the upstream stream itself and answers with JSON (SEP-1699)'],
    ['server-sse-polling/server-sse-disconnect-resume', 'the gateway resumes the upstream stream itself and answers with JSON (SEP-1699)'],
]);

// The gateway targets: the same upstream behind mcp-guard over stdio and over
// Streamable HTTP, each compared with the direct run on its own.
export const GATEWAY_TARGETS = [
    { id: 'stdio', target: 'mcp-guard', label: 'mcp-guard, upstream over stdio', known: KNOWN_DIFFERENCES_STDIO },
    { id: 'http', target: 'mcp-guard-http', label: 'mcp-guard, upstream over Streamable HTTP', known: KNOWN_DIFFERENCES_HTTP }
];

const STATUS_RANK = { SUCCESS: 0, INFO: 1, SKIPPED: 2, WARNING: 3, FAILURE: 4, MISSING: 5 };

// ------------------------------------------------------------- utilities --
class Deadline {
    constructor(ms) {
        this.end = Date.now() + ms;
        this.total = ms;
    }
    remaining() {
        return Math.max(0, this.end - Date.now());
    }
    check(what) {
        if (this.remaining() <= 0) throw new Error(`conformance run exceeded its ${Math.round(this.total / 1000)} s limit (${what})`);
    }
}

const log = msg => process.stderr.write(`[conformance] ${msg}\n`);
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// Children we started, so a finally block (or a signal) can stop every one by PID.
const children = new Set();

function startChild(cmd, args, { cwd, logFile, env, onStdout } = {}) {
    const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const out = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
    child.stdout.on('data', chunk => {
        out?.write(chunk);
        onStdout?.(chunk.toString());
    });
    child.stderr.on('data', chunk => out?.write(chunk));
    child.exited = new Promise(resolve => {
        child.on('exit', (code, signal) => {
            children.delete(child);
            resolve({ code, signal });
        });
        child.on('error', err => {
            child.spawnError = err;
            children.delete(child);
            resolve({ code: null, signal: null, error: err });
        });
    });
    child.exited.then(() => out?.end());
    return child;
}

/** SIGTERM by PID, then SIGKILL after `graceMs`; resolves once the child is gone. */
async function stopChild(child, graceMs = STOP_GRACE_MS) {
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exited;
    try {
        process.kill(child.pid, 'SIGTERM');
    } catch {
        /* already gone */
    }
    const done = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
        try {
            process.kill(child.pid, 'SIGKILL');
        } catch {
            /* already gone */
        }
        await child.exited;
    }
    return child.exited;
}

async function stopAllChildren() {
    await Promise.all([...children].map(c => stopChild(c)));
}

async function runChild(cmd, args, { cwd, logFile, timeoutMs }) {
    const child = startChild(cmd, args, { cwd, logFile });
    let timedOut = false;
    const timer = setTimeout(() => {
        timedOut = true;
        stopChild(child, 2000);
    }, timeoutMs);
    try {
        const result = await child.exited;
        return { ...result, timedOut };
    } finally {
        clearTimeout(timer);
    }
}

function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

async function tail(file, lines = 40) {
    try {
        return (await readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
    } catch {
        return '';
    }
}

function tomlString(s) {
    return JSON.stringify(s); // a TOML basic string is a JSON string for our inputs
}

// -------------------------------------------------------------- the suite --
function conformanceNode() {
    if (existsSync(NODE22)) return NODE22;
    if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
    throw new Error(`the conformance CLI needs Node >= 22: ${NODE22} is missing (npm package "node@22")`);
}

/** Minimal reader for the conformance package's requirements/<rev>.yaml (server leg only). */
export function parseRequirements(yamlText) {
    const scored = [];
    const notScored = [];
    let section;
    let entry;
    const flush = () => {
        if (entry && entry.leg === 'server') notScored.push({ scenario: entry.scenario, reason: entry.reason });
        entry = undefined;
    };
    for (const raw of yamlText.split('\n')) {
        const line = raw.replace(/\s+#.*$/, '').replace(/^#.*$/, '');
        if (!line.trim()) continue;
        const top = /^([A-Za-z_]+):\s*$/.exec(line);
        if (top) {
            flush();
            section = top[1];
            continue;
        }
        if (section === 'server') {
            const m = /^\s+-\s+(\S+)\s*$/.exec(line);
            if (m) scored.push(m[1]);
        } else if (section === 'not_scored') {
            const start = /^\s+-\s+scenario:\s*(\S+)\s*$/.exec(line);
            if (start) {
                flush();
                entry = { scenario: start[1] };
                continue;
            }
            const kv = /^\s+(leg|reason):\s*(\S+)\s*$/.exec(line);
            if (kv && entry) entry[kv[1]] = kv[2];
        }
    }
    flush();
    return { scored, notScored };
}

async function loadRequirements(revision) {
    const file = path.join(CONFORMANCE_PKG, 'requirements', `${revision}.yaml`);
    return parseRequirements(await readFile(file, 'utf8'));
}

async function listServerScenarios(node, cwd, deadline) {
    const logFile = path.join(cwd, 'list.txt');
    const res = await runChild(node, [CONFORMANCE_CLI, 'list', '--server'], { cwd, logFile, timeoutMs: Math.min(60000, deadline.remaining()) });
    if (res.code !== 0) throw new Error(`conformance list failed (${res.code ?? res.signal}): ${await tail(logFile)}`);
    const names = [];
    for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
        const m = /^\s+-\s+(\S+)(\s+\[([^\]]*)\])?/.exec(line);
        if (m) names.push({ name: m[1], tags: m[3] ?? '' });
    }
    return names;
}

/** The legs and, per leg, the scenarios it must report and how each is scored. */
export async function planLegs(node, cwd, deadline) {
    const legs = [];
    const covered = new Set();
    for (const revision of REQUIREMENT_SETS) {
        const req = await loadRequirements(revision);
        const scenarios = new Map();
        for (const s of req.scored) scenarios.set(s, 'scored');
        for (const s of req.notScored) scenarios.set(s.scenario, `not scored (${s.reason})`);
        for (const s of scenarios.keys()) covered.add(s);
        legs.push({ id: revision, label: `--requirements ${revision}`, runs: [['--requirements', revision]], scenarios });
    }
    const all = await listServerScenarios(node, cwd, deadline);
    const extras = all.filter(s => !covered.has(s.name));
    if (extras.length > 0) {
        const scenarios = new Map(extras.map(s => [s.name, `not scored (${s.tags || 'outside requirement sets'})`]));
        legs.push({
            id: 'extensions',
            label: '--scenario <each server scenario outside both requirement sets>',
            runs: extras.map(s => ['--scenario', s.name]),
            scenarios
        });
    }
    return legs;
}

const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

/**
 * Reads <outDir>/server-<scenario>-<timestamp>/checks.json into
 * Map<scenario, Map<key, {id, description, status, errorMessage}>>.
 * Check ids repeat within a scenario (one id per rule, probed several ways),
 * so each occurrence is keyed by id and ordinal: "id", "id#2", "id#3", ...
 * Scenarios run their probes in a fixed order, so the same key names the
 * same probe in the direct and the gateway run.
 */
async function collectResults(outDir) {
    const results = new Map();
    let dirs = [];
    try {
        dirs = await readdir(outDir);
    } catch {
        return results;
    }
    for (const dir of dirs.sort()) {
        const m = RESULT_DIR.exec(dir);
        if (!m) continue;
        let checks;
        try {
            checks = JSON.parse(await readFile(path.join(outDir, dir, 'checks.json'), 'utf8'));
        } catch {
            continue;
        }
        const seen = new Map();
        const byKey = new Map();
        for (const c of Array.isArray(checks) ? checks : []) {
            const n = (seen.get(c.id) ?? 0) + 1;
            seen.set(c.id, n);
            const status = STATUS_RANK[c.status] === undefined ? 'FAILURE' : c.status;
            byKey.set(n === 1 ? c.id : `${c.id}#${n}`, { id: c.id, description: c.description, status, errorMessage: c.errorMessage });
        }
        results.set(m[1], byKey);
    }
    return results;
}

/** SUCCESS passes; INFO (trace output) and SKIPPED (not applicable) carry no verdict; anything else fails. */
export function verdict(status) {
    if (status === 'SUCCESS') return 'pass';
    if (status === 'INFO' || status === 'SKIPPED') return 'none';
    return 'fail';
}

async function runLeg({ leg, url, node, workDir, deadline, target }) {
    const outDir = path.join(workDir, `${target}-${leg.id}`);
    await mkdir(outDir, { recursive: true });
    const logFile = path.join(workDir, `${target}-${leg.id}.log`);
    const exitCodes = [];
    for (const extra of leg.runs) {
        deadline.check(`${target} ${leg.id}`);
        const args = [CONFORMANCE_CLI, 'server', '--url', url, ...extra, '--timeout', String(SCENARIO_TIMEOUT_MS), '-o', outDir];
        const res = await runChild(node, args, { cwd: workDir, logFile, timeoutMs: deadline.remaining() });
        exitCodes.push(res.timedOut ? 'timeout' : (res.code ?? res.signal));
        if (res.timedOut) break;
    }
    const results = await collectResults(outDir);
    // Scenarios the leg should have reported but did not (CLI crash, timeout).
    for (const scenario of leg.scenarios.keys()) {
        if (!results.has(scenario)) {
            const id = '(scenario produced no results)';
            results.set(scenario, new Map([[id, { id, description: id, status: 'MISSING', errorMessage: `no checks.json; see ${logFile}` }]]));
        }
    }
    return { exitCodes, results, logFile };
}

async function runAllLegs({ legs, url, node, workDir, deadline, target }) {
    const out = {};
    for (const leg of legs) {
        log(`${target}: ${leg.label} against ${url}`);
        const started = Date.now();
        out[leg.id] = await runLeg({ leg, url, node, workDir, deadline, target });
        out[leg.id].seconds = (Date.now() - started) / 1000;
    }
    return out;
}

// ------------------------------------------------------------- processes --
async function startUpstreamHttp(workDir, deadline, logName = 'upstream-http.log') {
    const logFile = path.join(workDir, logName);
    let buffer = '';
    let resolveUrl;
    const urlPromise = new Promise(resolve => (resolveUrl = resolve));
    const child = startChild(process.execPath, [UPSTREAM, '--http', '--port', '0', '--host', '127.0.0.1'], {
        cwd: workDir,
        logFile,
        onStdout: chunk => {
            buffer += chunk;
            const m = /listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(buffer);
            if (m) resolveUrl(m[1]);
        }
    });
    const url = await Promise.race([
        urlPromise,
        child.exited.then(r => {
            throw new Error(`upstream exited early (${r.code ?? r.signal}): ${buffer}`);
        }),
        sleep(Math.min(READY_TIMEOUT_MS, deadline.remaining())).then(() => {
            throw new Error('upstream did not report its port within 20 s');
        })
    ]);
    return { child, url, logFile };
}

async function waitReady(url, child, timeoutMs) {
    const until = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < until) {
        if (child.spawnError) throw new Error(`cannot start the gateway: ${child.spawnError.message}`);
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`gateway exited before it was ready (${child.exitCode ?? child.signalCode})`);
        try {
            const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
            await res.arrayBuffer().catch(() => {});
            if (res.status === 200) return;
            last = `HTTP ${res.status}`;
        } catch (e) {
            last = e instanceof Error ? e.message : String(e);
        }
        await sleep(200);
    }
    throw new Error(`gateway not ready after ${timeoutMs / 1000} s (GET ${url}: ${last})`);
}

/**
 * The gateway's configuration: the upstream over stdio (a child process), or,
 * with `upstreamUrl`, the same upstream served over Streamable HTTP
 * (`transport = "http"`; loopback needs allow_private_networks).
 */
export function gatewayConfig({ port, node = process.execPath, upstream = UPSTREAM, upstreamUrl }) {
    const upstreamLines = upstreamUrl
        ? ['transport = "http"', `url = ${tomlString(upstreamUrl)}`, 'allow_private_networks = true']
        : ['transport = "stdio"', `command = ${tomlString(node)}`, `args = [${tomlString(upstream)}, "--stdio"]`];
    return [
        '# written by tests/conformance/run.mjs',
        '[server]',
        'host = "127.0.0.1"',
        `port = ${port}`,
        '',
        '[upstream]',
        ...upstreamLines,
        // Full fidelity: sampling, elicitation and roots reach the client that
        // caused them. Conformance opens many sessions and deletes few, so idle
        // per-session processes are reaped quickly.
        'mode = "per_session"',
        'max_processes = 64',
        'idle_timeout_secs = 20',
        ''
    ].join('\n');
}

async function startGateway(gatewayBin, workDir, deadline, { target = 'mcp-guard', upstreamUrl } = {}) {
    const port = await freePort();
    const configFile = path.join(workDir, `${target}.toml`);
    await writeFile(configFile, gatewayConfig({ port, upstreamUrl }));
    const logFile = path.join(workDir, `${target}.log`);
    const child = startChild(gatewayBin, ['--config', configFile, 'run'], { cwd: workDir, logFile });
    try {
        await waitReady(`http://127.0.0.1:${port}/ready`, child, Math.min(READY_TIMEOUT_MS, deadline.remaining()));
    } catch (e) {
        throw new Error(`${e.message}\n--- ${logFile} (tail) ---\n${await tail(logFile)}`);
    }
    return { child, url: `http://127.0.0.1:${port}/mcp`, logFile, configFile };
}

// ------------------------------------------------------------- comparison --
function summarise(legs, direct, gateway, known = KNOWN_DIFFERENCES_STDIO) {
    const rows = [];
    const regressions = [];
    const knownDifferences = [];
    const directFailures = [];
    const improvements = [];
    for (const leg of legs) {
        const d = direct[leg.id]?.results ?? new Map();
        const g = gateway?.[leg.id]?.results;
        const names = [...new Set([...leg.scenarios.keys(), ...d.keys()])];
        for (const scenario of names) {
            const dChecks = d.get(scenario) ?? new Map();
            const gChecks = g?.get(scenario) ?? new Map();
            const row = {
                leg: leg.id,
                scenario,
                scoring: leg.scenarios.get(scenario) ?? 'not planned',
                checks: 0, // occurrences with a verdict (pass or fail) directly
                info: 0, // INFO / SKIPPED occurrences directly
                directPass: 0,
                gatewayPass: g ? 0 : undefined,
                regressions: 0
            };
            for (const [key, dc] of dChecks) {
                const v = verdict(dc.status);
                if (v === 'none') row.info++;
                else row.checks++;
                if (v === 'pass') row.directPass++;
                if (v === 'fail') directFailures.push({ leg: leg.id, scenario, key, ...dc, scoring: row.scoring });
                if (!g) continue;
                const gc = gChecks.get(key);
                const gStatus = gc?.status ?? 'MISSING';
                if (v !== 'none' && gStatus === 'SUCCESS') row.gatewayPass++;
                const knownReason = known.get(`${scenario}/${dc.id}`);
                if (v === 'pass' && gStatus === 'INFO' && INFO_IS_VALID.has(dc.id)) {
                    row.info++;
                } else if (v === 'pass' && gStatus !== 'SUCCESS' && knownReason) {
                    row.known = (row.known || 0) + 1;
                    knownDifferences.push({ leg: leg.id, scenario, key, status: gStatus, reason: knownReason });
                } else if (v === 'pass' && gStatus !== 'SUCCESS') {
                    row.regressions++;
                    regressions.push({ leg: leg.id, scenario, key, id: dc.id, description: dc.description, status: gStatus, errorMessage: gc?.errorMessage });
                } else if (v === 'fail' && gStatus === 'SUCCESS') {
                    improvements.push({ leg: leg.id, scenario, key });
                }
            }
            rows.push(row);
        }
    }
    const totals = legs.map(leg => {
        const r = rows.filter(x => x.leg === leg.id);
        const sum = (list, key) => list.reduce((a, x) => a + (x[key] ?? 0), 0);
        const scored = r.filter(x => x.scoring === 'scored');
        return {
            leg: leg.id,
            label: leg.label,
            scenarios: r.length,
            checks: sum(r, 'checks'),
            info: sum(r, 'info'),
            directPass: sum(r, 'directPass'),
            gatewayPass: gateway ? sum(r, 'gatewayPass') : undefined,
            regressions: sum(r, 'regressions'),
            scoredScenarios: scored.length,
            scoredChecks: sum(scored, 'checks'),
            scoredDirectPass: sum(scored, 'directPass'),
            scoredGatewayPass: gateway ? sum(scored, 'gatewayPass') : undefined,
            directSeconds: direct[leg.id]?.seconds,
            gatewaySeconds: gateway?.[leg.id]?.seconds
        };
    });
    return { rows, totals, regressions, directFailures, improvements, knownDifferences };
}

function pad(s, n) {
    s = String(s);
    return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function textTable(headers, rows) {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => String(r[i]).length)));
    const line = cells => cells.map((c, i) => pad(c, widths[i])).join('  ');
    return [line(headers), line(widths.map(w => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function mdTable(headers, rows) {
    const esc = v => String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');
    return [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`, ...rows.map(r => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

const frac = (a, b) => (a === undefined ? 'n/a' : `${a}/${b}`);

const secs = v => (v === undefined ? 'n/a' : `${Math.round(v)} s`);

function totalsTable(summary, withGateway) {
    const headers = ['leg', 'scenarios', 'passed directly', 'scored: passed directly', 'no verdict (INFO/SKIPPED)'];
    if (withGateway) headers.push('passed via mcp-guard', 'scored: passed via mcp-guard', 'regressions');
    headers.push(withGateway ? 'time direct / via mcp-guard' : 'time');
    const rows = summary.totals.map(t => {
        const row = [t.leg, t.scenarios, frac(t.directPass, t.checks), frac(t.scoredDirectPass, t.scoredChecks), t.info];
        if (withGateway) row.push(frac(t.gatewayPass, t.checks), frac(t.scoredGatewayPass, t.scoredChecks), t.regressions);
        row.push(withGateway ? `${secs(t.directSeconds)} / ${secs(t.gatewaySeconds)}` : secs(t.directSeconds));
        return row;
    });
    return { headers, rows };
}

function scenarioTable(summary, withGateway) {
    const headers = ['leg', 'scenario', 'scoring', 'passed directly'];
    if (withGateway) headers.push('via mcp-guard', 'regressions');
    const rows = summary.rows.map(r => {
        const row = [r.leg, r.scenario, r.scoring, frac(r.directPass, r.checks)];
        if (withGateway) row.push(frac(r.gatewayPass, r.checks), r.regressions);
        return row;
    });
    return { headers, rows };
}

const short = (s, n) => (s ?? '').replace(/\s+/g, ' ').slice(0, n);

export function renderText(summary, withGateway) {
    const t = totalsTable(summary, withGateway);
    const s = scenarioTable(summary, withGateway);
    const parts = [textTable(s.headers, s.rows), '', textTable(t.headers, t.rows)];
    if (summary.directFailures.length) {
        parts.push('', `Checks that do not pass directly (upstream baseline, ${summary.directFailures.length}):`);
        for (const f of summary.directFailures) parts.push(`  ${f.leg} ${f.scenario} ${f.key}: ${f.status} - ${short(f.errorMessage || f.description, 160)}`);
    }
    if (withGateway) {
        if (summary.knownDifferences?.length) {
            parts.push('', `Known differences (${summary.knownDifferences.length}, see KNOWN_DIFFERENCES_* in run.mjs):`);
            for (const d of summary.knownDifferences) parts.push(`  ${d.leg} ${d.scenario} ${d.key}: ${d.status} - ${d.reason}`);
        }
        parts.push('', summary.regressions.length ? `REGRESSIONS through mcp-guard (${summary.regressions.length}):` : 'No regressions: every check that passes directly also passes through mcp-guard.');
        for (const r of summary.regressions) parts.push(`  ${r.leg} ${r.scenario} ${r.key}: ${r.status} - ${short(r.description, 100)}${r.errorMessage ? ` :: ${short(r.errorMessage, 200)}` : ''}`);
        if (summary.improvements.length) parts.push(`(${summary.improvements.length} check(s) fail directly but pass through mcp-guard)`);
    }
    return parts.join('\n');
}

export function renderMarkdown(summary, meta) {
    const withGateway = meta.gateway !== undefined;
    const t = totalsTable(summary, withGateway);
    const s = scenarioTable(summary, withGateway);
    const out = [];
    out.push(
        `Measured ${meta.date} with \`@modelcontextprotocol/conformance@${meta.conformanceVersion}\`, ` +
            `upstream \`tests/conformance/upstream.mjs\` on \`@modelcontextprotocol/server@${meta.serverVersion}\` (Node ${process.versions.node}), ` +
            `conformance CLI on Node ${meta.cliNode}` +
            (withGateway ? `, gateway \`${meta.gateway}\` (upstream over ${meta.upstreamTransport ?? 'stdio'}).` : '; upstream direct over HTTP, no gateway run.')
    );
    out.push('', 'Counts are check occurrences with a verdict (SUCCESS vs FAILURE/WARNING); INFO and SKIPPED occurrences carry no verdict and are counted separately.');
    out.push('', '#### Totals', '', mdTable(t.headers, t.rows));
    out.push('', '#### Per scenario', '', mdTable(s.headers, s.rows));
    out.push('', '#### Checks that do not pass directly', '');
    if (summary.directFailures.length === 0) out.push('None.');
    else
        out.push(
            mdTable(
                ['leg', 'scenario', 'check', 'status', 'message'],
                summary.directFailures.map(f => [f.leg, f.scenario, f.key, f.status, short(f.errorMessage || f.description, 160)])
            )
        );
    if (withGateway) {
        out.push('', '#### Regressions through mcp-guard', '');
        if (summary.regressions.length === 0) out.push('None: every check that passes directly also passes through mcp-guard.');
        else
            out.push(
                mdTable(
                    ['leg', 'scenario', 'check', 'what it checks', 'status via mcp-guard', 'message'],
                    summary.regressions.map(r => [r.leg, r.scenario, r.key, short(r.description, 100), r.status, short(r.errorMessage, 200)])
                )
            );
    }
    return out.join('\n') + '\n';
}

async function packageVersion(dir) {
    try {
        return JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')).version;
    } catch {
        return 'unknown';
    }
}

// ------------------------------------------------------------------ main --
/**
 * Runs the conformance comparison.
 * @param {object} [options]
 * @param {string} [options.gatewayBin]  path to the mcp-guard binary; omitted = direct baseline only
 * @param {string} [options.report]      write the Markdown report here
 * @param {number} [options.timeoutMs]   hard limit for the whole run (default 10 min)
 * @param {boolean} [options.keepTemp]   keep the temp dir (also kept on failure)
 * @returns {Promise<{ok: boolean, regressions: object[], totals: object[], rows: object[], directFailures: object[], markdown: string, text: string, workDir: string}>}
 */
export async function runConformance({ gatewayBin, report, timeoutMs, keepTemp, targets = GATEWAY_TARGETS.map(t => t.id) } = {}) {
    const deadline = new Deadline(timeoutMs ?? (Number(process.env.CONFORMANCE_TIMEOUT_MS) || DEFAULT_DEADLINE_MS));
    const node = conformanceNode();
    if (!existsSync(CONFORMANCE_CLI)) throw new Error(`${CONFORMANCE_CLI} is missing: install the repo's npm devDependencies`);
    const gateway = gatewayBin ? path.resolve(gatewayBin) : undefined;
    if (gateway && !existsSync(gateway)) throw new Error(`MCP_GUARD_BIN=${gatewayBin}: no such file`);

    const workDir = await mkdtemp(path.join(os.tmpdir(), 'mcp-guard-conformance-'));
    let ok = false;
    const started = Date.now();
    let upstream;
    let gw;
    let gatewayDied;
    const watchdog = setTimeout(() => {
        log(`hard limit reached; stopping ${children.size} child process(es)`);
        stopAllChildren();
    }, deadline.remaining());
    watchdog.unref();
    try {
        log(`work dir ${workDir}`);
        const legs = await planLegs(node, workDir, deadline);

        upstream = await startUpstreamHttp(workDir, deadline);
        let direct;
        try {
            direct = await runAllLegs({ legs, url: upstream.url, node, workDir, deadline, target: 'direct' });
        } finally {
            await stopChild(upstream.child);
        }

        // Each gateway target in turn, one gateway (and, for "http", one fresh
        // upstream served over Streamable HTTP) at a time.
        const runs = [];
        for (const t of gateway ? GATEWAY_TARGETS.filter(x => targets.includes(x.id)) : []) {
            deadline.check(`${t.target} start`);
            const started = Date.now();
            let httpUp;
            if (t.id === 'http') httpUp = await startUpstreamHttp(workDir, deadline, `upstream-${t.target}.log`);
            let via;
            let died;
            try {
                gw = await startGateway(gateway, workDir, deadline, { target: t.target, upstreamUrl: httpUp?.url });
                log(`${t.target} ready at ${gw.url} (pid ${gw.child.pid})${httpUp ? `, upstream ${httpUp.url}` : ''}`);
                try {
                    via = await runAllLegs({ legs, url: gw.url, node, workDir, deadline, target: t.target });
                } finally {
                    if (gw.child.exitCode !== null || gw.child.signalCode !== null) {
                        died = `${t.target} exited during the run (${gw.child.exitCode ?? gw.child.signalCode}); see ${gw.logFile}`;
                        log(died);
                    }
                    await stopChild(gw.child);
                }
            } finally {
                if (httpUp) await stopChild(httpUp.child);
            }
            runs.push({ ...t, via, died, seconds: (Date.now() - started) / 1000 });
        }

        const base = {
            date: new Date().toISOString().slice(0, 10),
            conformanceVersion: await packageVersion(CONFORMANCE_PKG),
            serverVersion: await packageVersion(path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'server')),
            cliNode: node === process.execPath ? process.versions.node : await nodeVersion(node),
            gateway: gateway ? path.relative(REPO_ROOT, gateway) || gateway : undefined
        };
        let text;
        let markdown;
        let summary;
        const perTarget = [];
        if (runs.length === 0) {
            summary = summarise(legs, direct, undefined);
            text = renderText(summary, false);
            markdown = renderMarkdown(summary, { ...base, gateway: undefined });
        } else {
            const texts = [];
            const mds = [];
            for (const r of runs) {
                const sm = summarise(legs, direct, r.via, r.known);
                perTarget.push({ id: r.id, label: r.label, seconds: r.seconds, gatewayDied: r.died, ...sm });
                texts.push(`=== ${r.label} (${Math.round(r.seconds)} s) ===`, renderText(sm, true) + (r.died ? `\n${r.died}` : ''), '');
                mds.push(`### ${r.label}`, '', renderMarkdown(sm, { ...base, upstreamTransport: r.id === 'http' ? 'Streamable HTTP' : 'stdio' }));
            }
            text = texts.join('\n');
            markdown = mds.join('\n');
            summary = perTarget[0];
        }
        if (report) await writeFile(report, markdown);
        const tag = (list, id) => list.map(x => ({ target: id, ...x }));
        const regressions = perTarget.flatMap(t => tag(t.regressions, t.id));
        gatewayDied = perTarget.map(t => t.gatewayDied).filter(Boolean).join('; ') || undefined;
        ok = regressions.length === 0 && !gatewayDied;
        const seconds = Math.round((Date.now() - started) / 1000);
        return {
            ok,
            ...summary,
            regressions,
            knownDifferences: perTarget.flatMap(t => tag(t.knownDifferences, t.id)),
            targets: perTarget,
            text,
            markdown,
            workDir,
            seconds,
            gatewayDied,
            exitCodes: { direct: mapExit(direct), ...Object.fromEntries(runs.map(r => [r.id, r.via && mapExit(r.via)])) }
        };
    } finally {
        clearTimeout(watchdog);
        await stopAllChildren();
        if (ok && !keepTemp && process.env.CONFORMANCE_KEEP_TMP !== '1') await rm(workDir, { recursive: true, force: true });
        else log(`results kept in ${workDir}`);
    }
}

function mapExit(legResults) {
    return Object.fromEntries(Object.entries(legResults).map(([k, v]) => [k, v.exitCodes]));
}

async function nodeVersion(node) {
    return new Promise(resolve => {
        const child = spawn(node, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
        let out = '';
        child.stdout.on('data', c => (out += c));
        child.on('exit', () => resolve(out.trim().replace(/^v/, '')));
        child.on('error', () => resolve('unknown'));
    });
}

function isMain() {
    if (!process.argv[1]) return false;
    try {
        return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
    } catch {
        return import.meta.url === pathToFileURL(process.argv[1]).href;
    }
}

if (isMain()) {
    const stopOnSignal = signal => {
        log(`${signal}: stopping child processes`);
        stopAllChildren().finally(() => process.exit(130));
    };
    process.once('SIGINT', stopOnSignal);
    process.once('SIGTERM', stopOnSignal);
    try {
        const targets = process.env.CONFORMANCE_TARGETS ? process.env.CONFORMANCE_TARGETS.split(/[\s,]+/).filter(Boolean) : undefined;
        const result = await runConformance({ gatewayBin: process.env.MCP_GUARD_BIN || undefined, report: process.env.CONFORMANCE_REPORT || undefined, targets });
        process.stdout.write(result.text + '\n');
        log(`finished in ${result.seconds} s${process.env.MCP_GUARD_BIN ? '' : ' (MCP_GUARD_BIN unset: direct baseline only)'}`);
        process.exit(result.ok ? 0 : 1);
    } catch (e) {
        process.stderr.write(`conformance harness error: ${e instanceof Error ? e.stack || e.message : String(e)}\n`);
        process.exit(1);
    }
}
