// Process lifecycle: upstream crash and restart, graceful shutdown (SIGTERM,
// SIGINT, a second signal), shutdown deadline, no upstream process or zombie
// left behind, and a startup failure.

import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import {
    LEGACY_VERSION,
    RawConn,
    childrenOf,
    closeSdk,
    connectSdk,
    everythingUpstream,
    freePort,
    groupMembers,
    httpGet,
    httpRequest,
    modernRequest,
    postMcp,
    procState,
    rawInitialize,
    readSseUntil,
    readTap,
    runCli,
    sleep,
    startGateway,
    tapUpstream,
    tempDir,
    toToml,
    waitFor,
    withTimeout
} from './helpers.mjs';

/**
 * Starts a long-running call and resolves once its first progress arrived,
 * to {settled}: a promise of {result} or {error} (wrapped so that the async
 * function does not adopt it).
 */
async function longCall(c, { duration, steps }) {
    let first;
    const progressed = new Promise(resolve => (first = resolve));
    const call = c.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration, steps } }, undefined, {
        onprogress: () => first(),
        timeout: 120000
    });
    const settled = call.then(
        r => ({ result: r }),
        e => ({ error: e })
    );
    await withTimeout(progressed, 15000, 'the first progress notification');
    return { settled };
}

/** Asserts that `pid` and its process group are gone (not even a zombie). */
async function assertGone(pid, what) {
    await waitFor(() => procState(pid) === null && groupMembers(pid).length === 0, {
        timeoutMs: 10000,
        message: `${what} (pid ${pid}) and its group to be gone; left: ${JSON.stringify(groupMembers(pid))}`
    });
}

test('upstream crash: the in-flight call fails promptly, /ready 503 then 200, sessions work again', { timeout: 60000 }, async () => {
    const gw = await startGateway();
    const clients = [];
    try {
        const a = await connectSdk(gw, { name: 'survivor' });
        clients.push(a);
        let listChanged = 0;
        a.client.setNotificationHandler(ToolListChangedNotificationSchema, () => listChanged++);
        const before = await gw.health();
        const oldPid = before.upstreams[0].pid;
        assert.ok(oldPid > 0);
        assert.equal(before.upstreams[0].restarts, 0);

        const { settled: pending } = await longCall(a, { duration: 30, steps: 60 });
        process.kill(-oldPid, 'SIGKILL');

        const outcome = await withTimeout(pending, 5000, 'the in-flight call after the upstream crash');
        assert.ok(outcome.error, 'the call failed');
        assert.equal(outcome.error.code, -32603, `JSON-RPC error code of ${outcome.error.message}`);
        assert.match(outcome.error.message, /upstream/i);

        // /ready: 503 while the process is down (restart backoff starts at 100 ms), then 200.
        const sawDown = await waitFor(async () => (await gw.readyStatus()) === 503, { timeoutMs: 5000, intervalMs: 5, message: '/ready = 503' });
        assert.ok(sawDown);
        const down = await gw.health();
        assert.equal(down.status, 'degraded');
        await waitFor(async () => (await gw.readyStatus()) === 200, { timeoutMs: 15000, message: '/ready = 200 after the restart' });
        const after = await gw.health();
        assert.equal(after.status, 'ok');
        assert.notEqual(after.upstreams[0].pid, oldPid);
        assert.equal(after.upstreams[0].restarts, 1);

        await assertGone(oldPid, 'the killed upstream');
        assert.ok(!childrenOf(gw.pid).some(p => p.state === 'Z'), 'no zombie child of the gateway');

        // The session that existed before the crash still works.
        const r = await a.client.callTool({ name: 'echo', arguments: { message: 'still here' } });
        assert.equal(r.content[0].text, 'Echo: still here');
        // The restarted server announced its tools again; shared mode fans
        // list_changed out to every initialized session (on its GET stream).
        await waitFor(() => listChanged > 0, { timeoutMs: 5000, message: 'notifications/tools/list_changed on the old session' });
        // New sessions work.
        const b = await connectSdk(gw, { name: 'newcomer' });
        clients.push(b);
        const r2 = await b.client.callTool({ name: 'echo', arguments: { message: 'new' } });
        assert.equal(r2.content[0].text, 'Echo: new');
        assert.equal((await gw.health()).requests_in_flight, 0);

        // Killing only the pid (not the group) is recovered from too.
        const pid2 = after.upstreams[0].pid;
        process.kill(pid2, 'SIGKILL');
        await waitFor(async () => {
            const h = await gw.health();
            return h.status === 'ok' && h.upstreams[0].pid !== pid2 && h.upstreams[0].pid > 0;
        }, { timeoutMs: 15000, message: 'the second restart' });
        assert.equal((await gw.health()).upstreams[0].restarts, 2);
        // /metrics: the server ended two of the gateway's sessions with it, and the
        // call in flight at the first crash failed as "unavailable".
        const scrape = (await httpGet(gw.port, '/metrics')).body;
        assert.match(scrape, /^mcp_client_session_duration_seconds_count\{upstream="default",mcp_protocol_version="\d{4}-\d{2}-\d{2}",network_transport="pipe",error_type="upstream_closed"\} 2$/m);
        assert.match(scrape, /^mcp_client_operation_duration_seconds_count\{upstream="default",mcp_method_name="tools\/call",network_transport="pipe",error_type="unavailable"\} 1$/m);
        await assertGone(pid2, 'the second killed upstream');
        const r3 = await a.client.callTool({ name: 'echo', arguments: { message: 'again' } });
        assert.equal(r3.content[0].text, 'Echo: again');
    } finally {
        await Promise.all(clients.map(closeSdk));
        await gw.stop();
    }
});

test('SIGTERM waits for the in-flight call, exits 0 and leaves no upstream process', { timeout: 60000 }, async () => {
    const gw = await startGateway({ server: { shutdown_grace_secs: 20 } });
    let c;
    try {
        c = await connectSdk(gw);
        const upstream = await gw.upstreamPid();
        const { settled: pending } = await longCall(c, { duration: 1.5, steps: 5 });
        gw.signal('SIGTERM');
        // While draining: the listener is closed or answers 503.
        await waitFor(async () => {
            try {
                const r = await fetch(`${gw.base}/ready`);
                await r.arrayBuffer();
                return r.status === 503;
            } catch {
                return true; // refused: no longer listening
            }
        }, { timeoutMs: 3000, message: 'draining' });
        const outcome = await withTimeout(pending, 10000, 'the in-flight call during shutdown');
        assert.ok(outcome.result, `the call completed: ${outcome.error}`);
        assert.match(outcome.result.content[0].text, /completed/);
        const exit = await gw.stop({ timeoutMs: 15000 });
        assert.deepEqual(exit, { code: 0, signal: null });
        assert.match(gw.stderr, /SIGTERM: shutting down/);
        await assertGone(upstream, 'the upstream');
        assert.equal(procState(gw.pid), null, 'the gateway itself was reaped');
    } finally {
        await c?.client.close().catch(() => {});
        await gw.kill();
    }
});

test('shutdown_grace_secs = 1: a longer call gets an error, the gateway still exits 0', { timeout: 60000 }, async () => {
    const gw = await startGateway({ server: { shutdown_grace_secs: 1 } });
    let c;
    try {
        c = await connectSdk(gw);
        const upstream = await gw.upstreamPid();
        const { settled: pending } = await longCall(c, { duration: 20, steps: 40 });
        const t0 = Date.now();
        gw.signal('SIGTERM');
        const outcome = await withTimeout(pending, 8000, 'the in-flight call after the grace period');
        assert.ok(outcome.error, 'the call failed');
        assert.match(outcome.error.message, /shutting down/);
        assert.ok(Date.now() - t0 >= 900, 'not before the grace period');
        await gw.stop({ timeoutMs: 15000 });
        assert.match(gw.stderr, /still in flight/);
        await assertGone(upstream, 'the upstream');
    } finally {
        await c?.client.close().catch(() => {});
        await gw.kill();
    }
});

test('a second SIGTERM skips the grace period: prompt exit 0, no upstream left; SIGINT is graceful too', { timeout: 60000 }, async () => {
    const gw = await startGateway({ server: { shutdown_grace_secs: 60 } });
    let c;
    try {
        c = await connectSdk(gw);
        const upstream = await gw.upstreamPid();
        await longCall(c, { duration: 30, steps: 60 });
        gw.signal('SIGTERM');
        await sleep(200);
        gw.signal('SIGTERM');
        // Not after the 60 s grace period: stop() SIGKILLs (and fails) after 8 s.
        await gw.stop({ timeoutMs: 8000 });
        assert.match(gw.stderr, /second SIGTERM/);
        await assertGone(upstream, 'the upstream');
    } finally {
        await c?.client.close().catch(() => {});
        await gw.kill();
    }

    const gw2 = await startGateway();
    try {
        const upstream = await gw2.upstreamPid();
        await gw2.stop({ signal: 'SIGINT' });
        assert.match(gw2.stderr, /SIGINT: shutting down/);
        await assertGone(upstream, 'the upstream');
    } finally {
        await gw2.kill();
    }
});

test(
    'a second SIGTERM: in-flight requests still receive their JSON-RPC error before the exit',
    { timeout: 60000 },
    async () => {
        const gw = await startGateway({ server: { shutdown_grace_secs: 60 } });
        const conns = [];
        try {
            const { sessionId } = await rawInitialize(gw);
            for (const [i, accept] of ['application/json', 'application/json, text/event-stream'].entries()) {
                const conn = await RawConn.open(gw.port);
                conns.push(conn);
                await conn.write(
                    httpRequest('POST', '/mcp', {
                        port: gw.port,
                        headers: { 'Content-Type': 'application/json', Accept: accept, 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': LEGACY_VERSION },
                        body: JSON.stringify({
                            jsonrpc: '2.0',
                            id: `slow-${i}`,
                            method: 'tools/call',
                            params: { name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 60 }, _meta: { progressToken: i } }
                        })
                    })
                );
            }
            await waitFor(async () => (await gw.health()).requests_in_flight === 2, { timeoutMs: 5000, message: 'two requests in flight' });
            await sleep(600); // the SSE one has switched to a stream (first progress)
            gw.signal('SIGTERM');
            await sleep(200);
            gw.signal('SIGTERM');
            await gw.stop({ timeoutMs: 8000 });
            for (const [i, conn] of conns.entries()) {
                await conn.waitClosed(5000);
                const text = conn.buf.toString('utf8');
                assert.ok(text.includes(`"id":"slow-${i}"`) && text.includes('"error"'), `request slow-${i} got its error; received ${JSON.stringify(text)}`);
            }
        } finally {
            for (const c of conns) c.destroy();
            await gw.kill();
        }
    }
);

test('SIGTERM ends GET streams and subscriptions/listen streams cleanly (listen gets its final result)', { timeout: 60000 }, async () => {
    const gw = await startGateway({ server: { shutdown_grace_secs: 5 } });
    const conns = [];
    try {
        const { sessionId } = await rawInitialize(gw);
        const get = await RawConn.open(gw.port);
        conns.push(get);
        await get.write(httpRequest('GET', '/mcp', { port: gw.port, headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': sessionId } }));
        assert.equal((await get.readHead(5000)).status, 200);

        const { body, headers } = modernRequest('subscriptions/listen', { notifications: { toolsListChanged: true } }, { id: 'listen-final' });
        const listen = await RawConn.open(gw.port);
        conns.push(listen);
        await listen.write(httpRequest('POST', '/mcp', { port: gw.port, headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...headers }, body: JSON.stringify(body) }));
        assert.equal((await listen.readHead(5000)).status, 200);
        const seen = [];
        await readSseUntil(listen, ev => (ev.data ? (seen.push(ev.data), true) : false), 5000);
        assert.equal(seen[0].method, 'notifications/subscriptions/acknowledged');

        gw.signal('SIGTERM');
        const ended = await readSseUntil(listen, ev => (ev.data ? (seen.push(ev.data), false) : false), 5000);
        assert.equal(ended, false, 'the listen stream ended with its last chunk');
        const final = seen[seen.length - 1];
        assert.equal(final.id, 'listen-final');
        assert.equal(final.result.resultType, 'complete');
        assert.equal(await readSseUntil(get, () => false, 5000), false, 'the GET stream ended with its last chunk');
        await gw.stop({ timeoutMs: 10000 });
    } finally {
        for (const c of conns) c.destroy();
        await gw.kill();
    }
});

test('per_session: SIGTERM stops every session process and the shared one', { timeout: 60000 }, async () => {
    const gw = await startGateway({ upstream: everythingUpstream({ mode: 'per_session' }) });
    const clients = [];
    try {
        for (let i = 0; i < 3; i++) clients.push(await connectSdk(gw, { name: `s${i}` }));
        const { settled: pending } = await longCall(clients[0], { duration: 1, steps: 4 });
        assert.equal((await gw.health()).upstreams[0].sessions_processes, 3);
        const kids = childrenOf(gw.pid).filter(p => p.state !== 'Z');
        assert.equal(kids.length, 4, `shared + 3 session processes: ${JSON.stringify(kids)}`);
        gw.signal('SIGTERM');
        const outcome = await withTimeout(pending, 10000, 'the per-session call during shutdown');
        assert.ok(outcome.result, `the call completed: ${outcome.error}`);
        await gw.stop({ timeoutMs: 15000 });
        for (const k of kids) await assertGone(k.pid, 'an upstream process');
    } finally {
        await Promise.all(clients.map(c => c.client.close().catch(() => {})));
        await gw.kill();
    }
});

test('initialize while the shared upstream is not ready yet: 503 with Retry-After', { timeout: 60000 }, async () => {
    // A command that starts but never answers initialize keeps the gateway "starting".
    const dir = tempDir();
    const script = path.join(dir, 'mute.mjs');
    writeFileSync(script, 'process.stdin.resume(); setInterval(() => {}, 1000);\n');
    const gw = await startGateway({ dir, ready: false, upstream: { transport: 'stdio', command: process.execPath, args: [script] } });
    try {
        await waitFor(async () => (await gw.health()).status === 'starting', { timeoutMs: 10000, message: 'the gateway to listen' });
        assert.equal(await gw.readyStatus(), 503);
        const r = await postMcp(gw, {
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: { name: 'early', version: '1' } }
        });
        assert.equal(r.status, 503);
        assert.equal(r.headers.get('retry-after'), '1');
        assert.equal(r.json.id, 1);
        assert.equal(r.json.error.code, -32603);
        const h = await gw.health();
        assert.equal(h.upstreams[0].status, 'starting');
    } finally {
        await gw.stop({ timeoutMs: 15000 });
    }
});

test('request_timeout_secs: a slow call is answered with an error and cancelled upstream; max_sessions: 503', { timeout: 60000 }, async () => {
    const dir = tempDir();
    const tap = path.join(dir, 'tap.log');
    const gw = await startGateway({ dir, upstream: tapUpstream(tap), server: { request_timeout_secs: 1, max_sessions: 2 } });
    try {
        const a = await rawInitialize(gw);
        const opts = { sessionId: a.sessionId, protocolVersion: LEGACY_VERSION, accept: 'application/json' };
        const t0 = Date.now();
        const r = await withTimeout(
            postMcp(gw, { jsonrpc: '2.0', id: 'late', method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 10.5, steps: 1 } } }, opts),
            8000,
            'the timed-out call'
        );
        assert.ok(Date.now() - t0 >= 900, 'not before the deadline');
        assert.equal(r.json.id, 'late');
        assert.equal(r.json.error.code, -32603);
        assert.equal(r.json.error.data.mcpGuard, 'timeout');
        const up = readTap(tap).find(m => m.method === 'tools/call' && m.params?.arguments?.duration === 10.5);
        await waitFor(() => readTap(tap).some(m => m.method === 'notifications/cancelled' && m.params?.requestId === up.id), { timeoutMs: 5000, message: 'the upstream cancellation' });
        assert.equal((await gw.health()).requests_in_flight, 0);

        const b = await rawInitialize(gw);
        const init = { jsonrpc: '2.0', id: 9, method: 'initialize', params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: { name: 'third', version: '1' } } };
        const refused = await postMcp(gw, init);
        assert.equal(refused.status, 503, refused.text);
        assert.match(refused.json.error.message, /max_sessions/);
        assert.ok(refused.headers.get('retry-after'));
        const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': b.sessionId } });
        assert.equal(del.status, 204);
        const ok = await postMcp(gw, init);
        assert.equal(ok.status, 200, ok.text);
    } finally {
        await gw.stop();
    }
});

test('run: a missing upstream command exits 3 with the reason on stderr', { timeout: 60000 }, async () => {
    const dir = tempDir();
    const port = await freePort();
    const cfg = path.join(dir, 'bad.toml');
    writeFileSync(
        cfg,
        toToml({
            server: { host: '127.0.0.1', port },
            upstream: { transport: 'stdio', command: 'mcp-guard-e2e-no-such-command', args: [] }
        })
    );
    try {
        const r = runCli(['--config', cfg, 'run'], { timeoutMs: 20000 });
        assert.equal(r.status, 3, r.stderr);
        assert.match(r.stderr, /mcp-guard-e2e-no-such-command/);
        assert.match(r.stderr, /not found/);
    } finally {
        rmSync(dir, { recursive: true, force: true });
    }
});

test('a session survives its upstream being restarted: raw session ids keep working', { timeout: 60000 }, async () => {
    const gw = await startGateway();
    try {
        const { sessionId } = await rawInitialize(gw);
        const pid = await gw.upstreamPid();
        process.kill(-pid, 'SIGKILL');
        await waitFor(async () => {
            const h = await gw.health();
            return h.status === 'ok' && h.upstreams[0].pid !== pid;
        }, { timeoutMs: 15000, message: 'the restart' });
        const r = await postMcp(gw, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } }, { sessionId, protocolVersion: LEGACY_VERSION });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.message.result.content[0].text, 'Echo: x');
    } finally {
        await gw.stop();
    }
});
