// Checks that docs/troubleshooting.md explains the gateway's error messages.
//
// Extracts from src/**/*.c the format strings of every diagnostic a person
// can read on stderr:
//   - mg_log_error(...), mg_log_warn(...), mg_log(<level>, ...)   (runtime log)
//   - fprintf(stderr, ...)                                         (command line)
//   - snprintf(err, ...), tls_error(...)   (error texts that callers log,
//     "upstream x: <err>", "TLS: <err>")
//   - in src/config/: mg_schema_error, mg_schema_warning, error_at_key,
//     type_error, env_error, mg_diag_add, fail, set_msg   (configuration errors)
// Each message is matched on a stable fragment: its longest piece of literal
// text between printf conversions (messages with no piece of 10 characters or
// more, such as "%s: %s", are skipped). A message is covered when its
// fragment appears in docs/troubleshooting.md (whitespace and Markdown
// escapes normalised).
//
// tests/docs/messages.txt lists the fragments that must stay covered. Modes:
//   node tests/docs/messages.mjs            the docs-check step: exit 1 when a
//       listed fragment is missing from troubleshooting.md; messages in src/
//       that are not listed are printed as warnings only, so messages added
//       on other branches never fail CI before their documentation lands.
//   node tests/docs/messages.mjs --report   every message of src/ with its
//       location and whether troubleshooting.md covers it (exit 0).
//   node tests/docs/messages.mjs --update   rewrites messages.txt to every
//       fragment of src/ that troubleshooting.md covers today.
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const listFile = join(root, 'tests/docs/messages.txt');
const docFile = join(root, 'docs/troubleshooting.md');
const MIN_FRAGMENT = 10;

const everywhere = ['mg_log_error', 'mg_log_warn', 'mg_log', 'fprintf', 'snprintf', 'tls_error'];
const configOnly = ['mg_schema_error', 'mg_schema_warning', 'error_at_key', 'type_error', 'env_error', 'mg_diag_add', 'fail', 'set_msg'];

function cFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...cFiles(p));
    else if (name.endsWith('.c')) out.push(p);
  }
  return out;
}

// Blanks comments (not "//" inside string literals), keeping offsets and newlines.
function stripComments(s) {
  let out = '';
  for (let i = 0; i < s.length; ) {
    if (s[i] === '"' || s[i] === "'") {
      const q = s[i];
      let j = i + 1;
      while (j < s.length && s[j] !== q && s[j] !== '\n') j += s[j] === '\\' ? 2 : 1;
      out += s.slice(i, j + 1);
      i = j + 1;
    } else if (s.startsWith('/*', i)) {
      const j = s.indexOf('*/', i + 2);
      const end = j < 0 ? s.length : j + 2;
      out += s.slice(i, end).replace(/[^\n]/g, ' ');
      i = end;
    } else if (s.startsWith('//', i)) {
      let j = s.indexOf('\n', i);
      if (j < 0) j = s.length;
      out += ' '.repeat(j - i);
      i = j;
    } else out += s[i++];
  }
  return out;
}

// The C string literal starting at s[i] === '"': [text, end index].
function literal(s, i) {
  let out = '';
  for (i++; i < s.length && s[i] !== '"'; i++) {
    if (s[i] === '\\') {
      const c = s[++i];
      out += c === 'n' ? '\n' : c === 't' ? '\t' : c;
    } else out += s[i];
  }
  return [out, i + 1];
}

// The format of the call whose '(' is at s[i]: the longest run of adjacent
// string literals among its own arguments (not those of nested calls; a macro
// between literals, like PRIu64, counts as "%s"), or null when it has none.
function firstString(s, i) {
  let depth = 0;
  let best = null;
  for (let j = i; j < s.length; j++) {
    const c = s[j];
    if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return best;
    else if (c === ';') return best;
    else if (c === "'") j = s.indexOf("'", j + (s[j + 1] === '\\' ? 3 : 2));
    else if (c === '"') {
      let text = '';
      let k = j;
      for (;;) {
        const [t, end] = literal(s, k);
        text += t;
        k = end;
        const rest = s.slice(k).match(/^\s*([A-Z][A-Z0-9_]*\s*)?"/);
        if (!rest) break;
        if (rest[1]) text += '%s';
        k += rest[0].length - 1;
      }
      if (depth === 1 && (best === null || text.length > best.length)) best = text;
      j = k - 1;
    }
  }
  return best;
}

const CONV = /%[-+ #0]*(\d+|\*)?(\.(\d+|\*))?(hh|h|ll|l|z|j|t|L)?[diouxXfFeEgGcsp%]/g;
export function fragment(msg) {
  let best = '';
  for (const p of msg.split(CONV)) {
    if (typeof p !== 'string') continue;
    const t = p.replace(/\s+/g, ' ').trim();
    if (t.length > best.length) best = t;
  }
  return best.length >= MIN_FRAGMENT ? best : null;
}

export function extract() {
  const found = [];
  for (const file of cFiles(join(root, 'src'))) {
    const rel = relative(root, file);
    const s = stripComments(readFileSync(file, 'utf8'));
    const names = rel.startsWith('src/config/') ? [...everywhere, ...configOnly] : everywhere;
    const re = new RegExp(`\\b(${names.join('|')})\\s*\\(`, 'g');
    let m;
    while ((m = re.exec(s))) {
      const name = m[1];
      const open = m.index + m[0].length - 1;
      const head = s.slice(open + 1, open + 40);
      if (name === 'fprintf' && !/^\s*stderr\s*,/.test(head)) continue;
      if (name === 'snprintf' && !/^\s*err\s*,/.test(head)) continue;
      if (name === 'mg_log' && !/^\s*(MG_LOG_ERROR|MG_LOG_WARN|[a-z][^,]*\?[^,]*)\s*,/.test(head)) continue;
      const text = firstString(s, open);
      if (text === null) continue;
      const frag = fragment(text);
      if (!frag) continue;
      const line = s.slice(0, m.index).split('\n').length;
      found.push({ where: `${rel}:${line}`, text, frag });
    }
  }
  return found;
}

const norm = t => t.replaceAll('\\|', '|').replace(/\s+/g, ' ');

const mode = process.argv[2] || '';
const doc = norm(readFileSync(docFile, 'utf8'));
const covered = m => doc.includes(m.frag);
const msgs = extract();
const listed = new Set(
  readFileSync(listFile, 'utf8')
    .split('\n')
    .filter(l => l.trim() && !l.startsWith('#'))
);

if (mode === '--report') {
  let n = 0;
  for (const m of msgs) {
    if (!covered(m)) n++;
    console.log(`${covered(m) ? 'ok     ' : 'MISSING'} ${m.where}: ${JSON.stringify(m.text)}`);
  }
  console.log(`\n${msgs.length - n} of ${msgs.length} messages covered by docs/troubleshooting.md`);
  process.exit(0);
}
if (mode === '--update') {
  const frags = [...new Set(msgs.filter(covered).map(m => m.frag))].sort();
  writeFileSync(
    listFile,
    '# Fragments of error messages that docs/troubleshooting.md must explain.\n' +
      '# Generated by `node tests/docs/messages.mjs --update`; see docs/dev/testing.md.\n' +
      frags.join('\n') +
      '\n'
  );
  console.log(`messages.txt: ${frags.length} fragments`);
  process.exit(0);
}
let bad = 0;
for (const f of listed) {
  if (!doc.includes(f)) {
    console.error(`troubleshooting: docs/troubleshooting.md no longer explains the message "${f}" (listed in tests/docs/messages.txt)`);
    bad++;
  }
}
const unlisted = msgs.filter(m => !listed.has(m.frag));
for (const m of unlisted)
  console.log(`troubleshooting: warning: ${m.where}: ${JSON.stringify(m.text)} is ${covered(m) ? 'explained but not listed (run --update)' : 'not explained in docs/troubleshooting.md'}`);
if (bad) process.exit(1);
console.log(`troubleshooting: ${listed.size} listed messages explained${unlisted.length ? `, ${unlisted.length} warning(s)` : ''}`);
