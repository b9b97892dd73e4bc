// Checks that the documentation is true (run by `make docs-check`, part of `make test`):
//
//  1. docs/configuration.md embeds exactly what `mcp-guard config-reference` prints
//     (between <!-- BEGIN GENERATED REFERENCE --> and <!-- END GENERATED REFERENCE -->).
//  2. Every ```toml and ```yaml block in README.md and docs/**/*.md validates with
//     `mcp-guard validate` (a block without an upstream gets a minimal one appended,
//     so snippets can stay short). Precede a block with <!-- ci: invalid --> when it
//     shows a mistake on purpose (validate must then fail), or <!-- ci: skip: why -->.
//  3. Every ```sh block runs: the blocks of one document are joined into one bash
//     script (set -e) run in a fresh temporary directory with build/ on PATH, so a
//     page reads like a session. <!-- ci: skip: why --> excludes a block. The port
//     3000 in commands is replaced by a free port (MCP_GUARD_SERVER__PORT points the
//     gateway at it), so a local `make run` does not collide.
//  4. Every file in examples/ validates.
//  5. Links between documents resolve: every relative link in README.md and
//     docs/**/*.md names a file that exists, and its #anchor (or a same-page
//     #anchor) names a heading of that document (GitHub's slugs) or an
//     explicit <a id>/<a name>.
//  6. docs/troubleshooting.md explains the error messages listed in
//     tests/docs/messages.txt (tests/docs/messages.mjs; unlisted messages of
//     src/ are printed as warnings only, see docs/dev/testing.md).
//  7. Metrics (tests/docs/promql.mjs): the "Families" table of
//     docs/observability.md lists exactly the families src/ emits; every
//     ```promql block's expressions, every block marked
//     <!-- ci: prometheus-rules[: FILE] --> (a rule file, identical to FILE
//     when named), deploy/prometheus/*.yml and deploy/grafana/*.json parse
//     with Prometheus's PromQL grammar and select only those families and
//     their labels, with values the gateway can set (method, status, …).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { checkDashboard, checkExpr, checkRules, loadModel, promqlBlockExprs } from './promql.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.MCP_GUARD_BIN || join(root, 'build/mcp-guard');
const failures = [];
let checked = 0;

function fail(where, what) {
  failures.push(`${where}: ${what}`);
}

function mdFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...mdFiles(p));
    else if (name.endsWith('.md')) out.push(p);
  }
  return out;
}

function blocks(text) {
  const re = /(?:<!--\s*ci:\s*([^>]*?)\s*-->\s*\n)?```([a-z]*)\n([\s\S]*?)```/g;
  const out = [];
  let m;
  while ((m = re.exec(text))) {
    const line = text.slice(0, m.index).split('\n').length;
    out.push({ directive: m[1] || '', lang: m[2], body: m[3], line });
  }
  return out;
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

const minimalUpstream = {
  toml: '\n[upstream]\ncommand = "node"\n',
  yaml: '\nupstream:\n  command: node\n',
};

function validate(where, lang, body, expectValid) {
  const dir = mkdtempSync(join(tmpdir(), 'mg-docs-'));
  try {
    const hasUpstream = lang === 'toml' ? /^\[\[?upstream/m.test(body) : /^upstream:/m.test(body);
    const file = join(dir, `snippet.${lang}`);
    writeFileSync(file, hasUpstream ? body : body + minimalUpstream[lang]);
    const r = spawnSync(bin, ['--config', file, 'validate', '--quiet'], {
      encoding: 'utf8',
      env: { ...process.env, DOCS_SECRET: '0123456789abcdef0123456789abcdef' },
    });
    checked++;
    if (expectValid && r.status !== 0) fail(where, `config example does not validate:\n${r.stderr}`);
    if (!expectValid && r.status !== 1) fail(where, `example marked invalid but validate exited ${r.status}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runShell(doc, shBlocks) {
  if (!shBlocks.length) return;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mg-docs-run-'));
  const script = ['set -euo pipefail', `cd ${JSON.stringify(dir)}`];
  for (const b of shBlocks) {
    script.push(`echo "--- ${doc}:${b.line}" >&2`);
    script.push(b.body.replaceAll('127.0.0.1:3000', `127.0.0.1:${port}`).replaceAll('localhost:3000', `localhost:${port}`));
  }
  // Whatever a page started in the background is stopped here.
  script.unshift('trap \'jobs -p | xargs -r kill 2>/dev/null; wait 2>/dev/null || true\' EXIT');
  const r = spawnSync('bash', ['-c', script.join('\n')], {
    encoding: 'utf8',
    timeout: 180_000,
    env: {
      ...process.env,
      PATH: `${dirname(bin)}:${process.env.PATH}`,
      MCP_GUARD_SERVER__PORT: String(port),
      REPO: root,
    },
  });
  checked += shBlocks.length;
  if (r.status !== 0) {
    fail(doc, `shell blocks failed (exit ${r.status}${r.signal ? ', ' + r.signal : ''}):\n${(r.stderr || '').slice(-3000)}\n${(r.stdout || '').slice(-1500)}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

// 1. generated reference
const confDoc = join(root, 'docs/configuration.md');
const conf = readFileSync(confDoc, 'utf8');
const begin = '<!-- BEGIN GENERATED REFERENCE -->\n';
const end = '<!-- END GENERATED REFERENCE -->';
const i = conf.indexOf(begin), j = conf.indexOf(end);
if (i < 0 || j < 0) fail('docs/configuration.md', 'generated reference markers missing');
else {
  const want = execFileSync(bin, ['config-reference'], { encoding: 'utf8' });
  if (conf.slice(i + begin.length, j) !== want)
    fail('docs/configuration.md', 'reference is out of date: run `make docs-reference`');
  checked++;
}

// 7 (first part). the metric families
const metrics = loadModel(root, fail);

// 2 + 3. blocks in README and docs
const docs = [join(root, 'README.md'), ...mdFiles(join(root, 'docs'))];
for (const file of docs) {
  const rel = relative(root, file);
  const text = readFileSync(file, 'utf8');
  const sh = [];
  for (const b of blocks(text)) {
    const where = `${rel}:${b.line}`;
    if (b.lang === 'promql') {
      for (const e of promqlBlockExprs(b.body)) {
        checked++;
        checkExpr(e.text, `${rel}:${b.line + 1 + e.line}`, metrics, fail);
      }
      continue;
    }
    if (b.directive.startsWith('prometheus-rules')) {
      const same = b.directive.match(/^prometheus-rules:\s*(\S+)$/);
      if (same && readFileSync(join(root, same[1]), 'utf8') !== b.body)
        fail(where, `differs from ${same[1]}: the page shows that file as it is`);
      checked += checkRules(b.body, where, metrics, fail);
      continue;
    }
    if (b.directive.startsWith('skip')) {
      if (!/skip:\s*\S/.test(b.directive)) fail(where, '"ci: skip" needs a reason ("ci: skip: why")');
      continue;
    }
    if (b.lang === 'toml' || b.lang === 'yaml') validate(where, b.lang, b.body, b.directive !== 'invalid');
    else if (b.lang === 'sh') sh.push(b);
  }
  if (rel === 'README.md') continue; // `make run` / `make test` are what CI itself runs
  await runShell(rel, sh);
}

// 4. examples
for (const name of readdirSync(join(root, 'examples'))) {
  const m = name.match(/\.(toml|yaml)$/);
  if (m) validate(`examples/${name}`, m[1], readFileSync(join(root, 'examples', name), 'utf8'), true);
}

// 5. links and anchors
function slugs(text) {
  const out = new Set();
  const seen = new Map();
  const noCode = text.replace(/^```[\s\S]*?^```/gm, '');
  for (const m of noCode.matchAll(/^#{1,6}\s+(.*?)\s*#*\s*$/gm)) {
    let slug = m[1]
      .replace(/<[^>]+>/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(slug) || 0;
    seen.set(slug, n + 1);
    out.add(n ? `${slug}-${n}` : slug);
  }
  for (const m of text.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(m[1]);
  return out;
}
const slugCache = new Map();
const slugsOf = file => {
  if (!slugCache.has(file)) slugCache.set(file, slugs(readFileSync(file, 'utf8')));
  return slugCache.get(file);
};
for (const file of docs) {
  const rel = relative(root, file);
  const text = readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, m => m.replace(/[^\n]/g, ' '));
  for (const m of text.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    const target = m[1];
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
    const line = text.slice(0, m.index).split('\n').length;
    const [path, anchor] = target.split('#');
    const dest = path ? resolve(dirname(file), decodeURIComponent(path)) : file;
    checked++;
    if (!existsSync(dest)) {
      fail(`${rel}:${line}`, `link to ${target}: ${relative(root, dest)} does not exist`);
      continue;
    }
    if (anchor !== undefined && dest.endsWith('.md') && !slugsOf(dest).has(anchor))
      fail(`${rel}:${line}`, `link to ${target}: no heading "#${anchor}" in ${relative(root, dest)}`);
  }
}

// 7 (rest). the rule files and dashboards the deployment ships
for (const [dir, ext, check] of [
  ['deploy/prometheus', /\.ya?ml$/, checkRules],
  ['deploy/grafana', /\.json$/, checkDashboard],
]) {
  if (!existsSync(join(root, dir))) continue;
  for (const name of readdirSync(join(root, dir)).filter(n => ext.test(n))) {
    const rel = `${dir}/${name}`;
    checked += check(readFileSync(join(root, rel), 'utf8'), rel, metrics, fail);
  }
}

// 6. troubleshooting.md against the messages of src/
{
  const r = spawnSync(process.execPath, [join(root, 'tests/docs/messages.mjs')], { encoding: 'utf8' });
  process.stdout.write(r.stdout);
  checked++;
  if (r.status !== 0) fail('docs/troubleshooting.md', r.stderr.trim());
}

if (failures.length) {
  console.error(`docs-check: ${failures.length} problem(s)\n\n` + failures.join('\n\n'));
  process.exit(1);
}
console.log(`docs-check: ${checked} examples and command blocks ok`);
