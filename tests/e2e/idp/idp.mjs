// The test side of the OpenID provider (server.mjs): keys, the child process,
// tokens, and JWS crafting with node:crypto for the attack tests.
//
//   const idp = await startIdp();                 // child process, free port
//   const tok = await idp.getToken({ alg: 'ES256', scope: 'mcp:read', resource });
//   await idp.stats()   -> {jwks, token, discovery, introspection, total} (requests since start/reset)
//   await idp.rotate()  -> new keys (new kids) served by the running IdP
//   await idp.stop()    // SIGTERM by PID, SIGKILL after 5 s
//   await idp.start()   // again, same port and keys (IdP back up)
//   idp.sign(claims, { alg: 'RS256' })            // a JWS made here with the IdP's key
//
// Every child is SIGKILLed by PID when the test process exits.

import { spawn } from 'node:child_process';
import { createHmac, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER_JS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'server.mjs');

const children = new Set();
process.on('exit', () => {
    for (const c of children) {
        try {
            process.kill(c.pid, 'SIGKILL');
        } catch {
            /* gone */
        }
    }
});

/* ---- base64url and JWS ---------------------------------------------------------- */

export const b64u = buf => Buffer.from(buf).toString('base64url');
export const b64uJson = obj => b64u(typeof obj === 'string' ? obj : JSON.stringify(obj));
export const decodeJwt = tok => {
    const [h, p] = tok.split('.');
    return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
};

/** The raw signature of `data` with a private key for a JWS alg (node:crypto only). */
export function jwsSign(alg, data, key) {
    switch (alg) {
        case 'RS256':
        case 'RS384':
        case 'RS512':
            return cryptoSign(`sha${alg.slice(2)}`, Buffer.from(data), key);
        case 'PS256':
            return cryptoSign('sha256', Buffer.from(data), { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 });
        case 'ES256':
            return cryptoSign('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' });
        case 'ES384':
            return cryptoSign('sha384', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' });
        case 'EdDSA':
            return cryptoSign(null, Buffer.from(data), key);
        case 'HS256':
        case 'HS384':
        case 'HS512':
            return createHmac(`sha${alg.slice(2)}`, key).update(data).digest();
        default:
            throw new Error(`jwsSign: unsupported alg ${alg}`);
    }
}

/**
 * A compact JWS: `header` and `payload` are objects (serialised with
 * JSON.stringify) or strings (used verbatim, e.g. JSON with duplicate keys).
 */
export function makeJws(header, payload, alg, key) {
    const input = `${b64uJson(header)}.${b64uJson(payload)}`;
    return `${input}.${b64u(jwsSign(alg, input, key))}`;
}

/* ---- keys ------------------------------------------------------------------------ */

const KEYGEN = {
    RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
    PS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
    ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    ES384: () => generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    EdDSA: () => generateKeyPairSync('ed25519')
};

/**
 * One key per algorithm: [{alg, kid, privateKey, publicKey, privateJwk, publicJwk}]
 * (JWKs carry kid, alg and use: "sig").
 */
export function generateKeys(algs = ['RS256', 'ES256', 'EdDSA'], tag = randomBytes(4).toString('hex')) {
    return algs.map(alg => {
        const { privateKey, publicKey } = KEYGEN[alg]();
        const kid = `${tag}-${alg.toLowerCase()}`;
        const meta = { kid, alg, use: 'sig' };
        return {
            alg,
            kid,
            privateKey,
            publicKey,
            privateJwk: { ...privateKey.export({ format: 'jwk' }), ...meta },
            publicJwk: { ...publicKey.export({ format: 'jwk' }), ...meta }
        };
    });
}

/* ---- the IdP ----------------------------------------------------------------------- */

export class Idp {
    constructor({ port = 0, keys = generateKeys(), scopes, tokenTtl, redirectUris } = {}) {
        this.redirectUris = redirectUris;
        this.port = port;
        this.keys = keys;
        this.scopes = scopes;
        this.tokenTtl = tokenTtl;
        this.dir = mkdtempSync(path.join(tmpdir(), 'mcp-guard-idp-'));
        this.keysFile = path.join(this.dir, 'keys.json');
        this.proc = null;
        this.output = '';
    }

    get issuer() {
        return `http://127.0.0.1:${this.port}`;
    }

    get introspectionUrl() {
        return `${this.issuer}/token/introspection`;
    }

    get jwksUrl() {
        return `${this.issuer}/jwks`;
    }

    get pid() {
        return this.proc?.pid;
    }

    writeKeys() {
        writeFileSync(this.keysFile, JSON.stringify({ keys: this.keys.map(k => k.privateJwk) }), { mode: 0o600 });
    }

    /** Starts the child (again: same port and keys); resolves once it listens. */
    async start({ timeoutMs = 15000 } = {}) {
        if (this.proc) throw new Error('the IdP is already running');
        this.writeKeys();
        const env = { ...process.env, IDP_PORT: String(this.port), IDP_KEYS_FILE: this.keysFile };
        if (this.scopes) env.IDP_SCOPES = this.scopes.join(' ');
        if (this.tokenTtl) env.IDP_TOKEN_TTL = String(this.tokenTtl);
        if (this.redirectUris) env.IDP_REDIRECT_URIS = this.redirectUris.join(' ');
        const proc = spawn(process.execPath, [SERVER_JS], { stdio: ['ignore', 'pipe', 'pipe'], env });
        children.add(proc);
        this.proc = proc;
        proc.exited = new Promise(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })));
        proc.exited.then(() => children.delete(proc));
        proc.stdout.setEncoding('utf8');
        proc.stderr.setEncoding('utf8');
        proc.stderr.on('data', d => (this.output += d));
        const ready = new Promise((resolve, reject) => {
            let buf = '';
            proc.stdout.on('data', d => {
                this.output += d;
                buf += d;
                const m = /IDP_READY (\{.*\})\n/.exec(buf);
                if (m) resolve(JSON.parse(m[1]));
            });
            proc.exited.then(e => reject(new Error(`the IdP exited (${JSON.stringify(e)}) before listening:\n${this.output}`)));
            setTimeout(() => reject(new Error(`the IdP did not listen within ${timeoutMs} ms:\n${this.output}`)), timeoutMs).unref();
        });
        try {
            const info = await ready;
            this.port = info.port;
        } catch (e) {
            await this.kill();
            throw e;
        }
        return this;
    }

    /** SIGTERM by PID; SIGKILL after timeoutMs. */
    async stop({ timeoutMs = 5000 } = {}) {
        const proc = this.proc;
        if (!proc) return;
        try {
            process.kill(proc.pid, 'SIGTERM');
        } catch {
            /* gone */
        }
        const timer = setTimeout(() => {
            try {
                process.kill(proc.pid, 'SIGKILL');
            } catch {
                /* gone */
            }
        }, timeoutMs);
        await proc.exited;
        clearTimeout(timer);
        this.proc = null;
    }

    async kill() {
        const proc = this.proc;
        if (!proc) return;
        try {
            process.kill(proc.pid, 'SIGKILL');
        } catch {
            /* gone */
        }
        await proc.exited;
        this.proc = null;
    }

    /** Stops the child and removes its key file. */
    async close() {
        await this.stop();
        if (this.dir && !process.env.E2E_KEEP) rmSync(this.dir, { recursive: true, force: true });
        this.dir = null;
    }

    async admin(pathname, body) {
        const r = await fetch(`${this.issuer}/__admin/${pathname}`, {
            signal: AbortSignal.timeout(10000),
            method: body === undefined ? 'GET' : 'POST',
            headers: { 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body)
        });
        const json = await r.json();
        if (r.status !== 200) throw new Error(`IdP admin ${pathname}: ${r.status} ${JSON.stringify(json)}`);
        return json;
    }

    /** Requests the IdP saw since it started or since resetStats(): {jwks, token, discovery, introspection, total}. */
    stats() {
        return this.admin('stats');
    }

    resetStats() {
        return this.admin('reset', {});
    }

    /** Replaces the IdP's signing keys (new kids); returns the new keys. */
    async rotate(algs = this.keys.map(k => k.alg)) {
        this.keys = generateKeys(algs);
        this.writeKeys(); // a restart keeps them
        await this.admin('rotate', { keys: this.keys.map(k => k.privateJwk) });
        return this.keys;
    }

    /** Serves `doc` (any JSON) at /jwks instead of the real key set; null: back to normal. */
    overrideJwks(doc) {
        return this.admin('jwks', { doc });
    }

    /** Makes /jwks answer `ms` later (0: at once). */
    delayJwks(ms) {
        return this.admin('jwks', { delayMs: ms });
    }

    /** The IdP's published JWKS (a normal client request: it counts in stats). */
    async jwks() {
        return (await fetch(this.jwksUrl, { signal: AbortSignal.timeout(10000) })).json();
    }

    key(alg = 'RS256') {
        const k = this.keys.find(x => x.alg === alg);
        if (!k) throw new Error(`the IdP has no ${alg} key`);
        return k;
    }

    /**
     * An access token from the token endpoint: client_credentials grant,
     * `resource` (RFC 8707) = the token's aud, signed with `alg`.
     * Returns the compact JWT (`opaque`: an opaque token for introspection,
     * valid `ttl` seconds).
     */
    async getToken({ alg = 'RS256', scope, resource, client = 'mcp-client', secret = `${client}-secret`, opaque = false, ttl } = {}) {
        if (!resource) throw new Error('getToken: resource (the gateway resource URL) is required');
        const form = new URLSearchParams({ grant_type: 'client_credentials', resource });
        if (scope) form.set('scope', scope);
        const r = await fetch(`${this.issuer}/token`, {
            signal: AbortSignal.timeout(10000),
            method: 'POST',
            headers: {
                authorization: `Basic ${Buffer.from(`${client}:${secret}`).toString('base64')}`,
                'content-type': 'application/x-www-form-urlencoded',
                'x-test-token-alg': alg,
                ...(opaque ? { 'x-test-token-format': 'opaque' } : {}),
                ...(ttl ? { 'x-test-token-ttl': String(ttl) } : {})
            },
            body: form
        });
        const body = await r.json();
        if (r.status !== 200 || !body.access_token) throw new Error(`IdP /token answered ${r.status}: ${JSON.stringify(body)}\n${this.output.slice(-2000)}`);
        return body.access_token;
    }

    /**
     * A JWS signed here with the IdP's current key for `alg` (as if the IdP
     * issued it): default header {alg, typ: "at+jwt", kid}; `header` fields
     * override (undefined removes), a string header/payload is used verbatim.
     */
    sign(claims, { alg = 'RS256', header = {}, key } = {}) {
        const k = key || this.key(alg);
        let h = header;
        if (typeof header !== 'string') {
            h = { alg, typ: 'at+jwt', kid: k.kid, ...header };
            for (const name of Object.keys(h)) if (h[name] === undefined) delete h[name];
        }
        return makeJws(h, claims, alg, k.privateKey);
    }

    /** Claims like the IdP's own tokens (iss, aud, sub, iat, exp, jti, scope, client_id). */
    claims(resource, extra = {}) {
        const now = Math.floor(Date.now() / 1000);
        const c = { iss: this.issuer, aud: resource, sub: 'mcp-client', client_id: 'mcp-client', iat: now, exp: now + 600, jti: randomBytes(8).toString('hex'), scope: 'mcp:read', ...extra };
        for (const name of Object.keys(c)) if (c[name] === undefined) delete c[name];
        return c;
    }
}

/** Starts an IdP child process (free port unless `port`). */
export async function startIdp(opts = {}) {
    const idp = new Idp(opts);
    return idp.start();
}

/** SPKI/PKCS#1 PEM and DER encodings of a public key (alg-confusion material). */
export function publicKeyEncodings(publicKey) {
    const pub = typeof publicKey === 'object' && publicKey.type ? publicKey : createPublicKey(publicKey);
    const out = {
        spkiPem: pub.export({ type: 'spki', format: 'pem' }),
        spkiDer: pub.export({ type: 'spki', format: 'der' })
    };
    if (pub.asymmetricKeyType === 'rsa') {
        out.pkcs1Pem = pub.export({ type: 'pkcs1', format: 'pem' });
        out.pkcs1Der = pub.export({ type: 'pkcs1', format: 'der' });
    }
    return out;
}
