// The native HTTP/1.1 client toward plain http:// upstreams (src/http/h1client.c),
// against a raw MCP server written here on node:net, so that every byte on the
// wire is chosen by the test: keep-alive connections the server closes under
// the next request (the stale-connection race: retried once, and only then),
// chunked SSE answers cut at odd places (inside chunk sizes, CRLFs, events),
// with chunk extensions and trailers, and answers that are not HTTP at all
// (a JSON-RPC error naming the upstream, never its address).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { closeSdk, connectSdk, startGateway, waitFor } from './helpers.mjs';

const PROTOCOL = '2025-11-25';

/**
 * A minimal Streamable HTTP MCP server on raw sockets (127.0.0.1, any port).
 * `opts.dropReused`: a connection's second request is met by closing the
 * connection without a byte of answer. Records every request it read.
 */
async function startRawUpstream(opts = {}) {
    const seen = []; // {conn, n, method, rpc}
    let conns = 0;
    let drops = 0;
    const sockets = new Set();
    const server = net.createServer(sock => {
        const conn = ++conns;
        let n = 0;
        let buf = Buffer.alloc(0);
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => {});
        sock.on('data', d => {
            buf = Buffer.concat([buf, d]);
            for (;;) {
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                const head = buf.subarray(0, end).toString('latin1');
                const [line, ...lines] = head.split('\r\n');
                const headers = {};
                for (const l of lines) {
                    const i = l.indexOf(':');
                    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
                }
                const len = Number(headers['content-length'] || 0);
                if (buf.length < end + 4 + len) return;
                const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
                buf = buf.subarray(end + 4 + len);
                n++;
                const method = line.split(' ')[0];
                if (opts.dropReused && n === 2) {
                    drops++;
                    seen.push({ conn, n, method, dropped: true });
                    sock.destroy();
                    return;
                }
                const rpc = body ? JSON.parse(body) : null;
                seen.push({ conn, n, method, rpc, headers });
                answer(sock, method, rpc);
            }
        });
    });
    await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
    const port = server.address().port;
    return {
        port,
        url: `http://127.0.0.1:${port}/mcp`,
        seen,
        get drops() {
            return drops;
        },
        get conns() {
            return conns;
        },
        calls(name) {
            return seen.filter(s => s.rpc?.method === 'tools/call' && s.rpc.params?.name === name);
        },
        async stop() {
            for (const s of sockets) s.destroy();
            await new Promise(resolve => server.close(resolve));
        }
    };
}

function json(sock, obj, extra = '') {
    const body = Buffer.from(JSON.stringify(obj));
    sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${extra}\r\n`);
    sock.write(body);
}

/** Writes `text` in the given piece sizes, one event-loop turn apart. */
function writePieces(sock, text, sizes) {
    const data = Buffer.from(text);
    let off = 0;
    let i = 0;
    const step = () => {
        if (sock.destroyed) return;
        if (off >= data.length) return;
        const n = sizes[i++ % sizes.length];
        sock.write(data.subarray(off, off + n));
        off += n;
        setImmediate(step);
    };
    step();
}

function answer(sock, method, rpc) {
    if (method === 'GET') {
        sock.write('HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n');
        return;
    }
    if (method === 'DELETE' || !rpc || rpc.id === undefined) {
        sock.write('HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n');
        return;
    }
    const ok = result => json(sock, { jsonrpc: '2.0', id: rpc.id, result });
    switch (rpc.method) {
        case 'initialize':
            return ok({ protocolVersion: rpc.params?.protocolVersion || PROTOCOL, capabilities: { tools: {} }, serverInfo: { name: 'raw-h1', version: '1.0.0' } });
        case 'tools/list':
            return ok({ tools: ['echo', 'sse', 'garbage', 'partial'].map(name => ({ name, inputSchema: { type: 'object' } })) });
        case 'tools/call':
            break;
        default:
            return json(sock, { jsonrpc: '2.0', id: rpc.id, error: { code: -32601, message: 'Method not found' } });
    }
    const name = rpc.params?.name;
    const text = rpc.params?.arguments?.message ?? '';
    if (name === 'echo') return ok({ content: [{ type: 'text', text: `Echo: ${text}` }] });
    if (name === 'garbage') {
        sock.end("HTCPCP/1.0 418 I'm a teapot\r\n\r\nshort and stout");
        return;
    }
    if (name === 'partial') {
        sock.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":');
        setImmediate(() => sock.destroy());
        return;
    }
    if (name === 'sse') {
        // A progress notification, then the result, chunked; the chunks cut
        // the events anywhere, carry extensions, and end with trailers; the
        // bytes are written in pieces that cut the chunk framing too.
        const token = rpc.params?._meta?.progressToken;
        let events = '';
        if (token !== undefined) events += `event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2 } })}\n\n`;
        events += `id: 7\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: rpc.id, result: { content: [{ type: 'text', text: `SSE: ${text}` }] } })}\n\n`;
        const bytes = Buffer.from(events);
        let chunked = '';
        const sizes = [1, 7, 3, 64, 2, 5, 300];
        for (let off = 0, i = 0; off < bytes.length; i++) {
            const n = Math.min(sizes[i % sizes.length], bytes.length - off);
            chunked += `${n.toString(16)}${i % 2 ? ';ext=1' : ''}\r\n${bytes.subarray(off, off + n).toString('latin1')}\r\n`;
            off += n;
        }
        chunked += '0\r\nX-Trailer: done\r\n\r\n';
        sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
        writePieces(sock, chunked, [3, 1, 11, 2, 29, 5]);
        return;
    }
    ok({ content: [{ type: 'text', text: 'unknown' }] });
}

const upstreamConfig = (up, extra = {}) => ({ transport: 'http', url: up.url, allow_private_networks: true, ...extra });

describe('native HTTP/1.1 client: stale keep-alive connections', { timeout: 60000 }, () => {
    let up, gw;
    before(async () => {
        up = await startRawUpstream({ dropReused: true });
        gw = await startGateway({ upstream: upstreamConfig(up) });
    });
    after(async () => {
        if (gw) await gw.stop();
        if (up) await up.stop();
    });

    test('a request met by the close of a reused connection is sent again, once, on a new one', async () => {
        const c = await connectSdk(gw);
        try {
            for (let i = 0; i < 6; i++) {
                const r = await c.client.callTool({ name: 'echo', arguments: { message: `m${i}` } });
                assert.equal(r.content[0].text, `Echo: m${i}`);
            }
        } finally {
            await closeSdk(c);
        }
        assert.ok(up.drops >= 3, `the server closed reused connections under requests (${up.drops} times)`);
        // Each call reached the server answered exactly once: a dropped
        // attempt and its retry, never two answered copies.
        for (let i = 0; i < 6; i++) {
            const answered = up.seen.filter(s => s.rpc?.params?.arguments?.message === `m${i}`);
            assert.equal(answered.length, 1, `m${i} answered once`);
        }
    });
});

describe('native HTTP/1.1 client: answers on the wire', { timeout: 60000 }, () => {
    let up, gw;
    before(async () => {
        up = await startRawUpstream();
        gw = await startGateway({ upstream: upstreamConfig(up) });
    });
    after(async () => {
        if (gw) await gw.stop();
        if (up) await up.stop();
    });

    test('keep-alive: sequential calls share connections', async () => {
        const c = await connectSdk(gw);
        try {
            for (let i = 0; i < 5; i++) assert.equal((await c.client.callTool({ name: 'echo', arguments: { message: `k${i}` } })).content[0].text, `Echo: k${i}`);
        } finally {
            await closeSdk(c);
        }
        const conns = new Set(up.seen.filter(s => s.rpc?.params?.arguments?.message?.startsWith('k')).map(s => s.conn));
        assert.equal(conns.size, 1, 'five sequential calls on one connection');
    });

    test('a chunked SSE answer cut at odd places arrives whole, progress first', async () => {
        const c = await connectSdk(gw);
        try {
            const progress = [];
            const r = await c.client.callTool({ name: 'sse', arguments: { message: 'odd cuts' } }, undefined, { onprogress: p => progress.push(p) });
            assert.equal(r.content[0].text, 'SSE: odd cuts');
            assert.equal(progress.length, 1);
            assert.equal(progress[0].progress, 1);
            // And the connection is reusable after the trailers.
            assert.equal((await c.client.callTool({ name: 'echo', arguments: { message: 'after sse' } })).content[0].text, 'Echo: after sse');
        } finally {
            await closeSdk(c);
        }
    });

    test('an answer that is not HTTP: a JSON-RPC error naming the upstream, never its address', async () => {
        const c = await connectSdk(gw);
        try {
            const failed = await c.client.callTool({ name: 'garbage', arguments: {} }).then(
                () => null,
                e => e
            );
            assert.ok(failed, 'the call fails');
            assert.match(String(failed.message), /upstream default/);
            assert.doesNotMatch(String(failed.message), /127\.0\.0\.1/);
            assert.doesNotMatch(String(failed.message), new RegExp(String(up.port)));
            assert.doesNotMatch(JSON.stringify(failed.data ?? {}), /127\.0\.0\.1/);
            // The gateway keeps serving, and the log says what was wrong.
            assert.equal((await c.client.callTool({ name: 'echo', arguments: { message: 'still here' } })).content[0].text, 'Echo: still here');
            assert.match(gw.stderr, /malformed answer: invalid status line/);
        } finally {
            await closeSdk(c);
        }
    });

    test('an answer cut in its body fails clearly and is never sent again', async () => {
        const c = await connectSdk(gw);
        try {
            // A warm connection first, so the cut one is a reused connection.
            await c.client.callTool({ name: 'echo', arguments: { message: 'warm' } });
            const failed = await c.client.callTool({ name: 'partial', arguments: {} }).then(
                () => null,
                e => e
            );
            assert.ok(failed, 'the call fails');
            assert.match(String(failed.message), /upstream default/);
            assert.equal(up.calls('partial').length, 1, 'the server saw the request once');
            assert.equal((await c.client.callTool({ name: 'echo', arguments: { message: 'next' } })).content[0].text, 'Echo: next');
        } finally {
            await closeSdk(c);
        }
    });
});

/** A name other than localhost that /etc/hosts maps to 127.0.0.1, if any. */
function loopbackName() {
    let text = '';
    try {
        text = readFileSync('/etc/hosts', 'utf8');
    } catch {
        return null;
    }
    for (const line of text.split('\n')) {
        const [addr, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
        if (addr !== '127.0.0.1') continue;
        const name = names.find(n => n && !/(^|\.)localhost(\.|$)/i.test(n) && /^[a-z0-9.-]+$/i.test(n));
        if (name) return name;
    }
    return null;
}

describe('native HTTP/1.1 client: names resolved by the asynchronous resolver', { timeout: 60000 }, () => {
    const name = loopbackName();
    test('every resolved address goes through the SSRF rule', { skip: name ? false : 'no name other than localhost maps to 127.0.0.1 in /etc/hosts' }, async () => {
        const up = await startRawUpstream();
        const url = `http://${name}:${up.port}/mcp`;
        try {
            const refused = await startGateway({ upstream: { transport: 'http', url }, ready: false });
            try {
                await waitFor(() => /address refused by the SSRF rule/.test(refused.stderr), { message: 'the refusal in the log' });
                assert.equal(up.conns, 0, 'no connection was made');
            } finally {
                await refused.stop();
            }
            const allowed = await startGateway({ upstream: { transport: 'http', url, allow_private_networks: true } });
            const c = await connectSdk(allowed);
            try {
                assert.equal((await c.client.callTool({ name: 'echo', arguments: { message: 'by name' } })).content[0].text, 'Echo: by name');
            } finally {
                await closeSdk(c);
                await allowed.stop();
            }
        } finally {
            await up.stop();
        }
    });
});
