// The command line: init, validate, keygen, hash-key, version,
// config-reference, check-upstream and usage errors (exit codes 0/1/2).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { EVERYTHING_JS, REPO_ROOT, runCli, runCliAsync, tempDir, toToml } from './helpers.mjs';

const KEY_RE = /\bmcp_[A-Za-z0-9_-]{43}\b/;
const sha256b64 = s => createHash('sha256').update(s, 'utf8').digest('base64');
const ERROR_LINE_RE = /^(.+):(\d+):(\d+): error: ([a-z_][a-z0-9_.]*): (.+)$/;

describe('mcp-guard CLI', { timeout: 60000 }, () => {
    let dir;

    before(() => {
        dir = tempDir('mcp-guard-cli-');
    });

    after(() => {
        if (dir && !process.env.E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    });

    test('init writes a TOML template that validate accepts; refuses to overwrite without --force', () => {
        const r = runCli(['init'], { cwd: dir });
        assert.equal(r.status, 0, r.stderr);
        const file = path.join(dir, 'mcp-guard.toml');
        assert.ok(existsSync(file));
        const original = readFileSync(file, 'utf8');
        assert.match(original, /^\[server\]$/m);
        assert.match(original, /^\[upstream\]$/m);

        const v = runCli(['--config', file, 'validate']);
        assert.equal(v.status, 0, v.stdout + v.stderr);
        assert.match(v.stdout, /valid/);
        // Found without --config in the current directory, too.
        assert.equal(runCli(['validate'], { cwd: dir }).status, 0);

        writeFileSync(file, `# edited\n${original}`);
        const again = runCli(['init'], { cwd: dir });
        assert.equal(again.status, 1, 'refuses to overwrite');
        assert.match(again.stderr, /already exists/);
        assert.match(again.stderr, /--force/);
        assert.match(readFileSync(file, 'utf8'), /^# edited/, 'the file is untouched');

        const forced = runCli(['init', '--force'], { cwd: dir });
        assert.equal(forced.status, 0, forced.stderr);
        assert.equal(readFileSync(file, 'utf8'), original);
    });

    test('init --format yaml --output P writes a YAML template that validate accepts', () => {
        const out = path.join(dir, 'sub-config.yaml');
        const r = runCli(['init', '--format', 'yaml', '--output', out]);
        assert.equal(r.status, 0, r.stderr);
        const text = readFileSync(out, 'utf8');
        assert.match(text, /^server:$/m);
        const v = runCli(['--config', out, 'validate']);
        assert.equal(v.status, 0, v.stdout + v.stderr);
        assert.equal(runCli(['init', '--format', 'yaml', '--output', out]).status, 1);
        assert.equal(runCli(['init', '--format', 'json', '--output', path.join(dir, 'x.json')]).status, 2);
    });

    test('validate on a broken file exits 1 with several "file:line:col: error: key.path: message" lines', () => {
        const file = path.join(dir, 'broken.toml');
        writeFileSync(
            file,
            ['[server]', 'host = "127.0.0.1"', 'port = 99999', 'max_body_bytes = "big"', 'unknown_key = 1', '', '[upstream]', 'transport = "stdio"', 'mode = "sometimes"', ''].join('\n')
        );
        const r = runCli(['--config', file, 'validate']);
        assert.equal(r.status, 1);
        const lines = r.stderr.split('\n').filter(l => ERROR_LINE_RE.test(l));
        assert.ok(lines.length >= 4, `several errors at once:\n${r.stderr}`);
        const parsed = lines.map(l => {
            const [, f, line, col, key, msg] = ERROR_LINE_RE.exec(l);
            return { f, line: Number(line), col: Number(col), key, msg };
        });
        for (const p of parsed) assert.equal(p.f, file);
        const byKey = Object.fromEntries(parsed.map(p => [p.key, p]));
        assert.equal(byKey['server.port']?.line, 3, r.stderr);
        assert.equal(byKey['server.port'].col, 8);
        assert.match(byKey['server.port'].msg, /65535/);
        assert.equal(byKey['server.max_body_bytes']?.line, 4);
        assert.equal(byKey['server.unknown_key']?.line, 5);
        assert.equal(byKey['upstream.mode']?.line, 9);
        assert.match(byKey['upstream.mode'].msg, /per_session/);
        assert.ok(byKey['upstream.command'], `missing command reported:\n${r.stderr}`);
        assert.match(r.stderr, /5 errors/);

        const syntax = path.join(dir, 'syntax.toml');
        writeFileSync(syntax, '[server\nport = 1\n');
        const s = runCli(['--config', syntax, 'validate']);
        assert.equal(s.status, 1);
        assert.match(s.stderr, new RegExp(`^${syntax.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:\\d+: error: `, 'm'));

        const yaml = path.join(dir, 'broken.yaml');
        writeFileSync(yaml, 'server:\n  port: "x"\n  bogus: 1\n');
        const y = runCli(['--config', yaml, 'validate']);
        assert.equal(y.status, 1);
        assert.match(y.stderr, /broken\.yaml:2:\d+: error: server\.port: /);
        assert.match(y.stderr, /broken\.yaml:3:\d+: error: server\.bogus: /);

        const missing = runCli(['--config', path.join(dir, 'nope.toml'), 'validate']);
        assert.equal(missing.status, 1);
        assert.match(missing.stderr, /nope\.toml/);
    });

    test('environment overrides are validated like the file', () => {
        const file = path.join(dir, 'env.toml');
        writeFileSync(file, toToml({ server: { port: 3000 }, upstream: { command: process.execPath, args: [EVERYTHING_JS, 'stdio'] } }));
        const bad = runCli(['--config', file, 'validate'], { env: { MCP_GUARD_SERVER__PORT: '99999' } });
        assert.equal(bad.status, 1);
        assert.match(bad.stderr, /MCP_GUARD_SERVER__PORT.*server\.port/);
        const good = runCli(['--config', file, 'validate'], { env: { MCP_GUARD_SERVER__PORT: '8123' } });
        assert.equal(good.status, 0, good.stderr);
        assert.match(good.stdout, /8123/);
    });

    test('keygen prints mcp_ + 43 base64url characters and its hash; hash-key reproduces it (argument and stdin)', () => {
        const r = runCli(['keygen', '--user-id', 'alice']);
        assert.equal(r.status, 0, r.stderr);
        const key = KEY_RE.exec(r.stdout)?.[0];
        assert.ok(key, `a key in:\n${r.stdout}`);
        const hash = sha256b64(key);
        assert.ok(r.stdout.includes(hash), 'the printed hash is the base64 SHA-256 of the key');
        assert.match(r.stdout, /\[\[auth\.api_keys\]\]/);
        assert.match(r.stdout, /id = "alice"/);
        assert.ok(r.stdout.includes(`key_hash = "${hash}"`));

        const arg = runCli(['hash-key', key]);
        assert.equal(arg.status, 0);
        assert.equal(arg.stdout.trim(), hash);
        const stdin = runCli(['hash-key', '-'], { input: key });
        assert.equal(stdin.status, 0);
        assert.equal(stdin.stdout.trim(), hash);
        const stdinNl = runCli(['hash-key', '-'], { input: `${key}\n` });
        assert.equal(stdinNl.stdout.trim(), hash, 'a trailing newline on stdin is not part of the key');

        const second = KEY_RE.exec(runCli(['keygen', '--user-id', 'alice']).stdout)[0];
        assert.notEqual(second, key, 'keys are random');

        const y = runCli(['keygen', '--user-id', 'bob', '--rate-limit', '5', '--tools', 'echo,get-sum', '--format', 'yaml']);
        assert.equal(y.status, 0, y.stderr);
        const ykey = KEY_RE.exec(y.stdout)[0];
        assert.ok(y.stdout.includes(sha256b64(ykey)));
        assert.match(y.stdout, /api_keys:/);
        assert.match(y.stdout, /rate_limit: 5/);
        assert.match(y.stdout, /"echo", "get-sum"/);
    });

    test('usage errors exit 2', () => {
        for (const args of [
            ['bogus'],
            [],
            ['keygen'],
            ['keygen', '--user-id', 'a', '--format', 'xml'],
            ['keygen', '--user-id', 'a', '--rate-limit', 'abc'],
            ['hash-key'],
            ['version', '--bogus'],
            ['--config'],
            ['init', '--format', 'json']
        ]) {
            const r = runCli(args, { cwd: dir });
            assert.equal(r.status, 2, `mcp-guard ${args.join(' ')}: ${r.stderr}`);
            assert.ok(r.stderr.length > 0, `mcp-guard ${args.join(' ')} explains itself on stderr`);
        }
        const help = runCli(['--help']);
        assert.equal(help.status, 0);
        assert.match(help.stdout, /Usage: mcp-guard/);
    });

    test('version and version --json (version, commit, libraries); config-reference', () => {
        const v = runCli(['version', '--json']);
        assert.equal(v.status, 0);
        const info = JSON.parse(v.stdout);
        assert.match(info.version, /^\d+\.\d+\.\d+/);
        assert.equal(info.version, readFileSync(path.join(REPO_ROOT, 'VERSION'), 'utf8').trim());
        assert.equal(typeof info.commit, 'string');
        assert.ok(info.commit.length > 0);
        for (const lib of ['libevent', 'openssl', 'jansson']) assert.equal(typeof info.libraries[lib], 'string', `libraries.${lib}`);
        const plain = runCli(['version']);
        assert.equal(plain.status, 0);
        assert.ok(plain.stdout.startsWith(`mcp-guard ${info.version}`));

        const ref = runCli(['config-reference']);
        assert.equal(ref.status, 0);
        for (const key of ['[server]', 'max_body_bytes', 'shutdown_grace_secs', '[upstream]', 'per_session']) assert.ok(ref.stdout.includes(key), `${key} documented`);
    });

    test('check-upstream: OK line and exit 0; precise reasons and exit 1 on failure', async () => {
        const config = (name, upstream) => {
            const file = path.join(dir, `${name}.toml`);
            writeFileSync(file, toToml({ server: { port: 3000 }, upstream }));
            return file;
        };
        const plain = path.join(dir, 'not-executable');
        writeFileSync(plain, 'just text\n');
        const run = (file, extra = []) => runCliAsync(['--config', file, 'check-upstream', ...extra], { timeoutMs: 60000 });
        const [ok, missing, noexec, mute, crash] = await Promise.all([
            run(config('ok', { command: process.execPath, args: [EVERYTHING_JS, 'stdio'] })),
            run(config('missing', { command: 'mcp-guard-e2e-no-such-command' })),
            run(config('noexec', { command: plain })),
            run(config('mute', { command: process.execPath, args: ['-e', 'process.stdin.resume()'] }), ['--timeout', '1']),
            run(config('crash', { command: process.execPath, args: ['-e', 'process.exit(7)'] }), ['--timeout', '2'])
        ]);
        assert.equal(ok.status, 0, ok.stdout + ok.stderr);
        assert.match(ok.stdout, /^default: OK: mcp-servers\/everything \S+, protocol 2025-\d\d-\d\d, \d+ tools$/m);

        assert.equal(missing.status, 1);
        assert.match(missing.stdout, /^default: FAILED: command "mcp-guard-e2e-no-such-command" not found in PATH$/m);

        assert.equal(noexec.status, 1);
        assert.match(noexec.stdout, /^default: FAILED: cannot execute ".*not-executable": Permission denied$/m);

        assert.equal(mute.status, 1);
        assert.match(mute.stdout, /^default: FAILED: no answer to initialize within the timeout$/m);

        assert.equal(crash.status, 1);
        assert.match(crash.stdout, /^default: FAILED: .*(status 7|closed)/m);
    });
});
