// Legacy MCP (2025-03-26 … 2025-11-25) through mcp-guard in shared mode:
// the official SDK client (@modelcontextprotocol/sdk v1) and raw requests.
// The upstream is server-everything wrapped by fixtures/everything-tap.mjs,
// which logs what the gateway sent it (ids, cancellations).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
    LEGACY_VERSION,
    RawConn,
    SESSION_ID_RE,
    closeSdk,
    connectSdk,
    httpRequest,
    postMcp,
    rawInitialize,
    readTap,
    startGateway,
    tapUpstream,
    tempDir,
    waitFor,
    withTimeout
} from './helpers.mjs';

describe('legacy MCP, shared upstream', { timeout: 150000 }, () => {
    let gw;
    let tap;
    let sdk; // one SDK client shared by the simple feature tests

    before(async () => {
        const dir = tempDir();
        tap = path.join(dir, 'tap.log');
        gw = await startGateway({ dir, upstream: tapUpstream(tap) });
        sdk = await connectSdk(gw, { capabilities: { sampling: {}, elicitation: {}, roots: {} } });
    });

    after(async () => {
        await closeSdk(sdk);
        if (gw) await gw.stop();
    });

    const session = () => ({ sessionId: sdk.transport.sessionId, protocolVersion: LEGACY_VERSION });

    /** The upstream tools/call whose arguments match `pred`, from the tap log. */
    const upstreamCall = pred => readTap(tap).find(m => m.method === 'tools/call' && pred(m.params?.arguments ?? {}));

    test('initialize creates a session: 32 hex characters, serverInfo and capabilities of the upstream', async () => {
        assert.match(sdk.transport.sessionId, SESSION_ID_RE);
        const info = sdk.client.getServerVersion();
        assert.equal(info.name, 'mcp-servers/everything');
        const caps = sdk.client.getServerCapabilities();
        assert.ok(caps.tools, 'tools capability');
        assert.ok(caps.resources?.subscribe, 'resources.subscribe capability');
        assert.ok(caps.prompts, 'prompts capability');
        assert.ok(sdk.client.getInstructions(), 'instructions are passed through');
        const h = await gw.health();
        assert.ok(h.sessions >= 1, `health.sessions = ${h.sessions}`);
        assert.equal(h.upstreams[0].mode, 'shared');
        assert.equal(h.upstreams[0].status, 'up');
    });

    test('raw initialize negotiates the version and sets Mcp-Session-Id', async () => {
        for (const v of ['2025-03-26', '2025-06-18', '2025-11-25']) {
            const { sessionId, response } = await rawInitialize(gw, { protocolVersion: v });
            assert.match(sessionId, SESSION_ID_RE);
            assert.equal(response.message.result.protocolVersion, v);
            const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': sessionId } });
            assert.equal(del.status, 204);
        }
        // An unknown (future) version: the server answers with one it supports.
        const { sessionId, response } = await rawInitialize(gw, { protocolVersion: '2099-01-01' });
        assert.equal(response.message.result.protocolVersion, LEGACY_VERSION);
        await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': sessionId } });
    });

    test('tools/list: server→client request tools are not advertised in shared mode', async () => {
        const { tools } = await sdk.client.listTools();
        const names = tools.map(t => t.name);
        for (const n of ['echo', 'get-sum', 'trigger-long-running-operation', 'toggle-subscriber-updates']) {
            assert.ok(names.includes(n), `${n} in ${names}`);
        }
        // The shared process was initialized by the gateway without client
        // capabilities, whatever this client declared.
        for (const n of ['trigger-sampling-request', 'trigger-elicitation-request', 'get-roots-list']) {
            assert.ok(!names.includes(n), `${n} must not be listed in shared mode`);
        }
    });

    test('tools/call echo and get-sum', async () => {
        const r = await sdk.client.callTool({ name: 'echo', arguments: { message: 'hello gateway ✓' } });
        assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: hello gateway ✓' }]);
        const s = await sdk.client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } });
        assert.match(s.content[0].text, /42/);
        const bad = await sdk.client.callTool({ name: 'no-such-tool', arguments: {} }).catch(e => ({ thrown: e }));
        // The SDK server reports unknown tools either as isError or as an error response.
        assert.ok(bad.thrown || bad.isError, 'unknown tool is an error');
    });

    test('progress notifications reach onprogress', async () => {
        const seen = [];
        const r = await withTimeout(
            sdk.client.callTool(
                { name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
                undefined,
                { onprogress: p => seen.push(p) }
            ),
            15000,
            'long-running call'
        );
        assert.match(r.content[0].text, /Long running operation completed/);
        assert.deepEqual(
            seen.map(p => [p.progress, p.total]),
            [
                [1, 3],
                [2, 3],
                [3, 3]
            ]
        );
    });

    test('raw progress: the client\'s own progressToken values come back (string and 0), the upstream sees its own', async () => {
        for (const [token, duration] of [
            ['client-token-☃', 0.31],
            [0, 0.32]
        ]) {
            const r = await postMcp(
                gw,
                {
                    jsonrpc: '2.0',
                    id: `progress-${duration}`,
                    method: 'tools/call',
                    params: { name: 'trigger-long-running-operation', arguments: { duration, steps: 2 }, _meta: { progressToken: token } }
                },
                session()
            );
            assert.equal(r.status, 200);
            assert.match(r.headers.get('content-type'), /^text\/event-stream/);
            // The stream is primed (an id and empty data) so a cut stream can be resumed,
            // and the event ids of one stream increase.
            assert.equal(r.primes.length, 1, r.text);
            const [stream, primeSeq] = r.primes[0].id.split('_').map(Number);
            assert.ok(stream > 0, `a request stream number: ${r.primes[0].id}`);
            const seqs = r.events.map(e => e.id.split('_').map(Number));
            for (const [n] of seqs) assert.equal(n, stream, 'one stream');
            assert.deepEqual(
                seqs.map(([, k]) => k),
                seqs.map((_, i) => primeSeq + i + 1)
            );
            const progress = r.events.filter(e => e.data.method === 'notifications/progress');
            assert.deepEqual(
                progress.map(e => e.data.params),
                [
                    { progress: 1, total: 2, progressToken: token },
                    { progress: 2, total: 2, progressToken: token }
                ]
            );
            assert.equal(r.message.id, `progress-${duration}`);
            assert.match(r.message.result.content[0].text, /completed/);
            const up = upstreamCall(a => a.duration === duration);
            assert.ok(up, 'the upstream received the call');
            assert.equal(typeof up.id, 'number');
            assert.equal(up.params._meta.progressToken, up.id, 'the gateway minted its own token upstream');
        }
    });

    test('a JSON-only client gets the final answer as JSON even when progress was requested', async () => {
        const r = await postMcp(
            gw,
            {
                jsonrpc: '2.0',
                id: 'json-only',
                method: 'tools/call',
                params: { name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 }, _meta: { progressToken: 't' } }
            },
            { ...session(), accept: 'application/json' }
        );
        assert.equal(r.status, 200);
        assert.match(r.headers.get('content-type'), /^application\/json/);
        assert.equal(r.json.id, 'json-only');
        assert.match(r.json.result.content[0].text, /completed/);
    });

    test('resources: list, templates, read, subscribe and unsubscribe', async () => {
        const { resources } = await sdk.client.listResources();
        assert.ok(resources.length > 0);
        const doc = resources.find(r => r.uri.startsWith('demo://resource/static/document/'));
        assert.ok(doc, 'a static document resource');
        const read = await sdk.client.readResource({ uri: doc.uri });
        assert.equal(read.contents[0].uri, doc.uri);
        assert.ok(read.contents[0].text.length > 0);
        const { resourceTemplates } = await sdk.client.listResourceTemplates();
        assert.ok(resourceTemplates.some(t => t.uriTemplate.includes('demo://resource/dynamic/text/')));
        const dyn = await sdk.client.readResource({ uri: 'demo://resource/dynamic/text/7' });
        assert.equal(dyn.contents[0].uri, 'demo://resource/dynamic/text/7');
        assert.deepEqual(await sdk.client.subscribeResource({ uri: doc.uri }), {});
        assert.deepEqual(await sdk.client.unsubscribeResource({ uri: doc.uri }), {});
    });

    test('prompts: list and get (with arguments), completion', async () => {
        const { prompts } = await sdk.client.listPrompts();
        const names = prompts.map(p => p.name);
        for (const n of ['simple-prompt', 'args-prompt', 'completable-prompt']) assert.ok(names.includes(n), `${n} in ${names}`);
        const simple = await sdk.client.getPrompt({ name: 'simple-prompt' });
        assert.ok(simple.messages.length > 0);
        const args = await sdk.client.getPrompt({ name: 'args-prompt', arguments: { city: 'Lyon', state: 'Rhône' } });
        assert.match(args.messages[0].content.text, /Lyon, Rhône/);
        const c = await sdk.client.complete({
            ref: { type: 'ref/prompt', name: 'completable-prompt' },
            argument: { name: 'department', value: 'S' }
        });
        assert.deepEqual(c.completion.values.sort(), ['Sales', 'Support']);
        const c2 = await sdk.client.complete({
            ref: { type: 'ref/prompt', name: 'completable-prompt' },
            argument: { name: 'name', value: '' },
            context: { arguments: { department: 'Engineering' } }
        });
        assert.deepEqual(c2.completion.values, ['Alice', 'Bob', 'Charlie']);
    });

    test('ping and logging/setLevel', async () => {
        assert.deepEqual(await sdk.client.ping(), {});
        assert.deepEqual(await sdk.client.setLoggingLevel('warning'), {});
        const bad = await postMcp(gw, { jsonrpc: '2.0', id: 5, method: 'logging/setLevel', params: { level: 'loud' } }, session());
        assert.equal(bad.message.error.code, -32602);
    });

    test('requests without Mcp-Session-Id get 400, unknown sessions 404, bad versions 400', async () => {
        const body = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };
        const noSession = await postMcp(gw, body, { protocolVersion: LEGACY_VERSION });
        assert.equal(noSession.status, 400);
        assert.equal(noSession.json.error.code, -32600);
        assert.equal(noSession.json.id, 1);

        for (const sid of [randomBytes(16).toString('hex'), 'not-a-session', 'A'.repeat(32)]) {
            const r = await postMcp(gw, body, { sessionId: sid, protocolVersion: LEGACY_VERSION });
            assert.equal(r.status, 404, `session ${sid}`);
            assert.equal(r.json.error.code, -32600);
        }

        for (const v of ['2024-11-05', '1999-01-01', 'garbage']) {
            const r = await postMcp(gw, body, { ...session(), protocolVersion: v });
            assert.equal(r.status, 400, `MCP-Protocol-Version ${v}: ${r.text}`);
            assert.ok(r.json.error, r.text);
        }
        const unsupported = await postMcp(gw, body, { ...session(), protocolVersion: '2024-11-05' });
        assert.ok(unsupported.json.error.data.supported.includes(LEGACY_VERSION));

        // initialize must not carry a session id, and needs a protocol version.
        const withSid = await postMcp(
            gw,
            { jsonrpc: '2.0', id: 3, method: 'initialize', params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: { name: 'x', version: '1' } } },
            { sessionId: randomBytes(16).toString('hex') }
        );
        assert.equal(withSid.status, 400, withSid.text);
        const noVersion = await postMcp(gw, { jsonrpc: '2.0', id: 4, method: 'initialize', params: { capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
        assert.equal(noVersion.status, 400, noVersion.text);
        assert.equal(noVersion.json.error.code, -32602);

        // A second initialize on an existing session is refused.
        const again = await postMcp(
            gw,
            { jsonrpc: '2.0', id: 2, method: 'initialize', params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: { name: 'x', version: '1' } } },
            session()
        );
        assert.equal(again.status, 400);
    });

    test('DELETE ends a session; afterwards its id is unknown (404)', async () => {
        const c = await connectSdk(gw);
        const sid = c.transport.sessionId;
        const before = (await gw.health()).sessions;
        await c.transport.terminateSession();
        await c.client.close();
        const r = await postMcp(gw, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { sessionId: sid, protocolVersion: LEGACY_VERSION });
        assert.equal(r.status, 404);
        assert.equal(r.json.error.code, -32600);
        const get = await fetch(gw.mcpUrl, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid } });
        assert.equal(get.status, 404);
        await get.arrayBuffer();
        const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
        assert.equal(del.status, 404);
        await del.arrayBuffer();
        assert.equal((await gw.health()).sessions, before - 1);
    });

    test('ids are restored exactly: strings, 0, 2^53-1, beyond 2^53, negative', async () => {
        const cases = ['abc', '', 'ünïcødé-☃', 0, 9007199254740991, -1];
        for (const id of cases) {
            const r = await postMcp(gw, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: `id ${JSON.stringify(id)}` } } }, session());
            assert.equal(r.status, 200, r.text);
            assert.strictEqual(r.message.id, id);
            assert.equal(r.message.result.content[0].text, `Echo: id ${JSON.stringify(id)}`);
        }
        // Integers JavaScript cannot hold: compare the text.
        for (const big of ['9007199254740993', '-9223372036854775808', '9223372036854775807']) {
            const r = await postMcp(gw, `{"jsonrpc":"2.0","id":${big},"method":"tools/call","params":{"name":"echo","arguments":{"message":"big"}}}`, session());
            assert.equal(r.status, 200, r.text);
            assert.ok(r.text.includes(`"id":${big}`), `id ${big} restored in ${r.text}`);
        }
        // Ids that are not strings or integers are invalid requests.
        for (const bad of ['1.5', 'null', 'true', '{}', '[]']) {
            const r = await postMcp(gw, `{"jsonrpc":"2.0","id":${bad},"method":"ping"}`, session());
            assert.equal(r.status, 400, `id ${bad}: ${r.text}`);
            assert.equal(r.json.error.code, -32600);
        }
    });

    test('large and unusual payloads round-trip: 1 MiB echo, NUL and astral characters; batches are refused', async () => {
        const big = `${'x'.repeat(1024 * 1024)}end`;
        const r = await sdk.client.callTool({ name: 'echo', arguments: { message: big } });
        assert.equal(r.content[0].text, `Echo: ${big}`);
        for (const message of ['a\u0000b', '😀 "quoted" \\ back\nslash', '\u2028\u2029']) {
            const e = await sdk.client.callTool({ name: 'echo', arguments: { message } });
            assert.equal(e.content[0].text, `Echo: ${message}`);
        }
        const batch = await postMcp(gw, [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', id: 2, method: 'ping' }], session());
        assert.equal(batch.status, 400);
        assert.equal(batch.json.error.code, -32600);
        assert.match(batch.json.error.message, /batch/i);
    });

    test('the string "1" and the number 1 in flight at the same time stay distinct', async () => {
        const call = (id, duration) =>
            postMcp(gw, `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":${duration},"steps":1}}}`, {
                ...session(),
                accept: 'application/json'
            });
        const [s, n] = await Promise.all([call('1', 0.41), call(1, 0.42)]);
        assert.equal(s.status, 200);
        assert.equal(n.status, 200);
        assert.ok(s.text.includes('"id":"1"'), s.text);
        assert.strictEqual(s.json.id, '1');
        assert.match(s.json.result.content[0].text, /Duration: 0.41 /);
        assert.strictEqual(n.json.id, 1);
        assert.match(n.json.result.content[0].text, /Duration: 0.42 /);
        const a = upstreamCall(x => x.duration === 0.41);
        const b = upstreamCall(x => x.duration === 0.42);
        assert.notEqual(a.id, b.id, 'the upstream saw two distinct ids');
    });

    test('AbortSignal on callTool: the SDK sends notifications/cancelled, the gateway cancels upstream', async () => {
        const ac = new AbortController();
        let progressed;
        const first = new Promise(resolve => (progressed = resolve));
        const call = sdk.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 20.5, steps: 41 } }, undefined, {
            signal: ac.signal,
            onprogress: () => progressed()
        });
        call.catch(() => {});
        await withTimeout(first, 10000, 'first progress notification');
        const up = upstreamCall(a => a.duration === 20.5);
        assert.ok(up, 'the call reached the upstream');
        ac.abort('user gave up');
        await assert.rejects(withTimeout(call, 5000, 'aborted call'));
        const cancel = await waitFor(() => readTap(tap).find(m => m.method === 'notifications/cancelled' && m.params?.requestId === up.id), {
            timeoutMs: 5000,
            message: `notifications/cancelled for upstream id ${up.id}`
        });
        assert.equal(typeof cancel.params.requestId, 'number');
        await waitFor(async () => (await gw.health()).requests_in_flight === 0, { timeoutMs: 5000, message: 'requests_in_flight = 0' });
        // The session is still usable.
        const r = await sdk.client.callTool({ name: 'echo', arguments: { message: 'after abort' } });
        assert.equal(r.content[0].text, 'Echo: after abort');
    });

    test('closing the connection mid-request cancels the request upstream', async () => {
        for (const accept of ['application/json', 'application/json, text/event-stream']) {
            const duration = accept.includes('event-stream') ? 20.25 : 20.125;
            const conn = await RawConn.open(gw.port);
            const body = JSON.stringify({
                jsonrpc: '2.0',
                id: 99,
                method: 'tools/call',
                params: { name: 'trigger-long-running-operation', arguments: { duration, steps: 40 }, _meta: { progressToken: 'p' } }
            });
            await conn.write(
                httpRequest('POST', '/mcp', {
                    port: gw.port,
                    headers: {
                        'Content-Type': 'application/json',
                        Accept: accept,
                        'Mcp-Session-Id': sdk.transport.sessionId,
                        'MCP-Protocol-Version': LEGACY_VERSION
                    },
                    body
                })
            );
            const up = await waitFor(() => upstreamCall(a => a.duration === duration), { timeoutMs: 5000, message: 'the call upstream' });
            assert.ok((await gw.health()).requests_in_flight >= 1);
            conn.destroy();
            await waitFor(() => readTap(tap).find(m => m.method === 'notifications/cancelled' && m.params?.requestId === up.id), {
                timeoutMs: 5000,
                message: `notifications/cancelled for upstream id ${up.id} (${accept})`
            });
            await waitFor(async () => (await gw.health()).requests_in_flight === 0, { timeoutMs: 5000, message: 'requests_in_flight = 0' });
        }
    });

    test('notifications/cancelled from a raw client ends its own request only', async () => {
        const { sessionId } = await rawInitialize(gw);
        const opts = { sessionId, protocolVersion: LEGACY_VERSION, accept: 'application/json' };
        const slow = postMcp(gw, { jsonrpc: '2.0', id: 'slow', method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 20.0625, steps: 1 } } }, opts);
        const up = await waitFor(() => upstreamCall(a => a.duration === 20.0625), { timeoutMs: 5000, message: 'the call upstream' });
        const other = postMcp(gw, { jsonrpc: '2.0', id: 'other', method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 1 } } }, opts);
        const n = await postMcp(gw, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'slow', reason: 'changed my mind' } }, opts);
        assert.equal(n.status, 202);
        const r = await withTimeout(slow, 5000, 'the cancelled request');
        assert.equal(r.status, 200);
        assert.equal(r.json.id, 'slow');
        assert.ok(r.json.error, r.text);
        const o = await withTimeout(other, 10000, 'the other request');
        assert.equal(o.json.id, 'other');
        assert.match(o.json.result.content[0].text, /completed/);
        const cancel = readTap(tap).find(m => m.method === 'notifications/cancelled' && m.params?.requestId === up.id);
        assert.ok(cancel, 'the upstream was told');
        assert.equal(cancel.params.reason, 'changed my mind');
        await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': sessionId } });
    });

    test('shared-mode resource subscriptions are reference-counted across sessions', async () => {
        const uri = `demo://resource/dynamic/text/${Date.now() % 1000}`;
        const A = await rawInitialize(gw);
        const B = await rawInitialize(gw);
        const as = sid => ({ sessionId: sid, protocolVersion: LEGACY_VERSION });
        let n = 0;
        const req = (sid, method, params) => postMcp(gw, { jsonrpc: '2.0', id: ++n, method, params }, as(sid));
        /** Upstream (un)subscribe messages for `uri`, after a barrier call went through the same pipe. */
        const upstreamSubs = async () => {
            const marker = `barrier ${++n}`;
            const r = await req(A.sessionId, 'tools/call', { name: 'echo', arguments: { message: marker } });
            assert.equal(r.message.result.content[0].text, `Echo: ${marker}`);
            return readTap(tap)
                .filter(m => (m.method === 'resources/subscribe' || m.method === 'resources/unsubscribe') && m.params?.uri === uri)
                .map(m => m.method.split('/')[1]);
        };
        assert.deepEqual((await req(A.sessionId, 'resources/subscribe', { uri })).message.result, {});
        assert.deepEqual(await upstreamSubs(), ['subscribe']);
        await req(B.sessionId, 'resources/subscribe', { uri });
        await req(A.sessionId, 'resources/subscribe', { uri });
        assert.deepEqual(await upstreamSubs(), ['subscribe'], 'one upstream subscription for two sessions');
        await req(A.sessionId, 'resources/unsubscribe', { uri });
        assert.deepEqual(await upstreamSubs(), ['subscribe'], 'B still subscribed');
        await req(B.sessionId, 'resources/unsubscribe', { uri });
        assert.deepEqual(await upstreamSubs(), ['subscribe', 'unsubscribe']);
        await req(B.sessionId, 'resources/subscribe', { uri });
        const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': B.sessionId } });
        assert.equal(del.status, 204);
        assert.deepEqual(await upstreamSubs(), ['subscribe', 'unsubscribe', 'subscribe', 'unsubscribe'], 'an ended session releases its subscriptions');
        const bad = await req(A.sessionId, 'resources/subscribe', { uri: 42 });
        assert.equal(bad.message.error.code, -32602);
        await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': A.sessionId } });
    });

    test('DELETE while a request is in flight: the request gets an error and is cancelled upstream', async () => {
        const { sessionId } = await rawInitialize(gw);
        const pending = postMcp(
            gw,
            { jsonrpc: '2.0', id: 'doomed', method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 20.03125, steps: 1 } } },
            { sessionId, protocolVersion: LEGACY_VERSION, accept: 'application/json' }
        );
        const up = await waitFor(() => upstreamCall(a => a.duration === 20.03125), { timeoutMs: 5000, message: 'the call upstream' });
        const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': sessionId } });
        assert.equal(del.status, 204);
        const r = await withTimeout(pending, 5000, 'the in-flight request of the deleted session');
        assert.equal(r.json.id, 'doomed');
        assert.equal(r.json.error.code, -32603);
        await waitFor(() => readTap(tap).some(m => m.method === 'notifications/cancelled' && m.params?.requestId === up.id), { timeoutMs: 5000, message: 'the upstream cancellation' });
    });

    test(
        'shared mode: a log message caused by one session is not pushed into another session\'s request stream',
        {},
        async () => {
            const A = await rawInitialize(gw);
            const B = await rawInitialize(gw);
            const secret = `demo://resource/dynamic/text/secret-of-B-${Date.now()}`;
            const pa = postMcp(
                gw,
                { jsonrpc: '2.0', id: 'a-call', method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 0.8, steps: 1 } } },
                { sessionId: A.sessionId, protocolVersion: LEGACY_VERSION }
            );
            await waitFor(() => upstreamCall(a => a.duration === 0.8), { timeoutMs: 5000, message: 'A\'s call upstream' });
            const rb = await postMcp(gw, { jsonrpc: '2.0', id: 'b-sub', method: 'resources/subscribe', params: { uri: secret } }, { sessionId: B.sessionId, protocolVersion: LEGACY_VERSION });
            assert.deepEqual(rb.message.result, {});
            const ra = await withTimeout(pa, 10000, 'A\'s call');
            assert.equal(ra.message.id, 'a-call');
            assert.ok(!ra.text.includes(secret), `A (no logging/setLevel) received B's log message:\n${ra.text}`);
            for (const s of [A, B]) await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': s.sessionId } });
        }
    );

    test('60 concurrent SDK sessions each get their own echo answers (no cross-talk)', async () => {
        const N = 60;
        const clients = [];
        try {
            for (let i = 0; i < N; i += 20) {
                clients.push(...(await Promise.all(Array.from({ length: Math.min(20, N - i) }, () => connectSdk(gw, { name: `c${i}` })))));
            }
            const ids = new Set(clients.map(c => c.transport.sessionId));
            assert.equal(ids.size, N, 'distinct session ids');
            const h = await gw.health();
            assert.ok(h.sessions >= N, `health.sessions ${h.sessions}`);
            const results = await withTimeout(
                Promise.all(
                    clients.flatMap((c, i) =>
                        [0, 1, 2].map(async k => {
                            const msg = `client ${i} message ${k} ${randomBytes(6).toString('hex')}`;
                            const r = await c.client.callTool({ name: 'echo', arguments: { message: msg } });
                            return [msg, r.content[0].text];
                        })
                    )
                ),
                60000,
                'concurrent echo calls'
            );
            for (const [msg, text] of results) assert.equal(text, `Echo: ${msg}`);
            // And long-running calls with progress interleaved across sessions.
            const lro = await withTimeout(
                Promise.all(
                    clients.slice(0, 10).map(async (c, i) => {
                        const seen = [];
                        const r = await c.client.callTool(
                            { name: 'trigger-long-running-operation', arguments: { duration: 0.2 + i / 100, steps: 2 } },
                            undefined,
                            { onprogress: p => seen.push(p.progress) }
                        );
                        return [i, r.content[0].text, seen];
                    })
                ),
                30000,
                'concurrent long-running calls'
            );
            for (const [i, text, seen] of lro) {
                assert.ok(text.includes(`Duration: ${0.2 + i / 100} seconds`), text);
                assert.deepEqual(seen, [1, 2]);
            }
        } finally {
            await Promise.all(clients.map(closeSdk));
        }
        await waitFor(async () => (await gw.health()).requests_in_flight === 0, { timeoutMs: 5000, message: 'requests_in_flight = 0' });
    });
});
