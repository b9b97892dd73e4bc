// The gateway as the authorization server of MCP clients ([auth.oauth]
// authorization_server = true), fronting a real provider (oidc-provider with
// a headless login, idp/server.mjs):
//
//  - the MCP TypeScript SDK's OAuth client runs discovery (RFC 9728 → RFC
//    8414) → dynamic registration → PKCE authorize (the test submits the
//    consent page like a browser) → token → MCP calls, then a refresh with
//    rotation;
//  - attack tests, one each: consent skipped (no form, forged CSRF, another
//    site's form), redirect_uri mismatch (prefix, case, userinfo, fragment,
//    look-alike host), PKCE missing or plain, verifier mismatch, code replay
//    (revokes what it issued), refresh reuse after rotation (revokes the
//    family), a registration with a javascript: redirect, a token request for
//    another resource (audience), a CIMD client_id on a private address.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { tempDir } from './helpers.mjs';
import { startAuthGateway } from './idp/auth-gateway.mjs';
import { Jar } from './idp/browser.mjs';
import { bearer, consentAndLogin, consentFields, initialize, MemoryProvider, offlineFacade, REDIRECT, startLoginGateway, stopLogin } from './idp/facade.mjs';

const b64u = b => Buffer.from(b).toString('base64url');

describe('the gateway as authorization server (facade) with oidc-provider', { concurrency: 1, timeout: 180000 }, () => {
    let idp;
    let gw;
    let origin;

    before(async () => {
        ({ idp, gw, origin } = await startLoginGateway(({ idp, origin }) => ({
            oauth: { authorization_server: true },
            // Service clients may still bring the IdP's own JWTs.
            auth: { jwt: { mode: 'jwks', jwks_url: idp.jwksUrl, allow_private_networks: true, issuer: idp.issuer, audience: `${origin}/mcp` } }
        })));
    });

    after(async () => stopLogin({ gw, idp }));

    /** Register a client by hand (DCR); returns its client_id. */
    async function register(redirectUris = [REDIRECT]) {
        const r = await fetch(`${origin}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_name: 'hand', redirect_uris: redirectUris, token_endpoint_auth_method: 'none' }) });
        const body = await r.json();
        assert.equal(r.status, 201, JSON.stringify(body));
        return body.client_id;
    }

    /** A PKCE pair. */
    function pkce() {
        const verifier = b64u(randomBytes(32));
        return { verifier, challenge: b64u(createHash('sha256').update(verifier).digest()) };
    }

    function authorizeUrl(params) {
        const u = new URL(`${origin}/authorize`);
        for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
        return u;
    }

    const approveAndLogin = (url, jar, account) => consentAndLogin(origin, url, jar, account);

    /** A full authorization for a hand-registered client: {clientId, code, verifier}. */
    async function codeFor(clientId, { resource = `${origin}/mcp`, jar } = {}) {
        const { verifier, challenge } = pkce();
        const back = await approveAndLogin(authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'client-state', resource }), jar);
        assert.equal(back.searchParams.get('state'), 'client-state');
        assert.equal(back.searchParams.get('iss'), origin, 'RFC 9207 iss');
        const code = back.searchParams.get('code');
        assert.ok(code, `no code: ${back}`);
        return { clientId, code, verifier };
    }

    const token = params => fetch(`${origin}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) }).then(async r => ({ status: r.status, body: await r.json() }));
    const redeem = ({ clientId, code, verifier }, extra = {}) => token({ grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: REDIRECT, code_verifier: verifier, ...extra });
    const mcpStatus = async tok => (await gw.mcp(initialize('x'), { headers: bearer(tok) })).status;

    test('metadata: protected resource names the gateway; RFC 8414 document and JWKS', async () => {
        const prm = await (await fetch(`${origin}/.well-known/oauth-protected-resource/mcp`)).json();
        assert.deepEqual(prm.authorization_servers, [origin]);
        const as = await (await fetch(`${origin}/.well-known/oauth-authorization-server`)).json();
        assert.equal(as.issuer, origin);
        assert.equal(as.authorization_endpoint, `${origin}/authorize`);
        assert.equal(as.token_endpoint, `${origin}/token`);
        assert.equal(as.registration_endpoint, `${origin}/register`);
        assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
        assert.equal(as.client_id_metadata_document_supported, true);
        assert.equal(as.authorization_response_iss_parameter_supported, true);
        const jwks = await (await fetch(as.jwks_uri)).json();
        assert.equal(jwks.keys[0].kty, 'OKP');
        assert.equal(jwks.keys[0].alg, 'EdDSA');
        assert.equal(jwks.keys[0].d, undefined, 'no private key');
    });

    test('the MCP SDK OAuth client: discovery → registration → PKCE authorize → token → MCP calls → refresh', async () => {
        const provider = new MemoryProvider();
        assert.equal(await auth(provider, { serverUrl: `${origin}/mcp` }), 'REDIRECT');
        assert.ok(provider.info?.client_id, 'registered by DCR');
        const authUrl = new URL(provider.authUrl);
        assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
        assert.equal(authUrl.searchParams.get('resource'), `${origin}/mcp`);
        const back = await approveAndLogin(authUrl);
        const code = back.searchParams.get('code');
        assert.ok(code, `redirect without a code: ${back}`);
        assert.equal(await auth(provider, { serverUrl: `${origin}/mcp`, authorizationCode: code }), 'AUTHORIZED');
        const first = provider.saved;
        assert.equal(first.token_type.toLowerCase(), 'bearer');
        const [h, p] = first.access_token.split('.').slice(0, 2).map(x => JSON.parse(Buffer.from(x, 'base64url')));
        assert.equal(h.alg, 'EdDSA');
        assert.equal(p.aud, `${origin}/mcp`);
        assert.equal(p.iss, origin);
        assert.equal(p.sub, 'alice');
        assert.ok(p.exp - p.iat <= 300);
        // the provider's token never reaches the client
        assert.ok(!JSON.stringify(first).includes(idp.issuer));

        const client = new Client({ name: 'e2e-facade', version: '0' });
        await client.connect(new StreamableHTTPClientTransport(new URL(`${origin}/mcp`), { authProvider: provider }));
        const tools = await client.listTools();
        assert.ok(tools.tools.length > 0);
        const echo = await client.callTool({ name: 'echo', arguments: { message: 'via facade' } });
        assert.match(JSON.stringify(echo.content), /via facade/);
        await client.close();

        // refresh with rotation
        assert.equal(await auth(provider, { serverUrl: `${origin}/mcp` }), 'AUTHORIZED');
        const second = provider.saved;
        assert.notEqual(second.refresh_token, first.refresh_token);
        assert.notEqual(second.access_token, first.access_token);
        assert.equal(await mcpStatus(second.access_token), 200);
    });

    test('a user who refuses at the provider sends the client access_denied (with its state and iss)', async () => {
        const clientId = await register();
        const { challenge } = pkce();
        const back = await approveAndLogin(authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', state: 'st-1' }), new Jar(), 'deny');
        assert.equal(back.searchParams.get('error'), 'access_denied');
        assert.equal(back.searchParams.get('state'), 'st-1');
        assert.equal(back.searchParams.get('iss'), origin);
        assert.equal(back.searchParams.get('code'), null);
    });

    test('attack: consent cannot be skipped for an unapproved client', async () => {
        const clientId = await register();
        const { challenge } = pkce();
        const url = authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' });
        const page = await fetch(url, { redirect: 'manual' });
        assert.equal(page.status, 200, 'a consent page, not a redirect to the login');
        assert.match(page.headers.get('content-security-policy'), /frame-ancestors 'none'/);
        const jar = new Jar();
        jar.store(url.href, page);
        const { pending, csrf } = consentFields(await page.text());
        const post = (body, headers = {}) =>
            fetch(`${origin}/authorize`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) });
        // no CSRF token, a made-up one, the right one without the browser's cookie, another site's form
        assert.equal((await post({ pending, decision: 'approve' }, { cookie: jar.header(url.href) })).status, 400);
        assert.equal((await post({ pending, csrf: 'A'.repeat(43), decision: 'approve' }, { cookie: jar.header(url.href) })).status, 400);
        assert.equal((await post({ pending, csrf, decision: 'approve' })).status, 400);
        assert.equal((await post({ pending, csrf, decision: 'approve' }, { cookie: jar.header(url.href), origin: 'https://evil.example' })).status, 403);
        // a made-up pending id
        assert.equal((await post({ pending: 'x'.repeat(43), csrf, decision: 'approve' }, { cookie: jar.header(url.href) })).status, 400);
        // deny goes back to the client with access_denied
        const deny = await post({ pending, csrf, decision: 'deny' }, { cookie: jar.header(url.href) });
        assert.equal(deny.status, 302);
        assert.equal(new URL(deny.headers.get('location')).searchParams.get('error'), 'access_denied');
    });

    test('a client approved once in this browser goes straight to the login the next time', async () => {
        const clientId = await register();
        const jar = new Jar();
        await codeFor(clientId, { jar });
        const { challenge } = pkce();
        const url = authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' });
        const r = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url.href) } });
        assert.equal(r.status, 302);
        assert.ok(r.headers.get('location').startsWith(`${idp.issuer}/auth`));
        // another browser (no cookie) still sees the consent page
        assert.equal((await fetch(url, { redirect: 'manual' })).status, 200);
    });

    test('attack: redirect_uri mismatch (prefix, case, userinfo, fragment, look-alike) is refused without redirecting', async () => {
        const clientId = await register(['https://app.example.com/cb']);
        const { challenge } = pkce();
        for (const uri of ['https://app.example.com/cb/evil', 'https://app.example.com/c', 'https://APP.example.com/cb', 'HTTPS://app.example.com/cb', 'https://app.example.com@evil.example/cb', 'https://app.example.com/cb#x', 'https://app.example.com.evil.example/cb', 'https://evil.example/cb']) {
            const r = await fetch(authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: uri, code_challenge: challenge, code_challenge_method: 'S256' }), { redirect: 'manual' });
            assert.equal(r.status, 400, uri);
            assert.equal(r.headers.get('location'), null, uri);
        }
    });

    test('attack: PKCE missing or plain is refused', async () => {
        const clientId = await register();
        const { verifier, challenge } = pkce();
        for (const params of [{}, { code_challenge: challenge }, { code_challenge: verifier, code_challenge_method: 'plain' }]) {
            const r = await fetch(authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, ...params }), { redirect: 'manual' });
            assert.equal(r.status, 302);
            const to = new URL(r.headers.get('location'));
            assert.ok(to.href.startsWith(REDIRECT));
            assert.equal(to.searchParams.get('error'), 'invalid_request');
        }
    });

    test('attack: a wrong code_verifier is refused and spends the code', async () => {
        const grant = await codeFor(await register());
        const r = await redeem({ ...grant, verifier: pkce().verifier });
        assert.equal(r.status, 400);
        assert.equal(r.body.error, 'invalid_grant');
        assert.equal((await redeem(grant)).status, 400);
    });

    test('attack: code replay is refused and revokes the tokens the code gave', async () => {
        const grant = await codeFor(await register());
        const first = await redeem(grant);
        assert.equal(first.status, 200, JSON.stringify(first.body));
        assert.equal(await mcpStatus(first.body.access_token), 200);
        const again = await redeem(grant);
        assert.equal(again.status, 400);
        assert.equal(again.body.error, 'invalid_grant');
        assert.equal(await mcpStatus(first.body.access_token), 401);
        const refresh = await token({ grant_type: 'refresh_token', client_id: grant.clientId, refresh_token: first.body.refresh_token });
        assert.equal(refresh.status, 400);
    });

    test('attack: a refresh token reused after rotation revokes the family', async () => {
        const grant = await codeFor(await register());
        const t1 = (await redeem(grant)).body;
        const t2 = await token({ grant_type: 'refresh_token', client_id: grant.clientId, refresh_token: t1.refresh_token });
        assert.equal(t2.status, 200);
        assert.notEqual(t2.body.refresh_token, t1.refresh_token);
        const reuse = await token({ grant_type: 'refresh_token', client_id: grant.clientId, refresh_token: t1.refresh_token });
        assert.equal(reuse.status, 400);
        assert.equal(reuse.body.error, 'invalid_grant');
        // the legitimate, rotated token dies too, and so does its access token
        assert.equal((await token({ grant_type: 'refresh_token', client_id: grant.clientId, refresh_token: t2.body.refresh_token })).status, 400);
        assert.equal(await mcpStatus(t2.body.access_token), 401);
    });

    test('attack: a token for another resource (audience) is refused at /authorize and /token', async () => {
        const clientId = await register();
        const { challenge } = pkce();
        const r = await fetch(authorizeUrl({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', resource: 'https://other.example/mcp' }), { redirect: 'manual' });
        assert.equal(new URL(r.headers.get('location')).searchParams.get('error'), 'invalid_target');
        const grant = await codeFor(clientId);
        const t = await redeem(grant, { resource: 'https://other.example/mcp' });
        assert.equal(t.status, 400);
        assert.equal(t.body.error, 'invalid_target');
    });

    test('attack: a registration with a javascript: (or data:, or non-loopback http) redirect is refused', async () => {
        for (const uri of ['javascript:alert(document.cookie)', 'data:text/html,<script>alert(1)</script>', 'http://evil.example/cb']) {
            const r = await fetch(`${origin}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [uri] }) });
            assert.equal(r.status, 400, uri);
            assert.equal((await r.json()).error, 'invalid_redirect_uri');
        }
    });

    test('with [auth.jwt] too: IdP JWTs still work, and the gateway\'s own tokens cause no JWKS refetch', async () => {
        const jwt = await idp.getToken({ resource: `${origin}/mcp`, client: 'alice' });
        assert.equal(await mcpStatus(jwt), 200);
        await idp.resetStats();
        for (let i = 0; i < 3; i++) {
            const t = (await redeem(await codeFor(await register()))).body;
            assert.equal(await mcpStatus(t.access_token), 200);
        }
        const s = await idp.stats();
        assert.equal(s.jwks, 0, JSON.stringify(s));
    });

    test('a SIGHUP reload keeps the keys, clients and grants', async () => {
        const clientId = await register();
        const t = (await redeem(await codeFor(clientId))).body;
        gw.writeConfig(gw.config);
        await gw.reload();
        assert.equal(await mcpStatus(t.access_token), 200);
        const r = await token({ grant_type: 'refresh_token', client_id: clientId, refresh_token: t.refresh_token });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        await codeFor(clientId); // the registration survived too
    });

    test('signing key rotation: a reload with a new signing_key_file signs with its kid; tokens of the replaced keys keep working', async () => {
        const dir = tempDir('mcp-guard-keys-');
        const keyFile = name => {
            const f = path.join(dir, name);
            execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', f], { stdio: 'ignore' });
            return f;
        };
        const kidOf = tok => JSON.parse(Buffer.from(tok.split('.')[0], 'base64url')).kid;
        const jwksKids = async () => (await (await fetch(`${origin}/.well-known/jwks.json`)).json()).keys.map(k => k.kid);
        const base = gw.config;
        try {
            const clientId = await register();
            const t0 = (await redeem(await codeFor(clientId))).body; // the random key of the start
            // rotate to key A
            gw.writeConfig({ ...base, auth: { ...base.auth, oauth: { ...base.auth.oauth, signing_key_file: keyFile('a.pem') } } });
            await gw.reload();
            const t1 = (await redeem(await codeFor(clientId))).body;
            assert.notEqual(kidOf(t1.access_token), kidOf(t0.access_token));
            assert.deepEqual(await jwksKids(), [kidOf(t1.access_token), kidOf(t0.access_token)], 'the signing key first, the replaced one still published');
            assert.equal(await mcpStatus(t0.access_token), 200, 'a token of the replaced key still validates');
            // the same file again: nothing changes
            await gw.reload();
            assert.equal(kidOf((await redeem(await codeFor(clientId))).body.access_token), kidOf(t1.access_token));
            // rotate to key B, with A configured as the previous key
            const a = gw.config.auth.oauth.signing_key_file;
            gw.writeConfig({ ...base, auth: { ...base.auth, oauth: { ...base.auth.oauth, signing_key_file: keyFile('b.pem'), previous_signing_key_file: a } } });
            await gw.reload();
            const t2 = (await redeem(await codeFor(clientId))).body;
            assert.notEqual(kidOf(t2.access_token), kidOf(t1.access_token));
            assert.deepEqual((await jwksKids()).sort(), [kidOf(t0.access_token), kidOf(t1.access_token), kidOf(t2.access_token)].sort());
            for (const t of [t0, t1, t2]) assert.equal(await mcpStatus(t.access_token), 200);
            // refresh tokens are not bound to a key: t1's refresh gives a token signed by B
            const r = await token({ grant_type: 'refresh_token', client_id: clientId, refresh_token: t1.refresh_token });
            assert.equal(r.status, 200, JSON.stringify(r.body));
            assert.equal(kidOf(r.body.access_token), kidOf(t2.access_token));
            // a key file that is not an Ed25519 key: the reload is refused, B keeps signing
            const ec = path.join(dir, 'ec.pem');
            execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', ec], { stdio: 'ignore' });
            gw.writeConfig({ ...base, auth: { ...base.auth, oauth: { ...base.auth.oauth, signing_key_file: ec } } });
            const out = await gw.reload({ expect: 'fail' });
            assert.match(out, /not an Ed25519 private key/);
            assert.equal(kidOf((await redeem(await codeFor(clientId))).body.access_token), kidOf(t2.access_token));
            // the log names files, never key material
            assert.ok(!gw.stderr.includes('PRIVATE KEY'));
        } finally {
            gw.writeConfig(base);
            await gw.reload();
            rmSync(dir, { recursive: true, force: true });
        }
    });

    test('the gateway log never holds a token or code', async () => {
        const grant = await codeFor(await register());
        const t = (await redeem(grant)).body;
        await mcpStatus(t.access_token);
        for (const secret of [grant.code, t.access_token, t.refresh_token]) assert.ok(!gw.stderr.includes(secret));
    });
});

describe('facade: a CIMD client_id on a private address is never fetched', { timeout: 60000 }, () => {
    let gw;
    let server;
    let connections = 0;

    before(async () => {
        server = net.createServer(s => {
            connections++;
            s.destroy();
        });
        await new Promise(r => server.listen(0, '127.0.0.1', r));
        gw = await startAuthGateway(port => ({ auth: { oauth: offlineFacade(port) } }));
    });

    after(async () => {
        await gw?.stop();
        server?.close();
    });

    test('client_id https://localhost:<port>/client.json: 400 invalid_client, no connection made', async () => {
        const { port } = server.address();
        for (const id of [`https://localhost:${port}/client.json`, `https://127.0.0.1:${port}/client.json`]) {
            const u = new URL(`${gw.origin}/authorize`);
            u.searchParams.set('client_id', id);
            u.searchParams.set('redirect_uri', REDIRECT);
            u.searchParams.set('response_type', 'code');
            const r = await gw.request(`${u.pathname}${u.search}`);
            assert.equal(r.status, 400, r.body);
            assert.equal(r.json.error, 'invalid_client');
        }
        assert.equal(connections, 0);
    });
});

/** A request from local address `from` (127.0.0.x: a client of its own for the per-address limit). */
function requestFrom(from, port, method, pathname, { headers = {}, body } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, localAddress: from, path: pathname, method, headers: { connection: 'close', ...headers }, agent: false }, res => {
            const parts = [];
            res.on('data', d => parts.push(d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString('utf8') }));
            res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
    });
}

describe('facade: CORS preflight for browser clients and the per-address limit before authentication', { concurrency: 1, timeout: 60000 }, () => {
    const INSPECTOR = 'http://localhost:6274'; // loopback origins are allowed on a loopback gateway
    const ALLOWED = 'https://inspector.example';
    const EVIL = 'https://evil.example';
    const BURST = 4;
    let gw;

    before(async () => {
        gw = await startAuthGateway(port => ({
            server: { allowed_origins: [ALLOWED] },
            // a tiny budget that does not refill during the test
            rate_limit: { ip_requests_per_second: 0.001, ip_burst_size: BURST },
            auth: { oauth: offlineFacade(port) }
        }));
    });

    after(async () => {
        await gw?.stop();
    });

    const ROUTES = [
        ['/register', 'POST'],
        ['/token', 'POST'],
        ['/authorize', 'POST'],
        ['/.well-known/oauth-authorization-server', 'GET'],
        ['/.well-known/oauth-protected-resource', 'GET'],
        ['/.well-known/oauth-protected-resource/mcp', 'GET'],
        ['/.well-known/jwks.json', 'GET']
    ];
    const preflight = (path, origin, method) =>
        requestFrom('127.0.0.1', gw.port, 'OPTIONS', path, { headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'content-type, mcp-protocol-version' } });

    test('OPTIONS preflight from an allowed origin (configured, or loopback) names it, the method and the headers', async () => {
        for (const origin of [ALLOWED, INSPECTOR]) {
            for (const [path, method] of ROUTES) {
                const r = await preflight(path, origin, method);
                assert.equal(r.status, 204, `${origin} ${path}: ${r.body}`);
                assert.equal(r.headers['access-control-allow-origin'], origin, path);
                assert.match(r.headers['access-control-allow-methods'], new RegExp(method), path);
                assert.match(r.headers['access-control-allow-headers'].toLowerCase(), /content-type/, path);
                assert.match(r.headers['access-control-allow-headers'].toLowerCase(), /mcp-protocol-version/, path);
                assert.match(r.headers.vary ?? '', /Origin/, path);
            }
        }
    });

    test('attack: a preflight from a disallowed origin gets no CORS allow headers', async () => {
        for (const [path, method] of ROUTES) {
            const r = await preflight(path, EVIL, method);
            for (const h of ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers']) assert.equal(r.headers[h], undefined, `${path}: ${h}`);
        }
    });

    test('/register and /token answer an allowed origin with its name, another origin with none', async () => {
        const body = JSON.stringify({ redirect_uris: [REDIRECT] });
        const ok = await requestFrom('127.0.0.1', gw.port, 'POST', '/register', { headers: { origin: ALLOWED, 'content-type': 'application/json' }, body });
        assert.equal(ok.status, 201, ok.body);
        assert.equal(ok.headers['access-control-allow-origin'], ALLOWED);
        const evil = await requestFrom('127.0.0.1', gw.port, 'POST', '/token', { headers: { origin: EVIL, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&refresh_token=x&client_id=y' });
        assert.equal(evil.status, 400);
        assert.equal(evil.headers['access-control-allow-origin'], undefined);
        // an error for an allowed origin is readable by it (the SDK reads invalid_grant)
        const bad = await requestFrom('127.0.0.4', gw.port, 'POST', '/token', { headers: { origin: INSPECTOR, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&refresh_token=x&client_id=y' });
        assert.equal(bad.status, 400);
        assert.equal(bad.headers['access-control-allow-origin'], INSPECTOR);
    });

    test('attack: a /register flood from one address is refused with 429 and Retry-After; other addresses are not', async () => {
        const body = JSON.stringify({ redirect_uris: [REDIRECT] });
        const reg = from => requestFrom(from, gw.port, 'POST', '/register', { headers: { 'content-type': 'application/json', origin: INSPECTOR }, body });
        for (let i = 0; i < BURST; i++) assert.equal((await reg('127.0.0.2')).status, 201);
        const r = await reg('127.0.0.2');
        assert.equal(r.status, 429, r.body);
        assert.ok(Number(r.headers['retry-after']) >= 1, JSON.stringify(r.headers));
        assert.equal(r.headers['access-control-allow-origin'], INSPECTOR, 'a browser client can read the 429');
        // the address is refused on the other facade routes too, before any work
        assert.equal((await requestFrom('127.0.0.2', gw.port, 'GET', '/authorize?client_id=x')).status, 429);
        assert.equal((await requestFrom('127.0.0.2', gw.port, 'GET', '/.well-known/oauth-authorization-server')).status, 429);
        // another address still registers
        assert.equal((await reg('127.0.0.5')).status, 201);
    });

    test('attack: a /token flood of bad grants from one address is refused with 429', async () => {
        const tok = () => requestFrom('127.0.0.3', gw.port, 'POST', '/token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=authorization_code&code=${'A'.repeat(43)}&client_id=c&redirect_uri=${encodeURIComponent(REDIRECT)}&code_verifier=${'B'.repeat(43)}` });
        for (let i = 0; i < BURST; i++) assert.equal((await tok()).status, 400);
        const r = await tok();
        assert.equal(r.status, 429, r.body);
        assert.ok(Number(r.headers['retry-after']) >= 1);
    });
});

/** A self-signed certificate for localhost and 127.0.0.1 (openssl), as {cert, key, certPath}. */
function selfSigned(dir, name) {
    const keyPath = path.join(dir, `${name}.key`);
    const certPath = path.join(dir, `${name}.crt`);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    return { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath };
}

/** An https server on 127.0.0.1 serving `docs` (path → JSON); counts requests. */
async function documentServer(tls, docs) {
    const server = https.createServer(tls, (req, res) => {
        server.hits = (server.hits ?? 0) + 1;
        const doc = docs(server.address().port)[req.url];
        res.writeHead(doc ? 200 : 404, { 'content-type': 'application/json' });
        res.end(doc ? JSON.stringify(doc) : '{}');
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    return server;
}

describe('facade: a client identified by a Client ID Metadata Document (https, private CA) completes the flow', { concurrency: 1, timeout: 120000 }, () => {
    let idp;
    let gw;
    let docs;
    let stranger;
    let dir;
    let origin;
    const cimd = port => ({ client_id: `https://localhost:${port}/client.json`, client_name: 'CIMD e2e client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' });

    before(async () => {
        dir = tempDir('mcp-guard-cimd-');
        docs = await documentServer(selfSigned(dir, 'docs'), port => ({ '/client.json': cimd(port) }));
        // the same document behind a certificate the gateway does not trust
        stranger = await documentServer(selfSigned(dir, 'stranger'), port => ({ '/client.json': cimd(port) }));
        // allow_private_networks (loopback allowed) also lets the gateway reach the
        // test's document server.
        ({ idp, gw, origin } = await startLoginGateway(() => ({ oauth: { ca_file: path.join(dir, 'docs.crt'), authorization_server: true } })));
    });

    after(async () => {
        await stopLogin({ gw, idp });
        docs?.close();
        stranger?.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('the MCP SDK with clientMetadataUrl: CIMD → consent → login → token → MCP calls', async () => {
        const url = `https://localhost:${docs.address().port}/client.json`;
        const provider = new MemoryProvider();
        Object.defineProperty(provider, 'clientMetadataUrl', { value: url });
        assert.equal(await auth(provider, { serverUrl: `${origin}/mcp` }), 'REDIRECT');
        assert.equal(provider.info?.client_id, url, 'the URL is the client_id (no registration)');
        const authUrl = new URL(provider.authUrl);
        const page = await fetch(authUrl, { redirect: 'manual' });
        assert.equal(page.status, 200, await page.clone().text());
        assert.match(await page.text(), /CIMD e2e client/, 'the consent page names the document\'s client');
        assert.ok(docs.hits >= 1, 'the document was fetched');
        const back = await consentAndLogin(origin, authUrl);
        const code = back.searchParams.get('code');
        assert.ok(code, `no code: ${back}`);
        assert.equal(await auth(provider, { serverUrl: `${origin}/mcp`, authorizationCode: code }), 'AUTHORIZED');
        const claims = JSON.parse(Buffer.from(provider.saved.access_token.split('.')[1], 'base64url'));
        assert.equal(claims.client_id, url);
        const client = new Client({ name: 'e2e-cimd', version: '0' });
        await client.connect(new StreamableHTTPClientTransport(new URL(`${origin}/mcp`), { authProvider: provider }));
        const echo = await client.callTool({ name: 'echo', arguments: { message: 'via CIMD' } });
        assert.match(JSON.stringify(echo.content), /via CIMD/);
        await client.close();
    });

    test('attack: a document behind a certificate outside ca_file is not trusted', async () => {
        const u = new URL(`${origin}/authorize`);
        u.searchParams.set('client_id', `https://localhost:${stranger.address().port}/client.json`);
        u.searchParams.set('redirect_uri', REDIRECT);
        u.searchParams.set('response_type', 'code');
        const r = await fetch(u, { redirect: 'manual' });
        const body = await r.json();
        assert.equal(r.status, 400);
        assert.equal(body.error, 'invalid_client');
        assert.match(body.error_description, /cannot fetch the client metadata document/);
    });
});
