// request_id and trace_id on the diagnostic log lines of a request, through
// the real gateway: server-everything upstream, audit JSON lines on stdout,
// tracing on (a real OTLP receiver written here). Each case runs a request
// that logs - an authorization denial (legacy session and a modern
// stateless request), an upstream timeout answered by a timer callback long
// after the request was parsed, a refused credential - and checks that its
// stderr line carries the same request_id as the request's audit record,
// and the trace id of the client's traceparent once the body is parsed.
// Also: auth_success is recorded once per identity, provider and client
// address within audit.auth_success_interval_secs (default 60).

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { freePort, postModern, waitFor } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';

async function startReceiver() {
    const port = await freePort();
    const srv = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    await new Promise(resolve => srv.listen(port, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${port}`, close: () => new Promise(resolve => srv.close(resolve)) };
}

// The audit records a gateway wrote to stdout (JSON lines).
const auditRecords = gw =>
    gw.stdout
        .split('\n')
        .filter(l => l.startsWith('{'))
        .map(l => JSON.parse(l));

// A tool name too long for the exchange's own buffer of record members.
const LONG_TOOL = `long-${'\u00e9"x'.repeat(150)}`;

const hex = n => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

describe('request_id and trace_id in log lines', { timeout: 120000, concurrency: 1 }, () => {
    let receiver;
    let gw;
    let sid;
    const alice = keygen('alice');
    const auth = { 'x-api-key': alice.key };

    const audit = () => auditRecords(gw);
    // (stdout and stderr are separate pipes: wait for both, never assume an order)
    const lines = re => gw.stderr.split('\n').filter(l => re.test(l));
    const fields = line => ({
        request_id: /(?:^| )request_id=([0-9a-f]{16})(?: |$)/.exec(line)?.[1],
        trace_id: /(?:^| )trace_id=([0-9a-f]{32})(?: |$)/.exec(line)?.[1]
    });

    before(async () => {
        receiver = await startReceiver();
        gw = await startAuthGateway({
            server: { request_timeout_secs: 1 },
            auth: { api_keys: [{ id: 'alice', key_hash: alice.hash, allowed_tools: ['echo', 'trigger-long-running-operation', LONG_TOOL] }] },
            audit: { enabled: true, stdout: true },
            tracing: { enabled: true, otlp_endpoint: receiver.url, sample_rate: 1.0, allow_private_networks: true }
        });
        const init = await gw.initialize(auth);
        assert.equal(init.status, 200);
        sid = init.sessionId;
    });

    after(async () => {
        await gw?.stop();
        await receiver?.close();
    });

    const call = (id, name, args, traceparent) =>
        gw.mcp(
            { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: { traceparent } } },
            { headers: auth, sessionId: sid, protocolVersion: '2025-11-25' }
        );

    test('an authorization denial (legacy session): the log line, the audit record and the client trace agree', async () => {
        const trace = hex(32);
        const r = await call(3, 'get-sum', { a: 1, b: 2 }, `00-${trace}-${hex(16)}-01`);
        assert.equal(r.message.error.code, -32602);
        await waitFor(() => audit().some(e => e.event_type === 'authz_denied' && e.tool === 'get-sum') && lines(/authz: tool get-sum denied/).length > 0, { message: 'the authz_denied record and log line' });
        const rec = audit().find(e => e.event_type === 'authz_denied' && e.tool === 'get-sum');
        const denied = lines(/authz: tool get-sum denied/);
        assert.equal(denied.length, 1, gw.tail());
        const f = fields(denied[0]);
        assert.equal(f.request_id, rec.request_id, denied[0]);
        assert.equal(f.trace_id, trace, denied[0]);
        assert.equal(rec.trace_id, trace);
        // The same request's auth_success record has the same id (this
        // session's first request already recorded one, so look by id).
        assert.match(rec.request_id, /^[0-9a-f]{16}$/);
    });

    test('a modern stateless request denied: the same ids', async () => {
        const trace = hex(32);
        const r = await postModern(gw, 'tools/call', { name: 'get-env', arguments: {} }, { name: 'get-env', headers: auth, meta: { traceparent: `00-${trace}-${hex(16)}-01` } });
        assert.equal(r.message.error.code, -32602, r.text);
        await waitFor(() => audit().some(e => e.event_type === 'authz_denied' && e.tool === 'get-env') && lines(/authz: tool get-env denied/).length > 0, { message: 'the authz_denied record and log line' });
        const rec = audit().find(e => e.event_type === 'authz_denied' && e.tool === 'get-env');
        const denied = lines(/authz: tool get-env denied/);
        assert.equal(denied.length, 1, gw.tail());
        assert.deepEqual(fields(denied[0]), { request_id: rec.request_id, trace_id: trace });
    });

    test('an upstream timeout (a timer callback, after other requests ran): the ids of that call', async () => {
        const trace = hex(32);
        const slow = call(4, 'trigger-long-running-operation', { duration: 3, steps: 1 }, `00-${trace}-${hex(16)}-01`);
        // Another request runs in between; its context must not leak into the timeout's line.
        assert.equal((await call(5, 'echo', { message: 'between' }, `00-${hex(32)}-${hex(16)}-01`)).status, 200);
        const r = await slow;
        assert.match(r.message.error.message, /did not answer/);
        await waitFor(() => audit().some(e => e.event_type === 'upstream_error' && e.tool === 'trigger-long-running-operation') && lines(/upstream .*did not answer tools\/call/).length > 0, { message: 'the upstream_error record and log line' });
        const err = audit().find(e => e.event_type === 'upstream_error' && e.tool === 'trigger-long-running-operation');
        const callRec = audit().find(e => e.event_type === 'tool_call' && e.tool === 'trigger-long-running-operation');
        assert.equal(err.request_id, callRec.request_id);
        const warn = lines(/upstream .*did not answer tools\/call/);
        assert.equal(warn.length, 1, gw.tail());
        assert.deepEqual(fields(warn[0]), { request_id: err.request_id, trace_id: trace });
        assert.equal(err.trace_id, trace);
        assert.equal(callRec.trace_id, trace);
    });

    test('a tools/call whose record members outgrow the exchange\'s buffer: both records, whole', async () => {
        const trace = hex(32);
        const r = await call(8, LONG_TOOL, {}, `00-${trace}-${hex(16)}-01`);
        assert.equal(r.status, 200);
        await waitFor(() => audit().some(e => e.event_type === 'tool_call_result' && e.tool === LONG_TOOL), { message: 'the tool_call_result record' });
        const recs = audit().filter(e => e.tool === LONG_TOOL);
        assert.deepEqual(recs.map(e => e.event_type), ['tool_call', 'tool_call_result']);
        assert.equal(recs[0].request_id, recs[1].request_id);
        assert.equal(recs[1].trace_id, trace);
        assert.equal(recs[1].identity_id, 'alice');
        assert.equal(recs[1].success, false, 'server-everything has no such tool');
    });

    test('a refused credential: the request id of its auth_failure record (no trace yet: the body is not read)', async () => {
        const r = await gw.mcp({ jsonrpc: '2.0', id: 6, method: 'tools/list' }, { headers: { 'x-api-key': 'mcp_wrong_key_for_the_log_test_0000000000' }, sessionId: sid, protocolVersion: '2025-11-25' });
        assert.equal(r.status, 401);
        await waitFor(() => audit().some(e => e.event_type === 'auth_failure') && lines(/ auth: 401 for POST \/mcp/).length > 0, { message: 'the auth_failure record and log line' });
        const rec = audit().find(e => e.event_type === 'auth_failure');
        const line = lines(/ auth: 401 for POST \/mcp/);
        assert.equal(line.length, 1, gw.tail());
        assert.deepEqual(fields(line[0]), { request_id: rec.request_id, trace_id: undefined });
    });

    test('auth_success: once per identity, provider and client address within the interval; every call names its identity', () => {
        const recs = audit();
        const ok = recs.filter(e => e.event_type === 'auth_success');
        assert.equal(ok.length, 1, JSON.stringify(ok));
        assert.deepEqual([ok[0].identity_id, ok[0].provider, ok[0].client_address], ['alice', 'api_key', '127.0.0.1']);
        const calls = recs.filter(e => e.event_type === 'tool_call' || e.event_type === 'tool_call_result' || e.event_type === 'authz_denied');
        assert.ok(calls.length >= 4);
        for (const c of calls) assert.deepEqual([c.identity_id, c.provider], ['alice', 'api_key'], JSON.stringify(c));
        assert.equal(recs.filter(e => e.event_type === 'auth_failure').length, 1);
    });

    test('lines outside any request carry no ids', () => {
        const listening = lines(/listening on http:/);
        assert.ok(listening.length >= 1);
        for (const l of listening) assert.deepEqual(fields(l), { request_id: undefined, trace_id: undefined }, l);
        // Every line that has a trace_id also has a request_id.
        for (const l of gw.stderr.split('\n')) if (/ trace_id=/.test(l)) assert.match(l, / request_id=[0-9a-f]{16} trace_id=/);
    });
});

// server.log_format = "json": every diagnostic line is one JSON object, and
// a request's line carries its ids as members (the same request_id as its
// audit record, the client's trace id).
describe('log_format = "json"', { timeout: 120000, concurrency: 1 }, () => {
    let gw;
    let sid;
    const bob = keygen('bob');
    const auth = { 'x-api-key': bob.key };
    const audit = () => auditRecords(gw);
    const logLines = () => gw.stderr.split('\n').filter(l => l !== '');

    before(async () => {
        gw = await startAuthGateway({
            server: { log_format: 'json' },
            auth: { api_keys: [{ id: 'bob', key_hash: bob.hash, allowed_tools: ['echo'] }] },
            audit: { enabled: true, stdout: true },
            tracing: { enabled: true, otlp_endpoint: 'http://127.0.0.1:9/', sample_rate: 0.0, allow_private_networks: true }
        });
        const init = await gw.initialize(auth);
        assert.equal(init.status, 200);
        sid = init.sessionId;
    });

    after(async () => {
        await gw?.stop();
    });

    test('a denial is logged as an object with the request and trace ids; every line parses', async () => {
        const trace = hex(32);
        const r = await gw.mcp(
            { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'get-sum', arguments: { a: 1, b: 2 }, _meta: { traceparent: `00-${trace}-${hex(16)}-01` } } },
            { headers: auth, sessionId: sid, protocolVersion: '2025-11-25' }
        );
        assert.equal(r.message.error.code, -32602);
        const denial = () => logLines().map(l => JSON.parse(l)).find(o => /authz: tool get-sum denied/.test(o.msg));
        await waitFor(() => denial() && audit().some(e => e.event_type === 'authz_denied'), { message: 'the denial line and record' });
        const rec = audit().find(e => e.event_type === 'authz_denied');
        const line = denial();
        assert.equal(line.level, 'info');
        assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.equal(line.request_id, rec.request_id);
        assert.equal(line.trace_id, trace);
        // Every line is an object; lines outside a request have no ids.
        const all = logLines();
        assert.ok(all.length >= 2, gw.tail());
        for (const l of all) {
            const o = JSON.parse(l);
            assert.deepEqual(Object.keys(o).slice(0, 3), ['time', 'level', 'msg'], l);
            if (/listening on http:/.test(o.msg)) assert.equal(o.request_id, undefined, l);
        }
    });

    test('a message with quotes, a line break and bytes from the client stays one parseable line', async () => {
        // An unknown tool name goes into the denial line as the client wrote it.
        const name = 'we"ird\ntool\u0001é';
        const r = await gw.mcp(
            { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name, arguments: {} } },
            { headers: auth, sessionId: sid, protocolVersion: '2025-11-25' }
        );
        assert.ok(r.message.error, JSON.stringify(r.message));
        await waitFor(() => logLines().some(l => l.includes('we\\"ird')), { message: 'the line naming the tool' });
        const l = logLines().find(x => x.includes('we\\"ird'));
        const o = JSON.parse(l);
        assert.ok(o.msg.includes(name) || o.msg.includes('we"ird'), l);
        assert.match(o.request_id, /^[0-9a-f]{16}$/);
    });
});
