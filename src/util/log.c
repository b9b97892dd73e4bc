/*
 * log.c - diagnostic log lines on stderr. See log.h.
 *
 * One write(2) per line so lines from the main loop and worker threads do
 * not interleave.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum mg_log_level current_level = MG_LOG_INFO;

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
	n = (size_t)m >= sizeof line - n ? sizeof line - 2 : n + (size_t)m;
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
