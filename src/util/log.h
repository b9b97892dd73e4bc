/*
 * log.h - the gateway's diagnostic log (not the audit log).
 *
 * Lines go to stderr as "<RFC 3339 time> <level> <message>". The level is
 * process-wide: it is set once from the CLI (--verbose) and by `run` from
 * the configuration. Never pass a secret (key, token, cookie) to these
 * functions; callers log identities and hashes, never credentials.
 */
#ifndef MG_UTIL_LOG_H
#define MG_UTIL_LOG_H

enum mg_log_level { MG_LOG_ERROR, MG_LOG_WARN, MG_LOG_INFO, MG_LOG_DEBUG };

/* Sets the most verbose level that is written. */
void mg_log_set_level(enum mg_log_level level);

/* Returns the current level. */
enum mg_log_level mg_log_get_level(void);

/* Parses "error|warn|info|debug"; returns 0, or -1 for anything else. */
int mg_log_parse_level(const char *s, enum mg_log_level *out);

/* Writes one line if `level` is enabled. */
void mg_log(enum mg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mg_log_error(...) mg_log(MG_LOG_ERROR, __VA_ARGS__)
#define mg_log_warn(...)  mg_log(MG_LOG_WARN, __VA_ARGS__)
#define mg_log_info(...)  mg_log(MG_LOG_INFO, __VA_ARGS__)
#define mg_log_debug(...)                                                                          \
	do {                                                                                       \
		if (mg_log_get_level() >= MG_LOG_DEBUG)                                            \
			mg_log(MG_LOG_DEBUG, __VA_ARGS__);                                         \
	} while (0)

#endif
