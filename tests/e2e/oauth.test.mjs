// [auth.oauth] as a resource server: opaque bearer tokens checked by RFC 7662
// introspection at a real OpenID provider (oidc-provider, idp/server.mjs),
// and by a userinfo endpoint; the answers cached by token hash, refusals
// remembered briefly, concurrent checks of one token coalesced, the SSRF rule
// on the introspection URL, and the token never in the gateway's log.
//
// Introspection receivers written here (plain node:http) stand in for an
// authorization server where a test needs to control the answer (inactive,
// a string "true", an expired token, a slow answer to coalesce behind).

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { startAuthGateway } from './idp/auth-gateway.mjs';
import { bearer, idpOAuth, initialize } from './idp/facade.mjs';
import { startIdp } from './idp/idp.mjs';

const MAPPING = { 'mcp:read': ['get_*', 'echo'], 'mcp:admin': ['*'] };
const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
const init = initialize('e2e-oauth');

/** An HTTP receiver on 127.0.0.1: `handler(req, body, res)`; records every request. */
async function receiver(handler) {
    const seen = [];
    const server = http.createServer((req, res) => {
        const parts = [];
        req.on('data', d => parts.push(d));
        req.on('end', () => {
            const body = Buffer.concat(parts).toString('utf8');
            seen.push({ method: req.method, url: req.url, headers: req.headers, body });
            handler(req, body, res);
        });
    });
    await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address();
    return {
        url: `http://127.0.0.1:${port}`,
        seen,
        close: () => new Promise(resolve => {
            server.closeAllConnections();
            server.close(resolve);
        })
    };
}

const json = (res, status, obj) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(obj));
};

describe('[auth.oauth] opaque tokens', { concurrency: 1, timeout: 120000 }, () => {
    describe('RFC 7662 introspection at oidc-provider', { concurrency: 1 }, () => {
        let idp;
        let gw;

        before(async () => {
            idp = await startIdp();
            gw = await startAuthGateway(port => ({
                auth: { oauth: idpOAuth(idp, { user_id_claim: 'client_id', audience: [`http://127.0.0.1:${port}/mcp`], scope_tool_mapping: MAPPING }) }
            }));
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        test('an opaque token from the IdP is accepted; its scopes map to tools', async () => {
            const token = await idp.getToken({ opaque: true, scope: 'mcp:read', resource: gw.resource, client: 'alice' });
            assert.ok(!token.includes('.'), 'an opaque token, not a JWT');
            const init = await gw.initialize(bearer(token));
            assert.equal(init.status, 200, init.response?.text);
            const tools = await gw.toolsList(init.sessionId, bearer(token));
            assert.equal(tools.status, 200, tools.text);
            const names = tools.message.result.tools.map(t => t.name).sort();
            assert.ok(names.length > 0);
            for (const n of names) assert.ok(n === 'echo' || n.startsWith('get_'), `tool ${n} not granted by mcp:read`);
        });

        test('the answer is cached: many requests with one token cost one introspection', async () => {
            await idp.resetStats();
            const token = await idp.getToken({ opaque: true, scope: 'mcp:admin', resource: gw.resource, client: 'bob' });
            const { sessionId, status } = await gw.initialize(bearer(token));
            assert.equal(status, 200);
            for (let i = 0; i < 10; i++) assert.equal((await gw.toolsList(sessionId, bearer(token))).status, 200);
            assert.equal((await idp.stats()).introspection, 1);
        });

        test('sessions are bound to the introspected identity: alice cannot use bob\'s session', async () => {
            const bob = await idp.getToken({ opaque: true, resource: gw.resource, client: 'bob' });
            const alice = await idp.getToken({ opaque: true, resource: gw.resource, client: 'alice' });
            const { sessionId } = await gw.initialize(bearer(bob));
            assert.equal((await gw.toolsList(sessionId, bearer(alice))).status, 404);
        });

        test('an unknown token is refused (401 invalid_token), and the refusal is remembered', async () => {
            await idp.resetStats();
            const bad = 'not-a-token-the-idp-issued-0123456789';
            for (let i = 0; i < 3; i++) {
                const r = await gw.mcp(ping, { headers: bearer(bad) });
                assert.equal(r.status, 401);
                assert.equal(r.headers['www-authenticate'], gw.challenge('invalid_token'));
            }
            assert.equal((await idp.stats()).introspection, 1);
        });

        test('a token issued for another resource (aud) is refused', async () => {
            const token = await idp.getToken({ opaque: true, resource: 'https://other.example/mcp', client: 'alice' });
            const r = await gw.mcp(ping, { headers: bearer(token) });
            assert.equal(r.status, 401);
            assert.equal(r.headers['www-authenticate'], gw.challenge('invalid_token'));
        });

        test('protected resource metadata names the IdP and the mapped scopes', async () => {
            const r = await gw.request('/.well-known/oauth-protected-resource/mcp');
            assert.equal(r.status, 200);
            assert.deepEqual(r.json.authorization_servers, [idp.issuer]);
            assert.deepEqual(r.json.scopes_supported, ['mcp:read', 'mcp:admin']);
        });

        test('no token ever appears in the gateway log', async () => {
            const token = await idp.getToken({ opaque: true, resource: gw.resource, client: 'alice' });
            await gw.mcp(ping, { headers: bearer(token) });
            await gw.mcp(ping, { headers: bearer(`${token}x`) });
            assert.ok(!gw.stderr.includes(token), 'token in the log');
        });
    });

    describe('JWT and OAuth together: the chain goes on after a JWT that waited for keys', { concurrency: 1 }, () => {
        let idp;
        let gw;

        before(async () => {
            idp = await startIdp();
            gw = await startAuthGateway(port => ({
                auth: {
                    jwt: { mode: 'jwks', jwks_url: idp.jwksUrl, allow_private_networks: true, issuer: idp.issuer, audience: `http://127.0.0.1:${port}/mcp` },
                    oauth: idpOAuth(idp, { user_id_claim: 'client_id', audience: [`http://127.0.0.1:${port}/mcp`] })
                }
            }));
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        test('a JWT access token is checked by [auth.jwt] (no introspection)', async () => {
            await idp.resetStats();
            const token = await idp.getToken({ resource: gw.resource, client: 'alice' });
            assert.equal((await gw.mcp(init, { headers: bearer(token) })).status, 200);
            assert.equal((await idp.stats()).introspection, 0);
        });

        test('an opaque token goes past [auth.jwt] to introspection', async () => {
            await idp.resetStats();
            const token = await idp.getToken({ opaque: true, resource: gw.resource, client: 'bob' });
            assert.equal((await gw.mcp(init, { headers: bearer(token) })).status, 200);
            assert.equal((await idp.stats()).introspection, 1);
        });

        test('a JWT naming an unknown key waits for a JWKS refetch, then is still tried by OAuth (refused)', async () => {
            await idp.resetStats();
            const forged = idp.sign(idp.claims(gw.resource), { header: { kid: 'no-such-kid' } });
            const r = await gw.mcp(init, { headers: bearer(forged) });
            assert.equal(r.status, 401, r.text);
            const s = await idp.stats();
            assert.equal(s.jwks, 1, JSON.stringify(s));
            assert.equal(s.introspection, 1, JSON.stringify(s));
        });
    });

    describe('introspection answers the gateway must read strictly', { concurrency: 1 }, () => {
        let rcv;
        let gw;
        let hold = null; // a promise the receiver waits on before answering
        const answers = new Map(); // token -> introspection answer

        before(async () => {
            rcv = await receiver(async (req, body, res) => {
                if (hold) await hold;
                const token = new URLSearchParams(body).get('token');
                json(res, 200, answers.get(token) ?? { active: false });
            });
            gw = await startAuthGateway({
                auth: {
                    oauth: {
                        provider: 'custom',
                        client_id: 'gw client',
                        client_secret: 's3cret:&=',
                        authorization_url: `${rcv.url}/authorize`,
                        token_url: `${rcv.url}/token`,
                        introspection_url: `${rcv.url}/introspect`,
                        allow_private_networks: true,
                        audience: ['urn:test:gw']
                    }
                }
            });
        });

        after(async () => {
            await gw?.stop();
            await rcv?.close();
        });

        const now = () => Math.floor(Date.now() / 1000);

        test('the gateway authenticates itself (Basic, form-encoded id and secret) and posts token + hint', async () => {
            answers.set('tok-ok', { active: true, sub: 'carol', aud: 'urn:test:gw', exp: now() + 600 });
            const r = await gw.mcp(init, { headers: bearer('tok-ok') });
            assert.equal(r.status, 200, r.text);
            const call = rcv.seen.at(-1);
            assert.equal(call.method, 'POST');
            assert.equal(call.url, '/introspect');
            assert.equal(call.headers['content-type'], 'application/x-www-form-urlencoded');
            assert.equal(call.headers.authorization, `Basic ${Buffer.from('gw%20client:s3cret%3A%26%3D').toString('base64')}`);
            assert.deepEqual(Object.fromEntries(new URLSearchParams(call.body)), { token: 'tok-ok', token_type_hint: 'access_token' });
        });

        for (const [name, answer] of [
            ['active as a string "true"', { active: 'true', sub: 'x', aud: 'urn:test:gw' }],
            ['active as 1', { active: 1, sub: 'x', aud: 'urn:test:gw' }],
            ['active false', { active: false, sub: 'x', aud: 'urn:test:gw' }],
            ['an expired token (exp in the past)', { active: true, sub: 'x', aud: 'urn:test:gw', exp: 1000 }],
            ['another audience', { active: true, sub: 'x', aud: 'urn:test:other' }],
            ['no audience while one is required', { active: true, sub: 'x' }],
            ['no subject', { active: true, aud: 'urn:test:gw' }]
        ]) {
            test(`refused: ${name}`, async () => {
                const tok = `tok-${name.replace(/\W+/g, '-')}`;
                answers.set(tok, answer);
                const r = await gw.mcp(ping, { headers: bearer(tok) });
                assert.equal(r.status, 401, r.text);
            });
        }

        test('concurrent requests with one token share one introspection call', async () => {
            answers.set('tok-many', { active: true, sub: 'dave', aud: ['urn:test:gw'], exp: now() + 600 });
            let release;
            hold = new Promise(resolve => (release = resolve));
            const before = rcv.seen.length;
            const pending = Array.from({ length: 8 }, () => gw.mcp(init, { headers: bearer('tok-many') }));
            // Every request is in the gateway before the answer comes: wait until the
            // receiver got the (single) call, then give the others time to queue behind it.
            while (rcv.seen.length === before) await new Promise(r => setTimeout(r, 10));
            await new Promise(r => setTimeout(r, 200));
            hold = null;
            release();
            const results = await Promise.all(pending);
            for (const r of results) assert.equal(r.status, 200, r.text);
            assert.equal(rcv.seen.length - before, 1);
        });

        test('an unreachable introspection endpoint is 503, not 401', async () => {
            answers.set('tok-down', { active: true, sub: 'x', aud: 'urn:test:gw' });
            await rcv.close();
            const r = await gw.mcp(ping, { headers: bearer('tok-down') });
            assert.equal(r.status, 503, r.text);
        });
    });

    describe('userinfo instead of introspection (GitHub-style)', { concurrency: 1 }, () => {
        let rcv;
        let gw;

        before(async () => {
            rcv = await receiver((req, body, res) => {
                if (req.headers.authorization === 'Bearer gho_valid') json(res, 200, { login: 'octocat', id: 583231, name: 'The Octocat' });
                else json(res, 401, { message: 'Bad credentials' });
            });
            gw = await startAuthGateway({
                auth: {
                    oauth: {
                        provider: 'custom',
                        client_id: 'Iv1.test',
                        authorization_url: `${rcv.url}/login/oauth/authorize`,
                        token_url: `${rcv.url}/login/oauth/access_token`,
                        userinfo_url: `${rcv.url}/user`,
                        allow_private_networks: true,
                        user_id_claim: 'login'
                    }
                }
            });
        });

        after(async () => {
            await gw?.stop();
            await rcv?.close();
        });

        test('a token the userinfo endpoint accepts names the identity by user_id_claim', async () => {
            const init = await gw.initialize(bearer('gho_valid'));
            assert.equal(init.status, 200, init.response?.text);
            const call = rcv.seen.at(-1);
            assert.equal(call.method, 'GET');
            assert.equal(call.url, '/user');
            assert.equal(call.headers.authorization, 'Bearer gho_valid');
        });

        test('a token it refuses (401) is refused', async () => {
            const r = await gw.mcp(ping, { headers: bearer('gho_wrong') });
            assert.equal(r.status, 401);
        });
    });

    describe('SSRF: the introspection URL is fetched under the rule', { concurrency: 1 }, () => {
        let rcv;
        let gw;

        before(async () => {
            rcv = await receiver((req, body, res) => json(res, 200, { active: true, sub: 'mallory' }));
            gw = await startAuthGateway({
                auth: {
                    oauth: {
                        provider: 'custom',
                        client_id: 'gw',
                        client_secret: 'secret',
                        authorization_url: `${rcv.url}/authorize`,
                        token_url: `${rcv.url}/token`,
                        introspection_url: `${rcv.url}/introspect` // loopback, without allow_private_networks
                    }
                }
            });
        });

        after(async () => {
            await gw?.stop();
            await rcv?.close();
        });

        test('a loopback introspection URL without allow_private_networks is never called: 503', async () => {
            const r = await gw.mcp(ping, { headers: bearer('tok-ssrf') });
            assert.equal(r.status, 503, r.text);
            assert.equal(rcv.seen.length, 0);
        });
    });
});
