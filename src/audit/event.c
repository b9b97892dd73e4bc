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

/* Appends `s` as a JSON string. */
static int put_str(struct mg_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(s);
	if (mg_buf_putc(b, '"') < 0)
		return -1;
	if (mg_json_plain(s, n)) {
		if (mg_buf_append(b, s, n) < 0)
			return -1;
		return mg_buf_putc(b, '"');
	}
	bool utf8 = mg_utf8_valid(s, n);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[7];
		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\r')
			esc = "\\r";
		else if (c == '\t')
			esc = "\\t";
		else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
			u[0] = '\\';
			u[1] = 'u';
			u[2] = '0';
			u[3] = '0';
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			u[6] = '\0';
			esc = u;
		}
		if (!esc) {
			run++;
			continue;
		}
		if (mg_buf_append(b, s + i - run, run) < 0 || mg_buf_puts(b, esc) < 0)
			return -1;
		run = 0;
	}
	if (mg_buf_append(b, s + n - run, run) < 0)
		return -1;
	return mg_buf_putc(b, '"');
}

static int put_key(struct mg_buf *b, const char *key)
{
	if (mg_buf_append(b, ",\"", 2) < 0 || mg_buf_puts(b, key) < 0)
		return -1;
	return mg_buf_append(b, "\":", 2);
}

static int put_int(struct mg_buf *b, const char *key, int64_t v)
{
	char num[MG_I64_CHARS];
	size_t n = mg_fmt_i64(num, v);
	if (put_key(b, key) < 0)
		return -1;
	return mg_buf_append(b, num, n);
}

static int put_member(struct mg_buf *b, const char *key, const char *value)
{
	if (!value || !*value)
		return 0;
	/* the common case - a short plain value - in one append */
	size_t kl = strlen(key), vl = strlen(value);
	char tmp[256];
	if (kl + vl + 7 <= sizeof tmp && mg_json_plain(value, vl)) {
		char *p = tmp;
		memcpy(p, ",\"", 2);
		memcpy(p + 2, key, kl);
		p += 2 + kl;
		memcpy(p, "\":\"", 3);
		memcpy(p + 3, value, vl);
		p += 3 + vl;
		*p++ = '"';
		return mg_buf_append(b, tmp, (size_t)(p - tmp));
	}
	if (put_key(b, key) < 0)
		return -1;
	return put_str(b, value);
}

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
	if (put_key(b, key) < 0 || mg_buf_puts(b, text) < 0)
		goto out;
	rc = 0;
out:
	free(text);
	json_decref(copy);
	return rc;
}

int mg_audit_serialize(const struct mg_audit_event *ev, int64_t unix_us,
                       const struct mg_audit_redactor *rd, struct mg_buf *out)
{
	char ts[28];
	mg_audit_format_time(unix_us, ts);
	if (mg_buf_append(out, "{\"timestamp\":\"", 14) < 0 || mg_buf_append(out, ts, 27) < 0 ||
	    mg_buf_append(out, "\",\"event_type\":\"", 16) < 0 ||
	    mg_buf_puts(out, mg_audit_type_name(ev->type)) < 0 || mg_buf_putc(out, '"') < 0)
		return -1;
	if (put_member(out, "request_id", ev->request_id) < 0 ||
	    put_member(out, "trace_id", ev->trace_id) < 0 ||
	    put_member(out, "identity_id", ev->identity) < 0 ||
	    put_member(out, "provider", ev->provider) < 0 ||
	    put_member(out, "client_address", ev->client) < 0 ||
	    put_member(out, "server", ev->server) < 0 ||
	    put_member(out, "method", ev->method) < 0 || put_member(out, "tool", ev->tool) < 0)
		return -1;
	if (ev->success >= 0 &&
	    mg_buf_puts(out, ev->success ? ",\"success\":true" : ",\"success\":false") < 0)
		return -1;
	if (ev->duration_ms >= 0 && put_int(out, "duration_ms", ev->duration_ms) < 0)
		return -1;
	if (put_member(out, "message", ev->message) < 0)
		return -1;
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
