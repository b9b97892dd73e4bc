// JWT bearer tokens from a real OpenID provider (oidc-provider, started by
// the suite as a child process: idp/server.mjs): RS256, ES256 and EdDSA
// access tokens, scopes, required_scopes (403), key rotation followed
// without a restart, stale keys kept while the IdP is down, and a gateway
// started while the IdP is down (503, then fine after the retry backoff).

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { freePort, sleep, waitFor, withTimeout } from './helpers.mjs';
import { startAuthGateway } from './idp/auth-gateway.mjs';
import { decodeJwt, generateKeys, Idp, startIdp } from './idp/idp.mjs';

const MAPPING = { 'mcp:read': ['get_*', 'echo'], 'mcp:admin': ['*'] };

/** [auth.jwt] for `idp`, audience = this gateway's resource URL. */
const jwtConfig = (idp, extra = {}) => port => ({
    auth: {
        jwt: {
            mode: 'jwks',
            jwks_url: idp.jwksUrl, allow_private_networks: true,
            issuer: idp.issuer,
            audience: `http://127.0.0.1:${port}/mcp`,
            scope_tool_mapping: MAPPING,
            cache_duration_secs: 3600,
            ...extra
        }
    }
});

const bearer = t => ({ authorization: `Bearer ${t}` });

/** Asserts the refusal's status and exact challenge. */
function assertRefused(r, status, challenge, what = '') {
    assert.equal(r.status, status, `${what}: ${String(r.text).slice(0, 300)}`);
    assert.equal(r.headers['www-authenticate'], challenge, what);
    assert.equal(r.json?.jsonrpc, '2.0', what);
}

// The suites below are independent (each has its own IdP and gateway) and mostly wait
// on timers: 2 at a time.
describe('JWT with a real OpenID provider', { concurrency: 2 }, () => {
    describe('JWT access tokens from oidc-provider', { timeout: 90000, concurrency: 1 }, () => {
        let idp;
        let gw;

        before(async () => {
            idp = await startIdp();
            gw = await startAuthGateway(jwtConfig(idp));
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        for (const alg of ['RS256', 'ES256', 'EdDSA']) {
            test(`an ${alg} access token from the IdP is accepted`, async () => {
                const token = await idp.getToken({ alg, scope: 'mcp:read', resource: gw.resource });
                const { header, payload } = decodeJwt(token);
                assert.equal(header.alg, alg);
                assert.equal(header.typ, 'at+jwt');
                assert.equal(header.kid, idp.key(alg).kid);
                assert.equal(payload.aud, gw.resource);
                assert.equal(payload.iss, idp.issuer);
                const init = await gw.initialize(bearer(token));
                assert.equal(init.status, 200, init.response?.text);
                const tools = await gw.toolsList(init.sessionId, bearer(token));
                assert.equal(tools.status, 200, tools.text);
                assert.ok(Array.isArray(tools.message.result.tools));
            });
        }

        test('the gateway fetched the JWKS once at start, not per token', async () => {
            const s = await idp.stats();
            assert.equal(s.jwks, 1, JSON.stringify(s));
        });

        test('scopes (string) mapped by scope_tool_mapping: the request succeeds with mapped, unmapped and no scopes', async () => {
            for (const scope of ['mcp:read', 'mcp:admin', 'mcp:read mcp:write', 'mcp:write', undefined]) {
                const token = await idp.getToken({ alg: 'ES256', scope, resource: gw.resource, client: 'alice' });
                assert.equal(decodeJwt(token).payload.scope, scope);
                const init = await gw.initialize(bearer(token));
                assert.equal(init.status, 200, `scope ${scope}: ${init.response?.text}`);
            }
        });

        test('the same token is served from the verified-token cache (keeps working, no JWKS fetch)', async () => {
            await idp.resetStats();
            const token = await idp.getToken({ alg: 'EdDSA', scope: 'mcp:read', resource: gw.resource, client: 'bob' });
            const { sessionId } = await gw.initialize(bearer(token));
            for (let i = 0; i < 20; i++) assert.equal((await gw.toolsList(sessionId, bearer(token))).status, 200);
            assert.equal((await idp.stats()).jwks, 0);
        });

        test('sessions are bound to the token subject: alice cannot use bob\'s session', async () => {
            const bobTok = await idp.getToken({ resource: gw.resource, client: 'bob' });
            const aliceTok = await idp.getToken({ resource: gw.resource, client: 'alice' });
            const { sessionId } = await gw.initialize(bearer(bobTok));
            assert.equal((await gw.toolsList(sessionId, bearer(aliceTok))).status, 404);
            // bob with a fresh token (another signature, another alg) is still bob.
            const bobTok2 = await idp.getToken({ alg: 'ES256', resource: gw.resource, client: 'bob' });
            assert.equal((await gw.toolsList(sessionId, bearer(bobTok2))).status, 200);
        });

        test('a token for another resource (aud) is refused: 401 invalid_token', async () => {
            const token = await idp.getToken({ resource: 'https://other.example/mcp' });
            assertRefused(await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(token) }), 401, gw.challenge('invalid_token'), 'other aud');
        });

        test('RFC 9728 metadata names the IdP as the authorization server', async () => {
            const r = await gw.request('/.well-known/oauth-protected-resource/mcp');
            assert.equal(r.status, 200);
            assert.deepEqual(r.json, {
                resource: gw.resource,
                authorization_servers: [idp.issuer],
                scopes_supported: ['mcp:read', 'mcp:admin'],
                bearer_methods_supported: ['header'],
                resource_name: 'mcp-guard'
            });
        });
    });

    describe('required_scopes', { timeout: 60000, concurrency: 1 }, () => {
        let idp;
        let gw;

        before(async () => {
            idp = await startIdp();
            gw = await startAuthGateway(port => jwtConfig(idp, { required_scopes: ['mcp:use'], audience: [`http://127.0.0.1:${port}/mcp`, 'urn:e2e:other-name'] })(port));
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        test('a token with the required scope: 200; without it: 403 insufficient_scope', async () => {
            const ok = await idp.getToken({ alg: 'ES256', scope: 'mcp:use mcp:read', resource: gw.resource });
            assert.equal((await gw.initialize(bearer(ok))).status, 200);
            for (const scope of ['mcp:read', 'mcp:admin mcp:write', undefined]) {
                const tok = await idp.getToken({ alg: 'RS256', scope, resource: gw.resource });
                const r = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(tok) });
                assertRefused(r, 403, gw.challenge('insufficient_scope', 'mcp:use'), `scope ${scope}`);
                // Asking again (a cached refusal? no: refusals are not cached) gives the same.
                const again = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(tok) });
                assert.equal(again.status, 403);
            }
        });

        test('audience as a list: a token for any of its values is accepted', async () => {
            for (const resource of [gw.resource, 'urn:e2e:other-name']) {
                const t = await idp.getToken({ scope: 'mcp:use', resource });
                assert.equal((await gw.initialize(bearer(t))).status, 200, resource);
            }
            const t = await idp.getToken({ scope: 'mcp:use', resource: 'urn:e2e:third' });
            assertRefused(await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(t) }), 401, gw.challenge('invalid_token', 'mcp:use'), 'third aud');
        });

        test('no token: 401 naming the required scope; bad token: 401 invalid_token with it', async () => {
            assertRefused(await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }), 401, gw.challenge(null, 'mcp:use'), 'none');
            const tok = await idp.getToken({ scope: 'mcp:use', resource: gw.resource });
            const bad = `${tok.slice(0, -4)}AAAA`;
            assertRefused(await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(bad) }), 401, gw.challenge('invalid_token', 'mcp:use'), 'bad signature');
        });
    });

    describe('user_id_claim and scopes_claim', { timeout: 60000, concurrency: 1 }, () => {
        test('identity from client_id, scopes from an "scp" array', async () => {
            const idp = await startIdp();
            const gw = await startAuthGateway(jwtConfig(idp, { user_id_claim: 'client_id', scopes_claim: 'scp', required_scopes: ['mcp:use'] }));
            try {
                const tok = extra => idp.sign(idp.claims(gw.resource, extra), { alg: 'ES256' });
                const { sessionId, status } = await gw.initialize(bearer(tok({ client_id: 'svc-a', sub: 'x', scp: ['mcp:use', 'mcp:read'] })));
                assert.equal(status, 200);
                // Same client_id, another sub: the same identity.
                assert.equal((await gw.toolsList(sessionId, bearer(tok({ client_id: 'svc-a', sub: 'y', scp: ['mcp:use'] })))).status, 200);
                // Same sub, another client_id: another identity.
                assert.equal((await gw.toolsList(sessionId, bearer(tok({ client_id: 'svc-b', sub: 'x', scp: ['mcp:use'] })))).status, 404);
                // The scope is read from scp only.
                assertRefused(await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(tok({ client_id: 'svc-a', scope: 'mcp:use' })) }), 403, gw.challenge('insufficient_scope', 'mcp:use'), 'scope, not scp');
                // A space-separated string in scp works too.
                assert.equal((await gw.initialize(bearer(tok({ client_id: 'svc-c', scp: 'mcp:read mcp:use' })))).status, 200);
                // No client_id claim: no identity.
                assertRefused(await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(tok({ client_id: undefined, scp: ['mcp:use'] })) }), 401, gw.challenge('invalid_token', 'mcp:use'), 'no client_id');
            } finally {
                await gw.stop();
                await idp.close();
            }
        });
    });

    describe('key rotation at the IdP', { timeout: 60000, concurrency: 1 }, () => {
        let idp;
        let gw;

        before(async () => {
            idp = await startIdp();
            gw = await startAuthGateway(jwtConfig(idp));
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        test('new kid accepted without a restart (one JWKS refetch); tokens of the removed keys refused', async () => {
            const pid = gw.pid;
            const oldTok = await idp.getToken({ alg: 'ES256', resource: gw.resource });
            const oldUnseen = await idp.getToken({ alg: 'RS256', resource: gw.resource });
            assert.equal((await gw.initialize(bearer(oldTok))).status, 200);
            const oldKids = idp.keys.map(k => k.kid);
            await idp.resetStats();

            await idp.rotate();
            const newTok = await idp.getToken({ alg: 'ES256', resource: gw.resource });
            assert.ok(!oldKids.includes(decodeJwt(newTok).header.kid), 'a new kid');
            const init = await gw.initialize(bearer(newTok));
            assert.equal(init.status, 200, `the new key is followed: ${init.response?.text}\n${gw.tail()}`);
            assert.equal(gw.pid, pid);
            assert.equal(gw.exit, null);
            assert.equal((await idp.stats()).jwks, 1, 'exactly one refetch for the unknown kid');
            // All three algorithms of the new key set.
            for (const alg of ['RS256', 'EdDSA']) {
                const t = await idp.getToken({ alg, resource: gw.resource });
                assert.equal((await gw.initialize(bearer(t))).status, 200, alg);
            }
            assert.equal((await idp.stats()).jwks, 1, 'the other new kids came with the same refetch');

            // The old keys are gone from the IdP's JWKS: their tokens no longer verify,
            // whether the gateway had cached the token (key-set change drops the cache) or not.
            assertRefused(await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(oldTok) }), 401, gw.challenge('invalid_token'), 'cached old token');
            assertRefused(await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(oldUnseen) }), 401, gw.challenge('invalid_token'), 'unseen old token');
        });
    });

    describe('IdP down after the keys were cached', { timeout: 60000, concurrency: 1 }, () => {
        let idp;
        let gw;

        before(async () => {
            idp = await startIdp();
            gw = await startAuthGateway(jwtConfig(idp));
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        test('tokens are still accepted with the stale keys, also after a failed refetch', async () => {
            const first = await idp.getToken({ alg: 'RS256', resource: gw.resource });
            assert.equal((await gw.initialize(bearer(first))).status, 200);
            // Tokens issued before the IdP goes away, never shown to the gateway yet.
            const unseen = await Promise.all(['ES256', 'EdDSA', 'RS256'].map(alg => idp.getToken({ alg, resource: gw.resource })));
            await idp.stop();
            await assert.rejects(fetch(idp.jwksUrl), 'the IdP is down');

            const r1 = await gw.initialize(bearer(unseen[0]));
            assert.equal(r1.status, 200, `stale keys verify: ${r1.response?.text}`);

            // A token naming an unknown kid makes the gateway try the IdP: the fetch fails, the keys stay.
            const stranger = generateKeys(['ES256'], 'stranger')[0];
            const forged = idp.sign(idp.claims(gw.resource), { alg: 'ES256', key: stranger });
            const r2 = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(forged) });
            assertRefused(r2, 401, gw.challenge('invalid_token'), 'unknown kid while the IdP is down');
            await waitFor(() => /jwks .*fetch failed.*keeping the keys already known/.test(gw.stderr), { timeoutMs: 15000, message: 'the failed refetch in the log' });

            for (const t of unseen.slice(1)) {
                const r = await gw.initialize(bearer(t));
                assert.equal(r.status, 200, `still accepted after the failed refetch: ${r.response?.text}`);
            }
            // Brand-new claims signed with the (still valid) old key: verified, not just cached.
            const fresh = idp.sign(idp.claims(gw.resource, { sub: 'late-comer' }), { alg: 'EdDSA' });
            assert.equal((await gw.initialize(bearer(fresh))).status, 200);
        });
    });

    describe('gateway started while the IdP is down', { timeout: 60000, concurrency: 1 }, () => {
        let idp;
        let gw;

        before(async () => {
            // The IdP's port is chosen now but nothing listens on it yet.
            idp = new Idp({ port: await freePort() });
            gw = await startAuthGateway(jwtConfig(idp));
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        test('503 with Retry-After for JWT requests, then 200 once the IdP is up (retry backoff from 2 s)', async () => {
            const token = idp.sign(idp.claims(gw.resource), { alg: 'ES256' }); // what the IdP will issue
            const r = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(token) });
            assert.equal(r.status, 503, `no keys yet: ${r.text}\n${gw.tail()}`);
            assert.equal(r.headers['retry-after'], '5');
            assert.equal(r.headers['www-authenticate'], undefined, 'a 503 is not a challenge');
            assert.equal(r.json?.jsonrpc, '2.0');
            assert.doesNotMatch(r.text, /jwks|idp|127\.0\.0\.1/i, 'the body does not describe the IdP');
            // No credentials are still a 401, not a 503.
            assert.equal((await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' })).status, 401);

            const upAt = Date.now();
            await idp.start();
            const ok = await waitFor(
                async () => {
                    const x = await gw.initialize(bearer(token));
                    if (x.status !== 200 && x.status !== 503) throw new Error(`unexpected ${x.status}: ${x.response?.text}`);
                    return x.status === 200;
                },
                { timeoutMs: 20000, intervalMs: 250, message: 'the gateway to load the keys once the IdP is up' }
            );
            assert.ok(ok);
            const waited = Date.now() - upAt;
            assert.ok(waited < 20000, `took ${waited} ms`);
            // A token the IdP itself issues now works as well.
            const issued = await idp.getToken({ alg: 'EdDSA', resource: gw.resource });
            assert.equal((await gw.initialize(bearer(issued))).status, 200);
            assert.match(gw.stderr, /jwks .*: \d+ key\(s\) loaded/);
        });
    });

    describe('requests waiting for a JWKS fetch', { timeout: 90000, concurrency: 1 }, () => {
        let idp;

        before(async () => {
            idp = await startIdp();
        });

        after(async () => {
            await idp?.close();
        });

        /** A gateway for `idp` whose keys are loaded (one token verified). */
        const freshGateway = async () => {
            await idp.delayJwks(0);
            const g = await startAuthGateway(jwtConfig(idp));
            const r = await g.initialize(bearer(await idp.getToken({ resource: g.resource })));
            assert.equal(r.status, 200, r.response?.text);
            return g;
        };

        /** A POST whose client gives up after `ms`. */
        const abandoned = (g, token, ms) =>
            new Promise(resolve => {
                const req = http.request({ host: '127.0.0.1', port: g.port, path: '/mcp', method: 'POST', agent: false, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...bearer(token) } }, res => {
                    res.resume();
                    res.on('end', () => resolve(res.statusCode));
                });
                req.on('error', () => resolve('aborted'));
                req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }));
                setTimeout(() => req.destroy(), ms);
            });

        test('an unknown kid waits for the refetch: all waiters get the new keys from one fetch; clients that give up are fine', async () => {
            const gw = await freshGateway();
            try {
                await idp.delayJwks(1200);
                await idp.rotate();
                await idp.resetStats();
                const tokens = await Promise.all(['RS256', 'ES256', 'EdDSA', 'RS256', 'ES256', 'EdDSA', 'RS256', 'ES256'].map((alg, i) => idp.getToken({ alg, resource: gw.resource, client: i % 2 ? 'alice' : 'bob' })));
                const t0 = Date.now();
                const gaveUp = Array.from({ length: 5 }, () => abandoned(gw, tokens[0], 200));
                const results = await Promise.all(tokens.map(t => gw.initialize(bearer(t))));
                const elapsed = Date.now() - t0;
                for (const r of results) assert.equal(r.status, 200, r.response?.text);
                assert.ok(elapsed >= 1000, `the requests waited for the delayed fetch (${elapsed} ms)`);
                assert.deepEqual(await Promise.all(gaveUp), Array(5).fill('aborted'));
                assert.equal((await idp.stats()).jwks, 1, 'one fetch served every waiter');
                assert.equal(gw.exit, null);
            } finally {
                await idp.delayJwks(0);
                await gw.stop();
            }
        });

        test('a SIGHUP while requests wait for the JWKS: they finish with the keys of their own fetch', async () => {
            const gw = await freshGateway();
            try {
                await idp.delayJwks(1500);
                await idp.rotate();
                const token = await idp.getToken({ alg: 'EdDSA', resource: gw.resource });
                const pending = gw.initialize(bearer(token));
                const gone = abandoned(gw, token, 300);
                await sleep(300);
                await gw.reload();
                const r = await pending;
                assert.equal(r.status, 200, `${r.response?.text}\n${gw.tail()}`);
                assert.equal(await gone, 'aborted');
                // The new context fetched the keys for itself.
                const again = await gw.initialize(bearer(await idp.getToken({ alg: 'ES256', resource: gw.resource })));
                assert.equal(again.status, 200);
            } finally {
                await idp.delayJwks(0);
                await gw.stop();
            }
        });

        test('SIGTERM while requests wait for the JWKS: a clean exit, and the waiting requests are answered or closed', async () => {
            const gw = await freshGateway();
            let stopped = false;
            try {
                await idp.delayJwks(4000);
                await idp.rotate();
                const token = await idp.getToken({ alg: 'RS256', resource: gw.resource });
                const pending = gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: bearer(token) }).then(
                    r => r.status,
                    e => `error: ${e.code || e.message}`
                );
                const gone = abandoned(gw, token, 200);
                await sleep(400);
                const t0 = Date.now();
                await gw.stop({ timeoutMs: 15000 });
                stopped = true;
                const outcome = await withTimeout(pending, 5000, 'the waiting request');
                // A request in flight gets an HTTP answer during a graceful shutdown (it finishes -
                // here a session-less ping is answered 400 - or "the gateway is shutting down"):
                // not a connection reset.
                assert.ok(typeof outcome === 'number', `the request waiting for the JWKS got ${outcome}, not an HTTP answer`);
                assert.equal(await gone, 'aborted');
                assert.ok(Date.now() - t0 < 12000);
            } finally {
                await idp.delayJwks(0);
                if (!stopped) await gw.kill();
            }
        });
    });

    describe('verified-token cache', { timeout: 30000, concurrency: 1 }, () => {
        test('a cached token dies with its exp (leeway_secs = 0)', async () => {
            const idp = await startIdp();
            const gw = await startAuthGateway(jwtConfig(idp, { leeway_secs: 0 }));
            try {
                const exp = Math.floor(Date.now() / 1000) + 2;
                const token = idp.sign(idp.claims(gw.resource, { exp, iat: exp - 60 }), { alg: 'ES256' });
                const { sessionId } = await gw.initialize(bearer(token));
                assert.ok(sessionId);
                assert.equal((await gw.toolsList(sessionId, bearer(token))).status, 200, 'cached and valid');
                await sleep(Math.max(0, (exp + 1) * 1000 - Date.now()) + 100);
                assertRefused(await gw.toolsList(sessionId, bearer(token)), 401, gw.challenge('invalid_token'), 'expired while cached');
            } finally {
                await gw.stop();
                await idp.close();
            }
        });
    });
});
