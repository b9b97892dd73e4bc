// Prometheus metrics through the real gateway: the official SDK client and raw
// requests do a known number of calls against server-everything (some denied
// by authorization, one refused by a per-tool rate limit, some failing
// authentication, one malformed, one tool error), then /metrics is scraped on
// the main listener and on the admin listener (metrics.listen), parsed with a
// real Prometheus text parser (parse-prometheus-text-format) and checked by
// the format's own rules: counters equal what the test did, one HELP/TYPE per
// family, samples grouped, cumulative buckets ending with le="+Inf" equal to
// _count, and no identity id or secret anywhere in the text.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createRequire } from 'node:module';

import { closeSdk, connectSdk, freePort, httpGet, runCli } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';

const require = createRequire(import.meta.url);
const parsePrometheus = require('parse-prometheus-text-format');

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/* The exposition rules the parser does not enforce, checked on the raw text. */
function checkFormat(text) {
    assert.ok(text.endsWith('\n'), 'the last line ends with a newline');
    const helps = new Map();
    const types = new Map();
    const seen = new Set(); // families whose samples are finished
    let current = null;
    let lastBucket = null;
    for (const line of text.split('\n').slice(0, -1)) {
        let m;
        if ((m = /^# HELP (\S+) /.exec(line))) {
            assert.ok(!helps.has(m[1]), `one HELP for ${m[1]}`);
            helps.set(m[1], true);
            if (current) seen.add(current);
            current = m[1];
            assert.ok(!seen.has(current), `${current} appears in one group`);
            continue;
        }
        if ((m = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line))) {
            assert.equal(m[1], current, 'TYPE follows its HELP');
            assert.ok(!types.has(m[1]), `one TYPE for ${m[1]}`);
            types.set(m[1], m[2]);
            continue;
        }
        assert.ok(!line.startsWith('#'), `unexpected comment: ${line}`);
        m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
        assert.ok(m, `a sample line: ${line}`);
        const family = types.get(current) === 'histogram' ? m[1].replace(/_(bucket|sum|count)$/, '') : m[1];
        assert.equal(family, current, `sample ${line} belongs to the family being written`);
        if (m[1].endsWith('_bucket')) {
            // In the text: le ascending within a series, ending with +Inf before _sum.
            const le = /le="([^"]*)"\}$/.exec(m[2])[1];
            const series = m[2].replace(/,?le="[^"]*"\}$/, '}');
            const bound = le === '+Inf' ? Infinity : Number(le);
            if (lastBucket && lastBucket.series === series && lastBucket.bound !== Infinity) assert.ok(bound > lastBucket.bound, `le ascending: ${line}`);
            else assert.ok(!lastBucket || lastBucket.bound === Infinity, `a series ends with +Inf before the next: ${line}`);
            lastBucket = { series, bound };
        } else if (lastBucket) {
            assert.equal(lastBucket.bound, Infinity, `the last bucket before ${line} is +Inf`);
            lastBucket = null;
        }
        assert.ok(!Number.isNaN(Number(m[3].replace(/^\+Inf$/, 'Infinity'))), `a number: ${m[3]}`);
    }
    return types;
}

/* Sample lines of the text: {name, labels, value}, labels unescaped. The
 * parser (a port of client_python 0.0.19's) merges the series of a labelled
 * histogram into one and drops their labels, _sum and _count, so histograms
 * are checked on these lines; counters and gauges on the parser's output. */
function rawSamples(text) {
    const out = [];
    for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        assert.ok(m, `a sample line: ${line}`);
        const labels = {};
        const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
        let lm;
        let end = 0;
        while ((lm = re.exec(m[2] || ''))) {
            labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
            end = re.lastIndex;
        }
        assert.equal(end, (m[2] || '').length, `labels parse: ${line}`);
        out.push({ name: m[1], labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
    }
    return out;
}

function checkHistograms(families, raw) {
    for (const f of families.filter(x => x.type === 'HISTOGRAM')) {
        const series = new Map();
        for (const s of raw.filter(x => x.name.startsWith(`${f.name}_`))) {
            const { le, ...rest } = s.labels;
            const key = JSON.stringify(rest);
            if (!series.has(key)) series.set(key, { buckets: [] });
            const e = series.get(key);
            if (s.name === `${f.name}_bucket`) e.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
            else if (s.name === `${f.name}_sum`) e.sum = s.value;
            else if (s.name === `${f.name}_count`) e.count = s.value;
        }
        assert.ok(series.size >= 1 && f.metrics.length >= 1, `${f.name}: samples`);
        for (const [key, e] of series) {
            assert.ok(e.count !== undefined && e.sum >= 0, `${f.name}${key}: _count and _sum`);
            assert.equal(e.buckets[e.buckets.length - 1][0], Infinity, `${f.name}${key}: ends with +Inf`);
            for (let i = 1; i < e.buckets.length; i++) {
                assert.ok(e.buckets[i][0] > e.buckets[i - 1][0], `${f.name}${key}: le ascending`);
                assert.ok(e.buckets[i][1] >= e.buckets[i - 1][1], `${f.name}${key}: cumulative`);
            }
            assert.equal(e.buckets[e.buckets.length - 1][1], e.count, `${f.name}${key}: +Inf bucket = _count`);
        }
    }
}

/* Sum of the samples of `name` (counters, gauges: from the parser;
 * histograms: their _count, from the text) whose labels include `labels`. */
function value(fam, raw, name, labels = {}) {
    const f = fam.get(name);
    assert.ok(f, `family ${name} is present`);
    const match = l => Object.entries(labels).every(([k, v]) => (l || {})[k] === v);
    if (f.type === 'HISTOGRAM') return raw.filter(s => s.name === `${name}_count` && match(s.labels)).reduce((a, s) => a + s.value, 0);
    return f.metrics.filter(s => match(s.labels)).reduce((a, s) => a + Number(s.value), 0);
}

const index = families => new Map(families.map(f => [f.name, f]));

describe('Prometheus metrics', { timeout: 120000, concurrency: 1 }, () => {
    let gw;
    let adminPort;
    let alice; // echo and get-resource-reference only
    let bob; // everything; get-sum limited to one call
    let scraper; // may call nothing (the Kubernetes base's "prometheus" key)
    const authed = []; // every HTTP request the SDK clients sent (all with valid keys)
    const counting = key => ({
        fetch: (url, init) => {
            authed.push({ url: String(url), method: init?.method || 'GET', key });
            return fetch(url, init);
        },
        requestInit: { headers: { 'X-API-Key': key.key } }
    });

    before(async () => {
        alice = keygen('alice');
        bob = keygen('bob');
        scraper = keygen('scraper');
        adminPort = await freePort();
        gw = await startAuthGateway({
            auth: {
                api_keys: [
                    { id: 'alice', key_hash: alice.hash, allowed_tools: ['echo', 'get-resource-reference'] },
                    { id: 'bob', key_hash: bob.hash },
                    { id: 'scraper', key_hash: scraper.hash, allowed_tools: [], allowed_resources: [], allowed_prompts: [] }
                ]
            },
            rate_limit: { requests_per_second: 100000, burst_size: 100000, tools: [{ name: 'get-sum', requests_per_second: 0.001, burst_size: 1 }] },
            metrics: { listen: `127.0.0.1:${adminPort}` }
        });
    });

    after(async () => {
        await gw?.stop();
    });

    test('a scrape without credentials is refused on both listeners (require_auth defaults to true)', async () => {
        const main = await gw.request('/metrics');
        assert.equal(main.status, 401);
        assert.equal(main.headers['www-authenticate'], gw.challenge());
        const admin = await httpGet(adminPort, '/metrics');
        assert.equal(admin.status, 401);
        // The admin listener serves nothing else but the health endpoints.
        assert.equal((await httpGet(adminPort, '/mcp')).status, 404);
        assert.equal((await httpGet(adminPort, '/live')).status, 200);
        assert.equal((await httpGet(adminPort, '/ready')).status, 200);
        const post = await httpGet(adminPort, '/metrics', { method: 'POST', headers: { 'x-api-key': bob.key }, body: '{}' });
        assert.equal(post.status, 405);
    });

    test('counters equal what the clients did; the text follows the 0.0.4 rules', async () => {
        let a;
        let b;
        try {
            a = await connectSdk(gw, { name: 'alice', transportOptions: counting(alice) });
            b = await connectSdk(gw, { name: 'bob', transportOptions: counting(bob) });
            // alice: 3 echo calls and a tools/list; 2 calls authorization denies.
            for (let i = 0; i < 3; i++) {
                const r = await a.client.callTool({ name: 'echo', arguments: { message: `m${i}` } });
                assert.equal(r.content[0].text, `Echo: m${i}`);
            }
            await a.client.listTools();
            for (const name of ['get-sum', 'get-env']) {
                await assert.rejects(a.client.callTool({ name, arguments: { a: 1, b: 2 } }), /Unknown tool/);
            }
            // A tool that answers with isError: true (an error thrown by the tool).
            const te = await a.client.callTool({ name: 'get-resource-reference', arguments: { resourceType: 'text', resourceId: -5 } });
            assert.equal(te.isError, true);
            // bob: get-sum passes once, then its per-tool limit refuses.
            assert.equal((await b.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).isError, undefined);
            await assert.rejects(b.client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } }), /Too Many Requests/);
        } finally {
            await closeSdk(a);
            await closeSdk(b);
        }
        // Authentication failures (no key, two wrong keys) and a malformed body.
        const init = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} };
        assert.equal((await gw.mcp(init)).status, 401);
        assert.equal((await gw.mcp(init, { headers: { 'x-api-key': 'mcp_wrong' } })).status, 401);
        assert.equal((await gw.mcp(init, { headers: { authorization: `Bearer ${alice.key}x` } })).status, 401);
        assert.equal((await gw.mcp('{"jsonrpc":"2.0",', { headers: { 'x-api-key': bob.key } })).status, 400);

        const r = await httpGet(adminPort, '/metrics', { headers: { 'x-api-key': bob.key } });
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-type'], CONTENT_TYPE);
        const text = r.body;
        const types = checkFormat(text);
        const families = parsePrometheus(text);
        assert.equal(families.length, types.size, 'the parser saw every family');
        const raw = rawSamples(text);
        checkHistograms(families, raw);
        const fam = index(families);
        const v = (name, labels) => value(fam, raw, name, labels);

        // The SDK's POSTs, by method, read from what it sent.
        const posts = authed.filter(x => x.method === 'POST');
        const authedMcp = authed.length; // POST + GET (stream) + DELETE, all authenticated
        assert.equal(v('mcp_guard_requests_total', { method: 'initialize', status: 'ok' }), 2);
        assert.equal(v('mcp_guard_requests_total', { method: 'notifications/initialized', status: 'ok' }), 2);
        assert.equal(v('mcp_guard_requests_total', { method: 'tools/list', status: 'ok' }), 1);
        assert.equal(v('mcp_guard_requests_total', { method: 'tools/call', status: 'ok' }), 4);
        assert.equal(v('mcp_guard_requests_total', { method: 'tools/call', status: 'denied' }), 2);
        assert.equal(v('mcp_guard_requests_total', { method: 'tools/call', status: 'tool_error' }), 1);
        assert.equal(v('mcp_guard_requests_total', { method: 'tools/call', status: 'rate_limited' }), 1);
        assert.equal(v('mcp_guard_requests_total', { method: 'unknown', status: 'unauthorized' }), 3);
        assert.equal(v('mcp_guard_requests_total', { method: 'unknown', status: 'invalid' }), 1);
        assert.equal(v('mcp_guard_requests_total'), posts.length + 4, 'every POST counted once');
        assert.equal(v('mcp_guard_request_duration_seconds'), posts.length + 4);

        // The OpenTelemetry MCP histogram: methods only, error_type per the conventions.
        const op = (m, e) => v('mcp_server_operation_duration_seconds', { mcp_method_name: m, error_type: e });
        assert.equal(op('tools/call', ''), 4);
        assert.equal(op('tools/call', 'tool_error'), 1);
        assert.equal(op('tools/call', '-32602'), 2);
        assert.equal(op('tools/call', '-31429'), 1);
        assert.equal(op('initialize', ''), 2);
        assert.ok(!raw.some(s => s.name.startsWith('mcp_server_operation') && s.labels.mcp_method_name === 'unknown'));

        // Authentication: SDK requests + the scrape succeeded; failures have no provider.
        // (+ the malformed POST and this scrape)
        assert.equal(v('mcp_guard_auth_total', { provider: 'api_key', result: 'success' }), authedMcp + 2);
        assert.equal(v('mcp_guard_auth_total', { provider: 'none', result: 'invalid' }), 2);
        assert.equal(v('mcp_guard_auth_total', { provider: 'none', result: 'missing' }), 3); // + 2 scrapes without credentials
        // Rate limits: one per authenticated MCP request for the identity, two tool decisions.
        assert.equal(v('mcp_guard_rate_limit_total', { scope: 'identity', allowed: 'true' }), authedMcp + 1);
        // (alice's get-sum passed its own tool limit before authorization denied it)
        assert.equal(v('mcp_guard_rate_limit_total', { scope: 'tool', allowed: 'true' }), 2);
        assert.equal(v('mcp_guard_rate_limit_total', { scope: 'tool', allowed: 'false' }), 1);
        assert.equal(v('mcp_guard_active_identities'), 2);

        // Upstream: what was forwarded (4 ok tool calls, the tool error, tools/list).
        assert.equal(v('mcp_guard_upstream_requests_total', { upstream: 'default' }), 6);
        assert.equal(v('mcp_guard_upstream_errors_total', { upstream: 'default' }), 0);
        assert.equal(v('mcp_guard_upstream_request_duration_seconds', { upstream: 'default' }), 6);
        // The conventions' client-side histogram: the same calls, by method and error type.
        const cop = (m, e) => v('mcp_client_operation_duration_seconds', { upstream: 'default', mcp_method_name: m, network_transport: 'pipe', error_type: e });
        assert.equal(cop('tools/call', ''), 4);
        assert.equal(cop('tools/call', 'tool_error'), 1);
        assert.equal(cop('tools/list', ''), 1);
        assert.equal(v('mcp_client_operation_duration_seconds'), 6);
        // Per tool: a tool has its own series once the upstream listed it through the
        // gateway; alice's three echo calls came before her tools/list, so they are _OTHER.
        const tc = (tool, outcome) => v('mcp_guard_tool_calls_total', { upstream: 'default', tool, outcome });
        assert.equal(tc('_OTHER', 'ok'), 3);
        assert.equal(tc('get-resource-reference', 'tool_error'), 1);
        assert.equal(tc('get-sum', 'ok'), 1);
        assert.equal(v('mcp_guard_tool_calls_total'), 5, 'the forwarded tools/call requests, once each');
        const secs = fam.get('mcp_guard_tool_call_seconds_total').metrics;
        assert.deepEqual(secs.map(s => s.labels.tool).sort(), ['_OTHER', 'get-resource-reference', 'get-sum']);
        for (const s of secs) assert.ok(Number(s.value) > 0 && Number(s.value) < 60, `${s.labels.tool}: ${s.value} s`);
        // Sessions: both clients deleted theirs (no error), at the version they negotiated.
        const sessions = raw.filter(s => s.name === 'mcp_server_session_duration_seconds_count');
        assert.equal(sessions.reduce((a, s) => a + s.value, 0), 2);
        for (const s of sessions) {
            assert.match(s.labels.mcp_protocol_version, /^\d{4}-\d{2}-\d{2}$/);
            assert.equal(s.labels.error_type, '');
            assert.equal(s.labels.network_transport, 'tcp');
        }
        assert.equal(v('mcp_guard_upstream_up', { upstream: 'default' }), 1);
        assert.equal(v('mcp_guard_upstream_restarts_total', { upstream: 'default' }), 0);
        assert.equal(v('mcp_guard_sessions_open'), 0); // both clients ended their sessions
        assert.equal(v('mcp_guard_sse_streams_open'), 0);
        assert.equal(v('mcp_guard_jwks_fetches_total'), 0);
        assert.ok(v('process_resident_memory_bytes') > 0);
        assert.ok(v('process_open_fds') > 0);
        assert.ok(v('process_start_time_seconds') > 1.7e9);
        assert.ok(v('process_cpu_seconds_total') > 0);

        // No identity id, key or hash anywhere.
        for (const secret of [alice.key, bob.key, alice.hash, bob.hash, 'alice', 'bob', 'api_key:']) {
            assert.ok(!text.includes(secret), `the scrape does not contain ${secret.slice(0, 12)}`);
        }
    });

    test('the main listener serves the same families with credentials; HEAD has no body', async () => {
        const r = await gw.request('/metrics', { headers: { authorization: `Bearer ${alice.key}` } });
        assert.equal(r.status, 200);
        assert.equal(r.headers['content-type'], CONTENT_TYPE);
        checkFormat(r.body);
        const fam = index(parsePrometheus(r.body));
        assert.ok(fam.has('mcp_guard_requests_total') && fam.has('mcp_server_operation_duration_seconds'));
        const h = await gw.request('/metrics', { method: 'HEAD', headers: { 'x-api-key': alice.key } });
        assert.equal(h.status, 200);
        assert.equal(h.body, '');
    });

    test('a key that may call nothing scrapes on both listeners, and calls nothing', async () => {
        for (const r of [
            await httpGet(adminPort, '/metrics', { headers: { authorization: `Bearer ${scraper.key}` } }),
            await gw.request('/metrics', { headers: { 'x-api-key': scraper.key } })
        ]) {
            assert.equal(r.status, 200);
            assert.ok(index(parsePrometheus(r.body)).has('mcp_guard_requests_total'));
            assert.ok(!r.body.includes('scraper'), 'its id is no label value');
        }
        let c;
        try {
            c = await connectSdk(gw, { name: 'scraper', transportOptions: { requestInit: { headers: { 'X-API-Key': scraper.key } } } });
            assert.deepEqual((await c.client.listTools()).tools, []);
            await assert.rejects(c.client.callTool({ name: 'echo', arguments: { message: 'x' } }), /Unknown tool/);
            assert.deepEqual((await c.client.listResources()).resources, []);
            assert.deepEqual((await c.client.listPrompts()).prompts, []);
        } finally {
            await closeSdk(c);
        }
    });
});

describe('metrics without authentication and disabled', { timeout: 60000, concurrency: 1 }, () => {
    test('no auth configured: /metrics is open on loopback; enabled = false: 404', async () => {
        let gw = await startAuthGateway({});
        try {
            const r = await gw.request('/metrics');
            assert.equal(r.status, 200);
            checkFormat(r.body);
            // The build as `mcp-guard version --json` names it (a fleet mid-rollout shows two).
            const info = index(parsePrometheus(r.body)).get('mcp_guard_build_info').metrics[0].labels;
            const v = JSON.parse(runCli(['version', '--json']).stdout);
            assert.deepEqual(info, { version: v.version, revision: v.commit });
        } finally {
            await gw.stop();
        }
        gw = await startAuthGateway({ metrics: { enabled: false } });
        try {
            assert.equal((await gw.request('/metrics')).status, 404);
        } finally {
            await gw.stop();
        }
    });
});
