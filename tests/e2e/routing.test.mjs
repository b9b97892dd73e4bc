// Several upstreams routed by path ([[upstream.servers]]): the real
// server-everything and the real server-filesystem behind one gateway, each
// at its path_prefix and at /mcp/<name>, used by the real SDK client over
// both protocol eras. A session belongs to the endpoint that created it,
// unknown paths reveal nothing, /routes needs the same credentials as the
// endpoints, /health and /ready report every upstream (with `required`), and
// configuration conflicts are refused with their position.

import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { EVERYTHING_JS, REPO_ROOT, closeSdk, postMcp, postModern, runCli, tempDir, waitFor, withTimeout } from './helpers.mjs';
import { keygen, startAuthGateway, toTomlDeep } from './idp/auth-gateway.mjs';

const FILESYSTEM_JS = path.join(REPO_ROOT, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');

function everything(name, prefix, extra = {}) {
    return { name, path_prefix: prefix, transport: 'stdio', command: process.execPath, args: [EVERYTHING_JS, 'stdio'], ...extra };
}

function filesystem(name, prefix, root, extra = {}) {
    return { name, path_prefix: prefix, transport: 'stdio', command: process.execPath, args: [FILESYSTEM_JS, root], ...extra };
}

async function sdkAt(url, headers = {}) {
    const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
    const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
    const client = new Client({ name: 'e2e-routing', version: '0.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
    await withTimeout(client.connect(transport), 15000, `SDK connect to ${url}`);
    return { client, transport };
}

const toolNames = r => r.tools.map(t => t.name).sort();

describe('path routing over several upstreams', () => {
    let gw;
    let root;
    let alice;
    const auth = () => ({ 'X-API-Key': alice.key });

    before(async () => {
        alice = keygen('alice');
        root = tempDir('mcp-guard-routing-fs-');
        writeFileSync(path.join(root, 'hello.txt'), 'hello from the filesystem server\n');
        mkdirSync(path.join(root, 'sub'));
        gw = await startAuthGateway(
            { auth: { api_keys: [{ id: 'alice', key_hash: alice.hash }] } },
            {
                upstream: {
                    servers: [
                        everything('everything', '/everything'),
                        filesystem('files', '/files', root),
                        // A longer prefix below another one wins.
                        everything('deep', '/files/deep')
                    ]
                }
            }
        );
    });

    after(async () => {
        await gw?.stop();
    });

    test('each server answers at its prefix and at /mcp/<name> with its own tools', async () => {
        const a = await sdkAt(`${gw.base}/everything`, auth());
        const b = await sdkAt(`${gw.base}/files`, auth());
        const c = await sdkAt(`${gw.base}/mcp/files`, auth());
        try {
            const ta = toolNames(await a.client.listTools());
            const tb = toolNames(await b.client.listTools());
            assert.ok(ta.includes('echo'), ta.join());
            assert.ok(!ta.includes('read_text_file'));
            assert.ok(tb.includes('read_text_file'), tb.join());
            assert.ok(!tb.includes('echo'));
            assert.deepEqual(toolNames(await c.client.listTools()), tb);
            const echo = await a.client.callTool({ name: 'echo', arguments: { message: 'routed' } });
            assert.match(echo.content[0].text, /routed/);
            const read = await b.client.callTool({ name: 'read_text_file', arguments: { path: path.join(root, 'hello.txt') } });
            assert.match(read.content[0].text, /hello from the filesystem server/);
            assert.equal(b.client.getServerVersion().name.includes('filesystem') || b.client.getServerVersion().name.includes('secure'), true);
        } finally {
            await closeSdk(a);
            await closeSdk(b);
            await closeSdk(c);
        }
    });

    test('the longest prefix wins, on segment boundaries only', async () => {
        const deep = await sdkAt(`${gw.base}/files/deep`, auth());
        const below = await sdkAt(`${gw.base}/files/some/where`, auth());
        try {
            assert.ok(toolNames(await deep.client.listTools()).includes('echo'));
            assert.ok(toolNames(await below.client.listTools()).includes('read_text_file'));
        } finally {
            await closeSdk(deep);
            await closeSdk(below);
        }
        // "/filesx" is not below "/files".
        const r = await postMcp(gw, { jsonrpc: '2.0', id: 1, method: 'ping' }, { url: `${gw.base}/filesx`, headers: auth() });
        assert.equal(r.status, 404);
    });

    test('2026-07-28 requests are routed the same way', async () => {
        const r = await postModern({ mcpUrl: `${gw.base}/files` }, 'tools/list', {}, { headers: auth() });
        assert.equal(r.status, 200, r.text);
        assert.ok(r.message.result.tools.some(t => t.name === 'list_directory'));
        const e = await postModern({ mcpUrl: `${gw.base}/mcp/everything` }, 'tools/call', { name: 'echo', arguments: { message: 'm' } }, { name: 'echo', headers: auth() });
        assert.equal(e.status, 200, e.text);
        assert.match(e.message.result.content[0].text, /m/);
    });

    test('a session exists only on the endpoint that created it', async () => {
        const g = { mcpUrl: `${gw.base}/everything` };
        const { sessionId } = await rawInitializeWith(g, auth());
        const here = await postMcp(g, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { sessionId, headers: auth() });
        assert.equal(here.status, 200);
        for (const other of ['/files', '/mcp/files', '/files/deep']) {
            const there = await postMcp(g, { jsonrpc: '2.0', id: 3, method: 'tools/list' }, { sessionId, headers: auth(), url: `${gw.base}${other}` });
            assert.equal(there.status, 404, other);
            assert.match(there.message.error.message, /Session not found/);
        }
    });

    test('unknown paths get 404 with a body that names nothing', async () => {
        for (const p of ['/mcp', '/mcp/nope', '/nope', '/mcp/everything/x']) {
            const r = await gw.get(p, { headers: auth() });
            assert.equal(r.status, 404, p);
            assert.equal(r.json.error.message, 'Not Found', p);
            assert.ok(!/everything|files|deep/.test(r.body), r.body);
        }
    });

    test('GET /routes lists names, paths, transports and state; it needs credentials', async () => {
        const anon = await gw.get('/routes');
        assert.equal(anon.status, 401);
        const r = await gw.get('/routes', { headers: auth() });
        assert.equal(r.status, 200, r.body);
        const byName = Object.fromEntries(r.json.routes.map(x => [x.name, x]));
        assert.deepEqual(Object.keys(byName).sort(), ['deep', 'everything', 'files']);
        assert.deepEqual(byName.files.paths, ['/files', '/mcp/files']);
        assert.equal(byName.files.transport, 'stdio');
        assert.equal(byName.files.state, 'up');
        assert.equal(byName.files.required, true);
        const post = await gw.get('/routes', { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: '{}' });
        assert.equal(post.status, 405);
    });

    test('/health reports every upstream', async () => {
        const h = await gw.health();
        assert.equal(h.status, 'ok');
        assert.deepEqual(h.upstreams.map(u => u.name), ['everything', 'files', 'deep']);
        assert.ok(h.upstreams.every(u => u.status === 'up' && u.required === true));
    });

    test('the 2024-11-05 HTTP+SSE transport is served below each prefix', async () => {
        const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
        const { SSEClientTransport } = await import('@modelcontextprotocol/sdk/client/sse.js');
        const client = new Client({ name: 'e2e-routing-sse', version: '0.0.0' }, { capabilities: {} });
        const transport = new SSEClientTransport(new URL(`${gw.base}/files/sse`), {
            requestInit: { headers: auth() },
            eventSourceInit: {
                fetch: (u, init) => {
                    const h = new Headers(init?.headers);
                    for (const [k, v] of Object.entries(auth())) h.set(k, v);
                    return fetch(u, { ...init, headers: h });
                }
            }
        });
        await withTimeout(client.connect(transport), 15000, 'SSE connect');
        try {
            assert.ok(toolNames(await client.listTools()).includes('read_text_file'));
        } finally {
            await client.close();
        }
    });

    test('check-upstream checks every server, or only --server NAME', async () => {
        const all = runCli(['--config', gw.configPath, 'check-upstream'], { timeoutMs: 60000 });
        assert.equal(all.status, 0, all.stdout + all.stderr);
        assert.match(all.stdout, /^everything: OK/m);
        assert.match(all.stdout, /^files: OK/m);
        assert.match(all.stdout, /^deep: OK/m);
        const one = runCli(['--config', gw.configPath, 'check-upstream', '--server', 'files'], { timeoutMs: 60000 });
        assert.equal(one.status, 0, one.stdout + one.stderr);
        assert.match(one.stdout, /^files: OK/m);
        assert.doesNotMatch(one.stdout, /everything|deep/);
        const none = runCli(['--config', gw.configPath, 'check-upstream', '--server', 'nope']);
        assert.equal(none.status, 2, none.stdout + none.stderr);
        assert.match(none.stderr, /no upstream is named "nope"/);
    });
});

/** A raw legacy initialize against another base URL, with extra headers. */
async function rawInitializeWith(g, headers) {
    const init = await postMcp(
        g,
        { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'e2e', version: '0' } } },
        { headers }
    );
    assert.equal(init.status, 200, init.text);
    const sessionId = init.headers.get('mcp-session-id');
    const ack = await postMcp(g, { jsonrpc: '2.0', method: 'notifications/initialized' }, { sessionId, headers, protocolVersion: '2025-11-25' });
    assert.equal(ack.status, 202);
    return { sessionId };
}

describe('required and optional upstreams', () => {
    test('an optional upstream that fails degrades /health but not /ready; a required one blocks /ready', async () => {
        const broken = { name: 'broken', path_prefix: '/broken', transport: 'stdio', command: process.execPath, args: ['-e', 'process.exit(3)'] };
        const gw = await startAuthGateway({}, { upstream: { servers: [everything('everything', '/everything'), { ...broken, required: false }] } });
        try {
            assert.equal(await gw.readyStatus(), 200);
            const h = await gw.health();
            assert.equal(h.status, 'degraded');
            const b = h.upstreams.find(u => u.name === 'broken');
            assert.equal(b.required, false);
            assert.notEqual(b.status, 'up');
        } finally {
            await gw.stop();
        }
        const gw2 = await startAuthGateway({}, { upstream: { servers: [everything('everything', '/everything'), broken] }, ready: false });
        try {
            // Once the required server that works is up, the broken one is what /ready names.
            await waitFor(async () => (await gw2.get('/health')).json?.upstreams?.find(u => u.name === 'everything')?.status === 'up', { message: 'everything up' });
            const r = await gw2.get('/ready');
            assert.equal(r.status, 503);
            assert.match(r.json.reason, /^upstream broken: /);
        } finally {
            await gw2.stop();
        }
    });
});

describe('routing conflicts are configuration errors', () => {
    const validate = text => {
        const dir = tempDir('mcp-guard-routing-cfg-');
        const file = path.join(dir, 'mcp-guard.toml');
        writeFileSync(file, text);
        return { file, r: runCli(['--config', file, 'validate']) };
    };
    const servers = list => toTomlDeep({ server: { host: '127.0.0.1', port: 1 }, upstream: { servers: list } });

    test('a duplicate path_prefix', () => {
        const { file, r } = validate(servers([everything('a', '/x'), everything('b', '/x')]));
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: error: upstream\\.servers\\[1\\]\\.path_prefix: duplicate path_prefix "/x"`));
    });

    test('a path_prefix the gateway serves itself, or another server\'s /mcp/<name>', () => {
        for (const [prefix, why] of [
            ['/health', /the gateway serves \/health itself/],
            ['/routes', /the gateway serves \/routes itself/],
            ['/.well-known/x', /\/\.well-known are the gateway's own/],
            ['/mcp/a', /where server "a" is also reachable/]
        ]) {
            const { r } = validate(servers([everything('a', '/a'), everything('b', prefix)]));
            assert.notEqual(r.status, 0, prefix);
            assert.match(r.stderr, /:\d+:\d+: error: upstream\.servers\[1\]\.path_prefix: /, prefix);
            assert.match(r.stderr, why, prefix);
        }
    });

    test('strip_prefix is accepted with a warning', () => {
        const { r } = validate(servers([everything('a', '/a', { strip_prefix: true })]));
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr + r.stdout, /strip_prefix has no effect/);
    });
});
