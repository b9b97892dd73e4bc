// A real OpenID provider for the end-to-end tests: oidc-provider (v9) on
// 127.0.0.1, run as a child process by idp.mjs (`node tests/e2e/idp/server.mjs`)
// so that a test can kill it (IdP down) and start it again on the same port.
//
// Input (environment):
//   IDP_PORT        port to listen on (0: any free port)
//   IDP_KEYS_FILE   JSON {keys: [private JWKs with kid/alg/use]}: the signing keys
//   IDP_SCOPES      scopes the resource server (the gateway) knows, space-separated
//   IDP_TOKEN_TTL   lifetime of access tokens in seconds (default 600)
//   IDP_REDIRECT_URIS  space-separated redirect URIs of client `mcp-guard` for the
//                   authorization code flow (the gateway's /oauth/callback)
//
// Output: one line `IDP_READY {"port":…,"issuer":…}` on stdout once listening.
//
// Access tokens: the client_credentials grant with a resource indicator
// (RFC 8707) gives a JWT access token (RFC 9068, typ at+jwt) whose `aud` is
// the resource, `sub` the client id, `scope` the granted scopes. The signing
// algorithm is chosen per token by the request header `X-Test-Token-Alg`
// (RS256 default, ES256, EdDSA; oidc-provider itself picks the resource
// server's jwt.sign.alg, which getResourceServerInfo() computes from it).
//
// Opaque access tokens: the same grant with the request header
// `X-Test-Token-Format: opaque` (and `X-Test-Token-Ttl: <secs>`) gives an opaque
// token, checked by RFC 7662 introspection at /token/introspection (client
// `mcp-guard` / `mcp-guard-secret`, the gateway as resource server).
//
// Test hooks (not oidc-provider's, served by the wrapping HTTP server):
//   GET  /__admin/stats   {jwks, token, discovery, total}: requests seen since start/reset
//   POST /__admin/reset   zero the counters
//   POST /__admin/rotate  body {keys: [private JWKs]}: a new Provider instance with
//                         these keys replaces the current one (what a key rotation
//                         at a real IdP looks like from outside: the JWKS changes).
//                         oidc-provider fixes its keystore at construction, so a
//                         rotation without a restart means a new instance behind the
//                         same listener; the tests that need the IdP *down* stop the
//                         process instead (idp.mjs stop()/start(), same port and keys).
//   POST /__admin/jwks    body {doc}: any JSON document, served verbatim at /jwks from
//                         now on (doc null: the provider's own JWKS again);
//                         body {delayMs}: /jwks answers that much later (a slow IdP)
//
// What oidc-provider does not offer and is done here instead: choosing the
// signing algorithm per token (the X-Test-Token-Alg header read in
// getResourceServerInfo), counting JWKS requests, serving a doctored JWKS and
// slowing the JWKS endpoint down (the admin hooks above).

import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.IDP_PORT || 0);
const scopes = (process.env.IDP_SCOPES || 'mcp:read mcp:write mcp:admin mcp:use').split(' ').filter(Boolean);
const tokenTtl = Number(process.env.IDP_TOKEN_TTL || 600);
let keys = JSON.parse(readFileSync(process.env.IDP_KEYS_FILE, 'utf8')).keys;

const stats = { jwks: 0, token: 0, discovery: 0, introspection: 0, total: 0 };
let jwksOverride = null; // a raw document served at /jwks instead of the provider's
let jwksDelayMs = 0;

const CLIENTS = [
    // One confidential client per identity the tests use; sub = client id.
    { client_id: 'mcp-client', client_secret: 'mcp-client-secret' },
    { client_id: 'alice', client_secret: 'alice-secret' },
    { client_id: 'bob', client_secret: 'bob-secret' }
].map(c => ({ ...c, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic' }));
// The gateway itself: the resource server that introspects tokens, and the
// client of the login flow (authorization code + PKCE) when IDP_REDIRECT_URIS is set.
const redirectUris = (process.env.IDP_REDIRECT_URIS || '').split(' ').filter(Boolean);
CLIENTS.push({
    client_id: 'mcp-guard',
    client_secret: 'mcp-guard-secret',
    grant_types: redirectUris.length ? ['client_credentials', 'authorization_code'] : ['client_credentials'],
    redirect_uris: redirectUris,
    response_types: redirectUris.length ? ['code'] : [],
    token_endpoint_auth_method: 'client_secret_basic'
});

const ALGS = new Set(['RS256', 'ES256', 'EdDSA', 'PS256', 'ES384', 'RS384', 'RS512']);

function makeProvider(issuer) {
    const provider = new Provider(issuer, {
        clients: CLIENTS,
        jwks: { keys },
        scopes: ['openid', ...scopes],
        // Logins are headless: /interaction/<uid> (below) logs in the account
        // named by the `account` query parameter of the authorization request
        // (default "alice") and grants what was asked; account "deny" refuses.
        interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
        extraParams: ['account'],
        pkce: { required: () => true },
        features: {
            devInteractions: { enabled: false },
            clientCredentials: { enabled: true },
            introspection: { enabled: true },
            revocation: { enabled: false },
            resourceIndicators: {
                enabled: true,
                defaultResource: (ctx, client, oneOf) => oneOf,
                useGrantedResource: () => true,
                getResourceServerInfo: ctx => {
                    const alg = ctx.get('x-test-token-alg') || 'RS256';
                    if (!ALGS.has(alg)) throw new Error(`X-Test-Token-Alg: unsupported ${alg}`);
                    if (ctx.get('x-test-token-format') === 'opaque') {
                        return { scope: scopes.join(' '), accessTokenTTL: Number(ctx.get('x-test-token-ttl')) || tokenTtl, accessTokenFormat: 'opaque' };
                    }
                    return {
                        scope: scopes.join(' '),
                        accessTokenTTL: tokenTtl,
                        accessTokenFormat: 'jwt',
                        jwt: { sign: { alg } }
                    };
                }
            }
        },
        // Every key may sign access tokens, whatever its algorithm.
        enabledJWA: {
            idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256', 'ES384', 'RS384', 'RS512', 'EdDSA']
        },
        ttl: { ClientCredentials: tokenTtl }
    });
    provider.on('server_error', (ctx, err) => console.error('idp server_error:', err));
    return provider;
}

let callback = null;
let provider = null;
let issuer = null;

const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname.startsWith('/__admin/')) {
        admin(req, res, url.pathname).catch(e => {
            res.writeHead(500, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: e.message }));
        });
        return;
    }
    stats.total++;
    if (url.pathname === '/jwks') stats.jwks++;
    else if (url.pathname === '/token') stats.token++;
    else if (url.pathname === '/token/introspection') stats.introspection++;
    else if (url.pathname.startsWith('/.well-known/')) stats.discovery++;
    const handle = callback;
    if (url.pathname.startsWith('/interaction/')) {
        interaction(req, res).catch(e => {
            res.writeHead(500, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: e.message }));
        });
        return;
    }
    const serve = () => {
        if (url.pathname === '/jwks' && jwksOverride !== null) {
            res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
            res.end(jwksOverride);
            return;
        }
        handle(req, res);
    };
    if (url.pathname === '/jwks' && jwksDelayMs > 0) setTimeout(serve, jwksDelayMs);
    else serve();
});

/** A headless login and consent: the account from the authorization request, every scope asked. */
async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params } = details;
    const accountId = params.account || 'alice';
    let result;
    if (accountId === 'deny') {
        result = { error: 'access_denied', error_description: 'the user said no' };
    } else if (prompt.name === 'login') {
        result = { login: { accountId } };
    } else {
        const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: params.client_id });
        if (params.scope) grant.addOIDCScope(params.scope);
        if (params.resource) grant.addResourceScope(params.resource, params.scope || '');
        result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const parts = [];
        req.on('data', d => parts.push(d));
        req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
        req.on('error', reject);
    });
}

async function admin(req, res, pathname) {
    let out;
    if (pathname === '/__admin/stats') {
        out = { ...stats };
    } else if (pathname === '/__admin/reset' && req.method === 'POST') {
        for (const k of Object.keys(stats)) stats[k] = 0;
        out = { ...stats };
    } else if (pathname === '/__admin/rotate' && req.method === 'POST') {
        const body = JSON.parse(await readBody(req));
        keys = body.keys;
        provider = makeProvider(issuer);
        callback = provider.callback();
        out = { kids: keys.map(k => k.kid) };
    } else if (pathname === '/__admin/jwks' && req.method === 'POST') {
        const body = JSON.parse(await readBody(req));
        if ('doc' in body) jwksOverride = body.doc === null ? null : JSON.stringify(body.doc);
        if ('delayMs' in body) jwksDelayMs = Number(body.delayMs) || 0;
        out = { override: jwksOverride !== null, delayMs: jwksDelayMs };
    } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"no such admin endpoint"}');
        return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
}

server.keepAliveTimeout = 1000;
server.listen(port, '127.0.0.1', () => {
    const actual = server.address().port;
    issuer = `http://127.0.0.1:${actual}`;
    provider = makeProvider(issuer);
    callback = provider.callback();
    process.stdout.write(`IDP_READY ${JSON.stringify({ port: actual, issuer, pid: process.pid })}\n`);
});
server.on('error', e => {
    console.error(`idp: cannot listen on 127.0.0.1:${port}: ${e.message}`);
    process.exit(1);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
        server.closeAllConnections?.();
        server.close(() => process.exit(0));
        setTimeout(() => process.exit(0), 500).unref();
    });
}
