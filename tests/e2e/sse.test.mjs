// The legacy GET stream (GET /mcp with Mcp-Session-Id): keep-alive comments
// every sse_keepalive_secs, server→client notifications with event ids, and
// Last-Event-ID resumption from the bounded replay ring (sse_replay_events).
// Traffic comes from server-everything's resource subscriptions: the gateway
// subscribes upstream once and fans notifications/resources/updated out to
// the sessions subscribed to that URI.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { LEGACY_VERSION, RawConn, httpRequest, postMcp, rawInitialize, readSseUntil, readTap, startGateway, tapUpstream, tempDir, waitFor } from './helpers.mjs';

const URI = 'demo://resource/static/document/architecture.md';
// Above the first allocation (8 slots): the ring grows, then wraps.
const RING = 11;

describe('GET stream: keep-alive and Last-Event-ID replay', { timeout: 90000 }, () => {
    let gw;
    let tap;
    let sid;
    const opts = () => ({ sessionId: sid, protocolVersion: LEGACY_VERSION, accept: 'application/json' });

    before(async () => {
        const dir = tempDir();
        tap = path.join(dir, 'tap.log');
        gw = await startGateway({ dir, upstream: tapUpstream(tap), server: { sse_keepalive_secs: 1, sse_replay_events: RING } });
        ({ sessionId: sid } = await rawInitialize(gw));
    });

    after(async () => {
        if (gw) await gw.stop();
    });

    async function openGet({ lastEventId, sessionId = sid, accept = 'text/event-stream' } = {}) {
        const conn = await RawConn.open(gw.port);
        const headers = { Accept: accept, 'Mcp-Session-Id': sessionId, 'MCP-Protocol-Version': LEGACY_VERSION };
        if (lastEventId) headers['Last-Event-ID'] = lastEventId;
        await conn.write(httpRequest('GET', '/mcp', { port: gw.port, headers }));
        const head = await conn.readHead(5000);
        return { conn, head };
    }

    /**
     * Events up to the first keep-alive comment (the burst sent at once):
     * the data events, and every id in stream order (priming events included).
     */
    async function burstWithIds(conn) {
        const events = [];
        const ids = [];
        await readSseUntil(
            conn,
            ev => {
                if (ev.comment) return true;
                if (ev.id !== undefined) ids.push(ev.id);
                if (!ev.prime) events.push(ev);
                return false;
            },
            5000
        );
        return { events, ids };
    }
    const burst = async conn => (await burstWithIds(conn)).events;

    const call = async (name, id) => {
        const r = await postMcp(gw, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } }, opts());
        assert.equal(r.status, 200, r.text);
        return r.json.result.content[0].text;
    };
    /** One notifications/resources/updated per call (toggling on sends one at once). */
    const produceUpdate = async i => {
        assert.match(await call('toggle-subscriber-updates', `on-${i}`), /Started/);
        assert.match(await call('toggle-subscriber-updates', `off-${i}`), /Stopped/);
    };
    const seq = id => Number(/^0_(\d+)$/.exec(id)?.[1]);

    test('the GET stream starts with a priming event (id, retry, empty data), then sends ": keep-alive" comments', async () => {
        const { conn, head } = await openGet();
        try {
            assert.equal(head.status, 200);
            assert.match(head.headers['content-type'], /^text\/event-stream/);
            assert.equal(head.headers['transfer-encoding'], 'chunked');
            let comments = 0;
            let first;
            await readSseUntil(
                conn,
                ev => {
                    first ??= ev;
                    if (ev.comment) {
                        assert.equal(ev.comment, ': keep-alive');
                        comments++;
                    }
                    return comments >= 2;
                },
                6000
            );
            assert.equal(comments, 2);
            assert.ok(first.prime, `the first event primes the client's Last-Event-ID: ${JSON.stringify(first)}`);
            assert.match(first.id, /^0_\d+$/);
            assert.ok(first.retry > 0, 'with a retry delay');
        } finally {
            conn.destroy();
        }
    });

    test('GET stream errors: 406 without text/event-stream, 404 for an unknown session', async () => {
        const a = await openGet({ accept: 'application/json' });
        assert.equal(a.head.status, 406);
        a.conn.destroy();
        const b = await openGet({ sessionId: 'f'.repeat(32) });
        assert.equal(b.head.status, 404);
        b.conn.destroy();
    });

    test('notifications reach the GET stream with ids; after a reconnect with Last-Event-ID the missed ones are replayed', async () => {
        const sub = await postMcp(gw, { jsonrpc: '2.0', id: 'sub', method: 'resources/subscribe', params: { uri: URI } }, opts());
        assert.deepEqual(sub.json.result, {});
        await waitFor(() => readTap(tap).some(m => m.method === 'resources/subscribe' && m.params?.uri === URI), { timeoutMs: 5000, message: 'the upstream subscription' });

        // Live delivery.
        const first = await openGet();
        let lastSeen;
        try {
            assert.match(await call('toggle-subscriber-updates', 'on-live'), /Started/);
            await readSseUntil(
                first.conn,
                ev => {
                    if (ev.comment || ev.data?.method !== 'notifications/resources/updated') return false;
                    assert.equal(ev.data.params.uri, URI);
                    assert.match(ev.id, /^0_\d+$/);
                    lastSeen = ev.id;
                    return true;
                },
                12000
            );
            assert.match(await call('toggle-subscriber-updates', 'off-live'), /Stopped/);
        } finally {
            first.conn.destroy();
        }

        // Missed while disconnected: more than the ring holds.
        const missed = RING + 2;
        for (let i = 0; i < missed; i++) await produceUpdate(i);

        const again = await openGet({ lastEventId: lastSeen });
        try {
            assert.equal(again.head.status, 200);
            const replay = await burst(again.conn);
            const ids = replay.map(e => seq(e.id));
            assert.equal(replay.length, RING, `the ring keeps ${RING}: ${JSON.stringify(replay.map(e => e.id))}`);
            for (const e of replay) {
                assert.equal(e.data.method, 'notifications/resources/updated');
                assert.equal(e.data.params.uri, URI);
            }
            for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1] + 1, `consecutive ids ${ids}`);
            assert.ok(ids[0] > seq(lastSeen) + 1, `the oldest missed events fell out of the ring: ${ids} after ${lastSeen}`);
            assert.ok(ids[ids.length - 1] >= seq(lastSeen) + missed, `the newest is replayed: ${ids}`);
        } finally {
            again.conn.destroy();
        }

        // Resuming from the newest id replays nothing; a foreign stream id neither.
        for (const last of [`0_${seq(lastSeen) + missed + 1000}`, '1_1', 'garbage']) {
            const s = await openGet({ lastEventId: last });
            try {
                assert.deepEqual(await burst(s.conn), [], `nothing replayed after ${last}`);
            } finally {
                s.conn.destroy();
            }
        }

        // Within the ring: exactly the events after the given id.
        await produceUpdate('x');
        await produceUpdate('y');
        const whole = await openGet({ lastEventId: '0_0' });
        let newest;
        try {
            const all = await burst(whole.conn);
            newest = all[all.length - 1].id;
        } finally {
            whole.conn.destroy();
        }
        const partial = await openGet({ lastEventId: `0_${seq(newest) - 1}` });
        try {
            const r = await burst(partial.conn);
            assert.deepEqual(
                r.map(e => e.id),
                [newest]
            );
        } finally {
            partial.conn.destroy();
        }
        const unsub = await postMcp(gw, { jsonrpc: '2.0', id: 'unsub', method: 'resources/unsubscribe', params: { uri: URI } }, opts());
        assert.deepEqual(unsub.json.result, {});
        await waitFor(() => readTap(tap).some(m => m.method === 'resources/unsubscribe' && m.params?.uri === URI), { timeoutMs: 5000, message: 'the upstream unsubscription' });
    });

    test(
        'on a resumed GET stream, ids never go backwards (the priming event must not claim events not yet replayed)',
        {},
        async () => {
            const sub = await postMcp(gw, { jsonrpc: '2.0', id: 'sub2', method: 'resources/subscribe', params: { uri: URI } }, opts());
            assert.deepEqual(sub.json.result, {});
            const first = await openGet();
            let before;
            try {
                before = (await burstWithIds(first.conn)).ids.at(-1);
            } finally {
                first.conn.destroy();
            }
            await produceUpdate('p1');
            await produceUpdate('p2');
            const again = await openGet({ lastEventId: before });
            try {
                const { events, ids } = await burstWithIds(again.conn);
                assert.equal(events.length, 2, `two missed events replayed: ${JSON.stringify(ids)}`);
                const seqs = ids.map(seq);
                for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] >= seqs[i - 1], `ids in stream order: ${JSON.stringify(ids)}`);
            } finally {
                again.conn.destroy();
                await postMcp(gw, { jsonrpc: '2.0', id: 'unsub2', method: 'resources/unsubscribe', params: { uri: URI } }, opts());
            }
        }
    );

    test('a second GET stream for the session replaces the first, which ends cleanly', async () => {
        const a = await openGet();
        const b = await openGet();
        try {
            assert.equal(b.head.status, 200);
            // The first stream is terminated (last chunk) and the connection stays usable.
            let ended = false;
            await readSseUntil(a.conn, () => false, 5000).then(r => (ended = r === false));
            assert.ok(ended, 'the first stream ended with its last chunk');
            await a.conn.write(httpRequest('GET', '/live', { port: gw.port }));
            assert.equal((await a.conn.readResponse(5000)).status, 200);
            let comment = false;
            await readSseUntil(b.conn, ev => (comment = !!ev.comment), 5000);
            assert.ok(comment, 'the new stream is alive');
        } finally {
            a.conn.destroy();
            b.conn.destroy();
        }
    });

    test('DELETE of the session ends its GET stream', async () => {
        const { sessionId } = await rawInitialize(gw);
        const s = await openGet({ sessionId });
        try {
            const del = await fetch(gw.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': sessionId } });
            assert.equal(del.status, 204);
            const ended = await readSseUntil(s.conn, () => false, 5000);
            assert.equal(ended, false, 'the stream ended');
        } finally {
            s.conn.destroy();
        }
    });
});
