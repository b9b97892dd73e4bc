// Rate limiting through the real gateway: GCRA per identity (in memory and
// shared through a real redis-server), per-tool limits, per-address limits
// before authentication, the X-RateLimit-* headers, 429 with Retry-After,
// and the fallback while Redis is down.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { freePort, sleep, tempDir, waitFor } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';

const alice = keygen('alice');
const bob = keygen('bob');
const auth = { api_keys: [{ id: 'alice', key_hash: alice.hash }, { id: 'bob', key_hash: bob.hash }] };
const bearer = k => ({ authorization: `Bearer ${k.key}` });

const call = (gw, key, sid, id, name = 'echo', args = { message: 'x' }) =>
    gw.mcp({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } },
        { headers: bearer(key), sessionId: sid, protocolVersion: '2025-11-25' });

async function session(gw, key) {
    const r = await gw.initialize(bearer(key));
    assert.equal(r.status, 200);
    return r.sessionId;
}

/* A real redis-server on a free loopback port, stopped by PID. */
async function startRedis(port) {
    const dir = tempDir('mcp-guard-redis-');
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
    await waitFor(async () => {
        try {
            const net = await import('node:net');
            return await new Promise(res => {
                const s = net.connect(port, '127.0.0.1', () => { s.end(); res(true); });
                s.on('error', () => res(false));
            });
        } catch { return false; }
    }, { timeoutMs: 10000, message: 'redis-server listening' });
    return proc;
}
function stopRedis(proc) {
    if (proc && proc.exitCode === null) proc.kill('SIGKILL');
}

describe('rate limiting in memory', () => {
    let gw;
    before(async () => {
        gw = await startAuthGateway({ auth, rate_limit: { requests_per_second: 5, burst_size: 5, tools: [{ name: 'get-sum', requests_per_second: 1, burst_size: 1 }] } });
    });
    after(async () => gw && gw.stop());

    test('20 back-to-back calls at 5/s, burst 5: exactly 5 pass, 15 get 429 with Retry-After', async () => {
        const sid = await session(gw, alice);
        await sleep(1100); // the session setup used two requests: let the bucket refill
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call(gw, alice, sid, 100 + i)));
        const ok = results.filter(r => r.status === 200);
        const limited = results.filter(r => r.status === 429);
        assert.equal(ok.length, 5, results.map(r => r.status).join(','));
        assert.equal(limited.length, 15);
        for (const r of limited) {
            assert.equal(r.headers['retry-after'], '1'); // 200 ms emission interval, rounded up
            assert.equal(r.json.error.code, -31429);
            assert.equal(r.json.error.data.retryAfterSecs, 1);
            assert.equal(r.headers['x-ratelimit-limit'], '5');
            assert.equal(r.headers['x-ratelimit-remaining'], '0');
        }
        // Every answer carries the headers, the successful ones too.
        for (const r of ok) assert.match(r.headers['x-ratelimit-remaining'], /^[0-4]$/);
        // Another identity has its own budget.
        const bsid = await session(gw, bob);
        assert.equal((await call(gw, bob, bsid, 1)).status, 200);
        // And alice's comes back at the sustained rate.
        await sleep(1100);
        assert.equal((await call(gw, alice, sid, 200)).status, 200);
    });

    test('a per-tool limit: get-sum at 1/s per identity, other tools unaffected', async () => {
        await sleep(1100);
        const sid = await session(gw, bob);
        await sleep(1100);
        const first = await call(gw, bob, sid, 1, 'get-sum', { a: 1, b: 2 });
        assert.equal(first.status, 200);
        const second = await call(gw, bob, sid, 2, 'get-sum', { a: 1, b: 2 });
        assert.equal(second.status, 429);
        assert.equal(second.json.id, 2); // the JSON-RPC id is known at the tool check
        assert.match(second.json.error.message, /tool get-sum/);
        assert.equal((await call(gw, bob, sid, 3, 'echo')).status, 200);
    });

    test('/health shows the limiter', async () => {
        const h = await gw.request('/health');
        assert.equal(h.json.rate_limit.store, 'memory');
        assert.ok(h.json.rate_limit.refused >= 15);
    });
});

describe('per-address limit before authentication', () => {
    let gw;
    before(async () => {
        gw = await startAuthGateway({ auth, rate_limit: { ip_requests_per_second: 2, ip_burst_size: 3 } });
    });
    after(async () => gw && gw.stop());

    test('authenticated traffic from the same address does not use the per-address budget', async () => {
        const sid = await session(gw, alice);
        const results = [];
        for (let i = 0; i < 10; i++) results.push((await call(gw, alice, sid, i + 1)).status);
        assert.deepEqual(results, Array(10).fill(200));
    });

    test('a flood of bad credentials is cut off before they are checked', async () => {
        const results = [];
        for (let i = 0; i < 8; i++)
            results.push(await gw.mcp({ jsonrpc: '2.0', id: i, method: 'ping' }, { headers: { authorization: 'Bearer mcp_wrong' } }));
        assert.deepEqual(results.slice(0, 3).map(r => r.status), [401, 401, 401]);
        assert.ok(results.slice(3).every(r => r.status === 429), results.map(r => r.status).join(','));
        assert.ok(results[7].headers['retry-after']);
        // The auth log shows only the requests that got that far.
        await sleep(100);
        assert.ok((gw.stderr.match(/auth: 401/g) || []).length <= 4);
    });
});

describe('rate limiting shared through Redis', () => {
    let redisPort, redis, a, b;
    before(async () => {
        redisPort = await freePort();
        redis = await startRedis(redisPort);
        const cfg = { auth, rate_limit: { requests_per_second: 5, burst_size: 5, redis_url: `redis://127.0.0.1:${redisPort}/0`, redis_timeout_ms: 100, expected_instances: 2, ip_requests_per_second: 0 } };
        a = await startAuthGateway(cfg);
        b = await startAuthGateway(cfg);
        await waitFor(async () => (await a.request('/health')).json.rate_limit.redis_up && (await b.request('/health')).json.rate_limit.redis_up,
            { timeoutMs: 10000, message: 'both gateways connected to Redis' });
    });
    after(async () => {
        await Promise.all([a && a.stop(), b && b.stop()]);
        stopRedis(redis);
    });

    test('two instances sharing one Redis enforce one global limit', async () => {
        const sa = await session(a, alice);
        const sb = await session(b, alice);
        await sleep(1100);
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i % 2 ? b : a, alice, i % 2 ? sb : sa, i + 1)));
        const ok = results.filter(r => r.status === 200).length;
        assert.equal(ok, 5, results.map(r => r.status).join(','));
    });

    test('Redis killed mid-test: requests keep flowing on the fallback; back: shared limiting resumes', async () => {
        const sa = await session(a, bob);
        stopRedis(redis);
        await waitFor(async () => !(await a.request('/health')).json.rate_limit.redis_up, { timeoutMs: 10000, message: 'gateway notices Redis is down' });
        await sleep(1100);
        // Down: each instance allows its share (5/2 → burst 3, rate 2.5/s), answers come at once.
        const t0 = Date.now();
        const down = await Promise.all(Array.from({ length: 10 }, (_, i) => call(a, bob, sa, 50 + i)));
        assert.ok(Date.now() - t0 < 5000);
        const okDown = down.filter(r => r.status === 200).length;
        assert.ok(okDown >= 1 && okDown <= 3, down.map(r => r.status).join(','));
        assert.ok(down.every(r => r.status === 200 || r.status === 429));
        assert.match(a.stderr, /unavailable/);
        // Redis back on the same port: both reconnect, the limit is global again.
        redis = await startRedis(redisPort);
        await waitFor(async () => (await a.request('/health')).json.rate_limit.redis_up && (await b.request('/health')).json.rate_limit.redis_up,
            { timeoutMs: 20000, message: 'gateways reconnected to Redis' });
        const sb = await session(b, bob);
        await sleep(1100);
        const back = await Promise.all(Array.from({ length: 20 }, (_, i) => call(i % 2 ? b : a, bob, i % 2 ? sb : sa, 100 + i)));
        assert.equal(back.filter(r => r.status === 200).length, 5, back.map(r => r.status).join(','));
    });
});
