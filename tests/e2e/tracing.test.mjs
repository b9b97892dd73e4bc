// OpenTelemetry tracing through the real gateway: a real OTLP/HTTP receiver
// written here collects the batches (binary protobuf by default, decoded with
// protobufjs; JSON with otlp_protocol = "http/json"), server-everything behind the tap
// records what the upstream received. Checked: the SERVER span's name and
// semantic-convention attributes, its children (authentication, rate limit,
// the CLIENT upstream call) linked by parentSpanId, the client's
// params._meta.traceparent as the parent (the HTTP traceparent then a link),
// the context reaching the upstream in params._meta, sampling, and the
// exporter's retry of a 503 over the connection it keeps, and a collector's
// partial success logged. In front of an HTTP upstream (server-everything
// over Streamable HTTP): the CLIENT span's transport, server address,
// resource URI and error.type, and the client-side histogram
// mcp_client_operation_duration_seconds counting the same calls.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { REPO_ROOT, freePort, readTap, runCli, startHttpFixture, tapUpstream, tempDir, waitFor } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';
import { decodeTraces, partialSuccess, statusCode } from './otlp.mjs';

const PROTOBUF = 'application/x-protobuf';

/* An OTLP/HTTP receiver: every POST /v1/traces body decoded as its
 * Content-Type says (a body that does not decode fails the test); the
 * first `failFirst` requests are answered 503 with Retry-After: 0; a
 * success is answered with `answer` (a protobuf ExportTraceServiceResponse)
 * or an empty one, in the request's encoding. */
async function startReceiver({ failFirst = 0, answer = null, holdFirstMs = 0 } = {}) {
    const port = await freePort();
    const batches = [];
    let held = false;
    const types = []; // the Content-Type of every batch taken
    const errors = [];
    const conns = []; // the client's port of every request
    const heads = []; // the headers of every request
    const sizes = []; // the bytes of every body taken, as sent
    let refused = 0;
    const srv = http.createServer((req, res) => {
        conns.push(req.socket.remotePort);
        heads.push(req.headers);
        const parts = [];
        req.on('data', d => parts.push(d));
        req.on('end', () => {
            const type = req.headers['content-type'];
            if (req.method !== 'POST' || req.url !== '/v1/traces' || (type !== PROTOBUF && type !== 'application/json')) {
                res.writeHead(404).end();
                return;
            }
            if (refused < failFirst) {
                refused++;
                res.writeHead(503, { 'retry-after': '0' }).end();
                return;
            }
            try {
                // as a collector does: the body decoded as Content-Encoding says
                const enc = req.headers['content-encoding'];
                if (enc !== undefined && enc !== 'gzip') throw new Error(`Content-Encoding ${enc}`);
                const raw = Buffer.concat(parts);
                sizes.push(raw.length);
                batches.push(decodeTraces(enc === 'gzip' ? gunzipSync(raw) : raw, type));
                types.push(type);
            } catch (e) {
                errors.push(String(e));
                res.writeHead(400).end();
                return;
            }
            const answerNow = () => {
                if (type === PROTOBUF) res.writeHead(200, { 'content-type': PROTOBUF }).end(answer ?? Buffer.alloc(0));
                else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
            };
            if (holdFirstMs && !held) {
                held = true; // a slow collector: the first export waits
                setTimeout(answerNow, holdFirstMs);
            } else answerNow();
        });
    });
    await new Promise(resolve => srv.listen(port, '127.0.0.1', resolve));
    return {
        url: `http://127.0.0.1:${port}`,
        get refused() {
            return refused;
        },
        conns,
        heads,
        sizes,
        types,
        errors,
        spans: () => batches.flatMap(b => b.resourceSpans.flatMap(r => r.scopeSpans.flatMap(s => s.spans.map(sp => ({ ...sp, resource: r.resource }))))),
        batchSizes: () => batches.map(b => b.resourceSpans.reduce((n, r) => n + r.scopeSpans.reduce((m, s) => m + s.spans.length, 0), 0)),
        close: () => new Promise(resolve => srv.close(resolve))
    };
}

const attr = (span, key) => {
    const a = span.attributes.find(x => x.key === key);
    return a ? (a.value.stringValue ?? a.value.intValue) : undefined;
};

const hex = n => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

describe('OpenTelemetry tracing', { timeout: 120000, concurrency: 1 }, () => {
    let receiver;
    let gw;
    let tap;
    const bob = keygen('bob');
    const auth = { 'x-api-key': bob.key };
    const clientTrace = hex(32);
    const clientSpan = hex(16);
    const httpTrace = hex(32);
    const httpSpan = hex(16);
    let scrape = '';

    before(async () => {
        receiver = await startReceiver({ failFirst: 1 });
        tap = path.join(tempDir('mcp-guard-trace-'), 'tap.jsonl');
        gw = await startAuthGateway(
            {
                auth: { api_keys: [{ id: 'bob', key_hash: bob.hash }] },
                rate_limit: { requests_per_second: 100000, burst_size: 100000 },
                tracing: { enabled: true, otlp_endpoint: receiver.url, sample_rate: 1.0, allow_private_networks: true, service_name: 'guard-e2e' }
            },
            { upstream: tapUpstream(tap) }
        );
        const init = await gw.initialize(auth);
        assert.equal(init.status, 200);
        const sid = init.sessionId;
        const call = (id, name, args, meta, headers = {}) =>
            gw.mcp({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } }, { headers: { ...auth, ...headers }, sessionId: sid, protocolVersion: '2025-11-25' });
        // 7: the client's context in _meta, and another in the HTTP header (a link).
        const r7 = await call(7, 'echo', { message: 'traced' }, { traceparent: `00-${clientTrace}-${clientSpan}-01`, tracestate: 'vendor=abc' }, { traceparent: `00-${httpTrace}-${httpSpan}-01` });
        assert.equal(r7.status, 200);
        assert.equal(r7.message.result.content[0].text, 'Echo: traced');
        // 8: no context: a new root trace (sample_rate 1).
        assert.equal((await call(8, 'echo', { message: 'root' })).status, 200);
        // 9: the client says "not sampled": no spans, nothing added upstream.
        assert.equal((await call(9, 'echo', { message: 'quiet' }, { traceparent: `00-${hex(32)}-${hex(16)}-00` })).status, 200);
        // 10: an invalid traceparent (uppercase hex) is ignored: a new root.
        assert.equal((await call(10, 'echo', { message: 'bad' }, { traceparent: `00-${clientTrace.toUpperCase()}-${clientSpan}-01` })).status, 200);
        // 11-13: the context added to the client's own bytes: into a _meta that
        // holds something else, into empty params, with the id after params
        // and the HTTP tracestate carried along.
        const raw = (text, headers = {}) => gw.mcp(text, { headers: { ...auth, ...headers }, sessionId: sid, protocolVersion: '2025-11-25' });
        const r11 = await raw('{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"echo","arguments":{"message":"meta-kept"},"_meta":{"example.com/tag":"t1"}}}');
        assert.equal(r11.message.id, 11);
        assert.equal(r11.message.result.content[0].text, 'Echo: meta-kept');
        const r12 = await raw('{"jsonrpc":"2.0","id":"list-12","method":"tools/list","params":{ }}');
        assert.equal(r12.message.id, 'list-12');
        assert.ok(r12.message.result.tools.length > 0);
        const r13 = await raw('{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"message":"id-last"}},"id":13}', { traceparent: `00-${httpTrace}-${httpSpan}-01`, tracestate: 'http=1' });
        assert.equal(r13.message.id, 13);
        assert.equal(r13.message.result.content[0].text, 'Echo: id-last');
        // The first batch was refused (503) and retried; a graceful stop then
        // exports what is still queued.
        await waitFor(() => receiver.refused === 1 && receiver.spans().length > 0, { message: 'a batch after the 503' });
        // (the exporter counts a batch after the collector answered: poll)
        await waitFor(async () => {
            scrape = (await gw.request('/metrics', { headers: auth })).body;
            return /^mcp_guard_trace_spans_exported_total [1-9]/m.test(scrape);
        }, { message: 'the exported count' });
        await gw.stop();
        gw = null;
    });

    after(async () => {
        await gw?.stop();
        await receiver?.close();
    });

    test('a SERVER span per request, named and attributed per the MCP semantic conventions', () => {
        const spans = receiver.spans();
        const server = spans.filter(s => s.kind === 2);
        const byId = id => server.find(s => attr(s, 'jsonrpc.request.id') === id);
        const s7 = byId('7');
        assert.ok(s7, JSON.stringify(server.map(s => s.name)));
        assert.equal(s7.name, 'tools/call echo');
        assert.equal(attr(s7, 'mcp.method.name'), 'tools/call');
        assert.equal(attr(s7, 'gen_ai.tool.name'), 'echo');
        assert.equal(attr(s7, 'gen_ai.operation.name'), 'execute_tool');
        assert.equal(attr(s7, 'mcp.protocol.version'), '2025-11-25');
        assert.match(attr(s7, 'mcp.session.id'), /^[0-9a-f]{32}$/);
        assert.equal(attr(s7, 'network.transport'), 'tcp');
        assert.equal(attr(s7, 'client.address'), '127.0.0.1');
        assert.equal(attr(s7, 'error.type'), undefined);
        assert.equal(attr(s7, 'mcp.tool.name'), undefined, 'old draft names are not emitted');
        assert.equal(statusCode(s7), 0);
        assert.match(s7.startTimeUnixNano, /^\d+$/);
        assert.ok(BigInt(s7.endTimeUnixNano) >= BigInt(s7.startTimeUnixNano));
        assert.equal(attr({ attributes: s7.resource.attributes }, 'service.name'), 'guard-e2e');
        // The client's _meta context is the parent; the HTTP context a link.
        assert.equal(s7.traceId, clientTrace);
        assert.equal(s7.parentSpanId, clientSpan);
        assert.deepEqual(s7.links, [{ traceId: httpTrace, spanId: httpSpan }]);
        // The root trace and the invalid context: new traces, no parent.
        for (const id of ['8', '10']) {
            const s = byId(id);
            assert.ok(s, `span of request ${id}`);
            assert.equal(s.parentSpanId, undefined);
            assert.notEqual(s.traceId, clientTrace);
            assert.match(s.traceId, /^[0-9a-f]{32}$/);
        }
        // Not sampled by the client: nothing.
        assert.equal(byId('9'), undefined);
        // initialize answered by the gateway: a span too.
        assert.ok(server.some(s => s.name === 'initialize' && attr(s, 'mcp.method.name') === 'initialize'));
        assert.ok(server.some(s => s.name === 'notifications/initialized'));
    });

    test('children: authentication, rate limit and the CLIENT upstream call, linked by parentSpanId', () => {
        const spans = receiver.spans();
        const s7 = spans.find(s => s.kind === 2 && attr(s, 'jsonrpc.request.id') === '7');
        const children = spans.filter(s => s.parentSpanId === s7.spanId);
        assert.deepEqual(children.map(s => s.name).sort(), ['authenticate', 'rate_limit', 'tools/call echo']);
        for (const c of children) assert.equal(c.traceId, clientTrace);
        const client = children.find(s => s.kind === 3);
        assert.equal(attr(client, 'network.transport'), 'pipe');
        assert.match(attr(client, 'mcp.protocol.version'), /^\d{4}-\d{2}-\d{2}$/);
        assert.equal(attr(client, 'mcp.method.name'), 'tools/call');
        assert.equal(children.find(s => s.name === 'authenticate').kind, 1);
        const ids = new Set(spans.map(s => s.spanId));
        assert.equal(ids.size, spans.length, 'span ids are unique');
    });

    test('the context reaches the upstream in params._meta; unsampled requests are relayed untouched', () => {
        const spans = receiver.spans();
        const seen = readTap(tap).filter(m => m.method === 'tools/call');
        const traced = seen.find(m => m.params.arguments.message === 'traced');
        const client = spans.find(s => s.kind === 3 && s.traceId === clientTrace);
        assert.equal(traced.params._meta.traceparent, `00-${clientTrace}-${client.spanId}-01`);
        assert.equal(traced.params._meta.tracestate, 'vendor=abc');
        const root = seen.find(m => m.params.arguments.message === 'root');
        assert.match(root.params._meta.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
        const quiet = seen.find(m => m.params.arguments.message === 'quiet');
        assert.match(quiet.params._meta.traceparent, /-00$/, 'the client\'s own _meta passes unchanged');
        const kept = seen.find(m => m.params.arguments.message === 'meta-kept');
        assert.equal(kept.params._meta['example.com/tag'], 't1');
        assert.match(kept.params._meta.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
        const listed = readTap(tap).find(m => m.method === 'tools/list' && m.params?._meta?.traceparent);
        assert.ok(listed, 'tools/list with empty params got the context');
        assert.deepEqual(Object.keys(listed.params), ['_meta']);
        const idLast = seen.find(m => m.params.arguments.message === 'id-last');
        assert.equal(idLast.params._meta.traceparent.slice(3, 35), httpTrace);
        assert.equal(idLast.params._meta.tracestate, 'http=1');
        assert.ok(Number.isInteger(idLast.id), 'the gateway\'s own id went upstream');
    });

    test('the exporter retried the 503 on its kept-alive connection, and nothing carries a key', () => {
        assert.equal(receiver.refused, 1);
        assert.ok(receiver.conns.length >= 2);
        assert.ok(new Set(receiver.conns).size < receiver.conns.length, `a connection per request: ${receiver.conns}`);
        assert.match(scrape, /^mcp_guard_trace_export_failures_total 1$/m);
        assert.match(scrape, /^mcp_guard_trace_spans_exported_total [1-9]\d*$/m);
        assert.match(scrape, /^mcp_guard_trace_spans_dropped_total 0$/m);
        const text = JSON.stringify(receiver.spans());
        assert.ok(!text.includes(bob.key) && !text.includes(bob.hash) && !text.includes('api_key:'));
    });

    test('the spans went as binary protobuf (otlp_protocol\'s default), every batch a valid ExportTraceServiceRequest', () => {
        assert.deepEqual(receiver.errors, []);
        assert.ok(receiver.types.length >= 1);
        assert.ok(receiver.types.every(t => t === PROTOBUF), receiver.types.join());
    });
});

describe('an HTTP upstream: the CLIENT span and mcp_client_operation_duration_seconds', { timeout: 60000, concurrency: 1 }, () => {
    const dana = keygen('dana');
    const auth = { 'x-api-key': dana.key };
    const URI = 'demo://resource/dynamic/text/1';
    let receiver;
    let up;
    let scrape = '';
    let upstreamVersion;
    const answers = {};

    before(async () => {
        receiver = await startReceiver();
        up = await startHttpFixture(path.join(REPO_ROOT, 'tests/e2e/fixtures/everything-http.mjs'));
        const gw = await startAuthGateway(
            {
                auth: { api_keys: [{ id: 'dana', key_hash: dana.hash }] },
                tracing: { enabled: true, otlp_endpoint: receiver.url, sample_rate: 1.0, allow_private_networks: true }
            },
            { upstream: { transport: 'http', url: `${up.base}/mcp`, allow_private_networks: true, request_timeout_secs: 1 } }
        );
        try {
            const init = await gw.initialize(auth);
            assert.equal(init.status, 200);
            const send = async (id, method, params) => {
                const r = await gw.mcp({ jsonrpc: '2.0', id, method, params }, { headers: auth, sessionId: init.sessionId, protocolVersion: '2025-11-25' });
                assert.equal(r.status, 200, r.text);
                answers[id] = r.message;
            };
            await send(11, 'tools/call', { name: 'echo', arguments: { message: 'over http' } });
            assert.equal(answers[11].result.content[0].text, 'Echo: over http');
            await send(12, 'resources/read', { uri: URI });
            assert.equal(answers[12].result.contents[0].uri, URI);
            await send(13, 'tools/call', { name: 'get-resource-reference', arguments: { resourceType: 'text', resourceId: -5 } });
            assert.equal(answers[13].result.isError, true);
            await send(14, 'prompts/get', { name: 'no-such-prompt', arguments: {} });
            assert.ok(Number.isInteger(answers[14].error?.code), JSON.stringify(answers[14]));
            // Longer than the upstream's request_timeout_secs: the gateway gives up.
            await send(15, 'tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 10.5, steps: 1 } });
            assert.equal(answers[15].error.data.mcpGuard, 'timeout');
            scrape = (await gw.request('/metrics', { headers: auth })).body;
            // the version the gateway negotiated with the upstream, as /health reports it
            const health = await gw.get('/health', { headers: auth });
            upstreamVersion = JSON.stringify(health.json).match(/"protocol_version":"([^"]+)"/)?.[1];
            assert.match(upstreamVersion ?? '', /^\d{4}-\d{2}-\d{2}$/, JSON.stringify(health.json));
        } finally {
            await gw.stop(); // exports what is queued
        }
    });

    after(async () => {
        await up?.stop();
        await receiver?.close();
    });

    const client = id => {
        const spans = receiver.spans();
        const server = spans.find(s => s.kind === 2 && attr(s, 'jsonrpc.request.id') === String(id));
        assert.ok(server, `the SERVER span of request ${id}`);
        const c = spans.find(s => s.kind === 3 && s.parentSpanId === server.spanId);
        assert.ok(c, `the CLIENT span of request ${id}`);
        return { server, client: c };
    };

    test('the CLIENT span says tcp, the upstream\'s address and port, and its name', () => {
        const { server, client: c } = client(11);
        assert.equal(c.name, 'tools/call echo');
        assert.equal(attr(c, 'network.transport'), 'tcp');
        assert.equal(attr(c, 'network.protocol.name'), 'http');
        assert.equal(attr(c, 'server.address'), '127.0.0.1');
        assert.equal(Number(attr(c, 'server.port')), up.port);
        assert.equal(attr(c, 'mcp_guard.upstream'), 'default');
        assert.equal(attr(c, 'mcp.protocol.version'), upstreamVersion, 'the version the gateway speaks with the upstream');
        assert.equal(attr(c, 'gen_ai.operation.name'), 'execute_tool');
        assert.equal(attr(c, 'error.type'), undefined);
        assert.equal(statusCode(c), 0);
        // The SERVER span: the client's side of the connection.
        assert.equal(attr(server, 'network.protocol.version'), '1.1');
        assert.ok(Number(attr(server, 'client.port')) > 0);
    });

    test('resources/read: mcp.resource.uri on both spans', () => {
        const { server, client: c } = client(12);
        assert.equal(server.name, 'resources/read');
        assert.equal(attr(server, 'mcp.resource.uri'), URI);
        assert.equal(attr(c, 'mcp.resource.uri'), URI);
        // Not on other methods.
        assert.equal(attr(client(11).server, 'mcp.resource.uri'), undefined);
    });

    test('error.type on the CLIENT span: tool_error, the upstream\'s JSON-RPC code, timeout', () => {
        const te = client(13).client;
        assert.equal(attr(te, 'error.type'), 'tool_error');
        assert.equal(statusCode(te), 2);
        const code = String(answers[14].error.code);
        const bad = client(14);
        assert.equal(attr(bad.client, 'error.type'), code);
        assert.equal(attr(bad.client, 'rpc.response.status_code'), code);
        assert.equal(attr(bad.server, 'error.type'), code);
        const late = client(15);
        assert.equal(attr(late.client, 'error.type'), 'timeout');
        assert.equal(statusCode(late.client), 2);
        assert.equal(attr(late.server, 'error.type'), '-32603', 'the client got the gateway\'s -32603');
    });

    test('mcp_client_operation_duration_seconds counts the same calls by method and error type', () => {
        const count = labels => {
            const want = Object.entries({ upstream: 'default', network_transport: 'tcp', ...labels }).map(([k, v]) => `${k}="${v}"`);
            return scrape
                .split('\n')
                .filter(l => l.startsWith('mcp_client_operation_duration_seconds_count{') && want.every(w => l.includes(w)))
                .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
        };
        assert.equal(count({ mcp_method_name: 'tools/call', error_type: '' }), 1);
        assert.equal(count({ mcp_method_name: 'resources/read', error_type: '' }), 1);
        assert.equal(count({ mcp_method_name: 'tools/call', error_type: 'tool_error' }), 1);
        assert.equal(count({ mcp_method_name: 'prompts/get', error_type: String(answers[14].error.code) }), 1);
        assert.equal(count({ mcp_method_name: 'tools/call', error_type: 'timeout' }), 1);
        assert.doesNotMatch(scrape, /mcp_client_operation_duration_seconds_count\{[^}]*network_transport="pipe"/);
    });
});

describe('otlp_protocol and the collector\'s answer', { timeout: 60000, concurrency: 1 }, () => {
    const alice = keygen('alice');
    const auth = { 'x-api-key': alice.key };
    const run = async (receiver, tracing) => {
        const gw = await startAuthGateway({
            auth: { api_keys: [{ id: 'alice', key_hash: alice.hash }] },
            tracing: { enabled: true, otlp_endpoint: receiver.url, sample_rate: 1.0, allow_private_networks: true, ...tracing }
        });
        try {
            const init = await gw.initialize(auth);
            assert.equal(init.status, 200);
            const r = await gw.mcp(
                { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } },
                { headers: auth, sessionId: init.sessionId, protocolVersion: '2025-11-25' }
            );
            assert.equal(r.status, 200);
            const missing = await gw.mcp(
                { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'no-such-tool', arguments: {} } },
                { headers: auth, sessionId: init.sessionId, protocolVersion: '2025-11-25' }
            );
            assert.equal(missing.status, 200);
        } finally {
            await gw.stop(); // exports what is queued
        }
        return gw;
    };

    test('"http/json" sends OTLP/JSON with the same spans', async () => {
        const receiver = await startReceiver();
        try {
            await run(receiver, { otlp_protocol: 'http/json' });
            assert.deepEqual(receiver.errors, []);
            assert.ok(receiver.types.length >= 1 && receiver.types.every(t => t === 'application/json'), receiver.types.join());
            const call = receiver.spans().find(s => s.kind === 2 && attr(s, 'jsonrpc.request.id') === '2');
            assert.equal(call.name, 'tools/call echo');
            assert.equal(attr(call, 'gen_ai.tool.name'), 'echo');
        } finally {
            await receiver.close();
        }
    });

    test('otlp_compression = "gzip" sends gzip bodies (Content-Encoding: gzip) with the same spans', async () => {
        const plain = await startReceiver();
        const zipped = await startReceiver();
        try {
            await run(plain, {});
            await run(zipped, { otlp_compression: 'gzip' });
            assert.deepEqual(zipped.errors, []);
            assert.ok(zipped.heads.length >= 1);
            for (const h of zipped.heads) assert.equal(h['content-encoding'], 'gzip');
            for (const h of plain.heads) assert.equal(h['content-encoding'], undefined);
            const names = r => r.spans().map(s => s.name).sort();
            assert.deepEqual(names(zipped), names(plain));
            const call = zipped.spans().find(s => s.kind === 2 && attr(s, 'jsonrpc.request.id') === '2');
            assert.equal(call.name, 'tools/call echo');
            assert.equal(attr(call, 'gen_ai.tool.name'), 'echo');
            const bytes = r => r.sizes.reduce((a, b) => a + b, 0);
            assert.ok(bytes(zipped) * 2 < bytes(plain), `${bytes(zipped)} bytes gzip, ${bytes(plain)} plain`);
        } finally {
            await plain.close();
            await zipped.close();
        }
    });

    test('otlp_headers go with every export (values from the file too) and never into a log line', async () => {
        const receiver = await startReceiver();
        const secret = `hc_${hex(24)}`;
        const file = path.join(tempDir('mcp-guard-otlp-'), 'team-key');
        writeFileSync(file, `${secret}\n`, { mode: 0o600 });
        try {
            const gw = await run(receiver, { otlp_headers: { 'X-Scope-OrgID': 'tenant-1' }, otlp_headers_file: { 'x-honeycomb-team': file } });
            assert.ok(receiver.heads.length >= 1);
            for (const h of receiver.heads) {
                assert.equal(h['x-scope-orgid'], 'tenant-1');
                assert.equal(h['x-honeycomb-team'], secret);
                assert.equal(h['content-type'], PROTOBUF, 'one Content-Type, the gateway\'s');
            }
            assert.ok(!gw.stderr.includes(secret) && !gw.stdout.includes(secret), 'the key is not logged');
        } finally {
            await receiver.close();
        }
    });

    test('protobuf: an error span carries status ERROR, and a partial success is logged, not resent', async () => {
        const receiver = await startReceiver({ answer: partialSuccess(2, 'two spans had no name') });
        try {
            const gw = await run(receiver, {});
            assert.deepEqual(receiver.errors, []);
            const failed = receiver.spans().find(s => s.kind === 2 && attr(s, 'jsonrpc.request.id') === '3');
            assert.ok(failed, JSON.stringify(receiver.spans().map(s => s.name)));
            assert.equal(statusCode(failed), 2);
            assert.ok(attr(failed, 'error.type'), 'error.type set');
            assert.match(gw.stderr, /tracing: the collector rejected 2 span\(s\) of \d+: two spans had no name/);
            assert.equal(receiver.refused, 0);
            const sent = receiver.types.length;
            assert.ok(sent >= 1);
            assert.equal(new Set(receiver.spans().map(s => s.spanId)).size, receiver.spans().length, 'nothing was sent twice');
        } finally {
            await receiver.close();
        }
    });
});

describe('tracing queue_size and export_batch_size', { timeout: 60000, concurrency: 1 }, () => {
    const carol = keygen('carol');
    const auth = { 'x-api-key': carol.key };
    const metric = (scrape, name) => Number((scrape.match(new RegExp(`^${name} (\\d+)$`, 'm')) ?? [])[1]);
    const load = async (receiver, tracing, calls) => {
        const gw = await startAuthGateway({
            auth: { api_keys: [{ id: 'carol', key_hash: carol.hash }] },
            rate_limit: { requests_per_second: 100000, burst_size: 100000 },
            tracing: { enabled: true, otlp_endpoint: receiver.url, sample_rate: 1.0, allow_private_networks: true, ...tracing }
        });
        let scrape = '';
        try {
            const init = await gw.initialize(auth);
            assert.equal(init.status, 200);
            await Promise.all(Array.from({ length: calls }, (_, i) =>
                gw.mcp({ jsonrpc: '2.0', id: 100 + i, method: 'tools/call', params: { name: 'echo', arguments: { message: `m${i}` } } },
                    { headers: auth, sessionId: init.sessionId, protocolVersion: '2025-11-25' }).then(r => assert.equal(r.status, 200))));
            // every span is accounted for, exported or dropped, before the stop
            await waitFor(async () => {
                scrape = (await gw.request('/metrics', { headers: auth })).body;
                return metric(scrape, 'mcp_guard_trace_queue_spans') === 0 && metric(scrape, 'mcp_guard_trace_spans_exported_total') === receiver.spans().length;
            }, { message: 'the queue drained', timeoutMs: 20000 });
        } finally {
            await gw.stop();
        }
        return scrape;
    };

    for (const otlp_protocol of ['http/protobuf', 'http/json']) {
        test(`${otlp_protocol}: no export request holds more than export_batch_size spans, none is lost or sent twice`, async () => {
            const receiver = await startReceiver();
            try {
                const scrape = await load(receiver, { otlp_protocol, export_batch_size: 3, export_interval_ms: 50 }, 12);
                assert.deepEqual(receiver.errors, []);
                const sizes = receiver.batchSizes();
                assert.ok(sizes.every(n => n >= 1 && n <= 3), `batch sizes ${sizes}`);
                const spans = receiver.spans();
                // 12 calls, each a SERVER, an authenticate and a CLIENT span at least
                assert.ok(spans.length >= 36, `${spans.length} spans`);
                assert.equal(new Set(spans.map(s => s.spanId)).size, spans.length, 'no span twice');
                assert.equal(spans.filter(s => s.kind === 2 && s.name === 'tools/call echo').length, 12);
                assert.equal(metric(scrape, 'mcp_guard_trace_spans_dropped_total'), 0);
            } finally {
                await receiver.close();
            }
        });
    }

    test('a full queue drops spans and counts them; the rest still arrive, once', async () => {
        // the collector holds the first export for 2 s while 60 calls' spans
        // (some 240) come: only queue_size (64) of them can wait
        const receiver = await startReceiver({ holdFirstMs: 2000 });
        try {
            const scrape = await load(receiver, { queue_size: 64, export_batch_size: 8 }, 60);
            const dropped = metric(scrape, 'mcp_guard_trace_spans_dropped_total');
            const exported = metric(scrape, 'mcp_guard_trace_spans_exported_total');
            assert.ok(dropped > 0, `dropped ${dropped}`);
            assert.equal(exported, receiver.spans().length);
            assert.ok(exported >= 64, `exported ${exported}`);
            assert.equal(new Set(receiver.spans().map(s => s.spanId)).size, exported, 'no span twice');
            assert.ok(receiver.batchSizes().every(n => n <= 8), `batch sizes ${receiver.batchSizes()}`);
        } finally {
            await receiver.close();
        }
    });

    test('export_batch_size larger than queue_size is refused with its location', async () => {
        const dir = tempDir('mcp-guard-tq-');
        const file = path.join(dir, 'guard.toml');
        writeFileSync(file, '[upstream]\ncommand = "true"\n\n[tracing]\nenabled = true\notlp_endpoint = "http://127.0.0.1:4318"\nqueue_size = 100\nexport_batch_size = 200\n');
        const r = runCli(['validate', '--config', file]);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr + r.stdout, /guard\.toml:8:\d+: .*tracing\.export_batch_size.*larger than queue_size/);
    });
});

describe('tracing export and the SSRF rule', { timeout: 60000 }, () => {
    test('a collector on loopback is refused unless allow_private_networks: nothing is sent', async () => {
        const receiver = await startReceiver();
        let gw;
        try {
            gw = await startAuthGateway({ tracing: { enabled: true, otlp_endpoint: receiver.url, sample_rate: 1.0 } });
            const r = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'ssrf', version: '0' } } });
            assert.equal(r.status, 200);
            await waitFor(() => /tracing: cannot reach .*address refused by the SSRF rule/.test(gw.stderr), { message: 'the refusal in the log' });
            await gw.stop();
            gw = null;
            assert.equal(receiver.spans().length, 0);
            assert.equal(receiver.refused, 0);
        } finally {
            await gw?.stop();
            await receiver.close();
        }
    });
});
