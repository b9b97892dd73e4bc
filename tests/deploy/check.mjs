// Offline checks of deploy/ (run by `make deploy-check`, part of `make test`):
//
//  1. `make install` into a scratch prefix lays out every file, and
//     `make uninstall` removes them again (the configuration stays).
//  2. The installed systemd unit passes `systemd-analyze verify` with no
//     message at all (its man: links resolve to the installed pages). Skipped,
//     with a message, where systemd-analyze is missing or cannot verify even
//     a trivial unit (some containers).
//  3. Both man pages render with `man --warnings` and `groff -ww` without a
//     warning, mcp-guard(1) documents every command and option that --help
//     lists, and the generated reference in mcp-guard.toml(5) is what
//     `mcp-guard config-reference --man` prints (else: `make man-reference`).
//  4. Every YAML file under deploy/ parses (build/yaml-decoder, the gateway's
//     own YAML parser); Kubernetes objects have apiVersion, kind and
//     metadata.name; each kustomization (the base, the components) lists
//     every manifest beside it and names only files that exist; the
//     Prometheus Operator component's ServiceMonitor selects the base's
//     Service, on one of its ports; `kubectl kustomize` builds the base when
//     kubectl is here.
//  5. The configurations shipped in deploy/ validate with the environment
//     the manifests give them, and the Secret's placeholders do not (the
//     gateway refuses to start until they are replaced).
//  6. The Docker build context is complete: every COPY source of the
//     Dockerfile exists and is not excluded by .dockerignore, every stage
//     named in --from exists, every file taken from the build stage's
//     `make install DESTDIR=/out` is produced by it (replayed here);
//     compose.yaml names that Dockerfile and target.
//     With DEPLOY_DOCKER_BUILD=1 and a reachable Docker daemon, the image is
//     built too (network needed).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const build = resolve(root, process.env.BUILD || 'build');
const bin = join(build, 'mcp-guard');
const yamlDecoder = join(build, 'yaml-decoder');
const failures = [];
const notes = [];
let checked = 0;

const fail = (where, what) => failures.push(`${where}: ${what}`);
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', cwd: root, ...opts });
const have = cmd => run('sh', ['-c', `command -v ${cmd}`]).status === 0;
const scratch = mkdtempSync(join(tmpdir(), 'mg-deploy-'));

// ---- 1. install / uninstall ---------------------------------------------------------
const prefix = join(scratch, 'usr');
const etc = join(scratch, 'etc');
const makeVars = [`BUILD=${relative(root, build) || '.'}`, `PREFIX=${prefix}`, `SYSCONFDIR=${etc}`];
const expected = [
  'usr/bin/mcp-guard',
  'usr/share/man/man1/mcp-guard.1',
  'usr/share/man/man5/mcp-guard.toml.5',
  'usr/share/doc/mcp-guard/mcp-guard.toml.example',
  'usr/share/doc/mcp-guard/prometheus/mcp-guard.rules.yml',
  'usr/share/doc/mcp-guard/grafana/mcp-guard.json',
  'usr/lib/systemd/system/mcp-guard.service',
  'usr/lib/sysusers.d/mcp-guard.conf',
  'etc/logrotate.d/mcp-guard',
  'etc/mcp-guard/mcp-guard.toml',
];
let r = run('make', ['--no-print-directory', 'install', ...makeVars]);
if (r.status !== 0) fail('make install', r.stderr + r.stdout);
for (const f of expected) {
  if (!existsSync(join(scratch, f))) fail('make install', `${f} missing`);
  checked++;
}
const unit = join(prefix, 'lib/systemd/system/mcp-guard.service');
if (existsSync(unit) && !readFileSync(unit, 'utf8').includes(`ExecStart=${prefix}/bin/mcp-guard --config ${etc}/mcp-guard/mcp-guard.toml run`))
  fail('make install', 'the installed unit does not point at the installed binary and configuration');
r = run(join(prefix, 'bin/mcp-guard'), ['--config', join(etc, 'mcp-guard/mcp-guard.toml'), 'validate', '--quiet']);
if (r.status !== 0) fail('make install', `the installed configuration does not validate:\n${r.stderr}`);

// ---- 2. systemd-analyze verify ------------------------------------------------------
if (!have('systemd-analyze')) {
  notes.push('systemd-analyze not found: the unit was NOT verified (apt-get install systemd)');
} else {
  const probe = join(scratch, 'mg-probe.service');
  writeFileSync(probe, '[Service]\nExecStart=/bin/true\n');
  const p = run('systemd-analyze', ['verify', '--man=no', probe]);
  if (p.status !== 0 || p.stderr.trim()) {
    notes.push(`systemd-analyze cannot verify units here (a trivial unit fails: ${p.stderr.trim().split('\n')[0]}): the unit was NOT verified`);
  } else if (existsSync(unit)) {
    const v = run('systemd-analyze', ['verify', unit], { env: { ...process.env, MANPATH: `${prefix}/share/man:` } });
    if (v.status !== 0 || v.stderr.trim() || v.stdout.trim()) fail('deploy/systemd/mcp-guard.service', `systemd-analyze verify:\n${v.stderr}${v.stdout}`);
    checked++;
  }
}

// ---- 3. man pages ---------------------------------------------------------------------
for (const page of ['deploy/man/mcp-guard.1', 'deploy/man/mcp-guard.toml.5']) {
  if (have('man')) {
    const m = run('man', ['--warnings', '-l', page], { env: { ...process.env, LC_ALL: 'C.UTF-8', MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' } });
    if (m.status !== 0 || m.stderr.trim()) fail(page, `man --warnings:\n${m.stderr}`);
    checked++;
  } else notes.push(`man not found: ${page} NOT rendered with man (apt-get install man-db)`);
  if (have('groff')) {
    const g = run('groff', ['-man', '-Tutf8', '-ww', '-z', page], { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    if (g.status !== 0 || g.stderr.trim()) fail(page, `groff -ww:\n${g.stderr}`);
    checked++;
  } else notes.push(`groff not found: ${page} NOT checked with groff (apt-get install groff-base)`);
}
// mcp-guard(1) names every command of `mcp-guard --help` (as a .SS) and every
// option of `mcp-guard <command> --help`.
{
  const page = readFileSync(join(root, 'deploy/man/mcp-guard.1'), 'utf8');
  const help = run(bin, ['--help']).stdout;
  const cmds = [...(help.split('Commands:\n')[1] || '').split('\n\n')[0].matchAll(/^  (\S+)/gm)].map(m => m[1]);
  if (!cmds.length) fail('deploy/man/mcp-guard.1', 'cannot read the commands from mcp-guard --help');
  for (const c of cmds) {
    checked++;
    if (!page.includes(`.SS ${c.replaceAll('-', '\\-')}\n`)) fail('deploy/man/mcp-guard.1', `command ${c} has no .SS section (see mcp-guard --help)`);
    const opts = [...run(bin, [c, '--help']).stdout.matchAll(/^  --([a-z-]+)/gm)].map(m => m[1]);
    for (const o of opts)
      if (!page.includes(`\\-\\-${o.replaceAll('-', '\\-')}`)) fail('deploy/man/mcp-guard.1', `option --${o} of ${c} is not documented (see mcp-guard ${c} --help)`);
  }
}
{
  const page = readFileSync(join(root, 'deploy/man/mcp-guard.toml.5'), 'utf8');
  const b = '.\\" BEGIN GENERATED REFERENCE\n', e = '.\\" END GENERATED REFERENCE';
  const i = page.indexOf(b), j = page.indexOf(e);
  const want = run(bin, ['config-reference', '--man']).stdout;
  if (i < 0 || j < 0) fail('deploy/man/mcp-guard.toml.5', 'generated reference markers missing');
  else if (page.slice(i + b.length, j) !== want) fail('deploy/man/mcp-guard.toml.5', 'reference is out of date: run `make man-reference`');
  checked++;
}

// ---- 4. YAML and Kubernetes ---------------------------------------------------------------
function yamlFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(name)) out.push(p);
  }
  return out;
}
// toml-test tagged JSON -> plain values.
const plain = v =>
  Array.isArray(v) ? v.map(plain) : v && typeof v === 'object' ? ('type' in v && 'value' in v && Object.keys(v).length === 2 ? v.value : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))) : v;
function parseYaml(file) {
  const d = run(yamlDecoder, [file]);
  checked++;
  if (d.status !== 0) {
    fail(relative(root, file), `YAML does not parse: ${d.stderr.trim()}`);
    return null;
  }
  return plain(JSON.parse(d.stdout));
}
const k8sRoot = join(root, 'deploy/kubernetes');
const k8sDir = join(k8sRoot, 'base');
const k8sDocs = new Map(); // path -> parsed object, under deploy/kubernetes
for (const file of yamlFiles(join(root, 'deploy'))) {
  const doc = parseYaml(file);
  if (!doc || !file.startsWith(k8sRoot + '/')) continue;
  k8sDocs.set(file, doc);
  const rel = relative(root, file);
  if (!doc.apiVersion || !doc.kind) fail(rel, 'apiVersion or kind missing');
  if (doc.kind === 'Kustomization' || doc.kind === 'Component') {
    const listed = new Set([...(doc.resources || []), ...(doc.configMapGenerator || []).flatMap(g => g.files || [])]);
    for (const f of listed) if (!existsSync(join(dirname(file), f))) fail(rel, `names ${f}, which does not exist`);
    for (const f of readdirSync(dirname(file)))
      if (/\.ya?ml$/.test(f) && f !== 'kustomization.yaml' && !listed.has(f)) fail(rel, `${f} is not listed in resources`);
  } else if (!doc.metadata?.name) fail(rel, 'metadata.name missing');
}
// The hardening the base promises (docs/deployment.md#kubernetes).
{
  const d = parseYaml(join(k8sDir, 'deployment.yaml'));
  const pod = d?.spec?.template?.spec;
  const c = pod?.containers?.[0];
  const want = [
    ['pod runAsNonRoot', String(pod?.securityContext?.runAsNonRoot) === 'true'],
    ['pod seccompProfile RuntimeDefault', pod?.securityContext?.seccompProfile?.type === 'RuntimeDefault'],
    ['readOnlyRootFilesystem', String(c?.securityContext?.readOnlyRootFilesystem) === 'true'],
    ['allowPrivilegeEscalation false', String(c?.securityContext?.allowPrivilegeEscalation) === 'false'],
    ['capabilities drop ALL', JSON.stringify(c?.securityContext?.capabilities?.drop) === '["ALL"]'],
    ['livenessProbe on /live', c?.livenessProbe?.httpGet?.path === '/live'],
    ['readinessProbe on /ready', c?.readinessProbe?.httpGet?.path === '/ready'],
    ['a memory limit', !!c?.resources?.limits?.memory],
  ];
  for (const [what, ok] of want) {
    checked++;
    if (!ok) fail('deploy/kubernetes/base/deployment.yaml', `expected ${what}`);
  }
}
// The Prometheus Operator component scrapes what the base serves: its
// ServiceMonitor selects the base's Service by the labels the base gives all
// its objects, on a port that Service has, at the path the gateway serves.
{
  const rel = 'deploy/kubernetes/components/prometheus-operator/servicemonitor.yaml';
  const sm = k8sDocs.get(join(root, rel));
  const svc = k8sDocs.get(join(k8sDir, 'service.yaml'));
  const base = k8sDocs.get(join(k8sDir, 'kustomization.yaml'));
  const common = Object.assign({}, ...(base?.labels || []).map(l => l.pairs || {}));
  const sel = sm?.spec?.selector?.matchLabels || {};
  const ports = new Set((svc?.spec?.ports || []).map(p => p.name));
  const want = [
    ['a ServiceMonitor', sm?.kind === 'ServiceMonitor'],
    ["a selector made of the base's common labels", Object.keys(sel).length > 0 && Object.entries(sel).every(([k, v]) => common[k] === v)],
    ["endpoints on ports of the base's Service", (sm?.spec?.endpoints || []).length > 0 && sm.spec.endpoints.every(e => ports.has(e.port))],
    ['the path /metrics (the default [metrics] path)', (sm?.spec?.endpoints || []).every(e => e.path === '/metrics')],
    ['a bearer credential (the base requires one to scrape)', (sm?.spec?.endpoints || []).every(e => e.authorization?.type === 'Bearer' && e.authorization?.credentials?.name)],
  ];
  for (const [what, ok] of want) {
    checked++;
    if (!ok) fail(rel, `expected ${what}`);
  }
}
if (have('kubectl')) {
  const k = run('kubectl', ['kustomize', 'deploy/kubernetes/base']);
  if (k.status !== 0) fail('deploy/kubernetes/base', `kubectl kustomize:\n${k.stderr}`);
  checked++;
} else notes.push('kubectl not found: `kubectl kustomize` not run (each manifest was parsed)');

// ---- 5. shipped configurations ----------------------------------------------------------
function validateConfig(where, file, env, expectValid) {
  const v = run(bin, ['--config', file, 'validate', '--quiet'], { env: { ...process.env, ...env } });
  checked++;
  if (expectValid && v.status !== 0) fail(where, `does not validate:\n${v.stderr}`);
  if (!expectValid && v.status !== 1) fail(where, `validates with placeholder secrets (exit ${v.status}); it must refuse them`);
}
const demoHash = run(bin, ['hash-key', 'mcp_deploycheckdeploycheckdeploycheckdeploychec']).stdout.trim();
validateConfig('deploy/docker/mcp-guard.toml (compose environment)', join(root, 'deploy/docker/mcp-guard.toml'),
  { MCP_GUARD_AUTH__API_KEYS__0__KEY_HASH: demoHash, MCP_GUARD_RATE_LIMIT__REDIS_URL: 'redis://redis:6379/0' }, true);
{
  const secret = parseYaml(join(k8sDir, 'secret.yaml'));
  const secretDir = join(scratch, 'secrets');
  const writeSecrets = values => {
    rmSync(secretDir, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', secretDir]);
    for (const [k, v] of Object.entries(values)) writeFileSync(join(secretDir, k), v);
  };
  const toml = readFileSync(join(k8sDir, 'mcp-guard.toml'), 'utf8').replaceAll('/etc/mcp-guard/secrets/', `${secretDir}/`);
  const tomlFile = join(scratch, 'k8s.toml');
  writeFileSync(tomlFile, toml);
  writeSecrets({ 'jwt-secret': 'deploy-check-secret-0123456789abcdef', 'redis-url': 'redis://redis:6379/0' });
  validateConfig('deploy/kubernetes/base/mcp-guard.toml', tomlFile, { MCP_GUARD_AUTH__API_KEYS__0__KEY_HASH: demoHash }, true);
  // With the optional scrape key: the Deployment's second variable reaches
  // the "prometheus" entry (a malformed value there is refused).
  const scrapeHash = run(bin, ['hash-key', 'mcp_deploycheckscrapedeploycheckscrapedeploych']).stdout.trim();
  validateConfig('deploy/kubernetes/base/mcp-guard.toml (with scrape-key-hash)', tomlFile,
    { MCP_GUARD_AUTH__API_KEYS__0__KEY_HASH: demoHash, MCP_GUARD_AUTH__API_KEYS__1__KEY_HASH: scrapeHash }, true);
  validateConfig('deploy/kubernetes/base/mcp-guard.toml (malformed scrape-key-hash)', tomlFile,
    { MCP_GUARD_AUTH__API_KEYS__0__KEY_HASH: demoHash, MCP_GUARD_AUTH__API_KEYS__1__KEY_HASH: 'REPLACE-ME' }, false);
  {
    const dep = k8sDocs.get(join(k8sDir, 'deployment.yaml'));
    const env = dep?.spec?.template?.spec?.containers?.[0]?.env || [];
    const v = env.find(e => e.name === 'MCP_GUARD_AUTH__API_KEYS__1__KEY_HASH');
    const id = /^id = "([^"]+)"/m.exec(toml.split(/^\[\[auth\.api_keys\]\]$/m)[2] || '')?.[1];
    checked++;
    if (id !== 'prometheus' || v?.valueFrom?.secretKeyRef?.key !== 'scrape-key-hash' || String(v?.valueFrom?.secretKeyRef?.optional) !== 'true')
      fail('deploy/kubernetes/base/deployment.yaml', `expected MCP_GUARD_AUTH__API_KEYS__1__KEY_HASH from the optional scrape-key-hash, for the second key ("prometheus"; found ${id})`);
  }
  if (secret?.stringData) {
    writeSecrets({ 'jwt-secret': secret.stringData['jwt-secret'], 'redis-url': secret.stringData['redis-url'] });
    validateConfig('deploy/kubernetes/base/secret.yaml (placeholders)', tomlFile, { MCP_GUARD_AUTH__API_KEYS__0__KEY_HASH: secret.stringData['api-key-0-hash'] }, false);
  }
}

// ---- 6. Docker build context ------------------------------------------------------------
{
  const df = 'deploy/docker/Dockerfile';
  const text = readFileSync(join(root, df), 'utf8').replace(/\\\n/g, ' ');
  const ignore = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map(l => l.trim()).filter(l => l && !l.startsWith('#'));
  const ignored = p => ignore.some(pat => {
    const re = new RegExp('^' + pat.replace(/^\//, '').replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + '(/|$)');
    return re.test(p);
  });
  const stages = new Set();
  const fromBuild = [];
  const args = {};
  for (const line of text.split('\n')) {
    const m = line.trim().match(/^(\w+)\s+(.*)$/);
    if (!m) continue;
    const [, instr, rest] = m;
    if (instr === 'ARG') {
      const [k, v] = rest.split('=');
      args[k] = v;
    } else if (instr === 'FROM') {
      const s = rest.match(/\bAS\s+(\S+)/i);
      if (s) stages.add(s[1]);
    } else if (instr === 'COPY' || instr === 'ADD') {
      const words = rest.trim().split(/\s+/);
      const from = words.find(w => w.startsWith('--from='));
      const paths = words.filter(w => !w.startsWith('--'));
      checked++;
      if (from) {
        const name = from.slice(7).replace(/\$\{(\w+)\}/g, (_, k) => args[k] || '');
        if (!stages.has(name) && !name.includes(':')) fail(df, `COPY --from=${name}: no such stage`);
        // What the runtime takes from the build stage's `make install ... DESTDIR=/out`.
        if (name === 'build') for (const src of paths.slice(0, -1)) if (src.startsWith('/out/')) fromBuild.push(src);
        continue;
      }
      for (const src of paths.slice(0, -1)) {
        const p = src.replace(/\/$/, '');
        if (!existsSync(join(root, p))) fail(df, `COPY ${src}: not in the build context`);
        else if (ignored(p)) fail(df, `COPY ${src}: excluded by .dockerignore`);
      }
    }
  }
  for (const t of ['build', 'runtime', 'demo']) if (!stages.has(t)) fail(df, `stage ${t} missing`);
  // Replay the build stage's install into a scratch /out and look for every file the
  // later stages copy out of it.
  const inst = text.match(/make install (PREFIX=\S+) (SYSCONFDIR=\S+) DESTDIR=\/out/);
  if (!inst) fail(df, 'the build stage must run `make install PREFIX=… SYSCONFDIR=… DESTDIR=/out`');
  else {
    const out = join(scratch, 'out');
    const i = run('make', ['--no-print-directory', 'install', `BUILD=${relative(root, build) || '.'}`, inst[1], inst[2], `DESTDIR=${out}`]);
    if (i.status !== 0) fail(df, `make install as the build stage runs it:\n${i.stderr}`);
    for (const src of fromBuild) {
      checked++;
      if (!existsSync(join(out, src.slice('/out/'.length)))) fail(df, `COPY --from=build ${src}: make install does not produce it`);
    }
  }
  if (!/^HEALTHCHECK .*\/live|healthcheck/m.test(text)) fail(df, 'no HEALTHCHECK');
  if (!/^USER 10001/m.test(text)) fail(df, 'the runtime stage must run as uid 10001');
  const compose = parseYaml(join(root, 'deploy/docker/compose.yaml'));
  const b = compose?.services?.gateway?.build;
  if (!b || b.dockerfile !== df || !stages.has(b.target) || resolve(root, 'deploy/docker', b.context) !== root)
    fail('deploy/docker/compose.yaml', `gateway.build must use ${df} with the repository as context and an existing target`);
  if (process.env.DEPLOY_DOCKER_BUILD === '1') {
    if (run('docker', ['info']).status !== 0) notes.push('DEPLOY_DOCKER_BUILD=1 but no Docker daemon: the image was NOT built');
    else {
      const d = run('docker', ['build', '-f', df, '--target', 'demo', '-t', 'mcp-guard:demo', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
      if (d.status !== 0) fail(df, `docker build:\n${d.stderr.slice(-3000)}`);
      checked++;
    }
  }
}

// ---- uninstall ----------------------------------------------------------------------------
r = run('make', ['--no-print-directory', 'uninstall', ...makeVars]);
if (r.status !== 0) fail('make uninstall', r.stderr + r.stdout);
for (const f of expected.filter(f => f !== 'etc/mcp-guard/mcp-guard.toml'))
  if (existsSync(join(scratch, f))) fail('make uninstall', `${f} left behind`);
if (!existsSync(join(etc, 'mcp-guard/mcp-guard.toml'))) fail('make uninstall', 'removed the configuration');
rmSync(scratch, { recursive: true, force: true });

for (const n of notes) console.log(`deploy-check: note: ${n}`);
if (failures.length) {
  console.error(`deploy-check: ${failures.length} problem(s)\n\n` + failures.join('\n\n'));
  process.exit(1);
}
console.log(`deploy-check: ${checked} checks ok`);
