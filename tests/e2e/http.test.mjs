// HTTP edge cases on raw sockets: size limits, malformed and hostile input,
// content negotiation, Origin/Host checks and CORS, framing (chunked,
// Content-Length + Transfer-Encoding, pipelining, HTTP/1.0, 100-continue),
// slow clients and the connection limit. Every error is a JSON-RPC body.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { RawConn, httpRequest, modernRequest, rawRequest, sleep, startGateway, waitFor } from './helpers.mjs';

const ORIGIN = 'https://app.example.com';

/** Asserts a JSON-RPC error body (never HTML) with `status`. */
function assertJsonError(r, status, { code, what = '' } = {}) {
    assert.equal(r.status, status, `${what}: status ${r.status}, body ${r.body}`);
    assert.match(r.headers['content-type'] || '', /^application\/json/, `${what}: content-type`);
    assert.ok(r.json, `${what}: a JSON body`);
    assert.equal(r.json.jsonrpc, '2.0', what);
    assert.equal(typeof r.json.error?.code, 'number', `${what}: ${r.body}`);
    assert.equal(typeof r.json.error.message, 'string');
    if (code !== undefined) assert.equal(r.json.error.code, code, `${what}: ${r.body}`);
}

describe('HTTP front', { timeout: 120000 }, () => {
    let gw;
    let P;
    const mcpPost = (body, headers = {}) =>
        httpRequest('POST', '/mcp', {
            port: P,
            headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers },
            body
        });
    /** A valid modern echo request (no session needed). */
    const echo = (message, id = 1, extraHeaders = {}) => {
        const { body, headers } = modernRequest('tools/call', { name: 'echo', arguments: { message } }, { id, name: 'echo' });
        return { body: JSON.stringify(body), headers: { ...headers, ...extraHeaders } };
    };

    before(async () => {
        gw = await startGateway({
            server: { max_body_bytes: 4096, max_header_bytes: 2048, idle_timeout_secs: 2, allowed_origins: [ORIGIN] }
        });
        P = gw.port;
    });

    after(async () => {
        if (gw) await gw.stop();
    });

    test('/health, /ready and /live', async () => {
        const h = await gw.health();
        assert.equal(h.status, 'ok');
        assert.match(h.version, /^\d+\.\d+\.\d+/);
        assert.ok(Number.isInteger(h.uptime_secs) && h.uptime_secs >= 0);
        for (const k of ['sessions', 'connections', 'requests_in_flight']) assert.ok(Number.isInteger(h[k]), `${k}: ${h[k]}`);
        assert.equal(h.upstreams.length, 1);
        const [u] = h.upstreams;
        assert.equal(u.name, 'default');
        assert.equal(u.status, 'up');
        assert.equal(u.mode, 'shared');
        assert.equal(u.restarts, 0);
        assert.ok(Number.isInteger(u.pid) && u.pid > 0);
        assert.equal(u.server.name, 'mcp-servers/everything');
        const health = await gw.get('/health');
        assert.equal(health.headers['cache-control'], 'no-store');
        const ready = await gw.get('/ready');
        assert.equal(ready.status, 200);
        assert.deepEqual(ready.json, { status: 'ready' });
        const live = await gw.get('/live');
        assert.equal(live.status, 200);
        assert.deepEqual(live.json, { status: 'live' });
    });

    test('a body over max_body_bytes: 413 with a JSON-RPC error (Content-Length and chunked)', async () => {
        const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'a'.repeat(5000) } });
        const r = await rawRequest(P, mcpPost(big));
        assertJsonError(r, 413, { what: 'Content-Length' });
        assert.equal(r.json.error.data.httpStatus, 413);
        assert.equal(r.headers.connection, 'close');

        const conn = await RawConn.open(P);
        try {
            await conn.write(mcpPost('', { 'Transfer-Encoding': 'chunked', 'Content-Length': null }));
            const piece = 'b'.repeat(1000);
            for (let i = 0; i < 6 && !conn.ended; i++) await conn.write(`${piece.length.toString(16)}\r\n${piece}\r\n`).catch(() => {});
            const c = await conn.readResponse(5000);
            assertJsonError(c, 413, { what: 'chunked' });
        } finally {
            conn.destroy();
        }
        // Exactly at the limit is fine (the JSON is then judged on its own).
        const pad = 4096 - JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: '' } }).length;
        const edge = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'c'.repeat(pad) } });
        assert.equal(Buffer.byteLength(edge), 4096);
        const ok = await rawRequest(P, mcpPost(edge));
        assert.equal(ok.status, 400, 'not 413: no session, so 400 from the MCP layer');
        assert.match(ok.json.error.message, /Mcp-Session-Id/);
    });

    test('a client still sending the body it was refused for gets the 413 (lingering close, not a reset)', async () => {
        // The client writes its whole chunked body before it reads. Had the
        // gateway closed with that input unread, its kernel would answer the
        // later writes with a reset, and the client's kernel would drop the
        // 413 before the client read it (it did: 30 times out of 30).
        for (let i = 0; i < 3; i++) {
            const s = net.connect(P, '127.0.0.1');
            let got = '';
            let closed = false;
            s.on('data', d => (got += d));
            s.on('error', () => {});
            s.on('close', () => (closed = true));
            s.pause();
            await new Promise(resolve => s.once('connect', resolve));
            s.write(mcpPost('', { 'Transfer-Encoding': 'chunked', 'Content-Length': null }));
            const piece = 'b'.repeat(1000);
            for (let k = 0; k < 8; k++) {
                s.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
                await sleep(2);
            }
            await sleep(20);
            s.resume();
            await waitFor(() => closed || got.includes('"code"'), { timeoutMs: 5000, message: 'the 413 answer' });
            s.destroy();
            assert.match(got, /^HTTP\/1\.1 413 /, `attempt ${i + 1}: ${JSON.stringify(got.slice(0, 80))}`);
        }
    });

    test('a header block over max_header_bytes: 431 JSON', async () => {
        const r = await rawRequest(P, mcpPost('{}', { 'X-Padding': 'h'.repeat(3000) }));
        assertJsonError(r, 431);
        const many = {};
        for (let i = 0; i < 200; i++) many[`X-H${i}`] = 'v';
        const r2 = await rawRequest(P, mcpPost('{}', many));
        assertJsonError(r2, 431, { what: 'many headers' });
        const longLine = await rawRequest(P, httpRequest('GET', `/${'x'.repeat(5000)}`, { port: P }));
        assertJsonError(longLine, 414, { what: 'long request line' });
    });

    test('malformed JSON: 400 with -32700; duplicate keys and too deep nesting: 400', async () => {
        for (const bad of ['{"jsonrpc":"2.0",', '', 'nul', '{"jsonrpc":"2.0","id":1,"method":"ping"} trailing', '\u00ff\u00fe']) {
            const r = await rawRequest(P, mcpPost(bad));
            assertJsonError(r, 400, { code: -32700, what: JSON.stringify(bad) });
            assert.equal(r.json.id, null);
        }
        const dup = await rawRequest(P, mcpPost('{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}'));
        assertJsonError(dup, 400, { what: 'duplicate id' });
        const dupNested = await rawRequest(P, mcpPost('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"get-sum"}}'));
        assertJsonError(dupNested, 400, { what: 'duplicate nested key' });

        const nest = n => `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"a":${'['.repeat(n)}${']'.repeat(n)}}}`;
        const deep = await rawRequest(P, mcpPost(nest(70)));
        assertJsonError(deep, 400, { what: 'depth 70' });
        assert.match(deep.json.error.message, /deeper/);
        const deepObj = await rawRequest(P, mcpPost(`{"jsonrpc":"2.0","id":1,"method":"x","params":${'{"k":'.repeat(80)}1${'}'.repeat(80)}}`));
        assertJsonError(deepObj, 400, { what: 'object depth 80' });
        // Below the limit the MCP layer answers (here: no session).
        const fine = await rawRequest(P, mcpPost(nest(50)));
        assertJsonError(fine, 400, { code: -32600, what: 'depth 50' });
        assert.match(fine.json.error.message, /Mcp-Session-Id/);
        // Not JSON-RPC at all.
        for (const body of ['{"id":1,"method":"ping"}', '[]', '42', '{"jsonrpc":"2.0","id":1}']) {
            const r = await rawRequest(P, mcpPost(body));
            assertJsonError(r, 400, { what: body });
        }
    });

    test('Content-Type must be application/json (415); Accept must allow JSON or SSE (406)', async () => {
        const { body, headers } = echo('ctype');
        for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', null]) {
            const r = await rawRequest(P, mcpPost(body, { ...headers, 'Content-Type': ct }));
            assertJsonError(r, 415, { what: `Content-Type ${ct}` });
        }
        const withCharset = await rawRequest(P, mcpPost(body, { ...headers, 'Content-Type': 'application/json; charset=utf-8' }));
        assert.equal(withCharset.status, 200, withCharset.body);
        for (const accept of ['text/html', 'image/png, text/plain']) {
            const r = await rawRequest(P, mcpPost(body, { ...headers, Accept: accept }));
            assertJsonError(r, 406, { what: `Accept ${accept}` });
        }
        for (const accept of ['application/json', 'text/event-stream', '*/*', 'application/*', null]) {
            const r = await rawRequest(P, mcpPost(body, { ...headers, Accept: accept }));
            assert.equal(r.status, 200, `Accept ${accept}: ${r.body}`);
        }
    });

    test('Origin: foreign → 403; allowed and loopback origins pass with CORS headers; preflight 204', async () => {
        const { body, headers } = echo('origin');
        for (const origin of ['https://evil.example', 'http://app.example.com', 'null', 'https://app.example.com.evil.example']) {
            const r = await rawRequest(P, mcpPost(body, { ...headers, Origin: origin }));
            assertJsonError(r, 403, { what: `Origin ${origin}` });
        }
        for (const origin of [ORIGIN, `http://localhost:${P}`, 'http://127.0.0.1:9999']) {
            const r = await rawRequest(P, mcpPost(body, { ...headers, Origin: origin }));
            assert.equal(r.status, 200, `Origin ${origin}: ${r.body}`);
        }
        // CORS on a session-creating initialize exposes Mcp-Session-Id.
        const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'cors', version: '1' } } });
        const ri = await rawRequest(P, mcpPost(init, { Origin: ORIGIN }));
        assert.equal(ri.status, 200, ri.body);
        assert.equal(ri.headers['access-control-allow-origin'], ORIGIN);
        assert.match(ri.headers['access-control-expose-headers'], /Mcp-Session-Id/i);
        await rawRequest(P, httpRequest('DELETE', '/mcp', { port: P, headers: { 'Mcp-Session-Id': ri.headers['mcp-session-id'] } }));

        const pre = await rawRequest(
            P,
            httpRequest('OPTIONS', '/mcp', {
                port: P,
                headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type, mcp-session-id, mcp-protocol-version' }
            })
        );
        assert.equal(pre.status, 204);
        assert.equal(pre.headers['access-control-allow-origin'], ORIGIN);
        assert.match(pre.headers['access-control-allow-methods'], /POST/);
        assert.match(pre.headers['access-control-allow-methods'], /DELETE/);
        for (const h of ['Content-Type', 'Mcp-Session-Id', 'MCP-Protocol-Version', 'Mcp-Method', 'Mcp-Name', 'Last-Event-ID']) {
            assert.ok(pre.headers['access-control-allow-headers'].toLowerCase().includes(h.toLowerCase()), `${h} allowed`);
        }
        const preBad = await rawRequest(P, httpRequest('OPTIONS', '/mcp', { port: P, headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' } }));
        assertJsonError(preBad, 403, { what: 'preflight from a foreign origin' });
    });

    test('Host: a foreign name on the loopback listener → 403 (DNS rebinding); loopback names pass', async () => {
        const { body, headers } = echo('host');
        for (const host of [`evil.example:${P}`, 'evil.example', `127.0.0.1.evil.example:${P}`, `localhost.evil.example:${P}`]) {
            const r = await rawRequest(P, mcpPost(body, { ...headers, Host: host }));
            assertJsonError(r, 403, { what: `Host ${host}` });
        }
        for (const host of [`localhost:${P}`, `127.0.0.1:${P}`, `[::1]:${P}`, 'LOCALHOST']) {
            const r = await rawRequest(P, mcpPost(body, { ...headers, Host: host }));
            assert.equal(r.status, 200, `Host ${host}: ${r.body}`);
        }
        const none = await rawRequest(P, mcpPost(body, { ...headers, Host: null }));
        assertJsonError(none, 400, { what: 'no Host' });
        const twice = await rawRequest(P, Buffer.from(`GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n`));
        assertJsonError(twice, 400, { what: 'two Host headers' });
    });

    test('framing: Content-Length with Transfer-Encoding → 400 and close; bad chunks → 400; unknown coding → 501', async () => {
        const { body, headers } = echo('smuggle');
        const conn = await RawConn.open(P);
        try {
            const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
            await conn.write(mcpPost(chunked, { ...headers, 'Transfer-Encoding': 'chunked', 'Content-Length': String(Buffer.byteLength(chunked)) }));
            const r = await conn.readResponse(5000);
            assertJsonError(r, 400, { what: 'CL + TE' });
            assert.match(r.json.error.message, /Content-Length and Transfer-Encoding/i);
            assert.equal(r.headers.connection, 'close');
            assert.ok(await conn.waitClosed(5000), 'the connection is closed after the error');
        } finally {
            conn.destroy();
        }
        const badChunk = await rawRequest(P, mcpPost('zz\r\n{}\r\n0\r\n\r\n', { ...headers, 'Transfer-Encoding': 'chunked' }));
        assertJsonError(badChunk, 400, { what: 'invalid chunk size' });
        const gzip = await rawRequest(P, mcpPost(body, { ...headers, 'Transfer-Encoding': 'gzip', 'Content-Length': null }));
        assertJsonError(gzip, 501, { what: 'Transfer-Encoding gzip' });
        const twoLengths = await rawRequest(
            P,
            Buffer.from(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`)
        );
        assertJsonError(twoLengths, 400, { what: 'two different Content-Length headers' });
    });

    test('chunked request bodies (split across writes, with an extension and a trailer) work', async () => {
        const { body, headers } = echo('chunked body ✓', 'chunky');
        const conn = await RawConn.open(P);
        try {
            await conn.write(mcpPost('', { ...headers, 'Transfer-Encoding': 'chunked', 'Content-Length': null }));
            const buf = Buffer.from(body);
            const parts = [buf.subarray(0, 10), buf.subarray(10, 50), buf.subarray(50)];
            for (const [i, p] of parts.entries()) {
                await conn.write(Buffer.concat([Buffer.from(`${p.length.toString(16)}${i === 1 ? ';ext=1' : ''}\r\n`), p, Buffer.from('\r\n')]));
                await sleep(30);
            }
            await conn.write('0\r\nX-Trailer: yes\r\n\r\n');
            const r = await conn.readResponse(5000);
            assert.equal(r.status, 200, r.body);
            assert.equal(r.json.id, 'chunky');
            assert.equal(r.json.result.content[0].text, 'Echo: chunked body ✓');
        } finally {
            conn.destroy();
        }
    });

    test('pipelined keep-alive requests on one socket are answered in order', async () => {
        const slow = modernRequest('tools/call', { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 1 } }, { id: 'first-slow', name: 'trigger-long-running-operation' });
        const fast = echo('second', 'second-fast');
        const conn = await RawConn.open(P);
        try {
            await conn.write(
                Buffer.concat([
                    mcpPost(JSON.stringify(slow.body), { ...slow.headers, Accept: 'application/json' }),
                    mcpPost(fast.body, fast.headers),
                    httpRequest('GET', '/live', { port: P }),
                    httpRequest('HEAD', '/health', { port: P }),
                    httpRequest('GET', '/nope', { port: P }),
                    httpRequest('GET', '/ready', { port: P })
                ])
            );
            const r1 = await conn.readResponse(10000);
            assert.equal(r1.json.id, 'first-slow');
            assert.match(r1.json.result.content[0].text, /completed/);
            const r2 = await conn.readResponse(5000);
            assert.equal(r2.json.id, 'second-fast');
            const r3 = await conn.readResponse(5000);
            assert.deepEqual(r3.json, { status: 'live' });
            const r4 = await conn.readResponse(5000, { head: true });
            assert.equal(r4.status, 200);
            assert.equal(r4.body, '');
            const r5 = await conn.readResponse(5000);
            assertJsonError(r5, 404, { what: 'unknown path' });
            const r6 = await conn.readResponse(5000);
            assert.equal(r6.status, 200);
            assert.equal(conn.buf.length, 0, 'nothing else was sent');
            // The connection is still usable.
            await conn.write(httpRequest('GET', '/live', { port: P }));
            assert.equal((await conn.readResponse(5000)).status, 200);
        } finally {
            conn.destroy();
        }
    });

    test('unknown paths → 404 JSON; wrong methods → 405 JSON with Allow; HTTP/1.0 and 100-continue', async () => {
        for (const p of ['/', '/mcp/', '/mcpx', '/health/x', '/.env']) {
            const r = await rawRequest(P, httpRequest('GET', p, { port: P }));
            assertJsonError(r, 404, { what: p });
        }
        for (const [m, p] of [
            ['POST', '/health'],
            ['DELETE', '/ready'],
            ['PUT', '/mcp'],
            ['PATCH', '/mcp']
        ]) {
            const r = await rawRequest(P, httpRequest(m, p, { port: P }));
            assertJsonError(r, 405, { what: `${m} ${p}` });
            assert.ok(r.headers.allow, `${m} ${p}: Allow`);
        }
        const v10 = await rawRequest(P, Buffer.from('GET /live HTTP/1.0\r\n\r\n'));
        assert.equal(v10.status, 200);
        assert.equal(v10.minor, 0);
        const v2 = await rawRequest(P, Buffer.from(`GET /live HTTP/2.0\r\nHost: 127.0.0.1:${P}\r\n\r\n`));
        assertJsonError(v2, 505, { what: 'HTTP/2.0 request line' });

        const { body, headers } = echo('continue', 'cont');
        const conn = await RawConn.open(P);
        try {
            const head = mcpPost('', { ...headers, Expect: '100-continue', 'Content-Length': String(Buffer.byteLength(body)) });
            await conn.write(head);
            const cont = await conn.readHead(5000);
            assert.equal(cont.status, 100);
            await conn.write(body);
            const r = await conn.readResponse(5000);
            assert.equal(r.status, 200);
            assert.equal(r.json.id, 'cont');
        } finally {
            conn.destroy();
        }
    });

    test('a slowloris client (half a request head, then nothing) gets 408 and is closed after idle_timeout_secs', async () => {
        const slowHead = async () => {
            const conn = await RawConn.open(P);
            try {
                const t0 = Date.now();
                await conn.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:${P}\r\nContent-Type: appl`);
                const r = await conn.readResponse(10000);
                const waited = Date.now() - t0;
                assertJsonError(r, 408, { what: 'slowloris' });
                assert.ok(waited >= 1500, `answered after ${waited} ms (idle_timeout_secs = 2)`);
                assert.ok(await conn.waitClosed(5000), 'closed after the 408');
            } finally {
                conn.destroy();
            }
        };
        // A complete head with a body that never comes is cut the same way.
        const slowBody = async () => {
            const conn = await RawConn.open(P);
            try {
                await conn.write(mcpPost('', { 'Content-Length': '100' }));
                await conn.write('{"jsonrpc":');
                const r = await conn.readResponse(10000);
                assertJsonError(r, 408, { what: 'slow body' });
            } finally {
                conn.destroy();
            }
        };
        // An idle keep-alive connection that sent nothing is closed silently.
        const idle = async () => {
            const conn = await RawConn.open(P);
            try {
                assert.ok(await conn.waitClosed(8000), 'the idle connection was closed');
                assert.equal(conn.buf.length, 0, 'without a response');
            } finally {
                conn.destroy();
            }
        };
        await Promise.all([slowHead(), slowBody(), idle()]);
    });
});

test('max_connections = 5: the 6th connection is refused with 503 JSON; a freed slot is reusable', { timeout: 60000 }, async () => {
    const gw = await startGateway({ server: { max_connections: 5, idle_timeout_secs: 30 } });
    const conns = [];
    try {
        await waitFor(async () => (await gw.health()).connections === 1, { timeoutMs: 5000, message: 'only the health connection open' });
        for (let i = 0; i < 5; i++) {
            const c = await RawConn.open(gw.port);
            conns.push(c);
            await c.write(httpRequest('GET', '/live', { port: gw.port }));
            const r = await c.readResponse(5000);
            assert.equal(r.status, 200, `connection ${i + 1}`);
        }
        const sixth = await RawConn.open(gw.port);
        conns.push(sixth);
        await sixth.write(httpRequest('GET', '/live', { port: gw.port })).catch(() => {});
        const r = await sixth.readResponse(5000);
        assert.equal(r.status, 503);
        assert.match(r.headers['content-type'], /^application\/json/);
        assert.equal(r.json.error.code, -32603);
        assert.equal(r.headers['retry-after'], '1');
        assert.ok(await sixth.waitClosed(5000));

        conns[0].destroy();
        // The slot frees as soon as the gateway saw the close.
        await waitFor(
            async () => {
                const c = await RawConn.open(gw.port);
                try {
                    await c.write(httpRequest('GET', '/live', { port: gw.port, headers: { Connection: 'close' } }));
                    return (await c.readResponse(5000)).status === 200;
                } finally {
                    c.destroy();
                }
            },
            { timeoutMs: 5000, message: 'a freed connection slot' }
        );
    } finally {
        for (const c of conns) c.destroy();
        await gw.stop();
    }
});
