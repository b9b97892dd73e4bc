// Starting a gateway with an [auth] / [server.tls] configuration for the
// authentication tests (auth, jwt, mtls, auth-attacks, reload).
//
// helpers.mjs's startGateway() writes only [server] and [upstream] (one level
// of scalar tables); these tests need [[auth.api_keys]], [auth.jwt] with a
// scope_tool_mapping table, [auth.mtls] and [server.tls], and a readiness
// check over HTTPS with a client certificate. So this module writes the TOML
// itself and reuses helpers.mjs's Gateway class for the process (stderr
// capture, stop() with the exit and sanitizer checks). It lives under idp/
// only because that is where the authentication suite keeps its support code.

import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

import { everythingUpstream, freePort, Gateway, GATEWAY_BIN, readResponse, runCli, sleep, tempDir } from '../helpers.mjs';

const live = new Set();
process.on('exit', () => {
    for (const proc of live) {
        try {
            process.kill(proc.pid, 'SIGKILL');
        } catch {
            /* gone */
        }
    }
});

/* ---- TOML ------------------------------------------------------------------------- */

const BARE_KEY = /^[A-Za-z0-9_-]+$/;
const tomlKey = k => (BARE_KEY.test(k) ? k : JSON.stringify(k));

function tomlValue(v) {
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number') return String(v);
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
    if (v && typeof v === 'object') {
        return `{ ${Object.entries(v)
            .filter(([, x]) => x !== undefined)
            .map(([k, x]) => `${tomlKey(k)} = ${tomlValue(x)}`)
            .join(', ')} }`;
    }
    throw new Error(`unsupported TOML value ${JSON.stringify(v)}`);
}

const isTable = v => v && typeof v === 'object' && !Array.isArray(v);
const isTableArray = v => Array.isArray(v) && v.length > 0 && v.every(isTable);

/**
 * Nested objects -> TOML. Plain objects become [tables] (dotted names),
 * arrays of objects [[arrays of tables]]; an object under a key listed in
 * INLINE (maps such as scope_tool_mapping) is written as an inline table.
 */
const INLINE = new Set(['scope_tool_mapping', 'env', 'headers', 'export_headers']);
export function toTomlDeep(config) {
    const out = [];
    const emit = (name, obj) => {
        const scalars = [];
        const subs = [];
        for (const [k, v] of Object.entries(obj)) {
            if (v === undefined) continue;
            if (isTable(v) && !INLINE.has(k)) subs.push([k, v, 'table']);
            else if (isTableArray(v)) subs.push([k, v, 'array']);
            else scalars.push(`${tomlKey(k)} = ${tomlValue(v)}`);
        }
        if (name && (scalars.length || !subs.length)) out.push(`[${name}]`, ...scalars, '');
        else if (!name) out.push(...scalars, '');
        for (const [k, v, kind] of subs) {
            const full = name ? `${name}.${tomlKey(k)}` : tomlKey(k);
            if (kind === 'table') emit(full, v);
            else {
                for (const item of v) {
                    out.push(`[[${full}]]`);
                    for (const [ik, iv] of Object.entries(item)) if (iv !== undefined) out.push(`${tomlKey(ik)} = ${tomlValue(iv)}`);
                    out.push('');
                }
            }
        }
    };
    emit('', config);
    return out.join('\n');
}

/* ---- API keys --------------------------------------------------------------------- */

/** `mcp-guard keygen --user-id <id>`: {id, key, hash} read from its output. */
export function keygen(id) {
    const r = runCli(['keygen', '--user-id', id]);
    if (r.status !== 0) throw new Error(`keygen failed: ${r.stderr}`);
    const lines = r.stdout.split('\n');
    const key = lines.find(l => /^ {2}mcp_/.test(l))?.trim();
    const at = lines.findIndex(l => l.startsWith('Key hash'));
    const hash = lines[at + 2]?.trim();
    if (!key || !hash) throw new Error(`unexpected keygen output:\n${r.stdout}`);
    return { id, key, hash };
}

/** `mcp-guard hash-key <key>`. */
export function hashKey(key) {
    const r = runCli(['hash-key', '-'], { input: key });
    if (r.status !== 0) throw new Error(`hash-key failed: ${r.stderr}`);
    return r.stdout.trim();
}

/* ---- the gateway ------------------------------------------------------------------ */

/**
 * `config` is the whole configuration except [upstream] (default:
 * server-everything) and server.host/port (127.0.0.1 and a free port):
 *   { server: {..., tls: {...}}, auth: { api_keys: [...], jwt: {...}, mtls: {...} } }
 * `config` may also be a function (port) => config, for values that depend on
 * the port (audience, public_url).
 * `client`: TLS options ({ca, cert, key}) for the readiness check over HTTPS.
 */
export async function startAuthGateway(config = {}, { upstream = everythingUpstream(), ready = true, readyTimeoutMs = 20000, client, port: fixedPort, extraArgs = [], portOverride = false } = {}) {
    for (let attempt = 1; ; attempt++) {
        const port = fixedPort ?? (await freePort());
        const dir = tempDir('mcp-guard-auth-');
        const cfg = typeof config === 'function' ? config(port) : config;
        // portOverride: the file names another (unused) port and `run --port` the real one.
        const filePort = portOverride ? await freePort() : port;
        const full = { ...cfg, server: { host: '127.0.0.1', port: filePort, ...cfg.server }, upstream };
        const configPath = path.join(dir, 'mcp-guard.toml');
        writeFileSync(configPath, toTomlDeep(full));
        const runArgs = portOverride ? ['run', '--port', String(port)] : ['run'];
        const proc = spawn(GATEWAY_BIN, ['--config', configPath, ...extraArgs, ...runArgs], {
            cwd: dir,
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1', UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1' }
        });
        live.add(proc);
        proc.on('exit', () => live.delete(proc));
        const spawnErr = await new Promise(resolve => {
            proc.once('spawn', () => resolve(null));
            proc.once('error', e => resolve(e));
        });
        if (spawnErr) {
            rmSync(dir, { recursive: true, force: true });
            throw new Error(`cannot run ${GATEWAY_BIN}: ${spawnErr.message}`);
        }
        const gw = new AuthGateway({ proc, port, dir, configPath });
        gw.config = full;
        gw.tls = !!full.server.tls?.enabled;
        gw.client = client;
        if (!ready) return gw;
        try {
            await gw.waitReadyAny(readyTimeoutMs);
            return gw;
        } catch (e) {
            await gw.kill();
            if (fixedPort === undefined && attempt < 3 && /Address already in use|cannot listen/.test(e.message)) continue;
            throw e;
        }
    }
}

export class AuthGateway extends Gateway {
    get scheme() {
        return this.tls ? 'https' : 'http';
    }

    get origin() {
        return `${this.scheme}://127.0.0.1:${this.port}`;
    }

    /** The resource URL the gateway derives (no public_url): origin + /mcp. */
    get resource() {
        return `${this.origin}/mcp`;
    }

    get metadataUrl() {
        return `${this.origin}/.well-known/oauth-protected-resource/mcp`;
    }

    /** The exact WWW-Authenticate value expected for `error` (null: none), `scope` (string or null). */
    challenge(error = null, scope = null) {
        let v = `Bearer resource_metadata="${this.metadataUrl}"`;
        if (scope) v += `, scope="${scope}"`;
        if (error) v += `, error="${error}"`;
        return v;
    }

    async waitReadyAny(timeoutMs) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            if (this.exit) throw new Error(`the gateway exited (${JSON.stringify(this.exit)}) before /ready; stderr:\n${this.tail()}`);
            try {
                // Our own process must say it listens there (not another one that took the port).
                const listening = this.stderr.includes(`listening on ${this.scheme}://127.0.0.1:${this.port}/`);
                if (listening && (await this.request('/ready', { timeoutMs: 2000 })).status === 200) return;
            } catch {
                /* not listening yet */
            }
            if (Date.now() > deadline) throw new Error(`the gateway was not ready within ${timeoutMs} ms; stderr:\n${this.tail()}`);
            await sleep(25);
        }
    }

    /**
     * One request on its own connection (http or https with `tls` options
     * {ca, cert, key, ...} merged over the gateway's `client`). Resolves to
     * {status, headers, body, json, socket info: {peerCert}}.
     */
    request(pathname, { method = 'GET', headers = {}, body, tls = {}, timeoutMs = 10000 } = {}) {
        const mod = this.tls ? https : http;
        const opts = { host: '127.0.0.1', port: this.port, path: pathname, method, headers: { connection: 'close', ...headers }, agent: false };
        if (this.tls) Object.assign(opts, { servername: 'localhost', ...this.client, ...tls });
        return new Promise((resolve, reject) => {
            const req = mod.request(opts, res => {
                const parts = [];
                const peerCert = res.socket.getPeerCertificate?.();
                res.on('data', d => parts.push(d));
                res.on('end', () => {
                    const text = Buffer.concat(parts).toString('utf8');
                    let json;
                    try {
                        json = text && (res.headers['content-type'] || '').startsWith('application/json') ? JSON.parse(text) : undefined;
                    } catch {
                        json = undefined;
                    }
                    resolve({ status: res.statusCode, headers: res.headers, body: text, json, peerCert });
                });
                res.on('error', reject);
            });
            req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${pathname} timed out after ${timeoutMs} ms`)));
            req.on('error', reject);
            req.end(body);
        });
    }

    /**
     * POST to /mcp (JSON-RPC object or string) with extra headers; returns
     * {status, headers (lower-case object), text, json, message}.
     */
    async mcp(message, { headers = {}, sessionId, protocolVersion, tls, path: p = '/mcp' } = {}) {
        const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers };
        if (sessionId) h['mcp-session-id'] = sessionId;
        if (protocolVersion) h['mcp-protocol-version'] = protocolVersion;
        const r = await this.request(p, { method: 'POST', headers: h, body: typeof message === 'string' ? message : JSON.stringify(message), tls });
        let out = { status: r.status, headers: r.headers, text: r.body, json: r.json, message: r.json, peerCert: r.peerCert };
        if ((r.headers['content-type'] || '').startsWith('text/event-stream')) {
            // reuse helpers' SSE parsing through a Response
            const parsed = await readResponse(new Response(r.body, { status: r.status, headers: { 'content-type': r.headers['content-type'] } }));
            out = { ...out, events: parsed.events, message: parsed.message };
        }
        return out;
    }

    /** A legacy initialize (+ notifications/initialized) with `headers`; returns {status, sessionId, response}. */
    async initialize(headers = {}, { tls } = {}) {
        const response = await this.mcp(
            { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e-auth', version: '0.0.0' } } },
            { headers, tls }
        );
        if (response.status !== 200) return { status: response.status, response };
        const sessionId = response.headers['mcp-session-id'];
        const ack = await this.mcp({ jsonrpc: '2.0', method: 'notifications/initialized' }, { headers, sessionId, protocolVersion: '2025-11-25', tls });
        if (ack.status !== 202) throw new Error(`notifications/initialized answered ${ack.status}: ${ack.text}`);
        return { status: 200, sessionId, response };
    }

    /** tools/list in session `sessionId`. */
    toolsList(sessionId, headers = {}, { tls } = {}) {
        return this.mcp({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }, { headers, sessionId, protocolVersion: '2025-11-25', tls });
    }

    /** Rewrites the configuration file (same server/upstream unless given). */
    writeConfig(config) {
        const full = { ...config, server: { ...this.config.server, ...config.server }, upstream: config.upstream || this.config.upstream };
        writeFileSync(this.configPath, toTomlDeep(full));
        this.config = full;
    }

    /** Writes `text` verbatim as the configuration file. */
    writeRaw(text) {
        writeFileSync(this.configPath, text);
    }

    /**
     * SIGHUP and wait (bounded) for the log line of its outcome: resolves to
     * the new stderr text since the signal; `expect` 'ok', 'fail' or 'any'.
     */
    async reload({ expect = 'ok', timeoutMs = 10000 } = {}) {
        const start = this.stderr.length;
        this.signal('SIGHUP');
        const deadline = Date.now() + timeoutMs;
        const okRe = /reloaded: /;
        const failRe = /reload (failed|refused)/;
        for (;;) {
            const text = this.stderr.slice(start);
            if (okRe.test(text) || failRe.test(text)) {
                const got = okRe.test(text) ? 'ok' : 'fail';
                if (expect !== 'any' && got !== expect) throw new Error(`reload: expected ${expect}, got ${got}:\n${text}`);
                return text;
            }
            if (this.exit) throw new Error(`the gateway exited during the reload: ${JSON.stringify(this.exit)}\n${this.tail()}`);
            if (Date.now() > deadline) throw new Error(`no reload outcome in the log within ${timeoutMs} ms:\n${text}`);
            await sleep(20);
        }
    }
}
