// PromQL, alert rules and dashboards that name mcp-guard's metrics, checked
// (by tests/docs/check.mjs) the way Prometheus and Grafana would take them:
//
//  - every expression parses with Prometheus's own PromQL grammar
//    (@prometheus-io/lezer-promql, the parser of Prometheus's web UI);
//  - every metric it selects is a family the gateway emits (a histogram's
//    _bucket, _sum and _count included), and every label it matches or
//    groups by is one of that family's (or le, instance, job);
//  - rule files are Prometheus rule groups (promtool's checks: names, one of
//    alert or record, durations, string labels and annotations, no unknown
//    keys);
//  - dashboards are Grafana JSON whose panels' targets hold such
//    expressions (Grafana's $__rate_interval and friends read as 5m).
//
// The families are those of docs/observability.md's "Families" table, which
// must list exactly the names src/ defines, so a renamed or new metric fails
// here until the table, the rules and the dashboard follow. Labels with a
// fixed vocabulary (method, status, result, provider, scope, allowed,
// error_type, network_transport, outcome) must be matched against values the gateway
// can emit: the name tables of src/metrics/metrics.c (an alternation of
// literals in a =~ regex is checked word by word).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { parser } from '@prometheus-io/lezer-promql';
import YAML from 'yaml';

const FAMILY_RE = /"((?:mcp_guard|mcp_server|mcp_client|process)_[a-z0-9_]+)"/g;
const TARGET_LABELS = ['instance', 'job'];

function cFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...cFiles(p));
    else if (/\.[ch]$/.test(name)) out.push(p);
  }
  return out;
}

/* The metric families: those src/ names, and the documented table
 * (name -> { type, labels }). Mismatches go to fail(). */
function loadFamilies(root, fail) {
  const source = new Set();
  for (const f of cFiles(join(root, 'src'))) for (const m of readFileSync(f, 'utf8').matchAll(FAMILY_RE)) source.add(m[1]);
  const doc = 'docs/observability.md';
  const text = readFileSync(join(root, doc), 'utf8');
  const start = text.indexOf('### Families');
  const table = new Map();
  if (start < 0) {
    fail(doc, 'no "### Families" table');
    return table;
  }
  const lines = text.slice(start).split('\n');
  let line = text.slice(0, start).split('\n').length;
  for (const l of lines.slice(1)) {
    line++;
    if (/^#{1,3} /.test(l)) break;
    const cells = l.split('|').map(c => c.trim());
    if (cells.length < 5 || !cells[1].startsWith('`')) continue;
    const names = [...cells[1].matchAll(/`([a-z0-9_]+)`/g)].map(m => m[1]);
    const labels = new Set([...cells[3].matchAll(/`([a-z_]+)`/g)].map(m => m[1]));
    for (const n of names) {
      if (table.has(n)) fail(`${doc}:${line}`, `family ${n} is listed twice`);
      table.set(n, { type: cells[2], labels });
    }
  }
  for (const n of source) if (!table.has(n)) fail(doc, `family ${n} is emitted (src/) but not in the "Families" table`);
  for (const n of table.keys()) if (!source.has(n)) fail(doc, `family ${n} is in the "Families" table but nothing in src/ emits it`);
  return table;
}

/* The string literals of the array `name` in C source `text`. */
function cArray(text, name) {
  const m = text.match(new RegExp(`static const char \\*const ${name}\\[[^\\]]*\\] = \\{([\\s\\S]*?)\\};`));
  return m ? [...m[1].matchAll(/"([^"]*)"/g)].map(x => x[1]) : null;
}

/* label -> Set of values the gateway can emit, or a function for open ones. */
function loadVocabulary(root, fail) {
  const file = 'src/metrics/metrics.c';
  const text = readFileSync(join(root, file), 'utf8');
  const arr = name => {
    const v = cArray(text, name);
    if (!v || !v.length) fail(file, `tests/docs/promql.mjs cannot read the array ${name}`);
    return v ?? [];
  };
  const methods = new Set(arr('method_names'));
  const classes = new Set(['', ...arr('classes')]);
  return {
    method: methods,
    mcp_method_name: methods,
    status: new Set(arr('status_names')),
    // auth decisions, and the configuration reloads' success/failure (gateway/observe.c)
    result: new Set([...arr('auth_names'), 'success', 'failure']),
    provider: new Set(arr('provider_names')),
    scope: new Set(arr('scope_names')),
    allowed: new Set(['true', 'false']),
    network_transport: new Set(['pipe', 'tcp']),
    // mcp_guard_tool_calls_total (render_tools in metrics.c)
    outcome: new Set(arr('outcomes')),
    // a class, or a JSON-RPC error code
    error_type: v => classes.has(v) || /^-?\d+$/.test(v)
  };
}

/* Whether `value` (the matcher's string, unquoted) can match what `label`
 * takes; regex matchers are checked when they are an alternation of plain
 * words, else let through. */
function valueOk(vocab, label, op, value) {
  const known = vocab[label];
  if (!known) return true;
  const ok = v => (typeof known === 'function' ? known(v) : known.has(v));
  if (op === '=' || op === '!=') return ok(value);
  const words = value.split('|');
  if (!words.every(w => /^[A-Za-z0-9_/.-]*$/.test(w))) return true;
  return words.every(ok);
}

/* The family a selected series name belongs to, and its extra label; null when none. */
function familyOf(families, name) {
  if (families.has(name)) return { fam: families.get(name), extra: [] };
  const m = name.match(/^(.*)_(bucket|sum|count)$/);
  if (m && families.get(m[1])?.type === 'histogram') return { fam: families.get(m[1]), extra: m[2] === 'bucket' ? ['le'] : [] };
  return null;
}

/* Grafana's built-in variables, as Prometheus would receive them. */
function grafanaExpand(expr) {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}?/g, (all, v) => (v.startsWith('__') ? '1m' : `var_${v}`));
}

/* What the checks compare against: the families, every label any of them
 * has, and the values of the fixed-vocabulary labels. */
export function loadModel(root, fail) {
  const families = loadFamilies(root, fail);
  const labels = new Set([...TARGET_LABELS, 'le']);
  for (const f of families.values()) for (const l of f.labels) labels.add(l);
  return { families, labels, vocab: loadVocabulary(root, fail) };
}

/* Checks one PromQL expression against `model` (loadModel); returns the
 * number of problems. */
export function checkExpr(expr, where, model, fail) {
  const { families, labels, vocab } = model;
  let problems = 0;
  const bad = what => {
    problems++;
    fail(where, `${what} in: ${expr.trim()}`);
  };
  const tree = parser.parse(expr);
  let selector = null; // the family of the VectorSelector being walked
  tree.iterate({
    enter: n => {
      if (n.type.isError) {
        bad(`PromQL syntax error at column ${n.from + 1}`);
        return false;
      }
      const text = expr.slice(n.from, n.to);
      if (n.name === 'VectorSelector') {
        const id = n.node.getChild('Identifier');
        if (!id) {
          selector = null;
          return;
        }
        const name = expr.slice(id.from, id.to);
        const f = familyOf(families, name);
        if (!f && !TARGET_LABELS.includes(name) && name !== 'up') bad(`unknown metric ${name}`);
        selector = f ? { name, labels: new Set([...f.fam.labels, ...f.extra, ...TARGET_LABELS]) } : null;
      } else if (n.name === 'LabelName') {
        const parent = n.node.parent?.name;
        if (parent === 'GroupingLabels') {
          if (!labels.has(text)) bad(`no family has a label "${text}"`);
        } else if (selector && !selector.labels.has(text)) {
          bad(`${selector.name} has no label "${text}"`);
        } else if (selector) {
          const op = n.node.nextSibling;
          const lit = op?.nextSibling;
          if (op?.name === 'MatchOp' && lit?.name === 'StringLiteral') {
            const raw = expr.slice(lit.from, lit.to);
            let value;
            try {
              value = raw.startsWith('`') ? raw.slice(1, -1) : JSON.parse(raw.startsWith("'") ? `"${raw.slice(1, -1)}"` : raw);
            } catch {
              value = raw.slice(1, -1);
            }
            const opText = expr.slice(op.from, op.to);
            if (!valueOk(vocab, text, opText, value)) bad(`${text}${opText}"${value}": the gateway never sets ${text} to that`);
          }
        }
      }
    },
    leave: n => {
      if (n.name === 'VectorSelector') selector = null;
    }
  });
  return problems;
}

/* The expressions of a ```promql block: separated by blank or # lines; an
 * indented line continues the one before. */
export function promqlBlockExprs(body) {
  const out = [];
  let cur = null;
  body.split('\n').forEach((l, i) => {
    if (!l.trim() || l.trim().startsWith('#')) {
      cur = null;
      return;
    }
    if (cur && /^\s/.test(l)) cur.text += `\n${l}`;
    else out.push((cur = { text: l, line: i }));
  });
  return out;
}

const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;
const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const RECORD_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function stringMap(v, where, what, fail) {
  if (v === undefined) return;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail(where, `${what} must be a map`);
  for (const [k, x] of Object.entries(v)) {
    if (!NAME.test(k)) fail(where, `${what}: "${k}" is not a valid label name`);
    if (typeof x !== 'string') fail(where, `${what}.${k} must be a string`);
    else if ((x.match(/\{\{/g) ?? []).length !== (x.match(/\}\}/g) ?? []).length) fail(where, `${what}.${k}: unbalanced {{ }}`);
  }
}

/* A Prometheus rule file (YAML text): what `promtool check rules` checks,
 * and each expression as checkExpr does. Returns the number of rules. */
export function checkRules(text, where, model, fail) {
  let doc;
  try {
    doc = YAML.parse(text, { uniqueKeys: true, strict: true });
  } catch (e) {
    fail(where, `rule file is not YAML: ${e.message}`);
    return 0;
  }
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.groups)) {
    fail(where, 'a rule file is a map with "groups" (a list)');
    return 0;
  }
  for (const k of Object.keys(doc)) if (k !== 'groups') fail(where, `unknown key "${k}"`);
  const groupNames = new Set();
  let rules = 0;
  for (const [gi, g] of doc.groups.entries()) {
    const gw = `${where}: groups[${gi}]`;
    for (const k of Object.keys(g ?? {})) if (!['name', 'interval', 'limit', 'query_offset', 'labels', 'rules'].includes(k)) fail(gw, `unknown key "${k}"`);
    if (typeof g?.name !== 'string' || !g.name) fail(gw, 'needs a name');
    else if (groupNames.has(g.name)) fail(gw, `group name "${g.name}" repeated`);
    groupNames.add(g?.name);
    if (g?.interval !== undefined && !DURATION.test(String(g.interval))) fail(gw, `interval "${g.interval}" is not a duration`);
    if (!Array.isArray(g?.rules) || !g.rules.length) {
      fail(gw, 'needs rules (a list)');
      continue;
    }
    for (const [ri, r] of g.rules.entries()) {
      const rw = `${gw}.rules[${ri}]${r?.alert ? ` (${r.alert})` : r?.record ? ` (${r.record})` : ''}`;
      rules++;
      for (const k of Object.keys(r ?? {})) if (!['alert', 'record', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'].includes(k)) fail(rw, `unknown key "${k}"`);
      if ((r?.alert === undefined) === (r?.record === undefined)) fail(rw, 'needs exactly one of alert and record');
      if (r?.alert !== undefined && !NAME.test(String(r.alert))) fail(rw, `"${r.alert}" is not a valid alert name`);
      if (r?.record !== undefined && !RECORD_NAME.test(String(r.record))) fail(rw, `"${r.record}" is not a valid metric name`);
      if (r?.record !== undefined && (r.for !== undefined || r.annotations !== undefined)) fail(rw, 'a recording rule has no for or annotations');
      for (const k of ['for', 'keep_firing_for']) if (r?.[k] !== undefined && !DURATION.test(String(r[k]))) fail(rw, `${k} "${r[k]}" is not a duration`);
      stringMap(r?.labels, rw, 'labels', fail);
      stringMap(r?.annotations, rw, 'annotations', fail);
      if (typeof r?.expr !== 'string' || !r.expr.trim()) fail(rw, 'needs an expr (a string)');
      else checkExpr(r.expr, rw, model, fail);
    }
  }
  return rules;
}

/* A Grafana dashboard (JSON text): its panels (rows' included) and their
 * Prometheus targets. Returns the number of expressions checked. */
export function checkDashboard(text, where, model, fail) {
  let d;
  try {
    d = JSON.parse(text);
  } catch (e) {
    fail(where, `not JSON: ${e.message}`);
    return 0;
  }
  for (const k of ['title', 'panels', 'schemaVersion', 'uid']) if (d[k] === undefined) fail(where, `dashboard without "${k}"`);
  const panels = [];
  const walk = ps => {
    for (const p of ps ?? []) {
      panels.push(p);
      walk(p.panels);
    }
  };
  walk(d.panels);
  const ids = new Set();
  let n = 0;
  for (const p of panels) {
    const pw = `${where}: panel "${p.title ?? p.id}"`;
    if (ids.has(p.id)) fail(pw, `panel id ${p.id} repeated`);
    ids.add(p.id);
    if (p.type === 'row') continue;
    if (!p.gridPos) fail(pw, 'no gridPos');
    if (!Array.isArray(p.targets) || !p.targets.length) {
      if (p.type !== 'text') fail(pw, 'no targets');
      continue;
    }
    for (const t of p.targets) {
      if (typeof t.expr !== 'string' || !t.expr.trim()) {
        fail(pw, `target ${t.refId ?? '?'} has no expr`);
        continue;
      }
      n++;
      checkExpr(grafanaExpand(t.expr), `${pw} target ${t.refId ?? '?'}`, model, fail);
    }
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type === 'query' && typeof (v.query?.query ?? v.query) === 'string') {
      const q = v.query?.query ?? v.query;
      const m = q.match(/^label_values\((.*),\s*([a-z_]+)\)$/);
      if (!m) fail(`${where}: variable ${v.name}`, `query "${q}" is not label_values(selector, label)`);
      else {
        n++;
        checkExpr(grafanaExpand(m[1]), `${where}: variable ${v.name}`, model, fail);
        const sel = familyOf(model.families, m[1].replace(/\{.*$/, '').trim());
        if (sel && !sel.fam.labels.has(m[2]) && !TARGET_LABELS.includes(m[2])) fail(`${where}: variable ${v.name}`, `${m[1]} has no label "${m[2]}"`);
      }
    }
  }
  return n;
}
