// toml-compare.mjs - compares toml-test tagged JSON, for scripts/toml-test.sh.
//
// Usage: node scripts/toml-compare.mjs LIST
// LIST has one case per line: "<name>\t<expected.json>\t<actual.json>".
// Prints "FAIL <name>: <path>: <reason>" for each mismatch; exits 0 when it
// could compare everything (mismatches are only reported), non-zero if it
// crashed. Comparison is semantic: key order
// does not matter, integers compare exactly (BigInt), floats numerically
// (nan equals nan, inf and -inf by sign), everything else as strings.
import { readFileSync } from 'node:fs';

function isLeaf(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) &&
    Object.keys(v).length === 2 && typeof v.type === 'string' && typeof v.value === 'string';
}

function parseFloatText(s) {
  const t = s.replace(/^\+/, '');
  if (t === 'inf') return Infinity;
  if (t === '-inf') return -Infinity;
  if (t === 'nan' || t === '-nan') return NaN;
  return Number(t.replace(/_/g, ''));
}

function same(a, b, path) {
  if (isLeaf(a) || isLeaf(b)) {
    if (!isLeaf(a) || !isLeaf(b)) return `${path}: expected ${JSON.stringify(a)}, got ${JSON.stringify(b)}`;
    if (a.type !== b.type) return `${path}: expected type ${a.type}, got ${b.type}`;
    if (a.type === 'integer') {
      let ok;
      try { ok = BigInt(a.value) === BigInt(b.value); } catch { ok = false; }
      return ok ? null : `${path}: expected integer ${a.value}, got ${b.value}`;
    }
    if (a.type === 'float') {
      const x = parseFloatText(a.value), y = parseFloatText(b.value);
      const ok = (Number.isNaN(x) && Number.isNaN(y)) || x === y;
      return ok ? null : `${path}: expected float ${a.value}, got ${b.value}`;
    }
    return a.value === b.value ? null
      : `${path}: expected ${a.type} ${JSON.stringify(a.value)}, got ${JSON.stringify(b.value)}`;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return `${path}: expected ${JSON.stringify(a)}, got ${JSON.stringify(b)}`;
    if (a.length !== b.length) return `${path}: expected ${a.length} elements, got ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const r = same(a[i], b[i], `${path}[${i}]`);
      if (r) return r;
    }
    return null;
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object')
    return `${path}: expected ${JSON.stringify(a)}, got ${JSON.stringify(b)}`;
  const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
  for (const k of ka) if (!(k in b)) return `${path}: missing key ${JSON.stringify(k)}`;
  for (const k of kb) if (!(k in a)) return `${path}: unexpected key ${JSON.stringify(k)}`;
  for (const k of ka) {
    const r = same(a[k], b[k], `${path}.${JSON.stringify(k)}`);
    if (r) return r;
  }
  return null;
}

const list = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean);
for (const line of list) {
  const [name, expectedPath, actualPath] = line.split('\t');
  let reason;
  try {
    const expected = JSON.parse(readFileSync(expectedPath, 'utf8'));
    let actual;
    try {
      actual = JSON.parse(readFileSync(actualPath, 'utf8'));
    } catch (e) {
      reason = `decoder output is not JSON (${e.message})`;
    }
    if (!reason) reason = same(expected, actual, '$');
  } catch (e) {
    reason = `cannot read expected JSON (${e.message})`;
  }
  if (reason) {
    console.log(`FAIL ${name}: ${reason}`);
  }
}
