// upstream.mode = "per_session": every legacy session gets its own upstream
// process, which sees the client's own initialize (so server→client requests
// such as sampling work), and the process ends with the session.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { CreateMessageRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { LEGACY_VERSION, childrenOf, closeSdk, connectSdk, everythingUpstream, postMcp, procState, startGateway, waitFor, withTimeout } from './helpers.mjs';

describe('per_session upstream mode', { timeout: 90000 }, () => {
    let gw;
    const clients = [];

    before(async () => {
        gw = await startGateway({ upstream: everythingUpstream({ mode: 'per_session', max_processes: 2 }) });
    });

    after(async () => {
        await Promise.all(clients.map(closeSdk));
        if (gw) await gw.stop();
    });

    const dedicated = async () => (await gw.health()).upstreams[0].sessions_processes;
    /** Live (non-zombie) children of the gateway other than the shared process. */
    const sessionPids = async () => {
        const shared = await gw.upstreamPid();
        return childrenOf(gw.pid)
            .filter(p => p.pid !== shared && p.state !== 'Z')
            .map(p => p.pid);
    };

    test('each session gets its own process; the client\'s capabilities reach it (sampling round trip)', async () => {
        const a = await connectSdk(gw, { name: 'sampler', capabilities: { sampling: {} } });
        clients.push(a);
        let asked;
        a.client.setRequestHandler(CreateMessageRequestSchema, async req => {
            asked = req.params;
            return { role: 'assistant', content: { type: 'text', text: 'sampled by the e2e client' }, model: 'e2e-model', stopReason: 'endTurn' };
        });
        assert.equal(await dedicated(), 1);
        assert.equal((await sessionPids()).length, 1);
        const { tools } = await a.client.listTools();
        assert.ok(
            tools.some(t => t.name === 'trigger-sampling-request'),
            'a per-session process sees the client\'s sampling capability'
        );
        const r = await withTimeout(a.client.callTool({ name: 'trigger-sampling-request', arguments: { prompt: 'ping?', maxTokens: 7 } }), 15000, 'sampling call');
        assert.ok(asked, 'the sampling request reached the client');
        assert.equal(asked.maxTokens, 7);
        assert.match(asked.messages[0].content.text, /ping\?/);
        assert.match(r.content[0].text, /sampled by the e2e client/);
    });

    test('echo, progress and logging in a per-session process', async () => {
        const [a] = clients;
        const e = await a.client.callTool({ name: 'echo', arguments: { message: 'per-session' } });
        assert.equal(e.content[0].text, 'Echo: per-session');
        const seen = [];
        await a.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } }, undefined, { onprogress: p => seen.push(p.progress) });
        assert.deepEqual(seen, [1, 2, 3]);
        const logs = [];
        a.client.setNotificationHandler(LoggingMessageNotificationSchema, n => logs.push(n.params));
        assert.deepEqual(await a.client.setLoggingLevel('debug'), {});
        // Subscribing makes server-everything log at info level to this session.
        await a.client.subscribeResource({ uri: 'demo://resource/static/document/architecture.md' });
        await waitFor(() => logs.some(l => /Subscribe/.test(String(l.data))), { timeoutMs: 5000, message: 'the subscribe log message' });
    });

    test('max_processes reached: initialize gets 503; DELETE stops the process and frees the slot', async () => {
        const b = await connectSdk(gw, { name: 'second' });
        clients.push(b);
        assert.equal(await dedicated(), 2);
        const pids = await sessionPids();
        assert.equal(pids.length, 2, `two session processes: ${pids}`);

        const init = {
            jsonrpc: '2.0',
            id: 'third',
            method: 'initialize',
            params: { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: { name: 'third', version: '1' } }
        };
        const refused = await postMcp(gw, init);
        assert.equal(refused.status, 503, refused.text);
        assert.equal(refused.json.id, 'third');
        assert.match(refused.json.error.message, /max_processes/);
        assert.equal(refused.headers.get('mcp-session-id'), null);

        const before = await sessionPids();
        await b.transport.terminateSession();
        await b.client.close();
        clients.pop();
        await waitFor(async () => (await dedicated()) === 1, { timeoutMs: 10000, message: 'sessions_processes = 1' });
        await waitFor(async () => (await sessionPids()).length === 1, { timeoutMs: 10000, message: 'one session process left' });
        const gone = before.filter(p => !(childrenOf(gw.pid).some(c => c.pid === p)));
        assert.equal(gone.length, 1, 'the ended session\'s process exited');
        assert.equal(procState(gone[0]), null, 'and was reaped (no zombie)');

        const ok = await postMcp(gw, init);
        assert.equal(ok.status, 200, ok.text);
        const sid = ok.headers.get('mcp-session-id');
        assert.equal(await dedicated(), 2);
        const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
        assert.equal(del.status, 204);
        await waitFor(async () => (await dedicated()) === 1, { timeoutMs: 10000, message: 'sessions_processes = 1 again' });
    });

    test('a per-session process that dies fails its in-flight call promptly', async () => {
        const pidsBefore = new Set(await sessionPids());
        const c = await connectSdk(gw, { name: 'victim' });
        clients.push(c);
        const call = c.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } });
        call.catch(() => {});
        const fresh = (await sessionPids()).filter(p => !pidsBefore.has(p));
        assert.equal(fresh.length, 1, 'found the session\'s process');
        const [victim] = fresh;
        process.kill(victim, 'SIGKILL');
        const err = await withTimeout(
            call.then(
                () => null,
                e => e
            ),
            5000,
            'the in-flight call after its process died'
        );
        assert.ok(err instanceof Error, 'the call failed');
        await waitFor(() => procState(victim) === null, { timeoutMs: 5000, message: `process ${victim} reaped` });
        await waitFor(async () => (await gw.health()).requests_in_flight === 0, { timeoutMs: 5000, message: 'requests_in_flight = 0' });
        // The session's process is restarted (handshake replayed): the session works again.
        await waitFor(async () => (await sessionPids()).some(p => !pidsBefore.has(p) && p !== victim), { timeoutMs: 10000, message: 'the restarted session process' });
        const r = await withTimeout(c.client.callTool({ name: 'echo', arguments: { message: 'after restart' } }), 10000, 'echo after the restart');
        assert.equal(r.content[0].text, 'Echo: after restart');
    });
});
