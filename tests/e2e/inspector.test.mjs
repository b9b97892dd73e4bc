// The MCP Inspector (@modelcontextprotocol/inspector) in its CLI mode,
// headless, against the gateway - the reference client of the MCP project,
// as a user would run it:
//
//  - with an API key (`--header "X-API-Key: …"`): tools/list and tools/call;
//  - with an access token the gateway's authorization server issued (the SDK
//    OAuth flow, then `--header "Authorization: Bearer …"`);
//  - its own OAuth flow: MCP_AUTO_OPEN_ENABLED=true makes it print the
//    authorization URL instead of waiting for a terminal; the test plays the
//    user (consent page, provider login at oidc-provider) and lets the browser
//    land on the Inspector's loopback callback; the Inspector then
//    registers, exchanges the code and calls the tool;
//  - without credentials and with --stored-auth-only: refused.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { auth } from '@modelcontextprotocol/sdk/client/auth.js';

import { REPO_ROOT, tempDir } from './helpers.mjs';
import { keygen } from './idp/auth-gateway.mjs';
import { consentAndLogin, MemoryProvider, startLoginGateway, stopLogin } from './idp/facade.mjs';

const INSPECTOR_DIR = path.join(REPO_ROOT, 'node_modules/@modelcontextprotocol/inspector');
const INSPECTOR_BIN = path.join(INSPECTOR_DIR, JSON.parse(readFileSync(path.join(INSPECTOR_DIR, 'package.json'), 'utf8')).bin['mcp-inspector']);

// The Inspector wants node >= 22.19 (engines); the "node" devDependency
// provides one whichever node runs the tests.
const NODE22 = path.join(REPO_ROOT, 'node_modules/.bin/node');
const INSPECTOR_NODE = existsSync(NODE22) ? NODE22 : process.execPath;

const live = new Set();

/**
 * Runs `mcp-inspector --cli <args>` with a private HOME (no stored state);
 * `onStderr(text, child)` sees its stderr as it comes. Resolves {code, stdout, stderr}.
 */
function inspector(args, { home, env = {}, onStderr } = {}) {
    return new Promise((resolve, reject) => {
        const child = spawn(INSPECTOR_NODE, [INSPECTOR_BIN, '--cli', ...args], {
            stdio: ['ignore', 'pipe', 'pipe'],
            env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), NO_COLOR: '1', BROWSER: 'true', ...env }
        });
        live.add(child);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', d => (stdout += d));
        child.stderr.on('data', d => {
            stderr += d;
            onStderr?.(stderr, child);
        });
        child.on('error', reject);
        child.on('exit', code => {
            live.delete(child);
            resolve({ code, stdout, stderr });
        });
    });
}

describe('the MCP Inspector CLI through the gateway', { concurrency: 1, timeout: 180000 }, () => {
    let idp;
    let gw;
    let origin;
    let home;
    const alice = keygen('alice');

    before(async () => {
        home = tempDir('mcp-guard-inspector-');
        ({ idp, gw, origin } = await startLoginGateway(() => ({
            oauth: { authorization_server: true },
            auth: { api_keys: [{ id: 'alice', key_hash: alice.hash }] }
        })));
    });

    after(async () => {
        for (const child of live) child.kill('SIGKILL');
        await stopLogin({ gw, idp });
        if (home) rmSync(home, { recursive: true, force: true });
    });

    test('with an API key: tools/list and tools/call', async () => {
        const key = ['--header', `X-API-Key: ${alice.key}`];
        const list = await inspector([`${origin}/mcp`, '--method', 'tools/list', ...key], { home });
        assert.equal(list.code, 0, list.stderr);
        assert.ok(JSON.parse(list.stdout).tools.some(t => t.name === 'echo'), list.stdout);
        const call = await inspector([`${origin}/mcp`, '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'message=from the Inspector', ...key], { home });
        assert.equal(call.code, 0, call.stderr);
        assert.match(JSON.parse(call.stdout).content[0].text, /from the Inspector/);
        // a wrong key is refused by the gateway
        const bad = await inspector([`${origin}/mcp`, '--method', 'tools/list', '--header', 'X-API-Key: mcp_wrong', '--stored-auth-only'], { home });
        assert.notEqual(bad.code, 0);
    });

    test('with an access token issued by the gateway (SDK flow), as a bearer header', async () => {
        const provider = new MemoryProvider();
        assert.equal(await auth(provider, { serverUrl: `${origin}/mcp` }), 'REDIRECT');
        const back = await consentAndLogin(origin, new URL(provider.authUrl));
        assert.equal(await auth(provider, { serverUrl: `${origin}/mcp`, authorizationCode: back.searchParams.get('code') }), 'AUTHORIZED');
        const r = await inspector([`${origin}/mcp`, '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'message=bearer', '--header', `Authorization: Bearer ${provider.saved.access_token}`], { home });
        assert.equal(r.code, 0, r.stderr);
        assert.match(JSON.parse(r.stdout).content[0].text, /bearer/);
    });

    test('without credentials and --stored-auth-only: refused, nothing interactive', async () => {
        const r = await inspector([`${origin}/mcp`, '--method', 'tools/list', '--stored-auth-only'], { home });
        assert.notEqual(r.code, 0);
        assert.equal(r.stdout.includes('"tools"'), false);
    });

    test("its own OAuth flow: discovery → registration → consent → provider login → token → tools/call", async () => {
        let driven;
        let seen;
        const r = await inspector([`${origin}/mcp`, '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'message=inspector oauth'], {
            home,
            env: { MCP_AUTO_OPEN_ENABLED: 'true' },
            onStderr: (text, child) => {
                const m = /Please navigate to: (\S+)/.exec(text);
                if (!m || driven) return;
                const url = new URL(m[1]);
                const callback = url.searchParams.get('redirect_uri');
                seen = { url, callback };
                // the user: consent, provider login, and the browser lands on the Inspector's callback
                driven = consentAndLogin(origin, url, undefined, undefined, callback)
                    .then(back => fetch(back))
                    .then(res => res.text())
                    .catch(e => {
                        child.kill('SIGKILL');
                        throw e;
                    });
            }
        });
        assert.ok(driven, `the Inspector printed no authorization URL:\n${r.stderr}`);
        await driven;
        // the gateway's own authorization endpoint, PKCE S256, a loopback callback, this resource
        assert.equal(`${seen.url.origin}${seen.url.pathname}`, `${origin}/authorize`);
        assert.equal(seen.url.searchParams.get('code_challenge_method'), 'S256');
        assert.match(seen.callback, /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d+\//);
        assert.equal(seen.url.searchParams.get('resource'), `${origin}/mcp`);
        assert.equal(r.code, 0, r.stderr);
        assert.match(JSON.parse(r.stdout).content[0].text, /inspector oauth/);
    });
});
