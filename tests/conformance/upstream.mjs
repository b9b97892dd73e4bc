#!/usr/bin/env node
// Test upstream for the MCP conformance suite (@modelcontextprotocol/conformance).
//
// It exposes every tool, resource, resource template, prompt and utility the
// suite's *server* scenarios look for, under the exact names they use, built
// on the v2 TypeScript SDK (@modelcontextprotocol/server) so that one server
// definition answers both protocol eras:
//
//   * 2025-era (2025-06-18 / 2025-11-25): initialize handshake, sessions,
//     server->client sampling/elicitation requests, logging/setLevel,
//     resources/subscribe, standalone GET SSE stream.
//   * 2026-07-28: stateless, per-request `_meta` envelope, server/discover,
//     input_required multi-round-trip results, subscriptions/listen,
//     caching hints.
//
// Modes:
//   node tests/conformance/upstream.mjs --stdio
//       MCP over stdin/stdout (what mcp-guard spawns). Logs go to stderr only.
//   node tests/conformance/upstream.mjs --http --port N [--host 127.0.0.1]
//       Streamable HTTP on http://127.0.0.1:N/mcp (loopback only). Prints
//       "listening on http://127.0.0.1:N/mcp" on stdout once ready. Port 0
//       picks a free port (the printed line carries the real one).
//
// Runs on Node >= 20 (uses the global fetch-API Request/Response classes).

import http from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import process from 'node:process';

import * as z from 'zod/v4';
import {
    CLIENT_CAPABILITIES_META_KEY,
    McpServer,
    ResourceTemplate,
    WebStandardStreamableHTTPServerTransport,
    acceptedContent,
    completable,
    createMcpHandler,
    createRequestStateCodec,
    fromJsonSchema,
    hostHeaderValidationResponse,
    inputRequired,
    isLegacyRequest,
    localhostAllowedHostnames,
    localhostAllowedOrigins,
    originValidationResponse
} from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import { SkillsExtension, memorySkillFiles } from '@modelcontextprotocol/server/ext/skills';

const SERVER_NAME = 'mcp-guard-conformance-upstream';
const SERVER_VERSION = '1.0.0';

// ---------------------------------------------------------------- logging --
// stdout is the protocol channel in --stdio mode and carries exactly one
// readiness line in --http mode, so every diagnostic goes to stderr.
const VERBOSE = process.env.MCP_UPSTREAM_VERBOSE === '1';
function logErr(...args) {
    process.stderr.write(`[upstream] ${args.map(a => (a instanceof Error ? a.stack || a.message : String(a))).join(' ')}\n`);
}
function debug(...args) {
    if (VERBOSE) logErr(...args);
}

// ---------------------------------------------------------------- fixtures --
// 1x1 PNG and a minimal WAV header, base64.
const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV_EMPTY = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const text = t => ({ type: 'text', text: t });
const errMessage = e => (e instanceof Error ? e.message : String(e));

// requestState of the multi-round-trip tools round-trips through the client,
// so it is HMAC-sealed. The key is per process unless
// CONFORMANCE_UPSTREAM_STATE_KEY (>= 32 bytes) is set: with a per-process key
// every round of a flow must reach the same process (true for the HTTP
// upstream and for a single stdio child; a gateway that spreads the rounds
// over several stdio children needs the shared key).
const stateKey = process.env.CONFORMANCE_UPSTREAM_STATE_KEY;
const stateCodec = createRequestStateCodec({ key: stateKey && stateKey.length >= 32 ? stateKey : randomBytes(32) });

// Resource subscriptions (2025-era resources/subscribe), process wide.
const subscribedUris = new Set();

// How a "list changed" trigger reaches open 2026-07-28 subscriptions/listen
// streams. Over HTTP the per-request server instances are throwaway, so the
// change is published on the HTTP handler's event bus; over stdio the
// connection's pinned instance routes its own send*ListChanged() calls onto
// its listen stream.
let httpNotifier;
function publishListChanged(server, kind) {
    if (httpNotifier) {
        if (kind === 'tools') httpNotifier.toolsChanged();
        else httpNotifier.promptsChanged();
        return;
    }
    try {
        if (kind === 'tools') server.sendToolListChanged();
        else server.sendPromptListChanged();
    } catch (e) {
        debug('list_changed not delivered:', errMessage(e));
    }
}

// SEP-2640 skills extension (io.modelcontextprotocol/skills): one skill with
// a manifest and a file in a subdirectory, so skills/list, skills/get,
// SKILL.md reads and resources/directory/read all have something to serve.
const skills = await SkillsExtension.load(
    memorySkillFiles({
        'conformance-check/SKILL.md': [
            '---',
            'name: conformance-check',
            'description: Explains how the mcp-guard conformance upstream is exercised.',
            '---',
            '',
            '# conformance-check',
            '',
            'Run the conformance suite against the upstream directly and through the gateway;',
            'see references/GUIDE.md.',
            ''
        ].join('\n'),
        'conformance-check/references/GUIDE.md': '# Guide\n\nEvery check that passes directly must pass through the gateway.\n'
    }),
    { cacheHint: { ttlMs: 60000, cacheScope: 'public' }, onWarning: w => logErr(`skill warning: ${w.path}: ${w.message}`) }
);

const nameSchema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] };
const confirmSchema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] };

// ---------------------------------------------------------- server factory --
// One definition for every era and transport: the SDK calls this per HTTP
// request on the 2026-07-28 path, per session on the 2025 HTTP path and per
// connection over stdio.
function buildServer() {
    const server = new McpServer(
        { name: SERVER_NAME, version: SERVER_VERSION },
        {
            capabilities: {
                tools: { listChanged: true },
                resources: { subscribe: true, listChanged: true },
                prompts: { listChanged: true },
                // Deprecated in 2026-07-28 but still negotiated by 2025 clients
                // (logging/setLevel, notifications/message during tool calls).
                logging: {},
                completions: {}
            },
            // SEP-2549 caching hints for the 2026-07-28 cacheable results.
            cacheHints: {
                'tools/list': { ttlMs: 60000, cacheScope: 'public' },
                'prompts/list': { ttlMs: 60000, cacheScope: 'public' },
                'resources/list': { ttlMs: 60000, cacheScope: 'public' },
                'resources/templates/list': { ttlMs: 60000, cacheScope: 'public' },
                'resources/read': { ttlMs: 10000, cacheScope: 'private' },
                'server/discover': { ttlMs: 60000, cacheScope: 'public' }
            },
            // A retried request whose requestState fails the HMAC check is
            // refused with -32602 before any handler runs.
            requestState: { verify: stateCodec.verify }
        }
    );

    // Best-effort log notification outside a request (2025-era only).
    const serverLog = (level, data) => {
        server.server
            .notification({ method: 'notifications/message', params: { level, logger: SERVER_NAME, data } })
            .catch(() => {});
    };

    // ------------------------------------------------------------ tools --
    server.registerTool('test_simple_text', { description: 'Returns one text content block' }, async () => ({
        content: [text('This is a simple text response for testing.')]
    }));

    server.registerTool('test_image_content', { description: 'Returns one image content block (PNG)' }, async () => ({
        content: [{ type: 'image', data: PNG_1X1, mimeType: 'image/png' }]
    }));

    server.registerTool('test_audio_content', { description: 'Returns one audio content block (WAV)' }, async () => ({
        content: [{ type: 'audio', data: WAV_EMPTY, mimeType: 'audio/wav' }]
    }));

    server.registerTool('test_embedded_resource', { description: 'Returns one embedded text resource' }, async () => ({
        content: [
            {
                type: 'resource',
                resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' }
            }
        ]
    }));

    server.registerTool(
        'test_multiple_content_types',
        { description: 'Returns text, image and embedded resource content together' },
        async () => ({
            content: [
                text('Multiple content types test:'),
                { type: 'image', data: PNG_1X1, mimeType: 'image/png' },
                {
                    type: 'resource',
                    resource: {
                        uri: 'test://mixed-content-resource',
                        mimeType: 'application/json',
                        text: JSON.stringify({ test: 'data', value: 123 })
                    }
                }
            ]
        })
    );

    server.registerTool(
        'test_tool_with_logging',
        { description: 'Emits three notifications/message while running', inputSchema: z.object({}) },
        async (_args, ctx) => {
            const steps = ['Tool execution started', 'Tool processing data', 'Tool execution completed'];
            for (let i = 0; i < steps.length; i++) {
                await ctx.mcpReq.notify({ method: 'notifications/message', params: { level: 'info', logger: SERVER_NAME, data: steps[i] } });
                if (i < steps.length - 1) await sleep(50);
            }
            return { content: [text('Tool with logging executed successfully')] };
        }
    );

    server.registerTool(
        'test_tool_with_progress',
        { description: 'Reports progress 0/50/100 of 100 when the caller sent a progressToken', inputSchema: z.object({}) },
        async (_args, ctx) => {
            const token = ctx.mcpReq._meta?.progressToken;
            if (token !== undefined) {
                for (const progress of [0, 50, 100]) {
                    await ctx.mcpReq.notify({
                        method: 'notifications/progress',
                        params: { progressToken: token, progress, total: 100, message: `step ${progress}/100` }
                    });
                    if (progress < 100) await sleep(50);
                }
            }
            return { content: [text(token === undefined ? 'no progress token' : String(token))] };
        }
    );

    server.registerTool('test_error_handling', { description: 'Always fails (isError result)' }, async () => {
        throw new Error('This tool intentionally returns an error for testing');
    });

    // SEP-1699: closes its own SSE response stream mid-call; the result is
    // delivered on the client's GET reconnection (Last-Event-ID replay).
    server.registerTool(
        'test_reconnection',
        { description: 'Closes the SSE stream mid-call, then answers after the client reconnects', inputSchema: z.object({}) },
        async (_args, ctx) => {
            ctx.http?.closeSSE?.();
            await sleep(200);
            return { content: [text('Reconnection test completed successfully.')] };
        }
    );

    // 2025-era push-style server->client requests.
    server.registerTool(
        'test_sampling',
        { description: 'Asks the client for an LLM completion (sampling/createMessage)', inputSchema: z.object({ prompt: z.string() }) },
        async (args, ctx) => {
            try {
                const result = await ctx.mcpReq.send({
                    method: 'sampling/createMessage',
                    params: { messages: [{ role: 'user', content: text(args.prompt) }], maxTokens: 100 }
                });
                const reply = result?.content?.text ?? 'No response';
                return { content: [text(`LLM response: ${reply}`)] };
            } catch (e) {
                return { content: [text(`Sampling failed: ${errMessage(e)}`)], isError: true };
            }
        }
    );

    const elicitTool = (name, description, inputSchema, makeParams, label) =>
        server.registerTool(name, { description, inputSchema }, async (args, ctx) => {
            try {
                const result = await ctx.mcpReq.send({ method: 'elicitation/create', params: makeParams(args) });
                return { content: [text(`${label}: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`)] };
            } catch (e) {
                return { content: [text(`Elicitation failed: ${errMessage(e)}`)], isError: true };
            }
        });

    elicitTool(
        'test_elicitation',
        'Asks the user for input (elicitation/create)',
        z.object({ message: z.string() }),
        args => ({
            message: args.message,
            requestedSchema: {
                type: 'object',
                properties: { response: { type: 'string', description: "User's response" } },
                required: ['response']
            }
        }),
        'User response'
    );

    // SEP-1034: defaults for every primitive type.
    elicitTool(
        'test_elicitation_sep1034_defaults',
        'Elicitation whose schema carries a default for every primitive type (SEP-1034)',
        z.object({}),
        () => ({
            message: 'Please review and update the form fields with defaults',
            requestedSchema: {
                type: 'object',
                properties: {
                    name: { type: 'string', description: 'User name', default: 'John Doe' },
                    age: { type: 'integer', description: 'User age', default: 30 },
                    score: { type: 'number', description: 'User score', default: 95.5 },
                    status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
                    verified: { type: 'boolean', description: 'Verification status', default: true }
                },
                required: []
            }
        }),
        'Elicitation completed'
    );

    // SEP-1330: the five enum schema shapes.
    elicitTool(
        'test_elicitation_sep1330_enums',
        'Elicitation using every enum schema variant (SEP-1330)',
        z.object({}),
        () => {
            const titled = (prefix, labels) => labels.map((title, i) => ({ const: `${prefix}${i + 1}`, title }));
            return {
                message: 'Please select options from the enum fields',
                requestedSchema: {
                    type: 'object',
                    properties: {
                        untitledSingle: { type: 'string', description: 'Select one option', enum: ['option1', 'option2', 'option3'] },
                        titledSingle: {
                            type: 'string',
                            description: 'Select one option with titles',
                            oneOf: titled('value', ['First Option', 'Second Option', 'Third Option'])
                        },
                        legacyEnum: {
                            type: 'string',
                            description: 'Select one option (legacy)',
                            enum: ['opt1', 'opt2', 'opt3'],
                            enumNames: ['Option One', 'Option Two', 'Option Three']
                        },
                        untitledMulti: {
                            type: 'array',
                            description: 'Select multiple options',
                            minItems: 1,
                            maxItems: 3,
                            items: { type: 'string', enum: ['option1', 'option2', 'option3'] }
                        },
                        titledMulti: {
                            type: 'array',
                            description: 'Select multiple options with titles',
                            minItems: 1,
                            maxItems: 3,
                            items: { anyOf: titled('value', ['First Choice', 'Second Choice', 'Third Choice']) }
                        }
                    },
                    required: []
                }
            };
        },
        'Elicitation completed'
    );

    // SEP-1613 / SEP-2106: the inputSchema must reach tools/list verbatim,
    // with $schema, $defs, $anchor, $ref, composition and conditionals intact.
    server.registerTool(
        'json_schema_2020_12_tool',
        {
            description: 'Advertises a JSON Schema 2020-12 inputSchema (SEP-1613, SEP-2106)',
            inputSchema: fromJsonSchema({
                $schema: 'https://json-schema.org/draft/2020-12/schema',
                type: 'object',
                $defs: {
                    address: {
                        $anchor: 'addressDef',
                        type: 'object',
                        properties: { street: { type: 'string' }, city: { type: 'string' } }
                    }
                },
                properties: {
                    name: { type: 'string' },
                    address: { $ref: '#/$defs/address' },
                    contactMethod: { type: 'string', enum: ['phone', 'email'] },
                    phone: { type: 'string' },
                    email: { type: 'string' }
                },
                allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
                if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
                then: { required: ['phone'] },
                else: { required: ['email'] },
                additionalProperties: false
            })
        },
        async args => ({ content: [text(`json_schema_2020_12_tool called with ${JSON.stringify(args)}`)] })
    );

    // SEP-2243: an argument mirrored into the Mcp-Param-Region header.
    server.registerTool(
        'test_x_mcp_header',
        {
            description: 'Has an x-mcp-header annotated argument (SEP-2243 Mcp-Param-* headers)',
            inputSchema: fromJsonSchema({
                type: 'object',
                properties: {
                    region: { type: 'string', description: 'mirrored into Mcp-Param-Region', 'x-mcp-header': 'Region' },
                    level: { type: 'integer', description: 'not mirrored' }
                }
            })
        },
        async args => ({ content: [text(`region=${args.region ?? '<none>'}`)] })
    );

    // ---- 2026-07-28 diagnostics used by the server-stateless scenario ----
    // Needs the sampling client capability: the SDK answers -32021 when the
    // request's envelope does not declare it.
    server.registerTool(
        'test_missing_capability',
        { description: 'Requires the sampling client capability (input_required sampling request)', inputSchema: z.object({}) },
        async (_args, ctx) => {
            if (ctx.mcpReq.inputResponses?.answer === undefined) {
                return inputRequired({
                    inputRequests: {
                        answer: inputRequired.createMessage({ messages: [{ role: 'user', content: text('Say pong') }], maxTokens: 16 })
                    }
                });
            }
            return { content: [text('sampling round trip complete')] };
        }
    );

    server.registerTool(
        'test_streaming_elicitation',
        { description: 'Plain result; its response stream must carry no server->client request', inputSchema: z.object({}) },
        async () => ({ content: [text('result only, no in-stream requests')] })
    );

    // ctx.mcpReq.log is filtered by the request's _meta logLevel (2026) or
    // logging/setLevel (2025): without either nothing is emitted.
    server.registerTool(
        'test_logging_tool',
        { description: 'Logs through the request-scoped, level-gated channel', inputSchema: z.object({}) },
        async (_args, ctx) => {
            await ctx.mcpReq.log('info', 'test_logging_tool ran', SERVER_NAME);
            return { content: [text('logging evaluated')] };
        }
    );

    server.registerTool(
        'test_trigger_tool_change',
        { description: 'Publishes notifications/tools/list_changed to open listen streams', inputSchema: z.object({}) },
        async () => {
            publishListChanged(server, 'tools');
            return { content: [text('tools list_changed published')] };
        }
    );

    server.registerTool(
        'test_trigger_prompt_change',
        { description: 'Publishes notifications/prompts/list_changed to open listen streams', inputSchema: z.object({}) },
        async () => {
            publishListChanged(server, 'prompts');
            return { content: [text('prompts list_changed published')] };
        }
    );

    // ---- SEP-2322 multi-round-trip (input_required) tools ----
    // On 2025-era connections the SDK's legacy shim fulfils these with real
    // server->client requests, so they work in both eras.
    server.registerTool(
        'test_input_required_result_elicitation',
        { description: 'MRTR: asks for the caller name (elicitation)', inputSchema: z.object({}) },
        async (_args, ctx) => {
            const name = acceptedContent(ctx.mcpReq.inputResponses, 'user_name')?.name;
            if (typeof name !== 'string') {
                return inputRequired({
                    inputRequests: { user_name: inputRequired.elicit({ message: 'What is your name?', requestedSchema: nameSchema }) }
                });
            }
            return { content: [text(`Hello, ${name}!`)] };
        }
    );

    server.registerTool(
        'test_input_required_result_sampling',
        { description: 'MRTR: asks for an LLM completion (sampling)', inputSchema: z.object({}) },
        async (_args, ctx) => {
            const answer = ctx.mcpReq.inputResponses?.capital;
            if (answer === undefined) {
                return inputRequired({
                    inputRequests: {
                        capital: inputRequired.createMessage({
                            messages: [{ role: 'user', content: text('What is the capital of France?') }],
                            maxTokens: 100
                        })
                    }
                });
            }
            const reply = typeof answer?.content?.text === 'string' ? answer.content.text : JSON.stringify(answer);
            return { content: [text(`Sampling response: ${reply}`)] };
        }
    );

    server.registerTool(
        'test_input_required_result_list_roots',
        { description: 'MRTR: asks for the client roots (roots/list)', inputSchema: z.object({}) },
        async (_args, ctx) => {
            const roots = ctx.mcpReq.inputResponses?.roots?.roots;
            if (!Array.isArray(roots)) {
                return inputRequired({ inputRequests: { roots: inputRequired.listRoots() } });
            }
            return { content: [text(`Client exposed ${roots.length} root(s): ${roots.map(r => r?.uri).join(', ')}`)] };
        }
    );

    server.registerTool(
        'test_input_required_result_request_state',
        { description: 'MRTR: round-trips sealed requestState with an elicitation', inputSchema: z.object({}) },
        async (_args, ctx) => {
            const confirmed = acceptedContent(ctx.mcpReq.inputResponses, 'confirm');
            const state = ctx.mcpReq.requestState();
            if (confirmed === undefined || state?.tool !== 'request_state') {
                return inputRequired({
                    inputRequests: { confirm: inputRequired.elicit({ message: 'Please confirm', requestedSchema: confirmSchema }) },
                    requestState: await stateCodec.mint({ tool: 'request_state', nonce: randomUUID() })
                });
            }
            return { content: [text('state-ok: requestState verified and confirmation received')] };
        }
    );

    server.registerTool(
        'test_input_required_result_multiple_inputs',
        { description: 'MRTR: elicitation, sampling and roots requested in one round', inputSchema: z.object({}) },
        async (_args, ctx) => {
            const responses = ctx.mcpReq.inputResponses;
            const name = acceptedContent(responses, 'user_name')?.name;
            const greeting = responses?.greeting?.content?.text;
            const roots = responses?.client_roots?.roots;
            if (typeof name !== 'string' || typeof greeting !== 'string' || !Array.isArray(roots)) {
                return inputRequired({
                    inputRequests: {
                        user_name: inputRequired.elicit({ message: 'What is your name?', requestedSchema: nameSchema }),
                        greeting: inputRequired.createMessage({
                            messages: [{ role: 'user', content: text('Generate a greeting') }],
                            maxTokens: 50
                        }),
                        client_roots: inputRequired.listRoots()
                    },
                    requestState: await stateCodec.mint({ tool: 'multiple_inputs', nonce: randomUUID() })
                });
            }
            return { content: [text(`${greeting} ${name} (${roots.length} root(s))`)] };
        }
    );

    server.registerTool(
        'test_input_required_result_multi_round',
        { description: 'MRTR: two elicitation rounds, requestState changes between them', inputSchema: z.object({}) },
        async (_args, ctx) => {
            const state = ctx.mcpReq.requestState();
            const round = state?.tool === 'multi_round' && typeof state.round === 'number' ? state.round : 0;
            if (round === 0) {
                return inputRequired({
                    inputRequests: { step1: inputRequired.elicit({ message: 'Step 1: What is your name?', requestedSchema: nameSchema }) },
                    requestState: await stateCodec.mint({ tool: 'multi_round', round: 1, nonce: randomUUID() })
                });
            }
            if (round === 1) {
                const name = acceptedContent(ctx.mcpReq.inputResponses, 'step1')?.name ?? 'unknown';
                return inputRequired({
                    inputRequests: {
                        step2: inputRequired.elicit({
                            message: 'Step 2: What is your favorite color?',
                            requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] }
                        })
                    },
                    requestState: await stateCodec.mint({ tool: 'multi_round', round: 2, name, nonce: randomUUID() })
                });
            }
            const color = acceptedContent(ctx.mcpReq.inputResponses, 'step2')?.color ?? 'unknown';
            return { content: [text(`Multi-round complete: ${state.name} likes ${color}`)] };
        }
    );

    // Tampered requestState never reaches the handler: the verify hook above
    // rejects it with -32602.
    server.registerTool(
        'test_input_required_result_tampered_state',
        { description: 'MRTR: rejects a retry whose requestState fails integrity verification', inputSchema: z.object({}) },
        async (_args, ctx) => {
            if (ctx.mcpReq.requestState() !== undefined && acceptedContent(ctx.mcpReq.inputResponses, 'confirm') !== undefined) {
                return { content: [text('integrity-ok: requestState verified')] };
            }
            return inputRequired({
                inputRequests: { confirm: inputRequired.elicit({ message: 'Please confirm', requestedSchema: confirmSchema }) },
                requestState: await stateCodec.mint({ tool: 'tampered_state', nonce: randomUUID() })
            });
        }
    );

    // Only asks for input kinds the request's declared capabilities cover.
    server.registerTool(
        'test_input_required_result_capabilities',
        { description: 'MRTR: only requests input kinds the client declared', inputSchema: z.object({}) },
        async (_args, ctx) => {
            if (ctx.mcpReq.inputResponses !== undefined) {
                return { content: [text(`capabilities-ok: received ${Object.keys(ctx.mcpReq.inputResponses).join(',')}`)] };
            }
            const declared = ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY] ?? {};
            const inputRequests = {};
            if (declared.elicitation !== undefined) {
                inputRequests.user_name = inputRequired.elicit({ message: 'What is your name?', requestedSchema: nameSchema });
            }
            if (declared.sampling !== undefined) {
                inputRequests.greeting = inputRequired.createMessage({
                    messages: [{ role: 'user', content: text('Generate a short greeting') }],
                    maxTokens: 50
                });
            }
            if (declared.roots !== undefined) inputRequests.client_roots = inputRequired.listRoots();
            if (Object.keys(inputRequests).length === 0) {
                return { content: [text('No declared client capability supports an input request')] };
            }
            return inputRequired({ inputRequests });
        }
    );

    // -------------------------------------------------------- resources --
    server.registerResource(
        'static-text',
        'test://static-text',
        { title: 'Static Text Resource', description: 'A static text resource', mimeType: 'text/plain' },
        async () => ({
            contents: [{ uri: 'test://static-text', mimeType: 'text/plain', text: 'This is the content of the static text resource.' }]
        })
    );

    server.registerResource(
        'static-binary',
        'test://static-binary',
        { title: 'Static Binary Resource', description: 'A static binary resource (PNG)', mimeType: 'image/png' },
        async () => ({ contents: [{ uri: 'test://static-binary', mimeType: 'image/png', blob: PNG_1X1 }] })
    );

    server.registerResource(
        'template',
        new ResourceTemplate('test://template/{id}/data', {
            list: undefined,
            complete: { id: value => ['1', '2', '3', '123'].filter(v => v.startsWith(value)) }
        }),
        { title: 'Resource Template', description: 'Parameterised resource test://template/{id}/data', mimeType: 'application/json' },
        async (uri, variables) => ({
            contents: [
                {
                    uri: uri.toString(),
                    mimeType: 'application/json',
                    text: JSON.stringify({ id: variables.id, templateTest: true, data: `Data for ID: ${variables.id}` })
                }
            ]
        })
    );

    server.registerResource(
        'watched-resource',
        'test://watched-resource',
        { title: 'Watched Resource', description: 'Subscribable resource', mimeType: 'text/plain' },
        async () => ({ contents: [{ uri: 'test://watched-resource', mimeType: 'text/plain', text: 'Watched resource content' }] })
    );

    // 2025-era per-resource subscriptions.
    server.server.setRequestHandler('resources/subscribe', async request => {
        subscribedUris.add(request.params.uri);
        serverLog('info', `Subscribed to resource: ${request.params.uri}`);
        return {};
    });
    server.server.setRequestHandler('resources/unsubscribe', async request => {
        subscribedUris.delete(request.params.uri);
        serverLog('info', `Unsubscribed from resource: ${request.params.uri}`);
        return {};
    });

    // ---------------------------------------------------------- prompts --
    server.registerPrompt('test_simple_prompt', { title: 'Simple Test Prompt', description: 'A prompt without arguments' }, async () => ({
        messages: [{ role: 'user', content: text('This is a simple prompt for testing.') }]
    }));

    const suggest = words => value => words.filter(w => w.startsWith(value ?? ''));
    server.registerPrompt(
        'test_prompt_with_arguments',
        {
            title: 'Prompt With Arguments',
            description: 'A prompt with two required arguments',
            argsSchema: z.object({
                arg1: completable(z.string().describe('First test argument'), suggest(['test', 'testing', 'paris', 'park'])),
                arg2: completable(z.string().describe('Second test argument'), suggest(['value', 'various']))
            })
        },
        async args => ({
            messages: [{ role: 'user', content: text(`Prompt with arguments: arg1='${args.arg1}', arg2='${args.arg2}'`) }]
        })
    );

    server.registerPrompt(
        'test_prompt_with_embedded_resource',
        {
            title: 'Prompt With Embedded Resource',
            description: 'A prompt embedding the resource named by resourceUri',
            argsSchema: z.object({ resourceUri: z.string().describe('URI of the resource to embed') })
        },
        async args => ({
            messages: [
                {
                    role: 'user',
                    content: {
                        type: 'resource',
                        resource: { uri: args.resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' }
                    }
                },
                { role: 'user', content: text('Please process the embedded resource above.') }
            ]
        })
    );

    server.registerPrompt('test_prompt_with_image', { title: 'Prompt With Image', description: 'A prompt with image content' }, async () => ({
        messages: [
            { role: 'user', content: { type: 'image', data: PNG_1X1, mimeType: 'image/png' } },
            { role: 'user', content: text('Please analyze the image above.') }
        ]
    }));

    // SEP-2322: prompts/get can answer input_required too.
    server.registerPrompt(
        'test_input_required_result_prompt',
        { title: 'MRTR Prompt', description: 'Needs elicitation input before it renders' },
        async ctx => {
            const context = acceptedContent(ctx.mcpReq.inputResponses, 'user_context')?.context;
            if (typeof context !== 'string') {
                return inputRequired({
                    inputRequests: {
                        user_context: inputRequired.elicit({
                            message: 'What context should the prompt use?',
                            requestedSchema: { type: 'object', properties: { context: { type: 'string' } }, required: ['context'] }
                        })
                    }
                });
            }
            return { messages: [{ role: 'user', content: text(`Use the following context: ${context}`) }] };
        }
    );

    // ----------------------------------------------------------- skills --
    skills.attach(server);

    // ---------------------------------------------------------- logging --
    server.server.setRequestHandler('logging/setLevel', async request => {
        serverLog('info', `Log level set to: ${request.params.level}`);
        return {};
    });

    return server;
}

// ================================================================== stdio ==
function runStdio() {
    const handle = serveStdio(() => buildServer(), { onerror: e => debug('stdio error:', e) });
    const stop = () => {
        handle.close().finally(() => process.exit(0));
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    logErr('serving MCP on stdio');
}

// =================================================================== HTTP ==
// In-memory event store so a 2025-era client can resume an SSE stream with
// Last-Event-ID (SEP-1699). Event ids sort chronologically within a stream.
function createEventStore() {
    const events = new Map(); // eventId -> { streamId, message }
    let seq = 0;
    return {
        async storeEvent(streamId, message) {
            const eventId = `${streamId}::${String(++seq).padStart(12, '0')}`;
            events.set(eventId, { streamId, message });
            if (events.size > 10000) events.delete(events.keys().next().value);
            return eventId;
        },
        async replayEventsAfter(lastEventId, { send }) {
            const streamId = lastEventId.split('::')[0];
            for (const [eventId, entry] of events) {
                if (entry.streamId === streamId && eventId > lastEventId && entry.message && Object.keys(entry.message).length > 0) {
                    await send(eventId, entry.message);
                }
            }
            return streamId;
        }
    };
}

function jsonRpcErrorResponse(status, code, message) {
    return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }), {
        status,
        headers: { 'content-type': 'application/json' }
    });
}

const MAX_BODY = 4 * 1024 * 1024;

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        let size = 0;
        req.on('data', chunk => {
            size += chunk.length;
            if (size > MAX_BODY) {
                reject(Object.assign(new Error('request body too large'), { status: 413 }));
                req.destroy();
                return;
            }
            chunks.push(chunk);
        });
        req.on('end', () => resolve(Buffer.concat(chunks)));
        req.on('error', reject);
    });
}

// node:http request -> fetch-API Request.
function toWebRequest(req, body, signal, port) {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const v of value) headers.append(name, v);
        else headers.set(name, value);
    }
    // The URL's authority is informational only; Host validation reads the
    // header itself.
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const init = { method: req.method, headers, signal };
    if (body && body.length > 0 && req.method !== 'GET' && req.method !== 'HEAD') init.body = body;
    return new Request(url, init);
}

// fetch-API Response -> node:http response, streaming the body (SSE).
async function writeWebResponse(res, response) {
    const headers = {};
    response.headers.forEach((value, name) => {
        headers[name] = value;
    });
    res.writeHead(response.status, headers);
    if (!response.body) {
        res.end();
        return;
    }
    res.flushHeaders();
    const reader = response.body.getReader();
    const onClose = () => reader.cancel().catch(() => {});
    res.on('close', onClose);
    try {
        for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            if (!res.write(value)) await new Promise(resolve => res.once('drain', resolve));
        }
    } catch (e) {
        debug('response stream ended:', errMessage(e));
    } finally {
        res.off('close', onClose);
        res.end();
    }
}

async function runHttp(host, port) {
    if (host !== '127.0.0.1' && host !== 'localhost') {
        throw new Error(`refusing to bind ${host}: the test upstream listens on loopback only`);
    }

    // 2026-07-28 traffic: a fresh server per request, stateless.
    const modern = createMcpHandler(() => buildServer(), { legacy: 'reject', onerror: e => debug('modern:', e) });
    httpNotifier = modern.notify;

    // 2025-era traffic: sessionful Streamable HTTP, one server per session.
    const sessions = new Map(); // sessionId -> transport

    async function legacy(request) {
        const sessionId = request.headers.get('mcp-session-id');
        if (sessionId) {
            const transport = sessions.get(sessionId);
            if (!transport) return jsonRpcErrorResponse(404, -32001, 'Session not found');
            return transport.handleRequest(request);
        }
        if (request.method !== 'POST') return jsonRpcErrorResponse(400, -32000, 'Bad Request: Mcp-Session-Id header required');

        let parsed;
        try {
            parsed = await request.clone().json();
        } catch {
            parsed = undefined;
        }
        const isInit = parsed && !Array.isArray(parsed) && parsed.method === 'initialize';
        if (!isInit) return jsonRpcErrorResponse(400, -32000, 'Bad Request: Mcp-Session-Id header required');

        const server = buildServer();
        const transport = new WebStandardStreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            eventStore: createEventStore(),
            retryInterval: 1000,
            onsessioninitialized: id => {
                sessions.set(id, transport);
                debug('session opened', id);
            },
            onsessionclosed: id => {
                sessions.delete(id);
                debug('session closed', id);
            }
        });
        transport.onclose = () => {
            if (transport.sessionId) sessions.delete(transport.sessionId);
            server.close().catch(() => {});
        };
        await server.connect(transport);
        return transport.handleRequest(request);
    }

    async function serve(request) {
        const url = new URL(request.url);
        if (url.pathname !== '/mcp') {
            return new Response('not found\n', { status: 404, headers: { 'content-type': 'text/plain' } });
        }
        // DNS-rebinding protection: loopback Host and Origin only.
        const rejected =
            hostHeaderValidationResponse(request, localhostAllowedHostnames()) ??
            originValidationResponse(request, localhostAllowedOrigins());
        if (rejected) return rejected;

        if (await isLegacyRequest(request)) return legacy(request);
        return modern.fetch(request);
    }

    const httpServer = http.createServer(async (req, res) => {
        const abort = new AbortController();
        res.on('close', () => {
            if (!res.writableFinished) abort.abort();
        });
        try {
            const body = req.method === 'POST' ? await readBody(req) : undefined;
            const request = toWebRequest(req, body, abort.signal, httpServer.address().port);
            const response = await serve(request);
            await writeWebResponse(res, response);
        } catch (e) {
            logErr('request failed:', e);
            if (!res.headersSent) {
                const status = e?.status ?? 500;
                res.writeHead(status, { 'content-type': 'application/json' });
                res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null }));
            } else {
                res.destroy();
            }
        }
    });
    httpServer.keepAliveTimeout = 5000;

    await new Promise((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(port, host === 'localhost' ? '127.0.0.1' : host, resolve);
    });
    const actualPort = httpServer.address().port;
    process.stdout.write(`listening on http://127.0.0.1:${actualPort}/mcp\n`);

    const stop = async () => {
        for (const transport of sessions.values()) await transport.close().catch(() => {});
        await modern.close().catch(() => {});
        httpServer.closeAllConnections?.();
        httpServer.close(() => process.exit(0));
        setTimeout(() => process.exit(0), 2000).unref();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
}

// =================================================================== main ==
function parseArgs(argv) {
    const opts = { mode: undefined, port: undefined, host: '127.0.0.1' };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--stdio') opts.mode = 'stdio';
        else if (a === '--http') opts.mode = 'http';
        else if (a === '--port') opts.port = Number(argv[++i]);
        else if (a.startsWith('--port=')) opts.port = Number(a.slice(7));
        else if (a === '--host') opts.host = argv[++i];
        else if (a.startsWith('--host=')) opts.host = a.slice(7);
        else if (a === '--help' || a === '-h') opts.mode = 'help';
        else throw new Error(`unknown argument: ${a}`);
    }
    return opts;
}

const USAGE = 'usage: upstream.mjs --stdio | --http --port N [--host 127.0.0.1]\n';

try {
    const opts = parseArgs(process.argv.slice(2));
    if (opts.mode === 'stdio') {
        runStdio();
    } else if (opts.mode === 'http') {
        if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('--http needs --port N');
        await runHttp(opts.host, opts.port);
    } else if (opts.mode === 'help') {
        process.stdout.write(USAGE);
    } else {
        throw new Error('choose --stdio or --http');
    }
} catch (e) {
    process.stderr.write(`${errMessage(e)}\n${USAGE}`);
    process.exit(2);
}
