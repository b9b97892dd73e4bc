// A throw-away PKI for the TLS / mTLS end-to-end tests, made with the
// `openssl` CLI in a temporary directory at test time (no key is ever
// committed): a CA, server certificates for 127.0.0.1 / localhost, client
// certificates (a CN, a SAN DNS name, a SAN e-mail) signed by that CA, and a
// client certificate signed by another, untrusted CA.
//
//   const pki = createPki();         // synchronous, ~0.3 s
//   pki.ca.cert, pki.server.cert, pki.server.key, pki.clients.cn.cert, ...
//   pki.read('client-cn.crt')        // file contents (Buffer)
//   pki.issueServer('server2', 4242) // another server cert (serial 4242)
//   pki.cleanup()
//
// Keys are EC P-256 (fast to generate); certificates SHA-256. Every file
// name in the returned object is an absolute path.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function openssl(args, cwd) {
    const r = spawnSync('openssl', args, { cwd, encoding: 'utf8', timeout: 20000 });
    if (r.error) throw new Error(`cannot run openssl: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
    return r.stdout;
}

export class Pki {
    constructor(dir) {
        this.dir = dir;
        this.serial = 1000;
    }

    p(name) {
        return path.join(this.dir, name);
    }

    read(name) {
        return readFileSync(path.isAbsolute(name) ? name : this.p(name));
    }

    key(name) {
        openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', this.p(`${name}.key`)], this.dir);
        return this.p(`${name}.key`);
    }

    /** A self-signed CA certificate: {cert, key}. */
    makeCa(name, subject) {
        const key = this.key(name);
        openssl(
            ['req', '-x509', '-new', '-key', key, '-sha256', '-days', '2', '-subj', subject, '-set_serial', String(++this.serial), '-extensions', 'v3_ca', '-config', this.minimalConfig(), '-out', this.p(`${name}.crt`)],
            this.dir
        );
        return { cert: this.p(`${name}.crt`), key, name };
    }

    /** An openssl.cnf with a [req] section (so no system file is read) and v3_ca. */
    minimalConfig() {
        const cfg = this.p('openssl.cnf');
        if (this.configWritten) return cfg;
        this.configWritten = true;
        writeFileSync(
            cfg,
            [
                '[req]',
                'distinguished_name = dn',
                'prompt = no',
                '[dn]',
                'CN = unused',
                '[v3_ca]',
                'basicConstraints = critical,CA:TRUE',
                'keyUsage = critical,keyCertSign,cRLSign',
                'subjectKeyIdentifier = hash',
                ''
            ].join('\n')
        );
        return cfg;
    }

    /**
     * A leaf certificate signed by `ca`: {cert, key, serial}. `ext` lines go to
     * the extension file (subjectAltName, extendedKeyUsage...).
     */
    issue(ca, name, subject, extLines, { serial } = {}) {
        const key = this.key(name);
        const csr = this.p(`${name}.csr`);
        openssl(['req', '-new', '-key', key, '-subj', subject, '-config', this.minimalConfig(), '-out', csr], this.dir);
        const ext = this.p(`${name}.ext`);
        writeFileSync(ext, ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', ...extLines, ''].join('\n'));
        const s = serial ?? ++this.serial;
        openssl(
            ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(s), '-days', '2', '-sha256', '-extfile', ext, '-out', this.p(`${name}.crt`)],
            this.dir
        );
        return { cert: this.p(`${name}.crt`), key, serial: s, serialHex: s.toString(16).toUpperCase().padStart(2, '0'), name };
    }

    /** A server certificate for 127.0.0.1 and localhost signed by the main CA. */
    issueServer(name, serial) {
        return this.issue(this.ca, name, '/O=mcp-guard e2e/CN=localhost', ['extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { serial });
    }

    cleanup() {
        if (this.dir && !process.env.E2E_KEEP) rmSync(this.dir, { recursive: true, force: true });
        this.dir = null;
    }
}

/**
 * Creates the whole PKI in a fresh temp directory:
 *   ca, otherCa                     {cert, key}
 *   server                          {cert, key, serial} for 127.0.0.1 / localhost
 *   clients.cn                      CN=alice.cn (no SAN)
 *   clients.sanDns                  CN=dns-holder, SAN DNS:bob.clients.example
 *   clients.sanEmail                CN=mail-holder, SAN email:carol@example.com
 *   clients.rogue                   CN=mallory, SAN DNS:bob.clients.example and
 *                                   email:carol@example.com, signed by otherCa
 */
export function createPki() {
    const pki = new Pki(mkdtempSync(path.join(tmpdir(), 'mcp-guard-pki-')));
    pki.ca = pki.makeCa('ca', '/O=mcp-guard e2e/CN=mcp-guard e2e test CA');
    pki.otherCa = pki.makeCa('other-ca', '/O=somebody else/CN=untrusted test CA');
    pki.server = pki.issueServer('server');
    const client = ['extendedKeyUsage=clientAuth'];
    pki.clients = {
        cn: pki.issue(pki.ca, 'client-cn', '/O=mcp-guard e2e/CN=alice.cn', client),
        sanDns: pki.issue(pki.ca, 'client-san-dns', '/O=mcp-guard e2e/CN=dns-holder', [...client, 'subjectAltName=DNS:bob.clients.example']),
        sanEmail: pki.issue(pki.ca, 'client-san-email', '/O=mcp-guard e2e/CN=mail-holder', [...client, 'subjectAltName=email:carol@example.com']),
        rogue: pki.issue(pki.otherCa, 'client-rogue', '/O=somebody else/CN=alice.cn', [...client, 'subjectAltName=DNS:bob.clients.example,email:carol@example.com'])
    };
    return pki;
}

// `node tests/e2e/pki/pki.mjs` creates a PKI and prints where it is (the directory is kept).
if (import.meta.url === `file://${process.argv[1]}`) {
    const pki = createPki();
    console.log(JSON.stringify({ dir: pki.dir, ca: pki.ca, server: pki.server, clients: pki.clients }, null, 2));
}
