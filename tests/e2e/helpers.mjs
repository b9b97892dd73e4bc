// Shared helpers of the mcp-guard end-to-end suite (node:test, Node >= 20).
//
// A test starts its own gateway with startGateway(): a TOML configuration is
// written to a fresh temp directory, the binary (MCP_GUARD_BIN, default
// build/mcp-guard) is spawned with its stdio piped, stderr is captured for
// failure messages and sanitizer checks, and /ready is polled until the
// upstream answered initialize. gw.stop() sends SIGTERM, waits for the exit
// (SIGKILL after 10 s) and fails when the exit was not clean or stderr holds
// an AddressSanitizer/LeakSanitizer/UBSan report. Every process started here
// is also SIGKILLed by PID when the test process exits, whatever happened.

import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GATEWAY_BIN = path.resolve(REPO_ROOT, process.env.MCP_GUARD_BIN || 'build/mcp-guard');
export const EVERYTHING_JS = path.join(
    REPO_ROOT,
    'node_modules/@modelcontextprotocol/server-everything/dist/index.js'
);
/** server-everything plus a log of every message it receives (see fixtures/). */
export const TAP_JS = path.join(REPO_ROOT, 'tests/e2e/fixtures/everything-tap.mjs');

export const LEGACY_VERSION = '2025-11-25';
export const MODERN_VERSION = '2026-07-28';
export const SESSION_ID_RE = /^[0-9a-f]{32}$/;

const SANITIZER_RE = /ERROR: AddressSanitizer|LeakSanitizer|runtime error:/;

/* ---- process bookkeeping ---------------------------------------------------------- */

const live = new Set(); // ChildProcess objects not known to have exited

function killAll() {
    for (const child of live) {
        try {
            process.kill(child.pid, 'SIGKILL');
        } catch {
            /* already gone */
        }
    }
}

process.on('exit', killAll);
// The test runner stops a file's process with a signal on timeout or Ctrl-C:
// 'exit' handlers do not run then, so clean up here too.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
        killAll();
        process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 }[sig] || 0));
    });
}

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

/** Polls `fn` until it returns a truthy value (returned) or throws after timeoutMs. */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 25, message = 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            const v = await fn();
            if (v) return v;
            last = v;
        } catch (e) {
            last = e;
        }
        if (Date.now() >= deadline) {
            const why = last instanceof Error ? `: ${last.message}` : last !== undefined ? ` (last: ${JSON.stringify(last)})` : '';
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}${why}`);
        }
        await sleep(intervalMs);
    }
}

/** Rejects with a clear message when `promise` does not settle in time (a hang guard). */
export async function withTimeout(promise, ms, what = 'operation') {
    let timer;
    const guard = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    });
    try {
        return await Promise.race([promise, guard]);
    } finally {
        clearTimeout(timer);
    }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

export function tempDir(prefix = 'mcp-guard-e2e-') {
    return mkdtempSync(path.join(tmpdir(), prefix));
}

/* ---- configuration ---------------------------------------------------------------- */

function tomlValue(v) {
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw new Error(`not a TOML number: ${v}`);
        return String(v);
    }
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
    if (v && typeof v === 'object') {
        // An inline table (maps such as headers or env).
        const key = k => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k));
        return `{ ${Object.entries(v).map(([k, x]) => `${key(k)} = ${tomlValue(x)}`).join(', ')} }`;
    }
    throw new Error(`unsupported TOML value: ${JSON.stringify(v)}`);
}

/** {server: {...}, upstream: {...}} -> TOML text (one level of tables, scalar/array values). */
export function toToml(config) {
    const out = [];
    for (const [table, fields] of Object.entries(config)) {
        out.push(`[${table}]`);
        for (const [k, v] of Object.entries(fields)) {
            if (v !== undefined) out.push(`${k} = ${tomlValue(v)}`);
        }
        out.push('');
    }
    return out.join('\n');
}

/** The paging MCP server (long, paged lists; see fixtures/paging-server.mjs). */
export const PAGING_JS = path.join(REPO_ROOT, 'tests/e2e/fixtures/paging-server.mjs');

/** A stdio upstream running the paging server; `args` e.g. ['--name', 'a', '--tools', '100']. */
export function pagingUpstream(args = [], extra = {}) {
    return {
        transport: 'stdio',
        command: process.execPath,
        args: [PAGING_JS, ...args],
        mode: 'shared',
        ...extra
    };
}

/** The stdio upstream running @modelcontextprotocol/server-everything. */
export function everythingUpstream(extra = {}) {
    return {
        transport: 'stdio',
        command: process.execPath,
        args: [EVERYTHING_JS, 'stdio'],
        mode: 'shared',
        ...extra
    };
}

/** server-everything that appends every message it receives to `logPath` (JSON lines). */
export function tapUpstream(logPath, extra = {}) {
    return {
        transport: 'stdio',
        command: process.execPath,
        args: [TAP_JS, logPath],
        mode: 'shared',
        ...extra
    };
}

/** Messages the tap upstream received so far. */
export function readTap(logPath) {
    if (!existsSync(logPath)) return [];
    return readFileSync(logPath, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(line => JSON.parse(line));
}

/* ---- the gateway ------------------------------------------------------------------ */

export class Gateway {
    constructor({ proc, port, dir, configPath }) {
        this.proc = proc;
        this.pid = proc.pid;
        this.port = port;
        this.dir = dir;
        this.configPath = configPath;
        this.base = `http://127.0.0.1:${port}`;
        this.mcpUrl = `${this.base}/mcp`;
        this.stdout = '';
        this._stderr = '';
        this.exit = null; // {code, signal} once exited
        proc.stdout.setEncoding('utf8');
        proc.stderr.setEncoding('utf8');
        proc.stdout.on('data', d => (this.stdout += d));
        proc.stderr.on('data', d => (this._stderr += d));
        this.exited = new Promise(resolve => {
            proc.on('exit', (code, signal) => {
                this.exit = { code, signal };
                live.delete(proc);
                resolve(this.exit);
            });
        });
        // 'close' fires once stdio is drained too: stderr is then complete.
        this.closed = new Promise(resolve => proc.on('close', () => resolve(this.exit)));
    }

    get stderr() {
        return this._stderr;
    }

    /** The last lines of stderr, for assertion messages. */
    tail(lines = 40) {
        return this._stderr.split('\n').slice(-lines).join('\n');
    }

    sanitizerReport() {
        return SANITIZER_RE.test(this._stderr) ? this._stderr : null;
    }

    /** A GET on its own connection (Connection: close), so no idle keep-alive connection lingers. */
    async get(pathname, opts = {}) {
        return httpGet(this.port, pathname, opts);
    }

    async health() {
        const r = await this.get('/health');
        if (r.status !== 200) throw new Error(`/health answered ${r.status}`);
        return r.json;
    }

    async readyStatus() {
        return (await this.get('/ready')).status;
    }

    async waitReady(timeoutMs = 20000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            if (this.exit) {
                throw new Error(`the gateway exited (${JSON.stringify(this.exit)}) before /ready; stderr:\n${this.tail()}`);
            }
            try {
                if ((await this.readyStatus()) === 200) return;
            } catch {
                /* not listening yet */
            }
            if (Date.now() > deadline) {
                throw new Error(`the gateway was not ready within ${timeoutMs} ms; stderr:\n${this.tail()}`);
            }
            await sleep(25);
        }
    }

    /** The shared upstream's pid from /health. */
    async upstreamPid() {
        const h = await this.health();
        return h.upstreams[0].pid;
    }

    signal(sig) {
        if (!this.exit) process.kill(this.pid, sig);
    }

    /**
     * SIGTERM (or `signal`), wait for the exit (SIGKILL after timeoutMs) and
     * check it: exit code `expectCode` (0) and no sanitizer report.
     * Returns {code, signal}.
     */
    async stop({ signal = 'SIGTERM', timeoutMs = 10000, expectCode = 0 } = {}) {
        if (!this.exit) {
            try {
                process.kill(this.pid, signal);
            } catch {
                /* exited meanwhile */
            }
        }
        let timer;
        const killed = new Promise(resolve => {
            timer = setTimeout(() => {
                try {
                    process.kill(this.pid, 'SIGKILL');
                } catch {
                    /* gone */
                }
                resolve('killed');
            }, timeoutMs);
        });
        const first = await Promise.race([this.closed, killed]);
        clearTimeout(timer);
        await this.closed;
        this.cleanup();
        if (first === 'killed') {
            throw new Error(`the gateway did not exit within ${timeoutMs} ms of ${signal}; SIGKILLed. stderr:\n${this.tail()}`);
        }
        this.checkSanitizers();
        if (expectCode !== null && (this.exit.code !== expectCode || this.exit.signal)) {
            throw new Error(
                `the gateway exited with ${JSON.stringify(this.exit)} after ${signal}, expected code ${expectCode}; stderr:\n${this.tail()}`
            );
        }
        return this.exit;
    }

    /** Throws when stderr holds a sanitizer report (call after the exit). */
    checkSanitizers() {
        const report = this.sanitizerReport();
        if (report) throw new Error(`sanitizer report on the gateway's stderr:\n${report.slice(-8000)}`);
    }

    /** SIGKILL without checks (for `finally` blocks of tests that failed earlier). */
    async kill() {
        if (!this.exit) {
            try {
                process.kill(this.pid, 'SIGKILL');
            } catch {
                /* gone */
            }
        }
        await this.closed;
        this.cleanup();
    }

    cleanup() {
        if (this.dir && !process.env.E2E_KEEP) {
            rmSync(this.dir, { recursive: true, force: true });
            this.dir = null;
        }
    }
}

/**
 * Starts a gateway in front of `upstream` (default: server-everything, shared
 * mode). `server` fields are merged over {host: 127.0.0.1, port: <free>}.
 * `ready: false` returns as soon as the process runs.
 */
export async function startGateway(opts = {}) {
    // A port found free can be taken by a parallel test file before the
    // gateway binds it: retry with another one.
    for (let attempt = 1; ; attempt++) {
        try {
            return await startGatewayOnce(opts);
        } catch (e) {
            if (opts.server?.port !== undefined || attempt >= 3 || !/cannot listen|Address already in use/.test(e.message)) throw e;
        }
    }
}

async function startGatewayOnce({ server = {}, upstream = everythingUpstream(), ready = true, readyTimeoutMs = 20000, extraArgs = [], dir } = {}) {
    const workDir = dir || tempDir();
    mkdirSync(workDir, { recursive: true }); // again after a failed attempt's cleanup
    const port = server.port ?? (await freePort());
    const config = { server: { host: '127.0.0.1', port, ...server }, upstream };
    const configPath = path.join(workDir, 'mcp-guard.toml');
    writeFileSync(configPath, toToml(config));
    const proc = spawn(GATEWAY_BIN, ['--config', configPath, ...extraArgs, 'run'], {
        cwd: workDir,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1' }
    });
    live.add(proc);
    const spawned = await new Promise(resolve => {
        proc.once('spawn', () => resolve(null));
        proc.once('error', e => resolve(e));
    });
    if (spawned) {
        live.delete(proc);
        throw new Error(`cannot run ${GATEWAY_BIN}: ${spawned.message} (build it with make build/mcp-guard or set MCP_GUARD_BIN)`);
    }
    const gw = new Gateway({ proc, port, dir: workDir, configPath });
    if (ready) {
        try {
            await gw.waitReady(readyTimeoutMs);
        } catch (e) {
            await gw.kill();
            throw e;
        }
    }
    return gw;
}

/**
 * One request on a fresh connection closed afterwards (agent: false):
 * resolves to {status, headers, body, json} once the socket is closed.
 */
export function httpGet(port, pathname, { method = 'GET', headers = {}, body, timeoutMs = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: pathname, method, headers: { connection: 'close', ...headers }, agent: false }, res => {
            const parts = [];
            res.on('data', d => parts.push(d));
            res.on('end', () => {
                const text = Buffer.concat(parts).toString('utf8');
                let json;
                if ((res.headers['content-type'] || '').startsWith('application/json') && text) {
                    try {
                        json = JSON.parse(text);
                    } catch {
                        /* leave undefined */
                    }
                }
                const out = { status: res.statusCode, headers: res.headers, body: text, json };
                if (res.socket.destroyed) resolve(out);
                else res.socket.once('close', () => resolve(out));
            });
            res.on('error', reject);
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${pathname} timed out after ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end(body);
    });
}

/* ---- CLI -------------------------------------------------------------------------- */

/** Runs the binary synchronously; returns {status, stdout, stderr}. */
export function runCli(args, { input, cwd, timeoutMs = 30000, env } = {}) {
    const r = spawnSync(GATEWAY_BIN, args, {
        input,
        cwd,
        encoding: 'utf8',
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        env: { ...process.env, ...env }
    });
    if (r.error) throw r.error;
    if (SANITIZER_RE.test(r.stderr)) throw new Error(`sanitizer report from mcp-guard ${args.join(' ')}:\n${r.stderr}`);
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Like runCli, without blocking the event loop (several can run at once). */
export function runCliAsync(args, { input, cwd, timeoutMs = 30000, env } = {}) {
    return new Promise((resolve, reject) => {
        const child = spawn(GATEWAY_BIN, args, { cwd, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
        live.add(child);
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', d => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', d => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('error', e => {
            clearTimeout(timer);
            live.delete(child);
            reject(e);
        });
        child.on('close', (status, signal) => {
            clearTimeout(timer);
            live.delete(child);
            if (SANITIZER_RE.test(stderr)) reject(new Error(`sanitizer report from mcp-guard ${args.join(' ')}:\n${stderr}`));
            else if (signal === 'SIGKILL') reject(new Error(`mcp-guard ${args.join(' ')} did not finish within ${timeoutMs} ms`));
            else resolve({ status, signal, stdout, stderr });
        });
        child.stdin.end(input);
    });
}

/* ---- processes -------------------------------------------------------------------- */

/** The process state letter from /proc (R, S, Z, ...) or null when gone. */
export function procState(pid) {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    } catch {
        return null;
    }
}

/** Every live process as {pid, ppid, pgid, state} (from /proc). */
export function processTable() {
    const out = [];
    for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
            const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
            const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            out.push({ pid: Number(d), state: rest[0], ppid: Number(rest[1]), pgid: Number(rest[2]) });
        } catch {
            /* exited while listing */
        }
    }
    return out;
}

/** Processes (zombies included) whose parent is `pid`. */
export function childrenOf(pid) {
    return processTable().filter(p => p.ppid === pid);
}

/** Processes (zombies included) in process group `pgid`. */
export function groupMembers(pgid) {
    return processTable().filter(p => p.pgid === pgid);
}

/* ---- MCP over fetch --------------------------------------------------------------- */

/**
 * Parses a complete SSE body into [{id, event, data, retry}] (data
 * JSON-parsed when possible). An event whose data is empty is not
 * dispatched by SSE clients but still sets their Last-Event-ID (a
 * "priming" event): it is returned with prime: true and data ''.
 * Comment-only blocks are returned as {comment: true}.
 */
export function parseSse(text) {
    const events = [];
    for (const block of text.split(/\r?\n\r?\n/)) {
        let id;
        let event;
        let retry;
        const data = [];
        let comment = false;
        for (const line of block.split(/\r?\n/)) {
            if (line === '') continue;
            if (line.startsWith(':')) {
                comment = true;
                continue;
            }
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            let value = i < 0 ? '' : line.slice(i + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'id') id = value;
            else if (field === 'event') event = value;
            else if (field === 'retry') retry = Number(value);
            else if (field === 'data') data.push(value);
        }
        if (!data.length) {
            if (comment) events.push({ comment: true });
            continue;
        }
        const raw = data.join('\n');
        if (raw === '') {
            events.push({ id, event, retry, data: '', prime: true });
            continue;
        }
        let json;
        try {
            json = JSON.parse(raw);
        } catch {
            json = undefined;
        }
        events.push({ id, event, retry, data: json ?? raw });
    }
    return events;
}

/**
 * POSTs a JSON-RPC message (object, or a string sent verbatim). Returns
 * {status, headers, text, json, events, message}: `json` for JSON bodies,
 * `events` for SSE bodies, `message` = the JSON body or the last SSE event's data.
 */
export async function postMcp(gw, body, { sessionId, protocolVersion, accept = 'application/json, text/event-stream', headers = {}, signal, url } = {}) {
    const h = { 'content-type': 'application/json', accept, ...headers };
    if (accept === null) delete h.accept;
    if (sessionId) h['mcp-session-id'] = sessionId;
    if (protocolVersion) h['mcp-protocol-version'] = protocolVersion;
    const r = await fetch(url || gw.mcpUrl, {
        method: 'POST',
        headers: h,
        body: typeof body === 'string' ? body : JSON.stringify(body),
        signal
    });
    return readResponse(r);
}

export async function readResponse(r) {
    const text = await r.text();
    const ctype = r.headers.get('content-type') || '';
    const out = { status: r.status, headers: r.headers, text, json: undefined, events: undefined, primes: undefined, message: undefined };
    if (ctype.startsWith('application/json') && text) {
        out.json = JSON.parse(text);
        out.message = out.json;
    } else if (ctype.startsWith('text/event-stream')) {
        out.events = parseSse(text).filter(e => !e.comment && !e.prime);
        out.primes = parseSse(text).filter(e => e.prime);
        out.message = out.events.length ? out.events[out.events.length - 1].data : undefined;
    }
    return out;
}

/** A raw legacy initialize; returns {sessionId, response}. */
export async function rawInitialize(gw, { protocolVersion = LEGACY_VERSION, capabilities = {}, id = 1 } = {}) {
    const response = await postMcp(gw, {
        jsonrpc: '2.0',
        id,
        method: 'initialize',
        params: { protocolVersion, capabilities, clientInfo: { name: 'e2e-raw', version: '0.0.0' } }
    });
    if (response.status !== 200) throw new Error(`initialize answered ${response.status}: ${response.text}`);
    const sessionId = response.headers.get('mcp-session-id');
    const negotiated = response.message?.result?.protocolVersion;
    const ack = await postMcp(gw, { jsonrpc: '2.0', method: 'notifications/initialized' }, { sessionId, protocolVersion: negotiated });
    if (ack.status !== 202) throw new Error(`notifications/initialized answered ${ack.status}: ${ack.text}`);
    return { sessionId, response };
}

/** Headers and body of a 2026-07-28 request. */
export function modernRequest(method, params = {}, { id = 1, notification = false, name, version = MODERN_VERSION, headers = {}, meta = {} } = {}) {
    const body = {
        jsonrpc: '2.0',
        id,
        method,
        params: {
            ...params,
            _meta: {
                'io.modelcontextprotocol/protocolVersion': version,
                'io.modelcontextprotocol/clientInfo': { name: 'e2e-modern', version: '0.0.0' },
                'io.modelcontextprotocol/clientCapabilities': {},
                ...meta
            }
        }
    };
    if (notification) delete body.id;
    const h = { 'mcp-protocol-version': version, 'mcp-method': method, ...headers };
    if (name !== undefined) h['mcp-name'] = name;
    for (const k of Object.keys(h)) if (h[k] === null) delete h[k];
    return { body, headers: h };
}

export async function postModern(gw, method, params = {}, opts = {}) {
    const { body, headers } = modernRequest(method, params, opts);
    return postMcp(gw, body, { headers, accept: opts.accept });
}

/* ---- the official SDK clients ----------------------------------------------------- */

/** A connected @modelcontextprotocol/sdk (v1) client: {client, transport}. */
export async function connectSdk(gw, { name = 'e2e-sdk', capabilities = {}, transportOptions = {} } = {}) {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const client = new Client({ name, version: '0.0.0' }, { capabilities });
    const transport = new StreamableHTTPClientTransport(new URL(gw.mcpUrl), transportOptions);
    await withTimeout(client.connect(transport), 15000, 'SDK connect');
    return { client, transport };
}

/** Closes an SDK client, ending its session first (errors ignored). */
export async function closeSdk(c) {
    if (!c) return;
    try {
        await withTimeout(c.transport.terminateSession(), 5000, 'terminateSession');
    } catch {
        /* the gateway may be gone */
    }
    try {
        await withTimeout(c.client.close(), 5000, 'client.close');
    } catch {
        /* ignore */
    }
}

/* ---- raw HTTP over net ------------------------------------------------------------ */

/**
 * One raw TCP connection with an incremental HTTP/1.1 response reader:
 * readResponse() returns the next complete response (Content-Length,
 * chunked, or until close), readHead() only the head, readChunk() the next
 * body chunk of a chunked stream.
 */
export class RawConn {
    static async open(port, { host = '127.0.0.1' } = {}) {
        const c = new RawConn();
        await new Promise((resolve, reject) => {
            c.sock = net.connect({ port, host }, resolve);
            c.sock.once('error', reject);
        });
        c.sock.on('error', e => (c.error = e));
        return c;
    }

    constructor() {
        this.buf = Buffer.alloc(0);
        this.ended = false;
        this.closed = false;
        this.waiters = [];
    }

    set sock(s) {
        this._sock = s;
        s.on('data', d => {
            this.buf = Buffer.concat([this.buf, d]);
            this._wake();
        });
        s.on('end', () => {
            this.ended = true;
            this._wake();
        });
        s.on('close', () => {
            this.closed = true;
            this.ended = true;
            this._wake();
        });
    }

    get sock() {
        return this._sock;
    }

    _wake() {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
    }

    write(data) {
        return new Promise((resolve, reject) => this.sock.write(data, e => (e ? reject(e) : resolve())));
    }

    /** Waits until `pred()` holds (rechecked on every read) or the timeout. */
    async _until(pred, timeoutMs, what) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const v = pred();
            if (v !== undefined && v !== null && v !== false) return v;
            if (this.ended && !pred.waitAfterEnd) {
                const again = pred();
                if (again) return again;
                throw Object.assign(new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`), {
                    code: 'ECLOSED'
                });
            }
            const left = deadline - Date.now();
            if (left <= 0) throw Object.assign(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`), { code: 'ETIMEDOUT' });
            await new Promise(resolve => {
                const t = setTimeout(resolve, left);
                this.waiters.push(() => {
                    clearTimeout(t);
                    resolve();
                });
            });
        }
    }

    /** The next response head: {status, reason, headers (lower-case keys), raw}. */
    async readHead(timeoutMs = 10000) {
        const end = await this._until(() => {
            const i = this.buf.indexOf('\r\n\r\n');
            return i >= 0 ? i + 1 : false;
        }, timeoutMs, 'a response head');
        const raw = this.buf.subarray(0, end - 1).toString('latin1');
        this.buf = this.buf.subarray(end + 3);
        const [statusLine, ...lines] = raw.split('\r\n');
        const m = /^HTTP\/1\.(\d) (\d{3}) ?(.*)$/.exec(statusLine);
        if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
        const headers = {};
        for (const l of lines) {
            const i = l.indexOf(':');
            const k = l.slice(0, i).trim().toLowerCase();
            const v = l.slice(i + 1).trim();
            headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
        }
        this.head = { status: Number(m[2]), reason: m[3], headers, minor: Number(m[1]), raw };
        return this.head;
    }

    /** Next chunk of a chunked body (Buffer), or null at the last chunk. */
    async readChunk(timeoutMs = 10000) {
        const sizeEnd = await this._until(() => {
            const i = this.buf.indexOf('\r\n');
            return i >= 0 ? i + 1 : false;
        }, timeoutMs, 'a chunk size');
        const size = parseInt(this.buf.subarray(0, sizeEnd - 1).toString('latin1'), 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk size line ${JSON.stringify(this.buf.subarray(0, 40).toString('latin1'))}`);
        const need = sizeEnd + 1 + size + 2;
        await this._until(() => this.buf.length >= need, timeoutMs, `a chunk of ${size} bytes`);
        const data = this.buf.subarray(sizeEnd + 1, sizeEnd + 1 + size);
        this.buf = this.buf.subarray(need);
        return size === 0 ? null : Buffer.from(data);
    }

    /** A whole response: {status, headers, body (string), json}. */
    async readResponse(timeoutMs = 10000, { head: onlyHeadRequest = false } = {}) {
        const head = await this.readHead(timeoutMs);
        let body = Buffer.alloc(0);
        if (onlyHeadRequest || head.status === 204 || head.status === 304 || (head.status >= 100 && head.status < 200)) {
            // no body
        } else if ((head.headers['transfer-encoding'] || '').toLowerCase().includes('chunked')) {
            const parts = [];
            for (;;) {
                const c = await this.readChunk(timeoutMs);
                if (!c) break;
                parts.push(c);
            }
            body = Buffer.concat(parts);
        } else if (head.headers['content-length'] !== undefined) {
            const n = Number(head.headers['content-length']);
            await this._until(() => this.buf.length >= n, timeoutMs, `a body of ${n} bytes`);
            body = this.buf.subarray(0, n);
            this.buf = this.buf.subarray(n);
        } else {
            const until = () => this.ended;
            until.waitAfterEnd = true;
            await this._until(until, timeoutMs, 'the end of a close-delimited body');
            body = this.buf;
            this.buf = Buffer.alloc(0);
        }
        const text = body.toString('utf8');
        let json;
        if ((head.headers['content-type'] || '').startsWith('application/json') && text) {
            json = JSON.parse(text);
        }
        return { ...head, body: text, json };
    }

    /** Resolves true once the peer closed the connection (false on timeout). */
    async waitClosed(timeoutMs = 10000) {
        const until = () => this.ended;
        until.waitAfterEnd = true;
        try {
            await this._until(until, timeoutMs, 'the connection to close');
            return true;
        } catch {
            return false;
        }
    }

    destroy() {
        this.sock.destroy();
    }
}

/** Sends `text` on a fresh connection and reads one response; closes. */
export async function rawRequest(port, text, { timeoutMs = 10000 } = {}) {
    const c = await RawConn.open(port);
    try {
        await c.write(text);
        return await c.readResponse(timeoutMs);
    } finally {
        c.destroy();
    }
}

/** A request head + body with Content-Length (CRLF line ends). */
export function httpRequest(method, pathname, { port, headers = {}, body = '' } = {}) {
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const h = { Host: `127.0.0.1:${port}`, ...headers };
    if (method !== 'GET' && method !== 'HEAD' && h['Content-Length'] === undefined && h['Transfer-Encoding'] === undefined) {
        h['Content-Length'] = String(b.length);
    }
    let head = `${method} ${pathname} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(h)) if (v !== null) head += `${k}: ${v}\r\n`;
    return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), b]);
}

/**
 * Reads SSE events from a chunked stream on a RawConn after its head:
 * calls `onEvent({id, data, comment, prime})` for each; stops when it
 * returns true (resolves true), or at the end of the stream (resolves false).
 */
export async function readSseUntil(conn, onEvent, timeoutMs = 10000) {
    let pending = '';
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms reading the SSE stream`);
        const chunk = await conn.readChunk(left);
        if (!chunk) return false;
        pending += chunk.toString('utf8');
        let i;
        while ((i = pending.indexOf('\n\n')) >= 0) {
            const block = pending.slice(0, i + 2);
            pending = pending.slice(i + 2);
            const comment = block.startsWith(':') ? block.trim() : null;
            const parsed = comment ? [{ comment }] : parseSse(block);
            for (const ev of parsed) if (await onEvent(ev)) return true;
        }
    }
}

/* ---- HTTP fixtures ---------------------------------------------------------------- */

/** Starts an HTTP fixture on 127.0.0.1 (port 0 = any): {port, base, log, stop(), kill()}. */
export async function startHttpFixture(script, { port = 0, args = [] } = {}) {
    const dir = tempDir('mcp-guard-remote-');
    const log = path.join(dir, 'requests.jsonl');
    const proc = spawn(process.execPath, [script, '--port', String(port), '--log', log, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    let stderr = '';
    proc.stderr.on('data', d => (stderr += d));
    const exited = new Promise(resolve => proc.once('exit', resolve));
    const actual = await withTimeout(
        new Promise((resolve, reject) => {
            let out = '';
            proc.stdout.on('data', d => {
                out += d;
                const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
                if (m) resolve(Number(m[1]));
            });
            proc.once('exit', code => reject(new Error(`upstream exited (${code}): ${stderr}`)));
        }),
        15000,
        'upstream start'
    );
    return {
        port: actual,
        base: `http://127.0.0.1:${actual}`,
        log,
        get stderr() {
            return stderr;
        },
        requests() {
            if (!existsSync(log)) return [];
            return readFileSync(log, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l));
        },
        async stop() {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
            await exited;
            live.delete(proc);
        },
        async kill() {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
            await exited;
            live.delete(proc);
        }
    };
}
