// Attacks on the authentication layer, one test each, tokens crafted with
// node:crypto against a gateway that trusts a real OpenID provider
// (idp/server.mjs): alg none, HS256 with the RSA public key as the HMAC
// secret, embedded jwk, jku/x5u to an attacker's server, an unknown-kid
// flood, time claims around the leeway, iss/aud, tampering, truncation,
// oversized tokens, duplicate JSON members, session hijack by another
// identity, forwarded certificate headers from an untrusted address, and a
// client certificate from another CA. Every refusal is checked for its exact
// status and WWW-Authenticate.

import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { sleep } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';
import { b64u, b64uJson, decodeJwt, generateKeys, makeJws, publicKeyEncodings, startIdp } from './idp/idp.mjs';
import { createPki } from './pki/pki.mjs';

const bearer = t => ({ authorization: `Bearer ${t}` });

// One PKI (openssl, temp dir) for the tests that need certificates.
let pkiInstance;
const sharedPki = () => (pkiInstance ||= createPki());
after(() => pkiInstance?.cleanup());
const PING = { jsonrpc: '2.0', id: 1, method: 'ping' };
const now = () => Math.floor(Date.now() / 1000);

function assertRefused(r, status, challenge, what = '') {
    assert.equal(r.status, status, `${what}: status; body ${String(r.text).slice(0, 300)}`);
    assert.equal(r.headers['www-authenticate'], challenge, `${what}: WWW-Authenticate`);
    assert.equal(r.json?.jsonrpc, '2.0', `${what}: JSON-RPC body`);
    assert.equal(r.json.error.code, -32600, what);
}

/** An HTTP server that records every request it gets (the attacker's key server). */
async function attackerServer(body) {
    const hits = [];
    const srv = http.createServer((req, res) => {
        hits.push(`${req.method} ${req.url}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
    });
    await new Promise(resolve => srv.listen(0, '127.0.0.1', resolve));
    return { hits, url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise(resolve => srv.close(resolve)) };
}

// The suites below are independent (each starts its own gateway, and IdP if any):
// 2 at a time; the tests inside a suite run one after the other.
describe('attacks on authentication', { concurrency: 2 }, () => {
    describe('JWT attacks', { timeout: 90000, concurrency: 1 }, () => {
        let idp;
        let gw;
        let invalid; // the exact invalid_token challenge

        before(async () => {
            idp = await startIdp();
            gw = await startAuthGateway(port => ({
                server: { max_header_bytes: 65536 },
                auth: {
                    jwt: {
                        mode: 'jwks',
                        jwks_url: idp.jwksUrl, allow_private_networks: true,
                        issuer: idp.issuer,
                        audience: `http://127.0.0.1:${port}/mcp`,
                        leeway_secs: 60
                    }
                }
            }));
            invalid = gw.challenge('invalid_token');
            // The gateway has the keys and accepts a normal token.
            const ok = await gw.initialize(bearer(await idp.getToken({ resource: gw.resource })));
            assert.equal(ok.status, 200, ok.response?.text);
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        const refused = async (token, what, challenge = invalid) => assertRefused(await gw.mcp(PING, { headers: bearer(token) }), 401, challenge, what);
        const accepted = async (token, what) => {
            const r = await gw.mcp(PING, { headers: bearer(token) });
            // ping outside a session: authentication passed when the answer is not 401/403/503.
            assert.ok(![401, 403, 503].includes(r.status), `${what}: expected to pass authentication, got ${r.status} ${r.text}`);
            const init = await gw.initialize(bearer(token));
            assert.equal(init.status, 200, `${what}: initialize ${init.response?.text}`);
        };

        test('alg "none" (none / None / NONE), with and without a signature, with and without a known kid', async () => {
            const claims = idp.claims(gw.resource);
            const real = idp.sign(claims, { alg: 'RS256' });
            const realSig = real.split('.')[2];
            for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
                for (const kid of [idp.key('RS256').kid, undefined]) {
                    const h = { alg, typ: 'at+jwt', ...(kid ? { kid } : {}) };
                    const unsigned = `${b64uJson(h)}.${b64uJson(claims)}.`;
                    await refused(unsigned, `${alg} unsigned kid=${kid}`);
                    await refused(`${b64uJson(h)}.${b64uJson(claims)}.${realSig}`, `${alg} with a real signature kid=${kid}`);
                }
            }
        });

        test('HS256 signed with the IdP\'s RSA public key as the HMAC secret (PEM, DER, JWK text)', async () => {
            const rsa = idp.key('RS256');
            const enc = publicKeyEncodings(rsa.publicKey);
            const secrets = {
                spkiPem: enc.spkiPem,
                pkcs1Pem: enc.pkcs1Pem,
                spkiDer: enc.spkiDer,
                pkcs1Der: enc.pkcs1Der,
                jwkJson: JSON.stringify(rsa.publicJwk),
                modulus: Buffer.from(rsa.publicJwk.n, 'base64url')
            };
            for (const [name, secret] of Object.entries(secrets)) {
                for (const alg of ['HS256', 'HS384', 'HS512']) {
                    for (const kid of [rsa.kid, undefined]) {
                        const tok = makeJws({ alg, typ: 'at+jwt', ...(kid ? { kid } : {}) }, idp.claims(gw.resource), alg, secret);
                        await refused(tok, `${alg} with ${name} kid=${kid}`);
                    }
                }
            }
            // Same trick with the EC and Ed25519 public keys.
            for (const a of ['ES256', 'EdDSA']) {
                const k = idp.key(a);
                for (const secret of [publicKeyEncodings(k.publicKey).spkiPem, publicKeyEncodings(k.publicKey).spkiDer, Buffer.from(k.publicJwk.x, 'base64url')]) {
                    await refused(makeJws({ alg: 'HS256', kid: k.kid }, idp.claims(gw.resource), 'HS256', secret), `HS256 with the ${a} public key`);
                }
            }
        });

        test('an algorithm that does not fit the key or is not configured (ES256 header on the RSA kid, PS256, RS384)', async () => {
            const rsa = idp.key('RS256');
            const ec = idp.key('ES256');
            const claims = idp.claims(gw.resource);
            // A real ES256 signature, labelled with the RSA key's kid.
            await refused(makeJws({ alg: 'ES256', kid: rsa.kid }, claims, 'ES256', ec.privateKey), 'ES256 on an RSA kid');
            // EdDSA signature labelled RS256.
            await refused(makeJws({ alg: 'RS256', kid: idp.key('EdDSA').kid }, claims, 'EdDSA', idp.key('EdDSA').privateKey), 'EdDSA labelled RS256');
            // The IdP's own RSA key, but algorithms the gateway was not configured for.
            await refused(makeJws({ alg: 'PS256', kid: rsa.kid }, claims, 'PS256', rsa.privateKey), 'PS256');
            await refused(makeJws({ alg: 'RS384', kid: rsa.kid }, claims, 'RS384', rsa.privateKey), 'RS384');
            // An unknown critical extension.
            await refused(idp.sign(claims, { alg: 'RS256', header: { crit: ['x-e2e'], 'x-e2e': true } }), 'crit');
            // Control: the same claims, properly signed, pass.
            await accepted(idp.sign(claims, { alg: 'RS256' }), 'control');
        });

        test("an embedded jwk header with the attacker's own key", async () => {
            const [evil] = generateKeys(['RS256'], 'evil');
            const [evilEc] = generateKeys(['ES256'], 'evil');
            const claims = idp.claims(gw.resource);
            for (const kid of [evil.kid, idp.key('RS256').kid, undefined]) {
                const h = { alg: 'RS256', typ: 'at+jwt', jwk: evil.publicJwk, ...(kid ? { kid } : {}) };
                await refused(makeJws(h, claims, 'RS256', evil.privateKey), `jwk header, kid=${kid}`);
            }
            await refused(makeJws({ alg: 'ES256', kid: evilEc.kid, jwk: evilEc.publicJwk }, claims, 'ES256', evilEc.privateKey), 'ES256 jwk header');
            // Even when the token is signed by the real key, a jwk header is refused.
            await refused(idp.sign(claims, { alg: 'RS256', header: { jwk: idp.key('RS256').publicJwk } }), 'real signature + jwk header');
        });

        test("an x5c header with the attacker's certificate chain", async () => {
            const pki = sharedPki();
            const der = pem => pem.toString().replace(/-----[^-]+-----|\s+/g, '');
            const claims = idp.claims(gw.resource);
            const evilKey = createPrivateKey(pki.read(pki.otherCa.key));
            for (const kid of [undefined, 'x5c-evil', idp.key('ES256').kid]) {
                const h = { alg: 'ES256', typ: 'at+jwt', x5c: [der(pki.read(pki.otherCa.cert))], ...(kid ? { kid } : {}) };
                await refused(makeJws(h, claims, 'ES256', evilKey), `x5c kid=${kid}`);
            }
            await refused(idp.sign(claims, { alg: 'ES256', header: { x5c: [der(pki.read(pki.ca.cert))] } }), 'real signature + x5c');
        });

        test('jku / x5u pointing to an attacker JWKS server: refused, and the gateway never calls it', async () => {
            const [evil] = generateKeys(['RS256'], 'jku-evil');
            const attacker = await attackerServer({ keys: [evil.publicJwk] });
            try {
                const claims = idp.claims(gw.resource);
                for (const member of ['jku', 'x5u']) {
                    for (const kid of [evil.kid, idp.key('RS256').kid]) {
                        const h = { alg: 'RS256', typ: 'at+jwt', kid, [member]: `${attacker.url}/jwks.json` };
                        await refused(makeJws(h, claims, 'RS256', evil.privateKey), `${member}, kid=${kid}`);
                    }
                    await refused(idp.sign(claims, { alg: 'RS256', header: { [member]: `${attacker.url}/jwks.json` } }), `${member} on a real signature`);
                }
                await sleep(500); // anything asynchronous would have arrived by now
                assert.deepEqual(attacker.hits, [], 'the attacker server got no request');
            } finally {
                await attacker.close();
            }
        });

        test('expired: refused beyond the leeway (60 s), accepted within it; exp is required', async () => {
            await refused(idp.sign(idp.claims(gw.resource, { exp: now() - 120, iat: now() - 600 })), 'exp 120 s ago');
            await refused(idp.sign(idp.claims(gw.resource, { exp: now() - 3600 * 24, iat: now() - 3600 * 25 })), 'exp a day ago');
            await accepted(idp.sign(idp.claims(gw.resource, { exp: now() - 20, iat: now() - 600 })), 'exp 20 s ago (within leeway)');
            await refused(idp.sign(idp.claims(gw.resource, { exp: undefined })), 'no exp');
            await refused(idp.sign(idp.claims(gw.resource, { exp: String(now() + 600) })), 'exp as a string');
        });

        test('nbf / iat in the future: refused beyond the leeway, accepted within it', async () => {
            await refused(idp.sign(idp.claims(gw.resource, { nbf: now() + 300 })), 'nbf +300 s');
            await accepted(idp.sign(idp.claims(gw.resource, { nbf: now() + 20 })), 'nbf +20 s (within leeway)');
            await refused(idp.sign(idp.claims(gw.resource, { iat: now() + 300 })), 'iat +300 s');
        });

        test('wrong, missing or slightly different iss', async () => {
            for (const iss of ['https://evil.example', `${idp.issuer}/`, idp.issuer.toUpperCase(), '', undefined, 42]) {
                await refused(idp.sign(idp.claims(gw.resource, { iss })), `iss ${JSON.stringify(iss)}`);
            }
        });

        test('wrong aud, an aud array without us, a missing aud; an aud array with us passes', async () => {
            for (const aud of ['https://other.example/mcp', `${gw.resource}/`, gw.resource.replace('/mcp', ''), ['https://a.example', 'https://b.example'], [], undefined]) {
                await refused(idp.sign(idp.claims(gw.resource, { aud })), `aud ${JSON.stringify(aud)}`);
            }
            await accepted(idp.sign(idp.claims(gw.resource, { aud: ['https://a.example', gw.resource] })), 'aud array containing us');
        });

        test('tampered payload: a valid signature of another payload', async () => {
            const real = await idp.getToken({ alg: 'ES256', scope: 'mcp:read', resource: gw.resource });
            const [h, p, s] = real.split('.');
            const claims = decodeJwt(real).payload;
            for (const change of [{ sub: 'admin' }, { scope: 'mcp:admin' }, { exp: claims.exp + 3600 }]) {
                await refused(`${h}.${b64uJson({ ...claims, ...change })}.${s}`, `payload changed: ${JSON.stringify(change)}`);
            }
            // Signatures swapped between two genuine tokens.
            const other = await idp.getToken({ alg: 'ES256', resource: gw.resource, client: 'alice' });
            await refused(`${h}.${p}.${other.split('.')[2]}`, 'swapped signature');
            // Header changed (kid of another key) with the original signature.
            await refused(`${b64uJson({ ...decodeJwt(real).header, kid: idp.key('RS256').kid })}.${p}.${s}`, 'header changed');
            await accepted(real, 'control: the genuine token');
        });

        test('truncated and padded tokens', async () => {
            const real = idp.sign(idp.claims(gw.resource), { alg: 'RS256' });
            const [h, p, s] = real.split('.');
            for (const [what, tok] of [
                ['signature minus 1 char', `${h}.${p}.${s.slice(0, -1)}`],
                ['signature minus 4 chars', `${h}.${p}.${s.slice(0, -4)}`],
                ['half a signature', `${h}.${p}.${s.slice(0, s.length >> 1)}`],
                ['empty signature', `${h}.${p}.`],
                ['payload cut', `${h}.${p.slice(0, 20)}.${s}`],
                ['header cut', `${h.slice(0, 10)}.${p}.${s}`],
                ['empty header and payload', `..${s}`],
                ['base64 padding added', `${h}.${p}.${s}==`],
                ['standard base64 alphabet', `${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}`],
                ['a character appended', `${real}A`],
                ['whitespace inside', `${h}.${p}.${s.slice(0, 10)} ${s.slice(10)}`]
            ]) {
                if (tok === real) continue;
                await refused(tok, what);
            }
        });

        test('a token missing its signature part (two parts) is an invalid token, not a missing one', async () => {
            const real = idp.sign(idp.claims(gw.resource), { alg: 'RS256' });
            const [h, p] = real.split('.');
            await refused(`${h}.${p}`, 'two parts');
        });

        test('oversized tokens (> 16 KiB) are refused without verification; just under the limit passes', async () => {
            const base = idp.claims(gw.resource);
            // Length without signing: header, payload, and a 2048-bit RSA signature (342 characters).
            const headerLen = b64uJson({ alg: 'RS256', typ: 'at+jwt', kid: idp.key('RS256').kid }).length;
            const sizeOf = pad => headerLen + 1 + b64uJson({ ...base, pad }).length + 1 + 342;
            const fill = target => {
                let n = Math.floor(((target - sizeOf('')) * 3) / 4);
                while (sizeOf('x'.repeat(n)) > target) n--;
                while (sizeOf('x'.repeat(n + 1)) <= target) n++;
                const tok = idp.sign({ ...base, pad: 'x'.repeat(n) }, { alg: 'RS256' });
                assert.equal(tok.length, sizeOf('x'.repeat(n)));
                return tok;
            };
            const under = fill(16 * 1024);
            assert.ok(under.length <= 16384 && under.length > 16300, `${under.length}`);
            await accepted(under, `${under.length} bytes`);
            const over = idp.sign({ ...base, pad: 'x'.repeat(17 * 1024) }, { alg: 'RS256' });
            assert.ok(over.length > 16384);
            await refused(over, `${over.length} bytes`);
            const huge = idp.sign({ ...base, pad: 'y'.repeat(40 * 1024) }, { alg: 'RS256' });
            await refused(huge, `${huge.length} bytes`);
            assert.equal(gw.exit, null);
        });

        test('duplicate "alg" in the header and duplicate "exp" in the payload', async () => {
            const k = idp.key('RS256');
            const claims = idp.claims(gw.resource);
            const claimsJson = JSON.stringify(claims);
            for (const header of [
                `{"alg":"RS256","typ":"at+jwt","kid":"${k.kid}","alg":"none"}`,
                `{"alg":"none","typ":"at+jwt","kid":"${k.kid}","alg":"RS256"}`,
                `{"alg":"RS256","typ":"at+jwt","kid":"${k.kid}","alg":"RS256"}`,
                `{"alg":"RS256","typ":"at+jwt","kid":"other","kid":"${k.kid}"}`
            ]) {
                await refused(makeJws(header, claimsJson, 'RS256', k.privateKey), `header ${header}`);
            }
            const expired = now() - 3600;
            for (const payload of [
                `${claimsJson.slice(0, -1)},"exp":${expired}}`, // a later exp in the past
                `{"exp":${expired},${claimsJson.slice(1)}`, // an earlier one in the past
                `${claimsJson.slice(0, -1)},"sub":"admin"}`
            ]) {
                await refused(makeJws({ alg: 'RS256', typ: 'at+jwt', kid: k.kid }, payload, 'RS256', k.privateKey), `payload ${payload.slice(0, 40)}…`);
            }
            await accepted(makeJws({ alg: 'RS256', typ: 'at+jwt', kid: k.kid }, claimsJson, 'RS256', k.privateKey), 'control');
        });

        test('no usable identity claim (sub missing, empty, an object)', async () => {
            for (const sub of [undefined, '', { id: 'x' }, ['a']]) {
                await refused(idp.sign(idp.claims(gw.resource, { sub })), `sub ${JSON.stringify(sub)}`);
            }
        });

        test('a session id used by another identity: 404, and the owner keeps it', async () => {
            const alice = await idp.getToken({ resource: gw.resource, client: 'alice' });
            const bob = await idp.getToken({ resource: gw.resource, client: 'bob', alg: 'EdDSA' });
            const { sessionId } = await gw.initialize(bearer(alice));
            const hijack = await gw.toolsList(sessionId, bearer(bob));
            assert.equal(hijack.status, 404, hijack.text);
            assert.equal(hijack.headers['www-authenticate'], undefined);
            // A token forged to say sub=alice is still refused (401, not the session).
            const forged = makeJws({ alg: 'RS256', kid: idp.key('RS256').kid }, idp.claims(gw.resource, { sub: 'alice' }), 'RS256', generateKeys(['RS256'], 'f')[0].privateKey);
            assertRefused(await gw.toolsList(sessionId, bearer(forged)), 401, invalid, 'forged alice');
            // The session id alone is nothing.
            assertRefused(await gw.toolsList(sessionId, {}), 401, gw.challenge(), 'no credentials');
            assert.equal((await gw.toolsList(sessionId, bearer(alice))).status, 200);
        });
    });

    describe('a JWKS with keys that must not be used', { timeout: 60000, concurrency: 1 }, () => {
        let idp;
        let gw;
        const extra = {};

        before(async () => {
            idp = await startIdp();
            const meta = (kid, alg) => ({ kid, alg, use: 'sig' });
            extra.secret = 'a-secret-the-attacker-knows-0123456789abcdef';
            extra.weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
            extra.enc = generateKeys(['ES256'], 'enc')[0];
            extra.priv = generateKeys(['EdDSA'], 'priv')[0];
            extra.ops = generateKeys(['ES256'], 'ops')[0];
            const good = idp.key('RS256');
            await idp.overrideJwks({
                keys: [
                    { kty: 'oct', k: b64u(extra.secret), ...meta('sym', 'HS256') },
                    { kty: 'oct', k: b64u(extra.secret), kid: 'sym-noalg' },
                    { ...extra.weak.publicKey.export({ format: 'jwk' }), ...meta('weak', 'RS256') },
                    { ...extra.enc.publicJwk, use: 'enc' },
                    { ...extra.priv.privateJwk }, // a private key published by mistake
                    { ...extra.ops.publicJwk, key_ops: ['encrypt'] },
                    good.publicJwk
                ]
            });
            gw = await startAuthGateway(port => ({
                auth: { jwt: { mode: 'jwks', jwks_url: idp.jwksUrl, allow_private_networks: true, issuer: idp.issuer, audience: `http://127.0.0.1:${port}/mcp` } }
            }));
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        test('symmetric, short RSA, enc-only, private and encrypt-only keys are skipped; the good key works', async () => {
            const claims = idp.claims(gw.resource);
            const ok = await gw.initialize(bearer(makeJws({ alg: 'RS256', kid: idp.key('RS256').kid }, claims, 'RS256', idp.key('RS256').privateKey)));
            assert.equal(ok.status, 200, `${ok.response?.text}\n${gw.tail()}`);
            for (const [what, tok] of [
                ['HS256 with an oct key from the JWKS', makeJws({ alg: 'HS256', kid: 'sym' }, claims, 'HS256', extra.secret)],
                ['HS256 with an oct key without alg', makeJws({ alg: 'HS256', kid: 'sym-noalg' }, claims, 'HS256', extra.secret)],
                ['RS256 with a 1024-bit key', makeJws({ alg: 'RS256', kid: 'weak' }, claims, 'RS256', extra.weak.privateKey)],
                ['ES256 with a use=enc key', makeJws({ alg: 'ES256', kid: extra.enc.kid }, claims, 'ES256', extra.enc.privateKey)],
                ['EdDSA with a published private key', makeJws({ alg: 'EdDSA', kid: extra.priv.kid }, claims, 'EdDSA', extra.priv.privateKey)],
                ['ES256 with key_ops ["encrypt"]', makeJws({ alg: 'ES256', kid: extra.ops.kid }, claims, 'ES256', extra.ops.privateKey)]
            ]) {
                assertRefused(await gw.mcp(PING, { headers: bearer(tok) }), 401, gw.challenge('invalid_token'), what);
            }
            assert.match(gw.stderr, /jwks .*: 6 key\(s\) skipped as unusable/);
        });
    });

    describe('unknown-kid flood', { timeout: 60000, concurrency: 1 }, () => {
        let idp;
        let gw;

        before(async () => {
            idp = await startIdp();
            gw = await startAuthGateway(port => ({
                auth: { jwt: { mode: 'jwks', jwks_url: idp.jwksUrl, allow_private_networks: true, issuer: idp.issuer, audience: `http://127.0.0.1:${port}/mcp` } }
            }));
            // Keys loaded (a token verified) before the flood.
            assert.equal((await gw.initialize(bearer(await idp.getToken({ resource: gw.resource })))).status, 200);
        });

        after(async () => {
            await gw?.stop();
            await idp?.close();
        });

        test('100 concurrent tokens with random kids: all 401, at most one JWKS refetch (then none for 30 s)', async () => {
            await idp.resetStats();
            const [evil] = generateKeys(['ES256'], 'flood');
            const flood = () =>
                Promise.all(
                    Array.from({ length: 100 }, () => {
                        const kid = randomBytes(12).toString('hex');
                        const tok = makeJws({ alg: 'ES256', typ: 'at+jwt', kid }, idp.claims(gw.resource), 'ES256', evil.privateKey);
                        return gw.mcp(PING, { headers: bearer(tok) });
                    })
                );
            const t0 = Date.now();
            const first = await flood();
            for (const r of first) assertRefused(r, 401, gw.challenge('invalid_token'), 'flood');
            const s1 = await idp.stats();
            assert.ok(s1.jwks >= 1 && s1.jwks <= 2, `JWKS fetches during the flood: ${s1.jwks}`);
            const second = await flood();
            for (const r of second) assertRefused(r, 401, gw.challenge('invalid_token'), 'second flood');
            const s2 = await idp.stats();
            assert.equal(s2.jwks, s1.jwks, 'no refetch within 30 s of the last one');
            assert.ok(Date.now() - t0 < 30000);
            // Legitimate tokens are unaffected.
            assert.equal((await gw.initialize(bearer(await idp.getToken({ alg: 'EdDSA', resource: gw.resource })))).status, 200);
            assert.equal(gw.exit, null);
        });
    });

    describe('forwarded client-certificate headers from an untrusted address', { timeout: 60000, concurrency: 1 }, () => {
        test('trusted_proxies = ["10.9.9.9/32"]: headers from 127.0.0.1 are ignored, 401 without error', async () => {
            const key = keygen('ops');
            const gw = await startAuthGateway({
                auth: {
                    api_keys: [{ id: 'ops', key_hash: key.hash }],
                    mtls: { enabled: true, identity_source: 'cn', trusted_proxies: ['10.9.9.9/32'] }
                }
            });
            try {
                const spoof = { 'x-client-cert-cn': 'admin', 'x-client-cert-san-dns': 'admin.example', 'x-client-cert-san-email': 'admin@example.com', 'x-client-cert-verified': 'SUCCESS' };
                assertRefused(await gw.mcp(PING, { headers: spoof }), 401, gw.challenge(), 'spoofed headers');
                assertRefused(await gw.mcp(PING, { headers: { ...spoof, 'x-client-cert-verified': 'true' } }), 401, gw.challenge(), 'spoofed, verified=true');
                assertRefused(await gw.mcp(PING, { headers: { ...spoof, 'x-forwarded-for': '10.9.9.9', forwarded: 'for=10.9.9.9' } }), 401, gw.challenge(), 'spoofed X-Forwarded-For');
                // The headers do not taint a request that has real credentials.
                const ok = await gw.initialize({ ...spoof, 'x-api-key': key.key });
                assert.equal(ok.status, 200);
                // And do not let a spoofer reach that session.
                assert.equal((await gw.toolsList(ok.sessionId, spoof)).status, 401);
            } finally {
                await gw.stop();
            }
        });
    });

    describe('a client certificate from another CA', { timeout: 60000, concurrency: 1 }, () => {
        let pki;
        before(() => {
            pki = sharedPki();
        });

        test('the TLS handshake fails (TLS 1.3 and 1.2); the trusted CA\'s certificate works', async () => {
            const gw = await startAuthGateway(
                {
                    server: { tls: { enabled: true, cert_path: pki.server.cert, key_path: pki.server.key, client_ca_path: pki.ca.cert } },
                    auth: { mtls: { enabled: true, identity_source: 'cn' } }
                },
                { client: { ca: pki.read(pki.ca.cert), cert: pki.read(pki.clients.cn.cert), key: pki.read(pki.clients.cn.key) } }
            );
            try {
                const rogue = { cert: pki.read(pki.clients.rogue.cert), key: pki.read(pki.clients.rogue.key) };
                for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
                    await assert.rejects(gw.initialize({}, { tls: { ...rogue, maxVersion } }), e => {
                        assert.match(`${e.code} ${e.message}`, /unknown ca|alert|ECONNRESET|socket hang up|EPIPE/i, e.message);
                        return true;
                    }, maxVersion);
                }
                // The rogue CA itself presented as a client certificate fails too.
                await assert.rejects(gw.initialize({}, { tls: { cert: pki.read(pki.otherCa.cert), key: pki.read(pki.otherCa.key) } }));
                const ok = await gw.initialize({});
                assert.equal(ok.status, 200, ok.response?.text);
                assert.match(gw.stderr, /listening on https:/);
            } finally {
                await gw.stop();
            }
        });
    });
});
