// The paging fixture (fixtures/paging-server.mjs) proven on its own, with the
// SDK client and no gateway: every list pages through each item exactly once
// in order, a forged or foreign cursor is -32602, tools answer with their
// name, `mutate` changes a definition and announces tools/list_changed, and
// `slow` reports progress. Tests of federation through the gateway rely on
// these facts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { PAGING_JS, waitFor } from './helpers.mjs';

async function connect(args) {
    const client = new Client({ name: 'paging-self-test', version: '1.0.0' });
    const transport = new StdioClientTransport({
        command: process.execPath,
        args: [PAGING_JS, ...args],
        stderr: 'pipe'
    });
    await client.connect(transport);
    return client;
}

/** Pages through `method` and returns [items, pages]. */
async function pageAll(client, method, key) {
    const items = [];
    let cursor;
    let pages = 0;
    do {
        const r = await client[method](cursor === undefined ? {} : { cursor });
        items.push(...r[key]);
        cursor = r.nextCursor;
        pages++;
        assert.ok(pages < 1000, 'the server never ends the list');
    } while (cursor !== undefined);
    return [items, pages];
}

function assertExactlyOnce(names, expected) {
    assert.equal(new Set(names).size, names.length, 'an item came twice');
    assert.deepEqual(names, expected);
}

describe('paging fixture (no gateway)', () => {
    let client;
    before(async () => {
        client = await connect(['--name', 'alpha']);
    });
    after(async () => {
        await client?.close();
    });

    test('every list pages through every item exactly once, in order', async () => {
        const [tools, toolPages] = await pageAll(client, 'listTools', 'tools');
        assertExactlyOnce(
            tools.map(t => t.name),
            [...Array.from({ length: 300 }, (_, i) => `tool_${i}`), 'mutate', 'slow']
        );
        assert.equal(toolPages, 8); // 302 tools in pages of 40

        const [prompts, promptPages] = await pageAll(client, 'listPrompts', 'prompts');
        assertExactlyOnce(
            prompts.map(p => p.name),
            Array.from({ length: 90 }, (_, i) => `prompt_${i}`)
        );
        assert.equal(promptPages, 3);

        const [resources] = await pageAll(client, 'listResources', 'resources');
        assertExactlyOnce(
            resources.map(r => r.uri),
            Array.from({ length: 120 }, (_, i) => `paging://alpha/r/${i}`)
        );

        const [templates] = await pageAll(client, 'listResourceTemplates', 'resourceTemplates');
        assertExactlyOnce(
            templates.map(t => t.uriTemplate),
            Array.from({ length: 30 }, (_, i) => `paging://alpha/t/${i}/{id}`)
        );
    });

    test('cursors are opaque, per list and checked: anything else is -32602', async () => {
        const first = await client.listTools({});
        assert.ok(first.nextCursor);
        // The same cursor twice gives the same page (a client may retry).
        const a = await client.listTools({ cursor: first.nextCursor });
        const b = await client.listTools({ cursor: first.nextCursor });
        assert.deepEqual(a.tools, b.tools);
        assert.equal(a.tools[0].name, 'tool_40');
        const forged = Buffer.from('tools:80:made-up').toString('base64');
        for (const cursor of ['', 'not base64 at all', forged]) {
            await assert.rejects(client.listTools({ cursor }), e => e.code === -32602);
        }
        // A tools/list cursor is refused by prompts/list.
        await assert.rejects(client.listPrompts({ cursor: first.nextCursor }), e => e.code === -32602);
    });

    test('tools, prompts and resources answer with their own names', async () => {
        const r = await client.callTool({ name: 'tool_7', arguments: { x: 'y' } });
        assert.deepEqual(r.content, [{ type: 'text', text: 'alpha:tool_7:{"x":"y"}' }]);
        await assert.rejects(client.callTool({ name: 'tool_300', arguments: {} }), e => e.code === -32602);
        const p = await client.getPrompt({ name: 'prompt_89' });
        assert.equal(p.messages[0].content.text, 'alpha:prompt_89');
        const res = await client.readResource({ uri: 'paging://alpha/r/119' });
        assert.equal(res.contents[0].text, 'alpha:r/119');
        await assert.rejects(client.readResource({ uri: 'paging://beta/r/1' }), e => e.code === -32602);
    });

    test('slow sends progress notifications', async () => {
        const seen = [];
        const r = await client.callTool({ name: 'slow', arguments: { steps: 4 } }, undefined, {
            onprogress: p => seen.push(p.progress)
        });
        assert.equal(r.content[0].text, 'alpha:slow:4');
        assert.deepEqual(seen, [1, 2, 3, 4]);
    });

    test('mutate changes a definition and announces tools/list_changed', async () => {
        let changed = 0;
        client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
            changed++;
        });
        await client.callTool({ name: 'mutate', arguments: { tool: 'tool_3', description: 'new' } });
        await waitFor(() => changed === 1, { message: 'tools/list_changed' });
        const [tools] = await pageAll(client, 'listTools', 'tools');
        assert.equal(tools.find(t => t.name === 'tool_3').description, 'new');
        assert.equal(tools.find(t => t.name === 'tool_4').description, 'Tool 4 of alpha.');
    });
});

test('paging fixture options: sizes, page length and name', async () => {
    const client = await connect(['--name', 'beta', '--tools', '5', '--prompts', '0', '--page', '2']);
    try {
        const [tools, pages] = await pageAll(client, 'listTools', 'tools');
        assert.deepEqual(
            tools.map(t => t.name),
            ['tool_0', 'tool_1', 'tool_2', 'tool_3', 'tool_4', 'mutate', 'slow']
        );
        assert.equal(pages, 4);
        const [prompts, promptPages] = await pageAll(client, 'listPrompts', 'prompts');
        assert.deepEqual(prompts, []);
        assert.equal(promptPages, 1);
        const r = await client.callTool({ name: 'tool_4', arguments: {} });
        assert.equal(r.content[0].text, 'beta:tool_4:{}');
    } finally {
        await client.close();
    }
});
