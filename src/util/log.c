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

static enum mg_log_level current_level = MG_LOG_INFO;
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
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		*p++ = hex[d[i] >> 4];
		*p++ = hex[d[i] & 15];
	}
	return p;
}

size_t mg_log_ctx_format(const struct mg_log_ctx *ctx, char *out)
{
	char *p = out;
	if (ctx && ctx->request_id) {
		uint8_t b[8];
		for (int i = 0; i < 8; i++)
			b[i] = (uint8_t)(ctx->request_id >> (56 - 8 * i));
		memcpy(p, " request_id=", 12);
		p = put_hex(p + 12, b, 8);
		if (ctx->has_trace) {
			memcpy(p, " trace_id=", 10);
			p = put_hex(p + 10, ctx->trace_id, 16);
		}
	}
	*p = '\0';
	return (size_t)(p - out);
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
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum mg_log_level)i;
			return 0;
		}
	}
	return -1;
}

void mg_log(enum mg_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN ", "INFO ", "DEBUG" };
	if (level > current_level)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	int k =
	    snprintf(line + n, sizeof line - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L, tags[level]);
	if (k > 0)
		n += (size_t)k;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	/* room for the context and the line break after a long message */
	size_t room = sizeof line - MG_LOG_CTX_CHARS - 1;
	n = n + (size_t)m >= room ? room - 1 : n + (size_t)m;
	n += mg_log_ctx_format(&log_ctx, line + n);
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
