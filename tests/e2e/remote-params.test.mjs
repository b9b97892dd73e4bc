// SEP-2243 `x-mcp-header` parameters through a Streamable HTTP upstream.
//
// A 2026-07-28 tools/call whose tool mirrors an argument into an
// `Mcp-Param-{Name}` header must reach a remote upstream with that header:
// the upstream validates it against the body exactly as the gateway does
// (Streamable HTTP, "Server Behavior for Custom Headers") and answers 400
// (-32020) when it is missing. The test upstream is
// tests/conformance/upstream.mjs served over HTTP (its test_x_mcp_header tool
// mirrors `region` into Mcp-Param-Region); the conformance suite's
// http-custom-header-server-validation scenario found this, and this is its
// smallest form. Direct access is checked first so a failure through the
// gateway cannot be the upstream's.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { closeSdk, connectSdk, postModern, REPO_ROOT, startGateway, withTimeout } from './helpers.mjs';

const UPSTREAM = path.join(REPO_ROOT, 'tests/conformance/upstream.mjs');

/** tests/conformance/upstream.mjs over Streamable HTTP on 127.0.0.1: {proc, url, port}. */
async function startUpstream() {
    const proc = spawn(process.execPath, [UPSTREAM, '--http', '--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', d => (stderr += d));
    const url = await withTimeout(
        new Promise((resolve, reject) => {
            let out = '';
            proc.stdout.on('data', d => {
                out += d;
                const m = /listening on (http:\/\/127\.0\.0\.1:(\d+)\/mcp)/.exec(out);
                if (m) resolve(m[1]);
            });
            proc.once('exit', code => reject(new Error(`upstream exited (${code}): ${stderr}`)));
        }),
        15000,
        'upstream start'
    );
    return { proc, url, port: Number(new URL(url).port) };
}

const call = (target, region, headerValue) =>
    postModern(
        target,
        'tools/call',
        { name: 'test_x_mcp_header', arguments: { region } },
        { name: 'test_x_mcp_header', headers: headerValue === undefined ? {} : { 'mcp-param-region': headerValue } }
    );

describe('x-mcp-header parameters through a Streamable HTTP upstream', { timeout: 60000 }, () => {
    let up, gw, direct;
    before(async () => {
        up = await startUpstream();
        direct = { mcpUrl: up.url };
        gw = await startGateway({ upstream: { transport: 'http', url: up.url, allow_private_networks: true } });
        // The gateway learns the tool's annotations from a tools/list answer.
        const list = await postModern(gw, 'tools/list', {});
        assert.equal(list.status, 200);
    });
    after(async () => {
        if (gw) await gw.stop();
        if (up && up.proc.exitCode === null) {
            up.proc.kill('SIGTERM');
            await new Promise(resolve => up.proc.once('exit', resolve));
        }
    });

    for (const [what, region, header] of [
        ['a plain value', 'Hello', 'Hello'],
        ['a Base64 value (=?base64?...?=)', 'Hello', '=?base64?SGVsbG8=?='],
        ['a value that only looks like Base64', 'SGVsbG8=', 'SGVsbG8=']
    ]) {
        test(`${what}: the upstream accepts it directly and through mcp-guard`, async () => {
            const d = await call(direct, region, header);
            assert.equal(d.status, 200, `direct: ${d.text}`);
            const r = await call(gw, region, header);
            assert.equal(r.status, 200, `through mcp-guard: ${r.text}`);
            assert.equal(r.message?.result?.content?.[0]?.text, `region=${region}`);
        });
    }

    test('a 2025-11-25 SDK client calls the same tool (no Mcp-Param-* of its own)', async () => {
        const c = await connectSdk(gw);
        try {
            const { tools } = await c.client.listTools();
            assert.ok(tools.some(t => t.name === 'test_x_mcp_header'));
            const r = await c.client.callTool({ name: 'test_x_mcp_header', arguments: { region: 'Grüße' } });
            assert.equal(r.isError, undefined, JSON.stringify(r));
            assert.equal(r.content[0].text, 'region=Grüße');
        } finally {
            await closeSdk(c);
        }
    });

    test('a non-ASCII value travels Base64-encoded', async () => {
        const r = await call(gw, 'Grüße', `=?base64?${Buffer.from('Grüße').toString('base64')}?=`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.message?.result?.content?.[0]?.text, 'region=Grüße');
    });

    test('a missing header is still refused by the gateway itself (400, -32020)', async () => {
        const r = await call(gw, 'Hello', undefined);
        assert.equal(r.status, 400);
        assert.equal(r.message?.error?.code, -32020);
    });
});
