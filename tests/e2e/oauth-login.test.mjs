// The login flow of [auth.oauth] (GET /oauth/authorize → the provider → GET
// /oauth/callback) against a real OpenID provider (oidc-provider with a
// headless login and consent, idp/server.mjs), driven with fetch and a small
// cookie jar the way a browser would, then the token it returns used on /mcp
// (checked by introspection).
//
// Attack tests, each on its own: state replay, state forgery (altered,
// truncated, made up), a response that names another issuer (RFC 9207
// mix-up), a code paired with another login's state (PKCE verifier
// mismatch at the provider), a provider error passed through as a code only.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startAuthGateway } from './idp/auth-gateway.mjs';
import { browse } from './idp/browser.mjs';
import { bearer, initialize, startLoginGateway, stopLogin } from './idp/facade.mjs';

const init = initialize('e2e-login');

describe('the OAuth login flow with oidc-provider', { concurrency: 1, timeout: 120000 }, () => {
    let idp;
    let gw;
    let port;

    before(async () => {
        ({ idp, gw, port } = await startLoginGateway());
    });

    after(async () => stopLogin({ gw, idp }));

    /** /oauth/authorize → the provider's redirect back (the callback URL, not yet requested). */
    async function login(account = 'alice') {
        const r = await gw.request('/oauth/authorize');
        assert.equal(r.status, 302, r.body);
        assert.equal(r.headers['cache-control'], 'no-store');
        const to = new URL(r.headers.location);
        to.searchParams.set('account', account);
        const back = await browse(to.href, `${gw.origin}/oauth/callback`);
        return new URL(back);
    }

    const callback = url => gw.request(`${url.pathname}${url.search}`);

    test('/oauth/authorize redirects to the provider with PKCE S256 and a fresh state per attempt', async () => {
        const a = new URL((await gw.request('/oauth/authorize')).headers.location);
        const b = new URL((await gw.request('/oauth/authorize')).headers.location);
        assert.equal(`${a.origin}${a.pathname}`, `${idp.issuer}/auth`);
        const p = a.searchParams;
        assert.equal(p.get('response_type'), 'code');
        assert.equal(p.get('client_id'), 'mcp-guard');
        assert.equal(p.get('redirect_uri'), `http://127.0.0.1:${port}/oauth/callback`);
        assert.equal(p.get('scope'), 'openid');
        assert.equal(p.get('code_challenge_method'), 'S256');
        assert.match(p.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
        assert.notEqual(p.get('code_challenge'), b.searchParams.get('code_challenge'));
        assert.notEqual(p.get('state'), b.searchParams.get('state'));
    });

    test('a full login returns the provider token, which then works on /mcp', async () => {
        const back = await login('alice');
        assert.equal(back.searchParams.get('iss'), idp.issuer, 'oidc-provider sends RFC 9207 iss');
        const r = await callback(back);
        assert.equal(r.status, 200, r.body);
        assert.equal(r.headers['cache-control'], 'no-store');
        assert.equal(typeof r.json.access_token, 'string');
        assert.equal(r.json.token_type, 'Bearer');
        const m = await gw.mcp(init, { headers: bearer(r.json.access_token) });
        assert.equal(m.status, 200, m.text);
        assert.ok(!gw.stderr.includes(r.json.access_token), 'token in the log');
        assert.ok(!gw.stderr.includes(back.searchParams.get('code')), 'code in the log');
    });

    test('attack: state replay - the same callback a second time is refused', async () => {
        const back = await login();
        assert.equal((await callback(back)).status, 200);
        const again = await callback(back);
        assert.equal(again.status, 400, again.body);
        assert.equal(again.json.error, 'invalid_request');
        assert.match(again.json.error_description, /already used/);
    });

    test('attack: state forgery - altered, truncated and made-up states are refused', async () => {
        const back = await login();
        const state = back.searchParams.get('state');
        const flip = state.slice(0, 20) + (state[20] === 'A' ? 'B' : 'A') + state.slice(21);
        const forged = [flip, state.slice(0, -4), 'x'.repeat(60), Buffer.alloc(80, 1).toString('base64url'), ''];
        for (const s of forged) {
            const u = new URL(back);
            u.searchParams.set('state', s);
            const r = await callback(u);
            assert.equal(r.status, 400, `state ${s.slice(0, 20)}: ${r.body}`);
            assert.equal(r.json.error, 'invalid_request');
        }
        const none = new URL(back);
        none.searchParams.delete('state');
        assert.equal((await callback(none)).status, 400);
        // The real one still works: nothing above consumed it.
        assert.equal((await callback(back)).status, 200);
    });

    test('attack: mix-up - a response naming another issuer (iss) is refused', async () => {
        const back = await login();
        const u = new URL(back);
        u.searchParams.set('iss', 'https://evil.example');
        const r = await callback(u);
        assert.equal(r.status, 400, r.body);
        assert.match(r.json.error_description, /another issuer/);
    });

    test('attack: a duplicated parameter (two states) is refused', async () => {
        const back = await login();
        const r = await gw.request(`/oauth/callback${back.search}&state=${encodeURIComponent(back.searchParams.get('state'))}`);
        assert.equal(r.status, 400, r.body);
    });

    test('attack: a code paired with another login\'s state fails at the provider (PKCE verifier mismatch)', async () => {
        const victim = await login('alice');
        const attacker = await login('bob');
        const u = new URL(attacker);
        u.searchParams.set('code', victim.searchParams.get('code'));
        const r = await callback(u);
        assert.equal(r.status, 400, r.body);
        assert.equal(r.json.error, 'invalid_grant');
        assert.equal(r.json.access_token, undefined);
    });

    test('a provider error comes back as its error code only', async () => {
        const a = new URL((await gw.request('/oauth/authorize')).headers.location);
        const u = new URL(`${gw.origin}/oauth/callback`);
        u.searchParams.set('state', a.searchParams.get('state'));
        u.searchParams.set('error', 'access_denied');
        u.searchParams.set('error_description', '<script>alert(1)</script>');
        const r = await callback(u);
        assert.equal(r.status, 400);
        assert.equal(r.json.error, 'access_denied');
        assert.ok(!r.body.includes('<script>'));
    });

    test('only GET: POST /oauth/authorize is 405', async () => {
        const r = await gw.request('/oauth/authorize', { method: 'POST', body: '' });
        assert.equal(r.status, 405);
        assert.equal(r.headers.allow, 'GET');
    });
});

describe('the login flow is off without redirect_uri', { timeout: 60000 }, () => {
    let gw;
    before(async () => {
        gw = await startAuthGateway({
            auth: { oauth: { provider: 'custom', client_id: 'x', authorization_url: 'https://idp.example/a', token_url: 'https://idp.example/t', userinfo_url: 'https://idp.example/u' } }
        });
    });
    after(async () => gw?.stop());

    test('/oauth/authorize and /oauth/callback answer 404', async () => {
        for (const p of ['/oauth/authorize', '/oauth/callback?state=x&code=y']) {
            const r = await gw.request(p);
            assert.equal(r.status, 404, p);
            assert.match(r.json.error_description, /redirect_uri/);
        }
    });
});
