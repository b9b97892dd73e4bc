/*
 * log.h - the gateway's diagnostic log (not the audit log).
 *
 * Lines go to stderr as "<RFC 3339 time> <level> <message>", followed by
 * " request_id=<16 hex> trace_id=<32 hex>" while the calling thread works
 * for one request (the log context below; trace_id once the request's trace
 * is known). In the JSON format each line is one object instead:
 * {"time":"…","level":"info","msg":"…","request_id":"…","trace_id":"…"}
 * (the ids only when known; the message escaped, invalid UTF-8 bytes as
 * \u00XX, so a line always parses). The format and the level are
 * process-wide: the level is set from the CLI (--verbose) and by `run` from
 * the configuration, the format by `run` (server.log_format). Never pass a secret (key, token, cookie) to these
 * functions; callers log identities and hashes, never credentials.
 */
#ifndef MG_UTIL_LOG_H
#define MG_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mg_log_level { MG_LOG_ERROR, MG_LOG_WARN, MG_LOG_INFO, MG_LOG_DEBUG };

enum mg_log_format { MG_LOG_TEXT, MG_LOG_JSON };

/* Sets the line format (text until set). */
void mg_log_set_format(enum mg_log_format format);

/* Sets the most verbose level that is written. */
void mg_log_set_level(enum mg_log_level level);

/* Returns the current level. */
enum mg_log_level mg_log_get_level(void);

/* Parses "error|warn|info|debug"; returns 0, or -1 for anything else. */
int mg_log_parse_level(const char *s, enum mg_log_level *out);

/* Writes one line if `level` is enabled. */
void mg_log(enum mg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The request a thread is working for, added to every line it logs. The
 * request id is the one audit records carry (16 hex digits of
 * `request_id`); the trace id is the request's W3C trace id when tracing is
 * on. Per thread: worker threads never inherit the loop's. */
struct mg_log_ctx {
	uint64_t request_id; /* 0: no request */
	bool has_trace;
	uint8_t trace_id[16];
};

/* Makes `ctx` the calling thread's context (NULL or request_id 0: none) and
 * returns the previous one, for mg_log_ctx_restore: a callback that resumes
 * a request sets the request's context on entry and restores on exit. */
struct mg_log_ctx mg_log_ctx_set(const struct mg_log_ctx *ctx);

/* Puts back a context returned by mg_log_ctx_set. */
void mg_log_ctx_restore(struct mg_log_ctx prev);

/* Adds the trace id (16 bytes) to the current context, when there is one. */
void mg_log_ctx_set_trace(const uint8_t trace_id[16]);

/* The calling thread's context now (request_id 0: none). */
struct mg_log_ctx mg_log_ctx_get(void);

/* Clears the calling thread's context. */
void mg_log_ctx_clear(void);

/* The context as it appears in a line: " request_id=… trace_id=…" (or
 * less, or ""), NUL-terminated; returns its length. `out` holds at least
 * MG_LOG_CTX_CHARS bytes. */
#define MG_LOG_CTX_CHARS 72
size_t mg_log_ctx_format(const struct mg_log_ctx *ctx, char *out);

#define mg_log_error(...) mg_log(MG_LOG_ERROR, __VA_ARGS__)
#define mg_log_warn(...)  mg_log(MG_LOG_WARN, __VA_ARGS__)
#define mg_log_info(...)  mg_log(MG_LOG_INFO, __VA_ARGS__)
#define mg_log_debug(...)                                                                          \
	do {                                                                                       \
		if (mg_log_get_level() >= MG_LOG_DEBUG)                                            \
			mg_log(MG_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)

#endif
