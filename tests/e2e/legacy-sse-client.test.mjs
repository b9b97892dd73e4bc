// 2024-11-05 HTTP+SSE clients: the real SDK SSEClientTransport opens GET /sse,
// reads the endpoint event and POSTs to /messages?sessionId=...; every POST is
// authenticated, limited and authorized like /mcp, answered 202, and its answer
// travels on the stream. The session belongs to the identity that opened it
// and ends with its stream.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';

import { everythingUpstream, waitFor, withTimeout } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';

async function connectSse(gw, key, { capabilities = {} } = {}) {
    const headers = key ? { Authorization: `Bearer ${key}` } : {};
    const transport = new SSEClientTransport(new URL(`${gw.base}/sse`), {
        requestInit: { headers },
        eventSourceInit: {
            fetch: (url, init) => {
                const h = new Headers(init?.headers);
                for (const [k, v] of Object.entries(headers)) h.set(k, v);
                return fetch(url, { ...init, headers: h });
            }
        }
    });
    const client = new Client({ name: 'sse-e2e', version: '0.0.0' }, { capabilities });
    await withTimeout(client.connect(transport), 15000, 'SSE connect');
    return { client, transport };
}

async function closeSse(c) {
    try {
        await withTimeout(c.client.close(), 5000, 'close');
    } catch {
        /* gone */
    }
}

for (const mode of ['shared', 'per_session']) {
    describe(`2024-11-05 HTTP+SSE clients (${mode} upstream)`, { timeout: 90000 }, () => {
        let gw, alice, bob;
        before(async () => {
            alice = keygen('alice');
            bob = keygen('bob');
            gw = await startAuthGateway(
                { auth: { api_keys: [{ id: 'alice', key_hash: alice.hash }, { id: 'bob', key_hash: bob.hash, allowed_tools: ['echo'] }] } },
                { upstream: everythingUpstream({ mode }) }
            );
        });
        after(async () => {
            if (gw) await gw.stop();
        });

        test('the SDK SSE client initializes, lists, calls and gets progress on its stream', async () => {
            const c = await connectSse(gw, alice.key, { capabilities: { sampling: {} } });
            try {
                c.client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', content: { type: 'text', text: 'sampled over the old transport' }, model: 'e2e', stopReason: 'endTurn' }));
                const { tools } = await c.client.listTools();
                assert.ok(tools.some(t => t.name === 'echo'));
                assert.equal((await c.client.callTool({ name: 'echo', arguments: { message: 'old client' } })).content[0].text, 'Echo: old client');
                const progress = [];
                await c.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } }, undefined, { onprogress: p => progress.push(p) });
                // The stream carries both progress notifications before the
                // result (checked on the raw stream below); this SDK client
                // reports only the first over SSEClientTransport, exactly as it
                // does connected straight to server-everything's own /sse.
                assert.ok(progress.length >= 1, 'progress reached the client on its stream');
                if (mode === 'per_session') {
                    const s = await withTimeout(c.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'old', maxTokens: 3 } }), 15000, 'sampling');
                    assert.match(JSON.stringify(s.content), /sampled over the old transport/);
                }
            } finally {
                await closeSse(c);
            }
        });

        test('authorization applies on /messages exactly as on /mcp', async () => {
            const c = await connectSse(gw, bob.key);
            try {
                const { tools } = await c.client.listTools();
                assert.deepEqual(tools.map(t => t.name), ['echo'], 'bob sees only his tools');
                await assert.rejects(c.client.callTool({ name: 'get-env', arguments: {} }), /Unknown tool/);
            } finally {
                await closeSse(c);
            }
        });

        test('a POST without credentials is refused; another identity\'s session does not exist', async () => {
            const c = await connectSse(gw, alice.key);
            try {
                const endpoint = c.transport._endpoint;
                assert.match(endpoint.pathname + endpoint.search, /^\/messages\?sessionId=[0-9a-f]{32}$/);
                const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
                const anon = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
                assert.equal(anon.status, 401);
                const other = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${bob.key}` }, body });
                assert.equal(other.status, 404);
                const mine = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${alice.key}` }, body });
                assert.equal(mine.status, 202);
                const junk = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${alice.key}` }, body: '{"jsonrpc":' });
                assert.equal(junk.status, 400, 'an unparseable body is refused on the POST itself');
            } finally {
                await closeSse(c);
            }
        });

        test('progress and the answer arrive on the stream, in order, and the POST is answered 202', async () => {
            const res = await fetch(`${gw.base}/sse`, { headers: { Accept: 'text/event-stream', Authorization: `Bearer ${alice.key}` } });
            assert.equal(res.status, 200);
            const reader = res.body.getReader();
            const events = [];
            let buf = '';
            const pump = (async () => {
                const dec = new TextDecoder();
                for (;;) {
                    const { value, done } = await reader.read();
                    if (done) return;
                    buf += dec.decode(value);
                    let i;
                    while ((i = buf.indexOf('\n\n')) >= 0) {
                        events.push(buf.slice(0, i));
                        buf = buf.slice(i + 2);
                    }
                }
            })();
            await waitFor(() => events.some(e => e.startsWith('event: endpoint')), { message: 'the endpoint event' });
            const endpoint = /data: (.*)/.exec(events.find(e => e.startsWith('event: endpoint')))[1];
            const post = body => fetch(`${gw.base}${endpoint}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${alice.key}` }, body: JSON.stringify(body) });
            assert.equal((await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })).status, 202);
            await waitFor(() => events.some(e => /"id":1,"result"/.test(e)), { message: 'the initialize answer on the stream' });
            assert.match(events.find(e => /"id":1,"result"/.test(e)), /"protocolVersion":"2024-11-05"/, 'the transport\'s own revision is kept');
            assert.equal((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status, 202);
            assert.equal((await post({ jsonrpc: '2.0', id: 'call', method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 }, _meta: { progressToken: 'tok' } } })).status, 202);
            await waitFor(() => events.some(e => /"id":"call"/.test(e)), { message: 'the answer on the stream' });
            const data = events.map(e => /data: (.*)/.exec(e)?.[1]).filter(Boolean);
            const progress = data.filter(d => /notifications\/progress/.test(d));
            assert.equal(progress.length, 2);
            assert.ok(progress.every(d => JSON.parse(d).params.progressToken === 'tok'));
            assert.ok(data.indexOf(progress[1]) < data.findIndex(d => /"id":"call"/.test(d)), 'progress before the answer');
            await reader.cancel();
            await pump.catch(() => {});
        });

        test('closing the stream ends the session', async () => {
            // The earlier tests' streams are closed; their sessions end on the
            // gateway's next loop turn.
            await waitFor(async () => (await gw.health()).sessions === 0, { message: 'no session left from earlier tests' });
            const before = 0;
            const c = await connectSse(gw, alice.key);
            assert.equal((await gw.health()).sessions, before + 1);
            const endpoint = c.transport._endpoint;
            await closeSse(c);
            await waitFor(async () => (await gw.health()).sessions === before, { message: 'the session ended with its stream' });
            const r = await fetch(endpoint, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${alice.key}` }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) });
            assert.equal(r.status, 404);
        });
    });
}
