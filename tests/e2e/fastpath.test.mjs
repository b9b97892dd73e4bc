// The text fast path (src/mcp/jscan.c): requests the gateway does not change
// go upstream as the client's bytes with only the id replaced, and results
// come back as the upstream's bytes with only the id replaced. These tests
// send what a byte-splicing relay could get wrong — ids with escapes, long
// integer ids, pretty-printed bodies (a line break would break stdio
// framing), escaped keys (the slow path must take them) — and check what
// both ends see. Upstream: server-everything with the tap that logs what it
// received.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { LEGACY_VERSION, postMcp, rawInitialize, readTap, startGateway, tapUpstream, tempDir } from './helpers.mjs';

describe('text fast path: ids spliced, nothing else changed', { timeout: 60000 }, () => {
    let gw;
    let tap;
    let sid;

    before(async () => {
        const dir = tempDir();
        tap = path.join(dir, 'tap.log');
        gw = await startGateway({ dir, upstream: tapUpstream(tap) });
        sid = (await rawInitialize(gw)).sessionId;
    });

    after(async () => {
        if (gw) await gw.stop();
    });

    const call = (body, accept = 'application/json') => postMcp(gw, body, { sessionId: sid, protocolVersion: LEGACY_VERSION, accept });
    const echoed = message => readTap(tap).find(m => m.method === 'tools/call' && m.params?.arguments?.message === message);
    const text = r => r.message?.result?.content?.[0]?.text;

    test('a string id with escapes, quotes and non-ASCII comes back as the same string', async () => {
        const id = 'a"b\\c\u00e9\u2028\u0001 end';
        const r = await call({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'fp-1' } } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.message.id, id);
        assert.equal(text(r), 'Echo: fp-1');
        // The upstream saw the gateway's own integer id, never the client's.
        assert.equal(typeof echoed('fp-1').id, 'number');
    });

    test('long integer ids are restored digit for digit', async () => {
        for (const id of ['9007199254740991', '123456789012345678', '-42', '0']) {
            const body = `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":{"message":"fp-int${id}"}}}`;
            const r = await call(body);
            assert.equal(r.status, 200, r.text);
            assert.match(r.text, new RegExp(`"id":${id}[,}]`), r.text);
            assert.equal(text(r), `Echo: fp-int${id}`);
        }
    });

    test('a pretty-printed request (line breaks, tabs, CRLF) still reaches the stdio upstream as one line', async () => {
        const body = '{\r\n\t"jsonrpc" : "2.0",\n  "id" : 77,\n  "method" : "tools/call",\n  "params" : {\n    "name" : "echo",\n    "arguments" : { "message" : "fp-pretty" }\n  }\n}\n';
        const r = await call(body);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.message.id, 77);
        assert.equal(text(r), 'Echo: fp-pretty');
        const up = echoed('fp-pretty');
        assert.ok(up, 'the upstream received the call');
        assert.equal(up.params.name, 'echo');
    });

    test('unchanged requests keep their exact arguments, including unicode escapes in values', async () => {
        const body = '{"jsonrpc":"2.0","id":"u","method":"tools/call","params":{"name":"echo","arguments":{"message":"fp-\\u00e9\\ud83d\\ude00 \\"q\\""}}}';
        const r = await call(body);
        assert.equal(r.status, 200, r.text);
        assert.equal(text(r), 'Echo: fp-\u00e9\u{1F600} "q"');
        assert.ok(echoed('fp-\u00e9\u{1F600} "q"'), 'the upstream decoded the same message');
    });

    test('an escaped key takes the parsed path: the tool name the gateway authorized is the one the upstream sees', async () => {
        const body = '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"\\u006eame":"echo","arguments":{"message":"fp-escaped-key"}}}';
        const r = await call(body);
        assert.equal(r.status, 200, r.text);
        assert.equal(text(r), 'Echo: fp-escaped-key');
        assert.equal(echoed('fp-escaped-key').params.name, 'echo');
    });

    test('tools/list: the first answer is learned from (parsed path), a repeat of the same list is relayed as text, identical', async () => {
        const a = await call({ jsonrpc: '2.0', id: 'list-1', method: 'tools/list', params: {} });
        const b = await call({ jsonrpc: '2.0', id: 'list-2', method: 'tools/list', params: {} });
        assert.equal(a.status, 200, a.text);
        assert.equal(b.status, 200, b.text);
        assert.equal(a.message.id, 'list-1');
        assert.equal(b.message.id, 'list-2');
        assert.ok(a.message.result.tools.some(t => t.name === 'echo'));
        assert.deepEqual(b.message.result, a.message.result);
    });

    test('duplicate keys are still refused before anything reaches the upstream', async () => {
        const body = '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","name":"printEnv","arguments":{"message":"fp-dup"}}}';
        const r = await call(body);
        assert.notEqual(r.status, 200);
        assert.equal(r.message?.error?.code, -32700, r.text);
        assert.equal(echoed('fp-dup'), undefined);
    });

    test('a result that ends an SSE stream (progress came first) is spliced into the stream with the client\'s id', async () => {
        const r = await call(
            { jsonrpc: '2.0', id: 'sse-"1"', method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 }, _meta: { progressToken: 'tok' } } },
            'application/json, text/event-stream'
        );
        assert.equal(r.status, 200, r.text);
        assert.match(r.headers.get('content-type'), /^text\/event-stream/);
        const progress = r.events.filter(e => e.data?.method === 'notifications/progress');
        assert.ok(progress.length >= 1, r.text);
        assert.ok(progress.every(e => e.data.params.progressToken === 'tok'));
        assert.equal(r.message.id, 'sse-"1"');
        assert.match(JSON.stringify(r.message.result), /completed/i);
        // Upstream the token was the gateway's own (the request took the parsed path).
        const up = readTap(tap).find(m => m.params?.name === 'trigger-long-running-operation');
        assert.notEqual(up.params._meta.progressToken, 'tok');
    });
});
