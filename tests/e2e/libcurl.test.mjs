// libcurl is loaded on demand (src/http/client.c dlopen()s libcurl.so.4 when a
// configuration needs outgoing HTTP): a gateway without JWKS never maps it or
// the 27 libraries Debian's libcurl brings; JWKS mode loads it at start or
// at the SIGHUP that turns it on, and fetches with it; an unusable
// libcurl.so.4 is a precise error, never a crash. What is mapped is read from
// /proc/<pid>/maps (a functional check, not a measurement).

import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { freePort, runCli, tempDir, waitFor } from './helpers.mjs';
import { startAuthGateway, toTomlDeep } from './idp/auth-gateway.mjs';
import { generateKeys, makeJws } from './idp/idp.mjs';

const SECRET = 'secret-0123456789abcdef0123456789abcdef';

/** The files mapped by process `pid` whose base name matches `re`. */
function mapped(pid, re) {
    const files = readFileSync(`/proc/${pid}/maps`, 'utf8')
        .split('\n')
        .map(l => l.split(/\s+/)[5]);
    return [...new Set(files.filter(f => f && re.test(path.basename(f))))];
}

const CURL_RE = /^libcurl(-gnutls)?\.so/;

describe('libcurl loaded on demand', { concurrency: 1, timeout: 60000 }, () => {
    let jwksServer;
    let jwksUrl;
    let jwksHits = 0;
    const [key] = generateKeys(['ES256']);
    const token = sub => makeJws({ alg: 'ES256', kid: key.kid, typ: 'JWT' }, { sub, iss: 'libcurl-e2e', aud: 'libcurl-e2e', exp: Math.floor(Date.now() / 1000) + 300 }, 'ES256', key.privateKey);
    const jwks = { mode: 'jwks', jwks_url: '', allow_private_networks: true, issuer: 'libcurl-e2e', audience: ['libcurl-e2e'], algorithms: ['ES256'] };

    before(async () => {
        jwksServer = http.createServer((req, res) => {
            jwksHits++;
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ keys: [key.publicJwk] }));
        });
        await new Promise(resolve => jwksServer.listen(0, '127.0.0.1', resolve));
        jwksUrl = `http://127.0.0.1:${jwksServer.address().port}/jwks.json`;
        jwks.jwks_url = jwksUrl;
    });

    after(async () => {
        await new Promise(resolve => jwksServer?.close(resolve));
    });

    test('a gateway without JWKS does not map libcurl', async () => {
        const gw = await startAuthGateway({ auth: { jwt: { mode: 'simple', secret: SECRET } } });
        try {
            assert.ok(mapped(gw.pid, /^libc\.so/).length, 'maps readable (libc is mapped)');
            assert.deepEqual(mapped(gw.pid, CURL_RE), []);
            assert.deepEqual(mapped(gw.pid, /^libgnutls/), [], 'nor what libcurl depends on');
        } finally {
            await gw.stop();
        }
    });

    test('JWKS mode loads libcurl at start and fetches the keys with it', async () => {
        const before = jwksHits;
        const gw = await startAuthGateway({ auth: { jwt: jwks } });
        try {
            assert.equal(mapped(gw.pid, CURL_RE).length, 1, 'libcurl mapped');
            await waitFor(() => jwksHits > before, { message: 'the JWKS fetched' });
            const init = await gw.initialize({ authorization: `Bearer ${token('alice')}` });
            assert.equal(init.status, 200, init.response?.text);
        } finally {
            await gw.stop();
        }
    });

    test('a SIGHUP that turns JWKS on loads libcurl then', async () => {
        const gw = await startAuthGateway({ auth: { jwt: { mode: 'simple', secret: SECRET } } });
        try {
            assert.deepEqual(mapped(gw.pid, CURL_RE), []);
            const before = jwksHits;
            gw.writeConfig({ auth: { jwt: jwks } });
            await gw.reload();
            assert.equal(mapped(gw.pid, CURL_RE).length, 1, 'libcurl mapped after the reload');
            await waitFor(() => jwksHits > before, { message: 'the JWKS fetched' });
            const init = await gw.initialize({ authorization: `Bearer ${token('bob')}` });
            assert.equal(init.status, 200, init.response?.text);
        } finally {
            await gw.stop();
        }
    });

    test('an unusable libcurl.so.4: run refuses JWKS with the reason, version says so, validate does not need it', async () => {
        const dir = tempDir('mcp-guard-libcurl-');
        // Found first through LD_LIBRARY_PATH; not an ELF file, so dlopen() fails.
        writeFileSync(path.join(dir, 'libcurl.so.4'), 'not a shared object\n');
        const env = { LD_LIBRARY_PATH: dir };
        const config = async auth => {
            const file = path.join(dir, 'mcp-guard.toml');
            writeFileSync(file, toTomlDeep({ server: { host: '127.0.0.1', port: await freePort() }, upstream: { command: 'true' }, auth }));
            return file;
        };

        try {
            const run = runCli(['--config', await config({ jwt: jwks }), 'run'], { env, timeoutMs: 15000 });
            assert.equal(run.status, 3, run.stderr);
            assert.match(run.stderr, /authentication: jwks_url http:\/\/127\.0\.0\.1:\d+\/jwks\.json: cannot load libcurl\.so\.4: .*libcurl\.so\.4: /);

            const v = runCli(['version'], { env });
            assert.equal(v.status, 0, v.stderr);
            assert.match(v.stdout, /libcurl unavailable \(cannot load libcurl\.so\.4: .+\)/);
            const vj = runCli(['version', '--json'], { env });
            assert.equal(vj.status, 0, vj.stderr);
            assert.equal(JSON.parse(vj.stdout).libraries.libcurl, null);

            // validate does not need libcurl.
            const val = runCli(['--config', await config({ jwt: jwks }), 'validate'], { env });
            assert.equal(val.status, 0, val.stderr + val.stdout);

            // Without the system one the real version is printed.
            const real = runCli(['version', '--json']);
            assert.match(JSON.parse(real.stdout).libraries.libcurl, /^\d+\.\d+\.\d+/);
        } finally {
            if (!process.env.E2E_KEEP) rmSync(dir, { recursive: true, force: true });
        }
    });
});
