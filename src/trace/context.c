/*
 * context.c - W3C traceparent / tracestate (see context.h).
 *
 * Strict on purpose: a value that is not exactly the grammar is ignored as
 * a whole (the gateway then starts a new trace), never half-used. The
 * grammar, from the Trace Context Level 2 recommendation:
 *
 *   traceparent = version "-" trace-id "-" parent-id "-" trace-flags
 *   version     = 2HEXDIGLC (not "ff")   trace-id = 32HEXDIGLC (not all 0)
 *   parent-id   = 16HEXDIGLC (not all 0) trace-flags = 2HEXDIGLC
 *
 *   tracestate  = list-member 0*31( OWS "," OWS list-member )
 *   list-member = key "=" value
 *   key         = simple-key / multi-tenant-key
 *   simple-key  = lcalpha 0*255( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
 *   multi-tenant-key = tenant-id "@" system-id
 *   tenant-id   = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
 *   system-id   = lcalpha 0*13( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
 *   value       = 0*255(chr) nblk-chr
 *   chr = %x20 / nblk-chr      nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
 */
#include "trace/context.h"

#include <string.h>

#include "util/str.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* uppercase is not allowed */
}

static int hex_bytes(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

bool mg_trace_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i])
			return false;
	}
	return true;
}

int mg_traceparent_parse(const char *s, size_t len, struct mg_trace_ctx *out)
{
	uint8_t version;
	struct mg_trace_ctx c;
	if (len < MG_TRACEPARENT_LEN || hex_bytes(s, 1, &version) < 0 || version == 0xff)
		return -1;
	if (version == 0 && len != MG_TRACEPARENT_LEN)
		return -1;
	if (len > MG_TRACEPARENT_LEN && s[MG_TRACEPARENT_LEN] != '-')
		return -1;
	if (s[2] != '-' || s[35] != '-' || s[52] != '-')
		return -1;
	if (hex_bytes(s + 3, 16, c.trace_id) < 0 || hex_bytes(s + 36, 8, c.span_id) < 0 ||
	    hex_bytes(s + 53, 1, &c.flags) < 0)
		return -1;
	if (mg_trace_zero(c.trace_id, 16) || mg_trace_zero(c.span_id, 8))
		return -1;
	*out = c;
	return 0;
}

void mg_trace_hex(const uint8_t *b, size_t n, char *out)
{
	mg_hex(b, n, out);
	out[2 * n] = '\0';
}

void mg_traceparent_format(const struct mg_trace_ctx *c, char out[MG_TRACEPARENT_LEN + 1])
{
	memcpy(out, "00-", 3);
	mg_trace_hex(c->trace_id, 16, out + 3);
	out[35] = '-';
	mg_trace_hex(c->span_id, 8, out + 36);
	out[52] = '-';
	mg_trace_hex(&c->flags, 1, out + 53);
}

static bool key_chr(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
	       c == '*' || c == '/';
}

/* A key of `n` bytes. */
static bool key_valid(const char *k, size_t n)
{
	const char *at = memchr(k, '@', n);
	if (!at) {
		if (n < 1 || n > 256 || !(k[0] >= 'a' && k[0] <= 'z'))
			return false;
		for (size_t i = 1; i < n; i++) {
			if (!key_chr(k[i]))
				return false;
		}
		return true;
	}
	size_t tn = (size_t)(at - k), sn = n - tn - 1;
	if (tn < 1 || tn > 241 || sn < 1 || sn > 14)
		return false;
	if (!((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9')))
		return false;
	for (size_t i = 1; i < tn; i++) {
		if (!key_chr(k[i]))
			return false;
	}
	if (!(at[1] >= 'a' && at[1] <= 'z'))
		return false;
	for (size_t i = 1; i < sn; i++) {
		if (!key_chr(at[1 + i]))
			return false;
	}
	return true;
}

static bool nblk(char c)
{
	return c >= 0x21 && c <= 0x7e && c != ',' && c != '=';
}

bool mg_tracestate_valid(const char *s, size_t len)
{
	struct {
		const char *k;
		size_t n;
	} keys[32];
	size_t nkeys = 0;
	if (len > MG_TRACESTATE_MAX)
		return false;
	size_t i = 0;
	while (i <= len) {
		size_t end = i;
		while (end < len && s[end] != ',')
			end++;
		/* One member between i and end, with optional surrounding OWS. */
		size_t a = i, b = end;
		while (a < b && (s[a] == ' ' || s[a] == '\t'))
			a++;
		while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
			b--;
		if (a < b) {
			const char *eq = memchr(s + a, '=', b - a);
			if (!eq)
				return false;
			size_t kn = (size_t)(eq - (s + a)), vn = b - a - kn - 1;
			if (!key_valid(s + a, kn) || vn < 1 || vn > 256 || !nblk(eq[vn]))
				return false;
			for (size_t j = 1; j <= vn; j++) {
				if (eq[j] != ' ' && !nblk(eq[j]))
					return false;
			}
			if (nkeys == 32)
				return false;
			for (size_t j = 0; j < nkeys; j++) {
				if (keys[j].n == kn && memcmp(keys[j].k, s + a, kn) == 0)
					return false;
			}
			keys[nkeys].k = s + a;
			keys[nkeys].n = kn;
			nkeys++;
		}
		i = end + 1;
	}
	return true;
}
