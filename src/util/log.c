/*
 * log.c - diagnostic log lines on stderr. See log.h.
 *
 * One write(2) per line so lines from the main loop and worker threads do
 * not interleave.
 *
 * The request context is thread-local and costs two stores to set: the ids
 * are formatted only when a line is written. The gateway sets it where it
 * starts handling a request and in every callback that resumes one, from
 * the request's own record (never from whatever ran last), and restores the
 * previous context on the way out, so a line logged between requests
 * carries no stale id.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/str.h"

/* The level names of the configuration and of JSON lines. */
static const char *const level_names[] = { "error", "warn", "info", "debug" };
static enum mg_log_level current_level = MG_LOG_INFO;
static enum mg_log_format current_format = MG_LOG_TEXT;
static _Thread_local struct mg_log_ctx log_ctx;

struct mg_log_ctx mg_log_ctx_set(const struct mg_log_ctx *ctx)
{
	struct mg_log_ctx prev = log_ctx;
	if (ctx && ctx->request_id)
		log_ctx = *ctx;
	else
		log_ctx = (struct mg_log_ctx){ 0 };
	return prev;
}

void mg_log_ctx_restore(struct mg_log_ctx prev)
{
	log_ctx = prev;
}

void mg_log_ctx_set_trace(const uint8_t trace_id[16])
{
	if (!log_ctx.request_id)
		return;
	memcpy(log_ctx.trace_id, trace_id, 16);
	log_ctx.has_trace = true;
}

struct mg_log_ctx mg_log_ctx_get(void)
{
	return log_ctx;
}

void mg_log_ctx_clear(void)
{
	log_ctx = (struct mg_log_ctx){ 0 };
}

static char *put_hex(char *p, const uint8_t *d, size_t n)
{
	mg_hex(d, n, p);
	return p + 2 * n;
}

/* A request id as 16 hex digits, most significant first. */
static char *put_request_id(char *p, uint64_t id)
{
	mg_hex_u64(id, p);
	return p + 16;
}

size_t mg_log_ctx_format(const struct mg_log_ctx *ctx, char *out)
{
	char *p = out;
	if (ctx && ctx->request_id) {
		memcpy(p, " request_id=", 12);
		p = put_request_id(p + 12, ctx->request_id);
		if (ctx->has_trace) {
			memcpy(p, " trace_id=", 10);
			p = put_hex(p + 10, ctx->trace_id, 16);
		}
	}
	*p = '\0';
	return (size_t)(p - out);
}

void mg_log_set_format(enum mg_log_format format)
{
	current_format = format;
}

void mg_log_set_level(enum mg_log_level level)
{
	current_level = level;
}

enum mg_log_level mg_log_get_level(void)
{
	return current_level;
}

int mg_log_parse_level(const char *s, enum mg_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum mg_log_level)i;
			return 0;
		}
	}
	return -1;
}

#define LINE_MAX_BYTES 2048

/* `m` (n bytes) as the content of a JSON string into out (room bytes at
 * most, never cutting an escape); answers the bytes written. */
static size_t json_escape(char *out, size_t room, const char *m, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	bool utf8 = mg_utf8_valid(m, n);
	size_t o = 0, i = 0;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)m[i];
		char e[6];
		size_t k = 0;
		if (c == '"' || c == '\\') {
			e[k++] = '\\';
			e[k++] = (char)c;
		} else if (c == '\n') {
			e[k++] = '\\';
			e[k++] = 'n';
		} else if (c == '\t') {
			e[k++] = '\\';
			e[k++] = 't';
		} else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
			memcpy(e, "\\u00", 4);
			k = 4;
			e[k++] = hex[c >> 4];
			e[k++] = hex[c & 15];
		} else {
			e[k++] = (char)c;
		}
		if (o + k > room)
			break;
		memcpy(out + o, e, k);
		o += k;
	}
	/* Cut inside a UTF-8 character (bytes >= 0x80 are copied one for one):
	 * its first bytes go too, or the line would not be UTF-8. */
	if (utf8 && i < n && ((unsigned char)m[i] & 0xc0) == 0x80) {
		while (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 0)
			o--; /* the character's first byte */
	}
	return o;
}

/* One JSON object: time, level, msg, request_id, trace_id. */
static size_t json_line(char *line, const char *stamp, const char *level, const char *msg,
                        size_t mlen)
{
	int h = snprintf(line, LINE_MAX_BYTES, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"",
	                 stamp, level);
	size_t n = h > 0 ? (size_t)h : 0;
	/* room for the ids (78 bytes), the closing and the line break */
	n += json_escape(line + n, LINE_MAX_BYTES - 96 - n, msg, mlen);
	char *p = line + n;
	*p++ = '"';
	if (log_ctx.request_id) {
		memcpy(p, ",\"request_id\":\"", 15);
		p = put_request_id(p + 15, log_ctx.request_id);
		*p++ = '"';
		if (log_ctx.has_trace) {
			memcpy(p, ",\"trace_id\":\"", 13);
			p = put_hex(p + 13, log_ctx.trace_id, 16);
			*p++ = '"';
		}
	}
	*p++ = '}';
	*p++ = '\n';
	return (size_t)(p - line);
}

void mg_log(enum mg_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN ", "INFO ", "DEBUG" };
	if (level > current_level)
		return;
	char line[LINE_MAX_BYTES], stamp[32];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t tn = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + tn, sizeof stamp - tn, ".%03ldZ", ts.tv_nsec / 1000000L);
	va_list ap;
	va_start(ap, fmt);
	size_t n;
	if (current_format == MG_LOG_JSON) {
		char msg[LINE_MAX_BYTES];
		int m = vsnprintf(msg, sizeof msg, fmt, ap);
		size_t mlen = m < 0 ? 0 : (size_t)m >= sizeof msg ? sizeof msg - 1 : (size_t)m;
		n = json_line(line, stamp, level_names[level], msg, mlen);
	} else {
		n = (size_t)snprintf(line, sizeof line, "%s %s ", stamp, tags[level]);
		int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
		if (m < 0)
			m = 0;
		/* room for the context and the line break after a long message */
		size_t room = sizeof line - MG_LOG_CTX_CHARS - 1;
		n = n + (size_t)m >= room ? room - 1 : n + (size_t)m;
		n += mg_log_ctx_format(&log_ctx, line + n);
		line[n++] = '\n';
	}
	va_end(ap);
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
