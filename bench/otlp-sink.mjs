// otlp-sink.mjs - a loopback OTLP/HTTP receiver for the observability group of
// bench/run.sh: it takes `POST /v1/traces` (binary protobuf or JSON), counts the
// spans (the whole request is decoded and checked for the first batch and every
// 16th: protobuf with protobufjs, tests/e2e/otlp.mjs) and answers 200 with an
// empty response at once, so the gateway's exporter measures its own cost, not a
// collector's. A gzip body (otlp_compression = "gzip") is decompressed first;
// `bytes` counts what was sent, `bytes_decoded` what it held. `GET /stats`
// gives the counts as JSON.
//
//   node bench/otlp-sink.mjs PORT [MAX_SECONDS]
//
// Bounded: binds 127.0.0.1 only; a body over 32 MiB is refused (413) and its
// connection closed; at most 64 connections; it exits by itself after
// MAX_SECONDS (default 1800) in case the harness that started it is gone.
import { createServer } from 'node:http';
import { gunzipSync } from 'node:zlib';

import { decodeTraces } from '../tests/e2e/otlp.mjs';

const port = Number(process.argv[2]);
const maxSeconds = Number(process.argv[3] ?? 1800);
if (!Number.isInteger(port) || port <= 0 || port > 65535 || !(maxSeconds > 0)) {
	console.error('usage: node otlp-sink.mjs PORT [MAX_SECONDS]');
	process.exit(2);
}
const MAX_BODY = 32 * 1024 * 1024;
const stats = { requests: 0, spans: 0, bytes: 0, bytes_decoded: 0, gzip: 0, rejected: 0, bad_json: 0, unsupported: 0, protobuf: 0 };
const PROTOBUF = 'application/x-protobuf';

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

// Reads a varint at b[i]: [value, next index]; null past the end.
function varint(b, i) {
	let v = 0;
	for (let shift = 0; shift < 35; shift += 7) {
		if (i >= b.length) return null;
		const c = b[i++];
		v += (c & 0x7f) * 2 ** shift;
		if (!(c & 0x80)) return [v, i];
	}
	return null;
}

// The length-delimited fields `field` of the message b[start, end): their
// [start, end) ranges; null when the message is malformed.
function lenFields(b, start, end, field) {
	const out = [];
	let i = start;
	while (i < end) {
		const t = varint(b, i);
		if (!t) return null;
		i = t[1];
		const wire = t[0] & 7;
		if (wire === 0) {
			const v = varint(b, i);
			if (!v) return null;
			i = v[1];
		} else if (wire === 1) i += 8;
		else if (wire === 5) i += 4;
		else if (wire === 2) {
			const n = varint(b, i);
			if (!n || n[1] + n[0] > end) return null;
			if (t[0] >>> 3 === field) out.push([n[1], n[1] + n[0]]);
			i = n[1] + n[0];
		} else return null;
	}
	return i === end ? out : null; // (a fixed-size field cut short)
}

// Spans in a binary ExportTraceServiceRequest, by walking the wire format:
// resource_spans (1) > scope_spans (2) > spans (2); -1 when malformed.
function protoSpans(b) {
	const resourceSpans = lenFields(b, 0, b.length, 1);
	if (!resourceSpans) return -1;
	let n = 0;
	for (const [rs, rse] of resourceSpans) {
		const scopeSpans = lenFields(b, rs, rse, 2);
		if (!scopeSpans) return -1;
		for (const [ss, sse] of scopeSpans) {
			const spans = lenFields(b, ss, sse, 2);
			if (!spans) return -1;
			n += spans.length;
		}
	}
	return n;
}

function reply(res, status, body, type = 'application/json') {
	res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
	res.end(body);
}

const server = createServer((req, res) => {
	if (req.method === 'GET' && req.url === '/stats') return reply(res, 200, JSON.stringify(stats));
	if (req.method !== 'POST' || req.url !== '/v1/traces') return reply(res, 404, '{}');
	const type = String(req.headers['content-type'] ?? '');
	const proto = type === PROTOBUF;
	const enc = req.headers['content-encoding'];
	if ((!proto && !type.startsWith('application/json')) || (enc !== undefined && enc !== 'gzip')) {
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
		let body = Buffer.concat(chunks, size);
		if (enc === 'gzip') {
			try {
				body = gunzipSync(body, { maxOutputLength: MAX_BODY });
			} catch {
				stats.bad_json++;
				return reply(res, 400, '{}');
			}
			stats.gzip++;
		}
		stats.bytes_decoded += body.length;
		// Spans are counted by their one member no other object has; the
		// whole document is parsed (and the count checked) for the first
		// batch and every 16th: parsing each took a tenth of the load
		// generator's core, and the load generator shares that core.
		const counted = proto ? protoSpans(body) : occurrences(body, START);
		if (stats.requests % 16 === 1 || counted < 0) {
			try {
				if (countSpans(decodeTraces(body, type)) !== counted) throw new Error('count');
			} catch {
				stats.bad_json++;
				return reply(res, 400, '{}');
			}
		}
		stats.spans += counted;
		if (proto) stats.protobuf++;
		reply(res, 200, proto ? '' : '{}', proto ? PROTOBUF : 'application/json');
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
