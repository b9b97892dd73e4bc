// `mcp-guard tools list` and `mcp-guard tools approve SERVER TOOL` (tool
// pinning, src/cli/cmd_tools.c) on a real state file: listing, approving a
// pending change, every refusal with its exit code, a corrupt file named
// with its position, and concurrent approvals that must not lose each other
// (the file lock).
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { runCli, runCliAsync, tempDir } from './helpers.mjs';

const H = c => c.repeat(64);

function setup(tools) {
    const dir = tempDir('mcp-guard-tools-');
    const pins = path.join(dir, 'pins.json');
    const config = path.join(dir, 'mcp-guard.toml');
    writeFileSync(
        config,
        [
            '[upstream]',
            `pins_file = ${JSON.stringify(pins)}`,
            '',
            '[[upstream.servers]]',
            'name = "files"',
            'path_prefix = "/files"',
            'command = "node"',
            'tool_pinning = "block"',
            ''
        ].join('\n')
    );
    const entries = {};
    for (const [name, pending] of Object.entries(tools)) {
        entries[name] = { sha256: H('0'), pinned_at: '2026-01-01T00:00:00Z' };
        if (pending) Object.assign(entries[name], { pending: H(pending), changed_at: '2026-01-02T00:00:00Z' });
    }
    writeFileSync(pins, JSON.stringify({ version: 1, servers: { files: entries } }));
    return { dir, pins, config };
}

test('tools list shows pins and pending changes', () => {
    const { config } = setup({ read_file: '1', write_file: null });
    const r = runCli(['tools', 'list', '--config', config]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /server files: tool_pinning = block/);
    assert.match(r.stdout, /files +read_file +000000000000 +2026-01-01T00:00:00Z +PENDING 111111111111 since 2026-01-02T00:00:00Z/);
    assert.match(r.stdout, /files +write_file +000000000000 +2026-01-01T00:00:00Z\n/);
    assert.match(r.stdout, /2 pinned tools, 1 pending change/);
});

test('tools approve pins the pending definition; the file stays 0600', () => {
    const { config, pins } = setup({ read_file: '1' });
    const r = runCli(['tools', 'approve', 'files', 'read_file', '--config', config]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /approved: files\/read_file/);
    assert.match(r.stdout, /SIGHUP/);
    const e = JSON.parse(readFileSync(pins, 'utf8')).servers.files.read_file;
    assert.equal(e.sha256, H('1'));
    assert.equal(e.pending, undefined);
    assert.equal(statSync(pins).mode & 0o777, 0o600);
    // Again: nothing to approve.
    const again = runCli(['tools', 'approve', 'files', 'read_file', '--config', config]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /has no pending change: nothing to approve/);
});

test('tools approve refusals and their exit codes', () => {
    const { config, pins, dir } = setup({ read_file: '1' });
    let r = runCli(['tools', 'approve', 'files', 'nope', '--config', config]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no pinned tool "nope" of server "files"/);
    r = runCli(['tools', 'approve', 'other', 'read_file', '--config', config]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no upstream named "other" in the configuration \(configured: files\)/);
    r = runCli(['tools', 'approve', 'files', '--config', config]);
    assert.equal(r.status, 2);
    r = runCli(['tools', 'frobnicate', '--config', config]);
    assert.equal(r.status, 2);
    writeFileSync(pins, '{"version":1,\n"servers":{"files":{,}}}');
    r = runCli(['tools', 'approve', 'files', 'read_file', '--config', config]);
    assert.equal(r.status, 3);
    assert.ok(r.stderr.includes(`${pins}:2:`), r.stderr);
    const bare = path.join(dir, 'bare.toml');
    writeFileSync(bare, '[upstream]\ncommand = "node"\n');
    r = runCli(['tools', 'list', '--config', bare]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /upstream.pins_file is not set, so tool pinning is off/);
});

test('concurrent approvals of different tools both survive (file lock)', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `t${i}`);
    const { config, pins } = setup(Object.fromEntries(names.map(n => [n, '2'])));
    const results = await Promise.all(names.map(n => runCliAsync(['tools', 'approve', 'files', n, '--config', config])));
    for (const r of results) assert.equal(r.status, 0, r.stderr);
    const servers = JSON.parse(readFileSync(pins, 'utf8')).servers;
    for (const n of names) {
        assert.equal(servers.files[n].sha256, H('2'), n);
        assert.equal(servers.files[n].pending, undefined, n);
    }
});
