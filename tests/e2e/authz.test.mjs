// Authorization through the real gateway: per-identity tools, prompts and
// resources with the official SDK client, against server-everything behind a
// tap that records every message the upstream receives, so "the upstream
// never sees a denied call" is checked from the upstream's side. Lists are
// filtered per identity; empty lists mean nothing allowed; a JWT whose scopes
// would grant a denied tool gets 403 insufficient_scope naming the scope.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { closeSdk, connectSdk, postModern, readTap, tapUpstream, tempDir, waitFor } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';
import { b64uJson } from './idp/idp.mjs';

const SECRET = 'an-hmac-secret-of-at-least-32-bytes-for-the-authz-suite';
const DOC = 'demo://resource/static/document/architecture.md';
const now = () => Math.floor(Date.now() / 1000);

function hsToken(claims) {
    const input = `${b64uJson({ alg: 'HS256', typ: 'JWT' })}.${b64uJson(claims)}`;
    return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

describe('authorization per identity', { timeout: 90000, concurrency: 1 }, () => {
    let gw;
    let tap;
    let alice; // echo and get-*, one prompt, one resource
    let bob; // no lists: everything
    let carol; // empty lists: nothing
    const sdk = (k, name) => connectSdk(gw, { name, transportOptions: { requestInit: { headers: { 'X-API-Key': k.key } } } });
    const upstreamSaw = (method, pred = () => true) => readTap(tap).filter(m => m.method === method && pred(m.params || {}));

    before(async () => {
        alice = keygen('alice');
        bob = keygen('bob');
        carol = keygen('carol');
        tap = path.join(tempDir('mcp-guard-authz-'), 'tap.jsonl');
        gw = await startAuthGateway(
            port => ({
                auth: {
                    api_keys: [
                        { id: 'alice', key_hash: alice.hash, allowed_tools: ['echo', 'get-*'], allowed_prompts: ['simple-prompt'], allowed_resources: [DOC] },
                        { id: 'bob', key_hash: bob.hash },
                        { id: 'carol', key_hash: carol.hash, allowed_tools: [], allowed_prompts: [], allowed_resources: [] }
                    ],
                    jwt: {
                        mode: 'simple',
                        secret: SECRET,
                        audience: `http://127.0.0.1:${port}/mcp`,
                        scope_tool_mapping: { 'mcp:read': ['echo', 'get-*'], 'mcp:admin': ['*'] }
                    }
                },
                rate_limit: { requests_per_second: 100000, burst_size: 100000 }
            }),
            { upstream: tapUpstream(tap) }
        );
    });

    after(async () => {
        await gw?.stop();
    });

    test('tools/list is filtered per identity; nothing allowed is a valid empty list', async () => {
        const all = new Set();
        let b;
        try {
            b = await sdk(bob, 'bob');
            for (const t of (await b.client.listTools()).tools) all.add(t.name);
        } finally {
            await closeSdk(b);
        }
        assert.ok(all.has('echo') && all.has('trigger-long-running-operation') && all.has('get-sum'), [...all].join(' '));

        let a;
        try {
            a = await sdk(alice, 'alice');
            const names = (await a.client.listTools()).tools.map(t => t.name).sort();
            const expected = [...all].filter(n => n === 'echo' || n.startsWith('get-')).sort();
            assert.deepEqual(names, expected);
            assert.ok(names.length >= 3, names.join(' '));
        } finally {
            await closeSdk(a);
        }

        let c;
        try {
            c = await sdk(carol, 'carol');
            assert.deepEqual((await c.client.listTools()).tools, []);
            assert.deepEqual((await c.client.listPrompts()).prompts, []);
            assert.deepEqual((await c.client.listResources()).resources, []);
        } finally {
            await closeSdk(c);
        }
    });

    test('a denied tools/call is an error and never reaches the upstream; allowed tools work', async () => {
        let a;
        try {
            a = await sdk(alice, 'alice');
            const ok = await a.client.callTool({ name: 'echo', arguments: { message: 'allowed' } });
            assert.match(ok.content[0].text, /allowed/);
            const sum = await a.client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
            assert.match(JSON.stringify(sum.content), /5/);
            // Look-alikes of allowed names are other names: no case folding, no Unicode tricks.
            for (const name of ['trigger-long-running-operation', 'Echo', 'ECHO', 'echo ', '\uff45cho', 'get', 'toggle-simulated-logging']) {
                await assert.rejects(a.client.callTool({ name, arguments: { message: 'x', duration: 1, steps: 1 } }), err => {
                    assert.equal(err.code, -32602, `${name}: ${err.message}`);
                    assert.match(err.message, /Unknown tool/, name);
                    return true;
                });
            }
        } finally {
            await closeSdk(a);
        }
        // The allowed calls reached the upstream (the tap works), the denied ones did not.
        await waitFor(() => upstreamSaw('tools/call', p => p.name === 'get-sum').length === 1, { message: 'get-sum reaches the upstream' });
        const names = upstreamSaw('tools/call').map(m => m.params.name);
        assert.deepEqual(names.filter(n => n !== 'echo' && n !== 'get-sum'), [], `the upstream saw: ${names.join(', ')}`);
    });

    test('prompts and resources: lists filtered, reads of others denied before the upstream', async () => {
        let a;
        try {
            a = await sdk(alice, 'alice');
            assert.deepEqual((await a.client.listPrompts()).prompts.map(p => p.name), ['simple-prompt']);
            const got = await a.client.getPrompt({ name: 'simple-prompt' });
            assert.ok(got.messages.length > 0);
            await assert.rejects(a.client.getPrompt({ name: 'args-prompt', arguments: { city: 'x' } }), err => err.code === -32602);

            assert.deepEqual((await a.client.listResources()).resources.map(r => r.uri), [DOC]);
            const doc = await a.client.readResource({ uri: DOC });
            assert.equal(doc.contents[0].uri, DOC);
            const other = DOC.replace('architecture', 'extension');
            await assert.rejects(a.client.readResource({ uri: other }), err => err.code === -32602);
            await assert.rejects(a.client.subscribeResource({ uri: other }), err => err.code === -32602);
        } finally {
            await closeSdk(a);
        }
        assert.equal(upstreamSaw('prompts/get', p => p.name === 'args-prompt').length, 0);
        assert.equal(upstreamSaw('resources/read', p => p.uri !== DOC).length, 0);
        assert.equal(upstreamSaw('resources/subscribe').length, 0);
    });

    test('the modern family (2026-07-28) is checked by the body the upstream would see', async () => {
        const headers = { 'x-api-key': alice.key };
        const denied = await postModern(gw, 'tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 1 } }, { name: 'trigger-long-running-operation', headers });
        assert.equal(denied.message?.error?.code, -32602, denied.text);
        // A header naming an allowed tool does not smuggle a denied body: refused as a mismatch.
        const smuggled = await postModern(gw, 'tools/call', { name: 'trigger-long-running-operation', arguments: {} }, { name: 'echo', headers });
        assert.equal(smuggled.status, 400, smuggled.text);
        assert.equal(smuggled.message?.error?.code, -32020, smuggled.text);
        const ok = await postModern(gw, 'tools/call', { name: 'echo', arguments: { message: 'modern' } }, { name: 'echo', headers });
        assert.equal(ok.status, 200, ok.text);
        assert.match(JSON.stringify(ok.message.result), /modern/);
        const listed = await postModern(gw, 'tools/list', {}, { headers });
        assert.ok(listed.message.result.tools.every(t => t.name === 'echo' || t.name.startsWith('get-')), listed.text);
        assert.equal(upstreamSaw('tools/call', p => p.name === 'trigger-long-running-operation').length, 0);
    });

    test('JWT: a tool a scope would grant is 403 insufficient_scope naming it; others stay hidden', async () => {
        const token = hsToken({ sub: 'dave', aud: gw.resource, exp: now() + 300, scope: 'mcp:read' });
        const h = { authorization: `Bearer ${token}` };
        const { status, sessionId } = await gw.initialize(h);
        assert.equal(status, 200);
        const call = name => gw.mcp({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name, arguments: {} } }, { headers: h, sessionId, protocolVersion: '2025-11-25' });
        const r = await call('trigger-long-running-operation');
        assert.equal(r.status, 403, r.text);
        assert.equal(r.headers['www-authenticate'], gw.challenge('insufficient_scope', 'mcp:admin'));
        assert.equal(r.json.jsonrpc, '2.0');
        assert.equal(r.json.id, 9);
        const listed = await gw.toolsList(sessionId, h);
        assert.ok(listed.message.result.tools.every(t => t.name === 'echo' || t.name.startsWith('get-')), listed.text);
        assert.equal((await call('get-tiny-image')).status, 200);
        assert.equal(upstreamSaw('tools/call', p => p.name === 'trigger-long-running-operation').length, 0);
    });

    test('denials are counted in /health', async () => {
        const h = await gw.request('/health');
        assert.equal(h.status, 200);
        assert.ok(h.json.requests.denied >= 12, JSON.stringify(h.json.requests));
        assert.ok(h.json.requests.forwarded > 0, JSON.stringify(h.json.requests));
    });
});
