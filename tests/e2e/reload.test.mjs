// SIGHUP reloads: API keys rotated by rewriting the configuration file (no
// restart: same PID, same upstream, existing sessions keep working for
// identities still configured), a request in flight finishing on the old
// configuration, broken files refused with the old configuration kept, JWT
// settings (secret, IdP) swapped, and TLS certificates swapped for new
// connections.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { copyFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { readTap, sleep, tapUpstream, tempDir, waitFor } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';
import { b64uJson, startIdp } from './idp/idp.mjs';
import { createPki } from './pki/pki.mjs';

const PING = { jsonrpc: '2.0', id: 1, method: 'ping' };

function assertRefused(r, status, challenge, what = '') {
    assert.equal(r.status, status, `${what}: ${String(r.text).slice(0, 300)}`);
    assert.equal(r.headers['www-authenticate'], challenge, what);
}

const bearer = t => ({ authorization: `Bearer ${t}` });
// Limits far above what the tests send: the burst test below loops as fast as the
// machine allows, and what it checks is reloading, not rate limiting.
const keysConfig = (...keys) => ({
    auth: { api_keys: keys.map(k => ({ id: k.id, key_hash: k.hash })) },
    rate_limit: { requests_per_second: 100000, burst_size: 100000 }
});
const key = k => ({ 'x-api-key': k.key });

// The suites below are independent (each has its own IdP and gateway) and mostly wait
// on timers: 2 at a time.
describe('SIGHUP reloads', { concurrency: 2 }, () => {
    describe('API keys rotated by SIGHUP', { timeout: 60000, concurrency: 1 }, () => {
        let gw;
        let alice;
        let bob;
        let carol;

        let tapDir;

        before(async () => {
            alice = keygen('alice');
            bob = keygen('bob');
            carol = keygen('carol');
            tapDir = tempDir('mcp-guard-reload-tap-');
            // The tap upstream logs what reaches it: the in-flight test waits for its tools/call.
            gw = await startAuthGateway(keysConfig(alice, bob), { upstream: tapUpstream(path.join(tapDir, 'tap.jsonl')) });
        });

        after(async () => {
            await gw?.stop();
            if (tapDir && !process.env.E2E_KEEP) rmSync(tapDir, { recursive: true, force: true });
        });

        test('new key works, removed key is 401, same process and upstream, existing sessions of kept identities work', async () => {
            const pid = gw.pid;
            const upstreamPid = await gw.upstreamPid();
            const sa = (await gw.initialize(key(alice))).sessionId;
            const sb = (await gw.initialize(key(bob))).sessionId;
            assertRefused(await gw.mcp(PING, { headers: key(carol) }), 401, gw.challenge('invalid_token'), 'carol before');

            gw.writeConfig(keysConfig(alice, carol));
            const log = await gw.reload();
            assert.match(log, /SIGHUP: reloading/);
            assert.match(log, /reloaded: authentication updated/);

            assert.equal(gw.pid, pid);
            assert.equal(gw.exit, null);
            assert.equal(await gw.upstreamPid(), upstreamPid, 'the upstream was not restarted');
            const c = await gw.initialize(key(carol));
            assert.equal(c.status, 200, 'the new key works');
            assertRefused(await gw.mcp(PING, { headers: key(bob) }), 401, gw.challenge('invalid_token'), 'bob removed');
            assertRefused(await gw.toolsList(sb, key(bob)), 401, gw.challenge('invalid_token'), "bob's session is no way in");
            const ta = await gw.toolsList(sa, key(alice));
            assert.equal(ta.status, 200, "alice's session survived the reload");
            assert.equal((await gw.toolsList(sa, key(carol))).status, 404, 'still bound to alice');
        });

        test("alice's key replaced: the old key is 401, the new key reaches alice's existing session", async () => {
            const sa = (await gw.initialize(key(alice))).sessionId;
            const alice2 = keygen('alice');
            gw.writeConfig(keysConfig(alice2, carol));
            await gw.reload();
            assertRefused(await gw.toolsList(sa, key(alice)), 401, gw.challenge('invalid_token'), 'old alice key');
            assert.equal((await gw.toolsList(sa, { authorization: `Bearer ${alice2.key}` })).status, 200);
            alice = alice2;
        });

        test('a request in flight finishes on the configuration it started with', async () => {
            const dave = keygen('dave');
            gw.writeConfig(keysConfig(alice, carol, dave));
            await gw.reload();
            const { sessionId } = await gw.initialize(key(dave));
            const call = gw.mcp(
                { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 1.2, steps: 2 } } },
                { headers: key(dave), sessionId, protocolVersion: '2025-11-25' }
            );
            // Authenticated and forwarded: the upstream has it.
            await waitFor(() => readTap(path.join(tapDir, 'tap.jsonl')).some(m => m.method === 'tools/call' && m.params?.name === 'trigger-long-running-operation'), {
                timeoutMs: 10000,
                message: 'the tools/call to reach the upstream'
            });
            gw.writeConfig(keysConfig(alice, carol)); // dave removed
            await gw.reload();
            const r = await call;
            assert.equal(r.status, 200, r.text);
            assert.match(JSON.stringify(r.message), /Long running operation completed/);
            assertRefused(await gw.toolsList(sessionId, key(dave)), 401, gw.challenge('invalid_token'), 'dave afterwards');
        });

        test('a broken file is refused with an error in the log; the old configuration stays in force', async () => {
            const pid = gw.pid;
            const erin = keygen('erin');
            const good = keysConfig(alice, carol);
            const broken = [
                ['TOML syntax error', () => gw.writeRaw(`[[auth.api_keys]]\nid = "erin"\nkey_hash = "${erin.hash}\n`), /reload: .*mcp-guard\.toml:\d+:\d+: /],
                ['a key hash that is not a SHA-256', () => gw.writeConfig({ auth: { api_keys: [{ id: 'erin', key_hash: 'bm90LWEtaGFzaA==' }] } }), /auth\.api_keys\[0\]\.key_hash: expected the base64 SHA-256/],
                ['duplicate key ids', () => gw.writeConfig({ auth: { api_keys: [{ id: 'erin', key_hash: erin.hash }, { id: 'erin', key_hash: alice.hash }] } }), /duplicate API key id "erin"/],
                ['an unknown key', () => gw.writeConfig({ auth: { api_keys: [{ id: 'erin', key_hash: erin.hash, colour: 'red' }] } }), /colour/],
                ['an [auth.oauth] without the secret its introspection needs', () => gw.writeConfig({ auth: { api_keys: [{ id: 'erin', key_hash: erin.hash }], oauth: { provider: 'custom', client_id: 'x', authorization_url: 'https://a.example/a', token_url: 'https://a.example/t', introspection_url: 'https://a.example/i' } } }), /auth\.oauth\.client_secret: missing required key/],
                ['an empty file (truncated by an editor)', () => gw.writeRaw(''), /no upstream configured/]
            ];
            // /metrics says so too: an alert on mcp_guard_config_last_reload_successful == 0
            const reloadMetrics = async () => {
                const r = await gw.request('/metrics', { headers: key(alice) });
                assert.equal(r.status, 200);
                const v = name => Number((r.body.match(new RegExp(`^${name} (\\S+)$`, 'm')) ?? [])[1]);
                return {
                    ok: v('mcp_guard_config_reloads_total\\{result="success"\\}'),
                    failed: v('mcp_guard_config_reloads_total\\{result="failure"\\}'),
                    last: v('mcp_guard_config_last_reload_successful'),
                    at: v('mcp_guard_config_last_reload_success_timestamp_seconds')
                };
            };
            const before = await reloadMetrics();
            assert.equal(before.last, 1);
            assert.ok(before.at > 1.7e9 && before.at <= Date.now() / 1000, `loaded at ${before.at}`);
            let failed = before.failed;
            for (const [what, write, expectLog] of broken) {
                write();
                const log = await gw.reload({ expect: 'fail' });
                const m = await reloadMetrics();
                assert.deepEqual(m, { ...before, failed: ++failed, last: 0 }, what);
                assert.match(log, /reload failed/, what);
                assert.match(log, expectLog, `${what}: ${log}`);
                assert.equal(gw.pid, pid);
                assert.equal(gw.exit, null, what);
                assert.equal((await gw.initialize(key(alice))).status, 200, `${what}: alice still works`);
                assertRefused(await gw.mcp(PING, { headers: key(erin) }), 401, gw.challenge('invalid_token'), `${what}: erin not added`);
                assertRefused(await gw.mcp(PING), 401, gw.challenge(), `${what}: still authenticating`);
            }
            // A good file afterwards is taken.
            gw.writeConfig({ ...good, auth: { api_keys: [...good.auth.api_keys, { id: 'erin', key_hash: erin.hash }] } });
            await gw.reload();
            assert.equal((await gw.initialize(key(erin))).status, 200);
            const after = await reloadMetrics();
            assert.deepEqual({ ...after, at: 0 }, { ok: before.ok + 1, failed, last: 1, at: 0 });
            assert.ok(after.at > before.at, 'the good reload is the configuration in force now');
        });

        test('a burst of SIGHUPs under load: every request answered, the process survives', async () => {
            const pid = gw.pid;
            const { sessionId } = await gw.initialize(key(alice));
            let stop = false;
            let n = 0;
            const load = (async () => {
                while (!stop) {
                    const r = await gw.toolsList(sessionId, key(alice));
                    assert.equal(r.status, 200, r.text);
                    n++;
                }
            })();
            for (let i = 0; i < 15; i++) {
                gw.signal('SIGHUP');
                await sleep(40);
            }
            await sleep(300);
            stop = true;
            await load;
            assert.ok(n > 5, `${n} requests during the reloads`);
            assert.equal(gw.pid, pid);
            assert.equal(gw.exit, null);
            assert.equal((await gw.initialize(key(alice))).status, 200);
        });
    });

    describe('JWT settings swapped by SIGHUP', { timeout: 60000, concurrency: 1 }, () => {
        const SECRET_A = 'secret-A-0123456789abcdef0123456789abcdef';
        const SECRET_B = 'secret-B-0123456789abcdef0123456789abcdef';
        const hs = (secret, sub) => {
            const input = `${b64uJson({ alg: 'HS256', typ: 'JWT' })}.${b64uJson({ sub, exp: Math.floor(Date.now() / 1000) + 300 })}`;
            return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
        };

        test('simple mode: a new secret replaces the old one (cached tokens of the old secret included)', async () => {
            const gw = await startAuthGateway({ auth: { jwt: { mode: 'simple', secret: SECRET_A } } });
            try {
                const a = hs(SECRET_A, 'alice');
                const { sessionId } = await gw.initialize({ authorization: `Bearer ${a}` });
                assert.ok(sessionId);
                assertRefused(await gw.mcp(PING, { headers: { authorization: `Bearer ${hs(SECRET_B, 'alice')}` } }), 401, gw.challenge('invalid_token'), 'B before');
                gw.writeConfig({ auth: { jwt: { mode: 'simple', secret: SECRET_B } } });
                await gw.reload();
                assertRefused(await gw.toolsList(sessionId, { authorization: `Bearer ${a}` }), 401, gw.challenge('invalid_token'), 'A after');
                const b = hs(SECRET_B, 'alice');
                assert.equal((await gw.toolsList(sessionId, { authorization: `Bearer ${b}` })).status, 200, 'same identity, new secret');
            } finally {
                await gw.stop();
            }
        });

        test('jwks mode: switching to another IdP (jwks_url, issuer) takes its keys', async () => {
            const idp1 = await startIdp();
            const idp2 = await startIdp();
            let gw;
            try {
                const cfg = (idp, port) => ({ auth: { jwt: { mode: 'jwks', jwks_url: idp.jwksUrl, allow_private_networks: true, issuer: idp.issuer, audience: `http://127.0.0.1:${port}/mcp` } } });
                gw = await startAuthGateway(port => cfg(idp1, port));
                const t1 = await idp1.getToken({ alg: 'ES256', resource: gw.resource });
                const t2 = await idp2.getToken({ alg: 'EdDSA', resource: gw.resource });
                assert.equal((await gw.initialize({ authorization: `Bearer ${t1}` })).status, 200);
                assertRefused(await gw.mcp(PING, { headers: { authorization: `Bearer ${t2}` } }), 401, gw.challenge('invalid_token'), 'idp2 before');
                await idp2.resetStats();
                gw.writeConfig(cfg(idp2, gw.port));
                await gw.reload();
                const r = await gw.initialize({ authorization: `Bearer ${t2}` });
                assert.equal(r.status, 200, `${r.response?.text}\n${gw.tail()}`);
                assert.ok((await idp2.stats()).jwks >= 1);
                assertRefused(await gw.mcp(PING, { headers: { authorization: `Bearer ${t1}` } }), 401, gw.challenge('invalid_token'), 'idp1 after');
            } finally {
                await gw?.stop();
                await idp1.close();
                await idp2.close();
            }
        });
    });

    describe('reloads in JWKS mode', { timeout: 60000, concurrency: 1 }, () => {
        test('a burst of SIGHUPs while JWKS fetches are slow: old fetches are dropped safely, JWT keeps working', async () => {
            const idp = await startIdp();
            let gw;
            try {
                gw = await startAuthGateway(port => ({ auth: { jwt: { mode: 'jwks', jwks_url: idp.jwksUrl, allow_private_networks: true, issuer: idp.issuer, audience: `http://127.0.0.1:${port}/mcp` } } }));
                const tokens = await Promise.all(['RS256', 'ES256', 'EdDSA'].map(alg => idp.getToken({ alg, resource: gw.resource })));
                assert.equal((await gw.initialize(bearer(tokens[0]))).status, 200);
                await idp.delayJwks(400);
                const pending = [];
                for (let i = 0; i < 10; i++) {
                    gw.signal('SIGHUP');
                    await sleep(60);
                    // Requests that start now wait for the newest context's fetch.
                    pending.push(gw.initialize(bearer(tokens[i % 3])));
                }
                const results = await Promise.all(pending);
                for (const r of results) assert.equal(r.status, 200, r.response?.text);
                await idp.delayJwks(0);
                assert.equal((await gw.initialize(bearer(tokens[1]))).status, 200);
                assert.equal(gw.exit, null);
                assert.doesNotMatch(gw.stderr, /reload failed/);
            } finally {
                await gw?.stop();
                await idp.close();
            }
        });
    });

    describe('what a reload must not lose', { timeout: 60000, concurrency: 1 }, () => {
        test('the JWKS keys already fetched, when the IdP is down at the time of the SIGHUP', async () => {
            const idp = await startIdp();
            let gw;
            try {
                const ops = keygen('ops');
                const cfg = (port, keys) => ({
                    auth: { api_keys: keys.map(k => ({ id: k.id, key_hash: k.hash })), jwt: { mode: 'jwks', jwks_url: idp.jwksUrl, allow_private_networks: true, issuer: idp.issuer, audience: `http://127.0.0.1:${port}/mcp` } }
                });
                gw = await startAuthGateway(port => cfg(port, [ops]));
                const seen = await idp.getToken({ alg: 'ES256', resource: gw.resource });
                const unseen = await idp.getToken({ alg: 'EdDSA', resource: gw.resource, client: 'alice' });
                assert.equal((await gw.initialize(bearer(seen))).status, 200);
                await idp.stop();
                // An unrelated change (a new API key) while the IdP is unreachable.
                const ops2 = keygen('ops2');
                gw.writeConfig(cfg(gw.port, [ops, ops2]));
                await gw.reload();
                assert.equal((await gw.initialize(key(ops2))).status, 200, 'the new key works');
                const r = await gw.initialize(bearer(unseen));
                assert.equal(r.status, 200, `a valid token after the reload (the IdP is down, its keys were known): got ${r.status} ${r.response?.text}`);
                const r2 = await gw.initialize(bearer(seen));
                assert.equal(r2.status, 200, `the token accepted before the reload: got ${r2.status}`);
            } finally {
                await gw?.stop();
                await idp.close();
            }
        });

        test('a reload that removes every provider (loopback) warns like a start without authentication', async () => {
            const k = keygen('solo');
            const gw = await startAuthGateway(keysConfig(k));
            try {
                assertRefused(await gw.mcp(PING), 401, gw.challenge(), 'before');
                gw.writeConfig({}); // [[auth.api_keys]] deleted by mistake
                const log = await gw.reload({ expect: 'any' });
                if (/reloaded: /.test(log)) {
                    // Accepted (allowed on loopback): anyone may now call the upstream, so the
                    // log must say so as loudly as at start.
                    assert.match(log, /WARN .*no authentication is configured/, `the reload log:\n${log}`);
                }
            } finally {
                await gw.stop();
            }
        });

        test('the listening port given by run --port: the resource URL (metadata, challenge) keeps naming it', async () => {
            const gw = await startAuthGateway({ auth: { jwt: { mode: 'simple', secret: 'secret-C-0123456789abcdef0123456789abcdef' } } }, { portOverride: true });
            try {
                const check = async when => {
                    const m = await gw.request('/.well-known/oauth-protected-resource/mcp');
                    assert.equal(m.status, 200, when);
                    assert.equal(m.json.resource, `http://127.0.0.1:${gw.port}/mcp`, `${when}: metadata resource`);
                    assertRefused(await gw.mcp(PING), 401, gw.challenge(), `${when}: challenge`);
                };
                await check('before the reload');
                await gw.reload();
                await check('after a reload of the unchanged file');
            } finally {
                await gw.stop();
            }
        });
    });

    describe('TLS certificates swapped by SIGHUP', { timeout: 60000, concurrency: 1 }, () => {
        let pki;
        let gw;
        let alice;

        before(async () => {
            pki = createPki();
            alice = keygen('alice');
            gw = await startAuthGateway(
                { server: { tls: { enabled: true, cert_path: pki.server.cert, key_path: pki.server.key } }, ...keysConfig(alice) },
                { client: { ca: pki.read(pki.ca.cert) } }
            );
        });

        after(async () => {
            await gw?.stop();
            pki?.cleanup();
        });

        const serialOf = async () => {
            const r = await gw.request('/health');
            assert.equal(r.status, 200);
            return parseInt(r.peerCert.serialNumber, 16);
        };

        test('new connections see the new certificate; a connection opened before keeps working', async () => {
            assert.equal(await serialOf(), pki.server.serial);
            // A keep-alive connection from before the reload.
            const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: pki.read(pki.ca.cert), servername: 'localhost' });
            const viaAgent = () =>
                new Promise((resolve, reject) => {
                    const req = https.request({ host: '127.0.0.1', port: gw.port, path: '/health', agent }, res => {
                        const socket = res.socket;
                        const serial = parseInt(socket.getPeerCertificate().serialNumber, 16);
                        res.resume();
                        res.on('end', () => resolve({ status: res.statusCode, serial, socket }));
                    });
                    req.on('error', reject);
                    req.end();
                });
            try {
                const before1 = await viaAgent();
                assert.equal(before1.serial, pki.server.serial);

                const next = pki.issueServer('server-next', 4242);
                gw.writeConfig({ server: { tls: { enabled: true, cert_path: next.cert, key_path: next.key } }, ...keysConfig(alice) });
                const log = await gw.reload();
                assert.match(log, /reloaded: authentication and TLS certificates updated/);
                assert.equal(await serialOf(), 4242, 'a new connection gets the new certificate');

                const again = await viaAgent();
                assert.equal(again.socket, before1.socket, 'the same connection was reused');
                assert.equal(again.status, 200);
                assert.equal(again.serial, pki.server.serial, 'the old connection keeps its session');

                // Files replaced in place (certbot style) are re-read too.
                const third = pki.issueServer('server-third', 4343);
                copyFileSync(third.cert, next.cert);
                copyFileSync(third.key, next.key);
                await gw.reload();
                assert.equal(await serialOf(), 4343);
                // Requests still work over the new certificate.
                const r = await gw.initialize(key(alice));
                assert.equal(r.status, 200, r.response?.text);
            } finally {
                agent.destroy();
            }
        });

        test('a missing or mismatched certificate is refused; the current one stays', async () => {
            const current = await serialOf();
            const other = pki.issueServer('server-other', 4444);
            for (const [what, tlsCfg, re] of [
                ['missing file', { cert_path: `${pki.dir}/nope.crt`, key_path: other.key }, /cert_path/],
                ['key of another certificate', { cert_path: other.cert, key_path: pki.server.key }, /private key does not match certificate|key values mismatch/]
            ]) {
                gw.writeConfig({ server: { tls: { enabled: true, ...tlsCfg } }, ...keysConfig(alice) });
                const log = await gw.reload({ expect: 'fail' });
                assert.match(log, re, `${what}: ${log}`);
                assert.equal(await serialOf(), current, what);
                assert.equal((await gw.initialize(key(alice))).status, 200, what);
            }
        });
    });
});
