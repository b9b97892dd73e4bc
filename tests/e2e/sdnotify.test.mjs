// systemd readiness (deploy/systemd/mcp-guard.service, Type=notify): the
// gateway writes READY=1 to $NOTIFY_SOCKET once it listens, RELOADING=1 and
// READY=1 around a SIGHUP reload, STOPPING=1 when SIGTERM begins the
// shutdown. Node cannot open AF_UNIX datagram sockets, so the receiver is a
// few lines of Perl (perl-base is Essential in Debian, always present); it
// prints each datagram on one line.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { startGateway, tempDir, waitFor } from './helpers.mjs';

const RECEIVER = `
use strict; use warnings; use Socket;
$| = 1;
my $path = shift;
socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
bind($s, pack_sockaddr_un($path)) or die "bind: $!";
print "bound\\n";
while (defined(recv($s, my $msg, 4096, 0))) { $msg =~ s/\\n/ /g; print "$msg\\n"; }
`;

function startReceiver(sockPath) {
    const proc = spawn('perl', ['-e', RECEIVER, sockPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const r = { proc, lines: [] };
    proc.stdout.setEncoding('utf8');
    let partial = '';
    proc.stdout.on('data', d => {
        partial += d;
        const parts = partial.split('\n');
        partial = parts.pop();
        r.lines.push(...parts);
    });
    return r;
}

test('READY=1 once listening, RELOADING=1/READY=1 on SIGHUP, STOPPING=1 on SIGTERM', async () => {
    const dir = tempDir();
    const sockPath = path.join(dir, 'notify.sock');
    const rx = startReceiver(sockPath);
    let gw;
    try {
        await waitFor(() => rx.lines.includes('bound'), { message: 'the notify receiver bound its socket' });
        process.env.NOTIFY_SOCKET = sockPath;
        gw = await startGateway({ ready: false });
        delete process.env.NOTIFY_SOCKET;
        await waitFor(() => rx.lines.includes('READY=1'), { message: 'READY=1 from the gateway' });
        // Readiness means the listener is up: /live answers at once.
        assert.equal((await gw.get('/live')).status, 200);

        gw.signal('SIGHUP');
        await waitFor(() => rx.lines.filter(l => l === 'READY=1').length === 2, { message: 'READY=1 after the reload' });
        const afterFirst = rx.lines.slice(rx.lines.indexOf('READY=1') + 1);
        assert.deepEqual(afterFirst, ['RELOADING=1', 'READY=1']);

        await gw.stop();
        assert.equal(rx.lines.at(-1), 'STOPPING=1');
        assert.equal(gw.stderr.includes('cannot notify systemd'), false);
    } finally {
        delete process.env.NOTIFY_SOCKET;
        if (gw) await gw.kill();
        rx.proc.kill();
        rmSync(dir, { recursive: true, force: true });
    }
});

test('an unreachable NOTIFY_SOCKET is a warning, not a failure', async () => {
    const dir = tempDir();
    process.env.NOTIFY_SOCKET = path.join(dir, 'nobody-listens.sock');
    let gw;
    try {
        gw = await startGateway();
        delete process.env.NOTIFY_SOCKET;
        await waitFor(() => gw.stderr.includes('cannot notify systemd'), { message: 'the warning' });
        await gw.stop();
    } finally {
        delete process.env.NOTIFY_SOCKET;
        if (gw) await gw.kill();
        rmSync(dir, { recursive: true, force: true });
    }
});
