// Mutual TLS: HTTPS with client certificates from a PKI made by openssl at
// test time (pki/pki.mjs), the identity taken from the CN, the first SAN DNS
// name or the first SAN e-mail, the handshake refused without a client
// certificate; and the X-Client-Cert-* headers of a TLS-terminating proxy,
// believed from trusted_proxies only.
//
// The identity is not echoed anywhere, so it is observed through session
// binding: a session created with one certificate is usable with another
// certificate naming the same identity, and 404 for a different identity.

import assert from 'node:assert/strict';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';

import { withTimeout } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';
import { createPki } from './pki/pki.mjs';

let pki;
before(() => {
    pki = createPki();
    // More certificates naming the same identities as pki.clients.*, with other keys and
    // other fields, and one naming somebody else.
    const client = ['extendedKeyUsage=clientAuth'];
    pki.more = {
        cnTwin: pki.issue(pki.ca, 'client-cn-twin', '/O=another unit/CN=alice.cn', client),
        cnOther: pki.issue(pki.ca, 'client-cn-other', '/O=mcp-guard e2e/CN=zed.cn', client),
        dnsTwin: pki.issue(pki.ca, 'client-dns-twin', '/O=mcp-guard e2e/CN=another-holder', [...client, 'subjectAltName=DNS:bob.clients.example,DNS:second.example']),
        dnsOther: pki.issue(pki.ca, 'client-dns-other', '/O=mcp-guard e2e/CN=dns-holder', [...client, 'subjectAltName=DNS:other.clients.example']),
        mailTwin: pki.issue(pki.ca, 'client-mail-twin', '/O=mcp-guard e2e/CN=someone', [...client, 'subjectAltName=DNS:x.example,email:carol@example.com']),
        mailOther: pki.issue(pki.ca, 'client-mail-other', '/O=mcp-guard e2e/CN=mail-holder', [...client, 'subjectAltName=email:dave@example.com'])
    };
});
after(() => pki?.cleanup());

const certOf = c => ({ cert: pki.read(c.cert), key: pki.read(c.key) });

function tlsGateway(source, extraAuth = {}) {
    return startAuthGateway(
        {
            server: { tls: { enabled: true, cert_path: pki.server.cert, key_path: pki.server.key, client_ca_path: pki.ca.cert } },
            auth: { mtls: { enabled: true, identity_source: source }, ...extraAuth }
        },
        { client: { ca: pki.read(pki.ca.cert), ...certOf(pki.clients.cn) } }
    );
}

/** Session created with `owner`; `same` certificates share it, `others` get 404. */
async function checkIdentity(gw, owner, same, others) {
    const init = await gw.initialize({}, { tls: certOf(owner) });
    assert.equal(init.status, 200, init.response?.text);
    const { sessionId } = init;
    assert.equal((await gw.toolsList(sessionId, {}, { tls: certOf(owner) })).status, 200);
    for (const c of same) assert.equal((await gw.toolsList(sessionId, {}, { tls: certOf(c) })).status, 200, `${c.name} names the same identity`);
    for (const c of others) assert.equal((await gw.toolsList(sessionId, {}, { tls: certOf(c) })).status, 404, `${c.name} names another identity`);
}

// The suites below are independent (each starts its own gateway, and IdP if any):
// 2 at a time; the tests inside a suite run one after the other.
describe('mutual TLS', { concurrency: 2 }, () => {
    describe('direct TLS with client certificates', { timeout: 60000, concurrency: 1 }, () => {
        test('identity_source = "cn": the subject CN is the identity', async () => {
            const gw = await tlsGateway('cn');
            try {
                await checkIdentity(gw, pki.clients.cn, [pki.more.cnTwin], [pki.more.cnOther, pki.clients.sanDns, pki.clients.sanEmail]);
                // The server presents its certificate for 127.0.0.1 signed by the test CA.
                const r = await gw.request('/health');
                assert.equal(r.status, 200);
                assert.equal(r.peerCert.serialNumber.toUpperCase().replace(/^0+/, ''), pki.server.serialHex);
            } finally {
                await gw.stop();
            }
        });

        test('identity_source = "san_dns": the first SAN DNS name; a certificate without one is refused', async () => {
            const gw = await tlsGateway('san_dns');
            try {
                await checkIdentity(gw, pki.clients.sanDns, [pki.more.dnsTwin], [pki.more.dnsOther]);
                const r = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { tls: certOf(pki.clients.cn) });
                assert.equal(r.status, 401, r.text);
                assert.equal(r.headers['www-authenticate'], gw.challenge('invalid_token'));
            } finally {
                await gw.stop();
            }
        });

        test('identity_source = "san_email": the first SAN e-mail; a certificate without one is refused', async () => {
            const gw = await tlsGateway('san_email');
            try {
                await checkIdentity(gw, pki.clients.sanEmail, [pki.more.mailTwin], [pki.more.mailOther]);
                for (const c of [pki.clients.cn, pki.clients.sanDns]) {
                    const r = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { tls: certOf(c) });
                    assert.equal(r.status, 401, `${c.name}: ${r.text}`);
                    assert.equal(r.headers['www-authenticate'], gw.challenge('invalid_token'));
                }
            } finally {
                await gw.stop();
            }
        });

        test('no client certificate: the handshake fails (every path, TLS 1.3 and 1.2); TLS 1.1 is refused', async () => {
            const gw = await tlsGateway('cn');
            try {
                const ca = pki.read(pki.ca.cert);
                for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) {
                    for (const p of ['/mcp', '/health']) {
                        await assert.rejects(gw.request(p, { tls: { ca, cert: undefined, key: undefined, maxVersion } }), e => {
                            assert.match(`${e.code} ${e.message}`, /certificate required|handshake failure|alert|ECONNRESET|socket hang up|EPIPE/i);
                            return true;
                        }, `${p} ${maxVersion}`);
                    }
                }
                // An old protocol version is refused whatever the certificate.
                await assert.rejects(gw.request('/health', { tls: { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' } }));
                // With the certificate, both versions work.
                for (const maxVersion of ['TLSv1.3', 'TLSv1.2']) assert.equal((await gw.request('/health', { tls: { maxVersion } })).status, 200, maxVersion);
                // Plain HTTP on the TLS port gets nothing useful.
                await assert.rejects(fetch(`http://127.0.0.1:${gw.port}/health`));
                // The negotiated protocol is TLS 1.2 or later by default.
                const proto = await new Promise((resolve, reject) => {
                    const s = tls.connect({ host: '127.0.0.1', port: gw.port, servername: 'localhost', ca, ...certOf(pki.clients.cn) }, () => {
                        resolve(s.getProtocol());
                        s.end();
                    });
                    s.on('error', reject);
                });
                assert.match(proto, /^TLSv1\.[23]$/);
            } finally {
                await gw.stop();
            }
        });

        test('mTLS first, then API keys: a certificate holder needs no key, the key does not change the identity', async () => {
            const key = keygen('carol');
            const gw = await tlsGateway('cn', { api_keys: [{ id: 'carol', key_hash: key.hash }] });
            try {
                // The certificate wins (tried first): the session belongs to mtls:alice.cn.
                const init = await gw.initialize({ 'x-api-key': key.key });
                assert.equal(init.status, 200);
                assert.equal((await gw.toolsList(init.sessionId, {}, { tls: certOf(pki.more.cnTwin) })).status, 200);
                // A wrong key next to a valid certificate does not matter either: first success wins.
                assert.equal((await gw.toolsList(init.sessionId, { 'x-api-key': 'mcp_wrong' })).status, 200);
            } finally {
                await gw.stop();
            }
        });
    });

    describe('forwarded certificate headers from a trusted proxy (plain HTTP)', { timeout: 60000, concurrency: 1 }, () => {
        let gw;
        before(async () => {
            gw = await startAuthGateway({ auth: { mtls: { enabled: true, identity_source: 'cn', trusted_proxies: ['127.0.0.1/32'] } } });
        });
        after(async () => {
            await gw?.stop();
        });

        const fwd = (cn, verified = 'SUCCESS') => ({ 'x-client-cert-cn': cn, ...(verified === null ? {} : { 'x-client-cert-verified': verified }) });

        test('X-Client-Cert-Verified: SUCCESS with a CN: accepted, and the CN is the identity', async () => {
            const init = await gw.initialize(fwd('proxy-alice'));
            assert.equal(init.status, 200, init.response?.text);
            assert.equal((await gw.toolsList(init.sessionId, fwd('proxy-alice'))).status, 200);
            assert.equal((await gw.toolsList(init.sessionId, fwd('proxy-bob'))).status, 404);
        });

        test('X-Client-Cert-Verified: FAILED (or missing, or anything else): 401 invalid_token', async () => {
            for (const v of ['FAILED', 'NONE', 'false', '', null]) {
                const r = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: fwd('proxy-alice', v) });
                assert.equal(r.status, 401, `verified=${v}: ${r.text}`);
                assert.equal(r.headers['www-authenticate'], gw.challenge('invalid_token'), `verified=${v}`);
                assert.doesNotMatch(r.text, /certificate|proxy|mtls/i);
            }
        });

        test('SUCCESS without the identity header: 401 invalid_token; no headers at all: 401 without error', async () => {
            const r = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: { 'x-client-cert-verified': 'SUCCESS', 'x-client-cert-san-dns': 'not-the-source.example' } });
            assert.equal(r.status, 401);
            assert.equal(r.headers['www-authenticate'], gw.challenge('invalid_token'));
            const none = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' });
            assert.equal(none.status, 401);
            assert.equal(none.headers['www-authenticate'], gw.challenge());
        });

        test('identity_source = "san_dns" / "san_email" read their own headers', async () => {
            for (const [source, header, value] of [
                ['san_dns', 'x-client-cert-san-dns', 'svc.proxy.example'],
                ['san_email', 'x-client-cert-san-email', 'svc@proxy.example']
            ]) {
                const g = await startAuthGateway({ auth: { mtls: { enabled: true, identity_source: source, trusted_proxies: ['127.0.0.0/8', '::1/128'] } } });
                try {
                    const ok = await g.initialize({ [header]: value, 'x-client-cert-verified': 'SUCCESS' });
                    assert.equal(ok.status, 200, `${source}: ${ok.response?.text}`);
                    // The CN header is not the identity for this source.
                    const cnOnly = await g.mcp({ jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: { 'x-client-cert-cn': value, 'x-client-cert-verified': 'SUCCESS' } });
                    assert.equal(cnOnly.status, 401, source);
                    assert.equal(cnOnly.headers['www-authenticate'], g.challenge('invalid_token'));
                } finally {
                    await g.stop();
                }
            }
        });
    });

    describe('configuration', { timeout: 30000, concurrency: 1 }, () => {
        test('[auth.mtls] enabled without client_ca_path or trusted_proxies is refused', async () => {
            const gw = await startAuthGateway({ auth: { mtls: { enabled: true } } }, { ready: false });
            let exit;
            try {
                exit = await withTimeout(gw.closed, 10000, 'the gateway to exit');
            } finally {
                if (!gw.exit) await gw.kill();
            }
            gw.cleanup();
            gw.checkSanitizers();
            assert.equal(exit.code, 1, gw.stderr);
            assert.match(gw.stderr, /auth\.mtls: mTLS is enabled but no certificate can reach the gateway/);
        });
    });
});
