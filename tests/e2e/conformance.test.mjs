// MCP conformance through mcp-guard: every check of the official conformance
// suite that the test upstream passes directly must also pass through the
// gateway, with the upstream behind it over stdio and over Streamable HTTP
// (`transport = "http"`). Needs MCP_GUARD_BIN (path to the built gateway);
// skipped without it.
//
//   MCP_GUARD_BIN=build/mcp-guard node --test tests/e2e/
//
// CONFORMANCE_REPORT=<file> additionally writes the Markdown comparison table.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runConformance } from '../conformance/run.mjs';

const gatewayBin = process.env.MCP_GUARD_BIN;

test(
    'MCP conformance: mcp-guard passes every check the upstream passes directly',
    {
        skip: gatewayBin ? false : 'MCP_GUARD_BIN is not set (e.g. MCP_GUARD_BIN=build/mcp-guard); the conformance comparison needs the gateway binary',
        timeout: 11 * 60 * 1000 // the harness's own hard limit is 10 minutes
    },
    async t => {
        const result = await runConformance({ gatewayBin, report: process.env.CONFORMANCE_REPORT || undefined });
        for (const target of result.targets) {
            for (const total of target.totals) {
                t.diagnostic(
                    `${target.id} upstream, ${total.leg}: ${total.directPass}/${total.checks} checks pass directly, ${total.gatewayPass}/${total.checks} through mcp-guard, ${total.regressions} regression(s)`
                );
            }
            t.diagnostic(`${target.label}: ${Math.round(target.seconds)} s`);
        }
        assert.deepEqual(
            result.targets.map(x => x.id),
            ['stdio', 'http'],
            'both gateway targets ran (upstream over stdio and over Streamable HTTP)'
        );
        const lines = result.regressions.map(
            r => `[${r.target} upstream] ${r.leg} ${r.scenario} ${r.key} -> ${r.status}${r.errorMessage ? `: ${r.errorMessage.slice(0, 200)}` : ''}`
        );
        assert.equal(
            result.regressions.length,
            0,
            `${result.regressions.length} check(s) pass directly but not through mcp-guard (results kept in ${result.workDir}):\n${lines.join('\n')}${result.gatewayDied ? `\n${result.gatewayDied}` : ''}`
        );
    }
);
