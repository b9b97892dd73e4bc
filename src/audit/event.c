/*
 * event.c - the fixed serializer of audit events and the hash chain.
 *
 * An event becomes one compact JSON object with its keys always in the
 * same order (see mg_audit_serialize in audit.h). The serializer is ours,
 * not jansson's object dump, so that a record's bytes are a function of the
 * event alone: the hash chain hashes those exact bytes and the verifier
 * never has to re-canonicalize anything. Strings are escaped minimally
 * (quote, backslash, control characters; bytes of invalid UTF-8 as
 * \u00XX), so a line never holds a raw line break.
 *
 * The chain (mg_audit_chain) closes the object with
 *   ,"seq":N,"prev":"<64 hex>"}
 * hashes that whole text with SHA-256, and then replaces the final brace
 * with ,"hash":"<64 hex>"}. A verifier strips the fixed 75-byte suffix
 * ,"hash":"…"} , puts the brace back and hashes again.
 *
 * Everything here is pure (time is a parameter) and runs on the loop
 * thread, except mg_audit_chain, which the writer thread calls.
 */
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "audit/internal.h"
#include "util/crypto.h"
#include "util/str.h"

const char mg_audit_genesis[MG_AUDIT_HASH_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static const char *const type_names[MG_AUDIT_N_TYPES] = {
	[MG_AUDIT_AUTH_SUCCESS] = "auth_success",
	[MG_AUDIT_AUTH_FAILURE] = "auth_failure",
	[MG_AUDIT_TOOL_CALL] = "tool_call",
	[MG_AUDIT_TOOL_CALL_RESULT] = "tool_call_result",
	[MG_AUDIT_RATE_LIMITED] = "rate_limited",
	[MG_AUDIT_AUTHZ_DENIED] = "authz_denied",
	[MG_AUDIT_SESSION_START] = "session_start",
	[MG_AUDIT_SESSION_END] = "session_end",
	[MG_AUDIT_UPSTREAM_ERROR] = "upstream_error",
	[MG_AUDIT_CONFIG_RELOAD] = "config_reload",
	[MG_AUDIT_TOOL_DEFINITION_CHANGED] = "tool_definition_changed",
};

const char *mg_audit_type_name(enum mg_audit_type t)
{
	return (unsigned)t < MG_AUDIT_N_TYPES ? type_names[t] : "unknown";
}

void mg_audit_format_time(int64_t unix_us, char out[28])
{
	/* the date and time to the second change once a second: keep them */
	static _Thread_local time_t cached_secs = -1;
	static _Thread_local char cached[20];
	if (unix_us < 0)
		unix_us = 0;
	time_t secs = (time_t)(unix_us / 1000000);
	long us = (long)(unix_us % 1000000);
	size_t n = 19;
	if (secs != cached_secs) {
		struct tm tm;
		gmtime_r(&secs, &tm);
		if (strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
			memcpy(out, "1970-01-01T00:00:00.000000Z", 28);
			return;
		}
		cached_secs = secs;
	}
	memcpy(out, cached, 19);
	static const char digits[] = "0123456789";
	out[n++] = '.';
	for (int i = 5; i >= 0; i--) {
		out[n + (size_t)i] = digits[us % 10];
		us /= 10;
	}
	n += 6;
	out[n++] = 'Z';
	out[n] = '\0';
}

/* The record is written by pointer into room reserved once for all of it
 * (measured first in mg_audit_serialize): a call, a bounds check and a
 * strlen per piece cost more than the bytes (3,000 instructions a record
 * before). */

#define LIT(p, s) put_mem(p, s, sizeof s - 1)

static char *put_mem(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* How many bytes put_str writes for `s` (n bytes); `utf8` as put_str
 * decides it. */
static size_t str_size(const char *s, size_t n, bool plain, bool utf8)
{
	if (plain)
		return n + 2;
	size_t z = 2;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t')
			z += 2;
		else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
			z += 6;
		else
			z++;
	}
	return z;
}

/* `s` (n bytes) as a JSON string, str_size bytes. */
static char *put_str(char *p, const char *s, size_t n, bool plain, bool utf8)
{
	static const char hex[] = "0123456789abcdef";
	*p++ = '"';
	if (plain) {
		p = put_mem(p, s, n);
		*p++ = '"';
		return p;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"') {
			p = LIT(p, "\\\"");
		} else if (c == '\\') {
			p = LIT(p, "\\\\");
		} else if (c == '\n') {
			p = LIT(p, "\\n");
		} else if (c == '\r') {
			p = LIT(p, "\\r");
		} else if (c == '\t') {
			p = LIT(p, "\\t");
		} else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
			p = LIT(p, "\\u00");
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	*p++ = '"';
	return p;
}

/* The string members, in record order. */
enum {
	F_REQUEST_ID,
	F_TRACE_ID,
	F_IDENTITY,
	F_PROVIDER,
	F_CLIENT,
	F_SERVER,
	F_METHOD,
	F_TOOL,
	N_F
};
static const struct {
	const char *key; /* ,"key": */
	size_t len;
} field_keys[N_F] = {
#define K(s)                                                                                       \
	{                                                                                          \
		s, sizeof s - 1                                                                    \
	}
	[F_REQUEST_ID] = K(",\"request_id\":"), [F_TRACE_ID] = K(",\"trace_id\":"),
	[F_IDENTITY] = K(",\"identity_id\":"),  [F_PROVIDER] = K(",\"provider\":"),
	[F_CLIENT] = K(",\"client_address\":"), [F_SERVER] = K(",\"server\":"),
	[F_METHOD] = K(",\"method\":"),         [F_TOOL] = K(",\"tool\":"),
#undef K
};

static int put_json(struct mg_buf *b, const char *key, const struct mg_audit_redactor *rd,
                    const json_t *v)
{
	json_t *copy = mg_audit_redact(rd, v);
	if (!copy)
		return 0;
	int rc = -1;
	char *text = json_dumps(copy, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	if (!text)
		goto out;
	if (mg_buf_append(b, ",\"", 2) < 0 || mg_buf_puts(b, key) < 0 ||
	    mg_buf_append(b, "\":", 2) < 0 || mg_buf_puts(b, text) < 0)
		goto out;
	rc = 0;
out:
	free(text);
	json_decref(copy);
	return rc;
}

/* The string members and the message of an event, measured. */
struct members {
	const char *f[N_F + 1]; /* the members in record order, then the message */
	size_t fl[N_F + 1];
	bool plain[N_F + 1], utf8[N_F + 1];
};

/* Fills `m` from `ev` (the members only when `fields`, the message only
 * when `message`) and answers how many bytes put_members and the message
 * take. */
static size_t measure(struct members *m, const struct mg_audit_event *ev, bool fields, bool message)
{
	const char *src[N_F + 1] = { ev->request_id, ev->trace_id, ev->identity,
		                     ev->provider,   ev->client,   ev->server,
		                     ev->method,     ev->tool,     ev->message };
	size_t size = 0;
	for (int i = 0; i <= N_F; i++) {
		m->f[i] = src[i];
		m->fl[i] = (i == N_F ? message : fields) && src[i] ? strlen(src[i]) : 0;
		if (!m->fl[i])
			continue;
		m->plain[i] = mg_json_plain(src[i], m->fl[i]);
		m->utf8[i] = m->plain[i] || mg_utf8_valid(src[i], m->fl[i]);
		size += (i < N_F ? field_keys[i].len : 0) +
		        str_size(src[i], m->fl[i], m->plain[i], m->utf8[i]);
	}
	return size;
}

static char *put_members(char *p, const struct members *m)
{
	for (int i = 0; i < N_F; i++) {
		if (!m->fl[i])
			continue;
		p = put_mem(p, field_keys[i].key, field_keys[i].len);
		p = put_str(p, m->f[i], m->fl[i], m->plain[i], m->utf8[i]);
	}
	return p;
}

int mg_audit_members(const struct mg_audit_event *ev, struct mg_buf *out)
{
	struct members m;
	if (mg_buf_reserve(out, measure(&m, ev, true, false)) < 0)
		return -1;
	char *p = put_members(out->data + out->len, &m);
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	return 0;
}

size_t mg_audit_members_into(const struct mg_audit_event *ev, char *out, size_t size)
{
	struct members m;
	size_t need = measure(&m, ev, true, false);
	if (need >= size)
		return need;
	char *p = put_members(out, &m);
	*p = '\0';
	return (size_t)(p - out);
}

int mg_audit_serialize(const struct mg_audit_event *ev, int64_t unix_us,
                       const struct mg_audit_redactor *rd, struct mg_buf *out)
{
	struct members m;
	bool shared = ev->members != NULL;
	/* timestamp, event type, success, duration, message key, braces: < 200 */
	size_t size = 200 + measure(&m, ev, !shared, true) + (shared ? ev->members_len : 0);
	if (mg_buf_reserve(out, size) < 0)
		return -1;
	char *p = out->data + out->len;
	char ts[28];
	mg_audit_format_time(unix_us, ts);
	p = LIT(p, "{\"timestamp\":\"");
	p = put_mem(p, ts, 27);
	p = LIT(p, "\",\"event_type\":\"");
	const char *type = mg_audit_type_name(ev->type);
	p = put_mem(p, type, strlen(type));
	*p++ = '"';
	p = shared ? put_mem(p, ev->members, ev->members_len) : put_members(p, &m);
	if (ev->success >= 0)
		p = ev->success ? LIT(p, ",\"success\":true") : LIT(p, ",\"success\":false");
	if (ev->duration_ms >= 0) {
		p = LIT(p, ",\"duration_ms\":");
		p += mg_fmt_i64(p, ev->duration_ms);
	}
	if (m.fl[N_F]) {
		p = LIT(p, ",\"message\":");
		p = put_str(p, m.f[N_F], m.fl[N_F], m.plain[N_F], m.utf8[N_F]);
	}
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	if (rd && ev->arguments && mg_audit_redactor_arguments(rd) &&
	    put_json(out, "arguments", rd, ev->arguments) < 0)
		return -1;
	if (rd && ev->result && mg_audit_redactor_results(rd) &&
	    put_json(out, "result", rd, ev->result) < 0)
		return -1;
	return mg_buf_putc(out, '}');
}

static void to_hex(const uint8_t *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int mg_audit_chain(const char *obj, size_t len, uint64_t seq, const char *prev, struct mg_buf *out,
                   char hash_out[MG_AUDIT_HASH_HEX + 1])
{
	return mg_audit_chain_with(NULL, obj, len, seq, prev, out, hash_out);
}

int mg_audit_chain_with(struct mg_sha256_ctx *sha, const char *obj, size_t len, uint64_t seq,
                        const char *prev, struct mg_buf *out, char hash_out[MG_AUDIT_HASH_HEX + 1])
{
	if (len < 2 || obj[0] != '{' || obj[len - 1] != '}')
		return -1;
	size_t start = out->len;
	/* "{}" has no member to put a comma after. */
	bool empty = len == 2;
	char num[MG_I64_CHARS];
	size_t nl = mg_fmt_i64(num, (int64_t)seq);
	size_t pl = strlen(prev);
	/* (appended piece by piece: a printf per record cost as much as the rest) */
	if (mg_buf_append(out, obj, len - 1) < 0 ||
	    mg_buf_append(out, &",\"seq\":"[empty ? 1 : 0], empty ? 6 : 7) < 0 ||
	    mg_buf_append(out, num, nl) < 0 || mg_buf_append(out, ",\"prev\":\"", 9) < 0 ||
	    mg_buf_append(out, prev, pl) < 0 || mg_buf_append(out, "\"}", 2) < 0)
		return -1;
	uint8_t d[MG_SHA256_LEN];
	mg_sha256_with(sha, out->data + start, out->len - start, d);
	to_hex(d, sizeof d, hash_out);
	out->len--; /* the closing brace goes after the hash */
	if (mg_buf_append(out, ",\"hash\":\"", 9) < 0 ||
	    mg_buf_append(out, hash_out, MG_AUDIT_HASH_HEX) < 0)
		return -1;
	return mg_buf_append(out, "\"}", 2);
}
