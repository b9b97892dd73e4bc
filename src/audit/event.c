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
 * The loop thread only packs an event (mg_audit_pack_*: its strings
 * copied raw, back to back, behind a fixed header) into the writer's
 * ring; the writer thread serializes the packs (mg_audit_pack_serialize)
 * and chains them, a run at a time. Everything here is pure (time is a
 * parameter).
 */
#include <stdlib.h>
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
	out[n++] = '.';
	for (int i = 4; i >= 0; i -= 2) {
		memcpy(out + n + (size_t)i, mg_digit_pairs + 2 * (us % 100), 2);
		us /= 100;
	}
	n += 6;
	out[n++] = 'Z';
	out[n] = '\0';
}

/* Records are written by pointer into room reserved once for all of it
 * (the worst case: every byte of a string escaped as \u00XX): a call, a
 * bounds check and a strlen per piece cost more than the bytes. */

#define LIT(p, s) put_mem(p, s, sizeof s - 1)

static char *put_mem(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* put_str from byte `i` of `s` on, the first i bytes already copied to
 * p: the escaping path, out of line (most strings never take it). */
static __attribute__((noinline)) char *put_str_escaped(char *p, const char *s, size_t n, size_t i)
{
	static const char hex[] = "0123456789abcdef";
	p += i;
	bool utf8 = mg_utf8_valid(s, n);
	for (; i < n; i++) {
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

/* `s` (n bytes) as a JSON string: at most 2 + 6 * n bytes. Bytes of
 * invalid UTF-8 become \u00XX, so a record is always valid JSON. Most
 * strings are plain ASCII: they are copied a word at a time as they are
 * checked. With `padded`, `s` is followed by MG_AUDIT_PACK_PAD readable
 * bytes (a pack's strings are) and its last word is read whole; without,
 * only its own bytes are read (a C string of the loop's). Up to 7 bytes
 * past the string's room may be written over (the caller's slack holds
 * them). */
static inline __attribute__((always_inline)) char *put_str_at(char *p, const char *s, size_t n,
                                                              bool padded)
{
	*p++ = '"';
	size_t i = 0;
	uint64_t w;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		if (mg_word_special(w))
			return put_str_escaped(p, s, n, i);
		memcpy(p + i, &w, 8);
	}
	if (i == n) {
		/* whole words only */
	} else if (padded) {
		/* the bytes past the end count as plain ('a') */
		memcpy(&w, s + i, 8);
		uint64_t keep = ~0ull >> (64 - 8 * (n - i));
		if (mg_word_special((w & keep) | (0x6161616161616161ull & ~keep)))
			return put_str_escaped(p, s, n, i);
		memcpy(p + i, &w, 8);
	} else if (n >= 8) {
		/* the string's last word, which overlaps bytes already checked */
		memcpy(&w, s + n - 8, 8);
		if (mg_word_special(w))
			return put_str_escaped(p, s, n, i);
		memcpy(p + n - 8, &w, 8);
	} else if (n >= 4) {
		/* 4-7 bytes: its first and last four, which may overlap */
		uint32_t lo, hi;
		memcpy(&lo, s, 4);
		memcpy(&hi, s + n - 4, 4);
		if (mg_word_special((uint64_t)hi << 32 | lo))
			return put_str_escaped(p, s, n, 0);
		memcpy(p, &lo, 4);
		memcpy(p + n - 4, &hi, 4);
	} else {
		w = 0x6161616161616161ull;
		memcpy(&w, s, n);
		if (mg_word_special(w))
			return put_str_escaped(p, s, n, 0);
		memcpy(p, &w, n);
	}
	p += n;
	*p++ = '"';
	return p;
}
#define put_str(p, s, n) put_str_at(p, s, n, true)

/* The string members' keys (,"key":), in record order (enum
 * mg_audit_str), each copied as a whole 24-byte slot. */
#define KEY_SLOT 24
static const char field_keys[MG_AUDIT_MEMBERS][KEY_SLOT] = {
	[MG_AS_REQUEST_ID] = ",\"request_id\":", [MG_AS_TRACE_ID] = ",\"trace_id\":",
	[MG_AS_IDENTITY] = ",\"identity_id\":",  [MG_AS_PROVIDER] = ",\"provider\":",
	[MG_AS_CLIENT] = ",\"client_address\":", [MG_AS_SERVER] = ",\"server\":",
	[MG_AS_METHOD] = ",\"method\":",         [MG_AS_TOOL] = ",\"tool\":",
};
static const uint8_t field_key_len[MG_AUDIT_MEMBERS] = {
	[MG_AS_REQUEST_ID] = 14, [MG_AS_TRACE_ID] = 12, [MG_AS_IDENTITY] = 15,
	[MG_AS_PROVIDER] = 12,   [MG_AS_CLIENT] = 18,   [MG_AS_SERVER] = 10,
	[MG_AS_METHOD] = 10,     [MG_AS_TOOL] = 8,
};

/* A length as the pack stores it; longer strings are cut (no member or
 * message comes near: the configuration and the HTTP parser bound them). */
static uint32_t len32(size_t n)
{
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* The string members of `ev`, from its fields. */
static void members_of(const struct mg_audit_event *ev, const char *s[MG_AUDIT_MEMBERS],
                       uint32_t len[MG_AUDIT_MEMBERS])
{
	const char *src[MG_AUDIT_MEMBERS] = { ev->request_id, ev->trace_id, ev->identity,
		                              ev->provider,   ev->client,   ev->server,
		                              ev->method,     ev->tool };
	for (int i = 0; i < MG_AUDIT_MEMBERS; i++) {
		s[i] = src[i];
		len[i] = src[i] ? len32(strlen(src[i])) : 0;
	}
}

/* The room a member of n bytes may take while written: its key slot, the
 * quotes, every byte escaped as \u00XX, and a word's overrun. */
static size_t member_room(size_t n)
{
	return KEY_SLOT + 2 + 6 * n + 8;
}

size_t mg_audit_members_into(const struct mg_audit_event *ev, char *out, size_t size)
{
	const char *s[MG_AUDIT_MEMBERS];
	uint32_t len[MG_AUDIT_MEMBERS];
	members_of(ev, s, len);
	char *p = out;
	for (int i = 0; i < MG_AUDIT_MEMBERS; i++) {
		if (!len[i])
			continue;
		if (member_room(len[i]) >= size - (size_t)(p - out)) {
			/* does not fit: the room that surely does (> size) */
			size_t need = 1;
			for (int j = 0; j < MG_AUDIT_MEMBERS; j++)
				need += len[j] ? member_room(len[j]) : 0;
			return need;
		}
		memcpy(p, field_keys[i], KEY_SLOT);
		p += field_key_len[i];
		p = put_str_at(p, s[i], len[i], false);
	}
	if (p == out && size == 0)
		return 1; /* not even room for the NUL */
	*p = '\0';
	return (size_t)(p - out);
}

void mg_audit_pack_prepare(struct mg_audit_packing *pk, const struct mg_audit_event *ev,
                           const char *args, size_t args_len, const char *result, size_t result_len)
{
	if (ev->members) {
		/* already written as JSON, once for all the call's records */
		memset(pk->len, 0, MG_AUDIT_MEMBERS * sizeof *pk->len);
		pk->fragment = ev->members;
		pk->fragment_len = len32(ev->members_len);
	} else {
		members_of(ev, pk->s, pk->len);
		pk->fragment = NULL;
		pk->fragment_len = 0;
	}
	pk->s[MG_AS_MESSAGE] = ev->message;
	pk->len[MG_AS_MESSAGE] = ev->message ? len32(strlen(ev->message)) : 0;
	pk->s[MG_AS_ARGUMENTS] = args;
	pk->len[MG_AS_ARGUMENTS] = args ? len32(args_len) : 0;
	pk->s[MG_AS_RESULT] = result;
	pk->len[MG_AS_RESULT] = result ? len32(result_len) : 0;
	size_t size = sizeof(struct mg_audit_pack) + pk->fragment_len;
	for (int i = 0; i < MG_AS_N; i++)
		size += pk->len[i];
	pk->size = size;
}

void mg_audit_pack_write(const struct mg_audit_packing *pk, const struct mg_audit_event *ev,
                         int64_t unix_us, void *out)
{
	struct mg_audit_pack h = { .type = (uint8_t)ev->type,
		                   .success = (int8_t)(ev->success < 0 ? -1 : ev->success != 0),
		                   .unix_us = unix_us,
		                   .duration_ms = ev->duration_ms < 0 ? -1 : ev->duration_ms,
		                   .fragment = pk->fragment_len };
	memcpy(h.len, pk->len, sizeof h.len);
	memcpy(out, &h, sizeof h);
	char *p = (char *)out + sizeof h;
	int i = 0;
	if (pk->fragment_len) {
		p = put_mem(p, pk->fragment, pk->fragment_len);
		i = MG_AUDIT_MEMBERS;
	}
	for (; i < MG_AS_N; i++)
		if (pk->len[i])
			p = put_mem(p, pk->s[i], pk->len[i]);
}

int mg_audit_pack_serialize(const void *pack, struct mg_buf *out)
{
	struct mg_audit_pack h;
	memcpy(&h, pack, sizeof h);
	const char *s = (const char *)pack + sizeof h;
	/* timestamp, event type, success, duration, keys, braces, and a
	 * word's overrun: < 200 */
	size_t size = 200 + MG_AUDIT_MEMBERS * KEY_SLOT + h.fragment;
	for (int i = 0; i < MG_AS_N; i++)
		size += (i == MG_AS_ARGUMENTS || i == MG_AS_RESULT ? 1 : 6) * (size_t)h.len[i];
	if (mg_buf_reserve(out, size) < 0)
		return -1;
	char *p = out->data + out->len;
	char ts[28];
	mg_audit_format_time(h.unix_us, ts);
	p = LIT(p, "{\"timestamp\":\"");
	p = put_mem(p, ts, 27);
	p = LIT(p, "\",\"event_type\":\"");
	const char *type = mg_audit_type_name((enum mg_audit_type)h.type);
	p = put_mem(p, type, strlen(type));
	*p++ = '"';
	if (h.fragment) {
		/* the members, written as JSON by mg_audit_members_into */
		p = put_mem(p, s, h.fragment);
		s += h.fragment;
	} else {
		for (int i = 0; i < MG_AUDIT_MEMBERS; i++) {
			if (!h.len[i])
				continue;
			memcpy(p, field_keys[i], KEY_SLOT);
			p += field_key_len[i];
			p = put_str(p, s, h.len[i]);
			s += h.len[i];
		}
	}
	if (h.success >= 0)
		p = h.success ? LIT(p, ",\"success\":true") : LIT(p, ",\"success\":false");
	if (h.duration_ms >= 0) {
		p = LIT(p, ",\"duration_ms\":");
		p += mg_fmt_i64(p, h.duration_ms);
	}
	if (h.len[MG_AS_MESSAGE]) {
		p = LIT(p, ",\"message\":");
		p = put_str(p, s, h.len[MG_AS_MESSAGE]);
		s += h.len[MG_AS_MESSAGE];
	}
	/* arguments and result: JSON text the loop redacted and dumped */
	if (h.len[MG_AS_ARGUMENTS]) {
		p = LIT(p, ",\"arguments\":");
		p = put_mem(p, s, h.len[MG_AS_ARGUMENTS]);
		s += h.len[MG_AS_ARGUMENTS];
	}
	if (h.len[MG_AS_RESULT]) {
		p = LIT(p, ",\"result\":");
		p = put_mem(p, s, h.len[MG_AS_RESULT]);
	}
	*p++ = '}';
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
	return 0;
}

char *mg_audit_json_text(const struct mg_audit_redactor *rd, const json_t *v, size_t *len)
{
	json_t *copy = mg_audit_redact(rd, v);
	if (!copy)
		return NULL;
	char *text = json_dumps(copy, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	json_decref(copy);
	*len = text ? strlen(text) : 0;
	return text;
}

int mg_audit_serialize(const struct mg_audit_event *ev, int64_t unix_us,
                       const struct mg_audit_redactor *rd, struct mg_buf *out)
{
	char *args = NULL, *result = NULL;
	size_t al = 0, rl = 0;
	if (rd && ev->arguments && mg_audit_redactor_arguments(rd))
		args = mg_audit_json_text(rd, ev->arguments, &al);
	if (rd && ev->result && mg_audit_redactor_results(rd))
		result = mg_audit_json_text(rd, ev->result, &rl);
	struct mg_audit_packing pk;
	mg_audit_pack_prepare(&pk, ev, args, al, result, rl);
	int rc = -1;
	void *pack = malloc(pk.size + MG_AUDIT_PACK_PAD);
	if (pack) {
		mg_audit_pack_write(&pk, ev, unix_us, pack);
		rc = mg_audit_pack_serialize(pack, out);
	}
	free(pack);
	free(args);
	free(result);
	return rc;
}

static void to_hex(const uint8_t *d, size_t n, char *out)
{
	mg_hex(d, n, out);
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
	size_t start = out->len;
	if (mg_buf_append(out, obj, len) < 0)
		return -1;
	if (mg_audit_chain_tail(sha, out, start, seq, prev, hash_out) < 0) {
		out->len = start;
		return -1;
	}
	return 0;
}

int mg_audit_chain_tail(struct mg_sha256_ctx *sha, struct mg_buf *out, size_t start, uint64_t seq,
                        const char *prev, char hash_out[MG_AUDIT_HASH_HEX + 1])
{
	size_t len = out->len - start;
	const char *obj = out->data + start;
	if (len < 2 || obj[0] != '{' || obj[len - 1] != '}')
		return -1;
	/* "{}" has no member to put a comma after. */
	bool empty = len == 2;
	char num[MG_I64_CHARS];
	size_t nl = mg_fmt_i64(num, (int64_t)seq);
	size_t pl = strlen(prev);
	out->len--; /* the object's closing brace */
	/* (appended piece by piece: a printf per record cost as much as the rest) */
	if (mg_buf_append(out, &",\"seq\":"[empty ? 1 : 0], empty ? 6 : 7) < 0 ||
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
