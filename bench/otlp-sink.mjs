// otlp-sink.mjs - a loopback OTLP/HTTP receiver for the observability group of
// bench/run.sh: it takes `POST /v1/traces` (JSON), counts the spans (the whole
// document is parsed and checked for the first batch and every 16th) and answers
// 200 `{}` at once, so the gateway's exporter measures its own cost, not a
// collector's. `GET /stats` gives the counts as JSON.
//
//   node bench/otlp-sink.mjs PORT [MAX_SECONDS]
//
// Bounded: binds 127.0.0.1 only; a body over 32 MiB is refused (413) and its
// connection closed; at most 64 connections; it exits by itself after
// MAX_SECONDS (default 1800) in case the harness that started it is gone.
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const maxSeconds = Number(process.argv[3] ?? 1800);
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !(maxSeconds > 0)) {
	console.error('usage: node otlp-sink.mjs PORT [MAX_SECONDS]');
	process.exit(2);
}
const MAX_BODY = 32 * 1024 * 1024;
const stats = { requests: 0, spans: 0, bytes: 0, rejected: 0, bad_json: 0, unsupported: 0 };

function countSpans(doc) {
	let n = 0;
	for (const rs of Array.isArray(doc?.resourceSpans) ? doc.resourceSpans : [])
		for (const ss of Array.isArray(rs?.scopeSpans) ? rs.scopeSpans : [])
			if (Array.isArray(ss?.spans)) n += ss.spans.length;
	return n;
}

const START = Buffer.from('"startTimeUnixNano":');
function occurrences(buf, needle) {
	let n = 0;
	for (let i = buf.indexOf(needle); i >= 0; i = buf.indexOf(needle, i + needle.length)) n++;
	return n;
}

function reply(res, status, body) {
	res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
	res.end(body);
}

const server = createServer((req, res) => {
	if (req.method === 'GET' && req.url === '/stats') return reply(res, 200, JSON.stringify(stats));
	if (req.method !== 'POST' || req.url !== '/v1/traces') return reply(res, 404, '{}');
	if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
		stats.unsupported++;
		req.resume();
		return reply(res, 415, '{}');
	}
	const chunks = [];
	let size = 0;
	let refused = false;
	req.on('data', (c) => {
		if (refused) return;
		size += c.length;
		if (size > MAX_BODY) {
			refused = true;
			stats.rejected++;
			res.writeHead(413, { Connection: 'close' });
			res.end('{}', () => req.destroy());
			return;
		}
		chunks.push(c);
	});
	req.on('end', () => {
		if (refused) return;
		stats.requests++;
		stats.bytes += size;
		const body = Buffer.concat(chunks, size);
		// Spans are counted by their one member no other object has; the
		// whole document is parsed (and the count checked) for the first
		// batch and every 16th: parsing each took a tenth of the load
		// generator's core, and the load generator shares that core.
		const counted = occurrences(body, START);
		if (stats.requests % 16 === 1) {
			try {
				if (countSpans(JSON.parse(body.toString('utf8'))) !== counted) throw new Error('count');
			} catch {
				stats.bad_json++;
				return reply(res, 400, '{}');
			}
		}
		stats.spans += counted;
		reply(res, 200, '{}');
	});
});
server.maxConnections = 64;
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1');
setTimeout(() => process.exit(0), maxSeconds * 1000).unref();
process.on('SIGTERM', () => {
	console.log(JSON.stringify(stats));
	process.exit(0);
});
