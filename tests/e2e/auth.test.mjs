// Authentication at the MCP endpoint: API keys (Bearer and X-API-Key), the
// exact 401 / 403 / 400 answers and their WWW-Authenticate challenges
// (RFC 6750), RFC 9728 protected resource metadata, sessions bound to the
// identity that created them, the loopback-only rule without
// authentication, and the official SDK client through an API key.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { closeSdk, connectSdk, EVERYTHING_JS, freePort, modernRequest, runCli, runCliAsync, tempDir, toToml } from './helpers.mjs';
import { hashKey, keygen, startAuthGateway } from './idp/auth-gateway.mjs';
import { b64uJson } from './idp/idp.mjs';

const SECRET = 'an-hmac-secret-of-at-least-32-bytes-for-the-e2e-suite';
const ISSUER = 'https://issuer.e2e.example';

/** An HS256 token for the simple-mode gateway. */
function hsToken(claims, secret = SECRET) {
    const input = `${b64uJson({ alg: 'HS256', typ: 'JWT' })}.${b64uJson(claims)}`;
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

/** Asserts a refusal: status, exact WWW-Authenticate, a JSON-RPC error body that names no provider. */
function assertRefused(r, status, challenge, what = '') {
    assert.equal(r.status, status, `${what}: status; body ${String(r.text).slice(0, 300)}`);
    assert.equal(r.headers['www-authenticate'], challenge, `${what}: WWW-Authenticate`);
    assert.match(r.headers['content-type'] || '', /^application\/json/, what);
    assert.equal(r.json?.jsonrpc, '2.0', `${what}: a JSON-RPC body: ${r.text}`);
    assert.equal(r.json.id, null, what);
    assert.equal(typeof r.json.error?.code, 'number', what);
    assert.equal(typeof r.json.error?.message, 'string', what);
    assert.doesNotMatch(r.text, /api[_ -]?key|jwt|mtls|certificate|signature|kid|hash|alice|bob/i, `${what}: the body must not say which provider refused: ${r.text}`);
}

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e-auth', version: '0.0.0' } } };

describe('API keys', { timeout: 60000 }, () => {
    let gw;
    let alice;
    let bob;

    before(async () => {
        alice = keygen('alice');
        bob = keygen('bob');
        gw = await startAuthGateway({
            auth: {
                api_keys: [
                    { id: 'alice', key_hash: alice.hash },
                    { id: 'bob', key_hash: hashKey(bob.key) }
                ]
            }
        });
    });

    after(async () => {
        await gw?.stop();
    });

    test('keygen and hash-key agree on the hash', () => {
        assert.equal(hashKey(alice.key), alice.hash);
        assert.match(alice.key, /^mcp_[A-Za-z0-9_-]{43}$/);
    });

    test('Authorization: Bearer mcp_… opens a session that works', async () => {
        const h = { authorization: `Bearer ${alice.key}` };
        const init = await gw.initialize(h);
        assert.equal(init.status, 200, init.response?.text);
        assert.match(init.sessionId, /^[0-9a-f]{32}$/);
        const tools = await gw.toolsList(init.sessionId, h);
        assert.equal(tools.status, 200, tools.text);
        assert.ok(tools.message.result.tools.some(t => t.name === 'echo'));
    });

    test('X-API-Key works too, and the Bearer scheme is case-insensitive', async () => {
        const init = await gw.initialize({ 'x-api-key': bob.key });
        assert.equal(init.status, 200, init.response?.text);
        const tools = await gw.toolsList(init.sessionId, { 'x-api-key': bob.key });
        assert.equal(tools.status, 200);
        const lower = await gw.initialize({ authorization: `bearer ${bob.key}` });
        assert.equal(lower.status, 200, lower.response?.text);
    });

    test('no credentials: 401 with the bare resource_metadata challenge, on POST, GET and DELETE', async () => {
        assertRefused(await gw.mcp(INIT), 401, gw.challenge(), 'POST');
        const get = await gw.request('/mcp', { headers: { accept: 'text/event-stream' } });
        assertRefused({ ...get, text: get.body }, 401, gw.challenge(), 'GET');
        const del = await gw.request('/mcp', { method: 'DELETE', headers: { 'mcp-session-id': '0'.repeat(32) } });
        assertRefused({ ...del, text: del.body }, 401, gw.challenge(), 'DELETE');
        assert.equal((await gw.mcp(INIT)).json.error.message, 'Unauthorized: credentials required');
    });

    test('a wrong key: 401 invalid_token (Bearer and X-API-Key), same body whatever the key looks like', async () => {
        const wrong = keygen('mallory').key; // a well-formed key that is not configured
        const cases = [
            { authorization: `Bearer ${wrong}` },
            { 'x-api-key': wrong },
            { 'x-api-key': 'not-even-a-key' },
            { authorization: `Bearer ${alice.key.slice(0, -1)}` },
            { authorization: `Bearer ${alice.key}x` }
        ];
        const bodies = new Set();
        for (const h of cases) {
            const r = await gw.mcp(INIT, { headers: h });
            assertRefused(r, 401, gw.challenge('invalid_token'), JSON.stringify(Object.keys(h)));
            bodies.add(r.text);
        }
        assert.equal(bodies.size, 1, 'one body for every refused key');
        assert.equal([...bodies][0], JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Unauthorized: invalid or expired credentials' } }));
    });

    test('a valid X-API-Key wins over a wrong Authorization, and a wrong X-API-Key is refused even with a valid Authorization', async () => {
        // Documented: X-API-Key is the key when present.
        const r1 = await gw.initialize({ authorization: 'Bearer mcp_wrong', 'x-api-key': alice.key });
        assert.equal(r1.status, 200);
        const r2 = await gw.mcp(INIT, { headers: { authorization: `Bearer ${alice.key}`, 'x-api-key': 'mcp_wrong' } });
        assertRefused(r2, 401, gw.challenge('invalid_token'), 'wrong X-API-Key');
    });

    test('a bearer token that is not a key and not a JWT is refused as invalid_token (RFC 6750 §3.1), not as missing', async () => {
        // Only API keys are configured; "Bearer some-opaque-token" presents a
        // credential, so the answer must say it is invalid (error="invalid_token").
        const r = await gw.mcp(INIT, { headers: { authorization: 'Bearer some-opaque-token' } });
        assertRefused(r, 401, gw.challenge('invalid_token'), 'opaque bearer');
    });

    test('another scheme (Basic) is no credential: 401 without error', async () => {
        const r = await gw.mcp(INIT, { headers: { authorization: `Basic ${Buffer.from(`alice:${alice.key}`).toString('base64')}` } });
        assertRefused(r, 401, gw.challenge(), 'Basic');
    });

    test('credentials in the query string: 400 invalid_request, even next to a valid header', async () => {
        for (const q of ['access_token=x', 'api_key=x', 'apikey=x', 'token=x', 'key=x', 'jwt=x', `access_token=${alice.key}`, 'foo=1&API_KEY=x', 'ACCESS_TOKEN']) {
            const r = await gw.mcp(INIT, { path: `/mcp?${q}`, headers: { authorization: `Bearer ${alice.key}` } });
            assertRefused(r, 400, gw.challenge('invalid_request'), q);
        }
        // A harmless query string is not refused.
        const ok = await gw.mcp(INIT, { path: '/mcp?x=1&keyboard=2', headers: { authorization: `Bearer ${alice.key}` } });
        assert.equal(ok.status, 200, ok.text);
    });

    test('browsers: the preflight needs no credentials; 401s carry CORS headers exposing WWW-Authenticate', async () => {
        const origin = 'http://localhost:5173';
        const pre = await gw.request('/mcp', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
        assert.equal(pre.status, 204);
        assert.equal(pre.headers['access-control-allow-origin'], origin);
        assert.match(pre.headers['access-control-allow-headers'], /Authorization/);
        assert.match(pre.headers['access-control-allow-headers'], /X-API-Key/);
        const checkCors = (r, what) => {
            assert.equal(r.headers['access-control-allow-origin'], origin, `${what}: Access-Control-Allow-Origin`);
            assert.match(r.headers['access-control-expose-headers'] || '', /WWW-Authenticate/, `${what}: exposes WWW-Authenticate`);
        };
        const none = await gw.mcp(INIT, { headers: { origin } });
        assertRefused(none, 401, gw.challenge(), 'browser, no credentials');
        checkCors(none, '401');
        const bad = await gw.mcp(INIT, { headers: { origin, authorization: 'Bearer mcp_nope' } });
        assertRefused(bad, 401, gw.challenge('invalid_token'), 'browser, bad key');
        checkCors(bad, '401 invalid_token');
        const ok = await gw.mcp(INIT, { headers: { origin, authorization: `Bearer ${alice.key}` } });
        assert.equal(ok.status, 200);
        checkCors(ok, '200');
    });

    test('browsers: the 400 for credentials in the URL carries the CORS headers too (else the client cannot read it)', async () => {
        const origin = 'http://localhost:5173';
        const q = await gw.mcp(INIT, { path: '/mcp?access_token=x', headers: { origin } });
        assertRefused(q, 400, gw.challenge('invalid_request'), 'browser, query token');
        assert.equal(q.headers['access-control-allow-origin'], origin, '400: Access-Control-Allow-Origin');
        assert.match(q.headers['access-control-expose-headers'] || '', /WWW-Authenticate/, '400: exposes WWW-Authenticate');
    });

    test('2026-07-28 stateless requests are authenticated the same way', async () => {
        const { body, headers } = modernRequest('tools/list', {}, { id: 5 });
        assertRefused(await gw.mcp(body, { headers }), 401, gw.challenge(), 'modern, none');
        assertRefused(await gw.mcp(body, { headers: { ...headers, 'x-api-key': 'mcp_nope' } }), 401, gw.challenge('invalid_token'), 'modern, bad key');
        const ok = await gw.mcp(body, { headers: { ...headers, 'x-api-key': alice.key } });
        assert.equal(ok.status, 200, ok.text);
        assert.ok(ok.message.result.tools.length > 0);
    });

    test('no protected resource metadata without [auth.jwt]: 404', async () => {
        for (const p of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
            const r = await gw.request(p);
            assert.equal(r.status, 404, p);
            assert.equal(r.json?.jsonrpc, '2.0');
        }
    });

    test("a session belongs to its identity: alice's session id with bob's key is 404 (POST, GET, DELETE), alice keeps it", async () => {
        const a = { authorization: `Bearer ${alice.key}` };
        const b = { authorization: `Bearer ${bob.key}` };
        const { sessionId } = await gw.initialize(a);
        const post = await gw.toolsList(sessionId, b);
        assert.equal(post.status, 404, post.text);
        assert.equal(post.json?.error?.code, -32600);
        const viaHeader = await gw.toolsList(sessionId, { 'x-api-key': bob.key });
        assert.equal(viaHeader.status, 404);
        const get = await gw.request('/mcp', { headers: { ...b, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } });
        assert.equal(get.status, 404, get.body);
        const del = await gw.request('/mcp', { method: 'DELETE', headers: { ...b, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } });
        assert.equal(del.status, 404, del.body);
        // A 404 for a stranger looks exactly like a session that does not exist.
        const none = await gw.toolsList('f'.repeat(32), b);
        assert.equal(none.status, 404);
        assert.deepEqual(post.json.error, none.json.error);
        // Without credentials the session id is no credential: 401 first.
        const anon = await gw.toolsList(sessionId, {});
        assertRefused(anon, 401, gw.challenge(), 'session id without credentials');
        // The session survived all that; alice (Bearer or X-API-Key) still uses it.
        assert.equal((await gw.toolsList(sessionId, a)).status, 200);
        assert.equal((await gw.toolsList(sessionId, { 'x-api-key': alice.key })).status, 200);
        const end = await gw.request('/mcp', { method: 'DELETE', headers: { ...a, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' } });
        assert.ok(end.status === 200 || end.status === 204, `DELETE by the owner: ${end.status}`);
    });

    test('the official SDK client (StreamableHTTPClientTransport) works through an API key, and is refused without it', async () => {
        let c;
        try {
            c = await connectSdk(gw, { transportOptions: { requestInit: { headers: { Authorization: `Bearer ${alice.key}` } } } });
            const { tools } = await c.client.listTools();
            assert.ok(tools.some(t => t.name === 'echo'));
            const res = await c.client.callTool({ name: 'echo', arguments: { message: 'through the gateway' } });
            assert.match(res.content[0].text, /through the gateway/);
        } finally {
            await closeSdk(c);
        }
        await assert.rejects(connectSdk(gw), /401|Unauthorized/i);
        await assert.rejects(connectSdk(gw, { transportOptions: { requestInit: { headers: { 'X-API-Key': 'mcp_nope' } } } }), /401|Unauthorized/i);
    });
});

describe('JWT (simple mode) next to API keys: 403, scope in challenges, RFC 9728', { timeout: 60000 }, () => {
    let gw;
    let alice;

    before(async () => {
        alice = keygen('alice');
        gw = await startAuthGateway(port => ({
            auth: {
                api_keys: [{ id: 'alice', key_hash: alice.hash }],
                jwt: {
                    mode: 'simple',
                    secret: SECRET,
                    issuer: ISSUER,
                    audience: `http://127.0.0.1:${port}/mcp`,
                    required_scopes: ['mcp:use'],
                    scope_tool_mapping: { 'mcp:read': ['get_*', 'echo'], 'mcp:admin': ['*'] }
                }
            }
        }));
    });

    after(async () => {
        await gw?.stop();
    });

    const claims = (extra = {}) => ({ sub: 'alice', iss: ISSUER, aud: gw.resource, iat: now(), exp: now() + 300, scope: 'mcp:use mcp:read', ...extra });

    test('no credentials: 401 with scope="mcp:use" in the challenge', async () => {
        assertRefused(await gw.mcp(INIT), 401, gw.challenge(null, 'mcp:use'), 'none');
    });

    test('a valid token with the required scope: 200', async () => {
        const r = await gw.initialize({ authorization: `Bearer ${hsToken(claims())}` });
        assert.equal(r.status, 200, r.response?.text);
    });

    test('scopes as a JSON array are read too', async () => {
        const r = await gw.initialize({ authorization: `Bearer ${hsToken(claims({ scope: ['mcp:read', 'mcp:use'] }))}` });
        assert.equal(r.status, 200, r.response?.text);
    });

    test('a valid token without the required scope: 403 insufficient_scope', async () => {
        for (const scope of ['mcp:read', '', 'mcp:usex', undefined]) {
            const r = await gw.mcp(INIT, { headers: { authorization: `Bearer ${hsToken(claims({ scope }))}` } });
            assertRefused(r, 403, gw.challenge('insufficient_scope', 'mcp:use'), `scope ${JSON.stringify(scope)}`);
            assert.equal(r.json.error.message, 'Forbidden: the token lacks a required scope');
        }
    });

    test('an invalid token (wrong secret, expired): 401 invalid_token with scope', async () => {
        const wrong = hsToken(claims(), 'another-secret-that-is-long-enough-000000');
        assertRefused(await gw.mcp(INIT, { headers: { authorization: `Bearer ${wrong}` } }), 401, gw.challenge('invalid_token', 'mcp:use'), 'wrong secret');
        const expired = hsToken(claims({ exp: now() - 3600 }));
        assertRefused(await gw.mcp(INIT, { headers: { authorization: `Bearer ${expired}` } }), 401, gw.challenge('invalid_token', 'mcp:use'), 'expired');
        // API keys still go first and are unaffected by required_scopes.
        assert.equal((await gw.initialize({ 'x-api-key': alice.key })).status, 200);
    });

    test('query-string credentials: 400 with scope and invalid_request', async () => {
        const r = await gw.mcp(INIT, { path: `/mcp?access_token=${hsToken(claims())}` });
        assertRefused(r, 400, gw.challenge('invalid_request', 'mcp:use'), 'query');
    });

    test('RFC 9728 metadata at both well-known URLs', async () => {
        const expected = {
            resource: gw.resource,
            authorization_servers: [ISSUER],
            scopes_supported: ['mcp:use', 'mcp:read', 'mcp:admin'],
            bearer_methods_supported: ['header'],
            resource_name: 'mcp-guard'
        };
        for (const p of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
            const r = await gw.request(p);
            assert.equal(r.status, 200, p);
            assert.match(r.headers['content-type'], /^application\/json/);
            assert.deepEqual(r.json, expected, p);
            assert.equal(r.headers['access-control-allow-origin'], '*');
        }
        // The challenge points at the second one.
        const r = await gw.mcp(INIT);
        const url = /resource_metadata="([^"]+)"/.exec(r.headers['www-authenticate'])[1];
        assert.equal(url, `${gw.base}/.well-known/oauth-protected-resource/mcp`);
        assert.equal((await gw.request(new URL(url).pathname)).status, 200);
        // Other paths under the well-known prefix are not metadata.
        assert.equal((await gw.request('/.well-known/oauth-protected-resource/other')).status, 404);
        assert.equal((await gw.request('/.well-known/oauth-protected-resource/mcp/x')).status, 404);
    });

    test('a JWT identity "alice" is not the API key identity "alice": the session is not shared', async () => {
        const { sessionId } = await gw.initialize({ 'x-api-key': alice.key });
        const r = await gw.toolsList(sessionId, { authorization: `Bearer ${hsToken(claims({ sub: 'alice' }))}` });
        assert.equal(r.status, 404, r.text);
        assert.equal((await gw.toolsList(sessionId, { 'x-api-key': alice.key })).status, 200);
    });
});

describe('RFC 9728 with server.public_url', { timeout: 60000 }, () => {
    test('resource = public_url + mcp_path, in the metadata and the challenge', async () => {
        const gw = await startAuthGateway({
            server: { public_url: 'https://mcp.e2e.example/', mcp_path: '/mcp' },
            auth: { jwt: { mode: 'simple', secret: SECRET, issuer: ISSUER, audience: 'https://mcp.e2e.example/mcp' } }
        });
        try {
            const r = await gw.request('/.well-known/oauth-protected-resource/mcp', { headers: { host: 'mcp.e2e.example' } });
            assert.equal(r.status, 200, r.body);
            assert.equal(r.json.resource, 'https://mcp.e2e.example/mcp');
            assert.deepEqual(r.json.authorization_servers, [ISSUER]);
            assert.deepEqual(r.json.scopes_supported, []);
            const c = await gw.mcp(INIT);
            assert.equal(c.status, 401);
            assert.equal(c.headers['www-authenticate'], 'Bearer resource_metadata="https://mcp.e2e.example/.well-known/oauth-protected-resource/mcp"');
        } finally {
            await gw.stop();
        }
    });
});

describe('without any provider: loopback only', { timeout: 60000 }, () => {
    let dir;
    before(() => {
        dir = tempDir('mcp-guard-noauth-');
    });
    after(() => {
        if (dir && !process.env.E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    });

    const config = async host =>
        toToml({
            server: { host, port: await freePort() },
            upstream: { transport: 'stdio', command: process.execPath, args: [EVERYTHING_JS, 'stdio'] }
        });

    test('host = "0.0.0.0" without auth: validate reports it, run refuses to start (exit 1: an invalid configuration)', async () => {
        const file = `${dir}/open.toml`;
        writeFileSync(file, await config('0.0.0.0'));
        const v = runCli(['--config', file, 'validate']);
        assert.equal(v.status, 1, v.stdout + v.stderr);
        assert.match(v.stderr, /server\.host: no authentication is configured, so the gateway may only listen on a loopback address, not "0\.0\.0\.0"/);
        const r = await runCliAsync(['--config', file, 'run'], { timeoutMs: 15000 });
        assert.match(r.stderr, /no authentication is configured/);
        // docs/cli.md: a file that listens beyond loopback without authentication is an
        // invalid configuration (exit 1, as validate says); --host doing it is exit 3.
        assert.equal(r.status, 1, `got ${r.status}:\n${r.stderr}`);
    });

    test('--host 0.0.0.0 over a loopback file without auth: exit code 3, nothing listens', async () => {
        const file = `${dir}/loop.toml`;
        const text = await config('127.0.0.1');
        writeFileSync(file, text);
        const port = Number(/port = (\d+)/.exec(text)[1]);
        const r = await runCliAsync(['--config', file, 'run', '--host', '0.0.0.0'], { timeoutMs: 15000 });
        assert.equal(r.status, 3, r.stderr);
        assert.match(r.stderr, /no authentication is configured: refusing to listen on 0\.0\.0\.0/);
        await assert.rejects(fetch(`http://127.0.0.1:${port}/health`), 'nothing listens');
    });

    test('on loopback without auth it runs (anonymous) with a warning', async () => {
        const gw = await startAuthGateway({});
        try {
            assert.match(gw.stderr, /no authentication is configured: anyone who can reach 127\.0\.0\.1/);
            const r = await gw.initialize({});
            assert.equal(r.status, 200);
            // No challenge to answer, and no metadata.
            assert.equal((await gw.request('/.well-known/oauth-protected-resource')).status, 404);
            // Query-string credentials are still refused.
            const q = await gw.mcp(INIT, { path: '/mcp?access_token=x' });
            assert.equal(q.status, 400);
        } finally {
            await gw.stop();
        }
    });
});
