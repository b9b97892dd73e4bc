// Remote upstreams: the real server-everything served over Streamable HTTP and
// over the 2024-11-05 HTTP+SSE transport (fixtures/everything-http.mjs, loopback),
// a hostile HTTP server (fixtures/hostile-http.mjs), and the real SDK client in
// front of mcp-guard. What a client does through a stdio upstream must work the
// same through a remote one; what a remote server can do wrong must not hurt
// the gateway; the gateway's outgoing requests follow the SSRF rule and never
// carry the client's credentials.

import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

import { LEGACY_VERSION, closeSdk, connectSdk, httpGet, postMcp, postModern, REPO_ROOT, startGateway, startHttpFixture as startUpstream, tempDir, waitFor, withTimeout } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';

const EVERYTHING_HTTP = path.join(REPO_ROOT, 'tests/e2e/fixtures/everything-http.mjs');
const HOSTILE_HTTP = path.join(REPO_ROOT, 'tests/e2e/fixtures/hostile-http.mjs');


const httpUpstream = (up, extra = {}) => ({ transport: 'http', url: `${up.base}/mcp`, allow_private_networks: true, ...extra });
const sseUpstream = (up, extra = {}) => ({ transport: 'sse', url: `${up.base}/sse`, allow_private_networks: true, ...extra });

describe('Streamable HTTP upstream, shared mode', { timeout: 120000 }, () => {
    let up, gw;
    before(async () => {
        up = await startUpstream(EVERYTHING_HTTP);
        gw = await startGateway({ upstream: httpUpstream(up, { headers: { 'X-Upstream-Key': 'configured-key' } }) });
    });
    after(async () => {
        if (gw) await gw.stop();
        if (up) await up.stop();
    });

    test('/health names the transport, the URL and the server', async () => {
        const h = (await gw.health()).upstreams[0];
        assert.equal(h.transport, 'http');
        assert.equal(h.status, 'up');
        assert.equal(h.url, `${up.base}/mcp`);
        assert.equal(h.server.name, 'mcp-servers/everything');
    });

    test('tools, resources, prompts and progress through the SDK client', async () => {
        const c = await connectSdk(gw);
        try {
            const { tools } = await c.client.listTools();
            assert.ok(tools.some(t => t.name === 'echo'));
            const e = await c.client.callTool({ name: 'echo', arguments: { message: 'over http' } });
            assert.equal(e.content[0].text, 'Echo: over http');
            const { resources } = await c.client.listResources();
            assert.ok(resources.length > 0);
            const r = await c.client.readResource({ uri: resources[0].uri });
            assert.equal(r.contents[0].uri, resources[0].uri);
            const { prompts } = await c.client.listPrompts();
            assert.ok(prompts.some(p => p.name === 'simple-prompt'));
            const progress = [];
            const lr = await withTimeout(
                c.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 3 } }, undefined, { onprogress: p => progress.push(p) }),
                15000,
                'long-running operation'
            );
            assert.match(lr.content[0].text, /completed/i);
            assert.equal(progress.length, 3, 'every progress notification reached the client, on its own request');
        } finally {
            await closeSdk(c);
        }
    });

    test('a 2026-07-28 client is served through the legacy remote server (bridged)', async () => {
        const r = await postModern(gw, 'tools/call', { name: 'echo', arguments: { message: 'modern' } }, { name: 'echo' });
        assert.equal(r.status, 200);
        assert.equal(r.message.result.content[0].text, 'Echo: modern');
    });

    test('50 concurrent sessions: every answer reaches its own client', async () => {
        const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => connectSdk(gw, { name: `c${i}` })));
        try {
            const answers = await Promise.all(clients.map((c, i) => c.client.callTool({ name: 'echo', arguments: { message: `client ${i}` } })));
            answers.forEach((a, i) => assert.equal(a.content[0].text, `Echo: client ${i}`));
        } finally {
            await Promise.all(clients.map(closeSdk));
        }
    });

    test('cancelling a call sends notifications/cancelled upstream for the id the upstream saw', async () => {
        const c = await connectSdk(gw);
        try {
            const ctl = new AbortController();
            const call = c.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 20, steps: 20 } }, undefined, {
                signal: ctl.signal,
                onprogress: () => ctl.abort('enough')
            });
            await assert.rejects(call);
            await waitFor(() => up.requests().some(r => r.body && /notifications\/cancelled/.test(r.body)), { message: 'notifications/cancelled upstream' });
            const sent = up.requests().filter(r => r.body && /trigger-long-running-operation/.test(r.body)).map(r => JSON.parse(r.body).id);
            const cancelled = up.requests().filter(r => r.body && /notifications\/cancelled/.test(r.body)).map(r => JSON.parse(r.body).params.requestId);
            assert.ok(cancelled.some(id => sent.includes(id)), `cancelled ${cancelled} names a request the upstream received (${sent})`);
        } finally {
            await closeSdk(c);
        }
    });

    test('the gateway sends its configured headers and never the client\'s', async () => {
        const before = up.requests().length;
        const r = await postMcp(gw, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: { name: 'x', version: '1' } } }, { headers: { Authorization: 'Bearer client-secret-token', Cookie: 'sid=client-cookie', 'X-Api-Key': 'client-api-key' } });
        const sid = r.headers.get('mcp-session-id');
        await (postMcp(gw, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'h' } } }, { sessionId: sid, headers: { Authorization: 'Bearer client-secret-token', 'X-Api-Key': 'client-api-key' } }));
        const seen = up.requests().slice(before).filter(r => r.headers);
        assert.ok(seen.length > 0);
        for (const r of seen) {
            const text = JSON.stringify(r.headers);
            assert.doesNotMatch(text, /client-secret-token|client-cookie|client-api-key/);
            assert.equal(r.headers.authorization, undefined);
            assert.equal(r.headers['x-upstream-key'], 'configured-key');
        }
    });
});

describe('Streamable HTTP upstream: the server goes away and comes back', { timeout: 120000 }, () => {
    test('clear errors while it is down, then recovery on the same client session', async () => {
        let up = await startUpstream(EVERYTHING_HTTP);
        const port = up.port;
        const gw = await startGateway({ upstream: httpUpstream(up, { restart_max_backoff_secs: 1 }) });
        const c = await connectSdk(gw);
        try {
            assert.equal((await c.client.callTool({ name: 'echo', arguments: { message: 'before' } })).content[0].text, 'Echo: before');
            await up.kill();
            const failed = await c.client.callTool({ name: 'echo', arguments: { message: 'during' } }).then(
                () => null,
                e => e
            );
            assert.ok(failed, 'a call while the server is down fails');
            assert.match(String(failed.message), /upstream default/, 'the error names the upstream');
            assert.doesNotMatch(String(failed.message), /127\.0\.0\.1/, 'and not its address');
            await waitFor(async () => (await gw.readyStatus()) === 503, { message: '/ready 503 while the upstream is down' });
            up = await startUpstream(EVERYTHING_HTTP, { port });
            await waitFor(async () => (await gw.readyStatus()) === 200, { timeoutMs: 20000, message: '/ready 200 after the upstream is back' });
            assert.equal((await c.client.callTool({ name: 'echo', arguments: { message: 'after' } })).content[0].text, 'Echo: after');
        } finally {
            await closeSdk(c);
            await gw.stop();
            await up.stop();
        }
    });
});

describe('Streamable HTTP upstream, per_session mode', { timeout: 120000 }, () => {
    let up, gw;
    before(async () => {
        up = await startUpstream(EVERYTHING_HTTP);
        gw = await startGateway({ upstream: httpUpstream(up, { mode: 'per_session', max_processes: 8 }) });
    });
    after(async () => {
        if (gw) await gw.stop();
        if (up) await up.stop();
    });

    test('sampling and elicitation round trips reach the client that asked', async () => {
        const c = await connectSdk(gw, { capabilities: { sampling: {}, elicitation: {} } });
        try {
            c.client.setRequestHandler(CreateMessageRequestSchema, async req => ({ role: 'assistant', content: { type: 'text', text: `sampled: ${req.params.messages[0].content.text}` }, model: 'e2e', stopReason: 'endTurn' }));
            c.client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { color: 'green' } }));
            const s = await withTimeout(c.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'remote?', maxTokens: 5 } }), 15000, 'sampling');
            assert.match(JSON.stringify(s.content), /sampled: .*remote\?/);
            const { tools } = await c.client.listTools();
            const elicit = tools.find(t => t.name === 'trigger-elicitation-request');
            if (elicit) {
                const r = await withTimeout(c.client.callTool({ name: elicit.name, arguments: {} }), 15000, 'elicitation');
                assert.ok(r.content.length > 0);
            }
            assert.equal((await gw.health()).upstreams[0].sessions_upstream, 1);
        } finally {
            await closeSdk(c);
        }
    });

    test('ending the client session ends the upstream session (DELETE)', async () => {
        const c = await connectSdk(gw);
        const before = up.requests().filter(r => r.method === 'DELETE').length;
        await closeSdk(c);
        await waitFor(() => up.requests().filter(r => r.method === 'DELETE').length > before, { message: 'DELETE upstream' });
        await waitFor(async () => (await gw.health()).upstreams[0].sessions_upstream === 0, { message: 'no upstream session left' });
    });

    test('an upstream that forgets the session: the client is told to initialize again (404)', async () => {
        const c = await connectSdk(gw);
        const sid = c.transport.sessionId;
        const port = up.port;
        await up.kill();
        up = await startUpstream(EVERYTHING_HTTP, { port });
        const r = await postMcp(gw, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, { sessionId: sid });
        assert.ok(r.message?.error, 'the call on the forgotten session fails');
        await waitFor(async () => (await postMcp(gw, { jsonrpc: '2.0', id: 10, method: 'tools/list' }, { sessionId: sid })).status === 404, { message: 'the gateway session ends: 404' });
        // mcp_server_session_duration_seconds says the gateway ended it because the upstream did.
        const scrape = (await httpGet(gw.port, '/metrics')).body;
        assert.match(scrape, /^mcp_server_session_duration_seconds_count\{mcp_protocol_version="[0-9-]+",network_transport="tcp",error_type="upstream_closed"\} 1$/m);
        const again = await connectSdk(gw);
        try {
            assert.equal((await again.client.callTool({ name: 'echo', arguments: { message: 'new session' } })).content[0].text, 'Echo: new session');
        } finally {
            await closeSdk(again);
            await closeSdk(c);
        }
    });
});

describe('legacy HTTP+SSE upstream (transport = "sse")', { timeout: 120000 }, () => {
    let up;
    before(async () => {
        up = await startUpstream(EVERYTHING_HTTP);
    });
    after(async () => {
        if (up) await up.stop();
    });

    for (const mode of ['shared', 'per_session']) {
        test(`${mode}: calls, progress and (per_session) sampling over the SSE stream`, async () => {
            const gw = await startGateway({ upstream: sseUpstream(up, { mode }) });
            const c = await connectSdk(gw, { capabilities: { sampling: {} } });
            try {
                c.client.setRequestHandler(CreateMessageRequestSchema, async () => ({ role: 'assistant', content: { type: 'text', text: 'sampled over sse' }, model: 'e2e', stopReason: 'endTurn' }));
                assert.equal((await c.client.callTool({ name: 'echo', arguments: { message: mode } })).content[0].text, `Echo: ${mode}`);
                const progress = [];
                await c.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 2 } }, undefined, { onprogress: p => progress.push(p) });
                assert.equal(progress.length, 2);
                if (mode === 'per_session') {
                    const s = await withTimeout(c.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 3 } }), 15000, 'sampling');
                    assert.match(JSON.stringify(s.content), /sampled over sse/);
                }
                assert.equal((await gw.health()).upstreams[0].transport, 'sse');
            } finally {
                await closeSdk(c);
                await gw.stop();
            }
        });
    }
});

describe('attacks on and by remote upstreams', { timeout: 120000 }, () => {
    test('an upstream URL whose name resolves to loopback is refused unless allow_private_networks', async () => {
        const up = await startUpstream(EVERYTHING_HTTP);
        try {
            const gw = await startGateway({ upstream: { transport: 'http', url: `http://localhost:${up.port}/mcp` }, ready: false });
            try {
                await waitFor(async () => /SSRF/.test((await gw.health()).upstreams[0].error ?? ''), { message: 'the SSRF refusal in /health' });
                assert.equal(await gw.readyStatus(), 503);
                assert.equal(up.requests().length, 0, 'nothing reached the upstream');
            } finally {
                await gw.stop();
            }
            const ok = await startGateway({ upstream: { transport: 'http', url: `http://localhost:${up.port}/mcp`, allow_private_networks: true } });
            await ok.stop();
        } finally {
            await up.stop();
        }
    });

    test('a proxy from the environment cannot carry a fetch around the SSRF rule', async () => {
        // Through a proxy, the address the gateway connects to is the proxy's:
        // the gateway must ignore http_proxy and friends, so the rule still sees
        // (and refuses) the real target, and the proxy never hears of it.
        const seen = [];
        const proxy = http.createServer((req, res) => {
            seen.push(req.url);
            res.writeHead(502).end();
        });
        await new Promise(resolve => proxy.listen(0, '127.0.0.1', resolve));
        const saved = { http_proxy: process.env.http_proxy, HTTP_PROXY: process.env.HTTP_PROXY, all_proxy: process.env.all_proxy };
        const url = `http://127.0.0.1:${proxy.address().port}`;
        Object.assign(process.env, { http_proxy: url, HTTP_PROXY: url, all_proxy: url });
        let gw;
        try {
            gw = await startGateway({ upstream: { transport: 'http', url: 'http://169.254.169.254/mcp', allow_private_networks: true }, ready: false });
        } finally {
            for (const [k, v] of Object.entries(saved)) {
                if (v === undefined) delete process.env[k];
                else process.env[k] = v;
            }
        }
        try {
            await waitFor(async () => /SSRF/.test((await gw.health()).upstreams[0].error ?? ''), { message: 'the SSRF refusal in /health' });
            assert.deepEqual(seen, [], 'nothing went through the proxy');
        } finally {
            await gw.stop();
            proxy.close();
        }
    });

    test('the cloud metadata address is refused even with allow_private_networks', async () => {
        const gw = await startGateway({ upstream: { transport: 'http', url: 'http://169.254.169.254/mcp', allow_private_networks: true }, ready: false });
        try {
            await waitFor(async () => /SSRF/.test((await gw.health()).upstreams[0].error ?? ''), { message: 'the SSRF refusal in /health' });
        } finally {
            await gw.stop();
        }
    });

    test('a JWKS URL whose name resolves to loopback is refused unless allowed', async () => {
        const up = await startUpstream(EVERYTHING_HTTP);
        try {
            const gw = await startAuthGateway({ auth: { jwt: { mode: 'jwks', jwks_url: `http://localhost:${up.port}/jwks.json`, issuer: 'x', audience: ['y'] } } });
            try {
                await waitFor(() => /jwks .*address refused by the SSRF rule/.test(gw.stderr), { message: 'the JWKS refusal in the log' });
                assert.equal(up.requests().length, 0, 'the JWKS request never left');
            } finally {
                await gw.stop();
            }
        } finally {
            await up.stop();
        }
    });

    test('an SSE endpoint event on another origin is refused', async () => {
        const up = await startUpstream(HOSTILE_HTTP, { args: ['--endpoint', 'http://127.0.0.2:9/message'] });
        try {
            const gw = await startGateway({ upstream: sseUpstream(up), ready: false });
            try {
                await waitFor(() => /endpoint event names another origin/.test(gw.stderr), { message: 'the refusal in the log' });
                assert.equal(await gw.readyStatus(), 503);
            } finally {
                await gw.stop();
            }
        } finally {
            await up.stop();
        }
    });

    test('a 100 MB answer, an endless SSE stream and an endless event are cut; the gateway keeps serving', async () => {
        const up = await startUpstream(HOSTILE_HTTP);
        const gw = await startGateway({ server: { request_timeout_secs: 3 }, upstream: httpUpstream(up, { max_message_bytes: 1048576 }) });
        const c = await connectSdk(gw);
        try {
            const big = await c.client.callTool({ name: 'big', arguments: {} }).then(() => null, e => e);
            assert.match(String(big?.message), /larger than max_message_bytes/);
            const huge = await c.client.callTool({ name: 'hugeevent', arguments: {} }).then(() => null, e => e);
            assert.match(String(huge?.message), /larger than max_message_bytes/);
            const endless = await withTimeout(c.client.callTool({ name: 'endless', arguments: {} }, undefined, { timeout: 20000 }).then(() => null, e => e), 25000, 'endless stream');
            assert.ok(endless, 'the endless stream ends in an error (the request timeout)');
            await waitFor(() => /closed by client: big/.test(up.stderr) && /closed by client: endless/.test(up.stderr) && /closed by client: hugeevent/.test(up.stderr), {
                message: 'the gateway closed every hostile transfer'
            });
            assert.equal((await c.client.callTool({ name: 'ok', arguments: {} })).content[0].text, 'fine');
            const sent = Number(/closed by client: big after (\d+) bytes/.exec(up.stderr)[1]);
            assert.ok(sent < 50 * 1024 * 1024, `the gateway stopped reading the 100 MB answer early (${sent} bytes sent)`);
        } finally {
            await closeSdk(c);
            await gw.stop();
            await up.stop();
        }
    });
});

describe('backpressure from a slow client', { timeout: 120000 }, () => {
    test('a client that stops reading holds the upstream stream; reading again resumes it', async () => {
        const up = await startUpstream(HOSTILE_HTTP);
        const gw = await startGateway({ server: { request_timeout_secs: 60 }, upstream: httpUpstream(up) });
        const sentSoFar = () => {
            const all = [...up.stderr.matchAll(/flood: (\d+) bytes/g)];
            return all.length ? Number(all[all.length - 1][1]) : 0;
        };
        const ctl = new AbortController();
        try {
            const init = await postMcp(gw, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: { name: 'slow', version: '1' } } });
            const sid = init.headers.get('mcp-session-id');
            const res = await fetch(gw.mcpUrl, {
                method: 'POST',
                signal: ctl.signal,
                headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
                body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'flood', arguments: {}, _meta: { progressToken: 'slow' } } })
            });
            assert.equal(res.headers.get('content-type'), 'text/event-stream');
            // The client reads nothing: after the pipes fill up, the server must stall.
            await waitFor(() => sentSoFar() > 0, { message: 'the flood started' });
            await new Promise(r => setTimeout(r, 3000));
            const held = sentSoFar();
            await new Promise(r => setTimeout(r, 2000));
            const later = sentSoFar();
            assert.ok(later - held < 2 * 1024 * 1024, `the upstream was held while the client did not read (${held} then ${later} bytes)`);
            assert.ok(later < 24 * 1024 * 1024, `the gateway did not buffer the stream for the client (${later} bytes sent)`);
            // Reading again lets the stream go on.
            const reader = res.body.getReader();
            let got = 0;
            while (got < 8 * 1024 * 1024) got += (await reader.read()).value?.length ?? 0;
            await waitFor(() => sentSoFar() > later + 4 * 1024 * 1024, { message: 'the stream resumed' });
            ctl.abort();
            await waitFor(() => /closed by client: flood/.test(up.stderr), { message: 'the gateway closed the upstream stream' });
        } finally {
            ctl.abort();
            await gw.stop();
            await up.stop();
        }
    });
});

describe('per-identity upstream credentials', { timeout: 120000 }, () => {
    test('each identity reaches the upstream with its own headers; others with the upstream\'s', async () => {
        const up = await startUpstream(EVERYTHING_HTTP);
        const alice = keygen('alice');
        const bob = keygen('bob');
        const gw = await startAuthGateway(
            { auth: { api_keys: [{ id: 'alice', key_hash: alice.hash }, { id: 'bob', key_hash: bob.hash }] } },
            { upstream: httpUpstream(up, { mode: 'per_session', headers: { Authorization: 'Bearer shared-token' }, identity_headers: [{ identity: 'api_key:alice', headers: { Authorization: 'Bearer alice-upstream-token' } }] }) }
        );
        try {
            for (const who of [alice, bob]) {
                const c = await connectSdk(gw, { transportOptions: { requestInit: { headers: { Authorization: `Bearer ${who.key}` } } } });
                try {
                    await c.client.callTool({ name: 'echo', arguments: { message: `from ${who.id}` } });
                } finally {
                    await closeSdk(c);
                }
            }
            const reqs = up.requests().filter(r => r.body && /"echo"/.test(r.body));
            const byMsg = m => reqs.find(r => r.body.includes(m));
            assert.equal(byMsg('from alice').headers.authorization, 'Bearer alice-upstream-token');
            assert.equal(byMsg('from bob').headers.authorization, 'Bearer shared-token');
            for (const r of up.requests()) assert.doesNotMatch(JSON.stringify(r.headers ?? {}), /mcp_/, 'no client API key upstream');
        } finally {
            await gw.stop();
            await up.stop();
        }
    });
});

describe('trace context toward HTTP upstreams', { timeout: 60000 }, () => {
    test('a traced request carries traceparent as an HTTP header to the upstream', async () => {
        // A minimal OTLP receiver: the spans themselves are tracing.test.mjs's business.
        const otlp = http.createServer((req, res) => {
            req.resume();
            req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'));
        });
        await new Promise(resolve => otlp.listen(0, '127.0.0.1', resolve));
        const up = await startUpstream(EVERYTHING_HTTP);
        const alice = keygen('alice');
        const gw = await startAuthGateway(
            {
                auth: { api_keys: [{ id: 'alice', key_hash: alice.hash }] },
                tracing: { enabled: true, otlp_endpoint: `http://127.0.0.1:${otlp.address().port}`, sample_rate: 1.0, allow_private_networks: true }
            },
            { upstream: httpUpstream(up) }
        );
        const c = await connectSdk(gw, { transportOptions: { requestInit: { headers: { Authorization: `Bearer ${alice.key}` } } } });
        try {
            await c.client.callTool({ name: 'echo', arguments: { message: 'traced over http' } });
            const call = up.requests().find(r => r.body && r.body.includes('traced over http') && r.headers);
            assert.ok(call, 'the call reached the upstream');
            assert.match(call.headers.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
            assert.equal(JSON.parse(call.body).params._meta.traceparent, call.headers.traceparent, 'the header and _meta agree');
        } finally {
            await closeSdk(c);
            await gw.stop();
            await up.stop();
            otlp.close();
        }
    });
});
