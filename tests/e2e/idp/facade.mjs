// The OAuth side of the e2e tests, shared by oauth, oauth-login,
// oauth-facade and inspector:
//  - the gateway's [auth.oauth] settings against the test provider
//    (oidc-provider, idp.mjs), and a provider + gateway pair started for the
//    login flow (the gateway's port picked first: the provider must know its
//    callback);
//  - the browser and client sides of the gateway's authorization server (the
//    OAuth facade): an in-memory OAuthClientProvider for the MCP SDK, and a
//    user who approves the consent page and logs in at the provider.

import assert from 'node:assert/strict';

import { freePort } from '../helpers.mjs';
import { startAuthGateway } from './auth-gateway.mjs';
import { browse, Jar } from './browser.mjs';
import { startIdp } from './idp.mjs';

export const REDIRECT = 'http://127.0.0.1:45999/callback'; // the client's; never requested

/** Request headers that carry `token` as a bearer token. */
export const bearer = token => ({ authorization: `Bearer ${token}` });

/** An initialize request (2025-11-25) from a client named `name`. */
export const initialize = name => ({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name, version: '0' } } });

/**
 * [auth.oauth] against the test provider `idp`: the gateway is its client
 * `mcp-guard` (idp/server.mjs registers it), tokens are checked by
 * introspection, the provider is on loopback. `extra` is merged over it.
 */
export function idpOAuth(idp, extra = {}) {
    return {
        provider: 'custom',
        issuer: idp.issuer,
        client_id: 'mcp-guard',
        client_secret: 'mcp-guard-secret',
        authorization_url: `${idp.issuer}/auth`,
        token_url: `${idp.issuer}/token`,
        introspection_url: idp.introspectionUrl,
        allow_private_networks: true,
        ...extra
    };
}

/**
 * idpOAuth with the login flow on: the callback at the gateway's `origin`,
 * scope openid. `extra` is merged over it (authorization_server: true for
 * the facade).
 */
export const loginOAuth = (idp, origin, extra = {}) => idpOAuth(idp, { redirect_uri: `${origin}/oauth/callback`, scopes: ['openid'], ...extra });

/**
 * [auth.oauth] with the facade on for a gateway on `port`, in front of a
 * provider that is never contacted (idp.example): for what the facade does
 * before a provider is involved (refusals, CORS, limits).
 */
export const offlineFacade = port => ({
    provider: 'custom',
    client_id: 'mcp-guard',
    client_secret: 'x',
    redirect_uri: `http://127.0.0.1:${port}/oauth/callback`,
    authorization_url: 'https://idp.example/auth',
    token_url: 'https://idp.example/token',
    introspection_url: 'https://idp.example/introspect',
    authorization_server: true
});

/**
 * Starts the test provider and a gateway that logs in there (loginOAuth).
 * `extra({ idp, origin })` returns `{ oauth, auth, ...tables }`: `oauth`
 * merged over loginOAuth, `auth` the other [auth] sections, the rest
 * top-level tables. Returns { idp, gw, port, origin }; the caller stops
 * both (stopLogin).
 */
export async function startLoginGateway(extra = () => ({})) {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const idp = await startIdp({ redirectUris: [`${origin}/oauth/callback`] });
    try {
        const { oauth = {}, auth = {}, ...tables } = extra({ idp, origin });
        const gw = await startAuthGateway({ ...tables, auth: { ...auth, oauth: loginOAuth(idp, origin, oauth) } }, { port });
        return { idp, gw, port, origin };
    } catch (e) {
        await idp.close();
        throw e;
    }
}

/** Stops what startLoginGateway started: the gateway, then the provider (either may be missing). */
export async function stopLogin({ gw, idp }) {
    await gw?.stop();
    await idp?.close();
}

/** An in-memory OAuthClientProvider for the SDK, headless. */
export class MemoryProvider {
    constructor(redirect = REDIRECT) {
        this.redirect = redirect;
        this.info = undefined;
        this.saved = undefined;
        this.verifier = undefined;
        this.authUrl = undefined;
    }
    get redirectUrl() {
        return this.redirect;
    }
    get clientMetadata() {
        return { client_name: 'e2e SDK client', redirect_uris: [this.redirect], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
    }
    clientInformation() {
        return this.info;
    }
    saveClientInformation(i) {
        this.info = i;
    }
    tokens() {
        return this.saved;
    }
    saveTokens(t) {
        this.saved = t;
    }
    redirectToAuthorization(url) {
        this.authUrl = url;
    }
    saveCodeVerifier(v) {
        this.verifier = v;
    }
    codeVerifier() {
        return this.verifier;
    }
}

/** The consent page's hidden fields. */
export function consentFields(html) {
    const field = name => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
    return { pending: field('pending'), csrf: field('csrf') };
}

/**
 * Drives GET /authorize → consent (approve) → provider login → back to the
 * client's redirect (`stopAt`); returns the redirect URL (with code or error).
 */
export async function consentAndLogin(origin, url, jar = new Jar(), account, stopAt = REDIRECT) {
    const cookie = jar.header(url);
    const r = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    jar.store(url, r);
    let next;
    if (r.status === 200) {
        const { pending, csrf } = consentFields(await r.text());
        assert.ok(pending && csrf, 'consent page fields');
        const post = await fetch(`${origin}/authorize`, {
            method: 'POST',
            redirect: 'manual',
            headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header(`${origin}/authorize`), origin },
            body: new URLSearchParams({ pending, csrf, decision: 'approve' })
        });
        jar.store(`${origin}/authorize`, post);
        assert.equal(post.status, 302, await post.text());
        next = post.headers.get('location');
    } else {
        assert.equal(r.status, 302, await r.text());
        next = r.headers.get('location');
    }
    if (next.startsWith(stopAt)) return new URL(next);
    if (account) {
        const u = new URL(next);
        u.searchParams.set('account', account);
        next = u.href;
    }
    return new URL(await browse(next, stopAt, jar));
}
