// The modern era (protocol 2026-07-28): stateless requests that carry their
// version in params._meta and mirror method/name in headers, served without
// sessions; header validation; subscriptions/listen; a legacy SDK client and
// modern requests on one gateway at once; the v2 SDK client in modern mode.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import {
    LEGACY_VERSION,
    MODERN_VERSION,
    RawConn,
    closeSdk,
    connectSdk,
    httpRequest,
    modernRequest,
    postMcp,
    postModern,
    readSseUntil,
    readTap,
    startGateway,
    tapUpstream,
    tempDir,
    waitFor,
    withTimeout
} from './helpers.mjs';

const LEGACY_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'];
const b64 = s => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;

/** Opens subscriptions/listen on a raw connection; returns the conn after the head. */
async function openListen(gw, notifications, { id = 'listen-1' } = {}) {
    const { body, headers } = modernRequest('subscriptions/listen', { notifications }, { id });
    const conn = await RawConn.open(gw.port);
    await conn.write(
        httpRequest('POST', '/mcp', {
            port: gw.port,
            headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
            body: JSON.stringify(body)
        })
    );
    const head = await conn.readHead(10000);
    return { conn, head };
}

/** The next non-comment SSE message on a stream. */
async function nextMessage(conn, timeoutMs = 10000, pred = () => true) {
    let found;
    await readSseUntil(
        conn,
        ev => {
            if (ev.comment || !ev.data || !pred(ev.data)) return false;
            found = ev.data;
            return true;
        },
        timeoutMs
    );
    if (!found) throw new Error('the stream ended without the expected message');
    return found;
}

describe('modern era (2026-07-28)', { timeout: 120000 }, () => {
    let gw;
    let tap;

    before(async () => {
        const dir = tempDir();
        tap = path.join(dir, 'tap.log');
        gw = await startGateway({ dir, upstream: tapUpstream(tap) });
    });

    after(async () => {
        if (gw) await gw.stop();
    });

    test('server/discover: complete result, all versions, capabilities, serverInfo in _meta', async () => {
        const r = await postModern(gw, 'server/discover', {}, { id: 'disc' });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get('mcp-session-id'), null, 'stateless: no session');
        const { id, result } = r.message;
        assert.equal(id, 'disc');
        assert.equal(result.resultType, 'complete');
        for (const v of [MODERN_VERSION, ...LEGACY_VERSIONS]) assert.ok(result.supportedVersions.includes(v), `${v} in ${result.supportedVersions}`);
        assert.ok(result.capabilities.tools);
        assert.ok(result.capabilities.resources);
        assert.equal(result._meta['io.modelcontextprotocol/serverInfo'].name, 'mcp-servers/everything');
        assert.equal((await gw.health()).sessions, 0, 'no session was created');
    });

    test('tools/list and tools/call (plain and base64 Mcp-Name) answer with resultType "complete"', async () => {
        const list = await postModern(gw, 'tools/list', {}, { id: 2 });
        assert.equal(list.status, 200, list.text);
        assert.equal(list.message.id, 2);
        assert.equal(list.message.result.resultType, 'complete');
        assert.ok(list.message.result.tools.some(t => t.name === 'echo'));

        const call = await postModern(gw, 'tools/call', { name: 'echo', arguments: { message: 'modern ✓' } }, { id: 3, name: 'echo' });
        assert.equal(call.status, 200, call.text);
        assert.equal(call.message.result.resultType, 'complete');
        assert.deepEqual(call.message.result.content, [{ type: 'text', text: 'Echo: modern ✓' }]);

        const sentinel = await postModern(gw, 'tools/call', { name: 'echo', arguments: { message: 'b64' } }, { id: 4, name: b64('echo') });
        assert.equal(sentinel.status, 200, sentinel.text);
        assert.equal(sentinel.message.result.content[0].text, 'Echo: b64');

        // The io.modelcontextprotocol/ _meta keys are not forwarded to the legacy upstream.
        const up = readTap(tap).find(m => m.method === 'tools/call' && m.params?.arguments?.message === 'modern ✓');
        assert.ok(up, 'the upstream got the call');
        assert.ok(!JSON.stringify(up.params).includes('io.modelcontextprotocol/'), JSON.stringify(up.params));
    });

    test('resources/read and prompts/get with Mcp-Name (plain and base64 for a non-ASCII value)', async () => {
        const uri = 'demo://resource/dynamic/text/3';
        const read = await postModern(gw, 'resources/read', { uri }, { id: 5, name: uri });
        assert.equal(read.status, 200, read.text);
        assert.equal(read.message.result.contents[0].uri, uri);
        assert.equal(read.message.result.resultType, 'complete');

        const read64 = await postModern(gw, 'resources/read', { uri }, { id: 6, name: b64(uri) });
        assert.equal(read64.status, 200, read64.text);

        const prompt = await postModern(gw, 'prompts/get', { name: 'args-prompt', arguments: { city: 'Zürich' } }, { id: 7, name: 'args-prompt' });
        assert.equal(prompt.status, 200, prompt.text);
        assert.match(prompt.message.result.messages[0].content.text, /Zürich/);

        // A name that is not plain ASCII must use the sentinel form.
        const odd = 'prömpt-☃';
        const r = await postModern(gw, 'prompts/get', { name: odd }, { id: 8, name: b64(odd) });
        assert.equal(r.status, 200, `the header checks pass; the upstream answers: ${r.text}`);
        assert.ok(r.message.error, 'unknown prompt is a JSON-RPC error from the upstream');
    });

    test('progress on a modern request streams the client\'s own token', async () => {
        const r = await postModern(
            gw,
            'tools/call',
            { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
            { id: 'lro', name: 'trigger-long-running-operation', meta: { progressToken: 'modern-token' } }
        );
        assert.equal(r.status, 200, r.text);
        assert.match(r.headers.get('content-type'), /^text\/event-stream/);
        const progress = r.events.filter(e => e.data.method === 'notifications/progress').map(e => e.data.params);
        assert.deepEqual(
            progress.map(p => [p.progressToken, p.progress]),
            [
                ['modern-token', 1],
                ['modern-token', 2],
                ['modern-token', 3]
            ]
        );
        assert.equal(r.message.id, 'lro');
        assert.equal(r.message.result.resultType, 'complete');
    });

    test('header/body mismatches are rejected with 400 and -32020', async () => {
        const cases = [
            ['Mcp-Method differs', modernRequest('tools/list', {}, { headers: { 'mcp-method': 'tools/call' } })],
            ['Mcp-Method missing', modernRequest('tools/list', {}, { headers: { 'mcp-method': null } })],
            ['Mcp-Name differs', modernRequest('tools/call', { name: 'echo', arguments: { message: 'x' } }, { name: 'get-sum' })],
            ['Mcp-Name missing', modernRequest('tools/call', { name: 'echo', arguments: { message: 'x' } })],
            ['Mcp-Name base64 differs', modernRequest('tools/call', { name: 'echo', arguments: { message: 'x' } }, { name: b64('ech0') })],
            ['Mcp-Name malformed base64', modernRequest('tools/call', { name: 'echo', arguments: { message: 'x' } }, { name: '=?base64?%%%?=' })],
            ['resources/read Mcp-Name differs', modernRequest('resources/read', { uri: 'demo://a' }, { name: 'demo://b' })],
            ['MCP-Protocol-Version differs from _meta', modernRequest('tools/list', {}, { headers: { 'mcp-protocol-version': LEGACY_VERSION } })],
            ['MCP-Protocol-Version missing', modernRequest('tools/list', {}, { headers: { 'mcp-protocol-version': null } })]
        ];
        for (const [what, { body, headers }] of cases) {
            const r = await postMcp(gw, body, { headers });
            assert.equal(r.status, 400, `${what}: ${r.text}`);
            assert.match(r.headers.get('content-type'), /^application\/json/);
            assert.equal(r.json.error.code, -32020, `${what}: ${r.text}`);
            assert.equal(r.json.id, body.id, what);
        }
    });

    test('unsupported versions: 400 with -32022 and data.supported/requested', async () => {
        for (const v of ['2030-01-01', 'nonsense']) {
            const r = await postModern(gw, 'tools/list', {}, { version: v });
            assert.equal(r.status, 400, r.text);
            assert.equal(r.json.error.code, -32022);
            assert.equal(r.json.error.data.requested, v);
            assert.ok(r.json.error.data.supported.includes(MODERN_VERSION));
        }
        // A legacy version in _meta: that era has no per-request metadata.
        const legacy = await postModern(gw, 'tools/list', {}, { version: LEGACY_VERSION });
        assert.equal(legacy.status, 400, legacy.text);
        assert.equal(legacy.json.error.code, -32022);
    });

    test('a 2026 header without the _meta version, or with a session id, is rejected', async () => {
        const noMeta = await postMcp(gw, { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }, { headers: { 'mcp-protocol-version': MODERN_VERSION, 'mcp-method': 'tools/list' } });
        assert.equal(noMeta.status, 400, noMeta.text);
        assert.ok(noMeta.json.error);
        assert.match(noMeta.json.error.message, /protocolVersion/);

        const { body, headers } = modernRequest('tools/list');
        const withSession = await postMcp(gw, body, { headers: { ...headers, 'mcp-session-id': randomBytes(16).toString('hex') } });
        assert.equal(withSession.status, 400, withSession.text);
        assert.match(withSession.json.error.message, /Mcp-Session-Id/);
    });

    test('methods removed in 2026-07-28 answer 404 with -32601', async () => {
        for (const [method, params] of [
            ['initialize', { protocolVersion: MODERN_VERSION, capabilities: {}, clientInfo: { name: 'x', version: '1' } }],
            ['ping', {}],
            ['logging/setLevel', { level: 'debug' }],
            ['resources/subscribe', { uri: 'demo://x' }],
            ['resources/unsubscribe', { uri: 'demo://x' }]
        ]) {
            const r = await postModern(gw, method, params, { id: method });
            assert.equal(r.status, 404, `${method}: ${r.text}`);
            assert.equal(r.json.error.code, -32601, method);
            assert.equal(r.json.id, method);
        }
    });

    test('GET and DELETE without a session id: 405 with Allow', async () => {
        const get = await fetch(gw.mcpUrl, { headers: { accept: 'text/event-stream' } });
        assert.equal(get.status, 405);
        assert.ok(get.headers.get('allow'));
        assert.ok((await get.json()).error);
        const del = await fetch(gw.mcpUrl, { method: 'DELETE' });
        assert.equal(del.status, 405);
        assert.ok(del.headers.get('allow'));
        assert.ok((await del.json()).error);
    });

    test('modern notifications are accepted with 202; a modern batch is refused', async () => {
        const { body, headers } = modernRequest('notifications/cancelled', { requestId: 'nothing' }, { notification: true });
        const r = await postMcp(gw, body, { headers });
        assert.equal(r.status, 202, r.text);
        const batch = await postMcp(gw, JSON.stringify([body]), { headers: { 'mcp-protocol-version': MODERN_VERSION } });
        assert.equal(batch.status, 400, batch.text);
    });

    test('closing the connection cancels a modern request upstream', async () => {
        const duration = 20.375;
        const { body, headers } = modernRequest('tools/call', { name: 'trigger-long-running-operation', arguments: { duration, steps: 40 } }, { id: 'gone', name: 'trigger-long-running-operation' });
        const conn = await RawConn.open(gw.port);
        await conn.write(httpRequest('POST', '/mcp', { port: gw.port, headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers }, body: JSON.stringify(body) }));
        const up = await waitFor(() => readTap(tap).find(m => m.method === 'tools/call' && m.params?.arguments?.duration === duration), { timeoutMs: 5000, message: 'the call upstream' });
        assert.equal((await gw.health()).requests_in_flight, 1);
        conn.destroy();
        await waitFor(() => readTap(tap).find(m => m.method === 'notifications/cancelled' && m.params?.requestId === up.id), { timeoutMs: 5000, message: 'notifications/cancelled upstream' });
        await waitFor(async () => (await gw.health()).requests_in_flight === 0, { timeoutMs: 5000, message: 'requests_in_flight = 0' });
    });

    test('subscriptions/listen: acknowledged first (subscriptionId = request id), then only what was asked for', async () => {
        const { conn, head } = await openListen(gw, { toolsListChanged: true, promptsListChanged: false, unknownKind: true }, { id: 'sub-42' });
        try {
            assert.equal(head.status, 200);
            assert.match(head.headers['content-type'], /^text\/event-stream/);
            const ack = await nextMessage(conn);
            assert.equal(ack.method, 'notifications/subscriptions/acknowledged');
            assert.equal(ack.params._meta['io.modelcontextprotocol/subscriptionId'], 'sub-42');
            assert.deepEqual(ack.params.notifications, { toolsListChanged: true });
        } finally {
            conn.destroy();
        }
        // Without text/event-stream in Accept: 406.
        const r = await postModern(gw, 'subscriptions/listen', { notifications: { toolsListChanged: true } }, { accept: 'application/json' });
        assert.equal(r.status, 406, r.text);
    });

    test('mixed eras at once: a legacy SDK session and modern requests, resource updates reach both', async () => {
        const uri = 'demo://resource/static/document/architecture.md';
        const legacy = await connectSdk(gw, { name: 'legacy-in-mixed' });
        const { conn } = await openListen(gw, { resourceSubscriptions: [uri] }, { id: 7 });
        try {
            const ack = await nextMessage(conn);
            assert.equal(ack.params._meta['io.modelcontextprotocol/subscriptionId'], 7);
            assert.deepEqual(ack.params.notifications.resourceSubscriptions, [uri]);

            const updates = [];
            legacy.client.setNotificationHandler(ResourceUpdatedNotificationSchema, n => updates.push(n.params.uri));
            await legacy.client.subscribeResource({ uri });

            // Traffic of both eras interleaved.
            const jobs = [];
            for (let i = 0; i < 15; i++) {
                jobs.push(
                    legacy.client.callTool({ name: 'echo', arguments: { message: `legacy ${i}` } }).then(r => assert.equal(r.content[0].text, `Echo: legacy ${i}`)),
                    postModern(gw, 'tools/call', { name: 'echo', arguments: { message: `modern ${i}` } }, { id: `m${i}`, name: 'echo' }).then(r => {
                        assert.equal(r.message.id, `m${i}`);
                        assert.equal(r.message.result.content[0].text, `Echo: modern ${i}`);
                    })
                );
            }
            await withTimeout(Promise.all(jobs), 20000, 'mixed traffic');

            // The gateway subscribed upstream once for both; server-everything then
            // sends notifications/resources/updated (at once and every 5 s).
            await waitFor(() => readTap(tap).some(m => m.method === 'resources/subscribe' && m.params?.uri === uri), { timeoutMs: 5000, message: 'resources/subscribe upstream' });
            const toggle = await postModern(gw, 'tools/call', { name: 'toggle-subscriber-updates', arguments: {} }, { id: 'toggle-on', name: 'toggle-subscriber-updates' });
            assert.match(toggle.message.result.content[0].text, /Started/);
            try {
                const upd = await nextMessage(conn, 12000, m => m.method === 'notifications/resources/updated');
                assert.equal(upd.params.uri, uri);
                assert.equal(upd.params._meta['io.modelcontextprotocol/subscriptionId'], 7);
                await waitFor(() => updates.includes(uri), { timeoutMs: 12000, message: 'the legacy session\'s resources/updated' });
            } finally {
                const off = await postModern(gw, 'tools/call', { name: 'toggle-subscriber-updates', arguments: {} }, { id: 'toggle-off', name: 'toggle-subscriber-updates' });
                assert.match(off.message.result.content[0].text, /Stopped/);
            }
        } finally {
            conn.destroy();
            await closeSdk(legacy);
        }
        // Both subscribers gone: the gateway unsubscribes upstream.
        await waitFor(() => readTap(tap).some(m => m.method === 'resources/unsubscribe' && m.params?.uri === uri), { timeoutMs: 5000, message: 'resources/unsubscribe upstream' });
        await waitFor(async () => (await gw.health()).requests_in_flight === 0, { timeoutMs: 5000, message: 'requests_in_flight = 0' });
    });

    test(
        'a method the server does not implement: 404 with -32601',
        async () => {
            const r = await postModern(gw, 'unknown/method', {}, { id: 601 });
            assert.equal(r.json?.error?.code, -32601, r.text);
            assert.equal(r.json.id, 601);
            assert.equal(r.status, 404, r.text);
        }
    );

    test(
        '_meta without io.modelcontextprotocol/clientCapabilities: 400 with -32602 (clientInfo stays optional)',
        async () => {
            const noInfo = modernRequest('server/discover', {}, { id: 105 });
            delete noInfo.body.params._meta['io.modelcontextprotocol/clientInfo'];
            const ok = await postMcp(gw, noInfo.body, { headers: noInfo.headers });
            assert.equal(ok.status, 200, `clientInfo is optional: ${ok.text}`);

            const { body, headers } = modernRequest('server/discover', {}, { id: 104 });
            delete body.params._meta['io.modelcontextprotocol/clientCapabilities'];
            const r = await postMcp(gw, body, { headers });
            assert.equal(r.status, 400, r.text);
            assert.equal(r.json.error.code, -32602);
            assert.equal(r.json.id, 104);
        }
    );

    test(
        'header and _meta versions differ, the _meta one unknown: the mismatch wins (-32020, not -32022)',
        async () => {
            const { body, headers } = modernRequest('server/discover', {}, { id: 302 });
            body.params._meta['io.modelcontextprotocol/protocolVersion'] = 'v999.0.0';
            const r = await postMcp(gw, body, { headers });
            assert.equal(r.status, 400, r.text);
            assert.equal(r.json.error.code, -32020, r.text);
        }
    );

    test(
        'no notifications/message on a modern request that did not ask for a log level',
        async () => {
            const toggle = id => postModern(gw, 'tools/call', { name: 'toggle-simulated-logging', arguments: {} }, { id, name: 'toggle-simulated-logging' });
            const on = await toggle('log-on');
            try {
                assert.equal(on.status, 200, on.text);
                assert.match(on.message.result.content[0].text, /Started/);
                const logs = (on.events || []).filter(e => e.data.method === 'notifications/message');
                assert.deepEqual(logs, [], `log messages on the response stream: ${on.text}`);
            } finally {
                const off = await toggle('log-off');
                assert.match(off.message.result.content[0].text, /Stopped/);
            }
        }
    );

    test(
        'cacheable results carry ttlMs and cacheScope (required by the 2026-07-28 schema)',
        async () => {
            const cases = [
                ['server/discover', {}],
                ['tools/list', {}],
                ['prompts/list', {}],
                ['resources/list', {}],
                ['resources/templates/list', {}],
                ['resources/read', { uri: 'demo://resource/dynamic/text/1' }, 'demo://resource/dynamic/text/1']
            ];
            for (const [method, params, name] of cases) {
                const r = await postModern(gw, method, params, { name });
                assert.equal(r.status, 200, `${method}: ${r.text}`);
                const { result } = r.message;
                assert.ok(Number.isInteger(result.ttlMs) && result.ttlMs >= 0, `${method}: ttlMs = ${result.ttlMs}`);
                assert.ok(['public', 'private'].includes(result.cacheScope), `${method}: cacheScope = ${result.cacheScope}`);
            }
        }
    );

    describe('the v2 SDK client (@modelcontextprotocol/client) pinned to 2026-07-28', () => {
        let client;

        before(async () => {
            const { Client, StreamableHTTPClientTransport } = await import('@modelcontextprotocol/client');
            client = new Client({ name: 'e2e-v2', version: '0.0.0' }, { versionNegotiation: { mode: { pin: MODERN_VERSION } } });
            await withTimeout(client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl))), 15000, 'v2 connect');
        });

        after(async () => {
            await client?.close();
        });

        test('connects through server/discover in the modern era', async () => {
            assert.equal(client.getProtocolEra(), 'modern');
            assert.equal(client.getServerVersion().name, 'mcp-servers/everything');
            assert.ok(client.getDiscoverResult().supportedVersions.includes(MODERN_VERSION));
        });

        test('tools/call, progress, prompts/get and completion work', async () => {
            const r = await client.callTool({ name: 'echo', arguments: { message: 'v2' } });
            assert.equal(r.content[0].text, 'Echo: v2');
            const seen = [];
            const lro = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, { onprogress: p => seen.push(p.progress) });
            assert.match(lro.content[0].text, /completed/);
            assert.deepEqual(seen, [1, 2, 3]);
            const p = await client.getPrompt({ name: 'args-prompt', arguments: { city: 'Oslo' } });
            assert.match(p.messages[0].content.text, /Oslo/);
            const c = await client.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'M' } });
            assert.deepEqual(c.completion.values, ['Marketing']);
        });

        test('listen() is acknowledged', async () => {
            const sub = await withTimeout(client.listen({ toolsListChanged: true }), 10000, 'listen');
            try {
                assert.ok(sub.honoredFilter);
            } finally {
                await sub.close();
            }
        });

        test('an aborted call is cancelled (nothing left in flight)', async () => {
            const ac = new AbortController();
            const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 10, steps: 10 } }, { signal: ac.signal });
            setTimeout(() => ac.abort(), 300);
            await assert.rejects(withTimeout(call, 5000, 'aborted v2 call'));
            await waitFor(async () => (await gw.health()).requests_in_flight === 0, { timeoutMs: 5000, message: 'requests_in_flight = 0' });
        });

        test(
            'tools/list, prompts/list and resources/read through the v2 client',
        async () => {
                const { tools } = await client.listTools();
                assert.ok(tools.some(t => t.name === 'echo'));
                const { prompts } = await client.listPrompts();
                assert.ok(prompts.length > 0);
                const read = await client.readResource({ uri: 'demo://resource/dynamic/text/2' });
                assert.equal(read.contents[0].uri, 'demo://resource/dynamic/text/2');
            }
        );
    });
});
