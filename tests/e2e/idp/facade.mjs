// The browser and client sides of the gateway's authorization server (the
// OAuth facade) for the e2e tests: an in-memory OAuthClientProvider for the
// MCP SDK, and a user who approves the consent page and logs in at the
// provider (oidc-provider, idp.mjs). Used by oauth-facade and inspector.

import assert from 'node:assert/strict';

import { browse, Jar } from './browser.mjs';

export const REDIRECT = 'http://127.0.0.1:45999/callback'; // the client's; never requested

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
