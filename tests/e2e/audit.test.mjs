// The audit log with real parts: the gateway in front of server-everything,
// the MCP SDK client, and a real HTTP collector (fixtures/audit-receiver.mjs)
// that is SIGKILLed mid-run and started again. Checks: every record arrives
// exactly once (or is still in the spool), none lost, none duplicated; the
// hash-chained file verifies, and `audit verify` finds an edited, removed
// or reordered line; SIGUSR1 rotation and a restart keep the chain; no API
// key, bearer token or redacted argument appears in any sink.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { closeSdk, connectSdk, freePort, runCli, tempDir, waitFor } from './helpers.mjs';
import { keygen, startAuthGateway } from './idp/auth-gateway.mjs';

const RECEIVER_JS = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures', 'audit-receiver.mjs');
const SECRET_ARG = 'sk-SECRETVALUE123456';
const EXPORT_TOKEN = 'Splunk e2e-export-token-0123456789';

/** Starts the collector on `port`, logging to `log`; resolves once it listens. */
async function startReceiver(port, log) {
    const proc = spawn(process.execPath, [RECEIVER_JS, String(port), log], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve, reject) => {
        let out = '';
        proc.stdout.on('data', d => {
            out += d;
            if (out.includes('listening')) resolve();
        });
        proc.once('exit', code => reject(new Error(`receiver exited (${code}) before listening`)));
    });
    proc.exited = new Promise(resolve => proc.once('exit', resolve));
    return proc;
}

async function killReceiver(proc) {
    if (proc.exitCode === null && proc.signalCode === null) {
        process.kill(proc.pid, 'SIGKILL');
        await proc.exited;
    }
}

/** Requests the collector received: [{path, headers, body}]. */
function received(log) {
    if (!existsSync(log)) return [];
    return readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(l => JSON.parse(l));
}

/** Records the collector acknowledged, by the gateway's /metrics. */
async function exportedCount(gw, key) {
    const r = await gw.request('/metrics', { headers: { 'X-API-Key': key } });
    const m = /^mcp_guard_audit_exported_total (\d+)$/m.exec(r.body ?? '');
    return m ? Number(m[1]) : -1;
}

/** Records (parsed) from NDJSON text. */
const records = text =>
    text
        .split('\n')
        .filter(Boolean)
        .map(l => JSON.parse(l));

function spoolFiles(dir) {
    return existsSync(dir) ? readdirSync(dir).filter(f => f.endsWith('.jsonl')).sort() : [];
}

const sdkWith = (gw, key) => connectSdk(gw, { transportOptions: { requestInit: { headers: { 'X-API-Key': key } } } });

async function callEcho(c, n, tag) {
    for (let i = 0; i < n; i++) {
        const r = await c.client.callTool({ name: 'echo', arguments: { message: `${tag}-${i} ${SECRET_ARG}`, note: `note ${SECRET_ARG}` } });
        assert.match(r.content[0].text, new RegExp(`${tag}-${i}`));
    }
}

describe('audit export through a collector outage', () => {
    let gw, alice, dir, recvLog, spool, auditFile, port, receiver;

    before(async () => {
        alice = keygen('alice');
        dir = tempDir('mcp-guard-audit-');
        recvLog = path.join(dir, 'received.jsonl');
        spool = path.join(dir, 'spool');
        auditFile = path.join(dir, 'audit.jsonl');
        port = await freePort();
        receiver = await startReceiver(port, recvLog);
        process.env.MG_E2E_EXPORT_AUTH = EXPORT_TOKEN;
        gw = await startAuthGateway({
            auth: { api_keys: [{ id: 'alice', key_hash: alice.hash }] },
            audit: {
                stdout: true,
                file: auditFile,
                hash_chain: true,
                include_arguments: true,
                include_results: true,
                redact_paths: ['$.note'],
                redact_patterns: ['sk-[A-Za-z0-9]+'],
                export_url: `http://127.0.0.1:${port}/services/collector/event`,
                allow_private_networks: true,
                export_batch_size: 4,
                export_interval_secs: 1,
                spool_dir: spool,
                export_headers: { 'X-Audit-Test': 'yes' },
                export_headers_env: { Authorization: 'MG_E2E_EXPORT_AUTH' }
            }
        });
    });

    after(async () => {
        if (gw) await gw.kill();
        if (receiver) await killReceiver(receiver);
    });

    test('every record arrives exactly once, in order, across a SIGKILLed collector', async () => {
        const c = await sdkWith(gw, alice.key);
        await callEcho(c, 6, 'before');
        // everything so far reaches the collector (the interval flushes partial batches)
        await waitFor(() => received(recvLog).flatMap(r => records(r.body)).some(r => r.event_type === 'tool_call_result' && r.tool === 'echo' && /before-5/.test(JSON.stringify(r.result))), {
            timeoutMs: 20000,
            message: 'the first records at the collector'
        });
        await waitFor(() => spoolFiles(spool).length === 0, { message: 'an empty spool' });
        // The collector logs a batch before it answers: kill it only once the
        // gateway has its answer for everything logged, or a batch in flight
        // is rightly spooled and sent again (at-least-once, not a duplicate).
        await waitFor(async () => (await exportedCount(gw, alice.key)) === received(recvLog).flatMap(r => records(r.body)).length, {
            timeoutMs: 20000,
            message: 'the gateway acknowledged for every record the collector logged'
        });

        // The batches so far came over kept-alive connections, not one each.
        const early = received(recvLog);
        assert.ok(early.length >= 3, `only ${early.length} batch(es) before the outage`);
        assert.ok(new Set(early.map(r => r.conn)).size < early.length, `a connection per batch: ${early.map(r => r.conn)}`);

        await killReceiver(receiver);
        await callEcho(c, 6, 'during');
        await waitFor(() => spoolFiles(spool).length > 0, { timeoutMs: 30000, message: 'batches in the spool while the collector is down' });

        receiver = await startReceiver(port, recvLog);
        await callEcho(c, 3, 'after');
        await closeSdk(c);
        // an unknown key: an auth_failure record, and the key never recorded
        const bad = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { headers: { 'X-API-Key': 'mcp_not_a_real_key_abcdef' } });
        assert.equal(bad.status, 401);
        await waitFor(() => spoolFiles(spool).length === 0, { timeoutMs: 30000, message: 'the spool drained after the collector came back' });
        await gw.stop();

        const fileText = readFileSync(auditFile, 'utf8');
        const written = records(fileText);
        const reqs = received(recvLog);
        const delivered = reqs.flatMap(r => records(r.body));
        const leftover = spoolFiles(spool).flatMap(f => records(readFileSync(path.join(spool, f), 'utf8')));

        // none lost, none duplicated: the file's records = delivered + still spooled, each once
        const seqs = [...delivered, ...leftover].map(r => r.seq);
        assert.equal(new Set(seqs).size, seqs.length, 'a record was delivered twice');
        assert.deepEqual(
            [...seqs].sort((a, b) => a - b),
            written.map(r => r.seq),
            'the collector (plus spool) did not get exactly the records of the file'
        );
        // in order: each request's records follow the previous request's
        assert.deepEqual(
            delivered.map(r => r.seq),
            [...delivered.map(r => r.seq)].sort((a, b) => a - b)
        );
        // byte-identical records everywhere
        const lines = new Set(fileText.split('\n').filter(Boolean));
        for (const r of reqs) for (const l of r.body.split('\n').filter(Boolean)) assert.ok(lines.has(l), `a delivered line differs from the file: ${l}`);

        // the collector saw the configured headers, the token from the environment
        for (const r of reqs) {
            assert.equal(r.headers['x-audit-test'], 'yes');
            assert.equal(r.headers.authorization, EXPORT_TOKEN);
            assert.equal(r.headers['content-type'], 'application/x-ndjson');
            assert.equal(r.path, '/services/collector/event');
        }

        // the events of the run
        const types = new Set(written.map(r => r.event_type));
        for (const t of ['auth_success', 'auth_failure', 'session_start', 'session_end', 'tool_call', 'tool_call_result']) assert.ok(types.has(t), `no ${t} record`);
        const call = written.find(r => r.event_type === 'tool_call' && r.tool === 'echo');
        assert.equal(call.identity_id, 'alice');
        assert.equal(call.provider, 'api_key');
        assert.equal(call.client_address, '127.0.0.1');
        assert.match(call.request_id, /^[0-9a-f]{16}$/);
        assert.match(call.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
        assert.equal(call.arguments.note, '[REDACTED]');
        assert.match(call.arguments.message, /^before-0 \[REDACTED\]$/);
        const result = written.find(r => r.event_type === 'tool_call_result' && r.request_id === call.request_id);
        assert.equal(result.success, true);
        assert.ok(result.duration_ms >= 0);
        assert.match(JSON.stringify(result.result), /before-0 \[REDACTED\]/);

        // no secret in any sink: file, stdout, collector bodies, spool
        const sinks = { file: fileText, stdout: gw.stdout, collector: reqs.map(r => r.body).join('\n'), spool: JSON.stringify(leftover) };
        for (const [name, text] of Object.entries(sinks)) {
            for (const secret of [alice.key, SECRET_ARG, 'mcp_not_a_real_key_abcdef', EXPORT_TOKEN]) assert.ok(!text.includes(secret), `${name} holds a secret`);
        }
        assert.ok(gw.stdout.includes('"event_type":"tool_call"'), 'stdout sink got nothing');

        // the chain verifies; the head matches the one the gateway logged at shutdown
        const v = runCli(['audit', 'verify', auditFile]);
        assert.equal(v.status, 0, v.stdout + v.stderr);
        const head = written.at(-1).hash;
        assert.match(v.stdout, new RegExp(`^OK: ${written.length} records, head ${head}`));
        assert.ok(gw.stderr.includes(`audit: chain head seq=${written.length} hash=${head}`), 'the head was not logged at shutdown');
    });

    test('audit verify finds an edited, a removed and a reordered line', () => {
        const lines = readFileSync(auditFile, 'utf8').split('\n').filter(Boolean);
        assert.ok(lines.length >= 6);
        const check = (name, ls, re) => {
            const f = path.join(dir, name);
            writeFileSync(f, ls.join('\n') + '\n');
            const r = runCli(['audit', 'verify', f]);
            assert.equal(r.status, 1, `${name}: ${r.stdout}`);
            assert.match(r.stdout, re);
        };
        const edited = [...lines];
        edited[2] = edited[2].replace('"success":true', '"success":false').replace('"event_type":"', '"event_type":"x');
        check('edited.jsonl', edited, /^FAIL: .*edited\.jsonl:3: seq 3: hash mismatch/);
        const removed = lines.filter((_, i) => i !== 3);
        check('removed.jsonl', removed, /^FAIL: .*removed\.jsonl:4: seq 5: seq gap: expected seq 4, found 5/);
        const reordered = [...lines];
        [reordered[1], reordered[2]] = [reordered[2], reordered[1]];
        check('reordered.jsonl', reordered, /^FAIL: .*reordered\.jsonl:2: seq 3: seq gap/);
        const truncated = [...lines];
        truncated[4] = truncated[4].slice(0, 40);
        check('truncated.jsonl', truncated, /^FAIL: .*truncated\.jsonl:5: bad JSON/);
    });
});

describe('audit file rotation and restart', () => {
    test('SIGUSR1 reopens the file, the chain continues across the rotation and a restart', async () => {
        const alice = keygen('alice');
        const dir = tempDir('mcp-guard-audit-rot-');
        const file = path.join(dir, 'audit.jsonl');
        const config = { auth: { api_keys: [{ id: 'alice', key_hash: alice.hash }] }, audit: { stdout: false, file, hash_chain: true, fsync: 'always' } };
        let gw = await startAuthGateway(config);
        try {
            let c = await sdkWith(gw, alice.key);
            await callEcho(c, 2, 'one');
            const results = () => (existsSync(file) ? readFileSync(file, 'utf8').split('"event_type":"tool_call_result"').length - 1 : 0);
            await waitFor(() => results() === 2, { message: 'records in the file' });
            renameSync(file, `${file}.1`); // what logrotate does
            gw.signal('SIGUSR1');
            await waitFor(() => gw.stderr.includes(`audit: reopened ${file}`), { message: 'the reopen' });
            await callEcho(c, 2, 'two');
            await closeSdk(c);
            await gw.stop();
            // a new gateway continues the chain from the file's last record
            gw = await startAuthGateway(config);
            c = await sdkWith(gw, alice.key);
            await callEcho(c, 1, 'three');
            await closeSdk(c);
            await gw.stop();
            assert.match(gw.stderr, /continuing the hash chain/);

            const both = runCli(['audit', 'verify', `${file}.1`, file]);
            assert.equal(both.status, 0, both.stdout);
            assert.match(both.stdout, /^OK: \d+ records, head [0-9a-f]{64} \(seq 1\.\.\d+\)/);
            // the newer file alone verifies too, starting mid-chain
            const alone = runCli(['audit', 'verify', file]);
            assert.equal(alone.status, 0, alone.stdout);
            assert.match(alone.stdout, /note: the chain starts at seq \d+, not 1/);
            // out of order: the second file's first record does not follow
            const wrong = runCli(['audit', 'verify', file, `${file}.1`]);
            assert.equal(wrong.status, 1);
            // a record missing at the rotation boundary is found
            const cut = path.join(dir, 'cut.jsonl');
            copyFileSync(file, cut);
            const ls = readFileSync(cut, 'utf8').split('\n').filter(Boolean);
            writeFileSync(cut, ls.slice(1).join('\n') + '\n');
            const gap = runCli(['audit', 'verify', `${file}.1`, cut]);
            assert.equal(gap.status, 1);
            assert.match(gap.stdout, /cut\.jsonl:1: seq \d+: seq gap/);
        } finally {
            await gw.kill();
        }
    });

    test('the export obeys the SSRF rule: a loopback collector needs allow_private_networks', async () => {
        const dir = tempDir('mcp-guard-audit-ssrf-');
        const recvLog = path.join(dir, 'received.jsonl');
        const port = await freePort();
        const receiver = await startReceiver(port, recvLog);
        const gw = await startAuthGateway({
            audit: { stdout: false, export_url: `http://127.0.0.1:${port}/ingest`, export_batch_size: 1, export_interval_secs: 1, spool_dir: path.join(dir, 'spool') }
        });
        try {
            const r = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }, { headers: { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo' } });
            assert.equal(r.status, 200);
            // refused at connect time, kept in the spool, never delivered
            await waitFor(() => spoolFiles(path.join(dir, 'spool')).length >= 2, { timeoutMs: 30000, message: 'the refused batches in the spool' });
            assert.match(gw.stderr, /audit: export of 1 record\(s\) failed: .*(private|refused|not allowed)/i);
            assert.equal(received(recvLog).length, 0);
            await gw.stop();
        } finally {
            await gw.kill();
            await killReceiver(receiver);
        }
    });

    test('splunk_hec and elasticsearch_bulk framings reach a real collector, plain and gzip-compressed', async () => {
        const cases = [
            ['splunk_hec', 'none'],
            ['elasticsearch_bulk', 'none'],
            ['splunk_hec', 'gzip'],
            ['elasticsearch_bulk', 'gzip']
        ];
        for (const [format, compression] of cases) {
            const dir = tempDir('mcp-guard-audit-fmt-');
            const recvLog = path.join(dir, 'received.jsonl');
            const file = path.join(dir, 'audit.jsonl');
            const port = await freePort();
            const receiver = await startReceiver(port, recvLog);
            const gw = await startAuthGateway({
                audit: { stdout: false, file, export_url: `http://127.0.0.1:${port}/in`, allow_private_networks: true, export_format: format, export_compression: compression, export_batch_size: 2, splunk_index: 'mcp' }
            });
            try {
                const r = await gw.mcp({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }, { headers: { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': 'echo' } });
                assert.equal(r.status, 200);
                await waitFor(() => received(recvLog).length === 1, { message: `the ${format} batch` });
                await gw.stop();
                const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
                const [req] = received(recvLog);
                assert.equal(lines.length, 2);
                assert.equal(req.headers['content-encoding'], compression === 'gzip' ? 'gzip' : undefined);
                if (compression === 'gzip') assert.ok(req.bytes < Buffer.byteLength(req.body), `${req.bytes} bytes sent for ${Buffer.byteLength(req.body)}`);
                if (format === 'splunk_hec') {
                    assert.equal(req.headers['content-type'], 'application/json');
                    const envs = req.body.split('\n').filter(Boolean).map(l => JSON.parse(l));
                    assert.deepEqual(envs.map(e => e.event), lines.map(l => JSON.parse(l)));
                    for (const e of envs) {
                        assert.deepEqual(Object.keys(e), ['time', 'host', 'source', 'sourcetype', 'index', 'event']);
                        assert.equal(e.index, 'mcp');
                        assert.equal(e.sourcetype, 'mcp-guard:audit');
                        assert.ok(Math.abs(e.time * 1000 - Date.parse(e.event.timestamp)) < 1, `time ${e.time} vs ${e.event.timestamp}`);
                    }
                } else {
                    assert.equal(req.headers['content-type'], 'application/x-ndjson');
                    assert.equal(req.body, lines.map(l => `{"create":{}}\n${l}\n`).join(''));
                }
            } finally {
                await gw.kill();
                await killReceiver(receiver);
            }
        }
    });

    test('a bad redaction pattern is refused by validate with file:line:col', () => {
        const dir = tempDir('mcp-guard-audit-cfg-');
        const f = path.join(dir, 'mcp-guard.toml');
        writeFileSync(f, '[audit]\nredact_patterns = ["ok", "(unclosed"]\n\n[upstream]\ncommand = "true"\n');
        const r = runCli(['--config', f, 'validate']);
        assert.equal(r.status, 1);
        assert.match(r.stderr, /mcp-guard\.toml:2:26: error: audit\.redact_patterns: invalid regular expression "\(unclosed"/);
    });
});
