// jwt.mjs - the JWT scenario's keys: an RSA key pair, its JWKS (served by the
// fast upstream at /jwks.json) and one RS256 token valid for a day.
//   node bench/jwt.mjs OUT_DIR ISSUER AUDIENCE   -> OUT_DIR/jwks.json, OUT_DIR/token
import { generateKeyPairSync, createSign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, iss = 'mcp-guard-bench', aud = 'mcp-guard-bench'] = process.argv.slice(2);
if (!dir) {
	console.error('usage: node jwt.mjs OUT_DIR [ISSUER] [AUDIENCE]');
	process.exit(2);
}
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'bench-1', alg: 'RS256', use: 'sig' };
writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = Math.floor(Date.now() / 1000);
const head = b64({ alg: 'RS256', typ: 'JWT', kid: 'bench-1' });
const body = b64({ iss, aud, sub: 'bench', scope: 'tools:call', iat: now, nbf: now - 5, exp: now + 86400 });
const sig = createSign('RSA-SHA256').update(`${head}.${body}`).sign(privateKey).toString('base64url');
writeFileSync(join(dir, 'token'), `${head}.${body}.${sig}`);
